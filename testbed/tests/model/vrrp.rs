//! From the guest: VRRP virtual MACs (`docs/policy.md` section 3a;
//! `docs/datapath.md`, "From the guest" 1). 00:00:5e:00:01:VRID carries the
//! IPv4 virtual addresses, 00:00:5e:00:02:VRID the IPv6 ones, each besides
//! everything the vif's own MAC may use; a family without virtual
//! addresses has no virtual MAC.

use super::*;

/// A VRRPv3 advertisement for the IPv4 virtual address, from the vif's own
/// address to 224.0.0.18, as keepalived with `use_vmac` sends it.
fn advertisement_v4(src_mac: Mac, src: Ipv4Addr) -> Vec<u8> {
    eth_v4(src_mac, VRRP_V4_GROUP)
        .ipv4(src, VRRP_V4_GROUP)
        .ttl(255)
        .protocol(proto::VRRP)
        .payload(&vrrp_advertisement(VRID, &[&VIP_V4.octets()]))
        .build()
}

/// The same for IPv6, to ff02::12.
fn advertisement_v6(src_mac: Mac, src: Ipv6Addr) -> Vec<u8> {
    eth_v6(src_mac, VRRP_V6_GROUP)
        .ipv6(src, VRRP_V6_GROUP)
        .hop_limit(255)
        .protocol(proto::VRRP)
        .payload(&vrrp_advertisement(VRID, &[&VIP_V6.octets()]))
        .build()
}

/// A gratuitous ARP for `ip` from `src_mac`, naming `sha`.
fn gratuitous_arp(src_mac: Mac, sha: Mac, ip: Ipv4Addr) -> Vec<u8> {
    Frame::eth(src_mac, BROADCAST)
        .arp(arp_op::REQUEST)
        .sha(sha)
        .spa(ip)
        .tpa(ip)
        .build()
}

#[test]
fn from_guest_vrrp_advertisement_comes_from_the_routers_own_address() {
    let [locked, isolated] = with_extras(|_| {});
    let ad = advertisement_v4(vmac4(), GUEST_V4);
    from_guest(&locked, &ad, Pass, "advertisement from the v4 virtual MAC");
    // Isolated: 224.0.0.18 is no bootstrap destination; it must be listed.
    from_guest(&isolated, &ad, Isolation, "isolated, group not listed");
    let listed = with(isolated, |p| {
        p.destinations.push(Cidr::V4(Cidr4::host(VRRP_V4_GROUP)));
    });
    from_guest(&listed, &ad, Pass, "isolated, group listed");
    from_guest(
        &locked,
        &advertisement_v4(vmac4(), OTHER_V4),
        Ipv4Spoof,
        "advertisement from a neighbour's address",
    );
    from_guest(
        &locked,
        &advertisement_v4(vrrp_mac_v4(VRID + 1), GUEST_V4),
        MacSpoof,
        "the virtual MAC of an undeclared router id",
    );
    from_guest(
        &locked,
        &advertisement_v6(vmac6(), guest_ll()),
        Pass,
        "IPv6 advertisement from the vif's link-local",
    );
    from_guest(
        &locked,
        &advertisement_v6(vmac6(), link_local(vmac6())),
        Ipv6LinkLocal,
        "IPv6 advertisement from the virtual MAC's own link-local",
    );
}

#[test]
fn from_guest_vrrp_virtual_address_only_from_its_virtual_mac() {
    sent_with_extras(
        &gratuitous_arp(vmac4(), vmac4(), VIP_V4),
        Pass,
        "gratuitous ARP for the VIP from the virtual MAC",
    );
    sent_with_extras(
        &gratuitous_arp(GUEST, GUEST, VIP_V4),
        ArpSpaSpoof,
        "gratuitous ARP for the VIP from the vif's own MAC",
    );
    sent_with_extras(
        &gratuitous_arp(vmac4(), GUEST, VIP_V4),
        ArpShaSpoof,
        "virtual MAC frame naming the vif's MAC inside",
    );
    sent_with_extras(
        &gratuitous_arp(vmac4(), vmac4(), GUEST_V4),
        Pass,
        "the vif's own address from the virtual MAC",
    );
    sent_with_extras(
        &gratuitous_arp(vmac4(), vmac4(), PAIR_V4),
        ArpSpaSpoof,
        "a pair's address from the virtual MAC",
    );
    sent_with_extras(
        &gratuitous_arp(vrrp_mac_v4(VRID + 1), vrrp_mac_v4(VRID + 1), VIP_V4),
        MacSpoof,
        "the virtual MAC of an undeclared router id",
    );
    // Without the entry, the virtual MAC is nobody's.
    sent_by_guest(
        &gratuitous_arp(vmac4(), vmac4(), VIP_V4),
        MacSpoof,
        "the virtual MAC without a VRRP entry",
    );
    sent_by_guest(
        &gratuitous_arp(GUEST, GUEST, VIP_V4),
        ArpSpaSpoof,
        "claiming the VIP without a VRRP entry",
    );
    let rarp = Frame::eth(vmac4(), BROADCAST)
        .rarp()
        .sha(GUEST)
        .tha(GUEST)
        .build();
    sent_with_extras(&rarp, RarpSpoof, "RARP from the virtual MAC");
}

