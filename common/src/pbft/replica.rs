//! One pBFT replica as a state machine, without I/O: payloads and times
//! in, payloads to send and events out (the node wires it to the relay).
//! It follows Castro and Liskov (1999), section 4, with signatures on
//! every message:
//!
//! - **Normal case.** The primary of view v (v mod n) assigns the next
//!   sequence number to a batch and sends PRE-PREPARE; each backup that
//!   accepts it sends PREPARE. A replica with the pre-prepare and 2f
//!   matching prepares from backups has *prepared* the batch and sends
//!   COMMIT; with 2f+1 matching commits it has *committed* it, and
//!   executes batches in sequence order, each once.
//! - **Checkpoints.** Every [`CHECKPOINT_INTERVAL`] batches each replica
//!   sends CHECKPOINT with its state; 2f+1 matching make it stable: the
//!   log below it is dropped and the window moves (watermarks low and
//!   low + [`WINDOW`]). Every log stays bounded.
//! - **View change.** A backup waiting for a batch longer than its timeout
//!   sends VIEW-CHANGE for v+1 with its stable checkpoint and a prepared
//!   certificate for each batch it prepared since; the timeout doubles
//!   with each view that fails. The new primary, with 2f+1 view changes,
//!   sends NEW-VIEW: those view changes and a pre-prepare for every
//!   sequence number between them, the batch of the highest-view
//!   certificate where there is one and a null batch where not. Every
//!   replica recomputes that plan from the view changes before it accepts.
//!   A replica that hears f+1 view changes for later views joins the
//!   smallest.
//!
//! Safety: a batch committed at one honest replica was prepared by 2f+1,
//! so any 2f+1 view changes include a certificate for it, and every new
//! view re-proposes it at its sequence number.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;

use crate::hash::{Hash, Txid};
use crate::profile::Signing;
use crate::signatures::check_signatures;
use crate::transaction::Transaction;
use crate::wallet::Wallet;

use super::wire::{parse_hash, Batch, CertWire, Membership, Msg, PbftError, SignedWire};

/// Batches between checkpoints (the paper's K).
pub const CHECKPOINT_INTERVAL: u64 = 8;
/// How far above the last stable checkpoint a sequence number may be
/// (high watermark minus low).
pub const WINDOW: u64 = 2 * CHECKPOINT_INTERVAL;
/// Batches the primary has ordered and not yet executed, at most.
pub const PIPELINE: u64 = 4;
/// A first view change's timeout; it doubles with each view that fails.
pub const VIEW_TIMEOUT: Duration = Duration::from_secs(2);
/// The timeout doubles at most this many times.
const MAX_DOUBLINGS: u32 = 5;
/// View-change messages for views further ahead than this are ignored.
pub const MAX_VIEW_AHEAD: u64 = 64;
/// Committed batches a replica keeps, with their proofs, for replicas
/// that fell behind.
pub const ARCHIVE: usize = 256;
/// Batches one answer to a fetch carries.
pub const FETCH_BATCHES: usize = 16;
/// A replica asks again, and answers one replica again, no sooner.
pub const FETCH_INTERVAL: Duration = Duration::from_millis(500);

/// Something a replica did that people watch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PbftEvent {
    /// As primary, ordered a batch.
    Proposed {
        view: u64,
        seq: u64,
        digest: Hash,
        txns: usize,
    },
    /// Prepared: the pre-prepare and 2f matching prepares.
    Prepared { view: u64, seq: u64, digest: Hash },
    /// Committed and executed, in sequence order: the node applies it.
    Execute {
        view: u64,
        seq: u64,
        digest: Hash,
        txns: Vec<Transaction>,
    },
    /// A checkpoint became stable; the log below it is gone.
    Stable { seq: u64 },
    /// Started a view change (`why`: timeout, or f+1 others did).
    ViewChanging { to: u64, why: String },
    /// Entered a new view: its primary, and how many batches it took over
    /// from certificates (`carried`) and filled with null batches.
    NewView {
        view: u64,
        primary: usize,
        carried: usize,
        nulls: usize,
    },
    /// A message not taken, and why (said once per message).
    Refused { from: Option<usize>, reason: String },
    /// Others went on past what this replica executed: it fetches the
    /// batches they committed, each with its proof.
    Behind { executed: u64, stable: u64 },
}

impl std::fmt::Display for PbftEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PbftEvent::Proposed {
                view,
                seq,
                digest,
                txns,
            } => write!(
                f,
                "pBFT: primary: batch {seq} ({txns} txns, {}, view {view}): PRE-PREPARE sent",
                digest.short()
            ),
            PbftEvent::Prepared { view, seq, digest } => write!(
                f,
                "pBFT: batch {seq} prepared ({}, view {view}): COMMIT sent",
                digest.short()
            ),
            PbftEvent::Execute { seq, .. } => write!(f, "pBFT: batch {seq} committed"),
            PbftEvent::Stable { seq } => {
                write!(f, "pBFT: checkpoint {seq} stable: the log up to it dropped")
            }
            PbftEvent::ViewChanging { to, why } => {
                write!(f, "pBFT: VIEW CHANGE to view {to}: {why}")
            }
            PbftEvent::NewView {
                view,
                primary,
                carried,
                nulls,
            } => write!(
                f,
                "pBFT: NEW VIEW {view}, primary replica {primary}: {carried} prepared batches carried over, {nulls} null"
            ),
            PbftEvent::Refused { from, reason } => match from {
                Some(r) => write!(f, "pBFT: refused a message from replica {r}: {reason}"),
                None => write!(f, "pBFT: refused a message: {reason}"),
            },
            PbftEvent::Behind { executed, stable } => write!(
                f,
                "pBFT: BEHIND: executed up to {executed}, the others' checkpoint is {stable}: fetching the batches they committed"
            ),
        }
    }
}

/// Counts of what a replica sent and took, by kind.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PbftStats {
    pub sent: BTreeMap<&'static str, u64>,
    pub received: BTreeMap<&'static str, u64>,
}

/// A payload to send: to everyone (`to: None`), or to one replica.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outgoing {
    pub to: Option<usize>,
    pub payload: Bytes,
}

