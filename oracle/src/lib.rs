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

mod confirmations;
mod faucet;
mod mint;
mod pbft_client;
mod transfers;

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
    /// The transaction and the tokens it spends, encoded again when it is
    /// re-sent: the encoded `TXN` (base64 in JSON, the addresses and
    /// signatures of every token) is some four times what they hold, and
    /// a busy class has hundreds sent and not yet deep enough to forget,
    /// more as its blocks grow (issue 34).
    message: TxnMessage,
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
        Minting::RewardsAndMint => match mint::load_mint(&config, &mut rng) {
            Ok(mint) => Some(mint),
            Err(e) => {
                error!("toycoin-oracle: {e}");
                return 2;
            }
        },
    };
    let mut session = SessionConfig::new(config.relay.clone(), config.profile, config.name.clone());
    session.topic = config.topic.clone();
    // Named at the relay with the mint's key, which only the teacher has:
    // `toycoin-ctl status` shows it, and a partition can name it.
    if let Some(mint) = &mint {
        if toycoin_common::control::check_name(&config.name).is_ok() {
            session.hello = Some(config.name.clone());
            session.hello_key = Some(mint.clone());
        }
    }
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
}
