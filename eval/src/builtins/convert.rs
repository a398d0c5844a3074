//! Conversions: JSON, TOML, XML and flake references.

use crate::error::{Error, ErrorKind, Result, err};
use crate::eval::Eval;
use crate::pos::Pos;
use crate::print::{fmt_float, push_int};
use crate::symbol::{intern, sym};
use crate::value::*;

fn eerr(msg: String, p: Pos) -> Box<Error> {
    Error::new(ErrorKind::Eval, msg, p)
}

// ------------------------------------------------------------------ JSON

/// Rejects strings with NUL bytes, which Nix strings cannot hold.
pub fn no_nul(s: &str, p: Pos) -> Result<()> {
    if s.contains('\0') {
        return err(
            format!(
                "input string '{}' cannot be represented as Nix string because it contains null bytes",
                s.replace('\0', "␀")
            ),
            p,
        );
    }
    Ok(())
}

fn json_value(j: serde_json::Value, p: Pos) -> Result<Value> {
    Ok(match j {
        serde_json::Value::Null => Value::Null,
        serde_json::Value::Bool(b) => Value::Bool(b),
        serde_json::Value::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => Value::Int(i),
            (None, Some(u)) => {
                return err(
                    format!("unsigned json number {u} outside of Nix integer range"),
                    p,
                );
            }
            _ => Value::Float(n.as_f64().unwrap_or(0.0)),
        },
        serde_json::Value::String(s) => {
            no_nul(&s, p)?;
            Value::str(s.into_bytes())
        }
        serde_json::Value::Array(a) => {
            let mut v = Vec::with_capacity(a.len());
            for x in a {
                v.push(json_value(x, p)?);
            }
            Value::list(v)
        }
        serde_json::Value::Object(o) => {
            let mut v = Vec::with_capacity(o.len());
            for (k, x) in o {
                no_nul(&k, p)?;
                v.push((intern(k.as_bytes()), json_value(x, p)?, Pos::NONE));
            }
            Value::attrs(Attrs::from_unsorted(v))
        }
    })
}

pub fn from_json(ev: &mut Eval, a: &[Value], p: Pos) -> Result<Value> {
    let s = ev.force_str(&a[0], p)?;
    match serde_json::from_slice::<serde_json::Value>(&s.bytes) {
        Ok(j) => json_value(j, p),
        Err(e) => err(format!("while parsing JSON: {e}"), p),
    }
}

fn json_str(b: &[u8], out: &mut Vec<u8>) {
    out.push(b'"');
    // Most strings need no escaping: copy runs of plain bytes at once.
    let plain = |c: u8| c >= 0x20 && c != b'"' && c != b'\\';
    let mut rest = b;
    while !rest.is_empty() {
        let run = rest.iter().position(|&c| !plain(c)).unwrap_or(rest.len());
        out.extend_from_slice(&rest[..run]);
        rest = &rest[run..];
        let Some((&c, tail)) = rest.split_first() else {
            break;
        };
        rest = tail;
        match c {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            // Nix 2.8 has no short form for backspace and form feed.
            c if c < 0x20 => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.extend_from_slice(b"\\u00");
                out.push(HEX[usize::from(c >> 4)]);
                out.push(HEX[usize::from(c & 15)]);
            }
            c => out.push(c),
        }
    }
    out.push(b'"');
}

/// The length of `b` as a JSON string literal (see [`json_str`]).
fn json_str_len(b: &[u8]) -> usize {
    let mut n = 2 + b.len();
    for &c in b {
        match c {
            b'"' | b'\\' | b'\n' | b'\r' | b'\t' => n += 1,
            c if c < 0x20 => n += 5,
            _ => {}
        }
    }
    n
}

/// The number of bytes [`push_int`] writes for `i`.
fn int_len(i: i64) -> usize {
    let digits = i.unsigned_abs().checked_ilog10().unwrap_or(0) as usize + 1;
    usize::from(i < 0) + digits
}

/// `v` forced; borrowed when it is already evaluated, as every value is
/// by the time it is written (no reference counting per node of a large
/// document), else forced into `slot`.
#[inline]
fn forced<'a>(ev: &mut Eval, v: &'a Value, slot: &'a mut Option<Value>) -> Result<&'a Value> {
    match v {
        Value::Thunk(t) => match t.done_ref() {
            Some(x) => Ok(x),
            None => Ok(slot.insert(ev.force(v)?)),
        },
        v => Ok(v),
    }
}

