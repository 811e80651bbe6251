//! The protocol numbers the parser compares with, each defined here once,
//! in host byte order (the frame readers convert from the wire).

/// EtherTypes (IEEE 802 registry).
pub mod ethertype {
    pub const IPV4: u16 = 0x0800;
    pub const ARP: u16 = 0x0806;
    pub const RARP: u16 = 0x8035;
    pub const IPV6: u16 = 0x86dd;
    /// 802.1Q VLAN tag (C-tag).
    pub const VLAN: u16 = 0x8100;
    /// 802.1ad service tag (S-tag, QinQ).
    pub const QINQ: u16 = 0x88a8;
    /// The pre-standard QinQ tag some switches still send.
    pub const QINQ_OLD: u16 = 0x9100;
}

/// ARP field values (RFC 826) for IPv4 over Ethernet; the protocol type
/// is [`ethertype::IPV4`].
pub mod arp {
    /// Hardware type Ethernet.
    pub const HTYPE_ETHERNET: u16 = 1;
    /// Length of an Ethernet address.
    pub const HLEN_ETHERNET: u8 = 6;
    /// Length of an IPv4 address.
    pub const PLEN_IPV4: u8 = 4;
    pub const OP_REQUEST: u16 = 1;
    pub const OP_REPLY: u16 = 2;
}

/// IP protocol numbers (IANA), the IPv6 extension headers among them.
pub mod ipproto {
    /// IPv6 hop-by-hop options header.
    pub const HOPOPTS: u8 = 0;
    pub const ICMP: u8 = 1;
    pub const UDP: u8 = 17;
    /// IPv6 routing header.
    pub const ROUTING: u8 = 43;
    /// IPv6 fragment header.
    pub const FRAGMENT: u8 = 44;
    /// Authentication header.
    pub const AH: u8 = 51;
    pub const ICMPV6: u8 = 58;
    /// IPv6 destination options header.
    pub const DSTOPTS: u8 = 60;
}

/// UDP ports of DHCP (RFC 2131) and DHCPv6 (RFC 8415).
pub mod port {
    pub const DHCP_SERVER: u16 = 67;
    pub const DHCP_CLIENT: u16 = 68;
    pub const DHCP6_CLIENT: u16 = 546;
    pub const DHCP6_SERVER: u16 = 547;
}

/// BOOTP (RFC 951), which DHCP messages are: field offsets from the start
/// of the UDP payload, and the values a client message over Ethernet has.
pub mod bootp {
    pub const OP: usize = 0;
    pub const HTYPE: usize = 1;
    pub const HLEN: usize = 2;
    /// Client hardware address: `hlen` bytes of a 16-byte field.
    pub const CHADDR: usize = 28;
    /// Client address (a RELEASE names the lease here).
    pub const CIADDR: usize = 12;
    /// "Your" address: what an ACK leases.
    pub const YIADDR: usize = 16;
    /// The DHCP magic cookie 99.130.83.99, then the options (RFC 2131 3).
    pub const COOKIE: usize = 236;
    pub const MAGIC: [u8; 4] = [99, 130, 83, 99];
    pub const OPTIONS: usize = 240;
    pub const OP_REPLY: u8 = 2;
    /// A client message (BOOTREQUEST); servers answer with 2.
    pub const OP_REQUEST: u8 = 1;
    pub const HTYPE_ETHERNET: u8 = 1;
    pub const HLEN_ETHERNET: u8 = 6;
}

/// ICMP (IPv4) message types (RFC 792).
/// DHCP options and message types (RFC 2132).
pub mod dhcp {
    pub const OPT_PAD: u8 = 0;
    pub const OPT_REQUESTED_ADDRESS: u8 = 50;
    pub const OPT_LEASE_TIME: u8 = 51;
    pub const OPT_MESSAGE_TYPE: u8 = 53;
    pub const OPT_END: u8 = 255;
    pub const DECLINE: u8 = 4;
    pub const ACK: u8 = 5;
    pub const NAK: u8 = 6;
    pub const RELEASE: u8 = 7;
}

pub mod icmp4 {
    pub const REDIRECT: u8 = 5;
}

/// ICMPv6 message types: MLD (RFC 2710, RFC 3810) and Neighbor Discovery
/// (RFC 4861, types 133-137).
pub mod icmp6 {
    pub const MLD_REPORT_V1: u8 = 131;
    pub const ND_ROUTER_SOLICITATION: u8 = 133;
    pub const ND_ROUTER_ADVERTISEMENT: u8 = 134;
    pub const ND_NEIGHBOR_SOLICITATION: u8 = 135;
    pub const ND_NEIGHBOR_ADVERTISEMENT: u8 = 136;
    pub const ND_REDIRECT: u8 = 137;
    pub const MLD_REPORT_V2: u8 = 143;
    /// The hop limit Neighbor Discovery messages must arrive with: they
    /// cannot have crossed a router.
    pub const ND_HOP_LIMIT: u8 = 255;
}

/// Neighbor Discovery option types (RFC 4861 4.6).
pub mod nd_opt {
    pub const SOURCE_LLA: u8 = 1;
    pub const TARGET_LLA: u8 = 2;
}
