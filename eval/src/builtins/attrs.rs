//! Attribute-set builtins.

use crate::error::{AddTrace, Result, err};
use crate::eval::Eval;
use crate::pos::Pos;
use crate::symbol::{Sym, intern};
use crate::value::*;
use std::collections::HashMap;

fn name_of(ev: &mut Eval, v: &Value, p: Pos) -> Result<Sym> {
    Ok(intern(&ev.force_str(v, p)?.bytes))
}

pub fn function_args(ev: &mut Eval, a: &[Value], p: Pos) -> Result<Value> {
    match ev.force(&a[0])? {
        Value::Lambda(c) => {
            let mut v = Vec::new();
            if let Some(fs) = &c.lam.formals {
                for f in fs {
                    v.push((f.name, Value::Bool(f.default.is_some()), f.pos));
                }
            }
            Ok(Value::attrs(Attrs::from_unsorted(v)))
        }
        Value::PrimOp(_) | Value::PrimOpApp(_) => Ok(Value::attrs(Attrs::default())),
        _ => err("'functionArgs' requires a function".to_string(), p),
    }
}

pub fn attr_names(ev: &mut Eval, a: &[Value], p: Pos) -> Result<Value> {
    let s = ev.force_attrs(&a[0], p)?;
    Ok(Value::list_from(
        s.sorted_by_name().iter().map(|e| ev.sym_str(e.0)),
    ))
}

pub fn attr_values(ev: &mut Eval, a: &[Value], p: Pos) -> Result<Value> {
    let s = ev.force_attrs(&a[0], p)?;
    Ok(Value::list_from(
        s.sorted_by_name().iter().map(|e| e.1.clone()),
    ))
}

pub fn cat_attrs(ev: &mut Eval, a: &[Value], p: Pos) -> Result<Value> {
    let n = name_of(ev, &a[0], p)?;
    let l = ev.force_list(&a[1], p)?;
    let mut out = Vec::new();
    for x in l.iter() {
        let s = ev.force_attrs(x, p).trace(
            || "while evaluating an element in the list passed as second argument to builtins.catAttrs".to_string(),
            Pos::NONE,
        )?;
        if let Some(v) = s.get(n) {
            out.push(v.clone());
        }
    }
    Ok(Value::list(out))
}

pub fn get_attr(ev: &mut Eval, a: &[Value], p: Pos) -> Result<Value> {
    let n = name_of(ev, &a[0], p)?;
    let s = ev.force_attrs(&a[1], p)?;
    match s.get(n) {
        Some(v) => {
            let v = v.clone();
            ev.force(&v)
        }
        None => err(format!("attribute '{n}' missing"), p).trace(
            || "in the attribute set under consideration".to_string(),
            Pos::NONE,
        ),
    }
}

pub fn has_attr(ev: &mut Eval, a: &[Value], p: Pos) -> Result<Value> {
    let n = name_of(ev, &a[0], p)?;
    let s = ev.force_attrs(&a[1], p)?;
    Ok(Value::Bool(s.get(n).is_some()))
}

pub fn intersect_attrs(ev: &mut Eval, a: &[Value], p: Pos) -> Result<Value> {
    let x = ev.force_attrs(&a[0], p)?;
    let y = ev.force_attrs(&a[1], p)?;
    let entries = y
        .entries
        .iter()
        .filter(|e| x.get(e.0).is_some())
        .cloned()
        .collect();
    Ok(Value::attrs(Attrs { entries }))
}

