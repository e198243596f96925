//! Proof of work: searching nonces on worker threads.
//!
//! The header hash is SHA-512(timestamp || previous_hash || nonce ||
//! merkle_root). The nonce is free-form bytes to the original (it never
//! parses it), and ours are decimal numbers of 70 or so digits whose leading
//! digits fill SHA-512's first 128-byte block exactly. That block is the
//! same for every attempt, so it is compressed once per job (the
//! "midstate"); each attempt then costs one compression of the second
//! block, in which only the last 16 digits of the nonce change. Those digits
//! are counted up in place: no allocation, no formatting per attempt.
//!
//! Where the processor has AVX2 or AVX-512, a thread tries [`LANES`]
//! nonces at once, one per vector lane ([`crate::sha512_lanes`]), and finds
//! exactly the nonces the one-at-a-time search would, in the same order.
//!
//! Each worker thread has its own leading digits, so threads never try the
//! same nonce. Workers check a shared flag every [`CHECK_EVERY`] attempts,
//! so a job stops within a fraction of a millisecond of being cancelled.
//!
//! A miner may be held to so many hashes a second ([`Miner::max_rate`]):
//! it then sleeps between batches, to play a weaker miner (the share of
//! the work that wins races and forks, for the lecture), keep a laptop
//! cool, or leave a shared processor to other programs (the tests'
//! networks).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use rand::Rng;
use sha2::compress512;
use sha2::digest::generic_array::GenericArray;

use crate::block::BlockHeader;
use crate::hash::{BlockHash, HASH_LEN};
use crate::merkle::{MerkleRoot, LABEL_LEN};
use crate::sha512_lanes::{self, LANES};

/// Attempts between two looks at the cancel flag.
pub const CHECK_EVERY: u64 = 1 << 12;

const BLOCK_LEN: usize = 128;
/// Digits of the nonce that change between attempts.
const COUNTER_DIGITS: usize = 16;

/// SHA-512's initial state (FIPS 180-4, 5.3.5).
const SHA512_IV: [u64; 8] = [
    0x6a09e667f3bcc908,
    0xbb67ae8584caa73b,
    0x3c6ef372fe94f82b,
    0xa54ff53a5f1d36f1,
    0x510e527fade682d1,
    0x9b05688c2b3e6c1f,
    0x1f83d9abfb41bd6b,
    0x5be0cd19137e2179,
];

/// A cheap, cloneable flag that stops a mining job.
#[derive(Clone, Debug, Default)]
pub struct CancelToken(Arc<AtomicBool>);

impl CancelToken {
    pub fn new() -> CancelToken {
        CancelToken::default()
    }

    pub fn cancel(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// What to mine: everything in the header but the nonce.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MiningJob {
    /// Unix seconds, written as decimal digits.
    pub timestamp: u64,
    pub previous_hash: BlockHash,
    pub merkle_root: MerkleRoot,
    /// Leading zero bits the header hash needs.
    pub required_bits: u32,
}

/// How a mining job ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MineOutcome {
    /// A header that meets the required bits.
    Found(Box<BlockHeader>),
    /// Cancelled before a header was found.
    Cancelled,
}

/// A finished mining job and its figures.
#[derive(Clone, Debug)]
pub struct MineReport {
    pub outcome: MineOutcome,
    /// Hashes computed, all threads together.
    pub attempts: u64,
    pub elapsed: Duration,
}

impl MineReport {
    /// Hashes per second over the job.
    pub fn hash_rate(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 {
            self.attempts as f64 / secs
        } else {
            0.0
        }
    }
}

/// A miner with a number of worker threads.
#[derive(Clone, Copy, Debug)]
pub struct Miner {
    threads: usize,
    max_rate: Option<f64>,
    /// Several nonces per vector instruction where the processor gains by
    /// it ([`sha512_lanes::worth_it`]).
    lanes: bool,
}

