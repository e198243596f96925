//! Flags are checked, not silently changed: a count out of range is
//! refused with its range, and every alias is shown in `--help`.

// In tests a panic is the failure report.
#![allow(clippy::unwrap_used)]

use toycoin_tests::program::{Program, WAIT};

/// Runs `name` with `args` to its end: (success, everything it printed).
async fn run(name: &str, args: &[&str]) -> (bool, String) {
    let mut p = Program::start(name, args);
    let status = p.wait_exit(WAIT).await;
    (status.success(), p.output())
}

#[tokio::test]
async fn counts_out_of_range_are_refused_with_their_range() {
    for (name, args, says) in [
        (
            "toycoin-node",
            vec!["--threads", "0"],
            "must be from 1 to 1024",
        ),
        (
            "toycoin-node",
            vec!["--min-txns", "11"],
            "must be from 1 to 10",
        ),
        (
            "toycoin-node",
            vec!["--max-hash-rate", "0"],
            "must be at least one hash a second",
        ),
        (
            "toycoin-node",
            vec!["--max-hash-rate", "2m"],
            "is not a hash rate (hashes a second: 500k, 2M)",
        ),
        (
            "toycoin-demo",
            vec!["--no-build", "--max-hash-rates", "1M,fast"],
            "is not a hash rate",
        ),
        (
            "toycoin-oracle",
            vec!["--wallets", "1"],
            "must be from 2 to 1000",
        ),
        (
            "toycoin-demo",
            vec!["--no-build", "--nodes", "0"],
            "must be from 1 to 16",
        ),
        (
            "toycoin-demo",
            vec!["--no-build", "--threads", "1,0"],
            "must be from 1 to 1024",
        ),
        (
            "toycoin-demo",
            vec!["--no-build", "--no-tmux", "--fault", "node3=silent"],
            "--fault names node3, but there are 2 nodes",
        ),
        (
            "toycoin-demo",
            vec!["--no-build", "--fault", "node1=sleepy"],
            "the faults are silent, stuck, invalid, liar",
        ),
        (
            "toycoin-node",
            vec!["--fault", "sleepy"],
            "possible values: silent, stuck, invalid, liar",
        ),
        (
            "toycoin-attack",
            vec!["double-spend", "--threads", "0"],
            "must be from 1 to 1024",
        ),
        (
            "toycoin-attack",
            vec!["private-fork", "--secret-blocks", "0"],
            "must be from 1 to 1000000",
        ),
        (
            "toycoin-attack",
            vec!["steal-everything"],
            "possible values: double-spend, private-fork, malleate, mint, flood, oversized, replay-invalid",
        ),
        ("toycoin-ctl", vec!["step", "many"], "invalid value 'many'"),
    ] {
        let (ok, out) = run(name, &args).await;
        assert!(!ok, "{name} {args:?} ran");
        assert!(out.contains(says), "{name} {args:?}: {out}");
    }
}

#[tokio::test]
async fn aliases_are_shown_in_help() {
    let (ok, out) = run("toycoin-oracle", &["--help"]).await;
    assert!(ok);
    for alias in ["min_interval", "max_interval", "listen"] {
        assert!(out.contains(alias), "{alias} not in:\n{out}");
    }
    // toycoin-bench's help is checked by its own unit test (this one
    // would build the benchmarks for the tests).
}

#[test]
fn a_demo_without_the_other_programs_beside_it_says_so_and_fails() {
    let dir = std::env::temp_dir().join(format!("toycoin-lonely-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let demo = dir.join("toycoin-demo");
    std::fs::copy(toycoin_tests::program::binary("toycoin-demo"), &demo).unwrap();
    // A program another test forks at this moment holds the new file open
    // for writing until it execs (ETXTBSY, "text file busy"): try again.
    let mut tries = 0;
    let out = loop {
        match std::process::Command::new(&demo)
            .arg("--no-tmux")
            .env("NO_COLOR", "1")
            .output()
        {
            Err(e) if e.raw_os_error() == Some(26) && tries < 100 => {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            result => break result.unwrap(),
        }
    };
    let _ = std::fs::remove_dir_all(&dir);
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("toycoin-listener"), "{said}");
    assert!(said.contains("not found beside this program"), "{said}");
}

/// `toycoin-wallet address | head -1`: a reader that goes away before the
/// program has written all it prints. Before, every program panicked
/// (`failed printing to stdout: Broken pipe`); now it ends quietly, as
/// command-line tools do.
#[test]
fn a_program_whose_reader_went_away_ends_without_a_panic() {
    let dir = std::env::temp_dir().join(format!("toycoin-pipe-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let key = dir.join("wallet.pem");
    std::fs::write(
        &key,
        toycoin_tests::keys::kept_key("pipe").to_pem().unwrap(),
    )
    .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let network = toycoin_tests::keys::network_file(5.0);
    let mut child = std::process::Command::new(toycoin_tests::program::binary("toycoin-wallet"))
        .args(["--network"])
        .arg(&network)
        .args(["--key"])
        .arg(&key)
        .arg("address")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The reader goes away before the program writes.
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(!said.contains("panicked"), "{said}");
    assert!(!said.contains("error"), "the program ran: {said}");
    let _ = std::fs::remove_dir_all(&dir);
}
