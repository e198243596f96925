//! Frames and the relay client session over real TCP on 127.0.0.1, against
//! a scripted peer.

// In tests a panic is the failure report.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::time::timeout;
use toycoin_common::frame::{Connection, FrameError, KEEP_BUFFER};
use toycoin_common::relay::RelayClient;

const WAIT: Duration = Duration::from_secs(5);

#[tokio::test]
async fn relay_client_speaks_the_session() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    // A scripted relay: expects a subscription, then one publication, and
    // delivers its data frame back as a subscriber would receive it.
    let relay = tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        let mut conn = Connection::new(stream, 1024);
        let topic = conn.read_frame().await.unwrap().unwrap();
        let pub_topic = conn.read_frame().await.unwrap().unwrap();
        let data = conn.read_frame().await.unwrap().unwrap();
        conn.write_frame(&data).await.unwrap();
        (topic, pub_topic, data)
    });
    let client = timeout(WAIT, RelayClient::connect(addr, "/topic/main"))
        .await
        .unwrap()
        .unwrap();
    let (mut rx, mut tx) = client.into_split();
    tx.publish("/topic/main", b"TXN [[], \"{}\"]")
        .await
        .unwrap();
    let got = timeout(WAIT, rx.recv()).await.unwrap().unwrap().unwrap();
    assert_eq!(&got[..], b"TXN [[], \"{}\"]");
    let (topic, pub_topic, data) = timeout(WAIT, relay).await.unwrap().unwrap();
    assert_eq!(&topic[..], b"/topic/main");
    assert_eq!(&pub_topic[..], b"/topic/main");
    assert_eq!(data, got);
    // The relay task has ended and dropped the socket: a clean end.
    assert!(timeout(WAIT, rx.recv()).await.unwrap().unwrap().is_none());
}

#[tokio::test]
async fn a_peer_closing_mid_frame_is_an_error_not_a_frame() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let peer = tokio::spawn(async move {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(&[0, 0, 0, 3, b'o', b'k', b'!', 0, 0, 0, 10, b'x'])
            .await
            .unwrap();
    });
    let (stream, _) = listener.accept().await.unwrap();
    let mut conn = Connection::new(stream, 1024);
    let first = timeout(WAIT, conn.read_frame())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(&first[..], b"ok!");
    peer.await.unwrap();
    let err = timeout(WAIT, conn.read_frame()).await.unwrap().unwrap_err();
    assert!(
        matches!(err, FrameError::Truncated { have: 1, want: 10 }),
        "{err}"
    );
}

#[tokio::test]
async fn an_oversized_length_prefix_is_refused() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let peer = tokio::spawn(async move {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(&[0x7f, 0xff, 0xff, 0xff]).await.unwrap();
        s
    });
    let (stream, _) = listener.accept().await.unwrap();
    let mut conn = Connection::new(stream, 1024);
    let err = timeout(WAIT, conn.read_frame()).await.unwrap().unwrap_err();
    assert_eq!(
        err.to_string(),
        "frame length 2147483647 exceeds the maximum of 1024 bytes"
    );
    drop(peer.await.unwrap());
}

/// Issue 34: one large frame (a catch-up answer) grew a program's read
/// buffer to 512 KiB and its write buffer to the frame's size, kept for
/// the rest of the lesson: a step in every program on the relay at once.
#[tokio::test]
async fn a_client_lets_go_of_what_one_large_frame_grew() {
    let large = vec![b'x'; 300 * 1024];
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let sent = large.clone();
    let relay = tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        let mut conn = Connection::new(stream, 1 << 20);
        let _topic = conn.read_frame().await.unwrap().unwrap();
        let _pub_topic = conn.read_frame().await.unwrap().unwrap();
        let data = conn.read_frame().await.unwrap().unwrap();
        assert_eq!(data.len(), sent.len());
        conn.write_frame(&sent).await.unwrap();
        conn.write_frame(b"small").await.unwrap();
        conn
    });
    let client = timeout(WAIT, RelayClient::connect(addr, "/topic/main"))
        .await
        .unwrap()
        .unwrap();
    let (mut rx, mut tx) = client.into_split();
    tx.publish("/topic/main", &large).await.unwrap();
    assert!(
        tx.buffer_capacity() <= KEEP_BUFFER,
        "{}",
        tx.buffer_capacity()
    );
    let got = timeout(WAIT, rx.recv()).await.unwrap().unwrap().unwrap();
    assert_eq!(got.len(), large.len());
    let got = timeout(WAIT, rx.recv()).await.unwrap().unwrap().unwrap();
    assert_eq!(&got[..], b"small");
    assert!(
        rx.buffer_capacity() <= KEEP_BUFFER,
        "{}",
        rx.buffer_capacity()
    );
    drop(timeout(WAIT, relay).await.unwrap().unwrap());
}
