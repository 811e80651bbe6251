//! From the guest: IPv6 neighbour discovery (`docs/datapath.md`, IPv6
//! step 4, the option walk, and step 6, the ND checks).

use super::*;

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
    let fixed_cut = v6_from_guest(GUEST_V6, GATEWAY_V6)
        .payload_length(20)
        .neighbor_solicitation(GATEWAY_V6)
        .build();
    sent_by_guest(
        &fixed_cut,
        NdMalformed,
        "NS fixed part cut to 20 of 24 bytes",
    );
    let rs = v6_from_guest(guest_ll(), ALL_ROUTERS)
        .payload_length(7)
        .router_solicitation()
        .build();
    sent_by_guest(&rs, NdMalformed, "RS fixed part cut");

    let mut sixteen = v6_from_guest(GUEST_V6, GATEWAY_V6).neighbor_solicitation(GATEWAY_V6);
    for i in 0..16 {
        sixteen = sixteen.option(14, &[i; 6]);
    }
    sent_by_guest(&sixteen.clone().build(), Pass, "16 nonce options");
    let seventeen = sixteen.option(14, &[17; 6]).build();
    sent_by_guest(&seventeen, NdMalformed, "17 options: more than MAX_ND_OPTS");
}

#[test]
fn from_guest_ipv6_step4_nd_options_end_where_the_payload_length_ends() {
    // (trailer after a whole NS with the guest's SLLA, what)
    let trailers: [(&[u8], &str); 4] = [
        (&[0; 4], "four zero bytes (an option of length 0 if read)"),
        (&[0xa5; 1], "one byte"),
        (
            &[1, 1, 0x00, 0x16, 0x3e, 0x65, 0x43, 0x21],
            "a neighbour's SLLA",
        ),
        (&[14, 9, 1, 2, 3, 4, 5, 6], "an option claiming 72 bytes"),
    ];
    for (trailer, what) in trailers {
        let ns = eth_v6(GUEST, GATEWAY_V6)
            .trailer(trailer)
            .ipv6(GUEST_V6, GATEWAY_V6)
            .neighbor_solicitation(GATEWAY_V6)
            .slla(GUEST)
            .build();
        sent_by_guest(&ns, Pass, &format!("NS followed by a trailer: {what}"));
    }
    let na = eth_v6(GUEST, ALL_NODES)
        .trailer(&[2, 1, 0x00, 0x16, 0x3e, 0x65, 0x43, 0x21])
        .ipv6(GUEST_V6, ALL_NODES)
        .neighbor_advertisement(GUEST_V6, na_flags::OVERRIDE)
        .build();
    sent_by_guest(
        &na,
        Pass,
        "NA whose trailer looks like a neighbour's TLLA (not an option)",
    );
    // An option the payload length cuts is cut, whatever follows.
    let cut_option = v6_from_guest(GUEST_V6, GATEWAY_V6)
        .payload_length(24 + 4)
        .neighbor_solicitation(GATEWAY_V6)
        .slla(GUEST)
        .build();
    sent_by_guest(
        &cut_option,
        NdMalformed,
        "an SLLA option the payload length cuts to 4 bytes",
    );
    let cut_fixed = v6_from_guest(GUEST_V6, GATEWAY_V6)
        .payload_length(20)
        .neighbor_solicitation(GATEWAY_V6)
        .slla(GUEST)
        .build();
    sent_by_guest(
        &cut_fixed,
        NdMalformed,
        "an NS fixed part the payload length cuts to 20 bytes",
    );
    let fixed_only = v6_from_guest(GUEST_V6, GATEWAY_V6)
        .payload_length(24)
        .neighbor_solicitation(GATEWAY_V6)
        .slla(OTHER)
        .build();
    sent_by_guest(
        &fixed_only,
        Pass,
        "a neighbour's SLLA after the payload length is not an option",
    );
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
fn from_guest_ipv6_step6_6_dad_target_must_be_the_guests() {
    let dad = |target: Ipv6Addr| dad_probe(target).neighbor_solicitation(target).build();
    sent_by_guest(&dad(GUEST_V6), Pass, "DAD for the guest's address");
    sent_by_guest(&dad(guest_ll()), Pass, "DAD for the derived link-local");
    // (target, what): DAD would make their owners give them up.
    let foreign = [
        (OTHER_V6, "DAD for a neighbour's address"),
        (GATEWAY_V6, "DAD for the gateway's address"),
        (RANDOM_LL, "DAD for a random link-local"),
        (router_ll(), "DAD for the gateway's link-local"),
        (REMOTE_V6, "DAD for a listed destination"),
    ];
    for (target, what) in foreign {
        sent_by_guest(&dad(target), DadForeign, what);
    }
    // `::` is no address to claim, whatever the lists hold.
    let unspecified = v6_from_guest(Ipv6Addr::UNSPECIFIED, solicited_node(Ipv6Addr::UNSPECIFIED))
        .neighbor_solicitation(Ipv6Addr::UNSPECIFIED)
        .build();
    for p in guarded(|p| p.ipv6 = vec![cidr6("::/0")]) {
        from_guest(&p, &dad(OTHER_V6), Pass, "DAD for any address with ::/0");
        from_guest(&p, &unspecified, DadForeign, "DAD for :: even with ::/0");
    }
    for p in guarded(|p| p.ipv6 = vec![cidr6("2001:db8::/64")]) {
        from_guest(&p, &dad(OTHER_V6), Pass, "DAD inside the allowed /64");
    }
    for p in guarded(|p| p.options.link_local = LinkLocal::Any) {
        from_guest(
            &p,
            &dad(RANDOM_LL),
            Pass,
            "DAD for a random link-local, option any",
        );
    }
    for p in guarded(|p| p.options.link_local = LinkLocal::None) {
        from_guest(
            &p,
            &dad(guest_ll()),
            DadForeign,
            "DAD for the derived link-local, option none",
        );
    }
    // Only DAD: address resolution from the guest's address may ask for
    // anyone.
    let resolution = v6_from_guest(GUEST_V6, solicited_node(OTHER_V6))
        .neighbor_solicitation(OTHER_V6)
        .slla(GUEST)
        .build();
    sent_by_guest(
        &resolution,
        Pass,
        "NS from the guest's address for a neighbour",
    );
    // Steps before come first: a forwarded DAD is malformed, a DAD with a
    // source link-layer option is no DAD at all.
    let hop64 = dad_probe(OTHER_V6)
        .neighbor_solicitation(OTHER_V6)
        .hop_limit(64)
        .build();
    sent_by_guest(&hop64, NdMalformed, "foreign DAD with hop limit 64");
    let with_slla = dad_probe(OTHER_V6)
        .neighbor_solicitation(OTHER_V6)
        .slla(GUEST)
        .build();
    sent_by_guest(&with_slla, Ipv6Spoof, "foreign DAD with an SLLA option");
    // Before the link-layer options.
    let foreign_tlla = dad_probe(OTHER_V6)
        .neighbor_solicitation(OTHER_V6)
        .tlla(OTHER)
        .build();
    sent_by_guest(
        &foreign_tlla,
        DadForeign,
        "foreign DAD with a foreign TLLA option",
    );
}

#[test]
fn from_guest_ipv6_step6_7_link_layer_options_must_carry_the_guests_mac() {
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
