//! A map shared by 100 readers and 50 writers under a mutex, with atomic
//! counters.
//!
//! Go: `var mu sync.Mutex; m := map[int]int{}`, 50 goroutines writing
//! `m[k] = v` and 100 reading `m[k]` under `mu.Lock()`, counting reads and
//! writes with `atomic.AddInt64`. Which reader sees which value changes
//! from run to run.
//!
//! What differs: Go's mutex sits beside the map, and nothing stops code
//! that forgets to lock; Rust's `Mutex<HashMap<..>>` holds the map, so it
//! can only be reached through the lock, and the lock is released when the
//! guard goes out of scope (no `defer mu.Unlock()`). `Arc` shares it
//! between tasks that may outlive `main`'s stack frame; Go's garbage
//! collector does that silently. `AtomicU64::fetch_add` is
//! `atomic.AddUint64`, with the memory ordering spelled out.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use rand::Rng;
use tokio::task::JoinSet;

/// A random pause of up to 2 ms, as goroutines are scheduled in no
/// particular order.
async fn jitter() {
    let micros = rand::thread_rng().gen_range(0..2000);
    tokio::time::sleep(std::time::Duration::from_micros(micros)).await;
}

#[tokio::main]
async fn main() {
    let map: Arc<Mutex<HashMap<u64, u64>>> = Arc::new(Mutex::new(HashMap::new()));
    let reads = Arc::new(AtomicU64::new(0));
    let writes = Arc::new(AtomicU64::new(0));
    let found = Arc::new(AtomicU64::new(0));
    let mut tasks = JoinSet::new();
    // Writers and readers started interleaved (one writer per two
    // readers): a reader may run before any writer of its key.
    for i in 0..150u64 {
        let (map, reads, writes, found) =
            (map.clone(), reads.clone(), writes.clone(), found.clone());
        if i % 3 == 0 {
            let w = i / 3;
            tasks.spawn(async move {
                jitter().await;
                map.lock().expect("not poisoned").insert(w % 10, w);
                writes.fetch_add(1, Ordering::Relaxed);
            });
        } else {
            let r = i - i / 3 - 1;
            tasks.spawn(async move {
                jitter().await;
                let seen = map.lock().expect("not poisoned").get(&(r % 10)).copied();
                reads.fetch_add(1, Ordering::Relaxed);
                if seen.is_some() {
                    found.fetch_add(1, Ordering::Relaxed);
                }
                if r < 6 {
                    // A few of them, to show the values change run to run.
                    println!("reader {r} saw key {}: {seen:?}", r % 10);
                }
            });
        }
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("no task panicked");
    }
    let keys = map.lock().expect("not poisoned").len();
    println!(
        "reads: {}, writes: {}, reads that found a value: {} (changes run to run), keys: {keys}",
        reads.load(Ordering::Relaxed),
        writes.load(Ordering::Relaxed),
        found.load(Ordering::Relaxed),
    );
}
