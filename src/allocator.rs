//! Process-wide settings of the memory allocator, made once at start by the
//! binary (and by the benches that run a server in their own process).

/// Pins glibc's mmap threshold at its initial 128 KiB.
///
/// By default glibc raises the threshold each time a large block served by
/// `mmap` is freed. The server allocates and frees large short-lived buffers
/// all the time (decoded event batches, request and response buffers), so
/// once the threshold has risen they come from the heap instead, and the
/// small long-lived debtor states allocated between them keep the heap from
/// shrinking or being reused well. A server fed 200,000 typical debtors held
/// 3,119 B per debtor resident with the moving threshold and 844 B with it
/// pinned, against 826 B for the same state built in a single thread
/// (`cargo bench --bench server_memory`, BENCHMARKS.md). Pinning it also
/// turns off the matching moving trim threshold, so freed memory at the top
/// of the heap is returned.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
pub fn pin_mmap_threshold() {
    // SAFETY: `mallopt` only changes allocator parameters; it takes no pointers
    // and is meant to be called at start, before the server's threads exist.
    let changed = unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024) };
    debug_assert_eq!(changed, 1, "glibc accepts a 128 KiB mmap threshold");
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn pin_mmap_threshold() {}
