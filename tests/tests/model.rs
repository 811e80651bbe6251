//! Table tests of the reference model (`filter_user::model`) against
//! `docs/datapath.md`: for every numbered step, frames that pass and frames
//! that drop with the step's reason, in both directions, every mode and
//! every option. Then truncation (every cut of a frame) and mutation tests:
//! the model never panics and never passes a frame whose headers are cut.
//!
//! Test names say the behaviour; section names in comments are those of
//! `docs/datapath.md`.

use std::net::{Ipv4Addr, Ipv6Addr};

use filter_common::{Direction, LinkLocal, Mode, PARSE_WINDOW, Reason};
use filter_user::model::verdict;
use filter_user::policy::{Cidr, Cidr4, Cidr6, MacAddr, Options, Policy};
use vifguard_tests::frames::{
    ALL_DHCP_AGENTS, ALL_MLDV2_ROUTERS, ALL_NODES, ALL_ROUTERS, BROADCAST, Eth, Frame, Ipv4, Ipv6,
    Mac, arp_op, dhcpv4_discover, dhcpv4_offer, dhcpv6_advertise, dhcpv6_solicit, ethertype, icmp6,
    ipv4_multicast_mac, ipv6_multicast_mac, link_local, na_flags, proto, solicited_node,
};

use Direction::{FromGuest, ToGuest};
use Reason::*;

// ---------------------------------------------------------------------------
// The cast: one guest, its neighbour, the gateway, documentation addresses.
// ---------------------------------------------------------------------------

/// The guest behind the vif.
const GUEST: Mac = [0x00, 0x16, 0x3e, 0x12, 0x34, 0x56];
/// Another guest on the same bridge.
const OTHER: Mac = [0x00, 0x16, 0x3e, 0x65, 0x43, 0x21];
/// The gateway.
const ROUTER: Mac = [0x00, 0x16, 0x3e, 0x00, 0x00, 0x01];

const GUEST_V4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 10);
const OTHER_V4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 20);
const GATEWAY_V4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
/// In the isolated policy's destinations (198.51.100.0/24).
const REMOTE_V4: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 7);
/// In no policy's destinations.
const FORBIDDEN_V4: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 9);

const GUEST_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x10);
const OTHER_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x20);
const GATEWAY_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
/// In the isolated policy's destinations (2001:db8:1::/48).
const REMOTE_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 7);
/// In no policy's destinations.
const FORBIDDEN_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xffff, 0, 0, 0, 0, 9);
/// A link-local address that is not the guest's derived one.
const RANDOM_LL: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0x1234, 0x5678, 0x9abc, 0xdef0);
/// In fe80::/10 but not in fe80::/64.
const NOT_LL_64: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 1, 0, 0, 0, 1);

const XID: u32 = 0x3903_f326;

fn guest_ll() -> Ipv6Addr {
    link_local(GUEST)
}

fn router_ll() -> Ipv6Addr {
    link_local(ROUTER)
}

fn cidr4(s: &str) -> Cidr4 {
    s.parse().expect("a valid IPv4 prefix literal")
}

fn cidr6(s: &str) -> Cidr6 {
    s.parse().expect("a valid IPv6 prefix literal")
}

// ---------------------------------------------------------------------------
// Policies
// ---------------------------------------------------------------------------

/// A locked vif with one address per family and default options.
fn locked() -> Policy {
    Policy {
        mode: Mode::Locked,
        mac: MacAddr(GUEST),
        ipv4: vec![Cidr4::host(GUEST_V4)],
        ipv6: vec![Cidr6::host(GUEST_V6)],
        destinations: Vec::new(),
        options: Options::default(),
    }
}

/// The same vif isolated: it may talk to the gateway and to the "remote"
/// networks, which every from-guest frame of the locked-mode tests uses, so
/// the locked rules can be checked in both modes with the same frames.
fn isolated() -> Policy {
    Policy {
        mode: Mode::Isolated,
        destinations: vec![
            Cidr::V4(Cidr4::host(GATEWAY_V4)),
            Cidr::V4(cidr4("198.51.100.0/24")),
            Cidr::V6(Cidr6::host(GATEWAY_V6)),
            Cidr::V6(cidr6("2001:db8:1::/48")),
        ],
        ..locked()
    }
}

/// `policy` changed by `adjust`.
fn with(mut policy: Policy, adjust: impl FnOnce(&mut Policy)) -> Policy {
    adjust(&mut policy);
    policy
}

/// The locked and the isolated policy, both changed by `adjust`.
fn guarded(adjust: impl Fn(&mut Policy)) -> [Policy; 2] {
    [with(locked(), &adjust), with(isolated(), &adjust)]
}

// ---------------------------------------------------------------------------
// Assertions
// ---------------------------------------------------------------------------

#[track_caller]
fn check(policy: &Policy, direction: Direction, frame: &[u8], want: Reason, what: &str) {
    let got = verdict(Some(policy), direction, frame);
    assert_eq!(
        got,
        want,
        "{what} ({} mode, {}, {} bytes): expected `{}`, got `{}`",
        policy.mode.name(),
        direction.name(),
        frame.len(),
        want.name(),
        got.name()
    );
}

#[track_caller]
fn from_guest(policy: &Policy, frame: &[u8], want: Reason, what: &str) {
    check(policy, FromGuest, frame, want, what);
}

#[track_caller]
fn to_guest(policy: &Policy, frame: &[u8], want: Reason, what: &str) {
    check(policy, ToGuest, frame, want, what);
}

/// From the guest, in locked and in isolated mode (same result expected).
#[track_caller]
fn sent_by_guest(frame: &[u8], want: Reason, what: &str) {
    for p in guarded(|_| {}) {
        from_guest(&p, frame, want, what);
    }
}

/// To the guest, in locked and in isolated mode (same result expected).
#[track_caller]
fn sent_to_guest(frame: &[u8], want: Reason, what: &str) {
    for p in guarded(|_| {}) {
        to_guest(&p, frame, want, what);
    }
}

// ---------------------------------------------------------------------------
// Frames
// ---------------------------------------------------------------------------

/// Ethernet from `src` towards an IPv4 destination: the group's MAC for
/// broadcast and multicast, else the gateway's.
fn eth_v4(src: Mac, dst: Ipv4Addr) -> Eth {
    let dst_mac = if dst.is_broadcast() {
        BROADCAST
    } else if dst.is_multicast() {
        ipv4_multicast_mac(dst)
    } else {
        ROUTER
    };
    Frame::eth(src, dst_mac)
}

/// Ethernet from `src` towards an IPv6 destination (group MAC for
/// multicast, else the gateway's).
fn eth_v6(src: Mac, dst: Ipv6Addr) -> Eth {
    let dst_mac = if dst.is_multicast() {
        ipv6_multicast_mac(dst)
    } else {
        ROUTER
    };
    Frame::eth(src, dst_mac)
}

/// IPv4 sent by the guest.
fn v4_from_guest(src: Ipv4Addr, dst: Ipv4Addr) -> Ipv4 {
    eth_v4(GUEST, dst).ipv4(src, dst)
}

/// IPv6 sent by the guest.
fn v6_from_guest(src: Ipv6Addr, dst: Ipv6Addr) -> Ipv6 {
    eth_v6(GUEST, dst).ipv6(src, dst)
}

/// IPv4 unicast from the gateway to the guest's MAC.
fn v4_to_guest(src: Ipv4Addr, dst: Ipv4Addr) -> Ipv4 {
    Frame::eth(ROUTER, GUEST).ipv4(src, dst)
}

/// IPv6 unicast from the gateway to the guest's MAC.
fn v6_to_guest(src: Ipv6Addr, dst: Ipv6Addr) -> Ipv6 {
    Frame::eth(ROUTER, GUEST).ipv6(src, dst)
}

/// An ordinary UDP datagram (a DNS query) from the guest.
fn udp4_from_guest(src: Ipv4Addr, dst: Ipv4Addr) -> Vec<u8> {
    v4_from_guest(src, dst)
        .udp(40000, 53)
        .payload(b"query")
        .build()
}

/// An ordinary UDP datagram from the guest.
fn udp6_from_guest(src: Ipv6Addr, dst: Ipv6Addr) -> Vec<u8> {
    v6_from_guest(src, dst)
        .udp(40000, 53)
        .payload(b"query")
        .build()
}

/// The guest's ARP request for the gateway.
fn arp_request_from_guest() -> vifguard_tests::frames::Arp {
    Frame::eth(GUEST, BROADCAST)
        .arp(arp_op::REQUEST)
        .spa(GUEST_V4)
        .tpa(GATEWAY_V4)
}

/// DHCPDISCOVER: 0.0.0.0:68 -> 255.255.255.255:67.
fn dhcp_discover() -> Vec<u8> {
    v4_from_guest(Ipv4Addr::UNSPECIFIED, Ipv4Addr::BROADCAST)
        .udp(68, 67)
        .payload(&dhcpv4_discover(GUEST, XID))
        .build()
}

/// A DHCPOFFER of `yiaddr`, unicast from the gateway to the guest's MAC.
fn dhcp_offer_to_guest(yiaddr: Ipv4Addr) -> Vec<u8> {
    v4_to_guest(GATEWAY_V4, yiaddr)
        .udp(67, 68)
        .payload(&dhcpv4_offer(GUEST, XID, yiaddr, GATEWAY_V4))
        .build()
}

/// Duplicate address detection for `target`: NS from `::` to its
/// solicited-node group, no options.
fn dad_probe(target: Ipv6Addr) -> Ipv6 {
    let group = solicited_node(target);
    v6_from_guest(Ipv6Addr::UNSPECIFIED, group)
}

/// The guest's DHCPv6 SOLICIT from its link-local address.
fn dhcpv6_solicit_from_guest() -> Vec<u8> {
    v6_from_guest(guest_ll(), ALL_DHCP_AGENTS)
        .udp(546, 547)
        .payload(&dhcpv6_solicit(GUEST, XID))
        .build()
}

// ===========================================================================
// Both directions: before anything else
// ===========================================================================

#[test]
fn step1_interface_without_policy_drops_everything_as_no_policy() {
    let frames = [arp_request_from_guest().build(), Vec::new(), vec![0xff; 5]];
    for direction in Direction::ALL {
        for frame in &frames {
            let got = verdict(None, direction, frame);
            assert_eq!(
                got,
                NoPolicy,
                "{} bytes {} on an interface without policy: expected `no_policy`, got `{}`",
                frame.len(),
                direction.name(),
                got.name()
            );
        }
    }
}

