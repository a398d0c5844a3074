with builtins; [
  (mapAttrs (n: v: "${n}=${toString v}") { a = 1; b = 2; })
  (zipAttrsWith (n: vs: vs) [ { a = 1; } { a = 2; b = 3; } ])
  (genericClosure { startSet = [ { key = 1; } ]; operator = x: if x.key < 5 then [ { key = x.key + 1; } ] else [ ]; })
]
