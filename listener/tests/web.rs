//! The web view (`toycoin-listener --web`) against a real relay: the
//! snapshot holds the best chain, a side branch, a pending grant and the
//! event log; the event stream sends a new snapshot when a block arrives;
//! the page is self-contained (no address outside the listener); the
//! number of browsers is bounded.

// In tests a panic is the failure report.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::time::Duration;

use rand::rngs::OsRng;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use toycoin_common::block::Block;
use toycoin_common::chain::{now_secs, Chain};
use toycoin_common::message::{encode_bloc, encode_stat, encode_txn, Status};
use toycoin_common::relay::{RelayClient, DEFAULT_TOPIC};
use toycoin_common::wallet::fingerprint;
use toycoin_listener::web::limit::MAX_PER_ADDRESS;
use toycoin_listener::web::MAX_BROWSERS;
use toycoin_tests::program::Program;

const WAIT: Duration = Duration::from_secs(30);

/// The status code and body of `GET path`.
async fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    toycoin_tests::http::get(&addr.to_string(), path, WAIT).await
}

/// Whether `GET /api/snapshot` is answered 200 (a connection refused or
/// closed is not).
async fn snapshot_served(addr: SocketAddr) -> bool {
    let attempt = async {
        let mut s = TcpStream::connect(addr).await.ok()?;
        let request =
            format!("GET /api/snapshot HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        s.write_all(request.as_bytes()).await.ok()?;
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).await.ok()?;
        Some(raw.starts_with(b"HTTP/1.1 200"))
    };
    tokio::time::timeout(WAIT, attempt)
        .await
        .ok()
        .flatten()
        .unwrap_or(false)
}

/// As [`follow`], but when the view closes the connection at once (the
/// connections just dropped not yet noticed as gone), tries again, for
/// [`WAIT`] at most.
async fn follow_when_room(addr: SocketAddr) -> (u16, TcpStream) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Some(followed) = try_follow(addr).await {
            return followed;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no room for a stream"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// An event stream's response head, or `None` if the view closed the
/// connection first.
async fn try_follow(addr: SocketAddr) -> Option<(u16, TcpStream)> {
    let mut s = TcpStream::connect(addr).await.ok()?;
    let request = format!("GET /api/events HTTP/1.1\r\nHost: {addr}\r\n\r\n");
    s.write_all(request.as_bytes()).await.ok()?;
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = tokio::time::timeout(WAIT, s.read(&mut byte))
            .await
            .ok()?
            .ok()?;
        if n == 0 {
            return None;
        }
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, s))
}

/// An open event stream: the response head read, the events to come.
async fn follow(addr: SocketAddr) -> (u16, TcpStream) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let request = format!("GET /api/events HTTP/1.1\r\nHost: {addr}\r\n\r\n");
    s.write_all(request.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = tokio::time::timeout(WAIT, s.read(&mut byte))
            .await
            .unwrap()
            .unwrap();
        assert!(n == 1, "closed before the response head: {head:?}");
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, s)
}

/// Reads the stream until a snapshot satisfying `pred` arrives.
async fn until_snapshot(s: &mut TcpStream, pred: impl Fn(&Value) -> bool) -> Value {
    let mut buf = String::new();
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        while let Some(end) = buf.find("\n\n") {
            let event: String = buf.drain(..end + 2).collect();
            if let Some(data) = event
                .lines()
                .find_map(|l| l.strip_prefix("data:").map(str::trim))
            {
                if let Ok(v) = serde_json::from_str::<Value>(data) {
                    if pred(&v) {
                        return v;
                    }
                }
            }
        }
        let mut chunk = vec![0u8; 64 * 1024];
        let n = tokio::time::timeout_at(deadline, s.read(&mut chunk))
            .await
            .expect("no matching snapshot in time")
            .unwrap();
        assert!(n > 0, "the event stream closed");
        // Chunked transfer encoding: the chunk sizes are lines of hex
        // digits between events; they match no "data:" line.
        buf.push_str(&String::from_utf8_lossy(&chunk[..n]));
    }
}

