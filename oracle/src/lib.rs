//! toycoin-oracle: the source of truth. It makes wallets, funds them with
//! coinbase transactions, sends random transfers between them (as the
//! original), and, unlike the original, follows the best chain: it reports
//! each transaction's confirmation, re-sends what a node dropped, and checks
//! the chain's balances against what it knows they must be.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::time::{sleep_until, Instant};
use toycoin_common::chain::{now_secs, Chain};
use toycoin_common::hash::Txid;
use toycoin_common::ledger::Ledger;
use toycoin_common::log::TRAFFIC;
use toycoin_common::message::{encode_txn, TxnMessage};
use toycoin_common::pbft::{Membership, Msg, Seen, SignedWire, Tally};
use toycoin_common::profile::Profile;
use toycoin_common::profile::{Minting, FINAL_CONFIRMATIONS};
use toycoin_common::session::{
    BlocReport, Session, SessionConfig, SessionEvent, BACKOFF, DEFAULT_TOPIC, MAX_BACKOFF,
};
use toycoin_common::spv::{self, SpvMsg};
use toycoin_common::transaction::{Token, Transaction};
use toycoin_common::tree::Received;
use toycoin_common::wallet::{self, fingerprint, Wallet};
use tracing::{error, info, warn};

mod faucet;

pub use faucet::{FAUCET_MEMORY, FAUCET_PERIOD, FAUCET_PER_MINUTE, FAUCET_PER_SEC, FAUCET_TOTAL};

/// What the first four wallets are funded with, as the original.
pub const FUNDING: [i64; 4] = [100, 50, 25, 10];

/// How an oracle runs.
#[derive(Clone, Debug)]
pub struct OracleConfig {
    pub name: String,
    /// `host:port` of the relay.
    pub relay: String,
    pub topic: String,
    pub profile: Profile,
    pub wallets: usize,
    /// Seconds between transfers: uniformly random in this range.
    pub min_interval: f64,
    pub max_interval: f64,
    /// Stop after this many transfers, once all are confirmed.
    pub count: Option<u64>,
    /// Same seed, same wallets and transfers.
    pub seed: Option<u64>,
    /// Re-send a transaction not in the best chain after this many new
    /// blocks...
    pub resend_blocks: usize,
    /// ... or this many seconds.
    pub resend_secs: f64,
    /// With `count`: give up this many seconds after the last transfer.
    pub confirm_timeout: f64,
    /// First reconnect delay; doubles up to `max_backoff`.
    pub backoff: Duration,
    pub max_backoff: Duration,
    /// The key file of the network's mint (steady), created on first use.
    /// `None`: a new mint key for this run only.
    pub mint_key: Option<PathBuf>,
    /// A directory of the wallets' key files (`wallet-0.pem`, ...), each
    /// created on first use: the same wallets, and fingerprints, run after
    /// run (`seed` then picks only the transfers). `None`: new wallets for
    /// this run (from `seed` when given).
    pub wallet_keys: Option<PathBuf>,
    /// pBFT (`--consensus pbft`): the replicas. A transaction is final
    /// when f+1 of them reply that they applied it.
    pub pbft: Option<Arc<Membership>>,
    /// The faucet (`--faucet N`): coins the mint grants a light wallet
    /// that asks, once per address per [`FAUCET_PERIOD`]; 0: no faucet.
    pub faucet: i64,
    /// The faucet's coins for the whole class (`--faucet-total`).
    pub faucet_total: i64,
}

/// Blocks above a transaction's before the oracle forgets it (proof of
/// work): final at 6, and four times that is deeper than a lesson's
/// private fork goes (a deeper reorganisation would take back a payment
/// the oracle no longer watches). Before issue 34 every transaction sent
/// was kept for the oracle's life, its frame included: in a busy class's
/// soak, 1,500 of them after 100 blocks.
pub const FORGET_DEPTH: usize = 24;

