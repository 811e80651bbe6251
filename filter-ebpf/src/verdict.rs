//! One decision per frame: find the policy, apply the mode, classify, then
//! count the verdict and maybe sample a drop event. Shared by every hook.

use aya_ebpf::helpers::bpf_ktime_get_ns;
use filter_common::{
    Counter, Direction, DropEvent, IfacePolicy, Mode, NoPolicyCounters, Reason, SlotCounters,
    family, flags,
};

use crate::frame::Frame;
use crate::from_guest;
use crate::maps::{COUNTERS, EVENT_BUDGET, EVENTS, NO_POLICY, POLICY};
use crate::proto::ethertype;
use crate::to_guest;

/// Where the frame comes from and what the kernel already knows about it.
pub struct Origin {
    pub ifindex: u32,
    /// TC only: the kernel moved an outer VLAN tag out of the frame.
    pub hw_vlan_tag: bool,
    /// The frame's length in bytes (all of it, not only the parse window):
    /// what is counted, and what the IP length fields must fit in.
    pub len: u32,
}

/// Events per second (per CPU) for interfaces without a policy entry, which
/// share the budget of slot 0.
const NO_POLICY_EVENTS_PER_SEC: u32 = 10;

#[inline(always)]
pub fn decide(dir: Direction, f: &Frame, origin: &Origin) -> Reason {
    let len = origin.len;
    // SAFETY: the value is only read, and only during this run; userspace
    // does not rewrite an element until the programs that could hold it
    // have returned (see `POLICY`).
    let Some(p) = (unsafe { POLICY.get(origin.ifindex) }) else {
        count_no_policy(dir, origin.ifindex, len);
        emit(
            dir,
            Reason::NoPolicy,
            f,
            origin.ifindex,
            0,
            NO_POLICY_EVENTS_PER_SEC,
            len,
        );
        return Reason::NoPolicy;
    };
    let reason = classify(dir, f, p, origin);
    count(p.slot, dir, reason, len);
    if !reason.is_pass() {
        emit(
            dir,
            reason,
            f,
            origin.ifindex,
            p.slot,
            p.events_per_sec,
            len,
        );
    }
    reason
}

#[inline(always)]
fn classify(dir: Direction, f: &Frame, p: &IfacePolicy, origin: &Origin) -> Reason {
    if p.mode == Mode::Disabled as u8 {
        return Reason::Disabled;
    }
    if p.mode == Mode::Unlocked as u8 {
        return Reason::Pass;
    }
    match dir {
        Direction::FromGuest => from_guest::check(f, p, origin),
        Direction::ToGuest => {
            if p.flags & flags::EGRESS_FILTER == 0 {
                Reason::Pass
            } else {
                to_guest::check(f, p, origin)
            }
        }
    }
}

#[inline(always)]
fn count(slot: u32, dir: Direction, reason: Reason, len: u32) {
    let i = SlotCounters::index(dir, reason);
    if let Some(row) = COUNTERS.get_ptr_mut(slot)
        && i < 2 * filter_common::REASON_COUNT
    {
        // SAFETY: a per-CPU value, so only this CPU writes it now.
        let c = unsafe { &mut (*row).c[i] };
        c.packets += 1;
        c.bytes += u64::from(len);
    }
}

#[inline(always)]
fn count_no_policy(dir: Direction, ifindex: u32, len: u32) {
    let d = dir as usize & 1;
    if let Some(v) = NO_POLICY.get_ptr_mut(ifindex) {
        // SAFETY: a per-CPU value, so only this CPU writes it now.
        let c = unsafe { &mut (*v).c[d] };
        c.packets += 1;
        c.bytes += u64::from(len);
    } else {
        let mut v = NoPolicyCounters::default();
        v.c[d] = Counter {
            packets: 1,
            bytes: u64::from(len),
        };
        // Another CPU may have inserted it first: that frame is then not
        // counted here, which is acceptable on this fail-closed path.
        let _ = NO_POLICY.insert(ifindex, v, 0);
    }
}

/// Whether the interface may send another event in this one-second window.
#[inline(always)]
fn within_budget(slot: u32, per_sec: u32) -> bool {
    let Some(b) = EVENT_BUDGET.get_ptr_mut(slot) else {
        return false;
    };
    // SAFETY: a per-CPU value, so only this CPU writes it now.
    let b = unsafe { &mut *b };
    // SAFETY: a helper without arguments.
    let now = unsafe { bpf_ktime_get_ns() };
    if now.wrapping_sub(b.window_start_ns) >= 1_000_000_000 {
        b.window_start_ns = now;
        b.sent = 0;
    }
    if b.sent >= per_sec {
        return false;
    }
    b.sent += 1;
    true
}

#[inline(always)]
fn emit(
    dir: Direction,
    reason: Reason,
    f: &Frame,
    ifindex: u32,
    slot: u32,
    per_sec: u32,
    len: u32,
) {
    if !within_budget(slot, per_sec) {
        return;
    }
    let Some(mut entry) = EVENTS.reserve(0) else {
        return;
    };
    let mut ev = DropEvent::ZERO;
    ev.ifindex = ifindex;
    ev.direction = dir as u8;
    ev.reason = reason as u8;
    ev.len = len;
    describe(f, &mut ev);
    entry.write(ev);
    entry.submit(0);
}

/// Fills the addresses of an event from the frame, as far as they fit.
#[inline(always)]
fn describe(f: &Frame, ev: &mut DropEvent) {
    // Each field stored as soon as it is read: with one combined `let
    // else`, LLVM kept the MACs in a stack slot that, on a path the
    // verifier explores, still held a spilled map pointer.
    if let Some(dst) = f.bytes6(0) {
        ev.dst_mac = dst;
    }
    if let Some(src) = f.bytes6(6) {
        ev.src_mac = src;
    }
    let Some(et) = f.be16(12) else {
        return;
    };
    ev.ethertype = et;
    let (s, d) = match et {
        ethertype::ARP | ethertype::RARP => (f.bytes4(28), f.bytes4(38)),
        ethertype::IPV4 => (f.bytes4(26), f.bytes4(30)),
        ethertype::IPV6 => {
            if let (Some(s), Some(d)) = (f.bytes16(22), f.bytes16(38)) {
                ev.family = family::IPV6;
                ev.src_addr = s;
                ev.dst_addr = d;
            }
            return;
        }
        _ => return,
    };
    if let (Some(s), Some(d)) = (s, d) {
        ev.family = family::IPV4;
        ev.src_addr[..4].copy_from_slice(&s);
        ev.dst_addr[..4].copy_from_slice(&d);
    }
}
