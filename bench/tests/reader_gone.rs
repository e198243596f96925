//! `toycoin-bench soak | head -3`: the reader of the benchmark's output
//! goes away while a class it started is running.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The processes whose command line names `marker` (the class's
/// directory, `toycoin-soak-<the benchmark's pid>`).
fn class(marker: &str) -> Vec<u32> {
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    procs
        .flatten()
        .filter_map(|p| p.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| String::from_utf8_lossy(&c).contains(marker))
        })
        .collect()
}

/// Before, the benchmark ended at once on the broken pipe and left its
/// class running: a node mining, a relay, a listener, an oracle, for good.
/// Now it stops them first, and still ends quietly.
#[test]
fn a_soak_whose_reader_went_away_stops_the_class_it_started() {
    let bench = Path::new(env!("CARGO_BIN_EXE_toycoin-bench"));
    if !Path::new("/proc/self/cmdline").exists() {
        eprintln!("skipped: needs /proc");
        return;
    }
    // The class's programs, beside the benchmark: `cargo test` builds only
    // this package's; the suite's `program::binary` builds them (once).
    for program in [
        "toycoin-relay",
        "toycoin-node",
        "toycoin-listener",
        "toycoin-oracle",
    ] {
        assert_eq!(
            toycoin_tests::program::binary(program),
            bench.with_file_name(program)
        );
    }
    let mut child = Command::new(bench)
        .args([
            "soak",
            "--minutes",
            "0.5",
            "--nodes",
            "1",
            "--listeners",
            "1",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("toycoin-bench starts");
    let marker = format!("toycoin-soak-{}", child.id());
    let mut out = child.stdout.take().expect("stdout");
    let output = std::thread::spawn(move || {
        let mut all = String::new();
        let _ = std::io::Read::read_to_string(&mut out, &mut all);
        all
    });
    // The soak's progress, every 10 s, goes to its errors: read up to the
    // first line, when the class runs.
    let mut errors = BufReader::new(child.stderr.take().expect("stderr"));
    let mut line = String::new();
    while !line.starts_with("soak: ") {
        line.clear();
        let read = errors
            .read_line(&mut line)
            .expect("reads the soak's progress");
        assert!(read > 0, "the soak ended before its class ran");
    }
    let running = class(&marker);
    assert!(running.len() >= 4, "the class runs: {running:?}");
    // The reader goes away (`toycoin-bench soak 2>&1 | head -3`): the
    // next progress line meets a broken pipe while the class runs.
    drop(errors);
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().expect("waits") {
            break status;
        }
        assert!(Instant::now() < deadline, "the soak did not end");
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut left = class(&marker);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !left.is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
        left = class(&marker);
    }
    for pid in &left {
        let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
    }
    let _ = std::fs::remove_dir_all(std::env::temp_dir().join(&marker));
    let said = output.join().unwrap_or_default();
    assert!(left.is_empty(), "the class was left running: {left:?}");
    assert!(status.success(), "ended with {status}");
    assert!(!said.contains("chain: "), "the soak ran to its end: {said}");
}
