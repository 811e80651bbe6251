//! Policy -> map entries. Pure: the datapath module writes what this
//! computes. The first host addresses go inline into the policy value (one
//! lookup answers the common case); prefixes and the rest go to the tries.

use filter_common::{
    INLINE_V4, INLINE_V6, IfacePolicy, MAX_ETHERTYPES, V4Key, V6Key, flags as bits,
};

use crate::policy::{Cidr, Cidr4, Cidr6, Policy};

/// Everything the maps hold for one interface.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entries {
    pub policy: IfacePolicy,
    /// (prefix length in bits including the ifindex, key data).
    pub src_v4: Vec<(u32, V4Key)>,
    pub src_v6: Vec<(u32, V6Key)>,
    pub dst_v4: Vec<(u32, V4Key)>,
    pub dst_v6: Vec<(u32, V6Key)>,
}

impl Entries {
    /// Nothing: a zero policy and no trie entry.
    pub fn none() -> Entries {
        Entries {
            policy: IfacePolicy::ZERO,
            src_v4: Vec::new(),
            src_v6: Vec::new(),
            dst_v4: Vec::new(),
            dst_v6: Vec::new(),
        }
    }
}

pub fn v4_key(ifindex: u32, c: &Cidr4) -> (u32, V4Key) {
    (
        filter_common::IFINDEX_BITS + u32::from(c.len),
        V4Key {
            ifindex: ifindex.to_ne_bytes(),
            addr: c.addr.octets(),
        },
    )
}

pub fn v6_key(ifindex: u32, c: &Cidr6) -> (u32, V6Key) {
    (
        filter_common::IFINDEX_BITS + u32::from(c.len),
        V6Key {
            ifindex: ifindex.to_ne_bytes(),
            addr: c.addr.octets(),
        },
    )
}

/// Encodes a validated policy for `ifindex`, using counter `slot`.
pub fn encode(p: &Policy, ifindex: u32, slot: u32, events_per_sec: u32) -> Entries {
    let mut v = IfacePolicy::ZERO;
    v.mode = p.mode as u8;
    v.link_local = p.options.link_local as u8;
    v.mac = p.mac.0;
    v.ll_derived = p.mac.link_local().octets();
    v.slot = slot;
    v.events_per_sec = events_per_sec;
    let o = &p.options;
    for (on, bit) in [
        (o.dhcp_client, bits::DHCP_CLIENT),
        (o.dhcp_server, bits::DHCP_SERVER),
        (o.router, bits::ROUTER),
        (o.egress_filter, bits::EGRESS_FILTER),
    ] {
        if on {
            v.flags |= bit;
        }
    }
    for (i, et) in o.ethertypes.iter().take(MAX_ETHERTYPES).enumerate() {
        v.ethertypes[i] = et.to_be();
        v.n_ethertypes += 1;
    }

    let mut src_v4 = Vec::new();
    for c in dedup(&p.ipv4) {
        if c.is_host() && (v.n_ipv4 as usize) < INLINE_V4 {
            v.ipv4[v.n_ipv4 as usize] = c.addr.octets();
            v.n_ipv4 += 1;
        } else {
            src_v4.push(v4_key(ifindex, &c));
        }
    }
    let mut src_v6 = Vec::new();
    for c in dedup(&p.ipv6) {
        if c.is_host() && (v.n_ipv6 as usize) < INLINE_V6 {
            v.ipv6[v.n_ipv6 as usize] = c.addr.octets();
            v.n_ipv6 += 1;
        } else {
            src_v6.push(v6_key(ifindex, &c));
        }
    }
    if !src_v4.is_empty() {
        v.flags |= bits::V4_TRIE;
    }
    if !src_v6.is_empty() {
        v.flags |= bits::V6_TRIE;
    }

    let mut dst_v4 = Vec::new();
    let mut dst_v6 = Vec::new();
    for d in dedup(&p.destinations) {
        match d {
            Cidr::V4(c) => dst_v4.push(v4_key(ifindex, &c)),
            Cidr::V6(c) => dst_v6.push(v6_key(ifindex, &c)),
        }
    }
    Entries {
        policy: v,
        src_v4,
        src_v6,
        dst_v4,
        dst_v6,
    }
}

fn dedup<T: Copy + PartialEq>(list: &[T]) -> Vec<T> {
    let mut out: Vec<T> = Vec::with_capacity(list.len());
    for x in list {
        if !out.contains(x) {
            out.push(*x);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::MacAddr;

    fn policy() -> Policy {
        Policy::locked(MacAddr([0x00, 0x16, 0x3e, 0, 0, 1]))
    }

    #[test]
    fn hosts_go_inline_and_prefixes_to_the_trie() {
        let mut p = policy();
        p.ipv4 = vec![
            "192.0.2.1".parse().unwrap(),
            "198.51.100.0/24".parse().unwrap(),
            "192.0.2.1".parse().unwrap(),
        ];
        let e = encode(&p, 7, 3, 20);
        assert_eq!(e.policy.n_ipv4, 1, "one distinct host address inline");
        assert_eq!(e.policy.ipv4[0], [192, 0, 2, 1]);
        assert_eq!(e.src_v4.len(), 1, "the prefix goes to the trie");
        assert_eq!(e.src_v4[0].0, 32 + 24);
        assert_ne!(e.policy.flags & bits::V4_TRIE, 0);
        assert_eq!(e.policy.flags & bits::V6_TRIE, 0);
    }

    #[test]
    fn hosts_beyond_the_inline_list_overflow_to_the_trie() {
        let mut p = policy();
        p.ipv6 = (1..=10u16)
            .map(|i| format!("2001:db8::{i}").parse().unwrap())
            .collect();
        let e = encode(&p, 7, 3, 20);
        assert_eq!(e.policy.n_ipv6 as usize, INLINE_V6);
        assert_eq!(e.src_v6.len(), 10 - INLINE_V6);
        assert!(e.src_v6.iter().all(|(len, _)| *len == 32 + 128));
    }

    #[test]
    fn options_become_flags() {
        let mut p = policy();
        p.options.dhcp_client = false;
        p.options.router = true;
        p.options.ethertypes = vec![0x88cc];
        let e = encode(&p, 7, 3, 20);
        assert_eq!(e.policy.flags, bits::ROUTER | bits::EGRESS_FILTER);
        assert_eq!(e.policy.ethertypes[0], 0x88ccu16.to_be());
        assert_eq!(e.policy.n_ethertypes, 1);
        assert_eq!(e.policy.ll_derived, p.mac.link_local().octets());
    }
}
