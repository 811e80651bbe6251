//! From the guest: IPv4 (`docs/datapath.md`), with DHCP's bootstrap and
//! server messages.

use super::*;

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
    sent_by_guest(&bad_checksum, Pass, "the header checksum is not checked");

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
fn from_guest_ipv4_step1_total_length_must_hold_the_header_and_fit_the_frame() {
    let whole = udp4_from_guest(GUEST_V4, REMOTE_V4);
    let claims = |len: usize| {
        v4_from_guest(GUEST_V4, REMOTE_V4)
            .total_length(len as u16)
            .udp(40000, 53)
            .payload(b"query")
            .build()
    };
    sent_by_guest(&claims(whole.len() - 14), Pass, "total length = the packet");
    sent_by_guest(
        &claims(whole.len() - 13),
        Ipv4Malformed,
        "total length one byte beyond the frame",
    );
    sent_by_guest(&claims(0xffff), Ipv4Malformed, "total length 65535");
    sent_by_guest(&claims(19), Ipv4Malformed, "total length 19 < IHL 5");
    sent_by_guest(&claims(0), Ipv4Malformed, "total length 0");
    let with_options = v4_from_guest(GUEST_V4, REMOTE_V4)
        .options(&[0x94, 0x04, 0x00, 0x00])
        .total_length(20)
        .protocol(proto::TCP)
        .build();
    sent_by_guest(
        &with_options,
        Ipv4Malformed,
        "total length 20 < 24, the header with its options",
    );
    let header_only = v4_from_guest(GUEST_V4, REMOTE_V4)
        .total_length(20)
        .protocol(proto::TCP)
        .payload(&[0; 20])
        .build();
    sent_by_guest(
        &header_only,
        Pass,
        "total length = the header: the rest is trailer",
    );
    let fragment = v4_from_guest(GUEST_V4, REMOTE_V4)
        .fragment_offset(185)
        .total_length(100)
        .protocol(proto::UDP)
        .payload(&[0xab; 16])
        .build();
    sent_by_guest(
        &fragment,
        Ipv4Malformed,
        "a non-first fragment whose total length runs past the frame",
    );
    // Checked against the whole frame, not the 512-byte parse window.
    let big = v4_from_guest(GUEST_V4, REMOTE_V4)
        .udp(40000, 53)
        .payload(&[0; 1400])
        .build();
    assert!(big.len() > PARSE_WINDOW);
    sent_by_guest(&big, Pass, "a full-size packet beyond the parse window");
    let mut short_of_big = big.clone();
    short_of_big.truncate(1000);
    sent_by_guest(
        &short_of_big,
        Ipv4Malformed,
        "a full-size packet cut to 1000 bytes (beyond the window)",
    );
}