/// What the measuring pass of [`to_json_bytes`] leaves for the writing
/// pass, in the order it is needed: the strings that took running code to
/// make, and the name order of each set's entries (indices as bytes for
/// sets of up to 256 entries, else as words).
#[derive(Default)]
struct JsonPlan {
    made: Vec<Vec<u8>>,
    order: Vec<u8>,
    wide_order: Vec<u32>,
}

/// Reads a [`JsonPlan`] back.
struct JsonReplay<'a> {
    made: std::vec::IntoIter<Vec<u8>>,
    order: std::slice::Iter<'a, u8>,
    wide_order: std::slice::Iter<'a, u32>,
}

/// Serialises a value as JSON, collecting string context.
///
/// Two passes: the first forces the value, checks it, collects the
/// context, sorts each set's names and measures the document; the second
/// writes it into a buffer reserved at exactly that size. A large document
/// is thus neither copied as its buffer grows nor held twice while it is.
/// Strings that take running code to produce (`__toString`, paths copied
/// to the store) are made once, in the first pass, and kept for the
/// second, as is the name order of every set.
pub fn to_json_bytes(
    ev: &mut Eval,
    v: &Value,
    ctx: &mut Context,
    p: Pos,
    out: &mut Vec<u8>,
) -> Result<()> {
    let mut plan = JsonPlan::default();
    let len = json_measure(ev, v, ctx, p, &mut plan)?;
    out.reserve_exact(len);
    let start = out.len();
    let mut replay = JsonReplay {
        made: plan.made.into_iter(),
        order: plan.order.iter(),
        wide_order: plan.wide_order.iter(),
    };
    json_write(ev, v, p, &mut replay, out)?;
    debug_assert_eq!(out.len() - start, len, "JSON length measured wrongly");
    Ok(())
}

fn json_measure(
    ev: &mut Eval,
    v: &Value,
    ctx: &mut Context,
    p: Pos,
    plan: &mut JsonPlan,
) -> Result<usize> {
    ev.enter(p)?;
    let r = json_measure_inner(ev, v, ctx, p, plan);
    ev.depth -= 1;
    r
}

fn json_measure_inner(
    ev: &mut Eval,
    v: &Value,
    ctx: &mut Context,
    p: Pos,
    plan: &mut JsonPlan,
) -> Result<usize> {
    let mut slot = None;
    let v = forced(ev, v, &mut slot)?;
    Ok(match v {
        Value::Null => 4,
        Value::Bool(b) => 4 + usize::from(!*b),
        Value::Int(i) => int_len(*i),
        // Nix 2.8 writes floats as `std::ostream` does, like its value printer.
        Value::Float(f) => fmt_float(*f).len(),
        Value::Str(s) => {
            if let Some(c) = &s.ctx {
                ctx.extend(c.iter().cloned());
            }
            if let Err(e) = std::str::from_utf8(&s.bytes) {
                let i = e.valid_up_to();
                return err(
                    format!(
                        "JSON serialization error: [json.exception.type_error.316] invalid UTF-8 byte at index {i}: 0x{:02X}",
                        s.bytes[i]
                    ),
                    p,
                );
            }
            json_str_len(&s.bytes)
        }
        Value::Path(_) => {
            let s = ev.coerce_to_string(v, ctx, false, true, p)?;
            let n = json_str_len(&s);
            plan.made.push(s);
            n
        }
        Value::Attrs(a) => {
            if a.get(ev.s.to_string).is_some() {
                let s = ev.coerce_to_string(v, ctx, false, true, p)?;
                let n = json_str_len(&s);
                plan.made.push(s);
                return Ok(n);
            }
            if let Some(o) = a.get(ev.s.out_path) {
                return json_measure(ev, o, ctx, p, plan);
            }
            // Braces, and a colon and a comma (one too many) per entry.
            let mut n = 2 + (2 * a.len()).saturating_sub(1);
            let sorted = a.sorted_by_name();
            let base = a.entries.as_ptr_range().start.addr();
            for e in &sorted {
                let i = (std::ptr::from_ref(*e).addr() - base) / std::mem::size_of::<Entry>();
                if a.len() <= 256 {
                    plan.order.push(i as u8);
                } else {
                    plan.wide_order.push(i as u32);
                }
            }
            for (name, x, _) in sorted {
                n += json_str_len(name.bytes());
                n += json_measure(ev, x, ctx, p, plan)?;
            }
            n
        }
        Value::List(l) => {
            let mut n = 2 + l.len().saturating_sub(1);
            for x in l.iter() {
                n += json_measure(ev, x, ctx, p, plan)?;
            }
            n
        }
        other => return err(format!("cannot convert {} to JSON", other.type_desc()), p),
    })
}

