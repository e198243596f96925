//! `toycoin-replay FILE`: a recorded class served again. A relay (the
//! same as `toycoin-relay`, serving the class's network file if given)
//! listens; once the subscribers asked for have joined, the relay itself
//! sends the journal's frames on their topics, at the recorded pace times
//! the speed, and between them the replay's position
//! ([`toycoin_common::timeline`]), so a listener or web view attached to
//! it shows the class as it was and a timeline.
//!
//! The teacher moves the timeline ([`Timeline`], through the relay's
//! commands, `toycoin-ctl` or the web view's buttons): `hold` pauses,
//! `step` sends the next frames, `release` plays, `speed` sets the pace
//! and `seek` goes to a moment. Forward, the frames up to it are sent at
//! once; back, a new epoch begins (the watchers forget what they knew)
//! and the recording is sent again from its start up to the moment, at
//! once: either way a watcher then has the chain the class had then.
//!
//! The relay sends no faster than its slowest watcher takes the frames
//! ([`AHEAD_BYTES`] at most waiting for any one of them): at full speed
//! nothing is lost.

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::Notify;
use tokio::time::Instant;
use toycoin_common::journal::{self, Kind, Record};
use toycoin_common::timeline::Position;
use tracing::info;

use crate::server::{Relay, RelayConfig};

/// Bytes the replay lets wait for its slowest watcher before it sends
/// more.
pub const AHEAD_BYTES: usize = 1024 * 1024;
/// How often a playing replay tells its watchers where it is.
pub const POSITION_EVERY: Duration = Duration::from_secs(1);
/// Fastest pace the teacher may ask for (0, as fast as it goes, aside).
pub const MAX_SPEED: f64 = 1e6;
/// Most frames one `step` sends.
pub const MAX_STEP: usize = 1000;

/// How a journal is replayed.
#[derive(Clone, Debug)]
pub struct ReplayOptions {
    /// The recorded pace times this (2: twice as fast); 0: at once.
    pub speed: f64,
    /// Start this many seconds into the recording (what comes before is
    /// sent at once).
    pub from_secs: f64,
    /// Stop this many seconds into the recording (`None`: at its end).
    pub until_secs: Option<f64>,
    /// Subscribers of the replayed topics to wait for before the first
    /// frame.
    pub subscribers: usize,
    /// Start paused: no frame goes until the teacher's `step` (one at a
    /// time) or `release`.
    pub paused: bool,
}

/// The teacher's wishes for a replay, and where it is: shared by the
/// relay's commands and the replay that carries them out.
#[derive(Debug, Default)]
pub struct Timeline {
    state: Mutex<Wanted>,
    changed: Notify,
}

#[derive(Clone, Debug, Default)]
struct Wanted {
    playing: bool,
    speed: f64,
    /// A seek not yet carried out (seconds into the recording).
    seek: Option<f64>,
    /// Frames to send while paused, not yet sent.
    steps: usize,
    /// Where the replay last said it was.
    position: Position,
}

impl Timeline {
    pub fn new(playing: bool, speed: f64) -> Timeline {
        Timeline {
            state: Mutex::new(Wanted {
                playing,
                speed,
                ..Wanted::default()
            }),
            changed: Notify::new(),
        }
    }

    fn state(&self) -> MutexGuard<'_, Wanted> {
        // Every update is a plain assignment: a poisoned lock is still
        // consistent.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn change(&self, f: impl FnOnce(&mut Wanted)) {
        f(&mut self.state());
        self.changed.notify_one();
    }

    /// Where the replay last said it was.
    pub fn position(&self) -> Position {
        self.state().position.clone()
    }

    /// `hold`: pause.
    pub fn pause(&self) -> String {
        self.change(|w| w.playing = false);
        "replay paused: step sends the next frame, release plays on".into()
    }

    /// `release`: play.
    pub fn play(&self) -> String {
        self.change(|w| {
            w.playing = true;
            w.steps = 0;
        });
        "replay playing".into()
    }

    /// `step`: send the next `count` frames (paused only).
    pub fn step(&self, count: usize) -> Result<String, String> {
        if !(1..=MAX_STEP).contains(&count) {
            return Err(format!("step 1 to {MAX_STEP} frames"));
        }
        let mut refused = None;
        self.change(|w| {
            if w.playing {
                refused = Some("the replay is playing: hold (pause) it first".to_owned());
            } else {
                w.steps = w.steps.saturating_add(count).min(MAX_STEP);
            }
        });
        match refused {
            Some(why) => Err(why),
            None => Ok(format!(
                "replay: {count} more frame{}",
                if count == 1 { "" } else { "s" }
            )),
        }
    }

    /// `seek SECS`.
    pub fn seek(&self, secs: f64) -> Result<String, String> {
        if !secs.is_finite() || secs < 0.0 {
            return Err("seek to a moment of 0 seconds or more".into());
        }
        let length = self.state().position.length;
        let secs = secs.min(length);
        self.change(|w| {
            w.seek = Some(secs);
            w.steps = 0;
        });
        Ok(format!("replay: going to {secs:.1} s of {length:.1} s"))
    }

    /// `speed X`.
    pub fn set_speed(&self, speed: f64) -> Result<String, String> {
        if !speed.is_finite() || !(0.0..=MAX_SPEED).contains(&speed) {
            return Err(format!(
                "a speed is from 0 (as fast as it goes) to {MAX_SPEED}"
            ));
        }
        self.change(|w| w.speed = speed);
        Ok(if speed > 0.0 {
            format!("replay: {speed}x the recorded pace")
        } else {
            "replay: as fast as the watchers take it".into()
        })
    }

    fn wanted(&self) -> Wanted {
        self.state().clone()
    }

    /// Takes the seek asked for, if any.
    fn take_seek(&self) -> Option<f64> {
        self.state().seek.take()
    }

    /// Whether a seek or steps wait to be carried out.
    fn has_work(&self) -> bool {
        let w = self.state();
        w.seek.is_some() || w.steps > 0
    }

    /// Takes one step asked for, if any.
    fn take_step(&self) -> bool {
        let mut w = self.state();
        let some = w.steps > 0;
        w.steps = w.steps.saturating_sub(1);
        some
    }

    fn set_position(&self, position: Position) {
        self.state().position = position;
    }
}

