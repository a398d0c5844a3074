//! Printing the lowered IR in the format of `nix-instantiate --parse`
//! (Nix's `Expr::show`): fully parenthesised, attributes sorted by name,
//! inherits first, and arithmetic/comparison shown as the builtin calls
//! Nix desugars them to.

use crate::ir::*;
use crate::print::{escape_string, fmt_float};
use crate::symbol::Sym;
use crate::value::Value;

/// Shows an expression.
pub fn show(e: &Expr) -> String {
    let mut out = Vec::new();
    expr(e, &mut out);
    String::from_utf8_lossy(&out).into_owned()
}

fn s(out: &mut Vec<u8>, t: &str) {
    out.extend_from_slice(t.as_bytes());
}

fn name(out: &mut Vec<u8>, n: Sym) {
    out.extend_from_slice(n.bytes());
}

fn keys(out: &mut Vec<u8>, path: &[Key]) {
    for (i, k) in path.iter().enumerate() {
        if i > 0 {
            out.push(b'.');
        }
        match k {
            Key::Static(n) => name(out, *n),
            Key::Dynamic(e) => {
                s(out, "\"${");
                expr(e, out);
                s(out, "}\"");
            }
        }
    }
}

fn bin(out: &mut Vec<u8>, a: &Expr, op: &str, b: &Expr) {
    out.push(b'(');
    expr(a, out);
    out.push(b' ');
    s(out, op);
    out.push(b' ');
    expr(b, out);
    out.push(b')');
}

fn call(out: &mut Vec<u8>, f: &str, args: &[&Expr]) {
    out.push(b'(');
    s(out, f);
    for a in args {
        out.push(b' ');
        expr(a, out);
    }
    out.push(b')');
}

fn bindings(a: &AttrsExpr, out: &mut Vec<u8>) {
    let mut sorted: Vec<&AttrDef> = a.statics.iter().collect();
    sorted.sort_by(|x, y| x.name.bytes().cmp(y.name.bytes()));
    let inherits: Vec<Sym> = sorted
        .iter()
        .filter(|d| d.inherited)
        .map(|d| d.name)
        .collect();
    if !inherits.is_empty() {
        s(out, "inherit");
        for n in inherits {
            out.push(b' ');
            name(out, n);
        }
        s(out, "; ");
    }
    // inherit (from) groups, keyed by the shown source expression
    let mut froms: Vec<(Vec<u8>, Vec<Sym>)> = Vec::new();
    for d in &sorted {
        if let Some(src) = inherit_from_src(a, d) {
            let mut t = Vec::new();
            expr(src, &mut t);
            match froms.iter_mut().find(|(k, _)| *k == t) {
                Some((_, v)) => v.push(d.name),
                None => froms.push((t, vec![d.name])),
            }
        }
    }
    for (src, names) in froms {
        s(out, "inherit (");
        out.extend_from_slice(&src);
        out.push(b')');
        for n in names {
            out.push(b' ');
            name(out, n);
        }
        s(out, "; ");
    }
    for d in sorted {
        if d.inherited || d.from.is_some() {
            continue;
        }
        name(out, d.name);
        s(out, " = ");
        expr(&d.value, out);
        s(out, "; ");
    }
    for (k, v, _) in &a.dynamics {
        s(out, "\"${");
        expr(k, out);
        s(out, "}\" = ");
        expr(v, out);
        s(out, "; ");
    }
}

/// The source expression of an `inherit (src) name` binding.
fn inherit_from_src<'a>(a: &'a AttrsExpr, d: &AttrDef) -> Option<&'a Expr> {
    a.inherit_from.get(d.from? as usize)
}

