//! `RcSlice<T>`: a reference-counted, immutable slice in a single
//! allocation (count, length, then the elements) behind a thin pointer.
//!
//! Lists and attribute sets are the evaluator's most numerous containers.
//! As `Rc<Box<[T]>>` each takes two allocations (a 32-byte cell and the
//! elements); as `Rc<[T]>` one, but behind a two-word pointer that would
//! make every `Value` three words. This keeps one allocation and one word.

use std::alloc::{Layout, alloc, dealloc, handle_alloc_error};
use std::cell::Cell;
use std::marker::PhantomData;
use std::ptr::NonNull;

/// The start of each allocation; the elements follow.
#[repr(C)]
struct Header {
    refs: Cell<usize>,
    len: usize,
}

/// A shared immutable slice (see the module documentation).
pub struct RcSlice<T> {
    ptr: NonNull<Header>,
    _owns: PhantomData<T>,
}

/// The layout of an allocation holding `len` elements, and the offset of
/// the first element.
fn layout_for<T>(len: usize) -> (Layout, usize) {
    let header = Layout::new::<Header>();
    // Only lengths of slices that already exist in memory get here, so
    // the size cannot overflow; stop rather than go on if it did.
    let Ok(items) = Layout::array::<T>(len) else {
        std::process::abort();
    };
    let Ok((layout, offset)) = header.extend(items) else {
        std::process::abort();
    };
    (layout.pad_to_align(), offset)
}

impl<T> RcSlice<T> {
    /// Moves `len` elements from `src` into a new allocation.
    ///
    /// # Safety
    /// `src` must point to `len` initialised elements, which the caller
    /// must not use or drop afterwards.
    unsafe fn from_raw_moved(src: *const T, len: usize) -> RcSlice<T> {
        let (layout, offset) = layout_for::<T>(len);
        // SAFETY: the layout is never zero-sized (it holds the header);
        // the header and `len` elements fit in it at the computed offsets,
        // and the caller hands over the elements.
        unsafe {
            let p = alloc(layout).cast::<Header>();
            let Some(ptr) = NonNull::new(p) else {
                handle_alloc_error(layout);
            };
            p.write(Header {
                refs: Cell::new(1),
                len,
            });
            std::ptr::copy_nonoverlapping(src, p.cast::<u8>().add(offset).cast::<T>(), len);
            RcSlice {
                ptr,
                _owns: PhantomData,
            }
        }
    }

    /// The elements, taken from a vector.
    pub fn from_vec(mut v: Vec<T>) -> RcSlice<T> {
        let len = v.len();
        // SAFETY: the vector's elements move into the slice; setting its
        // length to zero makes it forget them (it only frees its buffer).
        unsafe {
            let s = RcSlice::from_raw_moved(v.as_ptr(), len);
            v.set_len(0);
            s
        }
    }

    fn items(&self) -> *mut T {
        let (_, offset) = layout_for::<T>(0);
        // SAFETY: the elements start `offset` bytes into the allocation.
        unsafe { self.ptr.as_ptr().cast::<u8>().add(offset).cast::<T>() }
    }

    fn header(&self) -> &Header {
        // SAFETY: the allocation lives while any reference to it does.
        unsafe { self.ptr.as_ref() }
    }

    /// Whether two references share one allocation.
    pub fn ptr_eq(a: &RcSlice<T>, b: &RcSlice<T>) -> bool {
        a.ptr == b.ptr
    }

    /// The address of the allocation (an identity for cycle detection).
    pub fn as_ptr(&self) -> *const u8 {
        self.ptr.as_ptr().cast::<u8>()
    }
}

impl<T> std::ops::Deref for RcSlice<T> {
    type Target = [T];
    #[inline]
    fn deref(&self) -> &[T] {
        // SAFETY: the allocation holds `len` initialised elements, which
        // are never mutated while shared.
        unsafe { std::slice::from_raw_parts(self.items(), self.header().len) }
    }
}

impl<T> Clone for RcSlice<T> {
    #[inline]
    fn clone(&self) -> RcSlice<T> {
        let refs = &self.header().refs;
        // More references than memory can hold: abort as `Rc` does.
        let n = refs
            .get()
            .checked_add(1)
            .unwrap_or_else(|| std::process::abort());
        refs.set(n);
        RcSlice {
            ptr: self.ptr,
            _owns: PhantomData,
        }
    }
}

impl<T> Drop for RcSlice<T> {
    #[inline]
    fn drop(&mut self) {
        let h = self.header();
        let n = h.refs.get() - 1;
        h.refs.set(n);
        if n == 0 {
            let len = h.len;
            let (layout, _) = layout_for::<T>(len);
            // SAFETY: this was the last reference: drop the elements in
            // place and free the allocation made for exactly `len` of them.
            unsafe {
                std::ptr::drop_in_place(std::ptr::slice_from_raw_parts_mut(self.items(), len));
                dealloc(self.ptr.as_ptr().cast::<u8>(), layout);
            }
        }
    }
}

impl<T> From<Vec<T>> for RcSlice<T> {
    fn from(v: Vec<T>) -> RcSlice<T> {
        RcSlice::from_vec(v)
    }
}

impl<T> From<Box<[T]>> for RcSlice<T> {
    fn from(b: Box<[T]>) -> RcSlice<T> {
        RcSlice::from_vec(b.into_vec())
    }
}

/// Fills a new allocation element by element (see [`RcSlice::build`]);
/// frees what it wrote if the filling panics.
pub struct Filler<T> {
    block: *mut u8,
    items: *mut T,
    written: usize,
    len: usize,
    layout: Layout,
}

