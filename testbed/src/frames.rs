//! Real wire frames for tests, built like a description of the frame:
//!
//! ```
//! use std::net::Ipv4Addr;
//! use testbed::frames::{BROADCAST, Frame, dhcpv4_discover};
//!
//! let guest = [0x00, 0x16, 0x3e, 0x12, 0x34, 0x56];
//! let frame = Frame::eth(guest, BROADCAST)
//!     .ipv4(Ipv4Addr::UNSPECIFIED, Ipv4Addr::BROADCAST)
//!     .udp(68, 67)
//!     .payload(&dhcpv4_discover(guest, 0x1234_5678))
//!     .build();
//! assert_eq!(&frame[12..14], &[0x08, 0x00]);
//! ```
//!
//! Every layer starts with sensible defaults (TTL 64, ARP for Ethernet and
//! IPv4, ND messages with hop limit 255, ...) that setters override, so a
//! test only spells out what it is about. Lengths and checksums (IPv4
//! header, UDP, ICMP, ICMPv6, with the pseudo-header where the protocol has
//! one) are computed at `build()`. Setters that make a frame malformed on
//! purpose (`ihl`, `version`, `ext_raw`, `raw_option`, ...) write exactly
//! what they are given. Frames carry no FCS and are not padded to the
//! 60-byte minimum unless asked ([`Eth::padded`]).

use std::net::{Ipv4Addr, Ipv6Addr};

/// An Ethernet address as its six wire bytes.
pub type Mac = [u8; 6];

/// ff:ff:ff:ff:ff:ff.
pub const BROADCAST: Mac = [0xff; 6];

/// EtherTypes.
pub mod ethertype {
    pub const IPV4: u16 = 0x0800;
    pub const ARP: u16 = 0x0806;
    pub const RARP: u16 = 0x8035;
    pub const IPV6: u16 = 0x86dd;
    /// 802.1Q C-tag.
    pub const VLAN: u16 = 0x8100;
    /// 802.1ad S-tag.
    pub const QINQ: u16 = 0x88a8;
    /// Pre-standard QinQ.
    pub const QINQ_OLD: u16 = 0x9100;
    pub const LLDP: u16 = 0x88cc;
}

/// IP protocol numbers and IPv6 extension header types.
pub mod proto {
    pub const HOP_BY_HOP: u8 = 0;
    pub const ICMP: u8 = 1;
    pub const TCP: u8 = 6;
    pub const UDP: u8 = 17;
    pub const ROUTING: u8 = 43;
    pub const FRAGMENT: u8 = 44;
    pub const AH: u8 = 51;
    pub const ICMPV6: u8 = 58;
    pub const NO_NEXT_HEADER: u8 = 59;
    pub const DEST_OPTS: u8 = 60;
    pub const VRRP: u8 = 112;
}

/// ARP opcodes.
pub mod arp_op {
    pub const REQUEST: u16 = 1;
    pub const REPLY: u16 = 2;
    pub const RARP_REQUEST: u16 = 3;
    pub const RARP_REPLY: u16 = 4;
}

/// ICMPv6 types.
pub mod icmp6 {
    pub const ECHO_REQUEST: u8 = 128;
    pub const ECHO_REPLY: u8 = 129;
    pub const MLD_QUERY: u8 = 130;
    pub const MLD_REPORT: u8 = 131;
    pub const MLD_DONE: u8 = 132;
    pub const ROUTER_SOLICITATION: u8 = 133;
    pub const ROUTER_ADVERTISEMENT: u8 = 134;
    pub const NEIGHBOR_SOLICITATION: u8 = 135;
    pub const NEIGHBOR_ADVERTISEMENT: u8 = 136;
    pub const REDIRECT: u8 = 137;
    pub const MLDV2_REPORT: u8 = 143;
}

/// Neighbor Discovery option types (RFC 4861 4.6).
pub mod nd_opt {
    pub const SOURCE_LL: u8 = 1;
    pub const TARGET_LL: u8 = 2;
    pub const PREFIX_INFO: u8 = 3;
    pub const REDIRECTED_HEADER: u8 = 4;
    pub const MTU: u8 = 5;
}

/// Neighbor Advertisement flags (RFC 4861 4.4).
pub mod na_flags {
    pub const ROUTER: u8 = 0x80;
    pub const SOLICITED: u8 = 0x40;
    pub const OVERRIDE: u8 = 0x20;
}

/// ff02::1, all nodes.
pub const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
/// ff02::2, all routers.
pub const ALL_ROUTERS: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 2);
/// ff02::16, where MLDv2 reports go.
pub const ALL_MLDV2_ROUTERS: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x16);
/// ff02::1:2, all DHCPv6 relay agents and servers.
pub const ALL_DHCP_AGENTS: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 1, 2);

/// 224.0.0.18, where VRRP advertisements go (RFC 9568 5.1.1.2).
pub const VRRP_V4_GROUP: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 18);
/// ff02::12, the same for IPv6.
pub const VRRP_V6_GROUP: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12);

/// The virtual MAC of IPv4 VRRP router `vrid`, 00:00:5e:00:01:VRID
/// (RFC 9568 7.3).
pub fn vrrp_mac_v4(vrid: u8) -> Mac {
    [0x00, 0x00, 0x5e, 0x00, 0x01, vrid]
}

/// The virtual MAC of IPv6 VRRP router `vrid`, 00:00:5e:00:02:VRID.
pub fn vrrp_mac_v6(vrid: u8) -> Mac {
    [0x00, 0x00, 0x5e, 0x00, 0x02, vrid]
}

/// A VRRPv3 advertisement (RFC 9568 5.1, the IP payload, protocol 112)
/// of router `vrid` for `addrs`, each given as its wire bytes (4 for
/// IPv4, 16 for IPv6). Priority 100, interval 1 s; the checksum is left
/// zero (nothing on the path checks it).
pub fn vrrp_advertisement(vrid: u8, addrs: &[&[u8]]) -> Vec<u8> {
    let mut m = vec![0x31, vrid, 100, addrs.len() as u8, 0x00, 100, 0, 0];
    for a in addrs {
        m.extend_from_slice(a);
    }
    m
}

/// The solicited-node group of `a`, ff02::1:ffXX:XXXX (RFC 4291 2.7.1).
pub fn solicited_node(a: Ipv6Addr) -> Ipv6Addr {
    let o = a.octets();
    let mut g = [0u8; 16];
    g[..2].copy_from_slice(&[0xff, 0x02]);
    g[11..13].copy_from_slice(&[0x01, 0xff]);
    g[13..].copy_from_slice(&o[13..]);
    Ipv6Addr::from(g)
}

/// The Ethernet address an IPv6 multicast group maps to, 33:33 and the
/// group's last four bytes (RFC 2464 7).
pub fn ipv6_multicast_mac(group: Ipv6Addr) -> Mac {
    let o = group.octets();
    [0x33, 0x33, o[12], o[13], o[14], o[15]]
}

/// The Ethernet address an IPv4 multicast group maps to, 01:00:5e and the
/// group's low 23 bits (RFC 1112 6.4).
pub fn ipv4_multicast_mac(group: Ipv4Addr) -> Mac {
    let o = group.octets();
    [0x01, 0x00, 0x5e, o[1] & 0x7f, o[2], o[3]]
}

/// The link-local address a guest derives from its MAC (modified EUI-64).
pub fn link_local(mac: Mac) -> Ipv6Addr {
    Ipv6Addr::from([
        0xfe,
        0x80,
        0,
        0,
        0,
        0,
        0,
        0,
        mac[0] ^ 0x02,
        mac[1],
        mac[2],
        0xff,
        0xfe,
        mac[3],
        mac[4],
        mac[5],
    ])
}

