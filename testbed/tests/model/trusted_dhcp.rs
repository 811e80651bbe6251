//! To the guest: trusted DHCP servers (`docs/policy.md` section 4 step 5;
//! `docs/datapath.md`, "To the guest" 6). With `dhcp_servers` set, a DHCP
//! or DHCPv6 server message (by its destination port alone, 68 or 546)
//! reaches the guest only from a listed server, and every IP packet to the
//! guest is parsed far enough to tell.

use super::*;

/// The locked and the isolated policy with one server per family.
fn trusting() -> [Policy; 2] {
    guarded(|p| {
        p.dhcp_servers = vec![IpAddr::V4(SERVER_V4), IpAddr::V6(router_ll())];
        p.validate().expect("the test policy is valid");
    })
}

#[track_caller]
fn received(frame: &[u8], want: Reason, what: &str) {
    for p in trusting() {
        to_guest(&p, frame, want, what);
    }
}

/// A DHCPOFFER of the guest's address from `server`, `sport` -> 68, to
/// `dst_mac` and `dst`.
fn offer(server: Ipv4Addr, sport: u16, dst_mac: Mac, dst: Ipv4Addr) -> Vec<u8> {
    Frame::eth(ROUTER, dst_mac)
        .ipv4(server, dst)
        .udp(sport, 68)
        .payload(&dhcpv4_offer(GUEST, XID, GUEST_V4, server))
        .build()
}

/// A DHCPv6 ADVERTISE from `server` to the guest's link-local.
fn advertise(server: Ipv6Addr) -> Ipv6 {
    Frame::eth(ROUTER, GUEST).ipv6(server, guest_ll())
}

fn advertise_payload() -> Vec<u8> {
    dhcpv6_advertise(GUEST, ROUTER, XID, GUEST_V6)
}

#[test]
fn to_guest_step6_dhcp_offers_only_from_listed_servers() {
    let table = [
        (
            offer(SERVER_V4, 67, GUEST, GUEST_V4),
            Pass,
            "unicast offer from the listed server",
        ),
        (
            offer(ROGUE_V4, 67, GUEST, GUEST_V4),
            DhcpUntrusted,
            "unicast offer from an unlisted server",
        ),
        (
            offer(SERVER_V4, 67, BROADCAST, Ipv4Addr::BROADCAST),
            Pass,
            "broadcast offer from the listed server",
        ),
        (
            offer(ROGUE_V4, 67, BROADCAST, Ipv4Addr::BROADCAST),
            DhcpUntrusted,
            "broadcast offer from an unlisted server",
        ),
        (
            offer(ROGUE_V4, 1234, GUEST, GUEST_V4),
            DhcpUntrusted,
            "an unlisted server on source port 1234",
        ),
        (
            offer(SERVER_V4, 1234, GUEST, GUEST_V4),
            Pass,
            "the listed server on source port 1234",
        ),
        (
            offer(ROGUE_V4, 67, PAIR, PAIR_V4),
            SniffMac,
            "a pair's MAC without the pair: step 1 first",
        ),
    ];
    for (frame, want, what) in table {
        received(&frame, want, what);
    }
    // Unicast is judged by step 4 first: sniff_ip before dhcp_untrusted.
    received(
        &offer(ROGUE_V4, 67, GUEST, OTHER_V4),
        SniffIp,
        "an unlisted server's offer to a neighbour's address",
    );
    // The "no address yet" exception lets the offer past step 4 only.
    for p in guarded(|p| {
        p.ipv4.clear();
        p.dhcp_servers = vec![IpAddr::V4(SERVER_V4)];
    }) {
        let what = "offer before the guest has an address, listed server";
        to_guest(&p, &offer(SERVER_V4, 67, GUEST, GUEST_V4), Pass, what);
        let what = "offer before the guest has an address, unlisted server";
        let frame = offer(ROGUE_V4, 67, GUEST, GUEST_V4);
        to_guest(&p, &frame, DhcpUntrusted, what);
    }
    // Only IPv6 servers listed: no IPv4 server is trusted.
    for p in guarded(|p| p.dhcp_servers = vec![IpAddr::V6(router_ll())]) {
        let frame = offer(SERVER_V4, 67, GUEST, GUEST_V4);
        to_guest(&p, &frame, DhcpUntrusted, "only an IPv6 server listed");
    }
}

#[test]
fn to_guest_step6_only_server_messages_are_judged() {
    let dns = Frame::eth(ROUTER, GUEST)
        .ipv4(ROGUE_V4, GUEST_V4)
        .udp(53, 40000)
        .build();
    received(&dns, Pass, "other UDP from an unlisted source");
    let to_server = Frame::eth(ROUTER, BROADCAST)
        .ipv4(Ipv4Addr::UNSPECIFIED, Ipv4Addr::BROADCAST)
        .udp(68, 67)
        .payload(&dhcpv4_discover(OTHER, XID))
        .build();
    received(&to_server, Pass, "a neighbour's DISCOVER (to port 67)");
    let fragment = Frame::eth(ROUTER, GUEST)
        .ipv4(ROGUE_V4, GUEST_V4)
        .fragment_offset(1)
        .protocol(proto::UDP)
        .payload(&[0, 67, 0, 68])
        .build();
    received(&fragment, Pass, "a non-first fragment has no ports");
    let first_fragment = Frame::eth(ROUTER, GUEST)
        .ipv4(ROGUE_V4, GUEST_V4)
        .more_fragments()
        .udp(67, 68)
        .payload(&dhcpv4_offer(GUEST, XID, GUEST_V4, ROGUE_V4))
        .build();
    received(&first_fragment, DhcpUntrusted, "a first fragment has ports");
    let tagged = Frame::eth(ROUTER, BROADCAST)
        .vlan(10)
        .ipv4(ROGUE_V4, Ipv4Addr::BROADCAST)
        .udp(67, 68)
        .build();
    received(&tagged, Pass, "VLAN-tagged frames are not looked into");
}

