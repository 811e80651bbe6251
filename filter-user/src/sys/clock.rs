//! The clock the programs stamp DHCP-learned addresses with.

use std::io;

/// Seconds on CLOCK_MONOTONIC, the clock of `bpf_ktime_get_ns`: what a
/// `LEARNED` entry's expiry counts in (docs/policy.md section 8).
/// `std::time::Instant` reads the same clock but never shows its value.
pub fn monotonic_s() -> io::Result<u32> {
    // The programs keep the low 32 bits of the seconds (136 years of
    // uptime), so truncate alike.
    Ok((monotonic_ns()? / 1_000_000_000) as u32)
}

/// Nanoseconds on CLOCK_MONOTONIC (tests that must not straddle the
/// programs' second boundaries read where in the second they are).
pub fn monotonic_ns() -> io::Result<u64> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec for the duration of the
    // call; CLOCK_MONOTONIC is always supported on Linux.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn monotonic_seconds_advance_with_instant() {
        let a = monotonic_s().expect("clock_gettime");
        std::thread::sleep(std::time::Duration::from_millis(1100));
        let b = monotonic_s().expect("clock_gettime");
        assert!(b > a && b - a <= 2, "{a} -> {b}");
    }
}
