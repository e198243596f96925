//! The checks of a node, in the order they run. Each builds on the one
//! before (a transfer needs the coins of the blocks the program took
//! from us), so when the program ends or floods, the checks left are
//! skipped.

use std::time::Duration;

use bytes::Bytes;
use rand::rngs::OsRng;
use tokio::time::Instant;
use toycoin_common::block::Block;
use toycoin_common::chain::{now_secs, Chain};
use toycoin_common::hash::{BlockHash, Txid};
use toycoin_common::message::{encode_getb, encode_txn, GetBlocks};
use toycoin_common::pow::MiningJob;
use toycoin_common::profile::{Profile, ProfileKind};
use toycoin_common::relay::DEFAULT_TOPIC;
use toycoin_common::transaction::{Address, Token, Transaction};
use toycoin_common::wallet::Wallet;

use crate::mining::{next_txns, solve};
use crate::peer::{Peer, Waited};
use crate::program::Program;
use crate::report::{Check, Report, Verdict};
use crate::stage::Stage;

/// How a node is checked.
#[derive(Clone, Debug)]
pub struct Options {
    /// The rules: the original's (`toycoin`) or ours (`steady`).
    pub profile: ProfileKind,
    /// The steady network's target seconds between blocks.
    pub target_secs: f64,
    /// Longest wait for the program's next block, and for each thing it
    /// should do.
    pub patience: Duration,
    /// The program and its arguments (`{host}`, `{port}`, `{network}`
    /// filled in).
    pub command: Vec<String>,
}

impl Options {
    pub fn new(profile: ProfileKind, command: Vec<String>) -> Options {
        Options {
            profile,
            target_secs: 2.0,
            patience: Duration::from_secs(60),
            command,
        }
    }
}

/// The checks, in order, in the groups they run in. Under toycoin each
/// group after the first restarts the program with an empty chain: from
/// block 8 a toycoin block needs 2^32 hashes, so a group's forks must
/// stay within the first few heights.
pub fn groups(profile: ProfileKind) -> Vec<Vec<&'static str>> {
    let first = vec![
        "subscribes",
        "mines",
        "builds-on-our-blocks",
        "takes-a-transfer",
        "refuses-a-forged-signature",
        "refuses-an-overspend",
        "refuses-a-double-spend",
        "refuses-a-mint",
    ];
    let forks = vec!["adopts-a-longer-chain", "puts-back-abandoned-transfers"];
    match profile {
        ProfileKind::Steady => {
            let mut all = first;
            all.extend(forks);
            all.extend([
                "refuses-an-invalid-chain",
                "survives-junk-frames",
                "answers-getb",
                "asks-getb-for-a-missing-parent",
            ]);
            vec![all]
        }
        ProfileKind::Toycoin => vec![
            first[..4].to_vec(),
            first[4..].to_vec(),
            forks,
            vec!["refuses-an-invalid-chain"],
            vec!["survives-junk-frames"],
        ],
    }
}

/// Every check, in order.
pub fn check_names(profile: ProfileKind) -> Vec<&'static str> {
    groups(profile).concat()
}

/// How often the checker sends an orphan again while waiting for the
/// program to ask for its parent.
pub const ORPHAN_AGAIN: Duration = Duration::from_secs(2);

/// Why the checks stopped early.
struct Stop(String);

/// A run of the checks.
struct Run {
    peer: Peer,
    program: Program,
    relay: toycoin_relay::Relay,
    /// Subscriptions to the class's topic before the program (the one
    /// running now) started: it has subscribed once there are more.
    joined_before: u64,
    /// The program's command line.
    args: Vec<String>,
    /// Setting a scene again after a restart: what passes is not
    /// recorded (it was, the first time).
    quiet: bool,
    /// The last lines of a program that was restarted after a failure.
    tail: Vec<String>,
    wallet: Wallet,
    options: Options,
    report: Report,
    /// The transfer the program took, and the coin it spent.
    taken: Option<Txid>,
    spent: Option<Token>,
    /// Coinbase transactions sent to keep a toycoin node mining.
    fuelled: i64,
}

/// Blocks the checker mined on a chain.
struct Branch {
    /// The chain they start from.
    base: Chain,
    /// The chain with them, while every one is valid.
    chain: Option<Chain>,
    blocks: Vec<Block>,
}

impl Branch {
    fn len(&self) -> usize {
        self.base.len() + self.blocks.len()
    }

    fn work(&self) -> u128 {
        self.chain.as_ref().map_or(0, Chain::total_work)
    }

    fn tip(&self) -> BlockHash {
        self.blocks
            .last()
            .map_or_else(|| self.base.tip_hash(), |b| b.header.this_hash)
    }
}

/// Times a branch is sent again when the program's own chain grew as
/// long as it before it arrived ([`Run::send_branch`]).
const RESENDS: usize = 3;

/// What a report's "sent" adds for a branch sent again.
fn resent_note(resent: usize) -> String {
    if resent == 0 {
        String::new()
    } else {
        format!(" (sent {resent} time(s) before: its own chain grew as long as each)")
    }
}

/// Starts the relay and the program and runs every check.
pub async fn check_node(options: Options) -> Result<Report, String> {
    let stage = Stage::start(options.profile, options.target_secs).await?;
    let result = run_on(&stage, options).await;
    stage.stop().await;
    result
}