impl OracleConfig {
    pub fn new(relay: impl Into<String>, profile: Profile) -> OracleConfig {
        OracleConfig {
            name: uuid::Uuid::new_v4().simple().to_string()[..8].to_owned(),
            relay: relay.into(),
            topic: DEFAULT_TOPIC.to_owned(),
            profile,
            wallets: 4,
            min_interval: 3.0,
            max_interval: 10.0,
            count: None,
            seed: None,
            resend_blocks: 3,
            resend_secs: 30.0,
            confirm_timeout: 120.0,
            backoff: BACKOFF,
            max_backoff: MAX_BACKOFF,
            mint_key: None,
            wallet_keys: None,
            pbft: None,
            faucet: 0,
            faucet_total: FAUCET_TOTAL,
        }
    }
}

/// The funding of wallet `i`: the original's 100, 50, 25, 10, then 10 each.
pub fn funding(i: usize) -> i64 {
    FUNDING.get(i).copied().unwrap_or(10)
}

/// A transaction the oracle sent, and what became of it.
struct Sent {
    hash: Txid,
    label: String,
    payload: Bytes,
    last_sent: Instant,
    /// The Unix time it was last sent: a block stamped later was begun
    /// after it (a node stamps a block when it starts mining it).
    sent_at: u64,
    /// Height of the block holding it on the best chain.
    confirmed: Option<usize>,
    /// Confirmations last reported (up to [`FINAL_CONFIRMATIONS`]).
    reported: usize,
    /// Blocks with room for it that left it out, since it was last sent.
    missed: usize,
    /// A reorganisation took back the block that held it.
    lost: bool,
    /// pBFT: when it was first sent, and the `PBFT` frames heard by then.
    first_sent: Instant,
    frames_before: u64,
}

struct Oracle {
    config: OracleConfig,
    rng: StdRng,
    wallets: Vec<Wallet>,
    /// The network's mint, where the profile has one.
    mint: Option<Wallet>,
    truth: Ledger,
    /// pBFT: the replicas' replies counted, and the oracle's transactions
    /// they made final applied in order (what the network agreed on).
    tally: Option<Tally>,
    /// pBFT: the `PBFT` frames heard so far.
    pbft_frames: u64,
    agreed: Ledger,
    /// Final transactions not yet applied to `agreed` (a later batch's
    /// replies came first).
    deferred: Vec<Transaction>,
    session: Session,
    /// The transactions sent and not yet forgotten ([`FORGET_DEPTH`]).
    sent: Vec<Sent>,
    /// Transactions sent, final, and forgotten: a lesson's memory stays
    /// flat however many transfers it makes.
    forgotten: usize,
    /// The transactions sent, by hash (pBFT applies them once final).
    sent_txns: HashMap<Txid, Transaction>,
    /// When the faucet last granted each address.
    faucet_given: HashMap<Bytes, Instant>,
    /// Coins the faucet granted so far (at most `faucet_total`).
    faucet_granted: i64,
    transfers: u64,
    shutdown: Option<std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>>,
}

/// Runs the oracle until Ctrl-C (exit code 0) or, with `count`, until every
/// transfer is confirmed (0) or the confirmation timeout passes (1).
pub async fn run(config: OracleConfig) -> i32 {
    let shutdown = Box::pin(toycoin_common::signal::shutdown_signal());
    info!(
        "Starting up {}: Oracle ({} wallets, profile {}, {}), relay {} topic {}",
        config.name,
        config.wallets,
        config.profile.kind,
        match &config.pbft {
            Some(m) => format!(
                "pBFT client of {} replicas: final on f+1 = {} matching replies",
                m.n(),
                m.weak()
            ),
            None => "proof of work".to_owned(),
        },
        config.relay,
        config.topic
    );
    let mut rng = match config.seed {
        Some(seed) => StdRng::seed_from_u64(seed),
        None => StdRng::from_entropy(),
    };
    match &config.wallet_keys {
        Some(dir) => {
            info!(
                "Wallets: {} keys in {} (created on first use)",
                config.wallets,
                dir.display()
            );
            if let Err(e) = wallet::create_private_dir(dir) {
                error!("toycoin-oracle: cannot create {}: {e}", dir.display());
                return 2;
            }
        }
        None => info!("Creating {} wallets (RSA-2048 keys)...", config.wallets),
    }
    let mut wallets = Vec::new();
    for i in 0..config.wallets {
        match make_wallet(&config, i, &mut rng) {
            Ok(w) => wallets.push(w),
            Err(e) => {
                error!("toycoin-oracle: cannot create a wallet: {e}");
                return 2;
            }
        }
    }
    let mint = match config.profile.minting() {
        Minting::AnyCoinbase => None,
        Minting::RewardsAndMint => match load_mint(&config, &mut rng) {
            Ok(mint) => Some(mint),
            Err(e) => {
                error!("toycoin-oracle: {e}");
                return 2;
            }
        },
    };
    let mut session = SessionConfig::new(config.relay.clone(), config.profile, config.name.clone());
    session.topic = config.topic.clone();
    session.backoff = config.backoff;
    session.max_backoff = config.max_backoff;
    let config_profile = config.profile;
    let tally = config.pbft.clone().map(|m| Tally::new(Some(m)));
    let mut oracle = Oracle {
        session: Session::start(session),
        config,
        rng,
        wallets,
        mint,
        truth: Ledger::new(config_profile),
        tally,
        pbft_frames: 0,
        agreed: Ledger::new(config_profile),
        deferred: Vec::new(),
        sent: Vec::new(),
        forgotten: 0,
        sent_txns: HashMap::new(),
        faucet_given: HashMap::new(),
        faucet_granted: 0,
        transfers: 0,
        shutdown: Some(shutdown),
    };
    oracle.main_loop().await
}

