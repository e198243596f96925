//! The lessons, a file each, in the lecture's order: the first seed's
//! proof of work (a block mined, forks, difficulty, confirmations,
//! cheating refused), then the second's agreement (Byzantine failures,
//! pBFT), then the concurrency the programs are built from.

mod byzantine;
mod cheating;
mod concurrency;
mod confirmations;
mod difficulty;
mod forks;
mod pbft;
mod race;

use crate::lesson::Lesson;

/// Every lesson, in the lecture's order.
pub fn all() -> Vec<Lesson> {
    vec![
        race::lesson(),
        forks::lesson(),
        difficulty::lesson(),
        confirmations::lesson(),
        cheating::lesson(),
        byzantine::lesson(),
        pbft::lesson(),
        concurrency::lesson(),
    ]
}
