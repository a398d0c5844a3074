//! Content-defined chunking (FastCDC v2020) of blobs.
//!
//! A blob's digest is BLAKE3 of its whole content whatever the chunking;
//! chunking only decides how the bytes are stored and fetched.
//!
//! The cuts are those of the `fastcdc` crate's v2020 chunker (its gear
//! table and masks, normalization level 1); the search for them is this
//! module's own ([`ChunkerConfig::next_cut`]), a quarter faster (`cargo run
//! --release -p cairn-bench --bin chunker`). Tests, a property test and a
//! fuzz target (`chunker_cuts`) check that both cut in the same places.
//!
//! ## Choosing the default
//!
//! Measured with `cargo run --release -p cairn-bench --bin chunk_params` on
//! two similar trees: a generated tree (4000 small files of 1-32 KiB and four
//! 32 MiB files, 193 MiB) and a copy with 1% of the small files edited, 100
//! bytes inserted into and 4 KiB appended to each large file. "New MiB" is
//! what storing the copy costs once the first tree is stored; each chunk
//! costs an index entry, a request to a remote backend and a cache slot.
//!
//! | min/avg/max KiB | chunks | mean chunk KiB | new MiB for the copy |
//! |-----------------|--------|----------------|----------------------|
//! | 4/16/64         | 12479  | 16             | 0.73                 |
//! | 8/32/128        | 7303   | 27             | 0.99                 |
//! | 16/64/256       | 5669   | 35             | 1.23                 |
//! | 32/128/512      | 4837   | 41             | 2.00                 |
//! | 64/256/1024     | 4420   | 45             | 3.42                 |
//!
//! Small files are (nearly) one chunk whatever the parameters; for the large files
//! 16/64/256 makes 5.1x fewer chunks than 4/16/64 for 0.5 MiB more new data
//! for the copy, while larger parameters cost 1.6-2.8x more new data. The default
//! is therefore 16/64/256 KiB ([`ChunkerConfig::default`]).
//!
//! A blob no larger than the average chunk size is one chunk, never cut
//! ([`ChunkerConfig::keeps_whole`]): FastCDC's stricter mask below the
//! average already leaves most such blobs whole, and skipping the search
//! saves a fifth of the cut work of an import of small files.

/// FastCDC parameters, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkerConfig {
    pub min_size: u32,
    pub avg_size: u32,
    pub max_size: u32,
}

/// Why a chunker configuration is unusable.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ChunkerConfigError {
    #[error(
        "chunk sizes must be even with min <= avg <= max, min in 64..=1MiB, avg in 256..=4MiB, max in 1KiB..=16MiB; got {0}/{1}/{2}"
    )]
    OutOfRange(u32, u32, u32),
}

impl Default for ChunkerConfig {
    fn default() -> Self {
        ChunkerConfig {
            min_size: 16 * 1024,
            avg_size: 64 * 1024,
            max_size: 256 * 1024,
        }
    }
}

impl ChunkerConfig {
    pub fn new(min_size: u32, avg_size: u32, max_size: u32) -> Result<Self, ChunkerConfigError> {
        use fastcdc::v2020 as f;
        let ok = (f::MINIMUM_MIN..=f::MINIMUM_MAX).contains(&(min_size as usize))
            && (f::AVERAGE_MIN..=f::AVERAGE_MAX).contains(&(avg_size as usize))
            && (f::MAXIMUM_MIN..=f::MAXIMUM_MAX).contains(&(max_size as usize))
            && min_size <= avg_size
            && avg_size <= max_size
            && [min_size, avg_size, max_size].iter().all(|s| s % 2 == 0);
        if ok {
            Ok(ChunkerConfig {
                min_size,
                avg_size,
                max_size,
            })
        } else {
            Err(ChunkerConfigError::OutOfRange(min_size, avg_size, max_size))
        }
    }

