with builtins; [
  (hashString "md5" "hello") (hashString "sha1" "hello") (hashString "sha256" "hello")
  (hashString "sha512" "")
]