impl Miner {
    /// A miner using `threads` worker threads (at least one), as fast as
    /// they go.
    pub fn new(threads: usize) -> Miner {
        Miner {
            threads: threads.max(1),
            max_rate: None,
            lanes: true,
        }
    }

    /// The same miner, one nonce at a time (`false`) or, where the
    /// processor gains by it, [`LANES`] at once (`true`, the default).
    pub fn lanes(self, lanes: bool) -> Miner {
        Miner { lanes, ..self }
    }

    /// The same miner, computing at most `rate` hashes per second, all
    /// threads together (`None`, or a rate that is not a positive number:
    /// no limit).
    pub fn max_rate(self, rate: Option<f64>) -> Miner {
        Miner {
            max_rate: rate.filter(|r| r.is_finite() && *r > 0.0),
            ..self
        }
    }

    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Searches for a nonce on the worker threads until one is found or
    /// `cancel` is set. Blocks the calling thread: call it from a thread of
    /// its own (e.g. `tokio::task::spawn_blocking`), never from async code.
    pub fn mine(&self, job: &MiningJob, cancel: &CancelToken) -> MineReport {
        let start = Instant::now();
        let attempts = AtomicU64::new(0);
        let found: Mutex<Option<BlockHeader>> = Mutex::new(None);
        let stop = AtomicBool::new(false);
        let salt: u64 = rand::thread_rng().gen();
        std::thread::scope(|scope| {
            for worker in 0..self.threads {
                let (attempts, found, stop) = (&attempts, &found, &stop);
                let mut pace = self.max_rate.map(|r| Pace::new(r / self.threads as f64));
                scope.spawn(move || {
                    let mut search = NonceSearch::new(job, worker, salt);
                    search.lanes &= self.lanes;
                    let halted = || stop.load(Ordering::Relaxed) || cancel.is_cancelled();
                    let batch = pace.as_ref().map_or(CHECK_EVERY, Pace::batch);
                    loop {
                        if let Some(pace) = &mut pace {
                            pace.admit(batch, halted);
                        }
                        if halted() {
                            return;
                        }
                        let (tried, header) = search.run(batch);
                        attempts.fetch_add(tried, Ordering::Relaxed);
                        if let Some(header) = header {
                            if let Ok(mut slot) = found.lock() {
                                slot.get_or_insert(header);
                            }
                            stop.store(true, Ordering::Relaxed);
                            return;
                        }
                    }
                });
            }
        });
        let found = found.into_inner().ok().flatten();
        MineReport {
            outcome: found.map_or(MineOutcome::Cancelled, |h| MineOutcome::Found(Box::new(h))),
            attempts: attempts.into_inner(),
            elapsed: start.elapsed(),
        }
    }
}

/// Holds one worker to a rate: before each batch it sleeps until the time
/// that batch is due at that rate, so the worker is never ahead of it, in
/// slices short enough that a cancelled job still stops within
/// [`Pace::SLICE`].
struct Pace {
    start: Instant,
    done: u64,
    per_sec: f64,
}

impl Pace {
    /// Longest single sleep.
    const SLICE: Duration = Duration::from_millis(10);

    fn new(per_sec: f64) -> Pace {
        Pace {
            start: Instant::now(),
            done: 0,
            per_sec,
        }
    }

    /// Attempts between two waits: about a hundredth of a second's worth,
    /// so the hashes come evenly rather than in bursts.
    fn batch(&self) -> u64 {
        ((self.per_sec / 100.0) as u64).clamp(1, CHECK_EVERY)
    }

    /// Waits until `next` more attempts are due.
    fn admit(&mut self, next: u64, halted: impl Fn() -> bool) {
        self.done += next;
        let due = self.start + Duration::from_secs_f64(self.done as f64 / self.per_sec);
        loop {
            let now = Instant::now();
            if now >= due || halted() {
                return;
            }
            std::thread::sleep((due - now).min(Pace::SLICE));
        }
    }
}