    /// Whether a whole blob of `len` bytes is stored as one chunk, uncut: a
    /// blob no larger than the average chunk is. Cutting one would add an
    /// index entry and a fetch for little to share, and it saves the cut
    /// search over most small files. Every writer of blobs follows this, so
    /// a blob is chunked alike whichever way it comes in.
    pub fn keeps_whole(&self, blob_len: u64) -> bool {
        blob_len <= u64::from(self.avg_size)
    }

    /// Cuts the blob `data` into chunks; returns the end offset of each
    /// chunk. The last chunk ends at `data.len()`. An empty input has no
    /// chunks.
    pub fn cut_points(&self, data: &[u8]) -> Vec<usize> {
        if !data.is_empty() && self.keeps_whole(data.len() as u64) {
            return vec![data.len()];
        }
        let mut ends = Vec::with_capacity(data.len() / self.avg_size as usize + 1);
        let mut start = 0;
        while start < data.len() {
            let len = self.next_cut(&data[start..]);
            start += len;
            ends.push(start);
        }
        ends
    }

    /// Length of the first chunk of `data` (non-empty input). The result only
    /// depends on the first `max_size` bytes, so streaming callers that hold
    /// at least `max_size` bytes (or the rest of the blob) cut exactly where a
    /// cut over the whole blob would.
    ///
    /// The cut is FastCDC v2020's (the `fastcdc` crate's `v2020::cut` with
    /// normalization level 1, its gear table and masks), found by a faster
    /// scan of the same gear hash (`find_cut`).
    pub fn next_cut(&self, data: &[u8]) -> usize {
        let min = self.min_size as usize;
        if data.len() <= min {
            return data.len();
        }
        let window = data.len().min(self.max_size as usize);
        if window <= min {
            return window.max(1);
        }
        use fastcdc::v2020 as f;
        let (mask_s, mask_l) = f::select_masks(self.avg_size as usize, f::Normalization::Level1);
        // Positions are tested in pairs from the (even) minimum size on:
        // with the strict mask before the average size (or the window's
        // end, if that comes first), with the relaxed one after it, up to
        // the window's last even position. An odd last byte is never a cut.
        let center = (self.avg_size as usize).min(window);
        let strict_from = min & !1;
        let relaxed_from = strict_from.max(center & !1);
        let relaxed_to = relaxed_from.max(window & !1);
        let gear = gear_table();
        let hash = match find_cut(&data[strict_from..relaxed_from], 0, mask_s, gear) {
            Ok(at) => return strict_from + at,
            Err(hash) => hash,
        };
        match find_cut(&data[relaxed_from..relaxed_to], hash, mask_l, gear) {
            Ok(at) => relaxed_from + at,
            Err(_) => window,
        }
    }
}

/// FastCDC v2020's gear table: the `fastcdc` crate's own, read once.
fn gear_table() -> &'static [u64; 256] {
    static TABLE: std::sync::OnceLock<[u64; 256]> = std::sync::OnceLock::new();
    TABLE.get_or_init(|| {
        let (gear, _) = fastcdc::v2020::get_gear_with_seed(0);
        let mut table = [0u64; 256];
        for (entry, value) in table.iter_mut().zip(gear.iter()) {
            *entry = *value;
        }
        table
    })
}

