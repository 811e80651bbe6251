//! From the guest: extra address pairs (`docs/policy.md` section 3a;
//! `docs/datapath.md`, "From the guest" 1, where the source MAC picks the
//! frame's addresses). A pair's MAC carries the pair's addresses, never
//! the vif's own, and everything inside its frames must name it.

use super::*;

/// IPv4 UDP from `src_mac` and `src` to the (listed) remote network.
fn udp4(src_mac: Mac, src: Ipv4Addr) -> Vec<u8> {
    eth_v4(src_mac, REMOTE_V4)
        .ipv4(src, REMOTE_V4)
        .udp(40000, 53)
        .build()
}

/// IPv6 UDP from `src_mac` and `src` to the (listed) remote network.
fn udp6(src_mac: Mac, src: Ipv6Addr) -> Vec<u8> {
    eth_v6(src_mac, REMOTE_V6)
        .ipv6(src, REMOTE_V6)
        .udp(40000, 53)
        .build()
}

#[test]
fn from_guest_step1_a_pairs_mac_sends_with_the_pairs_addresses_only() {
    let table = [
        (
            udp4(PAIR, PAIR_V4),
            Pass,
            "IPv4 from the pair with its address",
        ),
        (
            udp4(PAIR, GUEST_V4),
            Ipv4Spoof,
            "IPv4 from the pair with the vif's own address",
        ),
        (
            udp4(GUEST, PAIR_V4),
            Ipv4Spoof,
            "IPv4 from the vif's MAC with the pair's address",
        ),
        (
            udp4(GUEST, GUEST_V4),
            Pass,
            "the vif's own frame still passes",
        ),
        (
            udp6(PAIR, PAIR_V6),
            Pass,
            "IPv6 from the pair with its address",
        ),
        (
            udp6(PAIR, GUEST_V6),
            Ipv6Spoof,
            "IPv6 from the pair with the vif's own address",
        ),
        (
            udp6(GUEST, PAIR_V6),
            Ipv6Spoof,
            "IPv6 from the vif's MAC with the pair's address",
        ),
        (udp4(OTHER, PAIR_V4), MacSpoof, "an unlisted MAC"),
    ];
    for (frame, want, what) in table {
        sent_with_extras(&frame, want, what);
    }
    // Without the pair, its MAC is any other guest's.
    sent_by_guest(&udp4(PAIR, PAIR_V4), MacSpoof, "a pair MAC not listed");
    // A pair with a prefix: any address in it.
    for p in with_extras(|p| p.pairs[0].ipv4 = vec![cidr4("203.0.113.0/24")]) {
        let frame = udp4(PAIR, FORBIDDEN_V4);
        from_guest(&p, &frame, Pass, "a source in the pair's /24");
        let frame = udp4(PAIR, PAIR_V4);
        from_guest(&p, &frame, Ipv4Spoof, "a source outside the pair's /24");
    }
}

#[test]
fn from_guest_arp_from_a_pair_names_the_pair() {
    let arp = |sha: Mac, spa: Ipv4Addr, tpa: Ipv4Addr| {
        Frame::eth(PAIR, BROADCAST)
            .arp(arp_op::REQUEST)
            .sha(sha)
            .spa(spa)
            .tpa(tpa)
            .build()
    };
    sent_with_extras(
        &arp(PAIR, PAIR_V4, GATEWAY_V4),
        Pass,
        "request from the pair for the gateway",
    );
    sent_with_extras(
        &arp(GUEST, PAIR_V4, GATEWAY_V4),
        ArpShaSpoof,
        "pair's frame with the vif's MAC as sender hardware address",
    );
    sent_with_extras(
        &arp(PAIR, GUEST_V4, GATEWAY_V4),
        ArpSpaSpoof,
        "pair's frame with the vif's address as sender IP",
    );
    sent_with_extras(
        &arp(PAIR, PAIR_V4, PAIR_V4),
        Pass,
        "gratuitous ARP for the pair's address",
    );
    // ARP 3, the probe: only the pair's own addresses.
    sent_with_extras(
        &arp(PAIR, Ipv4Addr::UNSPECIFIED, PAIR_V4),
        Pass,
        "ARP probe from the pair for its address",
    );
    sent_with_extras(
        &arp(PAIR, Ipv4Addr::UNSPECIFIED, GUEST_V4),
        DadForeign,
        "ARP probe from the pair for the vif's address",
    );
    // ARP 4: the frame's own addresses are targets an isolated guest may
    // name; the vif's are not the pair's.
    let [locked, isolated] = with_extras(|_| {});
    let frame = arp(PAIR, PAIR_V4, GUEST_V4);
    from_guest(&locked, &frame, Pass, "pair asks for the vif's address");
    from_guest(
        &isolated,
        &frame,
        Isolation,
        "isolated: the vif's address is no target of the pair's",
    );
}

#[test]
fn from_guest_rarp_from_a_pair_is_rarp_spoof() {
    let own = Frame::eth(PAIR, BROADCAST)
        .rarp()
        .sha(PAIR)
        .tha(PAIR)
        .build();
    sent_with_extras(&own, RarpSpoof, "RARP announce of the pair's MAC");
    let vifs = Frame::eth(PAIR, BROADCAST)
        .rarp()
        .sha(GUEST)
        .tha(GUEST)
        .build();
    sent_with_extras(&vifs, RarpSpoof, "RARP from the pair naming the vif's MAC");
    let guest = Frame::eth(GUEST, BROADCAST).rarp().build();
    sent_with_extras(&guest, Pass, "the vif's own announce");
}