/// Wallet `i`: from its key file when there is a key directory (the file
/// created on first use), else new.
fn make_wallet(config: &OracleConfig, i: usize, rng: &mut StdRng) -> Result<Wallet, String> {
    let Some(dir) = &config.wallet_keys else {
        return new_wallet(config.seed.is_some(), rng).map_err(|e| e.to_string());
    };
    Wallet::load_or_create(&dir.join(format!("wallet-{i}.pem")))
        .map(|(w, _)| w)
        .map_err(|e| e.to_string())
}

/// A new wallet: from `rng` when the run is seeded (the same keys every
/// time), else from the system's randomness by the faster generator.
fn new_wallet(
    seeded: bool,
    rng: &mut StdRng,
) -> Result<Wallet, toycoin_common::wallet::SignatureError> {
    if seeded {
        Wallet::generate(rng)
    } else {
        Wallet::random()
    }
}

/// The mint's wallet: from its key file (created on first use), or new for
/// this run only.
fn load_mint(config: &OracleConfig, rng: &mut StdRng) -> Result<Wallet, String> {
    let mint = match &config.mint_key {
        Some(path) => {
            let (wallet, created) = Wallet::load_or_create(path).map_err(|e| e.to_string())?;
            let how = if created {
                "new key saved in"
            } else {
                "key from"
            };
            info!(
                "Mint: wallet {} ({how} {})",
                wallet.fingerprint(),
                path.display()
            );
            wallet
        }
        None => {
            let wallet = new_wallet(config.seed.is_some(), rng).map_err(|e| e.to_string())?;
            info!(
                "Mint: wallet {} (a new key for this run only)",
                wallet.fingerprint()
            );
            wallet
        }
    };
    let ours = toycoin_common::hash::Hash::of(mint.address());
    match config.profile.mint {
        Some(theirs) if theirs == ours => Ok(mint),
        Some(theirs) => Err(format!(
            "the network's mint is wallet {}, not this oracle's {}: give the oracle the network's --mint-key (the file the relay or the demo made)",
            toycoin_common::wallet::fingerprint_of(&theirs),
            mint.fingerprint()
        )),
        None => Err("this network has no mint: nobody can grant coins on it".into()),
    }
}

impl Oracle {
    fn next_interval(&mut self) -> Duration {
        let (lo, hi) = (self.config.min_interval, self.config.max_interval);
        let secs = if hi > lo {
            self.rng.gen_range(lo..=hi)
        } else {
            lo
        };
        Duration::from_secs_f64(secs.max(0.0))
    }

