//! toycoin-relay: a topic-based pub/sub hub speaking the original toycoin
//! relay session (a subscription frame, then topic + data frame pairs).
//!
//! - [`hub`]: fan-out to bounded per-subscriber queues.
//! - [`server`]: accepting, per-client handlers, limits, shutdown.
//! - [`stats`]: counters and the summary line.
//! - [`local`]: a relay on the current runtime (tests, embedding).
//!
//! The binary (`src/main.rs`) only parses flags and waits for Ctrl-C.

pub mod hub;
pub mod local;
pub mod server;
pub mod stats;
mod writer;

pub use hub::SlowPolicy;
pub use server::{bind, Relay, RelayConfig};
