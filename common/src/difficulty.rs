//! Difficulty: how many leading zero bits the next block needs, and the
//! timestamp rules that feed it.
//!
//! * `toycoin`: the original's schedule, d(i) leading zero **bytes** for a
//!   block with i blocks before it: 1, then 1 + floor(log2 i)
//!   ([`toycoin_zero_bytes`]). Timestamps are not read.
//! * `steady` (v3): a **level** in fixed-point bits moves after every
//!   block by how far the chain's clock ran from the target, divided by a
//!   half-life of [`HALF_LIFE_TARGETS`] targets: blocks on target move
//!   nothing, each target early raises the level by 1/32 bit, each target
//!   late lowers it by as much (an exponential moving average of the hash
//!   power, as Bitcoin Cash's ASERT without its anchor). The required bits
//!   are the level rounded, within [`MIN_BITS`]..=[`MAX_BITS`].
//!
//! The chain's clock is the median of the last [`MEDIAN_SPAN`] timestamps
//! ("median time past"): a minority of laptops minutes off move it little,
//! and its steps add up to the time that passed. What one block's step
//! counts is clamped to ±[`MAX_COUNTED_TARGETS`] targets, so one block
//! moves the level by at most one bit either way, and an honest miner
//! always stamps its own clock: a timestamp may be up to
//! [`MAX_FUTURE_SECS`] *before* the median time past (and at most as far
//! ahead of the checking node's clock). Together these stop a timewarp: a
//! burst of blocks stamped 10 minutes ahead moves the median once (one bit
//! at most), and the honest blocks after it, stamped at the real time, move
//! it back once. Before v3 honest miners had to stamp at least the median
//! time past, which such a burst had moved 10 minutes ahead: for those 10
//! minutes every honest block looked instant, each epoch raised the bits
//! by three, and the network stalled (22 → 28 bits in 275 s, then a block
//! of 270 s).
//!
//! A burst of real hash power is damped: in a simulation of a miner four
//! times the rest for 40 s (`bench/scripts/asert_sim.py`, 50 runs) the
//! rounded bits rose by two in 31 runs and by one in the others, against
//! the three a step of the old epochs gave, and no block after it took
//! two minutes. A network whose blocks stall gets a bit back with each
//! block of [`MAX_COUNTED_TARGETS`] targets or more, once the median time
//! past (some six blocks behind the tip) reaches it, rather than at an
//! epoch's end. The price is a slower answer to a class joining for good:
//! about [`HALF_LIFE_TARGETS`] blocks per doubling of the hash power,
//! except while the chain is young (its first [`YOUNG_BLOCKS`] blocks),
//! when the half-life is [`YOUNG_HALF_LIFE_TARGETS`] so that a cold start
//! finds its level within some twenty quick blocks.

/// Bits of block 0 in the steady profile: a few hundred thousand hashes,
/// well under a second on one thread.
pub const START_BITS: u32 = 18;
/// Fewest bits the steady profile ever asks for.
pub const MIN_BITS: u32 = 12;
/// Most bits the steady profile ever asks for (keeps work in a u128).
pub const MAX_BITS: u32 = 96;
/// A level of one bit, in the fixed point the level is kept in.
pub const ONE_BIT: i64 = 1 << 16;
/// Targets of lateness (or earliness) that move the level by one bit.
pub const HALF_LIFE_TARGETS: i64 = 32;
/// The half-life while the chain is young: a cold start, where nothing is
/// known of the hash power, finds its level four times as fast.
pub const YOUNG_HALF_LIFE_TARGETS: i64 = 4;
/// Blocks during which the chain is young.
pub const YOUNG_BLOCKS: u64 = 32;
/// Most targets one block's interval counts, either way: one block moves
/// the level by at most one bit (after the young blocks).
pub const MAX_COUNTED_TARGETS: i64 = 32;
/// How far a steady timestamp may be ahead of the checking node's clock,
/// and behind the median time past: laptops in a classroom without NTP are
/// often minutes apart, and one whose clock is up to 10 minutes off still
/// takes part.
pub const MAX_FUTURE_SECS: u64 = 600;
/// The median of this many blocks' timestamps ("median time past") is
/// what a timestamp may fall behind by at most [`MAX_FUTURE_SECS`].
pub const MEDIAN_SPAN: usize = 11;