/// Writes a value [`json_measure`] has forced and checked, replaying the
/// strings it made and the name orders it found, in the same order.
fn json_write(
    ev: &mut Eval,
    v: &Value,
    p: Pos,
    plan: &mut JsonReplay,
    out: &mut Vec<u8>,
) -> Result<()> {
    let mut slot = None;
    let v = forced(ev, v, &mut slot)?;
    let mut take = |out: &mut Vec<u8>| match plan.made.next() {
        Some(s) => {
            json_str(&s, out);
            Ok(())
        }
        None => err("internal error: JSON string missing", p),
    };
    match v {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::Int(i) => push_int(*i, out),
        Value::Float(f) => out.extend_from_slice(fmt_float(*f).as_bytes()),
        Value::Str(s) => json_str(&s.bytes, out),
        Value::Path(_) => take(out)?,
        Value::Attrs(a) => {
            if a.get(ev.s.to_string).is_some() {
                return take(out);
            }
            if let Some(o) = a.get(ev.s.out_path) {
                return json_write(ev, o, p, plan, out);
            }
            out.push(b'{');
            // This set's order comes before those of the sets inside it.
            let order: smallvec::SmallVec<[usize; 8]> = if a.len() <= 256 {
                plan.order
                    .by_ref()
                    .take(a.len())
                    .map(|&i| usize::from(i))
                    .collect()
            } else {
                plan.wide_order
                    .by_ref()
                    .take(a.len())
                    .map(|&i| i as usize)
                    .collect()
            };
            if order.len() != a.len() {
                return err("internal error: JSON set order missing", p);
            }
            for (k, i) in order.into_iter().enumerate() {
                let Some((name, x, _)) = a.entries.get(i) else {
                    return err("internal error: JSON set order missing", p);
                };
                if k > 0 {
                    out.push(b',');
                }
                json_str(name.bytes(), out);
                out.push(b':');
                json_write(ev, x, p, plan, out)?;
            }
            out.push(b'}');
        }
        Value::List(l) => {
            out.push(b'[');
            for (i, x) in l.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                json_write(ev, x, p, plan, out)?;
            }
            out.push(b']');
        }
        other => return err(format!("cannot convert {} to JSON", other.type_desc()), p),
    }
    Ok(())
}

pub fn to_json(ev: &mut Eval, a: &[Value], p: Pos) -> Result<Value> {
    let mut out = Vec::new();
    let mut ctx = Context::new();
    to_json_bytes(ev, &a[0], &mut ctx, p, &mut out)?;
    Ok(Value::str_ctx(out, ctx))
}

// ------------------------------------------------------------------ TOML

fn fmt_datetime(d: &toml::value::Datetime) -> String {
    let mut s = String::new();
    if let Some(date) = &d.date {
        s.push_str(&format!(
            "{:04}-{:02}-{:02}",
            date.year, date.month, date.day
        ));
    }
    if let Some(t) = &d.time {
        if d.date.is_some() {
            s.push('T');
        }
        s.push_str(&format!("{:02}:{:02}:{:02}", t.hour, t.minute, t.second));
        let ns = t.nanosecond;
        if ns != 0 {
            if ns % 1_000_000 == 0 {
                s.push_str(&format!(".{:03}", ns / 1_000_000));
            } else if ns % 1000 == 0 {
                s.push_str(&format!(".{:06}", ns / 1000));
            } else {
                s.push_str(&format!(".{ns:09}"));
            }
        }
    }
    match &d.offset {
        Some(toml::value::Offset::Z) => s.push('Z'),
        Some(toml::value::Offset::Custom { minutes }) => {
            let sign = if *minutes < 0 { '-' } else { '+' };
            let m = minutes.unsigned_abs();
            s.push_str(&format!("{sign}{:02}:{:02}", m / 60, m % 60));
        }
        _ => {}
    }
    s
}

