//! Deterministic random policies and frames for the differential test
//! (`tests/differential.rs`): the eBPF programs and the reference model
//! must give every frame the same reason.
//!
//! Everything comes from one seeded [`Rng`], so a seed replays a whole run.
//! Policies use documentation addresses (192.0.2.0/24, 198.51.100.0/24,
//! 203.0.113.0/24, 2001:db8::/32, fe80::/64) and frames pick their
//! addresses mostly from the policy's own entries, their neighbours and the
//! special addresses the spec names (0.0.0.0, ::, broadcast, multicast,
//! solicited-node groups, the derived link-local address), so that both
//! "allowed" and "not allowed" come up often. Valid frames of every kind
//! `docs/datapath.md` looks at, some with a trailer after the IP packet or
//! a length field that lies, are then mutated: truncated (with the length
//! field following the cut or not), bit-flipped, stretched past the
//! 512-byte parse window.

use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use filter_common::{Direction, LinkLocal, Mode};
use filter_user::policy::{
    Cidr, Cidr4, Cidr6, MacAddr, Options, Pair, Policy, Vrrp, mask32, mask128,
};

use crate::frames::{
    self, ALL_DHCP_AGENTS, ALL_MLDV2_ROUTERS, ALL_NODES, ALL_ROUTERS, BROADCAST, Eth, Frame, Icmp,
    Ipv4, Ipv6, Mac, arp_op, dhcpv4_discover, dhcpv4_offer, dhcpv4_request, dhcpv6_advertise,
    dhcpv6_solicit, ethertype, icmp6, nd_opt, proto, solicited_node, vrrp_advertisement,
    vrrp_mac_v4, vrrp_mac_v6,
};

/// Frames are never made longer than this (the parse window is 512).
pub const MAX_FRAME: usize = 600;

