//! `toycoin-check client -- COMMAND ...`: grades a program that sends
//! transactions (a wallet, an oracle). The checker plays the nodes: it
//! mines the program's valid transactions into blocks it announces, so
//! that the program sees its coins confirmed, and judges every `TXN`
//! the program sends against the chain as it stood when it came.

use std::collections::HashMap;
use std::time::Duration;

use tokio::time::Instant;
use toycoin_common::block::Block;
use toycoin_common::chain::{now_secs, Chain};
use toycoin_common::hash::Txid;
use toycoin_common::ledger::OutputView;
use toycoin_common::mempool::Mempool;
use toycoin_common::network::ProfileKind;
use toycoin_common::transaction::{Address, Transaction};
use toycoin_common::wallet::Wallet;

use crate::mining::{next_txns, solve};
use crate::peer::{Peer, Waited};
use crate::program::Program;
use crate::report::{Check, Report, Verdict};
use crate::stage::Stage;

/// How a client is checked.
#[derive(Clone, Debug)]
pub struct ClientOptions {
    pub profile: ProfileKind,
    /// The steady network's target seconds between blocks (the checker's
    /// own blocks come this often).
    pub target_secs: f64,
    /// How long the checker watches the program.
    pub watch: Duration,
    /// Transactions the program must send within `watch`.
    pub least: usize,
    /// The program's command line (`{host}`, `{port}`, `{network}` and
    /// `{mint_key}` filled in).
    pub command: Vec<String>,
}

impl ClientOptions {
    pub fn new(profile: ProfileKind, command: Vec<String>) -> ClientOptions {
        ClientOptions {
            profile,
            target_secs: 2.0,
            watch: Duration::from_secs(60),
            least: 3,
            command,
        }
    }
}

/// Toycoin blocks the checker mines at most: from height 8 a block needs
/// 2^32 hashes.
pub const TOYCOIN_BLOCKS: usize = 7;

/// What the checker saw of the program's transactions.
#[derive(Debug, Default)]
struct Seen {
    count: usize,
    bad_signatures: Vec<String>,
    double_spends: Vec<String>,
    unconfirmed: Vec<String>,
    invalid: Vec<String>,
    /// Which transaction spent each coin first.
    spent_by: HashMap<(Txid, Address), Txid>,
}

/// Watches the program for `options.watch` and grades what it sent.
pub async fn check_client(options: ClientOptions) -> Result<Report, String> {
    let stage = Stage::start(options.profile, options.target_secs).await?;
    let result = watch(&stage, &options).await;
    stage.stop().await;
    result
}

