//! Helpers shared by the workspace-level integration tests: where the
//! fixtures are, loading them, running the binaries ([`program`]),
//! asking the web view for a page ([`http`]) and looking at it in a
//! browser ([`browser`]).

pub mod browser;
pub mod http;
pub mod keys;
pub mod program;

use std::path::PathBuf;

use bytes::Bytes;

/// The project's copy of the toycoin vectors (`fixtures/toycoin`).
pub fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures/toycoin")
}

/// Every `.bin` frame payload in a fixtures subfolder, sorted by name.
pub fn frames(subdir: &str) -> Vec<(String, Bytes)> {
    let dir = fixtures_dir().join(subdir);
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".bin"))
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|n| {
            let bytes = std::fs::read(dir.join(&n)).unwrap_or_else(|e| panic!("{n}: {e}"));
            (n, Bytes::from(bytes))
        })
        .collect()
}
