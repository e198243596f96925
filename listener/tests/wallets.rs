//! The students' wallet pages' gateway (`/wallet`, `/api/wallet/...`),
//! as a hostile student's page or program would use it: it passes on
//! requests and payments only, bounded in bytes and in number per
//! laptop, and one laptop's flood leaves a classmate room. (The pages
//! themselves, in Chromium: `tests/tests/browser_wallet.rs`.)

// In tests a panic is the failure report.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use toycoin_listener::web::wallets::{IN_FLIGHT_PER_ADDRESS, MAX_BODY};

use super::web::view;

const WAIT: Duration = Duration::from_secs(30);

/// `method path` with `body`, from `ip` (127.0.0.2, ... play students'
/// laptops): the status code and body.
async fn request(
    ip: [u8; 4],
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: &[u8],
) -> (u16, String) {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::from((ip, 0))).unwrap();
    let mut s = socket.connect(addr).await.unwrap();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).await.unwrap();
    // The view may answer (413) before it has read a large body.
    let _ = s.write_all(body).await;
    let mut raw = Vec::new();
    let _ = tokio::time::timeout(WAIT, s.read_to_end(&mut raw))
        .await
        .unwrap();
    toycoin_tests::http::response(&raw)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_its_code_its_qr_code_and_the_network_are_served_from_the_view() {
    let (relay, mut listener, addr) = view().await;
    let me = [127, 0, 0, 1];
    let (status, page) = request(me, addr, "GET", "/wallet", b"").await;
    assert_eq!(status, 200);
    assert!(page.contains("toycoin: your wallet"), "{page}");
    let (status, code) = request(me, addr, "GET", "/wallet/wallet.js", b"").await;
    assert_eq!(status, 200);
    assert!(code.contains("function sha512"), "the page's own SHA-512");
    // Offline: nothing is fetched from outside the view.
    for text in [&page, &code] {
        assert!(
            !text.contains("http://") && !text.contains("https://"),
            "an outside address"
        );
    }
    let (status, qr) = request(me, addr, "GET", "/wallet/qr.svg", b"").await;
    assert_eq!(status, 200);
    assert!(qr.contains("<svg"), "{qr}");
    let (status, network) = request(me, addr, "GET", "/api/wallet/network", b"").await;
    assert_eq!(status, 200);
    let network: Value = serde_json::from_str(&network).unwrap();
    assert_eq!(network["kind"], "steady");
    assert_eq!(network["rules"]["amounts_signed"], true);
    assert_eq!(network["student_url"], format!("http://{addr}/wallet"));
    assert_eq!(network["join_code"].as_str().unwrap().len(), 11);
    // The projector's page shows where students go.
    let (_, index) = request(me, addr, "GET", "/", b"").await;
    assert!(index.contains("/wallet/qr.svg"));
    listener.stop(WAIT).await;
    relay.stop().await.unwrap();
}

/// What a hostile page may send: only requests and payments, bounded in
/// bytes; anything else is refused with its reason before it reaches the
/// class.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_requests_and_payments_pass_and_each_is_bounded() {
    let (relay, mut listener, addr) = view().await;
    let student = [127, 0, 0, 2];
    let refused = [
        (
            "/api/wallet/ask",
            br#"{"kind":"headers","id":"x","headers":[]}"#.to_vec(),
            400,
            "not a request",
        ),
        (
            "/api/wallet/ask",
            format!(
                r#"{{"kind":"get-headers","id":"{}","locator":[]}}"#,
                "i".repeat(40)
            )
            .into_bytes(),
            400,
            "at most",
        ),
        ("/api/wallet/ask", b"not json".to_vec(), 400, "SPV"),
        (
            "/api/wallet/ask",
            format!(
                r#"{{"kind":"get-proofs","id":"x","address":"{}"}}"#,
                "A".repeat(20_000)
            )
            .into_bytes(),
            413,
            "",
        ),
        ("/api/wallet/send", b"[[], \"{}\"]".to_vec(), 400, ""),
        (
            "/api/wallet/send",
            br#"{"kind":"get-headers","id":"x","locator":[]}"#.to_vec(),
            400,
            "",
        ),
        ("/api/wallet/send", vec![b'['; MAX_BODY + 1], 413, ""),
    ];
    for (path, body, want, says) in refused {
        let (status, why) = request(student, addr, "POST", path, &body).await;
        assert_eq!(
            status,
            want,
            "{path} {}: {why}",
            String::from_utf8_lossy(&body[..body.len().min(80)])
        );
        assert!(why.contains(says), "{why}");
    }
    listener.stop(WAIT).await;
    relay.stop().await.unwrap();
}

