//! Truncation: every cut of a frame. A cut frame never passes unless every
//! header the filter reads for it is whole.

use super::*;

/// A frame that passes whole, and the length from which every cut of it
/// passes too: the end of the last header the filter reads for it.
/// The frames are also the seeds of the mutation tests.
pub(super) struct Cut {
    what: &'static str,
    policy: Policy,
    direction: Direction,
    pub(super) frame: Vec<u8>,
    /// Every cut shorter than this (except `also_passes_at`) must drop.
    headers_end: usize,
    /// Shorter cuts that are complete frames of their own: an ND message
    /// cut at an option boundary has fewer options, which is well-formed.
    also_passes_at: Vec<usize>,
    /// Reasons a cut may be dropped with besides the malformed ones.
    also_drops_as: Vec<Reason>,
}

impl Cut {
    fn new(what: &'static str, direction: Direction, frame: Vec<u8>, headers_end: usize) -> Cut {
        Cut {
            what,
            policy: locked(),
            direction,
            frame,
            headers_end,
            also_passes_at: Vec::new(),
            also_drops_as: Vec::new(),
        }
    }

    fn policy(mut self, policy: Policy) -> Cut {
        self.policy = policy;
        self
    }

    fn passes_at(mut self, n: usize) -> Cut {
        self.also_passes_at.push(n);
        self
    }

    fn drops_as(mut self, reason: Reason) -> Cut {
        self.also_drops_as.push(reason);
        self
    }
}

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
            let complete = n >= c.headers_end || c.also_passes_at.contains(&n);
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
                    is_malformed(got) || c.also_drops_as.contains(&got),
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
        Cut::new(
            "IPv4 UDP",
            FromGuest,
            udp4_from_guest(GUEST_V4, REMOTE_V4),
            42,
        ),
        Cut::new(
            "IPv4 UDP with options",
            FromGuest,
            v4_from_guest(GUEST_V4, REMOTE_V4)
                .options(&[0x94, 0x04, 0, 0])
                .udp(40000, 53)
                .payload(b"query")
                .build(),
            46,
        ),
        // Only UDP has a header the IPv4 checks read.
        Cut::new(
            "IPv4 ICMP echo",
            FromGuest,
            v4_from_guest(GUEST_V4, REMOTE_V4)
                .icmp_echo_request(1, 1)
                .build(),
            34,
        ),
        Cut::new("DHCPDISCOVER", FromGuest, dhcp_discover(), 42),
        Cut::new(
            "IPv6 UDP",
            FromGuest,
            udp6_from_guest(GUEST_V6, GATEWAY_V6),
            62,
        ),
        Cut::new(
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
            54 + 8 + 8 + 8 + 24 + 8 + 8,
        ),
        Cut::new(
            "ICMPv6 echo",
            FromGuest,
            v6_from_guest(GUEST_V6, GATEWAY_V6)
                .echo_request(1, 1)
                .data(b"ping")
                .build(),
            58,
        ),
        Cut::new(
            "NS with SLLA",
            FromGuest,
            ns_with_slla.clone(),
            ns_with_slla.len(),
        )
        .passes_at(78),
        Cut::new(
            "NA with TLLA",
            FromGuest,
            na_with_tlla.clone(),
            na_with_tlla.len(),
        )
        .passes_at(78),
        Cut::new(
            "RS with SLLA",
            FromGuest,
            rs_with_slla.clone(),
            rs_with_slla.len(),
        )
        .passes_at(62),
        Cut::new("RA with SLLA and MTU", FromGuest, ra.clone(), ra.len())
            .policy(with(locked(), |p| p.options.router = true))
            .passes_at(70)
            .passes_at(78),
        // From `::`, a cut fixed part is no DAD probe: ipv6_spoof.
        Cut::new(
            "DAD probe",
            FromGuest,
            dad_probe(GUEST_V6).neighbor_solicitation(GUEST_V6).build(),
            78,
        )
        .drops_as(Ipv6Spoof),
        Cut::new(
            "MLDv2 report from ::",
            FromGuest,
            v6_from_guest(Ipv6Addr::UNSPECIFIED, ALL_MLDV2_ROUTERS)
                .mldv2_report(&[solicited_node(GUEST_V6)])
                .build(),
            54 + 8 + 4,
        ),
        Cut::new("DHCPv6 SOLICIT", FromGuest, dhcpv6_solicit_from_guest(), 62),
        Cut::new("LLDP listed in ethertypes", FromGuest, lldp, 14).policy(with(locked(), |p| {
            p.options.ethertypes = vec![ethertype::LLDP]
        })),
    ]
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
        Cut::new(
            "IPv4 UDP to the guest",
            ToGuest,
            v4_to_guest(REMOTE_V4, GUEST_V4)
                .udp(53, 40000)
                .payload(b"answer")
                .build(),
            42,
        ),
        Cut::new(
            "IPv4 ICMP to the guest",
            ToGuest,
            v4_to_guest(REMOTE_V4, GUEST_V4)
                .icmp_echo_request(1, 1)
                .build(),
            34,
        ),
        Cut::new(
            "DHCPOFFER before the guest has an address",
            ToGuest,
            dhcp_offer_to_guest(GUEST_V4),
            42,
        )
        .policy(with(locked(), |p| p.ipv4.clear())),
        Cut::new(
            "IPv6 UDP to the guest",
            ToGuest,
            v6_to_guest(REMOTE_V6, GUEST_V6)
                .udp(53, 40000)
                .payload(b"answer")
                .build(),
            54,
        ),
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
