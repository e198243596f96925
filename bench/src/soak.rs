//! `soak`: a class for a lesson's length. The relay, `nodes` mining nodes
//! (capped hash rates), `listeners` listeners and an oracle making a
//! transfer every 0.2–0.5 s, each its own process, run for `minutes`; each
//! one's resident memory (`VmRSS`) is read every 10 s. Memory is flat when
//! the most a program holds in the last fifth of the run is within 10% of
//! what it held at the end of the first fifth (minute 10 of 50). Every
//! program but the relay holds the chain, which grows with the lesson: so
//! each one's growth is also given per transaction added to the chain
//! meanwhile, beside the chain's own encoded bytes per transaction (a
//! passive observer in this process follows it), and the part of it that
//! is anonymous memory (`RssAnon`: what the program allocated, where the
//! rest is its binary's and libraries' pages read in as code runs), as a
//! share of the same reference. With `--late N`, N more listeners join
//! when the last fifth begins: each catches up on the whole chain, whose
//! answers every other program decodes too, as when a student comes in
//! late.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::process::Child;
use toycoin_common::wallet::Wallet;

use crate::programs::sibling;

/// How often memory is read.
const SAMPLE: Duration = Duration::from_secs(10);
/// Growth allowed between the reference and the last fifth.
const FLAT: f64 = 0.10;

/// Resident memory of process `pid` now, and the anonymous part of it, in
/// bytes (Linux).
fn rss(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let bytes = |field: &str| -> Option<u64> {
        let line = status.lines().find(|l| l.starts_with(field))?;
        let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib * 1024)
    };
    Some((bytes("VmRSS:")?, bytes("RssAnon:")?))
}

struct Watched {
    label: String,
    child: Child,
    /// (seconds since start, resident bytes, of them anonymous: what the
    /// program allocated, not its binary's and libraries' pages)
    samples: Vec<(f64, u64, u64)>,
}

fn start(program: &Path, args: &[String]) -> Result<Child, String> {
    tokio::process::Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", program.display()))
}