#[test]
fn step2_disabled_mode_drops_everything_in_both_directions() {
    let disabled = with(locked(), |p| p.mode = Mode::Disabled);
    let no_egress_filter = with(disabled.clone(), |p| p.options.egress_filter = false);
    let frames = [
        arp_request_from_guest().build(),
        dhcp_discover(),
        Vec::new(),
    ];
    for frame in &frames {
        for p in [&disabled, &no_egress_filter] {
            from_guest(p, frame, Disabled, "any frame from a disabled vif");
            to_guest(p, frame, Disabled, "any frame to a disabled vif");
        }
    }
}

#[test]
fn step3_unlocked_mode_passes_everything_even_spoofed_or_truncated() {
    let unlocked = with(locked(), |p| p.mode = Mode::Unlocked);
    let frames = [
        Vec::new(),
        vec![0x00, 0x16, 0x3e],
        Frame::eth(OTHER, ROUTER)
            .ipv4(OTHER_V4, REMOTE_V4)
            .udp(1, 2)
            .build(),
        Frame::eth(GUEST, ROUTER)
            .vlan(10)
            .ipv4(GUEST_V4, REMOTE_V4)
            .udp(1, 2)
            .build(),
        v6_from_guest(guest_ll(), ALL_NODES)
            .router_advertisement()
            .build(),
        v6_from_guest(GUEST_V6, GATEWAY_V6).version(4).build(),
        Frame::eth(ROUTER, OTHER)
            .ipv4(GATEWAY_V4, OTHER_V4)
            .udp(1, 2)
            .build(),
    ];
    for frame in &frames {
        from_guest(&unlocked, frame, Pass, "anything from an unlocked vif");
        to_guest(&unlocked, frame, Pass, "anything to an unlocked vif");
    }
}

#[test]
fn step4_egress_filter_off_passes_everything_to_the_guest_only() {
    let sniffed = Frame::eth(ROUTER, OTHER)
        .ipv4(GATEWAY_V4, OTHER_V4)
        .udp(1, 2)
        .build();
    for p in guarded(|p| p.options.egress_filter = false) {
        to_guest(
            &p,
            &sniffed,
            Pass,
            "another guest's unicast, egress_filter off",
        );
        to_guest(&p, &[0x00, 0x16], Pass, "a 2-byte frame, egress_filter off");
        let spoofed = Frame::eth(OTHER, ROUTER)
            .ipv4(GUEST_V4, REMOTE_V4)
            .udp(1, 2)
            .build();
        from_guest(
            &p,
            &spoofed,
            MacSpoof,
            "egress_filter does not affect the guest's own traffic",
        );
    }
    sent_to_guest(
        &sniffed,
        SniffMac,
        "another guest's unicast, egress_filter on (default)",
    );
}

#[test]
fn step5_frames_shorter_than_an_ethernet_header_are_eth_malformed() {
    let lldp_to_guest = Frame::eth(ROUTER, GUEST).ethertype(ethertype::LLDP).build();
    let lldp_from_guest = Frame::eth(GUEST, ROUTER).ethertype(ethertype::LLDP).build();
    for n in 0..14 {
        sent_by_guest(
            &lldp_from_guest[..n],
            EthMalformed,
            "a frame cut inside the Ethernet header",
        );
        sent_to_guest(
            &lldp_to_guest[..n],
            EthMalformed,
            "a frame cut inside the Ethernet header",
        );
    }
    sent_by_guest(
        &lldp_from_guest,
        Ethertype,
        "a bare 14-byte header is judged by its EtherType",
    );
    sent_to_guest(
        &lldp_to_guest,
        Pass,
        "a bare 14-byte header to the guest's MAC",
    );
}

// ===========================================================================
// From the guest: Ethernet
// ===========================================================================

#[test]
fn from_guest_step1_source_mac_must_be_the_guests_own() {
    sent_by_guest(
        &udp4_from_guest(GUEST_V4, REMOTE_V4),
        Pass,
        "UDP from the guest's MAC",
    );
    for (src, what) in [
        (OTHER, "another guest's MAC as source"),
        (
            [0x01, 0x00, 0x5e, 0x00, 0x00, 0x01],
            "a multicast source MAC",
        ),
        (BROADCAST, "the broadcast source MAC"),
    ] {
        let frame = Frame::eth(src, ROUTER)
            .ipv4(GUEST_V4, REMOTE_V4)
            .udp(40000, 53)
            .build();
        sent_by_guest(&frame, MacSpoof, what);
    }
    // Even when the vif's own MAC is (wrongly) multicast.
    let multicast_mac = [0x01, 0x16, 0x3e, 0x12, 0x34, 0x56];
    let p = with(locked(), |p| p.mac = MacAddr(multicast_mac));
    let frame = Frame::eth(multicast_mac, ROUTER)
        .ipv4(GUEST_V4, REMOTE_V4)
        .udp(40000, 53)
        .build();
    from_guest(
        &p,
        &frame,
        MacSpoof,
        "a multicast source equal to a multicast vif MAC",
    );
}

#[test]
fn from_guest_step3_vlan_tagged_frames_are_dropped() {
    let tagged = [
        ("802.1Q", Frame::eth(GUEST, ROUTER).vlan(10)),
        (
            "802.1ad + 802.1Q",
            Frame::eth(GUEST, ROUTER).qinq(100).vlan(10),
        ),
        (
            "0x9100 (pre-standard QinQ)",
            Frame::eth(GUEST, ROUTER).tag(ethertype::QINQ_OLD, 10),
        ),
    ];
    for (what, eth) in tagged {
        let frame = eth.ipv4(GUEST_V4, REMOTE_V4).udp(40000, 53).build();
        sent_by_guest(&frame, VlanTagged, what);
    }
    // Listing a TPID as an extra EtherType does not open the door: the tag
    // check comes before the EtherType dispatch.
    let frame = Frame::eth(GUEST, ROUTER)
        .vlan(10)
        .ipv4(GUEST_V4, REMOTE_V4)
        .udp(40000, 53)
        .build();
    for p in guarded(|p| p.options.ethertypes = vec![ethertype::VLAN]) {
        from_guest(&p, &frame, VlanTagged, "802.1Q with 0x8100 in ethertypes");
    }
}

#[test]
fn from_guest_step4_other_ethertypes_are_dropped_unless_listed() {
    let lldp = Frame::eth(GUEST, [0x01, 0x80, 0xc2, 0x00, 0x00, 0x0e])
        .ethertype(ethertype::LLDP)
        .payload(&[0; 46])
        .build();
    // An 802.3 frame (length field 38) with an STP BPDU.
    let stp = Frame::eth(GUEST, [0x01, 0x80, 0xc2, 0x00, 0x00, 0x00])
        .ethertype(38)
        .payload(&[0x42, 0x42, 0x03])
        .payload(&[0; 35])
        .build();
    sent_by_guest(&lldp, Ethertype, "LLDP without ethertypes");
    sent_by_guest(&stp, Ethertype, "an 802.3 STP BPDU");
    for p in guarded(|p| p.options.ethertypes = vec![0x88b5, ethertype::LLDP]) {
        from_guest(&p, &lldp, Pass, "LLDP listed in ethertypes");
        from_guest(&p, &stp, Ethertype, "STP with other EtherTypes listed");
    }
    for p in guarded(|p| p.options.ethertypes = vec![0x88b5]) {
        from_guest(&p, &lldp, Ethertype, "LLDP when only 0x88b5 is listed");
    }
}

// ===========================================================================
// From the guest: ARP
// ===========================================================================

#[test]
fn from_guest_arp_step1_must_be_an_ethernet_ipv4_request_or_reply() {
    sent_by_guest(
        &arp_request_from_guest().build(),
        Pass,
        "the guest's ARP request",
    );
    let reply = Frame::eth(GUEST, ROUTER)
        .arp(arp_op::REPLY)
        .spa(GUEST_V4)
        .tha(ROUTER)
        .tpa(GATEWAY_V4)
        .build();
    sent_by_guest(&reply, Pass, "the guest's ARP reply");
    let padded = Frame::eth(GUEST, BROADCAST)
        .padded()
        .arp(arp_op::REQUEST)
        .spa(GUEST_V4)
        .tpa(GATEWAY_V4)
        .build();
    sent_by_guest(&padded, Pass, "an ARP request padded to 60 bytes");

    let bad = [
        (
            arp_request_from_guest().htype(6),
            "hardware type 6 (IEEE 802)",
        ),
        (
            arp_request_from_guest().ptype(ethertype::IPV6),
            "protocol type 0x86dd",
        ),
        (arp_request_from_guest().hlen(8), "hardware length 8"),
        (arp_request_from_guest().plen(16), "protocol length 16"),
        (arp_request_from_guest().op(0), "opcode 0"),
        (
            arp_request_from_guest().op(arp_op::RARP_REQUEST),
            "opcode 3 (RARP) in ARP",
        ),
        (
            arp_request_from_guest().op(0x0100),
            "opcode 256 (byte-swapped request)",
        ),
    ];
    for (arp, what) in bad {
        sent_by_guest(&arp.build(), ArpMalformed, what);
    }
    let request = arp_request_from_guest().build();
    sent_by_guest(
        &request[..41],
        ArpMalformed,
        "an ARP request cut to 41 bytes",
    );
}

#[test]
fn from_guest_arp_step2_sender_hardware_address_must_be_the_guests() {
    let frame = arp_request_from_guest().sha(OTHER).build();
    sent_by_guest(&frame, ArpShaSpoof, "ARP with another guest's sender MAC");
    let frame = arp_request_from_guest().sha(BROADCAST).build();
    sent_by_guest(&frame, ArpShaSpoof, "ARP with a broadcast sender MAC");
}

#[test]
fn from_guest_arp_step3_sender_ip_must_be_allowed_except_in_probes() {
    let stolen = arp_request_from_guest().spa(OTHER_V4).build();
    sent_by_guest(&stolen, ArpSpaSpoof, "ARP claiming another guest's address");
    let probe = Frame::eth(GUEST, BROADCAST)
        .arp(arp_op::REQUEST)
        .spa(Ipv4Addr::UNSPECIFIED)
        .tpa(GUEST_V4)
        .build();
    sent_by_guest(&probe, Pass, "an RFC 5227 probe (sender 0.0.0.0)");
    let zero_reply = Frame::eth(GUEST, ROUTER)
        .arp(arp_op::REPLY)
        .spa(Ipv4Addr::UNSPECIFIED)
        .tpa(GATEWAY_V4)
        .build();
    sent_by_guest(&zero_reply, ArpSpaSpoof, "a reply from 0.0.0.0 is no probe");
    let gratuitous = Frame::eth(GUEST, BROADCAST)
        .arp(arp_op::REQUEST)
        .spa(GUEST_V4)
        .tpa(GUEST_V4)
        .build();
    sent_by_guest(&gratuitous, Pass, "gratuitous ARP for the guest's address");

    // Prefixes and 0.0.0.0/0 in `ipv4`.
    for p in guarded(|p| p.ipv4 = vec![cidr4("192.0.2.0/24")]) {
        from_guest(&p, &stolen, Pass, "sender in the allowed /24");
        let outside = arp_request_from_guest().spa(REMOTE_V4).build();
        from_guest(&p, &outside, ArpSpaSpoof, "sender outside the allowed /24");
    }
    for p in guarded(|p| p.ipv4 = vec![cidr4("0.0.0.0/0")]) {
        from_guest(&p, &stolen, Pass, "any sender with 0.0.0.0/0");
        let frame = arp_request_from_guest().spa(OTHER_V4).sha(OTHER).build();
        from_guest(
            &p,
            &frame,
            ArpShaSpoof,
            "0.0.0.0/0 still checks the sender MAC",
        );
    }
}

