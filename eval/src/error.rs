//! The evaluator's error type: a message, its kind (which decides whether
//! `builtins.tryEval` may catch it), a source position and a trace of the
//! contexts the error passed through.

use crate::pos::Pos;

/// What kind of failure an error is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// `throw`: catchable by `tryEval`.
    Throw,
    /// A failed `assert`: catchable by `tryEval`.
    Assert,
    /// `abort`: never caught.
    Abort,
    /// A parse error.
    Parse,
    /// Any other evaluation error (type errors, missing attributes, ...).
    Eval,
    /// Resource limits (stack depth, step limits).
    Limit,
}

/// An evaluation or parse error.
#[derive(Clone, Debug, thiserror::Error)]
#[error("{msg}")]
pub struct Error {
    pub kind: ErrorKind,
    pub msg: String,
    pub pos: Pos,
    /// Context frames, innermost first: (description, position).
    pub trace: Vec<(String, Pos)>,
    /// "Did you mean ...?", shown after the message and its position.
    pub suggestion: Option<String>,
}

/// Result alias used throughout the evaluator.
pub type Result<T> = std::result::Result<T, Box<Error>>;

impl Error {
    /// Builds a boxed error.
    pub fn new(kind: ErrorKind, msg: impl Into<String>, pos: Pos) -> Box<Error> {
        Box::new(Error {
            kind,
            msg: msg.into(),
            pos,
            trace: Vec::new(),
            suggestion: None,
        })
    }

    /// Renders the error the way the CLI prints it: with `show_trace`,
    /// the context frames (outermost first) precede the message.
    pub fn render(&self, show_trace: bool) -> String {
        let mut out = String::from("error:");
        let frames = if show_trace { &self.trace[..] } else { &[][..] };
        for (what, pos) in frames.iter().rev() {
            out.push_str("\n       … ");
            out.push_str(what);
            if let Some(loc) = pos.location() {
                out.push_str(&format!("\n         at {loc}:"));
                out.push_str(&snippet(*pos, 7));
            }
            out.push('\n');
        }
        if frames.is_empty() {
            out.push(' ');
        } else {
            out.push_str("\n       error: ");
        }
        out.push_str(&self.msg);
        let shown = frames.iter().any(|(_, p)| *p == self.pos);
        if !shown && let Some(loc) = self.pos.location() {
            out.push_str(&format!("\n       at {loc}:"));
            out.push_str(&snippet(self.pos, 7));
        }
        if let Some(s) = &self.suggestion {
            out.push_str("\n       ");
            out.push_str(s);
        }
        out
    }
}

