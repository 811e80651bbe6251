//! Policy -> map entries, and back. Pure: the datapath module writes what
//! this computes. The first host addresses go inline into the policy value
//! (one lookup answers the common case); prefixes and the rest go to the
//! tries.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use filter_common::{
    Addrs, INLINE_V4, INLINE_V6, IfacePolicy, LinkLocal, MAX_ETHERTYPES, Mode, OWNER_BITS, V4Key,
    V6Key, addr_flags, flags as bits, set,
};

use crate::policy::{Cidr, Cidr4, Cidr6, MacAddr, Options, Pair, Policy, Vrrp};

/// Everything the maps hold for one interface.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entries {
    pub policy: IfacePolicy,
    /// `PAIRS` values: the addresses of each source MAC besides the vif's
    /// own, in set order.
    pub pairs: Vec<([u8; 6], Addrs)>,
    /// (prefix length in bits including the ifindex and set, key data).
    pub src_v4: Vec<(u32, V4Key)>,
    pub src_v6: Vec<(u32, V6Key)>,
    pub dst_v4: Vec<(u32, V4Key)>,
    pub dst_v6: Vec<(u32, V6Key)>,
}

impl Entries {
    /// Nothing: a zero policy and no other entry.
    pub fn none() -> Entries {
        Entries {
            policy: IfacePolicy::ZERO,
            pairs: Vec::new(),
            src_v4: Vec::new(),
            src_v6: Vec::new(),
            dst_v4: Vec::new(),
            dst_v6: Vec::new(),
        }
    }
}

pub fn v4_key(ifindex: u32, set: u8, c: &Cidr4) -> (u32, V4Key) {
    (
        OWNER_BITS + u32::from(c.len),
        V4Key {
            ifindex: ifindex.to_ne_bytes(),
            set,
            addr: c.addr.octets(),
        },
    )
}

pub fn v6_key(ifindex: u32, set: u8, c: &Cidr6) -> (u32, V6Key) {
    (
        OWNER_BITS + u32::from(c.len),
        V6Key {
            ifindex: ifindex.to_ne_bytes(),
            set,
            addr: c.addr.octets(),
        },
    )
}

/// Encodes a validated policy for `ifindex`, using counter `slot`.
pub fn encode(p: &Policy, ifindex: u32, slot: u32, events_per_sec: u32) -> Entries {
    let mut v = IfacePolicy::ZERO;
    v.mode = p.mode as u8;
    v.link_local = p.options.link_local as u8;
    v.slot = slot;
    v.events_per_sec = events_per_sec;
    v.learn_grace_s = p.options.learn_grace_s;
    v.flood_pps = p.options.flood_pps;
    let o = &p.options;
    for (on, bit) in [
        (o.dhcp_client, bits::DHCP_CLIENT),
        (o.dhcp_server, bits::DHCP_SERVER),
        (o.router, bits::ROUTER),
        (o.egress_filter, bits::EGRESS_FILTER),
        (!p.pairs.is_empty() || !p.vrrp.is_empty(), bits::PAIRS),
        (!p.dhcp_servers.is_empty(), bits::DHCP_SERVERS),
        (o.learn_dhcp, bits::LEARN_DHCP),
    ] {
        if on {
            v.flags |= bit;
        }
    }
    for (i, et) in o.ethertypes.iter().take(MAX_ETHERTYPES).enumerate() {
        v.ethertypes[i] = et.to_be();
        v.n_ethertypes += 1;
    }

    let mut e = Entries::none();
    v.own = addrs(&mut e, ifindex, p.mac, set::OWN, &p.ipv4, &p.ipv6);
    v.own.ll_derived = p.mac.link_local().octets();

    // Section 3a: each pair and virtual MAC gets its own set, numbered in
    // the policy's order; set PAIRS holds all their addresses for the
    // to-guest direction.
    let mut next_set = set::FIRST_EXTRA;
    let mut all_v4: Vec<Cidr4> = Vec::new();
    let mut all_v6: Vec<Cidr6> = Vec::new();
    for pair in &p.pairs {
        let mut a = addrs(&mut e, ifindex, pair.mac, next_set, &pair.ipv4, &pair.ipv6);
        a.ll_derived = pair.mac.link_local().octets();
        e.pairs.push((pair.mac.0, a));
        next_set += 1;
        all_v4.extend(&pair.ipv4);
        all_v6.extend(&pair.ipv6);
        if p.options.link_local == LinkLocal::Derived {
            all_v6.push(Cidr6::host(pair.mac.link_local()));
        }
    }
    for vrrp in &p.vrrp {
        for (mac, v4, v6) in [
            (vrrp.mac_v4(), &vrrp.ipv4[..], &[][..]),
            (vrrp.mac_v6(), &[][..], &vrrp.ipv6[..]),
        ] {
            if v4.is_empty() && v6.is_empty() {
                continue;
            }
            // No derived link-local address of its own: keepalived gives
            // the virtual interface its parent's, which OWN_TOO allows.
            let mut a = addrs(&mut e, ifindex, mac, next_set, v4, v6);
            a.flags |= addr_flags::OWN_TOO;
            e.pairs.push((mac.0, a));
            next_set += 1;
            all_v4.extend(v4);
            all_v6.extend(v6);
        }
    }
    for c in dedup(&all_v4) {
        e.src_v4.push(v4_key(ifindex, set::PAIRS, &c));
    }
    for c in dedup(&all_v6) {
        e.src_v6.push(v6_key(ifindex, set::PAIRS, &c));
    }
    for server in dedup(&p.dhcp_servers) {
        match server {
            IpAddr::V4(a) => e
                .src_v4
                .push(v4_key(ifindex, set::DHCP_SERVERS, &Cidr4::host(a))),
            IpAddr::V6(a) => e
                .src_v6
                .push(v6_key(ifindex, set::DHCP_SERVERS, &Cidr6::host(a))),
        }
    }

    for d in dedup(&p.destinations) {
        match d {
            Cidr::V4(c) => e.dst_v4.push(v4_key(ifindex, set::OWN, &c)),
            Cidr::V6(c) => e.dst_v6.push(v6_key(ifindex, set::OWN, &c)),
        }
    }
    e.policy = v;
    e
}

