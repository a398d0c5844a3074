//! A small wrapper over the regular-expression engine used by
//! `builtins.match` and `builtins.split`, so the engine can be swapped for
//! a POSIX-ERE implementation without touching the builtins.
//!
//! The interface (`new`, `group_count`, `full_match`, `search`) is the one
//! of the POSIX-ERE engine; until that engine is in place, patterns are
//! translated to the `regex` crate's syntax (bracket expressions, literal
//! braces), which matches leftmost-first rather than leftmost-longest
//! when alternatives overlap.

/// A compiled extended regular expression.
pub struct Regex {
    re: regex::bytes::Regex,
    groups: usize,
}

/// A regex compilation error.
#[derive(Debug)]
pub struct RegexError(String);

impl std::fmt::Display for RegexError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Translates POSIX ERE syntax to the engine's syntax: backslashes in
/// bracket expressions are literal, a leading `]` is literal, and `{`
/// that does not start a bound is literal.
fn translate(p: &[u8]) -> String {
    let mut out = String::new();
    let mut i = 0;
    while i < p.len() {
        let c = p[i];
        match c {
            b'[' => {
                out.push('[');
                i += 1;
                if p.get(i) == Some(&b'^') {
                    out.push('^');
                    i += 1;
                }
                if p.get(i) == Some(&b']') {
                    out.push_str("\\]");
                    i += 1;
                }
                while i < p.len() && p[i] != b']' {
                    if p[i] == b'[' && matches!(p.get(i + 1), Some(b':' | b'.' | b'=')) {
                        let close = p[i + 1];
                        let start = i;
                        i += 2;
                        while i + 1 < p.len() && !(p[i] == close && p[i + 1] == b']') {
                            i += 1;
                        }
                        i += 2;
                        out.push_str(&String::from_utf8_lossy(&p[start..i.min(p.len())]));
                        continue;
                    }
                    match p[i] {
                        b'\\' | b'[' | b'&' | b'~' | b'|' => {
                            out.push('\\');
                            out.push(p[i] as char);
                        }
                        b'-' => out.push('-'),
                        _ => push_byte(&mut out, p, &mut i),
                    }
                    i += 1;
                }
                out.push(']');
                i += 1;
            }
            b'\\' => {
                if let Some(&n) = p.get(i + 1) {
                    if n.is_ascii_alphanumeric()
                        && !matches!(n, b'w' | b'W' | b's' | b'S' | b'd' | b'D' | b'b' | b'B')
                    {
                        out.push(n as char);
                    } else {
                        out.push('\\');
                        push_byte(&mut out, p, &mut { i + 1 });
                    }
                    i += 2;
                } else {
                    out.push_str("\\\\");
                    i += 1;
                }
            }
            b'{' => {
                let rest = &p[i + 1..];
                let ok = rest.iter().position(|&c| c == b'}').is_some_and(|e| {
                    !rest[..e].is_empty()
                        && rest[..e].iter().all(|c| c.is_ascii_digit() || *c == b',')
                });
                if ok {
                    out.push('{');
                } else {
                    out.push_str("\\{");
                }
                i += 1;
            }
            _ => {
                push_byte(&mut out, p, &mut i);
                i += 1;
            }
        }
    }
    out
}

fn push_byte(out: &mut String, p: &[u8], i: &mut usize) {
    let c = p[*i];
    if c < 0x80 {
        out.push(c as char);
    } else {
        out.push_str(&format!("\\x{c:02X}"));
    }
}

impl Regex {
    /// Compiles a pattern.
    pub fn new(pattern: &[u8]) -> Result<Regex, RegexError> {
        let t = translate(pattern);
        let re = regex::bytes::RegexBuilder::new(&t)
            .unicode(false)
            .dot_matches_new_line(true)
            .build()
            .map_err(|e| {
                RegexError(format!(
                    "invalid regular expression '{}': {e}",
                    String::from_utf8_lossy(pattern)
                ))
            })?;
        let groups = re.captures_len() - 1;
        Ok(Regex { re, groups })
    }

    /// Number of capture groups (excluding group 0).
    pub fn group_count(&self) -> usize {
        self.groups
    }

    /// Matches the whole input.
    pub fn full_match(&self, input: &[u8]) -> Option<Vec<Option<(usize, usize)>>> {
        // Anchor by searching with an anchored wrapper.
        let caps = self.re.captures(input)?;
        let m = caps.get(0)?;
        if m.start() != 0 || m.end() != input.len() {
            // Fall back to an explicitly anchored pattern.
            let anchored = regex::bytes::RegexBuilder::new(&format!("^(?:{})$", self.re.as_str()))
                .unicode(false)
                .dot_matches_new_line(true)
                .build()
                .ok()?;
            let caps = anchored.captures(input)?;
            return Some(
                (0..=self.groups)
                    .map(|i| caps.get(i).map(|m| (m.start(), m.end())))
                    .collect(),
            );
        }
        Some(
            (0..=self.groups)
                .map(|i| caps.get(i).map(|m| (m.start(), m.end())))
                .collect(),
        )
    }

    /// Finds the first match at or after byte offset `start`.
    pub fn search(&self, input: &[u8], start: usize) -> Option<Vec<Option<(usize, usize)>>> {
        let mut locs = self.re.capture_locations();
        self.re.captures_read_at(&mut locs, input, start)?;
        Some((0..=self.groups).map(|i| locs.get(i)).collect())
    }
}
