//! cairn-eval: the Nix language evaluator.
