with builtins; [
  (length [1 2 3]) (head [4 5]) (tail [4 5 6]) (elemAt [1 2 3] 1) (elem 2 [1 2 3])
  (map (x: x * x) [1 2 3]) (filter (x: x > 1) [1 2 3]) (concatLists [[1] [2 3] []])
  (concatMap (x: [x x]) [1 2]) (genList (x: x * 2) 5) (foldl' (a: b: a + b) 0 [1 2 3 4])
  (sort (a: b: a < b) [3 1 2 5 4]) (sort (a: b: a.k < b.k) [ { k = 1; v = "a"; } { k = 0; v = "b"; } { k = 1; v = "c"; } ])
  (partition (x: x > 2) [1 2 3 4]) (all (x: x > 0) [1 2]) (any (x: x > 1) [1 2])
  ([1 2] ++ [3]) (groupBy (x: if x > 1 then "big" else "small") [1 2 3])
  (listToAttrs [ { name = "a"; value = 1; } { name = "a"; value = 2; } { name = "b"; value = 3; } ])
]
