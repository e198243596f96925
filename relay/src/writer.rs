//! One subscriber's socket writer: drains its queue in batches and writes
//! each batch with vectored writes (length prefixes and the shared payloads
//! side by side, no payload copied).

use std::io::{self, IoSlice};
use std::sync::Arc;

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
    socket: Arc<OwnedWriteHalf>,
    queue: Arc<Queue>,
    stats: Arc<Stats>,
    kick: CancellationToken,
) -> io::Result<()> {
    // Held until written: their bytes stay charged to the budget until then.
    let mut batch: Vec<Arc<Payload>> = Vec::with_capacity(MAX_BATCH);
    let mut prefixes: Vec<[u8; 4]> = Vec::with_capacity(MAX_BATCH);
    loop {
        let taken = tokio::select! {
            biased;
            _ = kick.cancelled() => return Ok(()),
            taken = queue.take(&mut batch, MAX_BATCH, MAX_BATCH_BYTES) => taken,
        };
        let Some(taken) = taken else {
            return Ok(());
        };
        // Payloads were read as frames, so their lengths fit in u32.
        prefixes.extend(batch.iter().map(|p| (p.bytes.len() as u32).to_be_bytes()));
        tokio::select! {
            biased;
            _ = kick.cancelled() => return Ok(()),
            written = write_frames(&socket, &prefixes, &batch, taken.skip) => written?,
        }
        queue.written();
        batch.clear();
        prefixes.clear();
        stats.record_written(taken.bytes);
    }
}

/// Writes one frame to an idle subscriber's socket from the publisher's
/// task, as far as the socket takes it without waiting: the bytes written,
/// its 4-byte prefix included (the whole frame is `payload.len() + 4`).
pub(crate) fn write_inline(socket: &OwnedWriteHalf, payload: &[u8]) -> usize {
    let prefix = (payload.len() as u32).to_be_bytes();
    let total = payload.len() + 4;
    let mut done = 0;
    while done < total {
        let slices = [
            IoSlice::new(&prefix[done.min(4)..]),
            IoSlice::new(&payload[done.saturating_sub(4)..]),
        ];
        match socket.try_write_vectored(&slices) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            // Full, or broken: the writer task finishes it or meets the error.
            Err(_) => break,
        }
    }
    done
}

/// Writes each payload after its length prefix, in order, with as few
/// system calls as the socket allows, straight from the shared payloads
/// (nothing copied, no reference counts touched). The first `skip` bytes
/// of the first frame were written before.
async fn write_frames(
    socket: &OwnedWriteHalf,
    prefixes: &[[u8; 4]],
    batch: &[Arc<Payload>],
    skip: usize,
) -> io::Result<()> {
    // Chunk 2i is frame i's prefix, chunk 2i+1 its payload.
    let chunk = |i: usize| -> &[u8] {
        if i % 2 == 0 {
            &prefixes[i / 2]
        } else {
            &batch[i / 2].bytes
        }
    };
    let total = 2 * batch.len();
    let (mut start, mut offset) = if skip < 4 { (0, skip) } else { (1, skip - 4) };
    while start < total {
        let written = {
            let slices: Vec<IoSlice<'_>> = std::iter::once(IoSlice::new(&chunk(start)[offset..]))
                .chain((start + 1..total).map(|i| IoSlice::new(chunk(i))))
                .collect();
            match socket.try_write_vectored(&slices) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    socket.writable().await?;
                    continue;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        };
        if written == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        let mut n = written;
        while start < total {
            let rest = chunk(start).len() - offset;
            if n < rest {
                offset += n;
                break;
            }
            n -= rest;
            start += 1;
            offset = 0;
        }
    }
    Ok(())
}
