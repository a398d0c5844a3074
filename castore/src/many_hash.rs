//! BLAKE3 of many short inputs at once, one input per SIMD lane.
//!
//! The `blake3` crate hashes one input at a time. Its widest kernel
//! compresses 16 of an input's 1 KiB chunks side by side, which keeps every
//! lane busy on a large input; but an input of a few KiB has only a few
//! chunks, and its last chunk (an input under 1 KiB has nothing else) is
//! compressed one 64-byte block after another on a single lane. On small
//! files, which most of a Nix store is, the crate runs at well under half
//! its speed on large inputs: on the build machine, with the bytes in the
//! CPU's caches, 3.6-3.9 GB/s on files of 1-32 KiB and 1.0 GB/s on files
//! under 4 KiB, against 9.8-10.2 GB/s on 64 KiB chunks
//! (`cargo run --release -p cairn-bench --bin many_hash`).
//!
//! [`ManyHasher::hash_each`] hashes a batch of inputs together. Every chunk
//! of every input is one job, and 16 jobs at a time go through one AVX-512
//! compression (8 with AVX2), a lane each, block by block (jobs with fewer
//! blocks sit out the rest under a lane mask). The chunk chaining values of
//! inputs of more than one chunk are then merged into parent nodes the same
//! way, level by level, pairing them from the left as BLAKE3's tree does.
//! The digests are those of `blake3::hash`: the tests compare them, with
//! every kernel the CPU runs, on inputs of every length class, alone and in
//! batches. Without AVX2, each input goes to the crate.

use crate::Digest;

/// BLAKE3's initialization vector (the first 32 bits of the fractional
/// parts of the square roots of the first eight primes).
const IV: [u32; 8] = [
    0x6A09_E667,
    0xBB67_AE85,
    0x3C6E_F372,
    0xA54F_F53A,
    0x510E_527F,
    0x9B05_688C,
    0x1F83_D9AB,
    0x5BE0_CD19,
];
const CHUNK_START: u32 = 1;
const CHUNK_END: u32 = 2;
const PARENT: u32 = 4;
const ROOT: u32 = 8;
const BLOCK_LEN: usize = 64;
const CHUNK_LEN: usize = 1024;
/// Lanes of one AVX-512 compression.
const LANES: usize = 16;

/// The order of the message words in each of the seven rounds: the
/// identity, then BLAKE3's permutation applied once more per round.
const SCHEDULE: [[usize; 16]; 7] = {
    const PERMUTATION: [usize; 16] = [2, 6, 3, 10, 7, 0, 4, 13, 1, 11, 12, 5, 9, 14, 15, 8];
    let mut schedule = [[0usize; 16]; 7];
    let mut i = 0;
    while i < 16 {
        schedule[0][i] = i;
        i += 1;
    }
    let mut round = 1;
    while round < 7 {
        let mut i = 0;
        while i < 16 {
            schedule[round][i] = schedule[round - 1][PERMUTATION[i]];
            i += 1;
        }
        round += 1;
    }
    schedule
};

/// One chunk to compress: `len` bytes of input `input` from `offset`, the
/// chunk's index in its input as the counter.
#[derive(Clone, Copy)]
struct ChunkJob {
    input: u32,
    offset: usize,
    len: usize,
    counter: u64,
    /// The input's only chunk: its last block is the root.
    root: bool,
    /// Where its chaining value goes in [`ManyHasher::cvs`].
    slot: usize,
}

impl ChunkJob {
    /// 64-byte blocks it is compressed in (an empty chunk still has one).
    fn blocks(&self) -> usize {
        self.len.div_ceil(BLOCK_LEN).max(1)
    }
}

/// Hashes batches of inputs with BLAKE3 across SIMD lanes, keeping its
/// working memory from one batch to the next.
pub struct ManyHasher {
    jobs: Vec<ChunkJob>,
    /// The jobs of chunks with fewer blocks than a whole one (at most one
    /// per input, its last), set apart while `jobs` is built.
    short_jobs: Vec<ChunkJob>,
    /// Chaining values: each input's nodes of the current tree level, the
    /// inputs one after another (see `first_cv`).
    cvs: Vec<[u32; 8]>,
    /// Where each input's nodes start in `cvs`, and how many it has.
    first_cv: Vec<(usize, usize)>,
    parents: Vec<ParentJob>,
    /// The widest kernel used: [`Kernel::lanes`] at most this.
    max_lanes: usize,
}

impl Default for ManyHasher {
    fn default() -> ManyHasher {
        ManyHasher::with_max_lanes(MAX_LANES)
    }
}

impl ManyHasher {
    /// A hasher with nothing allocated yet, using the widest kernel this
    /// CPU runs.
    pub fn new() -> ManyHasher {
        ManyHasher::default()
    }

    /// A hasher whose kernel has at most `max_lanes` lanes (8: AVX2 even
    /// where AVX-512 runs; below 8: the `blake3` crate, one input at a
    /// time), to compare them.
    pub fn with_max_lanes(max_lanes: usize) -> ManyHasher {
        ManyHasher {
            jobs: Vec::new(),
            short_jobs: Vec::new(),
            cvs: Vec::new(),
            first_cv: Vec::new(),
            parents: Vec::new(),
            max_lanes,
        }
    }

    /// Replaces `out` with the BLAKE3 digest of each of `inputs`, in order:
    /// the same digests as [`Digest::of`], computed together.
    pub fn hash_each(&mut self, inputs: &[&[u8]], out: &mut Vec<Digest>) {
        let kernel = Kernel::available()
            .iter()
            .find(|kernel| kernel.lanes() <= self.max_lanes)
            .copied();
        match kernel {
            Some(kernel) if inputs.len() > 1 => self.hash_each_with(kernel, inputs, out),
            _ => {
                out.clear();
                out.extend(inputs.iter().map(|input| Digest::of(input)));
            }
        }
    }

