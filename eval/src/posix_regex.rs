//! POSIX extended regular expressions for `builtins.match` and
//! `builtins.split`.
//!
//! C++ Nix implements both builtins with libstdc++'s `std::regex` in
//! `std::regex::extended` mode.  This module reproduces that dialect and,
//! as closely as practical, its matching results, while guaranteeing
//! polynomial running time and bounded stack usage.
//!
//! # Dialect
//!
//! * Byte oriented: every byte is one character; bytes `0x80..=0xff` belong
//!   to no character class, and ranges compare bytes as *signed* `char`s
//!   (so `[\x01-\xff]` is an invalid range, as in libstdc++).
//! * Alternation `|`, groups `( )`, quantifiers `* + ?`, `{m}`, `{m,}` and
//!   `{m,n}` (quantifiers may be stacked: `a**`, `a{2}{3}`), `.` (any byte
//!   but NUL), the anchors `^` and `$` (which cannot be quantified).
//! * Escapes: only `\` followed by one of `^ $ \ . * + ? ( ) [ { |` is
//!   accepted and denotes that byte literally; any other escape (`\n`,
//!   `\]`, `\d`, ...) is an error, as in the strict-ANSI libstdc++ build
//!   Nix uses.  `]` and `}` outside brackets are ordinary characters.
//! * Bracket expressions: negation `[^...]`, a leading `]` is literal,
//!   `-` is literal first or last, ranges `a-z`, classes `[:alpha:]` (also
//!   the libstdc++ extensions `[:d:]`, `[:w:]`, `[:s:]`; names are
//!   case-insensitive), collating symbols `[.hyphen.]` and equivalence
//!   classes `[=a=]` using libstdc++'s table of C-locale names.
//!   Backslash is literal inside brackets.
//! * Counted repetitions are limited to [`MAX_REPEAT`] and the compiled
//!   program to [`MAX_INSTS`] states.
//!
//! # Matching semantics
//!
//! libstdc++ runs a depth-first search over its NFA.  Alternatives are tried
//! left to right and loops greedily; a loop whose body matched the empty
//! string may be re-entered at the same position at most twice.  For
//! `regex_match` ([`Regex::full_match`]) the first path in that order which
//! consumes the whole input determines the submatches.  For `regex_search`
//! ([`Regex::search`]) the leftmost starting position wins; at that position
//! every alternative is explored, but a loop's "stop here" branch is only
//! explored when continuing the loop found no match at all, and the first
//! path reaching the longest explored end determines the submatches.
//!
//! This module evaluates the same search order with memoisation over
//! `(state, position, loop-entry counts)`, using an explicit stack, so
//! the running time is polynomial in the pattern and input sizes (a
//! budget turns off the loop-count refinement in pathological cases).
//! [`Regex::split_matches`] reproduces `std::sregex_iterator`, including its
//! retry rule after empty matches, which is what `builtins.split` iterates.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// A small multiplicative hasher for memo keys (which are trusted integers).
#[derive(Default)]
struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }
    fn write_u32(&mut self, v: u32) {
        self.write_u64(u64::from(v));
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = (self.0.rotate_left(5) ^ v).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
}

type MemoMap = HashMap<(u32, u32, u64), u32, BuildHasherDefault<KeyHasher>>;

/// Largest accepted bound in a counted repetition `{m,n}`.
pub const MAX_REPEAT: u32 = 1000;
/// Largest accepted number of compiled program states.
pub const MAX_INSTS: usize = 100_000;
/// Deepest accepted nesting of groups and quantifiers.
const MAX_DEPTH: usize = 200;
/// Dense memo entries allocated at most per evaluation; further entries go
/// to a hash map.
const DENSE_LIMIT: usize = 1 << 22;
/// Memo entries keyed by non-zero loop counts allowed per branching state and
/// input position (plus a constant) before the count refinement is dropped.
const COUNT_BUDGET_FACTOR: usize = 8;
const COUNT_BUDGET_BASE: usize = 4096;

/// An error in a regular expression.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegexError {
    /// A trailing backslash or an escaped ordinary character.
    #[error("invalid escape in regular expression")]
    Escape,
    /// Unbalanced parentheses, or a quantifier with nothing to repeat.
    #[error("mismatched '(' and ')' in regular expression")]
    Paren,
    /// An unterminated bracket expression.
    #[error("mismatched '[' and ']' in regular expression")]
    Brack,
    /// An unterminated `{...}` repetition.
    #[error("mismatched '{{' and '}}' in regular expression")]
    Brace,
    /// Malformed contents of a `{...}` repetition.
    #[error("invalid range in '{{}}' in regular expression")]
    BadBrace,
    /// A character range whose end precedes its start, or a misplaced `-`.
    #[error("invalid character range in regular expression")]
    Range,
    /// An unknown character class name.
    #[error("invalid character class in regular expression")]
    Ctype,
    /// An unknown collating element or equivalence class.
    #[error("invalid collating element in regular expression")]
    Collate,
    /// A counted repetition bound above [`MAX_REPEAT`].
    #[error("repetition count exceeds the limit of {MAX_REPEAT} in regular expression")]
    RepeatTooLarge,
    /// The compiled program would exceed [`MAX_INSTS`] states.
    #[error("regular expression is too large (more than {MAX_INSTS} states)")]
    TooLarge,
    /// Groups or quantifiers nested too deeply.
    #[error("regular expression nests too deeply")]
    TooDeep,
}

/// Submatch spans: index 0 is the whole match, index `i` capture group `i`;
/// `None` marks a group that did not participate.
pub type Spans = Vec<Option<(usize, usize)>>;

// ---------------------------------------------------------------------------
// Syntax
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, Copy)]
enum RepKind {
    Star,
    Plus,
    Opt,
    Range(u32, Option<u32>),
}

#[derive(Debug)]
enum Node {
    Empty,
    Lit(u8),
    Any,
    Class(Box<[bool; 256]>),
    Bol,
    Eol,
    Group(u32, Box<Node>),
    Concat(Vec<Node>),
    Alt(Vec<Node>),
    Repeat(Box<Node>, RepKind),
}