async fn watch(stage: &Stage, options: &ClientOptions) -> Result<Report, String> {
    let toycoin = options.profile == ProfileKind::Toycoin;
    let profile = stage.network.profile();
    let mut peer = stage.connect_peer().await?;
    let args = stage.fill(&options.command);
    let joined_before = stage.joined();
    let mut program = Program::start(&args)?;
    let mut report = Report {
        role: "client".into(),
        profile: options.profile.name().to_owned(),
        program: args.join(" "),
        ..Report::default()
    };
    let me = Wallet::random().map_err(|e| e.to_string())?;
    let mut chain = Chain::new(profile);
    let mut pool = Mempool::new(10_000);
    let mut seen = Seen::default();
    let started = Instant::now();
    let mut last_block = Instant::now();
    let mut ended: Option<String> = None;
    let mut flooded: Option<u64> = None;
    let mut subscribed = false;
    let block_every = Duration::from_secs_f64(options.target_secs.max(0.2));
    while started.elapsed() < options.watch {
        subscribed |= stage.joined() > joined_before;
        match peer
            .wait(&mut program, Duration::from_millis(200), |_| false)
            .await
        {
            Waited::Exited(status) => {
                ended = Some(status);
                break;
            }
            Waited::Flooded(bytes) => {
                flooded = Some(bytes);
                break;
            }
            Waited::Done | Waited::TimedOut => {}
        }
        judge(&mut seen, &peer, &chain, &mut pool, toycoin);
        let due = if toycoin {
            pool.len() >= 2 && chain.len() < TOYCOIN_BLOCKS
        } else {
            last_block.elapsed() >= block_every
        };
        if due {
            let block = mine(
                &chain,
                me.address(),
                pool.select(profile.max_block_txns()),
                toycoin,
            )
            .await?;
            chain
                .push(block.clone(), now_secs())
                .map_err(|e| format!("the checker's own block was refused: {e}"))?;
            let whole: Vec<Block> = chain.blocks().map(std::borrow::Cow::into_owned).collect();
            peer.announce(std::slice::from_ref(&block), &whole).await?;
            pool.rebuild(chain.ledger(), Vec::new());
            last_block = Instant::now();
        }
    }
    judge(&mut seen, &peer, &chain, &mut pool, toycoin);
    // Ending on its own, status 0, when its work is done, is fine.
    let failed_end = ended.filter(|status| !status.contains("status: 0"));
    let watched = format!("{} s", options.watch.as_secs());
    let mut record = |name: &'static str, expected: &str, did: String, ok: bool, hint: &str| {
        report.checks.push(Check {
            name,
            sent: "its blocks: the program's valid transactions mined as they came".into(),
            expected: expected.into(),
            did,
            verdict: if ok { Verdict::Pass } else { Verdict::Fail },
            hint: if ok { String::new() } else { hint.into() },
        })
    };
    record(
        "subscribes",
        "it connects to the relay and subscribes",
        if subscribed {
            "subscribed"
        } else {
            "no subscription"
        }
        .into(),
        subscribed,
        "connect to {host}:{port}, send the topic as the first frame",
    );
    let (sends_ok, sends_did) = match (&failed_end, flooded) {
        (Some(status), _) => (false, format!("the program ended ({status})")),
        (None, Some(bytes)) => (false, format!("it sent {bytes} bytes: a flood")),
        (None, None) => (
            seen.count >= options.least,
            format!("{} TXNs in {watched}", seen.count),
        ),
    };
    record(
        "sends-transfers",
        &format!("at least {} TXNs within {watched}", options.least),
        sends_did,
        sends_ok,
        "send TXN frames: the coins spent and the transaction (docs/toycoin-wire-format.md)",
    );
    record(
        "sends-only-toycoin-messages",
        "every frame it sends decodes",
        format!("{} frames that are no toycoin message", peer.undecodable),
        peer.undecodable == 0,
        "a payload is a 4-byte tag (TXN , BLOC) and JSON",
    );
    let listed = |v: &Vec<String>| {
        if v.is_empty() {
            "none".to_string()
        } else {
            format!(
                "{}: {}",
                v.len(),
                v.iter().take(3).cloned().collect::<Vec<_>>().join("; ")
            )
        }
    };
    record(
        "signs-correctly",
        "both signatures of each transfer verify with its sender's key",
        format!("bad signatures: {}", listed(&seen.bad_signatures)),
        seen.bad_signatures.is_empty(),
        "sign with RSA-PSS, SHA-512, the maximum salt; under steady the message covers the amounts (docs/profiles.md)",
    );
    record(
        "never-double-spends",
        "no coin spent by two of its transactions",
        format!("coins spent twice: {}", listed(&seen.double_spends)),
        seen.double_spends.is_empty(),
        "remember the coins you spent until the chain shows them spent",
    );
    if toycoin {
        record(
            "spends-only-confirmed-coins",
            "each coin it spends is an output of a transaction already in a block (the original's nodes drop any other)",
            format!("spends of unconfirmed coins: {}", listed(&seen.unconfirmed)),
            seen.unconfirmed.is_empty(),
            "pay only with coins of transactions the best chain holds",
        );
    }
    record(
        "sends-valid-transfers",
        &format!("each TXN passes the {} rules when it comes", options.profile),
        format!("refused: {}", listed(&seen.invalid)),
        seen.invalid.is_empty(),
        "check a transfer against the chain before sending it: coins owned, unspent, values adding up",
    );
    if !report.passed() {
        report.output_tail = program.tail().await;
    }
    program.stop().await;
    Ok(report)
}

/// Judges the transactions that came since the last call.
fn judge(seen: &mut Seen, peer: &Peer, chain: &Chain, pool: &mut Mempool, toycoin: bool) {
    let signing = chain.profile().signing();
    for m in &peer.their_transfers[seen.count.min(peer.their_transfers.len())..] {
        let txn = &m.txn;
        let id = txn.hash();
        if !txn.is_coinbase() && toycoin_common::signatures::check_signatures(txn, signing).is_err()
        {
            seen.bad_signatures.push(id.short());
        }
        for token in &m.tokens {
            let coin = (token.txn_hash, token.owner.clone());
            match seen.spent_by.get(&coin) {
                Some(first) if *first != id => seen.double_spends.push(format!(
                    "{} by {} and {}",
                    token.txn_hash.short(),
                    first.short(),
                    id.short()
                )),
                Some(_) => {}
                None => {
                    seen.spent_by.insert(coin, id);
                }
            }
            if toycoin && !chain.ledger().contains_txn(&token.txn_hash) {
                seen.unconfirmed
                    .push(format!("{} spends {}", id.short(), token.txn_hash.short()));
            }
        }
        if let Err(e) = pool.add(chain.ledger(), txn.clone(), Some(&m.tokens)) {
            let e = e.to_string();
            if !e.contains("already pending") && !e.contains("already in the chain") {
                seen.invalid.push(format!("{}: {e}", id.short()));
            }
        }
    }
    seen.count = peer.their_transfers.len();
}

/// The checker's next block on `chain`: its reward and `txns`.
async fn mine(
    chain: &Chain,
    me: &Address,
    txns: Vec<Transaction>,
    toycoin: bool,
) -> Result<Block, String> {
    let all = next_txns(chain, me, txns, toycoin);
    let job = chain
        .mining_job(&all, now_secs())
        .ok_or_else(|| "the checker has no block to mine".to_string())?;
    tokio::task::spawn_blocking(move || solve(&job, all))
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| "the checker's mining stopped".into())
}