/// The Internet checksum (RFC 1071) of the concatenation of `parts`: the
/// one's complement of the one's complement sum of 16-bit words. Each part
/// but the last must have an even length.
pub fn internet_checksum(parts: &[&[u8]]) -> u16 {
    let mut sum: u64 = 0;
    for part in parts {
        for pair in part.chunks(2) {
            let hi = pair.first().copied().unwrap_or(0);
            let lo = pair.get(1).copied().unwrap_or(0);
            sum += u64::from(u16::from_be_bytes([hi, lo]));
        }
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    // The loop leaves at most 16 bits.
    !(sum as u16)
}

/// What an IP length field (IPv4 total length, IPv6 payload length) is
/// written as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum LengthField {
    /// What the packet really holds.
    Real,
    /// This value, whatever the packet holds.
    Exactly(u16),
    /// The real value plus this (wrapping to 16 bits): a field that lies
    /// by a known amount.
    OffBy(i32),
}

impl LengthField {
    fn write(self, real: usize) -> u16 {
        match self {
            LengthField::Real => real as u16,
            LengthField::Exactly(v) => v,
            LengthField::OffBy(d) => (real as i64 + i64::from(d)) as u16,
        }
    }
}

/// Starting point of every frame.
pub struct Frame;

impl Frame {
    /// An Ethernet frame from `src` to `dst`; the EtherType comes from the
    /// layer chosen next.
    pub fn eth(src: Mac, dst: Mac) -> Eth {
        Eth {
            src,
            dst,
            tags: Vec::new(),
            pad: false,
            trailer: Vec::new(),
        }
    }
}

/// An Ethernet header, optionally with VLAN tags.
#[derive(Clone, Debug)]
pub struct Eth {
    src: Mac,
    dst: Mac,
    /// (TPID, TCI), outermost first.
    tags: Vec<(u16, u16)>,
    pad: bool,
    /// Bytes after the packet that no length field counts.
    trailer: Vec<u8>,
}

impl Eth {
    /// Adds an 802.1Q tag (TPID 0x8100) with VLAN id `vid` after the tags
    /// added so far.
    pub fn vlan(self, vid: u16) -> Eth {
        self.tag(ethertype::VLAN, vid)
    }

    /// Adds an 802.1ad service tag (TPID 0x88a8), usually the outer one.
    pub fn qinq(self, vid: u16) -> Eth {
        self.tag(ethertype::QINQ, vid)
    }

    /// Adds a tag with any TPID (e.g. 0x9100) and TCI.
    pub fn tag(mut self, tpid: u16, tci: u16) -> Eth {
        self.tags.push((tpid, tci));
        self
    }

    /// Pads the frame with zeros to the 60-byte Ethernet minimum, as a NIC
    /// would on the wire.
    pub fn padded(mut self) -> Eth {
        self.pad = true;
        self
    }

    /// Appends `bytes` after the packet: an Ethernet trailer, outside what
    /// the IP length fields count (before any padding).
    pub fn trailer(mut self, bytes: &[u8]) -> Eth {
        self.trailer.extend_from_slice(bytes);
        self
    }

    /// Any EtherType with an opaque payload (see [`RawEth::payload`]).
    pub fn ethertype(self, ethertype: u16) -> RawEth {
        RawEth {
            eth: self,
            ethertype,
            payload: Vec::new(),
        }
    }

    /// An ARP packet (Ethernet/IPv4, opcode `op`); the sender hardware
    /// address defaults to the Ethernet source, addresses to zero.
    pub fn arp(self, op: u16) -> Arp {
        let sha = self.src;
        Arp {
            eth: self,
            ethertype: ethertype::ARP,
            htype: 1,
            ptype: ethertype::IPV4,
            hlen: 6,
            plen: 4,
            op,
            sha,
            spa: Ipv4Addr::UNSPECIFIED,
            tha: [0; 6],
            tpa: Ipv4Addr::UNSPECIFIED,
        }
    }

    /// A RARP packet as a migrated guest announces itself (what QEMU and
    /// Xen send): reverse request, sender and target hardware address both
    /// the Ethernet source, protocol addresses zero.
    pub fn rarp(self) -> Arp {
        let mac = self.src;
        let mut arp = self.arp(arp_op::RARP_REQUEST);
        arp.ethertype = ethertype::RARP;
        arp.tha = mac;
        arp
    }

    /// An IPv4 packet from `src` to `dst`.
    pub fn ipv4(self, src: Ipv4Addr, dst: Ipv4Addr) -> Ipv4 {
        Ipv4 {
            eth: self,
            src,
            dst,
            version: 4,
            ihl: None,
            tos: 0,
            ident: 0,
            dont_fragment: false,
            more_fragments: false,
            fragment_offset: 0,
            ttl: 64,
            options: Vec::new(),
            total_len: LengthField::Real,
        }
    }

    /// An IPv6 packet from `src` to `dst`.
    pub fn ipv6(self, src: Ipv6Addr, dst: Ipv6Addr) -> Ipv6 {
        Ipv6 {
            eth: self,
            src,
            dst,
            version: 6,
            traffic_class: 0,
            flow_label: 0,
            hop_limit: 64,
            exts: Vec::new(),
            payload_len: LengthField::Real,
        }
    }

    /// The frame around an L3 payload of type `ethertype`.
    fn finish(self, ethertype: u16, payload: &[u8]) -> Vec<u8> {
        let mut f = Vec::with_capacity(18 + 4 * self.tags.len() + payload.len());
        f.extend_from_slice(&self.dst);
        f.extend_from_slice(&self.src);
        for (tpid, tci) in &self.tags {
            f.extend_from_slice(&tpid.to_be_bytes());
            f.extend_from_slice(&tci.to_be_bytes());
        }
        f.extend_from_slice(&ethertype.to_be_bytes());
        f.extend_from_slice(payload);
        f.extend_from_slice(&self.trailer);
        if self.pad && f.len() < 60 {
            f.resize(60, 0);
        }
        f
    }
}

/// A frame of any EtherType with an opaque payload.
#[derive(Clone, Debug)]
pub struct RawEth {
    eth: Eth,
    ethertype: u16,
    payload: Vec<u8>,
}

impl RawEth {
    /// Appends `bytes` to the payload.
    pub fn payload(mut self, bytes: &[u8]) -> RawEth {
        self.payload.extend_from_slice(bytes);
        self
    }

    pub fn build(self) -> Vec<u8> {
        self.eth.finish(self.ethertype, &self.payload)
    }
}

/// An ARP or RARP packet. The wire layout is always the Ethernet/IPv4 one
/// (6-byte hardware, 4-byte protocol addresses), whatever `hlen` and `plen`
/// say, so that a test can lie in those fields.
#[derive(Clone, Debug)]
pub struct Arp {
    eth: Eth,
    ethertype: u16,
    htype: u16,
    ptype: u16,
    hlen: u8,
    plen: u8,
    op: u16,
    sha: Mac,
    spa: Ipv4Addr,
    tha: Mac,
    tpa: Ipv4Addr,
}

impl Arp {
    pub fn htype(mut self, htype: u16) -> Arp {
        self.htype = htype;
        self
    }

    pub fn ptype(mut self, ptype: u16) -> Arp {
        self.ptype = ptype;
        self
    }

    pub fn hlen(mut self, hlen: u8) -> Arp {
        self.hlen = hlen;
        self
    }