/// The addresses of source MAC `mac` under `set`: the first host addresses
/// inline, prefixes and the rest into `e`'s tries.
fn addrs(
    e: &mut Entries,
    ifindex: u32,
    mac: MacAddr,
    set: u8,
    v4: &[Cidr4],
    v6: &[Cidr6],
) -> Addrs {
    let mut a = Addrs::ZERO;
    a.mac = mac.0;
    a.set = set;
    for c in dedup(v4) {
        if c.is_host() && (a.n_ipv4 as usize) < INLINE_V4 {
            a.ipv4[a.n_ipv4 as usize] = c.addr.octets();
            a.n_ipv4 += 1;
        } else {
            e.src_v4.push(v4_key(ifindex, set, &c));
            a.flags |= addr_flags::V4_TRIE;
        }
    }
    for c in dedup(v6) {
        if c.is_host() && (a.n_ipv6 as usize) < INLINE_V6 {
            a.ipv6[a.n_ipv6 as usize] = c.addr.octets();
            a.n_ipv6 += 1;
        } else {
            e.src_v6.push(v6_key(ifindex, set, &c));
            a.flags |= addr_flags::V6_TRIE;
        }
    }
    a
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
    #[error("PAIRS entry {0} is a virtual MAC without OWN_TOO, or OWN_TOO on another MAC")]
    Pair(String),
}