fn expr(e: &Expr, out: &mut Vec<u8>) {
    match e {
        Expr::Const(v) => match v {
            Value::Int(i) => s(out, &i.to_string()),
            Value::Float(f) => s(out, &fmt_float(*f)),
            Value::Str(x) => escape_string(&x.bytes, out),
            Value::Path(p) => out.extend_from_slice(p),
            _ => s(out, "null"),
        },
        Expr::Var { name: n, .. } => name(out, *n),
        Expr::WithVar { name: n, .. } => name(out, *n),
        Expr::Attrs(a) => {
            if a.rec {
                s(out, "rec ");
            }
            s(out, "{ ");
            bindings(a, out);
            s(out, "}");
        }
        Expr::List(items) => {
            s(out, "[ ");
            for i in items.iter() {
                out.push(b'(');
                expr(i, out);
                s(out, ") ");
            }
            s(out, "]");
        }
        Expr::Lambda(l) => {
            out.push(b'(');
            if let Some(fs) = &l.formals {
                s(out, "{ ");
                let mut sorted: Vec<&Formal> = fs.iter().collect();
                sorted.sort_by(|a, b| a.name.bytes().cmp(b.name.bytes()));
                for (i, f) in sorted.iter().enumerate() {
                    if i > 0 {
                        s(out, ", ");
                    }
                    name(out, f.name);
                    if let Some(d) = &f.default {
                        s(out, " ? ");
                        expr(d, out);
                    }
                }
                if l.ellipsis {
                    if !fs.is_empty() {
                        s(out, ", ");
                    }
                    s(out, "...");
                }
                s(out, " }");
                if l.arg.is_some() {
                    s(out, " @ ");
                }
            }
            if let Some(a) = l.arg {
                name(out, a);
            }
            s(out, ": ");
            expr(&l.body, out);
            out.push(b')');
        }
        Expr::Apply(..) => {
            let mut args = Vec::new();
            let mut f = e;
            while let Expr::Apply(fa, _) = f {
                args.push(&fa.1);
                f = &fa.0;
            }
            out.push(b'(');
            expr(f, out);
            for a in args.iter().rev() {
                out.push(b' ');
                expr(a, out);
            }
            out.push(b')');
        }
        Expr::Let(lb) => {
            s(out, "(let ");
            bindings(&lb.0, out);
            s(out, "in ");
            expr(&lb.1, out);
            out.push(b')');
        }
        Expr::With(nb, _) => {
            s(out, "(with ");
            expr(&nb.0, out);
            s(out, "; ");
            expr(&nb.1, out);
            out.push(b')');
        }
        Expr::If(ite, _) => {
            s(out, "(if ");
            expr(&ite.0, out);
            s(out, " then ");
            expr(&ite.1, out);
            s(out, " else ");
            expr(&ite.2, out);
            out.push(b')');
        }
        Expr::Assert(cb, _, _) => {
            s(out, "assert ");
            expr(&cb.0, out);
            s(out, "; ");
            expr(&cb.1, out);
        }
        Expr::Select(x, path, def, _) => {
            out.push(b'(');
            expr(x, out);
            s(out, ").");
            keys(out, path);
            if let Some(d) = def {
                s(out, " or (");
                expr(d, out);
                out.push(b')');
            }
        }
        Expr::HasAttr(x, path) => {
            s(out, "((");
            expr(x, out);
            s(out, ") ? ");
            keys(out, path);
            out.push(b')');
        }
        Expr::Not(x, _) => {
            s(out, "(! ");
            expr(x, out);
            out.push(b')');
        }
        Expr::Bin(op, ab, _) => {
            let (a, b) = (&ab.0, &ab.1);
            match op {
                BinOp::Add => bin(out, a, "+", b),
                BinOp::Sub => call(out, "__sub", &[a, b]),
                BinOp::Mul => call(out, "__mul", &[a, b]),
                BinOp::Div => call(out, "__div", &[a, b]),
                BinOp::Concat => bin(out, a, "++", b),
                BinOp::Update => bin(out, a, "//", b),
                BinOp::Eq => bin(out, a, "==", b),
                BinOp::Neq => bin(out, a, "!=", b),
                BinOp::Lt => call(out, "__lessThan", &[a, b]),
                BinOp::Gt => call(out, "__lessThan", &[b, a]),
                BinOp::Le => {
                    s(out, "(! ");
                    call(out, "__lessThan", &[b, a]);
                    out.push(b')');
                }
                BinOp::Ge => {
                    s(out, "(! ");
                    call(out, "__lessThan", &[a, b]);
                    out.push(b')');
                }
            }
        }
        Expr::And(ab) => bin(out, &ab.0, "&&", &ab.1),
        Expr::Or(ab) => bin(out, &ab.0, "||", &ab.1),
        Expr::Impl(ab) => bin(out, &ab.0, "->", &ab.1),
        Expr::Concat(c) | Expr::PathConcat(c) => {
            let is_path = matches!(e, Expr::PathConcat(_));
            out.push(b'(');
            for (i, p) in c.parts.iter().enumerate() {
                if i > 0 {
                    s(out, " + ");
                }
                match p {
                    Expr::Const(Value::Str(x)) if is_path && i == 0 => {
                        out.extend_from_slice(&x.bytes)
                    }
                    p => expr(p, out),
                }
            }
            out.push(b')');
        }
        Expr::CurPos(_) => s(out, "__curPos"),
        Expr::Fail(..) => s(out, "null"),
    }
}
