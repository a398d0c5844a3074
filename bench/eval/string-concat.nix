builtins.stringLength (builtins.foldl' (acc: i: acc + "x${toString i}") "" (builtins.genList (x: x) 20000))