impl Node {
    /// Whether the node can match without consuming input (anchors count as
    /// empty).
    fn nullable(&self) -> bool {
        match self {
            Node::Empty | Node::Bol | Node::Eol => true,
            Node::Lit(_) | Node::Any | Node::Class(_) => false,
            Node::Group(_, e) => e.nullable(),
            Node::Concat(v) => v.iter().all(Node::nullable),
            Node::Alt(v) => v.iter().any(Node::nullable),
            Node::Repeat(e, kind) => match kind {
                RepKind::Star | RepKind::Opt => true,
                RepKind::Plus => e.nullable(),
                RepKind::Range(min, _) => *min == 0 || e.nullable(),
            },
        }
    }

    /// The bytes of a pattern without any special construct.
    fn literal(&self) -> Option<Vec<u8>> {
        match self {
            Node::Lit(b) => Some(vec![*b]),
            Node::Concat(v) => {
                let mut out = Vec::with_capacity(v.len());
                for n in v {
                    match n {
                        Node::Lit(b) => out.push(*b),
                        _ => return None,
                    }
                }
                Some(out)
            }
            _ => None,
        }
    }
}

/// Bytes that may follow a backslash (libstdc++'s special characters of the
/// extended grammar).
const ESCAPABLE: &[u8] = b"^$\\.*+?()[{|";

/// libstdc++'s collating element names, indexed by byte value.
const COLLATE_NAMES: [&str; 128] = [
    "NUL",
    "SOH",
    "STX",
    "ETX",
    "EOT",
    "ENQ",
    "ACK",
    "alert",
    "backspace",
    "tab",
    "newline",
    "vertical-tab",
    "form-feed",
    "carriage-return",
    "SO",
    "SI",
    "DLE",
    "DC1",
    "DC2",
    "DC3",
    "DC4",
    "NAK",
    "SYN",
    "ETB",
    "CAN",
    "EM",
    "SUB",
    "ESC",
    "IS4",
    "IS3",
    "IS2",
    "IS1",
    "space",
    "exclamation-mark",
    "quotation-mark",
    "number-sign",
    "dollar-sign",
    "percent-sign",
    "ampersand",
    "apostrophe",
    "left-parenthesis",
    "right-parenthesis",
    "asterisk",
    "plus-sign",
    "comma",
    "hyphen",
    "period",
    "slash",
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "colon",
    "semicolon",
    "less-than-sign",
    "equals-sign",
    "greater-than-sign",
    "question-mark",
    "commercial-at",
    "A",
    "B",
    "C",
    "D",
    "E",
    "F",
    "G",
    "H",
    "I",
    "J",
    "K",
    "L",
    "M",
    "N",
    "O",
    "P",
    "Q",
    "R",
    "S",
    "T",
    "U",
    "V",
    "W",
    "X",
    "Y",
    "Z",
    "left-square-bracket",
    "backslash",
    "right-square-bracket",
    "circumflex",
    "underscore",
    "grave-accent",
    "a",
    "b",
    "c",
    "d",
    "e",
    "f",
    "g",
    "h",
    "i",
    "j",
    "k",
    "l",
    "m",
    "n",
    "o",
    "p",
    "q",
    "r",
    "s",
    "t",
    "u",
    "v",
    "w",
    "x",
    "y",
    "z",
    "left-curly-bracket",
    "vertical-line",
    "right-curly-bracket",
    "tilde",
    "DEL",
];

fn collate_lookup(name: &[u8]) -> Option<u8> {
    COLLATE_NAMES
        .iter()
        .position(|n| n.as_bytes() == name)
        .and_then(|i| u8::try_from(i).ok())
}

/// Membership of `b` in a named class of the C locale.
fn class_contains(name: &str, b: u8) -> bool {
    if b >= 0x80 {
        return false;
    }
    match name {
        "alnum" => b.is_ascii_alphanumeric(),
        "alpha" => b.is_ascii_alphabetic(),
        "blank" => b == b' ' || b == b'\t',
        "cntrl" => b.is_ascii_control(),
        "digit" | "d" => b.is_ascii_digit(),
        "graph" => b.is_ascii_graphic(),
        "lower" => b.is_ascii_lowercase(),
        "print" => b.is_ascii_graphic() || b == b' ',
        "punct" => b.is_ascii_punctuation(),
        "space" | "s" => matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r'),
        "upper" => b.is_ascii_uppercase(),
        "xdigit" => b.is_ascii_hexdigit(),
        "w" => b.is_ascii_alphanumeric() || b == b'_',
        _ => false,
    }
}

fn class_name(name: &[u8]) -> Option<&'static str> {
    const NAMES: [&str; 15] = [
        "d", "w", "s", "alnum", "alpha", "blank", "cntrl", "digit", "graph", "lower", "print",
        "punct", "space", "upper", "xdigit",
    ];
    let lower: Vec<u8> = name.iter().map(u8::to_ascii_lowercase).collect();
    NAMES
        .iter()
        .copied()
        .find(|n| n.as_bytes() == lower.as_slice())
}

/// A token inside a bracket expression.
enum BTok {
    End,
    Dash,
    Char(u8),
    Coll(Vec<u8>),
    Equiv(Vec<u8>),
    Class(Vec<u8>),
}

/// What the bracket parser saw last (libstdc++'s `_BracketState`).
#[derive(Clone, Copy)]
enum Last {
    None,
    Char(u8),
    Class,
}

