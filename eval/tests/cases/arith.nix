[ (1 + 2 * 3) (10 / 3) (10 / 4.0) (-7 / 2) (2 - 5) (1.5 * 2) (builtins.div 9 2) (builtins.bitAnd 12 10) (builtins.bitOr 12 10) (builtins.bitXor 12 10) (1 < 2) (2.5 >= 2) ("a" < "b") ([1 2] < [1 3]) ]
