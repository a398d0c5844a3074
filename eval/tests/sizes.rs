//! Guards the sizes of the core runtime types, which matter for memory use.
use cairn_eval::value::{Entry, Thunk, ThunkState, Value};

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
    assert!(std::mem::size_of::<Thunk>() <= 48);
}

#[test]
fn attribute_entries_are_three_words() {
    assert_eq!(std::mem::size_of::<Entry>(), 24);
}