/// One laptop (127.0.0.2) sends 30 requests at once: a few wait for
/// answers, the rest are refused at once (429, or the connection closed:
/// a laptop's share of connections), and a classmate's (127.0.0.3)
/// request is still taken.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_laptops_flood_of_requests_leaves_a_classmate_room() {
    let (relay, mut listener, addr) = view().await;
    let ask = br#"{"kind":"get-headers","id":"f","locator":[]}"#;
    let flood: Vec<_> = (0..30)
        .map(|_| {
            tokio::spawn(request(
                [127, 0, 0, 2],
                addr,
                "POST",
                "/api/wallet/ask",
                ask,
            ))
        })
        .collect();
    // A moment for the flood to take its places.
    let mut waited = 0;
    let mut classmate = None;
    while waited < 50 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        waited += 1;
        if flood.iter().filter(|h| h.is_finished()).count() >= 30 - IN_FLIGHT_PER_ADDRESS {
            classmate = Some(request([127, 0, 0, 3], addr, "POST", "/api/wallet/ask", ask).await);
            break;
        }
    }
    let mut codes = Vec::new();
    for h in flood {
        codes.push(h.await.unwrap().0);
    }
    let taken = codes.iter().filter(|&&c| c == 200).count();
    let refused = codes.iter().filter(|&&c| c == 429 || c == 0).count();
    assert!(taken <= IN_FLIGHT_PER_ADDRESS, "{codes:?}");
    assert_eq!(taken + refused, 30, "{codes:?}");
    let (status, answers) = classmate.expect("the flood was answered");
    assert_eq!(status, 200, "{answers}");
    // No node on this relay: no answers, and none made up.
    assert_eq!(answers, "[]");
    listener.stop(WAIT).await;
    relay.stop().await.unwrap();
}

/// The view answers a page's headers itself, from the best chain it
/// follows, after the first locator hash it knows, as a node would.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_view_gives_the_best_chains_headers_after_a_locator() {
    use toycoin_common::chain::{now_secs, Chain};
    use toycoin_common::message::encode_bloc;
    use toycoin_common::relay::{RelayClient, DEFAULT_TOPIC};
    use toycoin_common::spv::{block_hash_text, HeaderWire};

    let (relay, mut listener, addr) = view().await;
    let mut chain = Chain::new(toycoin_tests::keys::network(5.0).profile());
    let mut publisher = RelayClient::connect(relay.addr, DEFAULT_TOPIC)
        .await
        .unwrap();
    let mut blocks = Vec::new();
    for _ in 0..3 {
        let block = chain
            .mine_next(
                &toycoin_common::address::example(b"alice"),
                Vec::new(),
                now_secs(),
            )
            .unwrap();
        chain.push(block.clone(), now_secs()).unwrap();
        publisher
            .publish(DEFAULT_TOPIC, &encode_bloc(std::slice::from_ref(&block)))
            .await
            .unwrap();
        blocks.push(block);
    }
    let ask = |locator: Vec<String>| {
        let body = serde_json::json!({ "locator": locator }).to_string();
        async move {
            request(
                [127, 0, 0, 2],
                addr,
                "POST",
                "/api/wallet/headers",
                body.as_bytes(),
            )
            .await
        }
    };
    // Once the listener has the three blocks: all of them from genesis.
    let deadline = tokio::time::Instant::now() + WAIT;
    let all = loop {
        let (status, body) = ask(Vec::new()).await;
        assert_eq!(status, 200, "{body}");
        let answer: Value = serde_json::from_str(&body).unwrap();
        if answer["headers"].as_array().unwrap().len() == 3 {
            break answer;
        }
        assert!(tokio::time::Instant::now() < deadline, "{answer}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(all["kind"], "headers");
    let wire = |i: usize| serde_json::to_value(HeaderWire::from_header(&blocks[i].header)).unwrap();
    assert_eq!(all["headers"][0], wire(0));
    assert_eq!(all["headers"][2], wire(2));
    // After block 1 (an unknown hash first, as a locator may have): block 2.
    let unknown = block_hash_text(&toycoin_common::hash::BlockHash::from_raw_hash(
        toycoin_common::hash::Hash::of(b"not a block"),
    ));
    let (_, body) = ask(vec![unknown, block_hash_text(&blocks[1].header.this_hash)]).await;
    let after: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(after["headers"], Value::Array(vec![wire(2)]));
    // Up to date: none.
    let (_, body) = ask(vec![block_hash_text(&blocks[2].header.this_hash)]).await;
    let none: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(none["headers"], Value::Array(Vec::new()));
    // Not a locator.
    let (status, _) = request(
        [127, 0, 0, 2],
        addr,
        "POST",
        "/api/wallet/headers",
        b"[1,2]",
    )
    .await;
    assert_eq!(status, 400);
    listener.stop(WAIT).await;
    relay.stop().await.unwrap();
}
