//! What a node reports: one [`Event`] per thing a watcher should see. The
//! binary prints each as one line (its `Display`); tests wait on them.

use std::fmt;
use std::time::Duration;

use toycoin_common::hash::{BlockHash, Hash, Txid};
use toycoin_common::log::TRAFFIC;
use toycoin_common::pbft::PbftEvent;
use toycoin_common::profile::Profile;

use crate::fault::Fault;

/// Something the node did or saw.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    Started {
        name: String,
        profile: Profile,
        threads: usize,
        /// Most hashes a second (`--max-hash-rate`), if limited.
        max_hash_rate: Option<f64>,
        min_txns: usize,
        /// The fingerprint of the wallet its rewards go to, where blocks
        /// pay rewards.
        reward_to: Option<String>,
        relay: String,
        topic: String,
    },
    Connected {
        relay: String,
        local: String,
    },
    /// The relay could not be reached or went away.
    Disconnected {
        reason: String,
        retry_in: Duration,
    },
    TxnAccepted {
        hash: Txid,
        pending: usize,
    },
    TxnRejected {
        hash: Option<Txid>,
        reason: String,
    },
    MiningStarted {
        height: usize,
        txns: usize,
        required_bits: u32,
    },
    Mined {
        height: usize,
        hash: BlockHash,
        txns: usize,
        elapsed: Duration,
        hash_rate: f64,
    },
    /// The tip moved while mining: the search stopped `latency` after it.
    /// This node played its fault (`--fault`).
    FaultPlayed {
        what: String,
    },
    /// The teacher switched this node to a fault (`None`: honest again).
    Ordered {
        fault: Option<Fault>,
    },
    /// An order from the relay not obeyed, and why.
    OrderRefused {
        reason: String,
    },
    /// The block being mined took the transactions that arrived since
    /// its template was made.
    TemplateRefreshed {
        height: usize,
        txns: usize,
    },
    MiningCancelled {
        height: usize,
        latency: Duration,
        attempts: u64,
    },
    /// A block we mined arrived after another block took its height.
    LostRace {
        height: usize,
        hash: BlockHash,
    },
    /// The best chain changed (by our block or a peer's).
    Adopted {
        ours: bool,
        old_tip: BlockHash,
        new_tip: BlockHash,
        height: usize,
        fork_height: usize,
        rolled_back: usize,
        added: usize,
        returned: usize,
        confirmed: usize,
    },
    /// A pending transaction no longer fits the best chain.
    TxnDropped {
        hash: Txid,
        reason: String,
    },
    SideBranch {
        fork_height: usize,
        length: usize,
        best_length: usize,
    },
    BlocKnown {
        blocks: usize,
    },
    BlocRejected {
        reason: String,
    },
    /// A frame this node sent came back from the relay.
    OwnMessage {
        kind: &'static str,
    },
    CatchUpRequested {
        have: usize,
    },
    CatchUpAnswered {
        from_height: usize,
        blocks: usize,
    },
    Undecodable {
        bytes: usize,
        reason: String,
    },
    /// A frame could not be queued for the relay (away too long, or its
    /// queue full).
    Unsent {
        bytes: usize,
    },
    /// A light client's request answered (or not, and why).
    SpvAnswered {
        what: String,
    },
    /// A pBFT replica started: which of the n it is, and view 0's primary.
    PbftStarted {
        name: String,
        replica: usize,
        n: usize,
        f: usize,
        primary: String,
        relay: String,
        topic: String,
    },
    /// A pBFT node could not start (its key is no replica's, ...).
    PbftRefused {
        reason: String,
    },
    /// What the replica did (every [`PbftEvent`] but execution).
    Pbft(PbftEvent),
    /// A committed batch applied to the ledger, in sequence order:
    /// final the moment it is.
    PbftExecuted {
        view: u64,
        seq: u64,
        digest: Hash,
        applied: usize,
        skipped: usize,
    },
    Stopped,
}