    pub fn plen(mut self, plen: u8) -> Arp {
        self.plen = plen;
        self
    }

    pub fn op(mut self, op: u16) -> Arp {
        self.op = op;
        self
    }

    /// Sender hardware address.
    pub fn sha(mut self, sha: Mac) -> Arp {
        self.sha = sha;
        self
    }

    /// Sender protocol address.
    pub fn spa(mut self, spa: Ipv4Addr) -> Arp {
        self.spa = spa;
        self
    }

    /// Target hardware address.
    pub fn tha(mut self, tha: Mac) -> Arp {
        self.tha = tha;
        self
    }

    /// Target protocol address.
    pub fn tpa(mut self, tpa: Ipv4Addr) -> Arp {
        self.tpa = tpa;
        self
    }

    pub fn build(self) -> Vec<u8> {
        let mut p = Vec::with_capacity(28);
        p.extend_from_slice(&self.htype.to_be_bytes());
        p.extend_from_slice(&self.ptype.to_be_bytes());
        p.push(self.hlen);
        p.push(self.plen);
        p.extend_from_slice(&self.op.to_be_bytes());
        p.extend_from_slice(&self.sha);
        p.extend_from_slice(&self.spa.octets());
        p.extend_from_slice(&self.tha);
        p.extend_from_slice(&self.tpa.octets());
        self.eth.finish(self.ethertype, &p)
    }
}

/// Where a transport checksum goes and what it covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Checksum {
    /// No checksum (opaque payloads).
    None,
    /// At this offset of the upper-layer message, over the message only
    /// (ICMP for IPv4).
    Plain(usize),
    /// At this offset, over the IP pseudo-header and the message (UDP,
    /// ICMPv6).
    Pseudo(usize),
    /// Like `Pseudo`, but a result of zero is sent as 0xffff (UDP: zero
    /// means "no checksum").
    PseudoNonZero(usize),
}

/// An IP layer that can carry an upper-layer message: [`Ipv4`] or
/// [`Ipv6`]. Upper layers ([`Udp`], [`Icmp`], [`Opaque`]) are generic over
/// it.
pub trait Network: Sized {
    /// The protocol number of this family's ICMP.
    const ICMP: u8;

    /// Serialises the whole frame around `message` (the upper-layer header
    /// and payload, with a zero checksum field) of protocol `proto`,
    /// filling in the checksum as `checksum` says.
    fn finish(self, proto: u8, message: Vec<u8>, checksum: Checksum) -> Vec<u8>;
}

/// Writes the checksum of `message` (with `pseudo` in front where the
/// protocol has a pseudo-header) into its field.
fn fill_checksum(message: &mut [u8], pseudo: &[u8], checksum: Checksum) {
    let (at, sum) = match checksum {
        Checksum::None => return,
        Checksum::Plain(at) => (at, internet_checksum(&[message])),
        Checksum::Pseudo(at) => (at, internet_checksum(&[pseudo, message])),
        Checksum::PseudoNonZero(at) => {
            let sum = internet_checksum(&[pseudo, message]);
            (at, if sum == 0 { 0xffff } else { sum })
        }
    };
    if let Some(field) = message.get_mut(at..at + 2) {
        field.copy_from_slice(&sum.to_be_bytes());
    }
}

/// An IPv4 header.
#[derive(Clone, Debug)]
pub struct Ipv4 {
    eth: Eth,
    src: Ipv4Addr,
    dst: Ipv4Addr,
    version: u8,
    ihl: Option<u8>,
    tos: u8,
    ident: u16,
    dont_fragment: bool,
    more_fragments: bool,
    fragment_offset: u16,
    ttl: u8,
    options: Vec<u8>,
    total_len: LengthField,
}

impl Ipv4 {
    pub fn ttl(mut self, ttl: u8) -> Ipv4 {
        self.ttl = ttl;
        self
    }

    pub fn tos(mut self, tos: u8) -> Ipv4 {
        self.tos = tos;
        self
    }

    pub fn ident(mut self, ident: u16) -> Ipv4 {
        self.ident = ident;
        self
    }

    /// Sets the DF flag.
    pub fn dont_fragment(mut self) -> Ipv4 {
        self.dont_fragment = true;
        self
    }

    /// Sets the MF flag: a fragment with more to follow.
    pub fn more_fragments(mut self) -> Ipv4 {
        self.more_fragments = true;
        self
    }

    /// The fragment offset in 8-byte units (13 bits); non-zero makes a
    /// non-first fragment.
    pub fn fragment_offset(mut self, units: u16) -> Ipv4 {
        self.fragment_offset = units & 0x1fff;
        self
    }

    /// IP options, zero-padded (end of options) to a multiple of 4 bytes;
    /// the IHL grows to cover them.
    pub fn options(mut self, options: &[u8]) -> Ipv4 {
        self.options = options.to_vec();
        let padded = self.options.len().div_ceil(4) * 4;
        self.options.resize(padded, 0);
        self
    }

    /// Writes `ihl` into the IHL field, whatever the header really holds.
    pub fn ihl(mut self, ihl: u8) -> Ipv4 {
        self.ihl = Some(ihl & 0x0f);
        self
    }

    /// Writes `len` into the total length field, whatever the packet
    /// really holds.
    pub fn total_length(mut self, len: u16) -> Ipv4 {
        self.total_len = LengthField::Exactly(len);
        self
    }

    /// Writes the real total length plus `delta` (wrapping to 16 bits).
    pub fn total_length_off_by(mut self, delta: i32) -> Ipv4 {
        self.total_len = LengthField::OffBy(delta);
        self
    }

    /// Writes `version` into the version field.
    pub fn version(mut self, version: u8) -> Ipv4 {
        self.version = version & 0x0f;
        self
    }

    /// A UDP datagram from port `sport` to `dport`.
    pub fn udp(self, sport: u16, dport: u16) -> Udp<Ipv4> {
        Udp::new(self, sport, dport)
    }

    /// An ICMP message of `ty` and `code`; the rest of the message is
    /// appended with [`Icmp::data`].
    pub fn icmp(self, ty: u8, code: u8) -> Icmp<Ipv4> {
        Icmp::new(self, ty, code)
    }

    /// An ICMP echo request (ping).
    pub fn icmp_echo_request(self, id: u16, seq: u16) -> Icmp<Ipv4> {
        self.icmp(8, 0)
            .data(&id.to_be_bytes())
            .data(&seq.to_be_bytes())
    }

    /// Any protocol with an opaque payload (a non-first fragment, TCP, ...).
    pub fn protocol(self, proto: u8) -> Opaque<Ipv4> {
        Opaque::new(self, proto)
    }
}

impl Network for Ipv4 {
    const ICMP: u8 = proto::ICMP;

    fn finish(self, proto: u8, mut message: Vec<u8>, checksum: Checksum) -> Vec<u8> {
        let header_len = 20 + self.options.len();
        let ihl = self.ihl.unwrap_or((header_len / 4) as u8);
        let total_len = self.total_len.write(header_len + message.len());
        let flags_frag = (u16::from(self.dont_fragment) << 14)
            | (u16::from(self.more_fragments) << 13)
            | self.fragment_offset;
        let mut h = Vec::with_capacity(header_len);
        h.push((self.version << 4) | ihl);
        h.push(self.tos);
        h.extend_from_slice(&total_len.to_be_bytes());
        h.extend_from_slice(&self.ident.to_be_bytes());
        h.extend_from_slice(&flags_frag.to_be_bytes());
        h.push(self.ttl);
        h.push(proto);
        h.extend_from_slice(&[0, 0]);
        h.extend_from_slice(&self.src.octets());
        h.extend_from_slice(&self.dst.octets());
        h.extend_from_slice(&self.options);
        let header_sum = internet_checksum(&[&h]);
        h[10..12].copy_from_slice(&header_sum.to_be_bytes());

        let mut pseudo = Vec::with_capacity(12);
        pseudo.extend_from_slice(&self.src.octets());
        pseudo.extend_from_slice(&self.dst.octets());
        pseudo.extend_from_slice(&[0, proto]);
        pseudo.extend_from_slice(&(message.len() as u16).to_be_bytes());
        fill_checksum(&mut message, &pseudo, checksum);

        h.extend_from_slice(&message);
        self.eth.finish(ethertype::IPV4, &h)
    }
}

