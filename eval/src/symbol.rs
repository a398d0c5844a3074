//! Interned identifiers and attribute names.
//!
//! Every attribute name and variable name is interned once into a
//! thread-local table and referred to by a `Sym` (a `u32`). Names are byte
//! strings, since Nix attribute names may hold arbitrary bytes. Interned
//! names live for the rest of the process.

use std::cell::RefCell;
use std::collections::HashMap;

/// An interned name.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct Sym(pub u32);

/// A fast, non-cryptographic hash for names (the multiply-rotate scheme
/// of rustc's FxHash): interning is on the hot path of dynamic attribute
/// names and `listToAttrs`, and names come from the program, not from an
/// adversary who could aim for collisions.
#[derive(Default, Clone, Copy)]
struct NameHasher(u64);

impl std::hash::Hasher for NameHasher {
    fn write(&mut self, bytes: &[u8]) {
        const K: u64 = 0x517c_c1b7_2722_0a95;
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let w = u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
            self.0 = (self.0.rotate_left(5) ^ w).wrapping_mul(K);
        }
        for &b in chunks.remainder() {
            self.0 = (self.0.rotate_left(5) ^ u64::from(b)).wrapping_mul(K);
        }
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

type NameMap = HashMap<&'static [u8], u32, std::hash::BuildHasherDefault<NameHasher>>;

#[derive(Default)]
struct Table {
    names: Vec<&'static [u8]>,
    map: NameMap,
}

thread_local! {
    static TABLE: RefCell<Table> = RefCell::new(Table::default());
}

/// Interns `name`, returning its symbol.
pub fn intern(name: &[u8]) -> Sym {
    TABLE.with(|t| {
        let mut t = t.borrow_mut();
        if let Some(&i) = t.map.get(name) {
            return Sym(i);
        }
        let leaked: &'static [u8] = Box::leak(name.to_vec().into_boxed_slice());
        let i = t.names.len() as u32;
        t.names.push(leaked);
        t.map.insert(leaked, i);
        Sym(i)
    })
}

/// Interns a UTF-8 name.
pub fn sym(name: &str) -> Sym {
    intern(name.as_bytes())
}

impl Sym {
    /// The bytes of this name.
    pub fn bytes(self) -> &'static [u8] {
        TABLE.with(|t| t.borrow().names[self.0 as usize])
    }

    /// Runs `f` with the name table (symbol index -> bytes), for looking up
    /// many names under one borrow.
    pub fn with_names<R>(f: impl FnOnce(&[&'static [u8]]) -> R) -> R {
        TABLE.with(|t| f(&t.borrow().names))
    }

    /// The name as (lossily decoded) text.
    pub fn text(self) -> String {
        String::from_utf8_lossy(self.bytes()).into_owned()
    }
}

impl std::fmt::Display for Sym {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&String::from_utf8_lossy(self.bytes()))
    }
}
