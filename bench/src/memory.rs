//! `memory`: the relay's peak resident memory under every attack of issue
//! 14 at once — stalled subscribers, half-sent 16 MiB frames, idle
//! connections — while one publisher sends 256 MiB and one good subscriber
//! reads it all. The relay runs as its own process (this binary again, as
//! `toycoin-bench serve-relay`), so its peak RSS (`VmHWM`) is its own.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use toycoin_common::relay::RelayClient;

const MIB: usize = 1024 * 1024;

fn frame(payload: &[u8]) -> Vec<u8> {
    let mut f = (payload.len() as u32).to_be_bytes().to_vec();
    f.extend_from_slice(payload);
    f
}

/// Peak resident set of process `pid`, in bytes (Linux).
pub(crate) fn peak_rss(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

pub async fn run(budget_mib: usize) -> Result<Vec<String>, String> {
    println!(
        "\n== memory: relay peak RSS under every attack at once (--memory {budget_mib}MiB) =="
    );
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let ready: PathBuf =
        std::env::temp_dir().join(format!("toycoin-bench-{}.ready", std::process::id()));
    let _ = std::fs::remove_file(&ready);
    let mut child = Command::new(&exe)
        .args(["serve-relay", "--budget", &budget_mib.to_string()])
        .arg("--ready-file")
        .arg(&ready)
        .stdout(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start {} serve-relay: {e}", exe.display()))?;
    let pid = child.id();
    let result = attack(&ready, pid).await;
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_file(&ready);
    let (peak, got, sent) = result?;
    let peak_mib = peak as f64 / MIB as f64;
    println!("{:<44} {:>10}", "measure", "value");
    println!("{:<44} {:>10}", "budget (MiB)", budget_mib);
    println!("{:<44} {:>10.1}", "relay peak RSS (MiB)", peak_mib);
    println!(
        "{:<44} {:>10}",
        "good subscriber got / sent",
        format!("{got}/{sent}")
    );
    Ok(vec![
        format!("memory_budget_mib={budget_mib}"),
        format!("memory_peak_rss_mib={peak_mib:.1}"),
        format!("memory_good_got={got} memory_sent={sent}"),
    ])
}

async fn attack(ready: &std::path::Path, pid: u32) -> Result<(u64, usize, usize), String> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let addr = loop {
        if let Ok(Some(r)) = toycoin_common::ready::read(ready) {
            break r.addr;
        }
        if tokio::time::Instant::now() > deadline {
            return Err("the relay did not start".into());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let err = |e: toycoin_common::frame::FrameError| e.to_string();
    let mut good = RelayClient::connect(addr, "/topic/main")
        .await
        .map_err(err)?;
    let mut attackers = Vec::new();
    for _ in 0..8 {
        let mut s = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
        s.write_all(&frame(b"/topic/main"))
            .await
            .map_err(|e| e.to_string())?;
        attackers.push(s);
    }
    // Half-sent 16 MiB frames: each sends what the relay will take, then stops.
    let mut half = Vec::new();
    for _ in 0..40 {
        half.push(tokio::spawn(async move {
            let mut s = TcpStream::connect(addr).await.ok()?;
            s.write_all(&frame(b"/topic/other")).await.ok()?;
            s.write_all(&frame(b"/topic/main")).await.ok()?;
            let mut start = (16 * MIB as u32 - 1).to_be_bytes().to_vec();
            start.extend(vec![b'x'; 4 * MIB]);
            let _ = tokio::time::timeout(Duration::from_secs(5), s.write_all(&start)).await;
            Some(s)
        }));
    }
    for _ in 0..500 {
        attackers.push(TcpStream::connect(addr).await.map_err(|e| e.to_string())?);
    }
    let mut publisher = RelayClient::connect(addr, "/connect").await.map_err(err)?;
    let size = 64 * 1024;
    let sent = 256 * MIB / size;
    // A well-behaved pair: 16 messages out, then the 16 read back.
    let payload = vec![b'p'; size];
    let mut got = 0;
    'rounds: for _ in 0..sent / 16 {
        for _ in 0..16 {
            publisher
                .publish("/topic/main", &payload)
                .await
                .map_err(err)?;
        }
        for _ in 0..16 {
            match tokio::time::timeout(Duration::from_secs(30), good.recv()).await {
                Ok(Ok(Some(_))) => got += 1,
                _ => break 'rounds,
            }
        }
    }
    let peak = peak_rss(pid).ok_or("cannot read the relay's VmHWM")?;
    for h in half {
        drop(h.await);
    }
    drop(attackers);
    Ok((peak, got, sent))
}

/// `toycoin-bench serve-relay`: a relay in this process until killed, for
/// [`run`] to measure from outside.
pub async fn serve(budget_mib: usize, ready: PathBuf) -> Result<Vec<String>, String> {
    let config = toycoin_relay::RelayConfig {
        memory: budget_mib * MIB,
        max_frame_len: (budget_mib * MIB / 2).min(toycoin_common::frame::DEFAULT_MAX_FRAME_LEN),
        // Every client comes from 127.0.0.1.
        max_per_address: 1024,
        summary_interval: None,
        ..toycoin_relay::RelayConfig::default()
    };
    let listener = toycoin_relay::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    toycoin_common::ready::write(
        &ready,
        &toycoin_common::ready::Ready {
            token: None,
            program: "toycoin-bench serve-relay".into(),
            addr,
        },
    )
    .map_err(|e| e.to_string())?;
    toycoin_relay::Relay::new(config)
        .run(listener, std::future::pending())
        .await
        .map_err(|e| e.to_string())?;
    Ok(Vec::new())
}
