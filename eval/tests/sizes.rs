//! Guards the sizes of the core runtime types, which matter for memory use.
use cairn_eval::value::{Attrs, Entry, List, NixStr, Thunk, ThunkRef, ThunkState, Value};

#[test]
fn value_is_two_words() {
    assert_eq!(std::mem::size_of::<Value>(), 16);
}

#[test]
fn thunk_sizes() {
    eprintln!(
        "ThunkState {} Thunk {}",
        std::mem::size_of::<ThunkState>(),
        std::mem::size_of::<Thunk>()
    );
    assert_eq!(std::mem::size_of::<ThunkState>(), 24);
}

#[test]
fn attribute_entries_are_three_words() {
    assert_eq!(std::mem::size_of::<Entry>(), 24);
}

#[test]
fn a_thunk_is_one_reference_count_and_its_state() {
    assert_eq!(ThunkRef::ALLOC_SIZE, 8 + std::mem::size_of::<Thunk>());
    // The allocator rounds small sizes up to 16-byte classes: 32, not 48.
    assert_eq!(ThunkRef::ALLOC_SIZE, 32);
}

#[test]
fn sets_and_lists_are_one_thin_pointer() {
    assert_eq!(std::mem::size_of::<Attrs>(), 8);
    assert_eq!(std::mem::size_of::<List>(), 8);
}

#[test]
fn a_string_cell_fits_a_48_byte_block() {
    // Two reference counts and the string: bytes inline or boxed, context.
    assert_eq!(std::mem::size_of::<NixStr>(), 32);
}