#[test]
fn from_guest_arp_step4_isolated_target_must_be_a_destination_or_own_address() {
    // (sender, target, verdict in isolated mode, what); locked mode passes all.
    let table = [
        (
            GUEST_V4,
            GATEWAY_V4,
            Pass,
            "request for a listed destination",
        ),
        (
            GUEST_V4,
            REMOTE_V4,
            Pass,
            "request for an address in a listed /24",
        ),
        (
            GUEST_V4,
            GUEST_V4,
            Pass,
            "announcement of the guest's own address",
        ),
        (
            Ipv4Addr::UNSPECIFIED,
            GUEST_V4,
            Pass,
            "probe for the guest's own address",
        ),
        (
            GUEST_V4,
            FORBIDDEN_V4,
            Isolation,
            "request for an unlisted address",
        ),
        (GUEST_V4, OTHER_V4, Isolation, "request for a neighbour"),
        (
            Ipv4Addr::UNSPECIFIED,
            OTHER_V4,
            Isolation,
            "probe for an unlisted address",
        ),
    ];
    for (spa, tpa, isolated_verdict, what) in table {
        let frame = arp_request_from_guest().spa(spa).tpa(tpa).build();
        from_guest(&isolated(), &frame, isolated_verdict, what);
        from_guest(&locked(), &frame, Pass, what);
    }
}

// ===========================================================================
// From the guest: RARP
// ===========================================================================

#[test]
fn from_guest_rarp_passes_only_the_migration_announce() {
    let announce = Frame::eth(GUEST, BROADCAST).rarp().build();
    sent_by_guest(&announce, Pass, "RARP announce after migration");
    let padded = Frame::eth(GUEST, BROADCAST).padded().rarp().build();
    sent_by_guest(&padded, Pass, "RARP announce padded to 60 bytes");
    // RARP 1 checks only the length, not ARP's format.
    let odd = Frame::eth(GUEST, BROADCAST).rarp().htype(6).op(1).build();
    sent_by_guest(
        &odd,
        Pass,
        "RARP with odd htype/op but both MACs the guest's",
    );

    let other_target = Frame::eth(GUEST, BROADCAST).rarp().tha(OTHER).build();
    sent_by_guest(&other_target, RarpSpoof, "RARP asking about another MAC");
    let other_sender = Frame::eth(GUEST, BROADCAST).rarp().sha(OTHER).build();
    sent_by_guest(&other_sender, RarpSpoof, "RARP with another sender MAC");
    sent_by_guest(&announce[..41], ArpMalformed, "RARP cut to 41 bytes");
}

// ===========================================================================
// From the guest: IPv4
// ===========================================================================

#[test]
fn from_guest_ipv4_step1_header_must_fit_and_be_well_formed() {
    sent_by_guest(&udp4_from_guest(GUEST_V4, REMOTE_V4), Pass, "plain UDP");
    let with_options = v4_from_guest(GUEST_V4, REMOTE_V4)
        .options(&[0x94, 0x04, 0x00, 0x00])
        .udp(40000, 53)
        .build();
    sent_by_guest(
        &with_options,
        Pass,
        "UDP with a Router Alert IP option (IHL 6)",
    );

    let mut bad_checksum = udp4_from_guest(GUEST_V4, REMOTE_V4);
    bad_checksum[24] ^= 0xff;
    bad_checksum[16] = 0xff;
    sent_by_guest(
        &bad_checksum,
        Pass,
        "wrong total length and checksum are not checked",
    );

    let version6 = v4_from_guest(GUEST_V4, REMOTE_V4)
        .version(6)
        .udp(40000, 53)
        .build();
    sent_by_guest(&version6, Ipv4Malformed, "version 6 under EtherType 0x0800");
    let ihl4 = v4_from_guest(GUEST_V4, REMOTE_V4)
        .ihl(4)
        .udp(40000, 53)
        .build();
    sent_by_guest(&ihl4, Ipv4Malformed, "IHL 4");
    let ihl15 = v4_from_guest(GUEST_V4, REMOTE_V4)
        .ihl(15)
        .protocol(proto::TCP)
        .payload(&[0; 20])
        .build();
    sent_by_guest(
        &ihl15,
        Ipv4Malformed,
        "IHL 15 claims 60 bytes, the frame has 40",
    );
    let plain = udp4_from_guest(GUEST_V4, REMOTE_V4);
    sent_by_guest(&plain[..33], Ipv4Malformed, "IPv4 header cut to 19 bytes");
    sent_by_guest(&with_options[..37], Ipv4Malformed, "IPv4 options cut");
}

#[test]
fn from_guest_ipv4_step2_udp_header_must_fit_unless_non_first_fragment() {
    let udp = v4_from_guest(GUEST_V4, REMOTE_V4).udp(40000, 53).build();
    sent_by_guest(&udp, Pass, "UDP with an empty payload");
    sent_by_guest(&udp[..41], Ipv4Malformed, "UDP header cut to 7 bytes");
    let with_options = v4_from_guest(GUEST_V4, REMOTE_V4)
        .options(&[0x94, 0x04, 0x00, 0x00, 0x01, 0x01, 0x01, 0x00])
        .udp(40000, 53)
        .build();
    sent_by_guest(
        &with_options[..49],
        Ipv4Malformed,
        "UDP header after options cut",
    );
    let first_fragment = v4_from_guest(GUEST_V4, REMOTE_V4)
        .more_fragments()
        .udp(40000, 53)
        .build();
    sent_by_guest(
        &first_fragment[..40],
        Ipv4Malformed,
        "first fragment (MF, offset 0) has ports",
    );
    let later_fragment = v4_from_guest(GUEST_V4, REMOTE_V4)
        .fragment_offset(185)
        .protocol(proto::UDP)
        .payload(&[0xab; 3])
        .build();
    sent_by_guest(
        &later_fragment,
        Pass,
        "non-first UDP fragment has no UDP header",
    );
    let tcp = v4_from_guest(GUEST_V4, REMOTE_V4)
        .protocol(proto::TCP)
        .build();
    sent_by_guest(&tcp, Pass, "TCP: only UDP headers are looked at");
}

#[test]
fn from_guest_ipv4_step3_source_must_be_allowed() {
    sent_by_guest(
        &udp4_from_guest(OTHER_V4, REMOTE_V4),
        Ipv4Spoof,
        "a neighbour's source address",
    );
    let ping = v4_from_guest(OTHER_V4, REMOTE_V4)
        .icmp_echo_request(1, 1)
        .build();
    sent_by_guest(&ping, Ipv4Spoof, "ICMP from a neighbour's address");
    let fragment = v4_from_guest(OTHER_V4, REMOTE_V4)
        .fragment_offset(10)
        .protocol(proto::UDP)
        .payload(&[0; 8])
        .build();
    sent_by_guest(
        &fragment,
        Ipv4Spoof,
        "a non-first fragment from a neighbour's address",
    );
    for p in guarded(|p| p.ipv4 = vec![cidr4("192.0.2.0/24")]) {
        from_guest(
            &p,
            &udp4_from_guest(OTHER_V4, REMOTE_V4),
            Pass,
            "source in the allowed /24",
        );
        from_guest(
            &p,
            &udp4_from_guest(REMOTE_V4, REMOTE_V4),
            Ipv4Spoof,
            "source outside the allowed /24",
        );
    }
    for p in guarded(|p| p.ipv4 = vec![cidr4("0.0.0.0/0")]) {
        from_guest(
            &p,
            &udp4_from_guest(OTHER_V4, REMOTE_V4),
            Pass,
            "any source with 0.0.0.0/0",
        );
    }
}

#[test]
fn from_guest_ipv4_step3_dhcp_discover_from_unspecified_needs_option_dhcp_client() {
    sent_by_guest(
        &dhcp_discover(),
        Pass,
        "DHCPDISCOVER, dhcp_client on (default)",
    );
    for p in guarded(|p| p.options.dhcp_client = false) {
        from_guest(
            &p,
            &dhcp_discover(),
            Ipv4Spoof,
            "DHCPDISCOVER with dhcp_client off",
        );
    }
    let to_server = v4_from_guest(Ipv4Addr::UNSPECIFIED, GATEWAY_V4)
        .udp(68, 67)
        .payload(&dhcpv4_discover(GUEST, XID))
        .build();
    sent_by_guest(&to_server, Ipv4Spoof, "from 0.0.0.0 to a unicast server");
    let wrong_ports = v4_from_guest(Ipv4Addr::UNSPECIFIED, Ipv4Addr::BROADCAST)
        .udp(67, 67)
        .build();
    sent_by_guest(&wrong_ports, Ipv4Spoof, "from 0.0.0.0, UDP 67 -> 67");
    let not_udp = v4_from_guest(Ipv4Addr::UNSPECIFIED, Ipv4Addr::BROADCAST)
        .protocol(proto::TCP)
        .payload(&[0, 68, 0, 67])
        .build();
    sent_by_guest(&not_udp, Ipv4Spoof, "from 0.0.0.0, TCP 68 -> 67");
    let fragment = v4_from_guest(Ipv4Addr::UNSPECIFIED, Ipv4Addr::BROADCAST)
        .fragment_offset(1)
        .protocol(proto::UDP)
        .payload(&[0, 68, 0, 67, 0, 8, 0, 0])
        .build();
    sent_by_guest(
        &fragment,
        Ipv4Spoof,
        "a non-first fragment from 0.0.0.0 has no ports",
    );
}