fn toml_value(ev: &Eval, t: toml::Value, p: Pos) -> Result<Value> {
    Ok(match t {
        toml::Value::String(s) => {
            no_nul(&s, p).map_err(|mut e| {
                e.msg = format!("while parsing TOML: error: {}", e.msg);
                e
            })?;
            Value::str(s.into_bytes())
        }
        toml::Value::Integer(i) => Value::Int(i),
        toml::Value::Float(f) => Value::Float(f),
        toml::Value::Boolean(b) => Value::Bool(b),
        toml::Value::Datetime(d) => {
            if !ev.opts.timestamps {
                return err("while parsing TOML: Dates and times are not supported", p);
            }
            Value::attrs(Attrs::from_unsorted(vec![
                (sym("_type"), Value::str(&b"timestamp"[..]), Pos::NONE),
                (
                    sym("value"),
                    Value::str(fmt_datetime(&d).into_bytes()),
                    Pos::NONE,
                ),
            ]))
        }
        toml::Value::Array(a) => {
            let mut v = Vec::new();
            for x in a {
                v.push(toml_value(ev, x, p)?);
            }
            Value::list(v)
        }
        toml::Value::Table(t) => {
            let mut v = Vec::new();
            for (k, x) in t {
                no_nul(&k, p).map_err(|mut e| {
                    e.msg = format!("while parsing TOML: error: {}", e.msg);
                    e
                })?;
                v.push((intern(k.as_bytes()), toml_value(ev, x, p)?, Pos::NONE));
            }
            Value::attrs(Attrs::from_unsorted(v))
        }
    })
}

pub fn from_toml(ev: &mut Eval, a: &[Value], p: Pos) -> Result<Value> {
    let s = ev.force_str(&a[0], p)?;
    let text = String::from_utf8_lossy(&s.bytes);
    match text.parse::<toml::Table>() {
        Ok(t) => toml_value(ev, toml::Value::Table(t), p),
        Err(e) => err(format!("while parsing TOML: {}", e.message()), p),
    }
}

// ------------------------------------------------------------------- XML

/// Escapes an XML attribute value the way Nix does (only `"<>&` and
/// newlines; other bytes, tabs and apostrophes included, go out as they are).
fn xml_escape(b: &[u8], out: &mut Vec<u8>) {
    for &c in b {
        match c {
            b'"' => out.extend_from_slice(b"&quot;"),
            b'<' => out.extend_from_slice(b"&lt;"),
            b'>' => out.extend_from_slice(b"&gt;"),
            b'&' => out.extend_from_slice(b"&amp;"),
            b'\n' => out.extend_from_slice(b"&#xA;"),
            c => out.push(c),
        }
    }
}

fn indent(out: &mut Vec<u8>, n: usize) {
    out.extend(std::iter::repeat_n(b' ', n * 2));
}

fn leaf(out: &mut Vec<u8>, n: usize, tag: &str, attrs: &[(&str, &[u8])]) {
    indent(out, n);
    out.push(b'<');
    out.extend_from_slice(tag.as_bytes());
    for (k, v) in attrs {
        out.push(b' ');
        out.extend_from_slice(k.as_bytes());
        out.extend_from_slice(b"=\"");
        xml_escape(v, out);
        out.push(b'"');
    }
    out.extend_from_slice(b" />\n");
}

/// How a value is written as XML: `strict` forces every value (otherwise
/// unevaluated ones show as `<unevaluated />`), `location` adds the
/// definition position of attributes and functions (the CLI does this
/// unless `--no-location`; `builtins.toXML` never does).
#[derive(Clone, Copy, Debug)]
pub struct XmlStyle {
    pub strict: bool,
    pub location: bool,
}

/// The ` column=".." line=".." ` part (Nix writes XML attributes in
/// alphabetical order, so `name` goes in between and `path` last).
struct XmlLoc {
    column: String,
    line: String,
    path: String,
}

