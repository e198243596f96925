//! `toycoin-relay`: run the relay hub until Ctrl-C.

use std::time::Duration;

use bytesize::ByteSize;
use clap::{Parser, ValueEnum};
use toycoin_common::cli::{seconds, NewNetworkArgs};
use toycoin_common::control::{read_token, write_token};
use toycoin_common::log::{LogArgs, Output};
use toycoin_relay::control::Teacher;
use toycoin_relay::{server, Relay, RelayConfig, SlowPolicy};
use tracing::{error, info, warn};

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Slow {
    /// Drop messages for a subscriber whose queue is full (counted).
    Drop,
    /// Disconnect a subscriber whose queue is full.
    Disconnect,
}

/// A topic pub/sub relay for toycoin: every client's first frame
/// subscribes it to a topic; then each (topic, data) pair it sends goes to
/// every subscriber of that topic.
#[derive(Debug, Parser)]
#[command(name = "toycoin-relay", version)]
struct Args {
    /// Address to listen on (0.0.0.0 lets other machines connect).
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Port to listen on.
    #[arg(long, default_value_t = 25000)]
    port: u16,
    /// Largest frame a client may send (bytes, or with a unit: 16MiB).
    #[arg(long, default_value = "16MiB")]
    max_frame: ByteSize,
    /// Most connections at once; more are closed at once.
    #[arg(long, default_value_t = 1024)]
    max_connections: usize,
    /// Most connections from one IP address (a class behind one NAT
    /// address shares it).
    #[arg(long, default_value_t = server::DEFAULT_MAX_PER_ADDRESS)]
    per_address: usize,
    /// Most memory held for all clients together: queued messages and
    /// frames being read. Under pressure the slowest subscribers are shed.
    #[arg(long, default_value = "256MiB")]
    memory: ByteSize,
    /// Most messages queued for one subscriber (0: no count limit, the
    /// default: bytes decide, each message's place counted).
    #[arg(long, default_value_t = 0)]
    queue: usize,
    /// Most bytes queued for one subscriber once the memory budget is half
    /// used (before that, a subscriber merely behind loses nothing; one
    /// message of any size still fits an empty queue).
    #[arg(long, default_value = "8MiB")]
    queue_bytes: ByteSize,
    /// What to do with a subscriber that falls behind: drop messages for
    /// it, or disconnect it.
    #[arg(long, value_enum, default_value_t = Slow::Drop)]
    slow: Slow,
    /// Seconds a new client has to send its subscription.
    #[arg(long, default_value_t = 10.0, value_parser = seconds(0.001, 86_400.0))]
    subscribe_timeout: f64,
    /// Seconds within which a frame in progress must receive 8 KiB more (or
    /// complete); a client that stalls or trickles is dropped.
    #[arg(long, default_value_t = 10.0, value_parser = seconds(0.001, 86_400.0))]
    frame_timeout: f64,
    /// Seconds between summary lines (0: none).
    #[arg(long, default_value_t = 10.0)]
    summary: f64,
    #[command(flatten)]
    network: NewNetworkArgs,
    #[command(flatten)]
    log: LogArgs,
    /// A file holding the teacher's token for commands (`toycoin-ctl`);
    /// else $TOYCOIN_CONTROL_TOKEN; else a new random one. Either way it is
    /// written to a file only you can read, never shown on a command line.
    #[arg(long, value_name = "PATH")]
    token_file: Option<std::path::PathBuf>,
    /// Take the teacher's commands from other machines too (by default only
    /// from this one).
    #[arg(long)]
    control_from_anywhere: bool,
    /// Take no commands at all.
    #[arg(long, conflicts_with_all = ["token_file", "control_from_anywhere"])]
    no_control: bool,
    /// Record every frame forwarded (with its time and sender) and every
    /// teacher's command into this journal, for `toycoin-replay`.
    #[arg(long, value_name = "FILE")]
    record: Option<std::path::PathBuf>,
    /// Past this size the journal starts a new file, keeping the last as
    /// FILE.1.
    #[arg(long, default_value = "1GiB", value_name = "BYTES")]
    record_max: ByteSize,
    /// Once listening, write {"program":"toycoin-relay","addr":"HOST:PORT"}
    /// to this file (for scripts and the demo, which pass --port 0).
    #[arg(long, value_name = "PATH")]
    ready_file: Option<std::path::PathBuf>,
}

