[ 0.1 (0.1 + 0.2) 1.0 100000.0 1000000.0 1.0e20 1.5e-5 0.0001 123.456789 (1 / 3.0) (builtins.floor 2.7) (builtins.ceil 2.1) (builtins.floor (-2.5)) ]