impl Event {
    /// Prints the event through the one logging path ([`toycoin_common::log`]):
    /// problems as warnings, each frame passing through as traffic (hidden
    /// by `--quiet`), own frames coming back as detail (shown by `-v`), the
    /// rest — what changes the node's state — as information.
    pub fn log(&self) {
        // Lines another client's frames can cause go through the log
        // limiter ([`toycoin_common::log_limit`]), one per kind: a node
        // hears only the relay, so the kind is all it can blame.
        if let Some(kind) = self.caused_by_frames() {
            match self {
                Event::SpvAnswered { .. }
                | Event::TxnAccepted { .. }
                | Event::BlocKnown { .. }
                | Event::CatchUpAnswered { .. } => {
                    tracing::info!(target: TRAFFIC, source = kind, "{self}")
                }
                _ => tracing::warn!(source = kind, "{self}"),
            }
            return;
        }
        match self {
            Event::Disconnected { .. }
            | Event::TxnRejected { .. }
            | Event::TxnDropped { .. }
            | Event::BlocRejected { .. }
            | Event::Undecodable { .. }
            | Event::FaultPlayed { .. }
            | Event::Ordered { .. }
            | Event::OrderRefused { .. }
            | Event::Unsent { .. }
            | Event::PbftRefused { .. }
            | Event::Pbft(
                PbftEvent::Refused { .. }
                | PbftEvent::ViewChanging { .. }
                | PbftEvent::Behind { .. },
            ) => tracing::warn!("{self}"),
            Event::Pbft(PbftEvent::Prepared { .. } | PbftEvent::Stable { .. })
            | Event::SpvAnswered { .. } => {
                tracing::info!(target: TRAFFIC, "{self}")
            }
            Event::PbftStarted { .. } | Event::Pbft(_) | Event::PbftExecuted { .. } => {
                tracing::info!("{self}")
            }
            Event::TxnAccepted { .. }
            | Event::MiningStarted { .. }
            | Event::MiningCancelled { .. }
            | Event::BlocKnown { .. }
            | Event::CatchUpRequested { .. }
            | Event::CatchUpAnswered { .. } => tracing::info!(target: TRAFFIC, "{self}"),
            Event::OwnMessage { .. } | Event::TemplateRefreshed { .. } => {
                tracing::debug!("{self}")
            }
            Event::Started { .. }
            | Event::Connected { .. }
            | Event::Mined { .. }
            | Event::LostRace { .. }
            | Event::Adopted { .. }
            | Event::SideBranch { .. }
            | Event::Stopped => tracing::info!("{self}"),
        }
    }
}

