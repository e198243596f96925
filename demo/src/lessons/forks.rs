//! Lesson 2: forks, settled by the next block; the losing branch's
//! payments mined again.

use crate::lesson::{Act, Lesson, Setup, Step, Wait};

pub fn lesson() -> Lesson {
    Lesson {
        name: "forks",
        title: "Forks, settled by the next block",
        about: "Cut the network in two: each half mines its own branch, and the oracle's payments go only to the weaker half. Heal it: the heavier branch wins everywhere, and the payments of the losing branch are mined again.",
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
                then: "The fork is settled by the blocks that follow it, not by a vote: more work wins, so a tie lasts only until the next block.",
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
