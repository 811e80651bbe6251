//! "Is this address allowed?" for one interface. Host addresses are answered
//! from the policy value already in hand (no further map lookup: the common
//! case); prefixes and long lists fall back to the tries.

use aya_ebpf::maps::lpm_trie::Key;
use filter_common::{
    IFINDEX_BITS, INLINE_V4, INLINE_V6, IfacePolicy, LinkLocal, V4Key, V6Key, flags,
};

use crate::frame::{eq16, words};
use crate::maps::{DST_V4, DST_V6, SRC_V4, SRC_V6};

#[inline(always)]
fn v4_key(ifindex: u32, addr: [u8; 4]) -> Key<V4Key> {
    Key::new(
        IFINDEX_BITS + 32,
        V4Key {
            ifindex: ifindex.to_ne_bytes(),
            addr,
        },
    )
}

#[inline(always)]
fn v6_key(ifindex: u32, addr: [u8; 16]) -> Key<V6Key> {
    Key::new(
        IFINDEX_BITS + 128,
        V6Key {
            ifindex: ifindex.to_ne_bytes(),
            addr,
        },
    )
}

/// In the vif's `ipv4` list.
#[inline(always)]
pub fn v4_allowed(p: &IfacePolicy, ifindex: u32, addr: [u8; 4]) -> bool {
    let a = u32::from_ne_bytes(addr);
    let n = p.n_ipv4 as usize;
    let mut i = 0;
    while i < INLINE_V4 {
        if i >= n {
            break;
        }
        if u32::from_ne_bytes(p.ipv4[i]) == a {
            return true;
        }
        i += 1;
    }
    p.flags & flags::V4_TRIE != 0 && SRC_V4.get(&v4_key(ifindex, addr)).is_some()
}

/// The `ipv4` list is empty (the guest has no address yet).
#[inline(always)]
pub fn v4_list_empty(p: &IfacePolicy) -> bool {
    p.n_ipv4 == 0 && p.flags & flags::V4_TRIE == 0
}

/// In the vif's `ipv6` list (link-local rule not included).
#[inline(always)]
pub fn v6_listed(p: &IfacePolicy, ifindex: u32, addr: &[u8; 16]) -> bool {
    let a = words(addr);
    let n = p.n_ipv6 as usize;
    let mut i = 0;
    while i < INLINE_V6 {
        if i >= n {
            break;
        }
        let e = words(&p.ipv6[i]);
        if e[0] == a[0] && e[1] == a[1] {
            return true;
        }
        i += 1;
    }
    p.flags & flags::V6_TRIE != 0 && SRC_V6.get(&v6_key(ifindex, *addr)).is_some()
}

/// fe80::/64.
#[inline(always)]
pub fn is_link_local(addr: &[u8; 16]) -> bool {
    words(addr)[0] == u64::from_ne_bytes([0xfe, 0x80, 0, 0, 0, 0, 0, 0])
}

/// Allowed by the `ipv6_link_local` option.
#[inline(always)]
pub fn link_local_allowed(p: &IfacePolicy, addr: &[u8; 16]) -> bool {
    if p.link_local == LinkLocal::Any as u8 {
        is_link_local(addr)
    } else if p.link_local == LinkLocal::Derived as u8 {
        eq16(addr, &p.ll_derived)
    } else {
        false
    }
}

/// An allowed IPv6 source: listed, or an allowed link-local address.
#[inline(always)]
pub fn v6_allowed(p: &IfacePolicy, ifindex: u32, addr: &[u8; 16]) -> bool {
    link_local_allowed(p, addr) || v6_listed(p, ifindex, addr)
}

/// In the vif's `destinations` (isolated mode).
#[inline(always)]
pub fn v4_destination(ifindex: u32, addr: [u8; 4]) -> bool {
    DST_V4.get(&v4_key(ifindex, addr)).is_some()
}

#[inline(always)]
pub fn v6_destination(ifindex: u32, addr: &[u8; 16]) -> bool {
    DST_V6.get(&v6_key(ifindex, *addr)).is_some()
}
