//! Lesson 3: difficulty follows the hash power.

use crate::lesson::{Act, Lesson, Setup, Step, Wait};

pub fn lesson() -> Lesson {
    Lesson {
        name: "difficulty",
        title: "Difficulty follows the hash power",
        about: "One node mines alone; a node with seven times its hash power joins and blocks come too fast, so the bits rise; it leaves and blocks come slowly until the bits come down.",
        setup: Setup {
            nodes: 2,
            late: vec![2],
            shares: vec![1.0, 7.0],
            ..Setup::default()
        },
        steps: vec![
            Step {
                title: "One node finds its level",
                watch: "The bits chart in the web view: each block moves the level by how far it came from the target.",
                act: vec![],
                wait: Wait::Blocks(5),
                within: 20.0,
                then: "On target, the bits stay put.",
            },
            Step {
                title: "A node joins with seven times the hash power",
                watch: "Blocks now come about eight times too fast; each early block raises the level a little.",
                act: vec![Act::StartNode(2)],
                wait: Wait::BitsRise,
                within: 40.0,
                then: "More hash power does not mean more blocks for long: the network asks each block for more work.",
            },
            Step {
                title: "It leaves",
                watch: "Back to one node: at the higher bits its blocks are slow, and each late block lowers the level.",
                act: vec![Act::StopNode(2)],
                wait: Wait::Blocks(3),
                within: 40.0,
                then: "The difficulty comes down again, one slow block at a time: the price of a rule that no burst of hash power can stall.",
            },
        ],
    }
}
