//! Guards the sizes of the core runtime types, which matter for memory use.
use cairn_eval::value::{Thunk, ThunkState, Value};

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
