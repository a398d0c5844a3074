let s = builtins.appendContext "x" { "/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-foo" = { path = true; }; }; in
[ (builtins.hasContext s) (builtins.hasContext "x") (builtins.getContext s) (builtins.unsafeDiscardStringContext s) ]
