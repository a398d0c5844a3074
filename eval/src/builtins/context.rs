//! String-context builtins.

use crate::error::{Result, err};
use crate::eval::Eval;
use crate::pos::Pos;
use crate::symbol::{intern, sym};
use crate::value::*;
use std::collections::BTreeMap;

fn str_and_ctx(ev: &mut Eval, v: &Value, p: Pos) -> Result<(Vec<u8>, Context)> {
    let mut ctx = Context::new();
    let s = ev.coerce_to_string(v, &mut ctx, false, false, p)?;
    Ok((s, ctx))
}

pub fn has_context(ev: &mut Eval, a: &[Value], p: Pos) -> Result<Value> {
    let (_, ctx) = str_and_ctx(ev, &a[0], p)?;
    Ok(Value::Bool(!ctx.is_empty()))
}

pub fn discard_context(ev: &mut Eval, a: &[Value], p: Pos) -> Result<Value> {
    let (s, _) = str_and_ctx(ev, &a[0], p)?;
    Ok(Value::str(s))
}

pub fn discard_output_dep(ev: &mut Eval, a: &[Value], p: Pos) -> Result<Value> {
    let (s, ctx) = str_and_ctx(ev, &a[0], p)?;
    let ctx = ctx
        .into_iter()
        .map(|c| {
            if c.starts_with(b"=") {
                c[1..].into()
            } else {
                c
            }
        })
        .collect();
    Ok(Value::str_ctx(s, ctx))
}

pub fn add_drv_output_deps(ev: &mut Eval, a: &[Value], p: Pos) -> Result<Value> {
    let (s, ctx) = str_and_ctx(ev, &a[0], p)?;
    if ctx.len() != 1 {
        return err(
            format!(
                "context of string '{}' must have exactly one element, but has {}",
                String::from_utf8_lossy(&s),
                ctx.len()
            ),
            p,
        );
    }
    let mut out = Context::new();
    for c in ctx {
        if c.starts_with(b"!") {
            return err(
                format!(
                    "`addDrvOutputDependencies` can only act on derivations, not on a derivation output such as '{}'",
                    String::from_utf8_lossy(&c)
                ),
                p,
            );
        }
        if c.starts_with(b"=") || !c.ends_with(b".drv") {
            if !c.starts_with(b"=") {
                return err(
                    format!("path '{}' is not a derivation", String::from_utf8_lossy(&c)),
                    p,
                );
            }
            out.insert(c);
        } else {
            let mut n = b"=".to_vec();
            n.extend_from_slice(&c);
            out.insert(n.into());
        }
    }
    Ok(Value::str_ctx(s, out))
}

#[derive(Default)]
struct Info {
    path: bool,
    all: bool,
    outputs: Vec<Vec<u8>>,
}

pub fn get_context(ev: &mut Eval, a: &[Value], p: Pos) -> Result<Value> {
    let (_, ctx) = str_and_ctx(ev, &a[0], p)?;
    let mut m: BTreeMap<Vec<u8>, Info> = BTreeMap::new();
    for c in ctx.iter() {
        if let Some(rest) = c.strip_prefix(b"=") {
            m.entry(rest.to_vec()).or_default().all = true;
        } else if let Some(rest) = c.strip_prefix(b"!") {
            let Some(i) = rest.iter().position(|&b| b == b'!') else {
                continue;
            };
            let out = rest[..i].to_vec();
            m.entry(rest[i + 1..].to_vec())
                .or_default()
                .outputs
                .push(out);
        } else {
            m.entry(c.to_vec()).or_default().path = true;
        }
    }
    let mut v = Vec::new();
    for (path, info) in m {
        let mut e = Vec::new();
        if info.path {
            e.push((sym("path"), Value::Bool(true), Pos::NONE));
        }
        if info.all {
            e.push((sym("allOutputs"), Value::Bool(true), Pos::NONE));
        }
        if !info.outputs.is_empty() {
            let mut outs = info.outputs;
            outs.sort();
            e.push((
                sym("outputs"),
                Value::list(outs.into_iter().map(Value::str).collect()),
                Pos::NONE,
            ));
        }
        v.push((
            intern(&path),
            Value::attrs(Attrs::from_unsorted(e)),
            Pos::NONE,
        ));
    }
    Ok(Value::attrs(Attrs::from_unsorted(v)))
}

pub fn append_context(ev: &mut Eval, a: &[Value], p: Pos) -> Result<Value> {
    let (s, mut ctx) = str_and_ctx(ev, &a[0], p)?;
    let add = ev.force_attrs(&a[1], p)?;
    for (name, info, _) in add.entries.iter() {
        let path = name.bytes().to_vec();
        let info = ev.force_attrs(info, p)?;
        if let Some(v) = info.get(sym("path")).cloned()
            && ev.force_bool(&v, p)?
        {
            ctx.insert(path.clone().into());
        }
        if let Some(v) = info.get(sym("allOutputs")).cloned()
            && ev.force_bool(&v, p)?
        {
            let mut c = b"=".to_vec();
            c.extend_from_slice(&path);
            ctx.insert(c.into());
        }
        if let Some(v) = info.get(sym("outputs")).cloned() {
            let l = ev.force_list(&v, p)?;
            for o in l.iter() {
                let o = ev.force_str(o, p)?;
                let mut c = b"!".to_vec();
                c.extend_from_slice(&o.bytes);
                c.push(b'!');
                c.extend_from_slice(&path);
                ctx.insert(c.into());
            }
        }
    }
    Ok(Value::str_ctx(s, ctx))
}
