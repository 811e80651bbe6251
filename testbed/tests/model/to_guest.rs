//! To the guest (`docs/datapath.md`, `egress_filter` on): what the guest
//! may see of its neighbours' traffic.

use super::*;

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
fn to_guest_step4_ipv4_total_length_must_hold_the_header_and_fit_the_frame() {
    let udp = |len: Option<u16>| {
        let ip = v4_to_guest(REMOTE_V4, GUEST_V4);
        match len {
            Some(l) => ip.total_length(l),
            None => ip,
        }
        .udp(53, 40000)
        .payload(b"answer")
        .build()
    };
    let whole = udp(None);
    sent_to_guest(&whole, Pass, "total length = the packet");
    let beyond = udp(Some((whole.len() - 13) as u16));
    sent_to_guest(
        &beyond,
        Ipv4Malformed,
        "total length one byte beyond the frame",
    );
    sent_to_guest(&udp(Some(19)), Ipv4Malformed, "total length 19 < IHL 5");
    sent_to_guest(
        &udp(Some(24)),
        Ipv4Malformed,
        "a UDP header the total length cuts to 4 bytes",
    );
    let icmp = v4_to_guest(REMOTE_V4, GUEST_V4)
        .total_length(23)
        .icmp_echo_request(1, 1)
        .build();
    sent_to_guest(
        &icmp,
        Ipv4Malformed,
        "an ICMP header the total length cuts to 3 bytes",
    );
    let trailer = Frame::eth(ROUTER, GUEST)
        .trailer(&[0xa5; 18])
        .ipv4(REMOTE_V4, GUEST_V4)
        .udp(53, 40000)
        .payload(b"answer")
        .build();
    sent_to_guest(&trailer, Pass, "UDP to the guest followed by a trailer");
    let broadcast = Frame::eth(ROUTER, BROADCAST)
        .ipv4(GATEWAY_V4, Ipv4Addr::new(192, 0, 2, 255))
        .total_length(0xffff)
        .udp(137, 137)
        .build();
    sent_to_guest(
        &broadcast,
        Pass,
        "broadcast IPv4 is not looked into, whatever its total length",
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
fn to_guest_step5_ipv6_payload_length_must_fit_the_frame() {
    let udp = |len: Option<u16>| {
        let ip = v6_to_guest(REMOTE_V6, GUEST_V6);
        match len {
            Some(l) => ip.payload_length(l),
            None => ip,
        }
        .udp(53, 40000)
        .payload(b"answer")
        .build()
    };
    let whole = udp(None);
    sent_to_guest(&whole, Pass, "payload length = the payload");
    let beyond = udp(Some((whole.len() - 53) as u16));
    sent_to_guest(
        &beyond,
        Ipv6Malformed,
        "payload length one byte beyond the frame",
    );
    sent_to_guest(&udp(Some(0xffff)), Ipv6Malformed, "payload length 65535");
    let trailer = Frame::eth(ROUTER, GUEST)
        .trailer(&[0xa5; 18])
        .ipv6(REMOTE_V6, GUEST_V6)
        .udp(53, 40000)
        .payload(b"answer")
        .build();
    sent_to_guest(&trailer, Pass, "UDP to the guest followed by a trailer");
    // Only the destination matters: no header behind the fixed one is
    // read, so a payload length that cuts one is no concern here.
    sent_to_guest(
        &udp(Some(4)),
        Pass,
        "a payload length that cuts the UDP header",
    );
}

#[test]
fn to_guest_step7_other_traffic_passes() {
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
