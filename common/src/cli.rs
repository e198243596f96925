//! Flags every program that joins a relay shares (`--host`, `--port`,
//! `--channel`, `--profile`, `--target-interval`), flattened into each
//! binary's own flags with `#[command(flatten)]`.

use clap::Args;

use crate::profile::{Profile, ProfileKind, DEFAULT_TARGET_SECS};
use crate::relay::DEFAULT_TOPIC;

/// Where the relay is.
#[derive(Clone, Debug, Args)]
pub struct RelayArgs {
    /// Relay host.
    #[arg(long, default_value = "localhost")]
    pub host: String,
    /// Relay port.
    #[arg(long, default_value_t = 25000)]
    pub port: u16,
    /// Relay topic.
    #[arg(long, visible_alias = "listen", default_value = DEFAULT_TOPIC)]
    pub channel: String,
}

impl RelayArgs {
    /// `host:port`.
    pub fn addr(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

/// Which rules to follow.
#[derive(Clone, Copy, Debug, Args)]
pub struct ProfileArgs {
    /// Network rules: steady (default) or toycoin (the original's).
    #[arg(long, default_value = "steady")]
    pub profile: ProfileKind,
    /// Average seconds between blocks the steady profile aims for (every
    /// program on a network must agree).
    #[arg(long, default_value_t = DEFAULT_TARGET_SECS)]
    pub target_interval: f64,
}

impl ProfileArgs {
    pub fn profile(&self) -> Profile {
        Profile::new(self.profile, self.target_interval)
    }
}