fn mine(chain: &mut Chain, miner: &[u8]) -> Block {
    let block = chain
        .mine_next(
            &toycoin_common::address::example(miner),
            Vec::new(),
            now_secs(),
        )
        .unwrap();
    chain.push(block.clone(), now_secs()).unwrap();
    block
}

/// The address of the web view `listener` serves, once it says it.
pub(crate) async fn web_address(listener: &mut Program) -> SocketAddr {
    let line = listener
        .wait_line("the web view's address", WAIT, |l| {
            l.contains("Web view: http://")
        })
        .await;
    line.split("http://")
        .nth(1)
        .unwrap()
        .trim_end_matches('/')
        .parse()
        .unwrap()
}

/// A relay, a listener serving its web view (with `extra` flags), and
/// the view's address.
async fn view_with(extra: &[&str]) -> (toycoin_relay::local::LocalRelay, Program, SocketAddr) {
    let relay = toycoin_relay::local::spawn_serving(toycoin_tests::keys::network(5.0))
        .await
        .unwrap();
    let port = relay.addr.port().to_string();
    let mut args = vec![
        "--host",
        "127.0.0.1",
        "--port",
        &port,
        "--web",
        "127.0.0.1:0",
    ];
    args.extend_from_slice(extra);
    let mut listener = Program::start("toycoin-listener", &args);
    let addr = web_address(&mut listener).await;
    listener
        .wait_line("connected", WAIT, |l| l.contains("Listening to"))
        .await;
    (relay, listener, addr)
}

pub(crate) async fn view() -> (toycoin_relay::local::LocalRelay, Program, SocketAddr) {
    view_with(&[]).await
}