impl<T> Filler<T> {
    /// Appends `x`. Panics past the announced length.
    #[inline]
    pub fn push(&mut self, x: T) {
        assert!(self.written < self.len, "more elements than announced");
        // SAFETY: slot `written` lies inside the allocation and is free.
        unsafe { self.items.add(self.written).write(x) };
        self.written += 1;
    }
}

impl<T: Clone> Filler<T> {
    /// Appends clones of `xs`.
    #[inline]
    pub fn extend_from_slice(&mut self, xs: &[T]) {
        assert!(
            xs.len() <= self.len - self.written,
            "more elements than announced"
        );
        for x in xs {
            // SAFETY: as in `push`; the room was checked above.
            unsafe { self.items.add(self.written).write(x.clone()) };
            self.written += 1;
        }
    }
}

impl<T> Drop for Filler<T> {
    fn drop(&mut self) {
        // SAFETY: the first `written` elements were written and nothing
        // else owns them; the block was allocated with `layout`.
        unsafe {
            std::ptr::drop_in_place(std::ptr::slice_from_raw_parts_mut(self.items, self.written));
            dealloc(self.block, self.layout);
        }
    }
}

impl<T> RcSlice<T> {
    /// A slice of `len` elements that `fill` appends to the [`Filler`] it
    /// is given, written straight into the new allocation. Panics if
    /// `fill` appends fewer.
    pub fn build(len: usize, fill: impl FnOnce(&mut Filler<T>)) -> RcSlice<T> {
        let (layout, offset) = layout_for::<T>(len);
        // SAFETY: as in `from_raw_moved`; once all `len` elements are
        // written, the header is filled in and the filler forgotten, so
        // the slice alone owns the elements.
        unsafe {
            let block = alloc(layout);
            let Some(ptr) = NonNull::new(block.cast::<Header>()) else {
                handle_alloc_error(layout);
            };
            let mut filler = Filler {
                block,
                items: block.add(offset).cast::<T>(),
                written: 0,
                len,
                layout,
            };
            fill(&mut filler);
            assert!(filler.written == len, "fewer elements than announced");
            std::mem::forget(filler);
            ptr.as_ptr().write(Header {
                refs: Cell::new(1),
                len,
            });
            RcSlice {
                ptr,
                _owns: PhantomData,
            }
        }
    }

    /// Writes the `len` elements `it` yields straight into a new
    /// allocation (a list of a million elements is not built twice).
    /// Panics if `it` yields fewer.
    pub fn from_exact_iter(len: usize, it: impl Iterator<Item = T>) -> RcSlice<T> {
        RcSlice::build(len, |f| {
            for x in it.take(len) {
                f.push(x);
            }
        })
    }
}

impl<T> FromIterator<T> for RcSlice<T> {
    /// Builds in place when the iterator knows its length (slices, ranges
    /// and maps over them: list and set literals, `map`, `genList`), else
    /// collects on the stack first while there are few elements.
    fn from_iter<I: IntoIterator<Item = T>>(it: I) -> RcSlice<T> {
        let it = it.into_iter();
        if let (lo, Some(hi)) = it.size_hint()
            && lo == hi
        {
            return RcSlice::from_exact_iter(lo, it);
        }
        let mut v: smallvec::SmallVec<[T; 8]> = it.collect();
        let len = v.len();
        // SAFETY: as in `from_vec`.
        unsafe {
            let s = RcSlice::from_raw_moved(v.as_ptr(), len);
            v.set_len(0);
            s
        }
    }
}

impl<T> Default for RcSlice<T> {
    fn default() -> RcSlice<T> {
        RcSlice::from_vec(Vec::new())
    }
}

impl<T: std::fmt::Debug> std::fmt::Debug for RcSlice<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::RcSlice;
    use std::rc::Rc;

    #[test]
    fn elements_are_dropped_once_with_the_last_reference() {
        let marker = Rc::new(());
        let s: RcSlice<Rc<()>> = (0..5).map(|_| marker.clone()).collect();
        let t = s.clone();
        assert_eq!(Rc::strong_count(&marker), 6);
        drop(s);
        assert_eq!(Rc::strong_count(&marker), 6);
        assert_eq!(t.len(), 5);
        drop(t);
        assert_eq!(Rc::strong_count(&marker), 1);
    }

    #[test]
    fn builds_from_iterators_of_known_and_unknown_length() {
        let exact: RcSlice<u64> = (0..1000u64).map(|i| i * 3).collect();
        assert_eq!(exact.len(), 1000);
        assert_eq!(exact[999], 2997);
        let filtered: RcSlice<u64> = (0..1000u64).filter(|i| i % 7 == 0).collect();
        assert_eq!(filtered.len(), 143);
        assert!(filtered.iter().all(|i| i % 7 == 0));
    }

    #[test]
    fn a_panicking_iterator_leaks_nothing() {
        let marker = Rc::new(());
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _: RcSlice<Rc<()>> = (0..10)
                .map(|i| {
                    assert!(i < 5, "stop");
                    marker.clone()
                })
                .collect();
        }));
        assert!(r.is_err());
        assert_eq!(Rc::strong_count(&marker), 1);
    }

    #[test]
    fn holds_what_it_was_built_from() {
        let v: Vec<String> = (0..100).map(|i| format!("item {i}")).collect();
        let s = RcSlice::from_vec(v.clone());
        assert_eq!(&*s, &v[..]);
        let b: RcSlice<String> = v.clone().into_boxed_slice().into();
        assert_eq!(&*b, &v[..]);
        let e: RcSlice<String> = RcSlice::default();
        assert!(e.is_empty());
        assert!(RcSlice::ptr_eq(&s, &s.clone()));
        assert!(!RcSlice::ptr_eq(&s, &b));
    }
}
