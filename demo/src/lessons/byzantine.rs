//! Lesson 6: the Byzantine generals — four ways a node fails, and a
//! partition healed.

use crate::lesson::{Act, Lesson, Setup, Step, Wait};
use toycoin_node::Fault;

pub fn lesson() -> Lesson {
    Lesson {
        name: "byzantine",
        title: "Four ways to fail, and agreement anyway",
        about: "Four nodes; one at a time plays a failure from the lecture — silent, stuck, invalid, liar — and the honest ones carry on. Then a partition, healed.",
        setup: Setup {
            nodes: 4,
            shares: vec![0.25],
            ..Setup::default()
        },
        steps: vec![
            Step {
                title: "A silent general",
                watch: "node2 hears everything and says nothing: its status goes stale in the nodes table.",
                act: vec![Act::Fault(2, Some(Fault::Silent))],
                wait: Wait::Silent("node2"),
                within: 20.0,
                then: "Silence is the easiest failure: the others cannot tell a silent node from a slow one, and need not.",
            },
            Step {
                title: "A stuck general",
                watch: "node3 stops mining and sends its one block again and again.",
                act: vec![
                    Act::Fault(2, None),
                    Act::Fault(3, Some(Fault::Stuck)),
                ],
                wait: Wait::Stuck,
                within: 20.0,
                then: "A repeated old block changes nothing: every node already has it.",
            },
            Step {
                title: "A general that breaks the rules",
                watch: "node4 announces blocks that break a rule, a different one each time.",
                act: vec![
                    Act::Fault(3, None),
                    Act::Fault(4, Some(Fault::Invalid)),
                ],
                wait: Wait::InvalidBlock,
                within: 20.0,
                then: "Every node checks every block itself: a rule broken is a block refused, whoever sent it.",
            },
            Step {
                title: "A lying general",
                watch: "node1 sends different blocks to different nodes and claims a chain 1,000 blocks longer than its own.",
                act: vec![
                    Act::Fault(4, None),
                    Act::Fault(1, Some(Fault::Liar)),
                ],
                wait: Wait::Lie,
                within: 20.0,
                then: "A claim is not a proof: the listener checks the status against the chain it has, and the nodes follow work, not words.",
            },
            Step {
                title: "A partition",
                watch: "node1 and node2 on one side, node3 and node4 on the other: two chains.",
                act: vec![
                    Act::Fault(1, None),
                    Act::Partition(vec![vec!["node1", "node2"], vec!["node3", "node4"]]),
                ],
                wait: Wait::Fork,
                within: 20.0,
                then: "Proof of work keeps both halves going: it chooses availability, and settles later.",
            },
            Step {
                title: "Healed",
                watch: "The halves hear each other: every node ends on the heavier chain.",
                act: vec![Act::Heal],
                wait: Wait::Settled,
                within: 20.0,
                then: "Agreement again, without anyone deciding: the chain with the most work is the one everyone keeps.",
            },
        ],
    }
}
