//! Catch-up: asking for missed blocks with `GETB` and answering others'
//! requests (profiles that [use catch-up](crate::profile::Profile::uses_catch_up);
//! the wire format and the rules are in `docs/catch-up.md`).
//!
//! [`CatchUp`] is a state machine without sockets or clocks of its own:
//! every method that depends on time takes `now`, and the answer's random
//! delay comes from a jitter function given at construction, so tests drive
//! it step by step. The relay session ([`crate::session`]) wires it to the
//! network.

use std::time::Duration;

use rand::Rng;
use tokio::time::Instant;

use crate::block::Block;
use crate::chain::ChainError;
use crate::message::{encode_bloc, GetBlocks};
use crate::profile::Profile;
use crate::tree::{BlockTree, Received};

/// Most blocks one catch-up answer carries; a full batch means "ask again".
pub const CATCH_UP_BATCH: usize = 100;
/// Orphans trigger at most one request per this interval.
pub const CATCH_UP_INTERVAL: Duration = Duration::from_secs(1);
/// An answerer waits a random delay up to this long, and stays quiet if
/// another node's answer from the same height arrives first.
pub const ANSWER_JITTER: Duration = Duration::from_millis(200);
/// Most bytes of blocks (as sent) one answer carries, but always one block:
/// a 31-byte request can make a node send no more than this. Every program
/// on the topic decodes every answer, blocks it holds already included, so
/// an answer's size is what a classmate joining late costs each of them at
/// once: in a busy class a 1 MiB answer lifted every program's memory by
/// some 4 MiB, and glibc's allocator kept most of it (BENCHMARKS.md, "A
/// classmate joining late"). A quarter of that, four times as often:
/// catch-up is as fast.
pub const MAX_ANSWER_BYTES: usize = 256 * 1024;
/// A node answers at most once per this interval, however many ask: a
/// flood of requests costs each node at most [`MAX_ANSWER_BYTES`] per
/// interval (1 MiB a second).
pub const MIN_ANSWER_INTERVAL: Duration = Duration::from_millis(250);

/// Whether a `BLOC` of `blocks` may be a catch-up answer cut short of the
/// answerer's tip: several blocks (a new block is announced alone), or one
/// too large for a second to have fitted beside it.
pub fn may_be_cut(blocks: &[Block]) -> bool {
    // Base64 and JSON add about a third to a block's bytes on the wire.
    let sent = blocks.iter().map(Block::size).sum::<usize>() * 4 / 3;
    blocks.len() >= 2 || sent > MAX_ANSWER_BYTES / 2
}

/// Blocks to publish in answer to a request.
#[derive(Clone, Debug)]
pub struct Answer {
    pub from_height: usize,
    pub blocks: Vec<Block>,
}

/// Where catch-up stands: the requests we made, the answer we owe.
pub struct CatchUp {
    enabled: bool,
    id: String,
    requests: u64,
    last_request: Option<Instant>,
    /// A request was wanted within [`CATCH_UP_INTERVAL`] of the last: it
    /// goes out when the interval ends ([`CatchUp::request_due`]).
    deferred: bool,
    /// A catch-up answer we will send: (first height, when).
    answer: Option<(usize, Instant)>,
    /// When we last answered.
    last_answer: Option<Instant>,
    /// Most bytes of blocks one answer carries ([`MAX_ANSWER_BYTES`]).
    max_answer_bytes: usize,
    jitter: Box<dyn FnMut() -> Duration + Send>,
}

impl std::fmt::Debug for CatchUp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CatchUp")
            .field("enabled", &self.enabled)
            .field("id", &self.id)
            .field("requests", &self.requests)
            .field("answer", &self.answer)
            .finish_non_exhaustive()
    }
}

impl CatchUp {
    /// `id` prefixes our request ids (`<id>-1`, `<id>-2`, ...), so that two
    /// requests with the same locator are different frames. The answer
    /// delay is uniformly random up to [`ANSWER_JITTER`].
    pub fn new(profile: &Profile, id: impl Into<String>) -> CatchUp {
        CatchUp::with_jitter(profile, id, || {
            rand::thread_rng().gen_range(Duration::ZERO..=ANSWER_JITTER)
        })
    }