struct Parser<'a> {
    pat: &'a [u8],
    pos: usize,
    groups: u32,
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<u8> {
        self.pat.get(self.pos).copied()
    }

    fn parse(pat: &'a [u8]) -> Result<(Node, u32), RegexError> {
        let mut p = Parser {
            pat,
            pos: 0,
            groups: 0,
        };
        let node = p.disjunction(0)?;
        if p.pos != pat.len() {
            return Err(RegexError::Paren);
        }
        Ok((node, p.groups))
    }

    fn disjunction(&mut self, depth: usize) -> Result<Node, RegexError> {
        if depth > MAX_DEPTH {
            return Err(RegexError::TooDeep);
        }
        let mut alts = vec![self.alternative(depth)?];
        while self.peek() == Some(b'|') {
            self.pos += 1;
            alts.push(self.alternative(depth)?);
        }
        Ok(if alts.len() == 1 {
            alts.pop().unwrap_or(Node::Empty)
        } else {
            Node::Alt(alts)
        })
    }

    fn alternative(&mut self, depth: usize) -> Result<Node, RegexError> {
        let mut items = Vec::new();
        while let Some(n) = self.term(depth)? {
            items.push(n);
        }
        Ok(match items.len() {
            0 => Node::Empty,
            1 => items.pop().unwrap_or(Node::Empty),
            _ => Node::Concat(items),
        })
    }

    fn term(&mut self, depth: usize) -> Result<Option<Node>, RegexError> {
        match self.peek() {
            Some(b'^') => {
                self.pos += 1;
                return Ok(Some(Node::Bol));
            }
            Some(b'$') => {
                self.pos += 1;
                return Ok(Some(Node::Eol));
            }
            _ => {}
        }
        let Some(mut atom) = self.atom(depth)? else {
            return Ok(None);
        };
        let mut nest = depth;
        loop {
            let kind = match self.peek() {
                Some(b'*') => {
                    self.pos += 1;
                    RepKind::Star
                }
                Some(b'+') => {
                    self.pos += 1;
                    RepKind::Plus
                }
                Some(b'?') => {
                    self.pos += 1;
                    RepKind::Opt
                }
                Some(b'{') => {
                    self.pos += 1;
                    self.brace()?
                }
                _ => break,
            };
            nest += 1;
            if nest > MAX_DEPTH {
                return Err(RegexError::TooDeep);
            }
            atom = Node::Repeat(Box::new(atom), kind);
        }
        Ok(Some(atom))
    }

    fn number(&mut self) -> Result<Option<u32>, RegexError> {
        let start = self.pos;
        let mut v: u64 = 0;
        while let Some(c @ b'0'..=b'9') = self.peek() {
            self.pos += 1;
            v = v.saturating_mul(10).saturating_add(u64::from(c - b'0'));
        }
        if self.pos == start {
            return Ok(None);
        }
        if v > u64::from(MAX_REPEAT) {
            return Err(RegexError::RepeatTooLarge);
        }
        Ok(u32::try_from(v).ok())
    }

    /// Parses the rest of `{m}`, `{m,}` or `{m,n}` after the `{`.
    fn brace(&mut self) -> Result<RepKind, RegexError> {
        if self.peek().is_none() {
            return Err(RegexError::Brace);
        }
        let Some(min) = self.number()? else {
            return Err(RegexError::BadBrace);
        };
        let mut max = Some(min);
        match self.peek() {
            Some(b',') => {
                self.pos += 1;
                max = self.number()?;
            }
            Some(b'}') => {}
            None => return Err(RegexError::Brace),
            Some(_) => return Err(RegexError::BadBrace),
        }
        match self.peek() {
            Some(b'}') => self.pos += 1,
            None => return Err(RegexError::Brace),
            Some(_) => return Err(RegexError::BadBrace),
        }
        if let Some(m) = max
            && m < min
        {
            return Err(RegexError::BadBrace);
        }
        Ok(RepKind::Range(min, max))
    }

    fn atom(&mut self, depth: usize) -> Result<Option<Node>, RegexError> {
        let Some(c) = self.peek() else {
            return Ok(None);
        };
        let node = match c {
            b'.' => {
                self.pos += 1;
                Node::Any
            }
            b'\\' => {
                let Some(&e) = self.pat.get(self.pos + 1) else {
                    return Err(RegexError::Escape);
                };
                if !ESCAPABLE.contains(&e) {
                    return Err(RegexError::Escape);
                }
                self.pos += 2;
                Node::Lit(e)
            }
            b'(' => {
                self.pos += 1;
                self.groups += 1;
                let index = self.groups;
                let inner = self.disjunction(depth + 1)?;
                if self.peek() != Some(b')') {
                    return Err(RegexError::Paren);
                }
                self.pos += 1;
                Node::Group(index, Box::new(inner))
            }
            b'[' => {
                self.pos += 1;
                self.bracket()?
            }
            b')' | b'|' | b'*' | b'+' | b'?' | b'{' => return Ok(None),
            _ => {
                self.pos += 1;
                Node::Lit(c)
            }
        };
        Ok(Some(node))
    }

    /// Reads `name` up to the closing `<delim>]` of `[:name:]` and friends.
    fn eat_class(&mut self, delim: u8) -> Result<Vec<u8>, RegexError> {
        let start = self.pos;
        while let Some(c) = self.peek() {
            if c == delim {
                break;
            }
            self.pos += 1;
        }
        let name = self.pat[start..self.pos].to_vec();
        if self.peek() == Some(delim) && self.pat.get(self.pos + 1) == Some(&b']') {
            self.pos += 2;
            Ok(name)
        } else if delim == b':' {
            Err(RegexError::Ctype)
        } else {
            Err(RegexError::Collate)
        }
    }

    fn btok(&mut self, at_start: bool) -> Result<BTok, RegexError> {
        let Some(c) = self.peek() else {
            return Err(RegexError::Brack);
        };
        self.pos += 1;
        Ok(match c {
            b'-' => BTok::Dash,
            b'[' => match self.peek() {
                None => return Err(RegexError::Brack),
                Some(b'.') => {
                    self.pos += 1;
                    BTok::Coll(self.eat_class(b'.')?)
                }
                Some(b':') => {
                    self.pos += 1;
                    BTok::Class(self.eat_class(b':')?)
                }
                Some(b'=') => {
                    self.pos += 1;
                    BTok::Equiv(self.eat_class(b'=')?)
                }
                Some(_) => BTok::Char(b'['),
            },
            b']' if !at_start => BTok::End,
            _ => BTok::Char(c),
        })
    }

    /// Parses a bracket expression after its `[`.
    fn bracket(&mut self) -> Result<Node, RegexError> {
        let mut negate = false;
        if self.peek() == Some(b'^') {
            negate = true;
            self.pos += 1;
        }
        let mut set = [false; 256];
        let mut last = Last::None;
        let mut tok = self.btok(true)?;
        match tok {
            BTok::Char(c) => {
                last = Last::Char(c);
                tok = self.btok(false)?;
            }
            BTok::Dash => {
                last = Last::Char(b'-');
                tok = self.btok(false)?;
            }
            _ => {}
        }
        fn push_char(set: &mut [bool; 256], last: &mut Last, c: u8) {
            if let Last::Char(l) = *last {
                set[usize::from(l)] = true;
            }
            *last = Last::Char(c);
        }
        fn push_class(set: &mut [bool; 256], last: &mut Last) {
            if let Last::Char(l) = *last {
                set[usize::from(l)] = true;
            }
            *last = Last::Class;
        }
        fn range(set: &mut [bool; 256], lo: u8, hi: u8) -> Result<(), RegexError> {
            // libstdc++ compares plain (signed) chars.
            let (l, h) = (lo as i8, hi as i8);
            if l > h {
                return Err(RegexError::Range);
            }
            for b in l..=h {
                set[usize::from(b as u8)] = true;
            }
            Ok(())
        }
        loop {
            match tok {
                BTok::End => break,
                BTok::Coll(name) => {
                    let c = collate_lookup(&name).ok_or(RegexError::Collate)?;
                    push_char(&mut set, &mut last, c);
                }
                BTok::Equiv(name) => {
                    push_class(&mut set, &mut last);
                    let c = collate_lookup(&name).ok_or(RegexError::Collate)?;
                    // Equivalence uses the case-folded primary key.
                    set[usize::from(c.to_ascii_lowercase())] = true;
                    set[usize::from(c.to_ascii_uppercase())] = true;
                }
                BTok::Class(name) => {
                    push_class(&mut set, &mut last);
                    let name = class_name(&name).ok_or(RegexError::Ctype)?;
                    for b in 0..=255u8 {
                        if class_contains(name, b) {
                            set[usize::from(b)] = true;
                        }
                    }
                }
                BTok::Char(c) => push_char(&mut set, &mut last, c),
                BTok::Dash => {
                    let next = self.btok(false)?;
                    if let BTok::End = next {
                        push_char(&mut set, &mut last, b'-');
                        break;
                    }
                    match last {
                        Last::Char(l) => {
                            match next {
                                BTok::Char(h) => range(&mut set, l, h)?,
                                BTok::Dash => range(&mut set, l, b'-')?,
                                _ => return Err(RegexError::Range),
                            }
                            last = Last::None;
                        }
                        Last::Class | Last::None => return Err(RegexError::Range),
                    }
                }
            }
            tok = self.btok(false)?;
        }
        if let Last::Char(l) = last {
            set[usize::from(l)] = true;
        }
        if negate {
            for b in set.iter_mut() {
                *b = !*b;
            }
        }
        Ok(Node::Class(Box::new(set)))
    }
}