async fn wait_ready(path: &Path) -> Result<std::net::SocketAddr, String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(Some(ready)) = toycoin_common::ready::read(path) {
            return Ok(ready.addr);
        }
        if Instant::now() > deadline {
            return Err("the relay did not start".into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The chain as a passive observer in this process sees it: (blocks,
/// transactions, encoded bytes).
#[derive(Clone, Copy, Debug, Default)]
struct ChainSize {
    blocks: usize,
    txns: usize,
    bytes: usize,
    /// Outputs the observer's ledger holds, and how many are unspent.
    outputs: usize,
    unspent: usize,
    /// Side-branch blocks the observer keeps, and their bytes.
    side_blocks: usize,
    side_bytes: usize,
}

/// Follows the chain on the relay at `addr`, passively, into `size`.
fn observe(
    addr: std::net::SocketAddr,
    network: toycoin_common::network::Network,
    size: std::sync::Arc<std::sync::Mutex<ChainSize>>,
) {
    use toycoin_common::session::{SessionConfig, SessionCore};
    tokio::spawn(async move {
        let Ok(mut client) =
            toycoin_common::relay::RelayClient::connect(addr, toycoin_common::relay::DEFAULT_TOPIC)
                .await
        else {
            return;
        };
        let mut config = SessionConfig::new(addr.to_string(), network.profile(), "soak");
        config.ask = false;
        let mut core = SessionCore::new(&config);
        while let Ok(Some(frame)) = client.recv().await {
            core.on_frame(
                &frame,
                toycoin_common::chain::now_secs(),
                tokio::time::Instant::now(),
            );
            while core.next_event().is_some() {}
            let chain = core.tree().chain();
            let entries = chain.entries();
            if let Ok(mut size) = size.lock() {
                *size = ChainSize {
                    blocks: entries.len(),
                    txns: entries.iter().map(|e| e.txn_count).sum(),
                    bytes: entries.iter().map(|e| e.size).sum(),
                    outputs: chain.ledger().output_count(),
                    unspent: chain.ledger().unspent_count(),
                    side_blocks: core.tree().side_blocks(),
                    side_bytes: core.tree().side_bytes(),
                };
            }
        }
    });
}

pub async fn run(
    minutes: f64,
    nodes: usize,
    listeners: usize,
    interval: (f64, f64),
    late: usize,
    check: bool,
) -> Result<Vec<String>, String> {
    let run_for = Duration::from_secs_f64(minutes * 60.0);
    println!(
        "\n== soak: a class of {nodes} nodes, {listeners} listeners and an oracle paying every {}-{} s for {minutes} min{} ==",
        interval.0,
        interval.1,
        if late > 0 {
            format!("; {late} more listener(s) join when the last fifth begins")
        } else {
            String::new()
        }
    );
    let dir: PathBuf = std::env::temp_dir().join(format!("toycoin-soak-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let mint = Wallet::generate(&mut rand::thread_rng()).map_err(|e| e.to_string())?;
    let mint_file = dir.join("mint.pem");
    std::fs::write(&mint_file, mint.to_pem().map_err(|e| e.to_string())?)
        .map_err(|e| e.to_string())?;
    let network_file = dir.join("network.json");
    crate::programs::network_of(&mint).save(&network_file)?;
    let network = network_file.display().to_string();
    let ready = dir.join("relay.ready");

    let mut watched = Vec::new();
    let relay = start(
        &sibling("toycoin-relay")?,
        &[
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--network",
            &network,
            "--ready-file",
            &ready.display().to_string(),
            "--no-control",
            "--quiet",
        ]
        .map(str::to_owned),
    )?;
    watched.push(Watched {
        label: "relay".into(),
        child: relay,
        samples: Vec::new(),
    });
    let relay_addr = wait_ready(&ready).await?;
    let port = relay_addr.port().to_string();
    let chain_size = std::sync::Arc::new(std::sync::Mutex::new(ChainSize::default()));
    observe(
        relay_addr,
        crate::programs::network_of(&mint),
        chain_size.clone(),
    );
    let mut chain_samples: Vec<(f64, ChainSize)> = Vec::new();
    let on_relay = |extra: &[String]| {
        let mut args: Vec<String> = [
            "--host",
            "127.0.0.1",
            "--port",
            &port,
            "--network",
            &network,
        ]
        .map(str::to_owned)
        .to_vec();
        args.extend_from_slice(extra);
        args.push("--quiet".into());
        args
    };
    for i in 1..=nodes {
        let args = on_relay(&[
            "--name".into(),
            format!("node{i}"),
            "--wallet".into(),
            dir.join(format!("node{i}.pem")).display().to_string(),
            "--max-hash-rate".into(),
            "100000".into(),
        ]);
        watched.push(Watched {
            label: format!("node{i}"),
            child: start(&sibling("toycoin-node")?, &args)?,
            samples: Vec::new(),
        });
    }
    for i in 1..=listeners {
        watched.push(Watched {
            label: format!("listener{i}"),
            child: start(&sibling("toycoin-listener")?, &on_relay(&[]))?,
            samples: Vec::new(),
        });
    }
    let oracle = on_relay(&[
        "--mint-key".into(),
        mint_file.display().to_string(),
        "--wallet-keys".into(),
        dir.join("wallets").display().to_string(),
        "--min-interval".into(),
        interval.0.to_string(),
        "--max-interval".into(),
        interval.1.to_string(),
    ]);
    watched.push(Watched {
        label: "oracle".into(),
        child: start(&sibling("toycoin-oracle")?, &oracle)?,
        samples: Vec::new(),
    });

    let start_at = Instant::now();
    // Classmates joining late: started when the last fifth begins, killed
    // with the class (`kill_on_drop`), not in the table.
    let mut latecomers: Vec<Child> = Vec::new();
    let late_at = run_for.as_secs_f64() * 0.8;
    // Ctrl-C stops the class too: every program started here is killed
    // (`kill_on_drop`) and the directory removed, not left running.
    let mut interrupted = Box::pin(toycoin_common::signal::shutdown_signal());
    while start_at.elapsed() < run_for {
        tokio::select! {
            _ = tokio::time::sleep(SAMPLE.min(run_for.saturating_sub(start_at.elapsed()))) => {}
            _ = &mut interrupted => {
                drop(watched);
                let _ = std::fs::remove_dir_all(&dir);
                return Err("interrupted: every program of the class stopped".into());
            }
        }
        let at = start_at.elapsed().as_secs_f64();
        if at >= late_at && latecomers.len() < late {
            for _ in 0..late {
                latecomers.push(start(&sibling("toycoin-listener")?, &on_relay(&[]))?);
            }
            eprintln!(
                "soak: {late} listener(s) joined late, at {:.1} min",
                at / 60.0
            );
        }
        for w in &mut watched {
            if let Ok(Some(status)) = w.child.try_wait() {
                return Err(format!("{} exited early: {status}", w.label));
            }
            if let Some((bytes, anon)) = w.child.id().and_then(rss) {
                w.samples.push((at, bytes, anon));
            }
        }
        let size = chain_size.lock().map(|s| *s).unwrap_or_default();
        chain_samples.push((at, size));
        eprintln!(
            "soak: {:.1} of {minutes} min; chain {} blocks, {} txns, {:.1} MiB, {} outputs held ({} unspent), {} side blocks ({} KiB); oracle {:.1} MiB, node1 {:.1} MiB, relay {:.1} MiB",
            at / 60.0,
            size.blocks,
            size.txns,
            size.bytes as f64 / 1048576.0,
            size.outputs,
            size.unspent,
            size.side_blocks,
            size.side_bytes / 1024,
            last_mib(&watched, "oracle"),
            last_mib(&watched, "node1"),
            last_mib(&watched, "relay")
        );
    }
    for w in &mut watched {
        let _ = w.child.start_kill();
    }
    for child in &mut latecomers {
        let _ = child.start_kill();
    }

    let total = run_for.as_secs_f64();
    let (reference_at, last_from) = (total * 0.2, total * 0.8);
    let chain_at = |t: f64| {
        chain_samples
            .iter()
            .rev()
            .find(|(at, _)| *at <= t)
            .map(|&(_, s)| s)
            .unwrap_or_default()
    };
    let (chain_ref, chain_end) = (chain_at(reference_at), chain_at(total));
    let new_txns = chain_end.txns.saturating_sub(chain_ref.txns).max(1);
    println!(
        "chain: {} blocks, {} txns, {:.1} MiB encoded at the reference; {} blocks, {} txns, {:.1} MiB at the end",
        chain_ref.blocks,
        chain_ref.txns,
        chain_ref.bytes as f64 / 1048576.0,
        chain_end.blocks,
        chain_end.txns,
        chain_end.bytes as f64 / 1048576.0
    );
    println!(
        "{:<12} {:>10} {:>14} {:>10} {:>12} {:>10}  (MiB; reference at {:.1} min, last fifth from {:.1} min)",
        "program",
        "reference",
        "last fifth max",
        "growth",
        "bytes/txn",
        "anonymous",
        reference_at / 60.0,
        last_from / 60.0
    );
    let mut figures = Vec::new();
    let mut worst_listener: Option<(f64, String)> = None;
    let mut grew = Vec::new();
    for w in &watched {
        let reference = w
            .samples
            .iter()
            .rev()
            .find(|(t, _, _)| *t <= reference_at)
            .or(w.samples.first());
        let last_max = |of: fn(&(f64, u64, u64)) -> u64| {
            w.samples
                .iter()
                .filter(|(t, _, _)| *t >= last_from)
                .map(|s| of(s) as f64)
                .fold(None, |m: Option<f64>, b| Some(m.map_or(b, |m| m.max(b))))
        };
        let (last, last_anon) = (last_max(|s| s.1), last_max(|s| s.2));
        let (Some(&(_, reference, reference_anon)), Some(last), Some(last_anon)) =
            (reference, last, last_anon)
        else {
            continue;
        };
        let reference = reference as f64;
        // Growth of the anonymous part, as a share of the same reference.
        let anon_growth = (last_anon - reference_anon as f64) / reference;
        let growth = last / reference - 1.0;
        if growth > FLAT {
            grew.push(format!("{} {:.1}%", w.label, growth * 100.0));
        }
        let row = format!(
            "{:<12} {:>10.1} {:>14.1} {:>9.1}% {:>12.0} {:>9.1}%",
            w.label,
            reference / 1048576.0,
            last / 1048576.0,
            growth * 100.0,
            (last - reference) / new_txns as f64,
            anon_growth * 100.0
        );
        if w.label.starts_with("listener") {
            if !worst_listener.as_ref().is_some_and(|(g, _)| growth <= *g) {
                worst_listener = Some((growth, row));
            }
            continue;
        }
        println!("{row}");
        figures.push(format!("soak_{}_growth_pct={:.1}", w.label, growth * 100.0));
        figures.push(format!("soak_{}_mib={:.1}", w.label, last / 1048576.0));
        figures.push(format!(
            "soak_{}_anon_growth_pct={:.1}",
            w.label,
            anon_growth * 100.0
        ));
        figures.push(format!(
            "soak_{}_bytes_per_txn={:.0}",
            w.label,
            (last - reference) / new_txns as f64
        ));
    }
    if let Some((growth, row)) = worst_listener {
        println!("{row}   (the most of the {listeners} listeners)");
        figures.push(format!(
            "soak_listener_max_growth_pct={:.1}",
            growth * 100.0
        ));
    }
    println!(
        "memory {} (goal: every program's last fifth within {:.0}% of its reference)",
        if grew.is_empty() { "flat" } else { "NOT flat" },
        FLAT * 100.0
    );
    figures.push(format!("soak_minutes={minutes}"));
    figures.push(format!("soak_late_listeners={late}"));
    figures.push(format!("soak_chain_txns={}", chain_end.txns));
    figures.push(format!(
        "soak_chain_encoded_bytes_per_txn={:.0}",
        (chain_end.bytes.saturating_sub(chain_ref.bytes)) as f64 / new_txns as f64
    ));
    let _ = std::fs::remove_dir_all(&dir);
    if check && !grew.is_empty() {
        println!("\n{}", figures.join(" "));
        return Err(format!("memory not flat: {}", grew.join(", ")));
    }
    Ok(figures)
}

fn last_mib(watched: &[Watched], label: &str) -> f64 {
    watched
        .iter()
        .find(|w| w.label == label)
        .and_then(|w| w.samples.last())
        .map_or(0.0, |&(_, b, _)| b as f64 / 1048576.0)
}