pub fn list_to_attrs(ev: &mut Eval, a: &[Value], p: Pos) -> Result<Value> {
    let l = ev.force_list(&a[0], p)?;
    let mut v: Vec<(Sym, Value, Pos)> = Vec::with_capacity(l.len());
    let pair = || "in a {name=...; value=...;} pair".to_string();
    for x in l.iter() {
        let s = ev.force_attrs(x, p).trace(
            || "while evaluating an element of the list passed to builtins.listToAttrs".to_string(),
            Pos::NONE,
        )?;
        let Some((_, n, npos)) = s.get_entry(ev.s.name).cloned() else {
            return err("attribute 'name' missing", p).trace(pair, Pos::NONE);
        };
        let n = name_of(ev, &n, p).trace(
            || "while evaluating the `name` attribute of an element of the list passed to builtins.listToAttrs".to_string(),
            npos,
        )?;
        let Some((_, val, vpos)) = s.get_entry(ev.s.value) else {
            return err("attribute 'value' missing", p).trace(pair, Pos::NONE);
        };
        // The attribute is located where its `value` was defined.
        v.push((n, val.clone(), *vpos));
    }
    // The first occurrence of a name wins.
    v.reverse();
    // After reversing, the last occurrence of a name is the first one in
    // the list, and `from_unsorted` keeps the last of equal names.
    Ok(Value::attrs(Attrs::from_unsorted(v)))
}

pub fn map_attrs(ev: &mut Eval, a: &[Value], p: Pos) -> Result<Value> {
    let s = ev.force_attrs(&a[1], p)?;
    let f = a[0].clone();
    let entries = s
        .entries
        .iter()
        .map(|(n, v, _)| {
            (
                *n,
                Value::app(Value::app(f.clone(), ev.sym_str(*n)), v.clone()),
                Pos::NONE,
            )
        })
        .collect();
    Ok(Value::attrs(Attrs { entries }))
}

pub fn remove_attrs(ev: &mut Eval, a: &[Value], p: Pos) -> Result<Value> {
    let s = ev.force_attrs(&a[0], p)?;
    let l = ev.force_list(&a[1], p)?;
    let mut rm = Vec::new();
    for x in l.iter() {
        rm.push(name_of(ev, x, p)?);
    }
    let entries = s
        .entries
        .iter()
        .filter(|e| !rm.contains(&e.0))
        .cloned()
        .collect();
    Ok(Value::attrs(Attrs { entries }))
}

pub fn zip_attrs_with(ev: &mut Eval, a: &[Value], p: Pos) -> Result<Value> {
    ev.force_fn(&a[0], p)?;
    let l = ev.force_list(&a[1], p)?;
    let mut acc: HashMap<Sym, Vec<Value>> = HashMap::new();
    let mut order = Vec::new();
    for x in l.iter() {
        let s = ev.force_attrs(x, p)?;
        for (n, v, _) in s.entries.iter() {
            let e = acc.entry(*n).or_insert_with(|| {
                order.push(*n);
                Vec::new()
            });
            e.push(v.clone());
        }
    }
    let f = a[0].clone();
    let mut v = Vec::new();
    for n in order {
        let vals = acc.remove(&n).unwrap_or_default();
        v.push((
            n,
            Value::app(Value::app(f.clone(), ev.sym_str(n)), Value::list(vals)),
            Pos::NONE,
        ));
    }
    Ok(Value::attrs(Attrs::from_unsorted(v)))
}

pub fn unsafe_get_attr_pos(ev: &mut Eval, a: &[Value], p: Pos) -> Result<Value> {
    let n = name_of(ev, &a[0], p)?;
    let s = ev.force_attrs(&a[1], p)?;
    match s.get_entry(n) {
        Some((_, _, pos)) => Ok(ev.pos_attrs(*pos)),
        None => Ok(Value::Null),
    }
}

pub fn group_by(ev: &mut Eval, a: &[Value], p: Pos) -> Result<Value> {
    ev.force_fn(&a[0], p)?;
    let l = ev.force_list(&a[1], p)?;
    let mut acc: HashMap<Sym, Vec<Value>> = HashMap::new();
    for x in l.iter() {
        let k = ev.call_n(&a[0], std::slice::from_ref(x), p)?;
        let k = name_of(ev, &k, p).trace(
            || "while evaluating the return value of the grouping function passed to builtins.groupBy".to_string(),
            Pos::NONE,
        )?;
        acc.entry(k).or_default().push(x.clone());
    }
    Ok(Value::attrs(Attrs::from_unsorted(
        acc.into_iter()
            .map(|(k, v)| (k, Value::list(v), Pos::NONE))
            .collect(),
    )))
}
