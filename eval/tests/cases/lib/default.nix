{ add = a: b: a + b; name = "lib"; }
