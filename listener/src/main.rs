//! `toycoin-listener`: print every frame on a relay topic until Ctrl-C.

use std::io::{IsTerminal, Write};

use clap::{Parser, ValueEnum};
use toycoin_common::cli::{ProfileArgs, RelayArgs};
use toycoin_common::log::{fit_to, terminal_width, LogArgs, Output};
use toycoin_common::session::{Session, SessionEvent};
use toycoin_listener::{session_config, Judge, Mode, Renderer};
use tracing::{info, warn};

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
    #[command(flatten)]
    relay: RelayArgs,
    #[command(flatten)]
    rules: ProfileArgs,
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
    // Frames are shown on stdout; --quiet shows only those that change
    // the best chain or are refused. Log lines go to stderr.
    #[command(flatten)]
    log: LogArgs,
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    args.log.init(Output::Stderr);
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
    let profile = args.rules.profile();
    let mut config = session_config(args.relay.addr(), profile);
    config.topic = args.relay.channel.clone();
    config.ask = !args.passive;
    let renderer = Renderer::new(mode, color);
    // Human lines on a terminal fit its width; JSON lines stay whole.
    let wrap = mode != Mode::Json && std::io::stdout().is_terminal();
    let mut judge = Judge::new();
    info!(
        "Starting up: Listener (profile {}, {} output)",
        profile.kind,
        mode.name()
    );
    let mut session = Session::start(config);
    tokio::pin!(ctrl_c);
    loop {
        let event = tokio::select! {
            _ = &mut ctrl_c => break,
            event = session.next() => event,
        };
        match event {
            None => break,
            Some(SessionEvent::Connected { relay, .. }) => {
                info!("Listening to {} on relay {relay}", args.relay.channel);
            }
            Some(SessionEvent::Lost { reason, retry_in }) => warn!(
                "Relay: {reason}; retrying in {:.1} s",
                retry_in.as_secs_f64()
            ),
            Some(event) => {
                match judge.judge(event, session.tree()) {
                    Some(verdict) if verdict.is_news() || !args.log.quiet => {
                        // stdout closed (`| head`): stop, not panic.
                        let text = renderer.render(&verdict);
                        let width = wrap.then(|| terminal_width(Output::Stdout)).flatten();
                        let mut out = std::io::stdout().lock();
                        if writeln!(out, "{}", fit_to(&text, width)).is_err() {
                            break;
                        }
                    }
                    _ => {}
                }
            }
        }
    }
    info!("Bye!");
}
