//! `toycoin-replay FILE`: a recorded class served again. A relay (the
//! same as `toycoin-relay`, serving the class's network file if given)
//! listens; once the subscribers asked for have joined, one publisher
//! sends the journal's frames in their order, on their topics, at the
//! recorded pace times `speed` (0: as fast as the relay takes them). To
//! start from a moment (`from_secs` into the recording) the frames before
//! it are sent at once, so that a listener has the chain the class had
//! then; `until_secs` stops at a moment. A listener or web view attached
//! to it shows the class as it was.

use std::path::Path;
use std::time::Duration;

use toycoin_common::journal::{self, Kind};
use toycoin_common::relay::RelayClient;
use tracing::info;

use crate::server::{Relay, RelayConfig};

/// Frames a paused replay lets the relay hold ahead of the teacher's
/// steps.
pub const HELD_AHEAD: usize = 1000;

/// How a journal is replayed.
#[derive(Clone, Debug)]
pub struct ReplayOptions {
    /// The recorded pace times this (2: twice as fast); 0: at once.
    pub speed: f64,
    /// Start this many seconds into the recording (what comes before is
    /// sent at once).
    pub from_secs: f64,
    /// Stop this many seconds into the recording (`None`: at its end).
    pub until_secs: Option<f64>,
    /// Subscribers to wait for before the first frame (besides the
    /// replay's own publisher).
    pub subscribers: usize,
    /// Start paused: every frame held until the teacher's `toycoin-ctl
    /// step` (one at a time) or `release`.
    pub paused: bool,
}

/// Serves the journal at `path` on `listener` as `options` say, then
/// keeps serving until `shutdown`. Returns the frames replayed.
pub async fn run(
    path: &Path,
    listener: tokio::net::TcpListener,
    config: RelayConfig,
    options: ReplayOptions,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<usize, String> {
    let records: Vec<_> = journal::read(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?
        .into_iter()
        .filter(|r| r.kind == Kind::Frame)
        .collect();
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let relay = Relay::new(config);
    if options.paused {
        relay.hold();
    }
    let serving = {
        let relay = relay.clone();
        tokio::spawn(async move { relay.run(listener, shutdown).await })
    };
    let first = records.first().map_or(0, |r| r.at_us);
    let start_us = first + (options.from_secs.max(0.0) * 1e6) as u64;
    let end_us = options
        .until_secs
        .map_or(u64::MAX, |s| first + (s.max(0.0) * 1e6) as u64);
    let chosen: Vec<_> = records.iter().filter(|r| r.at_us <= end_us).collect();
    info!(
        "Replaying {} frames of {} ({:.1} s recorded) on {addr}{}",
        chosen.len(),
        path.display(),
        records
            .last()
            .map_or(0.0, |r| (r.at_us - first) as f64 / 1e6),
        if options.speed > 0.0 {
            format!(" at {}x", options.speed)
        } else {
            " as fast as the relay takes them".into()
        }
    );
    let topic = chosen.first().map_or_else(
        || "/replay".to_owned(),
        |r| String::from_utf8_lossy(&r.topic).into_owned(),
    );
    let mut publisher = RelayClient::connect(addr, "/replay")
        .await
        .map_err(|e| e.to_string())?;
    while relay.subscriptions() < options.subscribers + 1 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    info!(
        "Replay: {} subscribed; the class begins",
        options.subscribers
    );
    let clock = tokio::time::Instant::now();
    let mut sent = 0;
    for record in &chosen {
        if options.speed > 0.0 && record.at_us >= start_us {
            let due = (record.at_us - start_us) as f64 / 1e6 / options.speed;
            tokio::time::sleep_until(clock + Duration::from_secs_f64(due)).await;
        }
        // Held (paused), the frames wait here rather than fill the hold:
        // a thousand at most are held at once.
        while relay.held() >= HELD_AHEAD {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let on = std::str::from_utf8(&record.topic).unwrap_or(&topic);
        publisher
            .publish(on, &record.payload)
            .await
            .map_err(|e| e.to_string())?;
        sent += 1;
    }
    info!("Replayed {sent} frames");
    serving
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    Ok(sent)
}
