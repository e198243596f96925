//! One subscriber's socket writer: drains its queue in batches and writes
//! each batch with vectored writes (length prefixes and the shared payloads
//! side by side, no payload copied).

use std::io::{self, IoSlice};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use tokio::io::AsyncWriteExt;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::stats::Stats;

/// Most frames taken from the queue for one batch (two slices each, well
/// under the kernel's 1024-slice limit for one write).
const MAX_BATCH: usize = 256;

/// Writes queued payloads as frames until the queue closes or `kick` is
/// cancelled. A write error ends the loop (and the caller's connection).
pub(crate) async fn write_loop(
    mut socket: OwnedWriteHalf,
    mut rx: mpsc::Receiver<Bytes>,
    queued_bytes: Arc<AtomicUsize>,
    stats: Arc<Stats>,
    kick: CancellationToken,
) -> io::Result<()> {
    let mut batch: Vec<Bytes> = Vec::with_capacity(MAX_BATCH);
    let mut chunks: Vec<Bytes> = Vec::with_capacity(2 * MAX_BATCH);
    let mut prefixes = BytesMut::new();
    loop {
        let n = tokio::select! {
            biased;
            _ = kick.cancelled() => return Ok(()),
            n = rx.recv_many(&mut batch, MAX_BATCH) => n,
        };
        if n == 0 {
            return Ok(());
        }
        let payload_bytes: usize = batch.iter().map(Bytes::len).sum();
        prefixes.reserve(4 * batch.len());
        for payload in &batch {
            // Payloads were read as frames, so their lengths fit in u32.
            prefixes.put_u32(payload.len() as u32);
        }
        let mut prefix_bytes = prefixes.split().freeze();
        for payload in batch.drain(..) {
            chunks.push(prefix_bytes.split_to(4));
            chunks.push(payload);
        }
        tokio::select! {
            biased;
            _ = kick.cancelled() => return Ok(()),
            written = write_all_vectored(&mut socket, &mut chunks) => written?,
        }
        queued_bytes.fetch_sub(payload_bytes, Ordering::Relaxed);
        stats.record_written(payload_bytes);
    }
}

/// Writes every chunk, in order, with as few system calls as the socket
/// allows; leaves `chunks` empty.
async fn write_all_vectored(
    socket: &mut OwnedWriteHalf,
    chunks: &mut Vec<Bytes>,
) -> io::Result<()> {
    let mut start = 0;
    while start < chunks.len() {
        let mut n = {
            let slices: Vec<IoSlice<'_>> =
                chunks[start..].iter().map(|c| IoSlice::new(c)).collect();
            socket.write_vectored(&slices).await?
        };
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        while start < chunks.len() && n >= chunks[start].len() {
            n -= chunks[start].len();
            start += 1;
        }
        if n > 0 {
            chunks[start].advance(n);
        }
    }
    chunks.clear();
    Ok(())
}
