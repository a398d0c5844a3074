//! Arithmetic, comparison, equality, list concatenation and `//`.

use crate::error::{Result, err};
use crate::eval::Eval;
use crate::ir::BinOp;
use crate::pos::Pos;
use crate::value::*;
use std::cmp::Ordering;
use std::rc::Rc;

impl Eval {
    /// Evaluates a strict binary operator on forced operands.
    pub fn binop(&mut self, op: BinOp, a: Value, b: Value, pos: Pos) -> Result<Value> {
        match op {
            BinOp::Add => self.add(a, b, pos),
            BinOp::Sub | BinOp::Mul | BinOp::Div => arith(op, &a, &b, pos),
            BinOp::Concat => {
                let (Value::List(x), Value::List(y)) = (&a, &b) else {
                    let bad = if matches!(a, Value::List(_)) { &b } else { &a };
                    return err(crate::error::type_msg("a list", bad), pos);
                };
                if x.is_empty() {
                    return Ok(b.clone());
                }
                if y.is_empty() {
                    return Ok(a.clone());
                }
                self.charge((x.len() + y.len()) as u64 / 16, pos)?;
                Ok(Value::list_from(x.iter().chain(y.iter()).cloned()))
            }
            BinOp::Update => {
                let (Value::Attrs(x), Value::Attrs(y)) = (&a, &b) else {
                    let bad = if matches!(a, Value::Attrs(_)) { &b } else { &a };
                    return err(crate::error::type_msg("a set", bad), pos);
                };
                Ok(Value::Attrs(update(x, y)))
            }
            BinOp::Lt => Ok(Value::Bool(self.compare(&a, &b, pos)? == Ordering::Less)),
            BinOp::Le => Ok(Value::Bool(self.compare(&b, &a, pos)? != Ordering::Less)),
            BinOp::Gt => Ok(Value::Bool(self.compare(&b, &a, pos)? == Ordering::Less)),
            BinOp::Ge => Ok(Value::Bool(self.compare(&a, &b, pos)? != Ordering::Less)),
            BinOp::Eq | BinOp::Neq => {
                let r = self.equal(&a, &b, pos)?;
                Ok(Value::Bool(r == (op == BinOp::Eq)))
            }
        }
    }

    fn add(&mut self, a: Value, b: Value, pos: Pos) -> Result<Value> {
        match (&a, &b) {
            (Value::Int(_) | Value::Float(_), Value::Int(_) | Value::Float(_)) => {
                arith(BinOp::Add, &a, &b, pos)
            }
            (Value::Path(p), _) => {
                let mut ctx = Context::new();
                let s = self.coerce_to_string(&b, &mut ctx, false, false, pos)?;
                if !ctx.is_empty() {
                    return err(
                        "a string that refers to a store path cannot be appended to a path",
                        pos,
                    );
                }
                let mut out = p.to_vec();
                out.extend_from_slice(&s);
                Ok(Value::Path(Rc::new(crate::lower::canon_path(&out))))
            }
            (Value::Str(x), _) => {
                let mut ctx = Context::new();
                if let Some(c) = &x.ctx {
                    ctx.extend(c.iter().cloned());
                }
                // One exact allocation when both sides are strings.
                let extra = match &b {
                    Value::Str(y) => y.bytes.len(),
                    _ => 0,
                };
                let mut out = Vec::with_capacity(x.bytes.len() + extra);
                out.extend_from_slice(&x.bytes);
                self.coerce_into(&b, &mut ctx, false, true, pos, &mut out)?;
                self.charge(out.len() as u64 / 64, pos)?;
                Ok(Value::str_ctx(out, ctx))
            }
            _ => err(
                format!("cannot add {} to {}", b.type_desc(), a.type_desc()),
                pos,
            ),
        }
    }