/// How a replica misbehaves (the Byzantine lab), played by the state
/// machine itself so tests can play it too.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Misbehave {
    #[default]
    No,
    /// As primary, sends one batch to half the replicas and another to the
    /// rest at the same sequence number; as backup, prepares and commits a
    /// digest no batch has.
    Equivocate,
    /// Every message it signs carries a broken signature.
    BadSignatures,
}

#[derive(Clone, Debug)]
struct Cert {
    view: u64,
    seq: u64,
    digest: Hash,
    batch: Arc<Batch>,
    wire: CertWire,
}

#[derive(Debug, Default)]
struct Slot {
    /// The view of the pre-prepare accepted, its digest and batch.
    view: u64,
    accepted: Option<(Hash, Arc<Batch>, SignedWire)>,
    /// The latest prepare and commit of each replica: (view, digest).
    prepares: BTreeMap<usize, (u64, Hash, SignedWire)>,
    commits: BTreeMap<usize, (u64, Hash)>,
    /// The signed commits, for the batch's proof once committed.
    commit_wires: BTreeMap<usize, SignedWire>,
    /// Prepared in this view (a commit was sent).
    prepared_in: Option<u64>,
    /// The highest-view prepared certificate.
    cert: Option<Cert>,
    committed: bool,
    executed: bool,
}

#[derive(Clone, Debug)]
struct ViewChange {
    view: u64,
    stable: u64,
    stable_state: Option<Hash>,
    proof: Vec<SignedWire>,
    certs: Vec<Cert>,
    wire: SignedWire,
}

/// One entry of a new view's plan: the batch at `seq`.
#[derive(Clone, Debug)]
struct Planned {
    seq: u64,
    batch: Arc<Batch>,
    carried: bool,
}

/// One pBFT replica.
#[derive(Debug)]
pub struct Replica {
    members: Arc<Membership>,
    me: usize,
    wallet: Wallet,
    signing: Signing,
    view: u64,
    /// Between sending a view change and accepting the new view.
    changing: bool,
    low: u64,
    low_state: Hash,
    stable_proof: Vec<SignedWire>,
    last_executed: u64,
    state: Hash,
    /// The last sequence number this replica assigned as primary.
    next_seq: u64,
    slots: BTreeMap<u64, Slot>,
    checkpoints: BTreeMap<u64, BTreeMap<usize, (Hash, SignedWire)>>,
    /// The latest valid view change of each replica.
    view_changes: BTreeMap<usize, ViewChange>,
    deadline: Option<Instant>,
    /// During a view change: 2f+1 replicas asked for this view, so the
    /// timer that gives it up runs (the paper's first liveness rule).
    view_asked: bool,
    /// When this replica asked for the view it is changing to.
    asked_at: Instant,
    failed_views: u32,
    base_timeout: Duration,
    waiting: bool,
    misbehave: Misbehave,
    outbox: VecDeque<Outgoing>,
    events: VecDeque<PbftEvent>,
    stats: PbftStats,
    /// Said once: behind the others' stable checkpoint.
    behind_said: u64,
    /// Committed batches with their proofs, newest last.
    archive: VecDeque<(u64, super::wire::CommittedWire)>,
    /// Others are ahead: fetch what they committed.
    want_fetch: bool,
    fetched_at: Option<Instant>,
    /// When each replica was last answered a fetch.
    served_at: BTreeMap<usize, Instant>,
}

/// The state before any batch.
fn genesis_state() -> Hash {
    Hash::of(b"toycoin-pbft-genesis")
}

impl Replica {
    /// Replica `me` of `members`, signing with `wallet` (whose address must
    /// be replica `me`'s), checking transactions' signatures as `signing`.
    pub fn new(
        members: Arc<Membership>,
        me: usize,
        wallet: Wallet,
        signing: Signing,
    ) -> Result<Replica, String> {
        match members.member(me) {
            Some(m) if m.address == *wallet.address() => {}
            Some(m) => return Err(format!("this key is not replica {me}'s ({})", m.name)),
            None => return Err(format!("no replica {me}")),
        }
        Ok(Replica {
            members,
            me,
            wallet,
            signing,
            view: 0,
            changing: false,
            low: 0,
            low_state: genesis_state(),
            stable_proof: Vec::new(),
            last_executed: 0,
            state: genesis_state(),
            next_seq: 0,
            slots: BTreeMap::new(),
            checkpoints: BTreeMap::new(),
            view_changes: BTreeMap::new(),
            deadline: None,
            view_asked: false,
            asked_at: Instant::now(),
            failed_views: 0,
            base_timeout: VIEW_TIMEOUT,
            waiting: false,
            misbehave: Misbehave::No,
            outbox: VecDeque::new(),
            events: VecDeque::new(),
            stats: PbftStats::default(),
            behind_said: 0,
            archive: VecDeque::new(),
            want_fetch: false,
            fetched_at: None,
            served_at: BTreeMap::new(),
        })
    }

