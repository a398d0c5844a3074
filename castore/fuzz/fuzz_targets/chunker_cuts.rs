//! Fuzzes the chunker: on any bytes, with any of a few configurations,
//! cutting a blob one `next_cut` after another gives the chunks of the
//! `fastcdc` crate's own v2020 chunker (normalization level 1).
#![no_main]

use cairn_castore::ChunkerConfig;
use libfuzzer_sys::fuzz_target;

/// Small configurations, so that short inputs hold many chunks.
const CONFIGS: [(u32, u32, u32); 4] = [
    (64, 256, 1024),
    (256, 1024, 4096),
    (1024, 1024, 1024),
    (2048, 8192, 65536),
];

fuzz_target!(|input: &[u8]| {
    let Some((&pick, data)) = input.split_first() else {
        return;
    };
    let (min, avg, max) = CONFIGS[pick as usize % CONFIGS.len()];
    let Ok(config) = ChunkerConfig::new(min, avg, max) else {
        panic!("{min}/{avg}/{max} is a valid configuration");
    };
    let expected = fastcdc::v2020::FastCDC::new(data, min as usize, avg as usize, max as usize)
        .map(|chunk| chunk.length);
    let mut start = 0;
    for length in expected {
        assert_eq!(config.next_cut(&data[start..]), length, "at {start}");
        start += length;
    }
    assert_eq!(start, data.len());
});
