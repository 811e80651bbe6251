//! Every rule of docs/policy.md sections 2-6 and 3a (as docs/datapath.md
//! reads them): a frame that passes and a frame that drops, run through the real
//! programs with BPF_PROG_TEST_RUN (TC, and XDP for the guest's side),
//! asserting the verdict, the one counter that moved (reason, direction,
//! packets, bytes), and that the reference model says the same.
//!
//! Needs root (loads eBPF programs).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use filter_common::{Direction, LinkLocal, Mode, Reason};
use filter_user::model;
use filter_user::policy::{MacAddr, Pair, Policy, Vrrp};
use testbed::frames::{
    self, BROADCAST, Frame, Mac, arp_op, dhcpv4_discover, dhcpv4_offer, dhcpv6_advertise,
    dhcpv6_solicit, ethertype, icmp6, na_flags, solicited_node,
};
use testbed::kernel::{Hook, Kernel, TEST_IFINDEX, test_run_accepts};

const GUEST: Mac = [0x00, 0x16, 0x3e, 0x00, 0x00, 0x01];
const OTHER: Mac = [0x00, 0x16, 0x3e, 0x00, 0x00, 0x99];
const ROUTER: Mac = [0x00, 0x16, 0x3e, 0x00, 0x00, 0xfe];
const MCAST: Mac = [0x01, 0x00, 0x5e, 0x00, 0x00, 0x01];

fn v4(s: &str) -> Ipv4Addr {
    s.parse().expect("test address")
}

fn v6(s: &str) -> Ipv6Addr {
    s.parse().expect("test address")
}

/// The guest's address plan: two hosts and a prefix per family.
fn locked() -> Policy {
    let mut p = Policy::locked(MacAddr(GUEST));
    p.ipv4 = vec![
        "192.0.2.10".parse().expect("cidr"),
        "198.51.100.0/24".parse().expect("cidr"),
    ];
    p.ipv6 = vec![
        "2001:db8::10".parse().expect("cidr"),
        "2001:db8:1::/64".parse().expect("cidr"),
    ];
    p
}

fn isolated() -> Policy {
    let mut p = locked();
    p.mode = Mode::Isolated;
    p.destinations = vec![
        "192.0.2.1".parse().expect("cidr"),
        "203.0.113.0/24".parse().expect("cidr"),
        "2001:db8:ffff::/48".parse().expect("cidr"),
    ];
    p
}

fn guest_ll() -> Ipv6Addr {
    frames::link_local(GUEST)
}

struct Case {
    name: &'static str,
    policy: Option<Policy>,
    dir: Direction,
    frame: Vec<u8>,
    expect: Reason,
}

fn from_guest(name: &'static str, policy: Policy, frame: Vec<u8>, expect: Reason) -> Case {
    Case {
        name,
        policy: Some(policy),
        dir: Direction::FromGuest,
        frame,
        expect,
    }
}

fn to_guest(name: &'static str, policy: Policy, frame: Vec<u8>, expect: Reason) -> Case {
    Case {
        name,
        policy: Some(policy),
        dir: Direction::ToGuest,
        frame,
        expect,
    }
}

