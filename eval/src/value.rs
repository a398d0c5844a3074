//! Runtime values: a small enum (16 bytes) whose heap variants are behind
//! `Rc`-like pointers. Attribute sets are entries sorted by symbol and
//! lists are values, each in one [`RcSlice`] allocation;
//! strings are byte strings with an optional context; thunks are
//! `ThunkRef` cells that are blackholed while being forced.

use crate::error::Result;
use crate::ir::{Expr, LambdaExpr};
use crate::pos::Pos;
pub use crate::rc_slice::RcSlice;
use crate::symbol::Sym;
use std::cell::{Cell, RefCell};
use std::collections::BTreeSet;
use std::rc::Rc;

/// A string context: the store paths a string refers to, encoded as Nix
/// does (`/nix/store/..`, `=/nix/store/...drv`, `!out!/nix/store/...drv`).
pub type Context = BTreeSet<Box<[u8]>>;

/// The bytes of a string: short ones (most strings a program makes:
/// names, numbers, small interpolations) inline, without an allocation of
/// their own; longer ones on the heap. Either way 24 bytes, so a string's
/// cell stays in the same allocator size class.
#[derive(Clone)]
pub enum StrBytes {
    Inline { len: u8, data: [u8; INLINE_STR] },
    Heap(Box<[u8]>),
}

/// The longest string kept inline.
pub const INLINE_STR: usize = 22;

impl StrBytes {
    /// Copies `b`.
    pub fn from_slice(b: &[u8]) -> StrBytes {
        if b.len() <= INLINE_STR {
            let mut data = [0u8; INLINE_STR];
            data[..b.len()].copy_from_slice(b);
            StrBytes::Inline {
                len: b.len() as u8,
                data,
            }
        } else {
            StrBytes::Heap(b.into())
        }
    }
}

impl Default for StrBytes {
    fn default() -> StrBytes {
        StrBytes::Inline {
            len: 0,
            data: [0; INLINE_STR],
        }
    }
}

impl std::ops::Deref for StrBytes {
    type Target = [u8];
    #[inline]
    fn deref(&self) -> &[u8] {
        match self {
            StrBytes::Inline { len, data } => &data[..usize::from(*len)],
            StrBytes::Heap(b) => b,
        }
    }
}

impl std::fmt::Debug for StrBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", String::from_utf8_lossy(self))
    }
}

impl From<Vec<u8>> for StrBytes {
    fn from(v: Vec<u8>) -> StrBytes {
        if v.len() <= INLINE_STR {
            StrBytes::from_slice(&v)
        } else {
            StrBytes::Heap(v.into_boxed_slice())
        }
    }
}

impl From<Box<[u8]>> for StrBytes {
    fn from(b: Box<[u8]>) -> StrBytes {
        if b.len() <= INLINE_STR {
            StrBytes::from_slice(&b)
        } else {
            StrBytes::Heap(b)
        }
    }
}

impl From<&[u8]> for StrBytes {
    fn from(b: &[u8]) -> StrBytes {
        StrBytes::from_slice(b)
    }
}

impl<const N: usize> From<&[u8; N]> for StrBytes {
    fn from(b: &[u8; N]) -> StrBytes {
        StrBytes::from_slice(b)
    }
}

impl From<String> for StrBytes {
    fn from(s: String) -> StrBytes {
        StrBytes::from(s.into_bytes())
    }
}

impl From<&str> for StrBytes {
    fn from(s: &str) -> StrBytes {
        StrBytes::from_slice(s.as_bytes())
    }
}

/// A Nix string: bytes plus an optional context (no allocation when empty).
#[derive(Debug, Default, Clone)]
pub struct NixStr {
    pub bytes: StrBytes,
    pub ctx: Option<Box<Context>>,
}

