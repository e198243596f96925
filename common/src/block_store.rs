//! Where a chain keeps its blocks: the newest in memory, the older ones in
//! a file, so that a program's memory stays flat over a lesson however long
//! the chain grows (Bitcoin Core's `blk*.dat` and `rev*.dat`, in one
//! unnamed temporary file).
//!
//! A [`Chain`](crate::chain::Chain) keeps the bodies of its newest blocks,
//! and what each changed in the ledger (its [`BlockUndo`]), in memory:
//! at most [`RECENT_BLOCKS`] blocks, fewer once they pass
//! [`RECENT_BYTES`]. An older block is written to the store with its undo
//! and the outputs it spent (which left the ledger when they were spent,
//! for the block's undo); only its header and figures stay in memory. Reading it back (a catch-up answer,
//! a light wallet's proof, a reorganisation deeper than the window) costs
//! one read and a decoding.
//!
//! The file is made in `/var/tmp` (on disk, where `/tmp` may be memory)
//! or the system's temporary directory, and unlinked at once
//! ([`tempfile::tempfile_in`]): nothing is left behind when the program
//! ends, however it ends. Where no file can be made or written, the blocks
//! simply stay in memory: nothing is ever lost.
//!
//! The encoding is this file's own, for this process only: lengths as
//! little-endian `u32`, numbers as little-endian `u64`/`i64`/`i128`, hashes
//! as their 64 bytes.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::sync::{Arc, Mutex};

use bytes::Bytes;

use crate::block::{Block, BlockHeader};
use crate::hash::{BlockHash, Txid, HASH_LEN};
use crate::ledger::{BlockUndo, OutPoint, OutputState};
use crate::merkle::{MerkleRoot, LABEL_LEN};
use crate::transaction::{OutputKind, Transaction};

/// Most blocks whose bodies a chain keeps in memory: a reorganisation up to
/// this deep, and a catch-up answer from this near the tip, read nothing
/// back.
pub const RECENT_BLOCKS: usize = 32;
/// Bodies in memory past this many bytes ([`Block::size`]) go to the file
/// sooner, down to [`MIN_RECENT_BLOCKS`]. Small enough that a busy class's
/// bigger blocks (20–30 KB at ten times the demo's transfers) do not make
/// the window, and each program's memory, grow over the lesson (issue 34:
/// at 4 MiB the 32 blocks' transactions were 0.7 MiB of a listener's heap,
/// and grew with the blocks); at the demo's and the lesson's pace 32
/// blocks stay well under it. A block still goes to the file one for one
/// as blocks come: only a reorganisation deeper than the window, or a
/// catch-up answer from further back, reads it back.
pub const RECENT_BYTES: usize = 256 * 1024;
/// Fewest bodies kept in memory, whatever their bytes.
pub const MIN_RECENT_BLOCKS: usize = 8;

/// Where the file is made: `/var/tmp` where there is one (disk by
/// convention, while `/tmp` is memory on many systems, which would only
/// move the blocks from the program's memory to the system's), else the
/// system's temporary directory.
fn store_dir() -> std::path::PathBuf {
    let var_tmp = std::path::Path::new("/var/tmp");
    if cfg!(unix) && var_tmp.is_dir() {
        var_tmp.to_path_buf()
    } else {
        std::env::temp_dir()
    }
}

/// A block written to the store, with what is needed to take it back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Archived {
    pub block: Block,
    pub undo: BlockUndo,
    /// The outputs the block spent (`undo`'s spent outpoints, in order),
    /// which the ledger forgot when the block was archived.
    pub spent: Vec<OutputState>,
}

/// Where an archived block's bytes are.
#[derive(Clone, Copy, Debug)]
struct Place {
    offset: u64,
    len: u32,
}

/// The file, shared by a chain and its clones: each appends at its end and
/// remembers its own places, so a clone never reads another's blocks.
#[derive(Debug)]
struct StoreFile {
    file: File,
    end: u64,
}

/// A chain's block bodies: heights `0..archived.len()` in the file, the
/// rest in memory.
#[derive(Clone, Debug, Default)]
pub struct BlockStore {
    archived: Vec<Place>,
    recent: VecDeque<(Block, BlockUndo)>,
    recent_bytes: usize,
    file: Option<Arc<Mutex<StoreFile>>>,
    /// The file could not be made or written: keep everything in memory.
    failed: bool,
    max_recent: usize,
}

impl BlockStore {
    pub fn new() -> BlockStore {
        BlockStore::with_max_recent(RECENT_BLOCKS)
    }

    /// A store keeping at most `max_recent` bodies in memory (at least 1).
    pub fn with_max_recent(max_recent: usize) -> BlockStore {
        BlockStore {
            max_recent: max_recent.max(1),
            ..BlockStore::default()
        }
    }

