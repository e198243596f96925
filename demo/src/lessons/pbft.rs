//! Lesson 7: pBFT — 3f+1 replicas vote, a payment is final at once, a
//! silent primary is replaced.

use crate::lesson::{Act, Lesson, Setup, Step, Wait};
use toycoin_common::cli::Consensus;
use toycoin_node::Fault;

pub fn lesson() -> Lesson {
    Lesson {
        name: "pbft",
        title: "pBFT: final at once, and a view change",
        about: "First proof of work's 6 confirmations, measured; then four replicas (3f+1 with f = 1) that agree on each batch of payments in three rounds of votes, final as soon as it is decided. The primary falls silent; the others vote it out.",
        setup: Setup {
            nodes: 3,
            shares: vec![0.34],
            ..Setup::default()
        },
        steps: vec![
            Step {
                title: "Proof of work: final after 6 blocks",
                watch: "Three miners, as before: a payment is as final as proof of work gets once 6 blocks bury it.",
                act: vec![],
                wait: Wait::Confirmations(6),
                within: 30.0,
                then: "Six blocks: the time the lecture's merchant waits.",
            },
            Step {
                title: "A batch final",
                watch: "The same payments, now agreed by four replicas that vote: the web view's pBFT panel shows a pre-prepare from the primary, prepares and commits from the replicas, replies to the client.",
                act: vec![Act::Restart(Setup {
                    nodes: 4,
                    consensus: Consensus::Pbft,
                    ..Setup::default()
                })],
                wait: Wait::Final(1),
                within: 20.0,
                then: "Final means final: no block can come later and undo it, unlike proof of work's confirmations. The price is every replica talking to every other.",
            },
            Step {
                title: "A silent primary",
                watch: "The primary (node1, unless a view has changed already) falls silent: no batch is proposed, the replicas' timers run out and they vote for a new view.",
                act: vec![Act::FaultPrimary(Fault::Silent)],
                wait: Wait::ViewChange,
                within: 30.0,
                then: "With 3f+1 replicas, 2f+1 votes are enough to move on without the failed one.",
            },
            Step {
                title: "Final again, under the new primary",
                watch: "The new primary proposes the next batch.",
                act: vec![],
                wait: Wait::Final(1),
                within: 20.0,
                then: "One faulty replica out of four changed nothing the clients can see, except a pause.",
            },
        ],
    }
}