/// One IPv6 extension header, as written: next header is filled in at
/// build time, `len_byte` and `body` are as given.
#[derive(Clone, Debug)]
struct ExtHeader {
    kind: u8,
    len_byte: u8,
    body: Vec<u8>,
}

/// An IPv6 header and its extension headers, in the order added.
#[derive(Clone, Debug)]
pub struct Ipv6 {
    eth: Eth,
    src: Ipv6Addr,
    dst: Ipv6Addr,
    version: u8,
    traffic_class: u8,
    flow_label: u32,
    hop_limit: u8,
    exts: Vec<ExtHeader>,
    payload_len: LengthField,
}

impl Ipv6 {
    pub fn hop_limit(mut self, hop_limit: u8) -> Ipv6 {
        self.hop_limit = hop_limit;
        self
    }

    pub fn traffic_class(mut self, traffic_class: u8) -> Ipv6 {
        self.traffic_class = traffic_class;
        self
    }

    pub fn flow_label(mut self, flow_label: u32) -> Ipv6 {
        self.flow_label = flow_label & 0xf_ffff;
        self
    }

    /// Writes `len` into the payload length field, whatever the packet
    /// really holds.
    pub fn payload_length(mut self, len: u16) -> Ipv6 {
        self.payload_len = LengthField::Exactly(len);
        self
    }

    /// Writes the real payload length plus `delta` (wrapping to 16 bits).
    pub fn payload_length_off_by(mut self, delta: i32) -> Ipv6 {
        self.payload_len = LengthField::OffBy(delta);
        self
    }

    /// Writes `version` into the version field.
    pub fn version(mut self, version: u8) -> Ipv6 {
        self.version = version & 0x0f;
        self
    }

    /// An 8-byte hop-by-hop options header (padding only).
    pub fn hop_by_hop(self) -> Ipv6 {
        self.ext_sized(proto::HOP_BY_HOP, 8)
    }

    /// A hop-by-hop header with the Router Alert option (RFC 2711), value
    /// 0 (MLD), as MLD messages carry.
    pub fn router_alert(self) -> Ipv6 {
        // Router Alert (type 5, length 2, value 0), then PadN of 2 bytes.
        self.ext_raw(proto::HOP_BY_HOP, 0, &[5, 2, 0, 0, 1, 0])
    }

    /// An 8-byte routing header (type 0, segments left 0: nothing to do).
    pub fn routing(self) -> Ipv6 {
        self.ext_sized(proto::ROUTING, 8)
    }

    /// An 8-byte destination options header (padding only).
    pub fn dest_opts(self) -> Ipv6 {
        self.ext_sized(proto::DEST_OPTS, 8)
    }

    /// A destination options header of `total` bytes (a multiple of 8,
    /// 8..=2048), all padding: to push later headers far into the frame.
    pub fn dest_opts_sized(self, total: usize) -> Ipv6 {
        self.ext_sized(proto::DEST_OPTS, total)
    }

    /// A fragment header: offset in 8-byte units, M flag, identification
    /// 0x0000abcd. Offset 0 is a first fragment, with the upper-layer
    /// header after it.
    pub fn fragment(self, offset_units: u16, more: bool) -> Ipv6 {
        let off_flags = ((offset_units & 0x1fff) << 3) | u16::from(more);
        let mut body = off_flags.to_be_bytes().to_vec();
        body.extend_from_slice(&0x0000_abcd_u32.to_be_bytes());
        self.ext_raw(proto::FRAGMENT, 0, &body)
    }

    /// An authentication header of 24 bytes (SPI 0x100, sequence 1, a
    /// 96-bit ICV of zeros): payload length byte 4.
    pub fn ah(self) -> Ipv6 {
        let mut body = vec![0, 0];
        body.extend_from_slice(&0x100_u32.to_be_bytes());
        body.extend_from_slice(&1_u32.to_be_bytes());
        body.extend_from_slice(&[0; 12]);
        self.ext_raw(proto::AH, 4, &body)
    }

    /// An extension header of type `kind` and `total` bytes, with the
    /// length byte its type's rule gives (8-byte units minus one; AH:
    /// 4-byte units minus two) and a zero body (Pad1 options for
    /// hop-by-hop and destination options).
    pub fn ext_sized(self, kind: u8, total: usize) -> Ipv6 {
        let len_byte = if kind == proto::AH {
            (total / 4).saturating_sub(2)
        } else {
            (total / 8).saturating_sub(1)
        };
        let body = vec![0; total.saturating_sub(2)];
        self.ext_raw(kind, len_byte as u8, &body)
    }

    /// An extension header written as given: type `kind` (so the previous
    /// header's next-header field names it), length byte `len_byte`, then
    /// `body`, whether or not they agree.
    pub fn ext_raw(mut self, kind: u8, len_byte: u8, body: &[u8]) -> Ipv6 {
        self.exts.push(ExtHeader {
            kind,
            len_byte,
            body: body.to_vec(),
        });
        self
    }

    /// A UDP datagram from port `sport` to `dport`.
    pub fn udp(self, sport: u16, dport: u16) -> Udp<Ipv6> {
        Udp::new(self, sport, dport)
    }

    /// An ICMPv6 message of `ty` and `code`; the rest of the message is
    /// appended with [`Icmp::data`] and [`Icmp::option`].
    pub fn icmpv6(self, ty: u8, code: u8) -> Icmp<Ipv6> {
        Icmp::new(self, ty, code)
    }

    /// An ICMPv6 echo request (ping).
    pub fn echo_request(self, id: u16, seq: u16) -> Icmp<Ipv6> {
        self.icmpv6(icmp6::ECHO_REQUEST, 0)
            .data(&id.to_be_bytes())
            .data(&seq.to_be_bytes())
    }

    /// ND messages: hop limit 255 as RFC 4861 requires (override with
    /// [`Icmp::hop_limit`]), options added with [`Icmp::slla`] and friends.
    fn nd(self, ty: u8) -> Icmp<Ipv6> {
        self.hop_limit(255).icmpv6(ty, 0)
    }

    /// Router Solicitation (133): 4 reserved bytes.
    pub fn router_solicitation(self) -> Icmp<Ipv6> {
        self.nd(icmp6::ROUTER_SOLICITATION).data(&[0; 4])
    }

    /// Router Advertisement (134): cur hop limit 64, no flags, router
    /// lifetime 1800 s, reachable time and retrans timer unspecified.
    pub fn router_advertisement(self) -> Icmp<Ipv6> {
        self.nd(icmp6::ROUTER_ADVERTISEMENT)
            .data(&[64, 0])
            .data(&1800_u16.to_be_bytes())
            .data(&[0; 8])
    }

    /// Neighbor Solicitation (135) for `target`.
    pub fn neighbor_solicitation(self, target: Ipv6Addr) -> Icmp<Ipv6> {
        self.nd(icmp6::NEIGHBOR_SOLICITATION)
            .data(&[0; 4])
            .data(&target.octets())
    }