    /// Number of blocks.
    pub fn len(&self) -> usize {
        self.archived.len() + self.recent.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of blocks in the file.
    pub fn archived_len(&self) -> usize {
        self.archived.len()
    }

    /// Bytes of the bodies in memory.
    pub fn recent_bytes(&self) -> usize {
        self.recent_bytes
    }

    /// Adds the next block.
    pub fn push(&mut self, block: Block, undo: BlockUndo) {
        self.recent_bytes += block.size();
        self.recent.push_back((block, undo));
    }

    /// The oldest block in memory when the window is over its limits (it
    /// should then be archived), unless the file has failed.
    pub fn over_limit(&self) -> Option<&(Block, BlockUndo)> {
        let over = self.recent.len() > self.max_recent
            || (self.recent_bytes > RECENT_BYTES
                && self.recent.len() > MIN_RECENT_BLOCKS.min(self.max_recent));
        (over && !self.failed)
            .then(|| self.recent.front())
            .flatten()
    }

    /// Keeps every block in memory from now on.
    pub fn keep_in_memory(&mut self) {
        self.failed = true;
    }

    /// Writes the oldest block in memory to the file with `spent`, the
    /// outputs it spent, and returns its undo; `None` (and everything kept in memory from now on) when the
    /// file cannot be made or written.
    pub fn archive_oldest(&mut self, spent: &[OutputState]) -> Option<BlockUndo> {
        let (block, undo) = self.recent.front()?;
        let bytes = encode_archived(block, undo, spent);
        match self.append(&bytes) {
            Ok(place) => {
                let (block, undo) = self.recent.pop_front()?;
                self.recent_bytes -= block.size();
                self.archived.push(place);
                Some(undo)
            }
            Err(error) => {
                tracing::warn!(
                    "cannot write old blocks to a temporary file ({error}): keeping them in memory"
                );
                self.failed = true;
                None
            }
        }
    }

    fn append(&mut self, bytes: &[u8]) -> std::io::Result<Place> {
        let len = u32::try_from(bytes.len())
            .map_err(|_| std::io::Error::other("a block of more than 4 GiB"))?;
        let shared = match &self.file {
            Some(file) => file.clone(),
            None => {
                let file = Arc::new(Mutex::new(StoreFile {
                    file: tempfile::tempfile_in(store_dir()).or_else(|_| tempfile::tempfile())?,
                    end: 0,
                }));
                self.file = Some(file.clone());
                file
            }
        };
        let mut store = shared
            .lock()
            .map_err(|_| std::io::Error::other("the store's lock is poisoned"))?;
        let offset = store.end;
        store.file.seek(SeekFrom::Start(offset))?;
        store.file.write_all(bytes)?;
        store.end += u64::from(len);
        Ok(Place { offset, len })
    }

    fn read(&self, place: Place) -> Option<Archived> {
        let mut bytes = vec![0; place.len as usize];
        let read = self.file.as_ref().and_then(|file| {
            let mut store = file.lock().ok()?;
            store.file.seek(SeekFrom::Start(place.offset)).ok()?;
            store.file.read_exact(&mut bytes).ok()
        });
        if read.is_none() {
            tracing::warn!("cannot read an old block back from the temporary file");
            return None;
        }
        let decoded = decode_archived(&bytes);
        if decoded.is_none() {
            tracing::warn!("an old block read back from the temporary file does not decode");
        }
        decoded
    }

    /// The block at `height`: borrowed from memory, or read back from the
    /// file (`None` past the end, or where the file fails).
    pub fn get(&self, height: usize) -> Option<Cow<'_, Block>> {
        match height.checked_sub(self.archived.len()) {
            Some(i) => self.recent.get(i).map(|(b, _)| Cow::Borrowed(b)),
            None => self
                .read(self.archived[height])
                .map(|a| Cow::Owned(a.block)),
        }
    }

    /// The newest block, always in memory.
    pub fn last(&self) -> Option<&Block> {
        self.recent.back().map(|(b, _)| b)
    }

    /// Takes the newest block back: from memory with its undo, or read back
    /// from the file with the outputs it spent. `None` when empty, or when
    /// an archived block cannot be read back (it then stays).
    pub fn pop(&mut self) -> Option<Popped> {
        if let Some((block, undo)) = self.recent.pop_back() {
            self.recent_bytes -= block.size();
            return Some(Popped::Recent(block, undo));
        }
        let place = *self.archived.last()?;
        let archived = self.read(place)?;
        self.archived.pop();
        Some(Popped::Archived(archived))
    }
}

/// A block taken back by [`BlockStore::pop`].
#[derive(Debug)]
pub enum Popped {
    Recent(Block, BlockUndo),
    Archived(Archived),
}