/// The policy `e` holds, as [`encode`] wrote it: each address list holds
/// the inline host addresses first, in their order, then the trie's
/// entries, sorted (a trie does not keep the order they were written in);
/// pairs and VRRP entries in set order; DHCP servers sorted.
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
        learn_dhcp: on(bits::LEARN_DHCP),
        flood_pps: v.flood_pps,
        learn_grace_s: v.learn_grace_s,
    };
    let (ipv4, ipv6) = lists(e, &v.own)?;

    let mut pairs = Vec::new();
    let mut vrrp: Vec<Vrrp> = Vec::new();
    let mut by_set = e.pairs.clone();
    by_set.sort_by_key(|(_, a)| a.set);
    for (mac, a) in &by_set {
        let (v4, v6) = lists(e, a)?;
        let virtual_mac = matches!(mac, [0x00, 0x00, 0x5e, 0x00, 0x01 | 0x02, _]);
        let own_too = a.flags & addr_flags::OWN_TOO != 0;
        if virtual_mac != own_too {
            return Err(DecodeError::Pair(MacAddr(*mac).to_string()));
        }
        if !own_too {
            pairs.push(Pair {
                mac: MacAddr(*mac),
                ipv4: v4,
                ipv6: v6,
            });
            continue;
        }
        let vrid = mac[5];
        let entry = match vrrp.iter_mut().find(|r| r.vrid == vrid) {
            Some(r) => r,
            None => {
                vrrp.push(Vrrp {
                    vrid,
                    ipv4: Vec::new(),
                    ipv6: Vec::new(),
                });
                let last = vrrp.len() - 1;
                &mut vrrp[last]
            }
        };
        entry.ipv4.extend(v4);
        entry.ipv6.extend(v6);
    }

    let mut dhcp_servers: Vec<IpAddr> = sorted(&in_set(&e.src_v4, set::DHCP_SERVERS), v4_cidr)?
        .into_iter()
        .map(|c| IpAddr::V4(c.addr))
        .collect();
    dhcp_servers.extend(
        sorted(&in_set(&e.src_v6, set::DHCP_SERVERS), v6_cidr)?
            .into_iter()
            .map(|c| IpAddr::V6(c.addr)),
    );

    let mut destinations: Vec<Cidr> = sorted(&e.dst_v4, v4_cidr)?
        .into_iter()
        .map(Cidr::V4)
        .collect();
    destinations.extend(sorted(&e.dst_v6, v6_cidr)?.into_iter().map(Cidr::V6));
    Ok(Policy {
        mode,
        mac: MacAddr(v.own.mac),
        ipv4,
        ipv6,
        destinations,
        pairs,
        vrrp,
        dhcp_servers,
        options,
    })
}

/// The IPv4 and IPv6 lists of `a`: inline hosts, then its set's trie
/// entries, sorted.
fn lists(e: &Entries, a: &Addrs) -> Result<(Vec<Cidr4>, Vec<Cidr6>), DecodeError> {
    let mut v4: Vec<Cidr4> = a
        .ipv4
        .iter()
        .take(usize::from(a.n_ipv4))
        .map(|x| Cidr4::host(Ipv4Addr::from(*x)))
        .collect();
    v4.extend(sorted(&in_set(&e.src_v4, a.set), v4_cidr)?);
    let mut v6: Vec<Cidr6> = a
        .ipv6
        .iter()
        .take(usize::from(a.n_ipv6))
        .map(|x| Cidr6::host(Ipv6Addr::from(*x)))
        .collect();
    v6.extend(sorted(&in_set(&e.src_v6, a.set), v6_cidr)?);
    Ok((v4, v6))
}

/// The trie keys of one set.
trait InSet {
    fn set(&self) -> u8;
}

impl InSet for V4Key {
    fn set(&self) -> u8 {
        self.set
    }
}

impl InSet for V6Key {
    fn set(&self) -> u8 {
        self.set
    }
}