impl NixStr {
    /// A context-free string.
    pub fn plain(b: impl Into<StrBytes>) -> NixStr {
        NixStr {
            bytes: b.into(),
            ctx: None,
        }
    }
    /// A string with a context (an empty context is dropped).
    pub fn with_ctx(b: impl Into<StrBytes>, ctx: Context) -> NixStr {
        NixStr {
            bytes: b.into(),
            ctx: if ctx.is_empty() {
                None
            } else {
                Some(Box::new(ctx))
            },
        }
    }
    /// The bytes as (lossy) text.
    pub fn lossy(&self) -> String {
        String::from_utf8_lossy(&self.bytes).into_owned()
    }
}

/// The elements of a list.
pub type List = RcSlice<Value>;

/// One attribute: name, value and where it was defined.
pub type Entry = (Sym, Value, Pos);

/// An attribute set: entries sorted by symbol id (cloning shares them).
#[derive(Debug, Default, Clone)]
pub struct Attrs {
    pub entries: RcSlice<Entry>,
}

impl Attrs {
    /// Whether two sets share their entries.
    pub fn ptr_eq(a: &Attrs, b: &Attrs) -> bool {
        RcSlice::ptr_eq(&a.entries, &b.entries)
    }
    /// The address of the entries (an identity for cycle detection).
    pub fn as_ptr(&self) -> *const u8 {
        self.entries.as_ptr()
    }
    /// Looks up an attribute.
    pub fn get(&self, s: Sym) -> Option<&Value> {
        self.entries
            .binary_search_by(|e| e.0.cmp(&s))
            .ok()
            .map(|i| &self.entries[i].1)
    }
    /// Looks up an attribute with its definition position.
    pub fn get_entry(&self, s: Sym) -> Option<&(Sym, Value, Pos)> {
        self.entries
            .binary_search_by(|e| e.0.cmp(&s))
            .ok()
            .map(|i| &self.entries[i])
    }
    /// Builds a set from unsorted entries; later duplicates win.
    pub fn from_unsorted(mut v: Vec<(Sym, Value, Pos)>) -> Attrs {
        v.sort_by_key(|e| e.0);
        let mut out: Vec<(Sym, Value, Pos)> = Vec::with_capacity(v.len());
        for e in v {
            match out.last_mut() {
                Some(last) if last.0 == e.0 => *last = e,
                _ => out.push(e),
            }
        }
        Attrs {
            entries: out.into(),
        }
    }
    /// Entries sorted by attribute name (the order Nix shows them in).
    pub fn sorted_by_name(&self) -> smallvec::SmallVec<[&(Sym, Value, Pos); 8]> {
        const SMALL: usize = 8;
        let n = self.entries.len();
        let mut out = smallvec::SmallVec::new();
        if n <= 1 {
            out.extend(self.entries.iter());
            return out;
        }
        if n <= SMALL {
            // Small sets (the common case): sort indices on the stack.
            let mut keys: [(&[u8], u8); SMALL] = [(&[], 0); SMALL];
            Sym::with_names(|names| {
                for (i, e) in self.entries.iter().enumerate() {
                    keys[i] = (names[e.0.0 as usize], i as u8);
                }
            });
            let keys = &mut keys[..n];
            for i in 1..n {
                let mut j = i;
                while j > 0 && keys[j - 1].0 > keys[j].0 {
                    keys.swap(j - 1, j);
                    j -= 1;
                }
            }
            for k in keys.iter() {
                out.push(&self.entries[k.1 as usize]);
            }
            return out;
        }
        let mut v: Vec<(&[u8], &Entry)> = Sym::with_names(|names| {
            self.entries
                .iter()
                .map(|e| (names[e.0.0 as usize], e))
                .collect()
        });
        v.sort_unstable_by(|a, b| a.0.cmp(b.0));
        out.extend(v.into_iter().map(|e| e.1));
        out
    }
    pub fn len(&self) -> usize {
        self.entries.len()
    }
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// A lexical environment frame.
#[derive(Debug)]
pub struct Env {
    pub up: Option<Rc<Env>>,
    pub vals: RefCell<EnvVals>,
}

/// The slots of an environment frame (small frames stay inline).
pub type EnvVals = smallvec::SmallVec<[Value; 2]>;

/// A closure: a lambda and the environment it was created in.
#[derive(Debug)]
pub struct Closure {
    pub lam: &'static LambdaExpr,
    pub env: Rc<Env>,
}

/// Signature of a builtin implementation: the evaluator, the arguments
/// (not forced) and the call position.
pub type PrimFn = fn(&mut crate::eval::Eval, &[Value], Pos) -> Result<Value>;

/// A builtin function.
#[derive(Debug)]
pub struct PrimOp {
    pub name: &'static str,
    pub arity: usize,
    pub f: PrimFn,
}

/// A builtin applied to fewer arguments than its arity.
#[derive(Debug)]
pub struct PrimOpApp {
    pub op: &'static PrimOp,
    pub args: Vec<Value>,
}

/// The state of a thunk.
#[derive(Debug)]
pub enum ThunkState {
    /// An expression to evaluate in an environment.
    Expr(&'static Expr, Rc<Env>),
    /// A delayed application of a lambda (the common case: `map`,
    /// `genList`, `mapAttrs` elements), kept inline.
    AppLambda(Rc<Closure>, Value),
    /// A delayed application of any other function value (boxed, so that
    /// the state stays three words and a thunk's allocation four).
    App(Box<(Value, Value)>),
    /// Being forced right now.
    Blackhole,
    /// Evaluated.
    Done(Value),
    /// Evaluation failed with this error (re-raised when forced again).
    Failed(Box<crate::error::Error>),
}

/// A lazily evaluated value. The state lives in a `Cell` (moved out and
/// back in), which needs no borrow flag.
pub struct Thunk(pub Cell<ThunkState>);

impl Thunk {
    /// The value, if the thunk has been evaluated.
    #[inline]
    pub fn done(&self) -> Option<Value> {
        // SAFETY: values are single-threaded (`Rc`), the reference does not
        // outlive this call, and cloning a `Value` only touches reference
        // counts, never this cell, so nothing mutates the state meanwhile.
        match unsafe { &*self.0.as_ptr() } {
            ThunkState::Done(v) => Some(v.clone()),
            _ => None,
        }
    }

