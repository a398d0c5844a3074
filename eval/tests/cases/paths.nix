[ (builtins.baseNameOf "/a/b/c") (builtins.baseNameOf "/a/b/") (builtins.dirOf "/a/b/c") (builtins.dirOf "a")
  (builtins.dirOf "/a") (builtins.isPath ./foo) (toString /a/b/../c) ((/a + "/b") == /a/b) ]
