//! The evaluator's own expression IR, lowered once from the rnix syntax
//! tree. Variables are resolved statically to `(level, index)` slots of
//! environment frames; only names that may come from a `with` stay dynamic.

use crate::pos::Pos;
use crate::symbol::Sym;
use crate::value::Value;

/// A binary operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    Concat,
    Update,
    Eq,
    Neq,
    Lt,
    Le,
    Gt,
    Ge,
}

/// One component of an attribute path.
#[derive(Debug)]
pub enum Key {
    Static(Sym),
    Dynamic(Expr),
}

/// The value definition of an attribute.
#[derive(Debug)]
pub struct AttrDef {
    pub name: Sym,
    pub value: Expr,
    pub pos: Pos,
    /// Evaluated in the enclosing environment even in a `rec` set
    /// (plain `inherit x;`).
    pub inherited: bool,
    /// Defined by `inherit (expr) name`: the index of `expr` in the set's
    /// `inherit_from` list (the value is then `expr.name`).
    pub from: Option<u32>,
}

/// An attribute set literal (also the bindings of a `let`).
#[derive(Debug)]
pub struct AttrsExpr {
    pub rec: bool,
    pub statics: Vec<AttrDef>,
    pub dynamics: Vec<(Expr, Expr, Pos)>,
    /// Source expressions of `inherit (expr) ...` clauses, each evaluated
    /// at most once per instantiation of the set.
    pub inherit_from: Vec<Expr>,
    pub pos: Pos,
}

/// A lambda's formal parameter.
#[derive(Debug)]
pub struct Formal {
    pub name: Sym,
    pub default: Option<Expr>,
    pub pos: Pos,
}

/// A lambda. Its environment frame holds, in order: the plain argument
/// (for `x: ...`), or the formals followed by the `@` binding.
#[derive(Debug)]
pub struct LambdaExpr {
    pub name: Option<Sym>,
    pub arg: Option<Sym>,
    pub formals: Option<Vec<Formal>>,
    pub ellipsis: bool,
    pub body: Expr,
    pub pos: Pos,
}

/// A string interpolation / path concatenation.
#[derive(Debug)]
pub struct ConcatExpr {
    pub parts: Vec<Expr>,
    pub pos: Pos,
    /// Position of each part (of its `${` for interpolations).
    pub part_pos: Vec<Pos>,
}

/// An expression.
#[derive(Debug)]
pub enum Expr {
    Const(Value),
    Var {
        level: u32,
        idx: u32,
        name: Sym,
    },
    WithVar {
        name: Sym,
        levels: Box<[u32]>,
        pos: Pos,
        /// Global slot to use when no `with` provides the name.
        fallback: Option<u32>,
    },
    Attrs(Box<AttrsExpr>),
    List(Box<[Expr]>),
    Lambda(Box<LambdaExpr>),
    Apply(Box<(Expr, Expr)>, Pos),
    Let(Box<(AttrsExpr, Expr)>),
    With(Box<(Expr, Expr)>, Pos),
    If(Box<(Expr, Expr, Expr)>, Pos),
    Assert(Box<(Expr, Expr)>, Pos, Box<str>),
    Select(Box<Expr>, Box<[Key]>, Option<Box<Expr>>, Pos),
    HasAttr(Box<Expr>, Box<[Key]>),
    /// `!x` with the position of `x`.
    Not(Box<Expr>, Pos),
    Bin(BinOp, Box<(Expr, Expr)>, Pos),
    /// `a && b` with the positions of `a` and `b` (likewise `||`, `->`).
    And(Box<(Expr, Expr, Pos, Pos)>),
    Or(Box<(Expr, Expr, Pos, Pos)>),
    Impl(Box<(Expr, Expr, Pos, Pos)>),
    Concat(Box<ConcatExpr>),
    /// A relative/absolute path built by interpolation: the first part is
    /// a path constant.
    PathConcat(Box<ConcatExpr>),
    CurPos(Pos),
    /// A deferred error (e.g. a forbidden literal), raised when evaluated.
    Fail(Box<str>, Pos),
}
