//! `toycoin-node`: run a full node until Ctrl-C.

use std::time::Duration;

use clap::Parser;
use tokio::sync::broadcast::error::RecvError;
use toycoin_common::cli::{count, hash_rate, seconds, ConsensusArgs, ProfileArgs, RelayArgs};
use toycoin_common::log::{LogArgs, Output};
use toycoin_common::profile::Minting;
use toycoin_common::wallet::Wallet;
use toycoin_node::{spawn, Event, Fault, NodeConfig, PbftConfig};
use tracing::{error, info, warn};

/// A toycoin full node: checks every transaction and block it hears on the
/// relay topic, mines blocks of pending transactions, keeps the best chain.
#[derive(Debug, Parser)]
#[command(name = "toycoin-node", version)]
struct Args {
    #[command(flatten)]
    relay: RelayArgs,
    /// Seconds to sleep after each proof of work (play a slow node).
    #[arg(long, default_value_t = 0.0, value_parser = seconds(0.0, 86_400.0))]
    delay: f64,
    #[command(flatten)]
    rules: ProfileArgs,
    #[command(flatten)]
    consensus: ConsensusArgs,
    /// pBFT: seconds a backup waits for a batch before it changes the view
    /// (doubling with each view that fails).
    #[arg(long, default_value_t = 2.0, value_parser = seconds(0.05, 3600.0))]
    view_timeout: f64,
    /// Mining threads.
    #[arg(long, default_value_t = 1, value_parser = count(1, 1024))]
    threads: usize,
    /// Mine at most this many hashes a second, all threads together
    /// (`500k`, `2M`): plays a weaker miner in a lecture on hash power, or
    /// keeps a laptop cool. Default: as fast as the threads go.
    #[arg(long, value_name = "RATE", value_parser = hash_rate)]
    max_hash_rate: Option<f64>,
    /// Steady: mine only while transactions wait (as in toycoin), not all
    /// the time; saves a laptop's battery, and the difficulty follows the
    /// nodes that do mine.
    #[arg(long)]
    no_idle_mining: bool,
    /// Pending transactions needed before mining a block (toycoin, or with
    /// --no-idle-mining).
    #[arg(long, default_value_t = 2, value_parser = count(1, toycoin_common::block::MAX_BLOCK_TXNS))]
    min_txns: usize,
    /// Seconds after which fewer than --min-txns pending transactions are
    /// mined anyway (0: never, as the original).
    #[arg(long, default_value_t = 10.0, value_parser = seconds(0.0, 86_400.0))]
    max_wait: f64,
    /// Name shown in the output and given to the relay, so the teacher's
    /// controls can name this node (default: a short random id). Only a
    /// name of letters, digits, '-', '_' and '.' is given to the relay.
    #[arg(long)]
    name: Option<String>,
    /// The key file of the wallet this node's block rewards go to (steady),
    /// created on first use; readable only by its owner. With pBFT, the
    /// replica's key: its address must be in the replicas file.
    #[arg(long, value_name = "FILE", default_value = "toycoin-node.pem")]
    wallet: std::path::PathBuf,
    /// Play a laptop whose clock is this many seconds off (negative: slow).
    /// The steady rules take clocks up to 10 minutes apart.
    #[arg(
        long,
        default_value_t = 0,
        allow_negative_numbers = true,
        value_name = "SECS"
    )]
    clock_skew: i64,
    /// Largest frame accepted from the relay, in bytes.
    #[arg(long, default_value_t = toycoin_common::frame::DEFAULT_MAX_FRAME_LEN)]
    max_frame: usize,
    /// Play a faulty node for the Byzantine lab: `silent` hears everything
    /// and sends nothing; `stuck` stops after its first block and keeps
    /// sending it; `invalid` announces blocks that break a rule (a wrong
    /// Merkle root, too little work, an over-paid reward, in turn); `liar`
    /// sends different blocks to different nodes and lies in its status
    /// and catch-up answers.
    #[arg(long, value_enum)]
    fault: Option<Fault>,
    /// A file holding the teacher's token (the relay's; or give it in
    /// $TOYCOIN_CONTROL_TOKEN, never on the command line): obey the relay's
    /// orders to play a fault (`toycoin-ctl fault NODE MODE`). Without it,
    /// orders are ignored.
    #[arg(long, value_name = "PATH")]
    control_token_file: Option<std::path::PathBuf>,
    #[command(flatten)]
    log: LogArgs,
}