/// The difficulty state after a block: what the next block's rule needs
/// from the blocks before it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Schedule {
    /// Timestamp (seconds) of the last block; `None` before block 0 or
    /// where timestamps are not read.
    pub last_timestamp: Option<u64>,
    /// The last [`MEDIAN_SPAN`] timestamps, oldest first (`recent_len` of
    /// them filled).
    recent: [u64; MEDIAN_SPAN],
    recent_len: usize,
    /// The level, bits times [`ONE_BIT`] (steady).
    pub level: i64,
    /// Number of blocks so far.
    pub height: u64,
}

impl Default for Schedule {
    fn default() -> Schedule {
        Schedule {
            last_timestamp: None,
            recent: [0; MEDIAN_SPAN],
            recent_len: 0,
            level: i64::from(START_BITS) * ONE_BIT,
            height: 0,
        }
    }
}

impl Schedule {
    /// The median of the last [`MEDIAN_SPAN`] timestamps (of all of them
    /// while there are fewer); `None` before block 0 or where timestamps
    /// are not read.
    pub fn median_time(&self) -> Option<u64> {
        let recent = &self.recent[..self.recent_len];
        if recent.is_empty() {
            return None;
        }
        let mut sorted = [0u64; MEDIAN_SPAN];
        sorted[..recent.len()].copy_from_slice(recent);
        let sorted = &mut sorted[..recent.len()];
        sorted.sort_unstable();
        Some(sorted[sorted.len() / 2])
    }

    /// The earliest timestamp the next block may carry (steady):
    /// [`MAX_FUTURE_SECS`] before the median time past.
    pub fn earliest_timestamp(&self) -> Option<u64> {
        self.median_time()
            .map(|m| m.saturating_sub(MAX_FUTURE_SECS))
    }

    /// The steady bits the next block needs: the level rounded, within
    /// [`MIN_BITS`]..=[`MAX_BITS`].
    pub fn steady_bits(&self) -> u32 {
        let rounded = (self.level + ONE_BIT / 2).div_euclid(ONE_BIT);
        rounded.clamp(i64::from(MIN_BITS), i64::from(MAX_BITS)) as u32
    }

    /// The schedule after `height` blocks at `level`, the last of which
    /// carried `recent` (their timestamps, oldest first; the last
    /// [`MEDIAN_SPAN`] of them are kept, none where timestamps are not
    /// read): what [`Schedule::after`] gives, rebuilt from what a chain keeps
    /// of each block anyway, so that a chain need not keep a schedule for
    /// every block ([`crate::chain::Chain::state_at`]).
    pub fn resumed(level: i64, height: u64, recent: &[u64]) -> Schedule {
        let recent = &recent[recent.len().saturating_sub(MEDIAN_SPAN)..];
        let mut kept = [0u64; MEDIAN_SPAN];
        kept[..recent.len()].copy_from_slice(recent);
        Schedule {
            last_timestamp: recent.last().copied(),
            recent: kept,
            recent_len: recent.len(),
            level,
            height,
        }
    }

    fn remember(&mut self, timestamp: u64) {
        if self.recent_len == MEDIAN_SPAN {
            self.recent.copy_within(1.., 0);
            self.recent[MEDIAN_SPAN - 1] = timestamp;
        } else {
            self.recent[self.recent_len] = timestamp;
            self.recent_len += 1;
        }
    }

    /// The schedule after a block with `timestamp`; `target_ms` the steady
    /// target (`None`: the toycoin profile, where only the height counts).
    pub fn after(&self, timestamp: Option<u64>, target_ms: Option<i64>) -> Schedule {
        let mut next = Schedule {
            last_timestamp: timestamp,
            height: self.height + 1,
            ..*self
        };
        let (Some(now), Some(target)) = (timestamp, target_ms) else {
            return next;
        };
        next.remember(now);
        if let (Some(before), Some(after)) = (self.median_time(), next.median_time()) {
            let blocks = median_position(next.height) - median_position(self.height);
            next.level = next_level(self.level, self.height, before, after, blocks, target);
        }
        next
    }
}

