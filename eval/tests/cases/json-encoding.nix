# toJSON's output byte for byte: escapes, numbers, nesting, sets that
# stand for strings, and the lengths of large documents.
with builtins;
let
  # \u0000 left out: Nix 2.8 reads it as the end of the string.
  controls = concatStringsSep "" (genList (j: let i = j + 1; in fromJSON ''"\u00${if i < 16 then "0" else "1"}${substring (if i < 16 then i else i - 16) 1 "0123456789abcdef"}"'') 31);
  big = genList (i: { a = i; b = "s${toString i}"; c = [ i (i * 2) { d = i; } ]; }) 2000;
  strs = { __toString = self: "via ${self.name}"; name = "toString"; };
  drvLike = { outPath = "/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-x"; type = "derivation"; };
in [
  (toJSON controls)
  (toJSON "quote \" backslash \\ slash / tab \t nl \n cr \r del \u007f")
  (toJSON "é ü 漢字 🙂")
  (toJSON [ 0 (-1) 9 10 99 100 (-100) 1234567890 9223372036854775807 (-9223372036854775807 - 1) ])
  (toJSON [ 0.5 (-2.25) 1.0e20 1.5e-7 3.0 100.0 ])
  (toJSON [ true false null ])
  (toJSON { })
  (toJSON [ ])
  (toJSON [ [ ] { } [ [ ] ] { a = { }; } ])
  (toJSON { b = 1; a = 2; "" = 3; "with space" = 4; "q\"uote" = 5; zz = { y = 1; x = [ 1 2 ]; }; })
  (toJSON { a = { z = 1; y = { q = 2; p = [ { n = 1; m = 2; } ]; }; x = 0; }; b = { d = 4; c = 5; }; })
  (toJSON strs)
  (toJSON { s = strs; l = [ strs strs ]; })
  (toJSON drvLike)
  (toJSON { outPath = { outPath = "nested"; }; })
  (stringLength (toJSON big))
  (hashString "sha256" (toJSON big))
  (substring 0 200 (toJSON big))
]
