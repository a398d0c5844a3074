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

#[derive(Default)]
struct Table {
    names: Vec<&'static [u8]>,
    map: HashMap<&'static [u8], u32>,
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

    /// The bytes of several names, looked up under one borrow of the table.
    pub fn bytes_of(syms: impl Iterator<Item = Sym>) -> smallvec::SmallVec<[&'static [u8]; 8]> {
        TABLE.with(|t| {
            let t = t.borrow();
            syms.map(|s| t.names[s.0 as usize]).collect()
        })
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