#[tokio::main]
async fn main() {
    toycoin_common::signal::end_quietly_on_broken_pipe();
    toycoin_allocator::tune();
    let args = Args::parse();
    args.log.init(Output::Stdout);
    let shutdown = toycoin_common::signal::shutdown_signal();
    let size = |b: ByteSize| usize::try_from(b.as_u64()).unwrap_or(usize::MAX);
    let network = match args.network.network() {
        Ok(network) => network,
        Err(e) => {
            error!("toycoin-relay: {e}");
            std::process::exit(2);
        }
    };
    let token = if args.no_control {
        None
    } else {
        match read_token(args.token_file.as_deref(), None) {
            Ok(token) => Some(token.unwrap_or_else(|| Teacher::new().token)),
            Err(e) => {
                error!("toycoin-relay: {e}");
                std::process::exit(2);
            }
        }
    };
    let mut config = RelayConfig {
        max_frame_len: size(args.max_frame).min(u32::MAX as usize),
        max_connections: args.max_connections.max(1),
        max_per_address: args.per_address.max(1),
        memory: size(args.memory),
        queue_messages: if args.queue == 0 {
            usize::MAX
        } else {
            args.queue
        },
        queue_bytes: size(args.queue_bytes),
        frame_timeout: Duration::from_secs_f64(args.frame_timeout),
        slow_policy: match args.slow {
            Slow::Drop => SlowPolicy::Drop,
            Slow::Disconnect => SlowPolicy::Disconnect,
        },
        subscribe_timeout: Duration::from_secs_f64(args.subscribe_timeout),
        summary_interval: (args.summary > 0.0).then(|| Duration::from_secs_f64(args.summary)),
        teacher: token.map(|token| Teacher {
            token,
            anywhere: args.control_from_anywhere,
        }),
        network: Some(network),
        record: args.record.clone(),
        record_max: args.record_max.as_u64(),
        replay: None,
    };
    if config.max_frame_len > config.memory / 2 {
        // Frames being read may take half the budget: a larger one could
        // never be read whole.
        config.max_frame_len = config.memory / 2;
        info!(
            "toycoin-relay: --max-frame lowered to {} bytes, half of --memory",
            config.max_frame_len
        );
    }
    let listener = match toycoin_relay::bind((args.host.as_str(), args.port)).await {
        Ok(l) => l,
        Err(e) => {
            error!(
                "toycoin-relay: cannot listen on {}:{}: {e}",
                args.host, args.port
            );
            std::process::exit(1);
        }
    };
    let addr = listener.local_addr().map_or_else(
        |_| format!("{}:{}", args.host, args.port),
        |a| a.to_string(),
    );
    // The token file first: whoever waits for the ready file may read it.
    let mut token_path = None;
    if let (Some(teacher), Ok(local)) = (&config.teacher, listener.local_addr()) {
        let from = if teacher.anywhere {
            "from any machine"
        } else {
            "from this machine only"
        };
        match write_token(local.port(), &teacher.token) {
            Ok(path) => {
                info!(
                    "Teacher's controls {from}: toycoin-ctl --relay {addr} status (the token is in {})",
                    path.display()
                );
                token_path = Some(path);
            }
            Err(e) => warn!(
                "Teacher's controls {from}: cannot write the token file ({e}); give toycoin-ctl --token-file or $TOYCOIN_CONTROL_TOKEN yourself"
            ),
        }
    }
    if let Some(path) = &args.ready_file {
        let written = listener.local_addr().and_then(|addr| {
            let ready = toycoin_common::ready::Ready {
                token: config.teacher.as_ref().map(|t| t.token.clone()),
                program: "toycoin-relay".into(),
                addr,
            };
            toycoin_common::ready::write(path, &ready)
        });
        if let Err(e) = written {
            error!("toycoin-relay: cannot write {}: {e}", path.display());
            std::process::exit(1);
        }
    }
    info!(
        "Relay listening on {addr} (max frame {} bytes, at most {} connections, {} per address, memory budget {})",
        config.max_frame_len,
        config.max_connections,
        config.max_per_address,
        ByteSize::b(config.memory as u64)
    );
    if let Some(path) = &config.record {
        info!(
            "Recording the class into {} (replay it: toycoin-replay {})",
            path.display(),
            path.display()
        );
    }
    if let Some(network) = &config.network {
        info!(
            "{} — students join with --join {}",
            network.banner(),
            network.join_code()
        );
    }
    let relay = Relay::new(config);
    if let Err(e) = relay.run(listener, shutdown).await {
        error!("toycoin-relay: {e}");
        std::process::exit(1);
    }
    if let Some(path) = token_path {
        let _ = std::fs::remove_file(path);
    }
    info!("Bye!");
}