/// Publishes blocks 0..=2 by "alice", a block 1 by "bob" that loses, and a
/// pending grant of 7 to "carol"; returns alice's chain and bob's block.
async fn scene(publisher: &mut RelayClient) -> (Chain, Block) {
    let profile = toycoin_tests::keys::steady(5.0);
    let mut chain = Chain::new(profile);
    let b0 = mine(&mut chain, b"alice");
    let mut fork = chain.clone();
    let b1 = mine(&mut chain, b"alice");
    let b2 = mine(&mut chain, b"alice");
    let side = mine(&mut fork, b"bob");
    for b in [&b0, &b1, &b2, &side] {
        publisher
            .publish(DEFAULT_TOPIC, &encode_bloc(std::slice::from_ref(b)))
            .await
            .unwrap();
    }
    let mint = toycoin_tests::keys::kept_key("mint");
    let grant = mint
        .grant(&mut OsRng, &toycoin_common::address::example(b"carol"), 7)
        .unwrap();
    publisher
        .publish(DEFAULT_TOPIC, &encode_txn(&[], &grant))
        .await
        .unwrap();
    // A node saying its tip is block 2.
    let status = Status {
        name: "node7".into(),
        tip: Some(b2.header.this_hash),
        height: Some(2),
        hash_rate: 3.5e6,
        mining: true,
        threads: 2,
        wallet: Some(fingerprint(&toycoin_common::address::example(b"alice"))),
        signer: None,
    };
    publisher
        .publish(DEFAULT_TOPIC, &encode_stat(&status))
        .await
        .unwrap();
    // And a faulty node: its status, and a block it announced (signed)
    // with too little work: its own header, so the blame is its.
    let mallory = toycoin_tests::keys::kept_key("web-mallory");
    let faulty = Status {
        name: "node8".into(),
        wallet: Some(fingerprint(mallory.address())),
        ..status
    };
    publisher
        .publish(DEFAULT_TOPIC, &encode_stat(&faulty))
        .await
        .unwrap();
    let mut bad = chain
        .clone()
        .mine_next(mallory.address(), Vec::new(), now_secs())
        .unwrap();
    bad.header.nonce = bytes::Bytes::from_static(b"1");
    bad.header.this_hash = bad.header.compute_hash();
    publisher
        .publish(DEFAULT_TOPIC, &encode_bloc(std::slice::from_ref(&bad)))
        .await
        .unwrap();
    publisher
        .publish(
            DEFAULT_TOPIC,
            &toycoin_common::announce::encode(&bad.header.this_hash, 3, &mallory, now_secs())
                .unwrap(),
        )
        .await
        .unwrap();
    (chain, side)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_web_view_shows_the_tree_the_pool_and_the_log_and_follows_changes() {
    let (relay, mut listener, addr) = view().await;

    // The page: the tree's drawing surface, and nothing fetched from
    // elsewhere (a classroom may be offline).
    let (status, page) = get(addr, "/").await;
    assert_eq!(status, 200);
    assert!(page.contains("id=\"tree-svg\""), "{page}");
    assert!(!page.contains("src=\"http") && !page.contains("href=\"http"));

    let (_, mut stream) = follow(addr).await;
    let mut publisher = RelayClient::connect(relay.addr, DEFAULT_TOPIC)
        .await
        .unwrap();
    let (mut chain, side) = scene(&mut publisher).await;

    let snap = until_snapshot(&mut stream, |v| {
        v["height"] == 2
            && v["pending_count"] == 1
            && v["blocks"].as_array().unwrap().len() == 4
            && v["nodes"].as_array().unwrap().len() == 2
            && v["refused"] == 1
            // The blame comes with the signed announcement, a frame after
            // the block itself.
            && v["nodes"][1]["refused"] == 1
    })
    .await;
    // The header shows the class network's join code, learned from the
    // relay.
    let network = toycoin_tests::keys::network(5.0);
    assert_eq!(snap["network"]["join_code"], network.join_code().as_str());
    assert_eq!(snap["network"]["id"], network.id().short().as_str());
    let node = &snap["nodes"][0];
    assert_eq!(node["name"], "node7");
    assert_eq!(node["height"], 2);
    assert_eq!(node["mining"], true);
    assert_eq!(
        node["rates"],
        serde_json::json!([3.5e6]),
        "its hash rates so far"
    );
    assert_eq!(node["refused"], 0);
    assert_eq!(snap["nodes"][1]["name"], "node8");
    assert_eq!(snap["nodes"][1]["refused"], 1, "node8's invalid block");
    assert_eq!(
        node["tip"],
        snap["blocks"].as_array().unwrap()[2]["hash"],
        "node7's tip is the best chain's block 2"
    );
    let blocks = snap["blocks"].as_array().unwrap();
    let best: Vec<&Value> = blocks.iter().filter(|b| b["best"] == true).collect();
    assert_eq!(best.len(), 3);
    assert!(best
        .iter()
        .all(|b| b["miner"] == fingerprint(&toycoin_common::address::example(b"alice")).as_str()));
    let stale: Vec<&Value> = blocks.iter().filter(|b| b["best"] == false).collect();
    assert_eq!(stale.len(), 1);
    assert_eq!(stale[0]["height"], 1);
    assert_eq!(
        stale[0]["miner"],
        fingerprint(&toycoin_common::address::example(b"bob")).as_str()
    );
    assert_eq!(stale[0]["hash"], side.header.this_hash.to_hex().as_str());
    let pending = &snap["pending"][0];
    assert_eq!(
        pending["to"],
        fingerprint(&toycoin_common::address::example(b"carol")).as_str()
    );
    assert_eq!(pending["amount"], 7);
    assert_eq!(snap["chart"].as_array().unwrap().len(), 3);
    let log: Vec<&str> = snap["log"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect();
    // What a person wants to read: the blocks and the refusal; the
    // statuses are in the nodes table, the pending transfer in its panel.
    assert!(log.iter().any(|l| l.contains("BLOC")), "{log:?}");
    assert!(!log.iter().any(|l| l.contains("STAT")), "{log:?}");
    assert!(!log.iter().any(|l| l.contains("TXN")), "{log:?}");

    // The same from /api/snapshot; then a new block reaches the stream.
    let (status, body) = get(addr, "/api/snapshot").await;
    assert_eq!(status, 200);
    let again: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(again["height"], 2);
    let b3 = mine(&mut chain, b"alice");
    publisher
        .publish(DEFAULT_TOPIC, &encode_bloc(&[b3]))
        .await
        .unwrap();
    until_snapshot(&mut stream, |v| v["height"] == 3).await;

    // Connections that send nothing are bounded too: one address holds at
    // most MAX_PER_ADDRESS; the next is closed at once, and one leaving
    // makes room for a page load.
    let mut idle = Vec::new();
    // (The event stream above is one of them.)
    for _ in 1..MAX_PER_ADDRESS {
        idle.push(TcpStream::connect(addr).await.unwrap());
    }
    let mut refused = TcpStream::connect(addr).await.unwrap();
    let mut byte = [0u8; 1];
    match tokio::time::timeout(WAIT, refused.read(&mut byte)).await {
        Ok(Ok(0)) | Ok(Err(_)) => {}
        Ok(Ok(_)) => panic!("the view wrote to a connection that sent nothing"),
        Err(_) => panic!("the connection over the limit was not closed"),
    }
    idle.pop();
    let deadline = tokio::time::Instant::now() + WAIT;
    while !snapshot_served(addr).await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no room after one left"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(idle);

    // At most MAX_BROWSERS streams: the one above and MAX_BROWSERS - 1
    // more are served, the next is refused with 503.
    let mut open = Vec::new();
    for _ in 1..MAX_BROWSERS {
        let (status, s) = follow_when_room(addr).await;
        assert_eq!(status, 200);
        open.push(s);
    }
    let (status, _) = follow(addr).await;
    assert_eq!(status, 503);
    // A browser leaving makes room.
    drop(stream);
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (status, s) = follow(addr).await;
        if status == 200 {
            open.push(s);
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no room after a browser left"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(open);

    listener.stop(WAIT).await;
    relay.stop().await.unwrap();
}

/// The page as Chromium draws it (`--dump-dom` after its scripts ran):
/// one box per block, the loser grey, the grant in the pending table, a
/// node's tip marked.
/// Without Chromium (Debian's `chromium`; `CHROMIUM` names another) it
/// says "skipped".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_a_real_browser_the_page_draws_the_tree_and_the_pool() {
    let Some(browser) = toycoin_tests::browser::Browser::find("draw the page") else {
        return;
    };
    let (relay, mut listener, addr) = view().await;
    let mut publisher = RelayClient::connect(relay.addr, DEFAULT_TOPIC)
        .await
        .unwrap();
    scene(&mut publisher).await;
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (_, body) = get(addr, "/api/snapshot").await;
        let v: Value = serde_json::from_str(&body).unwrap_or_default();
        if v["height"] == 2
            && v["pending_count"] == 1
            && v["blocks"].as_array().map_or(0, Vec::len) == 4
            && v["nodes"].as_array().map_or(0, Vec::len) == 2
            && v["refused"] == 1
        {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the listener did not see the scene: {v}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let url = format!("http://{addr}/");
    let dom = browser.dom(&url).await;
    // And a picture of it, for people: target/web-view-test.png.
    let png = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/web-view-test.png");
    assert!(
        browser.screenshot(&url, &png).await,
        "no screenshot at {}",
        png.display()
    );
    // As many boxes as the snapshot has blocks.
    let (_, body) = get(addr, "/api/snapshot").await;
    let snap: Value = serde_json::from_str(&body).unwrap();
    let blocks = snap["blocks"].as_array().unwrap().len();
    assert!(
        dom.contains(&format!("data-drawn-blocks=\"{blocks}\"")),
        "{dom}"
    );
    assert_eq!(dom.matches("class=\"blk ").count(), blocks, "{dom}");
    assert_eq!(dom.matches("class=\"blk best\"").count(), 3, "{dom}");
    assert_eq!(dom.matches("class=\"blk stale\"").count(), 1, "{dom}");
    assert!(dom.contains("<b id=\"height\">2</b>"), "{dom}");
    // A live class: no replay's timeline.
    assert!(dom.contains("<div id=\"timeline\" hidden"), "{dom}");
    let code = toycoin_tests::keys::network(5.0).join_code();
    assert!(
        dom.contains(&format!("<b id=\"join-code\">{code}</b>")),
        "the join code in the header: {dom}"
    );
    assert!(
        dom.contains(&fingerprint(&toycoin_common::address::example(b"carol"))),
        "the grant's receiver: {dom}"
    );
    assert!(
        dom.contains(&fingerprint(&toycoin_common::address::example(b"bob"))),
        "the losing block's miner: {dom}"
    );
    assert!(dom.contains("▲ node7"), "node7's tip marked: {dom}");
    assert!(dom.contains("<td>node7</td>"), "node7 in the table: {dom}");
    assert!(
        dom.contains("FAULTY: 1 invalid"),
        "node8 marked faulty: {dom}"
    );
    listener.stop(WAIT).await;
    relay.stop().await.unwrap();
}

/// The original's frames, captured from a Python network, under
/// `--profile toycoin`: the view follows its chain, with no node statuses
/// (the original sends none) and its transactions' blocks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_web_view_follows_a_network_of_the_original_programs() {
    let (relay, mut listener, addr) = view_with(&["--profile", "toycoin"]).await;
    let mut publisher = RelayClient::connect(relay.addr, DEFAULT_TOPIC)
        .await
        .unwrap();
    let mut longest = 0;
    for (_, frame) in toycoin_tests::frames("live") {
        if let Ok(toycoin_common::message::Message::Bloc(blocks)) =
            toycoin_common::message::Message::decode(&frame)
        {
            longest = longest.max(blocks.len());
        }
        publisher.publish(DEFAULT_TOPIC, &frame).await.unwrap();
    }
    let (_, mut stream) = follow(addr).await;
    let snap = until_snapshot(&mut stream, |v| v["height"] == longest - 1).await;
    assert_eq!(snap["profile"], "toycoin");
    assert_eq!(snap["nodes"].as_array().unwrap().len(), 0);
    let best = snap["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["best"] == true)
        .count();
    assert_eq!(best, longest.min(toycoin_listener::web::SHOWN_HEIGHTS));
    listener.stop(WAIT).await;
    relay.stop().await.unwrap();
}

/// A connection to `addr` from `ip` (127.0.0.2, ... play students'
/// laptops on loopback).
async fn connect_from(ip: [u8; 4], addr: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.bind(SocketAddr::from((ip, 0)))?;
    socket.connect(addr).await
}

/// Whether the view closes `s` (EOF or an error) within `within`.
async fn closed_within(s: &mut TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 256];
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => {}
        }
    }
}