#[test]
fn from_guest_ipv4_step4_dhcp_server_replies_need_option_dhcp_server() {
    let offer = v4_from_guest(GUEST_V4, Ipv4Addr::BROADCAST)
        .udp(67, 68)
        .payload(&dhcpv4_offer(OTHER, XID, OTHER_V4, GUEST_V4))
        .build();
    sent_by_guest(
        &offer,
        DhcpServer,
        "DHCPOFFER from the guest, dhcp_server off",
    );
    let unicast_offer = v4_from_guest(GUEST_V4, OTHER_V4)
        .udp(67, 68)
        .payload(&dhcpv4_offer(OTHER, XID, OTHER_V4, GUEST_V4))
        .build();
    from_guest(
        &locked(),
        &unicast_offer,
        DhcpServer,
        "unicast DHCPOFFER, dhcp_server off",
    );
    // Clients accept an offer whatever its source port.
    let odd_port_offer = v4_from_guest(GUEST_V4, Ipv4Addr::BROADCAST)
        .udp(1234, 68)
        .payload(&dhcpv4_offer(OTHER, XID, OTHER_V4, GUEST_V4))
        .build();
    sent_by_guest(
        &odd_port_offer,
        DhcpServer,
        "DHCPOFFER from port 1234, dhcp_server off",
    );
    let p = with(locked(), |p| p.options.dhcp_server = true);
    from_guest(&p, &offer, Pass, "DHCPOFFER with dhcp_server on");
    from_guest(
        &p,
        &odd_port_offer,
        Pass,
        "DHCPOFFER from port 1234 with dhcp_server on",
    );
    from_guest(
        &p,
        &unicast_offer,
        Pass,
        "unicast DHCPOFFER with dhcp_server on",
    );
    let p = with(isolated(), |p| {
        p.options.dhcp_server = true;
        p.destinations.push(Cidr::V4(cidr4("255.255.255.255/32")));
    });
    from_guest(
        &p,
        &offer,
        Pass,
        "broadcast DHCPOFFER, dhcp_server on, broadcast listed",
    );
    let fragment = v4_from_guest(GUEST_V4, REMOTE_V4)
        .fragment_offset(1)
        .protocol(proto::UDP)
        .payload(&[0, 67, 0, 68])
        .build();
    sent_by_guest(
        &fragment,
        Pass,
        "a non-first fragment has no ports to judge",
    );
    // A spoofed source is reported as such, before the DHCP server check.
    let spoofed_offer = v4_from_guest(OTHER_V4, Ipv4Addr::BROADCAST)
        .udp(67, 68)
        .build();
    sent_by_guest(&spoofed_offer, Ipv4Spoof, "DHCPOFFER from a spoofed source");
}

#[test]
fn from_guest_ipv4_step5_isolated_destination_must_be_listed() {
    let renew_broadcast = v4_from_guest(GUEST_V4, Ipv4Addr::BROADCAST)
        .udp(68, 67)
        .build();
    // (frame, verdict in isolated mode, what); locked mode passes all.
    let table = [
        (
            udp4_from_guest(GUEST_V4, REMOTE_V4),
            Pass,
            "UDP to a listed /24",
        ),
        (
            udp4_from_guest(GUEST_V4, GATEWAY_V4),
            Pass,
            "UDP to the listed gateway",
        ),
        (
            udp4_from_guest(GUEST_V4, FORBIDDEN_V4),
            Isolation,
            "UDP to an unlisted address",
        ),
        (
            udp4_from_guest(GUEST_V4, OTHER_V4),
            Isolation,
            "UDP to a neighbour",
        ),
        (dhcp_discover(), Pass, "the DHCPDISCOVER broadcast"),
        (
            renew_broadcast.clone(),
            Pass,
            "a DHCP request broadcast from the guest's address",
        ),
        (
            v4_from_guest(GUEST_V4, FORBIDDEN_V4).udp(68, 67).build(),
            Isolation,
            "unicast DHCP renewal to an unlisted server",
        ),
        (
            v4_from_guest(GUEST_V4, Ipv4Addr::BROADCAST)
                .udp(137, 137)
                .build(),
            Isolation,
            "other broadcast (NetBIOS)",
        ),
        (
            v4_from_guest(GUEST_V4, Ipv4Addr::new(224, 0, 0, 251))
                .udp(5353, 5353)
                .build(),
            Isolation,
            "multicast (mDNS)",
        ),
        (
            v4_from_guest(GUEST_V4, FORBIDDEN_V4)
                .fragment_offset(8)
                .protocol(proto::UDP)
                .payload(&[0; 8])
                .build(),
            Isolation,
            "a non-first fragment to an unlisted address",
        ),
    ];
    for (frame, isolated_verdict, what) in &table {
        from_guest(&isolated(), frame, *isolated_verdict, what);
        from_guest(&locked(), frame, Pass, what);
    }
    let p = with(isolated(), |p| p.options.dhcp_client = false);
    let what = "the broadcast exception does not depend on dhcp_client";
    from_guest(&p, &renew_broadcast, Pass, what);
}

// ===========================================================================
// From the guest: IPv6
// ===========================================================================

#[test]
fn from_guest_ipv6_step1_fixed_header_must_fit_and_say_version_6() {
    sent_by_guest(
        &udp6_from_guest(GUEST_V6, GATEWAY_V6),
        Pass,
        "plain UDP over IPv6",
    );
    let version4 = v6_from_guest(GUEST_V6, GATEWAY_V6)
        .version(4)
        .udp(40000, 53)
        .build();
    sent_by_guest(&version4, Ipv6Malformed, "version 4 under EtherType 0x86dd");
    let udp = udp6_from_guest(GUEST_V6, GATEWAY_V6);
    sent_by_guest(&udp[..53], Ipv6Malformed, "fixed header cut to 39 bytes");
}

#[test]
fn from_guest_ipv6_step2_extension_headers_are_walked_to_the_upper_layer() {
    let chain = v6_from_guest(GUEST_V6, GATEWAY_V6)
        .hop_by_hop()
        .routing()
        .fragment(0, true)
        .ah()
        .dest_opts()
        .udp(40000, 53)
        .build();
    sent_by_guest(
        &chain,
        Pass,
        "UDP behind hop-by-hop, routing, fragment, AH, dest-opts",
    );
    // What hides behind the chain is still judged.
    let ra = v6_from_guest(guest_ll(), ALL_NODES)
        .dest_opts()
        .router_advertisement()
        .build();
    sent_by_guest(&ra, RaGuard, "an RA behind destination options");
    let dhcp6_server = v6_from_guest(guest_ll(), GATEWAY_V6)
        .ah()
        .udp(547, 546)
        .build();
    sent_by_guest(
        &dhcp6_server,
        DhcpServer,
        "a DHCPv6 server message behind AH",
    );
    let empty = v6_from_guest(GUEST_V6, GATEWAY_V6).hop_by_hop().build();
    sent_by_guest(&empty, Pass, "no next header (59) after hop-by-hop");
}

#[test]
fn from_guest_ipv6_step2_eight_extension_headers_pass_a_ninth_is_malformed() {
    let mut eight = v6_from_guest(GUEST_V6, GATEWAY_V6);
    for _ in 0..8 {
        eight = eight.dest_opts();
    }
    let nine = eight.clone().routing();
    sent_by_guest(&eight.udp(40000, 53).build(), Pass, "8 extension headers");
    sent_by_guest(
        &nine.udp(40000, 53).build(),
        Ipv6Malformed,
        "9 extension headers",
    );
    let mut mixed = v6_from_guest(GUEST_V6, GATEWAY_V6);
    for _ in 0..2 {
        mixed = mixed.hop_by_hop().routing().ah().fragment(0, false);
    }
    sent_by_guest(&mixed.clone().build(), Pass, "8 mixed extension headers");
    sent_by_guest(
        &mixed.dest_opts().build(),
        Ipv6Malformed,
        "9 mixed extension headers",
    );
}

#[test]
fn from_guest_ipv6_step2_extension_header_running_past_the_frame_is_malformed() {
    let too_long = v6_from_guest(GUEST_V6, GATEWAY_V6)
        .ext_raw(proto::DEST_OPTS, 10, &[0; 6])
        .udp(40000, 53)
        .payload(&[0; 40])
        .build();
    sent_by_guest(
        &too_long,
        Ipv6Malformed,
        "destination options claiming 88 bytes of 62",
    );
    let ah_too_long = v6_from_guest(GUEST_V6, GATEWAY_V6)
        .ext_raw(proto::AH, 10, &[0; 22])
        .udp(40000, 53)
        .build();
    sent_by_guest(&ah_too_long, Ipv6Malformed, "AH claiming 48 bytes of 32");
    let hbh = v6_from_guest(GUEST_V6, GATEWAY_V6)
        .hop_by_hop()
        .udp(40000, 53)
        .build();
    sent_by_guest(
        &hbh[..55],
        Ipv6Malformed,
        "hop-by-hop with 1 byte in the frame",
    );
    sent_by_guest(&hbh[..61], Ipv6Malformed, "hop-by-hop with 7 of 8 bytes");
    let fragment = v6_from_guest(GUEST_V6, GATEWAY_V6)
        .fragment(0, true)
        .udp(40000, 53)
        .build();
    sent_by_guest(&fragment[..61], Ipv6Malformed, "fragment header cut");
}

#[test]
fn from_guest_ipv6_headers_beyond_the_parse_window_are_malformed() {
    // 54 + 448 = 502: the UDP header ends at 510, inside the window.
    let inside = v6_from_guest(GUEST_V6, GATEWAY_V6)
        .dest_opts_sized(448)
        .udp(40000, 53)
        .payload(&[0; 1000])
        .build();
    sent_by_guest(
        &inside,
        Pass,
        "UDP header ending at 510 of a 1518-byte frame",
    );
    // 54 + 456 = 510: the UDP header would end at 518, past the window.
    let outside = v6_from_guest(GUEST_V6, GATEWAY_V6)
        .dest_opts_sized(456)
        .udp(40000, 53)
        .payload(&[0; 1000])
        .build();
    sent_by_guest(
        &outside,
        Ipv6Malformed,
        "UDP header ending at 518, past the 512-byte window",
    );
    let straddling = v6_from_guest(GUEST_V6, GATEWAY_V6)
        .dest_opts_sized(464)
        .udp(40000, 53)
        .payload(&[0; 1000])
        .build();
    sent_by_guest(
        &straddling,
        Ipv6Malformed,
        "an extension header ending past the window",
    );
    let big_ipv4 = v4_from_guest(GUEST_V4, REMOTE_V4)
        .udp(40000, 53)
        .payload(&[0; 1400])
        .build();
    sent_by_guest(&big_ipv4, Pass, "a full-size IPv4 frame");
    assert!(
        big_ipv4.len() > PARSE_WINDOW,
        "the frame is expected to exceed the parse window"
    );
}

