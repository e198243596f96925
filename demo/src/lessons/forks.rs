//! Lesson 2: forks, settled by the next block; the losing branch's
//! payments mined again.

use crate::lesson::{Act, Lesson, Setup, Step, Wait};

pub fn lesson() -> Lesson {
    Lesson {
        name: "forks",
        title: "Forks, settled by the next block",
        about: "Hold every message so that two nodes mine the same height unaware of each other: two branches, settled by the next block. Then cut the network in two, the oracle's payments going only to the weaker half; heal it: the heavier branch wins everywhere, and the payments of the losing branch are mined again.",
        setup: Setup {
            nodes: 2,
            shares: vec![0.4, 0.8],
            ..Setup::default()
        },
        steps: vec![
            Step {
                title: "One chain",
                watch: "Both nodes build on the same tip; the oracle's payments go into their blocks.",
                act: vec![],
                wait: Wait::Blocks(2),
                within: 20.0,
                then: "One network, one chain.",
            },
            Step {
                title: "Hold every message: each node mines alone",
                watch: "The teacher's relay holds every message: no block, no payment reaches anyone. Both nodes go on mining on the same tip, each on its own.",
                act: vec![Act::Hold],
                wait: Wait::Mined(vec!["node1", "node2"]),
                within: 20.0,
                then: "Two blocks for one height, neither known to the other: this is what two nodes finding a block at nearly the same time looks like.",
            },
            Step {
                title: "Release: two branches",
                watch: "The relay delivers what it held: each node hears the other's block. The web view shows two branches, and under each block which node had it first.",
                act: vec![Act::Release],
                wait: Wait::Fork,
                within: 10.0,
                then: "At equal work each node keeps the block it had first: the network disagrees, for now.",
            },
            Step {
                title: "The next block settles it",
                watch: "Whichever branch gets the next block has more work: every node moves to it.",
                act: vec![],
                wait: Wait::Settled,
                within: 20.0,
                then: "A tie lasts until the next block; nobody votes.",
            },
            Step {
                title: "A partition: two chains",
                watch: "node1 and the oracle on one side, node2 (twice node1's hash power) on the other. Neither hears the other's blocks, so both mine at the same heights, and only node1's blocks get the oracle's payments: the web view shows two branches.",
                act: vec![Act::Partition(vec![vec!["node1", "oracle"], vec!["node2"]])],
                wait: Wait::SideWithPayments,
                within: 40.0,
                then: "Two blocks at one height: a fork. Each half believes its own chain; neither is wrong yet. The listener, hearing both, already knows which has more work.",
            },
            Step {
                title: "Heal: the heavier chain wins",
                watch: "When the halves hear each other again, every node keeps the branch with more work and rolls the other back.",
                act: vec![Act::Heal],
                wait: Wait::Settled,
                within: 20.0,
                then: "The fork is settled by work, not by a vote: the longer partition's heavier branch wins at once.",
            },
            Step {
                title: "The loser's payments are mined again",
                watch: "The payments in node1's rolled-back blocks are pending again, and go into new blocks.",
                act: vec![],
                wait: Wait::Remined,
                within: 30.0,
                then: "Nothing valid is lost in a reorganisation; it is only confirmed later. That is why one confirmation is not final.",
            },
        ],
    }
}
