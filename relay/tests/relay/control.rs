//! The teacher's controls: named clients, `$to:`, partitions, hold and
//! step, delay and loss, fault orders, and who may command.

use toycoin_common::control::{
    command, decode_order, encode_hello, proof, Command, NetworkStatus, Reply, CTL_TOPIC,
    HELLO_TOPIC,
};
use toycoin_relay::control::Teacher;

use super::*;

const TOKEN: &str = "the-teachers-token";

async fn start_controlled() -> Running {
    start(RelayConfig {
        teacher: Some(Teacher {
            token: TOKEN.into(),
            anywhere: false,
        }),
        ..RelayConfig::default()
    })
    .await
}

impl Running {
    async fn ctl(&self, cmd: Command) -> Reply {
        command(self.addr, TOKEN, cmd).await.unwrap()
    }

    async fn status(&self) -> NetworkStatus {
        self.ctl(Command::Status).await.status.unwrap()
    }

    /// A subscriber on the main topic that gives its name (or none).
    async fn client(&self, name: Option<&str>) -> RelayClient {
        // (Not `subscriber`, which counts subscriptions: each command is
        // a connection of its own, coming and going.)
        let mut c = RelayClient::connect(self.addr, "/topic/main")
            .await
            .unwrap();
        let shown = match name {
            Some(name) => {
                c.publish(HELLO_TOPIC, &encode_hello(name)).await.unwrap();
                name.to_string()
            }
            None => c.local_addr().unwrap().to_string(),
        };
        let deadline = Instant::now() + WAIT;
        while !self.status().await.clients.iter().any(|s| s.name == shown) {
            assert!(Instant::now() < deadline, "{shown} is shown in time");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        c
    }

    /// Waits until the relay holds `n` messages.
    async fn until_held(&self, n: usize) {
        let deadline = Instant::now() + WAIT;
        while self.status().await.held != n {
            assert!(Instant::now() < deadline, "{n} messages held in time");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

#[tokio::test]
async fn clients_are_named_and_a_second_one_of_a_name_is_told_apart() {
    let r = start_controlled().await;
    let _a = r.client(Some("node1")).await;
    let _b = r.client(None).await;
    let mut c = RelayClient::connect(r.addr, "/topic/main").await.unwrap();
    c.publish(HELLO_TOPIC, &encode_hello("node1"))
        .await
        .unwrap();
    let deadline = Instant::now() + WAIT;
    let status = loop {
        let status = r.status().await;
        if status.clients.iter().any(|s| s.name == "node1~2") {
            break status;
        }
        assert!(Instant::now() < deadline, "second node1 renamed in time");
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    let names: Vec<&str> = status.clients.iter().map(|c| c.name.as_str()).collect();
    // The unnamed client shows as its address; the commander too.
    assert_eq!(names.len(), 4, "{names:?}");
    assert_eq!(names[0], "node1");
    assert!(names[1].starts_with("127.0.0.1:"), "{names:?}");
    assert_eq!(names[2], "node1~2");
    r.stop().await;
}

#[tokio::test]
async fn a_partition_keeps_groups_apart_lets_observers_hear_all_and_heals() {
    let r = start_controlled().await;
    let mut a = r.client(Some("a")).await;
    let mut b = r.client(Some("b")).await;
    let mut c = r.client(Some("c")).await;
    let mut watcher = r.client(None).await;
    let reply = r
        .ctl(Command::Partition {
            groups: vec![vec!["a".into()], vec!["b".into(), "c".into()]],
        })
        .await;
    assert!(reply.ok, "{reply:?}");
    assert_eq!(r.status().await.clients[0].group, Some(0));
    assert_eq!(
        r.relay.rules().as_deref(),
        Some("partitioned into 2 groups")
    );

    a.publish("/topic/main", b"x1").await.unwrap();
    assert_eq!(recv(&mut watcher).await, "x1");
    assert_eq!(recv(&mut a).await, "x1", "a hears itself");
    b.publish("/topic/main", b"y1").await.unwrap();
    assert_eq!(recv(&mut watcher).await, "y1");
    let reply = r.ctl(Command::Heal).await;
    assert!(reply.ok);
    assert_eq!(r.relay.rules(), None);
    a.publish("/topic/main", b"x2").await.unwrap();
    // Frames come in publication order: had b or c heard x1, it would
    // come first; had a heard y1, it would come before x2.
    assert_eq!(recv(&mut b).await, "y1");
    assert_eq!(recv(&mut b).await, "x2");
    assert_eq!(recv(&mut c).await, "y1");
    assert_eq!(recv(&mut c).await, "x2");
    assert_eq!(recv(&mut a).await, "x2");
    assert_eq!(recv(&mut watcher).await, "x2");
    assert!(r.status().await.withheld >= 3);

    let one_group = r
        .ctl(Command::Partition {
            groups: vec![vec!["a".into(), "b".into()], vec!["b".into()]],
        })
        .await;
    assert!(!one_group.ok && one_group.message.contains("two groups"));
    r.stop().await;
}

#[tokio::test]
async fn hold_and_step_deliver_exactly_one_message_per_step() {
    let r = start_controlled().await;
    let mut a = r.client(Some("a")).await;
    let mut b = r.client(Some("b")).await;
    let refused = r.ctl(Command::Step { count: 1 }).await;
    assert!(!refused.ok && refused.message.contains("not holding"));
    assert!(r.ctl(Command::Hold).await.ok);
    for m in ["m1", "m2", "m3"] {
        a.publish("/topic/main", m.as_bytes()).await.unwrap();
    }
    r.until_held(3).await;
    for (m, left) in [("m1", 2), ("m2", 1)] {
        let reply = r.ctl(Command::Step { count: 1 }).await;
        assert_eq!(
            reply.message,
            format!("delivered 1 message; {left} still held")
        );
        assert_eq!(recv(&mut b).await, m);
        assert_eq!(recv(&mut a).await, m);
        assert_eq!(r.status().await.held, left);
    }
    let reply = r.ctl(Command::Release).await;
    assert!(reply.message.contains("released 1 held"), "{reply:?}");
    a.publish("/topic/main", b"m4").await.unwrap();
    // m3 once, then m4: nothing was delivered twice or lost.
    assert_eq!(recv(&mut b).await, "m3");
    assert_eq!(recv(&mut b).await, "m4");
    assert!(!r.status().await.holding);
    r.stop().await;
}

#[tokio::test]
async fn a_delay_holds_one_client_back_and_a_drop_rule_loses_its_messages() {
    let r = start_controlled().await;
    let mut a = r.client(Some("a")).await;
    let mut b = r.client(Some("b")).await;
    let mut c = r.client(Some("c")).await;
    let delay = Duration::from_millis(300);
    assert!(
        r.ctl(Command::Delay {
            client: "b".into(),
            ms: 300
        })
        .await
        .ok
    );
    let sent = Instant::now();
    a.publish("/topic/main", b"d1").await.unwrap();
    assert_eq!(recv(&mut c).await, "d1");
    assert_eq!(recv(&mut b).await, "d1");
    assert!(sent.elapsed() >= delay, "b waited {:?}", sent.elapsed());
    let status = r.status().await;
    assert_eq!(status.clients[1].delay_ms, 300);
    assert!(status.delayed >= 1);

    let no_delay = Command::Delay {
        client: "b".into(),
        ms: 0,
    };
    assert!(r.ctl(no_delay).await.ok);
    let lose_all = Command::Drop {
        client: "b".into(),
        rate: 1.0,
    };
    assert!(r.ctl(lose_all).await.ok);
    a.publish("/topic/main", b"e1").await.unwrap();
    assert_eq!(recv(&mut c).await, "e1");
    let lose_none = Command::Drop {
        client: "b".into(),
        rate: 0.0,
    };
    assert!(r.ctl(lose_none).await.ok);
    a.publish("/topic/main", b"e2").await.unwrap();
    assert_eq!(recv(&mut b).await, "e2", "e1 was lost for b");
    assert_eq!(recv(&mut c).await, "e2");
    assert!(r.status().await.lost >= 1);
    let too_long = Command::Delay {
        client: "b".into(),
        ms: 60_000,
    };
    assert!(!r.ctl(too_long).await.ok);
    r.stop().await;
}

#[tokio::test]
async fn to_name_reaches_that_client_alone() {
    let r = start_controlled().await;
    let mut a = r.client(Some("a")).await;
    let mut b = r.client(Some("b")).await;
    let mut c = r.client(None).await;
    a.publish("$to:b", b"for b").await.unwrap();
    assert_eq!(recv(&mut b).await, "for b");
    a.publish("/topic/main", b"for all").await.unwrap();
    assert_eq!(recv(&mut c).await, "for all", "c did not get b's");
    assert_eq!(recv(&mut a).await, "for all", "nor the sender");
    r.stop().await;
}

#[tokio::test]
async fn a_fault_order_reaches_the_named_node_with_the_tokens_proof_and_cannot_be_forged() {
    let r = start_controlled().await;
    let mut node = r.client(Some("node2")).await;
    let mut other = r.client(Some("node1")).await;
    let reply = r
        .ctl(Command::Fault {
            client: "node2".into(),
            mode: "silent".into(),
        })
        .await;
    assert!(reply.ok, "{reply:?}");
    let order = decode_order(&recv(&mut node).await).unwrap().unwrap();
    assert_eq!(order.fault, "silent");
    assert_eq!(order.proof, proof(TOKEN));
    let unknown = Command::Fault {
        client: "node2".into(),
        mode: "sleepy".into(),
    };
    assert!(!r.ctl(unknown).await.ok);
    let nobody = Command::Fault {
        client: "node9".into(),
        mode: "silent".into(),
    };
    assert!(r.ctl(nobody).await.message.contains("no client"));

    // A client cannot pass its own frame off as an order, nor use the
    // relay's topics for anything else.
    let mut forger = r.client(Some("forger")).await;
    forger
        .publish(
            "/topic/main",
            b"$ORDER {\"fault\":\"silent\",\"proof\":\"x\"}",
        )
        .await
        .unwrap();
    assert!(timeout(WAIT, forger.recv())
        .await
        .unwrap()
        .unwrap()
        .is_none());
    let mut odd = r.client(None).await;
    odd.publish("$admin", b"{}").await.unwrap();
    assert!(timeout(WAIT, odd.recv()).await.unwrap().unwrap().is_none());
    // A client names itself once: a second name gets it dropped.
    let mut renamer = r.client(Some("renamer")).await;
    renamer
        .publish(HELLO_TOPIC, &encode_hello("renamed"))
        .await
        .unwrap();
    assert!(timeout(WAIT, renamer.recv())
        .await
        .unwrap()
        .unwrap()
        .is_none());
    other.publish("/topic/main", b"still here").await.unwrap();
    assert_eq!(recv(&mut node).await, "still here");
    r.stop().await;
}

#[tokio::test]
async fn a_command_without_the_token_is_refused_and_said_so() {
    let r = start_controlled().await;
    let wrong = command(r.addr, "guess", Command::Heal).await.unwrap();
    assert!(!wrong.ok);
    assert!(
        wrong.message.starts_with("refused: wrong token"),
        "{wrong:?}"
    );
    // The third refusal on one connection ends it.
    let mut c = RelayClient::connect(r.addr, CTL_TOPIC).await.unwrap();
    let challenge: toycoin_common::control::Challenge =
        serde_json::from_slice(&recv(&mut c).await).unwrap();
    assert_eq!(challenge.challenge.len(), 32);
    let guess = br#"{"mac":"00","cmd":"hold"}"#;
    for _ in 0..2 {
        c.publish(CTL_TOPIC, guess).await.unwrap();
        let reply: Reply = serde_json::from_slice(&recv(&mut c).await).unwrap();
        assert!(!reply.ok);
    }
    c.publish(CTL_TOPIC, guess).await.unwrap();
    assert!(timeout(WAIT, c.recv()).await.unwrap().unwrap().is_none());
    assert!(!r.status().await.holding, "nothing was done");
    r.stop().await;

    let open = start(RelayConfig::default()).await;
    let reply = command(open.addr, TOKEN, Command::Status).await.unwrap();
    assert!(!reply.ok && reply.message.contains("takes no commands"));
    open.stop().await;
}

/// Issue 33, "names": node1 signs its name with its key; while it is
/// away a student says `$hello node1`. Before, the student kept the name,
/// got the teacher's `fault node1 silent`, and the real node became
/// `node1~2`. Now the name belongs to node1's key: the student stays
/// unnamed and gets no order, node1 comes back as node1 and gets it.
#[tokio::test]
async fn a_squatter_gets_no_name_it_does_not_own_nor_its_orders() {
    use rand::SeedableRng;
    use toycoin_common::control::encode_signed_hello;
    let r = start_controlled().await;
    let key = toycoin_common::wallet::Wallet::generate(&mut rand::rngs::StdRng::seed_from_u64(33))
        .unwrap();
    let signed_client = || async {
        let mut c = RelayClient::connect(r.addr, "/topic/main").await.unwrap();
        let hello = encode_signed_hello("node1", &key, toycoin_common::chain::now_secs());
        c.publish(HELLO_TOPIC, &hello).await.unwrap();
        c
    };
    let named = |status: &NetworkStatus, name: &str| {
        status.clients.iter().filter(|s| s.name == name).count()
    };
    // node1 once, then away.
    let first = signed_client().await;
    let deadline = Instant::now() + WAIT;
    while named(&r.status().await, "node1") != 1 {
        assert!(Instant::now() < deadline, "node1 named in time");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    drop(first);
    while named(&r.status().await, "node1") != 0 {
        assert!(Instant::now() < deadline, "node1 gone in time");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // The squatter, then node1 back.
    let mut squatter = RelayClient::connect(r.addr, "/topic/main").await.unwrap();
    squatter
        .publish(HELLO_TOPIC, &encode_hello("node1"))
        .await
        .unwrap();
    let mut node1 = signed_client().await;
    let status = loop {
        let status = r.status().await;
        if named(&status, "node1") == 1 && status.clients.len() >= 3 {
            break status;
        }
        assert!(Instant::now() < deadline, "node1 back in time: {status:?}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    assert_eq!(named(&status, "node1~2"), 0, "{status:?}");
    let reply = r
        .ctl(Command::Fault {
            client: "node1".into(),
            mode: "silent".into(),
        })
        .await;
    assert!(
        reply.ok && reply.message.contains("(1 connection)"),
        "{reply:?}"
    );
    let order = decode_order(&recv(&mut node1).await).unwrap().unwrap();
    assert_eq!(order.fault, "silent");
    // The squatter hears the next frame on the topic, and no order first.
    let mut other = r.client(None).await;
    other
        .publish("/topic/main", b"after the order")
        .await
        .unwrap();
    assert_eq!(recv(&mut squatter).await, "after the order");
    r.stop().await;
}

/// A student cannot rewind the class's web view: a frame passing itself
/// off as a replay's position (`$REPLAY `, which makes a listener start
/// again from nothing) is refused on a live relay, its sender dropped,
/// and the class never sees it.
#[tokio::test]
async fn a_client_cannot_pass_its_frame_off_as_a_replays_position() {
    let r = start_controlled().await;
    let mut watcher = r.client(Some("listener")).await;
    let mut forger = r.client(Some("forger")).await;
    let rewind = toycoin_common::timeline::Position {
        epoch: 7,
        ..Default::default()
    };
    forger
        .publish("/topic/main", &rewind.encode())
        .await
        .unwrap();
    assert!(timeout(WAIT, forger.recv())
        .await
        .unwrap()
        .unwrap()
        .is_none());
    let mut other = r.client(Some("node1")).await;
    other.publish("/topic/main", b"still here").await.unwrap();
    assert_eq!(recv(&mut watcher).await, "still here");
    // Nor can the teacher seek a live class.
    let seek = r.ctl(Command::Seek { secs: 1.0 }).await;
    assert!(
        !seek.ok && seek.message.contains("not a replay"),
        "{seek:?}"
    );
    r.stop().await;
}
