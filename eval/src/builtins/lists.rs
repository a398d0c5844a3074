//! List builtins.

use crate::error::{AddTrace, Result, err};
use crate::eval::Eval;
use crate::pos::Pos;
use crate::symbol::sym;
use crate::value::*;

/// Calls a predicate; errors in its result name `what`.
fn pred_named(ev: &mut Eval, f: &Value, x: &Value, p: Pos, what: &str) -> Result<bool> {
    let r = ev.call_n(f, std::slice::from_ref(x), p)?;
    ev.force_bool(&r, p).trace(
        || format!("while evaluating the return value of {what}"),
        Pos::NONE,
    )
}

pub fn all(ev: &mut Eval, a: &[Value], p: Pos) -> Result<Value> {
    ev.force_fn(&a[0], p)?;
    let l = ev.force_list(&a[1], p)?;
    for x in l.iter() {
        if !pred_named(ev, &a[0], x, p, "the function passed to builtins.all")? {
            return Ok(Value::Bool(false));
        }
    }
    Ok(Value::Bool(true))
}

pub fn any(ev: &mut Eval, a: &[Value], p: Pos) -> Result<Value> {
    ev.force_fn(&a[0], p)?;
    let l = ev.force_list(&a[1], p)?;
    for x in l.iter() {
        if pred_named(ev, &a[0], x, p, "the function passed to builtins.any")? {
            return Ok(Value::Bool(true));
        }
    }
    Ok(Value::Bool(false))
}

pub fn concat_lists(ev: &mut Eval, a: &[Value], p: Pos) -> Result<Value> {
    let l = ev.force_list(&a[0], p)?;
    let mut out = Vec::new();
    for x in l.iter() {
        let inner = ev.force_list(x, p).trace(
            || "while evaluating a value of the list passed to builtins.concatLists".to_string(),
            Pos::NONE,
        )?;
        out.extend(inner.iter().cloned());
    }
    Ok(Value::list(out))
}

pub fn concat_map(ev: &mut Eval, a: &[Value], p: Pos) -> Result<Value> {
    ev.force_fn(&a[0], p)?;
    let l = ev.force_list(&a[1], p)?;
    let mut out = Vec::new();
    for x in l.iter() {
        let r = ev.call_n(&a[0], std::slice::from_ref(x), p)?;
        let fpos = match &a[0] {
            Value::Lambda(c) => c.lam.pos,
            Value::Thunk(t) => match t.done() {
                Some(Value::Lambda(c)) => c.lam.pos,
                _ => Pos::NONE,
            },
            _ => Pos::NONE,
        };
        let l = ev.force_list(&r, p).trace(
            || {
                "while evaluating the return value of the function passed to builtins.concatMap"
                    .to_string()
            },
            fpos,
        )?;
        out.extend(l.iter().cloned());
    }
    Ok(Value::list(out))
}

pub fn elem(ev: &mut Eval, a: &[Value], p: Pos) -> Result<Value> {
    let l = ev.force_list(&a[1], p)?;
    for x in l.iter() {
        if ev.equal(&a[0], x, p)? {
            return Ok(Value::Bool(true));
        }
    }
    Ok(Value::Bool(false))
}

pub fn elem_at(ev: &mut Eval, a: &[Value], p: Pos) -> Result<Value> {
    let l = ev.force_list(&a[0], p)?;
    let i = ev.force_int(&a[1], p)?;
    if i < 0 || i as usize >= l.len() {
        return err(
            format!(
                "'builtins.elemAt' called with index {i} on a list of size {}",
                l.len()
            ),
            p,
        );
    }
    ev.force(&l[i as usize])
}

pub fn filter(ev: &mut Eval, a: &[Value], p: Pos) -> Result<Value> {
    let l = ev.force_list(&a[1], p)?;
    if !l.is_empty() {
        ev.force_fn(&a[0], p)?;
    }
    let mut out = Vec::new();
    for x in l.iter() {
        if pred_named(
            ev,
            &a[0],
            x,
            p,
            "the filtering function passed to builtins.filter",
        )? {
            out.push(x.clone());
        }
    }
    if out.len() == l.len() {
        return Ok(Value::List(l));
    }
    Ok(Value::list(out))
}

