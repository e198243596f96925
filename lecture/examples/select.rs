//! A `select` over two channels fed by twenty goroutines, stopping after
//! 21 messages.
//!
//! Go: ten goroutines keep sending on `a`, ten on `b`; main loops on
//! `select { case m := <-a: ...; case m := <-b: ... }` and returns after
//! 21 messages. Which channel each message comes from, and from which
//! goroutine, changes from run to run.
//!
//! What differs: `tokio::select!` is Go's `select` over futures: it waits
//! on both `recv()`s and runs the branch of whichever is ready first (at
//! random when both are, as in Go). When main stops receiving it drops the
//! receivers; every sender's next `send` then fails and its task ends,
//! where Go's goroutines would block forever on a channel nobody reads (a
//! goroutine leak) unless they also select on a `done` channel.

use std::time::Duration;

use rand::Rng;
use tokio::sync::mpsc;

#[tokio::main]
async fn main() {
    let (a_tx, mut a) = mpsc::channel::<String>(4);
    let (b_tx, mut b) = mpsc::channel::<String>(4);
    let mut feeders = Vec::new();
    for g in 0..20 {
        let (tx, name) = if g % 2 == 0 {
            (a_tx.clone(), "a")
        } else {
            (b_tx.clone(), "b")
        };
        feeders.push(tokio::spawn(async move {
            for n in 0.. {
                let pause = rand::thread_rng().gen_range(1..20);
                tokio::time::sleep(Duration::from_millis(pause)).await;
                if tx
                    .send(format!("{name}: goroutine {g}, message {n}"))
                    .await
                    .is_err()
                {
                    return; // main stopped listening
                }
            }
        }));
    }
    drop((a_tx, b_tx));
    for count in 1..=21 {
        let message = tokio::select! {
            Some(m) = a.recv() => m,
            Some(m) = b.recv() => m,
        };
        println!("{count:2}. {message}");
    }
    // Stop listening: each feeder's next send fails and it returns.
    drop((a, b));
    for feeder in feeders {
        feeder.await.expect("no feeder panicked");
    }
    println!("stopped after 21 messages; all 20 senders returned");
}