// ---------------------------------------------------------------------------
// Program
// ---------------------------------------------------------------------------

/// Marks a repetition whose entry count is not tracked.
const NO_SLOT: u8 = u8::MAX;
/// Number of repetitions whose entry counts fit in the 64-bit count word.
const MAX_SLOTS: u8 = 32;
const PLACEHOLDER: u32 = u32::MAX;

#[derive(Debug, Clone, Copy)]
enum Inst {
    Byte(u8, u32),
    Any(u32),
    Set(u32, u32),
    /// Records the current position in a submatch slot (`2g` start,
    /// `2g + 1` end).
    Save(u32, u32),
    Bol(u32),
    Eol(u32),
    /// Tries the first branch, then the second.
    Alt(u32, u32),
    /// libstdc++'s greedy repeat node: the body first (at most twice at one
    /// position when the slot is tracked), the exit only when the body
    /// found nothing.
    Repeat {
        body: u32,
        exit: u32,
        slot: u8,
    },
    Accept,
}

#[derive(Debug, Clone)]
struct Prog {
    insts: Vec<Inst>,
    sets: Vec<[bool; 256]>,
    /// Per state: the tracked repetitions whose counts can matter there.
    masks: Vec<u64>,
    /// Per branching state: its offset in a row of the dense memo.
    dec: Vec<u32>,
    /// Per branching state: the tracked repetitions in its mask when there
    /// are at most two (`(n, first, second)`), whose count combinations get
    /// dense memo cells; `n > 2` leaves non-zero counts to the hash map.
    dslots: Vec<(u8, u8, u8)>,
    /// Dense memo cells per input position.
    row: usize,
    start: u32,
}

struct Compiler {
    insts: Vec<Inst>,
    sets: Vec<[bool; 256]>,
    masks: Vec<u64>,
    slots: u8,
    loop_depth: u32,
    scope_mask: u64,
}

impl Compiler {
    fn push(&mut self, inst: Inst) -> Result<u32, RegexError> {
        if self.insts.len() >= MAX_INSTS {
            return Err(RegexError::TooLarge);
        }
        let id = u32::try_from(self.insts.len()).map_err(|_| RegexError::TooLarge)?;
        self.insts.push(inst);
        self.masks.push(0);
        Ok(id)
    }

    fn set(&mut self, id: u32, inst: Inst) {
        if let Some(slot) = self.insts.get_mut(id as usize) {
            *slot = inst;
        }
    }

    /// Allocates a count slot for a repetition with a nullable body inside
    /// a loop.
    fn slot(&mut self, nullable: bool) -> u8 {
        if !nullable || self.loop_depth == 0 || self.slots >= MAX_SLOTS {
            return NO_SLOT;
        }
        let s = self.slots;
        self.slots += 1;
        self.scope_mask |= 3u64 << (2 * u32::from(s));
        s
    }