/// Which block's timestamp the median time past after `height` blocks
/// stands for, were the timestamps in order: the middle one of the last
/// [`MEDIAN_SPAN`] (of all of them, while there are fewer). While the chain
/// is shorter than [`MEDIAN_SPAN`] the median moves half a block per block.
fn median_position(height: u64) -> u64 {
    let span = height.min(MEDIAN_SPAN as u64);
    height - span + span / 2
}

/// The level after a block, with `height` blocks before it, moved the
/// median time past from `before` to `now` over `blocks` blocks' worth of
/// positions: by (expected − counted) / half-life, the counted time
/// clamped to ±[`MAX_COUNTED_TARGETS`] targets (and to one half-life while
/// the chain is young: one block moves one bit at most). The median, not
/// the block's own timestamp: laptops minutes apart move it little, and
/// its steps add up to the time that passed, so clamping them costs
/// nothing in the long run (a clamp on each block's own interval would
/// count a fast laptop's +300 s and the next block's -300 s unevenly and
/// push the bits up). Integers only: every node computes the same.
fn next_level(level: i64, height: u64, before: u64, now: u64, blocks: u64, target_ms: i64) -> i64 {
    let target = i128::from(target_ms.max(1));
    let half_life = if height < YOUNG_BLOCKS {
        YOUNG_HALF_LIFE_TARGETS
    } else {
        HALF_LIFE_TARGETS
    };
    // Never more than a half-life: one block moves one bit at most.
    let most = target * i128::from(MAX_COUNTED_TARGETS.min(half_life));
    let interval = (i128::from(now) - i128::from(before)) * 1000;
    let counted = interval.clamp(-most, most);
    let expected = target * i128::from(blocks);
    let step = (expected - counted) * i128::from(ONE_BIT) / (target * i128::from(half_life));
    let (low, high) = (i64::from(MIN_BITS) * ONE_BIT, i64::from(MAX_BITS) * ONE_BIT);
    (i128::from(level) + step).clamp(i128::from(low), i128::from(high)) as i64
}

