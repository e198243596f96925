//! Ctrl-C for the binaries: a future that completes on SIGINT or SIGTERM.
//!
//! The handlers are installed when [`shutdown_signal`] is called, not when
//! the future is first polled: a program that calls it before saying it is
//! ready cannot be killed outright by a Ctrl-C that comes just after (with
//! `tokio::signal::ctrl_c()`, a signal before the first poll still kills).

use std::future::Future;

/// Installs the handlers now; the future completes at the first SIGINT or
/// SIGTERM (Ctrl-C elsewhere than Unix).
pub fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let int = signal(SignalKind::interrupt());
        let term = signal(SignalKind::terminate());
        async move {
            match (int, term) {
                (Ok(mut int), Ok(mut term)) => {
                    tokio::select! {
                        _ = int.recv() => {}
                        _ = term.recv() => {}
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
