let x = "world"; in [
  "hello ${x}" "a\nb\tc\"d\\e" "\${not}" ''
    indented
      more
    back
  '' ''a''${b}'' "${toString 42}" (toString [1 2 [3 [] 4] null true false]) (toString 1.5)
  (builtins.substring 1 3 "abcdef") (builtins.substring 4 10 "abcdef") (builtins.stringLength "héllo")
  (builtins.concatStringsSep ", " ["a" "b" "c"]) (builtins.replaceStrings ["a" "b"] ["x" "yy"] "abcab")
  (builtins.replaceStrings [""] ["-"] "abc")
]