    async fn main_loop(&mut self) -> i32 {
        let ctrl_c = self
            .shutdown
            .take()
            .unwrap_or_else(|| Box::pin(std::future::pending()));
        tokio::pin!(ctrl_c);
        // Wait for the relay before funding, so the funding goes out first.
        loop {
            let event = tokio::select! {
                _ = &mut ctrl_c => return 0,
                event = self.session.next() => event,
            };
            match event {
                Some(SessionEvent::Connected { .. }) => {
                    self.on_event(event);
                    break;
                }
                Some(_) => self.on_event(event),
                None => return 1,
            }
        }
        for i in 0..self.wallets.len() {
            let receiver = self.wallets[i].address().clone();
            let txn = match &self.mint {
                None => Transaction::coinbase(receiver, funding(i)),
                Some(mint) => match mint.grant(&mut self.rng, &receiver, funding(i)) {
                    Ok(txn) => txn,
                    Err(e) => {
                        error!("toycoin-oracle: cannot sign a grant: {e}");
                        return 2;
                    }
                },
            };
            self.send(
                format!("funding of wallet {i}"),
                TxnMessage {
                    tokens: Vec::new(),
                    txn,
                },
            );
            info!(
                "Funding wallet {i} ({}) with {}",
                self.wallets[i].fingerprint(),
                funding(i)
            );
        }
        let mut next_transfer = Instant::now() + self.next_interval();
        let mut deadline: Option<Instant> = None;
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        loop {
            let more = self.more_to_send();
            tokio::select! {
                _ = &mut ctrl_c => {
                    info!("Stopping: {}", self.status());
                    return 0;
                }
                event = self.session.next() => {
                    if event.is_none() {
                        return 1;
                    }
                    self.on_event(event);
                }
                _ = sleep_until(next_transfer), if more => {
                    self.transfer();
                    next_transfer = Instant::now() + self.next_interval();
                    if !self.more_to_send() {
                        deadline = Some(Instant::now() + Duration::from_secs_f64(self.config.confirm_timeout.max(0.0)));
                    }
                }
                _ = tick.tick() => self.resend_lost(),
            }
            if let Some(deadline) = deadline {
                if self.unconfirmed() == 0 && self.balances_agree() {
                    info!(
                        "Done: all {} transactions confirmed and the chain's balances agree: {:?}",
                        self.forgotten + self.sent.len(),
                        self.truth_balances()
                    );
                    return 0;
                }
                if Instant::now() >= deadline {
                    warn!(
                        "!!! Gave up after {} s: {}",
                        self.config.confirm_timeout,
                        self.status()
                    );
                    for s in self.sent.iter().filter(|s| s.confirmed.is_none()) {
                        warn!("!!!   not confirmed: {} (txn {})", s.label, s.hash.short());
                    }
                    return 1;
                }
            }
        }
    }

    fn send(&mut self, label: String, m: TxnMessage) {
        if let Err(e) = self.truth.apply_txns(std::slice::from_ref(&m.txn)) {
            error!("!!! BUG: the oracle made an invalid transaction: {e}");
            return;
        }
        let payload = encode_txn(&m.tokens, &m.txn);
        if self.tally.is_some() {
            self.sent_txns.insert(m.txn.hash(), m.txn.clone());
        }
        self.sent.push(Sent {
            hash: m.txn.hash(),
            label,
            payload: payload.clone(),
            last_sent: Instant::now(),
            sent_at: now_secs(),
            confirmed: None,
            reported: 0,
            missed: 0,
            lost: false,
            first_sent: Instant::now(),
            frames_before: self.pbft_frames,
        });
        self.session.publish(payload);
    }

    fn more_to_send(&self) -> bool {
        self.config.count.map_or(true, |n| self.transfers < n)
    }

    fn truth_balances(&self) -> Vec<i64> {
        self.balances_in(&self.truth)
    }

    fn chain_balances(&self) -> Vec<i64> {
        match &self.tally {
            Some(_) => self.balances_in(&self.agreed),
            None => self.balances_in(self.session.tree().chain().ledger()),
        }
    }

    /// Each wallet's balance in `ledger`, from one pass over its outputs
    /// (`Ledger::balances`), not one per wallet.
    fn balances_in(&self, ledger: &Ledger) -> Vec<i64> {
        let all = ledger.balances();
        self.wallets
            .iter()
            .map(|w| all.get(w.address()).copied().unwrap_or(0))
            .collect()
    }

    fn balances_agree(&self) -> bool {
        self.truth_balances() == self.chain_balances()
    }

    fn unconfirmed(&self) -> usize {
        self.sent.iter().filter(|s| s.confirmed.is_none()).count()
    }

    fn status(&self) -> String {
        format!(
            "{} transfers sent, {} of {} transactions confirmed",
            self.transfers,
            self.forgotten + self.sent.len() - self.unconfirmed(),
            self.forgotten + self.sent.len()
        )
    }

