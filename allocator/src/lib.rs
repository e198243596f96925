//! How the long-running programs (relay, node, listener, oracle, wallet)
//! keep glibc's allocator from holding memory they freed (issue 34: a
//! class's memory flat over a lesson).
//!
//! Left alone, glibc's `malloc` does two things that make a program's
//! resident memory creep over a lesson while what it holds stays flat:
//!
//! - **It stops mapping large buffers on their own.** An allocation of
//!   128 KiB or more starts as a mapping of its own, given back when freed;
//!   but freeing one raises that threshold to its size (up to 32 MiB), so
//!   later catch-up answers, frames and tables that double come from the
//!   heaps, and what they leave behind stays there.
//! - **It gives back only the top of a heap.** Free pages in the middle of
//!   a heap, between the blocks a chain keeps, stay resident until
//!   `malloc_trim` is called.
//!
//! [`tune`] fixes the first with `mallopt`, which also turns off the
//! threshold's moving, and starts a thread that calls `malloc_trim(0)`
//! every [`TRIM_EVERY`] for the second. Elsewhere than glibc on Linux it
//! does nothing.
//!
//! This crate holds the workspace's only `unsafe` code: two calls into
//! glibc, sound at any time from any thread. Every other crate forbids it.

use std::time::Duration;

/// Allocations from this size are mapped on their own and given back as
/// soon as they are freed: a block's frame (tens of KiB) stays in the heap,
/// a catch-up answer (up to 256 KiB) or a table that doubles does not.
pub const MMAP_THRESHOLD: usize = 32 * 1024;

/// Free memory at a heap's top past this size is given back at once.
pub const TRIM_THRESHOLD: usize = 128 * 1024;

/// How often free pages anywhere in the heaps are given back.
pub const TRIM_EVERY: Duration = Duration::from_secs(10);

/// Sets the allocator's thresholds and starts the trimming thread. Call it
/// first thing in `main`; calling it again does nothing more.
pub fn tune() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        set_thresholds();
        let trimming = std::thread::Builder::new()
            .name("malloc-trim".into())
            .spawn(|| loop {
                std::thread::sleep(TRIM_EVERY);
                trim();
            });
        // No thread (the system is out of them): the thresholds still help.
        drop(trimming);
    });
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn set_thresholds() {
    let as_int = |bytes: usize| libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
    #[allow(unsafe_code)]
    // SAFETY: `mallopt` only changes the allocator's parameters; glibc
    // takes its own lock and allows it at any time, from any thread.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, as_int(MMAP_THRESHOLD));
        libc::mallopt(libc::M_TRIM_THRESHOLD, as_int(TRIM_THRESHOLD));
    }
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn trim() {
    #[allow(unsafe_code)]
    // SAFETY: `malloc_trim` gives back free pages under each arena's lock;
    // it touches no memory the program holds.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn set_thresholds() {}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn trim() {}

#[cfg(test)]
mod tests {
    use super::*;

    /// Resident KiB of this process (`None` where `/proc` has no answer).
    fn resident_kib() -> Option<usize> {
        let status = std::fs::read_to_string("/proc/self/status").ok()?;
        let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
        line.split_whitespace().nth(1)?.parse().ok()
    }

    /// What glibc does left alone: once a large buffer is freed, buffers
    /// of that size come from the heap, and a small allocation that stays
    /// behind each keeps its pages resident after they are freed.
    #[test]
    fn freed_buffers_are_given_back_though_small_ones_stay_between_them() {
        if !cfg!(all(target_os = "linux", target_env = "gnu")) {
            eprintln!("skipped: glibc's allocator only");
            return;
        }
        tune();
        // Raises glibc's own threshold to 1 MiB, where `tune` did not fix it.
        drop(std::hint::black_box(vec![1u8; 1024 * 1024]));
        let before = resident_kib().expect("VmRSS");
        let mut buffers = Vec::new();
        let mut kept = Vec::new();
        for i in 0..64u8 {
            buffers.push(std::hint::black_box(vec![i; 200 * 1024]));
            kept.push(std::hint::black_box(vec![i; 64]));
        }
        let full = resident_kib().expect("VmRSS");
        drop(buffers);
        let after = resident_kib().expect("VmRSS");
        assert!(
            full >= before + 10 * 1024,
            "the buffers were resident: {before} -> {full} KiB"
        );
        assert!(
            after < before + 2 * 1024,
            "64 freed buffers of 200 KiB still resident: {before} KiB before, {full} with them, {after} after"
        );
        drop(kept);
    }

    #[test]
    fn tune_twice_starts_one_trimming_thread() {
        let named = || {
            std::fs::read_dir("/proc/self/task")
                .map(|tasks| {
                    tasks
                        .flatten()
                        .filter(|t| {
                            std::fs::read_to_string(t.path().join("comm"))
                                .is_ok_and(|c| c.trim() == "malloc-trim")
                        })
                        .count()
                })
                .unwrap_or(0)
        };
        tune();
        tune();
        if cfg!(target_os = "linux") {
            assert_eq!(named(), 1);
        }
    }
}
