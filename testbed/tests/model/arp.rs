//! From the guest: ARP and RARP (`docs/datapath.md`).

use super::*;

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
fn from_guest_arp_step3_probes_must_target_the_guests_own_addresses() {
    let probe = |tpa: Ipv4Addr| {
        Frame::eth(GUEST, BROADCAST)
            .arp(arp_op::REQUEST)
            .spa(Ipv4Addr::UNSPECIFIED)
            .tpa(tpa)
            .build()
    };
    sent_by_guest(&probe(GUEST_V4), Pass, "a probe for the guest's address");
    // (target, what): every one would make its owner give it up.
    let foreign = [
        (OTHER_V4, "a probe for a neighbour's address"),
        (GATEWAY_V4, "a probe for the gateway's address"),
        (REMOTE_V4, "a probe for a listed destination"),
        (Ipv4Addr::UNSPECIFIED, "a probe for 0.0.0.0"),
        (Ipv4Addr::BROADCAST, "a probe for the broadcast address"),
    ];
    for (tpa, what) in foreign {
        sent_by_guest(&probe(tpa), DadForeign, what);
    }
    for p in guarded(|p| p.ipv4 = vec![cidr4("192.0.2.0/24")]) {
        from_guest(&p, &probe(OTHER_V4), Pass, "a probe inside the allowed /24");
        from_guest(&p, &probe(REMOTE_V4), DadForeign, "a probe outside the /24");
    }
    for p in guarded(|p| p.ipv4 = vec![cidr4("0.0.0.0/0")]) {
        from_guest(&p, &probe(OTHER_V4), Pass, "any probe with 0.0.0.0/0");
    }
    // The sender MAC is checked first; an announcement (sender = target,
    // RFC 5227) is no probe and needs an allowed sender.
    let foreign_sha = Frame::eth(GUEST, BROADCAST)
        .arp(arp_op::REQUEST)
        .sha(OTHER)
        .tpa(OTHER_V4)
        .build();
    sent_by_guest(&foreign_sha, ArpShaSpoof, "a probe with a neighbour's MAC");
    let announce = Frame::eth(GUEST, BROADCAST)
        .arp(arp_op::REQUEST)
        .spa(OTHER_V4)
        .tpa(OTHER_V4)
        .build();
    sent_by_guest(&announce, ArpSpaSpoof, "announcing a neighbour's address");
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
    ];
    for (spa, tpa, isolated_verdict, what) in table {
        let frame = arp_request_from_guest().spa(spa).tpa(tpa).build();
        from_guest(&isolated(), &frame, isolated_verdict, what);
        from_guest(&locked(), &frame, Pass, what);
    }
}

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
