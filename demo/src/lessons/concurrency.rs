//! Lesson 8: the lecture's concurrency, in the programs: threads that
//! share a job (a WaitGroup), channels, select.

use crate::lesson::{Act, Lesson, Setup, Step, Wait};

pub fn lesson() -> Lesson {
    Lesson {
        name: "concurrency",
        title: "Threads, channels and select in a miner",
        about: "A node mines on one thread, then on two: the same job split over threads that all stop when one finds the nonce or a block arrives (the lecture's WaitGroup and select; docs/concurrency.md shows where each pattern is, and `cargo run -p toycoin-lecture --example waitgroup` runs the lecture's own).",
        setup: Setup {
            nodes: 1,
            shares: vec![0.0],
            threads: vec![1],
            ..Setup::default()
        },
        steps: vec![
            Step {
                title: "One thread",
                watch: "node1's hash rate in the nodes table.",
                act: vec![],
                wait: Wait::All(vec![Wait::Blocks(3), Wait::Rate("node1")]),
                within: 20.0,
                then: "One thread hashes one nonce after another.",
            },
            Step {
                title: "Two threads",
                watch: "node1 restarts with two mining threads: each searches its own share of the nonces, and all stop when one finds it.",
                act: vec![Act::Threads(1, 2)],
                wait: Wait::HashRate("node1", 1.25),
                within: 20.0,
                then: "Work that splits into independent parts scales with cores; the threads share nothing but a stop flag and the answer's channel.",
            },
        ],
    }
}