/// Scans `bytes` (an even number of them) with the gear hash, which stood
/// at `hash` before the first: `Ok(i)` for the first position `i` whose
/// hash, taken with byte `i` added, has none of `mask`'s bits set (FastCDC
/// then ends the chunk before byte `i`), else `Err` with the hash after the
/// last byte, to go on with.
///
/// The hash of FastCDC is `hash = (hash << 1) + GEAR[byte]` per byte. Taken
/// one byte after another, each step waits for the previous one's shift and
/// add. Here four bytes make one step: the sums of two table entries
/// (`2 * GEAR[a] + GEAR[b]`) do not depend on the hash, so the hash moves by
/// two bytes with one shift-and-add (`hash * 4 + sum`, one `lea` on x86),
/// and the hashes at the positions between are computed off that chain.
/// On this project's benchmark machine the scan runs 1.23-1.26 times as
/// fast as the crate's (`cargo run --release -p cairn-bench --bin
/// chunker`), with the same cuts.
#[inline]
fn find_cut(bytes: &[u8], mut hash: u64, mask: u64, gear: &[u64; 256]) -> Result<usize, u64> {
    let mut quads = bytes.chunks_exact(4);
    let mut at = 0;
    for quad in &mut quads {
        let (g0, g1) = (gear[quad[0] as usize], gear[quad[1] as usize]);
        let (g2, g3) = (gear[quad[2] as usize], gear[quad[3] as usize]);
        let pair01 = opaque((g0 << 1).wrapping_add(g1));
        let pair23 = opaque((g2 << 1).wrapping_add(g3));
        let h0 = (hash << 1).wrapping_add(g0);
        let h1 = (hash << 2).wrapping_add(pair01);
        let h2 = (h1 << 1).wrapping_add(g2);
        let h3 = (h1 << 2).wrapping_add(pair23);
        if h0 & mask == 0 {
            return Ok(at);
        }
        if h1 & mask == 0 {
            return Ok(at + 1);
        }
        if h2 & mask == 0 {
            return Ok(at + 2);
        }
        if h3 & mask == 0 {
            return Ok(at + 3);
        }
        hash = h3;
        at += 4;
    }
    for &byte in quads.remainder() {
        hash = (hash << 1).wrapping_add(gear[byte as usize]);
        if hash & mask == 0 {
            return Ok(at);
        }
        at += 1;
    }
    Err(hash)
}