    /// Nix's `<` ordering (errors for incomparable values).
    pub fn compare(&mut self, a: &Value, b: &Value, pos: Pos) -> Result<Ordering> {
        let a = self.force(a)?;
        let b = self.force(b)?;
        match (&a, &b) {
            (Value::Int(x), Value::Int(y)) => Ok(x.cmp(y)),
            (Value::Int(x), Value::Float(y)) => {
                Ok((*x as f64).partial_cmp(y).unwrap_or(Ordering::Equal))
            }
            (Value::Float(x), Value::Int(y)) => {
                Ok(x.partial_cmp(&(*y as f64)).unwrap_or(Ordering::Equal))
            }
            (Value::Float(x), Value::Float(y)) => Ok(x.partial_cmp(y).unwrap_or(Ordering::Equal)),
            (Value::Str(x), Value::Str(y)) => Ok(x.bytes.cmp(&y.bytes)),
            (Value::Path(x), Value::Path(y)) => Ok(x.cmp(y)),
            (Value::List(x), Value::List(y)) => {
                for (p, q) in x.iter().zip(y.iter()) {
                    if self.equal(p, q, pos)? {
                        continue;
                    }
                    self.enter(pos)?;
                    let r = self.compare(p, q, pos).map_err(|mut e| {
                        if e.trace.len() < 64 {
                            e.trace
                                .push(("while comparing two list elements".to_string(), Pos::NONE));
                        }
                        e
                    });
                    self.depth -= 1;
                    return r;
                }
                Ok(x.len().cmp(&y.len()))
            }
            _ => {
                let (sa, sb) = (crate::error::short(&a), crate::error::short(&b));
                let msg = if std::mem::discriminant(&a) == std::mem::discriminant(&b) {
                    format!(
                        "cannot compare {} with {}; values of that type are incomparable (values are {sa} and {sb})",
                        a.type_desc(),
                        b.type_desc()
                    )
                } else {
                    format!(
                        "cannot compare {} with {}; values are {sa} and {sb}",
                        a.type_desc(),
                        b.type_desc()
                    )
                };
                err(msg, pos)
            }
        }
    }

    /// Nix's `==`.
    pub fn equal(&mut self, a: &Value, b: &Value, pos: Pos) -> Result<bool> {
        self.equal_inner(a, b, pos, true)
    }

    fn equal_nested(&mut self, a: &Value, b: &Value, pos: Pos) -> Result<bool> {
        if same_ref(a, b) {
            return Ok(true);
        }
        self.enter(pos)?;
        let r = self.equal_inner(a, b, pos, false);
        self.depth -= 1;
        r
    }

    fn equal_inner(&mut self, a: &Value, b: &Value, pos: Pos, _top: bool) -> Result<bool> {
        let a = self.force(a)?;
        let b = self.force(b)?;
        Ok(match (&a, &b) {
            (Value::Null, Value::Null) => true,
            (Value::Bool(x), Value::Bool(y)) => x == y,
            (Value::Int(x), Value::Int(y)) => x == y,
            (Value::Int(x), Value::Float(y)) => (*x as f64) == *y,
            (Value::Float(x), Value::Int(y)) => *x == (*y as f64),
            (Value::Float(x), Value::Float(y)) => x == y,
            (Value::Str(x), Value::Str(y)) => *x.bytes == *y.bytes,
            (Value::Path(x), Value::Path(y)) => x == y,
            (Value::List(x), Value::List(y)) => {
                if RcSlice::ptr_eq(x, y) {
                    return Ok(true);
                }
                if x.len() != y.len() {
                    return Ok(false);
                }
                for (p, q) in x.iter().zip(y.iter()) {
                    if !self.equal_nested(p, q, pos)? {
                        return Ok(false);
                    }
                }
                true
            }
            (Value::Attrs(x), Value::Attrs(y)) => {
                if Attrs::ptr_eq(x, y) {
                    return Ok(true);
                }
                if self.is_derivation(x)?
                    && self.is_derivation(y)?
                    && let (Some(p), Some(q)) = (x.get(self.s.out_path), y.get(self.s.out_path))
                {
                    let (p, q) = (p.clone(), q.clone());
                    return self.equal(&p, &q, pos);
                }
                if x.len() != y.len() {
                    return Ok(false);
                }
                for (e, f) in x.entries.iter().zip(y.entries.iter()) {
                    if e.0 != f.0 {
                        return Ok(false);
                    }
                }
                for (e, f) in x.entries.iter().zip(y.entries.iter()) {
                    if !self.equal_nested(&e.1, &f.1, pos)? {
                        return Ok(false);
                    }
                }
                true
            }
            _ => false,
        })
    }
}

