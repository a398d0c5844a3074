//! Fuzzes the directory decoder: no input may panic, and whatever decodes
//! must re-encode to exactly the same bytes (decoding accepts only
//! canonical encodings) and have a consistent size.
#![no_main]

use cairn_castore::Directory;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(dir) = Directory::decode(data) {
        assert_eq!(dir.encode(), data);
        let _ = dir.size();
        for (name, _) in dir.entries() {
            assert!(dir.get(name.as_bytes()).is_some());
        }
    }
});
