//! The clock the datapath's expiries use: `bpf_ktime_get_ns` is
//! CLOCK_MONOTONIC, and std's `Instant` does not expose its value.

/// Whole seconds of CLOCK_MONOTONIC.
pub fn monotonic_secs() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_MONOTONIC exists
    // on every Linux, so the call cannot fail (and would leave 0).
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    u64::try_from(ts.tv_sec).unwrap_or(0)
}