pub fn foldl(ev: &mut Eval, a: &[Value], p: Pos) -> Result<Value> {
    ev.force_fn(&a[0], p)?;
    let l = ev.force_list(&a[2], p)?;
    let mut acc = a[1].clone();
    if l.is_empty() {
        return ev.force(&acc);
    }
    for x in l.iter() {
        acc = ev.call_n(&a[0], &[acc, x.clone()], p)?;
    }
    Ok(acc)
}

pub fn gen_list(ev: &mut Eval, a: &[Value], p: Pos) -> Result<Value> {
    let n = ev.force_int(&a[1], p)?;
    if n > 0 {
        ev.force_fn(&a[0], p)?;
    }
    if n < 0 {
        return err(format!("cannot create list of size {n}"), p);
    }
    ev.charge(n as u64, p)?;
    // Elements apply the (forced) function: look at it once, not per element.
    let f = match &a[0] {
        Value::Thunk(t) => t.done().unwrap_or_else(|| a[0].clone()),
        f => f.clone(),
    };
    if let Value::Lambda(c) = &f {
        return Ok(Value::list_from((0..n).map(|i| {
            Value::Thunk(ThunkRef::new(ThunkState::AppLambda(
                c.clone(),
                Value::Int(i),
            )))
        })));
    }
    Ok(Value::list_from(
        (0..n).map(|i| Value::app(f.clone(), Value::Int(i))),
    ))
}

pub fn head(ev: &mut Eval, a: &[Value], p: Pos) -> Result<Value> {
    let l = ev.force_list(&a[0], p)?;
    match l.first() {
        Some(x) => ev.force(x),
        None => err("'builtins.head' called on an empty list", p),
    }
}

pub fn tail(ev: &mut Eval, a: &[Value], p: Pos) -> Result<Value> {
    let l = ev.force_list(&a[0], p)?;
    if l.is_empty() {
        return err("'builtins.tail' called on an empty list", p);
    }
    Ok(Value::list_from(l[1..].iter().cloned()))
}

pub fn length(ev: &mut Eval, a: &[Value], p: Pos) -> Result<Value> {
    Ok(Value::Int(ev.force_list(&a[0], p)?.len() as i64))
}

pub fn map(ev: &mut Eval, a: &[Value], p: Pos) -> Result<Value> {
    let l = ev.force_list(&a[1], p)?;
    if l.is_empty() {
        return Ok(Value::List(l));
    }
    ev.force_fn(&a[0], p)?;
    let f = a[0].clone();
    Ok(Value::list_from(
        l.iter().map(|x| Value::app(f.clone(), x.clone())),
    ))
}

pub fn partition(ev: &mut Eval, a: &[Value], p: Pos) -> Result<Value> {
    ev.force_fn(&a[0], p)?;
    let l = ev.force_list(&a[1], p)?;
    let (mut r, mut w) = (Vec::new(), Vec::new());
    for x in l.iter() {
        if pred_named(
            ev,
            &a[0],
            x,
            p,
            "the partition function passed to builtins.partition",
        )? {
            r.push(x.clone())
        } else {
            w.push(x.clone())
        }
    }
    Ok(Value::attrs(Attrs::from_unsorted(vec![
        (sym("right"), Value::list(r), Pos::NONE),
        (sym("wrong"), Value::list(w), Pos::NONE),
    ])))
}

/// Stable merge sort with a fallible comparator.
pub fn sort(ev: &mut Eval, a: &[Value], p: Pos) -> Result<Value> {
    let l = ev.force_list(&a[1], p)?;
    if l.is_empty() {
        return Ok(Value::List(l));
    }
    ev.force_fn(&a[0], p)?;
    let mut v: Vec<Value> = l.to_vec();
    for x in v.iter_mut() {
        *x = ev.force(x)?;
    }
    let f = a[0].clone();
    let mut buf = v.clone();
    merge_sort(ev, &f, &mut v, &mut buf, p)?;
    Ok(Value::list(v))
}

fn less(ev: &mut Eval, f: &Value, x: &Value, y: &Value, p: Pos) -> Result<bool> {
    let r = ev.call_n(f, &[x.clone(), y.clone()], p)?;
    ev.force_bool(&r, p).trace(
        || {
            "while evaluating the return value of the sorting function passed to builtins.sort"
                .to_string()
        },
        Pos::NONE,
    )
}

