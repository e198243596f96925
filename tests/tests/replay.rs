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
    // Three blocks at least, so that there is a moment to seek back to
    // with a shorter chain (the transfers may all fit in one).
    let deadline = tokio::time::Instant::now() + WAIT;
    while verdicts(&live)
        .iter()
        .filter(|v| v["type"] == "BLOC")
        .count()
        < 3
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "fewer than 3 blocks live"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
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
    // The relay records a frame as it is offered, before its writers
    // deliver it: a frame published as the relay stops is in the journal
    // but may never have reached the live listener. So the replay gives
    // every live verdict, in order, and perhaps a last few more.
    assert!(
        replayed.len() >= seen_live.len(),
        "{} verdicts replayed, {} live",
        replayed.len(),
        seen_live.len()
    );
    for (i, (a, b)) in seen_live.iter().zip(&replayed).enumerate() {
        assert_eq!(a, b, "verdict {i} differs");
    }

    // Seeking, watched by a web view: replayed up to the moment of a
    // block (`--until`), then sought back to an earlier one from the
    // view's timeline, the view shows the chain the live listener had
    // at each moment.
    let records = toycoin_common::journal::read(&journal).unwrap();
    let first = records[0].at_us;
    let blocs: Vec<_> = records
        .iter()
        .filter(|r| r.payload.starts_with(b"BLOC") && !r.topic.starts_with(b"$to:"))
        .collect();
    let live_blocs: Vec<_> = seen_live.iter().filter(|v| v["type"] == "BLOC").collect();
    // Recorded blocks: the live listener's, and perhaps one published as
    // the relay stopped (above).
    assert!(blocs.len() >= live_blocs.len());
    let moment = |k: usize| (blocs[k].at_us - first) as f64 / 1e6;
    let late = live_blocs.len() - 1;
    let early = late / 2;
    assert!(early < late, "{} blocks", live_blocs.len());
    let until = format!("{:.6}", moment(late));
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
    let mut third = Program::start(
        "toycoin-listener",
        &[
            "--host",
            "127.0.0.1",
            "--port",
            &seek_port,
            "--json",
            "--passive",
            "--network",
            &network,
            "--web",
            "127.0.0.1:0",
        ],
    );
    let line = third
        .wait_line("the web view", WAIT, |l| l.contains("Web view: http://"))
        .await;
    let web = line
        .split("http://")
        .nth(1)
        .and_then(|r| r.split('/').next())
        .unwrap()
        .to_owned();
    seek.wait_line("the end of the replay", WAIT, |l| {
        l.starts_with("Replayed ")
    })
    .await;
    // The view at a moment: the live chain then, and the replay's
    // position there, in the epoch given.
    let shows = |k: usize, epoch: u64| {
        let web = web.clone();
        let then = live_blocs[k]["chain"].clone();
        async move {
            let deadline = tokio::time::Instant::now() + WAIT;
            loop {
                let (_, body) = toycoin_tests::http::get(&web, "/api/snapshot", WAIT).await;
                let view: Value = serde_json::from_str(&body).unwrap();
                let height = view["height"].as_u64().map(|h| h + 1);
                let tip = view["tip"].as_str().unwrap_or("-").to_owned();
                let replay = &view["replay"];
                if replay["epoch"] == epoch
                    && replay["at"].as_f64() >= Some(moment(k) - 1e-6)
                    && height == then["blocks"].as_u64()
                    && then["tip"].as_str().unwrap().starts_with(&tip)
                {
                    break;
                }
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "at {} s (block {k}) the live chain was {then}; the view shows height {height:?}, tip {tip}, replay {replay}",
                    moment(k)
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    shows(late, 0).await;
    // In a browser, the page shows the replay's timeline by itself.
    if let Some(browser) = toycoin_tests::browser::Browser::find("draw the timeline") {
        let dom = browser.dom(&format!("http://{web}/")).await;
        assert!(
            dom.contains("<div id=\"timeline\" title=")
                && !dom.contains("<div id=\"timeline\" hidden"),
            "{dom}"
        );
        let shown = format!(
            "<span id=\"replay-at\">{:.1} s of {:.1} s, at its end</span>",
            moment(late),
            moment(late)
        );
        assert!(dom.contains(&shown), "{shown} in {dom}");
    }
    // Paused (a replay playing on after a seek would reach the end at
    // once, at this speed), then sought back.
    let (status, said) = toycoin_tests::http::post(&web, "/api/control/hold", WAIT).await;
    assert_eq!(status, 200, "{said}");
    let to = format!("/api/control/seek?to={:.6}", moment(early));
    let (status, said) = toycoin_tests::http::post(&web, &to, WAIT).await;
    assert_eq!(status, 200, "{said}");
    shows(early, 1).await;
    third
        .wait_line("the listener saying it started again", WAIT, |l| {
            l.contains("\"type\":\"REPLAY\"") && l.contains("\"restarted\":true")
        })
        .await;
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
/// one frame at a time (`toycoin-ctl step`), then `release` plays the
/// rest; `seek` back starts a new epoch (its first frame says so) and
/// sends the recording again from its start up to the moment; `seek`
/// forward sends what comes before the moment at once. Between the
/// class's frames come the replay's positions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_replay_goes_one_frame_at_a_time_and_seeks_both_ways() {
    use toycoin_common::control::{command, token_file, Command};
    use toycoin_common::journal::{JournalWriter, Kind, Record, DEFAULT_MAX_BYTES};
    use toycoin_common::relay::{RelayClient, DEFAULT_TOPIC};
    let dir = std::env::temp_dir().join(format!("toycoin-replay-paused-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let journal = dir.join("paused.journal");
    let _ = std::fs::remove_file(&journal);
    let mut writer = JournalWriter::open(&journal, DEFAULT_MAX_BYTES).unwrap();
    // Ten frames, one a second of the recording.
    for i in 0..10u64 {
        writer
            .append(&Record {
                at_us: 1_000_000 + i * 1_000_000,
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
    // The first thing the watcher hears: where the replay is, paused at
    // its start.
    let (position, none) = next(&mut watcher).await;
    assert!(none.is_empty(), "{none:?}");
    assert_eq!((position.epoch, position.sent, position.frames), (0, 0, 10));
    assert!(!position.playing);
    assert_eq!(position.length, 9.0);
    let token = std::fs::read_to_string(token_file(port)).unwrap();
    let token = token.trim();
    let addr = addr.as_str();
    let ctl = |c: Command| async move {
        let reply = command(addr, token, c).await.unwrap();
        assert!(reply.ok, "{reply:?}");
        reply
    };

    let status = ctl(Command::Status).await;
    let replay_status = status.status.and_then(|s| s.replay).expect("a replay");
    assert_eq!(replay_status.sent, 0, "{}", status.message);
    for step in 0..3 {
        ctl(Command::Step { count: 1 }).await;
        let (position, frames) = next(&mut watcher).await;
        assert_eq!(frames, [format!("frame {step}")]);
        assert_eq!(position.sent, step + 1);
    }
    ctl(Command::Release).await;
    let mut got = Vec::new();
    while got.len() < 7 {
        got.extend(next(&mut watcher).await.1);
    }
    let wanted: Vec<String> = (3..10).map(|i| format!("frame {i}")).collect();
    assert_eq!(got, wanted);
    replay
        .wait_line("the end of the replay", WAIT, |l| {
            l.starts_with("Replayed 10 frames")
        })
        .await;

    // Paused, back to 4.5 s: a new epoch, and frames 0 to 4 again at once.
    ctl(Command::Hold).await;
    let (paused, none) = next(&mut watcher).await;
    assert!(none.is_empty() && !paused.playing, "{paused:?}");
    ctl(Command::Seek { secs: 4.5 }).await;
    let (restart, none) = next(&mut watcher).await;
    assert!(none.is_empty(), "{none:?}");
    assert_eq!((restart.epoch, restart.sent), (1, 0));
    let (at, frames) = next(&mut watcher).await;
    let wanted: Vec<String> = (0..5).map(|i| format!("frame {i}")).collect();
    assert_eq!(frames, wanted);
    assert_eq!((at.epoch, at.at, at.sent), (1, 4.5, 5));
    // Forward to 6.5 s: frames 5 and 6 at once, the same epoch.
    ctl(Command::Seek { secs: 6.5 }).await;
    let (at, frames) = next(&mut watcher).await;
    assert_eq!(frames, ["frame 5", "frame 6"]);
    assert_eq!((at.epoch, at.at, at.sent), (1, 6.5, 7));
    // And played on to the end.
    ctl(Command::Release).await;
    let mut rest = Vec::new();
    loop {
        let (at, frames) = next(&mut watcher).await;
        rest.extend(frames);
        if at.ended() {
            break;
        }
    }
    assert_eq!(rest, ["frame 7", "frame 8", "frame 9"]);
    assert!(replay.stop(WAIT).await.success());
    let _ = std::fs::remove_dir_all(&dir);
}

/// The class's frames the watcher receives up to the next position of
/// the replay, and that position (each within 5 s).
async fn next(
    watcher: &mut toycoin_common::relay::RelayClient,
) -> (toycoin_common::timeline::Position, Vec<String>) {
    let mut frames = Vec::new();
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(5), watcher.recv())
            .await
            .expect("a frame within 5 s")
            .unwrap()
            .expect("the replay is still there");
        match toycoin_common::timeline::decode(&frame) {
            Some(position) => return (position.unwrap(), frames),
            None => frames.push(String::from_utf8_lossy(&frame).into_owned()),
        }
    }
}
