//! Fuzzes store path, nixbase32, hash and content-address parsing: errors
//! are typed, and whatever parses prints back to the same text.
#![no_main]

use cairn_pathinfo::{ContentAddress, HashAlgo, NixHash, StoreDir, StorePath, nixbase32};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = StorePath::from_base_name_bytes(data) {
        assert_eq!(p.to_string().as_bytes(), data);
    }
    if let Ok(bytes) = nixbase32::decode(data) {
        assert_eq!(nixbase32::encode(&bytes).as_bytes(), data);
    }
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(p) = StoreDir::default().parse_path(s) {
        assert_eq!(p.to_absolute_path(), s);
    }
    if let Ok(h) = s.parse::<NixHash>() {
        assert_eq!(h.to_sri().parse::<NixHash>().expect("sri"), h);
    }
    for algo in HashAlgo::ALL {
        let _ = NixHash::parse_any(s, Some(algo));
    }
    if let Ok(ca) = s.parse::<ContentAddress>() {
        assert_eq!(ca.to_string().parse::<ContentAddress>().expect("ca"), ca);
    }
});