/// The edit distance between two names.
fn levenshtein(a: &[u8], b: &[u8]) -> usize {
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, &ca) in a.iter().enumerate() {
        cur[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let subst = prev[j] + usize::from(ca != cb);
            cur[j + 1] = subst.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

/// "Did you mean ...?" for a name that was not found, listing up to five
/// of `candidates` within edit distance 2, closest first (as Nix does).
pub fn did_you_mean<'a>(
    query: &[u8],
    candidates: impl Iterator<Item = &'a [u8]>,
) -> Option<String> {
    let mut close: Vec<(usize, &[u8])> = candidates
        .map(|c| (levenshtein(query, c), c))
        .filter(|(d, _)| *d <= 2)
        .collect();
    close.sort();
    close.dedup();
    close.truncate(5);
    let names: Vec<String> = close
        .iter()
        .map(|(_, c)| String::from_utf8_lossy(c).into_owned())
        .collect();
    match names.as_slice() {
        [] => None,
        [one] => Some(format!("Did you mean {one}?")),
        [rest @ .., last] => Some(format!(
            "Did you mean one of {} or {last}?",
            rest.join(", ")
        )),
    }
}

/// Shorthand for an `Eval`-kind error.
pub fn err<T>(msg: impl Into<String>, pos: Pos) -> Result<T> {
    Err(Error::new(ErrorKind::Eval, msg, pos))
}

/// Adds a trace frame to an error result.
pub trait AddTrace<T> {
    fn trace(self, what: impl FnOnce() -> String, pos: Pos) -> Result<T>;
}

impl<T> AddTrace<T> for Result<T> {
    fn trace(self, what: impl FnOnce() -> String, pos: Pos) -> Result<T> {
        self.map_err(|mut e| {
            if e.trace.len() < 64 {
                e.trace.push((what(), pos));
            }
            if !e.pos.is_some() {
                e.pos = pos;
            }
            e
        })
    }
}

/// Renders a warning with its position, as Nix does.
pub fn render_warning(msg: &str, pos: Pos) -> String {
    let mut out = format!("warning: {msg}");
    if let Some(loc) = pos.location() {
        out.push_str(&format!("\n         at {loc}:"));
        out.push_str(&snippet(pos, 9));
    }
    out
}

/// The source lines around a position with a caret, indented by `ind`.
pub fn snippet(pos: Pos, ind: usize) -> String {
    let Some(loc) = pos.location() else {
        return String::new();
    };
    let Some(text) = crate::pos::file_text(pos.file()) else {
        return String::new();
    };
    let lines: Vec<&str> = text.split('\n').collect();
    let l = loc.line as usize;
    let w = ind + 6;
    let mut out = String::new();
    let line = |out: &mut String, n: usize| {
        if let Some(t) = lines.get(n - 1) {
            let t = t.trim_end_matches('\r');
            if t.is_empty() {
                out.push_str(&format!("\n{:>w$}|", n));
            } else {
                out.push_str(&format!("\n{:>w$}| {}", n, t));
            }
        }
    };
    if l > 1 {
        line(&mut out, l - 1);
    }
    line(&mut out, l);
    out.push_str(&format!(
        "\n{:>w$}| {}^",
        "",
        " ".repeat(loc.column as usize - 1)
    ));
    if l < lines.len() {
        line(&mut out, l + 1);
    }
    out
}

/// Nix's type-error message: "expected a set but found an integer: 1".
pub fn type_msg(expected: &str, v: &crate::value::Value) -> String {
    let mut shown = Vec::new();
    short_value(v, 0, &mut shown);
    format!(
        "expected {expected} but found {}: {}",
        v.type_desc(),
        String::from_utf8_lossy(&shown)
    )
}

/// A short rendering of a value for error messages (nothing is forced).
pub fn short(v: &crate::value::Value) -> String {
    let mut out = Vec::new();
    short_value(v, 0, &mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// Renders `v` into `out` (see [`short`]).
fn short_value(v: &crate::value::Value, depth: usize, out: &mut Vec<u8>) {
    use crate::value::Value;
    match v {
        Value::Attrs(a) if a.is_empty() => out.extend_from_slice(b"{ }"),
        Value::List(l) if l.is_empty() => out.extend_from_slice(b"[ ]"),
        Value::Attrs(a) if depth < 2 => {
            out.extend_from_slice(b"{ ");
            for (name, x, _) in a.sorted_by_name().into_iter().take(8) {
                out.extend_from_slice(name.bytes());
                out.extend_from_slice(b" = ");
                short_value(x, depth + 1, out);
                out.extend_from_slice(b"; ");
            }
            if a.len() > 8 {
                out.extend_from_slice("«".as_bytes());
                out.extend_from_slice(format!("{} attributes elided", a.len() - 8).as_bytes());
                out.extend_from_slice("» ".as_bytes());
            }
            out.push(b'}');
        }
        Value::List(l) if depth < 2 => {
            out.extend_from_slice(b"[ ");
            for x in l.iter().take(8) {
                short_value(x, depth + 1, out);
                out.push(b' ');
            }
            if l.len() > 8 {
                out.extend_from_slice(format!("«{} items elided» ", l.len() - 8).as_bytes());
            }
            out.push(b']');
        }
        Value::Attrs(_) | Value::List(_) => out.extend_from_slice("«…»".as_bytes()),
        Value::Thunk(t) => match t.done() {
            Some(x) => short_value(&x, depth, out),
            None => out.extend_from_slice("«thunk»".as_bytes()),
        },
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::Int(i) => out.extend_from_slice(i.to_string().as_bytes()),
        Value::Float(f) => out.extend_from_slice(crate::print::fmt_float(*f).as_bytes()),
        Value::Str(s) => crate::print::escape_string(&s.bytes, out),
        Value::Path(p) => out.extend_from_slice(p),
        Value::Lambda(c) => {
            let name = c.lam.name.map(|n| format!(" {n}")).unwrap_or_default();
            let at = c
                .lam
                .pos
                .location()
                .map(|l| format!(" @ {l}"))
                .unwrap_or_default();
            out.extend_from_slice(format!("«lambda{name}{at}»").as_bytes())
        }
        Value::PrimOp(p) => out.extend_from_slice(format!("«primop {}»", p.name).as_bytes()),
        Value::PrimOpApp(p) => {
            out.extend_from_slice(format!("«partially applied primop {}»", p.op.name).as_bytes())
        }
    }
}
