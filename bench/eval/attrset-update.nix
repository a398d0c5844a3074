let
  set = builtins.foldl' (acc: i: acc // { "k${toString i}" = i; }) { } (builtins.genList (x: x) 5000);
in
builtins.length (builtins.attrNames set)
