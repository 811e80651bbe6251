//! To the guest with pairs and VRRP entries (`docs/policy.md` section 3a;
//! `docs/datapath.md`, "To the guest" 1 to 5): the guest's MACs are `mac`,
//! the pairs' and the virtual MACs in use, and all of its addresses count
//! together, whichever of its MACs a frame goes to.

use super::*;

/// UDP from the gateway to `dst_mac` and `dst`.
fn udp4_to(dst_mac: Mac, dst: Ipv4Addr) -> Vec<u8> {
    Frame::eth(ROUTER, dst_mac)
        .ipv4(REMOTE_V4, dst)
        .udp(53, 40000)
        .build()
}

fn udp6_to(dst_mac: Mac, dst: Ipv6Addr) -> Vec<u8> {
    Frame::eth(ROUTER, dst_mac)
        .ipv6(REMOTE_V6, dst)
        .udp(53, 40000)
        .build()
}

#[test]
fn to_guest_step1_the_guests_macs_include_pairs_and_virtual_macs() {
    let table = [
        (PAIR, Pass, "unicast to the pair's MAC"),
        (vmac4(), Pass, "unicast to the v4 virtual MAC"),
        (vmac6(), Pass, "unicast to the v6 virtual MAC"),
        (GUEST, Pass, "unicast to the vif's MAC"),
        (OTHER, SniffMac, "unicast to an unknown MAC"),
        (
            vrrp_mac_v4(VRID + 1),
            SniffMac,
            "unicast to the virtual MAC of another router id",
        ),
    ];
    for (dst_mac, want, what) in table {
        received_with_extras(&udp4_to(dst_mac, GUEST_V4), want, what);
    }
    sent_to_guest(&udp4_to(PAIR, GUEST_V4), SniffMac, "a pair MAC not listed");
    for p in with_extras(|p| p.vrrp[0].ipv6.clear()) {
        let frame = udp4_to(vmac6(), GUEST_V4);
        to_guest(&p, &frame, SniffMac, "the v6 virtual MAC not in use");
    }
}

#[test]
fn to_guest_step3_arp_for_pair_and_virtual_addresses() {
    let request = |tpa: Ipv4Addr| {
        Frame::eth(ROUTER, BROADCAST)
            .arp(arp_op::REQUEST)
            .sha(ROUTER)
            .spa(GATEWAY_V4)
            .tpa(tpa)
            .build()
    };
    received_with_extras(&request(VIP_V4), Pass, "request for the VIP");
    received_with_extras(&request(PAIR_V4), Pass, "request for the pair's address");
    received_with_extras(&request(GUEST_V4), Pass, "request for the vif's address");
    received_with_extras(&request(OTHER_V4), SniffArp, "request for a neighbour");
    sent_to_guest(&request(VIP_V4), SniffArp, "the VIP without the entry");
    let reply = Frame::eth(ROUTER, PAIR)
        .arp(arp_op::REPLY)
        .sha(ROUTER)
        .spa(GATEWAY_V4)
        .tha(PAIR)
        .tpa(PAIR_V4)
        .build();
    received_with_extras(&reply, Pass, "reply to the pair");
}

#[test]
fn to_guest_step4_ipv4_for_any_of_the_guests_addresses_on_any_of_its_macs() {
    let table = [
        (PAIR, PAIR_V4, Pass, "the pair's address on its MAC"),
        (vmac4(), VIP_V4, Pass, "the VIP on the virtual MAC"),
        (GUEST, VIP_V4, Pass, "the VIP on the vif's MAC"),
        (PAIR, GUEST_V4, Pass, "the vif's address on the pair's MAC"),
        (
            PAIR,
            OTHER_V4,
            SniffIp,
            "a neighbour's address on the pair's MAC",
        ),
        (
            vmac4(),
            OTHER_V4,
            SniffIp,
            "a neighbour's address on the vmac",
        ),
    ];
    for (dst_mac, dst, want, what) in table {
        received_with_extras(&udp4_to(dst_mac, dst), want, what);
    }
    // The DHCP reply exception looks at the vif's own `ipv4` only.
    let offer = |dst_mac: Mac| {
        Frame::eth(ROUTER, dst_mac)
            .ipv4(GATEWAY_V4, OTHER_V4)
            .udp(67, 68)
            .payload(&dhcpv4_offer(dst_mac, XID, OTHER_V4, GATEWAY_V4))
            .build()
    };
    for p in with_extras(|p| p.ipv4.clear()) {
        to_guest(&p, &offer(GUEST), Pass, "offer while the vif has no IPv4");
        to_guest(&p, &offer(PAIR), Pass, "the same, to the pair's MAC");
    }
    received_with_extras(
        &offer(PAIR),
        SniffIp,
        "offer for a neighbour's address once the vif has IPv4",
    );
}

#[test]
fn to_guest_step5_ipv6_for_any_of_the_guests_addresses_on_any_of_its_macs() {
    let table = [
        (PAIR, PAIR_V6, Pass, "the pair's address on its MAC"),
        (vmac6(), VIP_V6, Pass, "the v6 VIP on the virtual MAC"),
        (GUEST, PAIR_V6, Pass, "the pair's address on the vif's MAC"),
        (
            PAIR,
            OTHER_V6,
            SniffIp,
            "a neighbour's address on the pair's MAC",
        ),
    ];
    for (dst_mac, dst, want, what) in table {
        received_with_extras(&udp6_to(dst_mac, dst), want, what);
    }
    // (option, the pair's link-local, a random one)
    let table = [
        (LinkLocal::Derived, Pass, SniffIp),
        (LinkLocal::Any, Pass, Pass),
        (LinkLocal::None, SniffIp, SniffIp),
    ];
    for (option, derived, random) in table {
        for p in with_extras(|p| p.options.link_local = option) {
            let what = format!("the pair's link-local, option {}", option.name());
            to_guest(&p, &udp6_to(PAIR, pair_ll()), derived, &what);
            let what = format!("a random link-local, option {}", option.name());
            to_guest(&p, &udp6_to(PAIR, RANDOM_LL), random, &what);
        }
    }
    // The virtual MACs' own link-local addresses are nobody's.
    received_with_extras(
        &udp6_to(vmac6(), link_local(vmac6())),
        SniffIp,
        "the virtual MAC's derived link-local",
    );
}
