//! The one logging path: every program reports through `tracing`, and
//! [`LogArgs::init`] prints each event as the plain human line the demo
//! shows — the message alone, no time stamp, level or module.
//!
//! What the levels mean, the same in every binary:
//! - `error!`/`warn!`: something went wrong or was refused (a bad frame, a
//!   rejected transaction, a lost relay);
//! - `info!`: what changes state — connections, blocks mined and adopted,
//!   confirmations, summaries;
//! - `info!(target: TRAFFIC, ..)`: each frame passing through (the relay's
//!   `Sending to ...`, a node's `TXN ... accepted`): hidden by `--quiet`;
//! - `debug!`/`trace!`: detail shown with `-v`/`-vv` (a node's own frames
//!   coming back from the relay).
//!
//! Libraries only emit events; with no subscriber installed (tests,
//! benchmarks) nothing is printed and nothing is formatted.

use std::fmt;

use clap::{ArgAction, Args};
use tracing::{Event, Subscriber};
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::prelude::*;
use tracing_subscriber::registry::LookupSpan;

/// The target of per-frame lines, which `--quiet` hides.
pub const TRAFFIC: &str = "traffic";

/// `--quiet` and `-v`, flattened into every binary's flags.
#[derive(Clone, Copy, Debug, Default, Args)]
pub struct LogArgs {
    /// Show only what changes state (connections, blocks, confirmations,
    /// problems, summaries), not every frame passing through.
    #[arg(short, long, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Show more: -v adds detail (such as a node's own frames coming back
    /// from the relay), -vv everything.
    #[arg(short, long, action = ArgAction::Count)]
    pub verbose: u8,
}

/// Where a program's log lines go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Output {
    Stdout,
    /// For programs whose stdout is data (the listener's `--json`).
    Stderr,
}

impl LogArgs {
    /// Which events these flags let through.
    pub fn targets(&self) -> Targets {
        let level = match self.verbose {
            0 => LevelFilter::INFO,
            1 => LevelFilter::DEBUG,
            _ => LevelFilter::TRACE,
        };
        let traffic = if self.quiet { LevelFilter::OFF } else { level };
        Targets::new()
            .with_default(level)
            .with_target(TRAFFIC, traffic)
    }

    /// Installs the line printer for this process (once; later calls do
    /// nothing).
    pub fn init(&self, output: Output) {
        let layer = tracing_subscriber::fmt::layer().event_format(HumanLines);
        let layer = match output {
            Output::Stdout => layer.with_writer(std::io::stdout).boxed(),
            Output::Stderr => layer.with_writer(std::io::stderr).boxed(),
        };
        let _ = tracing_subscriber::registry()
            .with(layer.with_filter(self.targets()))
            .try_init();
    }
}

/// Prints an event's message and nothing else, one line per event.
#[derive(Clone, Copy, Debug, Default)]
pub struct HumanLines;

impl<S, N> FormatEvent<S, N> for HumanLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        ctx.field_format().format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing::Level;

    fn shows(args: &LogArgs, target: &str, level: Level) -> bool {
        args.targets().would_enable(target, &level)
    }

    const QUIET: LogArgs = LogArgs {
        quiet: true,
        verbose: 0,
    };
    const DEFAULT: LogArgs = LogArgs {
        quiet: false,
        verbose: 0,
    };
    const VERBOSE: LogArgs = LogArgs {
        quiet: false,
        verbose: 1,
    };

    #[test]
    fn default_shows_state_and_traffic_but_not_detail() {
        assert!(shows(&DEFAULT, "toycoin_relay::server", Level::INFO));
        assert!(shows(&DEFAULT, TRAFFIC, Level::INFO));
        assert!(shows(&DEFAULT, "toycoin_node", Level::WARN));
        assert!(!shows(&DEFAULT, "toycoin_node", Level::DEBUG));
    }

    #[test]
    fn quiet_hides_only_traffic() {
        assert!(!shows(&QUIET, TRAFFIC, Level::INFO));
        assert!(!shows(&QUIET, TRAFFIC, Level::WARN));
        assert!(shows(&QUIET, "toycoin_relay::server", Level::INFO));
        assert!(shows(&QUIET, "toycoin_oracle", Level::WARN));
    }

    #[test]
    fn verbose_adds_detail_and_more_v_adds_more() {
        assert!(shows(&VERBOSE, "toycoin_node", Level::DEBUG));
        assert!(shows(&VERBOSE, TRAFFIC, Level::DEBUG));
        assert!(!shows(&VERBOSE, "toycoin_node", Level::TRACE));
        let vv = LogArgs {
            quiet: false,
            verbose: 2,
        };
        assert!(shows(&vv, "toycoin_node", Level::TRACE));
    }

    #[test]
    fn quiet_and_verbose_are_exclusive_on_the_command_line() {
        use clap::Parser;
        #[derive(Debug, Parser)]
        struct Cli {
            #[command(flatten)]
            log: LogArgs,
        }
        assert!(Cli::try_parse_from(["x", "-q", "-v"]).is_err());
        let cli = Cli::try_parse_from(["x", "-vv"]).expect("-vv parses");
        assert_eq!(cli.log.verbose, 2);
        let cli = Cli::try_parse_from(["x", "--quiet"]).expect("--quiet parses");
        assert!(cli.log.quiet);
    }
}