    /// The first view change's timeout (it doubles with each failed view).
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.base_timeout = timeout.max(Duration::from_millis(10));
    }

    pub fn set_misbehave(&mut self, misbehave: Misbehave) {
        self.misbehave = misbehave;
    }

    pub fn me(&self) -> usize {
        self.me
    }

    pub fn members(&self) -> &Arc<Membership> {
        &self.members
    }

    pub fn view(&self) -> u64 {
        self.view
    }

    /// Whether a view change is under way.
    pub fn changing_view(&self) -> bool {
        self.changing
    }

    pub fn primary(&self) -> usize {
        self.members.primary(self.view)
    }

    pub fn is_primary(&self) -> bool {
        self.primary() == self.me
    }

    pub fn last_executed(&self) -> u64 {
        self.last_executed
    }

    /// The last stable checkpoint (the low watermark).
    pub fn stable(&self) -> u64 {
        self.low
    }

    /// The state digest after the last executed batch.
    pub fn state(&self) -> Hash {
        self.state
    }

    pub fn stats(&self) -> &PbftStats {
        &self.stats
    }

    /// Entries in the log (bounded by the window).
    pub fn log_len(&self) -> usize {
        self.slots.len() + self.checkpoints.len() + self.view_changes.len()
    }

    /// When [`Replica::on_timer`] is next due.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// What to send, oldest first.
    pub fn take_outgoing(&mut self) -> Option<Outgoing> {
        self.outbox.pop_front()
    }

    /// What happened, oldest first.
    pub fn take_event(&mut self) -> Option<PbftEvent> {
        self.events.pop_front()
    }

    /// Transactions in batches ordered and not yet executed: the primary
    /// does not order them again.
    pub fn in_flight(&self) -> HashSet<Txid> {
        self.slots
            .values()
            .filter(|s| !s.executed)
            .filter_map(|s| s.accepted.as_ref())
            .flat_map(|(_, b, _)| b.txns.iter().map(Transaction::hash))
            .collect()
    }

    /// Whether this replica, as primary, may order another batch now.
    pub fn can_propose(&self) -> bool {
        self.is_primary()
            && !self.changing
            && self.next_seq < self.low + WINDOW
            && self.next_seq < self.last_executed + PIPELINE
    }

    /// Says whether requests wait (the node's pool holds transactions not
    /// executed): a backup that waits too long changes the view.
    pub fn set_waiting(&mut self, waiting: bool, now: Instant) {
        self.waiting = waiting;
        self.rearm(now);
    }

    fn timeout(&self) -> Duration {
        self.base_timeout * 2u32.pow(self.failed_views.min(MAX_DOUBLINGS))
    }

    fn busy(&self) -> bool {
        self.waiting
            || self
                .slots
                .values()
                .any(|s| s.accepted.is_some() && !s.executed)
    }

    /// Starts the view-change timer when requests wait and stops it when
    /// none does (during a view change it runs on).
    fn rearm(&mut self, now: Instant) {
        if self.changing {
            return;
        }
        match (self.busy(), self.deadline) {
            (true, None) => self.deadline = Some(now + self.timeout()),
            (false, Some(_)) => self.deadline = None,
            _ => {}
        }
    }

    /// The timer: a view whose batches do not come is given up. During a
    /// view change it is given up only once 2f+1 replicas asked for it
    /// (Castro and Liskov, section 4.5.2): a replica whose timer ran out
    /// alone says its view change again instead of racing ahead through
    /// views with doubling timeouts that the others would have to climb.
    pub fn on_timer(&mut self, now: Instant) {
        self.fetch(now);
        if !self.deadline.is_some_and(|d| d <= now) {
            return;
        }
        if self.changing && !self.view_asked {
            let asked = self.asked_for(self.view);
            self.events.push_back(PbftEvent::ViewChanging {
                to: self.view,
                why: format!(
                    "asks again: {asked} of the {} replicas needed asked for view {} (the others go on without this one until their own timers run out)",
                    self.members.quorum(),
                    self.view
                ),
            });
            self.send_view_change();
            self.deadline = Some(now + self.timeout());
            return;
        }
        let why = if self.changing {
            format!(
                "view {} did not start within {:.1} s of {} replicas asking for it",
                self.view,
                self.timeout().as_secs_f64(),
                self.members.quorum()
            )
        } else {
            format!(
                "no batch executed for {:.1} s",
                self.timeout().as_secs_f64()
            )
        };
        self.start_view_change(self.view + 1, why, now);
    }

    /// How many replicas (this one included) asked for `view`.
    fn asked_for(&self, view: u64) -> usize {
        self.view_changes
            .values()
            .filter(|vc| vc.view == view)
            .count()
    }

    // -----------------------------------------------------------------
    // Sending

    fn sign(&mut self, msg: Msg) -> SignedWire {
        let mut wire = SignedWire::sign(&self.wallet, self.me, msg);
        if self.misbehave == Misbehave::BadSignatures {
            // Flip the signature's first base64 digit to another.
            let flipped = if wire.sig.starts_with('A') { "B" } else { "A" };
            wire.sig.replace_range(..1, flipped);
        }
        wire
    }

    fn send(&mut self, to: Option<usize>, wire: &SignedWire, kind: &'static str) {
        *self.stats.sent.entry(kind).or_default() += 1;
        self.outbox.push_back(Outgoing {
            to,
            payload: wire.encode(),
        });
    }

    fn broadcast(&mut self, msg: Msg) -> SignedWire {
        let kind = msg.kind();
        let wire = self.sign(msg);
        self.send(None, &wire, kind);
        wire
    }

    /// As primary, orders `txns` (at most a block's worth, none in flight)
    /// as the next batch. False where this replica may not
    /// ([`Replica::can_propose`]).
    pub fn propose(&mut self, txns: Vec<Transaction>, now: Instant) -> bool {
        if !self.can_propose() {
            return false;
        }
        let seq = self.next_seq.max(self.last_executed).max(self.low) + 1;
        self.next_seq = seq;
        let batch = Arc::new(Batch::new(txns));
        let view = self.view;
        self.events.push_back(PbftEvent::Proposed {
            view,
            seq,
            digest: batch.digest,
            txns: batch.txns.len(),
        });
        if self.misbehave == Misbehave::Equivocate && !batch.txns.is_empty() {
            // A twin at the same number: the same transactions but the
            // last, to the second half of the replicas.
            let twin = Arc::new(Batch::new(batch.txns[..batch.txns.len() - 1].to_vec()));
            let n = self.members.n();
            for (to, b) in (0..n)
                .filter(|&i| i != self.me)
                .map(|i| (i, if i < n / 2 { &batch } else { &twin }))
                .collect::<Vec<_>>()
            {
                let wire = self.sign(pre_prepare(view, seq, b));
                self.send(Some(to), &wire, "pre-prepare");
            }
            let wire = self.sign(pre_prepare(view, seq, &batch));
            self.accept(view, seq, batch, wire);
        } else {
            let wire = self.broadcast(pre_prepare(view, seq, &batch));
            self.accept(view, seq, batch, wire);
        }
        self.rearm(now);
        self.check_prepared(seq);
        true
    }

    /// After executing batch `seq`, tells the client which of its
    /// transactions were applied.
    pub fn reply(&mut self, seq: u64, digest: Hash, applied: &[Txid]) {
        let msg = Msg::Reply {
            view: self.view,
            seq,
            digest: digest.to_hex(),
            txns: applied.iter().map(|t| t.to_hex()).collect(),
        };
        self.broadcast(msg);
    }

    // -----------------------------------------------------------------
    // Receiving

    /// A `PBFT` payload from the relay. A message not taken is said as a
    /// [`PbftEvent::Refused`] (and the reason returned); the cheap checks
    /// come before the signature's.
    pub fn on_payload(&mut self, payload: &[u8], now: Instant) -> Result<(), PbftError> {
        let mut from = None;
        let result = self.take(payload, now, &mut from);
        if let Err(e) = &result {
            self.events.push_back(PbftEvent::Refused {
                from,
                reason: e.to_string(),
            });
        }
        self.rearm(now);
        result
    }

    /// Takes in a payload, parsed once: `sender` is the replica it says
    /// it is from, once that is read (a refusal names it without parsing
    /// the frame again).
    fn take(
        &mut self,
        payload: &[u8],
        now: Instant,
        sender: &mut Option<usize>,
    ) -> Result<(), PbftError> {
        let wire = SignedWire::decode(payload)?;
        let (from, msg) = wire.open()?;
        *sender = Some(from);
        if from == self.me || matches!(msg, Msg::Reply { .. }) {
            return Ok(());
        }
        if from >= self.members.n() {
            return Err(PbftError::UnknownReplica(from, self.members.n()));
        }
        if !self.wanted(from, &msg) {
            if self.beyond_window(&msg) {
                // Others are a window ahead: worth a signature to know.
                self.members.check_signature(from, &wire)?;
                self.want_fetch = true;
                self.fetch(now);
            }
            return Ok(());
        }
        self.members.check_signature(from, &wire)?;
        *self.stats.received.entry(msg.kind()).or_default() += 1;
        match msg {
            Msg::PrePrepare {
                view,
                seq,
                digest,
                batch,
            } => self.on_pre_prepare(from, view, seq, &digest, &batch, wire),
            Msg::Prepare { view, seq, digest } => {
                let digest = parse_hash(&digest)?;
                let slot = self.slots.entry(seq).or_default();
                slot.prepares.insert(from, (view, digest, wire));
                self.check_prepared(seq);
                Ok(())
            }
            Msg::Commit { view, seq, digest } => {
                let digest = parse_hash(&digest)?;
                let slot = self.slots.entry(seq).or_default();
                slot.commits.insert(from, (view, digest));
                slot.commit_wires.insert(from, wire);
                self.check_committed(seq);
                Ok(())
            }
            Msg::Checkpoint { seq, state } => {
                let state = parse_hash(&state)?;
                self.checkpoints
                    .entry(seq)
                    .or_default()
                    .insert(from, (state, wire));
                self.check_stable(seq);
                Ok(())
            }
            Msg::ViewChange { .. } => {
                let vc = self.check_view_change(from, &msg, wire)?;
                self.view_changes.insert(from, vc);
                self.after_view_change(now);
                Ok(())
            }
            Msg::NewView {
                view,
                view_changes,
                pre_prepares,
            } => self.on_new_view(view, &view_changes, &pre_prepares, now),
            Msg::Fetch { after } => {
                self.on_fetch(from, after, now);
                Ok(())
            }
            Msg::Committed { items } => self.on_committed(&items, now),
            Msg::Reply { .. } => Ok(()),
        }
    }

    /// Whether a message is worth its signature check: in this view or
    /// a later one (within bounds), inside the window, and not already
    /// had from its sender.
    fn wanted(&self, from: usize, msg: &Msg) -> bool {
        let in_window = |seq: u64| seq > self.low && seq <= self.low + WINDOW;
        let ahead = |view: u64| view >= self.view && view <= self.view + MAX_VIEW_AHEAD;
        match msg {
            Msg::PrePrepare {
                view, seq, digest, ..
            } => {
                *view == self.view
                    && !self.changing
                    && from == self.members.primary(*view)
                    && in_window(*seq)
                    && self.slots.get(seq).map_or(true, |s| {
                        // A second pre-prepare is checked only where it
                        // differs: the primary equivocates.
                        !s.executed
                            && (s.view != *view
                                || s.accepted
                                    .as_ref()
                                    .map_or(true, |(d, _, _)| d.to_hex() != *digest))
                    })
            }
            Msg::Prepare { view, seq, .. } => {
                ahead(*view)
                    && in_window(*seq)
                    && from != self.members.primary(*view)
                    && self.slots.get(seq).map_or(true, |s| {
                        s.prepares.get(&from).map_or(true, |(v, _, _)| v < view)
                    })
            }
            Msg::Commit { view, seq, .. } => {
                ahead(*view)
                    && in_window(*seq)
                    && self.slots.get(seq).map_or(true, |s| {
                        s.commits.get(&from).map_or(true, |(v, _)| v < view)
                    })
            }
            Msg::Checkpoint { seq, .. } => {
                // A replica that fetched batches past its window takes the
                // checkpoints up to a window past what it executed: with
                // them its window moves on again.
                *seq > self.low
                    && *seq <= self.low.max(self.last_executed) + WINDOW
                    && seq % CHECKPOINT_INTERVAL == 0
                    && self
                        .checkpoints
                        .get(seq)
                        .map_or(true, |c| !c.contains_key(&from))
            }
            Msg::ViewChange { view, .. } => {
                (*view > self.view || (*view == self.view && self.changing))
                    && *view <= self.view + MAX_VIEW_AHEAD
                    && self
                        .view_changes
                        .get(&from)
                        .map_or(true, |vc| vc.view < *view)
            }
            Msg::NewView { view, .. } => {
                (*view > self.view || (*view == self.view && self.changing))
                    && *view <= self.view + MAX_VIEW_AHEAD
                    && from == self.members.primary(*view)
            }
            Msg::Fetch { after } => *after < self.last_executed,
            Msg::Committed { .. } => self.want_fetch,
            Msg::Reply { .. } => false,
        }
    }

    /// A vote or checkpoint for a number above the window: the others went
    /// on without this replica.
    fn beyond_window(&self, msg: &Msg) -> bool {
        match msg {
            Msg::Prepare { seq, .. } | Msg::Commit { seq, .. } => *seq > self.low + WINDOW,
            Msg::Checkpoint { seq, .. } => *seq > self.low.max(self.last_executed) + WINDOW,
            _ => false,
        }
    }

    /// Asks the others for the batches they committed after ours, at most
    /// every [`FETCH_INTERVAL`].
    fn fetch(&mut self, now: Instant) {
        if !self.want_fetch || self.fetched_at.is_some_and(|t| now < t + FETCH_INTERVAL) {
            return;
        }
        self.fetched_at = Some(now);
        let after = self.last_executed;
        self.broadcast(Msg::Fetch { after });
    }

    /// Another replica fell behind: the committed batches after `after`
    /// this one still holds, with their proofs, to it alone.
    fn on_fetch(&mut self, from: usize, after: u64, now: Instant) {
        if self
            .served_at
            .get(&from)
            .is_some_and(|t| now < *t + FETCH_INTERVAL)
        {
            return;
        }
        let items: Vec<super::wire::CommittedWire> = self
            .archive
            .iter()
            .filter(|(seq, _)| *seq > after)
            .take(FETCH_BATCHES)
            .map(|(_, c)| c.clone())
            .collect();
        if items.is_empty() {
            return;
        }
        self.served_at.insert(from, now);
        let wire = self.sign(Msg::Committed { items });
        self.send(Some(from), &wire, "committed");
    }

    /// Committed batches fetched: each checked (the pre-prepare signed by
    /// its view's primary, the batch its digest's, 2f+1 matching signed
    /// commits) and executed in order.
    fn on_committed(
        &mut self,
        items: &[super::wire::CommittedWire],
        now: Instant,
    ) -> Result<(), PbftError> {
        if items.len() > FETCH_BATCHES {
            return Err(PbftError::Refused(
                "more batches than a fetch answers".into(),
            ));
        }
        for item in items {
            let (view, seq, batch) = self
                .check_pre_prepare(&item.pre_prepare)
                .map_err(|e| PbftError::Refused(format!("a committed batch {e}")))?;
            if seq != self.last_executed + 1 {
                continue;
            }
            let digest = batch.digest;
            // The commits whose signatures were checked and that match:
            // only these are kept, and served to others in their turn.
            let mut matching = BTreeMap::new();
            for c in item.commits.iter().take(self.members.n()) {
                let (r, m) = self.members.verify(c)?;
                if let Msg::Commit {
                    view: v,
                    seq: s,
                    digest: d,
                } = m
                {
                    if v == view && s == seq && parse_hash(&d)? == digest {
                        matching.insert(r, c);
                    }
                }
            }
            if matching.len() < self.members.quorum() {
                return Err(PbftError::Refused(format!(
                    "committed batch {seq}: {} matching commits of the {} needed",
                    matching.len(),
                    self.members.quorum()
                )));
            }
            let slot = self.slots.entry(seq).or_default();
            slot.view = view;
            slot.accepted = Some((digest, Arc::new(batch), item.pre_prepare.clone()));
            slot.prepared_in = Some(view);
            slot.committed = true;
            for (r, c) in matching {
                slot.commits.insert(r, (view, digest));
                slot.commit_wires.insert(r, c.clone());
            }
            if view > self.view || (self.changing && view < self.view) {
                // 2f+1 replicas committed a batch this one lacked in that
                // view: it is the view the others are in. A view change
                // of this replica's own that never started is given up.
                self.view = view;
                self.changing = false;
                self.deadline = None;
                self.view_changes.retain(|_, vc| vc.view > view);
                self.events.push_back(PbftEvent::NewView {
                    view,
                    primary: self.members.primary(view),
                    carried: 0,
                    nulls: 0,
                });
            }
            self.execute_ready();
        }
        // Checkpoints heard meanwhile may now be ours too.
        let seqs: Vec<u64> = self.checkpoints.keys().copied().collect();
        for seq in seqs {
            self.check_stable(seq);
        }
        self.fetch(now);
        Ok(())
    }

    fn on_pre_prepare(
        &mut self,
        from: usize,
        view: u64,
        seq: u64,
        digest: &str,
        batch: &str,
        wire: SignedWire,
    ) -> Result<(), PbftError> {
        let digest = parse_hash(digest)?;
        if let Some(slot) = self.slots.get(&seq) {
            if let (true, Some((had, _, _))) = (slot.view == view, &slot.accepted) {
                if *had != digest {
                    return Err(PbftError::Refused(format!(
                        "equivocation: primary {} sent a second, different pre-prepare for view {view}, sequence {seq}",
                        self.members.name(from)
                    )));
                }
                return Ok(());
            }
        }
        let batch = self.check_batch(batch, digest)?;
        self.accept(view, seq, batch, wire);
        self.send_prepare(view, seq, digest);
        self.check_prepared(seq);
        Ok(())
    }

    /// A batch from a pre-prepare: it hashes to `digest` and every
    /// transaction's signatures verify (whether it can be applied is for
    /// execution to say, in order, the same at every replica).
    fn check_batch(&self, json: &str, digest: Hash) -> Result<Arc<Batch>, PbftError> {
        let batch = Batch::parse(json)?;
        if batch.digest != digest {
            return Err(PbftError::Refused(
                "pre-prepare's digest is not its batch's".into(),
            ));
        }
        for (i, txn) in batch.txns.iter().enumerate() {
            if txn.is_coinbase() {
                return Err(PbftError::Refused(format!(
                    "batch transaction {i}: a coinbase (pBFT blocks pay no reward)"
                )));
            }
            check_signatures(txn, self.signing)
                .map_err(|e| PbftError::Refused(format!("batch transaction {i}: {e}")))?;
        }
        Ok(Arc::new(batch))
    }

    fn accept(&mut self, view: u64, seq: u64, batch: Arc<Batch>, wire: SignedWire) {
        let slot = self.slots.entry(seq).or_default();
        slot.view = view;
        slot.accepted = Some((batch.digest, batch, wire));
        if slot.prepared_in.is_some_and(|v| v < view) {
            slot.prepared_in = None;
        }
    }

    fn send_prepare(&mut self, view: u64, seq: u64, digest: Hash) {
        if self.members.primary(view) == self.me {
            return;
        }
        let said = self.lie_about(digest);
        let wire = self.broadcast(Msg::Prepare {
            view,
            seq,
            digest: said.to_hex(),
        });
        let slot = self.slots.entry(seq).or_default();
        slot.prepares.insert(self.me, (view, said, wire));
    }

    /// The digest a replica says it votes for: another one when it
    /// equivocates as a backup.
    fn lie_about(&self, digest: Hash) -> Hash {
        if self.misbehave == Misbehave::Equivocate && !self.is_primary() {
            Hash::of_parts(&[b"a lie about ", digest.as_bytes()])
        } else {
            digest
        }
    }

    /// Prepared: the accepted pre-prepare and 2f matching prepares from
    /// backups. Then COMMIT, once in this view.
    fn check_prepared(&mut self, seq: u64) {
        let quorum = 2 * self.members.f();
        let Some(slot) = self.slots.get(&seq) else {
            return;
        };
        let Some((digest, batch, pp)) = &slot.accepted else {
            return;
        };
        let view = slot.view;
        if slot.prepared_in == Some(view) {
            return;
        }
        let matching: Vec<SignedWire> = slot
            .prepares
            .iter()
            .filter(|(_, (v, d, _))| *v == view && d == digest)
            .map(|(_, (_, _, w))| w.clone())
            .take(quorum)
            .collect();
        if matching.len() < quorum {
            return;
        }
        let (digest, batch) = (*digest, batch.clone());
        let cert = Cert {
            view,
            seq,
            digest,
            batch,
            wire: CertWire {
                pre_prepare: pp.clone(),
                prepares: matching,
            },
        };
        let said = self.lie_about(digest);
        let slot = self.slots.entry(seq).or_default();
        slot.prepared_in = Some(view);
        slot.cert = Some(cert);
        self.events
            .push_back(PbftEvent::Prepared { view, seq, digest });
        let wire = self.broadcast(Msg::Commit {
            view,
            seq,
            digest: said.to_hex(),
        });
        let slot = self.slots.entry(seq).or_default();
        slot.commits.insert(self.me, (view, said));
        slot.commit_wires.insert(self.me, wire);
        self.check_committed(seq);
    }

    /// Committed: prepared and 2f+1 matching commits. Then execute what
    /// is next in order.
    fn check_committed(&mut self, seq: u64) {
        let quorum = self.members.quorum();
        let Some(slot) = self.slots.get_mut(&seq) else {
            return;
        };
        let Some((digest, _, _)) = &slot.accepted else {
            return;
        };
        if slot.committed || slot.prepared_in != Some(slot.view) {
            return;
        }
        let view = slot.view;
        let matching = slot
            .commits
            .values()
            .filter(|(v, d)| *v == view && d == digest)
            .count();
        if matching >= quorum {
            slot.committed = true;
            self.execute_ready();
        }
    }

    fn execute_ready(&mut self) {
        while let Some(slot) = self.slots.get_mut(&(self.last_executed + 1)) {
            if !slot.committed || slot.executed {
                break;
            }
            let Some((digest, batch, pre_prepare)) = &slot.accepted else {
                break;
            };
            slot.executed = true;
            let proof = super::wire::CommittedWire {
                pre_prepare: pre_prepare.clone(),
                commits: slot
                    .commit_wires
                    .values()
                    .filter(|w| {
                        w.open().is_ok_and(|(_, m)| {
                            matches!(m, Msg::Commit { view, digest: d, .. } if view == slot.view && d == digest.to_hex())
                        })
                    })
                    .cloned()
                    .collect(),
            };
            let (digest, txns, view) = (*digest, batch.txns.clone(), slot.view);
            if self.archive.len() == ARCHIVE {
                self.archive.pop_front();
            }
            self.archive.push_back((self.last_executed + 1, proof));
            self.last_executed += 1;
            let seq = self.last_executed;
            self.state = Hash::of_parts(&[self.state.as_bytes(), digest.as_bytes()]);
            self.failed_views = 0;
            self.deadline = None;
            self.events.push_back(PbftEvent::Execute {
                view,
                seq,
                digest,
                txns,
            });
            if seq % CHECKPOINT_INTERVAL == 0 {
                let state = self.state;
                let wire = self.broadcast(Msg::Checkpoint {
                    seq,
                    state: state.to_hex(),
                });
                self.checkpoints
                    .entry(seq)
                    .or_default()
                    .insert(self.me, (state, wire));
                self.check_stable(seq);
            }
        }
    }

    /// A checkpoint with 2f+1 matching messages, our own among them,
    /// becomes stable: the log up to it goes, the window moves up.
    fn check_stable(&mut self, seq: u64) {
        let quorum = self.members.quorum();
        let Some(votes) = self.checkpoints.get(&seq) else {
            return;
        };
        let mut by_state: BTreeMap<Hash, Vec<SignedWire>> = BTreeMap::new();
        for (state, wire) in votes.values() {
            by_state.entry(*state).or_default().push(wire.clone());
        }
        let Some((state, proof)) = by_state.into_iter().find(|(_, w)| w.len() >= quorum) else {
            return;
        };
        if self.last_executed < seq {
            if self.behind_said < seq {
                self.behind_said = seq;
                self.events.push_back(PbftEvent::Behind {
                    executed: self.last_executed,
                    stable: seq,
                });
            }
            self.want_fetch = true;
            return;
        }
        if !votes.get(&self.me).is_some_and(|(s, _)| *s == state) || seq <= self.low {
            return;
        }
        self.low = seq;
        self.low_state = state;
        self.stable_proof = proof.into_iter().take(quorum).collect();
        self.slots.retain(|&s, _| s > seq);
        self.checkpoints.retain(|&s, _| s > seq);
        self.events.push_back(PbftEvent::Stable { seq });
    }

    // -----------------------------------------------------------------
    // View change

    fn start_view_change(&mut self, to: u64, why: String, now: Instant) {
        if to < self.view || (to == self.view && self.changing) {
            return;
        }
        self.view = to;
        self.changing = true;
        self.view_asked = false;
        self.asked_at = now;
        self.events.push_back(PbftEvent::ViewChanging { to, why });
        self.send_view_change();
        self.deadline = Some(now + self.timeout());
        self.failed_views += 1;
        self.after_view_change(now);
    }

    /// Sends VIEW-CHANGE for the view this replica is changing to, with its
    /// stable checkpoint and its prepared certificates, and counts its own.
    fn send_view_change(&mut self) {
        let prepared: Vec<CertWire> = self
            .slots
            .iter()
            .filter(|(&s, _)| s > self.low)
            .filter_map(|(_, slot)| slot.cert.as_ref().map(|c| c.wire.clone()))
            .collect();
        let msg = Msg::ViewChange {
            view: self.view,
            stable: self.low,
            proof: self.stable_proof.clone(),
            prepared,
        };
        let wire = self.broadcast(msg.clone());
        let own = self.check_view_change(self.me, &msg, wire);
        if let Ok(vc) = own {
            self.view_changes.insert(self.me, vc);
        }
    }

    /// Checks a view change's content: its checkpoint proof and every
    /// certificate in it, each signature included.
    fn check_view_change(
        &self,
        from: usize,
        msg: &Msg,
        wire: SignedWire,
    ) -> Result<ViewChange, PbftError> {
        let Msg::ViewChange {
            view,
            stable,
            proof,
            prepared,
        } = msg
        else {
            return Err(PbftError::Malformed("not a view change".into()));
        };
        let (view, stable) = (*view, *stable);
        let n = self.members.n();
        let refuse = |why: String| {
            Err(PbftError::Refused(format!(
                "view change from {} for view {view}: {why}",
                self.members.name(from)
            )))
        };
        if proof.len() > n || prepared.len() as u64 > WINDOW {
            return refuse("more proof or certificates than a window holds".into());
        }
        if stable % CHECKPOINT_INTERVAL != 0 {
            return refuse(format!("checkpoint {stable} is not a checkpoint number"));
        }
        let stable_state = if stable == 0 {
            None
        } else {
            let mut seen = HashSet::new();
            let mut state = None;
            for w in proof {
                let (r, m) = self.members.verify(w)?;
                let Msg::Checkpoint { seq, state: s } = m else {
                    return refuse("its proof holds something else than checkpoints".into());
                };
                let s = parse_hash(&s)?;
                if seq != stable || state.is_some_and(|x| x != s) || !seen.insert(r) {
                    return refuse("its checkpoint proof does not match".into());
                }
                state = Some(s);
            }
            if seen.len() < self.members.quorum() {
                return refuse(format!(
                    "checkpoint {stable} proved by {} of the {} needed",
                    seen.len(),
                    self.members.quorum()
                ));
            }
            state
        };
        let mut certs = Vec::with_capacity(prepared.len());
        let mut seqs = HashSet::new();
        for c in prepared {
            let cert = self.check_cert(c, view)?;
            if cert.seq <= stable || cert.seq > stable + WINDOW || !seqs.insert(cert.seq) {
                return refuse(format!(
                    "a certificate for sequence {} outside its window",
                    cert.seq
                ));
            }
            certs.push(cert);
        }
        Ok(ViewChange {
            view,
            stable,
            stable_state,
            proof: proof.clone(),
            certs,
            wire,
        })
    }

    /// A signed pre-prepare out of a certificate or a fetched batch: signed
    /// by its view's primary, its batch well formed and of its digest.
    /// (view, sequence number, batch).
    fn check_pre_prepare(&self, wire: &SignedWire) -> Result<(u64, u64, Batch), String> {
        let (r, m) = self.members.verify(wire).map_err(|e| e.to_string())?;
        let Msg::PrePrepare {
            view,
            seq,
            digest,
            batch,
        } = m
        else {
            return Err("without a pre-prepare".into());
        };
        if r != self.members.primary(view) {
            return Err("whose pre-prepare is not its view's primary's".into());
        }
        let digest = parse_hash(&digest).map_err(|e| e.to_string())?;
        let batch = Batch::parse(&batch).map_err(|e| e.to_string())?;
        if batch.digest != digest {
            return Err("whose batch does not match its digest".into());
        }
        Ok((view, seq, batch))
    }

    /// A prepared certificate: a pre-prepare signed by its view's primary
    /// (a view before `before`) and 2f prepares by distinct backups for
    /// the same view, number and digest.
    fn check_cert(&self, c: &CertWire, before: u64) -> Result<Cert, PbftError> {
        let bad = |why: &str| PbftError::Refused(format!("a prepared certificate {why}"));
        let (view, seq, batch) = self
            .check_pre_prepare(&c.pre_prepare)
            .map_err(|e| bad(&e))?;
        let digest = batch.digest;
        if view >= before {
            return Err(bad("of a view not before the one asked for"));
        }
        if c.prepares.len() > self.members.n() {
            return Err(bad("with too many prepares"));
        }
        let mut from = HashSet::new();
        for p in &c.prepares {
            let (r, m) = self.members.verify(p)?;
            let Msg::Prepare {
                view: v,
                seq: s,
                digest: d,
            } = m
            else {
                return Err(bad("with something else than prepares"));
            };
            if v != view || s != seq || parse_hash(&d)? != digest || r == self.members.primary(view)
            {
                return Err(bad("with a prepare that does not match"));
            }
            from.insert(r);
        }
        if from.len() < 2 * self.members.f() {
            return Err(bad("with too few prepares"));
        }
        Ok(Cert {
            view,
            seq,
            digest,
            batch: Arc::new(batch),
            wire: c.clone(),
        })
    }

    fn after_view_change(&mut self, now: Instant) {
        // f+1 replicas want later views: one of them at least is honest.
        let later: Vec<u64> = self
            .view_changes
            .values()
            .map(|vc| vc.view)
            .filter(|&v| v > self.view)
            .collect();
        if later.len() >= self.members.weak() {
            let to = later.iter().copied().min().unwrap_or(self.view + 1);
            self.start_view_change(
                to,
                format!("{} replicas want a later view", later.len()),
                now,
            );
        }
        // 2f+1 asked for the view this replica is changing to: from now
        // the new primary has one timeout to start it. Where this replica
        // asked long before the others (alone, perhaps while they could
        // not hear it), it asks once more so that the new primary has its
        // view change too.
        if self.changing && !self.view_asked && self.asked_for(self.view) >= self.members.quorum() {
            self.view_asked = true;
            self.deadline = Some(now + self.timeout());
            if now.saturating_duration_since(self.asked_at) >= self.base_timeout {
                self.send_view_change();
            }
        }
        self.try_new_view(now);
    }

    /// As the new primary, with 2f+1 view changes for the view: NEW-VIEW.
    fn try_new_view(&mut self, now: Instant) {
        if !self.changing || self.members.primary(self.view) != self.me {
            return;
        }
        let view = self.view;
        let vcs: Vec<ViewChange> = self
            .view_changes
            .values()
            .filter(|vc| vc.view == view)
            .take(self.members.quorum())
            .cloned()
            .collect();
        if vcs.len() < self.members.quorum() {
            return;
        }
        let plan = plan_new_view(&vcs);
        let pre_prepares: Vec<SignedWire> = plan
            .iter()
            .map(|p| self.sign(pre_prepare(view, p.seq, &p.batch)))
            .collect();
        let msg = Msg::NewView {
            view,
            view_changes: vcs.iter().map(|vc| vc.wire.clone()).collect(),
            pre_prepares: pre_prepares.clone(),
        };
        self.broadcast(msg);
        self.enter_view(view, &vcs, plan, pre_prepares, now);
    }

    fn on_new_view(
        &mut self,
        view: u64,
        view_changes: &[SignedWire],
        pre_prepares: &[SignedWire],
        now: Instant,
    ) -> Result<(), PbftError> {
        let refuse = |why: String| Err(PbftError::Refused(format!("new view {view}: {why}")));
        if view_changes.len() > self.members.n() || pre_prepares.len() as u64 > WINDOW {
            return refuse("more view changes or pre-prepares than can be".into());
        }
        let mut vcs = Vec::new();
        let mut from = HashSet::new();
        for w in view_changes {
            let (r, m) = self.members.verify(w)?;
            let vc = self.check_view_change(r, &m, w.clone())?;
            if vc.view != view || !from.insert(r) {
                return refuse("a view change for another view, or twice".into());
            }
            vcs.push(vc);
        }
        if vcs.len() < self.members.quorum() {
            return refuse(format!(
                "{} view changes of the {} needed",
                vcs.len(),
                self.members.quorum()
            ));
        }
        let plan = plan_new_view(&vcs);
        if plan.len() != pre_prepares.len() {
            return refuse("its pre-prepares are not those its view changes call for".into());
        }
        let primary = self.members.primary(view);
        for (p, w) in plan.iter().zip(pre_prepares) {
            let (r, m) = self.members.verify(w)?;
            let Msg::PrePrepare {
                view: v,
                seq,
                digest,
                ..
            } = m
            else {
                return refuse("it holds something else than pre-prepares".into());
            };
            if r != primary || v != view || seq != p.seq || parse_hash(&digest)? != p.batch.digest {
                return refuse(format!(
                    "its pre-prepare for sequence {seq} is not the one its view changes call for"
                ));
            }
        }
        self.enter_view(view, &vcs, plan, pre_prepares.to_vec(), now);
        Ok(())
    }

    fn enter_view(
        &mut self,
        view: u64,
        vcs: &[ViewChange],
        plan: Vec<Planned>,
        pre_prepares: Vec<SignedWire>,
        now: Instant,
    ) {
        self.view = view;
        self.changing = false;
        self.deadline = None;
        self.view_changes.retain(|_, vc| vc.view > view);
        // The checkpoint the view starts from, where this replica has
        // executed that far.
        if let Some(vc) = vcs.iter().max_by_key(|vc| vc.stable) {
            if vc.stable > self.low && self.last_executed >= vc.stable {
                self.low = vc.stable;
                self.low_state = vc.stable_state.unwrap_or(self.low_state);
                self.stable_proof = vc.proof.clone();
                let low = self.low;
                self.slots.retain(|&s, _| s > low);
                self.checkpoints.retain(|&s, _| s > low);
            } else if vc.stable > self.last_executed {
                self.events.push_back(PbftEvent::Behind {
                    executed: self.last_executed,
                    stable: vc.stable,
                });
            }
        }
        let max_s = plan.last().map_or(self.low, |p| p.seq);
        // What was ordered above the plan in older views was committed
        // nowhere (or a view change would carry it): forgotten.
        for (_, slot) in self.slots.range_mut(max_s + 1..) {
            if !slot.committed && slot.view < view {
                slot.accepted = None;
                slot.cert = None;
                slot.prepared_in = None;
            }
        }
        let carried = plan.iter().filter(|p| p.carried).count();
        let nulls = plan.len() - carried;
        for (p, wire) in plan.into_iter().zip(pre_prepares) {
            if p.seq <= self.low {
                continue;
            }
            let digest = p.batch.digest;
            self.accept(view, p.seq, p.batch, wire);
            self.send_prepare(view, p.seq, digest);
        }
        self.next_seq = max_s.max(self.low).max(self.last_executed);
        self.events.push_back(PbftEvent::NewView {
            view,
            primary: self.members.primary(view),
            carried,
            nulls,
        });
        let seqs: Vec<u64> = self.slots.keys().copied().collect();
        for seq in seqs {
            self.check_prepared(seq);
            self.check_committed(seq);
        }
        self.rearm(now);
    }
}