    /// As [`CatchUp::new`] with the answer delay given by `jitter`.
    pub fn with_jitter(
        profile: &Profile,
        id: impl Into<String>,
        jitter: impl FnMut() -> Duration + Send + 'static,
    ) -> CatchUp {
        CatchUp {
            enabled: profile.uses_catch_up(),
            id: id.into(),
            requests: 0,
            last_request: None,
            deferred: false,
            answer: None,
            last_answer: None,
            max_answer_bytes: MAX_ANSWER_BYTES,
            jitter: Box::new(jitter),
        }
    }

    /// Answers of at most `bytes` of blocks (but always one): a smaller
    /// [`MAX_ANSWER_BYTES`], so that tests cut answers with small chains.
    pub fn set_max_answer_bytes(&mut self, bytes: usize) {
        self.max_answer_bytes = bytes;
    }

    /// A request for the blocks after our best chain, unless one was made
    /// less than [`CATCH_UP_INTERVAL`] ago (`force` skips that limit).
    pub fn request(&mut self, tree: &BlockTree, force: bool, now: Instant) -> Option<GetBlocks> {
        if !self.enabled {
            return None;
        }
        let recent = self
            .last_request
            .is_some_and(|at| now.saturating_duration_since(at) < CATCH_UP_INTERVAL);
        if recent && !force {
            self.deferred = true;
            return None;
        }
        self.deferred = false;
        self.last_request = Some(now);
        self.requests += 1;
        Some(GetBlocks {
            locator: tree.locator(),
            id: format!("{}-{}", self.id, self.requests),
        })
    }

    /// After a `BLOC` was received (`cut`: it may be an answer cut by
    /// [`CATCH_UP_BATCH`] or [`MAX_ANSWER_BYTES`], see [`may_be_cut`]):
    /// ask for what is missing (its first block follows one we lack), for
    /// more (an answer that may have been cut was adopted: ask until we
    /// hold the tip, when nobody has more to answer), or again after a
    /// refused one (a classmate may have answered first with a forged or
    /// tampered answer, and the honest answerers then stayed quiet). Only
    /// "more" skips the once-per-interval limit: it follows an answer.
    pub fn after_bloc(
        &mut self,
        tree: &BlockTree,
        result: &Result<Received, ChainError>,
        cut: bool,
        now: Instant,
    ) -> Option<GetBlocks> {
        match result {
            Ok(Received::Orphan { .. }) | Err(_) => self.request(tree, false, now),
            Ok(Received::Adopted(_)) if cut => self.request(tree, true, now),
            _ => None,
        }
    }

    /// Someone asked: plan an answer after a random delay (and not within
    /// [`MIN_ANSWER_INTERVAL`] of our last one), if we have blocks they
    /// lack and no answer is planned already.
    pub fn on_request(&mut self, tree: &BlockTree, request: &GetBlocks, now: Instant) {
        if !self.enabled || self.answer.is_some() {
            return;
        }
        let from = tree.fork_point(&request.locator);
        if from >= tree.chain().len() {
            return;
        }
        let mut at = now + (self.jitter)();
        if let Some(last) = self.last_answer {
            at = at.max(last + MIN_ANSWER_INTERVAL);
        }
        self.answer = Some((from, at));
    }

    /// A `BLOC` of `blocks` is about to be received: if it is the answer
    /// we planned (it starts where ours starts, and its blocks are ours,
    /// bodies and all), another node answered first and we stay quiet. A
    /// different answer, such as a classmate's tampered copy of our blocks
    /// under their own hashes, does not silence us.
    pub fn on_bloc_seen(&mut self, tree: &BlockTree, blocks: &[Block]) {
        let (Some((from, _)), Some(first)) = (self.answer, blocks.first()) else {
            return;
        };
        let chain = tree.chain();
        if chain.hash_before(from) != Some(first.header.previous_hash) {
            return;
        }
        let ours = chain.entries().get(from..).unwrap_or_default();
        // Headers first: a body is read back from the store only where
        // its header is ours.
        let same = blocks.len() <= ours.len()
            && blocks.iter().zip(ours).all(|(b, e)| b.header == e.header)
            && blocks
                .iter()
                .zip(chain.blocks_from(from))
                .all(|(b, ours)| *b == *ours);
        if same {
            self.answer = None;
        }
    }

