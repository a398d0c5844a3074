//! `derivationStrict`: computing derivation and output paths.

use crate::error::{Result, err};
use crate::eval::Eval;
use crate::pos::Pos;
use crate::value::Value;

/// Evaluates a derivation's attributes into its paths.
pub fn derivation_strict(_ev: &mut Eval, _attrs: &Value, p: Pos) -> Result<Value> {
    err("derivations are not supported by this evaluator yet", p)
}