    /// The tokens each wallet can pay with, in the order it pays with them.
    /// Where the network's nodes take spends of pending outputs (steady),
    /// every unspent output. Otherwise as the original's wallet: only
    /// outputs already in the best chain (the Python nodes drop a
    /// transaction with any other input for good), oldest first. One pass
    /// over each ledger for all wallets.
    fn spendable(&self) -> Vec<Vec<Token>> {
        let owners: Vec<&[u8]> = self.wallets.iter().map(|w| &w.address()[..]).collect();
        let mut spendable = self.truth.unspent_of(&owners);
        if self.config.profile.pays_with_pending_outputs() {
            for tokens in &mut spendable {
                tokens.sort_by_key(|t| (t.txn_hash, t.value));
            }
            return spendable;
        }
        let chain = self.session.tree().chain();
        let mut age: HashMap<Txid, usize> = HashMap::new();
        for txn in chain.blocks().flat_map(|b| &b.txns) {
            let next = age.len();
            age.entry(txn.hash()).or_insert(next);
        }
        let confirmed = chain.ledger().unspent_of(&owners);
        for (tokens, confirmed) in spendable.iter_mut().zip(confirmed) {
            let confirmed: HashSet<Token> = confirmed.into_iter().collect();
            tokens.retain(|t| confirmed.contains(t));
            tokens.sort_by_key(|t| (age.get(&t.txn_hash).copied().unwrap_or(usize::MAX), t.value));
        }
        spendable
    }

    fn transfer(&mut self) {
        let before = self.truth_balances();
        let spendable = self.spendable();
        let can_pay = |i: usize| spendable[i].iter().map(|t| t.value).sum::<i64>();
        let senders: Vec<usize> = (0..self.wallets.len())
            .filter(|&i| can_pay(i) >= 5)
            .collect();
        if senders.is_empty() || self.wallets.len() < 2 {
            warn!("No wallet has 5 coins to send; waiting");
            return;
        }
        let from = senders[self.rng.gen_range(0..senders.len())];
        let mut to = self.rng.gen_range(0..self.wallets.len() - 1);
        if to >= from {
            to += 1;
        }
        let value = self.rng.gen_range(5..=15).min(can_pay(from));
        let mut tokens = spendable[from].clone();
        if !self.config.profile.pays_with_pending_outputs() {
            // As many as needed, as the original's wallet.
            tokens = wallet::tokens_to_pay(tokens, value);
        }
        let receiver = self.wallets[to].address().clone();
        let signing = self.config.profile.signing();
        let m = match self.wallets[from].transfer(&mut self.rng, &receiver, value, tokens, signing)
        {
            Ok(m) => m,
            Err(e) => {
                warn!("!!! cannot make a transfer: {e}");
                return;
            }
        };
        self.transfers += 1;
        info!(
            "Sending from wallet {from} ({}) to {to} ({}): {value}",
            self.wallets[from].fingerprint(),
            self.wallets[to].fingerprint()
        );
        info!(target: TRAFFIC, "  balances before: {before:?}");
        self.send(
            format!(
                "transfer {} (wallet {from} -> {to}: {value})",
                self.transfers
            ),
            m,
        );
        info!(target: TRAFFIC, "  balances after:  {:?}", self.truth_balances());
    }

    fn on_event(&mut self, event: Option<SessionEvent>) {
        match event {
            Some(SessionEvent::Connected { relay, .. }) => info!("Connected to relay {relay}"),
            Some(SessionEvent::Lost { reason, retry_in }) => warn!(
                "Relay: {reason}; retrying in {:.1} s",
                retry_in.as_secs_f64()
            ),
            Some(SessionEvent::Bloc(report)) if self.tally.is_none() => self.on_bloc(report),
            Some(SessionEvent::Pbft(payload)) => self.on_pbft(&payload),
            Some(SessionEvent::Spv(payload)) => self.on_faucet(&payload),
            Some(SessionEvent::Undecodable { bytes, reason, .. }) => {
                warn!(
                    source = "undecodable",
                    "Ignored a frame of {bytes} bytes: {reason}"
                );
            }
            Some(SessionEvent::Unsent { bytes }) => {
                warn!(
                    "Relay: a frame of {bytes} bytes was not sent (the queue to the relay is full)"
                );
            }
            // Our own TXNs come back; others' TXNs and GETBs are not ours
            // to act on.
            _ => {}
        }
    }