#[test]
fn from_guest_ipv6_step2_non_first_fragment_has_no_upper_layer() {
    // Bytes after the fragment header that would read as an RA or as a
    // DHCPv6 server message are payload, not headers.
    let ra_lookalike = v6_from_guest(GUEST_V6, GATEWAY_V6)
        .fragment(10, false)
        .protocol(proto::ICMPV6)
        .payload(&[icmp6::ROUTER_ADVERTISEMENT, 0, 0, 0, 64, 0, 7, 8])
        .build();
    sent_by_guest(&ra_lookalike, Pass, "non-first ICMPv6 fragment");
    let dhcp_lookalike = v6_from_guest(GUEST_V6, GATEWAY_V6)
        .fragment(1, true)
        .protocol(proto::UDP)
        .payload(&[0x02, 0x23, 0x02, 0x22])
        .build();
    sent_by_guest(&dhcp_lookalike, Pass, "non-first UDP fragment");
    let from_unspecified = v6_from_guest(Ipv6Addr::UNSPECIFIED, GATEWAY_V6)
        .fragment(1, false)
        .protocol(proto::ICMPV6)
        .payload(&[icmp6::MLD_REPORT, 0, 0, 0])
        .build();
    sent_by_guest(&from_unspecified, Ipv6Spoof, "non-first fragment from ::");
    // A fragment header after the non-first fragment header is not walked:
    // the walk stops, so a chain of nine is not reached.
    let mut long_tail = v6_from_guest(GUEST_V6, GATEWAY_V6).fragment(3, false);
    for _ in 0..9 {
        long_tail = long_tail.dest_opts();
    }
    sent_by_guest(
        &long_tail.build(),
        Pass,
        "headers after a non-first fragment header",
    );
}

#[test]
fn from_guest_ipv6_step3_upper_layer_headers_must_fit() {
    let ping = v6_from_guest(GUEST_V6, GATEWAY_V6)
        .echo_request(1, 1)
        .build();
    sent_by_guest(&ping, Pass, "ICMPv6 echo request");
    sent_by_guest(&ping[..57], Ipv6Malformed, "ICMPv6 header cut to 3 bytes");
    sent_by_guest(&ping[..58], Pass, "ICMPv6 type/code/checksum only");
    let udp = v6_from_guest(GUEST_V6, GATEWAY_V6).udp(40000, 53).build();
    sent_by_guest(&udp[..61], Ipv6Malformed, "UDP header cut to 7 bytes");
    let tcp = v6_from_guest(GUEST_V6, GATEWAY_V6)
        .protocol(proto::TCP)
        .build();
    sent_by_guest(&tcp, Pass, "TCP: no header of it is looked at");
}

#[test]
fn from_guest_ipv6_step4_nd_option_walk_must_be_well_formed() {
    let ns = || {
        v6_from_guest(GUEST_V6, GATEWAY_V6)
            .neighbor_solicitation(GATEWAY_V6)
            .slla(GUEST)
    };
    sent_by_guest(&ns().build(), Pass, "NS with SLLA");
    let zero_len = ns().raw_option(14, 0, &[0; 6]).build();
    sent_by_guest(&zero_len, NdMalformed, "an option of length 0");
    let past_end = ns().raw_option(14, 2, &[0; 6]).build();
    sent_by_guest(&past_end, NdMalformed, "an option claiming 16 of 8 bytes");
    let odd_tail = ns().data(&[0]).build();
    sent_by_guest(&odd_tail, NdMalformed, "one byte after the last option");
    let fixed_cut = ns().build();
    sent_by_guest(
        &fixed_cut[..74],
        NdMalformed,
        "NS fixed part cut to 20 of 24 bytes",
    );
    let rs = v6_from_guest(guest_ll(), ALL_ROUTERS)
        .router_solicitation()
        .build();
    sent_by_guest(&rs[..61], NdMalformed, "RS fixed part cut");

    let mut sixteen = v6_from_guest(GUEST_V6, GATEWAY_V6).neighbor_solicitation(GATEWAY_V6);
    for i in 0..16 {
        sixteen = sixteen.option(14, &[i; 6]);
    }
    sent_by_guest(&sixteen.clone().build(), Pass, "16 nonce options");
    let seventeen = sixteen.option(14, &[17; 6]).build();
    sent_by_guest(&seventeen, NdMalformed, "17 options: more than MAX_ND_OPTS");
}

#[test]
fn from_guest_ipv6_step4_nd_options_end_where_the_parse_window_ends() {
    // NS fixed part ends at 78; a 432-byte option brings o to 510.
    let ns = || {
        v6_from_guest(GUEST_V6, GATEWAY_V6)
            .neighbor_solicitation(GATEWAY_V6)
            .option(200, &[0; 430])
    };
    sent_by_guest(&ns().build(), Pass, "options ending at 510");
    let crossing = ns().slla(GUEST).build();
    sent_by_guest(
        &crossing,
        NdMalformed,
        "an option crossing byte 512, though whole in the frame",
    );
}

#[test]
fn from_guest_ipv6_step5_source_must_be_listed_or_an_allowed_link_local() {
    // (source, `ipv6` list, verdict, what)
    let table = [
        (GUEST_V6, "2001:db8::10/128", Pass, "the listed address"),
        (
            guest_ll(),
            "2001:db8::10/128",
            Pass,
            "the MAC-derived link-local",
        ),
        (
            OTHER_V6,
            "2001:db8::10/128",
            Ipv6Spoof,
            "a neighbour's address",
        ),
        (
            RANDOM_LL,
            "2001:db8::10/128",
            Ipv6LinkLocal,
            "a random fe80::/64 address",
        ),
        (
            link_local(OTHER),
            "2001:db8::10/128",
            Ipv6LinkLocal,
            "a neighbour's link-local",
        ),
        (
            NOT_LL_64,
            "2001:db8::10/128",
            Ipv6Spoof,
            "fe80:0:0:1::1, outside fe80::/64",
        ),
        (
            OTHER_V6,
            "2001:db8::/64",
            Pass,
            "a source in the allowed /64",
        ),
        (
            REMOTE_V6,
            "2001:db8::/64",
            Ipv6Spoof,
            "a source outside the allowed /64",
        ),
        (REMOTE_V6, "::/0", Pass, "any source with ::/0"),
        (RANDOM_LL, "::/0", Pass, "::/0 covers link-local too"),
    ];
    for (src, list, want, what) in table {
        for p in guarded(|p| p.ipv6 = vec![cidr6(list)]) {
            from_guest(&p, &udp6_from_guest(src, GATEWAY_V6), want, what);
        }
    }
}

#[test]
fn from_guest_ipv6_step5_option_ipv6_link_local_decides_which_fe80_sources_pass() {
    // (option, source, verdict)
    let table = [
        (LinkLocal::Derived, guest_ll(), Pass),
        (LinkLocal::Derived, RANDOM_LL, Ipv6LinkLocal),
        (LinkLocal::Derived, NOT_LL_64, Ipv6Spoof),
        (LinkLocal::Any, guest_ll(), Pass),
        (LinkLocal::Any, RANDOM_LL, Pass),
        (LinkLocal::Any, NOT_LL_64, Ipv6Spoof),
        (LinkLocal::None, guest_ll(), Ipv6LinkLocal),
        (LinkLocal::None, RANDOM_LL, Ipv6LinkLocal),
        (LinkLocal::None, GUEST_V6, Pass),
    ];
    for (option, src, want) in table {
        let what = format!("UDP from {src}, ipv6_link_local = {}", option.name());
        for p in guarded(|p| p.options.link_local = option) {
            from_guest(&p, &udp6_from_guest(src, GATEWAY_V6), want, &what);
        }
    }
    // With `none`, a link-local address in the `ipv6` list still passes.
    for p in guarded(|p| {
        p.options.link_local = LinkLocal::None;
        p.ipv6.push(Cidr6::host(RANDOM_LL));
    }) {
        let what = "a listed link-local, ipv6_link_local = none";
        from_guest(&p, &udp6_from_guest(RANDOM_LL, GATEWAY_V6), Pass, what);
    }
}

#[test]
fn from_guest_ipv6_step5_unspecified_source_only_for_dad_and_mld_reports() {
    let dad = dad_probe(GUEST_V6).neighbor_solicitation(GUEST_V6).build();
    sent_by_guest(&dad, Pass, "DAD probe for the guest's address");
    let dad_other = dad_probe(OTHER_V6).neighbor_solicitation(OTHER_V6).build();
    sent_by_guest(
        &dad_other,
        Pass,
        "DAD probe for any address (the target is not checked)",
    );
    let dad_nonce = dad_probe(GUEST_V6)
        .neighbor_solicitation(GUEST_V6)
        .option(14, &[1, 2, 3, 4, 5, 6])
        .build();
    sent_by_guest(&dad_nonce, Pass, "DAD probe with a nonce option (RFC 7527)");
    let mld = v6_from_guest(Ipv6Addr::UNSPECIFIED, solicited_node(GUEST_V6))
        .mld_report(solicited_node(GUEST_V6))
        .build();
    sent_by_guest(&mld, Pass, "MLDv1 report from ::");
    let mld2 = v6_from_guest(Ipv6Addr::UNSPECIFIED, ALL_MLDV2_ROUTERS)
        .mldv2_report(&[solicited_node(GUEST_V6)])
        .build();
    sent_by_guest(&mld2, Pass, "MLDv2 report from ::");

    let dad_slla = dad_probe(GUEST_V6)
        .neighbor_solicitation(GUEST_V6)
        .slla(GUEST)
        .build();
    sent_by_guest(
        &dad_slla,
        Ipv6Spoof,
        "NS from :: with a source link-layer option",
    );
    let dad_long_slla = dad_probe(GUEST_V6)
        .neighbor_solicitation(GUEST_V6)
        .option(1, &[0; 14])
        .build();
    sent_by_guest(
        &dad_long_slla,
        Ipv6Spoof,
        "NS from :: with a 16-byte source link-layer option",
    );
    let dad_all_nodes = v6_from_guest(Ipv6Addr::UNSPECIFIED, ALL_NODES)
        .neighbor_solicitation(GUEST_V6)
        .build();
    sent_by_guest(&dad_all_nodes, Ipv6Spoof, "NS from :: to all-nodes");
    let dad_unicast = v6_from_guest(Ipv6Addr::UNSPECIFIED, GATEWAY_V6)
        .neighbor_solicitation(GATEWAY_V6)
        .build();
    sent_by_guest(&dad_unicast, Ipv6Spoof, "NS from :: to a unicast address");
    let dad_bad_options = dad_probe(GUEST_V6)
        .neighbor_solicitation(GUEST_V6)
        .raw_option(14, 0, &[0; 6])
        .build();
    sent_by_guest(
        &dad_bad_options,
        Ipv6Spoof,
        "NS from :: with a malformed option walk",
    );
    sent_by_guest(&dad[..70], Ipv6Spoof, "NS from :: with its fixed part cut");
    let dad_fragment = dad_probe(GUEST_V6)
        .fragment(1, false)
        .protocol(proto::ICMPV6)
        .payload(&[icmp6::NEIGHBOR_SOLICITATION, 0, 0, 0])
        .build();
    sent_by_guest(&dad_fragment, Ipv6Spoof, "non-first fragment from ::");
    let done = v6_from_guest(Ipv6Addr::UNSPECIFIED, ALL_ROUTERS)
        .icmpv6(icmp6::MLD_DONE, 0)
        .data(&[0; 4])
        .data(&solicited_node(GUEST_V6).octets())
        .build();
    sent_by_guest(&done, Ipv6Spoof, "MLD done from ::");
    let rs = v6_from_guest(Ipv6Addr::UNSPECIFIED, ALL_ROUTERS)
        .router_solicitation()
        .build();
    sent_by_guest(&rs, Ipv6Spoof, "RS from ::");
    let udp = udp6_from_guest(Ipv6Addr::UNSPECIFIED, GATEWAY_V6);
    sent_by_guest(&udp, Ipv6Spoof, "UDP from ::");
    for p in guarded(|p| p.ipv6 = vec![cidr6("::/0")]) {
        from_guest(&p, &udp, Ipv6Spoof, "UDP from :: even with ::/0 listed");
        from_guest(&p, &dad, Pass, "DAD with ::/0 listed");
    }
    // Step 6 still applies to a DAD probe that step 5 allowed.
    let dad_hop64 = dad_probe(GUEST_V6)
        .neighbor_solicitation(GUEST_V6)
        .hop_limit(64)
        .build();
    sent_by_guest(&dad_hop64, NdMalformed, "DAD probe with hop limit 64");
}

