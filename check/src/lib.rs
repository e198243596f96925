//! `toycoin-check node -- COMMAND ...`: grades a student's own node
//! against the protocol (issue 37), as jepsen's Maelstrom grades
//! students' distributed systems.
//!
//! The checker starts a relay of its own (on loopback, a port the OS
//! picks) serving a network it makes, starts the student's program with
//! `{host}`, `{port}` and `{network}` (the network's file) filled in,
//! and plays the rest of the class itself: it mines blocks, sends
//! transactions good and bad, forks the chain, sends junk, and watches
//! what the program mines. Each check says what was sent, what was
//! expected, what the program did, the verdict and a hint
//! ([`report`]). Every wait is bounded; a program that crashes, hangs or
//! floods is graded, not waited on.
//!
//! - [`program`]: the student's process;
//! - [`peer`]: the checker's client and its view of every block;
//! - [`stage`]: the checker's network and relay; [`mining`]: its blocks;
//! - [`node`]: the checks of a node, in order;
//! - [`client`]: the checks of a client that sends transactions.

pub mod client;
pub mod mining;
pub mod node;
pub mod peer;
pub mod program;
pub mod report;
pub mod stage;

pub use client::{check_client, ClientOptions};
pub use node::{check_node, Options};
pub use report::{Check, Report, Verdict};