    /// Neighbor Advertisement (136) for `target`, with [`na_flags`].
    pub fn neighbor_advertisement(self, target: Ipv6Addr, flags: u8) -> Icmp<Ipv6> {
        self.nd(icmp6::NEIGHBOR_ADVERTISEMENT)
            .data(&[flags, 0, 0, 0])
            .data(&target.octets())
    }

    /// Redirect (137): use `target` as the next hop towards `destination`.
    pub fn redirect(self, target: Ipv6Addr, destination: Ipv6Addr) -> Icmp<Ipv6> {
        self.nd(icmp6::REDIRECT)
            .data(&[0; 4])
            .data(&target.octets())
            .data(&destination.octets())
    }

    /// MLDv1 report (131) for `group`: hop limit 1 and a Router Alert
    /// hop-by-hop header in front of the other extension headers, as RFC
    /// 2710 requires.
    pub fn mld_report(self, group: Ipv6Addr) -> Icmp<Ipv6> {
        self.for_mld()
            .icmpv6(icmp6::MLD_REPORT, 0)
            .data(&[0; 4])
            .data(&group.octets())
    }

    /// MLDv2 report (143) joining each of `groups` (records of type 4,
    /// CHANGE_TO_EXCLUDE_MODE, no sources); hop limit 1 and Router Alert
    /// as for [`Ipv6::mld_report`].
    pub fn mldv2_report(self, groups: &[Ipv6Addr]) -> Icmp<Ipv6> {
        let mut icmp = self
            .for_mld()
            .icmpv6(icmp6::MLDV2_REPORT, 0)
            .data(&[0, 0])
            .data(&(groups.len() as u16).to_be_bytes());
        for g in groups {
            icmp = icmp.data(&[4, 0, 0, 0]).data(&g.octets());
        }
        icmp
    }

    fn for_mld(mut self) -> Ipv6 {
        self.exts.insert(
            0,
            ExtHeader {
                kind: proto::HOP_BY_HOP,
                len_byte: 0,
                body: vec![5, 2, 0, 0, 1, 0],
            },
        );
        self.hop_limit(1)
    }

    /// Any protocol with an opaque payload.
    pub fn protocol(self, proto: u8) -> Opaque<Ipv6> {
        Opaque::new(self, proto)
    }

    /// The packet with nothing after the extension headers (next header
    /// 59, "no next header").
    pub fn build(self) -> Vec<u8> {
        self.finish(proto::NO_NEXT_HEADER, Vec::new(), Checksum::None)
    }
}

impl Network for Ipv6 {
    const ICMP: u8 = proto::ICMPV6;

    fn finish(self, proto: u8, mut message: Vec<u8>, checksum: Checksum) -> Vec<u8> {
        // Each header names the one after it; the last names `proto`.
        let mut chain = Vec::new();
        let kinds = self.exts.iter().skip(1).map(|e| e.kind).chain([proto]);
        for (ext, next) in self.exts.iter().zip(kinds) {
            chain.push(next);
            chain.push(ext.len_byte);
            chain.extend_from_slice(&ext.body);
        }
        let first = self.exts.first().map_or(proto, |e| e.kind);

        // The pseudo-header has the final destination (no routing header
        // here ever has segments left) and the upper-layer length.
        let mut pseudo = Vec::with_capacity(40);
        pseudo.extend_from_slice(&self.src.octets());
        pseudo.extend_from_slice(&self.dst.octets());
        pseudo.extend_from_slice(&(message.len() as u32).to_be_bytes());
        pseudo.extend_from_slice(&[0, 0, 0, proto]);
        fill_checksum(&mut message, &pseudo, checksum);

        let payload_len = self.payload_len.write(chain.len() + message.len());
        let vtf = (u32::from(self.version) << 28)
            | (u32::from(self.traffic_class) << 20)
            | self.flow_label;
        let mut p = Vec::with_capacity(40 + payload_len as usize);
        p.extend_from_slice(&vtf.to_be_bytes());
        p.extend_from_slice(&payload_len.to_be_bytes());
        p.push(first);
        p.push(self.hop_limit);
        p.extend_from_slice(&self.src.octets());
        p.extend_from_slice(&self.dst.octets());
        p.extend_from_slice(&chain);
        p.extend_from_slice(&message);
        self.eth.finish(ethertype::IPV6, &p)
    }
}

/// A UDP datagram over IPv4 or IPv6.
#[derive(Clone, Debug)]
pub struct Udp<N> {
    net: N,
    sport: u16,
    dport: u16,
    payload: Vec<u8>,
}

impl<N: Network> Udp<N> {
    fn new(net: N, sport: u16, dport: u16) -> Udp<N> {
        Udp {
            net,
            sport,
            dport,
            payload: Vec::new(),
        }
    }

    /// Appends `bytes` to the payload.
    pub fn payload(mut self, bytes: &[u8]) -> Udp<N> {
        self.payload.extend_from_slice(bytes);
        self
    }

    pub fn build(self) -> Vec<u8> {
        let len = (8 + self.payload.len()) as u16;
        let mut m = Vec::with_capacity(usize::from(len));
        m.extend_from_slice(&self.sport.to_be_bytes());
        m.extend_from_slice(&self.dport.to_be_bytes());
        m.extend_from_slice(&len.to_be_bytes());
        m.extend_from_slice(&[0, 0]);
        m.extend_from_slice(&self.payload);
        self.net.finish(proto::UDP, m, Checksum::PseudoNonZero(6))
    }
}

/// An ICMP (IPv4) or ICMPv6 message: type, code, checksum, then whatever
/// [`Icmp::data`] and the option helpers append.
#[derive(Clone, Debug)]
pub struct Icmp<N> {
    net: N,
    ty: u8,
    code: u8,
    body: Vec<u8>,
}

impl<N: Network> Icmp<N> {
    fn new(net: N, ty: u8, code: u8) -> Icmp<N> {
        Icmp {
            net,
            ty,
            code,
            body: Vec::new(),
        }
    }

    /// Appends `bytes` to the message.
    pub fn data(mut self, bytes: &[u8]) -> Icmp<N> {
        self.body.extend_from_slice(bytes);
        self
    }

    pub fn build(self) -> Vec<u8> {
        let mut m = vec![self.ty, self.code, 0, 0];
        m.extend_from_slice(&self.body);
        let checksum = if N::ICMP == proto::ICMPV6 {
            Checksum::Pseudo(2)
        } else {
            Checksum::Plain(2)
        };
        self.net.finish(N::ICMP, m, checksum)
    }
}

impl Icmp<Ipv6> {
    /// Overrides the IPv6 hop limit (ND messages default to 255).
    pub fn hop_limit(mut self, hop_limit: u8) -> Icmp<Ipv6> {
        self.net.hop_limit = hop_limit;
        self
    }

    /// Appends an ND option of type `ty` holding `data`, zero-padded to a
    /// multiple of 8 bytes with the length byte to match.
    pub fn option(self, ty: u8, data: &[u8]) -> Icmp<Ipv6> {
        let units = (2 + data.len()).div_ceil(8);
        let mut bytes = data.to_vec();
        bytes.resize(8 * units - 2, 0);
        self.raw_option(ty, units as u8, &bytes)
    }

    /// Appends an ND option written as given: type, length byte (8-byte
    /// units), then `data`, whether or not they agree.
    pub fn raw_option(self, ty: u8, len_byte: u8, data: &[u8]) -> Icmp<Ipv6> {
        self.data(&[ty, len_byte]).data(data)
    }