/// Runs every case through the model and through each hook of its
/// direction; reports every mismatch at once.
fn check(cases: Vec<Case>) {
    let mut kernel = Kernel::load();
    let mut failures = Vec::new();
    for c in &cases {
        let modelled = model::verdict(c.policy.as_ref(), c.dir, &c.frame);
        if modelled != c.expect {
            failures.push(format!(
                "{}: model says {}, expected {}",
                c.name,
                modelled.name(),
                c.expect.name()
            ));
        }
        match &c.policy {
            Some(p) => {
                kernel.set_policy(TEST_IFINDEX, p);
            }
            None => kernel.remove_policy(TEST_IFINDEX),
        }
        let hooks: Vec<Hook> = Hook::for_direction(c.dir)
            .iter()
            .copied()
            .filter(|h| test_run_accepts(*h, &c.frame))
            .collect();
        assert!(!hooks.is_empty(), "{}: no hook can run this frame", c.name);
        for hook in hooks {
            let got = kernel.run(hook, &c.frame);
            if got.reason != c.expect {
                failures.push(format!(
                    "{}: {hook:?} counted {}, expected {}",
                    c.name,
                    got.reason.name(),
                    c.expect.name()
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

fn echo4(src_mac: Mac, src: &str, dst: &str) -> Vec<u8> {
    Frame::eth(src_mac, ROUTER)
        .ipv4(v4(src), v4(dst))
        .icmp_echo_request(1, 1)
        .build()
}

fn echo6(src_mac: Mac, src: Ipv6Addr, dst: Ipv6Addr) -> Vec<u8> {
    Frame::eth(src_mac, ROUTER)
        .ipv6(src, dst)
        .echo_request(1, 1)
        .build()
}

#[test]
fn ethernet_source_mac_and_vlan_tags() {
    check(vec![
        from_guest(
            "own MAC passes",
            locked(),
            echo4(GUEST, "192.0.2.10", "192.0.2.1"),
            Reason::Pass,
        ),
        from_guest(
            "another MAC is mac_spoof",
            locked(),
            echo4(OTHER, "192.0.2.10", "192.0.2.1"),
            Reason::MacSpoof,
        ),
        from_guest(
            "multicast source MAC is mac_spoof",
            locked(),
            echo4(MCAST, "192.0.2.10", "192.0.2.1"),
            Reason::MacSpoof,
        ),
        from_guest(
            "802.1Q tag is vlan_tagged",
            locked(),
            Frame::eth(GUEST, ROUTER)
                .vlan(5)
                .ipv4(v4("192.0.2.10"), v4("192.0.2.1"))
                .icmp_echo_request(1, 1)
                .build(),
            Reason::VlanTagged,
        ),
        from_guest(
            "802.1ad tag carrying a spoofed source is vlan_tagged",
            locked(),
            Frame::eth(GUEST, ROUTER)
                .qinq(5)
                .vlan(6)
                .ipv4(v4("192.0.2.99"), v4("192.0.2.1"))
                .icmp_echo_request(1, 1)
                .build(),
            Reason::VlanTagged,
        ),
        from_guest(
            "0x9100 tag is vlan_tagged",
            locked(),
            Frame::eth(GUEST, ROUTER)
                .tag(ethertype::QINQ_OLD, 5)
                .ipv4(v4("192.0.2.10"), v4("192.0.2.1"))
                .icmp_echo_request(1, 1)
                .build(),
            Reason::VlanTagged,
        ),
        from_guest(
            "unlisted EtherType (LLDP) is ethertype",
            locked(),
            Frame::eth(GUEST, MCAST)
                .ethertype(ethertype::LLDP)
                .payload(&[0; 46])
                .build(),
            Reason::Ethertype,
        ),
        from_guest(
            "EtherType listed in option ethertypes passes",
            {
                let mut p = locked();
                p.options.ethertypes = vec![ethertype::LLDP];
                p
            },
            Frame::eth(GUEST, MCAST)
                .ethertype(ethertype::LLDP)
                .payload(&[0; 46])
                .build(),
            Reason::Pass,
        ),
        from_guest(
            "802.3 length frame (STP BPDU) is ethertype",
            locked(),
            Frame::eth(GUEST, [0x01, 0x80, 0xc2, 0, 0, 0])
                .ethertype(0x0026)
                .payload(&[0x42; 38])
                .build(),
            Reason::Ethertype,
        ),
    ]);
}

fn arp(op: u16, sha: Mac, spa: &str, tpa: &str) -> frames::Arp {
    Frame::eth(GUEST, BROADCAST)
        .arp(op)
        .sha(sha)
        .spa(v4(spa))
        .tpa(v4(tpa))
}

#[test]
fn arp_and_rarp() {
    let mut cut = arp(arp_op::REQUEST, GUEST, "192.0.2.10", "192.0.2.1").build();
    cut.truncate(40);
    check(vec![
        from_guest(
            "request from an allowed address passes",
            locked(),
            arp(arp_op::REQUEST, GUEST, "192.0.2.10", "192.0.2.1").build(),
            Reason::Pass,
        ),
        from_guest(
            "reply from an address in an allowed prefix passes",
            locked(),
            arp(arp_op::REPLY, GUEST, "198.51.100.7", "192.0.2.1").build(),
            Reason::Pass,
        ),
        from_guest(
            "gratuitous ARP for an allowed address passes",
            locked(),
            arp(arp_op::REQUEST, GUEST, "192.0.2.10", "192.0.2.10").build(),
            Reason::Pass,
        ),
        from_guest(
            "probe from 0.0.0.0 passes",
            locked(),
            arp(arp_op::REQUEST, GUEST, "0.0.0.0", "192.0.2.10").build(),
            Reason::Pass,
        ),
        from_guest(
            "reply from 0.0.0.0 is arp_spa_spoof (only requests probe)",
            locked(),
            arp(arp_op::REPLY, GUEST, "0.0.0.0", "192.0.2.10").build(),
            Reason::ArpSpaSpoof,
        ),
        from_guest(
            "sender IP of another host is arp_spa_spoof",
            locked(),
            arp(arp_op::REPLY, GUEST, "192.0.2.1", "192.0.2.99").build(),
            Reason::ArpSpaSpoof,
        ),
        from_guest(
            "sender MAC of another host is arp_sha_spoof",
            locked(),
            arp(arp_op::REPLY, OTHER, "192.0.2.10", "192.0.2.1").build(),
            Reason::ArpShaSpoof,
        ),
        from_guest(
            "hardware type 6 is arp_malformed",
            locked(),
            arp(arp_op::REQUEST, GUEST, "192.0.2.10", "192.0.2.1")
                .htype(6)
                .build(),
            Reason::ArpMalformed,
        ),
        from_guest(
            "protocol type IPv6 is arp_malformed",
            locked(),
            arp(arp_op::REQUEST, GUEST, "192.0.2.10", "192.0.2.1")
                .ptype(0x86dd)
                .build(),
            Reason::ArpMalformed,
        ),
        from_guest(
            "hlen 8 is arp_malformed",
            locked(),
            arp(arp_op::REQUEST, GUEST, "192.0.2.10", "192.0.2.1")
                .hlen(8)
                .build(),
            Reason::ArpMalformed,
        ),
        from_guest(
            "plen 16 is arp_malformed",
            locked(),
            arp(arp_op::REQUEST, GUEST, "192.0.2.10", "192.0.2.1")
                .plen(16)
                .build(),
            Reason::ArpMalformed,
        ),
        from_guest(
            "opcode 3 is arp_malformed",
            locked(),
            arp(3, GUEST, "192.0.2.10", "192.0.2.1").build(),
            Reason::ArpMalformed,
        ),
        from_guest(
            "truncated ARP is arp_malformed",
            locked(),
            cut,
            Reason::ArpMalformed,
        ),
        from_guest(
            "RARP announce with own MAC twice passes",
            locked(),
            Frame::eth(GUEST, BROADCAST)
                .rarp()
                .sha(GUEST)
                .tha(GUEST)
                .build(),
            Reason::Pass,
        ),
        from_guest(
            "RARP naming another MAC is rarp_spoof",
            locked(),
            Frame::eth(GUEST, BROADCAST)
                .rarp()
                .sha(GUEST)
                .tha(OTHER)
                .build(),
            Reason::RarpSpoof,
        ),
    ]);
}

fn dhcp_discover(src: &str, dst: &str) -> Vec<u8> {
    Frame::eth(GUEST, BROADCAST)
        .ipv4(v4(src), v4(dst))
        .udp(68, 67)
        .payload(&dhcpv4_discover(GUEST, 7))
        .build()
}

#[test]
fn ipv4_sources_and_dhcp() {
    let mut cut_udp = Frame::eth(GUEST, ROUTER)
        .ipv4(v4("192.0.2.10"), v4("192.0.2.1"))
        .udp(5000, 53)
        .build();
    cut_udp.truncate(14 + 20 + 4);
    check(vec![
        from_guest(
            "allowed host source passes",
            locked(),
            echo4(GUEST, "192.0.2.10", "203.0.113.5"),
            Reason::Pass,
        ),
        from_guest(
            "source in an allowed prefix passes",
            locked(),
            echo4(GUEST, "198.51.100.200", "203.0.113.5"),
            Reason::Pass,
        ),
        from_guest(
            "other source is ipv4_spoof",
            locked(),
            echo4(GUEST, "192.0.2.99", "203.0.113.5"),
            Reason::Ipv4Spoof,
        ),
        from_guest(
            "locked with empty lists drops any source as ipv4_spoof",
            Policy::locked(MacAddr(GUEST)),
            echo4(GUEST, "192.0.2.10", "203.0.113.5"),
            Reason::Ipv4Spoof,
        ),
        from_guest(
            "0.0.0.0/0 allows any source",
            {
                let mut p = locked();
                p.ipv4 = vec!["0.0.0.0/0".parse().expect("cidr")];
                p
            },
            echo4(GUEST, "203.0.113.77", "192.0.2.1"),
            Reason::Pass,
        ),
        from_guest(
            "version 5 is ipv4_malformed",
            locked(),
            Frame::eth(GUEST, ROUTER)
                .ipv4(v4("192.0.2.10"), v4("192.0.2.1"))
                .version(5)
                .icmp_echo_request(1, 1)
                .build(),
            Reason::Ipv4Malformed,
        ),
        from_guest(
            "IHL 4 is ipv4_malformed",
            locked(),
            Frame::eth(GUEST, ROUTER)
                .ipv4(v4("192.0.2.10"), v4("192.0.2.1"))
                .ihl(4)
                .icmp_echo_request(1, 1)
                .build(),
            Reason::Ipv4Malformed,
        ),
        from_guest(
            "IHL 15 past the frame is ipv4_malformed",
            locked(),
            Frame::eth(GUEST, ROUTER)
                .ipv4(v4("192.0.2.10"), v4("192.0.2.1"))
                .ihl(15)
                .protocol(6)
                .payload(&[0; 8])
                .build(),
            Reason::Ipv4Malformed,
        ),
        from_guest(
            "IPv4 options inside the frame pass",
            locked(),
            Frame::eth(GUEST, ROUTER)
                .ipv4(v4("192.0.2.10"), v4("192.0.2.1"))
                .options(&[0x94, 0x04, 0, 0])
                .udp(5000, 53)
                .build(),
            Reason::Pass,
        ),
        from_guest(
            "cut UDP header is ipv4_malformed",
            locked(),
            cut_udp,
            Reason::Ipv4Malformed,
        ),
        from_guest(
            "DHCP discover from 0.0.0.0 to broadcast passes",
            Policy::locked(MacAddr(GUEST)),
            dhcp_discover("0.0.0.0", "255.255.255.255"),
            Reason::Pass,
        ),
        from_guest(
            "DHCP discover with dhcp_client off is ipv4_spoof",
            {
                let mut p = Policy::locked(MacAddr(GUEST));
                p.options.dhcp_client = false;
                p
            },
            dhcp_discover("0.0.0.0", "255.255.255.255"),
            Reason::Ipv4Spoof,
        ),
        from_guest(
            "0.0.0.0 to a unicast address is ipv4_spoof",
            locked(),
            dhcp_discover("0.0.0.0", "192.0.2.1"),
            Reason::Ipv4Spoof,
        ),
        from_guest(
            "non-first fragment from 0.0.0.0 is ipv4_spoof",
            locked(),
            Frame::eth(GUEST, BROADCAST)
                .ipv4(v4("0.0.0.0"), v4("255.255.255.255"))
                .fragment_offset(10)
                .protocol(17)
                .payload(&[0, 68, 0, 67, 0, 8, 0, 0])
                .build(),
            Reason::Ipv4Spoof,
        ),
        from_guest(
            "DHCP offer from the guest is dhcp_server",
            locked(),
            Frame::eth(GUEST, BROADCAST)
                .ipv4(v4("192.0.2.10"), v4("255.255.255.255"))
                .udp(67, 68)
                .payload(&dhcpv4_offer(OTHER, 7, v4("192.0.2.50"), v4("192.0.2.10")))
                .build(),
            Reason::DhcpServer,
        ),
        from_guest(
            "DHCP offer with option dhcp_server passes",
            {
                let mut p = locked();
                p.options.dhcp_server = true;
                p
            },
            Frame::eth(GUEST, BROADCAST)
                .ipv4(v4("192.0.2.10"), v4("255.255.255.255"))
                .udp(67, 68)
                .payload(&dhcpv4_offer(OTHER, 7, v4("192.0.2.50"), v4("192.0.2.10")))
                .build(),
            Reason::Pass,
        ),
        from_guest(
            "DHCP offer from a non-standard source port is dhcp_server",
            locked(),
            Frame::eth(GUEST, BROADCAST)
                .ipv4(v4("192.0.2.10"), v4("255.255.255.255"))
                .udp(1234, 68)
                .payload(&dhcpv4_offer(OTHER, 7, v4("192.0.2.50"), v4("192.0.2.10")))
                .build(),
            Reason::DhcpServer,
        ),
        from_guest(
            "DHCP offer from a non-standard source port with option dhcp_server passes",
            {
                let mut p = locked();
                p.options.dhcp_server = true;
                p
            },
            Frame::eth(GUEST, BROADCAST)
                .ipv4(v4("192.0.2.10"), v4("255.255.255.255"))
                .udp(1234, 68)
                .payload(&dhcpv4_offer(OTHER, 7, v4("192.0.2.50"), v4("192.0.2.10")))
                .build(),
            Reason::Pass,
        ),
        from_guest(
            "UDP from the client port to another port passes",
            locked(),
            Frame::eth(GUEST, OTHER)
                .ipv4(v4("192.0.2.10"), v4("192.0.2.1"))
                .udp(68, 1234)
                .build(),
            Reason::Pass,
        ),
    ]);
}

/// A DHCP client message from the guest: `payload` from 0.0.0.0:68 to
/// the broadcast address, port 67.
fn dhcp_client(payload: &[u8]) -> Vec<u8> {
    Frame::eth(GUEST, BROADCAST)
        .ipv4(v4("0.0.0.0"), v4("255.255.255.255"))
        .udp(68, 67)
        .payload(payload)
        .build()
}

/// POLICY section 3 item 5: a DHCP client message's `chaddr` is the
/// frame's source MAC, unless the vif is a relay (`dhcp_server`).
#[test]
fn dhcp_client_hardware_address() {
    let relay = || {
        let mut p = locked();
        p.options.dhcp_server = true;
        p
    };
    let with = |f: fn(&mut Vec<u8>)| {
        let mut m = dhcpv4_discover(GUEST, 7);
        f(&mut m);
        m
    };
    check(vec![
        from_guest(
            "DHCP discover with the guest's chaddr passes",
            locked(),
            dhcp_client(&dhcpv4_discover(GUEST, 7)),
            Reason::Pass,
        ),
        from_guest(
            "DHCP discover with another guest's chaddr is dhcp_spoof",
            locked(),
            dhcp_client(&dhcpv4_discover(OTHER, 7)),
            Reason::DhcpSpoof,
        ),
        from_guest(
            "DHCP request from the guest's address with another chaddr is dhcp_spoof",
            locked(),
            Frame::eth(GUEST, ROUTER)
                .ipv4(v4("192.0.2.10"), v4("192.0.2.1"))
                .udp(68, 67)
                .payload(&frames::dhcpv4_request(OTHER, 8))
                .build(),
            Reason::DhcpSpoof,
        ),
        from_guest(
            "DHCP discover with htype 6 is dhcp_spoof",
            locked(),
            dhcp_client(&with(|m| m[1] = 6)),
            Reason::DhcpSpoof,
        ),
        from_guest(
            "DHCP discover with hlen 16 is dhcp_spoof",
            locked(),
            dhcp_client(&with(|m| m[2] = 16)),
            Reason::DhcpSpoof,
        ),
        from_guest(
            "BOOTP request too short to hold chaddr is dhcp_spoof",
            locked(),
            dhcp_client(&dhcpv4_discover(GUEST, 7)[..33]),
            Reason::DhcpSpoof,
        ),
        from_guest(
            "empty UDP datagram to port 67 is dhcp_spoof",
            locked(),
            dhcp_client(&[]),
            Reason::DhcpSpoof,
        ),
        from_guest(
            "chaddr cut off by the IPv4 total length is dhcp_spoof",
            locked(),
            Frame::eth(GUEST, BROADCAST)
                .ipv4(v4("0.0.0.0"), v4("255.255.255.255"))
                .total_length(20 + 8 + 30)
                .udp(68, 67)
                .payload(&dhcpv4_discover(GUEST, 7))
                .build(),
            Reason::DhcpSpoof,
        ),
        from_guest(
            "BOOTP reply (op 2) to port 67 is no client message",
            locked(),
            Frame::eth(GUEST, ROUTER)
                .ipv4(v4("192.0.2.10"), v4("192.0.2.1"))
                .udp(1067, 67)
                .payload(&dhcpv4_offer(OTHER, 7, v4("192.0.2.50"), v4("192.0.2.10")))
                .build(),
            Reason::Pass,
        ),
        from_guest(
            "a relay (option dhcp_server) may forward another guest's discover",
            relay(),
            dhcp_client(&dhcpv4_discover(OTHER, 7)),
            Reason::Pass,
        ),
        from_guest(
            "a relay may send a cut BOOTP request",
            relay(),
            dhcp_client(&[1, 1, 6]),
            Reason::Pass,
        ),
    ]);
}

/// An ICMP Redirect (type 5, code 1: for the host) from the guest telling
/// 192.0.2.1 to use `gateway` for 203.0.113.5.
fn icmp_redirect(gateway: &str) -> Vec<u8> {
    let original = Frame::eth(ROUTER, GUEST)
        .ipv4(v4("192.0.2.1"), v4("203.0.113.5"))
        .udp(5000, 53)
        .build();
    Frame::eth(GUEST, ROUTER)
        .ipv4(v4("192.0.2.10"), v4("192.0.2.1"))
        .icmp(5, 1)
        .data(&v4(gateway).octets())
        .data(&original[14..14 + 28])
        .build()
}

/// POLICY section 3 item 5: an ICMP Redirect from the guest is a router's
/// message, under the RA guard as the IPv6 Redirect is.
#[test]
fn icmp_redirect_and_router_guard() {
    let router = || {
        let mut p = locked();
        p.options.router = true;
        p
    };
    check(vec![
        from_guest(
            "ICMP Redirect from the guest is ra_guard",
            locked(),
            icmp_redirect("192.0.2.10"),
            Reason::RaGuard,
        ),
        from_guest(
            "ICMP Redirect with option router passes",
            router(),
            icmp_redirect("192.0.2.10"),
            Reason::Pass,
        ),
        from_guest(
            "ICMP destination unreachable from the guest passes",
            locked(),
            Frame::eth(GUEST, ROUTER)
                .ipv4(v4("192.0.2.10"), v4("192.0.2.1"))
                .icmp(3, 3)
                .data(&[0; 32])
                .build(),
            Reason::Pass,
        ),
        from_guest(
            "ICMP header cut by the total length is ipv4_malformed",
            locked(),
            Frame::eth(GUEST, ROUTER)
                .ipv4(v4("192.0.2.10"), v4("192.0.2.1"))
                .total_length(20 + 3)
                .icmp_echo_request(1, 1)
                .build(),
            Reason::Ipv4Malformed,
        ),
        from_guest(
            "a non-first fragment holding a Redirect's bytes passes",
            locked(),
            Frame::eth(GUEST, ROUTER)
                .ipv4(v4("192.0.2.10"), v4("192.0.2.1"))
                .fragment_offset(3)
                .protocol(1)
                .payload(&[5, 1, 0, 0, 192, 0, 2, 10])
                .build(),
            Reason::Pass,
        ),
    ]);
}

fn ns_dad(target: Ipv6Addr) -> frames::Icmp<frames::Ipv6> {
    Frame::eth(GUEST, frames::ipv6_multicast_mac(solicited_node(target)))
        .ipv6(Ipv6Addr::UNSPECIFIED, solicited_node(target))
        .neighbor_solicitation(target)
}

/// POLICY section 3 items 3 and 6: duplicate address detection (ARP
/// probes, DAD Neighbor Solicitations) only for the guest's own addresses;
/// a node that sees its address probed gives it up.
#[test]
fn duplicate_address_detection_for_own_addresses_only() {
    let link_local = |ll: LinkLocal| {
        let mut p = locked();
        p.options.link_local = ll;
        p
    };
    check(vec![
        from_guest(
            "ARP probe for an own address passes",
            locked(),
            arp(arp_op::REQUEST, GUEST, "0.0.0.0", "192.0.2.10").build(),
            Reason::Pass,
        ),
        from_guest(
            "ARP probe for an address in an allowed prefix passes",
            locked(),
            arp(arp_op::REQUEST, GUEST, "0.0.0.0", "198.51.100.7").build(),
            Reason::Pass,
        ),
        from_guest(
            "ARP probe for another guest's address is dad_foreign",
            locked(),
            arp(arp_op::REQUEST, GUEST, "0.0.0.0", "192.0.2.99").build(),
            Reason::DadForeign,
        ),
        from_guest(
            "ARP probe for another address in isolated mode is dad_foreign",
            isolated(),
            arp(arp_op::REQUEST, GUEST, "0.0.0.0", "192.0.2.1").build(),
            Reason::DadForeign,
        ),
        from_guest(
            "gratuitous ARP announcing an own address passes",
            locked(),
            arp(arp_op::REQUEST, GUEST, "192.0.2.10", "192.0.2.10").build(),
            Reason::Pass,
        ),
        from_guest(
            "DAD for an own address passes",
            locked(),
            ns_dad(v6("2001:db8::10")).build(),
            Reason::Pass,
        ),
        from_guest(
            "DAD for an address in an allowed prefix passes",
            locked(),
            ns_dad(v6("2001:db8:1::77")).build(),
            Reason::Pass,
        ),
        from_guest(
            "DAD for another guest's address is dad_foreign",
            locked(),
            ns_dad(v6("2001:db8::99")).build(),
            Reason::DadForeign,
        ),
        from_guest(
            "DAD for the derived link-local passes",
            locked(),
            ns_dad(guest_ll()).build(),
            Reason::Pass,
        ),
        from_guest(
            "DAD for another link-local address is dad_foreign",
            locked(),
            ns_dad(v6("fe80::99")).build(),
            Reason::DadForeign,
        ),
        from_guest(
            "DAD for a random link-local with ipv6_link_local any passes",
            link_local(LinkLocal::Any),
            ns_dad(v6("fe80::1234:5678:9abc:def0")).build(),
            Reason::Pass,
        ),
        from_guest(
            "DAD for the derived link-local with ipv6_link_local none is dad_foreign",
            link_local(LinkLocal::None),
            ns_dad(guest_ll()).build(),
            Reason::DadForeign,
        ),
        from_guest(
            "address resolution for a neighbour (not DAD) passes",
            locked(),
            Frame::eth(
                GUEST,
                frames::ipv6_multicast_mac(solicited_node(v6("2001:db8::99"))),
            )
            .ipv6(v6("2001:db8::10"), solicited_node(v6("2001:db8::99")))
            .neighbor_solicitation(v6("2001:db8::99"))
            .slla(GUEST)
            .build(),
            Reason::Pass,
        ),
    ]);
}

fn na(target: Ipv6Addr) -> frames::Icmp<frames::Ipv6> {
    Frame::eth(GUEST, ROUTER)
        .ipv6(v6("2001:db8::10"), v6("fe80::1"))
        .neighbor_advertisement(target, na_flags::SOLICITED | na_flags::OVERRIDE)
}

#[test]
fn ipv6_sources_and_link_local() {
    let mut cut = echo6(GUEST, v6("2001:db8::10"), v6("2001:db8::1"));
    cut.truncate(14 + 39);
    check(vec![
        from_guest(
            "allowed host source passes",
            locked(),
            echo6(GUEST, v6("2001:db8::10"), v6("2001:db8::1")),
            Reason::Pass,
        ),
        from_guest(
            "source in an allowed prefix passes",
            locked(),
            echo6(GUEST, v6("2001:db8:1::abcd"), v6("2001:db8::1")),
            Reason::Pass,
        ),
        from_guest(
            "other source is ipv6_spoof",
            locked(),
            echo6(GUEST, v6("2001:db8::99"), v6("2001:db8::1")),
            Reason::Ipv6Spoof,
        ),
        from_guest(
            "::/0 allows any source",
            {
                let mut p = locked();
                p.ipv6 = vec!["::/0".parse().expect("cidr")];
                p
            },
            echo6(GUEST, v6("2001:db8:77::1"), v6("2001:db8::1")),
            Reason::Pass,
        ),
        from_guest(
            "derived link-local source passes",
            locked(),
            echo6(GUEST, guest_ll(), v6("fe80::1")),
            Reason::Pass,
        ),
        from_guest(
            "other link-local source is ipv6_link_local",
            locked(),
            echo6(GUEST, v6("fe80::99"), v6("fe80::1")),
            Reason::Ipv6LinkLocal,
        ),
        from_guest(
            "ipv6_link_local any allows a random link-local source",
            {
                let mut p = locked();
                p.options.link_local = LinkLocal::Any;
                p
            },
            echo6(GUEST, v6("fe80::1234:5678:9abc:def0"), v6("fe80::1")),
            Reason::Pass,
        ),
        from_guest(
            "ipv6_link_local none drops even the derived address",
            {
                let mut p = locked();
                p.options.link_local = LinkLocal::None;
                p
            },
            echo6(GUEST, guest_ll(), v6("fe80::1")),
            Reason::Ipv6LinkLocal,
        ),
        from_guest(
            "version 4 in an IPv6 frame is ipv6_malformed",
            locked(),
            Frame::eth(GUEST, ROUTER)
                .ipv6(v6("2001:db8::10"), v6("2001:db8::1"))
                .version(4)
                .echo_request(1, 1)
                .build(),
            Reason::Ipv6Malformed,
        ),
        from_guest(
            "fixed header cut is ipv6_malformed",
            locked(),
            cut,
            Reason::Ipv6Malformed,
        ),
        from_guest(
            "echo from :: is ipv6_spoof",
            locked(),
            echo6(GUEST, Ipv6Addr::UNSPECIFIED, v6("2001:db8::1")),
            Reason::Ipv6Spoof,
        ),
        from_guest(
            "DAD neighbor solicitation from :: passes",
            locked(),
            ns_dad(v6("2001:db8::10")).build(),
            Reason::Pass,
        ),
        from_guest(
            "DAD from :: with a source link-layer option is ipv6_spoof",
            locked(),
            ns_dad(v6("2001:db8::10")).slla(GUEST).build(),
            Reason::Ipv6Spoof,
        ),
        from_guest(
            "NS from :: to a unicast address is ipv6_spoof",
            locked(),
            Frame::eth(GUEST, ROUTER)
                .ipv6(Ipv6Addr::UNSPECIFIED, v6("fe80::1"))
                .neighbor_solicitation(v6("fe80::1"))
                .build(),
            Reason::Ipv6Spoof,
        ),
        from_guest(
            "MLDv2 report from :: passes",
            locked(),
            Frame::eth(GUEST, frames::ipv6_multicast_mac(frames::ALL_MLDV2_ROUTERS))
                .ipv6(Ipv6Addr::UNSPECIFIED, frames::ALL_MLDV2_ROUTERS)
                .mldv2_report(&[solicited_node(v6("2001:db8::10"))])
                .build(),
            Reason::Pass,
        ),
        from_guest(
            "MLDv1 report from :: passes",
            locked(),
            Frame::eth(GUEST, frames::ipv6_multicast_mac(v6("ff02::1:ff00:10")))
                .ipv6(Ipv6Addr::UNSPECIFIED, v6("ff02::1:ff00:10"))
                .mld_report(v6("ff02::1:ff00:10"))
                .build(),
            Reason::Pass,
        ),
    ]);
}

#[test]
fn ipv6_extension_headers() {
    let base = || Frame::eth(GUEST, ROUTER).ipv6(v6("2001:db8::10"), v6("2001:db8::1"));
    let mut eight = base();
    for _ in 0..8 {
        eight = eight.dest_opts();
    }
    let mut nine = base();
    for _ in 0..9 {
        nine = nine.dest_opts();
    }
    let mut past = base().dest_opts_sized(64).udp(5000, 53).build();
    past.truncate(14 + 40 + 32);
    check(vec![
        from_guest(
            "hop-by-hop, routing, destination options, then UDP passes",
            locked(),
            base()
                .hop_by_hop()
                .routing()
                .dest_opts()
                .udp(5000, 53)
                .build(),
            Reason::Pass,
        ),
        from_guest(
            "eight extension headers pass",
            locked(),
            eight.udp(5000, 53).build(),
            Reason::Pass,
        ),
        from_guest(
            "nine extension headers are ipv6_malformed",
            locked(),
            nine.udp(5000, 53).build(),
            Reason::Ipv6Malformed,
        ),
        from_guest(
            "extension header past the frame is ipv6_malformed",
            locked(),
            past,
            Reason::Ipv6Malformed,
        ),
        from_guest(
            "spoofed source behind extension headers is ipv6_spoof",
            locked(),
            Frame::eth(GUEST, ROUTER)
                .ipv6(v6("2001:db8::99"), v6("2001:db8::1"))
                .hop_by_hop()
                .routing()
                .udp(5000, 53)
                .build(),
            Reason::Ipv6Spoof,
        ),
        from_guest(
            "RA hidden behind AH is still ra_guard",
            locked(),
            Frame::eth(GUEST, frames::ipv6_multicast_mac(frames::ALL_NODES))
                .ipv6(guest_ll(), frames::ALL_NODES)
                .ah()
                .router_advertisement()
                .build(),
            Reason::RaGuard,
        ),
        from_guest(
            "non-first fragment from an allowed source passes",
            locked(),
            base()
                .fragment(100, false)
                .protocol(17)
                .payload(&[0; 16])
                .build(),
            Reason::Pass,
        ),
    ]);
}

#[test]
fn neighbor_discovery_and_router_guard() {
    check(vec![
        from_guest(
            "NS with own source link-layer option passes",
            locked(),
            Frame::eth(
                GUEST,
                frames::ipv6_multicast_mac(solicited_node(v6("2001:db8::1"))),
            )
            .ipv6(v6("2001:db8::10"), solicited_node(v6("2001:db8::1")))
            .neighbor_solicitation(v6("2001:db8::1"))
            .slla(GUEST)
            .build(),
            Reason::Pass,
        ),
        from_guest(
            "NS with another MAC in the source link-layer option is nd_spoof",
            locked(),
            Frame::eth(
                GUEST,
                frames::ipv6_multicast_mac(solicited_node(v6("2001:db8::1"))),
            )
            .ipv6(v6("2001:db8::10"), solicited_node(v6("2001:db8::1")))
            .neighbor_solicitation(v6("2001:db8::1"))
            .slla(OTHER)
            .build(),
            Reason::NdSpoof,
        ),
        from_guest(
            "NS with hop limit 64 is nd_malformed",
            locked(),
            Frame::eth(GUEST, ROUTER)
                .ipv6(v6("2001:db8::10"), v6("2001:db8::1"))
                .neighbor_solicitation(v6("2001:db8::1"))
                .hop_limit(64)
                .build(),
            Reason::NdMalformed,
        ),
        from_guest(
            "NA for an own address passes",
            locked(),
            na(v6("2001:db8::10")).tlla(GUEST).build(),
            Reason::Pass,
        ),
        from_guest(
            "NA for another guest's address is nd_spoof",
            locked(),
            na(v6("2001:db8::99")).tlla(GUEST).build(),
            Reason::NdSpoof,
        ),
        from_guest(
            "NA with another MAC in the target link-layer option is nd_spoof",
            locked(),
            na(v6("2001:db8::10")).tlla(OTHER).build(),
            Reason::NdSpoof,
        ),
        from_guest(
            "NA with an option of length 0 is nd_malformed",
            locked(),
            na(v6("2001:db8::10")).raw_option(2, 0, &[0; 6]).build(),
            Reason::NdMalformed,
        ),
        from_guest(
            "NS inside a fragment is nd_malformed (RFC 6980)",
            locked(),
            Frame::eth(GUEST, ROUTER)
                .ipv6(v6("2001:db8::10"), v6("2001:db8::1"))
                .fragment(0, true)
                .neighbor_solicitation(v6("2001:db8::1"))
                .build(),
            Reason::NdMalformed,
        ),
        from_guest(
            "RS passes",
            locked(),
            Frame::eth(GUEST, frames::ipv6_multicast_mac(frames::ALL_ROUTERS))
                .ipv6(guest_ll(), frames::ALL_ROUTERS)
                .router_solicitation()
                .slla(GUEST)
                .build(),
            Reason::Pass,
        ),
        from_guest(
            "RA from the guest is ra_guard",
            locked(),
            Frame::eth(GUEST, frames::ipv6_multicast_mac(frames::ALL_NODES))
                .ipv6(guest_ll(), frames::ALL_NODES)
                .router_advertisement()
                .slla(GUEST)
                .prefix_info(v6("2001:db8:1::"), 64)
                .build(),
            Reason::RaGuard,
        ),
        from_guest(
            "RA with option router passes",
            {
                let mut p = locked();
                p.options.router = true;
                p
            },
            Frame::eth(GUEST, frames::ipv6_multicast_mac(frames::ALL_NODES))
                .ipv6(guest_ll(), frames::ALL_NODES)
                .router_advertisement()
                .slla(GUEST)
                .prefix_info(v6("2001:db8:1::"), 64)
                .build(),
            Reason::Pass,
        ),
        from_guest(
            "Redirect from the guest is ra_guard",
            locked(),
            Frame::eth(GUEST, OTHER)
                .ipv6(guest_ll(), v6("fe80::99"))
                .redirect(v6("fe80::1"), v6("2001:db8:5::1"))
                .build(),
            Reason::RaGuard,
        ),
        from_guest(
            "DHCPv6 solicit from the link-local address passes",
            locked(),
            Frame::eth(GUEST, frames::ipv6_multicast_mac(frames::ALL_DHCP_AGENTS))
                .ipv6(guest_ll(), frames::ALL_DHCP_AGENTS)
                .udp(546, 547)
                .payload(&dhcpv6_solicit(GUEST, 9))
                .build(),
            Reason::Pass,
        ),
        from_guest(
            "DHCPv6 advertise from the guest is dhcp_server",
            locked(),
            Frame::eth(GUEST, OTHER)
                .ipv6(guest_ll(), v6("fe80::99"))
                .udp(547, 546)
                .payload(&dhcpv6_advertise(OTHER, GUEST, 9, v6("2001:db8::99")))
                .build(),
            Reason::DhcpServer,
        ),
        from_guest(
            "DHCPv6 advertise with option dhcp_server passes",
            {
                let mut p = locked();
                p.options.dhcp_server = true;
                p
            },
            Frame::eth(GUEST, OTHER)
                .ipv6(guest_ll(), v6("fe80::99"))
                .udp(547, 546)
                .payload(&dhcpv6_advertise(OTHER, GUEST, 9, v6("2001:db8::99")))
                .build(),
            Reason::Pass,
        ),
        from_guest(
            "DHCPv6 advertise from a non-standard source port is dhcp_server",
            locked(),
            Frame::eth(GUEST, OTHER)
                .ipv6(guest_ll(), v6("fe80::99"))
                .udp(1234, 546)
                .payload(&dhcpv6_advertise(OTHER, GUEST, 9, v6("2001:db8::99")))
                .build(),
            Reason::DhcpServer,
        ),
        from_guest(
            "DHCPv6 advertise from a non-standard source port with option dhcp_server passes",
            {
                let mut p = locked();
                p.options.dhcp_server = true;
                p
            },
            Frame::eth(GUEST, OTHER)
                .ipv6(guest_ll(), v6("fe80::99"))
                .udp(1234, 546)
                .payload(&dhcpv6_advertise(OTHER, GUEST, 9, v6("2001:db8::99")))
                .build(),
            Reason::Pass,
        ),
    ]);
}

/// POLICY section 3 item 8: the IPv4 total length and the IPv6 payload
/// length end the packet; what follows is trailer, never headers.
#[test]
fn ip_length_fields_end_the_packet() {
    let udp4 = |eth: frames::Eth, len: Option<u16>| {
        let ip = eth.ipv4(v4("192.0.2.10"), v4("192.0.2.1"));
        match len {
            Some(l) => ip.total_length(l),
            None => ip,
        }
        .udp(5000, 53)
        .payload(b"query")
        .build()
    };
    let udp6 = |eth: frames::Eth, len: Option<u16>| {
        let ip = eth.ipv6(v6("2001:db8::10"), v6("2001:db8::1"));
        match len {
            Some(l) => ip.payload_length(l),
            None => ip,
        }
        .udp(5000, 53)
        .payload(b"query")
        .build()
    };
    let ns = |eth: frames::Eth, len: Option<u16>| {
        let ip = eth.ipv6(v6("2001:db8::10"), solicited_node(v6("2001:db8::1")));
        match len {
            Some(l) => ip.payload_length(l),
            None => ip,
        }
        .neighbor_solicitation(v6("2001:db8::1"))
        .slla(GUEST)
        .build()
    };
    let to_guest4 = |eth: frames::Eth, len: Option<u16>| {
        let ip = eth.ipv4(v4("192.0.2.1"), v4("192.0.2.10"));
        match len {
            Some(l) => ip.total_length(l),
            None => ip,
        }
        .udp(53, 5000)
        .payload(b"answer")
        .build()
    };
    let to_guest6 = |eth: frames::Eth, len: Option<u16>| {
        let ip = eth.ipv6(v6("2001:db8::1"), v6("2001:db8::10"));
        match len {
            Some(l) => ip.payload_length(l),
            None => ip,
        }
        .udp(53, 5000)
        .payload(b"answer")
        .build()
    };
    let from = || Frame::eth(GUEST, ROUTER);
    let ns_eth = || {
        Frame::eth(
            GUEST,
            frames::ipv6_multicast_mac(solicited_node(v6("2001:db8::1"))),
        )
    };
    let to = || Frame::eth(ROUTER, GUEST);
    let trailer = [0xa5; 12];
    check(vec![
        from_guest(
            "IPv4 UDP followed by a trailer passes",
            locked(),
            udp4(from().trailer(&trailer), None),
            Reason::Pass,
        ),
        from_guest(
            "IPv4 total length beyond the frame is ipv4_malformed",
            locked(),
            udp4(from(), Some(20 + 8 + 6)),
            Reason::Ipv4Malformed,
        ),
        from_guest(
            "IPv4 total length shorter than the header is ipv4_malformed",
            locked(),
            udp4(from(), Some(19)),
            Reason::Ipv4Malformed,
        ),
        from_guest(
            "UDP header cut by the IPv4 total length is ipv4_malformed",
            locked(),
            udp4(from(), Some(20 + 4)),
            Reason::Ipv4Malformed,
        ),
        from_guest(
            "IPv6 UDP followed by a trailer passes",
            locked(),
            udp6(from().trailer(&trailer), None),
            Reason::Pass,
        ),
        from_guest(
            "IPv6 payload length beyond the frame is ipv6_malformed",
            locked(),
            udp6(from(), Some(8 + 6)),
            Reason::Ipv6Malformed,
        ),
        from_guest(
            "UDP header cut by the IPv6 payload length is ipv6_malformed",
            locked(),
            udp6(from(), Some(7)),
            Reason::Ipv6Malformed,
        ),
        from_guest(
            "extension header cut by the IPv6 payload length is ipv6_malformed",
            locked(),
            from()
                .ipv6(v6("2001:db8::10"), v6("2001:db8::1"))
                .payload_length(4)
                .hop_by_hop()
                .udp(5000, 53)
                .build(),
            Reason::Ipv6Malformed,
        ),
        from_guest(
            "NS followed by trailer bytes passes (they are not options)",
            locked(),
            ns(ns_eth().trailer(&trailer), None),
            Reason::Pass,
        ),
        from_guest(
            "NA for an own address whose trailer looks like a foreign TLLA passes",
            locked(),
            Frame::eth(GUEST, ROUTER)
                .trailer(&[2, 1, 0x00, 0x16, 0x3e, 0x00, 0x00, 0x99])
                .ipv6(v6("2001:db8::10"), v6("fe80::1"))
                .neighbor_advertisement(v6("2001:db8::10"), na_flags::SOLICITED)
                .build(),
            Reason::Pass,
        ),
        from_guest(
            "ND option cut by the IPv6 payload length is nd_malformed",
            locked(),
            ns(ns_eth(), Some(24 + 4)),
            Reason::NdMalformed,
        ),
        to_guest(
            "IPv4 to the guest followed by a trailer passes",
            locked(),
            to_guest4(to().trailer(&trailer), None),
            Reason::Pass,
        ),
        to_guest(
            "IPv4 to the guest, total length beyond the frame is ipv4_malformed",
            locked(),
            to_guest4(to(), Some(20 + 8 + 7)),
            Reason::Ipv4Malformed,
        ),
        to_guest(
            "IPv6 to the guest followed by a trailer passes",
            locked(),
            to_guest6(to().trailer(&trailer), None),
            Reason::Pass,
        ),
        to_guest(
            "IPv6 to the guest, payload length beyond the frame is ipv6_malformed",
            locked(),
            to_guest6(to(), Some(8 + 7)),
            Reason::Ipv6Malformed,
        ),
    ]);
}

#[test]
fn modes_and_missing_policy() {
    let spoofed = echo4(OTHER, "192.0.2.99", "192.0.2.1");
    let good = echo4(GUEST, "192.0.2.10", "192.0.2.1");
    let mode = |m: Mode| {
        let mut p = locked();
        p.mode = m;
        p
    };
    check(vec![
        from_guest(
            "unlocked passes a spoofed frame",
            mode(Mode::Unlocked),
            spoofed.clone(),
            Reason::Pass,
        ),
        from_guest(
            "disabled drops a good frame",
            mode(Mode::Disabled),
            good.clone(),
            Reason::Disabled,
        ),
        to_guest(
            "disabled drops towards the guest too",
            mode(Mode::Disabled),
            echo4(ROUTER, "192.0.2.1", "192.0.2.10"),
            Reason::Disabled,
        ),
        to_guest(
            "unlocked passes a frame for another MAC towards the guest",
            mode(Mode::Unlocked),
            Frame::eth(ROUTER, OTHER)
                .ipv4(v4("192.0.2.1"), v4("192.0.2.99"))
                .icmp_echo_request(1, 1)
                .build(),
            Reason::Pass,
        ),
        Case {
            name: "no policy entry fails closed as no_policy",
            policy: None,
            dir: Direction::FromGuest,
            frame: good.clone(),
            expect: Reason::NoPolicy,
        },
        Case {
            name: "no policy entry fails closed towards the guest",
            policy: None,
            dir: Direction::ToGuest,
            frame: good,
            expect: Reason::NoPolicy,
        },
    ]);
}

#[test]
fn address_lists_are_per_interface() {
    // Another interface (ifindex 2) allows 192.0.2.99 and a prefix; that
    // must not open anything on the test interface.
    let mut kernel = Kernel::load();
    let mut other = Policy::locked(MacAddr(OTHER));
    other.ipv4 = vec![
        "192.0.2.99".parse().expect("cidr"),
        "203.0.113.0/24".parse().expect("cidr"),
    ];
    other.ipv6 = vec!["2001:db8:99::/48".parse().expect("cidr")];
    kernel.set_policy(2, &other);
    kernel.set_policy(TEST_IFINDEX, &locked());
    for hook in [Hook::TcFromGuest, Hook::XdpFromGuest] {
        for (frame, expect) in [
            (echo4(GUEST, "192.0.2.99", "192.0.2.1"), Reason::Ipv4Spoof),
            (echo4(GUEST, "203.0.113.7", "192.0.2.1"), Reason::Ipv4Spoof),
            (
                echo6(GUEST, v6("2001:db8:99::1"), v6("2001:db8::1")),
                Reason::Ipv6Spoof,
            ),
            (echo4(GUEST, "192.0.2.10", "192.0.2.1"), Reason::Pass),
        ] {
            let got = kernel.run(hook, &frame);
            assert_eq!(
                got.reason, expect,
                "{hook:?}: an address allowed on another vif must not pass here"
            );
        }
    }
}

#[test]
fn isolated_destinations() {
    check(vec![
        from_guest(
            "IPv4 to a listed host passes",
            isolated(),
            echo4(GUEST, "192.0.2.10", "192.0.2.1"),
            Reason::Pass,
        ),
        from_guest(
            "IPv4 into a listed prefix passes",
            isolated(),
            echo4(GUEST, "192.0.2.10", "203.0.113.80"),
            Reason::Pass,
        ),
        from_guest(
            "IPv4 to an unlisted destination is isolation",
            isolated(),
            echo4(GUEST, "192.0.2.10", "192.0.2.20"),
            Reason::Isolation,
        ),
        from_guest(
            "spoofed source in isolated mode is still ipv4_spoof",
            isolated(),
            echo4(GUEST, "192.0.2.99", "192.0.2.1"),
            Reason::Ipv4Spoof,
        ),
        from_guest(
            "DHCP discover broadcast passes in isolated mode",
            isolated(),
            dhcp_discover("0.0.0.0", "255.255.255.255"),
            Reason::Pass,
        ),
        from_guest(
            "other IPv4 broadcast is isolation",
            isolated(),
            Frame::eth(GUEST, BROADCAST)
                .ipv4(v4("192.0.2.10"), v4("255.255.255.255"))
                .udp(5000, 5000)
                .build(),
            Reason::Isolation,
        ),
        from_guest(
            "ARP for a listed destination passes",
            isolated(),
            arp(arp_op::REQUEST, GUEST, "192.0.2.10", "192.0.2.1").build(),
            Reason::Pass,
        ),
        from_guest(
            "ARP for an unlisted neighbour is isolation",
            isolated(),
            arp(arp_op::REQUEST, GUEST, "192.0.2.10", "192.0.2.20").build(),
            Reason::Isolation,
        ),
        from_guest(
            "gratuitous ARP passes in isolated mode",
            isolated(),
            arp(arp_op::REQUEST, GUEST, "192.0.2.10", "192.0.2.10").build(),
            Reason::Pass,
        ),
        from_guest(
            "IPv6 into a listed prefix passes",
            isolated(),
            echo6(GUEST, v6("2001:db8::10"), v6("2001:db8:ffff::1")),
            Reason::Pass,
        ),
        from_guest(
            "IPv6 to an unlisted destination is isolation",
            isolated(),
            echo6(GUEST, v6("2001:db8::10"), v6("2001:db8::20")),
            Reason::Isolation,
        ),
        from_guest(
            "ping to all-nodes multicast is isolation",
            isolated(),
            echo6(GUEST, v6("2001:db8::10"), frames::ALL_NODES),
            Reason::Isolation,
        ),
        from_guest(
            "NS to a solicited-node group passes in isolated mode",
            isolated(),
            Frame::eth(
                GUEST,
                frames::ipv6_multicast_mac(solicited_node(v6("2001:db8::1"))),
            )
            .ipv6(v6("2001:db8::10"), solicited_node(v6("2001:db8::1")))
            .neighbor_solicitation(v6("2001:db8::1"))
            .slla(GUEST)
            .build(),
            Reason::Pass,
        ),
        from_guest(
            "DHCPv6 solicit passes in isolated mode",
            isolated(),
            Frame::eth(GUEST, frames::ipv6_multicast_mac(frames::ALL_DHCP_AGENTS))
                .ipv6(guest_ll(), frames::ALL_DHCP_AGENTS)
                .udp(546, 547)
                .payload(&dhcpv6_solicit(GUEST, 9))
                .build(),
            Reason::Pass,
        ),
    ]);
}

#[test]
fn towards_the_guest_anti_sniffing() {
    let to = |dst_mac: Mac, dst: &str| {
        Frame::eth(ROUTER, dst_mac)
            .ipv4(v4("192.0.2.1"), v4(dst))
            .icmp_echo_request(1, 1)
            .build()
    };
    let to6 = |dst_mac: Mac, dst: Ipv6Addr| {
        Frame::eth(ROUTER, dst_mac)
            .ipv6(v6("2001:db8::1"), dst)
            .echo_request(1, 1)
            .build()
    };
    let arp_to = |dst_mac: Mac, op: u16, tpa: &str| {
        Frame::eth(ROUTER, dst_mac)
            .arp(op)
            .spa(v4("192.0.2.1"))
            .tpa(v4(tpa))
            .build()
    };
    let offer = |dst: &str| {
        Frame::eth(ROUTER, GUEST)
            .ipv4(v4("192.0.2.1"), v4(dst))
            .udp(67, 68)
            .payload(&dhcpv4_offer(GUEST, 7, v4("192.0.2.10"), v4("192.0.2.1")))
            .build()
    };
    check(vec![
        to_guest(
            "unicast to the guest's address passes",
            locked(),
            to(GUEST, "192.0.2.10"),
            Reason::Pass,
        ),
        to_guest(
            "unicast into the guest's prefix passes",
            locked(),
            to(GUEST, "198.51.100.9"),
            Reason::Pass,
        ),
        to_guest(
            "flooded unicast for another MAC is sniff_mac",
            locked(),
            to(OTHER, "192.0.2.99"),
            Reason::SniffMac,
        ),
        to_guest(
            "guest's MAC but another IPv4 address is sniff_ip",
            locked(),
            to(GUEST, "192.0.2.99"),
            Reason::SniffIp,
        ),
        to_guest(
            "broadcast IPv4 passes",
            locked(),
            to(BROADCAST, "255.255.255.255"),
            Reason::Pass,
        ),
        to_guest(
            "DHCP offer to a guest without an address passes",
            Policy::locked(MacAddr(GUEST)),
            offer("192.0.2.10"),
            Reason::Pass,
        ),
        to_guest(
            "DHCP offer to another address of a configured guest is sniff_ip",
            locked(),
            offer("192.0.2.50"),
            Reason::SniffIp,
        ),
        to_guest(
            "IPv6 to the guest's address passes",
            locked(),
            to6(GUEST, v6("2001:db8::10")),
            Reason::Pass,
        ),
        to_guest(
            "IPv6 to the guest's derived link-local passes",
            locked(),
            to6(GUEST, guest_ll()),
            Reason::Pass,
        ),
        to_guest(
            "IPv6 to another address at the guest's MAC is sniff_ip",
            locked(),
            to6(GUEST, v6("2001:db8::99")),
            Reason::SniffIp,
        ),
        to_guest(
            "IPv6 multicast passes",
            locked(),
            to6(
                frames::ipv6_multicast_mac(frames::ALL_NODES),
                frames::ALL_NODES,
            ),
            Reason::Pass,
        ),
        to_guest(
            "broadcast ARP request for the guest passes",
            locked(),
            arp_to(BROADCAST, arp_op::REQUEST, "192.0.2.10"),
            Reason::Pass,
        ),
        to_guest(
            "broadcast ARP request for a neighbour is sniff_arp",
            locked(),
            arp_to(BROADCAST, arp_op::REQUEST, "192.0.2.99"),
            Reason::SniffArp,
        ),
        to_guest(
            "ARP reply for another address is sniff_arp",
            locked(),
            arp_to(GUEST, arp_op::REPLY, "192.0.2.99"),
            Reason::SniffArp,
        ),
        to_guest(
            "malformed ARP towards the guest is arp_malformed",
            locked(),
            Frame::eth(ROUTER, BROADCAST)
                .arp(arp_op::REQUEST)
                .hlen(8)
                .tpa(v4("192.0.2.10"))
                .build(),
            Reason::ArpMalformed,
        ),
        to_guest(
            "egress_filter off passes flooded unicast",
            {
                let mut p = locked();
                p.options.egress_filter = false;
                p
            },
            to(OTHER, "192.0.2.99"),
            Reason::Pass,
        ),
        to_guest(
            "isolated guests are protected like locked ones",
            isolated(),
            to(OTHER, "192.0.2.99"),
            Reason::SniffMac,
        ),
        to_guest(
            "an icmpv6 type constant is used",
            locked(),
            Frame::eth(ROUTER, GUEST)
                .ipv6(v6("2001:db8::1"), v6("2001:db8::10"))
                .icmpv6(icmp6::ECHO_REPLY, 0)
                .build(),
            Reason::Pass,
        ),
    ]);
}

/// A second interface of the guest (section 3a).
const PAIR: Mac = [0x00, 0x16, 0x3e, 0x00, 0x00, 0x02];
/// The guest's VRRP router id.
const VRID: u8 = 7;

fn vmac4() -> Mac {
    frames::vrrp_mac_v4(VRID)
}

fn vmac6() -> Mac {
    frames::vrrp_mac_v6(VRID)
}

/// The locked guest with a pair (192.0.2.30, 2001:db8::30) and VRRP router
/// 7 (virtual 192.0.2.100 and 2001:db8::100).
fn with_extras(mut p: Policy) -> Policy {
    p.pairs = vec![Pair {
        mac: MacAddr(PAIR),
        ipv4: vec!["192.0.2.30".parse().expect("cidr")],
        ipv6: vec!["2001:db8::30".parse().expect("cidr")],
    }];
    p.vrrp = vec![Vrrp {
        vrid: VRID,
        ipv4: vec!["192.0.2.100".parse().expect("cidr")],
        ipv6: vec!["2001:db8::100".parse().expect("cidr")],
    }];
    p
}

fn extras() -> Policy {
    with_extras(locked())
}

fn udp4_from(src_mac: Mac, src: &str) -> Vec<u8> {
    Frame::eth(src_mac, ROUTER)
        .ipv4(v4(src), v4("192.0.2.1"))
        .udp(40000, 53)
        .build()
}

fn gratuitous_arp(src_mac: Mac, sha: Mac, ip: &str) -> Vec<u8> {
    Frame::eth(src_mac, BROADCAST)
        .arp(arp_op::REQUEST)
        .sha(sha)
        .spa(v4(ip))
        .tpa(v4(ip))
        .build()
}

fn dad_from(src_mac: Mac, target: Ipv6Addr) -> Vec<u8> {
    let group = solicited_node(target);
    Frame::eth(src_mac, frames::ipv6_multicast_mac(group))
        .ipv6(Ipv6Addr::UNSPECIFIED, group)
        .neighbor_solicitation(target)
        .build()
}

fn discover_from(src_mac: Mac, chaddr: Mac) -> Vec<u8> {
    Frame::eth(src_mac, BROADCAST)
        .ipv4(Ipv4Addr::UNSPECIFIED, Ipv4Addr::BROADCAST)
        .udp(68, 67)
        .payload(&dhcpv4_discover(chaddr, 7))
        .build()
}

#[test]
fn pairs_from_the_guest() {
    let rs_from = |src: Ipv6Addr| {
        Frame::eth(PAIR, frames::ipv6_multicast_mac(frames::ALL_ROUTERS))
            .ipv6(src, frames::ALL_ROUTERS)
            .router_solicitation()
            .slla(PAIR)
            .build()
    };
    let ns_from_pair = |slla: Mac| {
        Frame::eth(PAIR, ROUTER)
            .ipv6(v6("2001:db8::30"), v6("2001:db8::1"))
            .neighbor_solicitation(v6("2001:db8::1"))
            .slla(slla)
            .build()
    };
    check(vec![
        from_guest(
            "a pair's MAC with the pair's address passes",
            extras(),
            udp4_from(PAIR, "192.0.2.30"),
            Reason::Pass,
        ),
        from_guest(
            "a pair's MAC with the vif's own address is ipv4_spoof",
            extras(),
            udp4_from(PAIR, "192.0.2.10"),
            Reason::Ipv4Spoof,
        ),
        from_guest(
            "the vif's MAC with the pair's address is ipv4_spoof",
            extras(),
            udp4_from(GUEST, "192.0.2.30"),
            Reason::Ipv4Spoof,
        ),
        from_guest(
            "a pair's MAC not in the policy is mac_spoof",
            locked(),
            udp4_from(PAIR, "192.0.2.30"),
            Reason::MacSpoof,
        ),
        from_guest(
            "IPv6 from a pair with its address passes",
            extras(),
            echo6(PAIR, v6("2001:db8::30"), v6("2001:db8::1")),
            Reason::Pass,
        ),
        from_guest(
            "IPv6 from a pair with the vif's address is ipv6_spoof",
            extras(),
            echo6(PAIR, v6("2001:db8::10"), v6("2001:db8::1")),
            Reason::Ipv6Spoof,
        ),
        from_guest(
            "ARP from a pair naming the pair passes",
            extras(),
            gratuitous_arp(PAIR, PAIR, "192.0.2.30"),
            Reason::Pass,
        ),
        from_guest(
            "ARP from a pair with the vif's MAC as sha is arp_sha_spoof",
            extras(),
            gratuitous_arp(PAIR, GUEST, "192.0.2.30"),
            Reason::ArpShaSpoof,
        ),
        from_guest(
            "NS from a pair with its own SLLA passes",
            extras(),
            ns_from_pair(PAIR),
            Reason::Pass,
        ),
        from_guest(
            "NS from a pair with the vif's MAC as SLLA is nd_spoof",
            extras(),
            ns_from_pair(GUEST),
            Reason::NdSpoof,
        ),
        from_guest(
            "DHCPDISCOVER from a pair naming the pair passes",
            extras(),
            discover_from(PAIR, PAIR),
            Reason::Pass,
        ),
        from_guest(
            "DHCPDISCOVER from a pair naming the vif is dhcp_spoof",
            extras(),
            discover_from(PAIR, GUEST),
            Reason::DhcpSpoof,
        ),
        from_guest(
            "DAD from a pair for its address passes",
            extras(),
            dad_from(PAIR, v6("2001:db8::30")),
            Reason::Pass,
        ),
        from_guest(
            "DAD from a pair for the vif's address is dad_foreign",
            extras(),
            dad_from(PAIR, v6("2001:db8::10")),
            Reason::DadForeign,
        ),
        from_guest(
            "the pair's derived link-local passes under derived",
            extras(),
            rs_from(frames::link_local(PAIR)),
            Reason::Pass,
        ),
        from_guest(
            "the pair's derived link-local under none is ipv6_link_local",
            {
                let mut p = extras();
                p.options.link_local = LinkLocal::None;
                p
            },
            rs_from(frames::link_local(PAIR)),
            Reason::Ipv6LinkLocal,
        ),
        from_guest(
            "the vif's link-local from the pair is ipv6_link_local",
            extras(),
            rs_from(guest_ll()),
            Reason::Ipv6LinkLocal,
        ),
        from_guest(
            "RARP from a pair is rarp_spoof",
            extras(),
            Frame::eth(PAIR, BROADCAST)
                .rarp()
                .sha(GUEST)
                .tha(GUEST)
                .build(),
            Reason::RarpSpoof,
        ),
        from_guest(
            "isolated: ARP from a pair for the vif's address is isolation",
            with_extras(isolated()),
            Frame::eth(PAIR, BROADCAST)
                .arp(arp_op::REQUEST)
                .sha(PAIR)
                .spa(v4("192.0.2.30"))
                .tpa(v4("192.0.2.10"))
                .build(),
            Reason::Isolation,
        ),
    ]);
}

#[test]
fn vrrp_virtual_macs_from_the_guest() {
    let group = v4("224.0.0.18");
    let advertisement = |src_mac: Mac| {
        Frame::eth(src_mac, frames::ipv4_multicast_mac(group))
            .ipv4(v4("192.0.2.10"), group)
            .ttl(255)
            .protocol(frames::proto::VRRP)
            .payload(&frames::vrrp_advertisement(
                VRID,
                &[&v4("192.0.2.100").octets()],
            ))
            .build()
    };
    let na_from = |src_mac: Mac, target: &str| {
        Frame::eth(src_mac, frames::ipv6_multicast_mac(frames::ALL_NODES))
            .ipv6(guest_ll(), frames::ALL_NODES)
            .neighbor_advertisement(v6(target), na_flags::OVERRIDE)
            .tlla(src_mac)
            .build()
    };
    check(vec![
        from_guest(
            "VRRP advertisement from the virtual MAC and the vif's address passes",
            extras(),
            advertisement(vmac4()),
            Reason::Pass,
        ),
        from_guest(
            "the virtual MAC of an undeclared router id is mac_spoof",
            extras(),
            advertisement(frames::vrrp_mac_v4(VRID + 1)),
            Reason::MacSpoof,
        ),
        from_guest(
            "gratuitous ARP for the VIP from the virtual MAC passes",
            extras(),
            gratuitous_arp(vmac4(), vmac4(), "192.0.2.100"),
            Reason::Pass,
        ),
        from_guest(
            "gratuitous ARP for the VIP from the vif's MAC is arp_spa_spoof",
            extras(),
            gratuitous_arp(GUEST, GUEST, "192.0.2.100"),
            Reason::ArpSpaSpoof,
        ),
        from_guest(
            "NA for the v6 VIP from the v6 virtual MAC passes",
            extras(),
            na_from(vmac6(), "2001:db8::100"),
            Reason::Pass,
        ),
        from_guest(
            "NA for the v6 VIP from the v4 virtual MAC is nd_spoof",
            extras(),
            na_from(vmac4(), "2001:db8::100"),
            Reason::NdSpoof,
        ),
        from_guest(
            "the v4 VIP from the v6 virtual MAC is ipv4_spoof",
            extras(),
            udp4_from(vmac6(), "192.0.2.100"),
            Reason::Ipv4Spoof,
        ),
        from_guest(
            "the v6 virtual MAC of an entry without IPv6 is mac_spoof",
            {
                let mut p = extras();
                p.vrrp[0].ipv6.clear();
                p
            },
            na_from(vmac6(), "2001:db8::10"),
            Reason::MacSpoof,
        ),
        from_guest(
            "RARP from a virtual MAC is rarp_spoof",
            extras(),
            Frame::eth(vmac4(), BROADCAST)
                .rarp()
                .sha(GUEST)
                .tha(GUEST)
                .build(),
            Reason::RarpSpoof,
        ),
    ]);
}

#[test]
fn pairs_and_vrrp_towards_the_guest() {
    let to = |dst_mac: Mac, dst: &str| {
        Frame::eth(ROUTER, dst_mac)
            .ipv4(v4("192.0.2.1"), v4(dst))
            .icmp_echo_request(1, 1)
            .build()
    };
    let arp_for = |tpa: &str| {
        Frame::eth(ROUTER, BROADCAST)
            .arp(arp_op::REQUEST)
            .sha(ROUTER)
            .spa(v4("192.0.2.1"))
            .tpa(v4(tpa))
            .build()
    };
    check(vec![
        to_guest(
            "unicast to a pair's MAC and address passes",
            extras(),
            to(PAIR, "192.0.2.30"),
            Reason::Pass,
        ),
        to_guest(
            "unicast to an unknown MAC is sniff_mac",
            extras(),
            to(OTHER, "192.0.2.30"),
            Reason::SniffMac,
        ),
        to_guest(
            "unicast to the VIP at the virtual MAC passes",
            extras(),
            to(vmac4(), "192.0.2.100"),
            Reason::Pass,
        ),
        to_guest(
            "a neighbour's address at a pair's MAC is sniff_ip",
            extras(),
            to(PAIR, "192.0.2.99"),
            Reason::SniffIp,
        ),
        to_guest(
            "IPv6 to the pair's derived link-local passes",
            extras(),
            Frame::eth(ROUTER, PAIR)
                .ipv6(v6("2001:db8::1"), frames::link_local(PAIR))
                .echo_request(1, 1)
                .build(),
            Reason::Pass,
        ),
        to_guest(
            "ARP request for the VIP passes",
            extras(),
            arp_for("192.0.2.100"),
            Reason::Pass,
        ),
        to_guest(
            "ARP request for a neighbour is sniff_arp",
            extras(),
            arp_for("192.0.2.99"),
            Reason::SniffArp,
        ),
    ]);
}

#[test]
fn trusted_dhcp_servers_towards_the_guest() {
    let trusting = || {
        let mut p = locked();
        p.dhcp_servers = vec![
            IpAddr::V4(v4("192.0.2.1")),
            IpAddr::V6(frames::link_local(ROUTER)),
        ];
        p
    };
    let offer = |server: &str, sport: u16, dst_mac: Mac, dst: Ipv4Addr| {
        Frame::eth(ROUTER, dst_mac)
            .ipv4(v4(server), dst)
            .udp(sport, 68)
            .payload(&dhcpv4_offer(GUEST, 7, v4("192.0.2.10"), v4(server)))
            .build()
    };
    let advertise = |server: Ipv6Addr| {
        Frame::eth(ROUTER, GUEST)
            .ipv6(server, guest_ll())
            .udp(547, 546)
            .payload(&dhcpv6_advertise(GUEST, ROUTER, 7, v6("2001:db8::10")))
            .build()
    };
    let rogue6 = v6("fe80::66");
    check(vec![
        to_guest(
            "an offer from the listed server passes",
            trusting(),
            offer("192.0.2.1", 67, GUEST, v4("192.0.2.10")),
            Reason::Pass,
        ),
        to_guest(
            "an offer from an unlisted server is dhcp_untrusted",
            trusting(),
            offer("192.0.2.66", 67, GUEST, v4("192.0.2.10")),
            Reason::DhcpUntrusted,
        ),
        to_guest(
            "a broadcast offer from an unlisted server is dhcp_untrusted",
            trusting(),
            offer("192.0.2.66", 67, BROADCAST, Ipv4Addr::BROADCAST),
            Reason::DhcpUntrusted,
        ),
        to_guest(
            "an unlisted server on source port 1234 is dhcp_untrusted",
            trusting(),
            offer("192.0.2.66", 1234, GUEST, v4("192.0.2.10")),
            Reason::DhcpUntrusted,
        ),
        to_guest(
            "a DHCPv6 ADVERTISE from an unlisted server is dhcp_untrusted",
            trusting(),
            advertise(rogue6),
            Reason::DhcpUntrusted,
        ),
        to_guest(
            "a DHCPv6 ADVERTISE from the listed server passes",
            trusting(),
            advertise(frames::link_local(ROUTER)),
            Reason::Pass,
        ),
        to_guest(
            "an ADVERTISE behind destination options is dhcp_untrusted",
            trusting(),
            Frame::eth(ROUTER, GUEST)
                .ipv6(rogue6, guest_ll())
                .dest_opts()
                .udp(547, 546)
                .payload(&dhcpv6_advertise(GUEST, ROUTER, 7, v6("2001:db8::10")))
                .build(),
            Reason::DhcpUntrusted,
        ),
        to_guest(
            "an offer to a neighbour's address is sniff_ip before dhcp_untrusted",
            trusting(),
            offer("192.0.2.66", 67, GUEST, v4("192.0.2.50")),
            Reason::SniffIp,
        ),
        to_guest(
            "with dhcp_servers, a broadcast with a cut UDP header is ipv4_malformed",
            trusting(),
            offer("192.0.2.66", 67, BROADCAST, Ipv4Addr::BROADCAST)[..40].to_vec(),
            Reason::Ipv4Malformed,
        ),
        to_guest(
            "without dhcp_servers any server passes",
            locked(),
            offer("192.0.2.66", 67, BROADCAST, Ipv4Addr::BROADCAST),
            Reason::Pass,
        ),
        to_guest(
            "egress_filter off passes an unlisted server",
            {
                let mut p = trusting();
                p.options.egress_filter = false;
                p
            },
            offer("192.0.2.66", 67, BROADCAST, Ipv4Addr::BROADCAST),
            Reason::Pass,
        ),
    ]);
}
