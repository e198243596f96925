//! `--record FILE`: the relay's journal of a class (format and reading:
//! [`toycoin_common::journal`]). Connections hand records to one writer
//! task over a bounded channel and never wait for the disk; the writer
//! flushes at least every second, and once more at shutdown.

use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use toycoin_common::journal::{JournalWriter, Kind, Record, FLUSH_EVERY};
use tracing::warn;

/// Records waiting for the writer; past this one is lost (and counted).
pub const RECORDS_QUEUED: usize = 65_536;

/// What connections hand records to.
#[derive(Debug)]
pub struct Recorder {
    tx: mpsc::Sender<Record>,
    /// Records the writer could not keep up with.
    pub lost: AtomicU64,
}

impl Recorder {
    /// A recorder and the receiving end its writer takes.
    pub fn new() -> (Recorder, mpsc::Receiver<Record>) {
        let (tx, rx) = mpsc::channel(RECORDS_QUEUED);
        (
            Recorder {
                tx,
                lost: AtomicU64::new(0),
            },
            rx,
        )
    }

    /// Records `payload` on `topic` from `from`, now.
    pub fn record(&self, kind: Kind, topic: &[u8], from: String, payload: Bytes) {
        let at_us = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_micros() as u64);
        let record = Record {
            at_us,
            kind,
            topic: Bytes::copy_from_slice(topic),
            from,
            payload,
        };
        if self.tx.try_send(record).is_err() {
            self.lost.fetch_add(1, Ordering::Relaxed);
            warn!(
                source = "journal",
                "Journal: a record was not written (the disk is slower than the class)"
            );
        }
    }
}

/// Writes records as they come, flushing at least every [`FLUSH_EVERY`],
/// until `stop`; then writes what is left and flushes.
pub async fn write_journal(
    mut rx: mpsc::Receiver<Record>,
    mut writer: JournalWriter,
    stop: CancellationToken,
) {
    let mut tick = tokio::time::interval(FLUSH_EVERY);
    loop {
        tokio::select! {
            record = rx.recv() => match record {
                Some(record) => {
                    if let Err(e) = writer.append(&record) {
                        warn!(source = "journal", "Journal: cannot write: {e}");
                    }
                }
                None => break,
            },
            _ = tick.tick() => {
                if let Err(e) = writer.flush() {
                    warn!(source = "journal", "Journal: cannot write: {e}");
                }
            }
            _ = stop.cancelled() => {
                while let Ok(record) = rx.try_recv() {
                    let _ = writer.append(&record);
                }
                break;
            }
        }
    }
    let _ = writer.flush();
}