    /// Runs `f` as the body of a loop, assigning count masks to the states
    /// of outermost loops.
    fn in_loop(
        &mut self,
        f: impl FnOnce(&mut Self) -> Result<u32, RegexError>,
    ) -> Result<u32, RegexError> {
        let outermost = self.loop_depth == 0;
        let first = self.insts.len();
        if outermost {
            self.scope_mask = 0;
        }
        self.loop_depth += 1;
        let r = f(self);
        self.loop_depth -= 1;
        let r = r?;
        if outermost {
            let mask = self.scope_mask;
            for m in &mut self.masks[first..] {
                *m = mask;
            }
        }
        Ok(r)
    }

    fn star(&mut self, e: &Node, next: u32) -> Result<u32, RegexError> {
        let nullable = e.nullable();
        self.in_loop(|c| {
            let r = c.push(Inst::Repeat {
                body: PLACEHOLDER,
                exit: next,
                slot: NO_SLOT,
            })?;
            let slot = c.slot(nullable);
            let body = c.compile(e, r)?;
            c.set(
                r,
                Inst::Repeat {
                    body,
                    exit: next,
                    slot,
                },
            );
            Ok(r)
        })
    }

    fn compile(&mut self, node: &Node, next: u32) -> Result<u32, RegexError> {
        match node {
            Node::Empty => Ok(next),
            Node::Lit(b) => self.push(Inst::Byte(*b, next)),
            Node::Any => self.push(Inst::Any(next)),
            Node::Class(set) => {
                let idx = u32::try_from(self.sets.len()).map_err(|_| RegexError::TooLarge)?;
                self.sets.push(**set);
                self.push(Inst::Set(idx, next))
            }
            Node::Bol => self.push(Inst::Bol(next)),
            Node::Eol => self.push(Inst::Eol(next)),
            Node::Group(g, e) => {
                let end = self.push(Inst::Save(2 * g + 1, next))?;
                let body = self.compile(e, end)?;
                self.push(Inst::Save(2 * g, body))
            }
            Node::Concat(v) => {
                let mut cur = next;
                for e in v.iter().rev() {
                    cur = self.compile(e, cur)?;
                }
                Ok(cur)
            }
            Node::Alt(v) => {
                let Some((last, init)) = v.split_last() else {
                    return Ok(next);
                };
                let mut cur = self.compile(last, next)?;
                for e in init.iter().rev() {
                    let a = self.compile(e, next)?;
                    cur = self.push(Inst::Alt(a, cur))?;
                }
                Ok(cur)
            }
            Node::Repeat(e, kind) => {
                let nullable = e.nullable();
                match *kind {
                    RepKind::Star => self.star(e, next),
                    RepKind::Plus => self.in_loop(|c| {
                        let r = c.push(Inst::Repeat {
                            body: PLACEHOLDER,
                            exit: next,
                            slot: NO_SLOT,
                        })?;
                        let slot = c.slot(nullable);
                        let body = c.compile(e, r)?;
                        c.set(
                            r,
                            Inst::Repeat {
                                body,
                                exit: next,
                                slot,
                            },
                        );
                        Ok(body)
                    }),
                    RepKind::Opt => {
                        let body = self.compile(e, next)?;
                        let slot = self.slot(nullable);
                        self.push(Inst::Repeat {
                            body,
                            exit: next,
                            slot,
                        })
                    }
                    RepKind::Range(min, max) => {
                        let mut cur = match max {
                            None => self.star(e, next)?,
                            Some(max) => {
                                let mut cur = next;
                                for _ in min..max {
                                    let body = self.compile(e, cur)?;
                                    let slot = self.slot(nullable);
                                    cur = self.push(Inst::Repeat {
                                        body,
                                        exit: next,
                                        slot,
                                    })?;
                                }
                                cur
                            }
                        };
                        for _ in 0..min {
                            cur = self.compile(e, cur)?;
                        }
                        Ok(cur)
                    }
                }
            }
        }
    }
}

fn build(node: &Node) -> Result<Prog, RegexError> {
    let mut c = Compiler {
        insts: Vec::new(),
        sets: Vec::new(),
        masks: Vec::new(),
        slots: 0,
        loop_depth: 0,
        scope_mask: 0,
    };
    let accept = c.push(Inst::Accept)?;
    let end = c.push(Inst::Save(1, accept))?;
    let body = c.compile(node, end)?;
    let start = c.push(Inst::Save(0, body))?;
    let mut dec = vec![u32::MAX; c.insts.len()];
    let mut dslots = vec![(0u8, 0u8, 0u8); c.insts.len()];
    let mut row = 0usize;
    for (i, inst) in c.insts.iter().enumerate() {
        if matches!(inst, Inst::Alt(..) | Inst::Repeat { .. }) {
            dec[i] = u32::try_from(row).map_err(|_| RegexError::TooLarge)?;
            let mask = c.masks.get(i).copied().unwrap_or(0);
            let slots: Vec<u8> = (0..MAX_SLOTS)
                .filter(|s| mask & (3u64 << (2 * u32::from(*s))) != 0)
                .collect();
            let (n, width) = match slots.as_slice() {
                [] => ((0, 0, 0), 1),
                [a] => ((1, *a, 0), 3),
                [a, b] => ((2, *a, *b), 9),
                _ => ((3, 0, 0), 1),
            };
            dslots[i] = n;
            row += width;
        }
    }
    Ok(Prog {
        insts: c.insts,
        sets: c.sets,
        masks: c.masks,
        dec,
        dslots,
        row,
        start,
    })
}

