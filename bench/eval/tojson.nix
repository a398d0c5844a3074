builtins.stringLength (builtins.toJSON (builtins.genList (i: {
  a = i;
  b = "s${toString i}";
  c = [ i (i * 2) { d = i; } ];
}) 300000))