    fn hash_each_with(&mut self, kernel: Kernel, inputs: &[&[u8]], out: &mut Vec<Digest>) {
        out.clear();
        // One job per chunk; each input's chunks get consecutive slots.
        self.jobs.clear();
        self.short_jobs.clear();
        self.first_cv.clear();
        let mut slots = 0;
        for (i, input) in inputs.iter().enumerate() {
            let chunks = input.len().div_ceil(CHUNK_LEN).max(1);
            self.first_cv.push((slots, chunks));
            for c in 0..chunks {
                let offset = c * CHUNK_LEN;
                let job = ChunkJob {
                    input: i as u32,
                    offset,
                    len: (input.len() - offset.min(input.len())).min(CHUNK_LEN),
                    counter: c as u64,
                    root: chunks == 1,
                    slot: slots + c,
                };
                if job.blocks() == CHUNK_LEN / BLOCK_LEN {
                    self.jobs.push(job);
                } else {
                    self.short_jobs.push(job);
                }
            }
            slots += chunks;
        }
        // Longest first: the jobs of one compression then have about as
        // many blocks, and few lanes sit idle. Among equals, in input
        // order: neighbouring lanes read neighbouring memory. The jobs of
        // a whole chunk's 16 blocks are already in that order; only the
        // others (one per input at most) need sorting.
        self.short_jobs
            .sort_unstable_by_key(|job| (std::cmp::Reverse(job.blocks()), job.slot));
        self.jobs.append(&mut self.short_jobs);
        self.cvs.clear();
        self.cvs.resize(slots, [0; 8]);
        let mut cvs = [[0u32; 8]; MAX_LANES];
        for batch in self.jobs.chunks(kernel.lanes()) {
            // SAFETY: `available` found the kernel's features on this CPU;
            // every job's range lies within its input (built above).
            unsafe { kernel.compress_chunks(batch, inputs, &mut cvs) };
            for (job, cv) in batch.iter().zip(cvs) {
                self.cvs[job.slot] = cv;
            }
        }
        // Merge each input's nodes pairwise from the left, a level at a
        // time, until one is left: its root.
        let mut parents = std::mem::take(&mut self.parents);
        loop {
            parents.clear();
            for (input, &(first, count)) in self.first_cv.iter().enumerate() {
                if count < 2 {
                    continue;
                }
                for pair in 0..count / 2 {
                    parents.push(ParentJob {
                        input,
                        left: first + 2 * pair,
                        root: count == 2,
                    });
                }
            }
            if parents.is_empty() {
                break;
            }
            for batch in parents.chunks(kernel.lanes()) {
                // SAFETY: the CPU has the kernel's features; every index is
                // within cvs.
                unsafe { kernel.compress_parents(batch, &self.cvs, &mut cvs) };
                // The parent of nodes 2k and 2k+1 goes where node k of the
                // next level belongs: first + k, already read (k <= 2k).
                for (job, cv) in batch.iter().zip(cvs) {
                    let (first, _) = self.first_cv[job.input];
                    self.cvs[first + (job.left - first) / 2] = cv;
                }
            }
            for (first, count) in self.first_cv.iter_mut() {
                if *count >= 2 {
                    if *count % 2 == 1 {
                        // The odd node at the end moves up as it is.
                        self.cvs[*first + *count / 2] = self.cvs[*first + *count - 1];
                    }
                    *count = count.div_ceil(2);
                }
            }
        }
        self.parents = parents;
        out.extend(self.first_cv.iter().map(|&(first, _)| {
            let mut bytes = [0u8; 32];
            for (word, out) in self.cvs[first].iter().zip(bytes.chunks_exact_mut(4)) {
                out.copy_from_slice(&word.to_le_bytes());
            }
            Digest::from(blake3::Hash::from_bytes(bytes))
        }));
    }
}

/// A SIMD compression of several lanes at once.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Kernel {
    /// 16 lanes of AVX-512.
    #[cfg(target_arch = "x86_64")]
    Avx512,
    /// 8 lanes of AVX2.
    #[cfg(target_arch = "x86_64")]
    Avx2,
}

/// The most lanes of any kernel.
const MAX_LANES: usize = 16;

