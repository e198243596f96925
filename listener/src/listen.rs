//! The listener's command line and event loop: the session's events
//! judged one by one ([`crate::judge`]), shown ([`crate::render`]) and fed
//! to the web view ([`crate::web`]). `main` only parses and calls [`run`].

use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::sync::Arc;

use crate::web::{self, WebModel, BATCH};
use crate::{session_config, Judge, Mode, Renderer};
use clap::{Parser, ValueEnum};
use toycoin_common::cli::{ProfileArgs, RelayArgs};
use toycoin_common::log::{fit_to, terminal_width, LogArgs, Output};
use toycoin_common::session::{Session, SessionEvent};
use tracing::{info, warn};

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Color {
    /// In a terminal, unless NO_COLOR is set.
    Auto,
    Always,
    Never,
}

/// The toycoin listener: decodes every frame on a relay topic and shows it,
/// keeping its own view of the best chain.
#[derive(Debug, Parser)]
#[command(name = "toycoin-listener", version)]
pub struct Args {
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
    /// pBFT: the replicas file, to check every PBFT message's signature
    /// and show replicas by name (without it they are counted unchecked).
    #[arg(long, value_name = "FILE")]
    replicas: Option<std::path::PathBuf>,
    /// Never send catch-up requests (GETB); only listen.
    #[arg(long)]
    passive: bool,
    /// Serve a live web view of the network for the projector at ADDR
    /// (127.0.0.1:8080 when given alone; 0.0.0.0:8080 lets the class
    /// open it too).
    #[arg(long, value_name = "ADDR", num_args = 0..=1, default_missing_value = "127.0.0.1:8080")]
    web: Option<SocketAddr>,
    /// The web view shows the teacher's buttons (hold, step, release) for
    /// the live class it watches; they work from a browser on this
    /// machine, with the relay's token from its file. (Watching a replay,
    /// it shows the replay's timeline without this.)
    #[arg(long, requires = "web")]
    controls: bool,
    /// A lesson's directory (`toycoin-demo --lesson` gives it): the web
    /// view shows where the lesson stands, and its Next button (this
    /// machine only) lets the lesson go on.
    #[arg(long, value_name = "DIR", requires = "web")]
    lesson_dir: Option<std::path::PathBuf>,
    // Frames are shown on stdout; --quiet shows only those that change
    // the best chain or are refused. Log lines go to stderr.
    #[command(flatten)]
    log: LogArgs,
}

/// How often the web view is refreshed when nothing happens (ages of
/// pending transactions, the reorganisation banner going out).
const WEB_REFRESH: std::time::Duration = std::time::Duration::from_secs(2);

/// How often a lesson's state file is looked at.
const LESSON_POLL: std::time::Duration = std::time::Duration::from_millis(250);

