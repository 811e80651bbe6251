//! The flood limit (docs/policy.md section 9): at most `flood_pps`
//! broadcast and multicast frames per second from the guest, across all
//! CPUs. A one-second window per vif in the shared `FLOOD` row: each
//! frame adds one with an atomic add (BPF_XADD: no return value needed,
//! so any kernel and BPF ISA has it), and the first frame of a new second
//! starts the count again. Two CPUs crossing into a new second together
//! may each reset it and admit a few frames twice; that is the error
//! bound (a few frames per second, well within the 10% the contract
//! allows), never a frame unseen.

use aya_ebpf::helpers::bpf_ktime_get_ns;
use filter_common::IfacePolicy;

use crate::maps::FLOOD;

/// Whether a broadcast or multicast frame that passed every other check
/// is one too many this second.
#[inline(always)]
pub fn over_limit(p: &IfacePolicy) -> bool {
    let Some(w) = FLOOD.get_ptr_mut(p.slot) else {
        // No row: no budget to spend, fail closed.
        return true;
    };
    // SAFETY: a helper without arguments.
    let second = unsafe { bpf_ktime_get_ns() } / 1_000_000_000;
    // SAFETY: `w` points into a live array element (array elements are
    // never freed); the fields are 8-byte aligned u64s, read and written
    // whole, and `count` is only ever added to atomically or reset.
    unsafe {
        if core::ptr::read_volatile(&raw const (*w).second) != second {
            core::ptr::write_volatile(&raw mut (*w).count, 0);
            core::ptr::write_volatile(&raw mut (*w).second, second);
        }
        atomic_add(&raw mut (*w).count, 1);
        core::ptr::read_volatile(&raw const (*w).count) > u64::from(p.flood_pps)
    }
}

/// `*dst += v` as one atomic instruction, its result unused (BPF_XADD).
/// The BPF target has no `AtomicU64::fetch_add` (core lists no atomic
/// read-modify-write for it), so this is the intrinsic behind it; the eBPF
/// build allows it (`RUSTC_BOOTSTRAP`, see filter-user/build.rs).
///
/// # Safety
/// `dst` is valid for writes and 8-byte aligned.
#[cfg(target_arch = "bpf")]
#[inline(always)]
unsafe fn atomic_add(dst: *mut u64, v: u64) {
    use core::intrinsics::{AtomicOrdering, atomic_xadd};
    // SAFETY: as the caller promises.
    unsafe { atomic_xadd::<u64, u64, { AtomicOrdering::Relaxed }>(dst, v) };
}

/// The host build (clippy, `cargo check`) has no BPF programs to run; an
/// atomic add of the same meaning keeps the source checkable there.
#[cfg(not(target_arch = "bpf"))]
#[inline(always)]
unsafe fn atomic_add(dst: *mut u64, v: u64) {
    // SAFETY: as the caller promises; AtomicU64 has u64's layout.
    unsafe { core::sync::atomic::AtomicU64::from_ptr(dst) }
        .fetch_add(v, core::sync::atomic::Ordering::Relaxed);
}
