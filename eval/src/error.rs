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
        let shown = frames.first().is_some_and(|(_, p)| *p == self.pos);
        if !shown && let Some(loc) = self.pos.location() {
            out.push_str(&format!("\n       at {loc}:"));
            out.push_str(&snippet(self.pos, 7));
        }
        out
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