impl Kernel {
    /// The kernels this CPU runs, widest first (checked once).
    fn available() -> &'static [Kernel] {
        static AVAILABLE: std::sync::OnceLock<Vec<Kernel>> = std::sync::OnceLock::new();
        AVAILABLE.get_or_init(|| {
            let mut kernels = Vec::new();
            #[cfg(target_arch = "x86_64")]
            {
                if std::arch::is_x86_feature_detected!("avx512f") {
                    kernels.push(Kernel::Avx512);
                }
                if std::arch::is_x86_feature_detected!("avx2") {
                    kernels.push(Kernel::Avx2);
                }
            }
            kernels
        })
    }

    fn lanes(self) -> usize {
        match self {
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx512 => LANES,
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2 => avx2::LANES,
        }
    }

    /// Writes the chaining values (or, for a root chunk, the output) of
    /// `jobs`, at most [`Kernel::lanes`] of them, to the start of `out`.
    ///
    /// # Safety
    /// The CPU must run the kernel ([`Kernel::available`]), and every job's
    /// range must lie within its input.
    unsafe fn compress_chunks(
        self,
        jobs: &[ChunkJob],
        inputs: &[&[u8]],
        out: &mut [[u32; 8]; MAX_LANES],
    ) {
        match self {
            // SAFETY: as this function's.
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx512 => *out = unsafe { avx512::compress_chunks(jobs, inputs) },
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2 => {
                // SAFETY: as this function's.
                let cvs = unsafe { avx2::compress_chunks(jobs, inputs) };
                out[..avx2::LANES].copy_from_slice(&cvs);
            }
        }
    }

    /// Writes the chaining values (or, for a root, the output) of the
    /// parent nodes `jobs`, at most [`Kernel::lanes`] of them, to the start
    /// of `out`.
    ///
    /// # Safety
    /// The CPU must run the kernel, and `left + 1` of every job must be an
    /// index of `cvs`.
    unsafe fn compress_parents(
        self,
        jobs: &[ParentJob],
        cvs: &[[u32; 8]],
        out: &mut [[u32; 8]; MAX_LANES],
    ) {
        match self {
            // SAFETY: as this function's.
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx512 => *out = unsafe { avx512::compress_parents(jobs, cvs) },
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2 => {
                // SAFETY: as this function's.
                let parents = unsafe { avx2::compress_parents(jobs, cvs) };
                out[..avx2::LANES].copy_from_slice(&parents);
            }
        }
    }
}

/// One parent node to compress: nodes `left` and `left + 1` of [`ManyHasher::cvs`].
#[derive(Clone, Copy)]
struct ParentJob {
    input: usize,
    left: usize,
    root: bool,
}

/// What a kernel needs of up to `N` chunk jobs, a lane each; lanes without
/// a job are empty chunks with no blocks.
struct ChunkLanes<const N: usize> {
    /// The start of each lane's chunk.
    data: [*const u8; N],
    lens: [usize; N],
    /// `lens` as the kernels' 32-bit words.
    lens32: [u32; N],
    /// The flags of each lane's last block (besides `CHUNK_START`).
    last_flags: [u32; N],
    counter_lo: [u32; N],
    counter_hi: [u32; N],
    block_counts: [u32; N],
    /// The most blocks of any lane: the compressions to run.
    blocks: usize,
    /// The shortest lane's length: below it every lane has a whole block.
    shortest: usize,
}

impl<const N: usize> ChunkLanes<N> {
    /// The lanes of the first `N` of `jobs`.
    ///
    /// Panics if a job's range lies outside its input (the driver builds
    /// them inside).
    fn of(jobs: &[ChunkJob], inputs: &[&[u8]]) -> ChunkLanes<N> {
        let mut lanes = ChunkLanes {
            data: [std::ptr::null(); N],
            lens: [0; N],
            lens32: [0; N],
            last_flags: [0; N],
            counter_lo: [0; N],
            counter_hi: [0; N],
            block_counts: [0; N],
            blocks: 0,
            shortest: 0,
        };
        for (lane, job) in jobs.iter().take(N).enumerate() {
            let input = inputs[job.input as usize];
            lanes.data[lane] = input[job.offset..job.offset + job.len].as_ptr();
            lanes.lens[lane] = job.len;
            lanes.lens32[lane] = job.len as u32;
            lanes.last_flags[lane] = CHUNK_END | if job.root { ROOT } else { 0 };
            lanes.counter_lo[lane] = job.counter as u32;
            lanes.counter_hi[lane] = (job.counter >> 32) as u32;
            lanes.block_counts[lane] = job.blocks() as u32;
        }
        lanes.blocks = lanes.block_counts.iter().copied().max().unwrap_or(0) as usize;
        lanes.shortest = lanes.lens.iter().copied().min().unwrap_or(0);
        lanes
    }

    /// Where lane `lane`'s block at byte `at` of its chunk can be read, 64
    /// bytes: in the chunk, or zero-padded in `padded` where the chunk ends
    /// within it; `None` past the chunk's end.
    #[inline(always)]
    fn block(&self, lane: usize, at: usize, padded: &mut [u8; BLOCK_LEN]) -> Option<*const u8> {
        let len = self.lens[lane];
        if at + BLOCK_LEN <= len {
            // SAFETY: at < len, so the offset lies within the lane's chunk.
            Some(unsafe { self.data[lane].add(at) })
        } else if at < len {
            *padded = [0; BLOCK_LEN];
            // SAFETY: at..len lies within the lane's chunk, and is shorter
            // than the 64-byte array.
            unsafe {
                std::ptr::copy_nonoverlapping(
                    self.data[lane].add(at),
                    padded.as_mut_ptr(),
                    len - at,
                )
            };
            Some(padded.as_ptr())
        } else {
            None
        }
    }
}

/// What a kernel needs of up to `N` parent jobs: the message words by word
/// then lane (left child's chaining value, then right's), the flags, and
/// all-ones for the lanes that have a job.
struct ParentLanes<const N: usize> {
    message: [[u32; N]; 16],
    flags: [u32; N],
    active: [u32; N],
}

