//! A class's journal (issue 38): every frame the relay forwards, with
//! when and from whom, and every teacher's command, appended to a file
//! that `toycoin-replay` serves again as a relay.
//!
//! The file: the line `toycoin-journal 1`, then records, each
//!
//! | bytes | what |
//! |---|---|
//! | 8 | microseconds since the Unix epoch, big-endian |
//! | 1 | kind: 0 a frame forwarded, 1 a teacher's command |
//! | 2 | topic length, big-endian; then the topic |
//! | 1 | sender length; then the sender: its bound name or `IP:PORT` |
//! | 4 | payload length, big-endian; then the payload (for a command: the relay's one-line answer) |
//!
//! A record is written whole or, when the relay is killed mid-write, its
//! tail is missing: [`read`] stops at the first incomplete record and
//! keeps what came before. The writer flushes at least every second
//! ([`FLUSH_EVERY`]), so a killed relay loses at most the last second,
//! and starts a new file past [`JournalWriter`]'s size limit, keeping the
//! one before as `FILE.1`.

use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;

/// The file's first line.
pub const MAGIC: &[u8] = b"toycoin-journal 1\n";
/// Longest a record waits in memory before it is written out.
pub const FLUSH_EVERY: Duration = Duration::from_secs(1);
/// Size at which the writer starts a new file, by default.
pub const DEFAULT_MAX_BYTES: u64 = 1024 * 1024 * 1024;

/// What a record is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Frame = 0,
    Command = 1,
}

/// One record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// Microseconds since the Unix epoch.
    pub at_us: u64,
    pub kind: Kind,
    pub topic: Bytes,
    /// The sender's bound name or `IP:PORT` (at most 255 bytes).
    pub from: String,
    pub payload: Bytes,
}

impl Record {
    /// The record's bytes on file.
    pub fn encode(&self) -> Vec<u8> {
        let from = crate::log::clipped(&self.from, 255);
        let topic = &self.topic[..self.topic.len().min(u16::MAX as usize)];
        let mut out = Vec::with_capacity(16 + topic.len() + from.len() + self.payload.len());
        out.extend(self.at_us.to_be_bytes());
        out.push(self.kind as u8);
        out.extend((topic.len() as u16).to_be_bytes());
        out.extend(topic);
        out.push(from.len() as u8);
        out.extend(from.as_bytes());
        out.extend((self.payload.len() as u32).to_be_bytes());
        out.extend(&self.payload[..]);
        out
    }
}

/// Appends records to a journal file, rotating it past `max_bytes`.
#[derive(Debug)]
pub struct JournalWriter {
    path: PathBuf,
    file: BufWriter<File>,
    written: u64,
    max_bytes: u64,
}

impl JournalWriter {
    /// Creates (or appends to) the journal at `path`.
    pub fn open(path: &Path, max_bytes: u64) -> io::Result<JournalWriter> {
        let fresh = std::fs::metadata(path).map_or(true, |m| m.len() == 0);
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        let written = file.metadata()?.len();
        let mut writer = JournalWriter {
            path: path.to_owned(),
            file: BufWriter::new(file),
            written,
            max_bytes: max_bytes.max(MAGIC.len() as u64 + 1),
        };
        if fresh {
            writer.file.write_all(MAGIC)?;
            writer.written += MAGIC.len() as u64;
        }
        Ok(writer)
    }

    /// Appends `record` (buffered: see [`JournalWriter::flush`]).
    pub fn append(&mut self, record: &Record) -> io::Result<()> {
        let bytes = record.encode();
        if self.written + bytes.len() as u64 > self.max_bytes {
            self.rotate()?;
        }
        self.file.write_all(&bytes)?;
        self.written += bytes.len() as u64;
        Ok(())
    }

    /// Writes out what is buffered.
    pub fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }

    fn rotate(&mut self) -> io::Result<()> {
        self.file.flush()?;
        let mut old = self.path.as_os_str().to_owned();
        old.push(".1");
        std::fs::rename(&self.path, PathBuf::from(old))?;
        let file = File::create(&self.path)?;
        self.file = BufWriter::new(file);
        self.file.write_all(MAGIC)?;
        self.written = MAGIC.len() as u64;
        Ok(())
    }
}

