builtins.length (builtins.genList (x: x) 1000000)