/// Listens until Ctrl-C (or stdout closes): every frame judged, shown,
/// and fed to the web view. Returns the exit code: 0, 1 when the web view
/// cannot be served, 2 for a replicas file that does not load.
pub async fn run(args: Args) -> i32 {
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
    let network = args
        .rules
        .network_or_exit(&args.relay, "toycoin-listener")
        .await;
    let profile = network.profile();
    let mut config = session_config(args.relay.addr(), profile);
    config.topic = args.relay.channel.clone();
    config.ask = !args.passive;
    let renderer = Renderer::new(mode, color);
    // Human lines on a terminal fit its width; JSON lines stay whole.
    let wrap = mode != Mode::Json && std::io::stdout().is_terminal();
    let mut judge = match &args.replicas {
        None => Judge::new(),
        Some(path) => match toycoin_common::pbft::Membership::load(path) {
            Ok(members) => Judge::with_replicas(Arc::new(members)),
            Err(e) => {
                tracing::error!("toycoin-listener: {e}");
                return 2;
            }
        },
    };
    info!(
        "Starting up: Listener (profile {}, {} output)",
        profile.kind,
        mode.name()
    );
    let mut session = Session::start(config);
    // Whether the relay is a replay, asked on a connection of our own:
    // only then are its positions believed, and its timeline shown.
    let (replay_said, mut is_replay) = tokio::sync::oneshot::channel();
    {
        let addr = args.relay.addr();
        tokio::spawn(async move {
            let _ = replay_said.send(toycoin_common::network::is_replay(&addr).await);
        });
    }
    let replay_buttons = Arc::new(std::sync::atomic::AtomicBool::new(false));
    // The best chain's headers, for the students' wallet pages.
    let (headers_tx, headers_rx) =
        tokio::sync::watch::channel(Arc::new(web::wallets::BestHeaders::default()));
    // The web view: fed the same verdicts, in the brief sentences, and
    // sent a snapshot at most every BATCH (and every few seconds for ages).
    let mut web = match args.web {
        None => None,
        Some(addr) => {
            let (tx, rx) = tokio::sync::watch::channel(Arc::<str>::from("{}"));
            let controls = web::Controls {
                relay: args.relay.addr(),
                port: args.relay.port,
                live: args.controls,
                replay: replay_buttons.clone(),
                lesson: args.lesson_dir.clone(),
                wallets: Some(web::wallets::Wallets {
                    relay: args.relay.addr(),
                    topic: args.relay.channel.clone(),
                    network: network.clone(),
                    headers: headers_rx,
                }),
            };
            match web::serve_with(addr, rx, Some(controls)).await {
                Ok(local) => {
                    info!("Web view: http://{local}/");
                    info!(
                        "Students' wallet page: {}",
                        web::wallets::student_url(local)
                    );
                }
                Err(e) => {
                    tracing::error!("cannot serve the web view on {addr}: {e}");
                    return 1;
                }
            }
            let mut model = WebModel::new();
            model.set_network(&network);
            if let Some(members) = judge.tally().members() {
                model.set_replicas((0..members.n()).map(|i| members.name(i)).collect());
            }
            model.set_controls(args.controls);
            Some((model, tx, Renderer::new(Mode::Brief, false)))
        }
    };
    let mut publish_at = tokio::time::Instant::now();
    // A lesson's state, read again when its file changes.
    let mut lesson_poll = tokio::time::interval(LESSON_POLL);
    let mut lesson_seen: Option<(std::time::SystemTime, u64)> = None;
    tokio::pin!(ctrl_c);
    loop {
        let event = tokio::select! {
            _ = &mut ctrl_c => break,
            said = &mut is_replay, if !is_replay.is_terminated() => {
                let replay = said.unwrap_or(false);
                session.follow_replay(replay);
                replay_buttons.store(replay, std::sync::atomic::Ordering::Relaxed);
                if replay {
                    info!("The relay is a replay of a recorded class: following its timeline");
                }
                continue;
            }
            event = session.next() => event,
            _ = lesson_poll.tick(), if web.is_some() && args.lesson_dir.is_some() => {
                let (Some(dir), Some((model, _, _))) = (&args.lesson_dir, &mut web) else {
                    continue;
                };
                let stamp = std::fs::metadata(dir.join(crate::lesson_panel::STATE_FILE))
                    .ok()
                    .and_then(|m| Some((m.modified().ok()?, m.len())));
                if stamp != lesson_seen {
                    lesson_seen = stamp;
                    model.set_lesson(crate::lesson_panel::read_state(dir));
                    publish_at = publish_at.min(tokio::time::Instant::now());
                }
                continue;
            }
            _ = tokio::time::sleep_until(publish_at), if web.is_some() => {
                if let Some((model, tx, _)) = &mut web {
                    let snapshot = model.snapshot(session.tree(), judge.pool());
                    tx.send_replace(Arc::from(snapshot.to_string()));
                    // The pages' headers, again when the tip moved.
                    let entries = session.tree().chain().entries();
                    let tip = entries.last().map(|e| e.header.this_hash);
                    if headers_tx.borrow().tip() != tip {
                        let best = entries.iter().map(|e| e.header.clone()).collect();
                        let best = web::wallets::BestHeaders::new(best);
                        headers_tx.send_replace(Arc::new(best));
                    }
                }
                publish_at = tokio::time::Instant::now() + WEB_REFRESH;
                continue;
            }
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
                let verdict = judge.judge(event, session.tree());
                if let (Some((model, _, brief)), Some(v)) = (&mut web, &verdict) {
                    model.observe(v, &brief.render(v));
                    // Soon, but not sooner than BATCH after the last one.
                    let soon = tokio::time::Instant::now() + BATCH;
                    publish_at = publish_at.min(soon);
                }
                // Nodes' statuses come every few seconds: shown as JSON,
                // and as text only with -v.
                let chatter = (matches!(
                    verdict,
                    Some(crate::Verdict::Status { lie: None, .. })
                ) && mode != Mode::Json
                    && args.log.verbose == 0)
                    // A replay's position, every second: the web view's
                    // timeline; only a seek back is printed.
                    || matches!(
                        verdict,
                        Some(crate::Verdict::Timeline {
                            restarted: false,
                            ..
                        })
                    );
                match verdict {
                    Some(verdict) if !chatter && (verdict.is_news() || !args.log.quiet) => {
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
    0
}
