builtins.toXML { a = 1; b = [ "x" null true ]; c = 1.5; }
