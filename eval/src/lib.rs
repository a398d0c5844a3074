//! cairn-eval: the Nix language evaluator.

pub mod posix_regex;