fn merge_sort(ev: &mut Eval, f: &Value, v: &mut [Value], buf: &mut [Value], p: Pos) -> Result<()> {
    let n = v.len();
    if n <= 1 {
        return Ok(());
    }
    if n <= 8 {
        for i in 1..n {
            let mut j = i;
            while j > 0 && less(ev, f, &v[j], &v[j - 1], p)? {
                v.swap(j, j - 1);
                j -= 1;
            }
        }
        return Ok(());
    }
    let mid = n / 2;
    {
        let (l, r) = v.split_at_mut(mid);
        let (bl, br) = buf.split_at_mut(mid);
        merge_sort(ev, f, l, bl, p)?;
        merge_sort(ev, f, r, br, p)?;
    }
    let (mut i, mut j, mut k) = (0, mid, 0);
    while i < mid && j < n {
        if less(ev, f, &v[j], &v[i], p)? {
            buf[k] = v[j].clone();
            j += 1;
        } else {
            buf[k] = v[i].clone();
            i += 1;
        }
        k += 1;
    }
    while i < mid {
        buf[k] = v[i].clone();
        i += 1;
        k += 1;
    }
    while j < n {
        buf[k] = v[j].clone();
        j += 1;
        k += 1;
    }
    v.clone_from_slice(&buf[..n]);
    Ok(())
}

pub fn generic_closure(ev: &mut Eval, a: &[Value], p: Pos) -> Result<Value> {
    let in_args = || "in the attrset passed as argument to builtins.genericClosure".to_string();
    let args = ev.force_attrs(&a[0], p)?;
    let Some(start) = args.get(sym("startSet")).cloned() else {
        return err("attribute 'startSet' missing", p).trace(in_args, Pos::NONE);
    };
    let Some(op) = args.get(sym("operator")).cloned() else {
        return err("attribute 'operator' missing", p).trace(in_args, Pos::NONE);
    };
    let start = ev.force_list(&start, p).trace(
        || "while evaluating the 'startSet' attribute passed as argument to builtins.genericClosure".to_string(),
        Pos::NONE,
    )?;
    let op = ev.force_fn(&op, p).trace(
        || "while evaluating the 'operator' attribute passed as argument to builtins.genericClosure".to_string(),
        Pos::NONE,
    )?;
    let mut work: std::collections::VecDeque<Value> = start.iter().cloned().collect();
    let mut done: Vec<Value> = Vec::new();
    let key = sym("key");
    // Keys seen so far, sorted with Nix's ordering, with their elements.
    let mut seen: Vec<(Value, Value)> = Vec::new();
    while let Some(x) = work.pop_front() {
        let xv = ev.force(&x)?;
        let elem = || format!("in genericClosure element {}", crate::error::short(&xv));
        let s = ev.force_attrs(&xv, p).trace(elem, Pos::NONE)?;
        let Some(k) = s.get(key).cloned() else {
            return err("attribute 'key' missing", p).trace(elem, Pos::NONE);
        };
        let k = ev.force(&k).trace(elem, Pos::NONE)?;
        let (mut lo, mut hi) = (0, seen.len());
        let mut found = false;
        while lo < hi {
            let mid = (lo + hi) / 2;
            let ord = ev.compare(&k, &seen[mid].0, p).map_err(|mut e| {
                e.trace.push((
                    format!("with element {}", crate::error::short(&seen[mid].1)),
                    Pos::NONE,
                ));
                e.trace.push((
                    format!("while comparing element {}", crate::error::short(&xv)),
                    Pos::NONE,
                ));
                e
            })?;
            match ord {
                std::cmp::Ordering::Greater => lo = mid + 1,
                std::cmp::Ordering::Less => hi = mid,
                std::cmp::Ordering::Equal => {
                    found = true;
                    break;
                }
            }
        }
        if found {
            continue;
        }
        seen.insert(lo, (k, xv.clone()));
        done.push(xv.clone());
        let calling = || {
            format!(
                "while calling operator on genericClosure element {}",
                crate::error::short(&xv)
            )
        };
        let next = ev
            .call_n(&op, std::slice::from_ref(&xv), p)
            .trace(calling, Pos::NONE)?;
        let next = ev
            .force_list(&next, p)
            .trace(
                || "while evaluating the return value of the `operator` passed to builtins.genericClosure".to_string(),
                Pos::NONE,
            )
            .trace(calling, Pos::NONE)?;
        work.extend(next.iter().cloned());
    }
    Ok(Value::list(done))
}