/// Issue 34's lockout: one student's laptop (127.0.0.2) opens 100 event
/// streams and then 5,000 connections that send nothing; another
/// (127.0.0.3) sends half a request and waits (slowloris). Before, a
/// student on any loopback address counted as the teacher's own machine:
/// its streams took every place and the teacher's `/api/events` answered
/// 503, and idle or half-sent connections were held without end. Now only
/// the view's own address is the teacher's machine, the student gets a
/// laptop's share, and a request head must arrive within
/// `HEADER_TIMEOUT`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_student_with_5000_idle_connections_and_100_streams_cannot_lock_the_teacher_out() {
    use toycoin_listener::web::limit::HEADER_TIMEOUT;

    let (relay, mut listener, addr) = view().await;
    let student = [127, 0, 0, 2];
    let mut streams = Vec::new();
    for _ in 0..100 {
        let Ok(mut s) = connect_from(student, addr).await else {
            continue;
        };
        let request = format!("GET /api/events HTTP/1.1\r\nHost: {addr}\r\n\r\n");
        if s.write_all(request.as_bytes()).await.is_ok() {
            streams.push(s);
        }
    }
    let mut idle = Vec::new();
    for _ in 0..5_000 {
        if let Ok(s) = connect_from(student, addr).await {
            idle.push(s);
        }
    }
    assert!(idle.len() > 4_000, "only {} connections opened", idle.len());
    let mut slow = connect_from([127, 0, 0, 3], addr).await.unwrap();
    slow.write_all(format!("GET / HTTP/1.1\r\nHost: {addr}\r\n").as_bytes())
        .await
        .unwrap();

    // The teacher's page, snapshot and event stream are all served.
    let (status, page) = get(addr, "/").await;
    assert_eq!(status, 200, "{page}");
    assert!(snapshot_served(addr).await);
    let (status, _teachers_stream) = follow(addr).await;
    assert_eq!(status, 200, "the teacher's event stream");

    // Half a request is not held: closed within the header timeout.
    let within = HEADER_TIMEOUT + Duration::from_secs(5);
    assert!(closed_within(&mut slow, within).await, "slowloris held");
    // Nor is a connection that sends nothing at all.
    let last = idle.last_mut().unwrap();
    assert!(closed_within(last, within).await, "an idle connection held");
    drop((streams, idle));
    listener.stop(WAIT).await;
    relay.stop().await.unwrap();
}

