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
//!
//! On a terminal (a tmux pane of the demo) every line is wrapped at word
//! boundaries to the terminal's width at that moment ([`fit_to`]), so a
//! narrow pane never cuts `MH/s` in two; a pipe or a file gets the lines
//! whole.

use std::borrow::Cow;
use std::fmt;
use std::io::IsTerminal;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use clap::{ArgAction, Args};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::prelude::*;
use tracing_subscriber::registry::LookupSpan;

use crate::log_limit::{LogLimit, LINES_PER_WINDOW, TRAFFIC_LINES_PER_WINDOW};

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
        let terminal = match output {
            Output::Stdout => std::io::stdout().is_terminal(),
            Output::Stderr => std::io::stderr().is_terminal(),
        };
        let lines = HumanLines {
            wrap: terminal.then_some(output),
            limit: Arc::default(),
        };
        let layer = tracing_subscriber::fmt::layer().event_format(lines);
        let layer = match output {
            Output::Stdout => layer.with_writer(std::io::stdout).boxed(),
            Output::Stderr => layer.with_writer(std::io::stderr).boxed(),
        };
        let _ = tracing_subscriber::registry()
            .with(layer.with_filter(self.targets()))
            .try_init();
    }
}

/// Prints an event's message and nothing else, one line per event,
/// wrapped to the width of the terminal it goes to, if any. An event with
/// a `source` field goes through the [`LogLimit`] first: a client cannot
/// make a program print without bound (see [`crate::log_limit`]).
#[derive(Clone, Debug, Default)]
pub struct HumanLines {
    wrap: Option<Output>,
    limit: Arc<Mutex<LogLimit>>,
}

/// The width in columns of the terminal `output` is, now (a pane may be
/// resized at any time); `None` when it is not a terminal.
pub fn terminal_width(output: Output) -> Option<usize> {
    let size = match output {
        Output::Stdout => terminal_size::terminal_size_of(std::io::stdout()),
        Output::Stderr => terminal_size::terminal_size_of(std::io::stderr()),
    };
    size.map(|(w, _)| usize::from(w.0))
}

/// `s` cut to at most `max` bytes, at a character boundary (for text
/// from the network that is kept or sent on: a name, a log line).
pub fn clipped(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// `text` with each of its lines wrapped at word boundaries to `width`
/// columns (colour codes take none), continuations indented two spaces
/// more than their line; a word longer than a line is broken. Unchanged when `width` is
/// `None` or every line fits.
pub fn fit_to(text: &str, width: Option<usize>) -> Cow<'_, str> {
    let Some(width) = width.filter(|&w| w > 8) else {
        return Cow::Borrowed(text);
    };
    if text
        .lines()
        .all(|l| textwrap::core::display_width(l) <= width)
    {
        return Cow::Borrowed(text);
    }
    let mut wrapped = Vec::new();
    for line in text.lines() {
        // Continuations two columns further in than their line (up to half
        // the width, so that something always fits).
        let own = line.len() - line.trim_start().len();
        let indent = " ".repeat((own + 2).min(width / 2));
        let options = textwrap::Options::new(width).subsequent_indent(&indent);
        wrapped.extend(
            textwrap::wrap(line, &options)
                .into_iter()
                .map(Cow::into_owned),
        );
    }
    Cow::Owned(wrapped.join("\n"))
}

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
        let _ = ctx;
        let mut source = SourceField(None);
        event.record(&mut source);
        let mut text = String::new();
        let Ok(mut limit) = self.limit.lock() else {
            return Ok(());
        };
        if let Some(source) = source.0 {
            let allowance = if event.metadata().target() == TRAFFIC {
                TRAFFIC_LINES_PER_WINDOW
            } else {
                LINES_PER_WINDOW
            };
            let kind = event.metadata() as *const _ as usize;
            let verdict = limit.check(kind, &source, allowance, Instant::now());
            drop(limit);
            for summary in verdict.summaries {
                text += &summary;
                text.push('\n');
            }
            if !verdict.print {
                return self.write(&mut writer, &text);
            }
        } else {
            for summary in limit.due(Instant::now()) {
                text += &summary;
                text.push('\n');
            }
            drop(limit);
        }
        let mut fields = MessageFields::default();
        event.record(&mut fields);
        text += &fields.line;
        text.push('\n');
        self.write(&mut writer, &text)
    }
}

impl HumanLines {
    /// Writes `text` (whole lines), wrapped when it goes to a terminal.
    fn write(&self, writer: &mut Writer<'_>, text: &str) -> fmt::Result {
        match self.wrap {
            None => writer.write_str(text),
            Some(output) => {
                let width = terminal_width(output);
                for line in text.lines() {
                    writeln!(writer, "{}", fit_to(line, width))?;
                }
                Ok(())
            }
        }
    }
}

/// The `source` field of an event, if it has one.
struct SourceField(Option<String>);

impl Visit for SourceField {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "source" {
            self.0 = Some(value.to_owned());
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "source" {
            self.0 = Some(format!("{value:?}"));
        }
    }
}

/// An event's message, then any other field but `source` as `name=value`.
#[derive(Default)]
struct MessageFields {
    line: String,
}

impl Visit for MessageFields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.record_debug(field, &format_args!("{value}"));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        use std::fmt::Write;
        match field.name() {
            "source" => {}
            "message" => {
                let _ = write!(self.line, "{value:?}");
            }
            name => {
                let _ = write!(self.line, " {name}={value:?}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clipping_keeps_whole_characters() {
        assert_eq!(clipped("node1", 32), "node1");
        assert_eq!(clipped("abcdef", 3), "abc");
        // "é" is two bytes: cut before it, not through it.
        assert_eq!(clipped("abé", 3), "ab");
    }

    #[test]
    fn lines_are_wrapped_at_words_to_the_width_and_colour_takes_no_room() {
        let line = "Mined block 11 000000b0fdac with 1 txns in 0.44 s at 4.01 MH/s";
        assert_eq!(fit_to(line, None), line);
        assert_eq!(fit_to(line, Some(80)), line);
        let wrapped = fit_to(line, Some(30));
        assert_eq!(
            wrapped,
            "Mined block 11 000000b0fdac\n  with 1 txns in 0.44 s at\n  4.01 MH/s"
        );
        let coloured = "\x1b[32mBlock 3 is now final\x1b[0m: 6 confirmations";
        assert_eq!(fit_to(coloured, Some(42)), coloured, "42 visible columns");
        let indented = "    {\"txn_hash\": \"Jxg71W8qg6...\", \"value\": 11}";
        assert_eq!(
            fit_to(indented, Some(36)),
            "    {\"txn_hash\": \"Jxg71W8qg6...\",\n      \"value\": 11}"
        );
        let long = "a".repeat(50);
        assert!(fit_to(&long, Some(20)).lines().all(|l| l.len() <= 20));
    }
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
