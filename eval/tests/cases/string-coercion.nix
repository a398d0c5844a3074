# String forms built by interpolation, `+` and toString.
with builtins;
let
  n = 42;
  s = "abc";
in [
  "${toString n}-${s}-${toString (-7)}"
  (toString 0)
  (toString (-9223372036854775807 - 1))
  (toString 9223372036854775807)
  (toString [ 1 "a" [ ] [ 2 [ 3 ] ] null true false 1.5 ])
  (toString [ [ ] [ ] 1 ])
  (toString s)
  (toString "")
  (toString { __toString = _: "custom"; })
  (toString { outPath = "/some/where"; })
  (s + "def" + toString n)
  ("" + "")
  ("x" + { outPath = "/o"; })
  (foldl' (acc: i: acc + "x${toString i}") "" (genList (x: x) 50))
  (let a = "${s}${s}"; in a + a)
  (concatStringsSep "," (map toString (genList (i: i * 1001 - 5000) 12)))
]
