//! From the guest: the Ethernet steps (`docs/datapath.md`, "From the
//! guest" 1 to 4): source MAC, VLAN tags, EtherType dispatch.

use super::*;

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
