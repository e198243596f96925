//! `journal`: how fast a class's journal grows. The demo (`toycoin-demo
//! --no-tmux`, as the README's first command runs it, without the web
//! view) runs for `minutes` with its own keys; its relay records the
//! class; the journal's size and records are read at the end and given
//! per hour.

use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::programs::sibling;

pub async fn run(minutes: f64) -> Result<Vec<String>, String> {
    let dir = std::env::temp_dir().join(format!("toycoin-bench-journal-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    println!("\n== journal: a default demo recorded for {minutes} min ==");
    let mut demo = tokio::process::Command::new(sibling("toycoin-demo")?)
        .args([
            "--no-build",
            "--no-tmux",
            "--no-web",
            "--port",
            "0",
            "--keys",
        ])
        .arg(&dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot start toycoin-demo: {e}"))?;
    let journal = dir.join("class.journal");
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs_f64(minutes * 60.0)).await;
    let ran = started.elapsed().as_secs_f64();
    if let Some(pid) = demo.id() {
        let _ = std::process::Command::new("kill")
            .args(["-INT", &pid.to_string()])
            .status();
    }
    let _ = tokio::time::timeout(Duration::from_secs(30), demo.wait()).await;
    let bytes = std::fs::metadata(&journal)
        .map_err(|e| format!("no journal at {}: {e}", journal.display()))?
        .len();
    let records = toycoin_common::journal::read(&journal).map_err(|e| e.to_string())?;
    let blocks = records
        .iter()
        .filter(|r| r.payload.starts_with(b"BLOC"))
        .count();
    let per_hour = bytes as f64 * 3600.0 / ran;
    println!(
        "{} records ({blocks} BLOC frames) in {:.1} MB over {:.1} min: {:.1} MB an hour",
        records.len(),
        bytes as f64 / 1e6,
        ran / 60.0,
        per_hour / 1e6
    );
    let _ = std::fs::remove_dir_all(&dir);
    Ok(vec![
        format!("journal_records={}", records.len()),
        format!("journal_mb_per_hour={:.1}", per_hour / 1e6),
    ])
}