    fn on_bloc(&mut self, report: BlocReport) {
        match report.result {
            Ok(Received::Adopted(adopted)) => {
                if adopted.is_reorganization() {
                    info!(
                        "Best chain switched at height {} ({} blocks rolled back)",
                        adopted.fork_height,
                        adopted.rolled_back.len()
                    );
                }
                self.update_confirmations(adopted.fork_height);
            }
            Ok(_) => {}
            Err(e) => warn!(
                source = "bloc-rejected",
                "Ignored an invalid BLOC: block {}: {}", e.index, e.error
            ),
        }
    }

    /// A pBFT frame: with f+1 matching replies for a batch, the oracle's
    /// transactions it applied are final.
    fn on_pbft(&mut self, payload: &[u8]) {
        let Some(tally) = &mut self.tally else {
            return;
        };
        self.pbft_frames += 1;
        // Only replies are the client's: the replicas' votes among
        // themselves are counted, not checked (a signature each).
        let is_reply = SignedWire::decode(payload)
            .and_then(|w| w.open())
            .is_ok_and(|(_, m)| matches!(m, Msg::Reply { .. }));
        if !is_reply {
            return;
        }
        let (seq, txns) = match tally.on_payload(payload) {
            Ok(Seen::Final { seq, txns, .. }) => (seq, txns),
            Ok(_) => return,
            Err(e) => {
                warn!(source = "pbft-refused", "Ignored a pBFT message: {e}");
                return;
            }
        };
        let (frames, weak) = (self.pbft_frames, tally.members().map_or(1, |m| m.weak()));
        let final_txns: HashSet<Txid> = txns.into_iter().collect();
        for i in 0..self.sent.len() {
            let s = &mut self.sent[i];
            if s.confirmed.is_some() || !final_txns.contains(&s.hash) {
                continue;
            }
            s.confirmed = Some(seq as usize);
            s.reported = FINAL_CONFIRMATIONS;
            info!(
                "Final: {} in pBFT batch {seq} after {:.2} s ({} pBFT messages; f+1 = {weak} replies)",
                s.label,
                s.first_sent.elapsed().as_secs_f64(),
                frames - s.frames_before
            );
            let hash = s.hash;
            if let Some(txn) = self.truth_txn(&hash) {
                self.deferred.push(txn);
            }
        }
        // Final in pBFT is final for good: nothing to watch any more.
        self.forget(|s| s.confirmed.is_some());
        // Apply in order what now can be (a later batch's replies may come
        // before an earlier one's).
        loop {
            let before = self.deferred.len();
            let agreed = &mut self.agreed;
            self.deferred
                .retain(|t| agreed.apply_txns(std::slice::from_ref(t)).is_err());
            if self.deferred.len() == before {
                break;
            }
        }
        if self.unconfirmed() == 0 {
            let (agreed, truth) = (self.chain_balances(), self.truth_balances());
            if agreed == truth {
                info!("Balances agree: the replicas applied {agreed:?}, as the oracle knows");
            } else {
                warn!("!!! BALANCES DISAGREE: the replicas applied {agreed:?} but the oracle knows {truth:?} !!!");
            }
        }
    }

    /// Forgets the transactions sent that `done` says need no more
    /// watching (counted in `forgotten`).
    fn forget(&mut self, done: impl Fn(&Sent) -> bool) {
        let before = self.sent.len();
        let sent_txns = &mut self.sent_txns;
        self.sent.retain(|s| {
            let keep = !done(s);
            if !keep {
                sent_txns.remove(&s.hash);
            }
            keep
        });
        self.forgotten += before - self.sent.len();
    }

    /// One of the oracle's own transactions, by hash.
    fn truth_txn(&self, hash: &Txid) -> Option<Transaction> {
        self.sent_txns.get(hash).cloned()
    }

