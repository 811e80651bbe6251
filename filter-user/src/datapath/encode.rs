//! Policy -> map entries, and back. Pure: the datapath module writes what
//! this computes. The first host addresses go inline into the policy value
//! (one lookup answers the common case); prefixes and the rest go to the
//! tries.

use std::net::{Ipv4Addr, Ipv6Addr};

use filter_common::{
    IFINDEX_BITS, INLINE_V4, INLINE_V6, IfacePolicy, LinkLocal, MAX_ETHERTYPES, Mode, V4Key, V6Key,
    flags as bits,
};

use crate::policy::{Cidr, Cidr4, Cidr6, Options, Policy};

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

/// Why entries do not decode: values no [`encode`] of this version writes.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("unknown mode {0}")]
    Mode(u8),
    #[error("unknown ipv6_link_local value {0}")]
    LinkLocal(u8),
    #[error("trie entry {0} is not a prefix of its family")]
    TrieKey(String),
}

/// The policy `e` holds, as [`encode`] wrote it: each address list holds
/// the inline host addresses first, in their order, then the trie's
/// entries, sorted (a trie does not keep the order they were written in).
pub fn decode(e: &Entries) -> Result<Policy, DecodeError> {
    let v = &e.policy;
    let mode = Mode::from_u8(v.mode).ok_or(DecodeError::Mode(v.mode))?;
    let link_local =
        LinkLocal::from_u8(v.link_local).ok_or(DecodeError::LinkLocal(v.link_local))?;
    let on = |bit| v.flags & bit != 0;
    let options = Options {
        dhcp_client: on(bits::DHCP_CLIENT),
        dhcp_server: on(bits::DHCP_SERVER),
        router: on(bits::ROUTER),
        link_local,
        egress_filter: on(bits::EGRESS_FILTER),
        ethertypes: v
            .ethertypes
            .iter()
            .take(usize::from(v.n_ethertypes))
            .map(|et| u16::from_be(*et))
            .collect(),
    };
    let mut ipv4: Vec<Cidr4> = v
        .ipv4
        .iter()
        .take(usize::from(v.n_ipv4))
        .map(|a| Cidr4::host(Ipv4Addr::from(*a)))
        .collect();
    ipv4.extend(sorted(&e.src_v4, v4_cidr)?);
    let mut ipv6: Vec<Cidr6> = v
        .ipv6
        .iter()
        .take(usize::from(v.n_ipv6))
        .map(|a| Cidr6::host(Ipv6Addr::from(*a)))
        .collect();
    ipv6.extend(sorted(&e.src_v6, v6_cidr)?);
    let mut destinations: Vec<Cidr> = sorted(&e.dst_v4, v4_cidr)?
        .into_iter()
        .map(Cidr::V4)
        .collect();
    destinations.extend(sorted(&e.dst_v6, v6_cidr)?.into_iter().map(Cidr::V6));
    Ok(Policy {
        mode,
        mac: crate::policy::MacAddr(v.mac),
        ipv4,
        ipv6,
        destinations,
        pairs: Vec::new(),
        vrrp: Vec::new(),
        dhcp_servers: Vec::new(),
        options,
    })
}

/// The prefixes of trie `entries`, by address and then length.
fn sorted<K, C: Ord>(
    entries: &[(u32, K)],
    cidr: impl Fn(u32, &K) -> Result<C, DecodeError>,
) -> Result<Vec<C>, DecodeError> {
    let mut out = entries
        .iter()
        .map(|(len, k)| cidr(*len, k))
        .collect::<Result<Vec<C>, _>>()?;
    out.sort();
    Ok(out)
}

/// The prefix length of a trie key without its ifindex part.
fn address_bits(len: u32) -> Option<u8> {
    len.checked_sub(IFINDEX_BITS)
        .and_then(|l| u8::try_from(l).ok())
}

fn v4_cidr(len: u32, k: &V4Key) -> Result<Cidr4, DecodeError> {
    let addr = Ipv4Addr::from(k.addr);
    address_bits(len)
        .and_then(|l| Cidr4::new(addr, l))
        .ok_or_else(|| DecodeError::TrieKey(format!("{addr}/{len}")))
}

fn v6_cidr(len: u32, k: &V6Key) -> Result<Cidr6, DecodeError> {
    let addr = Ipv6Addr::from(k.addr);
    address_bits(len)
        .and_then(|l| Cidr6::new(addr, l))
        .ok_or_else(|| DecodeError::TrieKey(format!("{addr}/{len}")))
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

    #[test]
    fn decode_gives_back_what_encode_wrote() {
        let mut p = policy();
        p.mode = Mode::Isolated;
        // Ten hosts: eight inline, two in the trie with the prefix; in
        // the order decode lists them (inline first, then the trie's
        // sorted).
        p.ipv4 = (1..=10)
            .map(|i| format!("192.0.2.{i}").parse().unwrap())
            .chain(["198.51.100.0/24".parse().unwrap()])
            .collect();
        p.ipv6 = vec![
            "2001:db8::1".parse().unwrap(),
            "2001:db8:1::/64".parse().unwrap(),
        ];
        p.destinations = vec![
            "192.0.2.0/24".parse().unwrap(),
            "2001:db8::/32".parse().unwrap(),
        ];
        p.options.dhcp_client = false;
        p.options.router = true;
        p.options.link_local = LinkLocal::Any;
        p.options.ethertypes = vec![0x88cc, 0x88b5];
        assert_eq!(decode(&encode(&p, 7, 3, 20)), Ok(p.clone()));

        p.ipv4 = vec!["0.0.0.0/0".parse().unwrap()];
        p.ipv6 = vec!["::/0".parse().unwrap()];
        assert_eq!(decode(&encode(&p, 7, 3, 20)), Ok(p));
    }

    #[test]
    fn trie_entries_decode_sorted() {
        let mut p = policy();
        p.ipv4 = vec![
            "203.0.113.0/24".parse().unwrap(),
            "10.0.0.0/8".parse().unwrap(),
        ];
        let got = decode(&encode(&p, 7, 3, 20)).unwrap();
        assert_eq!(
            got.ipv4,
            [
                "10.0.0.0/8".parse().unwrap(),
                "203.0.113.0/24".parse().unwrap()
            ]
        );
    }

    #[test]
    fn what_no_encode_writes_does_not_decode() {
        let mut e = encode(&policy(), 7, 3, 20);
        e.policy.mode = 9;
        assert_eq!(decode(&e), Err(DecodeError::Mode(9)));
        let mut e = encode(&policy(), 7, 3, 20);
        e.policy.link_local = 7;
        assert_eq!(decode(&e), Err(DecodeError::LinkLocal(7)));
        let mut e = encode(&policy(), 7, 3, 20);
        let (_, key) = v4_key(7, &"192.0.2.0/24".parse().unwrap());
        e.src_v4.push((16, key));
        assert!(matches!(decode(&e), Err(DecodeError::TrieKey(_))));
    }
}