#[test]
fn from_guest_ipv6_step6_1_nd_needs_hop_limit_255() {
    let messages = [
        (
            "RS",
            v6_from_guest(guest_ll(), ALL_ROUTERS).router_solicitation(),
        ),
        (
            "NS",
            v6_from_guest(GUEST_V6, GATEWAY_V6).neighbor_solicitation(GATEWAY_V6),
        ),
        (
            "NA",
            v6_from_guest(GUEST_V6, GATEWAY_V6)
                .neighbor_advertisement(GUEST_V6, na_flags::SOLICITED),
        ),
    ];
    for (what, msg) in messages {
        sent_by_guest(
            &msg.clone().build(),
            Pass,
            &format!("{what} with hop limit 255"),
        );
        sent_by_guest(
            &msg.clone().hop_limit(254).build(),
            NdMalformed,
            &format!("{what} with hop limit 254"),
        );
        sent_by_guest(
            &msg.hop_limit(1).build(),
            NdMalformed,
            &format!("{what} with hop limit 1"),
        );
    }
    // Checked before ra_guard.
    let ra = v6_from_guest(guest_ll(), ALL_NODES)
        .router_advertisement()
        .hop_limit(64)
        .build();
    sent_by_guest(&ra, NdMalformed, "RA with hop limit 64, router off");
}

#[test]
fn from_guest_ipv6_step6_2_nd_inside_a_fragmented_packet_is_malformed() {
    let atomic = v6_from_guest(GUEST_V6, GATEWAY_V6)
        .fragment(0, false)
        .neighbor_solicitation(GATEWAY_V6)
        .build();
    sent_by_guest(&atomic, NdMalformed, "NS in an atomic fragment (RFC 6980)");
    let first = v6_from_guest(guest_ll(), ALL_ROUTERS)
        .fragment(0, true)
        .router_solicitation()
        .build();
    sent_by_guest(&first, NdMalformed, "RS in a first fragment");
    let ping = v6_from_guest(GUEST_V6, GATEWAY_V6)
        .fragment(0, true)
        .echo_request(1, 1)
        .build();
    sent_by_guest(&ping, Pass, "echo request in a first fragment");
}

#[test]
fn from_guest_ipv6_step6_4_router_advertisements_and_redirects_need_option_router() {
    let ra = v6_from_guest(guest_ll(), ALL_NODES)
        .router_advertisement()
        .slla(GUEST)
        .mtu(1500)
        .prefix_info(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0), 64)
        .build();
    let redirect = v6_from_guest(guest_ll(), link_local(OTHER))
        .redirect(guest_ll(), REMOTE_V6)
        .tlla(GUEST)
        .build();
    sent_by_guest(&ra, RaGuard, "RA with router off (default)");
    sent_by_guest(&redirect, RaGuard, "Redirect with router off (default)");
    for p in guarded(|p| {
        p.options.router = true;
        p.destinations.push(Cidr::V6(cidr6("fe80::/64")));
    }) {
        from_guest(&p, &ra, Pass, "RA with router on");
        from_guest(&p, &redirect, Pass, "Redirect with router on");
    }
    let rs = v6_from_guest(guest_ll(), ALL_ROUTERS)
        .router_solicitation()
        .slla(GUEST)
        .build();
    sent_by_guest(&rs, Pass, "RS needs no option");
    // Source rules come first: an RA from a foreign source is spoofing.
    let foreign_ra = v6_from_guest(router_ll(), ALL_NODES)
        .router_advertisement()
        .build();
    sent_by_guest(
        &foreign_ra,
        Ipv6LinkLocal,
        "RA from the gateway's link-local",
    );
    // Malformed options are reported before ra_guard.
    let bad_ra = v6_from_guest(guest_ll(), ALL_NODES)
        .router_advertisement()
        .raw_option(3, 0, &[0; 6])
        .build();
    sent_by_guest(&bad_ra, NdMalformed, "RA with a zero-length option");
}

#[test]
fn from_guest_ipv6_step6_5_neighbor_advertisement_target_must_be_allowed() {
    let na = |src: Ipv6Addr, target: Ipv6Addr| {
        v6_from_guest(src, ALL_NODES)
            .neighbor_advertisement(target, na_flags::OVERRIDE)
            .tlla(GUEST)
            .build()
    };
    sent_by_guest(&na(GUEST_V6, GUEST_V6), Pass, "NA for the guest's address");
    sent_by_guest(
        &na(guest_ll(), guest_ll()),
        Pass,
        "NA for the derived link-local",
    );
    sent_by_guest(
        &na(GUEST_V6, OTHER_V6),
        NdSpoof,
        "NA for a neighbour's address",
    );
    sent_by_guest(
        &na(GUEST_V6, GATEWAY_V6),
        NdSpoof,
        "NA for the gateway's address",
    );
    sent_by_guest(
        &na(guest_ll(), RANDOM_LL),
        NdSpoof,
        "NA for a random link-local",
    );
    sent_by_guest(&na(GUEST_V6, Ipv6Addr::UNSPECIFIED), NdSpoof, "NA for ::");
    for p in guarded(|p| p.options.link_local = LinkLocal::Any) {
        from_guest(
            &p,
            &na(guest_ll(), RANDOM_LL),
            Pass,
            "NA for a random link-local, option any",
        );
    }
    for p in guarded(|p| p.options.link_local = LinkLocal::None) {
        from_guest(
            &p,
            &na(GUEST_V6, guest_ll()),
            NdSpoof,
            "NA for the derived link-local, option none",
        );
    }
    for p in guarded(|p| p.ipv6 = vec![cidr6("::/0")]) {
        from_guest(
            &p,
            &na(GUEST_V6, OTHER_V6),
            Pass,
            "NA for any address with ::/0",
        );
        from_guest(
            &p,
            &na(GUEST_V6, Ipv6Addr::UNSPECIFIED),
            NdSpoof,
            "NA for :: even with ::/0",
        );
    }
}

#[test]
fn from_guest_ipv6_step6_6_link_layer_options_must_carry_the_guests_mac() {
    let ns = || v6_from_guest(GUEST_V6, GATEWAY_V6).neighbor_solicitation(GATEWAY_V6);
    let na =
        || v6_from_guest(GUEST_V6, ALL_NODES).neighbor_advertisement(GUEST_V6, na_flags::OVERRIDE);
    let rs = || v6_from_guest(guest_ll(), ALL_ROUTERS).router_solicitation();
    sent_by_guest(&ns().slla(GUEST).build(), Pass, "NS with the guest's SLLA");
    sent_by_guest(
        &ns().slla(OTHER).build(),
        NdSpoof,
        "NS with a neighbour's SLLA",
    );
    sent_by_guest(&na().tlla(GUEST).build(), Pass, "NA with the guest's TLLA");
    sent_by_guest(
        &na().tlla(OTHER).build(),
        NdSpoof,
        "NA with a neighbour's TLLA",
    );
    sent_by_guest(&na().build(), Pass, "NA without TLLA");
    sent_by_guest(
        &rs().slla(ROUTER).build(),
        NdSpoof,
        "RS with the gateway's SLLA",
    );
    let second = ns().slla(GUEST).mtu(1500).slla(OTHER).build();
    sent_by_guest(&second, NdSpoof, "NS whose second SLLA is a neighbour's");
    // Only the 8-byte Ethernet form is a link-layer address: a longer
    // option is not read as one (receivers on Ethernet discard it).
    let long = ns().option(1, &[OTHER, [0; 6]].concat()).build();
    sent_by_guest(
        &long,
        Pass,
        "a 16-byte SLLA option is not an Ethernet address",
    );
    // The NA target check comes before the option check.
    let both = v6_from_guest(GUEST_V6, ALL_NODES)
        .neighbor_advertisement(OTHER_V6, na_flags::OVERRIDE)
        .tlla(OTHER)
        .build();
    sent_by_guest(&both, NdSpoof, "NA with a foreign target and TLLA");
}

#[test]
fn from_guest_ipv6_step7_dhcpv6_server_messages_need_option_dhcp_server() {
    let advertise = v6_from_guest(guest_ll(), link_local(OTHER))
        .udp(547, 546)
        .payload(&dhcpv6_advertise(OTHER, GUEST, XID, OTHER_V6))
        .build();
    let relay = v6_from_guest(GUEST_V6, GATEWAY_V6).udp(547, 547).build();
    from_guest(
        &locked(),
        &advertise,
        DhcpServer,
        "DHCPv6 ADVERTISE, dhcp_server off",
    );
    sent_by_guest(
        &relay,
        DhcpServer,
        "DHCPv6 relay 547 -> 547, dhcp_server off",
    );
    let odd_port_advertise = v6_from_guest(guest_ll(), link_local(OTHER))
        .udp(1234, 546)
        .payload(&dhcpv6_advertise(OTHER, GUEST, XID, OTHER_V6))
        .build();
    from_guest(
        &locked(),
        &odd_port_advertise,
        DhcpServer,
        "DHCPv6 ADVERTISE from port 1234, dhcp_server off",
    );
    let p = with(locked(), |p| p.options.dhcp_server = true);
    from_guest(&p, &advertise, Pass, "DHCPv6 ADVERTISE, dhcp_server on");
    from_guest(
        &p,
        &odd_port_advertise,
        Pass,
        "DHCPv6 ADVERTISE from port 1234, dhcp_server on",
    );
    from_guest(&p, &relay, Pass, "DHCPv6 relay, dhcp_server on");

    sent_by_guest(
        &dhcpv6_solicit_from_guest(),
        Pass,
        "DHCPv6 SOLICIT from the derived link-local",
    );
    for p in guarded(|p| p.options.dhcp_client = false) {
        from_guest(
            &p,
            &dhcpv6_solicit_from_guest(),
            Pass,
            "dhcp_client off does not block DHCPv6 clients",
        );
    }
    let solicit_random = v6_from_guest(RANDOM_LL, ALL_DHCP_AGENTS)
        .udp(546, 547)
        .payload(&dhcpv6_solicit(GUEST, XID))
        .build();
    sent_by_guest(
        &solicit_random,
        Ipv6LinkLocal,
        "SOLICIT from a random link-local",
    );
}

