//! Fuzzes what `cairn serve` reads from a request line and headers: the
//! path router and the `Range` header parser. Any input gives a route (or
//! Unknown) and a range inside the resource.
#![no_main]

use cairn_pathinfo::binary_cache::server::range::{RangeRequest, parse_range};
use cairn_pathinfo::binary_cache::server::route::{Route, parse_route};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Route::Nar {
        rendered: Some(name),
        ..
    } = parse_route(text)
    {
        // A rendered NAR's URL parses back to itself.
        let url = name.url();
        assert!(matches!(
            parse_route(&format!("/{url}")),
            Route::Nar { rendered: Some(again), .. } if again == name
        ));
    }
    let length = data.len() as u64 * 97;
    if let RangeRequest::Partial { start, end } = parse_range(Some(text), length) {
        assert!(start <= end && end < length);
    }
});
