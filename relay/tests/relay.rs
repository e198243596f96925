//! The relay in-process on 127.0.0.1:0: fan-out, ordering, topics, every
//! kind of bad client, slow subscribers, limits, churn and shutdown.

// In tests a panic is the failure report.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{timeout, Instant};
use toycoin_common::relay::RelayClient;
use toycoin_relay::local::LocalRelay;
use toycoin_relay::{Relay, RelayConfig, SlowPolicy};

const WAIT: Duration = Duration::from_secs(10);

struct Running {
    relay: Relay,
    addr: SocketAddr,
    local: LocalRelay,
}

async fn start(config: RelayConfig) -> Running {
    let local = toycoin_relay::local::spawn(
        "127.0.0.1:0",
        RelayConfig {
            summary_interval: None,
            ..config
        },
    )
    .await
    .unwrap();
    Running {
        relay: local.relay.clone(),
        addr: local.addr,
        local,
    }
}

impl Running {
    async fn stop(self) {
        timeout(WAIT, self.local.stop())
            .await
            .expect("relay stops")
            .unwrap();
        assert_eq!(self.relay.tasks(), 0);
    }

    async fn subscriber(&self, topic: &str) -> RelayClient {
        let before = self.relay.subscriptions();
        let c = RelayClient::connect(self.addr, topic).await.unwrap();
        self.wait_until(|r| r.subscriptions() > before).await;
        c
    }

