let s = { a = 1; b = { c = 2; }; "d e" = 3; }; in [
  (s ? a) (s ? b.c) (s ? b.x) (s.b.c) (s.x or 7) (s.b.x or 8) (s // { a = 9; f = 10; })
  (builtins.attrNames s) (builtins.attrValues { z = 1; a = 2; })
  (builtins.removeAttrs s [ "a" ]) (builtins.intersectAttrs { a = 0; z = 0; } s)
  (builtins.hasAttr "a" s) (builtins.getAttr "a" s) (builtins.catAttrs "a" [ { a = 1; } { b = 2; } { a = 3; } ])
]