fn xml_loc(how: XmlStyle, pos: Pos) -> Option<XmlLoc> {
    if !how.location {
        return None;
    }
    let l = pos.location()?;
    Some(XmlLoc {
        column: l.column.to_string(),
        line: l.line.to_string(),
        path: l.file.to_string(),
    })
}

fn xml_open_with_loc(
    out: &mut Vec<u8>,
    n: usize,
    tag: &str,
    name: Option<&[u8]>,
    loc: &Option<XmlLoc>,
) {
    indent(out, n);
    out.push(b'<');
    out.extend_from_slice(tag.as_bytes());
    let attr = |out: &mut Vec<u8>, k: &str, v: &[u8]| {
        out.push(b' ');
        out.extend_from_slice(k.as_bytes());
        out.extend_from_slice(b"=\"");
        xml_escape(v, out);
        out.push(b'"');
    };
    if let Some(l) = loc {
        attr(out, "column", l.column.as_bytes());
        attr(out, "line", l.line.as_bytes());
    }
    if let Some(name) = name {
        attr(out, "name", name);
    }
    if let Some(l) = loc {
        attr(out, "path", l.path.as_bytes());
    }
    out.extend_from_slice(b">\n");
}

/// What is collected while writing one XML document: the string context
/// and the derivations already shown.
#[derive(Default)]
pub struct XmlState {
    ctx: Context,
    drvs_seen: std::collections::HashSet<Vec<u8>>,
}

fn xml_attrs(
    ev: &mut Eval,
    a: &Attrs,
    n: usize,
    how: XmlStyle,
    st: &mut XmlState,
    out: &mut Vec<u8>,
    p: Pos,
) -> Result<()> {
    for (name, x, pos) in a.sorted_by_name() {
        xml_open_with_loc(out, n, "attr", Some(name.bytes()), &xml_loc(how, *pos));
        xml_value(ev, x, n + 1, how, st, out, p)?;
        indent(out, n);
        out.extend_from_slice(b"</attr>\n");
    }
    Ok(())
}

/// Serialises a value as Nix's XML format.
pub fn xml_value(
    ev: &mut Eval,
    v: &Value,
    n: usize,
    how: XmlStyle,
    st: &mut XmlState,
    out: &mut Vec<u8>,
    p: Pos,
) -> Result<()> {
    ev.enter(p)?;
    let r = xml_value_inner(ev, v, n, how, st, out, p);
    ev.depth -= 1;
    r
}

