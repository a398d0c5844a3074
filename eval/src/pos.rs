//! Source positions: a file table and compact `(file, offset)` positions
//! that are turned into `file:line:col` only when printed.

use std::cell::RefCell;

/// A position: an offset into the concatenation of all registered
/// source files (plus one), so it fits in 4 bytes; 0 means "no position".
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct Pos(u32);

struct SourceFile {
    base: u32,
    name: String,
    text: std::rc::Rc<str>,
}

thread_local! {
    static FILES: RefCell<Vec<SourceFile>> = const { RefCell::new(Vec::new()) };
}

/// Registers a source text under `name` (a path, or `«string»`/`«stdin»`),
/// returning its file id.
pub fn add_file(name: String, text: std::rc::Rc<str>) -> u32 {
    FILES.with(|f| {
        let mut f = f.borrow_mut();
        let base = f.last().map_or(1, |l| {
            l.base.saturating_add(l.text.len() as u32).saturating_add(1)
        });
        f.push(SourceFile { base, name, text });
        f.len() as u32
    })
}

/// A resolved position.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Location {
    pub file: String,
    pub line: u32,
    pub column: u32,
}

impl Pos {
    /// No position.
    pub const NONE: Pos = Pos(0);

    /// The position at byte `off` of file `file` (an id from [`add_file`]).
    pub fn new(file: u32, off: u32) -> Pos {
        if file == 0 {
            return Pos::NONE;
        }
        FILES.with(|f| match f.borrow().get(file as usize - 1) {
            Some(sf) => Pos(sf.base.saturating_add(off)),
            None => Pos::NONE,
        })
    }

    /// The position at byte `off` of the file whose base is `base`
    /// (from [`file_base`]).
    pub fn at(base: u32, off: u32) -> Pos {
        if base == 0 {
            Pos::NONE
        } else {
            Pos(base.saturating_add(off))
        }
    }

    /// Whether this position points somewhere.
    pub fn is_some(self) -> bool {
        self.0 != 0
    }

    /// The file id (0 for no position).
    pub fn file(self) -> u32 {
        if self.0 == 0 {
            return 0;
        }
        FILES.with(|f| {
            let f = f.borrow();
            let i = f.partition_point(|sf| sf.base <= self.0);
            i as u32
        })
    }

    /// The byte offset within its file.
    pub fn off(self) -> u32 {
        let file = self.file();
        if file == 0 {
            return 0;
        }
        FILES.with(|f| {
            f.borrow()
                .get(file as usize - 1)
                .map_or(0, |sf| self.0 - sf.base)
        })
    }

    /// Resolves to file, line and column (both 1-based).
    pub fn location(self) -> Option<Location> {
        let file = self.file();
        if file == 0 {
            return None;
        }
        let off = self.off();
        FILES.with(|f| {
            let f = f.borrow();
            let sf = f.get(file as usize - 1)?;
            let end = (off as usize).min(sf.text.len());
            let before = &sf.text.as_bytes()[..end];
            let line = before.iter().filter(|&&b| b == b'\n').count() as u32 + 1;
            let line_start = before
                .iter()
                .rposition(|&b| b == b'\n')
                .map_or(0, |p| p + 1);
            let column = String::from_utf8_lossy(&before[line_start..])
                .chars()
                .count() as u32
                + 1;
            Some(Location {
                file: sf.name.clone(),
                line,
                column,
            })
        })
    }
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.column)
    }
}

/// The text of a registered file.
pub fn file_text(file: u32) -> Option<std::rc::Rc<str>> {
    if file == 0 {
        return None;
    }
    FILES.with(|f| f.borrow().get(file as usize - 1).map(|s| s.text.clone()))
}

/// The position base of a file id (0 if unknown).
pub fn file_base(file: u32) -> u32 {
    if file == 0 {
        return 0;
    }
    FILES.with(|f| f.borrow().get(file as usize - 1).map_or(0, |sf| sf.base))
}
