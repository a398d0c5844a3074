//! Fuzzes the many-input hasher: any bytes, split into inputs at lengths
//! the first bytes choose, hash with `ManyHasher::hash_each` (with the
//! widest kernel this CPU runs, and with 8 lanes at most) to the digests of
//! the `blake3` crate, one input at a time.
#![no_main]

use cairn_castore::Digest;
use cairn_castore::many_hash::ManyHasher;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    // The first byte is how many inputs (up to 40); each takes a length
    // from the next two bytes (scaled to 0-8 KiB and beyond), clipped to
    // what is left.
    let Some((&count, mut rest)) = input.split_first() else {
        return;
    };
    let mut lengths = Vec::new();
    for _ in 0..count % 41 {
        let Some((pair, tail)) = rest.split_first_chunk::<2>() else {
            break;
        };
        lengths.push(u16::from_le_bytes(*pair) as usize / 4);
        rest = tail;
    }
    let mut inputs: Vec<&[u8]> = Vec::new();
    for length in lengths {
        let (piece, tail) = rest.split_at(length.min(rest.len()));
        inputs.push(piece);
        rest = tail;
    }
    let expected: Vec<Digest> = inputs.iter().map(|input| Digest::of(input)).collect();
    for max_lanes in [16, 8] {
        let mut digests = Vec::new();
        ManyHasher::with_max_lanes(max_lanes).hash_each(&inputs, &mut digests);
        assert_eq!(digests, expected, "{max_lanes} lanes at most");
    }
});