/// The nodes table of the snapshot at `addr`, by name.
async fn nodes_shown(addr: SocketAddr) -> Vec<Value> {
    let (_, body) = get(addr, "/api/snapshot").await;
    let snapshot: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    snapshot["nodes"].as_array().cloned().unwrap_or_default()
}

/// Issue 33, "statuses": node1 mines a block and signs its status; a
/// student then says, in node1's name, that it is at height 1,000,000
/// (unsigned, and signed by the student's own key), and sends 10,000
/// statuses of made-up names. Before, the forged status was shown under
/// node1's name (and got the honest node1 marked a liar), and the made-up
/// names pushed the real nodes out of the table. Now node1's row is
/// node1's own, and it stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_statuses_and_made_up_names_leave_node1_its_row() {
    let (relay, mut listener, addr) = view().await;
    let mut publisher = RelayClient::connect(relay.addr, DEFAULT_TOPIC)
        .await
        .unwrap();
    let node1 = toycoin_tests::keys::kept_key("web-node1");
    let student = toycoin_tests::keys::kept_key("web-student");
    let mut chain = Chain::new(toycoin_tests::keys::steady(5.0));
    let b0 = chain
        .mine_next(node1.address(), Vec::new(), now_secs())
        .unwrap();
    chain.push(b0.clone(), now_secs()).unwrap();
    publisher
        .publish(DEFAULT_TOPIC, &encode_bloc(std::slice::from_ref(&b0)))
        .await
        .unwrap();
    let status = |name: &str, height: u64, rate: f64| Status {
        name: name.into(),
        tip: Some(b0.header.this_hash),
        height: Some(height),
        hash_rate: rate,
        mining: true,
        threads: 1,
        wallet: Some(fingerprint(node1.address())),
        signer: None,
    };
    let mut honest = status("node1", 0, 1e6);
    honest.sign(&node1).unwrap();
    publisher
        .publish(DEFAULT_TOPIC, &encode_stat(&honest))
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + WAIT;
    while !nodes_shown(addr).await.iter().any(|n| n["name"] == "node1") {
        assert!(
            tokio::time::Instant::now() < deadline,
            "node1 shown in time"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let forged = status("node1", 1_000_000, 9e9);
    let mut forged_signed = forged.clone();
    forged_signed.sign(&student).unwrap();
    for s in [&forged, &forged_signed] {
        publisher
            .publish(DEFAULT_TOPIC, &encode_stat(s))
            .await
            .unwrap();
    }
    for i in 0..10_000 {
        let made_up = Status {
            wallet: None,
            ..status(&format!("made-up-{i}"), 0, 1.0)
        };
        publisher
            .publish(DEFAULT_TOPIC, &encode_stat(&made_up))
            .await
            .unwrap();
    }
    // Block 1, after all that: once the view shows it, it has taken in
    // everything before it (and node1 has said nothing since).
    let b1 = chain
        .mine_next(node1.address(), Vec::new(), now_secs())
        .unwrap();
    publisher
        .publish(DEFAULT_TOPIC, &encode_bloc(std::slice::from_ref(&b1)))
        .await
        .unwrap();
    loop {
        let (_, body) = get(addr, "/api/snapshot").await;
        let snapshot: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
        if snapshot["height"] == 1 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "block 1 shown in time"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let nodes = nodes_shown(addr).await;
    let row = nodes
        .iter()
        .find(|n| n["name"] == "node1")
        .unwrap_or_else(|| panic!("node1 pushed out of the {} rows", nodes.len()));
    assert_eq!(row["height"], 0, "{row}");
    assert_eq!(row["hash_rate"], 1e6, "{row}");
    assert!(row["lie"].is_null(), "{row}");
    listener.stop(WAIT).await;
    relay.stop().await.unwrap();
}

/// Issue 33, "blame": node1 announces (signed) its block 0, which the
/// chain then leaves behind; a student re-sends that block three times,
/// replays node1's announcement, and sends node1's block altered (a new
/// nonce; a changed reward); then 64 invalid blocks paying 64 decoy
/// wallets; and node2 announces (signed) a block with too little work.
/// Before, FAULTY marks followed whom a block paid: node1 was marked
/// stuck and refused, and the decoys filled the 64-wallet table so that
/// node2 showed `refused 0`. Now only a node's own signed announcements
/// count: node1 is clean, node2 is marked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blame_follows_signed_announcements_not_whom_a_block_pays() {
    use toycoin_common::announce;
    let (relay, mut listener, addr) = view().await;
    let mut publisher = RelayClient::connect(relay.addr, DEFAULT_TOPIC)
        .await
        .unwrap();
    let node1 = toycoin_tests::keys::kept_key("web-node1");
    let node2 = toycoin_tests::keys::kept_key("web-node2");
    let mut chain = Chain::new(toycoin_tests::keys::steady(5.0));
    let b0 = chain
        .mine_next(node1.address(), Vec::new(), now_secs())
        .unwrap();
    chain.push(b0.clone(), now_secs()).unwrap();
    let node1_annc = announce::encode(&b0.header.this_hash, 0, &node1, now_secs()).unwrap();
    let mut frames = vec![encode_bloc(std::slice::from_ref(&b0)), node1_annc.clone()];
    for (name, key) in [("node1", &node1), ("node2", &node2)] {
        let mut status = Status {
            name: name.into(),
            tip: Some(b0.header.this_hash),
            height: Some(0),
            hash_rate: 1e6,
            mining: true,
            threads: 1,
            wallet: Some(fingerprint(key.address())),
            signer: None,
        };
        status.sign(key).unwrap();
        frames.push(encode_stat(&status));
    }
    for _ in 0..3 {
        frames.push(encode_bloc(&[mine(&mut chain, b"alice")]));
    }
    // The student: node1's old block again, its announcement again, and
    // the block altered two ways.
    for _ in 0..3 {
        frames.push(encode_bloc(std::slice::from_ref(&b0)));
        frames.push(node1_annc.clone());
    }
    let mut renonced = b0.clone();
    renonced.header.nonce = bytes::Bytes::from_static(b"7");
    renonced.header.this_hash = renonced.header.compute_hash();
    frames.push(encode_bloc(&[renonced]));
    let mut overpaid = b0.clone();
    overpaid.txns[0].receiver_value += 1;
    frames.push(encode_bloc(&[overpaid]));
    // 64 decoys: blocks with too little work paying made-up wallets.
    for i in 0..64 {
        let mut decoy = chain
            .mine_next(
                &toycoin_common::address::example(format!("decoy {i}").as_bytes()),
                Vec::new(),
                now_secs(),
            )
            .unwrap();
        decoy.header.nonce = bytes::Bytes::from_static(b"1");
        decoy.header.this_hash = decoy.header.compute_hash();
        frames.push(encode_bloc(&[decoy]));
    }
    // node2's really invalid block, announced.
    let mut bad = chain
        .mine_next(node2.address(), Vec::new(), now_secs())
        .unwrap();
    bad.header.nonce = bytes::Bytes::from_static(b"2");
    bad.header.this_hash = bad.header.compute_hash();
    frames.push(encode_bloc(std::slice::from_ref(&bad)));
    frames.push(announce::encode(&bad.header.this_hash, 4, &node2, now_secs()).unwrap());
    // And two blocks node2 signed for one height: the liar's twins.
    for twin in [b"twin a", b"twin b"] {
        let hash = toycoin_common::hash::BlockHash(toycoin_common::hash::Hash::of(twin));
        frames.push(announce::encode(&hash, 9, &node2, now_secs()).unwrap());
    }
    // A last good block: once shown, everything before it was taken in.
    frames.push(encode_bloc(&[mine(&mut chain, b"alice")]));
    for frame in frames {
        publisher.publish(DEFAULT_TOPIC, &frame).await.unwrap();
    }
    let deadline = tokio::time::Instant::now() + WAIT;
    let nodes = loop {
        let (_, body) = get(addr, "/api/snapshot").await;
        let snapshot: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
        if snapshot["height"] == 4 {
            break snapshot["nodes"].as_array().cloned().unwrap_or_default();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "block 4 shown in time"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let row = |name: &str| {
        nodes
            .iter()
            .find(|n| n["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("no {name} in {nodes:?}"))
    };
    let (n1, n2) = (row("node1"), row("node2"));
    assert_eq!(n1["refused"], 0, "node1 blamed for others' frames: {n1}");
    assert_eq!(n1["stuck"], false, "node1 called stuck for a replay: {n1}");
    assert_eq!(n2["refused"], 1, "node2's own invalid block: {n2}");
    assert_eq!(n2["equivocated"], true, "{n2}");
    assert_eq!(n1["equivocated"], false, "a replayed announcement: {n1}");
    listener.stop(WAIT).await;
    relay.stop().await.unwrap();
}

/// A POST from `from` (an address on loopback) to the view at `addr`: its
/// status and body.
async fn post_from(from: [u8; 4], addr: SocketAddr, path: &str) -> (u16, String) {
    let mut s = connect_from(from, addr).await.unwrap();
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    s.write_all(request.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(WAIT, s.read_to_end(&mut raw))
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text.split("\r\n\r\n").nth(1).unwrap_or_default().to_owned();
    (status, body)
}

/// Issue 38's timeline, as far as the relay's controls go: with
/// `--controls` the projector page has hold, step and release buttons for
/// the relay the listener watches (a live class or `toycoin-replay`);
/// they work from the teacher's machine, not from a student's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_teachers_buttons_hold_and_release_the_relay_from_this_machine_only() {
    let token = "web-controls-token";
    let relay = toycoin_relay::local::spawn_with_teacher(token)
        .await
        .unwrap();
    let port = relay.addr.port();
    toycoin_common::control::write_token(port, token).unwrap();
    let port_arg = port.to_string();
    let network = toycoin_tests::keys::network_file(5.0).display().to_string();
    let mut listener = Program::start(
        "toycoin-listener",
        &[
            "--host",
            "127.0.0.1",
            "--port",
            &port_arg,
            "--network",
            &network,
            "--web",
            "127.0.0.1:0",
            "--controls",
        ],
    );
    let addr = web_address(&mut listener).await;
    // The first snapshot comes once the listener has drawn one.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (_, body) = get(addr, "/api/snapshot").await;
        if body.contains("\"controls\":true") {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (status, said) = post_from([127, 0, 0, 2], addr, "/api/control/hold").await;
    assert_eq!(status, 403, "a student's browser: {said}");
    assert!(!relay.relay.rules().is_some_and(|r| r.contains("holding")));
    let (status, said) = post_from([127, 0, 0, 1], addr, "/api/control/hold").await;
    assert_eq!(status, 200, "{said}");
    assert!(said.starts_with("holding"), "{said}");
    let (status, said) = post_from([127, 0, 0, 1], addr, "/api/control/release").await;
    assert_eq!(status, 200, "{said}");
    assert!(said.starts_with("released"), "{said}");
    let _ = std::fs::remove_file(toycoin_common::control::token_file(port));
    listener.stop(WAIT).await;
    relay.stop().await.unwrap();
}