    /// The value, borrowed, if the thunk has been evaluated.
    #[inline]
    pub fn done_ref(&self) -> Option<&Value> {
        // SAFETY: `Done` is final: forcing an evaluated thunk returns its
        // value without touching the cell, and nothing else writes a cell
        // after it is done, so the value lives, unchanged, as long as the
        // thunk does.
        match unsafe { &*self.0.as_ptr() } {
            ThunkState::Done(v) => Some(v),
            _ => None,
        }
    }
}

impl std::fmt::Debug for Thunk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Thunk")
    }
}

/// A shared thunk: `Rc<Thunk>` with a single reference count. Thunks are
/// never referenced weakly, and a program may hold millions of them
/// (every lazy list element, attribute and argument): without the weak
/// count `Rc` carries, a thunk takes 32 bytes (one allocator size class)
/// instead of 48.
pub struct ThunkRef(std::ptr::NonNull<ThunkBox>);

struct ThunkBox {
    refs: Cell<usize>,
    thunk: Thunk,
}

impl ThunkRef {
    /// A new thunk in `state`.
    #[inline]
    pub fn new(state: ThunkState) -> ThunkRef {
        let b = Box::new(ThunkBox {
            refs: Cell::new(1),
            thunk: Thunk(Cell::new(state)),
        });
        ThunkRef(std::ptr::NonNull::from(Box::leak(b)))
    }
    /// Whether two references share one thunk.
    pub fn ptr_eq(a: &ThunkRef, b: &ThunkRef) -> bool {
        a.0 == b.0
    }
    /// The size of the allocation behind each thunk.
    pub const ALLOC_SIZE: usize = std::mem::size_of::<ThunkBox>();
    /// The address of the thunk (an identity for cycle detection).
    pub fn as_ptr(&self) -> *const Thunk {
        &**self
    }
}