    /// Waits for a condition on the relay, failing after `WAIT`.
    async fn wait_until(&self, cond: impl Fn(&Relay) -> bool) {
        let deadline = Instant::now() + WAIT;
        while !cond(&self.relay) {
            assert!(
                Instant::now() < deadline,
                "condition not reached in {WAIT:?}"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

async fn recv(c: &mut RelayClient) -> Bytes {
    timeout(WAIT, c.recv())
        .await
        .expect("a frame in time")
        .unwrap()
        .expect("not closed")
}

/// Reads until the relay closes the raw connection (EOF or reset).
async fn closed_by_relay(s: &mut TcpStream) {
    let mut buf = [0u8; 1024];
    loop {
        match timeout(WAIT, s.read(&mut buf))
            .await
            .expect("relay closes the connection")
        {
            Ok(0) | Err(_) => return,
            Ok(_) => continue,
        }
    }
}

fn frame(payload: &[u8]) -> Vec<u8> {
    let mut f = (payload.len() as u32).to_be_bytes().to_vec();
    f.extend_from_slice(payload);
    f
}

#[tokio::test]
async fn fans_out_to_many_subscribers_in_order_including_the_sender() {
    let r = start(RelayConfig::default()).await;
    let mut subs = Vec::new();
    for _ in 0..40 {
        subs.push(r.subscriber("/topic/main").await);
    }
    let mut publisher = r.subscriber("/topic/main").await;
    for i in 0..200u32 {
        publisher
            .publish("/topic/main", format!("msg {i}").as_bytes())
            .await
            .unwrap();
    }
    for sub in subs.iter_mut().chain(std::iter::once(&mut publisher)) {
        for i in 0..200u32 {
            assert_eq!(recv(sub).await, format!("msg {i}").as_bytes());
        }
    }
    assert_eq!(r.relay.stats().deliveries, 200 * 41);
    r.stop().await;
}

#[tokio::test]
async fn keeps_each_publishers_order_and_keeps_topics_apart() {
    let r = start(RelayConfig::default()).await;
    let mut main = r.subscriber("/topic/main").await;
    let mut other = r.subscriber("/topic/other").await;
    let mut p1 = r.subscriber("/connect").await;
    let mut p2 = r.subscriber("/connect").await;
    let (a, b) = tokio::join!(
        async {
            for i in 0..300u32 {
                p1.publish("/topic/main", format!("a{i}").as_bytes())
                    .await
                    .unwrap();
            }
        },
        async {
            for i in 0..300u32 {
                p2.publish("/topic/main", format!("b{i}").as_bytes())
                    .await
                    .unwrap();
            }
        }
    );
    let _ = (a, b);
    let (mut next_a, mut next_b) = (0, 0);
    for _ in 0..600 {
        let m = String::from_utf8(recv(&mut main).await.to_vec()).unwrap();
        let (who, n) = m.split_at(1);
        let n: u32 = n.parse().unwrap();
        match who {
            "a" => {
                assert_eq!(n, next_a);
                next_a += 1;
            }
            _ => {
                assert_eq!(n, next_b);
                next_b += 1;
            }
        }
    }
    // Nothing published to /topic/other reached it before this message.
    p1.publish("/topic/other", b"only for other").await.unwrap();
    assert_eq!(recv(&mut other).await, &b"only for other"[..]);
    r.stop().await;
}

#[tokio::test]
async fn drops_each_bad_client_while_a_good_subscriber_keeps_receiving() {
    let r = start(RelayConfig {
        max_frame_len: 64 * 1024,
        subscribe_timeout: Duration::from_millis(300),
        ..RelayConfig::default()
    })
    .await;
    let mut good = r.subscriber("/topic/main").await;
    let mut publisher = r.subscriber("/connect").await;

    let oversized = {
        let mut f = frame(b"/topic/main");
        f.extend_from_slice(&u32::MAX.to_be_bytes());
        f
    };
    let mid_frame = {
        let mut f = frame(b"/topic/main");
        f.extend_from_slice(&frame(b"/topic/main"));
        f.extend_from_slice(&[0, 0, 0, 100, b'x']);
        f
    };
    let garbage = {
        let mut f = frame(b"/topic/main");
        f.extend_from_slice(&frame(&[0xff, 0xfe, 0x00, 0x01]));
        f
    };
    let data_without_topic = {
        let mut f = frame(b"/topic/main");
        f.extend_from_slice(&frame(&[b'T'; 2000]));
        f
    };
    let bad_clients: Vec<(&str, Vec<u8>, bool)> = vec![
        ("oversized length prefix", oversized, false),
        ("closes mid-frame", mid_frame, true),
        ("garbage topic", garbage, false),
        ("data frame without a topic", data_without_topic, false),
        ("never subscribes", Vec::new(), false),
        (
            "subscription over the limit",
            u32::MAX.to_be_bytes().to_vec(),
            false,
        ),
    ];
    for (i, (what, bytes, half_close)) in bad_clients.into_iter().enumerate() {
        let mut s = TcpStream::connect(r.addr).await.unwrap();
        s.write_all(&bytes).await.unwrap();
        if half_close {
            s.shutdown().await.unwrap();
        }
        closed_by_relay(&mut s).await;
        r.wait_until(|relay| relay.stats().bad_clients == i as u64 + 1)
            .await;
        let msg = format!("still here after: {what}");
        publisher
            .publish("/topic/main", msg.as_bytes())
            .await
            .unwrap();
        assert_eq!(recv(&mut good).await, msg.as_bytes());
    }
    r.wait_until(|relay| relay.stats().clients == 2 && relay.subscriptions() == 2)
        .await;
    r.stop().await;
}

#[tokio::test]
async fn a_stalled_subscriber_delays_nobody_and_its_drops_are_counted() {
    let r = start(RelayConfig {
        queue_messages: 4,
        ..RelayConfig::default()
    })
    .await;
    // Subscribes, then never reads.
    let stalled = r.subscriber("/topic/main").await;
    let mut good = r.subscriber("/topic/main").await;
    let mut publisher = r.subscriber("/connect").await;
    let payload = vec![b'p'; 64 * 1024];
    let count = 800u32; // 50 MiB: far more than the stalled socket can buffer
                        // Lockstep: each message must reach the good subscriber before the next
                        // is sent, so any wait on the stalled one would show up as a timeout.
    for i in 0..count {
        publisher.publish("/topic/main", &payload).await.unwrap();
        let m = timeout(WAIT, good.recv()).await;
        let m = m.unwrap_or_else(|_| panic!("message {i} delayed: {:?}", r.relay.stats()));
        assert_eq!(m.unwrap().unwrap().len(), 64 * 1024);
    }
    let stats = r.relay.stats();
    assert!(stats.dropped > 0, "{stats:?}");
    assert_eq!(stats.deliveries + stats.dropped, 2 * u64::from(count));
    drop(stalled);
    r.stop().await;
}

#[tokio::test]
async fn a_slow_subscriber_can_be_disconnected_instead() {
    let r = start(RelayConfig {
        queue_messages: 2,
        slow_policy: SlowPolicy::Disconnect,
        ..RelayConfig::default()
    })
    .await;
    let stalled = RelayClient::connect(r.addr, "/topic/main").await.unwrap();
    r.wait_until(|relay| relay.subscriptions() == 1).await;
    let mut publisher = r.subscriber("/connect").await;
    let payload = vec![b'p'; 64 * 1024];
    let deadline = Instant::now() + WAIT;
    while r.relay.subscriptions() > 1 {
        assert!(
            Instant::now() < deadline,
            "stalled subscriber never disconnected"
        );
        publisher.publish("/topic/main", &payload).await.unwrap();
    }
    r.wait_until(|relay| relay.stats().clients == 1).await;
    drop(stalled);
    r.stop().await;
}

#[tokio::test]
async fn refuses_connections_over_the_limit_by_closing_them() {
    let r = start(RelayConfig {
        max_connections: 3,
        ..RelayConfig::default()
    })
    .await;
    let mut first = r.subscriber("/topic/main").await;
    let _second = r.subscriber("/topic/main").await;
    let _third = r.subscriber("/topic/main").await;
    let mut extra = TcpStream::connect(r.addr).await.unwrap();
    closed_by_relay(&mut extra).await;
    assert_eq!(r.relay.stats().refused, 1);
    first
        .publish("/topic/main", b"after refusal")
        .await
        .unwrap();
    assert_eq!(recv(&mut first).await, &b"after refusal"[..]);
    drop(first);
    r.wait_until(|relay| relay.stats().clients == 2).await;
    let mut again = r.subscriber("/topic/main").await;
    again
        .publish("/topic/main", b"a place was free")
        .await
        .unwrap();
    assert_eq!(recv(&mut again).await, &b"a place was free"[..]);
    r.stop().await;
}

#[tokio::test]
async fn hundreds_of_clients_coming_and_going_leave_nothing_behind() {
    let r = start(RelayConfig::default()).await;
    let addr = r.addr;
    let clients: Vec<_> = (0..300)
        .map(|i| {
            tokio::spawn(async move {
                let topic = format!("/topic/{}", i % 7);
                let mut c = RelayClient::connect(addr, &topic).await.unwrap();
                c.publish(&topic, b"hello").await.unwrap();
                c
            })
        })
        .collect();
    let mut held = Vec::new();
    for c in clients {
        held.push(timeout(WAIT, c).await.unwrap().unwrap());
    }
    r.wait_until(|relay| relay.stats().messages == 300).await;
    assert!(r.relay.tasks() > 0);
    drop(held);
    r.wait_until(|relay| relay.stats().clients == 0).await;
    r.wait_until(|relay| relay.subscriptions() == 0 && relay.topics() == 0 && relay.tasks() == 0)
        .await;
    r.stop().await;
}

#[tokio::test]
async fn shuts_down_cleanly_closing_every_client() {
    let r = start(RelayConfig::default()).await;
    let mut a = r.subscriber("/topic/main").await;
    let mut raw = TcpStream::connect(r.addr).await.unwrap(); // not subscribed yet
    r.wait_until(|relay| relay.stats().clients == 2).await;
    r.stop().await;
    assert!(timeout(WAIT, a.recv())
        .await
        .unwrap()
        .map_or(true, |f| f.is_none()));
    closed_by_relay(&mut raw).await;
}
