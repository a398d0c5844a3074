[ (toString { __toString = self: "custom"; }) "${{ outPath = "/out"; }}" ]