    /// Source link-layer address option (type 1, length 1).
    pub fn slla(self, mac: Mac) -> Icmp<Ipv6> {
        self.option(nd_opt::SOURCE_LL, &mac)
    }

    /// Target link-layer address option (type 2, length 1).
    pub fn tlla(self, mac: Mac) -> Icmp<Ipv6> {
        self.option(nd_opt::TARGET_LL, &mac)
    }

    /// MTU option (type 5, length 1).
    pub fn mtu(self, mtu: u32) -> Icmp<Ipv6> {
        let mut data = vec![0, 0];
        data.extend_from_slice(&mtu.to_be_bytes());
        self.option(nd_opt::MTU, &data)
    }

    /// Prefix information option (type 3, length 4): on-link and
    /// autonomous, valid 1 day, preferred 4 hours.
    pub fn prefix_info(self, prefix: Ipv6Addr, len: u8) -> Icmp<Ipv6> {
        let mut data = vec![len, 0xc0];
        data.extend_from_slice(&86_400_u32.to_be_bytes());
        data.extend_from_slice(&14_400_u32.to_be_bytes());
        data.extend_from_slice(&[0; 4]);
        data.extend_from_slice(&prefix.octets());
        self.option(nd_opt::PREFIX_INFO, &data)
    }
}

/// Any upper-layer protocol with an opaque payload and no checksum filled
/// in: non-first fragments, TCP segments nobody looks into, ...
#[derive(Clone, Debug)]
pub struct Opaque<N> {
    net: N,
    proto: u8,
    payload: Vec<u8>,
}

impl<N: Network> Opaque<N> {
    fn new(net: N, proto: u8) -> Opaque<N> {
        Opaque {
            net,
            proto,
            payload: Vec::new(),
        }
    }

    /// Appends `bytes` to the payload.
    pub fn payload(mut self, bytes: &[u8]) -> Opaque<N> {
        self.payload.extend_from_slice(bytes);
        self
    }

    pub fn build(self) -> Vec<u8> {
        self.net.finish(self.proto, self.payload, Checksum::None)
    }
}

// ---------------------------------------------------------------------------
// DHCP payloads
// ---------------------------------------------------------------------------

/// DHCP message types (option 53).
pub const DHCPDISCOVER: u8 = 1;
const DHCPOFFER: u8 = 2;
pub const DHCPREQUEST: u8 = 3;
const DHCPACK: u8 = 5;

/// A BOOTP header (RFC 2131 2) with the DHCP magic cookie, before options.
fn bootp(op: u8, xid: u32, client: Mac, yiaddr: Ipv4Addr, siaddr: Ipv4Addr) -> Vec<u8> {
    let mut m = vec![op, 1, 6, 0];
    m.extend_from_slice(&xid.to_be_bytes());
    m.extend_from_slice(&[0, 0]); // secs
    m.extend_from_slice(&0x8000_u16.to_be_bytes()); // flags: broadcast
    m.extend_from_slice(&Ipv4Addr::UNSPECIFIED.octets()); // ciaddr
    m.extend_from_slice(&yiaddr.octets());
    m.extend_from_slice(&siaddr.octets());
    m.extend_from_slice(&Ipv4Addr::UNSPECIFIED.octets()); // giaddr
    m.extend_from_slice(&client); // chaddr, padded to 16
    m.extend_from_slice(&[0; 10]);
    m.extend_from_slice(&[0; 64]); // sname
    m.extend_from_slice(&[0; 128]); // file
    m.extend_from_slice(&[99, 130, 83, 99]); // magic cookie
    m
}

/// A DHCPDISCOVER from `client` (the UDP payload, port 68 -> 67):
/// message type and a parameter request list (subnet mask, router, DNS).
pub fn dhcpv4_discover(client: Mac, xid: u32) -> Vec<u8> {
    let mut m = bootp(1, xid, client, Ipv4Addr::UNSPECIFIED, Ipv4Addr::UNSPECIFIED);
    m.extend_from_slice(&[53, 1, DHCPDISCOVER]);
    m.extend_from_slice(&[55, 3, 1, 3, 6]);
    m.push(255);
    m
}

/// A DHCPREQUEST from `client` (the UDP payload, port 68 -> 67): message
/// type only, as a renewal sends it.
pub fn dhcpv4_request(client: Mac, xid: u32) -> Vec<u8> {
    let mut m = bootp(1, xid, client, Ipv4Addr::UNSPECIFIED, Ipv4Addr::UNSPECIFIED);
    m.extend_from_slice(&[53, 1, DHCPREQUEST]);
    m.push(255);
    m
}

/// A DHCPOFFER from `server` of `yiaddr` to `client` (the UDP payload,
/// port 67 -> 68): message type, server identifier, lease time 1 h,
/// subnet mask /24.
pub fn dhcpv4_offer(client: Mac, xid: u32, yiaddr: Ipv4Addr, server: Ipv4Addr) -> Vec<u8> {
    dhcpv4_server_reply(DHCPOFFER, client, xid, yiaddr, server)
}

/// Any DHCP message (the UDP payload): BOOTP `op` from or to `client`,
/// with `ciaddr` and `yiaddr`, the magic cookie, `options` as (code,
/// data) in that order, and the end option.
pub fn dhcpv4(
    op: u8,
    client: Mac,
    ciaddr: Ipv4Addr,
    yiaddr: Ipv4Addr,
    options: &[(u8, &[u8])],
) -> Vec<u8> {
    let mut m = bootp(op, 1, client, yiaddr, Ipv4Addr::UNSPECIFIED);
    m[12..16].copy_from_slice(&ciaddr.octets());
    for (code, data) in options {
        m.push(*code);
        if *code != 0 {
            m.push(u8::try_from(data.len()).expect("a DHCP option holds at most 255 bytes"));
            m.extend_from_slice(data);
        }
    }
    m.push(255);
    m
}

/// A DHCPACK, otherwise as [`dhcpv4_offer`].
pub fn dhcpv4_ack(client: Mac, xid: u32, yiaddr: Ipv4Addr, server: Ipv4Addr) -> Vec<u8> {
    dhcpv4_server_reply(DHCPACK, client, xid, yiaddr, server)
}

fn dhcpv4_server_reply(
    msg_type: u8,
    client: Mac,
    xid: u32,
    yiaddr: Ipv4Addr,
    server: Ipv4Addr,
) -> Vec<u8> {
    let mut m = bootp(2, xid, client, yiaddr, server);
    m.extend_from_slice(&[53, 1, msg_type]);
    m.extend_from_slice(&[54, 4]);
    m.extend_from_slice(&server.octets());
    m.extend_from_slice(&[51, 4]);
    m.extend_from_slice(&3600_u32.to_be_bytes());
    m.extend_from_slice(&[1, 4, 255, 255, 255, 0]);
    m.push(255);
    m
}

/// A DHCP client message (BOOTP op 1) in an Ethernet frame carrying IPv4
/// and UDP to port 67: its transaction id, `chaddr` and message type
/// (option 53). `None` for anything else.
pub fn parse_dhcpv4_client_message(frame: &[u8]) -> Option<(u32, Mac, u8)> {
    if frame.get(12..14)? != ethertype::IPV4.to_be_bytes() || *frame.get(23)? != proto::UDP {
        return None;
    }
    let l4 = 14 + 4 * usize::from(frame.get(14)? & 0x0f);
    if frame.get(l4 + 2..l4 + 4)? != 67_u16.to_be_bytes() {
        return None;
    }
    let bootp = frame.get(l4 + 8..)?;
    if *bootp.first()? != 1 {
        return None;
    }
    let xid = u32::from_be_bytes(bootp.get(4..8)?.try_into().ok()?);
    let chaddr: Mac = bootp.get(28..34)?.try_into().ok()?;
    let mut options = bootp.get(240..)?;
    loop {
        match *options.first()? {
            0 => options = &options[1..],
            255 => return None,
            code => {
                let len = usize::from(*options.get(1)?);
                if code == 53 && len == 1 {
                    return Some((xid, chaddr, *options.get(2)?));
                }
                options = options.get(2 + len..)?;
            }
        }
    }
}

