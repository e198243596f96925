//! toycoin-listener: shows every frame on a relay topic, for people (text,
//! as the original, or `--brief`, one line each) or for scripts (`--json`,
//! one object per line).
//!
//! Beyond the original it keeps its own view of the best chain (through the
//! relay session, [`toycoin_common::session`]), so its summary line
//! describes the whole chain even when a `BLOC` carries only new blocks,
//! and it says what each `BLOC` did: extend the tip, start a side branch,
//! switch the best chain, nothing, or fail (naming the block and the
//! reason).
//!
//! - [`judge`]: a typed [`Verdict`] per frame;
//! - [`render`]: text, brief and JSON, formatting verdicts only;
//! - [`web`]: the live web view (`--web`), fed the same verdicts;
//! - [`lesson_panel`]: a lesson's state, shown in the web view;
//! - [`listen`]: the command line and the event loop that joins them.

pub mod judge;
pub mod lesson_panel;
pub mod listen;
pub mod names;
pub mod render;
pub mod web;

use bytes::Bytes;
use tokio::time::Instant;
use toycoin_common::profile::Profile;
use toycoin_common::session::{SessionConfig, SessionCore};

pub use judge::{Judge, Verdict};
pub use render::{abbrev, wallet_name, Mode, Renderer};

/// What a listener shows for one frame.
#[derive(Debug)]
pub struct Shown {
    /// The text to print (one or more lines, no trailing newline).
    pub text: String,
    /// A catch-up request to publish, if blocks are missing.
    pub request: Option<Bytes>,
    /// Whether `--quiet` would show it ([`Verdict::is_news`]).
    pub news: bool,
}

/// The session configuration a listener uses: it keeps the blocks of each
/// `BLOC` to show them, and never answers catch-up requests.
pub fn session_config(relay: impl Into<String>, profile: Profile) -> SessionConfig {
    let name = format!(
        "listener-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    let mut config = SessionConfig::new(relay, profile, name);
    config.keep_blocks = true;
    config
}

/// A listener without a socket: frames in, what to print out (tests and
/// tools use it; the binary runs the same judge and renderer over a
/// [`toycoin_common::session::Session`]).
#[derive(Debug)]
pub struct Listener {
    core: SessionCore,
    judge: Judge,
    renderer: Renderer,
}

impl Listener {
    pub fn new(profile: Profile, mode: Mode, color: bool) -> Listener {
        Listener {
            core: SessionCore::new(&session_config("-", profile)),
            judge: Judge::new(),
            renderer: Renderer::new(mode, color),
        }
    }

    /// A listener that checks pBFT messages against `members`.
    pub fn with_replicas(
        profile: Profile,
        mode: Mode,
        members: std::sync::Arc<toycoin_common::pbft::Membership>,
    ) -> Listener {
        Listener {
            judge: Judge::with_replicas(members),
            ..Listener::new(profile, mode, false)
        }
    }

    /// Decodes, judges and shows one frame; `now` is the Unix time in
    /// seconds.
    pub fn handle(&mut self, payload: &[u8], now: u64) -> Shown {
        self.core.on_frame(payload, now, Instant::now());
        let mut text = Vec::new();
        let mut news = false;
        while let Some(event) = self.core.next_event() {
            if let Some(verdict) = self.judge.judge(event, self.core.tree()) {
                news |= verdict.is_news();
                text.push(self.renderer.render(&verdict));
            }
        }
        Shown {
            text: text.join("\n"),
            request: self.core.take_outgoing().map(|o| o.payload),
            news,
        }
    }
}
