//! `toycoin-listener`: print every frame on a relay topic until Ctrl-C.

use std::io::IsTerminal;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use toycoin_common::chain::now_secs;
use toycoin_common::profile::{Profile, ProfileKind, DEFAULT_TARGET_SECS};
use toycoin_common::relay::{RelayClient, RelayPublisher, DEFAULT_TOPIC};
use toycoin_listener::{Listener, Mode};

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Color {
    /// In a terminal, unless NO_COLOR is set.
    Auto,
    Always,
    Never,
}

/// The toycoin listener: decodes every frame on a relay topic and shows it,
/// keeping its own view of the best chain.
#[derive(Debug, Parser)]
#[command(name = "toycoin-listener", version)]
struct Args {
    /// Relay host.
    #[arg(long, default_value = "localhost")]
    host: String,
    /// Relay port.
    #[arg(long, default_value_t = 25000)]
    port: u16,
    /// Topic to listen to.
    #[arg(long, alias = "channel", default_value = DEFAULT_TOPIC)]
    listen: String,
    /// Rules to judge validity by: steady (default) or toycoin.
    #[arg(long, default_value = "steady")]
    profile: ProfileKind,
    /// The steady profile's target seconds between blocks (as the nodes').
    #[arg(long, default_value_t = DEFAULT_TARGET_SECS)]
    target_interval: f64,
    /// One JSON object per line per frame (for jq and scripts).
    #[arg(long, conflicts_with = "brief")]
    json: bool,
    /// One line per frame.
    #[arg(long)]
    brief: bool,
    /// Colours.
    #[arg(long, value_enum, default_value_t = Color::Auto)]
    color: Color,
    /// Never send catch-up requests (GETB); only listen.
    #[arg(long)]
    passive: bool,
}

async fn connect(addr: &str, topic: &str) -> RelayClient {
    let mut backoff = Duration::from_millis(250);
    loop {
        match RelayClient::connect(addr, topic).await {
            Ok(c) => {
                eprintln!("Listening to {topic} on relay {addr}");
                return c;
            }
            Err(e) => {
                eprintln!(
                    "Relay: cannot connect to {addr}: {e}; retrying in {:.1} s",
                    backoff.as_secs_f64()
                );
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
}

async fn publish(publisher: &mut RelayPublisher, topic: &str, payload: Option<bytes::Bytes>) {
    if let Some(p) = payload {
        if let Err(e) = publisher.publish(topic, &p).await {
            eprintln!("Relay: could not send a catch-up request: {e}");
        }
    }
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let ctrl_c = toycoin_common::signal::shutdown_signal();
    let mode = if args.json {
        Mode::Json
    } else if args.brief {
        Mode::Brief
    } else {
        Mode::Text
    };
    let color = match args.color {
        Color::Always => true,
        Color::Never => false,
        Color::Auto => std::env::var_os("NO_COLOR").is_none() && std::io::stdout().is_terminal(),
    };
    let profile = Profile::new(args.profile, args.target_interval);
    let addr = format!("{}:{}", args.host, args.port);
    let mut listener = Listener::new(profile, mode, color);
    eprintln!(
        "Starting up: Listener (profile {}, {} output)",
        profile.kind,
        match mode {
            Mode::Text => "text",
            Mode::Brief => "brief",
            Mode::Json => "JSON",
        }
    );
    tokio::pin!(ctrl_c);
    loop {
        let client = tokio::select! {
            _ = &mut ctrl_c => {
                eprintln!("Bye!");
                return;
            }
            client = connect(&addr, &args.listen) => client,
        };
        let (mut receiver, mut publisher) = client.into_split();
        if !args.passive {
            let request = listener.initial_request();
            publish(&mut publisher, &args.listen, request).await;
        }
        loop {
            let frame = tokio::select! {
                _ = &mut ctrl_c => {
                    eprintln!("Bye!");
                    return;
                }
                frame = receiver.recv() => frame,
            };
            match frame {
                Ok(Some(payload)) => {
                    let shown = listener.handle(&payload, now_secs());
                    println!("{}", shown.text);
                    if !args.passive {
                        publish(&mut publisher, &args.listen, shown.request).await;
                    }
                }
                Ok(None) => {
                    eprintln!("Relay: the relay closed the connection; reconnecting");
                    break;
                }
                Err(e) => {
                    eprintln!("Relay: {e}; reconnecting");
                    break;
                }
            }
        }
    }
}
