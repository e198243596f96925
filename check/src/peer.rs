//! The checker's side of the network: one client of the checker's relay
//! that sends what the checks script, hears everything the program says,
//! and keeps a view of every block, the program's and its own, judged by
//! our rules.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;
use toycoin_common::block::Block;
use toycoin_common::chain::{now_secs, Chain};
use toycoin_common::hash::BlockHash;
use toycoin_common::message::Message;
use toycoin_common::profile::Profile;
use toycoin_common::refused_frames::FrameDigest;
use toycoin_common::relay::{RelayClient, DEFAULT_TOPIC};
use toycoin_common::tree::BlockTree;

use crate::program::Program;

/// Bytes a second the program may send on average over a check before it
/// is called a flood (a node sends a few kilobytes a second).
pub const FLOOD_BYTES_PER_SEC: u64 = 1024 * 1024;
/// Transactions of the program's kept for grading.
pub const MAX_KEPT_TXNS: usize = 10_000;
/// Blocks (the program's and the checker's) kept for grading.
pub const MAX_KEPT_BLOCKS: usize = 100_000;
/// The shortest time the program's bytes are averaged over.
pub const FLOOD_WINDOW: Duration = Duration::from_secs(5);
/// Largest frame the checker reads from the program.
pub const MAX_FRAME: usize = 16 * 1024 * 1024;

/// How a wait ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Waited {
    /// What was waited for happened.
    Done,
    /// It did not, in time.
    TimedOut,
    /// The program ended (its status).
    Exited(String),
    /// The program sent more than [`FLOOD_BYTES_PER_SEC`].
    Flooded(u64),
}

/// The checker's client and what it heard.
#[derive(Debug)]
pub struct Peer {
    client: RelayClient,
    pub profile: Profile,
    /// Every valid block heard or made, best chain first.
    pub view: BlockTree,
    /// Every block's parent, valid or not.
    parents: HashMap<BlockHash, BlockHash>,
    /// Blocks the checker made.
    pub ours: HashSet<BlockHash>,
    /// The frames the checker sent (the relay sends them back).
    sent: HashSet<FrameDigest>,
    /// Blocks the program announced that the checker did not make, in the
    /// order heard.
    pub theirs: Vec<BlockHash>,
    /// The last block of the program's last `BLOC`: its tip, as it says.
    pub their_tip: Option<BlockHash>,
    /// Why our rules refused a `BLOC` of the program's, each time.
    pub refused: Vec<String>,
    /// `BLOC`s that began at block 0 (answers to a `GETB` from the start).
    pub from_genesis: usize,
    /// `GETB` requests the program sent.
    pub their_getb: usize,
    /// The blocks of the program's that hold each transaction.
    pub their_txns: HashMap<toycoin_common::hash::Txid, Vec<BlockHash>>,
    /// Frames of the program's that are no toycoin message.
    pub undecodable: usize,
    /// The transactions the program sent (a client's; the first
    /// [`MAX_KEPT_TXNS`]), with the coins each spends.
    pub their_transfers: Vec<toycoin_common::message::TxnMessage>,
    /// Bytes the program sent since the count began.
    bytes: u64,
    counting_since: Instant,
}

impl Peer {
    pub async fn connect(addr: &str, profile: Profile) -> Result<Peer, String> {
        let client = RelayClient::connect_with_max(addr, DEFAULT_TOPIC, MAX_FRAME)
            .await
            .map_err(|e| format!("cannot reach the checker's own relay: {e}"))?;
        Ok(Peer {
            client,
            profile,
            view: BlockTree::new(profile),
            parents: HashMap::new(),
            ours: HashSet::new(),
            sent: HashSet::new(),
            theirs: Vec::new(),
            their_tip: None,
            refused: Vec::new(),
            from_genesis: 0,
            their_getb: 0,
            their_txns: HashMap::new(),
            undecodable: 0,
            their_transfers: Vec::new(),
            bytes: 0,
            counting_since: Instant::now(),
        })
    }

    /// Reads and drops what arrives for `time` (what an ended program
    /// sent last).
    pub async fn drain(&mut self, time: Duration) {
        let deadline = Instant::now() + time;
        while let Ok(Ok(Some(_))) = tokio::time::timeout_at(deadline, self.client.recv()).await {}
    }

    /// Forgets every block and what the program did: a restarted
    /// program starts from nothing, and so does our view of it.
    pub fn forget(&mut self) {
        self.view = BlockTree::new(self.profile);
        self.parents.clear();
        self.ours.clear();
        self.theirs.clear();
        self.their_tip = None;
        self.refused.clear();
        self.from_genesis = 0;
        self.their_getb = 0;
        self.their_txns.clear();
        self.undecodable = 0;
        self.their_transfers.clear();
        self.count_from_now();
    }

    /// Sends `payload` on the class topic.
    pub async fn send(&mut self, payload: &[u8]) -> Result<(), String> {
        self.sent.insert(FrameDigest::of(payload));
        self.client
            .publish(DEFAULT_TOPIC, payload)
            .await
            .map_err(|e| format!("the checker's relay went away: {e}"))
    }

