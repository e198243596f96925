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

/// A clap value parser for a number of seconds in `min..=max` (fractions
/// allowed; NaN and infinities refused), so every binary's time flags are
/// checked, and reported, the same way.
pub fn seconds(
    min: f64,
    max: f64,
) -> impl Fn(&str) -> Result<f64, String> + Clone + Send + Sync + 'static {
    in_range(
        min,
        max,
        "a number of seconds",
        format!("must be between {min} and {max} seconds"),
    )
}

/// A clap value parser for a whole number in `min..=max`, so that a count
/// out of range (`--threads 0`) is refused with the range instead of
/// silently changed.
pub fn count(
    min: usize,
    max: usize,
) -> impl Fn(&str) -> Result<usize, String> + Clone + Send + Sync + 'static {
    in_range(
        min,
        max,
        "a whole number",
        format!("must be from {min} to {max}"),
    )
}

/// Parses a `T` and keeps it only within `min..=max` (NaN never is).
fn in_range<T>(
    min: T,
    max: T,
    what: &'static str,
    out_of_range: String,
) -> impl Fn(&str) -> Result<T, String> + Clone + Send + Sync + 'static
where
    T: std::str::FromStr + PartialOrd + Copy + Send + Sync + 'static,
{
    move |text: &str| {
        let v: T = text
            .parse()
            .map_err(|_| format!("{text:?} is not {what}"))?;
        if (min..=max).contains(&v) {
            Ok(v)
        } else {
            Err(out_of_range.clone())
        }
    }
}

impl ProfileArgs {
    pub fn profile(&self) -> Profile {
        Profile::new(self.profile, self.target_interval)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_are_finite_and_in_range() {
        let parse = seconds(0.0, 86_400.0);
        assert_eq!(parse("2.5"), Ok(2.5));
        assert_eq!(parse("0"), Ok(0.0));
        for bad in ["-1", "86401", "NaN", "inf", "soon"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn counts_are_whole_and_in_range() {
        let parse = count(1, 1024);
        assert_eq!(parse("2"), Ok(2));
        assert_eq!(parse("0"), Err("must be from 1 to 1024".to_owned()));
        for bad in ["1025", "-1", "1.5", "many"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