fn xml_value_inner(
    ev: &mut Eval,
    v: &Value,
    n: usize,
    how: XmlStyle,
    st: &mut XmlState,
    out: &mut Vec<u8>,
    p: Pos,
) -> Result<()> {
    let v = if how.strict {
        ev.force(v)?
    } else {
        match v {
            Value::Thunk(t) => match t.done() {
                Some(v) => v,
                None => {
                    leaf(out, n, "unevaluated", &[]);
                    return Ok(());
                }
            },
            v => v.clone(),
        }
    };
    match &v {
        Value::Null => leaf(out, n, "null", &[]),
        Value::Bool(b) => leaf(
            out,
            n,
            "bool",
            &[("value", if *b { b"true" } else { b"false" })],
        ),
        Value::Int(i) => leaf(out, n, "int", &[("value", i.to_string().as_bytes())]),
        Value::Float(f) => leaf(out, n, "float", &[("value", fmt_float(*f).as_bytes())]),
        Value::Str(s) => {
            if let Some(c) = &s.ctx {
                st.ctx.extend(c.iter().cloned());
            }
            leaf(out, n, "string", &[("value", &s.bytes)])
        }
        Value::Path(x) => leaf(out, n, "path", &[("value", x)]),
        Value::Attrs(a) => {
            if ev.is_derivation(a)? {
                let mut at: Vec<(&str, Vec<u8>)> = Vec::new();
                for (key, k) in [("drvPath", ev.s.drv_path), ("outPath", ev.s.out_path)] {
                    if let Some(x) = a.get(k).cloned() {
                        let x = if how.strict {
                            ev.force(&x)?
                        } else {
                            match &x {
                                Value::Thunk(t) => t.done().unwrap_or(Value::Null),
                                v => v.clone(),
                            }
                        };
                        if let Value::Str(s) = &x {
                            at.push((key, s.bytes.to_vec()));
                        }
                    }
                }
                indent(out, n);
                out.extend_from_slice(b"<derivation");
                for (k, v) in &at {
                    out.extend_from_slice(format!(" {k}=\"").as_bytes());
                    xml_escape(v, out);
                    out.push(b'"');
                }
                out.extend_from_slice(b">\n");
                // Each derivation's attributes are shown once (by drvPath).
                let drv_path = at.iter().find(|(k, _)| *k == "drvPath").map(|(_, v)| v);
                match drv_path {
                    Some(d) if st.drvs_seen.insert(d.clone()) => {
                        xml_attrs(ev, a, n + 1, how, st, out, p)?
                    }
                    _ => leaf(out, n + 1, "repeated", &[]),
                }
                indent(out, n);
                out.extend_from_slice(b"</derivation>\n");
            } else {
                indent(out, n);
                out.extend_from_slice(b"<attrs>\n");
                xml_attrs(ev, a, n + 1, how, st, out, p)?;
                indent(out, n);
                out.extend_from_slice(b"</attrs>\n");
            }
        }
        Value::List(l) => {
            indent(out, n);
            out.extend_from_slice(b"<list>\n");
            for x in l.iter() {
                xml_value(ev, x, n + 1, how, st, out, p)?;
            }
            indent(out, n);
            out.extend_from_slice(b"</list>\n");
        }
        Value::Lambda(c) => {
            xml_open_with_loc(out, n, "function", None, &xml_loc(how, c.lam.pos));
            match &c.lam.formals {
                Some(fs) => {
                    indent(out, n + 1);
                    out.extend_from_slice(b"<attrspat");
                    if c.lam.ellipsis {
                        out.extend_from_slice(b" ellipsis=\"1\"");
                    }
                    if let Some(a) = c.lam.arg {
                        out.extend_from_slice(b" name=\"");
                        xml_escape(a.bytes(), out);
                        out.push(b'"');
                    }
                    out.extend_from_slice(b">\n");
                    let mut names: Vec<_> = fs.iter().map(|f| f.name).collect();
                    names.sort_by(|a, b| a.bytes().cmp(b.bytes()));
                    for f in names {
                        leaf(out, n + 2, "attr", &[("name", f.bytes())]);
                    }
                    indent(out, n + 1);
                    out.extend_from_slice(b"</attrspat>\n");
                }
                None => {
                    let name = c.lam.arg.map(|s| s.bytes()).unwrap_or_default();
                    leaf(out, n + 1, "varpat", &[("name", name)]);
                }
            }
            indent(out, n);
            out.extend_from_slice(b"</function>\n");
        }
        _ => leaf(out, n, "unevaluated", &[]),
    }
    Ok(())
}

/// A whole XML document for a value (forced to weak head normal form).
pub fn xml_document(
    ev: &mut Eval,
    v: &Value,
    how: XmlStyle,
    ctx: &mut Context,
    p: Pos,
) -> Result<Vec<u8>> {
    let v = ev.force(v)?;
    let mut out = b"<?xml version='1.0' encoding='utf-8'?>\n<expr>\n".to_vec();
    let mut st = XmlState::default();
    xml_value(ev, &v, 1, how, &mut st, &mut out, p)?;
    ctx.append(&mut st.ctx);
    out.extend_from_slice(b"</expr>\n");
    Ok(out)
}

pub fn to_xml(ev: &mut Eval, a: &[Value], p: Pos) -> Result<Value> {
    let mut ctx = Context::new();
    let how = XmlStyle {
        strict: true,
        location: false,
    };
    let out = xml_document(ev, &a[0], how, &mut ctx, p)?;
    Ok(Value::str_ctx(out, ctx))
}

// ----------------------------------------------------------- flake refs

