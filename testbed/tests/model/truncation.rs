//! Truncation: every cut of a frame. A cut frame never passes unless every
//! header the filter reads for it is whole; for an IP packet that is the
//! whole packet its length field claims, and cuts of the trailer after it
//! pass.

use super::*;

/// A frame that passes whole, and the length from which every cut of it
/// passes too: the end of the last header the filter reads for it.
/// The frames are also the seeds of the mutation tests.
pub(super) struct Cut {
    what: &'static str,
    policy: Policy,
    direction: Direction,
    pub(super) frame: Vec<u8>,
    /// Every cut shorter than this must drop as malformed.
    headers_end: usize,
}

impl Cut {
    fn new(what: &'static str, direction: Direction, frame: Vec<u8>, headers_end: usize) -> Cut {
        Cut {
            what,
            policy: locked(),
            direction,
            frame,
            headers_end,
        }
    }

    /// An IP packet followed by [`TRAILER`]: its length field makes the
    /// whole packet a header the filter reads, so every cut inside it
    /// drops and every cut of the trailer passes.
    fn ip(what: &'static str, direction: Direction, packet: Vec<u8>) -> Cut {
        let end = packet.len();
        let mut frame = packet;
        frame.extend_from_slice(&TRAILER);
        Cut::new(what, direction, frame, end)
    }

    fn policy(mut self, policy: Policy) -> Cut {
        self.policy = policy;
        self
    }
}

/// Bytes after an IP packet: no length field counts them.
const TRAILER: [u8; 8] = [0x5a; 8];

fn is_malformed(r: Reason) -> bool {
    matches!(
        r,
        EthMalformed | ArpMalformed | Ipv4Malformed | Ipv6Malformed | NdMalformed
    )
}

fn check_every_cut(c: &Cut) {
    let isolated = with(c.policy.clone(), |p| {
        p.mode = Mode::Isolated;
        p.destinations = isolated().destinations;
    });
    let unlocked = with(c.policy.clone(), |p| p.mode = Mode::Unlocked);
    for policy in [&c.policy, &isolated] {
        let whole = verdict(Some(policy), c.direction, &c.frame);
        assert_eq!(
            whole,
            Pass,
            "{} ({} mode): the whole frame is expected to pass, got `{}`",
            c.what,
            policy.mode.name(),
            whole.name()
        );
        for n in 0..c.frame.len() {
            let got = verdict(Some(policy), c.direction, &c.frame[..n]);
            let complete = n >= c.headers_end;
            if complete {
                assert_eq!(
                    got,
                    Pass,
                    "{} ({} mode) cut to {n} bytes keeps every header the filter reads \
                     (they end at {}): expected `pass`, got `{}`",
                    c.what,
                    policy.mode.name(),
                    c.headers_end,
                    got.name()
                );
            } else {
                assert!(
                    is_malformed(got),
                    "{} ({} mode) cut to {n} bytes (headers end at {}): expected a malformed \
                     drop, got `{}`",
                    c.what,
                    policy.mode.name(),
                    c.headers_end,
                    got.name()
                );
            }
            if n < 14 {
                assert_eq!(
                    got, EthMalformed,
                    "{} cut to {n} bytes: expected `eth_malformed`",
                    c.what
                );
            }
        }
    }
    for n in 0..=c.frame.len() {
        let got = verdict(Some(&unlocked), c.direction, &c.frame[..n]);
        assert_eq!(
            got,
            Pass,
            "{} cut to {n} bytes, unlocked: expected `pass`, got `{}`",
            c.what,
            got.name()
        );
    }
}

