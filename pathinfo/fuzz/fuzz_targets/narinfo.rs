//! Fuzzes the narinfo parser: arbitrary text must give a typed error or a
//! narinfo whose serialisation parses back to the same value.
#![no_main]

use cairn_pathinfo::StoreDir;
use cairn_pathinfo::narinfo::NarInfo;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(ni) = NarInfo::parse(text) {
        let rendered = ni.to_string();
        let again = NarInfo::parse(&rendered).expect("re-parse");
        assert_eq!(again, ni);
        assert_eq!(again.to_string(), rendered);
        let _ = ni.fingerprint(&StoreDir::default());
    }
});