impl<const N: usize> ParentLanes<N> {
    /// The lanes of the first `N` of `jobs`. Panics if a job's nodes are
    /// not in `cvs` (the driver builds them inside).
    fn of(jobs: &[ParentJob], cvs: &[[u32; 8]]) -> ParentLanes<N> {
        let mut lanes = ParentLanes {
            message: [[0; N]; 16],
            flags: [0; N],
            active: [0; N],
        };
        for (lane, job) in jobs.iter().take(N).enumerate() {
            lanes.active[lane] = u32::MAX;
            let (left, right) = (&cvs[job.left], &cvs[job.left + 1]);
            for (w, (l, r)) in left.iter().zip(right).enumerate() {
                lanes.message[w][lane] = *l;
                lanes.message[8 + w][lane] = *r;
            }
            lanes.flags[lane] = PARENT | if job.root { ROOT } else { 0 };
        }
        lanes
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    //! The 16-lane compression: vector `i` holds word `i` of every lane.

    use std::arch::x86_64::*;

    use super::{
        BLOCK_LEN, CHUNK_START, ChunkJob, ChunkLanes, IV, LANES, ParentJob, ParentLanes, SCHEDULE,
    };

    /// BLAKE3's quarter-round on state words `a`, `b`, `c`, `d` with message
    /// words `x` and `y`. A macro, not a function: as a function the
    /// compiler kept the round a call with the state in memory.
    macro_rules! g {
        ($v:ident, $a:literal, $b:literal, $c:literal, $d:literal, $x:expr, $y:expr) => {
            $v[$a] = _mm512_add_epi32(_mm512_add_epi32($v[$a], $v[$b]), $x);
            $v[$d] = _mm512_ror_epi32::<16>(_mm512_xor_si512($v[$d], $v[$a]));
            $v[$c] = _mm512_add_epi32($v[$c], $v[$d]);
            $v[$b] = _mm512_ror_epi32::<12>(_mm512_xor_si512($v[$b], $v[$c]));
            $v[$a] = _mm512_add_epi32(_mm512_add_epi32($v[$a], $v[$b]), $y);
            $v[$d] = _mm512_ror_epi32::<8>(_mm512_xor_si512($v[$d], $v[$a]));
            $v[$c] = _mm512_add_epi32($v[$c], $v[$d]);
            $v[$b] = _mm512_ror_epi32::<7>(_mm512_xor_si512($v[$b], $v[$c]));
        };
    }

    /// One round: the columns, then the diagonals, with the message words
    /// in the order `SCHEDULE[$r]` gives.
    macro_rules! round {
        ($v:ident, $m:ident, $r:literal) => {
            let s = &SCHEDULE[$r];
            g!($v, 0, 4, 8, 12, $m[s[0]], $m[s[1]]);
            g!($v, 1, 5, 9, 13, $m[s[2]], $m[s[3]]);
            g!($v, 2, 6, 10, 14, $m[s[4]], $m[s[5]]);
            g!($v, 3, 7, 11, 15, $m[s[6]], $m[s[7]]);
            g!($v, 0, 5, 10, 15, $m[s[8]], $m[s[9]]);
            g!($v, 1, 6, 11, 12, $m[s[10]], $m[s[11]]);
            g!($v, 2, 7, 8, 13, $m[s[12]], $m[s[13]]);
            g!($v, 3, 4, 9, 14, $m[s[14]], $m[s[15]]);
        };
    }

    /// One compression of 16 lanes: each lane's chaining value `cv` with
    /// its message block `m`, counter, block length and flags. Lanes not
    /// in `active` keep their chaining value.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    unsafe fn compress(
        cv: &mut [__m512i; 8],
        m: &[__m512i; 16],
        counter_lo: __m512i,
        counter_hi: __m512i,
        block_len: __m512i,
        flags: __m512i,
        active: __mmask16,
    ) {
        // SAFETY: register-only arithmetic; the caller runs with AVX-512F.
        unsafe {
            let mut v = [
                cv[0],
                cv[1],
                cv[2],
                cv[3],
                cv[4],
                cv[5],
                cv[6],
                cv[7],
                _mm512_set1_epi32(IV[0] as i32),
                _mm512_set1_epi32(IV[1] as i32),
                _mm512_set1_epi32(IV[2] as i32),
                _mm512_set1_epi32(IV[3] as i32),
                counter_lo,
                counter_hi,
                block_len,
                flags,
            ];
            round!(v, m, 0);
            round!(v, m, 1);
            round!(v, m, 2);
            round!(v, m, 3);
            round!(v, m, 4);
            round!(v, m, 5);
            round!(v, m, 6);
            for i in 0..8 {
                cv[i] = _mm512_mask_mov_epi32(cv[i], active, _mm512_xor_si512(v[i], v[i + 8]));
            }
        }
    }

    /// Transposes 16 rows of 16 words: word `w` of row `l` becomes word
    /// `l` of row `w`.
    #[inline(always)]
    unsafe fn transpose(r: &[__m512i; 16]) -> [__m512i; 16] {
        // SAFETY: register-only shuffles; the caller runs with AVX-512F.
        unsafe {
            // Pairs of rows, 32-bit words interleaved within 128-bit lanes.
            let mut a = [_mm512_setzero_si512(); 16];
            for i in 0..8 {
                a[2 * i] = _mm512_unpacklo_epi32(r[2 * i], r[2 * i + 1]);
                a[2 * i + 1] = _mm512_unpackhi_epi32(r[2 * i], r[2 * i + 1]);
            }
            // Fours of rows: b[4j + k] holds, in 128-bit lane q, word
            // 4q + k of rows 4j..4j + 3.
            let mut b = [_mm512_setzero_si512(); 16];
            for j in 0..4 {
                b[4 * j] = _mm512_unpacklo_epi64(a[4 * j], a[4 * j + 2]);
                b[4 * j + 1] = _mm512_unpackhi_epi64(a[4 * j], a[4 * j + 2]);
                b[4 * j + 2] = _mm512_unpacklo_epi64(a[4 * j + 1], a[4 * j + 3]);
                b[4 * j + 3] = _mm512_unpackhi_epi64(a[4 * j + 1], a[4 * j + 3]);
            }
            // A 4x4 transpose of 128-bit lanes for each k.
            let mut c = [_mm512_setzero_si512(); 16];
            for k in 0..4 {
                let (x0, x1, x2, x3) = (b[k], b[4 + k], b[8 + k], b[12 + k]);
                let s0 = _mm512_shuffle_i32x4::<0b01_00_01_00>(x0, x1);
                let s1 = _mm512_shuffle_i32x4::<0b11_10_11_10>(x0, x1);
                let s2 = _mm512_shuffle_i32x4::<0b01_00_01_00>(x2, x3);
                let s3 = _mm512_shuffle_i32x4::<0b11_10_11_10>(x2, x3);
                c[k] = _mm512_shuffle_i32x4::<0b10_00_10_00>(s0, s2);
                c[4 + k] = _mm512_shuffle_i32x4::<0b11_01_11_01>(s0, s2);
                c[8 + k] = _mm512_shuffle_i32x4::<0b10_00_10_00>(s1, s3);
                c[12 + k] = _mm512_shuffle_i32x4::<0b11_01_11_01>(s1, s3);
            }
            c
        }
    }

