//! "Is this address allowed?" for one source MAC's addresses ([`Addrs`]):
//! the vif's own, a pair's or a virtual MAC's. Host addresses are answered
//! from the value already in hand (no further map lookup: the common case);
//! prefixes and long lists fall back to the tries, under the set the
//! [`Addrs`] names.

use aya_ebpf::maps::lpm_trie::Key;
use filter_common::{
    Addrs, INLINE_V4, INLINE_V6, IfacePolicy, LinkLocal, OWNER_BITS, PairKey, V4Key, V6Key,
    addr_flags, flags, set,
};

use crate::frame::{eq16, words};
use crate::learn;
use crate::maps::{DST_V4, DST_V6, PAIRS, SRC_V4, SRC_V6};

#[inline(always)]
fn v4_key(ifindex: u32, set: u8, addr: [u8; 4]) -> Key<V4Key> {
    Key::new(
        OWNER_BITS + 32,
        V4Key {
            ifindex: ifindex.to_ne_bytes(),
            set,
            addr,
        },
    )
}

#[inline(always)]
fn v6_key(ifindex: u32, set: u8, addr: [u8; 16]) -> Key<V6Key> {
    Key::new(
        OWNER_BITS + 128,
        V6Key {
            ifindex: ifindex.to_ne_bytes(),
            set,
            addr,
        },
    )
}

/// The addresses of source MAC `mac` on the interface: the vif's own, or
/// (when it has pairs) the `PAIRS` entry; `None`: not one of the guest's
/// MACs.
#[inline(always)]
pub fn of_mac(p: &IfacePolicy, ifindex: u32, mac: [u8; 6]) -> Option<&Addrs> {
    if crate::frame::eq6(mac, p.own.mac) {
        return Some(&p.own);
    }
    if p.flags & flags::PAIRS == 0 {
        return None;
    }
    let key = PairKey {
        ifindex,
        mac,
        _pad: [0; 2],
    };
    // SAFETY: read only, within this run; userspace does not rewrite an
    // element until the programs that could hold it have returned (see
    // `PAIRS`).
    unsafe { PAIRS.get(key) }
}

/// In `a`'s IPv4 list.
#[inline(always)]
fn v4_listed(a: &Addrs, ifindex: u32, addr: [u8; 4]) -> bool {
    let w = u32::from_ne_bytes(addr);
    let n = a.n_ipv4 as usize;
    let mut i = 0;
    while i < INLINE_V4 {
        if i >= n {
            break;
        }
        if u32::from_ne_bytes(a.ipv4[i]) == w {
            return true;
        }
        i += 1;
    }
    a.flags & addr_flags::V4_TRIE != 0 && SRC_V4.get(&v4_key(ifindex, a.set, addr)).is_some()
}

/// An allowed IPv4 source for frames from `a`'s MAC: listed, or one of
/// the vif's own addresses (listed or learned from DHCP) for its own MAC
/// and its virtual MACs.
#[inline(always)]
pub fn v4_allowed(p: &IfacePolicy, a: &Addrs, ifindex: u32, addr: [u8; 4]) -> bool {
    let own_too = a.flags & addr_flags::OWN_TOO != 0;
    v4_listed(a, ifindex, addr)
        || (own_too && v4_listed(&p.own, ifindex, addr))
        || ((own_too || a.set == set::OWN) && learn::is_learned(p, addr))
}

/// The vif's own `ipv4` list is empty (the guest has no address yet, or
/// only learned ones).
#[inline(always)]
pub fn own_v4_empty(p: &IfacePolicy) -> bool {
    p.own.n_ipv4 == 0 && p.own.flags & addr_flags::V4_TRIE == 0
}

/// In `a`'s IPv6 list (link-local rule not included).
#[inline(always)]
fn v6_listed(a: &Addrs, ifindex: u32, addr: &[u8; 16]) -> bool {
    let w = words(addr);
    let n = a.n_ipv6 as usize;
    let mut i = 0;
    while i < INLINE_V6 {
        if i >= n {
            break;
        }
        let e = words(&a.ipv6[i]);
        if e[0] == w[0] && e[1] == w[1] {
            return true;
        }
        i += 1;
    }
    a.flags & addr_flags::V6_TRIE != 0 && SRC_V6.get(&v6_key(ifindex, a.set, *addr)).is_some()
}

/// fe80::/64.
#[inline(always)]
pub fn is_link_local(addr: &[u8; 16]) -> bool {
    words(addr)[0] == u64::from_ne_bytes([0xfe, 0x80, 0, 0, 0, 0, 0, 0])
}

/// Allowed for `a`'s MAC by the `ipv6_link_local` option.
#[inline(always)]
fn link_local_allowed(p: &IfacePolicy, a: &Addrs, addr: &[u8; 16]) -> bool {
    if p.link_local == LinkLocal::Any as u8 {
        is_link_local(addr)
    } else if p.link_local == LinkLocal::Derived as u8 {
        eq16(addr, &a.ll_derived)
    } else {
        false
    }
}

/// One of `a`'s own IPv6 sources: listed, or an allowed link-local address.
#[inline(always)]
fn v6_of(p: &IfacePolicy, a: &Addrs, ifindex: u32, addr: &[u8; 16]) -> bool {
    link_local_allowed(p, a, addr) || v6_listed(a, ifindex, addr)
}

/// An allowed IPv6 source for frames from `a`'s MAC.
#[inline(always)]
pub fn v6_allowed(p: &IfacePolicy, a: &Addrs, ifindex: u32, addr: &[u8; 16]) -> bool {
    v6_of(p, a, ifindex, addr)
        || (a.flags & addr_flags::OWN_TOO != 0 && v6_of(p, &p.own, ifindex, addr))
}

/// One of the guest's IPv4 addresses, whichever of its MACs (to the
/// guest): its own, or a pair's or virtual one.
#[inline(always)]
pub fn v4_of_guest(p: &IfacePolicy, ifindex: u32, addr: [u8; 4]) -> bool {
    v4_listed(&p.own, ifindex, addr)
        || learn::is_learned(p, addr)
        || (p.flags & flags::PAIRS != 0 && SRC_V4.get(&v4_key(ifindex, set::PAIRS, addr)).is_some())
}

/// See [`v4_of_guest`].
#[inline(always)]
pub fn v6_of_guest(p: &IfacePolicy, ifindex: u32, addr: &[u8; 16]) -> bool {
    v6_of(p, &p.own, ifindex, addr)
        || (p.flags & flags::PAIRS != 0
            && SRC_V6.get(&v6_key(ifindex, set::PAIRS, *addr)).is_some())
}

/// A trusted DHCP server (section 4).
#[inline(always)]
pub fn v4_dhcp_server(ifindex: u32, addr: [u8; 4]) -> bool {
    SRC_V4
        .get(&v4_key(ifindex, set::DHCP_SERVERS, addr))
        .is_some()
}

#[inline(always)]
pub fn v6_dhcp_server(ifindex: u32, addr: &[u8; 16]) -> bool {
    SRC_V6
        .get(&v6_key(ifindex, set::DHCP_SERVERS, *addr))
        .is_some()
}

/// In the vif's `destinations` (isolated mode).
#[inline(always)]
pub fn v4_destination(ifindex: u32, addr: [u8; 4]) -> bool {
    DST_V4.get(&v4_key(ifindex, set::OWN, addr)).is_some()
}

#[inline(always)]
pub fn v6_destination(ifindex: u32, addr: &[u8; 16]) -> bool {
    DST_V6.get(&v6_key(ifindex, set::OWN, *addr)).is_some()
}
