let
  shared = { n = 1; };
in
{
  a = 1;
  f = { x, y ? 2, ... }@args: x;
  g = z: z;
  l = [ 1 "s" null true 1.5 (x: x) { n = { m = 2; }; } ./xml-values.nix ];
  s = { inner = { b = 2 + 3; }; };
  shared = shared;
  again = shared;
  str = "<&'\"\n\t>";
  rec1 = rec { p = 1; q = p + 1; };
}