impl Event {
    /// The kind of a line that frames from the network can make the node
    /// print as often as they are sent; `None` for what changes state.
    fn caused_by_frames(&self) -> Option<&'static str> {
        Some(match self {
            Event::TxnAccepted { .. } => "txn-accepted",
            Event::TxnRejected { .. } => "txn-rejected",
            Event::BlocRejected { .. } => "bloc-rejected",
            Event::BlocKnown { .. } => "bloc-known",
            Event::CatchUpAnswered { .. } => "getb-answered",
            Event::Undecodable { .. } => "undecodable",
            Event::OrderRefused { .. } => "order-refused",
            Event::Unsent { .. } => "unsent",
            Event::SpvAnswered { .. } => "spv",
            Event::Pbft(PbftEvent::Refused { .. }) => "pbft-refused",
            _ => return None,
        })
    }
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Event::Started {
                name,
                profile,
                threads,
                max_hash_rate,
                min_txns,
                reward_to,
                relay,
                topic,
            } => {
                write!(f, "Starting up {name}: Full Node (profile {}", profile.describe())?;
                let s = if *threads == 1 { "" } else { "s" };
                write!(f, ", {threads} mining thread{s}")?;
                if let Some(rate) = max_hash_rate {
                    write!(f, " at most {:.2} MH/s", rate / 1e6)?;
                }
                write!(
                    f,
                    ", blocks of {min_txns}+ txns), relay {relay} topic {topic}"
                )?;
                if let Some(wallet) = reward_to {
                    write!(f, ", rewards to wallet {wallet}")?;
                }
                Ok(())
            }
            Event::Connected { relay, local } => {
                write!(f, "Connected to relay {relay} (as {local})")
            }
            Event::Disconnected { reason, retry_in } => write!(
                f,
                "Relay: {reason}; retrying in {:.1} s",
                retry_in.as_secs_f64()
            ),
            Event::TxnAccepted { hash, pending } => {
                write!(f, "TXN {} accepted ({pending} pending)", hash.short())
            }
            Event::TxnRejected { hash, reason } => match hash {
                Some(h) => write!(f, "TXN {} rejected: {reason}", h.short()),
                None => write!(f, "TXN rejected: {reason}"),
            },
            Event::MiningStarted {
                height,
                txns,
                required_bits,
            } => write!(
                f,
                "Mining block {height} with {txns} txns ({required_bits} zero bits required)"
            ),
            Event::Mined {
                height,
                hash,
                txns,
                elapsed,
                hash_rate,
            } => write!(
                f,
                "Mined block {height} {} with {txns} txns in {:.2} s at {:.2} MH/s",
                hash.short(),
                elapsed.as_secs_f64(),
                hash_rate / 1e6
            ),
            Event::FaultPlayed { what } => write!(f, "FAULT (playing it on purpose): {what}"),
            Event::Ordered { fault: Some(fault) } => {
                write!(f, "The teacher made this node faulty: it plays {fault} from now on")
            }
            Event::Ordered { fault: None } => {
                write!(f, "The teacher made this node honest again")
            }
            Event::OrderRefused { reason } => write!(f, "Order refused: {reason}"),
            Event::TemplateRefreshed { height, txns } => {
                write!(f, "Mining block {height} now with {txns} txns")
            }
            Event::MiningCancelled {
                height,
                latency,
                attempts,
            } => write!(
                f,
                "Stopped mining block {height}: new tip (stopped {:.1} ms later, {attempts} hashes done)",
                latency.as_secs_f64() * 1e3
            ),
            Event::LostRace { height, hash } => write!(
                f,
                "Lost the race for block {height}: {} came too late",
                hash.short()
            ),
            Event::Adopted {
                ours,
                old_tip,
                new_tip,
                height,
                fork_height,
                rolled_back,
                added,
                returned,
                confirmed,
            } => {
                let who = if *ours { "our block" } else { "BLOC from a peer" };
                if *rolled_back == 0 {
                    write!(
                        f,
                        "{who}: chain extended by {added} to height {height}, tip {} ({confirmed} pending txns confirmed)",
                        new_tip.short()
                    )
                } else {
                    write!(
                        f,
                        "{who}: FORK at height {fork_height}: switched tip {} -> {}, {rolled_back} blocks rolled back, {added} added, {returned} txns back in the pool, {confirmed} confirmed",
                        old_tip.short(),
                        new_tip.short()
                    )
                }
            }
            Event::TxnDropped { hash, reason } => {
                write!(f, "TXN {} dropped from the pool: {reason}", hash.short())
            }
            Event::SideBranch {
                fork_height,
                length,
                best_length,
            } => write!(
                f,
                "BLOC from a peer: side branch of {length} blocks from height {fork_height}, not more work than ours ({best_length} blocks); kept aside"
            ),
            Event::BlocKnown { blocks } => {
                write!(f, "BLOC from a peer: nothing new ({blocks} blocks)")
            }
            Event::BlocRejected { reason } => write!(f, "BLOC rejected: {reason}"),
            Event::OwnMessage { kind } => write!(f, "{kind} (our own, back from the relay)"),
            Event::CatchUpRequested { have } => {
                write!(f, "GETB sent: asking for blocks after our {have}")
            }
            Event::CatchUpAnswered {
                from_height,
                blocks,
            } => write!(
                f,
                "GETB from a peer: sent {blocks} blocks from height {from_height}"
            ),
            Event::Undecodable { bytes, reason } => {
                write!(f, "Ignored a frame of {bytes} bytes: {reason}")
            }
            Event::Unsent { bytes } => write!(
                f,
                "Relay: a frame of {bytes} bytes was not sent (the queue to the relay is full)"
            ),
            Event::PbftStarted {
                name,
                replica,
                n,
                f: faults,
                primary,
                relay,
                topic,
            } => write!(
                f,
                "Starting up {name}: pBFT replica {replica} of n = {n} (tolerates f = {faults} faulty), view 0 primary {primary}, relay {relay} topic {topic}"
            ),
            Event::SpvAnswered { what } => write!(f, "SPV: a light wallet asked; sent {what}"),
            Event::PbftRefused { reason } => write!(f, "Cannot start a pBFT replica: {reason}"),
            Event::Pbft(event) => write!(f, "{event}"),
            Event::PbftExecuted {
                view,
                seq,
                digest,
                applied,
                skipped,
            } => {
                write!(
                    f,
                    "pBFT: batch {seq} COMMITTED ({}, view {view}): {applied} txns applied, final",
                    digest.short()
                )?;
                if *skipped > 0 {
                    write!(f, "; {skipped} skipped (no longer valid)")?;
                }
                Ok(())
            }
            Event::Stopped => write!(f, "Stopped"),
        }
    }
}
