//! One subscriber's socket writer: drains its queue in batches and writes
//! each batch with vectored writes (length prefixes and the shared payloads
//! side by side, no payload copied).

use std::io::{self, IoSlice};
use std::sync::Arc;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use tokio::io::AsyncWriteExt;
use tokio::net::tcp::OwnedWriteHalf;
use tokio_util::sync::CancellationToken;

use crate::queue::{Payload, Queue};
use crate::stats::Stats;

/// Most frames taken from the queue for one batch (two slices each, well
/// under the kernel's 1024-slice limit for one write).
const MAX_BATCH: usize = 256;

/// Most payload bytes taken for one batch (but always one frame): what a
/// stalled subscriber's writer holds beyond its queue, which the hub
/// cannot shed without disconnecting it.
const MAX_BATCH_BYTES: usize = 256 * 1024;

/// Writes queued payloads as frames until the queue closes or `kick` is
/// cancelled. A write error ends the loop (and the caller's connection).
pub(crate) async fn write_loop(
    mut socket: OwnedWriteHalf,
    queue: Arc<Queue>,
    stats: Arc<Stats>,
    kick: CancellationToken,
) -> io::Result<()> {
    // Held until written: their bytes stay charged to the budget until then.
    let mut batch: Vec<Arc<Payload>> = Vec::with_capacity(MAX_BATCH);
    let mut chunks: Vec<Bytes> = Vec::with_capacity(2 * MAX_BATCH);
    let mut prefixes = BytesMut::new();
    loop {
        let taken = tokio::select! {
            biased;
            _ = kick.cancelled() => return Ok(()),
            taken = queue.take(&mut batch, MAX_BATCH, MAX_BATCH_BYTES) => taken,
        };
        let Some(payload_bytes) = taken else {
            return Ok(());
        };
        prefixes.reserve(4 * batch.len());
        for payload in &batch {
            // Payloads were read as frames, so their lengths fit in u32.
            prefixes.put_u32(payload.bytes.len() as u32);
        }
        let mut prefix_bytes = prefixes.split().freeze();
        for payload in &batch {
            chunks.push(prefix_bytes.split_to(4));
            chunks.push(payload.bytes.clone());
        }
        tokio::select! {
            biased;
            _ = kick.cancelled() => return Ok(()),
            written = write_all_vectored(&mut socket, &mut chunks) => written?,
        }
        queue.written();
        batch.clear();
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
