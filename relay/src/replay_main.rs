//! `toycoin-replay`: serve a class recorded by `toycoin-relay --record`.

use clap::Parser;
use toycoin_common::cli::seconds;
use toycoin_common::log::{LogArgs, Output};
use toycoin_relay::replay::{run, ReplayOptions};
use toycoin_relay::RelayConfig;
use tracing::error;

/// Serves a recorded class again as a relay: attach a listener (and its
/// web view) to watch it as it was.
#[derive(Debug, Parser)]
#[command(name = "toycoin-replay", version)]
struct Args {
    /// The journal `toycoin-relay --record` wrote.
    journal: std::path::PathBuf,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Port to listen on (0: one the OS picks).
    #[arg(long, default_value_t = 25000)]
    port: u16,
    /// The recorded pace times this (10: ten times as fast); 0: as fast as
    /// the relay takes the frames.
    #[arg(long, default_value_t = 1.0, value_parser = seconds(0.0, 1e6))]
    speed: f64,
    /// Start this many seconds into the recording (what comes before is
    /// sent at once: a listener has the chain the class had then).
    #[arg(long, default_value_t = 0.0, value_parser = seconds(0.0, 1e9))]
    from: f64,
    /// Stop this many seconds into the recording.
    #[arg(long, value_parser = seconds(0.0, 1e9))]
    until: Option<f64>,
    /// Wait for this many subscribers (a listener, a web view) before the
    /// first frame.
    #[arg(long, default_value_t = 1)]
    subscribers: usize,
    /// Start paused: the frames wait until `toycoin-ctl step` (one at a
    /// time) or `toycoin-ctl release` (the teacher's controls work on a
    /// replay as on the relay).
    #[arg(long)]
    paused: bool,
    /// The class's network file (`network.json`), told to whoever asks, as
    /// the teacher's relay did.
    #[arg(long, value_name = "FILE")]
    network: Option<std::path::PathBuf>,
    #[command(flatten)]
    log: LogArgs,
}

#[tokio::main]
async fn main() {
    toycoin_common::signal::end_quietly_on_broken_pipe();
    let args = Args::parse();
    args.log.init(Output::Stdout);
    let network = match &args.network {
        None => None,
        Some(path) => match toycoin_common::network::Network::load(path) {
            Ok(network) => Some(network),
            Err(e) => {
                error!("toycoin-replay: {e}");
                std::process::exit(2);
            }
        },
    };
    let listener = match toycoin_relay::bind((args.host.as_str(), args.port)).await {
        Ok(l) => l,
        Err(e) => {
            error!(
                "toycoin-replay: cannot listen on {}:{}: {e}",
                args.host, args.port
            );
            std::process::exit(1);
        }
    };
    // The teacher's controls, as on the relay: hold, step, release.
    let teacher = toycoin_relay::control::Teacher::new();
    let port = listener.local_addr().map_or(args.port, |a| a.port());
    let token_path = match toycoin_common::control::write_token(port, &teacher.token) {
        Ok(path) => {
            tracing::info!(
                "Teacher's controls: toycoin-ctl --relay 127.0.0.1:{port} step (hold, step, release)"
            );
            Some(path)
        }
        Err(e) => {
            tracing::warn!("cannot write the token file ({e}): no controls");
            None
        }
    };
    let config = RelayConfig {
        network,
        summary_interval: None,
        teacher: token_path.as_ref().map(|_| teacher),
        ..RelayConfig::default()
    };
    let options = ReplayOptions {
        speed: args.speed,
        from_secs: args.from,
        until_secs: args.until,
        subscribers: args.subscribers,
        paused: args.paused,
    };
    let shutdown = toycoin_common::signal::shutdown_signal();
    let result = run(&args.journal, listener, config, options, shutdown).await;
    if let Some(path) = token_path {
        let _ = std::fs::remove_file(path);
    }
    if let Err(e) = result {
        error!("toycoin-replay: {e}");
        std::process::exit(1);
    }
}