async fn run_on(stage: &Stage, options: Options) -> Result<Report, String> {
    let relay = stage.relay.clone();
    let peer = stage.connect_peer().await?;
    let args = stage.fill(&options.command);
    let joined_before = stage.joined();
    let program = Program::start(&args)?;
    let mut run = Run {
        peer,
        program,
        relay,
        joined_before,
        args: args.clone(),
        quiet: false,
        tail: Vec::new(),
        wallet: Wallet::random().map_err(|e| e.to_string())?,
        report: Report {
            role: "node".into(),
            profile: options.profile.name().to_owned(),
            program: args.join(" "),
            ..Report::default()
        },
        options,
        taken: None,
        spent: None,
        fuelled: 0,
    };
    let groups = groups(run.options.profile);
    for (i, group) in groups.iter().enumerate() {
        if i > 0 {
            if let Err(Stop(why)) = run.restart().await {
                run.skip(group, &why);
                continue;
            }
        }
        let result = run.group(i).await;
        if let Err(Stop(why)) = result {
            run.skip(group, &why);
            if run.tail.is_empty() {
                run.tail = run.program.tail().await;
            }
        }
    }
    if !run.report.passed() {
        run.report.output_tail = if run.tail.is_empty() {
            run.program.tail().await
        } else {
            run.tail.clone()
        };
    }
    run.program.stop().await;
    Ok(run.report)
}

impl Run {
    fn toycoin(&self) -> bool {
        self.options.profile == ProfileKind::Toycoin
    }

    fn profile(&self) -> Profile {
        self.peer.profile
    }

    /// Under toycoin, two coinbase transactions for the program's next
    /// block: the original mines only when transactions are pending (two
    /// or more), and coinbases are its way to make coins.
    async fn fuel(&mut self) -> Result<Vec<Txid>, Stop> {
        self.fuel_with(2).await
    }

    /// Under toycoin, `n` coinbase transactions to the checker: their ids.
    async fn fuel_with(&mut self, n: usize) -> Result<Vec<Txid>, Stop> {
        let mut sent = Vec::new();
        if !self.toycoin() {
            return Ok(sent);
        }
        for _ in 0..n {
            self.fuelled += 1;
            let me = self.wallet.address().clone();
            let coinbase = Transaction::coinbase(me, 10_000 + self.fuelled);
            sent.push(coinbase.hash());
            self.peer
                .send(&encode_txn(&[], &coinbase))
                .await
                .map_err(Stop)?;
        }
        Ok(sent)
    }

    /// Blocks a branch must have at least to be worth sending: toycoin's
    /// few cheap heights (from height 8 a block needs 2^32 hashes) are
    /// spent sparingly.
    fn at_least(&self, steady: usize) -> usize {
        if self.toycoin() {
            steady.saturating_sub(1).max(1)
        } else {
            steady
        }
    }

    fn record(
        &mut self,
        name: &'static str,
        sent: impl Into<String>,
        expected: impl Into<String>,
        did: impl Into<String>,
        verdict: Verdict,
        hint: impl Into<String>,
    ) {
        if self.quiet {
            return;
        }
        let hint = if verdict == Verdict::Pass {
            String::new()
        } else {
            hint.into()
        };
        self.report.checks.push(Check {
            name,
            sent: sent.into(),
            expected: expected.into(),
            did: did.into(),
            verdict,
            hint,
        });
    }

    /// A wait's end that stops the run (the program ended or flooded):
    /// recorded as this check's failure.
    fn stopped(
        &mut self,
        name: &'static str,
        sent: &str,
        expected: &str,
        waited: &Waited,
    ) -> Result<(), Stop> {
        let why = match waited {
            Waited::Exited(status) => format!("the program ended ({status})"),
            Waited::Flooded(bytes) => format!(
                "the program sent {bytes} bytes, more than {} KB a second: a flood",
                crate::peer::FLOOD_BYTES_PER_SEC / 1024
            ),
            Waited::Done | Waited::TimedOut => return Ok(()),
        };
        let hint = match waited {
            Waited::Exited(_) => "its last lines are below: a frame it could not take should be refused with a reason, not end it",
            _ => "send each message once; answer a request once",
        };
        self.record(name, sent, expected, why.clone(), Verdict::Fail, hint);
        Err(Stop(why))
    }

    /// Runs group `i` of [`groups`].
    async fn group(&mut self, i: usize) -> Result<(), Stop> {
        match (self.toycoin(), i) {
            (false, _) => {
                self.subscribes().await?;
                self.mines().await?;
                self.builds_on_ours().await?;
                self.transfers().await?;
                self.adopts_and_puts_back().await?;
                self.refuses_invalid_chain().await?;
                self.survives_junk().await?;
                self.answers_getb().await?;
                self.asks_getb().await
            }
            (true, 0) => {
                self.subscribes().await?;
                self.mines().await?;
                self.builds_on_ours().await?;
                self.take_a_transfer().await.map(|_| ())
            }
            (true, 1) => {
                self.quietly(|run| Box::pin(run.mines_and_pays())).await?;
                let spent = self
                    .spent
                    .clone()
                    .ok_or_else(|| Stop("no coin spent".into()))?;
                self.refusals(spent).await
            }
            (true, 2) => {
                self.quietly(|run| Box::pin(run.mines_and_pays())).await?;
                self.adopts_and_puts_back().await
            }
            (true, 3) => {
                self.quietly(|run| Box::pin(run.mines())).await?;
                self.refuses_invalid_chain().await
            }
            (true, _) => {
                self.quietly(|run| Box::pin(run.mines())).await?;
                self.survives_junk().await
            }
        }
    }

