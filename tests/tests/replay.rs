//! Issue 38: a class recorded by `toycoin-relay --record` and served again
//! by `toycoin-replay`.

// In tests a panic is the failure report.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use serde_json::Value;
use toycoin_node::{spawn, NodeConfig};
use toycoin_oracle::OracleConfig;
use toycoin_tests::keys;
use toycoin_tests::program::{relay, Program, WAIT};

/// The verdicts a `--json` listener printed (its log lines are not JSON).
fn verdicts(listener: &Program) -> Vec<Value> {
    listener
        .output()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v.get("type").is_some())
        .collect()
}

/// `toycoin-replay` with `args` on a port the OS picks: the program and
/// the port it listens on.
async fn start_replay(args: &[&str]) -> (Program, String) {
    let mut all = vec!["--port", "0"];
    all.extend_from_slice(args);
    let mut replay = Program::start("toycoin-replay", &all);
    let line = replay
        .wait_line("the replay's address", WAIT, |l| {
            l.starts_with("Replaying ")
        })
        .await;
    let port = line
        .split(" on 127.0.0.1:")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .unwrap()
        .to_owned();
    (replay, port)
}

fn listener_on(port: &str, network: &str) -> Program {
    Program::start(
        "toycoin-listener",
        &[
            "--host",
            "127.0.0.1",
            "--port",
            port,
            "--json",
            "--passive",
            "--network",
            network,
        ],
    )
}

