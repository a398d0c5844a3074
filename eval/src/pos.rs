//! Source positions: a file table and compact `(file, offset)` positions
//! that are turned into `file:line:col` only when printed.

use std::cell::RefCell;

/// A position in a source file (byte offset), or no position.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct Pos {
    /// Index into the file table plus one; 0 means "no position".
    pub file: u32,
    /// Byte offset into the file's text.
    pub off: u32,
}

struct SourceFile {
    name: String,
    text: std::rc::Rc<str>,
}

thread_local! {
    static FILES: RefCell<Vec<SourceFile>> = const { RefCell::new(Vec::new()) };
}

/// Registers a source text under `name` (a path, or `«string»`/`«stdin»`).
pub fn add_file(name: String, text: std::rc::Rc<str>) -> u32 {
    FILES.with(|f| {
        let mut f = f.borrow_mut();
        f.push(SourceFile { name, text });
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
    pub const NONE: Pos = Pos { file: 0, off: 0 };

    /// Whether this position points somewhere.
    pub fn is_some(self) -> bool {
        self.file != 0
    }

    /// Resolves to file, line and column (both 1-based).
    pub fn location(self) -> Option<Location> {
        if self.file == 0 {
            return None;
        }
        FILES.with(|f| {
            let f = f.borrow();
            let sf = f.get(self.file as usize - 1)?;
            let end = (self.off as usize).min(sf.text.len());
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
