//! The ready file: how a program tells another program (the demo, a test,
//! a script) that it is up and where, without anyone parsing a line meant
//! for people. A program given `--ready-file PATH` writes one JSON object
//! there once it listens, e.g. `{"program":"toycoin-relay","addr":"127.0.0.1:25000"}`.
//! It is written to a temporary name and renamed, so a reader never sees
//! half of it.

use std::io;
use std::net::SocketAddr;
use std::path::Path;

use serde::{Deserialize, Serialize};

/// What a ready file says.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ready {
    pub program: String,
    /// The address it listens on (the port the OS picked, with port 0).
    pub addr: SocketAddr,
    /// The relay's: the teacher's token for commands (`toycoin-ctl`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

/// Writes `ready` to `path` atomically, readable by its owner only (a
/// relay's holds the teacher's token).
pub fn write(path: &Path, ready: &Ready) -> io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let json = serde_json::to_string(ready).map_err(io::Error::other)?;
    let _ = std::fs::remove_file(&tmp);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    io::Write::write_all(&mut options.open(&tmp)?, (json + "\n").as_bytes())?;
    std::fs::rename(&tmp, path)
}

/// Reads a ready file: `Ok(None)` while it does not exist yet.
pub fn read(path: &Path) -> io::Result<Option<Ready>> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_written_is_read_back_and_a_missing_file_is_not_an_error() {
        let path = std::env::temp_dir().join(format!("toycoin-ready-{}.json", std::process::id()));
        let _ = std::fs::remove_file(&path);
        assert_eq!(read(&path).unwrap(), None);
        let ready = Ready {
            token: None,
            program: "toycoin-relay".into(),
            addr: "127.0.0.1:4321".parse().unwrap(),
        };
        write(&path, &ready).unwrap();
        assert_eq!(read(&path).unwrap(), Some(ready));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "readable by its owner only");
        }
        std::fs::remove_file(&path).unwrap();
    }
}
