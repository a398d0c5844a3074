//! String builtins: conversion, slicing, replacement, regexes and
//! version strings.

use crate::error::{AddTrace, Result, err};
use crate::eval::Eval;
use crate::pos::Pos;
use crate::posix_regex::Regex;
use crate::symbol::sym;
use crate::value::*;
use std::rc::Rc;

fn str_ctx(ev: &mut Eval, v: &Value, p: Pos) -> Result<(Vec<u8>, Context)> {
    let mut ctx = Context::new();
    let s = ev.coerce_to_string(v, &mut ctx, false, false, p)?;
    Ok((s, ctx))
}

pub fn to_string(ev: &mut Eval, a: &[Value], p: Pos) -> Result<Value> {
    // A string is its own string form: share it.
    if let Value::Str(_) = &a[0] {
        return Ok(a[0].clone());
    }
    if let Value::Thunk(t) = &a[0]
        && let Some(v @ Value::Str(_)) = t.done()
    {
        return Ok(v);
    }
    let mut ctx = Context::new();
    let s = ev
        .coerce_to_string(&a[0], &mut ctx, true, false, p)
        .map_err(|mut e| {
            // Coercion errors name the argument; errors from evaluating it
            // (`throw`, `abort`) come through as they are.
            if e.kind == crate::error::ErrorKind::Eval && e.trace.len() < 64 {
                e.trace.push((
                    "while evaluating the first argument passed to builtins.toString".to_string(),
                    Pos::NONE,
                ));
            }
            e
        })?;
    Ok(Value::str_ctx(s, ctx))
}

pub fn base_name_of(ev: &mut Eval, a: &[Value], p: Pos) -> Result<Value> {
    let mut ctx = Context::new();
    let s = ev
        .coerce_to_string(&a[0], &mut ctx, false, false, p)
        .trace(
            || "while evaluating the first argument passed to builtins.baseNameOf".to_string(),
            Pos::NONE,
        )?;
    let mut t: &[u8] = &s;
    if t.ends_with(b"/") {
        t = &t[..t.len() - 1];
    }
    let b = match t.iter().rposition(|&c| c == b'/') {
        Some(i) => &t[i + 1..],
        None => t,
    };
    Ok(Value::str_ctx(b.to_vec(), ctx))
}

pub fn dir_of(ev: &mut Eval, a: &[Value], p: Pos) -> Result<Value> {
    let v = ev.force(&a[0])?;
    let is_path = matches!(v, Value::Path(_));
    let mut ctx = Context::new();
    let s = ev.coerce_to_string(&v, &mut ctx, false, false, p)?;
    let d: Vec<u8> = match s.iter().rposition(|&c| c == b'/') {
        None => b".".to_vec(),
        Some(0) => b"/".to_vec(),
        Some(i) => s[..i].to_vec(),
    };
    if is_path {
        Ok(Value::Path(Rc::new(d)))
    } else {
        Ok(Value::str_ctx(d, ctx))
    }
}

pub fn string_length(ev: &mut Eval, a: &[Value], p: Pos) -> Result<Value> {
    let (s, _) = str_ctx(ev, &a[0], p)?;
    Ok(Value::Int(s.len() as i64))
}

pub fn substring(ev: &mut Eval, a: &[Value], p: Pos) -> Result<Value> {
    let start = ev.force_int(&a[0], p)?;
    let len = ev.force_int(&a[1], p)?;
    let (s, ctx) = str_ctx(ev, &a[2], p)?;
    if start < 0 {
        return err("negative start position in 'substring'", p);
    }
    let start = (start as usize).min(s.len());
    let end = if len < 0 {
        s.len()
    } else {
        start.saturating_add(len as usize).min(s.len())
    };
    Ok(Value::str_ctx(s[start..end].to_vec(), ctx))
}

