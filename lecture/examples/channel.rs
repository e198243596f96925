//! Three goroutines sending on one channel after different sleeps.
//!
//! Go: three goroutines sleep 3, 1 and 2 (tenths of a second here), then
//! send their name on `ch`; main receives three times. The messages arrive
//! in the order the sleeps end, not the order the goroutines started.
//!
//! What differs: Go's `make(chan string)` is one type used by both ends;
//! tokio's `mpsc::channel` hands back a sender (cloned for each task) and
//! a single receiver. A Go channel is closed by its sender with `close`;
//! here the channel closes by itself when every sender is dropped, so the
//! `while let` loop ends without counting. The buffer size (1 here) is
//! explicit, as in `make(chan string, 1)`.

use std::time::Duration;

use tokio::sync::mpsc;

#[tokio::main]
async fn main() {
    let (tx, mut rx) = mpsc::channel::<String>(1);
    for (name, tenths) in [
        ("first, sleeps 3", 3),
        ("second, sleeps 1", 1),
        ("third, sleeps 2", 2),
    ] {
        let tx = tx.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(100 * tenths)).await;
            tx.send(name.to_owned()).await.expect("main is receiving");
        });
    }
    // Main's own sender goes too, so the channel closes after the three.
    drop(tx);
    while let Some(message) = rx.recv().await {
        println!("received: {message}");
    }
    println!("channel closed: every sender is gone");
}
