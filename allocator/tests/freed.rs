//! What `tune` changes, in a process of its own: resident memory is the
//! whole process's, so nothing else may run beside this test.

/// Resident KiB of this process (`None` where `/proc` has no answer).
fn resident_kib() -> Option<usize> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// What glibc does left alone: once a large buffer is freed, buffers of
/// that size come from the heap, and a small allocation that stays behind
/// each keeps its pages resident after they are freed. Fails without
/// `tune()` (64 freed buffers of 200 KiB stay resident).
#[test]
fn freed_buffers_are_given_back_though_small_ones_stay_between_them() {
    if !cfg!(all(target_os = "linux", target_env = "gnu")) {
        eprintln!("skipped: glibc's allocator only");
        return;
    }
    toycoin_allocator::tune();
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
