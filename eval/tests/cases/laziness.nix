let x = throw "never"; s = { a = x; b = 1; }; in [ s.b (builtins.length [ x x ]) (builtins.seq 1 2) ((x: 3) x) ]