#[test]
fn from_guest_ipv6_step8_isolated_destination_must_be_listed_except_bootstrap_multicast() {
    let iso = isolated();
    from_guest(
        &iso,
        &udp6_from_guest(GUEST_V6, REMOTE_V6),
        Pass,
        "to a listed /48",
    );
    from_guest(
        &iso,
        &udp6_from_guest(GUEST_V6, FORBIDDEN_V6),
        Isolation,
        "to an unlisted address",
    );
    from_guest(
        &iso,
        &udp6_from_guest(GUEST_V6, OTHER_V6),
        Isolation,
        "to a neighbour",
    );
    let bootstrap = [
        (
            dad_probe(GUEST_V6).neighbor_solicitation(GUEST_V6).build(),
            "DAD probe",
        ),
        (
            v6_from_guest(GUEST_V6, solicited_node(OTHER_V6))
                .neighbor_solicitation(OTHER_V6)
                .slla(GUEST)
                .build(),
            "address resolution NS to a solicited-node group",
        ),
        (
            v6_from_guest(guest_ll(), ALL_ROUTERS)
                .router_solicitation()
                .slla(GUEST)
                .build(),
            "RS to all-routers",
        ),
        (
            v6_from_guest(GUEST_V6, ALL_NODES)
                .neighbor_advertisement(GUEST_V6, na_flags::OVERRIDE)
                .tlla(GUEST)
                .build(),
            "unsolicited NA to all-nodes",
        ),
        (
            v6_from_guest(guest_ll(), ALL_MLDV2_ROUTERS)
                .mldv2_report(&[solicited_node(GUEST_V6)])
                .build(),
            "MLDv2 report",
        ),
        (
            v6_from_guest(guest_ll(), solicited_node(GUEST_V6))
                .mld_report(solicited_node(GUEST_V6))
                .build(),
            "MLDv1 report",
        ),
        (dhcpv6_solicit_from_guest(), "DHCPv6 SOLICIT"),
    ];
    for (frame, what) in &bootstrap {
        from_guest(&iso, frame, Pass, what);
    }
    let ping_all = v6_from_guest(GUEST_V6, ALL_NODES)
        .echo_request(1, 1)
        .build();
    from_guest(&iso, &ping_all, Isolation, "echo request to all-nodes");
    let mdns = v6_from_guest(guest_ll(), "ff02::fb".parse().expect("literal"))
        .udp(5353, 5353)
        .build();
    from_guest(&iso, &mdns, Isolation, "mDNS to ff02::fb");
    let dhcp_unicast = v6_from_guest(guest_ll(), FORBIDDEN_V6)
        .udp(546, 547)
        .build();
    from_guest(
        &iso,
        &dhcp_unicast,
        Isolation,
        "DHCPv6 client to an unlisted unicast server",
    );
    let nud = v6_from_guest(GUEST_V6, FORBIDDEN_V6)
        .neighbor_solicitation(FORBIDDEN_V6)
        .slla(GUEST)
        .build();
    from_guest(&iso, &nud, Isolation, "unicast NS to an unlisted address");
    let fragment = v6_from_guest(GUEST_V6, FORBIDDEN_V6)
        .fragment(1, false)
        .protocol(proto::UDP)
        .payload(&[0; 8])
        .build();
    from_guest(
        &iso,
        &fragment,
        Isolation,
        "a non-first fragment to an unlisted address",
    );
    let router = with(isolated(), |p| p.options.router = true);
    let ra = v6_from_guest(guest_ll(), ALL_NODES)
        .router_advertisement()
        .build();
    from_guest(&router, &ra, Pass, "RA to all-nodes, router on");
    let redirect = v6_from_guest(guest_ll(), ALL_NODES)
        .redirect(guest_ll(), REMOTE_V6)
        .build();
    from_guest(
        &router,
        &redirect,
        Isolation,
        "Redirect (137) is not in the multicast exception",
    );
    let lock = locked();
    for frame in [
        udp6_from_guest(GUEST_V6, FORBIDDEN_V6),
        ping_all,
        mdns,
        nud,
        fragment,
    ] {
        from_guest(
            &lock,
            &frame,
            Pass,
            "locked mode does not check destinations",
        );
    }
}

#[test]
fn locked_vif_without_addresses_may_only_bootstrap() {
    let bare = guarded(|p| {
        p.ipv4.clear();
        p.ipv6.clear();
    });
    let probe = Frame::eth(GUEST, BROADCAST)
        .arp(arp_op::REQUEST)
        .tpa(GUEST_V4)
        .build();
    let dad = dad_probe(GUEST_V6).neighbor_solicitation(GUEST_V6).build();
    for p in &bare {
        from_guest(p, &dhcp_discover(), Pass, "DHCPDISCOVER without addresses");
        // An isolated vif's ARP target must be listed: without addresses,
        // not even the probe for the address DHCP offered is.
        let probe_verdict = if p.mode == Mode::Isolated {
            Isolation
        } else {
            Pass
        };
        from_guest(p, &probe, probe_verdict, "ARP probe without addresses");
        from_guest(p, &dad, Pass, "DAD probe without addresses");
        from_guest(
            p,
            &dhcpv6_solicit_from_guest(),
            Pass,
            "DHCPv6 SOLICIT from the derived link-local",
        );
        from_guest(
            p,
            &arp_request_from_guest().build(),
            ArpSpaSpoof,
            "ARP from an address",
        );
        from_guest(
            p,
            &udp4_from_guest(GUEST_V4, REMOTE_V4),
            Ipv4Spoof,
            "IPv4 from an address",
        );
        from_guest(
            p,
            &udp6_from_guest(GUEST_V6, REMOTE_V6),
            Ipv6Spoof,
            "IPv6 from a global address",
        );
    }
}

// ===========================================================================
// To the guest
// ===========================================================================

#[test]
fn to_guest_step1_unicast_to_other_macs_is_sniff_mac() {
    let table = [
        (GUEST, Pass, "unicast to the guest's MAC"),
        (OTHER, SniffMac, "unicast to a neighbour's MAC"),
        (ROUTER, SniffMac, "unicast to the gateway's MAC"),
        (BROADCAST, Pass, "broadcast"),
        (
            ipv4_multicast_mac(Ipv4Addr::new(224, 0, 0, 251)),
            Pass,
            "IPv4 multicast MAC",
        ),
        (ipv6_multicast_mac(ALL_NODES), Pass, "IPv6 multicast MAC"),
    ];
    for (dst, want, what) in table {
        let frame = Frame::eth(ROUTER, dst)
            .ipv4(GATEWAY_V4, GUEST_V4)
            .udp(53, 40000)
            .build();
        sent_to_guest(&frame, want, what);
    }
    let lldp = Frame::eth(ROUTER, OTHER).ethertype(ethertype::LLDP).build();
    sent_to_guest(&lldp, SniffMac, "any EtherType to a neighbour's MAC");
}

#[test]
fn to_guest_step2_vlan_tagged_frames_are_not_looked_into() {
    let tagged = Frame::eth(ROUTER, GUEST)
        .vlan(10)
        .ipv4(GATEWAY_V4, OTHER_V4)
        .udp(53, 40000)
        .build();
    sent_to_guest(
        &tagged,
        Pass,
        "tagged IPv4 to the guest's MAC (inner header not read)",
    );
    let tagged_other = Frame::eth(ROUTER, OTHER)
        .vlan(10)
        .ipv4(GATEWAY_V4, OTHER_V4)
        .udp(53, 40000)
        .build();
    sent_to_guest(&tagged_other, SniffMac, "tagged frame to a neighbour's MAC");
}

#[test]
fn to_guest_step3_arp_must_target_the_guests_addresses() {
    let request = |tpa: Ipv4Addr| {
        Frame::eth(ROUTER, BROADCAST)
            .arp(arp_op::REQUEST)
            .sha(ROUTER)
            .spa(GATEWAY_V4)
            .tpa(tpa)
    };
    let reply = |tpa: Ipv4Addr| {
        Frame::eth(ROUTER, GUEST)
            .arp(arp_op::REPLY)
            .sha(ROUTER)
            .spa(GATEWAY_V4)
            .tha(GUEST)
            .tpa(tpa)
    };
    sent_to_guest(
        &request(GUEST_V4).build(),
        Pass,
        "broadcast request for the guest's address",
    );
    sent_to_guest(&reply(GUEST_V4).build(), Pass, "reply to the guest");
    sent_to_guest(
        &request(OTHER_V4).build(),
        SniffArp,
        "broadcast request for a neighbour",
    );
    sent_to_guest(
        &reply(OTHER_V4).build(),
        SniffArp,
        "unicast reply naming another target",
    );
    let gratuitous = Frame::eth(OTHER, BROADCAST)
        .arp(arp_op::REQUEST)
        .sha(OTHER)
        .spa(OTHER_V4)
        .tpa(OTHER_V4)
        .build();
    sent_to_guest(&gratuitous, SniffArp, "a neighbour's gratuitous ARP");
    sent_to_guest(
        &request(GUEST_V4).op(3).build(),
        ArpMalformed,
        "ARP opcode 3 to the guest",
    );
    sent_to_guest(
        &request(GUEST_V4).hlen(8).build(),
        ArpMalformed,
        "ARP hlen 8 to the guest",
    );
    sent_to_guest(
        &request(GUEST_V4).build()[..41],
        ArpMalformed,
        "ARP cut to 41 bytes",
    );
    for p in guarded(|p| p.ipv4 = vec![cidr4("192.0.2.0/24")]) {
        to_guest(
            &p,
            &request(OTHER_V4).build(),
            Pass,
            "request for an address in the guest's /24",
        );
    }
    for p in guarded(|p| p.ipv4.clear()) {
        to_guest(
            &p,
            &request(GUEST_V4).build(),
            SniffArp,
            "any ARP while the guest has no IPv4",
        );
    }
    let rarp = Frame::eth(OTHER, BROADCAST).rarp().build();
    sent_to_guest(&rarp, Pass, "a neighbour's RARP announce (not ARP)");
}