    /// After the best chain changed from `fork_height` up: blocks below it
    /// are as they were, so only the new ones are looked through.
    fn update_confirmations(&mut self, fork_height: usize) {
        let chain: &Chain = self.session.tree().chain();
        let mut heights: HashMap<Txid, usize> = HashMap::new();
        let new_blocks = &chain.entries()[fork_height.min(chain.len())..];
        for (offset, entry) in new_blocks.iter().enumerate() {
            for txn in &entry.block.txns {
                heights.entry(txn.hash()).or_insert(fork_height + offset);
            }
        }
        let tip_height = chain.len().saturating_sub(1);
        // New blocks that had room for more transactions (their timestamps).
        let with_room: Vec<u64> = new_blocks
            .iter()
            .filter(|e| chain.had_room(&e.block))
            .filter_map(|e| e.block.header.timestamp_secs())
            .collect();
        for s in &mut self.sent {
            let now = if s.confirmed.is_some_and(|h| h < fork_height) {
                s.confirmed
            } else {
                heights.get(&s.hash).copied()
            };
            if let (Some(_), None) = (s.confirmed, now) {
                warn!(
                    "No longer in the best chain: {} (sending it again)",
                    s.label
                );
                s.reported = 0;
                s.lost = true;
            }
            if now.is_none() {
                s.missed += with_room
                    .iter()
                    // Begun after it was sent (a second's grace for clocks).
                    .filter(|&&stamped| stamped > s.sent_at + 1)
                    .count();
            }
            s.confirmed = now;
            let Some(h) = now else { continue };
            // Confirmations as blocks bury it: each step up to final.
            let n = (tip_height + 1 - h).min(FINAL_CONFIRMATIONS);
            if n <= s.reported {
                continue;
            }
            let first = s.reported == 0;
            s.reported = n;
            let plural = if n == 1 { "" } else { "s" };
            if first {
                info!(
                    "Confirmed: {} in block {h} ({n} confirmation{plural})",
                    s.label
                );
            } else if n < FINAL_CONFIRMATIONS {
                info!(target: TRAFFIC, "  {} in block {h}: {n} confirmation{plural}", s.label);
            }
            if n == FINAL_CONFIRMATIONS {
                info!(
                    "Final: {} in block {h} ({n} confirmations: as final as proof of work gets)",
                    s.label
                );
            }
        }
        // Buried deeper than any reorganisation a class will see.
        self.forget(|s| {
            s.confirmed
                .is_some_and(|h| tip_height.saturating_sub(h) >= FORGET_DEPTH)
        });
        let (chain_b, truth_b) = (self.chain_balances(), self.truth_balances());
        let pending = self.unconfirmed();
        if pending > 0 {
            info!(target: TRAFFIC, "Chain balances {chain_b:?}; {pending} transactions still to be confirmed (then {truth_b:?})");
        } else if chain_b == truth_b {
            info!("Balances agree: the chain says {chain_b:?}, as the oracle knows");
        } else {
            warn!("!!! BALANCES DISAGREE: the chain says {chain_b:?} but the oracle knows {truth_b:?} !!!");
        }
    }

    /// Re-sends, in their order, only the transactions that may really be
    /// lost: taken back by a reorganisation, left out of `resend_blocks`
    /// blocks that had room for them (the nodes may never have got them),
    /// or not confirmed after `resend_secs` seconds (no block at all). A
    /// transaction the nodes hold and will mine is not sent again.
    fn resend_lost(&mut self) {
        let after = Duration::from_secs_f64(self.config.resend_secs.max(0.1));
        let blocks = self.config.resend_blocks.max(1);
        let due: Vec<usize> = (0..self.sent.len())
            .filter(|&i| {
                let s = &self.sent[i];
                s.confirmed.is_none()
                    && (s.lost || s.missed >= blocks || s.last_sent.elapsed() >= after)
            })
            .collect();
        if due.is_empty() {
            return;
        }
        info!(
            "Re-sending {} transactions: taken back by a reorganisation, left out of {blocks} blocks with room, or not confirmed in {} s",
            due.len(),
            self.config.resend_secs
        );
        for i in due {
            let sent = &mut self.sent[i];
            sent.last_sent = Instant::now();
            sent.sent_at = now_secs();
            sent.missed = 0;
            sent.lost = false;
            info!(target: TRAFFIC, "  re-sending {}", sent.label);
            let payload = sent.payload.clone();
            self.session.publish(payload);
        }
    }
}