pub(super) fn from_guest_cuts() -> Vec<Cut> {
    let ns_with_slla = v6_from_guest(GUEST_V6, GATEWAY_V6)
        .neighbor_solicitation(GATEWAY_V6)
        .slla(GUEST)
        .build();
    let na_with_tlla = v6_from_guest(GUEST_V6, ALL_NODES)
        .neighbor_advertisement(GUEST_V6, na_flags::OVERRIDE)
        .tlla(GUEST)
        .build();
    let rs_with_slla = v6_from_guest(guest_ll(), ALL_ROUTERS)
        .router_solicitation()
        .slla(GUEST)
        .build();
    let ra = v6_from_guest(guest_ll(), ALL_NODES)
        .router_advertisement()
        .slla(GUEST)
        .mtu(1500)
        .build();
    let lldp = Frame::eth(GUEST, ROUTER)
        .ethertype(ethertype::LLDP)
        .payload(&[0; 46])
        .build();
    vec![
        Cut::new(
            "ARP request",
            FromGuest,
            arp_request_from_guest().build(),
            42,
        ),
        Cut::new(
            "RARP announce",
            FromGuest,
            Frame::eth(GUEST, BROADCAST).rarp().build(),
            42,
        ),
        Cut::ip("IPv4 UDP", FromGuest, udp4_from_guest(GUEST_V4, REMOTE_V4)),
        Cut::ip(
            "IPv4 UDP with options",
            FromGuest,
            v4_from_guest(GUEST_V4, REMOTE_V4)
                .options(&[0x94, 0x04, 0, 0])
                .udp(40000, 53)
                .payload(b"query")
                .build(),
        ),
        Cut::ip(
            "IPv4 ICMP echo",
            FromGuest,
            v4_from_guest(GUEST_V4, REMOTE_V4)
                .icmp_echo_request(1, 1)
                .build(),
        ),
        Cut::ip("DHCPDISCOVER", FromGuest, dhcp_discover()),
        Cut::ip("IPv6 UDP", FromGuest, udp6_from_guest(GUEST_V6, GATEWAY_V6)),
        Cut::ip(
            "IPv6 UDP behind five extension headers",
            FromGuest,
            v6_from_guest(GUEST_V6, GATEWAY_V6)
                .hop_by_hop()
                .routing()
                .fragment(0, true)
                .ah()
                .dest_opts()
                .udp(40000, 53)
                .payload(b"query")
                .build(),
        ),
        Cut::ip(
            "ICMPv6 echo",
            FromGuest,
            v6_from_guest(GUEST_V6, GATEWAY_V6)
                .echo_request(1, 1)
                .data(b"ping")
                .build(),
        ),
        Cut::ip("NS with SLLA", FromGuest, ns_with_slla),
        Cut::ip("NA with TLLA", FromGuest, na_with_tlla),
        Cut::ip("RS with SLLA", FromGuest, rs_with_slla),
        Cut::ip("RA with SLLA and MTU", FromGuest, ra)
            .policy(with(locked(), |p| p.options.router = true)),
        Cut::ip(
            "DAD probe",
            FromGuest,
            dad_probe(GUEST_V6).neighbor_solicitation(GUEST_V6).build(),
        ),
        Cut::ip(
            "MLDv2 report from ::",
            FromGuest,
            v6_from_guest(Ipv6Addr::UNSPECIFIED, ALL_MLDV2_ROUTERS)
                .mldv2_report(&[solicited_node(GUEST_V6)])
                .build(),
        ),
        Cut::ip("DHCPv6 SOLICIT", FromGuest, dhcpv6_solicit_from_guest()),
        Cut::new("LLDP listed in ethertypes", FromGuest, lldp, 14).policy(with(locked(), |p| {
            p.options.ethertypes = vec![ethertype::LLDP]
        })),
        Cut::ip(
            "IPv6 UDP from a pair",
            FromGuest,
            eth_v6(PAIR, GATEWAY_V6)
                .ipv6(PAIR_V6, GATEWAY_V6)
                .udp(40000, 53)
                .build(),
        )
        .policy(extras()),
        Cut::new(
            "gratuitous ARP for the VIP from the virtual MAC",
            FromGuest,
            Frame::eth(vmac4(), BROADCAST)
                .arp(arp_op::REQUEST)
                .sha(vmac4())
                .spa(VIP_V4)
                .tpa(VIP_V4)
                .build(),
            42,
        )
        .policy(extras()),
        Cut::ip(
            "NA for the v6 VIP from the virtual MAC",
            FromGuest,
            eth_v6(vmac6(), ALL_NODES)
                .ipv6(guest_ll(), ALL_NODES)
                .neighbor_advertisement(VIP_V6, na_flags::OVERRIDE)
                .tlla(vmac6())
                .build(),
        )
        .policy(extras()),
    ]
}