#[test]
fn from_guest_vrrp_each_family_has_its_own_virtual_mac() {
    let udp4 = |src_mac: Mac, src: Ipv4Addr| {
        eth_v4(src_mac, REMOTE_V4)
            .ipv4(src, REMOTE_V4)
            .udp(40000, 53)
            .build()
    };
    // From the vif's link-local, which every virtual MAC may use.
    let na = |src_mac: Mac, target: Ipv6Addr| {
        eth_v6(src_mac, ALL_NODES)
            .ipv6(guest_ll(), ALL_NODES)
            .neighbor_advertisement(target, na_flags::OVERRIDE)
            .tlla(src_mac)
            .build()
    };
    sent_with_extras(
        &na(vmac6(), VIP_V6),
        Pass,
        "unsolicited NA for the v6 VIP from the v6 virtual MAC",
    );
    sent_with_extras(
        &na(vmac4(), VIP_V6),
        NdSpoof,
        "NA for the v6 VIP from the v4 virtual MAC",
    );
    sent_with_extras(
        &udp4(vmac6(), VIP_V4),
        Ipv4Spoof,
        "the v4 VIP from the v6 virtual MAC",
    );
    sent_with_extras(
        &udp4(vmac6(), GUEST_V4),
        Pass,
        "the vif's own IPv4 from the v6 virtual MAC",
    );
    sent_with_extras(
        &na(GUEST, VIP_V6),
        NdSpoof,
        "NA for the v6 VIP from the vif's own MAC",
    );
    // An entry with IPv4 addresses only has no IPv6 virtual MAC, and the
    // other way round.
    for p in with_extras(|p| p.vrrp[0].ipv6.clear()) {
        from_guest(&p, &na(vmac6(), GUEST_V6), MacSpoof, "unused v6 vmac");
        from_guest(&p, &udp4(vmac4(), VIP_V4), Pass, "v4 vmac in use");
    }
    for p in with_extras(|p| p.vrrp[0].ipv4.clear()) {
        from_guest(&p, &udp4(vmac4(), GUEST_V4), MacSpoof, "unused v4 vmac");
        from_guest(&p, &na(vmac6(), VIP_V6), Pass, "v6 vmac in use");
    }
}

#[test]
fn from_guest_vrrp_dad_and_dhcp_from_a_virtual_mac() {
    let dad = |target: Ipv6Addr| {
        let group = solicited_node(target);
        eth_v6(vmac6(), group)
            .ipv6(Ipv6Addr::UNSPECIFIED, group)
            .neighbor_solicitation(target)
            .build()
    };
    sent_with_extras(&dad(VIP_V6), Pass, "DAD for the v6 VIP");
    sent_with_extras(&dad(GUEST_V6), Pass, "DAD for the vif's own address");
    sent_with_extras(&dad(PAIR_V6), DadForeign, "DAD for the pair's address");
    let discover = |chaddr: Mac| {
        eth_v4(vmac4(), Ipv4Addr::BROADCAST)
            .ipv4(Ipv4Addr::UNSPECIFIED, Ipv4Addr::BROADCAST)
            .udp(68, 67)
            .payload(&dhcpv4_discover(chaddr, XID))
            .build()
    };
    sent_with_extras(&discover(vmac4()), Pass, "DISCOVER naming the vmac");
    sent_with_extras(&discover(GUEST), DhcpSpoof, "DISCOVER naming the vif's MAC");
}