#[test]
fn to_guest_step4_ipv4_unicast_must_be_for_the_guests_addresses() {
    let udp = |dst: Ipv4Addr| v4_to_guest(REMOTE_V4, dst).udp(53, 40000).build();
    sent_to_guest(&udp(GUEST_V4), Pass, "UDP to the guest's address");
    sent_to_guest(
        &udp(OTHER_V4),
        SniffIp,
        "UDP to a neighbour's address via the guest's MAC",
    );
    let ping = v4_to_guest(REMOTE_V4, OTHER_V4)
        .icmp_echo_request(1, 1)
        .build();
    sent_to_guest(&ping, SniffIp, "ICMP to a neighbour's address");
    for p in guarded(|p| p.ipv4 = vec![cidr4("192.0.2.0/24")]) {
        to_guest(&p, &udp(OTHER_V4), Pass, "destination in the guest's /24");
    }
    let broadcast = Frame::eth(ROUTER, BROADCAST)
        .ipv4(GATEWAY_V4, Ipv4Addr::new(192, 0, 2, 255))
        .udp(137, 137)
        .build();
    sent_to_guest(&broadcast, Pass, "broadcast IPv4 is not looked into");
    let cut_broadcast = &broadcast[..20];
    sent_to_guest(
        cut_broadcast,
        Pass,
        "a cut broadcast IPv4 is not looked into either",
    );

    let own = udp(GUEST_V4);
    sent_to_guest(&own[..33], Ipv4Malformed, "IPv4 header cut");
    sent_to_guest(
        &own[..41],
        Ipv4Malformed,
        "UDP header cut, even for the guest's address",
    );
    let ihl4 = v4_to_guest(REMOTE_V4, GUEST_V4)
        .ihl(4)
        .udp(53, 40000)
        .build();
    sent_to_guest(&ihl4, Ipv4Malformed, "IHL 4");
    let fragment = v4_to_guest(REMOTE_V4, GUEST_V4)
        .fragment_offset(100)
        .protocol(proto::UDP)
        .build();
    sent_to_guest(
        &fragment,
        Pass,
        "a non-first fragment to the guest's address",
    );
}

#[test]
fn to_guest_step4_dhcp_offer_passes_only_while_the_guest_has_no_ipv4() {
    let fresh = guarded(|p| p.ipv4.clear());
    for p in &fresh {
        to_guest(
            p,
            &dhcp_offer_to_guest(GUEST_V4),
            Pass,
            "unicast DHCPOFFER before the guest has an address",
        );
        let not_dhcp = v4_to_guest(GATEWAY_V4, GUEST_V4).udp(53, 68).build();
        to_guest(p, &not_dhcp, SniffIp, "UDP 53 -> 68 is no DHCP reply");
        let reversed = v4_to_guest(GATEWAY_V4, GUEST_V4).udp(68, 67).build();
        to_guest(p, &reversed, SniffIp, "UDP 68 -> 67 is no DHCP reply");
        let fragment = v4_to_guest(GATEWAY_V4, GUEST_V4)
            .fragment_offset(1)
            .protocol(proto::UDP)
            .payload(&[0, 67, 0, 68])
            .build();
        to_guest(p, &fragment, SniffIp, "a non-first fragment has no ports");
        let cut = dhcp_offer_to_guest(GUEST_V4);
        to_guest(
            p,
            &cut[..40],
            Ipv4Malformed,
            "DHCPOFFER with the UDP header cut",
        );
    }
    sent_to_guest(
        &dhcp_offer_to_guest(OTHER_V4),
        SniffIp,
        "DHCPOFFER for another address once the guest has one",
    );
    sent_to_guest(
        &dhcp_offer_to_guest(GUEST_V4),
        Pass,
        "DHCPOFFER to the guest's address (a renewal)",
    );
}

#[test]
fn to_guest_step5_ipv6_unicast_must_be_for_the_guests_addresses() {
    // (destination, ipv6_link_local, verdict, what)
    let table = [
        (GUEST_V6, LinkLocal::Derived, Pass, "the guest's address"),
        (
            guest_ll(),
            LinkLocal::Derived,
            Pass,
            "the guest's derived link-local",
        ),
        (
            OTHER_V6,
            LinkLocal::Derived,
            SniffIp,
            "a neighbour's address",
        ),
        (
            RANDOM_LL,
            LinkLocal::Derived,
            SniffIp,
            "a random link-local",
        ),
        (
            RANDOM_LL,
            LinkLocal::Any,
            Pass,
            "a random link-local, option any",
        ),
        (
            guest_ll(),
            LinkLocal::None,
            SniffIp,
            "the derived link-local, option none",
        ),
        (
            GUEST_V6,
            LinkLocal::None,
            Pass,
            "the guest's address, option none",
        ),
    ];
    for (dst, option, want, what) in table {
        let frame = v6_to_guest(REMOTE_V6, dst).udp(53, 40000).build();
        for p in guarded(|p| p.options.link_local = option) {
            to_guest(&p, &frame, want, what);
        }
    }
    for p in guarded(|p| p.ipv6 = vec![cidr6("2001:db8::/64")]) {
        let frame = v6_to_guest(REMOTE_V6, OTHER_V6).udp(53, 40000).build();
        to_guest(&p, &frame, Pass, "a destination in the guest's /64");
    }

    let own = v6_to_guest(REMOTE_V6, GUEST_V6).udp(53, 40000).build();
    sent_to_guest(&own[..53], Ipv6Malformed, "IPv6 fixed header cut");
    let version4 = v6_to_guest(REMOTE_V6, GUEST_V6).version(4).build();
    sent_to_guest(&version4, Ipv6Malformed, "version 4 under 0x86dd");
    // Only the destination matters: no extension header walk.
    let bad_chain = v6_to_guest(REMOTE_V6, GUEST_V6)
        .ext_raw(proto::DEST_OPTS, 200, &[0; 6])
        .build();
    let what = "a broken extension chain to the guest's address";
    sent_to_guest(&bad_chain, Pass, what);
    let ra = Frame::eth(ROUTER, ipv6_multicast_mac(ALL_NODES))
        .ipv6(router_ll(), ALL_NODES)
        .router_advertisement()
        .slla(ROUTER)
        .build();
    sent_to_guest(&ra, Pass, "RA to all-nodes (multicast) from the router");
    let ns = Frame::eth(ROUTER, GUEST)
        .ipv6(router_ll(), guest_ll())
        .neighbor_solicitation(guest_ll())
        .slla(ROUTER)
        .build();
    sent_to_guest(&ns, Pass, "unicast NS for the guest's link-local");
    let advertise = v6_to_guest(router_ll(), guest_ll())
        .udp(547, 546)
        .payload(&dhcpv6_advertise(GUEST, ROUTER, XID, GUEST_V6))
        .build();
    sent_to_guest(
        &advertise,
        Pass,
        "DHCPv6 ADVERTISE to the guest's link-local",
    );
}

#[test]
fn to_guest_step6_other_traffic_passes() {
    let lldp = Frame::eth(ROUTER, GUEST)
        .ethertype(ethertype::LLDP)
        .payload(&[0; 46])
        .build();
    sent_to_guest(
        &lldp,
        Pass,
        "LLDP to the guest's MAC (ethertypes is for the guest's frames)",
    );
    let multicast_v6 = Frame::eth(ROUTER, ipv6_multicast_mac(ALL_NODES))
        .ipv6(REMOTE_V6, ALL_NODES)
        .udp(1, 2)
        .build();
    sent_to_guest(&multicast_v6, Pass, "IPv6 multicast");
    let short = &multicast_v6[..20];
    sent_to_guest(short, Pass, "multicast IPv6 is not parsed, even cut");
}

// ===========================================================================
// Truncation: every cut of a frame
// ===========================================================================

/// A frame that passes whole, and the length from which every cut of it
/// passes too: the end of the last header the filter reads for it.
struct Cut {
    what: &'static str,
    policy: Policy,
    direction: Direction,
    frame: Vec<u8>,
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

fn from_guest_cuts() -> Vec<Cut> {
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

fn to_guest_cuts() -> Vec<Cut> {
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

// ===========================================================================
// Mutations: no input panics, and the mode-level verdicts hold for all
// ===========================================================================

/// xorshift64*: deterministic, dependency-free randomness.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn mutate(rng: &mut Rng, frame: &[u8]) -> Vec<u8> {
    let mut f = frame.to_vec();
    match rng.below(4) {
        // Flip a few bytes, most often in the headers.
        0 | 1 => {
            for _ in 0..=rng.below(4) {
                let headers_only = rng.below(2) == 0;
                let at = rng.below(if headers_only {
                    f.len().min(96)
                } else {
                    f.len()
                });
                if let Some(b) = f.get_mut(at) {
                    *b = rng.next() as u8;
                }
            }
        }
        2 => f.truncate(rng.below(f.len() + 1)),
        _ => f.extend((0..rng.below(600)).map(|_| rng.next() as u8)),
    }
    f
}

#[test]
fn mutated_frames_never_panic_and_modes_decide_before_parsing() {
    let policies = [
        locked(),
        isolated(),
        with(isolated(), |p| {
            p.options.router = true;
            p.options.dhcp_server = true;
            p.options.link_local = LinkLocal::Any;
            p.ipv4 = vec![cidr4("0.0.0.0/0")];
            p.ipv6 = vec![cidr6("::/0")];
        }),
        with(locked(), |p| {
            p.ipv4.clear();
            p.ipv6.clear();
            p.options.link_local = LinkLocal::None;
        }),
    ];
    let unlocked = with(locked(), |p| p.mode = Mode::Unlocked);
    let disabled = with(locked(), |p| p.mode = Mode::Disabled);
    let mut corpus: Vec<Vec<u8>> = from_guest_cuts().into_iter().map(|c| c.frame).collect();
    corpus.extend(to_guest_cuts().into_iter().map(|c| c.frame));
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    for seed in &corpus {
        let mut frame = seed.clone();
        for round in 0..400 {
            // Mostly mutate the seed, sometimes keep mutating the mutant.
            if round % 4 != 0 {
                frame = seed.clone();
            }
            frame = mutate(&mut rng, &frame);
            for direction in Direction::ALL {
                for p in &policies {
                    let _ = verdict(Some(p), direction, &frame);
                }
                assert_eq!(
                    verdict(None, direction, &frame),
                    NoPolicy,
                    "no policy: expected `no_policy`"
                );
                assert_eq!(
                    verdict(Some(&unlocked), direction, &frame),
                    Pass,
                    "unlocked: expected `pass`"
                );
                assert_eq!(
                    verdict(Some(&disabled), direction, &frame),
                    Disabled,
                    "disabled: expected `disabled`"
                );
            }
        }
    }
}