/// The locked policy with the pair, the VRRP entry and a trusted DHCP
/// server per family.
fn extras() -> Policy {
    with(locked(), |p| {
        p.pairs = vec![pair()];
        p.vrrp = vec![vrrp()];
        p.dhcp_servers = vec![IpAddr::V4(SERVER_V4), IpAddr::V6(router_ll())];
    })
}

pub(super) fn to_guest_cuts() -> Vec<Cut> {
    let arp_reply = Frame::eth(ROUTER, GUEST)
        .arp(arp_op::REPLY)
        .sha(ROUTER)
        .spa(GATEWAY_V4)
        .tha(GUEST)
        .tpa(GUEST_V4)
        .build();
    vec![
        Cut::new("ARP reply to the guest", ToGuest, arp_reply, 42),
        Cut::ip(
            "IPv4 UDP to the guest",
            ToGuest,
            v4_to_guest(REMOTE_V4, GUEST_V4)
                .udp(53, 40000)
                .payload(b"answer")
                .build(),
        ),
        Cut::ip(
            "IPv4 ICMP to the guest",
            ToGuest,
            v4_to_guest(REMOTE_V4, GUEST_V4)
                .icmp_echo_request(1, 1)
                .build(),
        ),
        Cut::ip(
            "DHCPOFFER before the guest has an address",
            ToGuest,
            dhcp_offer_to_guest(GUEST_V4),
        )
        .policy(with(locked(), |p| p.ipv4.clear())),
        Cut::ip(
            "IPv6 UDP to the guest",
            ToGuest,
            v6_to_guest(REMOTE_V6, GUEST_V6)
                .udp(53, 40000)
                .payload(b"answer")
                .build(),
        ),
        // With `dhcp_servers`, broadcast and multicast are parsed too.
        Cut::ip(
            "broadcast DHCPOFFER from a trusted server",
            ToGuest,
            Frame::eth(ROUTER, BROADCAST)
                .ipv4(SERVER_V4, Ipv4Addr::BROADCAST)
                .udp(67, 68)
                .payload(&dhcpv4_offer(GUEST, XID, GUEST_V4, SERVER_V4))
                .build(),
        )
        .policy(extras()),
        Cut::ip(
            "DHCPv6 ADVERTISE behind destination options from a trusted server",
            ToGuest,
            Frame::eth(ROUTER, ipv6_multicast_mac(ALL_NODES))
                .ipv6(router_ll(), ALL_NODES)
                .dest_opts()
                .udp(547, 546)
                .payload(&dhcpv6_advertise(GUEST, ROUTER, XID, GUEST_V6))
                .build(),
        )
        .policy(extras()),
        Cut::ip(
            "IPv4 UDP to the VIP on the virtual MAC",
            ToGuest,
            Frame::eth(ROUTER, vmac4())
                .ipv4(REMOTE_V4, VIP_V4)
                .udp(53, 40000)
                .build(),
        )
        .policy(extras()),
    ]
}

#[test]
fn truncated_frames_from_the_guest_never_pass_unless_every_read_header_is_whole() {
    for c in from_guest_cuts() {
        check_every_cut(&c);
    }
}

#[test]
fn truncated_frames_to_the_guest_never_pass_unless_every_read_header_is_whole() {
    for c in to_guest_cuts() {
        check_every_cut(&c);
    }
}