    #[inline(always)]
    unsafe fn words(values: &[u32; LANES]) -> __m512i {
        // SAFETY: an unaligned load of exactly 64 bytes from the array.
        unsafe { _mm512_loadu_si512(values.as_ptr().cast()) }
    }

    /// The chaining values (or, for a root chunk, the output) of up to 16
    /// chunks.
    ///
    /// # Safety
    /// The CPU must have AVX-512F, and every job's `offset..offset + len`
    /// must lie within `inputs[job.input]`.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn compress_chunks(jobs: &[ChunkJob], inputs: &[&[u8]]) -> [[u32; 8]; LANES] {
        let lanes = ChunkLanes::<LANES>::of(jobs, inputs);
        // SAFETY (of the helpers called below): this function runs with
        // AVX-512F, which is all they need.
        let (counter_lo, counter_hi) =
            unsafe { (words(&lanes.counter_lo), words(&lanes.counter_hi)) };
        let block_counts = unsafe { words(&lanes.block_counts) };
        let lens_vector = unsafe { words(&lanes.lens32) };
        let last_flags = unsafe { words(&lanes.last_flags) };
        let mut cv = [_mm512_setzero_si512(); 8];
        for (i, word) in cv.iter_mut().enumerate() {
            *word = _mm512_set1_epi32(IV[i] as i32);
        }
        for block in 0..lanes.blocks {
            let at = block * BLOCK_LEN;
            let mut rows = [_mm512_setzero_si512(); 16];
            if at + BLOCK_LEN <= lanes.shortest {
                // Every lane has a whole block here (the common case):
                // plain loads, no branch per lane.
                for (lane, row) in rows.iter_mut().enumerate() {
                    // SAFETY: at..at + 64 lies within every lane's chunk.
                    *row = unsafe { _mm512_loadu_si512(lanes.data[lane].add(at).cast()) };
                }
            } else {
                let mut padded = [0u8; BLOCK_LEN];
                for (lane, row) in rows.iter_mut().enumerate() {
                    if let Some(from) = lanes.block(lane, at, &mut padded) {
                        // SAFETY: `block` gives 64 readable bytes.
                        *row = unsafe { _mm512_loadu_si512(from.cast()) };
                    }
                }
            }
            let m = unsafe { transpose(&rows) };
            let block_index = _mm512_set1_epi32(block as i32);
            // Lanes with this block; those whose last block it is.
            let active = _mm512_cmplt_epu32_mask(block_index, block_counts);
            let ending = _mm512_cmpeq_epu32_mask(_mm512_set1_epi32(block as i32 + 1), block_counts);
            // min(len - at, 64), or 0 where the chunk is shorter than `at`
            // (an empty chunk, or a lane that sits out).
            let left = _mm512_max_epi32(
                _mm512_sub_epi32(lens_vector, _mm512_set1_epi32(at as i32)),
                _mm512_setzero_si512(),
            );
            let block_len = _mm512_min_epu32(left, _mm512_set1_epi32(BLOCK_LEN as i32));
            let start = if block == 0 {
                _mm512_set1_epi32(CHUNK_START as i32)
            } else {
                _mm512_setzero_si512()
            };
            let flags = _mm512_mask_or_epi32(start, ending, start, last_flags);
            unsafe {
                compress(
                    &mut cv, &m, counter_lo, counter_hi, block_len, flags, active,
                )
            };
        }
        unsafe { lanes_out(&cv) }
    }

    /// The chaining values (or, for a root, the output) of up to 16 parent
    /// nodes.
    ///
    /// # Safety
    /// The CPU must have AVX-512F, and `left + 1` of every job must be an
    /// index of `cvs`.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn compress_parents(
        jobs: &[ParentJob],
        cvs: &[[u32; 8]],
    ) -> [[u32; 8]; LANES] {
        let lanes = ParentLanes::<LANES>::of(jobs, cvs);
        // SAFETY: this function runs with AVX-512F.
        let active =
            _mm512_cmpneq_epu32_mask(unsafe { words(&lanes.active) }, _mm512_setzero_si512());
        let flags = lanes.flags;
        let mut m = [_mm512_setzero_si512(); 16];
        for (word, values) in m.iter_mut().zip(&lanes.message) {
            // SAFETY: this function runs with AVX-512F.
            *word = unsafe { words(values) };
        }
        let mut cv = [_mm512_setzero_si512(); 8];
        for (i, word) in cv.iter_mut().enumerate() {
            *word = _mm512_set1_epi32(IV[i] as i32);
        }
        // SAFETY: this function runs with AVX-512F.
        unsafe {
            compress(
                &mut cv,
                &m,
                _mm512_setzero_si512(),
                _mm512_setzero_si512(),
                _mm512_set1_epi32(BLOCK_LEN as i32),
                words(&flags),
                active,
            )
        };
        unsafe { lanes_out(&cv) }
    }

    /// Every lane's chaining value, as 8 words.
    #[inline(always)]
    unsafe fn lanes_out(cv: &[__m512i; 8]) -> [[u32; 8]; LANES] {
        let mut by_word = [[0u32; LANES]; 8];
        for (word, values) in cv.iter().zip(by_word.iter_mut()) {
            // SAFETY: an unaligned store of exactly 64 bytes into the
            // array; the caller runs with AVX-512F.
            unsafe { _mm512_storeu_si512(values.as_mut_ptr().cast(), *word) };
        }
        std::array::from_fn(|lane| std::array::from_fn(|w| by_word[w][lane]))
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    //! The 8-lane compression for CPUs without AVX-512: vector `i` holds
    //! word `i` of every lane, as in the 16-lane one.

    use std::arch::x86_64::*;

    use super::{
        BLOCK_LEN, CHUNK_START, ChunkJob, ChunkLanes, IV, ParentJob, ParentLanes, SCHEDULE,
    };

    /// Lanes of one AVX2 compression.
    pub(super) const LANES: usize = 8;

    /// Rotations right by 16 and 8 bits move whole bytes: one shuffle.
    #[inline(always)]
    unsafe fn rotate_right_16(x: __m256i) -> __m256i {
        // SAFETY: register-only; the caller runs with AVX2.
        unsafe {
            _mm256_shuffle_epi8(
                x,
                _mm256_set_epi8(
                    13, 12, 15, 14, 9, 8, 11, 10, 5, 4, 7, 6, 1, 0, 3, 2, 13, 12, 15, 14, 9, 8, 11,
                    10, 5, 4, 7, 6, 1, 0, 3, 2,
                ),
            )
        }
    }

    #[inline(always)]
    unsafe fn rotate_right_8(x: __m256i) -> __m256i {
        // SAFETY: register-only; the caller runs with AVX2.
        unsafe {
            _mm256_shuffle_epi8(
                x,
                _mm256_set_epi8(
                    12, 15, 14, 13, 8, 11, 10, 9, 4, 7, 6, 5, 0, 3, 2, 1, 12, 15, 14, 13, 8, 11,
                    10, 9, 4, 7, 6, 5, 0, 3, 2, 1,
                ),
            )
        }
    }

    /// The quarter-round, as the 16-lane one's.
    macro_rules! g {
        ($v:ident, $a:literal, $b:literal, $c:literal, $d:literal, $x:expr, $y:expr) => {
            $v[$a] = _mm256_add_epi32(_mm256_add_epi32($v[$a], $v[$b]), $x);
            $v[$d] = rotate_right_16(_mm256_xor_si256($v[$d], $v[$a]));
            $v[$c] = _mm256_add_epi32($v[$c], $v[$d]);
            let t = _mm256_xor_si256($v[$b], $v[$c]);
            $v[$b] = _mm256_or_si256(_mm256_srli_epi32::<12>(t), _mm256_slli_epi32::<20>(t));
            $v[$a] = _mm256_add_epi32(_mm256_add_epi32($v[$a], $v[$b]), $y);
            $v[$d] = rotate_right_8(_mm256_xor_si256($v[$d], $v[$a]));
            $v[$c] = _mm256_add_epi32($v[$c], $v[$d]);
            let t = _mm256_xor_si256($v[$b], $v[$c]);
            $v[$b] = _mm256_or_si256(_mm256_srli_epi32::<7>(t), _mm256_slli_epi32::<25>(t));
        };
    }

    macro_rules! round {
        ($v:ident, $m:ident, $r:literal) => {
            let s = &SCHEDULE[$r];
            g!($v, 0, 4, 8, 12, $m[s[0]], $m[s[1]]);
            g!($v, 1, 5, 9, 13, $m[s[2]], $m[s[3]]);
            g!($v, 2, 6, 10, 14, $m[s[4]], $m[s[5]]);
            g!($v, 3, 7, 11, 15, $m[s[6]], $m[s[7]]);
            g!($v, 0, 5, 10, 15, $m[s[8]], $m[s[9]]);
            g!($v, 1, 6, 11, 12, $m[s[10]], $m[s[11]]);
            g!($v, 2, 7, 8, 13, $m[s[12]], $m[s[13]]);
            g!($v, 3, 4, 9, 14, $m[s[14]], $m[s[15]]);
        };
    }

    /// One compression of 8 lanes; lanes whose `active` word is zero keep
    /// their chaining value.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    unsafe fn compress(
        cv: &mut [__m256i; 8],
        m: &[__m256i; 16],
        counter_lo: __m256i,
        counter_hi: __m256i,
        block_len: __m256i,
        flags: __m256i,
        active: __m256i,
    ) {
        // SAFETY: register-only arithmetic; the caller runs with AVX2.
        unsafe {
            let mut v = [
                cv[0],
                cv[1],
                cv[2],
                cv[3],
                cv[4],
                cv[5],
                cv[6],
                cv[7],
                _mm256_set1_epi32(IV[0] as i32),
                _mm256_set1_epi32(IV[1] as i32),
                _mm256_set1_epi32(IV[2] as i32),
                _mm256_set1_epi32(IV[3] as i32),
                counter_lo,
                counter_hi,
                block_len,
                flags,
            ];
            round!(v, m, 0);
            round!(v, m, 1);
            round!(v, m, 2);
            round!(v, m, 3);
            round!(v, m, 4);
            round!(v, m, 5);
            round!(v, m, 6);
            for i in 0..8 {
                cv[i] = _mm256_blendv_epi8(cv[i], _mm256_xor_si256(v[i], v[i + 8]), active);
            }
        }
    }

    /// Transposes 8 rows of 8 words: word `w` of row `l` becomes word `l`
    /// of row `w`.
    #[inline(always)]
    unsafe fn transpose(r: &[__m256i; 8]) -> [__m256i; 8] {
        // SAFETY: register-only shuffles; the caller runs with AVX2.
        unsafe {
            let t = [
                _mm256_unpacklo_epi32(r[0], r[1]),
                _mm256_unpackhi_epi32(r[0], r[1]),
                _mm256_unpacklo_epi32(r[2], r[3]),
                _mm256_unpackhi_epi32(r[2], r[3]),
                _mm256_unpacklo_epi32(r[4], r[5]),
                _mm256_unpackhi_epi32(r[4], r[5]),
                _mm256_unpacklo_epi32(r[6], r[7]),
                _mm256_unpackhi_epi32(r[6], r[7]),
            ];
            // u[k] holds word k (low 128 bits) and word k + 4 (high) of
            // rows 0-3; u[4 + k] the same of rows 4-7.
            let u = [
                _mm256_unpacklo_epi64(t[0], t[2]),
                _mm256_unpackhi_epi64(t[0], t[2]),
                _mm256_unpacklo_epi64(t[1], t[3]),
                _mm256_unpackhi_epi64(t[1], t[3]),
                _mm256_unpacklo_epi64(t[4], t[6]),
                _mm256_unpackhi_epi64(t[4], t[6]),
                _mm256_unpacklo_epi64(t[5], t[7]),
                _mm256_unpackhi_epi64(t[5], t[7]),
            ];
            [
                _mm256_permute2x128_si256::<0x20>(u[0], u[4]),
                _mm256_permute2x128_si256::<0x20>(u[1], u[5]),
                _mm256_permute2x128_si256::<0x20>(u[2], u[6]),
                _mm256_permute2x128_si256::<0x20>(u[3], u[7]),
                _mm256_permute2x128_si256::<0x31>(u[0], u[4]),
                _mm256_permute2x128_si256::<0x31>(u[1], u[5]),
                _mm256_permute2x128_si256::<0x31>(u[2], u[6]),
                _mm256_permute2x128_si256::<0x31>(u[3], u[7]),
            ]
        }
    }

    #[inline(always)]
    unsafe fn words(values: &[u32; LANES]) -> __m256i {
        // SAFETY: an unaligned load of exactly 32 bytes from the array;
        // the caller runs with AVX2.
        unsafe { _mm256_loadu_si256(values.as_ptr().cast()) }
    }

    /// Every lane's chaining value, as 8 words.
    #[inline(always)]
    unsafe fn lanes_out(cv: &[__m256i; 8]) -> [[u32; 8]; LANES] {
        let mut by_word = [[0u32; LANES]; 8];
        for (word, values) in cv.iter().zip(by_word.iter_mut()) {
            // SAFETY: an unaligned store of exactly 32 bytes into the
            // array; the caller runs with AVX2.
            unsafe { _mm256_storeu_si256(values.as_mut_ptr().cast(), *word) };
        }
        std::array::from_fn(|lane| std::array::from_fn(|w| by_word[w][lane]))
    }

    /// The chaining values (or, for a root chunk, the output) of up to 8
    /// chunks.
    ///
    /// # Safety
    /// The CPU must have AVX2, and every job's `offset..offset + len` must
    /// lie within `inputs[job.input]`.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn compress_chunks(jobs: &[ChunkJob], inputs: &[&[u8]]) -> [[u32; 8]; LANES] {
        let lanes = ChunkLanes::<LANES>::of(jobs, inputs);
        // SAFETY (of the helpers called below): this function runs with
        // AVX2, which is all they need.
        let (counter_lo, counter_hi) =
            unsafe { (words(&lanes.counter_lo), words(&lanes.counter_hi)) };
        let block_counts = unsafe { words(&lanes.block_counts) };
        let lens_vector = unsafe { words(&lanes.lens32) };
        let last_flags = unsafe { words(&lanes.last_flags) };
        let mut cv = [_mm256_setzero_si256(); 8];
        for (i, word) in cv.iter_mut().enumerate() {
            *word = _mm256_set1_epi32(IV[i] as i32);
        }
        for block in 0..lanes.blocks {
            let at = block * BLOCK_LEN;
            // Each lane's block as two rows of 8 words.
            let mut low = [_mm256_setzero_si256(); LANES];
            let mut high = [_mm256_setzero_si256(); LANES];
            if at + BLOCK_LEN <= lanes.shortest {
                // Every lane has a whole block here: no branch per lane.
                for lane in 0..LANES {
                    // SAFETY: at..at + 64 lies within every lane's chunk.
                    unsafe {
                        let from = lanes.data[lane].add(at);
                        low[lane] = _mm256_loadu_si256(from.cast());
                        high[lane] = _mm256_loadu_si256(from.add(32).cast());
                    }
                }
            } else {
                let mut padded = [0u8; BLOCK_LEN];
                for lane in 0..LANES {
                    if let Some(from) = lanes.block(lane, at, &mut padded) {
                        // SAFETY: `block` gives 64 readable bytes.
                        unsafe {
                            low[lane] = _mm256_loadu_si256(from.cast());
                            high[lane] = _mm256_loadu_si256(from.add(32).cast());
                        }
                    }
                }
            }
            // SAFETY: this function runs with AVX2.
            let (low, high) = unsafe { (transpose(&low), transpose(&high)) };
            let m: [__m256i; 16] =
                std::array::from_fn(|w| if w < 8 { low[w] } else { high[w - 8] });
            let block_index = _mm256_set1_epi32(block as i32);
            let active = _mm256_cmpgt_epi32(block_counts, block_index);
            let ending = _mm256_cmpeq_epi32(block_counts, _mm256_set1_epi32(block as i32 + 1));
            let block_len = _mm256_min_epi32(
                _mm256_max_epi32(
                    _mm256_sub_epi32(lens_vector, _mm256_set1_epi32(at as i32)),
                    _mm256_setzero_si256(),
                ),
                _mm256_set1_epi32(BLOCK_LEN as i32),
            );
            let start = if block == 0 {
                _mm256_set1_epi32(CHUNK_START as i32)
            } else {
                _mm256_setzero_si256()
            };
            let flags = _mm256_or_si256(start, _mm256_and_si256(ending, last_flags));
            // SAFETY: this function runs with AVX2.
            unsafe {
                compress(
                    &mut cv, &m, counter_lo, counter_hi, block_len, flags, active,
                )
            };
        }
        // SAFETY: this function runs with AVX2.
        unsafe { lanes_out(&cv) }
    }

    /// The chaining values (or, for a root, the output) of up to 8 parent
    /// nodes.
    ///
    /// # Safety
    /// The CPU must have AVX2, and `left + 1` of every job must be an index
    /// of `cvs`.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn compress_parents(
        jobs: &[ParentJob],
        cvs: &[[u32; 8]],
    ) -> [[u32; 8]; LANES] {
        let lanes = ParentLanes::<LANES>::of(jobs, cvs);
        let (flags, active) = (lanes.flags, lanes.active);
        let mut m = [_mm256_setzero_si256(); 16];
        for (word, values) in m.iter_mut().zip(&lanes.message) {
            // SAFETY: this function runs with AVX2.
            *word = unsafe { words(values) };
        }
        let mut cv = [_mm256_setzero_si256(); 8];
        for (i, word) in cv.iter_mut().enumerate() {
            *word = _mm256_set1_epi32(IV[i] as i32);
        }
        // SAFETY: this function runs with AVX2.
        unsafe {
            compress(
                &mut cv,
                &m,
                _mm256_setzero_si256(),
                _mm256_setzero_si256(),
                _mm256_set1_epi32(BLOCK_LEN as i32),
                words(&flags),
                words(&active),
            );
            lanes_out(&cv)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    use crate::test_support::pseudo_random as bytes;

    /// Hashes `inputs` with every kernel this CPU runs, and as
    /// `hash_each` chooses, and compares with the crate.
    fn check(inputs: &[Vec<u8>]) {
        let slices: Vec<&[u8]> = inputs.iter().map(Vec::as_slice).collect();
        let expected: Vec<Digest> = slices.iter().map(|s| Digest::of(s)).collect();
        let mut out = Vec::new();
        ManyHasher::new().hash_each(&slices, &mut out);
        assert_eq!(out, expected, "hash_each");
        for &kernel in Kernel::available() {
            ManyHasher::new().hash_each_with(kernel, &slices, &mut out);
            for (i, (got, want)) in out.iter().zip(&expected).enumerate() {
                assert_eq!(
                    got,
                    want,
                    "{kernel:?}: input {i} of {} bytes",
                    slices[i].len()
                );
            }
            assert_eq!(out.len(), expected.len(), "{kernel:?}");
        }
    }

    /// Every length class: empty, under a block, a block, under a chunk,
    /// a chunk, a chunk and a byte, powers of two chunks and one around
    /// them, and longer than 16 chunks; alone, in batches of mixed lengths
    /// and in batches of more than 16 inputs.
    #[test]
    fn digests_are_those_of_the_blake3_crate() {
        let lengths = [
            0, 1, 63, 64, 65, 127, 128, 1000, 1023, 1024, 1025, 2047, 2048, 2049, 3072, 4095, 4096,
            4097, 8192, 15_000, 16_384, 16_385, 31_744, 32_768, 33_000, 65_536, 70_000,
        ];
        let all: Vec<Vec<u8>> = lengths
            .iter()
            .enumerate()
            .map(|(i, &len)| bytes(len, i as u64 + 7))
            .collect();
        check(&all);
        for len in lengths {
            check(&[bytes(len, 3), bytes(len, 5)]);
        }
        let many: Vec<Vec<u8>> = (0..53).map(|i| bytes(i * 611 % 20_000, i as u64)).collect();
        check(&many);
        // A hasher reused for a second batch forgets the first.
        for &kernel in Kernel::available() {
            let mut hasher = ManyHasher::new();
            let mut out = Vec::new();
            let first: Vec<&[u8]> = all.iter().map(Vec::as_slice).collect();
            hasher.hash_each_with(kernel, &first, &mut out);
            let second: Vec<&[u8]> = many.iter().take(5).map(Vec::as_slice).collect();
            hasher.hash_each_with(kernel, &second, &mut out);
            let expected: Vec<Digest> = second.iter().map(|s| Digest::of(s)).collect();
            assert_eq!(out, expected, "{kernel:?}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn any_batch_hashes_like_the_crate(
            lengths in proptest::collection::vec(0usize..40_000, 0..40),
            seed in any::<u64>(),
        ) {
            let inputs: Vec<Vec<u8>> = lengths
                .iter()
                .enumerate()
                .map(|(i, &len)| bytes(len, seed.wrapping_add(i as u64)))
                .collect();
            check(&inputs);
        }
    }
}