#[test]
fn to_guest_step6_dhcpv6_from_listed_servers_only() {
    let table = [
        (
            advertise(router_ll())
                .udp(547, 546)
                .payload(&advertise_payload())
                .build(),
            Pass,
            "ADVERTISE from the listed server",
        ),
        (
            advertise(ROGUE_V6)
                .udp(547, 546)
                .payload(&advertise_payload())
                .build(),
            DhcpUntrusted,
            "ADVERTISE from an unlisted server",
        ),
        (
            advertise(ROGUE_V6)
                .udp(1234, 546)
                .payload(&advertise_payload())
                .build(),
            DhcpUntrusted,
            "ADVERTISE from an unlisted server, source port 1234",
        ),
        (
            advertise(ROGUE_V6)
                .dest_opts()
                .udp(547, 546)
                .payload(&advertise_payload())
                .build(),
            DhcpUntrusted,
            "ADVERTISE behind a destination options header",
        ),
        (
            advertise(ROGUE_V6)
                .hop_by_hop()
                .routing()
                .ah()
                .udp(547, 546)
                .payload(&advertise_payload())
                .build(),
            DhcpUntrusted,
            "ADVERTISE behind hop-by-hop, routing and AH",
        ),
        (
            advertise(ROGUE_V6)
                .fragment(0, true)
                .udp(547, 546)
                .payload(&advertise_payload())
                .build(),
            DhcpUntrusted,
            "ADVERTISE in a first fragment",
        ),
        (
            advertise(ROGUE_V6)
                .fragment(1, false)
                .protocol(proto::UDP)
                .payload(&[0x02, 0x23, 0x02, 0x22])
                .build(),
            Pass,
            "a non-first fragment has no ports",
        ),
        (
            advertise(ROGUE_V6).udp(53, 40000).build(),
            Pass,
            "other UDP from an unlisted source",
        ),
        (
            Frame::eth(ROUTER, ipv6_multicast_mac(ALL_NODES))
                .ipv6(ROGUE_V6, ALL_NODES)
                .udp(547, 546)
                .payload(&advertise_payload())
                .build(),
            DhcpUntrusted,
            "multicast to port 546 from an unlisted server",
        ),
    ];
    for (frame, want, what) in table {
        received(&frame, want, what);
    }
    // Unicast is judged by step 5 first.
    let neighbours = Frame::eth(ROUTER, GUEST)
        .ipv6(ROGUE_V6, OTHER_V6)
        .udp(547, 546)
        .build();
    received(
        &neighbours,
        SniffIp,
        "to a neighbour's address: sniff_ip first",
    );
}

#[test]
fn to_guest_step6_packets_that_could_hide_a_server_message_are_malformed() {
    let cut_v4 = offer(ROGUE_V4, 67, BROADCAST, Ipv4Addr::BROADCAST);
    received(&cut_v4[..40], Ipv4Malformed, "broadcast, UDP header cut");
    sent_to_guest(&cut_v4[..40], Pass, "the same without dhcp_servers");
    let bad_ihl = Frame::eth(ROUTER, BROADCAST)
        .ipv4(ROGUE_V4, Ipv4Addr::BROADCAST)
        .ihl(4)
        .udp(67, 68)
        .build();
    received(&bad_ihl, Ipv4Malformed, "broadcast with IHL 4");
    let bad_chain = |dst_mac: Mac, dst: Ipv6Addr| {
        Frame::eth(ROUTER, dst_mac)
            .ipv6(ROGUE_V6, dst)
            .ext_raw(proto::DEST_OPTS, 200, &[0; 6])
            .build()
    };
    let multicast = bad_chain(ipv6_multicast_mac(ALL_NODES), ALL_NODES);
    received(
        &multicast,
        Ipv6Malformed,
        "multicast, broken extension chain",
    );
    sent_to_guest(&multicast, Pass, "the same without dhcp_servers");
    let unicast = bad_chain(GUEST, GUEST_V6);
    received(
        &unicast,
        Ipv6Malformed,
        "to the guest, broken extension chain",
    );
    sent_to_guest(&unicast, Pass, "the same without dhcp_servers");
    let cut_icmp = Frame::eth(ROUTER, ipv6_multicast_mac(ALL_NODES))
        .ipv6(router_ll(), ALL_NODES)
        .payload_length(3)
        .icmpv6(icmp6::ECHO_REQUEST, 0)
        .build();
    received(&cut_icmp, Ipv6Malformed, "multicast, ICMPv6 header cut");
}

#[test]
fn to_guest_step6_needs_a_list_and_the_egress_filter() {
    let rogue = offer(ROGUE_V4, 67, BROADCAST, Ipv4Addr::BROADCAST);
    sent_to_guest(&rogue, Pass, "empty dhcp_servers: any server");
    let rogue6 = advertise(ROGUE_V6)
        .udp(547, 546)
        .payload(&advertise_payload())
        .build();
    sent_to_guest(&rogue6, Pass, "empty dhcp_servers: any DHCPv6 server");
    for p in trusting() {
        let off = with(p, |p| p.options.egress_filter = false);
        to_guest(&off, &rogue, Pass, "egress_filter off");
        to_guest(&off, &rogue6, Pass, "egress_filter off, DHCPv6");
    }
    // The guest's own server messages are section 3's business.
    for p in trusting() {
        let frame = v4_from_guest(GUEST_V4, OTHER_V4).udp(67, 68).build();
        from_guest(&p, &frame, DhcpServer, "from the guest: dhcp_server");
    }
}