/// splitmix64: small, fast, good enough, and the same on every machine.
#[derive(Clone, Debug)]
pub struct Rng {
    state: u64,
}

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng { state: seed }
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n`; 0 when `n` is 0.
    pub fn below(&mut self, n: usize) -> usize {
        // Multiply-high: no modulo bias worth speaking of for small n.
        ((u128::from(self.next_u64()) * n as u128) >> 64) as usize
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below(hi.saturating_sub(lo) + 1)
    }

    /// True with probability `p` percent.
    pub fn percent(&mut self, p: usize) -> bool {
        self.below(100) < p
    }

    pub fn u8(&mut self) -> u8 {
        self.next_u64() as u8
    }

    pub fn u16(&mut self) -> u16 {
        self.next_u64() as u16
    }

    /// An element of `items`, which must not be empty.
    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }

    /// An index into `weights`, chosen with probability proportional to
    /// its weight.
    pub fn weighted(&mut self, weights: &[usize]) -> usize {
        let total: usize = weights.iter().sum();
        let mut x = self.below(total);
        for (i, w) in weights.iter().enumerate() {
            if x < *w {
                return i;
            }
            x -= w;
        }
        weights.len().saturating_sub(1)
    }

    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.u8()).collect()
    }
}

// ---------------------------------------------------------------------------
// Policies
// ---------------------------------------------------------------------------

const V4_NETS: [[u8; 3]; 3] = [[192, 0, 2], [198, 51, 100], [203, 0, 113]];

/// The prefix of length `len` that holds `a` (host bits cleared).
pub fn cidr4(a: Ipv4Addr, len: u8) -> Cidr4 {
    Cidr4 {
        addr: Ipv4Addr::from(u32::from(a) & mask32(len)),
        len,
    }
}

/// See [`cidr4`].
pub fn cidr6(a: Ipv6Addr, len: u8) -> Cidr6 {
    Cidr6 {
        addr: Ipv6Addr::from(u128::from(a) & mask128(len)),
        len,
    }
}

/// A low-entropy host octet, so that neighbours collide with entries.
fn small_octet(rng: &mut Rng) -> u8 {
    match rng.weighted(&[70, 10, 10, 10]) {
        0 => rng.below(16) as u8,
        1 => 255,
        2 => 0,
        _ => rng.u8(),
    }
}

fn doc_v4(rng: &mut Rng) -> Ipv4Addr {
    let n = rng.pick(&V4_NETS);
    Ipv4Addr::new(n[0], n[1], n[2], small_octet(rng))
}

fn doc_v6(rng: &mut Rng) -> Ipv6Addr {
    let subnet = rng.below(4) as u16;
    let host = u16::from(small_octet(rng));
    match rng.below(4) {
        0 => Ipv6Addr::new(0x2001, 0xdb8, subnet, 0, 0, 0, 0, host),
        1 => Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, subnet, host),
        2 => Ipv6Addr::new(0x2001, 0xdb8, subnet, 0, 0x0200, 0x5eff, 0xfe00, host),
        _ => Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, subnet, host),
    }
}

/// A unicast MAC, usually a Xen one (00:16:3e) with few distinct values,
/// sometimes a locally administered random one.
pub fn unicast_mac(rng: &mut Rng) -> Mac {
    if rng.percent(80) {
        [
            0x00,
            0x16,
            0x3e,
            0,
            rng.below(3) as u8,
            rng.below(4) as u8 + 1,
        ]
    } else {
        let mut m: Mac = [0; 6];
        m.copy_from_slice(&rng.bytes(6));
        m[0] = (m[0] & 0xfe) | 0x02;
        m
    }
}

fn v4_entry(rng: &mut Rng) -> Cidr4 {
    match rng.weighted(&[62, 32, 6]) {
        0 => Cidr4::host(doc_v4(rng)),
        1 => {
            let len = rng.pick(&[24, 24, 25, 28, 29, 30, 31, 16, 8]);
            cidr4(doc_v4(rng), len)
        }
        _ => rng.pick(&[
            cidr4(Ipv4Addr::UNSPECIFIED, 0),
            Cidr4::host(Ipv4Addr::UNSPECIFIED),
            Cidr4::host(Ipv4Addr::BROADCAST),
            cidr4(Ipv4Addr::new(224, 0, 0, 0), 4),
        ]),
    }
}

fn v6_entry(rng: &mut Rng, mac: Mac) -> Cidr6 {
    match rng.weighted(&[55, 27, 12, 6]) {
        0 => Cidr6::host(doc_v6(rng)),
        1 => {
            let len = rng.pick(&[64, 64, 48, 32, 120, 126, 127, 96]);
            cidr6(doc_v6(rng), len)
        }
        2 => rng.pick(&[
            Cidr6::host(frames::link_local(mac)),
            Cidr6::host(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1)),
            cidr6(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0), 64),
            cidr6(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0), 10),
        ]),
        _ => rng.pick(&[
            cidr6(Ipv6Addr::UNSPECIFIED, 0),
            Cidr6::host(Ipv6Addr::UNSPECIFIED),
            cidr6(Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0), 16),
            Cidr6::host(ALL_NODES),
        ]),
    }
}

fn destination(rng: &mut Rng, mac: Mac) -> Cidr {
    match rng.weighted(&[40, 40, 20]) {
        0 => Cidr::V4(v4_entry(rng)),
        1 => Cidr::V6(v6_entry(rng, mac)),
        _ => rng.pick(&[
            Cidr::V4(Cidr4::host(Ipv4Addr::BROADCAST)),
            Cidr::V4(cidr4(Ipv4Addr::new(224, 0, 0, 0), 4)),
            Cidr::V6(cidr6(Ipv6Addr::new(0xff00, 0, 0, 0, 0, 0, 0, 0), 8)),
            Cidr::V6(Cidr6::host(ALL_DHCP_AGENTS)),
            Cidr::V6(Cidr6::host(ALL_ROUTERS)),
            Cidr::V6(cidr6(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0), 64)),
        ]),
    }
}

/// Extra EtherTypes a policy may list (all >= 0x0600, as validation of
/// configured policies demands); some are dispatched before the list is
/// consulted, which must not matter.
const LISTABLE_ETHERTYPES: [u16; 10] = [
    0x88cc, 0x88b5, 0x88b6, 0x8809, 0x0842, 0x22f0, 0x0600, 0xffff, 0x0806, 0x8100,
];

/// A random valid policy.
pub fn policy(rng: &mut Rng) -> Policy {
    let mode = match rng.weighted(&[44, 44, 6, 6]) {
        0 => Mode::Locked,
        1 => Mode::Isolated,
        2 => Mode::Unlocked,
        _ => Mode::Disabled,
    };
    let mac = unicast_mac(rng);
    let n4 = rng.range(0, 12);
    let ipv4 = (0..n4).map(|_| v4_entry(rng)).collect();
    let n6 = rng.range(0, 12);
    let ipv6 = (0..n6).map(|_| v6_entry(rng, mac)).collect();
    let nd = if mode == Mode::Isolated || rng.percent(20) {
        rng.range(0, 8)
    } else {
        0
    };
    let destinations = (0..nd).map(|_| destination(rng, mac)).collect();
    let n_et = rng.pick(&[0, 0, 0, 1, 2, 3, 8]);
    let ethertypes = (0..n_et)
        .map(|_| {
            if rng.percent(80) {
                rng.pick(&LISTABLE_ETHERTYPES)
            } else {
                0x0600 + rng.below(0x10000 - 0x0600) as u16
            }
        })
        .collect();
    let pairs = pairs(rng, mac);
    let vrrp = vrrp_entries(rng);
    let dhcp_servers = dhcp_servers(rng);
    Policy {
        mode,
        mac: MacAddr(mac),
        ipv4,
        ipv6,
        destinations,
        pairs,
        vrrp,
        dhcp_servers,
        options: Options {
            dhcp_client: rng.percent(70),
            dhcp_server: rng.percent(30),
            router: rng.percent(30),
            link_local: match rng.below(3) {
                0 => LinkLocal::Derived,
                1 => LinkLocal::Any,
                _ => LinkLocal::None,
            },
            egress_filter: rng.percent(85),
            ethertypes,
            // Learning needs state across frames: the sequence tests
            // turn it on (testbed/tests/sequences.rs, random ones too).
            ..Options::default()
        },
    }
}

/// A list of 0 to `max` entries of a pair or VRRP entry, of one family.
fn entry_list<T>(rng: &mut Rng, max: usize, mut one: impl FnMut(&mut Rng) -> T) -> Vec<T> {
    let n = rng.range(0, max);
    (0..n).map(|_| one(rng)).collect()
}

/// 0 to 3 pairs (section 3a) as validation wants them: unicast MACs, not
/// the vif's, none twice, each with at least one address.
fn pairs(rng: &mut Rng, own: Mac) -> Vec<Pair> {
    let n = rng.pick(&[0, 0, 0, 1, 1, 2, 3]);
    let mut pairs: Vec<Pair> = Vec::new();
    for _ in 0..n {
        let mac = unicast_mac(rng);
        if mac == own || pairs.iter().any(|p| p.mac.0 == mac) {
            // Drawn twice: one pair fewer, still valid.
            continue;
        }
        let mut ipv4 = entry_list(rng, 3, v4_entry);
        let ipv6 = entry_list(rng, 3, |rng| v6_entry(rng, mac));
        if ipv4.is_empty() && ipv6.is_empty() {
            ipv4.push(v4_entry(rng));
        }
        pairs.push(Pair {
            mac: MacAddr(mac),
            ipv4,
            ipv6,
        });
    }
    pairs
}

/// A router id, mostly small so that entries and near misses collide.
fn vrid(rng: &mut Rng) -> u8 {
    if rng.percent(80) {
        rng.range(1, 4) as u8
    } else {
        rng.range(1, 255) as u8
    }
}

/// 0 to 2 VRRP entries with distinct router ids, each with virtual
/// addresses of one family or both. Virtual MACs (00:00:5e:...) never
/// collide with the pairs' (00:16:3e:... or locally administered).
fn vrrp_entries(rng: &mut Rng) -> Vec<Vrrp> {
    let n = rng.pick(&[0, 0, 0, 1, 1, 2]);
    let mut entries: Vec<Vrrp> = Vec::new();
    for _ in 0..n {
        let vrid = vrid(rng);
        if entries.iter().any(|v| v.vrid == vrid) {
            continue;
        }
        let (mut ipv4, mut ipv6) = (Vec::new(), Vec::new());
        match rng.below(3) {
            0 => ipv4 = entry_list(rng, 3, v4_entry),
            1 => ipv6 = entry_list(rng, 3, |rng| v6_entry(rng, vrrp_mac_v6(vrid))),
            _ => {
                ipv4 = entry_list(rng, 3, v4_entry);
                ipv6 = entry_list(rng, 3, |rng| v6_entry(rng, vrrp_mac_v6(vrid)));
            }
        }
        if ipv4.is_empty() && ipv6.is_empty() {
            ipv4.push(Cidr4::host(doc_v4(rng)));
        }
        entries.push(Vrrp { vrid, ipv4, ipv6 });
    }
    entries
}

/// 0 to 3 trusted DHCP servers: documentation addresses and link-local
/// ones (DHCPv6 servers answer from theirs).
fn dhcp_servers(rng: &mut Rng) -> Vec<IpAddr> {
    let n = rng.pick(&[0, 0, 0, 1, 1, 2, 3]);
    (0..n)
        .map(|_| match rng.below(3) {
            0 => IpAddr::V4(doc_v4(rng)),
            1 => IpAddr::V6(doc_v6(rng)),
            _ => IpAddr::V6(frames::link_local(unicast_mac(rng))),
        })
        .collect()
}

// ---------------------------------------------------------------------------
// Address pools of one policy
// ---------------------------------------------------------------------------

/// What frames are made of while one policy is in force: the policy's
/// addresses, their neighbours and the special addresses.
struct World {
    mac: Mac,
    /// The guest's other MACs: its pairs' and the virtual MACs in use.
    extra: Vec<Mac>,
    /// Near misses of virtual MACs: other router ids, and the virtual MAC
    /// of a family an entry has no address for.
    near: Vec<Mac>,
    ethertypes: Vec<u16>,
    v4: Vec<Ipv4Addr>,
    v6: Vec<Ipv6Addr>,
    /// The policy's DHCP servers and would-be ones.
    servers4: Vec<Ipv4Addr>,
    servers6: Vec<Ipv6Addr>,
    /// Other guests' MACs: neighbours of `mac` and unrelated ones.
    foreign: Vec<Mac>,
}

fn v4_around(rng: &mut Rng, c: &Cidr4, out: &mut Vec<Ipv4Addr>) {
    let net = u32::from(c.addr);
    let last = net | !mask32(c.len);
    let inside = net | (rng.next_u64() as u32 & !mask32(c.len));
    for a in [net, last, inside, net.wrapping_sub(1), last.wrapping_add(1)] {
        out.push(Ipv4Addr::from(a));
    }
}

fn v6_around(rng: &mut Rng, c: &Cidr6, out: &mut Vec<Ipv6Addr>) {
    let net = u128::from(c.addr);
    let last = net | !mask128(c.len);
    let low = u128::from(rng.next_u64() & 0xff) | (u128::from(rng.next_u64()) << 64);
    let inside = net | (low & !mask128(c.len));
    for a in [
        net,
        last,
        inside,
        net.wrapping_sub(1),
        last.wrapping_add(1),
        net ^ 1 << 64,
    ] {
        out.push(Ipv6Addr::from(a));
    }
    out.push(solicited_node(c.addr));
}

impl World {
    fn new(rng: &mut Rng, p: &Policy) -> World {
        let mac = p.mac.0;
        let mut v4 = vec![
            Ipv4Addr::UNSPECIFIED,
            Ipv4Addr::BROADCAST,
            Ipv4Addr::new(224, 0, 0, 1),
            Ipv4Addr::new(224, 0, 0, 251),
            Ipv4Addr::new(192, 0, 2, 1),
            Ipv4Addr::new(198, 51, 100, 255),
            Ipv4Addr::new(203, 0, 113, 0),
            Ipv4Addr::new(10, 0, 0, 1),
        ];
        let derived = frames::link_local(mac);
        let other = unicast_mac(rng);
        let mut v6 = vec![
            Ipv6Addr::UNSPECIFIED,
            Ipv6Addr::LOCALHOST,
            ALL_NODES,
            ALL_ROUTERS,
            ALL_MLDV2_ROUTERS,
            ALL_DHCP_AGENTS,
            Ipv6Addr::new(0xff05, 0, 0, 0, 0, 0, 1, 3),
            derived,
            solicited_node(derived),
            frames::link_local(other),
            Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1),
            Ipv6Addr::new(0xfe80, 0, 0, 1, 0, 0, 0, 1),
            Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1),
        ];
        for c in &p.ipv4 {
            v4_around(rng, c, &mut v4);
        }
        for c in &p.ipv6 {
            v6_around(rng, c, &mut v6);
        }
        for d in &p.destinations {
            match d {
                Cidr::V4(c) => v4_around(rng, c, &mut v4),
                Cidr::V6(c) => v6_around(rng, c, &mut v6),
            }
        }
        let mut extra = Vec::new();
        for pair in &p.pairs {
            extra.push(pair.mac.0);
            let ll = frames::link_local(pair.mac.0);
            v6.extend([ll, solicited_node(ll)]);
            for c in &pair.ipv4 {
                v4_around(rng, c, &mut v4);
            }
            for c in &pair.ipv6 {
                v6_around(rng, c, &mut v6);
            }
        }
        // Near misses even without entries: the virtual MACs of the small
        // router ids the entries mostly use.
        // Router id 0 is never valid, so its virtual MAC is never in use.
        let mut near = vec![
            vrrp_mac_v4(0),
            vrrp_mac_v4(rng.range(1, 4) as u8),
            vrrp_mac_v6(1),
        ];
        for v in &p.vrrp {
            extra.extend(v.macs().map(|m| m.0));
            let other = v.vrid.wrapping_add(1).max(1);
            near.extend([vrrp_mac_v4(other), vrrp_mac_v6(other)]);
            if v.ipv4.is_empty() {
                near.push(vrrp_mac_v4(v.vrid));
            }
            if v.ipv6.is_empty() {
                near.push(vrrp_mac_v6(v.vrid));
            }
            v6.push(frames::link_local(vrrp_mac_v6(v.vrid)));
            for c in &v.ipv4 {
                v4_around(rng, c, &mut v4);
            }
            for c in &v.ipv6 {
                v6_around(rng, c, &mut v6);
            }
        }
        near.retain(|m| !extra.contains(m));
        let mut servers4 = vec![Ipv4Addr::new(192, 0, 2, 1), doc_v4(rng)];
        let mut servers6 = vec![frames::link_local(other), doc_v6(rng)];
        for s in &p.dhcp_servers {
            match s {
                IpAddr::V4(a) => servers4.extend([*a, *a, Ipv4Addr::from(u32::from(*a) ^ 1)]),
                IpAddr::V6(a) => servers6.extend([*a, *a, Ipv6Addr::from(u128::from(*a) ^ 1)]),
            }
        }
        v4.extend(&servers4);
        v6.extend(&servers6);
        let mut near_own = mac;
        near_own[5] ^= 1;
        let foreign = vec![near_own, other, [0x00, 0x16, 0x3e, 0, 0, 0x99], {
            let mut m = mac;
            m[0] ^= 0x02;
            m
        }];
        World {
            mac,
            extra,
            near,
            ethertypes: p.options.ethertypes.clone(),
            v4,
            v6,
            servers4,
            servers6,
            foreign,
        }
    }

    fn v4(&self, rng: &mut Rng) -> Ipv4Addr {
        match rng.weighted(&[80, 15, 5]) {
            0 => rng.pick(&self.v4),
            1 => doc_v4(rng),
            _ => Ipv4Addr::from(rng.next_u64() as u32),
        }
    }

    fn v6(&self, rng: &mut Rng) -> Ipv6Addr {
        match rng.weighted(&[75, 12, 8, 5]) {
            0 => rng.pick(&self.v6),
            1 => doc_v6(rng),
            2 => solicited_node(self.v6(rng)),
            _ => Ipv6Addr::from(u128::from(rng.next_u64()) << 64 | u128::from(rng.next_u64())),
        }
    }

    fn foreign_mac(&self, rng: &mut Rng) -> Mac {
        if rng.percent(85) {
            rng.pick(&self.foreign)
        } else {
            unicast_mac(rng)
        }
    }

    /// One of the guest's MACs: mostly `mac`, else a pair's or a virtual
    /// one when the policy has them.
    fn guest_mac(&self, rng: &mut Rng) -> Mac {
        if self.extra.is_empty() || rng.percent(55) {
            self.mac
        } else {
            rng.pick(&self.extra)
        }
    }

    /// The MAC an ARP, ND or DHCP message names inside, for a frame from
    /// `src`: mostly `src` itself, else another of the guest's or a
    /// foreign one.
    fn inner_mac(&self, rng: &mut Rng, src: Mac) -> Mac {
        match rng.weighted(&[60, 15, 10, 15]) {
            0 => src,
            1 => self.mac,
            2 => self.guest_mac(rng),
            _ => self.foreign_mac(rng),
        }
    }

    /// A would-be DHCP server's IPv4 address: listed or not.
    fn server4(&self, rng: &mut Rng) -> Ipv4Addr {
        rng.pick(&self.servers4)
    }

    /// See [`World::server4`].
    fn server6(&self, rng: &mut Rng) -> Ipv6Addr {
        rng.pick(&self.servers6)
    }

    /// Any MAC, weighted: the guest's (own, a pair's, a virtual one),
    /// foreign, broadcast, multicast, own with the multicast bit, zero, a
    /// near miss of a virtual MAC.
    fn mac(&self, rng: &mut Rng, own_weight: usize) -> Mac {
        match rng.weighted(&[own_weight, 30, 12, 12, 3, 2, 4]) {
            0 => self.guest_mac(rng),
            1 => self.foreign_mac(rng),
            2 => BROADCAST,
            3 => rng.pick(&[
                [0x33, 0x33, 0, 0, 0, 1],
                [0x33, 0x33, 0xff, 0, 0, 1],
                [0x01, 0x00, 0x5e, 0, 0, 0xfb],
                [0x01, 0x80, 0xc2, 0, 0, 0],
            ]),
            4 => {
                let mut m = self.mac;
                m[0] |= 1;
                m
            }
            5 => [0; 6],
            _ => rng.pick(&self.near),
        }
    }
}

// ---------------------------------------------------------------------------
// Frames
// ---------------------------------------------------------------------------

/// The frame source of a differential run: random policies, and random
/// frames shaped by the current one.
pub struct Gen {
    pub rng: Rng,
    world: World,
    /// Frames already made (a truncation sweep) waiting to be handed out.
    pending: VecDeque<(Direction, Vec<u8>)>,
}

impl Gen {
    pub fn new(seed: u64) -> Gen {
        let mut rng = Rng::new(seed);
        let first = policy(&mut rng);
        let world = World::new(&mut rng, &first);
        Gen {
            rng,
            world,
            pending: VecDeque::new(),
        }
    }

    /// A new random policy; the frames that follow are made for it.
    pub fn policy(&mut self) -> Policy {
        let p = policy(&mut self.rng);
        // The kernel only ever gets validated policies: a frame judged
        // under an invalid one would prove nothing.
        if let Err(e) = p.validate() {
            panic!("the generator made an invalid policy ({e}): {p:?}");
        }
        self.world = World::new(&mut self.rng, &p);
        self.pending.clear();
        p
    }

    /// The next frame and the direction it travels in. Frames are at least
    /// 14 bytes long (BPF_PROG_TEST_RUN refuses shorter ones on every hook)
    /// and at most [`MAX_FRAME`].
    pub fn next_frame(&mut self) -> (Direction, Vec<u8>) {
        if let Some(f) = self.pending.pop_front() {
            return f;
        }
        let rng = &mut self.rng;
        let dir = if rng.percent(55) {
            Direction::FromGuest
        } else {
            Direction::ToGuest
        };
        let mut f = base_frame(rng, &self.world, dir);
        if f.len() > MAX_FRAME {
            // A long chain of extension headers: keep the packet whole.
            f.truncate(MAX_FRAME);
            fit_length_field(&mut f);
        }
        if rng.below(1000) < 4 {
            // Truncation at every offset, half the time with the length
            // field following the cut (a shorter packet, whole).
            let follow = rng.percent(50);
            for len in 14..f.len() {
                let mut cut = f[..len].to_vec();
                if follow {
                    fit_length_field(&mut cut);
                }
                self.pending.push_back((dir, cut));
            }
            return (dir, f);
        }
        mutate(rng, &mut f);
        (dir, f)
    }
}

/// Truncations, flips and stretching of a valid frame.
fn mutate(rng: &mut Rng, f: &mut Vec<u8>) {
    if rng.percent(10) {
        // Flip a few bytes, mostly in the headers.
        for _ in 0..rng.range(1, 4) {
            let span = if rng.percent(80) {
                f.len().min(100)
            } else {
                f.len()
            };
            let at = rng.below(span);
            let x = rng.range(1, 255) as u8;
            if let Some(b) = f.get_mut(at) {
                *b ^= x;
            }
        }
    }
    if rng.percent(8) {
        // Stretch, possibly past the parse window.
        let len = rng.range(f.len(), MAX_FRAME);
        let zeros = rng.percent(50);
        while f.len() < len {
            let b = if zeros { 0 } else { rng.u8() };
            f.push(b);
        }
    }
    if rng.percent(22) {
        let cut = if rng.percent(60) {
            rng.range(14, f.len().min(130))
        } else {
            rng.range(14, f.len())
        };
        f.truncate(cut.max(14));
        if rng.percent(50) {
            fit_length_field(f);
        }
    }
    f.truncate(MAX_FRAME);
    if f.len() < 14 {
        f.resize(14, 0);
    }
}

/// Makes the length field of an untagged IPv4 or IPv6 packet say the frame
/// ends where it does (after a cut): the packet is then whole, only
/// shorter, and its headers are cut where the frame is.
fn fit_length_field(f: &mut [u8]) {
    let len = f.len();
    let (at, value) = match f.get(12..14) {
        Some([0x08, 0x00]) => (16, len.saturating_sub(14)),
        Some([0x86, 0xdd]) => (18, len.saturating_sub(54)),
        _ => return,
    };
    if let Some(field) = f.get_mut(at..at + 2) {
        field.copy_from_slice(&(value as u16).to_be_bytes());
    }
}

/// Bytes after the IP packet (Ethernet padding or any trailer), now and
/// then: no header or ND option may be read from them.
fn maybe_trailer(rng: &mut Rng, eth: Eth) -> Eth {
    if !rng.percent(10) {
        return eth;
    }
    let n = rng.range(1, 24);
    let bytes = if rng.percent(50) {
        vec![0; n]
    } else {
        rng.bytes(n)
    };
    eth.trailer(&bytes)
}

/// Now and then an IPv4 total length that lies: a little or a lot short
/// (it cuts a header, the rest becomes trailer), long (past the frame), or
/// an odd fixed value.
fn lying_total_length(rng: &mut Rng, ip: Ipv4) -> Ipv4 {
    if !rng.percent(12) {
        return ip;
    }
    match rng.weighted(&[30, 15, 25, 10, 20]) {
        0 => ip.total_length_off_by(-(rng.range(1, 8) as i32)),
        1 => ip.total_length_off_by(-(rng.range(9, 300) as i32)),
        2 => ip.total_length_off_by(rng.range(1, 8) as i32),
        3 => ip.total_length_off_by(rng.range(9, 2000) as i32),
        _ => ip.total_length(rng.pick(&[0, 19, 20, 23, 24, 27, 28, 0xffff])),
    }
}

/// The same for the IPv6 payload length.
fn lying_payload_length(rng: &mut Rng, ip: Ipv6) -> Ipv6 {
    if !rng.percent(12) {
        return ip;
    }
    match rng.weighted(&[30, 15, 25, 10, 20]) {
        0 => ip.payload_length_off_by(-(rng.range(1, 8) as i32)),
        1 => ip.payload_length_off_by(-(rng.range(9, 300) as i32)),
        2 => ip.payload_length_off_by(rng.range(1, 8) as i32),
        3 => ip.payload_length_off_by(rng.range(9, 2000) as i32),
        _ => ip.payload_length(rng.pick(&[0, 3, 4, 7, 8, 16, 24, 0xffff])),
    }
}

fn base_frame(rng: &mut Rng, w: &World, dir: Direction) -> Vec<u8> {
    let from_guest = dir == Direction::FromGuest;
    let (src, dst) = if from_guest {
        (w.mac(rng, 600), w.mac(rng, 10))
    } else {
        (w.mac(rng, 10), w.mac(rng, 60))
    };
    let mut eth = Frame::eth(src, dst);
    if rng.percent(6) {
        for _ in 0..rng.range(1, 3) {
            let tpid = rng.pick(&[ethertype::VLAN, ethertype::QINQ, ethertype::QINQ_OLD]);
            eth = eth.tag(tpid, rng.u16());
        }
    }
    if rng.percent(15) {
        eth = eth.padded();
    }
    match rng.weighted(&[13, 4, 28, 45, 8, 2]) {
        0 => arp(rng, w, eth, src),
        1 => rarp(rng, w, eth),
        2 => ipv4(rng, w, eth, dir, src),
        3 => ipv6(rng, w, eth, dir, src),
        4 => other_ethertype(rng, w, eth),
        _ => junk(rng, w),
    }
}

fn arp(rng: &mut Rng, w: &World, eth: Eth, src: Mac) -> Vec<u8> {
    let op = match rng.weighted(&[45, 40, 15]) {
        0 => arp_op::REQUEST,
        1 => arp_op::REPLY,
        _ => {
            let r = rng.u16();
            rng.pick(&[0, 3, 4, 0x0101, r])
        }
    };
    let mut a = eth.arp(op).sha(w.inner_mac(rng, src));
    a = a.spa(w.v4(rng)).tpa(w.v4(rng));
    if op == arp_op::REQUEST && rng.percent(25) {
        // An RFC 5227 probe, for the guest's own address or another's.
        a = a.spa(Ipv4Addr::UNSPECIFIED);
    }
    if rng.percent(30) {
        a = a.tha(w.mac(rng, 30));
    }
    if rng.percent(8) {
        let (r16, r8) = (rng.u16(), rng.u8());
        a = match rng.below(4) {
            0 => a.htype(rng.pick(&[0, 6, r16])),
            1 => a.ptype(rng.pick(&[0x86dd, 0, r16])),
            2 => a.hlen(rng.pick(&[0, 8, r8])),
            _ => a.plen(rng.pick(&[0, 16, r8])),
        };
    }
    let mut f = a.build();
    if rng.percent(10) {
        let n = rng.range(1, 40);
        f.extend(rng.bytes(n));
    }
    f
}

fn rarp(rng: &mut Rng, w: &World, eth: Eth) -> Vec<u8> {
    let mut r = eth.rarp();
    if rng.percent(25) {
        r = r.sha(w.mac(rng, 50));
    }
    if rng.percent(25) {
        r = r.tha(w.mac(rng, 50));
    }
    if rng.percent(20) {
        let op = rng.u16();
        r = r.op(rng.pick(&[arp_op::RARP_REPLY, arp_op::REQUEST, op]));
    }
    if rng.percent(10) {
        r = r.spa(w.v4(rng)).tpa(w.v4(rng));
    }
    r.build()
}

fn udp_ports_v4(rng: &mut Rng) -> (u16, u16) {
    let (a, b) = (rng.u16(), rng.u16());
    rng.pick(&[
        (68, 67),
        (68, 67),
        (67, 68),
        (67, 68),
        (67, 67),
        (68, 68),
        (53, 40000),
        (a, 67),
        (67, b),
        (a, 68),
        (a, 68),
        (a, b),
    ])
}

/// A BOOTP request (DHCP client message) to port 67: the frame's source
/// MAC or another in `chaddr`, now and then another hardware type or
/// length, a message cut short, or another op.
fn dhcp_client_payload(rng: &mut Rng, w: &World, src: Mac) -> Vec<u8> {
    let mac = w.inner_mac(rng, src);
    let xid = rng.next_u64() as u32;
    let mut m = if rng.percent(50) {
        dhcpv4_discover(mac, xid)
    } else {
        dhcpv4_request(mac, xid)
    };
    let r = rng.u8();
    match rng.weighted(&[64, 8, 8, 12, 8]) {
        0 => {}
        1 => m[1] = rng.pick(&[0, 6, r]),
        2 => m[2] = rng.pick(&[0, 16, 7, r]),
        3 => m.truncate(rng.range(0, 40)),
        _ => m[0] = rng.pick(&[2, 0, 3, r]),
    }
    m
}

fn ipv4(rng: &mut Rng, w: &World, eth: Eth, dir: Direction, src_mac: Mac) -> Vec<u8> {
    let eth = maybe_trailer(rng, eth);
    let to_guest = dir == Direction::ToGuest;
    // A DHCP server message to the guest, from a listed server or not,
    // from port 67 or any other.
    if to_guest && rng.percent(12) {
        let server = w.server4(rng);
        let dst = if rng.percent(50) {
            Ipv4Addr::BROADCAST
        } else {
            w.v4(rng)
        };
        let sport = if rng.percent(60) { 67 } else { rng.u16() };
        let offer = dhcpv4_offer(w.guest_mac(rng), rng.next_u64() as u32, dst, server);
        let ip = lying_total_length(rng, eth.ipv4(server, dst));
        return ip.udp(sport, 68).payload(&offer).build();
    }
    // A VRRP advertisement, from the guest's own address or another.
    if !to_guest && rng.percent(5) {
        let group = Ipv4Addr::new(224, 0, 0, 18);
        let vip = w.v4(rng).octets();
        return eth
            .ipv4(w.v4(rng), group)
            .ttl(255)
            .protocol(proto::VRRP)
            .payload(&vrrp_advertisement(vrid(rng), &[&vip]))
            .build();
    }
    let (src, dst) = match rng.weighted(&[75, 10, 15]) {
        0 => (w.v4(rng), w.v4(rng)),
        // The DHCP client bootstrap.
        1 => (Ipv4Addr::UNSPECIFIED, Ipv4Addr::BROADCAST),
        // Towards the guest's own addresses, or from them.
        _ if to_guest => (w.v4(rng), w.v4(rng)),
        _ => (w.v4(rng), Ipv4Addr::BROADCAST),
    };
    let mut ip = eth.ipv4(src, dst).ttl(rng.u8()).ident(rng.u16());
    if rng.percent(12) {
        let n = rng.range(1, 40);
        ip = ip.options(&rng.bytes(n));
    }
    if rng.percent(15) {
        if rng.percent(60) {
            ip = ip.more_fragments();
        }
        if rng.percent(70) {
            ip = ip.fragment_offset(rng.range(1, 0x1fff) as u16);
        }
    }
    if rng.percent(4) {
        ip = ip.ihl(rng.below(16) as u8);
    }
    if rng.percent(3) {
        ip = ip.version(rng.pick(&[0, 6, 5, 15]));
    }
    ip = lying_total_length(rng, ip);
    let payload_len = if rng.percent(10) {
        rng.range(0, 500)
    } else {
        rng.range(0, 24)
    };
    match rng.weighted(&[50, 20, 15, 15]) {
        0 => {
            let (sport, dport) = udp_ports_v4(rng);
            let payload = match (sport, dport) {
                (_, 67) if rng.percent(75) => dhcp_client_payload(rng, w, src_mac),
                (_, 68) if rng.percent(60) => {
                    dhcpv4_offer(w.guest_mac(rng), rng.next_u64() as u32, w.v4(rng), src)
                }
                _ => rng.bytes(payload_len),
            };
            ip.udp(sport, dport).payload(&payload).build()
        }
        1 => {
            // Echo, Redirect (a router's message), and other types.
            let r = rng.u8();
            let ty = rng.pick(&[8, 8, 0, 5, 5, 3, 11, r]);
            ip.icmp(ty, rng.below(4) as u8)
                .data(&rng.bytes(payload_len))
                .build()
        }
        2 => ip
            .protocol(proto::TCP)
            .payload(&rng.bytes(payload_len))
            .build(),
        _ => ip
            .protocol(rng.u8())
            .payload(&rng.bytes(payload_len))
            .build(),
    }
}

/// Up to ten extension headers of every kind the walk skips, including
/// oversized ones that push the upper layer past the parse window, first
/// and non-first fragments, AH, and a lying length byte now and then.
fn extension_chain(rng: &mut Rng, mut ip: Ipv6) -> Ipv6 {
    let n = match rng.weighted(&[50, 32, 12, 6]) {
        0 => 0,
        1 => rng.range(1, 3),
        2 => rng.range(4, 8),
        _ => rng.range(8, 10),
    };
    for _ in 0..n {
        ip = match rng.weighted(&[20, 15, 20, 15, 15, 10, 5]) {
            0 => ip.hop_by_hop(),
            1 => ip.routing(),
            2 => {
                let units = if rng.percent(15) {
                    rng.range(20, 62)
                } else {
                    rng.range(1, 4)
                };
                let kind = rng.pick(&[proto::DEST_OPTS, proto::HOP_BY_HOP, proto::ROUTING]);
                ip.ext_sized(kind, 8 * units)
            }
            3 => {
                let offset = if rng.percent(60) {
                    0
                } else {
                    rng.range(1, 0x1fff) as u16
                };
                ip.fragment(offset, rng.percent(50))
            }
            4 => {
                if rng.percent(50) {
                    ip.ah()
                } else {
                    ip.ext_sized(proto::AH, 4 * (rng.range(0, 12) + 2))
                }
            }
            5 => {
                // A length byte that disagrees with the body that follows.
                let kind = rng.pick(&[
                    proto::DEST_OPTS,
                    proto::HOP_BY_HOP,
                    proto::AH,
                    proto::FRAGMENT,
                    proto::ROUTING,
                ]);
                let n = rng.pick(&[0, 2, 6, 14]);
                let body = rng.bytes(n);
                ip.ext_raw(kind, rng.u8(), &body)
            }
            _ => ip.router_alert(),
        };
    }
    ip
}

fn ipv6(rng: &mut Rng, w: &World, eth: Eth, dir: Direction, src_mac: Mac) -> Vec<u8> {
    let eth = maybe_trailer(rng, eth);
    let kind = rng.weighted(&[48, 10, 20, 8, 6, 4, 4]);
    // ND: sources and destinations as ND uses them.
    let target = w.v6(rng);
    let (src, dst) = if kind == 0 && rng.percent(25) {
        // Duplicate address detection.
        let dst = if rng.percent(80) {
            solicited_node(target)
        } else {
            w.v6(rng)
        };
        (Ipv6Addr::UNSPECIFIED, dst)
    } else if kind == 1 && rng.percent(35) {
        (Ipv6Addr::UNSPECIFIED, w.v6(rng))
    } else if kind == 2 && rng.percent(40) && dir == Direction::FromGuest {
        (w.v6(rng), ALL_DHCP_AGENTS)
    } else if kind == 2 && rng.percent(50) && dir == Direction::ToGuest {
        // A DHCPv6 server message, from a listed server or not.
        (w.server6(rng), w.v6(rng))
    } else {
        (w.v6(rng), w.v6(rng))
    };
    let mut ip = eth.ipv6(src, dst);
    if rng.percent(20) {
        ip = ip.traffic_class(rng.u8()).flow_label(rng.next_u64() as u32);
    }
    if rng.percent(3) {
        ip = ip.version(rng.pick(&[0, 4, 7, 15]));
    }
    if rng.percent(8) {
        // A large first header: what follows ends near the parse window.
        let kind = rng.pick(&[proto::DEST_OPTS, proto::HOP_BY_HOP, proto::ROUTING]);
        ip = ip.ext_sized(kind, 8 * rng.range(38, 57));
    }
    ip = extension_chain(rng, ip);
    ip = lying_payload_length(rng, ip);
    let hop_limit = rng.pick(&[255, 255, 255, 255, 64, 1, 254, 0]);
    let payload_len = if rng.percent(10) {
        rng.range(0, 500)
    } else {
        rng.range(0, 24)
    };
    match kind {
        0 => nd_message(rng, w, ip, target, hop_limit, src_mac),
        1 => {
            let group = w.v6(rng);
            let m = match rng.below(4) {
                0 => ip.mld_report(group),
                1 => ip.mldv2_report(&[group, solicited_node(w.v6(rng))]),
                2 => ip
                    .icmpv6(icmp6::MLD_QUERY, 0)
                    .data(&[0; 4])
                    .data(&group.octets()),
                _ => ip
                    .icmpv6(icmp6::MLD_DONE, 0)
                    .data(&[0; 4])
                    .data(&group.octets()),
            };
            m.hop_limit(hop_limit).build()
        }
        2 => {
            let (a, b) = (rng.u16(), rng.u16());
            let (sport, dport) = rng.pick(&[
                (546, 547),
                (546, 547),
                (547, 546),
                (547, 546),
                (547, 547),
                (546, 546),
                (53, 40000),
                (a, 547),
                (547, b),
                (a, 546),
                (a, 546),
                (a, b),
            ]);
            let payload = match (sport, dport) {
                (546, 547) => dhcpv6_solicit(w.inner_mac(rng, src_mac), rng.next_u64() as u32),
                (_, 546) => dhcpv6_advertise(
                    w.guest_mac(rng),
                    w.foreign_mac(rng),
                    rng.u16().into(),
                    w.v6(rng),
                ),
                _ => rng.bytes(payload_len),
            };
            ip.hop_limit(hop_limit)
                .udp(sport, dport)
                .payload(&payload)
                .build()
        }
        3 => ip
            .hop_limit(hop_limit)
            .echo_request(rng.u16(), rng.u16())
            .data(&rng.bytes(payload_len))
            .build(),
        4 => ip
            .hop_limit(hop_limit)
            .icmpv6(rng.u8(), rng.u8())
            .data(&rng.bytes(payload_len))
            .build(),
        5 => ip.hop_limit(hop_limit).build(),
        _ => {
            let other_proto = rng.u8();
            ip.hop_limit(hop_limit)
                .protocol(rng.pick(&[proto::TCP, proto::ICMP, other_proto]))
                .payload(&rng.bytes(payload_len))
                .build()
        }
    }
}

fn nd_message(
    rng: &mut Rng,
    w: &World,
    ip: Ipv6,
    target: Ipv6Addr,
    hop_limit: u8,
    src_mac: Mac,
) -> Vec<u8> {
    let m = match rng.weighted(&[15, 15, 30, 30, 10]) {
        0 => ip.router_solicitation(),
        1 => ip.router_advertisement(),
        2 => ip.neighbor_solicitation(target),
        3 => ip.neighbor_advertisement(target, rng.u8() & 0xe0),
        _ => ip.redirect(target, w.v6(rng)),
    };
    let m = if rng.percent(85) {
        m
    } else {
        m.hop_limit(hop_limit)
    };
    nd_options(rng, w, m, src_mac).build()
}

/// ND options; the link-layer addresses mostly name `src_mac`, the
/// frame's source.
fn nd_options(rng: &mut Rng, w: &World, mut m: Icmp<Ipv6>, src_mac: Mac) -> Icmp<Ipv6> {
    let n = match rng.weighted(&[33, 33, 14, 10, 10]) {
        0 => 0,
        1 => 1,
        2 => 2,
        3 => rng.range(3, 6),
        // Around MAX_ND_OPTS (16).
        _ => rng.range(15, 18),
    };
    for _ in 0..n {
        m = match rng.weighted(&[20, 10, 15, 8, 6, 5, 8, 6, 8, 6, 4]) {
            0 => m.slla(w.inner_mac(rng, src_mac)),
            1 => m.slla(w.foreign_mac(rng)),
            2 => m.tlla(w.inner_mac(rng, src_mac)),
            3 => m.tlla(w.foreign_mac(rng)),
            4 => {
                // A link-layer address option of 16 bytes (length 2).
                let ty = rng.pick(&[nd_opt::SOURCE_LL, nd_opt::TARGET_LL]);
                let mac = if rng.percent(50) {
                    w.mac
                } else {
                    w.foreign_mac(rng)
                };
                let mut data = mac.to_vec();
                data.extend_from_slice(&[0; 8]);
                m.raw_option(ty, 2, &data)
            }
            5 => {
                // Length 0: malformed, whatever follows.
                let ty = rng.pick(&[nd_opt::SOURCE_LL, nd_opt::TARGET_LL, nd_opt::MTU]);
                m.raw_option(ty, 0, &w.mac)
            }
            6 => m.mtu(1500),
            7 => m.prefix_info(
                Ipv6Addr::new(0x2001, 0xdb8, rng.below(4) as u16, 0, 0, 0, 0, 0),
                64,
            ),
            8 => {
                let n = rng.range(0, 22);
                m.option(rng.u8(), &rng.bytes(n))
            }
            9 => {
                // A length byte that disagrees with the data after it.
                let n = rng.range(0, 14);
                m.raw_option(rng.u8(), rng.range(1, 70) as u8, &rng.bytes(n))
            }
            _ => m.option(14, &rng.bytes(6)),
        };
    }
    m
}

fn other_ethertype(rng: &mut Rng, w: &World, eth: Eth) -> Vec<u8> {
    let et = if !w.ethertypes.is_empty() && rng.percent(35) {
        rng.pick(&w.ethertypes)
    } else {
        let r = rng.u16();
        rng.pick(&[
            ethertype::LLDP,
            0x88b5,
            0x88b6,
            0x8809,
            0x0842,
            0x22f0,
            0x0026,
            0x05dc,
            0x0600,
            0x05ff,
            0xffff,
            0x0000,
            r,
        ])
    };
    let n = rng.range(0, 64);
    eth.ethertype(et).payload(&rng.bytes(n)).build()
}

/// Random bytes, sometimes with a plausible Ethernet header in front.
fn junk(rng: &mut Rng, w: &World) -> Vec<u8> {
    let n = rng.range(14, MAX_FRAME);
    let mut f = rng.bytes(n);
    if rng.percent(60) {
        f[6..12].copy_from_slice(&w.mac);
        let et = rng.pick(&[
            ethertype::IPV4,
            ethertype::IPV6,
            ethertype::ARP,
            ethertype::RARP,
        ]);
        f[12..14].copy_from_slice(&et.to_be_bytes());
        if rng.percent(50) {
            f[0..6].copy_from_slice(&w.mac);
        }
        if f.len() >= 54 && et == ethertype::IPV6 && rng.percent(70) {
            f[14] = 0x60 | (f[14] & 0x0f);
            f[20] = rng.pick(&[proto::ICMPV6, proto::UDP, 0, 44, 51, 60]);
        }
        if f.len() >= 34 && et == ethertype::IPV4 && rng.percent(70) {
            f[14] = 0x45;
        }
    }
    f
}

/// Lower-case hex of `bytes`, for failure messages.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Parses [`hex`] output (whitespace ignored), for regression cases.
pub fn unhex(s: &str) -> Option<Vec<u8>> {
    let digits: Vec<u8> = s.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    if !digits.len().is_multiple_of(2) {
        return None;
    }
    digits
        .chunks(2)
        .map(|pair| {
            let s = std::str::from_utf8(pair).ok()?;
            u8::from_str_radix(s, 16).ok()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_frames() {
        let mut a = Gen::new(42);
        let mut b = Gen::new(42);
        assert_eq!(a.policy(), b.policy());
        for _ in 0..1000 {
            assert_eq!(a.next_frame(), b.next_frame());
        }
    }

    #[test]
    fn policies_validate_and_frames_stay_in_bounds() {
        let mut g = Gen::new(7);
        for _ in 0..200 {
            let p = g.policy();
            p.validate().expect("generated policies are valid");
            for _ in 0..50 {
                let (_, f) = g.next_frame();
                assert!((14..=MAX_FRAME).contains(&f.len()), "{}", f.len());
            }
        }
    }

    #[test]
    fn a_cut_packet_can_be_made_whole() {
        let mut f = Frame::eth([0, 0x16, 0x3e, 0, 0, 1], BROADCAST)
            .ipv4(Ipv4Addr::new(192, 0, 2, 1), Ipv4Addr::BROADCAST)
            .udp(68, 67)
            .payload(&[0; 40])
            .build();
        f.truncate(50);
        fit_length_field(&mut f);
        assert_eq!(u16::from_be_bytes([f[16], f[17]]), 36);
        let mut f = Frame::eth([0, 0x16, 0x3e, 0, 0, 1], BROADCAST)
            .ipv6(Ipv6Addr::LOCALHOST, ALL_NODES)
            .udp(1, 2)
            .payload(&[0; 40])
            .build();
        f.truncate(60);
        fit_length_field(&mut f);
        assert_eq!(u16::from_be_bytes([f[18], f[19]]), 6);
    }

    #[test]
    fn hex_round_trips() {
        let b = [0u8, 1, 0xab, 0xff];
        assert_eq!(unhex(&hex(&b)), Some(b.to_vec()));
        assert_eq!(unhex("0"), None);
    }
}
