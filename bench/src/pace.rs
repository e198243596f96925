//! `pace`: a network under a class's load. Two nodes (the `toycoin-node`
//! built beside this program) and an oracle sending `rate` transfers a
//! second between 60 wallets, for `secs` seconds, on an in-process relay.
//! Prints the transfers sent and confirmed and the backlog every 10 s, and
//! the best chain's mean block interval and required bits per difficulty
//! epoch (from a cold start).

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use toycoin_common::chain::now_secs;
use toycoin_common::message::Message;
use toycoin_common::profile::{Profile, EPOCH_BLOCKS, MEDIAN_SPAN};
use toycoin_common::relay::{RelayClient, DEFAULT_TOPIC};
use toycoin_common::tree::BlockTree;

use crate::programs::{quiet_relay, sibling};

/// Times (since the start) at which the oracle printed a line starting so.
type Marks = Arc<Mutex<Vec<(String, f64)>>>;

fn start(
    program: &std::path::Path,
    args: &[String],
    marks: Option<(Marks, Instant)>,
) -> Result<Child, String> {
    let mut child = Command::new(program)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", program.display()))?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    tokio::spawn(async move {
        let mut lines = BufReader::new(stdout).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some((marks, t0)) = &marks {
                if let Ok(mut m) = marks.lock() {
                    m.push((line, t0.elapsed().as_secs_f64()));
                }
            }
        }
    });
    Ok(child)
}

pub async fn run(secs: u64, rate: f64) -> Result<Vec<String>, String> {
    let (node_bin, oracle_bin) = (sibling("toycoin-node")?, sibling("toycoin-oracle")?);
    let relay = quiet_relay().await?;
    let port = relay.addr.port().to_string();
    let dir = std::env::temp_dir().join(format!("toycoin-pace-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let t0 = Instant::now();
    let mut children = Vec::new();
    for i in 1..=2 {
        let args: Vec<String> = [
            "--host",
            "127.0.0.1",
            "--port",
            &port,
            "--name",
            &format!("node{i}"),
            "-q",
        ]
        .iter()
        .map(|s| s.to_string())
        .chain([
            "--wallet".to_owned(),
            dir.join(format!("n{i}.pem")).display().to_string(),
        ])
        .collect();
        children.push(start(&node_bin, &args, None)?);
    }
    let marks: Marks = Arc::new(Mutex::new(Vec::new()));
    let (lo, hi) = (0.5 / rate, 1.5 / rate);
    let oracle_args: Vec<String> = [
        "--host",
        "127.0.0.1",
        "--port",
        &port,
        "--wallets",
        "60",
        "--min-interval",
        &format!("{lo:.4}"),
        "--max-interval",
        &format!("{hi:.4}"),
        "--mint-key",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([dir.join("mint.pem").display().to_string()])
    .collect();
    children.push(start(&oracle_bin, &oracle_args, Some((marks.clone(), t0)))?);
    // The best chain, as a listener sees it.
    let mut watcher = RelayClient::connect(relay.addr, DEFAULT_TOPIC)
        .await
        .map_err(|e| e.to_string())?;
    let mut tree = BlockTree::new(Profile::steady(5.0));
    let end = tokio::time::Instant::now() + Duration::from_secs(secs);
    while let Ok(frame) = tokio::time::timeout_at(end, watcher.recv()).await {
        let Ok(Some(frame)) = frame else { break };
        if let Ok(Message::Bloc(blocks)) = Message::decode(&frame) {
            let _ = tree.receive(blocks, now_secs());
        }
    }
    for mut child in children {
        let _ = child.kill().await;
    }
    relay.stop().await.map_err(|e| e.to_string())?;
    let _ = std::fs::remove_dir_all(&dir);

    let marks = marks.lock().map_err(|e| e.to_string())?.clone();
    let times = |prefix: &str| -> Vec<f64> {
        marks
            .iter()
            .filter(|(l, _)| l.starts_with(prefix))
            .map(|(_, t)| *t)
            .collect()
    };
    let (sent, confirmed) = (times("Sending from"), times("Confirmed: transfer"));
    println!("\n== pace: two nodes, an oracle offering {rate}/s, {secs} s ==");
    println!(
        "{:>6} {:>10} {:>10} {:>10}",
        "at s", "sent", "confirmed", "backlog"
    );
    let mut figures = Vec::new();
    for at in (10..=secs).step_by(10) {
        let upto = |v: &[f64]| v.iter().filter(|&&t| t <= at as f64).count();
        let (s, c) = (upto(&sent), upto(&confirmed));
        println!("{at:>6} {s:>10} {c:>10} {:>10}", s - c.min(s));
        figures.push(format!("pace_backlog_{at}s={}", s - c.min(s)));
    }
    let half = secs as f64 / 2.0;
    let late = |v: &[f64]| v.iter().filter(|&&t| t > half).count() as f64 / half;
    println!(
        "second half: {:.2} transfers/s offered, {:.2} confirmed",
        late(&sent),
        late(&confirmed)
    );
    figures.push(format!("pace_offered_per_s={:.2}", late(&sent)));
    figures.push(format!("pace_confirmed_per_s={:.2}", late(&confirmed)));
    println!(
        "{:>6} {:>8} {:>6} {:>18}",
        "epoch", "blocks", "bits", "mean interval s"
    );
    let entries = tree.chain().entries();
    // The rule's epochs: the first MEDIAN_SPAN blocks, then EPOCH_BLOCKS each.
    let warm = MEDIAN_SPAN.min(entries.len());
    let epochs =
        std::iter::once(&entries[..warm]).chain(entries[warm..].chunks(EPOCH_BLOCKS as usize));
    for (k, epoch) in epochs.enumerate() {
        let stamps: Vec<u64> = epoch
            .iter()
            .filter_map(|e| e.block.header.timestamp_secs())
            .collect();
        if stamps.len() < 2 {
            continue;
        }
        let mean = (stamps[stamps.len() - 1] - stamps[0]) as f64 / (stamps.len() - 1) as f64;
        println!(
            "{k:>6} {:>8} {:>6} {mean:>18.2}",
            epoch.len(),
            epoch[0].required_bits
        );
        figures.push(format!("pace_epoch{k}_interval_s={mean:.2}"));
    }
    Ok(figures)
}
