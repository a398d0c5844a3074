builtins.length (builtins.attrNames (builtins.unsafeGetAttrPos "a" { a = 1; }))
