//! pBFT (practical Byzantine fault tolerance, Castro and Liskov 1999): the
//! other way to agree that the lecture shows beside proof of work. n = 3f+1
//! known replicas order batches of transactions; a batch is final the
//! moment it commits, where proof of work waits for 6 blocks.
//!
//! - [`wire`]: the replicas file, signed messages, batches.
//! - [`replica`]: one replica's protocol as a state machine.
//! - [`tally`]: what an observer (listener, web view, oracle) counts.
//!
//! The node runs it with `--consensus pbft` (`node/src/pbft.rs`);
//! `docs/pbft.md` describes the protocol as built.

pub mod replica;
pub mod tally;
pub mod wire;

pub use replica::{
    Misbehave, Outgoing, PbftEvent, PbftStats, Replica, CHECKPOINT_INTERVAL, PIPELINE,
    VIEW_TIMEOUT, WINDOW,
};
pub use tally::{Seen, Tally, Votes};
pub use wire::{parse_hash, Batch, Membership, Msg, PbftError, SignedWire, MAX_REPLICAS, PBFT_TAG};

#[cfg(test)]
mod tests;
