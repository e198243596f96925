//! `toycoin-attack SCENARIO`: runs one attack on a running network, step
//! by step, and exits non-zero when the network did what it must not.

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use toycoin_attack::{Attacker, Options, Scenario};
use toycoin_common::cli::{count, seconds, ProfileArgs, RelayArgs};
use toycoin_common::control::{read_token, token_file};

/// Stages one of the classic attacks on a toycoin network and narrates
/// what the attacker does and what the network did, ending with a verdict
/// line. Exits 1 when the network did something it must not (the
/// original's known flaws under --profile toycoin are shown, not failed).
#[derive(Debug, Parser)]
#[command(name = "toycoin-attack", version)]
struct Args {
    /// The attack.
    #[arg(value_enum)]
    scenario: Scenario,
    #[command(flatten)]
    relay: RelayArgs,
    #[command(flatten)]
    rules: ProfileArgs,
    /// A file holding the teacher's token, for double-spend's partition
    /// (default: $TOYCOIN_CONTROL_TOKEN, else the file the relay wrote on
    /// this machine).
    #[arg(long, value_name = "PATH")]
    token_file: Option<std::path::PathBuf>,
    /// Mining threads (private-fork; double-spend's coins).
    #[arg(long, default_value_t = 1, value_parser = count(1, 1024))]
    threads: usize,
    /// Seconds to mine in secret (private-fork).
    #[arg(long, default_value_t = 20.0, value_parser = seconds(1.0, 3600.0))]
    secret_secs: f64,
    /// Release the secret branch as soon as it has this many blocks
    /// (private-fork; default: whatever the seconds give).
    #[arg(long, value_parser = count(1, 1_000_000))]
    secret_blocks: Option<usize>,
    /// Frames to send (flood) or replays of each (replay-invalid).
    #[arg(long, default_value_t = 2_000, value_parser = count(1, 1_000_000))]
    count: usize,
    /// Longest wait, in seconds, for the network to do something.
    #[arg(long, default_value_t = 120.0, value_parser = seconds(1.0, 3600.0))]
    patience: f64,
}

#[tokio::main]
async fn main() -> ExitCode {
    toycoin_common::signal::end_quietly_on_broken_pipe();
    let args = Args::parse();
    let mut options = Options::new(
        args.relay.addr(),
        args.rules
            .network_or_exit(&args.relay, "toycoin-attack")
            .await
            .profile(),
    );
    options.topic = args.relay.channel.clone();
    options.token = match read_token(
        args.token_file.as_deref(),
        Some(&token_file(args.relay.port)),
    ) {
        Ok(token) => token,
        Err(e) => {
            eprintln!("toycoin-attack: {e}");
            return ExitCode::from(2);
        }
    };
    options.threads = args.threads;
    options.secret_secs = args.secret_secs;
    options.secret_blocks = args.secret_blocks.unwrap_or(usize::MAX);
    options.count = args.count;
    options.patience = Duration::from_secs_f64(args.patience);
    let mut attacker = match Attacker::join(options, true).await {
        Ok(a) => a,
        Err(e) => {
            eprintln!("toycoin-attack: {e}");
            return ExitCode::from(2);
        }
    };
    if attacker.run(args.scenario).await.held {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