    /// When the planned answer is due.
    pub fn answer_due(&self) -> Option<Instant> {
        self.answer.map(|(_, at)| at)
    }

    /// When a request held back by the interval may go out.
    pub fn request_due(&self) -> Option<Instant> {
        let last = self.last_request?;
        (self.enabled && self.deferred).then(|| last + CATCH_UP_INTERVAL)
    }

    /// The request held back by the interval, if it may go out at `now`.
    pub fn take_deferred(&mut self, tree: &BlockTree, now: Instant) -> Option<GetBlocks> {
        if self.request_due().is_some_and(|due| now >= due) {
            self.request(tree, false, now)
        } else {
            None
        }
    }

    /// The planned answer, if it is due at `now`: best-chain blocks from
    /// the planned height, at most [`CATCH_UP_BATCH`] of them and
    /// [`MAX_ANSWER_BYTES`] as sent (but at least one).
    pub fn take_answer(&mut self, tree: &BlockTree, now: Instant) -> Option<Answer> {
        let (from, at) = self.answer?;
        if at > now {
            return None;
        }
        self.answer = None;
        self.last_answer = Some(now);
        let chain = tree.chain();
        if from > chain.len() {
            return None;
        }
        let mut bytes = 0;
        let mut blocks: Vec<Block> = Vec::new();
        for block in chain.blocks_from(from).take(CATCH_UP_BATCH) {
            bytes += encode_bloc(std::slice::from_ref(&*block)).len();
            if !blocks.is_empty() && bytes > self.max_answer_bytes {
                break;
            }
            blocks.push(block.into_owned());
        }
        Some(Answer {
            from_height: from,
            blocks,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::Chain;
    use crate::profile::Minting;
    use crate::transaction::Transaction;

    const NOW: u64 = 1_700_000_000;

    fn tree_of(profile: Profile, n: usize) -> BlockTree {
        let mut tree = BlockTree::new(profile);
        for i in 0..n {
            let chain: &Chain = tree.chain();
            let miner = crate::address::example(format!("w{i}").as_bytes());
            let txns = match profile.minting() {
                Minting::RewardsAndMint => Vec::new(),
                Minting::AnyCoinbase => vec![Transaction::coinbase(miner.clone(), 1)],
            };
            let block = chain.mine_next(&miner, txns, NOW).expect("txns");
            assert!(matches!(
                tree.receive(vec![block], NOW),
                Ok(Received::Adopted(_))
            ));
        }
        tree
    }

    fn fixed(ms: u64) -> impl FnMut() -> Duration + Send {
        move || Duration::from_millis(ms)
    }

    #[test]
    fn requests_are_rate_limited_unless_forced_and_numbered() {
        let tree = tree_of(Profile::steady(5.0), 2);
        let mut c = CatchUp::with_jitter(&Profile::steady(5.0), "n1", fixed(0));
        let t0 = Instant::now();
        let first = c.request(&tree, false, t0).expect("first request");
        assert_eq!(first.id, "n1-1");
        assert_eq!(first.locator, tree.locator());
        assert!(c
            .request(&tree, false, t0 + Duration::from_millis(500))
            .is_none());
        assert_eq!(
            c.request(&tree, true, t0 + Duration::from_millis(500))
                .map(|r| r.id),
            Some("n1-2".to_owned())
        );
        assert!(c
            .request(&tree, false, t0 + CATCH_UP_INTERVAL * 2)
            .is_some());
    }

    #[test]
    fn the_toycoin_profile_never_asks_or_answers() {
        let p = Profile::toycoin();
        let tree = tree_of(p, 1);
        let mut c = CatchUp::with_jitter(&p, "n1", fixed(0));
        let now = Instant::now();
        assert!(c.request(&tree, true, now).is_none());
        c.on_request(&tree, &GetBlocks::default(), now);
        assert!(c.answer_due().is_none());
    }

    #[test]
    fn orphans_and_full_batches_ask_again() {
        let tree = tree_of(Profile::steady(5.0), 1);
        let mut c = CatchUp::with_jitter(&Profile::steady(5.0), "n", fixed(0));
        let now = Instant::now();
        let orphan = Ok(Received::Orphan {
            missing: crate::hash::BlockHash(crate::hash::Hash([7; 64])),
        });
        assert!(c.after_bloc(&tree, &orphan, false, now).is_some());
        assert!(
            c.after_bloc(&tree, &orphan, false, now).is_none(),
            "once a second"
        );
        assert!(c
            .after_bloc(&tree, &Ok(Received::Known), true, now)
            .is_none());
        // A refused BLOC (perhaps a classmate's forged answer) asks again,
        // once a second too.
        let refused = Err(ChainError {
            index: 0,
            error: crate::chain::BlockError::MerkleRoot,
        });
        let later = now + CATCH_UP_INTERVAL;
        assert!(c.after_bloc(&tree, &refused, false, later).is_some());
        assert!(c.after_bloc(&tree, &refused, false, later).is_none());
    }

    #[test]
    fn answers_after_the_jitter_from_the_fork_point() {
        let p = Profile::steady(5.0);
        let tree = tree_of(p, 3);
        let mut c = CatchUp::with_jitter(&p, "n", fixed(150));
        let t0 = Instant::now();
        let asks_after_block_0 = GetBlocks {
            locator: vec![tree.chain().entries()[0].header.this_hash],
            id: "x-1".into(),
        };
        c.on_request(&tree, &asks_after_block_0, t0);
        assert_eq!(c.answer_due(), Some(t0 + Duration::from_millis(150)));
        assert!(c.take_answer(&tree, t0).is_none(), "not yet due");
        let answer = c
            .take_answer(&tree, t0 + Duration::from_millis(150))
            .expect("due");
        assert_eq!(answer.from_height, 1);
        assert_eq!(answer.blocks.len(), 2);
        assert!(c.answer_due().is_none(), "answered once");
        // Nothing to answer for a peer that has everything.
        let up_to_date = GetBlocks {
            locator: tree.locator(),
            id: "x-2".into(),
        };
        c.on_request(&tree, &up_to_date, t0);
        assert!(c.answer_due().is_none());
    }

    /// Issue 32: a joiner asked once, took the first answer (cut by its
    /// bytes) and then waited for the next 100 blocks. Now each answer
    /// that may have been cut is followed by a request, until the asker
    /// holds the tip and nobody has more to answer.
    #[test]
    fn a_joiner_asks_after_each_cut_answer_until_it_holds_the_tip() {
        let p = Profile::steady(5.0);
        // 300 blocks stamped 80 s apart, so the bits fall to their floor
        // and mining them is quick; the last an hour ago.
        let start = NOW - 3_600 - 80 * 300;
        let mut full = BlockTree::new(p);
        for i in 0..300u64 {
            let miner = crate::address::example(format!("m{i}").as_bytes());
            let block = full
                .chain()
                .mine_next(&miner, Vec::new(), start + 80 * i)
                .unwrap();
            assert!(matches!(
                full.receive(vec![block], NOW),
                Ok(Received::Adopted(_))
            ));
        }
        let one = encode_bloc(std::slice::from_ref(
            &*full.chain().blocks().next().unwrap(),
        ))
        .len();
        let mut answerer = CatchUp::with_jitter(&p, "a", fixed(0));
        // About three blocks an answer: cut by bytes, far below 100 blocks.
        answerer.set_max_answer_bytes(3 * one + one / 2);
        let mut joiner = BlockTree::new(p);
        let mut asker = CatchUp::with_jitter(&p, "j", fixed(0));
        let mut now = Instant::now();
        let mut request = asker.request(&joiner, true, now);
        let mut answers = 0;
        while let Some(asked) = request.take() {
            answerer.on_request(&full, &asked, now);
            now += MIN_ANSWER_INTERVAL;
            let Some(answer) = answerer.take_answer(&full, now) else {
                break;
            };
            answers += 1;
            assert!(answer.blocks.len() <= 4, "{}", answer.blocks.len());
            let cut = may_be_cut(&answer.blocks);
            let result = joiner.receive(answer.blocks, NOW);
            request = asker.after_bloc(&joiner, &result, cut, now);
        }
        assert_eq!(joiner.chain().len(), 300);
        assert_eq!(joiner.chain().tip_hash(), full.chain().tip_hash());
        assert!((75..=101).contains(&answers), "{answers} answers");
    }

    #[test]
    fn stays_quiet_when_another_node_answers_first() {
        let p = Profile::steady(5.0);
        let tree = tree_of(p, 2);
        let mut c = CatchUp::with_jitter(&p, "n", fixed(100));
        let t0 = Instant::now();
        c.on_request(&tree, &GetBlocks::default(), t0);
        assert!(c.answer_due().is_some());
        // A tampered copy of our answer (the reward's amount rewritten)
        // does not silence us.
        let mut tampered = tree.chain().block(0).unwrap().into_owned();
        tampered.txns[0].receiver_value += 1;
        c.on_bloc_seen(&tree, &[tampered]);
        assert!(c.answer_due().is_some(), "a different answer");
        // Our blocks from another node, from genesis, as ours would be.
        let same = tree.chain().block(0).unwrap().into_owned();
        c.on_bloc_seen(&tree, &[same]);
        assert!(c.answer_due().is_none());
        assert!(c.take_answer(&tree, t0 + Duration::from_secs(1)).is_none());
    }

    #[test]
    fn an_answer_is_bounded_in_bytes_and_a_flood_of_requests_gets_one_per_interval() {
        use crate::wallet::Wallet;
        let mint = Wallet::random().unwrap();
        let p = crate::network::Network::steady(5.0, Some(mint.address().clone())).profile();
        // Six blocks of some 200 KB each as sent (a grant is some 1.4 KB,
        // 1.9 as sent): more than one answer's worth.
        let mut tree = BlockTree::new(p);
        let to = crate::address::example(b"a student");
        for i in 0..6 {
            let txns = (0..105)
                .map(|v| mint.grant(&mut rand::rngs::OsRng, &to, v + 1).unwrap())
                .collect();
            let miner = crate::address::example(format!("m{i}").as_bytes());
            let block = tree.chain().mine_next(&miner, txns, NOW).unwrap();
            assert!(matches!(
                tree.receive(vec![block], NOW),
                Ok(Received::Adopted(_))
            ));
        }
        let mut c = CatchUp::with_jitter(&p, "n", fixed(0));
        let t0 = Instant::now();
        let from_genesis = |id: String| GetBlocks {
            locator: Vec::new(),
            id,
        };
        c.on_request(&tree, &from_genesis("x-1".into()), t0);
        let answer = c.take_answer(&tree, t0).expect("due");
        let sent = encode_bloc(&answer.blocks).len();
        assert!(sent <= MAX_ANSWER_BYTES, "{sent} bytes");
        assert!(
            (1..6).contains(&answer.blocks.len()),
            "{}",
            answer.blocks.len()
        );
        // A hundred requests at once: one answer, a whole interval later.
        for i in 0..100 {
            c.on_request(&tree, &from_genesis(format!("y-{i}")), t0);
        }
        assert_eq!(c.answer_due(), Some(t0 + MIN_ANSWER_INTERVAL));
        assert!(c.take_answer(&tree, t0 + MIN_ANSWER_INTERVAL / 2).is_none());
        assert!(c.take_answer(&tree, t0 + MIN_ANSWER_INTERVAL).is_some());
        assert!(c.answer_due().is_none(), "one answer for them all");
    }
}