#[test]
fn from_guest_nd_from_a_pair_names_the_pair() {
    let ns = |slla: Mac| {
        eth_v6(PAIR, GATEWAY_V6)
            .ipv6(PAIR_V6, GATEWAY_V6)
            .neighbor_solicitation(GATEWAY_V6)
            .slla(slla)
            .build()
    };
    sent_with_extras(&ns(PAIR), Pass, "NS from the pair with its SLLA");
    sent_with_extras(&ns(GUEST), NdSpoof, "NS from the pair naming the vif's MAC");
    let na = |target: Ipv6Addr, tlla: Mac| {
        eth_v6(PAIR, ALL_NODES)
            .ipv6(PAIR_V6, ALL_NODES)
            .neighbor_advertisement(target, na_flags::OVERRIDE)
            .tlla(tlla)
            .build()
    };
    sent_with_extras(&na(PAIR_V6, PAIR), Pass, "NA for the pair's address");
    sent_with_extras(
        &na(PAIR_V6, GUEST),
        NdSpoof,
        "NA for the pair's address with the vif's MAC",
    );
    sent_with_extras(
        &na(GUEST_V6, PAIR),
        NdSpoof,
        "NA from the pair for the vif's address",
    );
    // And the vif's own frames still name the vif's MAC.
    let vifs = v6_from_guest(GUEST_V6, GATEWAY_V6)
        .neighbor_solicitation(GATEWAY_V6)
        .slla(PAIR)
        .build();
    sent_with_extras(&vifs, NdSpoof, "NS from the vif naming the pair's MAC");
}

#[test]
fn from_guest_dad_from_a_pair_probes_the_pairs_addresses() {
    let dad = |target: Ipv6Addr| {
        let group = solicited_node(target);
        eth_v6(PAIR, group)
            .ipv6(Ipv6Addr::UNSPECIFIED, group)
            .neighbor_solicitation(target)
            .build()
    };
    sent_with_extras(&dad(PAIR_V6), Pass, "DAD from the pair for its address");
    sent_with_extras(&dad(pair_ll()), Pass, "DAD for the pair's link-local");
    sent_with_extras(
        &dad(GUEST_V6),
        DadForeign,
        "DAD from the pair for the vif's address",
    );
    sent_with_extras(
        &dad(guest_ll()),
        DadForeign,
        "DAD from the pair for the vif's link-local",
    );
}

#[test]
fn from_guest_dhcp_from_a_pair_names_the_pair_as_chaddr() {
    let discover = |chaddr: Mac| {
        eth_v4(PAIR, Ipv4Addr::BROADCAST)
            .ipv4(Ipv4Addr::UNSPECIFIED, Ipv4Addr::BROADCAST)
            .udp(68, 67)
            .payload(&dhcpv4_discover(chaddr, XID))
            .build()
    };
    sent_with_extras(&discover(PAIR), Pass, "DISCOVER from the pair for itself");
    sent_with_extras(
        &discover(GUEST),
        DhcpSpoof,
        "DISCOVER from the pair with the vif's MAC as chaddr",
    );
    let vifs = eth_v4(GUEST, Ipv4Addr::BROADCAST)
        .ipv4(Ipv4Addr::UNSPECIFIED, Ipv4Addr::BROADCAST)
        .udp(68, 67)
        .payload(&dhcpv4_discover(PAIR, XID))
        .build();
    sent_with_extras(
        &vifs,
        DhcpSpoof,
        "DISCOVER from the vif with the pair's MAC as chaddr",
    );
}

#[test]
fn from_guest_a_pairs_link_local_is_derived_from_the_pairs_mac() {
    // (source, option, verdict, what)
    let table = [
        (
            pair_ll(),
            LinkLocal::Derived,
            Pass,
            "the pair's derived link-local",
        ),
        (
            guest_ll(),
            LinkLocal::Derived,
            Ipv6LinkLocal,
            "the vif's link-local from the pair",
        ),
        (
            RANDOM_LL,
            LinkLocal::Derived,
            Ipv6LinkLocal,
            "a random link-local from the pair",
        ),
        (
            pair_ll(),
            LinkLocal::None,
            Ipv6LinkLocal,
            "the pair's derived link-local, option none",
        ),
        (
            RANDOM_LL,
            LinkLocal::Any,
            Pass,
            "a random link-local, option any",
        ),
    ];
    for (src, option, want, what) in table {
        let frame = eth_v6(PAIR, ALL_ROUTERS)
            .ipv6(src, ALL_ROUTERS)
            .router_solicitation()
            .slla(PAIR)
            .build();
        for p in with_extras(|p| p.options.link_local = option) {
            from_guest(&p, &frame, want, what);
        }
    }
    // The vif's own MAC does not get the pair's link-local either.
    let rs = v6_from_guest(pair_ll(), ALL_ROUTERS)
        .router_solicitation()
        .build();
    sent_with_extras(&rs, Ipv6LinkLocal, "the pair's link-local from the vif");
}
