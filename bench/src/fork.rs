//! `fork`: what rewriting history costs. Two honest `toycoin-node`
//! processes (built beside this program, one mining thread each) keep a
//! steady chain on an in-process relay. Each round an attacker here, on one
//! thread, forks the best chain 6 blocks back and mines in secret while the
//! honest nodes add 6 more blocks, stamping its blocks as late as the rules
//! allow (10 minutes ahead) to pull its difficulty down. Per round: the
//! blocks and the work (expected hashes, the sum of 2^bits) each side added
//! since the fork point, whether the attacker's branch had more work, and
//! how many times its hash power it would have needed to overtake.

use std::ffi::OsStr;
use std::process::Stdio;
use std::time::Duration;

use bytes::Bytes;
use tokio::process::Child;
use toycoin_common::chain::{now_secs, Chain};
use toycoin_common::message::Message;
use toycoin_common::pow::{CancelToken, MineOutcome, Miner};
use toycoin_common::profile::{FINAL_CONFIRMATIONS, MAX_FUTURE_SECS};
use toycoin_common::relay::{RelayClient, DEFAULT_TOPIC};
use toycoin_common::tree::BlockTree;

use crate::programs::{quiet_relay, sibling, start_on};

/// Blocks the attacker starts behind, and the honest blocks it races.
const BACK: usize = FINAL_CONFIRMATIONS;
/// Fewest blocks before the first race (the fork point is `BACK` back).
pub const MIN_WARM: usize = BACK + 1;

/// Follows the best chain on the relay until it has `len` blocks.
async fn until_len(
    watcher: &mut RelayClient,
    tree: &mut BlockTree,
    len: usize,
    limit: Duration,
) -> Result<(), String> {
    let deadline = tokio::time::Instant::now() + limit;
    while tree.chain().len() < len {
        let frame = tokio::time::timeout_at(deadline, watcher.recv())
            .await
            .map_err(|_| format!("the honest chain did not reach {len} blocks in {limit:?}"))?
            .map_err(|e| e.to_string())?
            .ok_or("the relay closed")?;
        if let Ok(Message::Bloc(blocks)) = Message::decode(&frame) {
            let _ = tree.receive(blocks, now_secs());
        }
    }
    Ok(())
}

/// What the attacker did in one round.
struct Secret {
    blocks: usize,
    work: u128,
    hashes: u64,
    bits: Vec<u32>,
}

/// Mines on `chain` on this thread until `cancel`, each block stamped
/// as late as a node would take it.
fn mine_in_secret(mut chain: Chain, cancel: CancelToken) -> Secret {
    let start_work = chain.total_work();
    let (mut blocks, mut hashes, mut bits) = (0, 0, Vec::new());
    let miner = Miner::new(1);
    loop {
        let txns = chain.block_txns(&Bytes::from_static(b"attacker"), Vec::new());
        let stamp = now_secs() + MAX_FUTURE_SECS - 5;
        let Some(job) = chain.mining_job(&txns, stamp) else {
            break;
        };
        let report = miner.mine(&job, &cancel);
        hashes += report.attempts;
        let MineOutcome::Found(header) = report.outcome else {
            break;
        };
        let block = toycoin_common::block::Block {
            header: *header,
            txns,
        };
        if chain.push(block, now_secs()).is_err() {
            break;
        }
        blocks += 1;
        bits.push(job.required_bits);
    }
    Secret {
        blocks,
        work: chain.total_work() - start_work,
        hashes,
        bits,
    }
}

fn node(
    program: &std::path::Path,
    port: u16,
    dir: &std::path::Path,
    i: usize,
) -> Result<Child, String> {
    let (name, wallet) = (format!("honest{i}"), dir.join(format!("honest{i}.pem")));
    let args: [&OsStr; 7] = [
        "-q".as_ref(),
        "--threads".as_ref(),
        "1".as_ref(),
        "--name".as_ref(),
        name.as_ref(),
        "--wallet".as_ref(),
        wallet.as_os_str(),
    ];
    start_on(program, port, args, Stdio::null(), Stdio::null())
}

