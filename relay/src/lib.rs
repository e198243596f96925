//! toycoin-relay: a topic-based pub/sub hub speaking the original toycoin
//! relay session (a subscription frame, then topic + data frame pairs).
//!
//! - [`hub`]: fan-out to bounded per-subscriber queues, shedding the
//!   slowest subscriber under memory pressure.
//! - [`budget`]: the one memory budget every held byte is charged to.
//! - [`queue`]: one subscriber's queue; [`reader`]: one client's frames.
//! - [`server`]: accepting, per-client handlers, limits, shutdown.
//! - [`stats`]: counters and the summary line.
//! - [`nemesis`]: clients by name and the teacher's rules (partitions,
//!   hold and step, delay and loss); [`control`]: the teacher's commands.
//! - [`local`]: a relay on the current runtime (tests, embedding).
//!
//! The binary (`src/main.rs`) only parses flags and waits for Ctrl-C.

pub mod budget;
pub mod control;
pub mod hub;
pub mod local;
pub mod names;
pub mod nemesis;
pub mod queue;
pub mod reader;
pub mod record;
pub mod replay;
pub mod server;
pub mod stats;
mod writer;

pub use hub::SlowPolicy;
pub use server::{bind, Relay, RelayConfig};
