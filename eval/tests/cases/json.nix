with builtins; [
  (toJSON { a = 1; b = [ true null "s\n\"" ]; c = { d = 1.5; }; e = -3; })
  (fromJSON ''{"x": [1, 2.5, "y", null, false], "z": {"w": -1}}'')
  (toJSON (fromJSON ''"\u00e9\t"''))
]
