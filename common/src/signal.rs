//! Ctrl-C for the binaries: a future that completes on SIGINT, SIGTERM or
//! SIGHUP (the terminal closed: a tmux session killed, a window shut), so
//! that a program stopped any of these ways ends as after Ctrl-C (the
//! relay removes its token file).
//!
//! The handlers are installed when [`shutdown_signal`] is called, not when
//! the future is first polled: a program that calls it before saying it is
//! ready cannot be killed outright by a Ctrl-C that comes just after (with
//! `tokio::signal::ctrl_c()`, a signal before the first poll still kills).

use std::future::Future;

/// Installs the handlers now; the future completes at the first SIGINT,
/// SIGTERM or SIGHUP (Ctrl-C elsewhere than Unix).
pub fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let int = signal(SignalKind::interrupt());
        let term = signal(SignalKind::terminate());
        let hup = signal(SignalKind::hangup());
        async move {
            match (int, term, hup) {
                (Ok(mut int), Ok(mut term), Ok(mut hup)) => {
                    tokio::select! {
                        _ = int.recv() => {}
                        _ = term.recv() => {}
                        _ = hup.recv() => {}
                    }
                }
                _ => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        }
    }
    #[cfg(not(unix))]
    {
        async {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// Lets the program end quietly, as command-line tools do, when the reader
/// of its output goes away (`toycoin-wallet address | head -1`): Rust
/// ignores SIGPIPE, so a `println!` after that panics with "failed
/// printing to stdout: Broken pipe". That one panic ends the program with
/// exit code 0 and no message; any other is reported as before. (Not by
/// restoring SIGPIPE: a write to a socket a peer closed would then kill a
/// relay or a node.) Called first thing in every `main`.
pub fn end_quietly_on_broken_pipe() {
    quiet_on_broken_pipe(true);
}

/// As [`end_quietly_on_broken_pipe`], for a program that started others
/// (`toycoin-bench`'s classes, `toycoin-demo`'s): the broken pipe's panic unwinds, quietly,
/// so that what the program holds is dropped on the way out, its
/// children stopped among them (`kill_on_drop`); ending there with exit
/// code 0 is the program's to do ([`is_broken_pipe`]). Ended at once,
/// they were left running (`toycoin-bench soak 2>&1 | head -3` left a class
/// mining for good).
pub fn unwind_quietly_on_broken_pipe() {
    quiet_on_broken_pipe(false);
}

/// Whether a panic's payload is the one a `println!` to a reader that went
/// away raises.
pub fn is_broken_pipe(payload: &(dyn std::any::Any + Send)) -> bool {
    let message = payload
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| payload.downcast_ref::<&str>().copied())
        .unwrap_or_default();
    message.starts_with("failed printing to std") && message.contains("Broken pipe")
}

fn quiet_on_broken_pipe(exit: bool) {
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if is_broken_pipe(info.payload()) {
            if exit {
                std::process::exit(0);
            }
            return;
        }
        report(info);
    }));
}
