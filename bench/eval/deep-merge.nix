let
  merge = a: b:
    a // builtins.mapAttrs (n: v: if builtins.isAttrs v && a ? ${n} && builtins.isAttrs a.${n} then merge a.${n} v else v) b;
  keys = builtins.genList (k: "k${toString k}") 10;
  level = f: builtins.listToAttrs (map (k: { name = k; value = f k; }) keys);
  mk = i: level (k1: level (k2: { "v${toString (builtins.div i 4)}" = i; inherit k1 k2; }));
  result = builtins.foldl' (acc: i: merge acc (mk i)) { } (builtins.genList (x: x) 2000);
in
builtins.length (builtins.attrNames result.k3.k7)
