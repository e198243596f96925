//! toycoin-node: a full node. It follows a relay topic, checks every `TXN `
//! and `BLOC`, keeps valid transactions in a pool, mines blocks on worker
//! threads and keeps the best valid chain (see `docs/profiles.md`), and
//! announces what it mines: the whole chain in the toycoin profile, as the
//! original, only the new block in the steady one, where nodes that missed
//! blocks catch up with `GETB` (see `docs/catch-up.md`).
//!
//! - [`node`]: the node task and mining; the mempool, the relay session
//!   and catch-up it uses are in `toycoin_common` (`mempool`, `session`,
//!   `catchup`).
//! - [`pbft`]: the node in a pBFT network (`--consensus pbft`); the
//!   protocol is `toycoin_common::pbft`.
//! - [`event`]: what the node reports, one line each.
//!
//! The binary (`src/main.rs`) parses flags, prints events, waits for Ctrl-C.

pub mod event;
pub mod fault;
pub mod node;
pub mod pbft;

pub use event::Event;
pub use fault::{Breach, Fault};
pub use node::{no_wallet, spawn, NodeConfig, NodeHandle, Snapshot};
pub use pbft::PbftConfig;
