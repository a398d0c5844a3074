//! Printing values the way `nix-instantiate --eval` does, including Nix's
//! float formatting (`%g`-style, 6 significant digits) and string escaping.

use crate::error::Result;
use crate::eval::Eval;
use crate::value::*;
use std::collections::HashSet;

/// Formats a float as C++ `std::ostream << double` does (`%g`, precision 6).
pub fn fmt_float(f: f64) -> String {
    if f.is_nan() {
        return if f.is_sign_negative() {
            "-nan".into()
        } else {
            "nan".into()
        };
    }
    if f.is_infinite() {
        return if f < 0.0 { "-inf".into() } else { "inf".into() };
    }
    if f == 0.0 {
        return if f.is_sign_negative() {
            "-0".into()
        } else {
            "0".into()
        };
    }
    let sci = format!("{f:.5e}");
    let (mant, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if !(-4..6).contains(&exp) {
        let mant = trim_zeros(mant);
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mant}e{sign}{:02}", exp.abs())
    } else {
        let decimals = (5 - exp).max(0) as usize;
        trim_zeros(&format!("{f:.decimals$}")).to_string()
    }
}

fn trim_zeros(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

/// Appends the decimal digits of `i` (without the formatting machinery,
/// which is slow for the many integers of a large document).
pub fn push_int(i: i64, out: &mut Vec<u8>) {
    const PAIRS: &[u8; 200] = b"0001020304050607080910111213141516171819\
        2021222324252627282930313233343536373839\
        4041424344454647484950515253545556575859\
        6061626364656667686970717273747576777879\
        8081828384858687888990919293949596979899";
    let mut buf = [0u8; 20];
    let mut at = buf.len();
    let mut n = i.unsigned_abs();
    // Two digits per division.
    while n >= 100 {
        let d = (n % 100) as usize * 2;
        n /= 100;
        at -= 2;
        buf[at..at + 2].copy_from_slice(&PAIRS[d..d + 2]);
    }
    if n >= 10 {
        let d = n as usize * 2;
        at -= 2;
        buf[at..at + 2].copy_from_slice(&PAIRS[d..d + 2]);
    } else {
        at -= 1;
        buf[at] = b'0' + n as u8;
    }
    if i < 0 {
        out.push(b'-');
    }
    out.extend_from_slice(&buf[at..]);
}

/// Escapes a string as a Nix string literal (with quotes).
pub fn escape_string(b: &[u8], out: &mut Vec<u8>) {
    out.push(b'"');
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b'$' if b.get(i + 1) == Some(&b'{') => out.extend_from_slice(b"\\$"),
            c => out.push(c),
        }
        i += 1;
    }
    out.push(b'"');
}

/// Whether `name` can be printed as a bare identifier.
pub fn is_var_name(name: &[u8]) -> bool {
    match name.first() {
        Some(c) if c.is_ascii_alphabetic() || *c == b'_' => {}
        _ => return false,
    }
    if name == b"if"
        || name == b"then"
        || name == b"else"
        || name == b"assert"
        || name == b"with"
        || name == b"let"
        || name == b"in"
        || name == b"rec"
        || name == b"inherit"
        || name == b"or"
    {
        return false;
    }
    name.iter()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'\'' | b'-'))
}

/// Prints a value. With `force`, thunks are forced; otherwise unforced
/// thunks print as `«thunk»`.
pub fn print_value(ev: &mut Eval, v: &Value, force: bool) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    pv(ev, v, force, &mut out, &mut seen, true)?;
    Ok(out)
}

/// Prints the result of `cairn eval` as `nix-instantiate --eval` does:
/// like [`print_value`], but unevaluated parts print as `<CODE>`.
pub fn print_result(ev: &mut Eval, v: &Value, strict: bool) -> Result<Vec<u8>> {
    UNFORCED.with(|u| u.set("<CODE>"));
    let r = print_value(ev, v, strict);
    UNFORCED.with(|u| u.set("«thunk»"));
    r
}

thread_local! {
    /// How an unforced thunk prints.
    static UNFORCED: std::cell::Cell<&'static str> = const { std::cell::Cell::new("«thunk»") };
}

fn unforced(out: &mut Vec<u8>) {
    UNFORCED.with(|u| out.extend_from_slice(u.get().as_bytes()));
}

