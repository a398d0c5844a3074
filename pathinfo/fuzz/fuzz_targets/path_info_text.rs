//! Fuzzes the parser of PathInfo objects (as read from object stores):
//! arbitrary text must give a typed error or a PathInfo whose text form
//! parses back to the same value.
#![no_main]

use cairn_pathinfo::path_info_text::{from_text, to_text};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(info) = from_text(text) {
        let rendered = to_text(&info).expect("a parsed PathInfo renders");
        let again = from_text(&rendered).expect("re-parse");
        assert_eq!(again, info);
    }
});
