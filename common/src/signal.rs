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
