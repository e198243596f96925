//! `toycoin-oracle`: fund wallets and send random transfers; follow the
//! chain and check it.

use clap::Parser;
use toycoin_common::cli::{count, seconds, ConsensusArgs, ProfileArgs, RelayArgs};
use toycoin_common::log::{LogArgs, Output};
use toycoin_oracle::{run, OracleConfig};

/// The toycoin oracle: creates wallets, funds them (100, 50, 25, 10), then
/// sends 5 to 15 coins between random wallets at random intervals, and
/// checks that the best chain confirms every transaction and agrees with
/// its balances.
#[derive(Debug, Parser)]
#[command(name = "toycoin-oracle", version)]
struct Args {
    #[command(flatten)]
    relay: RelayArgs,
    /// Fewest seconds between transfers.
    #[arg(long = "min-interval", visible_alias = "min_interval", default_value_t = 3.0, value_parser = seconds(0.0, 1e6))]
    min_interval: f64,
    /// Most seconds between transfers.
    #[arg(long = "max-interval", visible_alias = "max_interval", default_value_t = 10.0, value_parser = seconds(0.0, 1e6))]
    max_interval: f64,
    /// Number of wallets.
    #[arg(long, default_value_t = 4, value_parser = count(2, 1000))]
    wallets: usize,
    /// Stop after N transfers, once all are confirmed (exit 0), or report
    /// what is not after --confirm-timeout (exit 1).
    #[arg(long)]
    count: Option<u64>,
    /// Seed for the wallets and transfers: the same run twice.
    #[arg(long)]
    seed: Option<u64>,
    /// Keep the wallets' keys in DIR (wallet-0.pem, ...; created on first
    /// use): the same wallets, and fingerprints, run after run (a --seed
    /// then picks only the transfers).
    #[arg(long, value_name = "DIR")]
    wallet_keys: Option<std::path::PathBuf>,
    #[command(flatten)]
    rules: ProfileArgs,
    #[command(flatten)]
    consensus: ConsensusArgs,
    /// Re-send a transaction not in the best chain after this many blocks.
    #[arg(long, default_value_t = 3)]
    resend_after: usize,
    /// ... or after this many seconds.
    #[arg(long, default_value_t = 30.0, value_parser = seconds(0.0, 1e6))]
    resend_secs: f64,
    /// With --count: seconds to wait for confirmations after the last transfer.
    #[arg(long, default_value_t = 120.0, value_parser = seconds(0.0, 1e6))]
    confirm_timeout: f64,
    /// The key file of the network's mint (steady), created on first use:
    /// the first grant on a chain names its mint, and only it can fund
    /// wallets after that, so keep this file to restart the oracle.
    #[arg(long, value_name = "FILE", default_value = "toycoin-mint.pem")]
    mint_key: std::path::PathBuf,
    /// Be the class's faucet: grant N coins to a student's light wallet
    /// that asks (`toycoin-wallet faucet`), once per address per minute
    /// (steady; 0: no faucet).
    #[arg(long, default_value_t = 0, value_name = "N")]
    faucet: u32,
    /// The faucet's coins for the whole class: once they are given it
    /// grants no more (shown with every grant).
    #[arg(long, default_value_t = 10_000, value_name = "COINS")]
    faucet_total: u32,
    /// Name shown in the output (default: a short random id).
    #[arg(long)]
    name: Option<String>,
    #[command(flatten)]
    log: LogArgs,
}

#[tokio::main]
async fn main() {
    toycoin_common::signal::end_quietly_on_broken_pipe();
    toycoin_allocator::tune();
    let args = Args::parse();
    args.log.init(Output::Stdout);
    let mut config = OracleConfig::new(
        args.relay.addr(),
        args.rules
            .network_or_exit(&args.relay, "toycoin-oracle")
            .await
            .profile(),
    );
    config.topic = args.relay.channel;
    config.min_interval = args.min_interval;
    config.max_interval = args.max_interval.max(config.min_interval);
    config.wallets = args.wallets;
    config.count = args.count;
    config.seed = args.seed;
    config.resend_blocks = args.resend_after;
    config.resend_secs = args.resend_secs;
    config.confirm_timeout = args.confirm_timeout;
    config.mint_key = Some(args.mint_key);
    config.wallet_keys = args.wallet_keys;
    match args.consensus.membership(&config.profile) {
        Ok(members) => config.pbft = members.map(std::sync::Arc::new),
        Err(e) => {
            tracing::error!("toycoin-oracle: {e}");
            std::process::exit(2);
        }
    }
    config.faucet = i64::from(args.faucet);
    config.faucet_total = i64::from(args.faucet_total);
    if let Some(name) = args.name {
        config.name = name;
    }
    std::process::exit(run(config).await);
}
