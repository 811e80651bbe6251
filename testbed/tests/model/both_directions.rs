//! Both directions, before anything else (`docs/datapath.md`): no policy,
//! the modes that decide without parsing, `egress_filter` off, and frames
//! too short for an Ethernet header.

use super::*;

#[test]
fn step1_interface_without_policy_drops_everything_as_no_policy() {
    let frames = [arp_request_from_guest().build(), Vec::new(), vec![0xff; 5]];
    for direction in Direction::ALL {
        for frame in &frames {
            let got = verdict(None, direction, frame);
            assert_eq!(
                got,
                NoPolicy,
                "{} bytes {} on an interface without policy: expected `no_policy`, got `{}`",
                frame.len(),
                direction.name(),
                got.name()
            );
        }
    }
}

#[test]
fn step2_disabled_mode_drops_everything_in_both_directions() {
    let disabled = with(locked(), |p| p.mode = Mode::Disabled);
    let no_egress_filter = with(disabled.clone(), |p| p.options.egress_filter = false);
    let frames = [
        arp_request_from_guest().build(),
        dhcp_discover(),
        Vec::new(),
    ];
    for frame in &frames {
        for p in [&disabled, &no_egress_filter] {
            from_guest(p, frame, Disabled, "any frame from a disabled vif");
            to_guest(p, frame, Disabled, "any frame to a disabled vif");
        }
    }
}

#[test]
fn step3_unlocked_mode_passes_everything_even_spoofed_or_truncated() {
    let unlocked = with(locked(), |p| p.mode = Mode::Unlocked);
    let frames = [
        Vec::new(),
        vec![0x00, 0x16, 0x3e],
        Frame::eth(OTHER, ROUTER)
            .ipv4(OTHER_V4, REMOTE_V4)
            .udp(1, 2)
            .build(),
        Frame::eth(GUEST, ROUTER)
            .vlan(10)
            .ipv4(GUEST_V4, REMOTE_V4)
            .udp(1, 2)
            .build(),
        v6_from_guest(guest_ll(), ALL_NODES)
            .router_advertisement()
            .build(),
        v6_from_guest(GUEST_V6, GATEWAY_V6).version(4).build(),
        Frame::eth(ROUTER, OTHER)
            .ipv4(GATEWAY_V4, OTHER_V4)
            .udp(1, 2)
            .build(),
    ];
    for frame in &frames {
        from_guest(&unlocked, frame, Pass, "anything from an unlocked vif");
        to_guest(&unlocked, frame, Pass, "anything to an unlocked vif");
    }
}

#[test]
fn step4_egress_filter_off_passes_everything_to_the_guest_only() {
    let sniffed = Frame::eth(ROUTER, OTHER)
        .ipv4(GATEWAY_V4, OTHER_V4)
        .udp(1, 2)
        .build();
    for p in guarded(|p| p.options.egress_filter = false) {
        to_guest(
            &p,
            &sniffed,
            Pass,
            "another guest's unicast, egress_filter off",
        );
        to_guest(&p, &[0x00, 0x16], Pass, "a 2-byte frame, egress_filter off");
        let spoofed = Frame::eth(OTHER, ROUTER)
            .ipv4(GUEST_V4, REMOTE_V4)
            .udp(1, 2)
            .build();
        from_guest(
            &p,
            &spoofed,
            MacSpoof,
            "egress_filter does not affect the guest's own traffic",
        );
    }
    sent_to_guest(
        &sniffed,
        SniffMac,
        "another guest's unicast, egress_filter on (default)",
    );
}

#[test]
fn step5_frames_shorter_than_an_ethernet_header_are_eth_malformed() {
    let lldp_to_guest = Frame::eth(ROUTER, GUEST).ethertype(ethertype::LLDP).build();
    let lldp_from_guest = Frame::eth(GUEST, ROUTER).ethertype(ethertype::LLDP).build();
    for n in 0..14 {
        sent_by_guest(
            &lldp_from_guest[..n],
            EthMalformed,
            "a frame cut inside the Ethernet header",
        );
        sent_to_guest(
            &lldp_to_guest[..n],
            EthMalformed,
            "a frame cut inside the Ethernet header",
        );
    }
    sent_by_guest(
        &lldp_from_guest,
        Ethertype,
        "a bare 14-byte header is judged by its EtherType",
    );
    sent_to_guest(
        &lldp_to_guest,
        Pass,
        "a bare 14-byte header to the guest's MAC",
    );
}
