//! Table tests of the reference model (`filter_user::model`) against
//! `docs/datapath.md`: for every numbered step, frames that pass and frames
//! that drop with the step's reason, in both directions, every mode and
//! every option. Then truncation (every cut of a frame) and mutation tests:
//! the model never panics and never passes a frame whose headers are cut.
//!
//! Test names say the behaviour; the modules follow the sections of
//! `docs/datapath.md`. This file holds what they share: the cast, the
//! policies, the assertions and the frame builders, which each module takes
//! with `use super::*`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use filter_common::{Direction, LinkLocal, Mode, PARSE_WINDOW, Reason};
use filter_user::model::verdict;
use filter_user::policy::{Cidr, Cidr4, Cidr6, MacAddr, Options, Pair, Policy, Vrrp};
use testbed::frames::{
    ALL_DHCP_AGENTS, ALL_MLDV2_ROUTERS, ALL_NODES, ALL_ROUTERS, BROADCAST, Eth, Frame, Ipv4, Ipv6,
    Mac, VRRP_V4_GROUP, VRRP_V6_GROUP, arp_op, dhcpv4_discover, dhcpv4_offer, dhcpv4_request,
    dhcpv6_advertise, dhcpv6_solicit, ethertype, icmp6, ipv4_multicast_mac, ipv6_multicast_mac,
    link_local, na_flags, proto, solicited_node, vrrp_advertisement, vrrp_mac_v4, vrrp_mac_v6,
};

use Direction::{FromGuest, ToGuest};
use Reason::*;

mod arp;
mod bootstrap;
mod both_directions;
mod ethernet;
mod ipv4;
mod ipv6;
mod mutation;
mod nd;
mod pairs;
mod to_guest;
mod to_guest_pairs;
mod truncation;
mod trusted_dhcp;
mod vrrp;

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

/// A second interface of the guest (a bond slave, a nested guest), listed
/// as a pair with its own addresses.
const PAIR: Mac = [0x00, 0x16, 0x3e, 0x12, 0x34, 0x57];
const PAIR_V4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 30);
const PAIR_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x30);

/// The VRRP router the guest may be, and its virtual addresses.
const VRID: u8 = 7;
const VIP_V4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 100);
const VIP_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x100);

/// A DHCP server on the dom0 side and a rogue one.
const SERVER_V4: Ipv4Addr = GATEWAY_V4;
const ROGUE_V4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 66);
const ROGUE_V6: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0x66);

fn guest_ll() -> Ipv6Addr {
    link_local(GUEST)
}

fn router_ll() -> Ipv6Addr {
    link_local(ROUTER)
}

fn pair_ll() -> Ipv6Addr {
    link_local(PAIR)
}

/// 00:00:5e:00:01:VRID, in use while the entry has IPv4 addresses.
fn vmac4() -> Mac {
    vrrp_mac_v4(VRID)
}

/// 00:00:5e:00:02:VRID, in use while the entry has IPv6 addresses.
fn vmac6() -> Mac {
    vrrp_mac_v6(VRID)
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
        pairs: Vec::new(),
        vrrp: Vec::new(),
        dhcp_servers: Vec::new(),
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

/// The guest's pair: [`PAIR`] with one address per family.
fn pair() -> Pair {
    Pair {
        mac: MacAddr(PAIR),
        ipv4: vec![Cidr4::host(PAIR_V4)],
        ipv6: vec![Cidr6::host(PAIR_V6)],
    }
}

/// The guest's VRRP router [`VRID`] with one virtual address per family.
fn vrrp() -> Vrrp {
    Vrrp {
        vrid: VRID,
        ipv4: vec![Cidr4::host(VIP_V4)],
        ipv6: vec![Cidr6::host(VIP_V6)],
    }
}

/// The locked and the isolated policy with the pair and the VRRP entry
/// (section 3a), both changed by `adjust`; they must validate.
fn with_extras(adjust: impl Fn(&mut Policy)) -> [Policy; 2] {
    let policies = guarded(|p| {
        p.pairs = vec![pair()];
        p.vrrp = vec![vrrp()];
        adjust(p);
    });
    for p in &policies {
        p.validate().expect("the test policy is valid");
    }
    policies
}

/// From the guest with the pair and VRRP entry, locked and isolated.
#[track_caller]
fn sent_with_extras(frame: &[u8], want: Reason, what: &str) {
    for p in with_extras(|_| {}) {
        from_guest(&p, frame, want, what);
    }
}

/// To the guest with the pair and VRRP entry, locked and isolated.
#[track_caller]
fn received_with_extras(frame: &[u8], want: Reason, what: &str) {
    for p in with_extras(|_| {}) {
        to_guest(&p, frame, want, what);
    }
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
fn arp_request_from_guest() -> testbed::frames::Arp {
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