fn pv(
    ev: &mut Eval,
    v: &Value,
    force: bool,
    out: &mut Vec<u8>,
    seen: &mut HashSet<usize>,
    top: bool,
) -> Result<()> {
    if ev.depth > ev.opts.max_call_depth {
        out.extend_from_slice("«too deep»".as_bytes());
        return Ok(());
    }
    ev.depth += 1;
    let r = pv_inner(ev, v, force, out, seen, top);
    ev.depth -= 1;
    r
}

fn pv_inner(
    ev: &mut Eval,
    v: &Value,
    force: bool,
    out: &mut Vec<u8>,
    seen: &mut HashSet<usize>,
    top: bool,
) -> Result<()> {
    // Values are tracked by their cell (thunk) identity, as Nix does.
    let cell = match v {
        Value::Thunk(t) => Some(t.as_ptr() as *const u8 as usize),
        Value::Attrs(a) => Some(a.as_ptr() as usize),
        Value::List(l) => Some(l.as_ptr() as usize),
        _ => None,
    };
    let v = match v {
        Value::Thunk(t) => {
            if force {
                ev.force(v)?
            } else {
                match t.done() {
                    Some(x) => x,
                    None => {
                        unforced(out);
                        return Ok(());
                    }
                }
            }
        }
        v => v.clone(),
    };
    match &v {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::Int(i) => push_int(*i, out),
        Value::Float(f) => out.extend_from_slice(fmt_float(*f).as_bytes()),
        Value::Str(s) => escape_string(&s.bytes, out),
        Value::Path(p) => out.extend_from_slice(p),
        Value::Attrs(a) => {
            if a.is_empty() {
                out.extend_from_slice(b"{ }");
                return Ok(());
            }
            if !top && cell.is_some_and(|c| !seen.insert(c)) {
                out.extend_from_slice("«repeated»".as_bytes());
                return Ok(());
            }
            out.extend_from_slice(b"{ ");
            for (name, x, _) in a.sorted_by_name() {
                let nb = name.bytes();
                if is_var_name(nb) {
                    out.extend_from_slice(nb);
                } else {
                    escape_string(nb, out);
                }
                out.extend_from_slice(b" = ");
                pv(ev, x, force, out, seen, false)?;
                out.extend_from_slice(b"; ");
            }
            out.push(b'}');
        }
        Value::List(l) => {
            if l.is_empty() {
                out.extend_from_slice(b"[ ]");
                return Ok(());
            }
            if !top && cell.is_some_and(|c| !seen.insert(c)) {
                out.extend_from_slice("«repeated»".as_bytes());
                return Ok(());
            }
            out.extend_from_slice(b"[ ");
            for x in l.iter() {
                pv(ev, x, force, out, seen, false)?;
                out.push(b' ');
            }
            out.push(b']');
        }
        Value::Lambda(_) => out.extend_from_slice(b"<LAMBDA>"),
        Value::PrimOp(_) => out.extend_from_slice(b"<PRIMOP>"),
        Value::PrimOpApp(_) => out.extend_from_slice(b"<PRIMOP-APP>"),
        Value::Thunk(_) => unforced(out),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{fmt_float, push_int};

    #[test]
    fn integers_like_to_string() {
        let mut samples = vec![0, 1, -1, 9, 10, 99, 100, 101, 999, 1000, i64::MAX, i64::MIN];
        samples.extend((0..19).map(|e| 10i64.pow(e)));
        samples.extend((0..19).map(|e| 10i64.pow(e) - 1));
        samples.extend((0..19).map(|e| -(10i64.pow(e)) + 1));
        for i in samples {
            let mut out = b"x".to_vec();
            push_int(i, &mut out);
            assert_eq!(&out[1..], i.to_string().as_bytes(), "{i}");
        }
    }

    #[test]
    fn floats_like_cpp() {
        assert_eq!(fmt_float(3.4), "3.4");
        assert_eq!(fmt_float(1.0), "1");
        assert_eq!(fmt_float(1e20), "1e+20");
        assert_eq!(fmt_float(0.0001), "0.0001");
        assert_eq!(fmt_float(0.00001), "1e-05");
        assert_eq!(fmt_float(123456.0), "123456");
        assert_eq!(fmt_float(1234567.0), "1.23457e+06");
        assert_eq!(fmt_float(0.1 + 0.2), "0.3");
    }
}