pub fn concat_strings_sep(ev: &mut Eval, a: &[Value], p: Pos) -> Result<Value> {
    let frame = |what: &'static str| {
        move || format!("while evaluating the {what} passed to builtins.concatStringsSep")
    };
    let sep_v = ev.force(&a[0])?;
    let Value::Str(sep_s) = &sep_v else {
        let e = crate::error::Error::new(
            crate::error::ErrorKind::Eval,
            crate::error::type_msg("a string", &sep_v),
            Pos::NONE,
        );
        return Err(e).trace(frame("first argument (the separator string)"), Pos::NONE);
    };
    let sep = sep_s.bytes.to_vec();
    let mut ctx = sep_s.ctx.as_deref().cloned().unwrap_or_default();
    let l = ev.force(&a[1])?;
    let Value::List(l) = l else {
        let e = crate::error::Error::new(
            crate::error::ErrorKind::Eval,
            crate::error::type_msg("a list", &l),
            Pos::NONE,
        );
        return Err(e).trace(
            frame("second argument (the list of strings to concat)"),
            Pos::NONE,
        );
    };
    let mut out = Vec::new();
    for (i, x) in l.iter().enumerate() {
        if i > 0 {
            out.extend_from_slice(&sep);
        }
        let s = ev.coerce_to_string(x, &mut ctx, false, true, p).trace(
            || "while evaluating one element of the list of strings to concat passed to builtins.concatStringsSep".to_string(),
            Pos::NONE,
        )?;
        out.extend_from_slice(&s);
    }
    ev.charge(out.len() as u64 / 64, p)?;
    Ok(Value::str_ctx(out, ctx))
}

pub fn replace_strings(ev: &mut Eval, a: &[Value], p: Pos) -> Result<Value> {
    let from = ev.force_list(&a[0], p)?;
    let to = ev.force_list(&a[1], p)?;
    if from.len() != to.len() {
        return err(
            "'from' and 'to' arguments passed to builtins.replaceStrings have different lengths",
            p,
        );
    }
    let mut pats = Vec::new();
    for f in from.iter() {
        let f = ev.force_str(f, p).trace(
            || {
                "while evaluating one of the strings to replace passed to builtins.replaceStrings"
                    .to_string()
            },
            Pos::NONE,
        )?;
        pats.push(f.bytes.to_vec());
    }
    let mut tos: Vec<Option<Vec<u8>>> = vec![None; to.len()];
    let sv = ev.force_str(&a[2], p)?;
    let s = sv.bytes.to_vec();
    let mut ctx = sv.ctx.as_deref().cloned().unwrap_or_default();
    let mut out = Vec::new();
    let mut i = 0;
    loop {
        let mut matched = false;
        for (k, pat) in pats.iter().enumerate() {
            if s[i..].starts_with(pat) {
                if tos[k].is_none() {
                    let t = ev.force_str(&to[k], p).trace(
                        || "while evaluating one of the replacement strings passed to builtins.replaceStrings".to_string(),
                        Pos::NONE,
                    )?;
                    if let Some(c) = &t.ctx {
                        ctx.extend(c.iter().cloned());
                    }
                    let t = t.bytes.to_vec();
                    tos[k] = Some(t);
                }
                out.extend_from_slice(tos[k].as_deref().unwrap_or_default());
                if pat.is_empty() {
                    if i < s.len() {
                        out.push(s[i]);
                    }
                    i += 1;
                } else {
                    i += pat.len();
                }
                matched = true;
                break;
            }
        }
        if !matched {
            if i < s.len() {
                out.push(s[i]);
            }
            i += 1;
        }
        if i > s.len() {
            break;
        }
        if i == s.len() && !pats.iter().any(|p| p.is_empty()) {
            break;
        }
    }
    Ok(Value::str_ctx(out, ctx))
}

fn compile(ev: &mut Eval, v: &Value, p: Pos) -> Result<Regex> {
    let re = ev.force_str(v, p)?;
    Regex::new(&re.bytes)
        .map_err(|e| crate::error::Error::new(crate::error::ErrorKind::Eval, e.to_string(), p))
}

fn groups(s: &[u8], m: &[Option<(usize, usize)>]) -> Value {
    Value::list(
        m.iter()
            .skip(1)
            .map(|g| match g {
                Some((a, b)) => Value::str(s[*a..*b].to_vec()),
                None => Value::Null,
            })
            .collect(),
    )
}

