//! From the guest: IPv6 (`docs/datapath.md`) but for neighbour discovery
//! (`nd`): header and extension-header walk, upper layer, source, DHCPv6
//! and isolation.

use super::*;

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
fn from_guest_ipv6_step1_payload_length_must_fit_the_frame() {
    let whole = udp6_from_guest(GUEST_V6, GATEWAY_V6);
    let claims = |len: usize| {
        v6_from_guest(GUEST_V6, GATEWAY_V6)
            .payload_length(len as u16)
            .udp(40000, 53)
            .payload(b"query")
            .build()
    };
    sent_by_guest(
        &claims(whole.len() - 54),
        Pass,
        "payload length = the payload",
    );
    sent_by_guest(
        &claims(whole.len() - 53),
        Ipv6Malformed,
        "payload length one byte beyond the frame",
    );
    sent_by_guest(&claims(0xffff), Ipv6Malformed, "payload length 65535");
    let nothing = v6_from_guest(GUEST_V6, GATEWAY_V6).build();
    sent_by_guest(&nothing, Pass, "payload length 0, no next header (59)");
    // Checked against the whole frame, not the 512-byte parse window.
    let big = v6_from_guest(GUEST_V6, GATEWAY_V6)
        .udp(40000, 53)
        .payload(&[0; 1400])
        .build();
    sent_by_guest(&big, Pass, "a full-size packet beyond the parse window");
    sent_by_guest(
        &big[..1000],
        Ipv6Malformed,
        "a full-size packet cut to 1000 bytes (beyond the window)",
    );
}

#[test]
fn from_guest_ipv6_step1_bytes_after_the_payload_length_are_trailer() {
    let trailer = eth_v6(GUEST, GATEWAY_V6)
        .trailer(&[0xa5; 18])
        .ipv6(GUEST_V6, GATEWAY_V6)
        .udp(40000, 53)
        .payload(b"query")
        .build();
    sent_by_guest(&trailer, Pass, "UDP followed by 18 bytes of trailer");
    // What follows the payload length is never a header: not an
    // extension header, not the upper layer.
    let cut_hop_by_hop = v6_from_guest(GUEST_V6, GATEWAY_V6)
        .payload_length(4)
        .hop_by_hop()
        .udp(40000, 53)
        .build();
    sent_by_guest(
        &cut_hop_by_hop,
        Ipv6Malformed,
        "a hop-by-hop header the payload length cuts to 4 bytes",
    );
    // A jumbogram (RFC 2675) says 0 and has a hop-by-hop header: Ethernet
    // cannot carry one.
    let jumbo = v6_from_guest(GUEST_V6, GATEWAY_V6)
        .payload_length(0)
        .hop_by_hop()
        .udp(40000, 53)
        .build();
    sent_by_guest(
        &jumbo,
        Ipv6Malformed,
        "payload length 0 with a hop-by-hop header",
    );
    let cut_second = v6_from_guest(GUEST_V6, GATEWAY_V6)
        .payload_length(12)
        .hop_by_hop()
        .dest_opts()
        .udp(40000, 53)
        .build();
    sent_by_guest(
        &cut_second,
        Ipv6Malformed,
        "the second extension header cut by the payload length",
    );
    let cut_udp = v6_from_guest(GUEST_V6, GATEWAY_V6)
        .payload_length(7)
        .udp(40000, 53)
        .payload(b"query")
        .build();
    sent_by_guest(
        &cut_udp,
        Ipv6Malformed,
        "a UDP header the payload length cuts to 7 bytes",
    );
    let cut_icmp = v6_from_guest(GUEST_V6, GATEWAY_V6)
        .payload_length(3)
        .echo_request(1, 1)
        .build();
    sent_by_guest(
        &cut_icmp,
        Ipv6Malformed,
        "an ICMPv6 header the payload length cuts to 3 bytes",
    );
    let exact = v6_from_guest(GUEST_V6, GATEWAY_V6)
        .payload_length(8)
        .udp(40000, 53)
        .payload(b"query")
        .build();
    sent_by_guest(
        &exact,
        Pass,
        "a payload length that ends after the UDP header",
    );
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
    let header_only = v6_from_guest(GUEST_V6, GATEWAY_V6)
        .payload_length(4)
        .echo_request(1, 1)
        .build();
    sent_by_guest(&header_only, Pass, "ICMPv6 type/code/checksum only");
    let udp = v6_from_guest(GUEST_V6, GATEWAY_V6).udp(40000, 53).build();
    sent_by_guest(&udp[..61], Ipv6Malformed, "UDP header cut to 7 bytes");
    let tcp = v6_from_guest(GUEST_V6, GATEWAY_V6)
        .protocol(proto::TCP)
        .build();
    sent_by_guest(&tcp, Pass, "TCP: no header of it is looked at");
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
        DadForeign,
        "DAD probe for a neighbour's address: allowed from ::, its target judged in step 6",
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
    let dad_cut = dad_probe(GUEST_V6)
        .payload_length(16)
        .neighbor_solicitation(GUEST_V6)
        .build();
    sent_by_guest(&dad_cut, Ipv6Spoof, "NS from :: with its fixed part cut");
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
