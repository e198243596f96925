//! The checker's own blocks: what they hold and their proof of work.

use toycoin_common::block::Block;
use toycoin_common::chain::Chain;
use toycoin_common::pow::{CancelToken, MineOutcome, Miner, MiningJob};
use toycoin_common::transaction::{Address, Transaction};

/// The transactions of the checker's next block on `chain`: its reward
/// (under toycoin, which pays none, a coinbase to the checker, a new
/// amount each height), then as many of `txns` as a block takes,
/// unchecked.
pub fn next_txns(
    chain: &Chain,
    me: &Address,
    txns: Vec<Transaction>,
    toycoin: bool,
) -> Vec<Transaction> {
    if toycoin {
        let coinbase = Transaction::coinbase(me.clone(), 100 + chain.len() as i64);
        chain.block_txns(me, std::iter::once(coinbase).chain(txns))
    } else {
        chain.block_txns(me, txns)
    }
}

/// A block of `txns` with `job`'s work, found on every core (blocking;
/// `None` if the mining stopped).
pub fn solve(job: &MiningJob, txns: Vec<Transaction>) -> Option<Block> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    match Miner::new(threads).mine(job, &CancelToken::new()).outcome {
        MineOutcome::Found(header) => Some(Block {
            header: *header,
            txns,
        }),
        MineOutcome::Cancelled => None,
    }
}
