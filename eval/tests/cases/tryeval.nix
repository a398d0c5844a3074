with builtins; [ (tryEval 1) (tryEval (throw "x")) (tryEval (assert false; 1)) ((tryEval (1 + (throw "y"))).success) ]
