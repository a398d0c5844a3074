let
  a = 1;
  b = a + c;
  c = 10;
  set = rec { x = y + 1; y = 2; z = { inherit x; w = x * 2; }; };
  inherit (set) y;
in [ a b c set y ]