/// Bytes that can start a non-empty match, or `None` when the pattern can
/// match the empty string.
fn first_bytes(prog: &Prog) -> Option<[bool; 256]> {
    let mut set = [false; 256];
    let mut seen = vec![false; prog.insts.len()];
    let mut stack = vec![prog.start];
    while let Some(n) = stack.pop() {
        let Some(s) = seen.get_mut(n as usize) else {
            continue;
        };
        if *s {
            continue;
        }
        *s = true;
        match prog.insts.get(n as usize)? {
            Inst::Byte(b, _) => set[usize::from(*b)] = true,
            Inst::Any(_) => {
                for (i, x) in set.iter_mut().enumerate() {
                    *x |= i != 0;
                }
            }
            Inst::Set(i, _) => {
                let cls = prog.sets.get(*i as usize)?;
                for (x, y) in set.iter_mut().zip(cls.iter()) {
                    *x |= *y;
                }
            }
            Inst::Save(_, nx) | Inst::Bol(nx) | Inst::Eol(nx) => stack.push(*nx),
            Inst::Alt(a, b) => {
                stack.push(*a);
                stack.push(*b);
            }
            Inst::Repeat { body, exit, .. } => {
                stack.push(*body);
                stack.push(*exit);
            }
            Inst::Accept => return None,
        }
    }
    Some(set)
}

// ---------------------------------------------------------------------------
// Public interface
// ---------------------------------------------------------------------------

/// A compiled POSIX extended regular expression (see the module
/// documentation for the dialect and semantics).
#[derive(Debug, Clone)]
pub struct Regex {
    prog: Prog,
    groups: usize,
    /// The pattern when it is a plain non-empty byte string.
    literal: Option<Vec<u8>>,
    /// Possible first bytes of a match, when no match can be empty.
    first: Option<Box<[bool; 256]>>,
    /// The only possible first byte, if there is exactly one.
    first_byte: Option<u8>,
}

impl Regex {
    /// Compiles `pattern` with libstdc++'s `std::regex::extended` grammar.
    pub fn new(pattern: &[u8]) -> Result<Regex, RegexError> {
        let (node, groups) = Parser::parse(pattern)?;
        let prog = build(&node)?;
        let literal = node.literal();
        let first = first_bytes(&prog);
        let first_byte = first.as_ref().and_then(|set| {
            let mut it = set.iter().enumerate().filter(|(_, x)| **x);
            match (it.next(), it.next()) {
                (Some((b, _)), None) => u8::try_from(b).ok(),
                _ => None,
            }
        });
        Ok(Regex {
            prog,
            groups: groups as usize,
            literal,
            first: first.map(Box::new),
            first_byte,
        })
    }

    /// Number of capture groups, not counting the whole match.
    pub fn group_count(&self) -> usize {
        self.groups
    }

    /// `builtins.match`: the whole input must match; `Some(spans)` with
    /// `spans[0]` the whole match and `spans[i]` group `i` (`None` when the
    /// group did not participate).
    pub fn full_match(&self, input: &[u8]) -> Option<Spans> {
        if let Some(lit) = &self.literal {
            return (input == lit.as_slice()).then(|| self.spans_whole(0, input.len()));
        }
        let mut exec = Exec::new(self, input, 0, Mode::Exact);
        exec.run_at(0)
    }

    /// `regex_search` as `builtins.split` uses it: the first match at or
    /// after byte offset `start` (leftmost, then the longest explored), in
    /// the same format as [`Regex::full_match`].  `^` only matches at offset
    /// 0 of `input` and `$` only at its end.
    ///
    /// To enumerate all matches the way `builtins.split` does, prefer
    /// [`Regex::split_matches`], which also applies the iterator's retry
    /// rule after empty matches.
    pub fn search(&self, input: &[u8], start: usize) -> Option<Spans> {
        self.search_with(input, start, false)
    }

    /// All matches `std::sregex_iterator` visits over `input`, in order:
    /// after an empty match it first retries a non-empty match at the same
    /// position, then continues one byte further.  This is exactly the
    /// sequence of matches `builtins.split` reports.
    pub fn split_matches(&self, input: &[u8]) -> Vec<Spans> {
        let mut out = Vec::new();
        let mut next = self.search(input, 0);
        while let Some(spans) = next {
            let Some(Some((s, e))) = spans.first().copied() else {
                break;
            };
            out.push(spans);
            let mut from = e;
            if s == e {
                if e >= input.len() {
                    break;
                }
                if let Some(m) = self.search_with(input, e, true) {
                    next = Some(m);
                    continue;
                }
                from = e + 1;
            }
            next = self.search(input, from);
        }
        out
    }

    fn spans_whole(&self, s: usize, e: usize) -> Spans {
        let mut v = vec![None; self.groups + 1];
        v[0] = Some((s, e));
        v
    }

    /// `regex_search` from `start`; with `continuous_non_empty` only a
    /// non-empty match starting exactly at `start` is accepted.
    fn search_with(&self, input: &[u8], start: usize, continuous_non_empty: bool) -> Option<Spans> {
        if start > input.len() {
            return None;
        }
        if let Some(lit) = &self.literal {
            let hay = input.get(start..)?;
            if continuous_non_empty {
                return hay
                    .starts_with(lit)
                    .then(|| self.spans_whole(start, start + lit.len()));
            }
            let at = memchr::memmem::find(hay, lit)? + start;
            return Some(self.spans_whole(at, at + lit.len()));
        }
        if continuous_non_empty {
            let mut exec = Exec::new(self, input, start, Mode::NonEmptyAt(start));
            return exec.run_at(start);
        }
        let mut exec = Exec::new(self, input, start, Mode::Prefix);
        let mut s = start;
        while s <= input.len() {
            if let Some(first) = &self.first {
                // No match can be empty: skip positions whose byte cannot
                // start one.
                let rest = input.get(s..)?;
                let skip = match self.first_byte {
                    Some(b) => memchr::memchr(b, rest)?,
                    None => rest.iter().position(|&b| first[usize::from(b)])?,
                };
                s += skip;
            }
            if let Some(m) = exec.run_at(s) {
                return Some(m);
            }
            s += 1;
        }
        None
    }
}

// ---------------------------------------------------------------------------
// Execution
// ---------------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// `regex_match`: solutions must end at the end of the input.
    Exact,
    /// `regex_search`: any solution, the longest explored one wins.
    Prefix,
    /// `regex_search` with `match_not_null | match_continuous`.
    NonEmptyAt(usize),
}

