with builtins; [
  (compareVersions "1.0" "1.0.1") (compareVersions "2.3a" "2.3.1") (compareVersions "1.0pre1" "1.0")
  (compareVersions "10" "9") (splitVersion "1.2.3-pre4") (parseDrvName "hello-2.10-beta")
  (parseDrvName "nix-unstable-2.8")
]