    /// Sends our `blocks` (the whole chain under toycoin, as the original
    /// announces), taking them into our view first.
    pub async fn announce(&mut self, blocks: &[Block], whole: &[Block]) -> Result<(), String> {
        for b in blocks {
            self.ours.insert(b.header.this_hash);
            self.parents
                .insert(b.header.this_hash, b.header.previous_hash);
        }
        let _ = self.view.receive(blocks.to_vec(), now_secs());
        let payload = if self.profile.kind == toycoin_common::profile::ProfileKind::Toycoin {
            toycoin_common::message::encode_bloc(whole)
        } else {
            toycoin_common::message::encode_bloc(blocks)
        };
        self.send(&payload).await
    }

    /// Whether block `x` is `y` or descends from it (as far as parents are
    /// known).
    pub fn descends(&self, x: &BlockHash, y: &BlockHash) -> bool {
        let mut at = *x;
        for _ in 0..100_000 {
            if at == *y {
                return true;
            }
            match self.parents.get(&at) {
                Some(p) => at = *p,
                None => return false,
            }
        }
        false
    }

    /// The program's valid blocks heard after the first `from` of
    /// [`Peer::theirs`].
    pub fn valid_theirs_since(&self, from: usize) -> Vec<BlockHash> {
        self.theirs[from.min(self.theirs.len())..]
            .iter()
            .filter(|h| self.view.knows(h))
            .copied()
            .collect()
    }

    /// Whether a valid block of the program's holds `txid`.
    pub fn they_mined(&self, txid: &toycoin_common::hash::Txid) -> bool {
        self.their_txns
            .get(txid)
            .is_some_and(|blocks| blocks.iter().any(|b| self.view.knows(b)))
    }

    /// Whether any block of the program's, valid or not, holds `txid`.
    pub fn they_took(&self, txid: &toycoin_common::hash::Txid) -> bool {
        self.their_txns.contains_key(txid)
    }

    /// The best chain of our view (ours and the program's blocks).
    pub fn chain(&self) -> &Chain {
        self.view.chain()
    }

    /// Starts counting the program's bytes afresh.
    pub fn count_from_now(&mut self) {
        self.bytes = 0;
        self.counting_since = Instant::now();
    }

    /// Takes in frames until `done` holds, `timeout` passes, the program
    /// ends or floods.
    pub async fn wait(
        &mut self,
        program: &mut Program,
        timeout: Duration,
        mut done: impl FnMut(&Peer) -> bool,
    ) -> Waited {
        let deadline = Instant::now() + timeout;
        loop {
            if done(self) {
                return Waited::Done;
            }
            if let Some(status) = program.ended() {
                return Waited::Exited(status);
            }
            // Averaged over FLOOD_WINDOW at least: a burst (a whole chain
            // answered at once) is no flood.
            let elapsed = self
                .counting_since
                .elapsed()
                .as_secs_f64()
                .max(FLOOD_WINDOW.as_secs_f64());
            if self.bytes as f64 / elapsed > FLOOD_BYTES_PER_SEC as f64 {
                return Waited::Flooded(self.bytes);
            }
            let now = Instant::now();
            if now >= deadline {
                return Waited::TimedOut;
            }
            let tick = (deadline - now).min(Duration::from_millis(200));
            match tokio::time::timeout(tick, self.client.recv()).await {
                Err(_) => {}
                Ok(Ok(Some(frame))) => self.hear(frame),
                Ok(Ok(None)) | Ok(Err(_)) => {
                    return Waited::Exited("the checker's relay closed".into())
                }
            }
        }
    }

    fn hear(&mut self, frame: Bytes) {
        if self.sent.contains(&FrameDigest::of(&frame)) {
            return;
        }
        self.bytes += frame.len() as u64;
        match Message::decode(&frame) {
            Ok(Message::Bloc(blocks)) => self.their_bloc(blocks),
            Ok(Message::GetBlocks(_)) => self.their_getb += 1,
            Ok(Message::Txn(m)) if self.their_transfers.len() < MAX_KEPT_TXNS => {
                self.their_transfers.push(m)
            }
            Ok(_) => {}
            Err(_) => self.undecodable += 1,
        }
    }

    fn their_bloc(&mut self, blocks: Vec<Block>) {
        let Some(last) = blocks.last() else {
            return;
        };
        // A program sending blocks without end is graded on what came
        // before (the flood limit ends it soon after): the checker's
        // memory stays bounded.
        if self.parents.len() >= MAX_KEPT_BLOCKS {
            return;
        }
        if blocks[0].header.previous_hash == self.profile.genesis {
            self.from_genesis += 1;
        }
        self.their_tip = Some(last.header.this_hash);
        for b in &blocks {
            let hash = b.header.this_hash;
            if self.parents.insert(hash, b.header.previous_hash).is_none()
                && !self.ours.contains(&hash)
            {
                self.theirs.push(hash);
                for t in &b.txns {
                    self.their_txns.entry(t.hash()).or_default().push(hash);
                }
            }
        }
        if let Err(e) = self.view.receive(blocks, now_secs()) {
            if self.refused.len() < 16 {
                self.refused.push(e.to_string());
            }
        }
    }
}