fn pre_prepare(view: u64, seq: u64, batch: &Batch) -> Msg {
    Msg::PrePrepare {
        view,
        seq,
        digest: batch.digest.to_hex(),
        batch: batch.json.clone(),
    }
}

/// The paper's O: from the highest stable checkpoint of the view changes
/// up to the highest prepared number, the batch of the highest-view
/// certificate at each number, or a null batch.
fn plan_new_view(vcs: &[ViewChange]) -> Vec<Planned> {
    let min_s = vcs.iter().map(|vc| vc.stable).max().unwrap_or(0);
    let max_s = vcs
        .iter()
        .flat_map(|vc| vc.certs.iter().map(|c| c.seq))
        .max()
        .unwrap_or(min_s)
        .max(min_s);
    (min_s + 1..=max_s)
        .map(|seq| {
            let best = vcs
                .iter()
                .flat_map(|vc| vc.certs.iter())
                .filter(|c| c.seq == seq)
                .max_by_key(|c| (c.view, c.digest));
            match best {
                Some(c) => Planned {
                    seq,
                    batch: c.batch.clone(),
                    carried: true,
                },
                None => Planned {
                    seq,
                    batch: Arc::new(Batch::new(Vec::new())),
                    carried: false,
                },
            }
        })
        .collect()
}