#[tokio::main]
async fn main() {
    toycoin_common::signal::end_quietly_on_broken_pipe();
    toycoin_allocator::tune();
    let args = Args::parse();
    args.log.init(Output::Stdout);
    let shutdown = toycoin_common::signal::shutdown_signal();
    let mut config = NodeConfig::new(
        args.relay.addr(),
        args.rules
            .network_or_exit(&args.relay, "toycoin-node")
            .await
            .profile(),
    );
    config.topic = args.relay.channel;
    config.delay = Duration::from_secs_f64(args.delay);
    config.max_wait = Duration::from_secs_f64(args.max_wait);
    config.threads = args.threads;
    config.max_hash_rate = args.max_hash_rate;
    config.min_txns = args.min_txns;
    if args.no_idle_mining {
        config.mine_when_idle = false;
    }
    config.max_frame_len = args.max_frame;
    config.fault = args.fault;
    config.control_token =
        match toycoin_common::control::read_token(args.control_token_file.as_deref(), None) {
            Ok(token) => token,
            Err(e) => {
                tracing::error!("toycoin-node: {e}");
                std::process::exit(2);
            }
        };
    config.clock_skew = args.clock_skew.clamp(-86_400 * 365, 86_400 * 365);
    if let Some(name) = args.name {
        config.name = name;
    }
    let members = match args.consensus.membership(&config.profile) {
        Ok(members) => members,
        Err(e) => {
            error!("toycoin-node: {e}");
            std::process::exit(2);
        }
    };
    if config.profile.minting() == Minting::RewardsAndMint {
        match Wallet::load_or_create(&args.wallet) {
            Ok((wallet, created)) => {
                if created {
                    info!(
                        "Created wallet {} in {}",
                        wallet.fingerprint(),
                        args.wallet.display()
                    );
                }
                config.reward_to = wallet.address().clone();
                config.key = Some(wallet);
            }
            Err(e) => {
                error!("toycoin-node: {e}");
                std::process::exit(2);
            }
        }
    }
    if let Some(members) = members {
        let wallet = match Wallet::load_or_create(&args.wallet) {
            Ok((wallet, _)) => wallet,
            Err(e) => {
                error!("toycoin-node: {e}");
                std::process::exit(2);
            }
        };
        let Some(me) = members.index_of(wallet.address()) else {
            error!(
                "toycoin-node: the key in {} (wallet {}) is not one of the replicas in {}",
                args.wallet.display(),
                wallet.fingerprint(),
                args.consensus.replicas.unwrap_or_default().display()
            );
            std::process::exit(2);
        };
        // The replica's name, so that the relay's `$to:` reaches it.
        config.name = members.name(me);
        config.pbft = Some(PbftConfig {
            members: std::sync::Arc::new(members),
            wallet,
            view_timeout: Duration::from_secs_f64(args.view_timeout),
        });
    }
    let (node, mut events) = spawn(config);
    let printer = tokio::spawn(async move {
        loop {
            match events.recv().await {
                Ok(event) => {
                    event.log();
                    if event == Event::Stopped {
                        return;
                    }
                }
                Err(RecvError::Lagged(n)) => warn!("({n} events not shown: output too slow)"),
                Err(RecvError::Closed) => return,
            }
        }
    });
    shutdown.await;
    node.stop().await;
    let _ = printer.await;
    info!("Bye!");
}