    /// The scene for the checks after the first group under toycoin:
    /// the program's block 0, then a transfer of the checker's in its
    /// block 1 (cheap heights, 8 zero bits each).
    async fn mines_and_pays(&mut self) -> Result<(), Stop> {
        self.mines().await?;
        self.take_a_transfer().await.map(|_| ())
    }

    /// Sets a scene again, unrecorded.
    async fn quietly(
        &mut self,
        scene: impl for<'a> FnOnce(
            &'a mut Run,
        ) -> std::pin::Pin<
            Box<dyn std::future::Future<Output = Result<(), Stop>> + Send + 'a>,
        >,
    ) -> Result<(), Stop> {
        self.quiet = true;
        let result = scene(self).await;
        self.quiet = false;
        result.map_err(|Stop(why)| Stop(format!("setting the scene again: {why}")))
    }

    /// A fresh program (an empty chain) and a fresh view of our own.
    async fn restart(&mut self) -> Result<(), Stop> {
        self.program.stop().await;
        // Its connections gone (only the checker's own is left), a new
        // subscription is the new program's.
        let deadline = Instant::now() + self.options.patience;
        while self.relay.subscribers(DEFAULT_TOPIC.as_bytes()) > 1 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.peer.drain(Duration::from_millis(200)).await;
        self.peer.forget();
        self.joined_before = self.joined();
        self.program = Program::start(&self.args).map_err(Stop)?;
        self.taken = None;
        self.spent = None;
        match self.program_subscribed().await {
            Waited::Done => Ok(()),
            Waited::Exited(status) => Err(Stop(format!("the program ended ({status})"))),
            _ => Err(Stop("started again, it did not subscribe".into())),
        }
    }

    /// Subscriptions the class's topic has taken ([`Stage::joined`]).
    fn joined(&self) -> u64 {
        crate::stage::joined(&self.relay)
    }

    /// Waits, within the patience, for the program to subscribe to the
    /// class's topic, or to end. A program that subscribed and then ended
    /// before this looked has subscribed.
    async fn program_subscribed(&mut self) -> Waited {
        let deadline = Instant::now() + self.options.patience;
        loop {
            if self.joined() > self.joined_before {
                return Waited::Done;
            }
            if let Some(status) = self.program.ended() {
                return Waited::Exited(status);
            }
            if Instant::now() >= deadline {
                return Waited::TimedOut;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Records the checks of `group` not recorded yet as skipped.
    fn skip(&mut self, group: &[&'static str], why: &str) {
        for name in group {
            if !self.report.checks.iter().any(|c| c.name == *name) {
                self.report.checks.push(Check {
                    name,
                    sent: "nothing".into(),
                    expected: "-".into(),
                    did: format!("not run: {why}"),
                    verdict: Verdict::Skipped,
                    hint: String::new(),
                });
            }
        }
    }

    async fn subscribes(&mut self) -> Result<(), Stop> {
        let name = "subscribes";
        let expected = format!(
            "it connects to the relay and subscribes to {} within {} s",
            DEFAULT_TOPIC,
            self.options.patience.as_secs()
        );
        match self.program_subscribed().await {
            Waited::Done => {
                self.record(name, "nothing", expected, "subscribed", Verdict::Pass, "");
                Ok(())
            }
            Waited::TimedOut => {
                let why = "no subscription".to_string();
                self.record(
                    name,
                    "nothing",
                    expected,
                    why.clone(),
                    Verdict::Fail,
                    "connect to {host}:{port}, send the topic as the first frame (4-byte length, then the bytes)",
                );
                Err(Stop(why))
            }
            waited => self.stopped(name, "nothing", &expected, &waited),
        }
    }

    async fn mines(&mut self) -> Result<(), Stop> {
        let name = "mines";
        let expected = format!(
            "within {} s a BLOC with a block that passes the {} rules",
            self.options.patience.as_secs(),
            self.options.profile
        );
        self.peer.count_from_now();
        self.fuel().await?;
        let sent = if self.toycoin() {
            "two coinbase TXNs (a toycoin node mines only pending transactions)"
        } else {
            "nothing"
        };
        let waited = self
            .peer
            .wait(&mut self.program, self.options.patience, |p| {
                !p.valid_theirs_since(0).is_empty() || !p.refused.is_empty()
            })
            .await;
        self.stopped(name, sent, &expected, &waited)?;
        if let Some(why) = self.peer.refused.first().cloned() {
            self.record(
                name,
                sent,
                expected,
                format!("its BLOC was refused: {why}"),
                Verdict::Fail,
                "hash the header as docs/toycoin-wire-format.md says, and meet the required zero bits",
            );
            return Err(Stop("its first block was invalid".into()));
        }
        match self.peer.valid_theirs_since(0).first() {
            Some(hash) => {
                let height = self.peer.chain().height_of(hash).unwrap_or(0);
                self.record(
                    name,
                    sent,
                    expected,
                    format!("mined block {height} ({})", hash.short()),
                    Verdict::Pass,
                    "",
                );
                Ok(())
            }
            None => {
                self.record(
                    name,
                    sent,
                    expected,
                    "no block",
                    Verdict::Fail,
                    "mine on the tip: hash headers until one has the required zero bits, then publish it in a BLOC",
                );
                Err(Stop("it mined nothing".into()))
            }
        }
    }

    /// Mines a branch from block `fork` of our view's best chain (the
    /// first block holding `extra`, valid or not), one block at a time,
    /// taking in the program's frames between blocks, until it has at
    /// least `least` blocks and more work than our view's best chain (the
    /// program's, as it grows meanwhile): a branch the program should
    /// switch to, were it valid. Err when the program outpaces the
    /// checker for [`Options::patience`].
    async fn outgrow(
        &mut self,
        name: &'static str,
        fork: usize,
        extra: Vec<Transaction>,
        least: usize,
    ) -> Result<Branch, Stop> {
        let base = self.chain_to(fork);
        let branch = Branch {
            base: base.clone(),
            chain: Some(base),
            blocks: Vec::new(),
        };
        self.grow(name, branch, extra, least).await
    }

    /// `branch` mined on, as [`Run::outgrow`] does, until it has at least
    /// `least` blocks and more work than our view's best chain.
    async fn grow(
        &mut self,
        name: &'static str,
        mut branch: Branch,
        extra: Vec<Transaction>,
        least: usize,
    ) -> Result<Branch, Stop> {
        let mut extra = Some(extra);
        let deadline = Instant::now() + self.options.patience * 2;
        loop {
            let waited = self
                .peer
                .wait(&mut self.program, Duration::from_millis(1), |_| false)
                .await;
            self.stopped(name, "-", "-", &waited)?;
            let best = self.peer.chain();
            let longer = branch.len() > best.len();
            let heavier = branch.work() > best.total_work();
            if branch.blocks.len() >= least && longer && (heavier || branch.chain.is_none()) {
                return Ok(branch);
            }
            if Instant::now() >= deadline {
                return Err(Stop(
                    "the program mines faster than the checker can outgrow it: give it fewer threads"
                        .into(),
                ));
            }
            branch = self
                .mine_one(branch, extra.take().unwrap_or_default())
                .await?;
        }
    }

    /// `branch` and one block more, holding `extra` (unchecked).
    async fn mine_one(&self, branch: Branch, extra: Vec<Transaction>) -> Result<Branch, Stop> {
        let me = self.wallet.address().clone();
        let toycoin = self.toycoin();
        tokio::task::spawn_blocking(move || {
            let mut branch = branch;
            let (txns, job) = match (&branch.chain, branch.blocks.last()) {
                (Some(c), _) => {
                    let txns = next_txns(c, &me, extra, toycoin);
                    let job = c.mining_job(&txns, now_secs());
                    (txns, job)
                }
                // On an invalid block: the zero bits its height needs
                // under toycoin (in steady the first invalid block ends
                // it: these need only look like blocks).
                (None, Some(last)) => {
                    let height = (branch.base.len() + branch.blocks.len()) as i64;
                    let bits = if toycoin {
                        8 * toycoin_common::difficulty::toycoin_zero_bytes(height as u64)
                    } else {
                        branch.base.next_required_bits()
                    };
                    let txns = vec![Transaction::coinbase(me.clone(), 100 + height)];
                    let hashes: Vec<Txid> = txns.iter().map(Transaction::hash).collect();
                    let job = toycoin_common::merkle::merkle_root(&hashes).map(|root| MiningJob {
                        timestamp: now_secs(),
                        previous_hash: last.header.this_hash,
                        merkle_root: root,
                        required_bits: bits,
                    });
                    (txns, job)
                }
                (None, None) => (Vec::new(), None),
            };
            let job = job.ok_or_else(|| Stop("the checker has no block to mine".into()))?;
            let block =
                solve(&job, txns).ok_or_else(|| Stop("the checker's mining stopped".into()))?;
            if let Some(c) = branch.chain.as_mut() {
                if c.push(block.clone(), now_secs()).is_err() {
                    branch.chain = None;
                }
            }
            branch.blocks.push(block);
            Ok(branch)
        })
        .await
        .map_err(|e| Stop(format!("the checker's miner failed: {e}")))?
    }

    /// The best chain of our view cut to its first `len` blocks.
    fn chain_to(&self, len: usize) -> Chain {
        let now = now_secs();
        Chain::from_blocks(
            self.profile(),
            self.peer
                .chain()
                .blocks()
                .take(len)
                .map(std::borrow::Cow::into_owned),
            now,
        )
        .unwrap_or_else(|_| Chain::new(self.profile()))
    }

    /// Sends our new `blocks` on `base` (the whole chain under toycoin).
    async fn announce(&mut self, blocks: &[Block], base: &Chain) -> Result<(), Stop> {
        let whole: Vec<Block> = base
            .blocks()
            .map(std::borrow::Cow::into_owned)
            .chain(blocks.iter().cloned())
            .collect();
        self.peer.announce(blocks, &whole).await.map_err(Stop)
    }

    /// Waits for a valid block of the program's, new since `from`, that
    /// `pred` likes.
    async fn their_block(
        &mut self,
        from: usize,
        timeout: Duration,
        pred: impl Fn(&Peer, &BlockHash) -> bool,
    ) -> (Waited, Option<BlockHash>) {
        let waited = self
            .peer
            .wait(&mut self.program, timeout, |p| {
                p.valid_theirs_since(from).iter().any(|h| pred(p, h))
            })
            .await;
        let found = self
            .peer
            .valid_theirs_since(from)
            .into_iter()
            .find(|h| pred(&self.peer, h));
        (waited, found)
    }

    /// Sends `branch` (and fuel) and waits for a block of the program's
    /// on it, heard after the first `from` of [`Peer::theirs`]. A program
    /// that mined on its own chain before the branch reached it, until
    /// that chain was as long as the branch, did right to keep its own (a
    /// tie goes to the chain seen first): then the branch is mined past
    /// it and sent again, [`RESENDS`] times at most, so that a fast miner
    /// on a loaded machine is not failed for being fast. The branch as
    /// last sent, how the wait ended, the program's block on it, and how
    /// many times it was sent again.
    async fn send_branch(
        &mut self,
        name: &'static str,
        mut branch: Branch,
        from: usize,
    ) -> Result<(Branch, Waited, Option<BlockHash>, usize), Stop> {
        let mut resent = 0;
        loop {
            self.announce(&branch.blocks, &branch.base).await?;
            self.fuel().await?;
            let (tip, len) = (branch.tip(), branch.len());
            let (waited, _) = self
                .their_block(from, self.options.patience, |p, h| {
                    p.descends(h, &tip)
                        || p.their_tip.is_some_and(|t| {
                            !p.descends(&t, &tip)
                                && p.view.height_of(&t).is_some_and(|at| at + 1 >= len)
                        })
                })
                .await;
            let on = self
                .peer
                .valid_theirs_since(from)
                .into_iter()
                .find(|h| self.peer.descends(h, &tip));
            if on.is_some() || resent >= RESENDS || !matches!(waited, Waited::Done) {
                return Ok((branch, waited, on, resent));
            }
            resent += 1;
            branch = self.grow(name, branch, Vec::new(), 1).await?;
        }
    }

    async fn builds_on_ours(&mut self) -> Result<(), Stop> {
        let name = "builds-on-our-blocks";
        let tip_len = self.peer.chain().len();
        let least = self.at_least(2);
        let branch = self.outgrow(name, tip_len, Vec::new(), least).await?;
        let from = self.peer.theirs.len();
        let (branch, waited, found, resent) = self.send_branch(name, branch, from).await?;
        let sent = format!(
            "a BLOC of {} blocks on its tip, from block {}: more work than its chain{}",
            branch.blocks.len(),
            tip_len,
            resent_note(resent)
        );
        let expected =
            "its next block builds on ours (it decoded the BLOC and took the longer chain)";
        self.stopped(name, &sent, expected, &waited)?;
        match found {
            Some(h) => {
                let did = format!("mined block {} on ours", h.short());
                self.record(name, sent, expected, did, Verdict::Pass, "");
                Ok(())
            }
            None => {
                let mined = self.peer.valid_theirs_since(from).len();
                self.record(
                    name,
                    sent,
                    expected,
                    format!("{mined} blocks of its own since, none on ours"),
                    Verdict::Fail,
                    "decode each BLOC, check its blocks, and mine on the longer (in steady: heavier) chain",
                );
                Err(Stop("it does not build on others' blocks".into()))
            }
        }
    }

    /// A transfer of `token` to `to` for `value`, with the rest as change.
    fn pay(
        &self,
        token: &Token,
        to: &Address,
        value: i64,
    ) -> Result<(Vec<Token>, Transaction), Stop> {
        self.wallet
            .transfer(
                &mut OsRng,
                to,
                value,
                vec![token.clone()],
                self.profile().signing(),
            )
            .map(|t| (t.tokens, t.txn))
            .map_err(|e| Stop(format!("the checker could not sign: {e}")))
    }

    /// The checker's coins on our view's best chain, largest first.
    fn coins(&self) -> Vec<Token> {
        let mut tokens = self.peer.chain().unspent(self.wallet.address());
        tokens.sort_by_key(|t| std::cmp::Reverse(t.value));
        tokens
    }

    /// `takes-a-transfer`, then the bad transactions.
    async fn transfers(&mut self) -> Result<(), Stop> {
        let spent = self.take_a_transfer().await?;
        self.refusals(spent).await
    }

    /// Sends a transfer of the checker's largest coin (and under toycoin
    /// a coinbase beside it: the original mines two or more) and waits
    /// for a block of the program's to hold it. Returns the coin spent.
    async fn take_a_transfer(&mut self) -> Result<Token, Stop> {
        let name = "takes-a-transfer";
        let Some(coin) = self.coins().first().cloned() else {
            return Err(Stop(
                "the checker has no coin of its blocks to spend".into(),
            ));
        };
        let bob = Wallet::random().map_err(|e| Stop(e.to_string()))?;
        let (tokens, valid) = self.pay(&coin, bob.address(), coin.value / 2)?;
        let valid_id = valid.hash();
        self.peer
            .send(&encode_txn(&tokens, &valid))
            .await
            .map_err(Stop)?;
        if self.toycoin() {
            self.fuel_with(1).await?;
        }
        let sent = format!(
            "a TXN paying {} of a coin of {} to another wallet (txn {})",
            valid.receiver_value,
            coin.value,
            valid_id.short()
        );
        let expected = "a block of its holds it";
        let from = self.peer.theirs.len();
        let waited = self
            .peer
            .wait(&mut self.program, self.options.patience * 2, |p| {
                p.they_mined(&valid_id)
            })
            .await;
        self.stopped(name, &sent, expected, &waited)?;
        if !self.peer.they_mined(&valid_id) {
            self.record(
                name,
                sent,
                expected,
                format!(
                    "{} blocks of its own since, without it",
                    self.peer.valid_theirs_since(from).len()
                ),
                Verdict::Fail,
                "decode each TXN, check it against the chain, keep it pending and put it in the next block you mine",
            );
            return Err(Stop("it takes no transfer".into()));
        }
        self.record(
            name,
            sent,
            expected,
            format!("mined it (txn {})", valid_id.short()),
            Verdict::Pass,
            "",
        );
        self.taken = Some(valid_id);
        self.spent = Some(coin.clone());
        Ok(coin)
    }

    /// Four bad transactions at once: a forged signature, an overspend, a
    /// double spend of the coin `spent` (already spent in the chain) and
    /// a mint; then the program's next block, and what it holds.
    async fn refusals(&mut self, spent: Token) -> Result<(), Stop> {
        let me = self.wallet.address().clone();
        let Some(other) = self
            .coins()
            .into_iter()
            .find(|t| t.txn_hash != spent.txn_hash)
        else {
            return Err(Stop("the checker has no second coin to spend".into()));
        };
        let carol = Wallet::random().map_err(|e| Stop(e.to_string()))?;
        let (t_forged, mut forged) = self.pay(&other, carol.address(), 1)?;
        if let Some(byte) = forged.sender_signature.first().copied() {
            let mut sig = forged.sender_signature.to_vec();
            sig[0] = byte ^ 0xff;
            forged.sender_signature = Bytes::from(sig);
        }
        // Signed for amounts the coin does not hold, sent with the coin
        // as it is.
        let mut inflated = other.clone();
        inflated.value = other.value.saturating_add(1_000);
        let (_, overspend) =
            self.pay(&inflated, carol.address(), other.value.saturating_add(500))?;
        let (t_double, double) = self.pay(&spent, carol.address(), spent.value / 3)?;
        let mint = Transaction::coinbase(me, 1_000);
        let sends: [(&[Token], &Transaction); 4] = [
            (&t_forged, &forged),
            (std::slice::from_ref(&other), &overspend),
            (&t_double, &double),
            (&[], &mint),
        ];
        for (tokens, txn) in sends {
            self.peer
                .send(&encode_txn(tokens, txn))
                .await
                .map_err(Stop)?;
        }
        // Under toycoin two transactions must be pending for a block: the
        // checker adds them last, so blocks come whatever the program
        // takes, and once the first is mined it has mined all it would of
        // the four (the original mines two at a time, oldest first).
        let fuel = self.fuel().await?;
        let from = self.peer.theirs.len();
        let waited = self
            .peer
            .wait(
                &mut self.program,
                self.options.patience * 2,
                |p| match fuel.first() {
                    None => p.theirs.len() > from,
                    Some(first) => p.they_took(first),
                },
            )
            .await;
        self.stopped(
            "refuses-a-forged-signature",
            "four bad TXNs",
            "its next block",
            &waited,
        )?;
        if waited == Waited::TimedOut {
            let why = format!("no block in {} s", self.options.patience.as_secs());
            return Err(Stop(why));
        }
        // And one more in steady, where a node may keep a late TXN for the
        // block after.
        if !self.toycoin() {
            let from = self.peer.theirs.len();
            let waited = self
                .peer
                .wait(&mut self.program, self.options.patience, |p| {
                    p.theirs.len() > from
                })
                .await;
            self.stopped("refuses-a-forged-signature", "-", "-", &waited)?;
        }
        let refusals = [
            (
                "refuses-a-forged-signature",
                forged.hash(),
                "a TXN spending another coin with the sender's signature altered".to_string(),
                "no block of its holds it (the signature does not verify)",
                "verify both signatures with the sender's key (RSA-PSS, SHA-512) before taking a transaction",
                false,
            ),
            (
                "refuses-an-overspend",
                overspend.hash(),
                format!(
                    "a TXN paying out {} from a coin of {}",
                    overspend.receiver_value.saturating_add(overspend.sender_change),
                    other.value
                ),
                "no block of its holds it (its inputs do not add up to its outputs)",
                "look up each input in the chain: its value, not the one the TXN claims, must equal receiver_value + sender_change",
                true,
            ),
            (
                "refuses-a-double-spend",
                double.hash(),
                format!(
                    "a TXN spending again the coin the transfer above spent (txn {})",
                    double.hash().short()
                ),
                "no block of its holds it (the coin is spent)",
                "a coin an earlier transaction spent (in the chain, or pending) cannot be spent again",
                true,
            ),
            (
                "refuses-a-mint",
                mint.hash(),
                "a TXN from COINBASE paying the checker 1,000 coins, outside any block".to_string(),
                "no block of its holds it (coins come only from a block's reward or the network's mint)",
                "refuse a coinbase unless it is a block's own reward",
                true,
            ),
        ];
        for (name, txid, sent, expected, hint, flaw) in refusals {
            let took = self.peer.they_took(&txid);
            let (verdict, did) = match (took, flaw && self.toycoin()) {
                (false, _) => (Verdict::Pass, "refused it".to_string()),
                (true, true) => (
                    Verdict::KnownFlaw,
                    "mined it, as the original does (steady refuses it)".to_string(),
                ),
                (true, false) => (Verdict::Fail, "mined it".to_string()),
            };
            self.record(name, sent, expected, did, verdict, hint);
        }
        Ok(())
    }

    async fn adopts_and_puts_back(&mut self) -> Result<(), Stop> {
        let name = "adopts-a-longer-chain";
        let Some(taken_id) = self.taken else {
            return Err(Stop("no transfer was taken".into()));
        };
        // Fork just before the block holding the transfer, and outgrow
        // the program's chain from there by two.
        let chain = self.peer.chain().clone();
        let holder = chain
            .blocks()
            .position(|b| b.txns.iter().any(|t| t.hash() == taken_id));
        let Some(holder) = holder else {
            return Err(Stop("the transfer is not on the best chain".into()));
        };
        let branch = self.outgrow(name, holder, Vec::new(), 2).await?;
        let from = self.peer.theirs.len();
        // A toycoin node that put the abandoned block's transactions back
        // mines them; one that did not has nothing to mine: the fuel
        // `send_branch` sends with the branch.
        let (branch, waited, found, resent) = self.send_branch(name, branch, from).await?;
        let tip = branch.tip();
        let sent = format!(
            "a branch of {} blocks from block {holder}, with more work than its chain, without the block holding its transfer {}{}",
            branch.blocks.len(),
            taken_id.short(),
            resent_note(resent)
        );
        let expected = "its next block builds on our branch";
        self.stopped(name, &sent, expected, &waited)?;
        let Some(on_ours) = found else {
            self.record(
                name,
                sent,
                expected,
                "kept mining its own chain",
                Verdict::Fail,
                "switch to a chain with more work (toycoin: a longer one) when it comes, undoing your blocks after the fork",
            );
            self.record(
                "puts-back-abandoned-transfers",
                "nothing",
                "-",
                "not run: it did not reorganise",
                Verdict::Skipped,
                "",
            );
            return Ok(());
        };
        self.record(
            name,
            sent,
            expected,
            format!("mined block {} on our branch", on_ours.short()),
            Verdict::Pass,
            "",
        );
        let name = "puts-back-abandoned-transfers";
        let expected = "the transfer of its abandoned block is mined again, on our branch";
        let again_on_ours = |p: &Peer| {
            p.their_txns
                .get(&taken_id)
                .is_some_and(|bs| bs.iter().any(|b| p.view.knows(b) && p.descends(b, &tip)))
        };
        // Under toycoin, a second block on our branch settles it: a node
        // that put the transfer back has mined it by then.
        let on_branch = |p: &Peer| {
            p.valid_theirs_since(from)
                .iter()
                .filter(|h| p.descends(h, &tip))
                .count()
        };
        if self.toycoin() && !again_on_ours(&self.peer) {
            self.fuel().await?;
        }
        let toycoin = self.toycoin();
        let waited = self
            .peer
            .wait(&mut self.program, self.options.patience * 2, |p| {
                again_on_ours(p) || (toycoin && on_branch(p) >= 2)
            })
            .await;
        self.stopped(name, "the reorganisation above", expected, &waited)?;
        let again = again_on_ours(&self.peer);
        let (verdict, did) = match (again, self.toycoin()) {
            (true, _) => (Verdict::Pass, "mined it again"),
            (false, true) => (
                Verdict::KnownFlaw,
                "did not mine it again, as the original does not (it drops an abandoned block's transactions)",
            ),
            (false, false) => (Verdict::Fail, "did not mine it again"),
        };
        self.record(
            name,
            format!(
                "the branch above, which leaves transfer {} out",
                taken_id.short()
            ),
            expected,
            did,
            verdict,
            "when a reorganisation drops blocks, put their transactions back in the pool (those the new chain does not hold)",
        );
        Ok(())
    }

    async fn refuses_invalid_chain(&mut self) -> Result<(), Stop> {
        let name = "refuses-an-invalid-chain";
        let base = self.peer.chain().clone();
        let me = self.wallet.address().clone();
        // Pays out more than the checker has: a block only a node that
        // checks its transactions refuses.
        let mut bad = Transaction::coinbase(me, 1);
        bad.previous_hashes = vec![Txid::from_raw_hash(toycoin_common::hash::Hash(
            [0; toycoin_common::hash::HASH_LEN],
        ))];
        bad.sender = self.wallet.address().clone();
        bad.receiver_value = 1_000_000;
        let least = self.at_least(3);
        let branch = self.outgrow(name, base.len(), vec![bad], least).await?;
        let Some(first) = branch.blocks.first().map(|b| b.header.this_hash) else {
            return Err(Stop("the checker could not mine".into()));
        };
        if branch.chain.is_some() {
            return Err(Stop("the checker's invalid block came out valid".into()));
        }
        let sent = format!(
            "a branch of {} blocks on its tip, longer than its chain, whose first pays 1,000,000 coins from an input that does not exist (block {})",
            branch.blocks.len(),
            first.short()
        );
        let expected = "its next block is not on that branch";
        let from = self.peer.theirs.len();
        self.announce(&branch.blocks, &branch.base).await?;
        self.fuel().await?;
        let (waited, found) = self
            .their_block(from, self.options.patience, |_, _| true)
            .await;
        self.stopped(name, &sent, expected, &waited)?;
        // A block on the invalid branch is not in our view: look at all.
        let on_bad = self.peer.theirs[from.min(self.peer.theirs.len())..]
            .iter()
            .any(|h| self.peer.descends(h, &first));
        let (verdict, did) = match (on_bad, found) {
            (true, _) if self.toycoin() => (
                Verdict::KnownFlaw,
                "mined on it, as the original does (it checks no transaction of another node's block; steady refuses it)".to_string(),
            ),
            (true, _) => (Verdict::Fail, "mined on it".to_string()),
            (false, Some(h)) => (
                Verdict::Pass,
                format!("mined block {} on its own valid chain", h.short()),
            ),
            (false, None) => (
                Verdict::Fail,
                format!("no block in {} s", self.options.patience.as_secs()),
            ),
        };
        self.record(
            name,
            sent,
            expected,
            did,
            verdict,
            "check every transaction of a block (inputs, values, signatures) before taking it, and refuse its descendants",
        );
        Ok(())
    }

    async fn survives_junk(&mut self) -> Result<(), Stop> {
        let name = "survives-junk-frames";
        let some_block = self.peer.chain().tip().cloned();
        let mut truncated =
            toycoin_common::message::encode_bloc(&some_block.into_iter().collect::<Vec<_>>())
                .to_vec();
        truncated.truncate(truncated.len() / 2);
        let mut oversized = b"TXN ".to_vec();
        oversized.resize(4 * 1024 * 1024, b'A');
        let junk: [&[u8]; 6] = [
            b"\x00\xff\x00\xff not a message",
            b"BLOC",
            &truncated,
            b"TXN {\"previous_hashes\": 7}",
            b"BLOC[{\"header\": null}]",
            &oversized,
        ];
        for frame in junk {
            self.peer.send(frame).await.map_err(Stop)?;
        }
        self.fuel().await?;
        let sent = "six bad frames: bytes that are no message, a bare tag, a BLOC cut in half, TXN and BLOC JSON of the wrong shape, and a 4 MiB TXN";
        let expected = "it goes on: it mines its next block";
        let from = self.peer.theirs.len();
        // Any block: after a toycoin node took an invalid chain, its next
        // is invalid too.
        let waited = self
            .peer
            .wait(&mut self.program, self.options.patience, |p| {
                p.theirs.len() > from
            })
            .await;
        self.stopped(name, sent, expected, &waited)?;
        let found = self.peer.theirs.get(from).copied();
        let (verdict, did) = match found {
            Some(h) => (Verdict::Pass, format!("mined block {}", h.short())),
            None => (
                Verdict::Fail,
                format!(
                    "alive, but no block in {} s",
                    self.options.patience.as_secs()
                ),
            ),
        };
        self.record(
            name,
            sent,
            expected,
            did,
            verdict,
            "refuse a frame you cannot decode (say why, once), and carry on",
        );
        Ok(())
    }

    async fn answers_getb(&mut self) -> Result<(), Stop> {
        let name = "answers-getb";
        let request = GetBlocks {
            locator: vec![self.profile().genesis],
            id: format!("checker-{}", rand::random::<u32>()),
        };
        let sent = "a GETB whose locator names only the genesis: the asker has no block";
        let expected = "a BLOC of its chain from block 0";
        let before = self.peer.from_genesis;
        self.peer.send(&encode_getb(&request)).await.map_err(Stop)?;
        let waited = self
            .peer
            .wait(&mut self.program, self.options.patience, |p| {
                p.from_genesis > before
            })
            .await;
        self.stopped(name, sent, expected, &waited)?;
        let answered = waited == Waited::Done;
        self.record(
            name,
            sent,
            expected,
            if answered {
                "answered from block 0".to_string()
            } else {
                "no answer".to_string()
            },
            if answered { Verdict::Pass } else { Verdict::Fail },
            "answer a GETB with the blocks of your best chain after the first locator hash you know (docs/catch-up.md)",
        );
        Ok(())
    }

    async fn asks_getb(&mut self) -> Result<(), Stop> {
        let name = "asks-getb-for-a-missing-parent";
        let tip_len = self.peer.chain().len();
        let branch = self.outgrow(name, tip_len, Vec::new(), 2).await?;
        let Some(child) = branch.blocks.last().cloned() else {
            return Err(Stop("the checker could not mine".into()));
        };
        let sent = format!(
            "block {} alone, the last of a branch of {} from block {tip_len} it has not seen",
            child.header.this_hash.short(),
            branch.blocks.len()
        );
        let expected = "it asks (GETB), and, given the branch, mines on it";
        let asked_before = self.peer.their_getb;
        let from = self.peer.theirs.len();
        // Sent again every 2 s, as a class's next blocks would come: a node
        // may ask at most so often.
        let orphan = toycoin_common::message::encode_bloc(std::slice::from_ref(&child));
        let deadline = Instant::now() + self.options.patience;
        let mut waited = Waited::TimedOut;
        while Instant::now() < deadline && waited == Waited::TimedOut {
            self.peer.send(&orphan).await.map_err(Stop)?;
            let left = deadline.saturating_duration_since(Instant::now());
            waited = self
                .peer
                .wait(&mut self.program, left.min(ORPHAN_AGAIN), |p| {
                    p.their_getb > asked_before
                })
                .await;
        }
        self.stopped(name, &sent, expected, &waited)?;
        if waited != Waited::Done {
            self.record(
                name,
                sent,
                expected,
                "asked nothing",
                Verdict::Fail,
                "a block whose parent you lack means you missed blocks: send a GETB with your locator",
            );
            return Ok(());
        }
        self.announce(&branch.blocks, &branch.base).await?;
        let tip = branch.tip();
        let (waited, found) = self
            .their_block(from, self.options.patience, |p, h| p.descends(h, &tip))
            .await;
        self.stopped(name, &sent, expected, &waited)?;
        self.record(
            name,
            sent,
            expected,
            match found {
                Some(h) => format!("asked, then mined block {} on the child", h.short()),
                None => "asked, but did not mine on the child once it had the parent".into(),
            },
            if found.is_some() {
                Verdict::Pass
            } else {
                Verdict::Fail
            },
            "keep an orphan until its parent comes, then take both",
        );
        Ok(())
    }
}
