let
  drv = derivation { name = "x"; system = "y"; builder = "/z"; };
in
{
  drv = drv;
  d2 = [ drv drv ];
  other = derivation { name = "o"; system = "y"; builder = "/z"; outputs = [ "out" "dev" ]; };
}
