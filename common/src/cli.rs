//! Flags every program that joins a relay shares (`--host`, `--port`,
//! `--channel`, `--profile`, `--target-interval`), flattened into each
//! binary's own flags with `#[command(flatten)]`.

use clap::Args;

use std::path::PathBuf;

use crate::network::Network;
use crate::profile::{Profile, ProfileKind, DEFAULT_TARGET_SECS, MAX_TARGET_SECS};
use crate::relay::DEFAULT_TOPIC;

/// Where the relay is.
#[derive(Clone, Debug, Args)]
pub struct RelayArgs {
    /// Relay host.
    #[arg(long, default_value = "localhost", global = true)]
    pub host: String,
    /// Relay port.
    #[arg(long, default_value_t = 25000, global = true)]
    pub port: u16,
    /// Relay topic.
    #[arg(long, visible_alias = "listen", default_value = DEFAULT_TOPIC, global = true)]
    pub channel: String,
}

impl RelayArgs {
    /// `host:port`.
    pub fn addr(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

/// Which network to join: the teacher's, learned without trusting a
/// classmate (see [`crate::network`]).
#[derive(Clone, Debug, Args)]
pub struct ProfileArgs {
    /// Network rules: steady (default: the class network, learned from the
    /// teacher's relay) or toycoin (the original's, shared with the Python
    /// programs).
    #[arg(long, default_value = "steady", global = true)]
    pub profile: ProfileKind,
    /// Steady: the class network's file (as the relay or the demo wrote
    /// it), instead of asking the relay.
    #[arg(long, value_name = "FILE", global = true)]
    pub network: Option<PathBuf>,
    /// Steady: the join code the teacher projects (`ABCDE-FGHJK`); the
    /// relay's network must match it, or this program refuses to join.
    #[arg(long, value_name = "CODE", global = true)]
    pub join: Option<String>,
}

impl ProfileArgs {
    /// The network to follow: toycoin's, the file's, or the relay's (once
    /// it is there: programs may start before it), then checked against
    /// the join code.
    pub async fn network(&self, relay: &RelayArgs) -> Result<Network, String> {
        self.network_with(relay, true).await
    }

    /// [`ProfileArgs::network`], failing at once where the relay is not
    /// there (a command a student types, not a program left running).
    pub async fn network_now(&self, relay: &RelayArgs) -> Result<Network, String> {
        self.network_with(relay, false).await
    }

    async fn network_with(&self, relay: &RelayArgs, wait: bool) -> Result<Network, String> {
        if self.profile == ProfileKind::Toycoin {
            return Ok(Network::toycoin());
        }
        let network = match &self.network {
            Some(path) => Network::load(path)?,
            None if wait => crate::network::fetch_waiting(&relay.addr()).await?,
            None => crate::network::fetch(&relay.addr())
                .await
                .map_err(|e| e.to_string())?,
        };
        if let Some(code) = &self.join {
            network.matches_code(code)?;
        }
        Ok(network)
    }

    /// [`ProfileArgs::network`] for a program's `main`: prints the network
    /// (its id and join code, for the student to compare with what the
    /// teacher projects), or why there is none and exits with status 2.
    pub async fn network_or_exit(&self, relay: &RelayArgs, program: &str) -> Network {
        match self.network(relay).await {
            Ok(network) => {
                tracing::info!("{}", network.banner());
                network
            }
            Err(e) => {
                tracing::error!("{program}: {e}");
                std::process::exit(2);
            }
        }
    }
}

/// The network a teacher's program creates and serves (the relay; the
/// demo passes these on).
#[derive(Clone, Debug, Args)]
pub struct NewNetworkArgs {
    /// Network rules: steady (default) or toycoin (the original's).
    #[arg(long, default_value = "steady")]
    pub profile: ProfileKind,
    /// Steady: average seconds between blocks the network aims for.
    #[arg(long, default_value_t = DEFAULT_TARGET_SECS, value_parser = seconds(0.001, MAX_TARGET_SECS))]
    pub target_interval: f64,
    /// Steady: the mint's key file, created on first use (mode 0600): only
    /// its grants create coins. Give the oracle the same file.
    #[arg(long, value_name = "FILE", default_value = "toycoin-mint.pem")]
    pub mint_key: PathBuf,
    /// Serve the network in this file instead (as `toycoin-demo` writes
    /// it).
    #[arg(long, value_name = "FILE", conflicts_with_all = ["profile", "target_interval", "mint_key"])]
    pub network: Option<PathBuf>,
}

impl NewNetworkArgs {
    /// The network: the file's, or made from the flags (the mint's key
    /// created when missing).
    pub fn network(&self) -> Result<Network, String> {
        match &self.network {
            Some(path) => Network::load(path),
            None => Network::for_class(self.profile, self.target_interval, &self.mint_key),
        }
    }
}

/// How the network agrees.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Consensus {
    /// Proof of work: the chain with the most work wins.
    #[default]
    Pow,
    /// pBFT: n = 3f + 1 known replicas vote; final at once.
    Pbft,
}

/// Which way to agree, and with pBFT who the replicas are.
#[derive(Clone, Debug, Args)]
pub struct ConsensusArgs {
    /// How the network agrees: pow (proof of work) or pbft (known
    /// replicas vote; needs --replicas and the steady profile).
    #[arg(long, value_enum, default_value_t = Consensus::Pow)]
    pub consensus: Consensus,
    /// pBFT: the replicas file (one line each: NAME FINGERPRINT ADDRESS),
    /// as `toycoin-demo --consensus pbft` writes it.
    #[arg(long, value_name = "FILE", required_if_eq("consensus", "pbft"))]
    pub replicas: Option<std::path::PathBuf>,
}

impl ConsensusArgs {
    /// The replicas, with `--consensus pbft` (`None` with proof of work);
    /// an error where the file cannot be read or the profile is not steady.
    pub fn membership(&self, profile: &Profile) -> Result<Option<crate::pbft::Membership>, String> {
        if self.consensus == Consensus::Pow {
            return Ok(None);
        }
        if profile.kind != ProfileKind::Steady {
            return Err("--consensus pbft needs the steady profile (amounts are signed)".into());
        }
        let path = self
            .replicas
            .as_ref()
            .ok_or("--consensus pbft needs --replicas FILE")?;
        crate::pbft::Membership::load(path).map(Some)
    }
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

/// A clap value parser for a hash rate: a positive number of hashes a
/// second, with an optional `k`, `M` or `G` (thousands, millions,
/// billions): `500k`, `2.5M`.
pub fn hash_rate(text: &str) -> Result<f64, String> {
    let trimmed = text.trim();
    let (number, scale) = match trimmed.char_indices().last() {
        Some((i, 'k' | 'K')) => (&trimmed[..i], 1e3),
        Some((i, 'M')) => (&trimmed[..i], 1e6),
        Some((i, 'G')) => (&trimmed[..i], 1e9),
        _ => (trimmed, 1.0),
    };
    let rate = number
        .parse::<f64>()
        .map(|n| n * scale)
        .map_err(|_| format!("{text:?} is not a hash rate (hashes a second: 500k, 2M)"))?;
    if rate.is_finite() && rate >= 1.0 {
        Ok(rate)
    } else {
        Err("must be at least one hash a second".to_owned())
    }
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
    fn hash_rates_take_a_suffix_and_are_positive() {
        assert_eq!(hash_rate("500k"), Ok(500_000.0));
        assert_eq!(hash_rate("2.5M"), Ok(2_500_000.0));
        assert_eq!(hash_rate("1G"), Ok(1e9));
        assert_eq!(hash_rate("1500"), Ok(1500.0));
        for bad in ["0", "-3k", "0.5", "NaN", "infM", "fast", "k", "2m"] {
            assert!(hash_rate(bad).is_err(), "{bad}");
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
