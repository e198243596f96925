//! Every example runs to its end and prints what it should, and every
//! `file: function` that docs/concurrency.md names exists.

// In tests a panic is the failure report.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Runs example `name` (built by `cargo test` beside this test) to its
/// end, at most 60 s: its output lines.
async fn run(name: &str) -> Vec<String> {
    // target/<profile>/deps/<this test> -> target/<profile>/examples/<name>
    let exe = std::env::current_exe().unwrap();
    let path = exe
        .parent()
        .and_then(Path::parent)
        .unwrap()
        .join("examples")
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(path.exists(), "{} was not built", path.display());
    let child = tokio::process::Command::new(&path)
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(60), child)
        .await
        .unwrap_or_else(|_| panic!("{name} did not finish within 60 s"))
        .unwrap();
    assert!(out.status.success(), "{name} failed: {out:?}");
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn waitgroup_prints_nothing_without_waiting_then_ten_distinct_numbers() {
    let lines = run("waitgroup").await;
    assert_eq!(lines[0], "without waiting: nothing printed");
    assert!(!lines.iter().any(|l| l.starts_with("never printed")));
    let numbers: BTreeSet<u32> = lines[1..lines.len() - 1]
        .iter()
        .map(|l| l.parse().unwrap())
        .collect();
    assert_eq!(numbers, (0..10).collect());
    assert_eq!(lines.len(), 12);
    assert_eq!(lines.last().unwrap(), "all 10 done");
}

#[tokio::test]
async fn channel_messages_arrive_in_the_order_the_sleeps_end() {
    let lines = run("channel").await;
    assert_eq!(
        lines,
        [
            "received: second, sleeps 1",
            "received: third, sleeps 2",
            "received: first, sleeps 3",
            "channel closed: every sender is gone",
        ]
    );
}

#[tokio::test]
async fn shared_map_counts_every_read_and_write() {
    let lines = run("shared_map").await;
    let last = lines.last().unwrap();
    assert!(last.starts_with("reads: 100, writes: 50, "), "{last}");
    assert!(last.ends_with("keys: 10"), "{last}");
}

#[tokio::test]
async fn select_stops_after_21_messages_from_both_channels() {
    let lines = run("select").await;
    assert_eq!(lines.len(), 22);
    for (i, line) in lines[..21].iter().enumerate() {
        assert!(line.starts_with(&format!("{:2}. ", i + 1)), "{line}");
    }
    assert_eq!(
        lines[21],
        "stopped after 21 messages; all 20 senders returned"
    );
}

/// The repository root.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

#[test]
fn every_function_the_tour_names_exists_where_it_says() {
    let tour = std::fs::read_to_string(root().join("docs/concurrency.md")).unwrap();
    let mut checked = 0;
    // References are written `path/to/file.rs: Type::function` (or a free
    // function's bare name) inside backticks.
    for quoted in tour.split('`').skip(1).step_by(2) {
        let Some((file, item)) = quoted.split_once(".rs: ") else {
            if quoted.ends_with(".rs") {
                assert!(root().join(quoted).exists(), "{quoted} does not exist");
            }
            continue;
        };
        let path = root().join(format!("{file}.rs"));
        let source =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let function = item.rsplit("::").next().unwrap();
        assert!(
            source.contains(&format!("fn {function}("))
                || source.contains(&format!("fn {function}<")),
            "{file}.rs has no fn {function}"
        );
        if let Some((owner, _)) = item.rsplit_once("::") {
            assert!(
                source.contains(&format!("impl {owner}"))
                    || source.contains(&format!("impl<'_> {owner}")),
                "{file}.rs has no impl {owner}"
            );
        }
        checked += 1;
    }
    assert!(checked >= 10, "only {checked} references found");
}
