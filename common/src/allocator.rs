//! The memory allocator of every toycoin program: mimalloc, set here once
//! for every binary that links this library.
//!
//! A program's memory must stay flat over a lesson (issue 34), and what a
//! teacher's `top` shows is the resident size, not the live heap. With the
//! system's allocator (glibc's), the memory a burst took (a block of a
//! hundred transactions after a stall, a pool that filled meanwhile) stays
//! with the process after it is freed, in one of several per-thread
//! arenas, so the resident size follows the largest burst so far and
//! creeps up over a lesson while the live heap stays level. mimalloc gives
//! freed pages back to the system soon after a burst (`toycoin-bench soak`
//! measures the difference).
//!
//! Built with `no_thp`: where the system offers transparent huge pages on
//! request, mimalloc would otherwise ask for them, and a node's resident
//! size tripled (26 MiB at start against 9 MiB with glibc; 16 MiB of it
//! huge pages, `/proc/PID/smaps_rollup`). Without them it starts at 9.7.

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