pub async fn run(rounds: usize, target: f64, warm: usize) -> Result<Vec<String>, String> {
    let node_bin = sibling("toycoin-node")?;
    let relay = quiet_relay(toycoin_common::network::Network::steady(target, None)).await?;
    let dir = std::env::temp_dir().join(format!("toycoin-fork-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let result = races(&node_bin, &relay, &dir, rounds, target, warm).await;
    relay.stop().await.map_err(|e| e.to_string())?;
    let _ = std::fs::remove_dir_all(&dir);
    result
}

async fn races(
    node_bin: &std::path::Path,
    relay: &toycoin_relay::local::LocalRelay,
    dir: &std::path::Path,
    rounds: usize,
    target: f64,
    warm: usize,
) -> Result<Vec<String>, String> {
    let profile = toycoin_common::network::Network::steady(target, None).profile();
    let port = relay.addr.port();
    let mut watcher = RelayClient::connect(relay.addr, DEFAULT_TOPIC)
        .await
        .map_err(|e| e.to_string())?;
    let mut children = Vec::new();
    for i in 1..=2 {
        children.push(node(node_bin, port, dir, i)?);
    }
    let mut tree = BlockTree::new(profile);
    let limit = Duration::from_secs_f64(target * 40.0 + 60.0);
    eprintln!(
        "fork: waiting for the honest chain to reach {warm} blocks (the difficulty settling)..."
    );
    until_len(&mut watcher, &mut tree, warm, limit * 4).await?;
    println!("\n== fork: an attacker on 1 thread, {BACK} blocks back, against 2 honest nodes on 1 thread each (target {target} s) ==");
    println!(
        "{:>6} {:>7} {:>9} {:>8} {:>9} {:>10} {:>9} {:>8}",
        "round", "fork at", "attacker", "honest", "attacker", "work ratio", "needed", "overtook"
    );
    println!(
        "{:>6} {:>7} {:>9} {:>8} {:>9} {:>10} {:>9} {:>8}",
        "", "height", "blocks", "blocks", "bits", "att/hon", "x power", ""
    );
    let (mut overtook, mut needed) = (0, Vec::new());
    for round in 1..=rounds {
        let len = tree.chain().len();
        let fork = len - BACK;
        let blocks: Vec<_> = tree
            .chain()
            .blocks()
            .take(fork)
            .map(std::borrow::Cow::into_owned)
            .collect();
        let secret = Chain::from_blocks(profile, blocks, now_secs()).map_err(|e| e.to_string())?;
        let cancel = CancelToken::new();
        let attacker = std::thread::spawn({
            let cancel = cancel.clone();
            move || mine_in_secret(secret, cancel)
        });
        let raced = until_len(&mut watcher, &mut tree, len + BACK, limit).await;
        cancel.cancel();
        let secret = attacker.join().map_err(|_| "the attacker panicked")?;
        raced?;
        let honest_work = tree.chain().total_work() - tree.chain().state_at(fork).0;
        let won = secret.work > honest_work;
        overtook += usize::from(won);
        // Work is expected hashes: the attacker would have needed this
        // many times the hashes it did.
        let factor = honest_work as f64 / secret.hashes.max(1) as f64;
        needed.push(factor);
        let bits = match (secret.bits.iter().min(), secret.bits.iter().max()) {
            (Some(lo), Some(hi)) if lo == hi => lo.to_string(),
            (Some(lo), Some(hi)) => format!("{lo}-{hi}"),
            _ => "-".to_owned(),
        };
        println!(
            "{round:>6} {fork:>7} {:>9} {:>8} {bits:>9} {:>10.2} {factor:>9.2} {:>8}",
            secret.blocks,
            tree.chain().len() - fork,
            secret.work as f64 / honest_work.max(1) as f64,
            if won { "YES" } else { "no" }
        );
    }
    for mut child in children {
        let _ = child.kill().await;
    }
    needed.sort_by(f64::total_cmp);
    let median = needed.get(needed.len() / 2).copied().unwrap_or(0.0);
    println!(
        "overtook in {overtook} of {rounds} rounds; to overtake, the attacker needed {median:.2}x its hash power (median)"
    );
    Ok(vec![
        format!("fork_rounds={rounds}"),
        format!("fork_overtook={overtook}"),
        format!("fork_needed_power_x={median:.2}"),
    ])
}