/// A DHCPv6 option (RFC 8415 21.1).
fn dhcpv6_option(code: u16, data: &[u8]) -> Vec<u8> {
    let mut o = code.to_be_bytes().to_vec();
    o.extend_from_slice(&(data.len() as u16).to_be_bytes());
    o.extend_from_slice(data);
    o
}

/// A DUID-LL (type 3, hardware type 1) of `mac`.
fn duid_ll(mac: Mac) -> Vec<u8> {
    let mut d = vec![0, 3, 0, 1];
    d.extend_from_slice(&mac);
    d
}

/// The DHCPv6 message header: type, 24-bit transaction id.
fn dhcpv6_header(msg_type: u8, xid: u32) -> Vec<u8> {
    let x = xid.to_be_bytes();
    vec![msg_type, x[1], x[2], x[3]]
}

/// A DHCPv6 SOLICIT from `client` (the UDP payload, port 546 -> 547 to
/// ff02::1:2): client identifier, elapsed time, an empty IA_NA (IAID 1).
pub fn dhcpv6_solicit(client: Mac, xid: u32) -> Vec<u8> {
    let mut m = dhcpv6_header(1, xid);
    m.extend(dhcpv6_option(1, &duid_ll(client)));
    m.extend(dhcpv6_option(8, &[0, 0]));
    let mut ia_na = 1_u32.to_be_bytes().to_vec();
    ia_na.extend_from_slice(&[0; 8]); // T1, T2
    m.extend(dhcpv6_option(3, &ia_na));
    m
}

