//! Lesson 4: confirmations, and why a merchant waits for 6.

use crate::lesson::{Act, Lesson, Setup, Step, Wait};
use toycoin_attack::Scenario;

pub fn lesson() -> Lesson {
    Lesson {
        name: "confirmations",
        title: "Confirmations to 6; a double spend",
        about: "A payment goes into a block and sinks under the blocks after it. Paid out after 1 confirmation, a merchant can be cheated by a double spend across a partition; after 6, the same coins cannot be spent again.",
        setup: Setup {
            nodes: 3,
            shares: vec![0.4],
            ..Setup::default()
        },
        steps: vec![
            Step {
                title: "A payment to 6 confirmations",
                watch: "The oracle's payments in the web view: each block on top of a payment's block is one more confirmation.",
                act: vec![],
                wait: Wait::Confirmations(6),
                within: 30.0,
                then: "Each confirmation is a block an attacker would have to redo to undo the payment.",
            },
            Step {
                title: "A double spend paid out after 1 confirmation",
                watch: "The attacker cuts the network in two and pays a merchant in each half with the same coins. Each merchant sees 1 confirmation; then the halves heal.",
                act: vec![Act::Attack(Scenario::DoubleSpend)],
                wait: Wait::Attacks,
                within: 40.0,
                then: "One payment vanished with the losing half's chain: a merchant who paid out after 1 confirmation lost the goods.",
            },
            Step {
                title: "After 6, the coins are spent for good",
                watch: "The attacker sends a confirmed payment again, and an invalid block again and again.",
                act: vec![Act::Attack(Scenario::ReplayInvalid)],
                wait: Wait::All(vec![Wait::Attacks, Wait::Refused(1)]),
                within: 20.0,
                then: "Deep in the chain a payment is settled: spending its coins again is refused by every node.",
            },
        ],
    }
}
