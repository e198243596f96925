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
//! sets nothing, and its thread trims nothing.
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
        if trimming.is_ok() {
            TRIMMING.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    });
}

/// Trimming threads started in this process (at most one).
static TRIMMING: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// How many trimming threads [`tune`] has started: 1 once it has been
/// called (0 if the system had no thread to give).
pub fn trimming_threads() -> usize {
    TRIMMING.load(std::sync::atomic::Ordering::Relaxed)
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

    #[test]
    fn tune_twice_starts_one_trimming_thread() {
        tune();
        tune();
        assert_eq!(trimming_threads(), 1);
    }
}