/// One worker's search: the midstate and the second block, updated in place.
struct NonceSearch<'j> {
    job: &'j MiningJob,
    timestamp: Vec<u8>,
    /// Leading digits of the nonce, which end the first block.
    nonce_prefix: Vec<u8>,
    midstate: [u64; 8],
    /// The second (last) block: counter digits, merkle root, padding.
    block: GenericArray<u8, sha2::digest::consts::U128>,
    /// Its words after the counter's two, the same for every attempt.
    rest: [u64; 14],
    /// Whether to try [`LANES`] nonces at once ([`sha512_lanes`]).
    lanes: bool,
    /// Number of whole zero words and the mask of the partial one.
    zero_words: usize,
    partial_mask: u64,
    exhausted: bool,
}

impl<'j> NonceSearch<'j> {
    fn new(job: &'j MiningJob, worker: usize, salt: u64) -> NonceSearch<'j> {
        let timestamp = job.timestamp.to_string().into_bytes();
        // Timestamp and previous hash, then nonce digits to fill the block.
        let prefix_len = BLOCK_LEN - timestamp.len() - HASH_LEN;
        let mut nonce_prefix = format!("1{:05}{:020}", worker % 100_000, salt).into_bytes();
        nonce_prefix.resize(prefix_len, b'0');

        let mut first = [0u8; BLOCK_LEN];
        first[..timestamp.len()].copy_from_slice(&timestamp);
        first[timestamp.len()..timestamp.len() + HASH_LEN]
            .copy_from_slice(job.previous_hash.as_ref());
        first[timestamp.len() + HASH_LEN..].copy_from_slice(&nonce_prefix);
        let mut midstate = SHA512_IV;
        compress512(&mut midstate, &[GenericArray::clone_from_slice(&first)]);

        let total_len = BLOCK_LEN + COUNTER_DIGITS + LABEL_LEN;
        let mut block = GenericArray::default();
        block[..COUNTER_DIGITS].fill(b'0');
        block[COUNTER_DIGITS..COUNTER_DIGITS + LABEL_LEN].copy_from_slice(job.merkle_root.as_ref());
        block[COUNTER_DIGITS + LABEL_LEN] = 0x80;
        block[BLOCK_LEN - 16..].copy_from_slice(&((total_len as u128) * 8).to_be_bytes());

        let bits = job.required_bits.min(512) as usize;
        let partial_bits = bits % 64;
        let mut rest = [0u64; 14];
        for (word, bytes) in rest.iter_mut().zip(block[16..].chunks_exact(8)) {
            *word = u64::from_be_bytes(bytes.try_into().unwrap_or_default());
        }
        NonceSearch {
            job,
            timestamp,
            nonce_prefix,
            midstate,
            block,
            rest,
            lanes: sha512_lanes::worth_it(),
            zero_words: bits / 64,
            partial_mask: if partial_bits == 0 {
                0
            } else {
                !0u64 << (64 - partial_bits)
            },
            exhausted: false,
        }
    }

    /// Tries up to `count` nonces; returns how many were tried and the
    /// header when one meets the target.
    fn run(&mut self, count: u64) -> (u64, Option<BlockHeader>) {
        let mut tried = 0;
        while tried < count {
            if self.exhausted {
                return (tried, None);
            }
            if self.lanes && count - tried >= LANES as u64 {
                let (n, found) = self.run_lanes();
                tried += n;
                if found.is_some() {
                    return (tried, found);
                }
                continue;
            }
            let mut state = self.midstate;
            compress512(&mut state, std::slice::from_ref(&self.block));
            tried += 1;
            if self.meets_target(&state) {
                let header = self.header();
                self.increment();
                return (tried, Some(header));
            }
            self.increment();
        }
        (count, None)
    }

    /// Tries the next [`LANES`] nonces at once, as [`NonceSearch::run`]
    /// would one by one: how many were tried (up to and including the one
    /// found), and the header found.
    fn run_lanes(&mut self) -> (u64, Option<BlockHeader>) {
        let mut first = [[0u64; LANES]; 2];
        let mut counters = [[0u8; COUNTER_DIGITS]; LANES];
        let mut filled = 0;
        while filled < LANES && !self.exhausted {
            let digits = &self.block[..COUNTER_DIGITS];
            counters[filled].copy_from_slice(digits);
            for (word, bytes) in first.iter_mut().zip(digits.chunks_exact(8)) {
                word[filled] = u64::from_be_bytes(bytes.try_into().unwrap_or_default());
            }
            filled += 1;
            self.increment();
        }
        let out = sha512_lanes::compress_lanes(&self.midstate, &first, &self.rest);
        for (lane, counter) in counters.iter().enumerate().take(filled) {
            let state: [u64; 8] = std::array::from_fn(|i| out[i][lane]);
            if !self.meets_target(&state) {
                continue;
            }
            // Back to that nonce: the header, then on past it.
            self.block[..COUNTER_DIGITS].copy_from_slice(counter);
            self.exhausted = false;
            let header = self.header();
            self.increment();
            if header.this_hash.leading_zero_bits() < self.job.required_bits.min(512) {
                // Cannot happen (a test holds the lanes to one stream);
                // should it, one stream from now on.
                tracing::error!("the vector miner found a nonce that misses the target: mining one nonce at a time from now on");
                self.lanes = false;
                return (lane as u64 + 1, None);
            }
            return (lane as u64 + 1, Some(header));
        }
        (filled as u64, None)
    }

    fn meets_target(&self, state: &[u64; 8]) -> bool {
        state[..self.zero_words].iter().all(|&w| w == 0)
            && (self.partial_mask == 0 || state[self.zero_words] & self.partial_mask == 0)
    }

    /// Adds one to the counter digits, in place.
    fn increment(&mut self) {
        for digit in self.block[..COUNTER_DIGITS].iter_mut().rev() {
            if *digit == b'9' {
                *digit = b'0';
            } else {
                *digit += 1;
                return;
            }
        }
        self.exhausted = true;
    }

    fn header(&self) -> BlockHeader {
        let mut nonce = self.nonce_prefix.clone();
        nonce.extend_from_slice(&self.block[..COUNTER_DIGITS]);
        let mut header = BlockHeader {
            timestamp: Bytes::from(self.timestamp.clone()),
            previous_hash: self.job.previous_hash,
            nonce: Bytes::from(nonce),
            merkle_root: self.job.merkle_root,
            this_hash: BlockHash(crate::hash::Hash([0; HASH_LEN])),
        };
        header.this_hash = header.compute_hash();
        header
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merkle::merkle_root;

    fn job(bits: u32) -> MiningJob {
        MiningJob {
            timestamp: 1_795_247_465,
            previous_hash: *crate::hash::GENESIS,
            merkle_root: merkle_root(&[crate::hash::Txid(crate::hash::Hash::of(b"leaf"))]).unwrap(),
            required_bits: bits,
        }
    }

    #[test]
    fn midstate_hash_equals_the_plain_header_hash() {
        let job = job(0);
        let mut search = NonceSearch::new(&job, 3, 42);
        let (tried, header) = search.run(1);
        let header = header.unwrap();
        assert_eq!(tried, 1);
        assert_eq!(
            header.nonce.len(),
            BLOCK_LEN - 10 - HASH_LEN + COUNTER_DIGITS
        );
        assert!(header.nonce.iter().all(u8::is_ascii_digit) && header.nonce[0] != b'0');
        // The fast path's state equals the plain hash of the header bytes.
        let mut state = search.midstate;
        search.block[..COUNTER_DIGITS]
            .copy_from_slice(&header.nonce[header.nonce.len() - COUNTER_DIGITS..]);
        compress512(&mut state, std::slice::from_ref(&search.block));
        let bytes: Vec<u8> = state.iter().flat_map(|w| w.to_be_bytes()).collect();
        assert_eq!(bytes, header.this_hash.as_bytes().to_vec());
    }

    #[test]
    fn finds_a_header_meeting_the_target() {
        let report = Miner::new(2).mine(&job(12), &CancelToken::new());
        let MineOutcome::Found(header) = report.outcome else {
            panic!("not found");
        };
        assert_eq!(header.compute_hash(), header.this_hash);
        assert!(header.this_hash.leading_zero_bits() >= 12);
        assert!(report.attempts > 0);
    }

    /// The vector miner finds the same nonces, after the same number of
    /// attempts, as the one-stream miner it stands in for.
    #[test]
    fn the_lanes_find_the_same_nonces_as_one_stream() {
        let job = job(9);
        let mut lanes = NonceSearch::new(&job, 7, 99);
        lanes.lanes = true;
        let mut one = NonceSearch::new(&job, 7, 99);
        one.lanes = false;
        for batch in [4096, 100, 13, 4096, 4096, 8, 4096, 4096] {
            let a = lanes.run(batch);
            let b = one.run(batch);
            assert_eq!(a, b, "a batch of {batch}");
            assert_eq!(lanes.block, one.block);
        }
        // Found headers meet the target (a few in 8 batches at 9 bits).
        let mut found = 0;
        for _ in 0..64 {
            let (_, header) = lanes.run(4096);
            if let Some(header) = header {
                assert!(header.this_hash.leading_zero_bits() >= 9);
                assert_eq!(header.compute_hash(), header.this_hash);
                found += 1;
            }
        }
        assert!(found > 0);
    }

    #[test]
    fn counter_digits_carry() {
        let job = job(0);
        let mut search = NonceSearch::new(&job, 0, 0);
        search.block[..COUNTER_DIGITS].copy_from_slice(b"0000000000000199");
        search.increment();
        assert_eq!(&search.block[..COUNTER_DIGITS], b"0000000000000200");
    }

    #[test]
    fn a_limited_miner_keeps_to_its_rate_and_still_stops_at_once() {
        let cancel = CancelToken::new();
        let c = cancel.clone();
        let miner = Miner::new(2).max_rate(Some(20_000.0));
        let handle = std::thread::spawn(move || miner.mine(&job(200), &c));
        std::thread::sleep(Duration::from_millis(500));
        let cancelled_at = Instant::now();
        cancel.cancel();
        let report = handle.join().unwrap();
        assert!(cancelled_at.elapsed() < Duration::from_secs(1));
        assert_eq!(report.outcome, MineOutcome::Cancelled);
        // Never ahead of the rate, however fast the processor: 20,000 a
        // second for about half a second.
        let allowed = 20_000.0 * report.elapsed.as_secs_f64();
        assert!(report.attempts > 5_000);
        assert!(
            (report.attempts as f64) <= allowed,
            "{} hashes in {:?}",
            report.attempts,
            report.elapsed
        );
    }

    #[test]
    fn a_rate_that_is_not_positive_is_no_limit() {
        assert_eq!(Miner::new(1).max_rate(Some(0.0)).max_rate, None);
        assert_eq!(Miner::new(1).max_rate(Some(f64::NAN)).max_rate, None);
        assert_eq!(Miner::new(1).max_rate(Some(-5.0)).max_rate, None);
        assert_eq!(Miner::new(1).max_rate(Some(5.0)).max_rate, Some(5.0));
    }

    #[test]
    fn cancellation_stops_an_impossible_job_quickly() {
        let cancel = CancelToken::new();
        let c = cancel.clone();
        let started = Instant::now();
        let handle = std::thread::spawn(move || Miner::new(2).mine(&job(200), &c));
        // Wait until the workers are hashing, then cancel.
        std::thread::sleep(Duration::from_millis(50));
        cancel.cancel();
        let report = handle.join().unwrap();
        assert_eq!(report.outcome, MineOutcome::Cancelled);
        assert!(report.attempts > 0);
        assert!(started.elapsed() < Duration::from_secs(5));
    }
}
