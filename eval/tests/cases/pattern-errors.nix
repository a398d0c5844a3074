let f = { a }: a; in builtins.tryEval (f { a = 1; })
