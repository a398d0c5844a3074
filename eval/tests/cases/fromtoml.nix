builtins.fromTOML ''
  a = 1
  b = "two"
  [c]
  d = [ 1, 2 ]
  e.f = true
  [[g]]
  h = 1.5
''