/// The archive's bytes for a block, its undo and the outputs it spent.
pub fn encode_archived(block: &Block, undo: &BlockUndo, spent: &[OutputState]) -> Vec<u8> {
    let mut out = Vec::with_capacity(block.size() + 256);
    let header = &block.header;
    put_bytes(&mut out, &header.timestamp);
    out.extend_from_slice(header.previous_hash.as_ref());
    put_bytes(&mut out, &header.nonce);
    out.extend_from_slice(header.merkle_root.as_ref());
    out.extend_from_slice(header.this_hash.as_ref());
    put_len(&mut out, block.txns.len());
    for txn in &block.txns {
        put_len(&mut out, txn.previous_hashes.len());
        for hash in &txn.previous_hashes {
            out.extend_from_slice(hash.as_ref());
        }
        put_bytes(&mut out, &txn.receiver);
        out.extend_from_slice(&txn.receiver_value.to_le_bytes());
        put_bytes(&mut out, &txn.receiver_signature);
        put_bytes(&mut out, &txn.sender);
        out.extend_from_slice(&txn.sender_change.to_le_bytes());
        put_bytes(&mut out, &txn.sender_signature);
    }
    let parts = undo.parts();
    put_len(&mut out, parts.created.len());
    for hash in parts.created {
        out.extend_from_slice(hash.as_ref());
    }
    put_len(&mut out, parts.spent.len());
    for (outpoint, state) in parts.spent.iter().zip(spent) {
        out.extend_from_slice(outpoint.txn_hash.as_ref());
        out.push(match outpoint.kind {
            OutputKind::Receiver => 0,
            OutputKind::Change => 1,
        });
        put_bytes(&mut out, &state.owner);
        out.extend_from_slice(&state.value.to_le_bytes());
        out.extend_from_slice(&state.signature);
        out.extend_from_slice(&state.height.to_le_bytes());
        out.push(u8::from(state.spent) | u8::from(state.coinbase) << 1);
    }
    out.extend_from_slice(&(parts.repeats as u64).to_le_bytes());
    out.extend_from_slice(&parts.coins.to_le_bytes());
    out
}

/// Reads back what [`encode_archived`] wrote (`None` for anything else).
pub fn decode_archived(bytes: &[u8]) -> Option<Archived> {
    let mut r = Reader(bytes);
    let header = BlockHeader {
        timestamp: r.bytes()?,
        previous_hash: BlockHash::from_slice(r.take(HASH_LEN)?)?,
        nonce: r.bytes()?,
        merkle_root: MerkleRoot::from_slice(r.take(LABEL_LEN)?)?,
        this_hash: BlockHash::from_slice(r.take(HASH_LEN)?)?,
    };
    let count = r.len()?;
    let mut txns = Vec::with_capacity(count.min(bytes.len()));
    for _ in 0..count {
        let inputs = r.len()?;
        let mut previous_hashes = Vec::with_capacity(inputs.min(bytes.len()));
        for _ in 0..inputs {
            previous_hashes.push(r.txid()?);
        }
        txns.push(Transaction {
            previous_hashes,
            receiver: r.bytes()?,
            receiver_value: r.i64()?,
            receiver_signature: r.bytes()?,
            sender: r.bytes()?,
            sender_change: r.i64()?,
            sender_signature: r.bytes()?,
        });
    }
    let created_count = r.len()?;
    let mut created = Vec::with_capacity(created_count.min(bytes.len()));
    for _ in 0..created_count {
        created.push(r.txid()?);
    }
    let spent_count = r.len()?;
    let mut outpoints = Vec::with_capacity(spent_count.min(bytes.len()));
    let mut spent = Vec::with_capacity(spent_count.min(bytes.len()));
    for _ in 0..spent_count {
        let txn_hash = r.txid()?;
        let kind = match r.take(1)?[0] {
            0 => OutputKind::Receiver,
            1 => OutputKind::Change,
            _ => return None,
        };
        outpoints.push(OutPoint { txn_hash, kind });
        let owner = r.bytes()?;
        let value = r.i64()?;
        let signature = r.take(16)?.try_into().ok()?;
        let height = u32::from_le_bytes(r.take(4)?.try_into().ok()?);
        // Bit 0: spent; bit 1: a coinbase's.
        let flags = r.take(1)?[0];
        if flags > 3 {
            return None;
        }
        spent.push(OutputState {
            owner,
            value,
            signature,
            height,
            spent: flags & 1 != 0,
            coinbase: flags & 2 != 0,
        });
    }
    let repeats = usize::try_from(u64::from_le_bytes(r.take(8)?.try_into().ok()?)).ok()?;
    let coins = i128::from_le_bytes(r.take(16)?.try_into().ok()?);
    if !r.0.is_empty() {
        return None;
    }
    Some(Archived {
        block: Block { header, txns },
        undo: BlockUndo::from_parts(created, outpoints, repeats, coins),
        spent,
    })
}