fn in_set<K: InSet + Copy>(entries: &[(u32, K)], set: u8) -> Vec<(u32, K)> {
    entries
        .iter()
        .filter(|(_, k)| k.set() == set)
        .copied()
        .collect()
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

/// The prefix length of a trie key without its ifindex and set part.
fn address_bits(len: u32) -> Option<u8> {
    len.checked_sub(OWNER_BITS)
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
        assert_eq!(e.policy.own.n_ipv4, 1, "one distinct host address inline");
        assert_eq!(e.policy.own.ipv4[0], [192, 0, 2, 1]);
        assert_eq!(e.src_v4.len(), 1, "the prefix goes to the trie");
        assert_eq!(e.src_v4[0].0, OWNER_BITS + 24);
        assert_ne!(e.policy.own.flags & addr_flags::V4_TRIE, 0);
        assert_eq!(e.policy.own.flags & addr_flags::V6_TRIE, 0);
    }

    #[test]
    fn hosts_beyond_the_inline_list_overflow_to_the_trie() {
        let mut p = policy();
        p.ipv6 = (1..=10u16)
            .map(|i| format!("2001:db8::{i}").parse().unwrap())
            .collect();
        let e = encode(&p, 7, 3, 20);
        assert_eq!(e.policy.own.n_ipv6 as usize, INLINE_V6);
        assert_eq!(e.src_v6.len(), 10 - INLINE_V6);
        assert!(e.src_v6.iter().all(|(len, _)| *len == OWNER_BITS + 128));
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
        assert_eq!(e.policy.own.ll_derived, p.mac.link_local().octets());
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
        let (_, key) = v4_key(7, set::OWN, &"192.0.2.0/24".parse().unwrap());
        e.src_v4.push((16, key));
        assert!(matches!(decode(&e), Err(DecodeError::TrieKey(_))));
    }

    fn pairs_policy() -> Policy {
        let mut p = policy();
        p.ipv4 = vec!["192.0.2.1".parse().unwrap()];
        p.pairs = vec![Pair {
            mac: "02:16:3e:00:07:09".parse().unwrap(),
            ipv4: vec!["192.0.2.9".parse().unwrap()],
            ipv6: vec!["2001:db8:9::/64".parse().unwrap()],
        }];
        p.vrrp = vec![Vrrp {
            vrid: 7,
            ipv4: vec!["192.0.2.100".parse().unwrap()],
            ipv6: vec!["2001:db8::100".parse().unwrap()],
        }];
        p.dhcp_servers = vec![
            "192.0.2.254".parse().unwrap(),
            "2001:db8::fe".parse().unwrap(),
        ];
        p.validate().unwrap();
        p
    }

    #[test]
    fn pairs_and_virtual_macs_get_sets_of_their_own() {
        let e = encode(&pairs_policy(), 7, 3, 20);
        assert_eq!(e.policy.flags & bits::PAIRS, bits::PAIRS);
        assert_eq!(e.policy.flags & bits::DHCP_SERVERS, bits::DHCP_SERVERS);
        let macs: Vec<String> = e
            .pairs
            .iter()
            .map(|(m, _)| MacAddr(*m).to_string())
            .collect();
        assert_eq!(
            macs,
            [
                "02:16:3e:00:07:09",
                "00:00:5e:00:01:07",
                "00:00:5e:00:02:07"
            ]
        );
        let sets: Vec<u8> = e.pairs.iter().map(|(_, a)| a.set).collect();
        assert_eq!(sets, [1, 2, 3]);
        // The pair: its own host inline, its prefix in its set's trie, its
        // own derived link-local address; not the vif's addresses.
        let (_, pair) = e.pairs[0];
        assert_eq!((pair.n_ipv4, pair.ipv4[0]), (1, [192, 0, 2, 9]));
        assert_eq!(pair.flags, addr_flags::V6_TRIE);
        assert!(
            e.src_v6
                .iter()
                .any(|(len, k)| k.set == 1 && *len == OWNER_BITS + 64)
        );
        assert_eq!(pair.ll_derived, MacAddr(e.pairs[0].0).link_local().octets());
        // The virtual MACs: one family each, and the vif's own addresses.
        let (_, v4) = e.pairs[1];
        assert_eq!((v4.n_ipv4, v4.n_ipv6), (1, 0));
        assert_eq!(v4.flags, addr_flags::OWN_TOO);
        let (_, v6) = e.pairs[2];
        assert_eq!((v6.n_ipv4, v6.n_ipv6), (0, 1));
        // To the guest: every pair and virtual address under set PAIRS,
        // with the pair's derived link-local address.
        let in_pairs_v4 = e.src_v4.iter().filter(|(_, k)| k.set == set::PAIRS).count();
        let in_pairs_v6 = e.src_v6.iter().filter(|(_, k)| k.set == set::PAIRS).count();
        assert_eq!((in_pairs_v4, in_pairs_v6), (2, 3));
        let servers_v4 = e.src_v4.iter().filter(|(_, k)| k.set == set::DHCP_SERVERS);
        let servers_v6 = e.src_v6.iter().filter(|(_, k)| k.set == set::DHCP_SERVERS);
        assert_eq!((servers_v4.count(), servers_v6.count()), (1, 1));
    }

    #[test]
    fn decode_gives_back_pairs_vrrp_and_servers() {
        let p = pairs_policy();
        assert_eq!(decode(&encode(&p, 7, 3, 20)), Ok(p));
    }
}
