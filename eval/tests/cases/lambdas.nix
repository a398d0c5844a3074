let
  f = { a, b ? a * 2, ... }@args: [ a b (args.c or "none") ];
  g = x: y: x - y;
  h = { x ? 1 }: x;
in [ (f { a = 1; }) (f { a = 1; b = 5; c = "c"; }) (g 10 3) (h {}) (builtins.functionArgs f) ]
