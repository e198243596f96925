//! Lesson 5: cheating refused — and the original's flaws, under its own
//! rules.

use crate::lesson::{Act, Lesson, Setup, Step, Wait};
use toycoin_attack::Scenario;

pub fn lesson() -> Lesson {
    Lesson {
        name: "cheating",
        title: "Cheating refused",
        about: "Coins made from nothing, a rewritten payment, forged signatures, a payment too large: every node refuses them. Then the coinbase attack under the original toycoin's rules, whose flaw lets it through.",
        setup: Setup {
            nodes: 2,
            shares: vec![0.5],
            ..Setup::default()
        },
        steps: vec![
            Step {
                title: "Coins from nothing",
                watch: "The attacker publishes a coinbase outside any block, paying itself.",
                act: vec![Act::Attack(Scenario::Mint)],
                wait: Wait::Attacks,
                within: 20.0,
                then: "Only a block's reward, and the teacher's signed mint, make coins.",
            },
            Step {
                title: "A payment rewritten",
                watch: "The attacker takes a pending payment, changes its amounts, and sends it again.",
                act: vec![Act::Attack(Scenario::Malleate)],
                wait: Wait::Attacks,
                within: 20.0,
                then: "The signature covers the amounts: change one and the signature no longer matches.",
            },
            Step {
                title: "Forged signatures by the hundred",
                watch: "The listener's refusals: payments with signatures that do not verify.",
                act: vec![Act::Attack(Scenario::Flood)],
                wait: Wait::All(vec![Wait::Attacks, Wait::Refused(10)]),
                within: 20.0,
                then: "Each is refused for the price of one signature check, and the relay keeps the flooder's frames from crowding out anyone else's.",
            },
            Step {
                title: "A payment too large",
                watch: "The attacker sends one payment of 2,000 inputs, some 130 KB: four times what a transaction may be.",
                act: vec![Act::Attack(Scenario::Oversized)],
                wait: Wait::All(vec![Wait::Attacks, Wait::Refused(1)]),
                within: 20.0,
                then: "Refused by its size before any signature is checked: a rejection costs less than the attack.",
            },
            Step {
                title: "The original's rules",
                watch: "A new network under --profile toycoin, the seed exactly, flaws included: the same coinbase attack.",
                act: vec![
                    Act::Restart(Setup {
                        nodes: 2,
                        shares: vec![0.0],
                        profile: "toycoin",
                        ..Setup::default()
                    }),
                    Act::Attack(Scenario::Mint),
                ],
                wait: Wait::Flaw,
                // The original's difficulty grows by a byte each time the
                // chain doubles: its fifth block needs 24 zero bits.
                within: 40.0,
                then: "The original takes any coinbase at its word: that is the flaw the steady profile fixes.",
            },
        ],
    }
}
