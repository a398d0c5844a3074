//! Content-defined chunking (FastCDC v2020) of blobs.
//!
//! A blob's digest is BLAKE3 of its whole content whatever the chunking;
//! chunking only decides how the bytes are stored and fetched.
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
    pub fn next_cut(&self, data: &[u8]) -> usize {
        if data.len() <= self.min_size as usize {
            return data.len();
        }
        use fastcdc::v2020 as f;
        let window = &data[..data.len().min(self.max_size as usize)];
        let (mask_s, mask_l) = f::select_masks(self.avg_size as usize, f::Normalization::Level1);
        let (_, end) = f::cut(
            window,
            self.min_size as usize,
            self.avg_size as usize,
            self.max_size as usize,
            mask_s,
            mask_l,
            mask_s << 1,
            mask_l << 1,
        );
        end.clamp(1, window.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
        let mut x = seed | 1;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

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

    #[test]
    fn config_validation() {
        assert!(ChunkerConfig::new(1, 2, 3).is_err());
        assert!(ChunkerConfig::new(4096, 1024, 8192).is_err());
        assert!(ChunkerConfig::new(4096, 16384, 65536).is_ok());
    }
}