/// Identity of two (possibly unforced) values, as Nix's pointer equality.
fn same_ref(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Thunk(x), Value::Thunk(y)) => ThunkRef::ptr_eq(x, y),
        (Value::Lambda(x), Value::Lambda(y)) => Rc::ptr_eq(x, y),
        (Value::Attrs(x), Value::Attrs(y)) => Attrs::ptr_eq(x, y),
        (Value::List(x), Value::List(y)) => RcSlice::ptr_eq(x, y) && !x.is_empty(),
        (Value::PrimOp(x), Value::PrimOp(y)) => std::ptr::eq(*x, *y),
        _ => false,
    }
}

/// `x // y`: a merge of two sorted entry vectors, right side winning.
/// The merge is planned as runs of either side first, so the entries are
/// then written once, straight into the new set (folding `//` over a
/// growing set copies it at every step: a few runs of many entries).
pub fn update(x: &Attrs, y: &Attrs) -> Attrs {
    if y.is_empty() {
        return x.clone();
    }
    if x.is_empty() {
        return y.clone();
    }
    let (a, b) = (&x.entries, &y.entries);
    // (from the right side, start, end)
    let mut runs: smallvec::SmallVec<[(bool, usize, usize); 8]> = smallvec::SmallVec::new();
    let mut len = 0;
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        let (right, start) = match a[i].0.cmp(&b[j].0) {
            Ordering::Less => {
                let start = i;
                while i < a.len() && a[i].0 < b[j].0 {
                    i += 1;
                }
                (false, start)
            }
            Ordering::Greater => {
                let start = j;
                while j < b.len() && b[j].0 < a[i].0 {
                    j += 1;
                }
                (true, start)
            }
            Ordering::Equal => {
                i += 1;
                j += 1;
                (true, j - 1)
            }
        };
        let end = if right { j } else { i };
        len += end - start;
        runs.push((right, start, end));
    }
    runs.push((false, i, a.len()));
    runs.push((true, j, b.len()));
    len += (a.len() - i) + (b.len() - j);
    let entries = RcSlice::build(len, |f| {
        for &(right, start, end) in &runs {
            f.extend_from_slice(if right {
                &b[start..end]
            } else {
                &a[start..end]
            });
        }
    });
    Attrs { entries }
}

/// Integer/float arithmetic with Nix's overflow checks.
pub fn arith(op: BinOp, a: &Value, b: &Value, pos: Pos) -> Result<Value> {
    match (a, b) {
        (Value::Int(x), Value::Int(y)) => {
            let (x, y) = (*x, *y);
            let r = match op {
                BinOp::Add => x.checked_add(y),
                BinOp::Sub => x.checked_sub(y),
                BinOp::Mul => x.checked_mul(y),
                _ => {
                    if y == 0 {
                        return err("division by zero", pos);
                    }
                    x.checked_div(y)
                }
            };
            match r {
                Some(r) => Ok(Value::Int(r)),
                None => {
                    let (verb, prep) = match op {
                        BinOp::Add => ("adding", "+"),
                        BinOp::Sub => ("subtracting", "-"),
                        BinOp::Mul => ("multiplying", "*"),
                        _ => ("dividing", "/"),
                    };
                    err(format!("integer overflow in {verb} {x} {prep} {y}"), pos)
                }
            }
        }
        (Value::Int(_) | Value::Float(_), Value::Int(_) | Value::Float(_)) => {
            let x = num(a);
            let y = num(b);
            Ok(Value::Float(match op {
                BinOp::Add => x + y,
                BinOp::Sub => x - y,
                BinOp::Mul => x * y,
                _ => {
                    if y == 0.0 {
                        return err("division by zero", pos);
                    }
                    x / y
                }
            }))
        }
        _ => {
            let bad = if matches!(a, Value::Int(_) | Value::Float(_)) {
                b
            } else {
                a
            };
            err(crate::error::type_msg("an integer", bad), pos)
        }
    }
}

fn num(v: &Value) -> f64 {
    match v {
        Value::Int(i) => *i as f64,
        Value::Float(f) => *f,
        _ => 0.0,
    }
}
