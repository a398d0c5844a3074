# `//` merging interleaved, overlapping and empty sets, and a set grown by
# folding (the runs the merge copies).
with builtins;
let
  grown = foldl' (acc: i: acc // { "k${toString (i * 7 - i / 3 * 20)}" = i; }) { } (genList (x: x) 200);
in [
  ({ a = 1; c = 3; e = 5; } // { b = 2; c = 30; d = 4; f = 6; } // { } // { a = 10; g = 7; })
  ({ } // { x = 1; })
  ({ x = 1; } // { })
  ({ a = 1; b = 2; } // { a = 3; b = 4; })
  (attrNames grown)
  (attrValues grown)
  (grown // { k0 = "first"; k1393 = "last"; zz = 1; })
]
