//! A node in a pBFT network (`toycoin-node --consensus pbft`): one task
//! wires a [`Replica`] to the relay session. Transactions are checked into
//! the pool against the executed ledger; the primary orders what the pool
//! holds into batches; each batch the replica executes is applied in
//! order, one transaction at a time (one that no longer fits is skipped,
//! the same at every honest replica), and the client (the oracle) gets a
//! signed reply naming what was applied.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{broadcast, mpsc};
use tokio::time::Instant;
use toycoin_common::block::MAX_BLOCK_TXNS;
use toycoin_common::hash::{Hash, Txid};
use toycoin_common::ledger::Ledger;
use toycoin_common::mempool::Mempool;
use toycoin_common::message::TxnMessage;
use toycoin_common::pbft::{Membership, Misbehave, PbftEvent, Replica};
use toycoin_common::session::{Session, SessionConfig, SessionEvent};
use toycoin_common::transaction::Transaction;
use toycoin_common::wallet::Wallet;

use crate::event::Event;
use crate::fault::{read_order, Fault};
use crate::node::{Command, NodeConfig, Snapshot, STATUS_INTERVAL};

/// What a pBFT node needs beyond a node's configuration.
#[derive(Clone, Debug)]
pub struct PbftConfig {
    pub members: Arc<Membership>,
    /// The node's key: it must be one replica's.
    pub wallet: Wallet,
    /// The first view change's timeout (it doubles with each failed view).
    pub view_timeout: Duration,
}

pub(crate) struct PbftNode {
    config: NodeConfig,
    events: broadcast::Sender<Event>,
    session: Session,
    replica: Replica,
    ledger: Ledger,
    pool: Mempool,
    /// Every batch executed: (sequence number, digest).
    executed: Vec<(u64, Hash)>,
    /// What a stuck replica keeps sending.
    stuck: Option<Bytes>,
}

impl PbftNode {
    pub(crate) fn new(
        config: NodeConfig,
        pbft: PbftConfig,
        events: broadcast::Sender<Event>,
    ) -> Result<PbftNode, String> {
        let me = pbft
            .members
            .index_of(pbft.wallet.address())
            .ok_or_else(|| {
                format!(
                    "this node's key (wallet {}) is not one of the replicas",
                    pbft.wallet.fingerprint()
                )
            })?;
        let mut replica = Replica::new(
            pbft.members.clone(),
            me,
            pbft.wallet.clone(),
            config.profile.signing(),
        )?;
        replica.set_timeout(pbft.view_timeout);
        let session = Session::start(SessionConfig {
            relay: config.relay.clone(),
            topic: config.topic.clone(),
            profile: config.profile,
            name: config.name.clone(),
            max_frame_len: config.max_frame_len,
            backoff: config.backoff,
            max_backoff: config.max_backoff,
            // Blocks are not how a pBFT network agrees: no catch-up.
            ask: false,
            answer: false,
            keep_blocks: false,
            clock_skew: config.clock_skew,
            hello: Some(pbft.members.name(me)),
            hello_key: Some(pbft.wallet.clone()),
        });
        let mut node = PbftNode {
            session,
            replica,
            ledger: Ledger::new(config.profile),
            pool: Mempool::new(config.max_pending),
            config,
            events,
            executed: Vec::new(),
            stuck: None,
        };
        node.set_fault(node.config.fault, false);
        Ok(node)
    }

    fn emit(&self, event: Event) {
        let _ = self.events.send(event);
    }

    pub(crate) async fn run(mut self, mut commands: mpsc::Receiver<Command>) {
        let members = self.replica.members().clone();
        let me = self.replica.me();
        self.emit(Event::PbftStarted {
            name: members.name(me),
            replica: me,
            n: members.n(),
            f: members.f(),
            primary: members.name(self.replica.primary()),
            relay: self.config.relay.clone(),
            topic: self.config.topic.clone(),
        });
        let mut resend_at = Instant::now() + STATUS_INTERVAL;
        loop {
            let deadline = self.replica.deadline();
            tokio::select! {
                command = commands.recv() => match command {
                    Some(Command::Snapshot(reply)) => {
                        let _ = reply.send(self.snapshot());
                    }
                    Some(Command::Stop) | None => break,
                },
                event = self.session.next() => match event {
                    Some(event) => self.on_session(event),
                    None => break,
                },
                _ = tokio::time::sleep_until(deadline.unwrap_or_else(Instant::now)), if deadline.is_some() => {
                    if self.stuck.is_none() {
                        self.replica.on_timer(Instant::now());
                    }
                }
                _ = tokio::time::sleep_until(resend_at), if self.stuck.is_some() => {
                    if let Some(payload) = self.stuck.clone() {
                        self.emit(Event::FaultPlayed { what: "sent its last pBFT message again".into() });
                        self.session.publish(payload);
                    }
                    resend_at = Instant::now() + STATUS_INTERVAL;
                }
            }
            self.drive();
        }
        self.emit(Event::Stopped);
    }

    fn snapshot(&self) -> Snapshot {
        Snapshot {
            blocks: Vec::new(),
            tip: *toycoin_common::hash::GENESIS,
            total_work: 0,
            pending: self.pool.hashes().copied().collect(),
            mining: false,
            executed: self.executed.clone(),
            view: Some(self.replica.view()),
            balances: self.ledger.balances(),
        }
    }

