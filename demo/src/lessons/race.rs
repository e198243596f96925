//! Lesson 1, the first seed's own demo: a block mined, and a slow node
//! losing the race.

use crate::lesson::{Lesson, Setup, Step, Wait};

/// Targets node2 waits after each proof of work.
const DELAY: f64 = 3.0;

pub fn lesson() -> Lesson {
    Lesson {
        name: "race",
        title: "A block mined; a slow node loses the race",
        about: "Two nodes with the same hash power search for a nonce; node2 waits three targets after each proof of work before it says so, as the seed's slow node, and loses most races.",
        setup: Setup {
            nodes: 2,
            delays: vec![0.0, DELAY],
            shares: vec![0.5],
            ..Setup::default()
        },
        steps: vec![
            Step {
                title: "A block is mined",
                watch: "Each node hashes its block's header with nonce after nonce until the hash starts with enough zero bits. The web view's chain grows by one block; the listener names the block's miner and its transactions.",
                act: vec![],
                wait: Wait::Blocks(1),
                within: 10.0,
                then: "Anyone can check the proof with one hash; finding it took many.",
            },
            Step {
                title: "The slow node loses a race",
                watch: "node2 has as much hash power as node1, but after it finds a block it waits three targets before announcing it. Watch node2's pane (or its log): sooner or later its block comes too late.",
                act: vec![],
                wait: Wait::LostRace("node2"),
                within: 40.0,
                then: "A block announced late is worth nothing: every node already builds on the block it heard first, so node2's work at that height was wasted.",
            },
            Step {
                title: "Who mines the chain, and the odds",
                watch: "The nodes table and the chain's miners: equal hash power, unequal blocks. A block announced late loses whenever a rival block came within the delay: 1 - e^(-delay/interval).",
                act: vec![],
                wait: Wait::All(vec![
                    Wait::Blocks(6),
                    Wait::RaceOdds {
                        node: "node2",
                        delay: DELAY,
                        found: 4,
                    },
                ]),
                within: 60.0,
                then: "Speed of propagation is part of mining: a miner that is heard late loses blocks it found, which is why real miners sit close to each other on the network. The same formula gives the fork rate of any network, with the time a block takes to reach everyone as the delay.",
            },
        ],
    }
}
