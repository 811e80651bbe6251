//! DHCP learning (docs/policy.md section 8): the lease a trusted server
//! acknowledges to the guest becomes one of its addresses until it
//! expires, in the `LEARNED` row of the vif's slot. The programs write
//! that row one 64-bit entry at a time (address and expiry packed, see
//! `filter_common::learned`), so a reader on another CPU sees an entry
//! whole, old or new. Two ACKs racing on two CPUs may pick the same free
//! entry; one lease is then not learned until the client renews it: the
//! loss closes, never opens.

use aya_ebpf::helpers::bpf_ktime_get_ns;
use filter_common::{IfacePolicy, Learned, MAX_LEARNED, flags, learned};

use crate::maps::LEARNED;

/// Seconds on the clock the expiries use (CLOCK_MONOTONIC).
#[inline(always)]
fn now_s() -> u32 {
    // SAFETY: a helper without arguments.
    (unsafe { bpf_ktime_get_ns() } / 1_000_000_000) as u32
}

/// The vif's `LEARNED` row, when it learns.
#[inline(always)]
fn row(p: &IfacePolicy) -> Option<*mut Learned> {
    if p.flags & flags::LEARN_DHCP == 0 {
        return None;
    }
    LEARNED.get_ptr_mut(p.slot)
}

#[inline(always)]
fn read(row: *mut Learned, i: usize) -> u64 {
    // SAFETY: `row` points into the array map's value (a live element:
    // array elements are never freed) and i < MAX_LEARNED; one aligned
    // 64-bit load, so the entry is read whole.
    unsafe { core::ptr::read_volatile(&raw const (*row).entries[i]) }
}

#[inline(always)]
fn write(row: *mut Learned, i: usize, e: u64) {
    // SAFETY: as in `read`; one aligned 64-bit store.
    unsafe { core::ptr::write_volatile(&raw mut (*row).entries[i], e) }
}

/// `addr` is a learned address of the vif that has not expired.
#[inline(always)]
pub fn is_learned(p: &IfacePolicy, addr: [u8; 4]) -> bool {
    let Some(row) = row(p) else {
        return false;
    };
    let now = now_s();
    let want = u32::from_ne_bytes(addr);
    let mut i = 0;
    while i < MAX_LEARNED {
        let e = read(row, i);
        if e != 0 && e as u32 == want && learned::expires_s(e) > now {
            return true;
        }
        i += 1;
    }
    false
}

/// A DHCPACK to the guest leased `addr` for `lease_s` seconds: it expires
/// after the lease and the grace. Takes the entry that holds `addr`
/// already, else a free or expired one, else the one that expires first.
#[inline(always)]
pub fn learn(p: &IfacePolicy, addr: [u8; 4], lease_s: u32) {
    let Some(row) = row(p) else {
        return;
    };
    if addr == [0; 4] {
        return;
    }
    let now = now_s();
    let want = u32::from_ne_bytes(addr);
    let (mut pick, mut pick_expires) = (0, u32::MAX);
    let mut i = 0;
    while i < MAX_LEARNED {
        let e = read(row, i);
        if e != 0 && e as u32 == want {
            pick = i;
            break;
        }
        let expires = if e == 0 { 0 } else { learned::expires_s(e) };
        let expires = if expires <= now { 0 } else { expires };
        if expires < pick_expires {
            (pick, pick_expires) = (i, expires);
        }
        i += 1;
    }
    let expires = now.saturating_add(lease_s).saturating_add(p.learn_grace_s);
    if pick < MAX_LEARNED {
        write(row, pick, learned::pack(addr, expires));
    }
}

/// A DHCPRELEASE or DHCPDECLINE of `addr` from the guest: forgotten at
/// once. `None` (a DHCPNAK to the guest, which names no address): every
/// learned address is.
#[inline(always)]
pub fn forget(p: &IfacePolicy, addr: Option<[u8; 4]>) {
    let Some(row) = row(p) else {
        return;
    };
    let mut i = 0;
    while i < MAX_LEARNED {
        let e = read(row, i);
        let matches = match addr {
            Some(a) => e as u32 == u32::from_ne_bytes(a),
            None => true,
        };
        if e != 0 && matches {
            write(row, i, 0);
        }
        i += 1;
    }
}