/// Reads a journal: its whole records, in order (an incomplete last one,
/// from a relay killed mid-write, is left out).
pub fn read(path: &Path) -> io::Result<Vec<Record>> {
    let mut bytes = Vec::new();
    File::open(path)?.read_to_end(&mut bytes)?;
    let body = bytes.strip_prefix(MAGIC).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{} is not a toycoin journal", path.display()),
        )
    })?;
    Ok(parse(body))
}

fn parse(mut body: &[u8]) -> Vec<Record> {
    let mut records = Vec::new();
    let take = |body: &mut &[u8], n: usize| -> Option<Vec<u8>> {
        let (head, rest) = (body.get(..n)?, body.get(n..)?);
        let head = head.to_vec();
        *body = rest;
        Some(head)
    };
    loop {
        let mut rest = body;
        let Some(record) = (|| {
            let at_us = u64::from_be_bytes(take(&mut rest, 8)?.try_into().ok()?);
            let kind = match take(&mut rest, 1)?[0] {
                0 => Kind::Frame,
                1 => Kind::Command,
                _ => return None,
            };
            let topic_len = u16::from_be_bytes(take(&mut rest, 2)?.try_into().ok()?) as usize;
            let topic = Bytes::from(take(&mut rest, topic_len)?);
            let from_len = take(&mut rest, 1)?[0] as usize;
            let from = String::from_utf8(take(&mut rest, from_len)?).ok()?;
            let len = u32::from_be_bytes(take(&mut rest, 4)?.try_into().ok()?) as usize;
            let payload = Bytes::from(take(&mut rest, len)?);
            Some(Record {
                at_us,
                kind,
                topic,
                from,
                payload,
            })
        })() else {
            return records;
        };
        records.push(record);
        body = rest;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(i: u64) -> Record {
        Record {
            at_us: 1_000_000 + i,
            kind: if i % 2 == 0 {
                Kind::Frame
            } else {
                Kind::Command
            },
            topic: Bytes::from_static(b"/topic/main"),
            from: format!("node{i}"),
            payload: Bytes::from(vec![b'x'; i as usize * 10]),
        }
    }

    #[test]
    fn records_read_back_and_a_cut_last_record_is_left_out() {
        let path = std::env::temp_dir().join(format!("toycoin-journal-{}", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let mut w = JournalWriter::open(&path, DEFAULT_MAX_BYTES).unwrap();
        for i in 0..5 {
            w.append(&record(i)).unwrap();
        }
        w.flush().unwrap();
        drop(w);
        assert_eq!(read(&path).unwrap(), (0..5).map(record).collect::<Vec<_>>());
        // A relay killed mid-write: half a record at the end.
        let half = record(9).encode();
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        f.write_all(&half[..half.len() / 2]).unwrap();
        assert_eq!(read(&path).unwrap().len(), 5);
        let _ = std::fs::remove_file(&path);
    }

    #[test]
    fn a_full_journal_starts_a_new_file_and_keeps_the_last() {
        let path = std::env::temp_dir().join(format!("toycoin-journal-r-{}", std::process::id()));
        let old = PathBuf::from(format!("{}.1", path.display()));
        let _ = std::fs::remove_file(&path);
        let _ = std::fs::remove_file(&old);
        let mut w = JournalWriter::open(&path, 200).unwrap();
        for i in 0..6 {
            w.append(&record(i)).unwrap();
        }
        w.flush().unwrap();
        let (new, kept) = (read(&path).unwrap(), read(&old).unwrap());
        assert!(!new.is_empty() && !kept.is_empty());
        assert!(std::fs::metadata(&path).unwrap().len() <= 200 + 100);
        assert_eq!(new.last(), Some(&record(5)));
        let _ = std::fs::remove_file(&path);
        let _ = std::fs::remove_file(&old);
    }
}
