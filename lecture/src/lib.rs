//! The lecture's Go concurrency examples, in Rust: run them with
//! `cargo run --example waitgroup` (also `channel`, `shared_map`,
//! `select`), and read `docs/concurrency.md` for where the toycoin
//! programs use each pattern.
//!
//! # Go's unprotected map, as Rust refuses it
//!
//! The lecture shows that Go's maps are not safe for concurrent use: two
//! goroutines writing one map is a data race, which Go finds only at run
//! time, and only with its race detector (`go run -race`). The same
//! program in Rust does not compile. Two threads that both borrow the map
//! mutably:
//!
//! ```compile_fail,E0499
//! use std::collections::HashMap;
//!
//! let mut balances: HashMap<&str, i64> = HashMap::new();
//! std::thread::scope(|s| {
//!     s.spawn(|| balances.insert("alice", 100));
//!     s.spawn(|| balances.insert("bob", 50));
//! });
//! ```
//!
//! is refused with `error[E0499]: cannot borrow balances as mutable more
//! than once at a time`: the compiler's borrow rules (one writer, or any
//! number of readers) are the race detector, at compile time. What one
//! writes instead is what Go's `sync.Mutex` gives, with the lock holding
//! the data, so the map cannot be touched without taking it:
//!
//! ```
//! use std::collections::HashMap;
//! use std::sync::Mutex;
//!
//! let balances: Mutex<HashMap<&str, i64>> = Mutex::new(HashMap::new());
//! std::thread::scope(|s| {
//!     s.spawn(|| balances.lock().unwrap().insert("alice", 100));
//!     s.spawn(|| balances.lock().unwrap().insert("bob", 50));
//! });
//! assert_eq!(balances.into_inner().unwrap().len(), 2);
//! ```
//!
//! (Threads that outlive the function need the map in an `Arc` as well:
//! see the `shared_map` example.)