    fn on_session(&mut self, event: SessionEvent) {
        match event {
            SessionEvent::Connected { relay, local } => {
                self.emit(Event::Connected { relay, local });
            }
            SessionEvent::Lost { reason, retry_in } => {
                self.emit(Event::Disconnected { reason, retry_in });
            }
            SessionEvent::Txn(m) => self.on_txn(m),
            SessionEvent::Pbft(payload) => {
                if self.stuck.is_none() {
                    // A refusal comes back as an event; one the bytes fix
                    // is not checked again (a replayed forgery).
                    if let Err(e) = self.replica.on_payload(&payload, Instant::now()) {
                        if e.is_fixed_by_bytes() {
                            self.session.refused(&payload, &e.to_string());
                        }
                    }
                }
            }
            SessionEvent::Order(order) => match read_order(order, &self.config.control_token) {
                Ok(fault) => self.set_fault(fault, true),
                Err(reason) => self.emit(Event::OrderRefused { reason }),
            },
            SessionEvent::Undecodable { bytes, reason, .. } => {
                self.emit(Event::Undecodable { bytes, reason });
            }
            SessionEvent::Replayed { bytes, reason, .. } => self.emit(Event::Undecodable {
                bytes,
                reason: toycoin_common::refused_frames::refused_again(&reason),
            }),
            SessionEvent::Unsent { bytes } => self.emit(Event::Unsent { bytes }),
            // Blocks, catch-up and status frames are proof of work's.
            SessionEvent::Bloc(_)
            | SessionEvent::Announce(_)
            | SessionEvent::GetBlocks(_)
            | SessionEvent::Status(_)
            | SessionEvent::Own(_)
            | SessionEvent::Requested { .. }
            | SessionEvent::Answered { .. }
            | SessionEvent::AnswerDue { .. }
            | SessionEvent::Spv(_)
            | SessionEvent::Timeline { .. } => {}
        }
    }

    fn on_txn(&mut self, m: TxnMessage) {
        let hash = m.txn.hash();
        match self.pool.add(&self.ledger, m.txn, Some(&m.tokens)) {
            Ok(hash) => self.emit(Event::TxnAccepted {
                hash,
                pending: self.pool.len(),
            }),
            Err(e) => self.emit(Event::TxnRejected {
                hash: Some(hash),
                reason: e.to_string(),
            }),
        }
    }

    /// Plays `fault` (the replica misbehaves itself where it can).
    fn set_fault(&mut self, fault: Option<Fault>, ordered: bool) {
        self.config.fault = fault;
        self.replica.set_misbehave(match fault {
            Some(Fault::Liar) => Misbehave::Equivocate,
            Some(Fault::Invalid) => Misbehave::BadSignatures,
            _ => Misbehave::No,
        });
        if fault != Some(Fault::Stuck) {
            self.stuck = None;
        }
        if ordered {
            self.emit(Event::Ordered { fault });
        }
    }

    /// After every input: order a batch where this replica is primary,
    /// send what the replica says, apply what it executed.
    fn drive(&mut self) {
        // Executed batches first: what they applied leaves the pool before
        // anything is ordered again.
        self.drain();
        let now = Instant::now();
        if self.replica.can_propose() && !self.pool.is_empty() && self.stuck.is_none() {
            let in_flight = self.replica.in_flight();
            let txns: Vec<Transaction> = self
                .pool
                .select(self.pool.len())
                .into_iter()
                .filter(|t| !in_flight.contains(&t.hash()))
                .take(MAX_BLOCK_TXNS)
                .collect();
            if !txns.is_empty() {
                self.replica.propose(txns, now);
            }
        }
        self.replica.set_waiting(!self.pool.is_empty(), now);
        self.drain();
    }

    /// Sends what the replica says and applies what it executed, until it
    /// has nothing more.
    fn drain(&mut self) {
        loop {
            let mut busy = false;
            while let Some(out) = self.replica.take_outgoing() {
                busy = true;
                self.send(out.to, out.payload);
            }
            while let Some(event) = self.replica.take_event() {
                busy = true;
                self.on_replica(event);
            }
            if !busy {
                break;
            }
        }
    }

    fn send(&mut self, to: Option<usize>, payload: Bytes) {
        match self.config.fault {
            Some(Fault::Silent) => return,
            Some(Fault::Stuck) if !self.executed.is_empty() => {
                if self.stuck.is_none() {
                    self.emit(Event::FaultPlayed {
                        what: "stopped taking part; keeps sending its last pBFT message".into(),
                    });
                    self.stuck = Some(payload);
                }
                return;
            }
            _ => {}
        }
        match to {
            None => self.session.publish(payload),
            Some(i) => {
                let name = self.replica.members().name(i);
                self.session.publish_to(&name, payload);
            }
        }
    }

    fn on_replica(&mut self, event: PbftEvent) {
        let PbftEvent::Execute {
            view,
            seq,
            digest,
            txns,
        } = event
        else {
            if let PbftEvent::Proposed { .. } = &event {
                if self.config.fault == Some(Fault::Liar) {
                    self.emit(Event::FaultPlayed {
                        what: "as primary, sent one batch to half the replicas and another to the rest".into(),
                    });
                }
            }
            self.emit(Event::Pbft(event));
            return;
        };
        let mut applied: Vec<Txid> = Vec::new();
        for txn in &txns {
            if self.ledger.apply_txns(std::slice::from_ref(txn)).is_ok() {
                applied.push(txn.hash());
            }
        }
        self.executed.push((seq, digest));
        let rebuilt = self.pool.rebuild(&self.ledger, Vec::new());
        for (hash, error) in rebuilt.dropped {
            self.emit(Event::TxnDropped {
                hash,
                reason: error.to_string(),
            });
        }
        self.emit(Event::PbftExecuted {
            view,
            seq,
            digest,
            applied: applied.len(),
            skipped: txns.len() - applied.len(),
        });
        self.replica.reply(seq, digest, &applied);
    }
}