/// A DHCPv6 ADVERTISE from `server` offering `addr` to `client` (the UDP
/// payload, port 547 -> 546): client and server identifiers and an IA_NA
/// (IAID 1) holding the address, preferred 1 h, valid 2 h.
pub fn dhcpv6_advertise(client: Mac, server: Mac, xid: u32, addr: Ipv6Addr) -> Vec<u8> {
    let mut m = dhcpv6_header(2, xid);
    m.extend(dhcpv6_option(1, &duid_ll(client)));
    m.extend(dhcpv6_option(2, &duid_ll(server)));
    let mut ia_addr = addr.octets().to_vec();
    ia_addr.extend_from_slice(&3600_u32.to_be_bytes());
    ia_addr.extend_from_slice(&7200_u32.to_be_bytes());
    let mut ia_na = 1_u32.to_be_bytes().to_vec();
    ia_na.extend_from_slice(&1800_u32.to_be_bytes());
    ia_na.extend_from_slice(&2880_u32.to_be_bytes());
    ia_na.extend(dhcpv6_option(5, &ia_addr));
    m.extend(dhcpv6_option(3, &ia_na));
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    const GUEST: Mac = [0x00, 0x16, 0x3e, 0x12, 0x34, 0x56];
    const ROUTER: Mac = [0x00, 0x16, 0x3e, 0x00, 0x00, 0x01];

    fn v4(s: &str) -> Ipv4Addr {
        s.parse().expect("IPv4 literal")
    }

    fn v6(s: &str) -> Ipv6Addr {
        s.parse().expect("IPv6 literal")
    }

    /// A checksum over data that includes a correct checksum is zero.
    fn verifies(parts: &[&[u8]]) -> bool {
        internet_checksum(parts) == 0
    }

    fn ipv6_pseudo(frame: &[u8], proto: u8, l4: usize) -> Vec<u8> {
        let mut p = frame[22..54].to_vec();
        p.extend_from_slice(&((frame.len() - l4) as u32).to_be_bytes());
        p.extend_from_slice(&[0, 0, 0, proto]);
        p
    }

    #[test]
    fn checksum_matches_rfc1071_example() {
        // RFC 1071 4.1: the sum of these words is 0xddf2, so the checksum
        // is its complement.
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(internet_checksum(&[&data]), !0xddf2);
    }

    #[test]
    fn dhcp_discover_has_valid_ipv4_and_udp_checksums() {
        let f = Frame::eth(GUEST, BROADCAST)
            .ipv4(Ipv4Addr::UNSPECIFIED, Ipv4Addr::BROADCAST)
            .udp(68, 67)
            .payload(&dhcpv4_discover(GUEST, 7))
            .build();
        assert_eq!(&f[12..14], &[0x08, 0x00]);
        assert_eq!(f[14], 0x45);
        assert!(verifies(&[&f[14..34]]), "IPv4 header checksum");
        let mut pseudo = f[26..34].to_vec();
        pseudo.extend_from_slice(&[0, 17]);
        pseudo.extend_from_slice(&((f.len() - 34) as u16).to_be_bytes());
        assert!(verifies(&[&pseudo, &f[34..]]), "UDP checksum");
        assert_eq!(&f[34..36], &68_u16.to_be_bytes());
        // BOOTP: 236 bytes, cookie, options.
        assert_eq!(&f[42 + 236..42 + 240], &[99, 130, 83, 99]);
        assert_eq!(f.len(), 42 + 240 + 3 + 5 + 1);
    }

    #[test]
    fn a_dhcp_client_message_is_parsed_back_and_a_server_reply_is_not() {
        let discover = Frame::eth(GUEST, BROADCAST)
            .ipv4(Ipv4Addr::UNSPECIFIED, Ipv4Addr::BROADCAST)
            .udp(68, 67)
            .payload(&dhcpv4_discover(GUEST, 7))
            .build();
        assert_eq!(
            parse_dhcpv4_client_message(&discover),
            Some((7, GUEST, DHCPDISCOVER))
        );
        let offer = Frame::eth(ROUTER, BROADCAST)
            .ipv4(v4("192.0.2.1"), Ipv4Addr::BROADCAST)
            .udp(67, 68)
            .payload(&dhcpv4_offer(GUEST, 7, v4("192.0.2.9"), v4("192.0.2.1")))
            .build();
        assert_eq!(parse_dhcpv4_client_message(&offer), None);
        assert_eq!(parse_dhcpv4_client_message(&discover[..100]), None);
    }

    #[test]
    fn a_trailer_is_outside_the_length_fields_and_overrides_are_written() {
        let f = Frame::eth(GUEST, ROUTER)
            .trailer(&[0xa5; 4])
            .ipv4(v4("192.0.2.10"), v4("198.51.100.1"))
            .udp(1, 2)
            .build();
        assert_eq!(
            usize::from(u16::from_be_bytes([f[16], f[17]])),
            f.len() - 14 - 4
        );
        assert_eq!(&f[f.len() - 4..], &[0xa5; 4]);
        let f = Frame::eth(GUEST, ROUTER)
            .trailer(&[0xa5; 4])
            .ipv6(v6("2001:db8::10"), v6("2001:db8::1"))
            .payload_length(3)
            .udp(1, 2)
            .build();
        assert_eq!(u16::from_be_bytes([f[18], f[19]]), 3);
        assert_eq!(f.len(), 54 + 8 + 4);
        let f = Frame::eth(GUEST, ROUTER)
            .ipv4(v4("192.0.2.10"), v4("198.51.100.1"))
            .total_length(1000)
            .icmp_echo_request(1, 2)
            .build();
        assert_eq!(u16::from_be_bytes([f[16], f[17]]), 1000);
        assert!(verifies(&[&f[14..34]]), "the header checksum covers it");
        let f = Frame::eth(GUEST, ROUTER)
            .ipv4(v4("192.0.2.10"), v4("198.51.100.1"))
            .total_length_off_by(-30)
            .icmp_echo_request(1, 2)
            .build();
        assert_eq!(
            u16::from_be_bytes([f[16], f[17]]),
            0xfffe,
            "28 - 30, wrapped"
        );
        let f = Frame::eth(GUEST, ROUTER)
            .ipv6(v6("2001:db8::10"), v6("2001:db8::1"))
            .payload_length_off_by(5)
            .udp(1, 2)
            .build();
        assert_eq!(u16::from_be_bytes([f[18], f[19]]), 8 + 5);
    }

    #[test]
    fn ipv4_options_grow_the_ihl_and_keep_the_checksum_valid() {
        let f = Frame::eth(GUEST, ROUTER)
            .ipv4(v4("192.0.2.10"), v4("198.51.100.1"))
            .options(&[0x94, 0x04, 0, 0, 1])
            .icmp_echo_request(1, 2)
            .build();
        assert_eq!(f[14], 0x47, "IHL 7: 20 + 8 bytes of options");
        assert!(verifies(&[&f[14..42]]), "IPv4 header checksum");
        assert!(verifies(&[&f[42..]]), "ICMP checksum");
    }

    #[test]
    fn ipv4_fragment_fields_are_written() {
        let f = Frame::eth(GUEST, ROUTER)
            .ipv4(v4("192.0.2.10"), v4("198.51.100.1"))
            .more_fragments()
            .fragment_offset(185)
            .protocol(proto::UDP)
            .payload(&[0; 16])
            .build();
        assert_eq!(u16::from_be_bytes([f[20], f[21]]), 0x2000 | 185);
    }

    #[test]
    fn vlan_tags_come_before_the_ethertype_outermost_first() {
        let f = Frame::eth(GUEST, ROUTER)
            .qinq(10)
            .vlan(20)
            .ethertype(ethertype::LLDP)
            .build();
        assert_eq!(
            &f[12..22],
            &[0x88, 0xa8, 0, 10, 0x81, 0x00, 0, 20, 0x88, 0xcc]
        );
    }

    #[test]
    fn arp_fields_land_at_their_offsets() {
        let f = Frame::eth(GUEST, BROADCAST)
            .arp(arp_op::REQUEST)
            .spa(v4("192.0.2.10"))
            .tpa(v4("192.0.2.1"))
            .build();
        assert_eq!(f.len(), 42);
        assert_eq!(&f[14..22], &[0, 1, 8, 0, 6, 4, 0, 1]);
        assert_eq!(&f[22..28], &GUEST);
        assert_eq!(&f[28..32], &[192, 0, 2, 10]);
        assert_eq!(&f[38..42], &[192, 0, 2, 1]);
        let padded = Frame::eth(GUEST, BROADCAST).padded().arp(1).build();
        assert_eq!(padded.len(), 60);
        let rarp = Frame::eth(GUEST, BROADCAST).rarp().build();
        assert_eq!(&rarp[12..14], &[0x80, 0x35]);
        assert_eq!(&rarp[32..38], &GUEST);
    }

    #[test]
    fn neighbor_solicitation_with_extension_headers_has_valid_icmpv6_checksum() {
        let src = link_local(GUEST);
        let target = v6("2001:db8::1");
        let f = Frame::eth(GUEST, ipv6_multicast_mac(solicited_node(target)))
            .ipv6(src, solicited_node(target))
            .hop_by_hop()
            .routing()
            .dest_opts()
            .ah()
            .neighbor_solicitation(target)
            .slla(GUEST)
            .build();
        assert_eq!(f[20], proto::HOP_BY_HOP);
        assert_eq!(f[21], 255);
        assert_eq!(f[54], proto::ROUTING);
        assert_eq!(f[62], proto::DEST_OPTS);
        assert_eq!(f[70], proto::AH);
        assert_eq!((f[79], f[78]), (4, proto::ICMPV6));
        let l4 = 78 + 24;
        assert_eq!(f[l4], icmp6::NEIGHBOR_SOLICITATION);
        assert_eq!(&f[l4 + 8..l4 + 24], &target.octets());
        assert_eq!(&f[l4 + 24..l4 + 26], &[1, 1]);
        assert_eq!(&f[l4 + 26..l4 + 32], &GUEST);
        let payload_len = u16::from_be_bytes([f[18], f[19]]);
        assert_eq!(usize::from(payload_len), f.len() - 54);
        let pseudo = ipv6_pseudo(&f, proto::ICMPV6, l4);
        assert!(verifies(&[&pseudo, &f[l4..]]), "ICMPv6 checksum");
    }

    #[test]
    fn dhcpv6_solicit_has_valid_udp_checksum() {
        let f = Frame::eth(GUEST, ipv6_multicast_mac(ALL_DHCP_AGENTS))
            .ipv6(link_local(GUEST), ALL_DHCP_AGENTS)
            .udp(546, 547)
            .payload(&dhcpv6_solicit(GUEST, 0xabcdef))
            .build();
        assert_eq!(&f[0..6], &[0x33, 0x33, 0, 1, 0, 2]);
        let pseudo = ipv6_pseudo(&f, proto::UDP, 54);
        assert!(verifies(&[&pseudo, &f[54..]]), "UDP checksum");
        assert_eq!(&f[62..66], &[1, 0xab, 0xcd, 0xef]);
    }

    #[test]
    fn mld_reports_carry_router_alert_and_hop_limit_one() {
        let f = Frame::eth(GUEST, ipv6_multicast_mac(ALL_MLDV2_ROUTERS))
            .ipv6(Ipv6Addr::UNSPECIFIED, ALL_MLDV2_ROUTERS)
            .mldv2_report(&[solicited_node(link_local(GUEST))])
            .build();
        assert_eq!((f[20], f[21]), (proto::HOP_BY_HOP, 1));
        assert_eq!(&f[54..62], &[proto::ICMPV6, 0, 5, 2, 0, 0, 1, 0]);
        assert_eq!(f[62], icmp6::MLDV2_REPORT);
        let pseudo = ipv6_pseudo(&f, proto::ICMPV6, 62);
        assert!(verifies(&[&pseudo, &f[62..]]), "ICMPv6 checksum");
    }

    #[test]
    fn fragment_header_encodes_offset_and_more_flag() {
        let f = Frame::eth(GUEST, ROUTER)
            .ipv6(v6("2001:db8::10"), v6("2001:db8::1"))
            .fragment(3, true)
            .protocol(proto::UDP)
            .payload(&[0; 8])
            .build();
        assert_eq!(f[20], proto::FRAGMENT);
        assert_eq!(&f[54..58], &[proto::UDP, 0, 0, 3 << 3 | 1]);
    }

    #[test]
    fn helpers_derive_the_usual_addresses() {
        assert_eq!(link_local(GUEST), v6("fe80::216:3eff:fe12:3456"));
        assert_eq!(
            solicited_node(v6("2001:db8::12:3456")),
            v6("ff02::1:ff12:3456")
        );
        assert_eq!(
            ipv4_multicast_mac(v4("224.0.0.251")),
            [1, 0, 0x5e, 0, 0, 0xfb]
        );
    }
}