impl std::ops::Deref for ThunkRef {
    type Target = Thunk;
    #[inline]
    fn deref(&self) -> &Thunk {
        // SAFETY: the box lives while any reference to it does (the count
        // is at least one while `self` exists).
        unsafe { &self.0.as_ref().thunk }
    }
}

impl Clone for ThunkRef {
    #[inline]
    fn clone(&self) -> ThunkRef {
        // SAFETY: as in `deref`.
        let refs = unsafe { &self.0.as_ref().refs };
        // Overflow would need more references than memory can hold;
        // abort like `Rc` rather than wrap.
        let n = refs
            .get()
            .checked_add(1)
            .unwrap_or_else(|| std::process::abort());
        refs.set(n);
        ThunkRef(self.0)
    }
}

impl Drop for ThunkRef {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: as in `deref`; the last reference frees the box it
        // allocated in `new`, and no other reference remains to use it.
        unsafe {
            let refs = &self.0.as_ref().refs;
            let n = refs.get() - 1;
            refs.set(n);
            if n == 0 {
                drop(Box::from_raw(self.0.as_ptr()));
            }
        }
    }
}

impl std::fmt::Debug for ThunkRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Thunk")
    }
}

/// A Nix value.
#[derive(Clone, Debug)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(Rc<NixStr>),
    Path(Rc<Vec<u8>>),
    Attrs(Attrs),
    List(List),
    Lambda(Rc<Closure>),
    PrimOp(&'static PrimOp),
    PrimOpApp(Rc<PrimOpApp>),
    Thunk(ThunkRef),
}

impl Value {
    /// A context-free string value.
    pub fn str(b: impl Into<StrBytes>) -> Value {
        Value::Str(Rc::new(NixStr::plain(b)))
    }
    /// A string value with a context.
    pub fn str_ctx(b: impl Into<StrBytes>, ctx: Context) -> Value {
        Value::Str(Rc::new(NixStr::with_ctx(b, ctx)))
    }
    /// A delayed application `f a`.
    #[inline]
    pub fn app(f: Value, a: Value) -> Value {
        let state = match f {
            Value::Lambda(c) => ThunkState::AppLambda(c, a),
            Value::Thunk(t) => match t.done() {
                Some(Value::Lambda(c)) => ThunkState::AppLambda(c, a),
                _ => ThunkState::App(Box::new((Value::Thunk(t), a))),
            },
            f => ThunkState::App(Box::new((f, a))),
        };
        Value::Thunk(ThunkRef::new(state))
    }
    /// An attribute set value.
    pub fn attrs(a: Attrs) -> Value {
        Value::Attrs(a)
    }
    /// A list value.
    pub fn list(v: Vec<Value>) -> Value {
        Value::List(RcSlice::from_vec(v))
    }
    /// A list value from an iterator.
    pub fn list_from(it: impl IntoIterator<Item = Value>) -> Value {
        Value::List(it.into_iter().collect())
    }
    /// The type name Nix reports (`builtins.typeOf`).
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Float(_) => "float",
            Value::Str(_) => "string",
            Value::Path(_) => "path",
            Value::Attrs(_) => "set",
            Value::List(_) => "list",
            Value::Lambda(_) | Value::PrimOp(_) | Value::PrimOpApp(_) => "lambda",
            Value::Thunk(_) => "thunk",
        }
    }
    /// The type description used in error messages ("a string", ...).
    pub fn type_desc(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "a Boolean",
            Value::Int(_) => "an integer",
            Value::Float(_) => "a float",
            Value::Str(_) => "a string",
            Value::Path(_) => "a path",
            Value::Attrs(_) => "a set",
            Value::List(_) => "a list",
            Value::Lambda(_) => "a function",
            Value::PrimOp(_) => "a built-in function",
            Value::PrimOpApp(_) => "a partially applied built-in function",
            Value::Thunk(_) => "a thunk",
        }
    }
    /// Whether this value is a function of any kind.
    pub fn is_function(&self) -> bool {
        matches!(
            self,
            Value::Lambda(_) | Value::PrimOp(_) | Value::PrimOpApp(_)
        )
    }
}
