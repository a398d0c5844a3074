with builtins; map typeOf [ 1 1.0 "s" ./. null true [] {} (x: x) map (map (x: x)) ]
