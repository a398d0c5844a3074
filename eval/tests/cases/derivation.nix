let d = derivation { name = "hello"; system = "x86_64-linux"; builder = "/bin/sh"; args = [ "-c" "echo hi > $out" ]; };
    e = derivation { name = "dep"; system = "x86_64-linux"; builder = "/bin/sh"; inherit d; outputs = [ "out" "dev" ]; };
in [ d.drvPath d.outPath e.drvPath e.dev.outPath e.outPath (builtins.typeOf d) d.type ]
