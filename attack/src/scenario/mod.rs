//! One file per scenario, each a method of [`crate::Attacker`] that
//! [`crate::Attacker::run`] picks by [`crate::Scenario`] (mini-redis's
//! `src/cmd/`, one command per file).

mod double_spend;
mod flood;
mod malleate;
mod mint;
mod oversized;
mod private_fork;
mod replay_invalid;