/// Result of following non-branching states.
enum Step {
    /// A final value (`0` = no solution, `e + 1` = a solution ending at `e`).
    Val(u32),
    /// A branching state reached at a position with canonical counts.
    Dec(u32, u32, u64),
}

/// Memo cell values: `UNKNOWN`, `BUSY` (being evaluated), else `v + 2`.
const UNKNOWN: u32 = 0;
const BUSY: u32 = 1;

#[derive(Clone, Copy)]
struct Frame {
    node: u32,
    pos: u32,
    counts: u64,
    stage: u8,
    first: u32,
}

struct Exec<'r, 'i> {
    prog: &'r Prog,
    groups: usize,
    input: &'i [u8],
    mode: Mode,
    base: usize,
    /// Whether loop-entry counts refine memo keys (dropped when the budget
    /// is exhausted).
    counts: bool,
    dense: Vec<u32>,
    dense_positions: usize,
    sparse: MemoMap,
    counted: usize,
    count_budget: usize,
    entries: usize,
    stack: Vec<Frame>,
}

fn slot_count(counts: u64, slot: u8) -> u64 {
    if slot == NO_SLOT {
        0
    } else {
        (counts >> (2 * u32::from(slot))) & 3
    }
}

fn slot_set(counts: u64, slot: u8, v: u64) -> u64 {
    if slot == NO_SLOT {
        counts
    } else {
        let shift = 2 * u32::from(slot);
        (counts & !(3u64 << shift)) | (v << shift)
    }
}

impl<'r, 'i> Exec<'r, 'i> {
    fn new(re: &'r Regex, input: &'i [u8], base: usize, mode: Mode) -> Self {
        let ndec = re.prog.row.max(1);
        Exec {
            prog: &re.prog,
            groups: re.groups,
            input,
            mode,
            base,
            counts: true,
            dense: Vec::new(),
            dense_positions: (DENSE_LIMIT / ndec).max(1),
            sparse: MemoMap::default(),
            counted: 0,
            count_budget: COUNT_BUDGET_FACTOR
                .saturating_mul(ndec)
                .saturating_mul(input.len().saturating_sub(base) + 1)
                .saturating_add(COUNT_BUDGET_BASE),
            entries: 0,
            stack: Vec::new(),
        }
    }

    fn reset(&mut self, counts: bool) {
        self.counts = counts;
        self.dense.clear();
        self.sparse.clear();
        self.counted = 0;
        self.entries = 0;
        self.stack.clear();
    }

    fn accept_value(&self, pos: usize) -> u32 {
        let ok = match self.mode {
            Mode::Exact => pos == self.input.len(),
            Mode::Prefix => true,
            Mode::NonEmptyAt(s) => pos != s,
        };
        if ok { (pos as u32).wrapping_add(1) } else { 0 }
    }

    /// Follows non-branching states from `n`, recording submatch positions
    /// into `caps` when given.
    fn follow(
        &self,
        mut n: u32,
        mut pos: usize,
        mut counts: u64,
        mut caps: Option<&mut [usize]>,
    ) -> Step {
        let input = self.input;
        loop {
            let Some(inst) = self.prog.insts.get(n as usize) else {
                return Step::Val(0);
            };
            match *inst {
                Inst::Byte(b, nx) => {
                    if input.get(pos) != Some(&b) {
                        return Step::Val(0);
                    }
                    pos += 1;
                    counts = 0;
                    n = nx;
                }
                Inst::Any(nx) => {
                    match input.get(pos) {
                        Some(&c) if c != 0 => {}
                        _ => return Step::Val(0),
                    }
                    pos += 1;
                    counts = 0;
                    n = nx;
                }
                Inst::Set(i, nx) => {
                    let ok = match (input.get(pos), self.prog.sets.get(i as usize)) {
                        (Some(&c), Some(set)) => set[usize::from(c)],
                        _ => false,
                    };
                    if !ok {
                        return Step::Val(0);
                    }
                    pos += 1;
                    counts = 0;
                    n = nx;
                }
                Inst::Save(slot, nx) => {
                    if let Some(c) = caps.as_deref_mut()
                        && let Some(x) = c.get_mut(slot as usize)
                    {
                        *x = pos;
                    }
                    n = nx;
                }
                Inst::Bol(nx) => {
                    if pos != 0 {
                        return Step::Val(0);
                    }
                    n = nx;
                }
                Inst::Eol(nx) => {
                    if pos != input.len() {
                        return Step::Val(0);
                    }
                    n = nx;
                }
                Inst::Accept => return Step::Val(self.accept_value(pos)),
                Inst::Alt(..) | Inst::Repeat { .. } => {
                    let mask = if self.counts {
                        self.prog.masks.get(n as usize).copied().unwrap_or(0)
                    } else {
                        0
                    };
                    return Step::Dec(n, pos as u32, counts & mask);
                }
            }
        }
    }

    /// The dense memo cell of a key, if it has one.
    fn dense_index(&self, n: u32, pos: u32, counts: u64) -> Option<usize> {
        let rel = (pos as usize).checked_sub(self.base)?;
        if rel >= self.dense_positions {
            return None;
        }
        let d = *self.prog.dec.get(n as usize)? as usize;
        let (k, a, b) = *self.prog.dslots.get(n as usize)?;
        let code = match k {
            1 => slot_count(counts, a),
            2 => slot_count(counts, a) + 3 * slot_count(counts, b),
            _ if counts == 0 => 0,
            _ => return None,
        };
        Some(rel * self.prog.row + d + code as usize)
    }

    fn memo_get(&self, n: u32, pos: u32, counts: u64) -> u32 {
        if let Some(i) = self.dense_index(n, pos, counts) {
            return self.dense.get(i).copied().unwrap_or(UNKNOWN);
        }
        self.sparse
            .get(&(n, pos, counts))
            .copied()
            .unwrap_or(UNKNOWN)
    }

