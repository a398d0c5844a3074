let k = "key"; in { ${k} = 1; "${k}2" = 2; a.b.c = 3; a.d = 4; ${null} = 5; }
