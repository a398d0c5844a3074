let
  merge = a: b:
    a // builtins.mapAttrs (n: v: if builtins.isAttrs v && a ? ${n} && builtins.isAttrs a.${n} then merge a.${n} v else v) b;
  mk = i: { x = { y = { "k${toString (builtins.div i 3)}" = { v = i; }; z = { w = i; }; }; }; };
  result = builtins.foldl' (acc: i: merge acc (mk i)) { } (builtins.genList (x: x) 3000);
in
builtins.length (builtins.attrNames result.x.y)
