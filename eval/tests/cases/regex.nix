with builtins; [
  (match "a(b*)c" "abbbc") (match "[a-z]+" "abc1") (match "(a)|(b)" "b") (match ".*\\.nix" "foo.nix")
  (split "," "a,b,c") (split "(,)" "a,b") (split "x*" "ab") (match "[[:digit:]]+" "123")
]