    fn memo_set(&mut self, n: u32, pos: u32, counts: u64, v: u32) {
        if let Some(i) = self.dense_index(n, pos, counts) {
            if i >= self.dense.len() {
                let want = (i + 1).max(self.dense.len() * 2).max(64);
                let cap = self.dense_positions.saturating_mul(self.prog.row);
                self.dense.resize(want.min(cap).max(i + 1), UNKNOWN);
            }
            if let Some(x) = self.dense.get_mut(i) {
                if *x == UNKNOWN {
                    self.entries += 1;
                }
                *x = v;
            }
            return;
        }
        if self.sparse.insert((n, pos, counts), v).is_none() {
            self.entries += 1;
            if counts != 0 {
                self.counted += 1;
            }
        }
    }

    /// Value of the search tree at a branching state; `None` when the count
    /// budget ran out.
    fn eval(&mut self, node: u32, pos: u32, counts: u64) -> Option<u32> {
        match self.memo_get(node, pos, counts) {
            UNKNOWN => {}
            BUSY => return Some(0),
            v => return Some(v - 2),
        }
        self.memo_set(node, pos, counts, BUSY);
        self.stack.clear();
        self.stack.push(Frame {
            node,
            pos,
            counts,
            stage: 0,
            first: 0,
        });
        let mut ret = 0u32;
        loop {
            let top = self.stack.len().checked_sub(1)?;
            let f = self.stack[top];
            let inst = self.prog.insts.get(f.node as usize).copied()?;
            // Either the next child to evaluate (with the stage to resume
            // at) or the frame's final value.
            let child: Result<(u32, u64, u8), u32> = match (inst, f.stage) {
                (Inst::Alt(a, _), 0) => Ok((a, f.counts, 1)),
                (Inst::Alt(_, b), 1) => {
                    self.stack[top].first = ret;
                    Ok((b, f.counts, 2))
                }
                (Inst::Alt(..), _) => Err(f.first.max(ret)),
                (Inst::Repeat { body, slot, .. }, 0) => {
                    let c = slot_count(f.counts, slot);
                    if c < 2 {
                        Ok((body, slot_set(f.counts, slot, c + 1), 1))
                    } else {
                        ret = 0;
                        self.stack[top].stage = 1;
                        continue;
                    }
                }
                (Inst::Repeat { exit, .. }, 1) => {
                    if ret != 0 {
                        Err(ret)
                    } else {
                        Ok((exit, f.counts, 2))
                    }
                }
                (Inst::Repeat { .. }, _) => Err(ret),
                _ => Err(0),
            };
            match child {
                Ok((n, counts, stage)) => {
                    self.stack[top].stage = stage;
                    match self.follow(n, f.pos as usize, counts, None) {
                        Step::Val(v) => ret = v,
                        Step::Dec(d, p, c) => match self.memo_get(d, p, c) {
                            UNKNOWN => {
                                if self.counts && self.counted > self.count_budget {
                                    return None;
                                }
                                self.memo_set(d, p, c, BUSY);
                                self.stack.push(Frame {
                                    node: d,
                                    pos: p,
                                    counts: c,
                                    stage: 0,
                                    first: 0,
                                });
                            }
                            BUSY => ret = 0,
                            v => ret = v - 2,
                        },
                    }
                }
                Err(v) => {
                    self.memo_set(f.node, f.pos, f.counts, v + 2);
                    self.stack.pop();
                    ret = v;
                    if self.stack.is_empty() {
                        return Some(v);
                    }
                }
            }
        }
    }

    /// Value of the subtree entered at state `n`.
    fn value(&mut self, n: u32, pos: usize, counts: u64) -> Option<u32> {
        match self.follow(n, pos, counts, None) {
            Step::Val(v) => Some(v),
            Step::Dec(d, p, c) => self.eval(d, p, c),
        }
    }

    /// Runs the search tree rooted at position `s` and, on success,
    /// extracts the submatches of the chosen path.
    fn run_at(&mut self, s: usize) -> Option<Spans> {
        if self.input.len() >= (u32::MAX - 4) as usize {
            return None;
        }
        let start = self.prog.start;
        let target = match self.value(start, s, 0) {
            Some(v) => v,
            None => {
                self.reset(false);
                self.value(start, s, 0)?
            }
        };
        if target == 0 {
            return None;
        }
        Some(self.walk(s, target))
    }

    /// Replays the search order along the first path reaching `target`,
    /// collecting submatch positions.
    fn walk(&mut self, s: usize, target: u32) -> Spans {
        const NONE: usize = usize::MAX;
        let end = (target - 1) as usize;
        let mut caps = vec![NONE; 2 * (self.groups + 1)];
        let mut n = self.prog.start;
        let mut pos = s;
        let mut counts = 0u64;
        let mut steps = self.entries + 16;
        let complete = loop {
            if steps == 0 {
                break false;
            }
            steps -= 1;
            match self.follow(n, pos, counts, Some(&mut caps)) {
                Step::Val(_) => break true,
                Step::Dec(d, p, c) => {
                    pos = p as usize;
                    match self.prog.insts.get(d as usize).copied() {
                        Some(Inst::Alt(a, b)) => {
                            let va = self.value(a, pos, c).unwrap_or(0);
                            n = if va == target { a } else { b };
                            counts = c;
                        }
                        Some(Inst::Repeat { body, exit, slot }) => {
                            let k = slot_count(c, slot);
                            let c2 = slot_set(c, slot, k + 1);
                            if k < 2 && self.value(body, pos, c2).unwrap_or(0) != 0 {
                                n = body;
                                counts = c2;
                            } else {
                                n = exit;
                                counts = c;
                            }
                        }
                        _ => break false,
                    }
                }
            }
        };
        let mut spans = vec![None; self.groups + 1];
        spans[0] = Some((s, end));
        if complete {
            for (g, span) in spans.iter_mut().enumerate().skip(1) {
                let (a, b) = (caps[2 * g], caps[2 * g + 1]);
                if a != NONE && b != NONE && a <= b {
                    *span = Some((a, b));
                }
            }
        }
        spans
    }
}
