[ (true && false) (true || false) (false -> true) (!true) (if 1 < 2 then "y" else "n") (false && (throw "lazy")) (true || (throw "lazy")) ]