pub fn flake_ref_to_string(ev: &mut Eval, a: &[Value], p: Pos) -> Result<Value> {
    let attrs = ev.force_attrs(&a[0], p)?;
    let mut fields: Vec<(String, String)> = Vec::new();
    for (name, v, _) in attrs.sorted_by_name() {
        let v = ev.force(v)?;
        let s = match &v {
            Value::Str(s) => s.lossy(),
            Value::Int(i) if *i < 0 => {
                return err(
                    format!("negative value given for flake ref attr {name}: {i}"),
                    p,
                );
            }
            Value::Int(i) => i.to_string(),
            Value::Bool(b) => {
                if *b {
                    "1".into()
                } else {
                    "0".into()
                }
            }
            other => {
                return err(
                    format!(
                        "flake reference attribute '{name}' is {}",
                        other.type_desc()
                    ),
                    p,
                );
            }
        };
        fields.push((name.text(), s));
    }
    let get = |k: &str| fields.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let Some(ty) = get("type") else {
        return err("flake reference attribute set is missing 'type'", p);
    };
    let mut params: Vec<(String, String)> = Vec::new();
    let base = match ty.as_str() {
        "github" | "gitlab" | "sourcehut" => {
            let owner = get("owner").unwrap_or_default();
            let repo = get("repo").unwrap_or_default();
            let mut s = format!("{ty}:{owner}/{repo}");
            if let Some(r) = get("rev").or_else(|| get("ref")) {
                s.push('/');
                s.push_str(&r);
            }
            for (k, v) in &fields {
                if !matches!(k.as_str(), "type" | "owner" | "repo" | "ref" | "rev") {
                    params.push((k.clone(), v.clone()));
                }
            }
            s
        }
        "indirect" => {
            let mut s = format!("flake:{}", get("id").unwrap_or_default());
            for k in ["ref", "rev"] {
                if let Some(r) = get(k) {
                    s.push('/');
                    s.push_str(&r);
                }
            }
            s
        }
        _ => {
            let url = get("url").or_else(|| get("path")).unwrap_or_default();
            for (k, v) in &fields {
                if !matches!(k.as_str(), "type" | "url" | "path") {
                    params.push((k.clone(), v.clone()));
                }
            }
            if ty == "path" {
                format!("path:{url}")
            } else {
                format!("{ty}+{url}")
            }
        }
    };
    let mut s = base;
    for (i, (k, v)) in params.iter().enumerate() {
        s.push(if i == 0 { '?' } else { '&' });
        s.push_str(&format!("{k}={v}"));
    }
    Ok(Value::str(s.into_bytes()))
}

pub fn parse_flake_ref(ev: &mut Eval, a: &[Value], p: Pos) -> Result<Value> {
    let s = ev.force_str(&a[0], p)?.lossy();
    let (main, query) = s.split_once('?').unwrap_or((&s, ""));
    let mut out: Vec<(crate::symbol::Sym, Value, Pos)> = Vec::new();
    let mut put = |k: &str, v: &str| out.push((sym(k), Value::str(v.as_bytes()), Pos::NONE));
    if let Some((ty, rest)) = main.split_once(':') {
        match ty {
            "github" | "gitlab" | "sourcehut" => {
                let parts: Vec<&str> = rest.split('/').collect();
                if parts.len() < 2 {
                    return Err(eerr(format!("'{s}' is not a valid flake reference"), p));
                }
                put("type", ty);
                put("owner", parts[0]);
                put("repo", parts[1]);
                if parts.len() > 2 {
                    let r = parts[2..].join("/");
                    if r.len() == 40 && r.bytes().all(|c| c.is_ascii_hexdigit()) {
                        put("rev", &r);
                    } else {
                        put("ref", &r);
                    }
                }
            }
            "path" => {
                put("type", "path");
                put("path", rest);
            }
            "flake" => {
                put("type", "indirect");
                let parts: Vec<&str> = rest.split('/').collect();
                put("id", parts[0]);
                if parts.len() > 1 {
                    put("ref", parts[1]);
                }
            }
            _ => {
                let (t, url) = match ty.split_once('+') {
                    Some((t, scheme)) => (t.to_string(), format!("{scheme}:{rest}")),
                    None => (ty.to_string(), main.to_string()),
                };
                put("type", &t);
                put("url", &url);
            }
        }
    } else {
        put("type", "indirect");
        put("id", main);
    }
    for kv in query.split('&').filter(|x| !x.is_empty()) {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        put(k, v);
    }
    Ok(Value::attrs(Attrs::from_unsorted(out)))
}