/// The original's difficulty in zero bytes for a block with `index` blocks
/// before it: 1, then 1 + floor(log2 index).
pub fn toycoin_zero_bytes(index: u64) -> u32 {
    if index < 1 {
        1
    } else {
        1 + index.ilog2()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: i64 = 5_000;

    fn after(timestamps: &[u64]) -> Schedule {
        timestamps
            .iter()
            .fold(Schedule::default(), |s, &t| s.after(Some(t), Some(T)))
    }

    #[test]
    fn toycoin_difficulty_is_the_originals() {
        let d: Vec<u32> = (0..10).map(toycoin_zero_bytes).collect();
        assert_eq!(d, vec![1, 1, 2, 2, 3, 3, 3, 3, 4, 4]);
    }

    #[test]
    fn blocks_on_target_move_nothing_and_early_or_late_ones_move_the_level() {
        let on_time: Vec<u64> = (0..100).map(|i| 1000 + 5 * i).collect();
        assert_eq!(after(&on_time).level, i64::from(START_BITS) * ONE_BIT);
        // Past the young blocks, 32 targets early in all move one bit.
        let mut stamps = on_time.clone();
        let last = *stamps.last().unwrap();
        stamps.extend(std::iter::repeat(last).take(32));
        assert_eq!(after(&stamps).steady_bits(), START_BITS + 1);
        // One gap of 32 targets or more: one bit down once the median time
        // past has passed it, and no more.
        for gap in [5 * 33, 3_600] {
            let mut late = on_time.clone();
            late.extend((1..=8).map(|i| last + gap + 5 * i));
            assert_eq!(after(&late).steady_bits(), START_BITS - 1, "gap {gap}");
        }
    }

    #[test]
    fn the_median_time_is_of_the_last_eleven_timestamps() {
        assert_eq!(Schedule::default().median_time(), None);
        assert_eq!(after(&[100, 300, 200]).median_time(), Some(200));
        let stamps: Vec<u64> = (0..10).map(|i| 1000 + 5 * i).chain([9999]).collect();
        assert_eq!(after(&stamps).median_time(), Some(1025));
        assert_eq!(after(&stamps).earliest_timestamp(), Some(1025 - 600));
    }

    #[test]
    fn absurd_timestamps_and_targets_overflow_nothing() {
        let s = Schedule::default();
        let a = s.after(Some(0), Some(i64::MAX));
        let b = a.after(Some(u64::MAX), Some(i64::MAX));
        let c = b.after(Some(0), Some(1));
        for s in [a, b, c] {
            assert!((MIN_BITS..=MAX_BITS).contains(&s.steady_bits()));
        }
    }

    /// A network of `honest` hashes a second mines; `extra` joins with
    /// `extra_rate` from `from_secs` for `for_secs`, stamping `ahead`
    /// seconds ahead. Returns each block's (bits, interval) from `from`
    /// on, with time simulated exactly (exponential intervals, a seeded
    /// generator).
    fn simulate(
        honest: f64,
        extra_rate: f64,
        from_secs: f64,
        for_secs: f64,
        ahead: u64,
        seed: u64,
        end_secs: f64,
    ) -> Vec<(u32, f64, bool)> {
        let mut s = Schedule::default();
        let mut now = 1_000_000.0_f64;
        let start = now;
        let mut rng = 0x9e3779b97f4a7c15_u64 ^ seed;
        let mut uniform = || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            (rng >> 11) as f64 / (1u64 << 53) as f64
        };
        let mut blocks = Vec::new();
        while now - start < end_secs {
            let bits = s.steady_bits();
            let t = now - start;
            let attacking = t >= from_secs && t < from_secs + for_secs;
            let rate = honest + if attacking { extra_rate } else { 0.0 };
            let took = -(2f64.powi(bits as i32) / rate) * (1.0 - uniform()).ln();
            now += took;
            // Who found it: the attacker in proportion to its hash power.
            let theirs = attacking && uniform() < extra_rate / rate;
            let stamp = if theirs {
                now as u64 + ahead
            } else {
                now as u64
            };
            s = s.after(Some(stamp), Some(T));
            blocks.push((bits, took, theirs));
        }
        blocks
    }

    /// Where the bits settle for `rate`: the mean over the last blocks of
    /// a long honest run.
    fn settled(rate: f64) -> f64 {
        let run = simulate(rate, 0.0, 0.0, 0.0, 0, 7, 3_000.0);
        let tail = &run[run.len() / 2..];
        tail.iter().map(|b| f64::from(b.0)).sum::<f64>() / tail.len() as f64
    }

    #[test]
    fn any_hash_power_settles_near_the_target() {
        for rate in [1.0e5, 3.0e6, 5.0e7] {
            let run = simulate(rate, 0.0, 0.0, 0.0, 0, 1, 3_000.0);
            let tail = &run[run.len() / 2..];
            let mean = tail.iter().map(|b| b.1).sum::<f64>() / tail.len() as f64;
            assert!((3.5..7.0).contains(&mean), "{rate} H/s: {mean:.2} s");
        }
    }

    /// Issue 32's timewarp, as blocks: on a network on target, 20 blocks
    /// stamped 590 s ahead, mined 2 s apart, then honest blocks stamped at
    /// the real time. Before v3 honest miners had to stamp the median time
    /// past, 590 s ahead, so their blocks looked instant for 10 minutes.
    /// Now the bits move at most one step either way, and come back.
    #[test]
    fn twenty_future_stamped_blocks_move_the_bits_at_most_one_step() {
        let mut now = 1_000_000;
        let mut s = Schedule::default();
        for _ in 0..200 {
            now += 5;
            s = s.after(Some(now), Some(T));
        }
        let start = s.steady_bits();
        let mut seen = vec![start];
        for _ in 0..20 {
            now += 2;
            s = s.after(Some(now + 590), Some(T));
            seen.push(s.steady_bits());
        }
        // The honest network's blocks then take what its hash power needs
        // for the bits asked: 5 s at the start's bits, twice that per bit
        // more.
        for _ in 0..300 {
            let bits = s.steady_bits();
            now += (5.0 * 2f64.powi(bits as i32 - start as i32)).round() as u64;
            let earliest = s.earliest_timestamp().unwrap_or(0);
            s = s.after(Some(now.max(earliest)), Some(T));
            seen.push(s.steady_bits());
        }
        let (most, least) = (*seen.iter().max().unwrap(), *seen.iter().min().unwrap());
        assert!(most <= start + 1 && least + 1 >= start, "{seen:?}");
        assert_eq!(s.steady_bits(), start, "back where it was: {seen:?}");
    }

    /// The same, mined: a miner four times the honest network for 40 s,
    /// stamping 590 s ahead. In each of ten runs no block afterwards takes
    /// two minutes (before v3: 270 s, and an hour an epoch), and the bits
    /// never stand more than two above where the honest network settles.
    #[test]
    fn a_strong_miner_stamping_ahead_stalls_nothing() {
        let honest = 1.0e6;
        let level = settled(honest).round() as u32;
        for seed in 0..10 {
            let run = simulate(honest, 4.0 * honest, 600.0, 40.0, 590, seed, 1_500.0);
            let from = run.iter().position(|b| b.2).unwrap_or(run.len());
            let after = &run[from..];
            let most = after.iter().map(|b| b.0).max().unwrap_or(0);
            assert!(
                most <= level + 2,
                "run {seed}: up to {most} bits (settled {level})"
            );
            let longest = after.iter().map(|b| b.1).fold(0.0, f64::max);
            assert!(longest < 120.0, "run {seed}: a block of {longest:.0} s");
        }
    }

    /// A second node as strong as the first joins, then leaves: the bits
    /// rise while it mines and fall after it left, in each of ten runs.
    #[test]
    fn the_bits_rise_when_a_second_node_joins_and_fall_when_it_leaves() {
        let one = 2f64.powi(22) / 5.0;
        for seed in 0..10 {
            let run = simulate(one, one, 600.0, 900.0, 0, seed, 2_400.0);
            let mut t = 0.0;
            let mut phases = [Vec::new(), Vec::new(), Vec::new()];
            for b in &run {
                t += b.1;
                let phase = match t {
                    t if t < 600.0 => 0,
                    t if t < 1_500.0 => 1,
                    _ => 2,
                };
                phases[phase].push(f64::from(b.0));
            }
            let mean = |v: &[f64]| {
                let tail = &v[v.len() / 2..];
                tail.iter().sum::<f64>() / tail.len() as f64
            };
            let (alone, together, again) = (mean(&phases[0]), mean(&phases[1]), mean(&phases[2]));
            assert!(
                together >= alone + 0.5,
                "run {seed}: {alone:.2} → {together:.2}"
            );
            assert!(
                again <= together - 0.5,
                "run {seed}: {together:.2} → {again:.2}"
            );
        }
    }

    /// The hash power falls 32-fold: each block of 32 targets or more
    /// gives its bit back, once the median time past (some six blocks
    /// behind the tip) reaches it, not after a whole epoch.
    #[test]
    fn a_network_whose_blocks_stall_comes_back_within_a_few_blocks() {
        let s = (0..200).fold(Schedule::default(), |s, i| {
            s.after(Some(1_000_000 + 5 * i), Some(T))
        });
        let mut s = Schedule {
            level: 24 * ONE_BIT,
            ..s
        };
        let mut t = s.last_timestamp.unwrap();
        let mut bits = Vec::new();
        for _ in 0..8 {
            t += 160;
            s = s.after(Some(t), Some(T));
            bits.push(s.steady_bits());
        }
        // Five blocks while the median crosses the gap, then a bit a block.
        assert_eq!(bits, [24, 24, 24, 24, 24, 23, 22, 21]);
    }
}
