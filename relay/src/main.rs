//! `toycoin-relay`: run the relay hub until Ctrl-C.

use std::time::Duration;

use clap::{Parser, ValueEnum};
use toycoin_common::log::{LogArgs, Output};
use toycoin_relay::{Relay, RelayConfig, SlowPolicy};
use tracing::{error, info};

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
    /// Largest frame a client may send, in bytes.
    #[arg(long, default_value_t = toycoin_common::frame::DEFAULT_MAX_FRAME_LEN)]
    max_frame: usize,
    /// Most connections at once; more are closed at once.
    #[arg(long, default_value_t = 1024)]
    max_connections: usize,
    /// Most messages queued for one subscriber.
    #[arg(long, default_value_t = 65_536)]
    queue: usize,
    /// Most bytes queued for one subscriber.
    #[arg(long, default_value_t = 64 * 1024 * 1024)]
    queue_bytes: usize,
    /// What to do when a subscriber's queue is full.
    #[arg(long, value_enum, default_value_t = Slow::Drop)]
    slow: Slow,
    /// Seconds a new client has to send its subscription.
    #[arg(long, default_value_t = 10.0)]
    subscribe_timeout: f64,
    /// Seconds between summary lines (0: none).
    #[arg(long, default_value_t = 10.0)]
    summary: f64,
    #[command(flatten)]
    log: LogArgs,
    /// Once listening, write {"program":"toycoin-relay","addr":"HOST:PORT"}
    /// to this file (for scripts and the demo, which pass --port 0).
    #[arg(long, value_name = "PATH")]
    ready_file: Option<std::path::PathBuf>,
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    args.log.init(Output::Stdout);
    let shutdown = toycoin_common::signal::shutdown_signal();
    let config = RelayConfig {
        max_frame_len: args.max_frame,
        max_connections: args.max_connections.max(1),
        queue_messages: args.queue.max(1),
        queue_bytes: args.queue_bytes,
        slow_policy: match args.slow {
            Slow::Drop => SlowPolicy::Drop,
            Slow::Disconnect => SlowPolicy::Disconnect,
        },
        subscribe_timeout: Duration::from_secs_f64(args.subscribe_timeout.max(0.001)),
        summary_interval: (args.summary > 0.0).then(|| Duration::from_secs_f64(args.summary)),
    };
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
    if let Some(path) = &args.ready_file {
        let written = listener.local_addr().and_then(|addr| {
            let ready = toycoin_common::ready::Ready {
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
        "Relay listening on {addr} (max frame {} bytes, at most {} connections)",
        config.max_frame_len, config.max_connections
    );
    let relay = Relay::new(config);
    if let Err(e) = relay.run(listener, shutdown).await {
        error!("toycoin-relay: {e}");
        std::process::exit(1);
    }
    info!("Bye!");
}