pub fn match_(ev: &mut Eval, a: &[Value], p: Pos) -> Result<Value> {
    let re = compile(ev, &a[0], p)?;
    let (s, _) = str_ctx(ev, &a[1], p)?;
    match re.full_match(&s) {
        Some(m) => Ok(groups(&s, &m)),
        None => Ok(Value::Null),
    }
}

pub fn split(ev: &mut Eval, a: &[Value], p: Pos) -> Result<Value> {
    let re = compile(ev, &a[0], p)?;
    let (s, _) = str_ctx(ev, &a[1], p)?;
    let mut out = Vec::new();
    let mut prev = 0;
    // The matches std::sregex_iterator yields, as Nix iterates them.
    for m in re.split_matches(&s) {
        let Some((ms, me)) = m[0] else { break };
        out.push(Value::str(s[prev..ms].to_vec()));
        out.push(groups(&s, &m));
        prev = me;
    }
    out.push(Value::str(s[prev.min(s.len())..].to_vec()));
    Ok(Value::list(out))
}

fn next_component<'a>(s: &'a [u8], p: &mut usize) -> &'a [u8] {
    while *p < s.len() && (s[*p] == b'.' || s[*p] == b'-') {
        *p += 1;
    }
    let start = *p;
    if *p < s.len() && s[*p].is_ascii_digit() {
        while *p < s.len() && s[*p].is_ascii_digit() {
            *p += 1;
        }
    } else {
        while *p < s.len() && !s[*p].is_ascii_digit() && s[*p] != b'.' && s[*p] != b'-' {
            *p += 1;
        }
    }
    &s[start..*p]
}

fn as_num(c: &[u8]) -> Option<i64> {
    if c.is_empty() {
        return None;
    }
    std::str::from_utf8(c).ok()?.parse().ok()
}

fn components_lt(c1: &[u8], c2: &[u8]) -> bool {
    let n1 = as_num(c1);
    let n2 = as_num(c2);
    match (n1, n2) {
        (Some(a), Some(b)) => a < b,
        _ if c1.is_empty() && n2.is_some() => true,
        _ if c1 == b"pre" && c2 != b"pre" => true,
        _ if c2 == b"pre" => false,
        (_, Some(_)) => true,
        (Some(_), _) => false,
        _ => c1 < c2,
    }
}

/// Nix's version comparison.
pub fn compare_versions_bytes(v1: &[u8], v2: &[u8]) -> i64 {
    let (mut p1, mut p2) = (0, 0);
    while p1 < v1.len() || p2 < v2.len() {
        let c1 = next_component(v1, &mut p1);
        let c2 = next_component(v2, &mut p2);
        if components_lt(c1, c2) {
            return -1;
        }
        if components_lt(c2, c1) {
            return 1;
        }
    }
    0
}

pub fn compare_versions(ev: &mut Eval, a: &[Value], p: Pos) -> Result<Value> {
    let x = ev.force_str(&a[0], p)?;
    let y = ev.force_str(&a[1], p)?;
    Ok(Value::Int(compare_versions_bytes(&x.bytes, &y.bytes)))
}

pub fn split_version(ev: &mut Eval, a: &[Value], p: Pos) -> Result<Value> {
    let s = ev.force_str(&a[0], p)?.bytes.to_vec();
    let mut out = Vec::new();
    let mut i = 0;
    while i < s.len() {
        let c = next_component(&s, &mut i);
        if c.is_empty() {
            break;
        }
        out.push(Value::str(c.to_vec()));
    }
    Ok(Value::list(out))
}

pub fn parse_drv_name(ev: &mut Eval, a: &[Value], p: Pos) -> Result<Value> {
    let s = ev.force_str(&a[0], p)?.bytes.to_vec();
    let mut name = s.clone();
    let mut version = Vec::new();
    for i in 0..s.len() {
        if s[i] == b'-' && i + 1 < s.len() && !s[i + 1].is_ascii_alphabetic() {
            name = s[..i].to_vec();
            version = s[i + 1..].to_vec();
            break;
        }
    }
    Ok(Value::attrs(Attrs::from_unsorted(vec![
        (sym("name"), Value::str(name), Pos::NONE),
        (sym("version"), Value::str(version), Pos::NONE),
    ])))
}