fn put_len(out: &mut Vec<u8>, len: usize) {
    // Nothing a chain holds comes near 4 GiB (a block is bounded far below).
    out.extend_from_slice(&u32::try_from(len).unwrap_or(u32::MAX).to_le_bytes());
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    put_len(out, bytes.len());
    out.extend_from_slice(bytes);
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }

    fn len(&mut self) -> Option<usize> {
        let raw = u32::from_le_bytes(self.take(4)?.try_into().ok()?);
        usize::try_from(raw).ok()
    }

    fn bytes(&mut self) -> Option<Bytes> {
        let len = self.len()?;
        self.take(len).map(Bytes::copy_from_slice)
    }

    fn i64(&mut self) -> Option<i64> {
        Some(i64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }

    fn txid(&mut self) -> Option<Txid> {
        Txid::from_slice(self.take(HASH_LEN)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::Hash;
    use crate::merkle::MerkleNode;

    fn sample() -> (Block, BlockUndo, Vec<OutputState>) {
        let txid = |b: u8| Txid::from_raw_hash(Hash([b; HASH_LEN]));
        let txn = Transaction {
            previous_hashes: vec![txid(1), txid(2)],
            receiver: Bytes::from_static(b"receiver"),
            receiver_value: 7,
            receiver_signature: Bytes::from_static(b"sig r"),
            sender: Bytes::from_static(b"sender"),
            sender_change: -3,
            sender_signature: Bytes::new(),
        };
        let block = Block {
            header: BlockHeader {
                timestamp: Bytes::from_static(b"1700000000"),
                previous_hash: BlockHash::from_raw_hash(Hash([3; HASH_LEN])),
                nonce: Bytes::from_static(b"42"),
                merkle_root: MerkleRoot(MerkleNode([4; LABEL_LEN])),
                this_hash: BlockHash::from_raw_hash(Hash([5; HASH_LEN])),
            },
            txns: vec![txn.clone(), txn],
        };
        let outpoint = |b, kind| OutPoint {
            txn_hash: txid(b),
            kind,
        };
        let undo = BlockUndo::from_parts(
            vec![txid(9)],
            vec![
                outpoint(1, OutputKind::Receiver),
                outpoint(2, OutputKind::Change),
            ],
            1,
            -5,
        );
        let state = |b: u8| OutputState {
            owner: Bytes::from_static(b"sender"),
            value: i64::from(b),
            signature: [b; 16],
            height: u32::from(b) * 1000,
            spent: true,
            coinbase: b == 2,
        };
        (block, undo, vec![state(1), state(2)])
    }

    #[test]
    fn an_archived_block_reads_back_as_written_and_nothing_else_does() {
        let (block, undo, spent) = sample();
        let bytes = encode_archived(&block, &undo, &spent);
        let back = decode_archived(&bytes).unwrap();
        assert_eq!(back, Archived { block, undo, spent });
        for cut in [0, 1, bytes.len() / 2, bytes.len() - 1] {
            assert_eq!(decode_archived(&bytes[..cut]), None, "cut at {cut}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(decode_archived(&longer), None);
    }

    #[test]
    fn a_store_keeps_its_window_in_memory_and_clones_read_their_own_blocks() {
        let (block, undo, spent) = sample();
        let mut store = BlockStore::with_max_recent(1);
        let mut blocks = Vec::new();
        for i in 0..4u8 {
            let mut b = block.clone();
            b.header.nonce = Bytes::from(vec![b'0' + i]);
            store.push(b.clone(), undo.clone());
            blocks.push(b);
            while store.over_limit().is_some() {
                assert!(store.archive_oldest(&spent).is_some());
            }
        }
        assert_eq!((store.archived_len(), store.len()), (3, 4));
        let mut clone = store.clone();
        // Both pop below the window; the clone then grows its own way.
        let Some(Popped::Recent(top, _)) = store.pop() else {
            panic!("the newest block is in memory");
        };
        assert_eq!(top, blocks[3]);
        let Some(Popped::Archived(a)) = store.pop() else {
            panic!("the one below is in the file");
        };
        assert_eq!((a.block, a.spent), (blocks[2].clone(), spent.clone()));
        clone.push(blocks[0].clone(), undo.clone());
        while clone.over_limit().is_some() {
            assert!(clone.archive_oldest(&spent).is_some());
        }
        assert_eq!(clone.get(3).unwrap().as_ref(), &blocks[3]);
        assert_eq!(store.get(1).unwrap().as_ref(), &blocks[1]);
        assert!(store.get(2).is_none());
    }
}
