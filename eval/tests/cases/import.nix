let lib = import ./lib/default.nix; in [ (lib.add 1 2) lib.name (import ./lib).name ]