/// A short class (a mining node, three of the oracle's transfers to
/// final) recorded live, with a listener watching; then replayed as fast
/// as the relay takes it to a second listener: the same verdicts, frame
/// by frame.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_class_gives_the_listener_the_same_verdicts() {
    let dir = std::env::temp_dir().join(format!("toycoin-replay-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let journal = dir.join("class.journal");
    let _ = std::fs::remove_file(&journal);
    let network = keys::network_file(1.0).display().to_string();
    let journal_arg = journal.display().to_string();
    let (mut relay, addr) = relay(&["--network", &network, "--record", &journal_arg]).await;
    let port = addr.rsplit(':').next().unwrap().to_owned();
    let mut live = listener_on(&port, &network);
    live.wait_line("listening", WAIT, |l| l.contains("Listening to"))
        .await;

    let mut config = NodeConfig::new(addr.clone(), keys::steady(1.0));
    config.name = "node1".into();
    config.max_hash_rate = Some(300_000.0);
    let (node, _) = spawn(config);
    let mut oracle = OracleConfig::new(addr.clone(), keys::steady(1.0));
    oracle.mint_key = Some(keys::mint_key());
    oracle.wallet_keys = Some(keys::oracle_keys().to_path_buf());
    oracle.count = Some(3);
    oracle.min_interval = 0.1;
    oracle.max_interval = 0.2;
    oracle.confirm_timeout = 60.0;
    assert_eq!(toycoin_oracle::run(oracle).await, 0, "the class ran");
    node.stop().await;
    assert!(relay.stop(WAIT).await.success(), "{}", relay.output());
    assert!(live.stop(WAIT).await.success());
    let seen_live = verdicts(&live);
    assert!(
        seen_live.iter().filter(|v| v["type"] == "BLOC").count() >= 1
            && seen_live.iter().filter(|v| v["type"] == "TXN").count() >= 3,
        "{} verdicts live",
        seen_live.len()
    );

    let (mut replay, replay_port) =
        start_replay(&[&journal_arg, "--speed", "0", "--network", &network]).await;
    let mut again = listener_on(&replay_port, &network);
    replay
        .wait_line("the end of the replay", WAIT, |l| {
            l.starts_with("Replayed ")
        })
        .await;
    let deadline = tokio::time::Instant::now() + WAIT;
    while verdicts(&again).len() < seen_live.len() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} of {} verdicts replayed:\n{}",
            verdicts(&again).len(),
            seen_live.len(),
            again.output()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(again.stop(WAIT).await.success());
    assert!(replay.stop(WAIT).await.success());
    let replayed = verdicts(&again);
    assert_eq!(replayed.len(), seen_live.len());
    for (i, (a, b)) in seen_live.iter().zip(&replayed).enumerate() {
        assert_eq!(a, b, "verdict {i} differs");
    }

    // Seeking: replayed up to the moment of a block in the middle, the
    // listener's chain is the one the live listener had then.
    let records = toycoin_common::journal::read(&journal).unwrap();
    let first = records[0].at_us;
    let blocs: Vec<_> = records
        .iter()
        .filter(|r| r.payload.starts_with(b"BLOC") && !r.topic.starts_with(b"$to:"))
        .collect();
    let k = blocs.len() / 2;
    let moment = (blocs[k].at_us - first) as f64 / 1e6;
    let live_blocs: Vec<_> = seen_live.iter().filter(|v| v["type"] == "BLOC").collect();
    let then = &live_blocs[k]["chain"];
    let until = format!("{moment:.6}");
    let (mut seek, seek_port) = start_replay(&[
        &journal_arg,
        "--speed",
        "0",
        "--until",
        &until,
        "--network",
        &network,
    ])
    .await;
    let mut third = listener_on(&seek_port, &network);
    seek.wait_line("the end of the replay", WAIT, |l| {
        l.starts_with("Replayed ")
    })
    .await;
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let shown: Vec<_> = verdicts(&third)
            .into_iter()
            .filter(|v| v["type"] == "BLOC")
            .collect();
        if shown.len() == k + 1 {
            assert_eq!(&shown[k]["chain"], then, "the chain at {moment} s");
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline && shown.len() <= k + 1,
            "{} blocks shown for {} recorded by then",
            shown.len(),
            k + 1
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(third.stop(WAIT).await.success());
    assert!(seek.stop(WAIT).await.success());
    let _ = std::fs::remove_dir_all(&dir);
}

/// A relay killed (SIGKILL, no chance to flush) loses at most its last
/// second: what it forwarded a second before is in the journal, and the
/// journal reads back up to where it stopped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_journal_survives_a_killed_relay() {
    use toycoin_common::relay::{RelayClient, DEFAULT_TOPIC};
    let dir = std::env::temp_dir().join(format!("toycoin-replay-kill-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let journal = dir.join("killed.journal");
    let _ = std::fs::remove_file(&journal);
    let network = keys::network_file(1.0).display().to_string();
    let journal_arg = journal.display().to_string();
    let (mut relay, addr) = relay(&["--network", &network, "--record", &journal_arg]).await;
    let mut client = RelayClient::connect(addr.as_str(), DEFAULT_TOPIC)
        .await
        .unwrap();
    for i in 0..100 {
        client
            .publish(DEFAULT_TOPIC, format!("frame {i}").as_bytes())
            .await
            .unwrap();
    }
    // Written within the flush interval: wait for it, then kill.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let n = toycoin_common::journal::read(&journal).map_or(0, |r| r.len());
        if n == 100 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{n} of 100 written");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    relay.kill();
    let records = toycoin_common::journal::read(&journal).unwrap();
    assert_eq!(records.len(), 100);
    assert_eq!(&records[99].payload[..], b"frame 99");
    assert!(records.windows(2).all(|w| w[0].at_us <= w[1].at_us));
    let _ = std::fs::remove_dir_all(&dir);
}

/// A replay started paused delivers nothing until the teacher steps it,
/// one frame at a time (`toycoin-ctl step`), then `release` lets the rest
/// go.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_replay_goes_one_frame_at_a_time() {
    use toycoin_common::control::{command, token_file, Command};
    use toycoin_common::journal::{JournalWriter, Kind, Record, DEFAULT_MAX_BYTES};
    use toycoin_common::relay::{RelayClient, DEFAULT_TOPIC};
    let dir = std::env::temp_dir().join(format!("toycoin-replay-paused-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let journal = dir.join("paused.journal");
    let _ = std::fs::remove_file(&journal);
    let mut writer = JournalWriter::open(&journal, DEFAULT_MAX_BYTES).unwrap();
    for i in 0..10u64 {
        writer
            .append(&Record {
                at_us: 1_000_000 + i * 1000,
                kind: Kind::Frame,
                topic: bytes::Bytes::from_static(DEFAULT_TOPIC.as_bytes()),
                from: "node1".into(),
                payload: bytes::Bytes::from(format!("frame {i}")),
            })
            .unwrap();
    }
    writer.flush().unwrap();
    let journal_arg = journal.display().to_string();
    let (mut replay, port) = start_replay(&[&journal_arg, "--speed", "0", "--paused"]).await;
    let addr = format!("127.0.0.1:{port}");
    let port: u16 = port.parse().unwrap();
    let mut watcher = RelayClient::connect(addr.as_str(), DEFAULT_TOPIC)
        .await
        .unwrap();
    replay
        .wait_line("the end of the replay", WAIT, |l| {
            l.starts_with("Replayed ")
        })
        .await;
    let token = std::fs::read_to_string(token_file(port)).unwrap();
    let token = token.trim();

    // All ten are held: none has gone out.
    let status = command(addr.as_str(), token, Command::Status)
        .await
        .unwrap();
    assert_eq!(status.status.map(|s| s.held), Some(10));
    for step in 0..3 {
        let reply = command(addr.as_str(), token, Command::Step { count: 1 })
            .await
            .unwrap();
        assert!(reply.ok, "{reply:?}");
        let frame = next(&mut watcher).await.expect("the stepped frame");
        assert_eq!(frame, format!("frame {step}").as_bytes());
    }
    let reply = command(addr.as_str(), token, Command::Release)
        .await
        .unwrap();
    assert!(reply.ok, "{reply:?}");
    for i in 3..10 {
        assert_eq!(
            next(&mut watcher).await.expect("released"),
            format!("frame {i}").as_bytes()
        );
    }
    assert!(replay.stop(WAIT).await.success());
    let _ = std::fs::remove_dir_all(&dir);
}

/// The next frame `watcher` receives, within 2 s.
async fn next(watcher: &mut toycoin_common::relay::RelayClient) -> Option<bytes::Bytes> {
    tokio::time::timeout(Duration::from_secs(2), watcher.recv())
        .await
        .ok()
        .and_then(|r| r.ok().flatten())
}