#[test]
fn from_guest_ipv4_step1_bytes_after_the_total_length_are_trailer() {
    let trailer = eth_v4(GUEST, REMOTE_V4)
        .trailer(&[0xa5; 18])
        .ipv4(GUEST_V4, REMOTE_V4)
        .udp(40000, 53)
        .payload(b"query")
        .build();
    sent_by_guest(&trailer, Pass, "UDP followed by 18 bytes of trailer");
    let padded = eth_v4(GUEST, REMOTE_V4)
        .padded()
        .ipv4(GUEST_V4, REMOTE_V4)
        .icmp_echo_request(1, 1)
        .build();
    assert_eq!(padded.len(), 60);
    sent_by_guest(&padded, Pass, "a ping padded to the 60-byte minimum");
    // A header the total length cuts off is cut, as if the frame ended
    // there, whatever bytes follow.
    let cut_udp = v4_from_guest(GUEST_V4, REMOTE_V4)
        .total_length(24)
        .udp(40000, 53)
        .payload(b"query")
        .build();
    sent_by_guest(
        &cut_udp,
        Ipv4Malformed,
        "a UDP header the total length cuts to 4 bytes",
    );
    let exact_udp = v4_from_guest(GUEST_V4, REMOTE_V4)
        .total_length(28)
        .udp(40000, 53)
        .payload(b"query")
        .build();
    sent_by_guest(
        &exact_udp,
        Pass,
        "a total length that ends right after the UDP header",
    );
    let cut_options = v4_from_guest(GUEST_V4, REMOTE_V4)
        .options(&[0x94, 0x04, 0x00, 0x00])
        .total_length(28)
        .udp(40000, 53)
        .build();
    sent_by_guest(
        &cut_options,
        Ipv4Malformed,
        "with options, a total length that cuts the UDP header",
    );
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
fn from_guest_ipv4_step2_icmp_header_must_fit_unless_non_first_fragment() {
    let echo = |len: Option<u16>| {
        let ip = v4_from_guest(GUEST_V4, REMOTE_V4);
        match len {
            Some(l) => ip.total_length(l),
            None => ip,
        }
        .icmp_echo_request(1, 1)
        .build()
    };
    sent_by_guest(&echo(None), Pass, "ICMP echo request");
    sent_by_guest(&echo(Some(24)), Pass, "ICMP type, code and checksum only");
    sent_by_guest(
        &echo(Some(23)),
        Ipv4Malformed,
        "ICMP header cut to 3 bytes by the total length",
    );
    sent_by_guest(
        &echo(None)[..37],
        Ipv4Malformed,
        "ICMP header cut by the frame",
    );
    let fragment = v4_from_guest(GUEST_V4, REMOTE_V4)
        .fragment_offset(3)
        .protocol(proto::ICMP)
        .payload(&[5, 1])
        .build();
    sent_by_guest(&fragment, Pass, "a non-first ICMP fragment has no header");
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
fn from_guest_ipv4_step5_dhcp_client_messages_must_name_the_frames_mac() {
    let from_unspecified = |payload: &[u8]| {
        v4_from_guest(Ipv4Addr::UNSPECIFIED, Ipv4Addr::BROADCAST)
            .udp(68, 67)
            .payload(payload)
            .build()
    };
    let discover = dhcpv4_discover(GUEST, XID);
    sent_by_guest(
        &from_unspecified(&discover),
        Pass,
        "DHCPDISCOVER, own chaddr",
    );
    let renewal = v4_from_guest(GUEST_V4, GATEWAY_V4)
        .udp(68, 67)
        .payload(&dhcpv4_request(GUEST, XID))
        .build();
    sent_by_guest(&renewal, Pass, "unicast DHCPREQUEST renewal, own chaddr");

    let patched = |at: usize, v: u8| {
        let mut m = discover.clone();
        m[at] = v;
        from_unspecified(&m)
    };
    // (frame, what): every one is dhcp_spoof.
    let spoofs = [
        (
            from_unspecified(&dhcpv4_discover(OTHER, XID)),
            "DHCPDISCOVER naming a neighbour's MAC (pool exhaustion)",
        ),
        (
            v4_from_guest(GUEST_V4, GATEWAY_V4)
                .udp(68, 67)
                .payload(&dhcpv4_request(OTHER, XID))
                .build(),
            "DHCPREQUEST naming a neighbour's MAC (lease theft)",
        ),
        (
            v4_from_guest(GUEST_V4, GATEWAY_V4)
                .udp(40000, 67)
                .payload(&dhcpv4_request(OTHER, XID))
                .build(),
            "a client message from any source port",
        ),
        (patched(28, 0x02), "chaddr differs in its first byte"),
        (patched(33, 0x57), "chaddr differs in its last byte"),
        (patched(1, 6), "htype 6 (IEEE 802)"),
        (patched(1, 0), "htype 0"),
        (patched(2, 16), "hlen 16"),
        (patched(2, 0), "hlen 0"),
        (from_unspecified(&discover[..33]), "33 bytes: chaddr cut"),
        (from_unspecified(&discover[..1]), "op alone"),
        (from_unspecified(&[]), "an empty datagram to port 67"),
        (
            v4_from_guest(Ipv4Addr::UNSPECIFIED, Ipv4Addr::BROADCAST)
                .total_length(20 + 8 + 33)
                .udp(68, 67)
                .payload(&discover)
                .build(),
            "chaddr cut by the total length, the rest a trailer",
        ),
    ];
    for (frame, what) in &spoofs {
        sent_by_guest(frame, DhcpSpoof, what);
    }
    sent_by_guest(
        &from_unspecified(&discover[..34]),
        Pass,
        "34 bytes: op, htype, hlen and the 6 bytes of chaddr",
    );
    let exact = v4_from_guest(Ipv4Addr::UNSPECIFIED, Ipv4Addr::BROADCAST)
        .total_length(20 + 8 + 34)
        .udp(68, 67)
        .payload(&discover)
        .build();
    sent_by_guest(&exact, Pass, "total length ending right after chaddr");

    // Only BOOTP requests (op 1) are client messages.
    let mut reply = dhcpv4_offer(OTHER, XID, OTHER_V4, GUEST_V4);
    reply[28..34].copy_from_slice(&OTHER);
    let reply_to_server = v4_from_guest(GUEST_V4, GATEWAY_V4)
        .udp(40000, 67)
        .payload(&reply)
        .build();
    sent_by_guest(&reply_to_server, Pass, "BOOTP reply (op 2) to port 67");
    let not_dhcp = v4_from_guest(GUEST_V4, REMOTE_V4)
        .udp(68, 53)
        .payload(&dhcpv4_discover(OTHER, XID))
        .build();
    sent_by_guest(&not_dhcp, Pass, "a discover to port 53 is not DHCP");
    let fragment = v4_from_guest(GUEST_V4, GATEWAY_V4)
        .fragment_offset(1)
        .protocol(proto::UDP)
        .payload(&[0, 68, 0, 67, 0, 8, 0, 0])
        .build();
    sent_by_guest(&fragment, Pass, "a non-first fragment has no ports");

    // A relay (option dhcp_server) forwards other clients' messages.
    for p in guarded(|p| {
        p.options.dhcp_server = true;
        p.destinations.push(Cidr::V4(cidr4("255.255.255.255/32")));
    }) {
        for (frame, what) in &spoofs {
            from_guest(&p, frame, Pass, &format!("dhcp_server on: {what}"));
        }
    }

    // Earlier steps come first.
    let spoofed_source = v4_from_guest(OTHER_V4, GATEWAY_V4)
        .udp(68, 67)
        .payload(&dhcpv4_request(OTHER, XID))
        .build();
    sent_by_guest(
        &spoofed_source,
        Ipv4Spoof,
        "a neighbour's source and chaddr",
    );
    let relay_message = v4_from_guest(GUEST_V4, GATEWAY_V4)
        .udp(67, 67)
        .payload(&dhcpv4_discover(OTHER, XID))
        .build();
    sent_by_guest(
        &relay_message,
        DhcpServer,
        "relayed 67 -> 67, dhcp_server off",
    );
    // Before isolation: the isolated guest's spoofed renewal to an
    // unlisted server is a spoof first.
    let unlisted = v4_from_guest(GUEST_V4, FORBIDDEN_V4)
        .udp(68, 67)
        .payload(&dhcpv4_request(OTHER, XID))
        .build();
    from_guest(&isolated(), &unlisted, DhcpSpoof, "to an unlisted server");
}

#[test]
fn from_guest_ipv4_step6_icmp_redirects_need_option_router() {
    let redirect = |src: Ipv4Addr, dst: Ipv4Addr, code: u8| {
        let original = v4_to_guest(GATEWAY_V4, REMOTE_V4).udp(53, 40000).build();
        v4_from_guest(src, dst)
            .icmp(5, code)
            .data(&GUEST_V4.octets())
            .data(&original[14..14 + 28])
            .build()
    };
    for code in 0..4 {
        sent_by_guest(
            &redirect(GUEST_V4, GATEWAY_V4, code),
            RaGuard,
            &format!("ICMP Redirect code {code}, router off (default)"),
        );
    }
    for p in guarded(|p| p.options.router = true) {
        from_guest(
            &p,
            &redirect(GUEST_V4, GATEWAY_V4, 1),
            Pass,
            "ICMP Redirect, router on",
        );
    }
    // Other ICMP types are no router's business.
    for ty in [0, 3, 8, 11, 9, 10] {
        let m = v4_from_guest(GUEST_V4, GATEWAY_V4)
            .icmp(ty, 0)
            .data(&[0; 32])
            .build();
        sent_by_guest(&m, Pass, &format!("ICMP type {ty}"));
    }
    let lookalike = v4_from_guest(GUEST_V4, GATEWAY_V4)
        .protocol(proto::TCP)
        .payload(&[5, 1, 0, 0, 192, 0, 2, 10])
        .build();
    sent_by_guest(&lookalike, Pass, "TCP whose first byte is 5");
    let fragment = v4_from_guest(GUEST_V4, GATEWAY_V4)
        .fragment_offset(3)
        .protocol(proto::ICMP)
        .payload(&[5, 1, 0, 0, 192, 0, 2, 10])
        .build();
    sent_by_guest(
        &fragment,
        Pass,
        "a non-first fragment holding a Redirect's bytes",
    );
    // The source comes first; isolation after.
    sent_by_guest(
        &redirect(OTHER_V4, GATEWAY_V4, 1),
        Ipv4Spoof,
        "a Redirect from a neighbour's address",
    );
    let p = with(isolated(), |p| p.options.router = true);
    from_guest(
        &p,
        &redirect(GUEST_V4, FORBIDDEN_V4, 1),
        Isolation,
        "a Redirect to an unlisted destination, router on",
    );
    from_guest(
        &isolated(),
        &redirect(GUEST_V4, FORBIDDEN_V4, 1),
        RaGuard,
        "a Redirect to an unlisted destination, router off",
    );
}

#[test]
fn from_guest_ipv4_step7_isolated_destination_must_be_listed() {
    let renew_broadcast = v4_from_guest(GUEST_V4, Ipv4Addr::BROADCAST)
        .udp(68, 67)
        .payload(&dhcpv4_request(GUEST, XID))
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
            v4_from_guest(GUEST_V4, FORBIDDEN_V4)
                .udp(68, 67)
                .payload(&dhcpv4_request(GUEST, XID))
                .build(),
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