/// A journal being sent.
struct Player {
    relay: Relay,
    timeline: Arc<Timeline>,
    /// The frames, with their time in µs from the recording's start.
    frames: Vec<(u64, Record)>,
    /// The topics the frames go on (positions are sent on each).
    topics: Vec<Bytes>,
    length_us: u64,
    epoch: u64,
    /// The next frame to send.
    cursor: usize,
    /// Where the watchers are, µs into the recording.
    playhead: u64,
}

impl Player {
    /// Sends frame `cursor`, once no watcher has more than
    /// [`AHEAD_BYTES`] waiting.
    async fn send_next(&mut self) {
        let Some((at, record)) = self.frames.get(self.cursor) else {
            return;
        };
        while self.relay.most_waiting(&record.topic) > AHEAD_BYTES {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        self.relay.publish_own(&record.topic, &record.payload);
        self.playhead = self.playhead.max(*at);
        self.cursor += 1;
        if self.cursor == self.frames.len() {
            self.playhead = self.length_us;
            info!("Replayed {} frames", self.frames.len());
        }
    }

    /// Tells the watchers (and the teacher's `status`) where the replay is.
    fn tell(&self) {
        let wanted = self.timeline.wanted();
        let position = Position {
            epoch: self.epoch,
            at: self.playhead as f64 / 1e6,
            length: self.length_us as f64 / 1e6,
            playing: wanted.playing,
            speed: wanted.speed,
            sent: self.cursor,
            frames: self.frames.len(),
        };
        let frame = Bytes::from(position.encode());
        for topic in &self.topics {
            self.relay.publish_own(topic, &frame);
        }
        self.timeline.set_position(position);
    }

    /// Goes to `to` µs into the recording: back, a new epoch from the
    /// start; then every frame up to it at once.
    async fn seek(&mut self, to: u64) {
        let to = to.min(self.length_us);
        if to < self.playhead {
            self.epoch += 1;
            self.cursor = 0;
            self.playhead = 0;
            info!(
                "Replay: back to {:.1} s; the watchers start again (epoch {})",
                to as f64 / 1e6,
                self.epoch
            );
            // The new epoch's first position: the watchers forget.
            self.tell();
        }
        // The moment 0 is before the first frame (recorded at 0 itself).
        while to > 0
            && self
                .frames
                .get(self.cursor)
                .is_some_and(|(at, _)| *at <= to)
        {
            self.send_next().await;
        }
        self.playhead = self.playhead.max(to);
        self.tell();
    }

    /// Plays until shutdown, as the teacher moves the timeline.
    async fn play(mut self, from_us: u64) {
        self.seek(from_us).await;
        // When the playhead was at `anchor.1`, the clock read `anchor.0`.
        let mut anchor = (Instant::now(), self.playhead);
        let mut told = Instant::now();
        loop {
            if let Some(secs) = self.timeline.take_seek() {
                self.seek(micros(secs)).await;
                anchor = (Instant::now(), self.playhead);
                continue;
            }
            let wanted = self.timeline.wanted();
            let ended = self.cursor >= self.frames.len();
            if !wanted.playing || ended {
                if !ended && self.timeline.take_step() {
                    self.send_next().await;
                    self.tell();
                    continue;
                }
                self.timeline.changed.notified().await;
                anchor = (Instant::now(), self.playhead);
                // Played or sped up: said now (a step or seek says so
                // with its frames).
                if !self.timeline.has_work() {
                    self.tell();
                }
                continue;
            }
            let next_at = self.frames[self.cursor].0;
            let now = Instant::now();
            let due = if wanted.speed > 0.0 {
                let ahead = next_at.saturating_sub(anchor.1) as f64 / 1e6 / wanted.speed;
                anchor.0 + Duration::from_secs_f64(ahead.min(1e9))
            } else {
                now
            };
            if due <= now {
                self.send_next().await;
                if self.cursor >= self.frames.len() || told.elapsed() >= POSITION_EVERY {
                    self.tell();
                    told = Instant::now();
                }
                continue;
            }
            tokio::select! {
                _ = tokio::time::sleep_until(due.min(told + POSITION_EVERY)) => {
                    if Instant::now() >= told + POSITION_EVERY {
                        self.playhead = playhead_at(anchor, wanted.speed, Instant::now()).min(next_at);
                        self.tell();
                        told = Instant::now();
                    }
                }
                _ = self.timeline.changed.notified() => {
                    // Paused, sped up or sought: from here, on the new terms.
                    self.playhead = playhead_at(anchor, wanted.speed, Instant::now()).min(next_at);
                    anchor = (Instant::now(), self.playhead);
                    self.tell();
                    told = Instant::now();
                }
            }
        }
    }
}

/// Where the playhead is at `now`, playing at `speed` since `anchor`.
fn playhead_at(anchor: (Instant, u64), speed: f64, now: Instant) -> u64 {
    let played = now.saturating_duration_since(anchor.0).as_secs_f64() * speed;
    anchor.1.saturating_add((played * 1e6) as u64)
}

/// A moment of the class in microseconds from its seconds, rounded: a
/// moment given to six decimals (as the web view and `--until` give it)
/// is the microsecond it names, not the one before it (2.054197 s times a
/// million is 2,054,196.999... in floating point, and a block recorded at
/// 2,054,197 µs was left out of a seek there).
fn micros(secs: f64) -> u64 {
    (secs.max(0.0) * 1e6).round() as u64
}

/// Serves the journal at `path` on `listener` as `options` say, until
/// `shutdown`, the teacher moving its timeline. Returns the frames in
/// the replay.
pub async fn run(
    path: &Path,
    listener: tokio::net::TcpListener,
    mut config: RelayConfig,
    options: ReplayOptions,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<usize, String> {
    let records: Vec<_> = journal::read(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?
        .into_iter()
        .filter(|r| r.kind == Kind::Frame)
        .collect();
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let first = records.first().map_or(0, |r| r.at_us);
    let end_us = options.until_secs.map_or(u64::MAX, micros);
    // Frames sent to one client alone (`$to:NAME`) went to a program
    // that is not in the replay.
    let frames: Vec<(u64, Record)> = records
        .into_iter()
        .map(|r| (r.at_us.saturating_sub(first), r))
        .filter(|(at, r)| *at <= end_us && !r.topic.starts_with(b"$"))
        .collect();
    let length_us = frames.last().map_or(0, |(at, _)| *at);
    let mut topics: Vec<Bytes> = Vec::new();
    for (_, r) in &frames {
        if !topics.contains(&r.topic) {
            topics.push(r.topic.clone());
        }
    }
    let timeline = Arc::new(Timeline::new(!options.paused, options.speed));
    timeline.set_position(Position {
        length: length_us as f64 / 1e6,
        frames: frames.len(),
        ..Position::default()
    });
    config.replay = Some(timeline.clone());
    let relay = Relay::new(config);
    let serving = {
        let relay = relay.clone();
        tokio::spawn(async move { relay.run(listener, shutdown).await })
    };
    info!(
        "Replaying {} frames of {} ({:.1} s recorded) on {addr}{}",
        frames.len(),
        path.display(),
        length_us as f64 / 1e6,
        match (options.paused, options.speed > 0.0) {
            (true, _) => " paused".to_owned(),
            (false, true) => format!(" at {}x", options.speed),
            (false, false) => " as fast as the watchers take them".into(),
        }
    );
    // Watchers of the class's topics: a listener's question to the relay
    // (`$network`, whether this is a replay) is no watcher.
    let watchers = |relay: &Relay| -> usize { topics.iter().map(|t| relay.subscribers(t)).sum() };
    while !topics.is_empty() && watchers(&relay) < options.subscribers {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    info!(
        "Replay: {} subscribed; the class begins",
        options.subscribers
    );
    let count = frames.len();
    let player = Player {
        relay,
        timeline,
        frames,
        topics,
        length_us,
        epoch: 0,
        cursor: 0,
        playhead: 0,
    };
    let from_us = micros(options.from_secs);
    let playing = tokio::spawn(player.play(from_us));
    let served = serving.await;
    playing.abort();
    served
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::micros;

    /// A moment written to six decimals is the microsecond it names: the
    /// seek in `tests/tests/replay.rs` once stopped 1 µs before a block
    /// (2.054197 s, truncated to 2,054,196 µs).
    #[test]
    fn a_moment_in_seconds_is_the_microsecond_it_names() {
        let secs: f64 = "2.054197".parse().unwrap();
        assert_eq!((secs * 1e6) as u64, 2_054_196, "what truncation gave");
        assert_eq!(micros(secs), 2_054_197);
        assert_eq!(micros(-1.0), 0);
        assert_eq!(micros(0.0000004), 0);
    }
}