/// `value`, unchanged, hidden from the optimizer: otherwise it folds the
/// two-entry sums of [`find_cut`] back into the hash chain, one add per
/// byte, and the scan is no faster than a byte at a time.
#[inline(always)]
#[cfg_attr(
    not(any(target_arch = "x86_64", target_arch = "aarch64")),
    allow(unused_mut)
)]
fn opaque(mut value: u64) -> u64 {
    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    // SAFETY: the assembly is a comment: it names the register holding
    // `value` and leaves it as it is, touching no memory, stack or flags.
    unsafe {
        std::arch::asm!(
            "/* {0} */",
            inout(reg) value,
            options(pure, nomem, nostack, preserves_flags)
        )
    };
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::test_support::pseudo_random;

    #[test]
    fn blobs_up_to_the_average_size_are_one_chunk() {
        let cfg = ChunkerConfig::default();
        let avg = cfg.avg_size as usize;
        // Data with a FastCDC cut between min and avg: the search alone
        // would cut it, the rule keeps it whole.
        let cut_early = (0..200)
            .map(|seed| pseudo_random(avg, seed))
            .find(|d| cfg.next_cut(d) < avg)
            .expect("some data has a cut below the average size");
        assert_eq!(cfg.cut_points(&cut_early), vec![avg]);
        let mut longer = cut_early.clone();
        longer.push(0);
        assert!(cfg.cut_points(&longer).len() > 1);
        assert_eq!(cfg.cut_points(&[]), Vec::<usize>::new());
    }

    #[test]
    fn chunks_cover_input_and_respect_bounds() {
        let cfg = ChunkerConfig::default();
        let data = pseudo_random(3 << 20, 7);
        let ends = cfg.cut_points(&data);
        assert_eq!(*ends.last().unwrap(), data.len());
        let mut start = 0;
        for (i, end) in ends.iter().enumerate() {
            let len = end - start;
            assert!(len <= cfg.max_size as usize);
            if i + 1 < ends.len() {
                assert!(len >= cfg.min_size as usize);
            }
            start = *end;
        }
    }

    #[test]
    fn an_insertion_only_changes_nearby_chunks() {
        let cfg = ChunkerConfig::default();
        let data = pseudo_random(4 << 20, 3);
        let mut edited = data.clone();
        edited.splice(1_000_000..1_000_000, b"inserted bytes".iter().copied());
        let chunks = |d: &[u8]| {
            let mut start = 0;
            cfg.cut_points(d)
                .into_iter()
                .map(|end| {
                    let c = blake3::hash(&d[start..end]);
                    start = end;
                    c
                })
                .collect::<std::collections::HashSet<_>>()
        };
        let (a, b) = (chunks(&data), chunks(&edited));
        let changed = b.difference(&a).count();
        assert!(changed <= 3, "{changed} chunks changed");
    }

    /// The `fastcdc` crate's own cut over the window `next_cut` looks at:
    /// what `next_cut` must return.
    fn crate_cut(cfg: &ChunkerConfig, data: &[u8]) -> usize {
        if data.len() <= cfg.min_size as usize {
            return data.len();
        }
        use fastcdc::v2020 as f;
        let window = &data[..data.len().min(cfg.max_size as usize)];
        let (mask_s, mask_l) = f::select_masks(cfg.avg_size as usize, f::Normalization::Level1);
        let (_, end) = f::cut(
            window,
            cfg.min_size as usize,
            cfg.avg_size as usize,
            cfg.max_size as usize,
            mask_s,
            mask_l,
            mask_s << 1,
            mask_l << 1,
        );
        end.clamp(1, window.len())
    }

    /// Bytes of one of four kinds: random, from a four-letter alphabet,
    /// a short repeated pattern, or zeros with a few random bytes.
    fn sample(kind: u8, len: usize, seed: u64) -> Vec<u8> {
        let mut data = pseudo_random(len, seed);
        match kind % 4 {
            0 => {}
            1 => data.iter_mut().for_each(|b| *b &= 3),
            2 => data
                .iter_mut()
                .enumerate()
                .for_each(|(i, b)| *b = (i % 7) as u8 * 31),
            _ => data
                .iter_mut()
                .enumerate()
                .for_each(|(i, b)| *b = if i % 4099 == 0 { *b } else { 0 }),
        }
        data
    }

    /// Cuts `data` from start to end with `next_cut` and with the crate,
    /// also through windows ending at odd and short lengths.
    fn assert_cuts_match(cfg: &ChunkerConfig, data: &[u8]) {
        let mut start = 0;
        while start < data.len() {
            let rest = &data[start..];
            let cut = cfg.next_cut(rest);
            assert_eq!(
                cut,
                crate_cut(cfg, rest),
                "{cfg:?} at {start} of {}",
                data.len()
            );
            for shorter in [cut + 1, cut.saturating_sub(1), cfg.avg_size as usize + 1] {
                let window = &rest[..shorter.clamp(1, rest.len())];
                assert_eq!(cfg.next_cut(window), crate_cut(cfg, window), "{cfg:?}");
            }
            start += cut;
        }
    }

    const CONFIGS: [ChunkerConfig; 4] = [
        ChunkerConfig {
            min_size: 16 * 1024,
            avg_size: 64 * 1024,
            max_size: 256 * 1024,
        },
        ChunkerConfig {
            min_size: 64,
            avg_size: 256,
            max_size: 1024,
        },
        ChunkerConfig {
            min_size: 2048,
            avg_size: 8192,
            max_size: 65536,
        },
        ChunkerConfig {
            min_size: 1024,
            avg_size: 1024,
            max_size: 1024,
        },
    ];

    #[test]
    fn cuts_are_those_of_the_fastcdc_crate() {
        assert_eq!(CONFIGS[0], ChunkerConfig::default());
        for (i, cfg) in CONFIGS.iter().enumerate() {
            for kind in 0..4 {
                assert_cuts_match(cfg, &sample(kind, (1 << 20) + 2 * i + 1, 11 + i as u64));
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn cuts_match_the_crate_on_any_input(
            config in 0..CONFIGS.len(),
            kind in 0u8..4,
            len in 0usize..400_000,
            seed: u64,
        ) {
            assert_cuts_match(&CONFIGS[config], &sample(kind, len, seed));
        }
    }

    #[test]
    fn config_validation() {
        assert!(ChunkerConfig::new(1, 2, 3).is_err());
        assert!(ChunkerConfig::new(4096, 1024, 8192).is_err());
        assert!(ChunkerConfig::new(4096, 16384, 65536).is_ok());
    }
}
