//! Logs bounded in rate: a line that one client can make a program print
//! again and again (a refused frame, a wrong token, a connection) names
//! its `source`, and goes through one limiter per kind and source.
//!
//! ```text
//! tracing::warn!(source = %peer.ip(), "Remote {peer}: command refused: {why}");
//! ```
//!
//! The kind is the line's place in the code (its callsite); the source is
//! whoever the program blames (an address, or for a node, which only hears
//! the relay, the kind of frame). Of each kind and source the first
//! [`LINES_PER_WINDOW`] lines of a [`WINDOW`] are printed; the rest are
//! counted, and once the window is over one line says how many:
//! `… and 12,345 more like it from 127.0.0.1 in 10 s`. A line without a
//! `source` is never held back: what changes state is always shown.
//!
//! Memory is bounded too: at most [`MAX_SOURCES`] kinds and sources are
//! followed; beyond them, further sources of a kind share one entry,
//! `others` (one more per kind, and the kinds are the lines in the code).

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// How long a window lasts.
pub const WINDOW: Duration = Duration::from_secs(10);
/// Lines of one kind and source printed in a window.
pub const LINES_PER_WINDOW: u32 = 5;
/// Lines of one kind and source printed in a window, for per-frame traffic
/// lines (hidden by `--quiet`), which an honest busy client also makes.
pub const TRAFFIC_LINES_PER_WINDOW: u32 = 100;
/// Kinds and sources followed at once.
pub const MAX_SOURCES: usize = 1024;
/// The longest source kept (longer ones are cut).
pub const MAX_SOURCE_LEN: usize = 64;

/// A line's kind: where in the code it is written.
pub type Kind = usize;

#[derive(Debug)]
struct Window {
    start: Instant,
    printed: u32,
    held: u64,
}

/// The limiter: which lines to print, and the summaries owed.
#[derive(Debug, Default)]
pub struct LogLimit {
    windows: HashMap<(Kind, String), Window>,
    /// No window with lines held back ends before this.
    next_due: Option<Instant>,
}

/// What to do with one line.
#[derive(Debug, PartialEq, Eq)]
pub struct Verdict {
    /// Print the line itself.
    pub print: bool,
    /// Lines to print first: the summaries of windows now over.
    pub summaries: Vec<String>,
}

impl LogLimit {
    pub fn new() -> LogLimit {
        LogLimit::default()
    }

    /// Whether to print a line of `kind` from `source` at `now`, allowing
    /// `allowance` lines per window.
    pub fn check(&mut self, kind: Kind, source: &str, allowance: u32, now: Instant) -> Verdict {
        let summaries = self.due(now);
        let mut source = crate::log::clipped(source, MAX_SOURCE_LEN);
        if self.windows.len() >= MAX_SOURCES && !self.windows.contains_key(&(kind, source.into())) {
            source = "others";
        }
        let window = self
            .windows
            .entry((kind, source.to_owned()))
            .or_insert(Window {
                start: now,
                printed: 0,
                held: 0,
            });
        let print = if window.printed < allowance {
            window.printed += 1;
            true
        } else {
            if window.held == 0 {
                let end = window.start + WINDOW;
                self.next_due = Some(self.next_due.map_or(end, |due| due.min(end)));
            }
            window.held += 1;
            false
        };
        Verdict { print, summaries }
    }

    /// The summaries of the windows over at `now`, which are forgotten
    /// (a source quiet for a window starts afresh): printed before any
    /// line, limited or not.
    pub fn due(&mut self, now: Instant) -> Vec<String> {
        let mut summaries = Vec::new();
        if self.next_due.is_some_and(|due| now < due) {
            return summaries;
        }
        if self.next_due.is_none() && self.windows.len() < MAX_SOURCES {
            // Nothing held back: forget finished windows only when the
            // table is full.
            return summaries;
        }
        let mut next_due = None;
        self.windows.retain(|(_, source), window| {
            let end = window.start + WINDOW;
            if now < end {
                if window.held > 0 {
                    next_due = Some(next_due.map_or(end, |due: Instant| due.min(end)));
                }
                return true;
            }
            if window.held > 0 {
                summaries.push(format!(
                    "… and {} more like it from {source} in {} s",
                    thousands(window.held),
                    now.duration_since(window.start).as_secs()
                ));
            }
            false
        });
        self.next_due = next_due;
        summaries
    }

    /// Kinds and sources followed now.
    pub fn followed(&self) -> usize {
        self.windows.len()
    }
}

/// `n` with a comma every three digits: 12,345.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_lines_print_then_one_summary_per_window() {
        let mut limit = LogLimit::new();
        let t0 = Instant::now();
        let printed = (0..1000)
            .filter(|_| limit.check(1, "127.0.0.1", LINES_PER_WINDOW, t0).print)
            .count();
        assert_eq!(printed, LINES_PER_WINDOW as usize);
        // Another source and another kind have windows of their own.
        assert!(limit.check(1, "127.0.0.2", LINES_PER_WINDOW, t0).print);
        assert!(limit.check(2, "127.0.0.1", LINES_PER_WINDOW, t0).print);
        // The window over, the next line of any kind brings the summary.
        let later = t0 + WINDOW;
        let verdict = limit.check(3, "x", LINES_PER_WINDOW, later);
        assert!(verdict.print);
        assert_eq!(
            verdict.summaries,
            vec!["… and 995 more like it from 127.0.0.1 in 10 s".to_string()]
        );
        // Forgotten once summarised: the source starts afresh.
        assert!(limit.check(1, "127.0.0.1", LINES_PER_WINDOW, later).print);
        assert!(limit
            .check(1, "127.0.0.1", LINES_PER_WINDOW, later)
            .summaries
            .is_empty());
    }

    #[test]
    fn a_flood_of_sources_is_bounded_in_memory_and_in_lines() {
        let mut limit = LogLimit::new();
        let t0 = Instant::now();
        let printed = (0..100_000)
            .filter(|i| {
                limit
                    .check(1, &format!("10.0.{}.{}", i / 256, i % 256), 5, t0)
                    .print
            })
            .count();
        // The sources beyond the table share one entry per kind.
        assert_eq!(limit.followed(), MAX_SOURCES + 1);
        assert!(printed <= MAX_SOURCES + 5, "{printed}");
        let verdict = limit.check(1, "10.9.9.9", 5, t0 + WINDOW);
        assert_eq!(verdict.summaries.len(), 1, "{:?}", verdict.summaries);
        assert!(
            verdict.summaries[0].contains("from others"),
            "{:?}",
            verdict.summaries
        );
    }

    #[test]
    fn numbers_are_grouped_by_thousands() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(12_345), "12,345");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }
}
