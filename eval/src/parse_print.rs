//! Printing the lowered IR in the format of `nix-instantiate --parse`.

use crate::ir::Expr;

/// Shows an expression.
pub fn show(_e: &Expr) -> String {
    String::new()
}
