//! Where a replay is in its recording (issue 38): the frames
//! `toycoin-replay` sends its watchers among the class's own, so that a
//! listener or web view knows it watches a replay, shows a timeline, and
//! starts again from nothing when the teacher seeks back.
//!
//! A position frame is [`PREFIX`] and a JSON [`Position`]. It travels on
//! the class's topic between the recorded frames, in their order, so the
//! position a watcher reads is that of the frames it has taken in. Its
//! `epoch` grows at each seek back: every frame after a new epoch's first
//! position is the recording again from its start, so a watcher forgets
//! what it knew (the chain, the pending transactions, the names) and
//! takes the class in anew.
//!
//! Only a replay sends them: the relay refuses any client's frame starting
//! with [`PREFIX`] (as it does `$ORDER `), so no classmate can rewind the
//! teacher's view of a live class.

use serde::{Deserialize, Serialize};

/// What a position frame starts with.
pub const PREFIX: &[u8] = b"$REPLAY ";
/// Largest position frame read as one (one is some 150 bytes).
pub const MAX_FRAME: usize = 1024;

/// A replay's place in its recording.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Position {
    /// Grows at each seek back: a new epoch starts from nothing.
    pub epoch: u64,
    /// Seconds into the recording the watcher is now.
    pub at: f64,
    /// Seconds the recording lasts (up to `--until`).
    pub length: f64,
    /// Playing, or paused (stepped one frame at a time).
    pub playing: bool,
    /// The recorded pace times this (0: as fast as the relay takes them).
    pub speed: f64,
    /// Frames sent so far in this epoch, of how many.
    pub sent: usize,
    pub frames: usize,
}

impl Position {
    /// The position frame.
    pub fn encode(&self) -> Vec<u8> {
        let mut frame = PREFIX.to_vec();
        frame.extend(serde_json::to_vec(self).unwrap_or_default());
        frame
    }

    /// Whether the recording has been sent to its end.
    pub fn ended(&self) -> bool {
        self.sent >= self.frames
    }

    /// In words: "12.5 s of 300.0 s, playing at 10x".
    pub fn describe(&self) -> String {
        let how = match (self.ended(), self.playing) {
            (true, _) => "at its end".to_owned(),
            (false, false) => "paused".to_owned(),
            (false, true) if self.speed > 0.0 => format!("playing at {}x", self.speed),
            (false, true) => "playing as fast as it goes".to_owned(),
        };
        format!(
            "{:.1} s of {:.1} s ({} of {} frames), {how}",
            self.at, self.length, self.sent, self.frames
        )
    }
}

/// Decodes a data frame as a position: `None` if it is not one.
pub fn decode(frame: &[u8]) -> Option<Result<Position, String>> {
    let json = frame.strip_prefix(PREFIX)?;
    if frame.len() > MAX_FRAME {
        return Some(Err(format!(
            "a replay's position of {} bytes (at most {MAX_FRAME})",
            frame.len()
        )));
    }
    Some(
        serde_json::from_slice::<Position>(json)
            .map_err(|e| format!("unreadable replay position: {e}"))
            .and_then(|p| {
                if p.at.is_finite() && p.length.is_finite() && p.speed.is_finite() {
                    Ok(p)
                } else {
                    Err("a replay's position that is not a number".into())
                }
            }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_position_reads_back_and_other_frames_are_not_positions() {
        let p = Position {
            epoch: 2,
            at: 12.5,
            length: 300.0,
            playing: true,
            speed: 10.0,
            sent: 40,
            frames: 900,
        };
        assert_eq!(decode(&p.encode()), Some(Ok(p.clone())));
        assert_eq!(
            p.describe(),
            "12.5 s of 300.0 s (40 of 900 frames), playing at 10x"
        );
        assert!(decode(b"TXN {}").is_none());
        assert!(matches!(decode(b"$REPLAY {"), Some(Err(_))));
        assert!(matches!(
            decode(b"$REPLAY {\"epoch\":1,\"at\":1e999,\"length\":1,\"playing\":true,\"speed\":1,\"sent\":0,\"frames\":0}"),
            Some(Err(_))
        ));
        let mut long = PREFIX.to_vec();
        long.resize(MAX_FRAME + 1, b' ');
        assert!(matches!(decode(&long), Some(Err(_))));
    }
}
