//! Valid steady-profile chains for the propagation and validation suites,
//! built quickly: blocks are stamped three target intervals apart (ending
//! now), so the schedule is always behind and the difficulty falls to its
//! 12-bit floor after a few blocks (about 4,000 hashes a block).

use toycoin_common::block::Block;
use toycoin_common::chain::{now_secs, Chain};
use toycoin_common::pow::{CancelToken, MineOutcome, Miner};
use toycoin_common::profile::{Minting, Profile};
use toycoin_common::transaction::Transaction;

/// Seconds between blocks: three 5-second targets.
const SPACING: u64 = 15;

/// Where the blocks' rewards go (steady).
pub const BENCH_MINER: &[u8] = b"bench miner";

/// The benchmarks' miner's address: canonical, so steady's rules take its
/// rewards.
pub fn bench_miner() -> toycoin_common::transaction::Address {
    toycoin_common::address::example(BENCH_MINER)
}

/// Mines `n` blocks on top of `chain`, block i holding its reward (steady)
/// and then as much of `txns(i)` as fits, and
/// appends them; returns the new blocks. The last is stamped `later`
/// blocks' worth of time before now (room for blocks still to come).
pub fn extend(
    chain: &mut Chain,
    n: usize,
    later: usize,
    mut txns: impl FnMut(usize) -> Vec<Transaction>,
) -> Vec<Block> {
    let start = now_secs().saturating_sub(SPACING * (n + later) as u64);
    let start = start.max(chain.schedule().last_timestamp.unwrap_or(0));
    let miner = Miner::new(1);
    let reward_to = bench_miner();
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let txns = chain.block_txns(&reward_to, txns(i));
        let job = chain
            .mining_job(&txns, start + SPACING * (i as u64 + 1))
            .expect("blocks have transactions");
        let MineOutcome::Found(header) = miner.mine(&job, &CancelToken::new()).outcome else {
            unreachable!("never cancelled");
        };
        let block = Block {
            header: *header,
            txns,
        };
        chain
            .push(block.clone(), now_secs())
            .expect("a block mined on the tip is valid");
        out.push(block);
    }
    out
}

/// A chain of `n` blocks of two coinbase transactions each (toycoin), or
/// of the block reward alone (steady, where nobody else may mint).
pub fn coinbase_chain(profile: Profile, n: usize) -> (Chain, Vec<Block>) {
    let mut chain = Chain::new(profile);
    let blocks = extend(&mut chain, n, 0, |i| match profile.minting() {
        Minting::AnyCoinbase => vec![
            Transaction::coinbase(format!("block {i} a").into(), 1),
            Transaction::coinbase(format!("block {i} b").into(), 2),
        ],
        Minting::RewardsAndMint => Vec::new(),
    });
    (chain, blocks)
}
