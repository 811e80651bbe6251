//! From the guest, across the families: a vif with no addresses yet may
//! only send what gets it one (DHCP, DHCPv6 and DAD from its link-local);
//! probes for an address it does not own yet are dropped.

use super::*;

#[test]
fn locked_vif_without_addresses_may_only_bootstrap() {
    let bare = guarded(|p| {
        p.ipv4.clear();
        p.ipv6.clear();
    });
    let probe = Frame::eth(GUEST, BROADCAST)
        .arp(arp_op::REQUEST)
        .tpa(GUEST_V4)
        .build();
    let dad = dad_probe(GUEST_V6).neighbor_solicitation(GUEST_V6).build();
    let dad_ll = dad_probe(guest_ll())
        .neighbor_solicitation(guest_ll())
        .build();
    for p in &bare {
        from_guest(p, &dhcp_discover(), Pass, "DHCPDISCOVER without addresses");
        // The address DHCP offered is not the guest's yet: its probe
        // would deny it to an owner, if there is one (the guest then sees
        // no conflict and takes it).
        from_guest(p, &probe, DadForeign, "ARP probe without addresses");
        from_guest(p, &dad, DadForeign, "DAD probe without addresses");
        from_guest(p, &dad_ll, Pass, "DAD for the derived link-local");
        from_guest(
            p,
            &dhcpv6_solicit_from_guest(),
            Pass,
            "DHCPv6 SOLICIT from the derived link-local",
        );
        from_guest(
            p,
            &arp_request_from_guest().build(),
            ArpSpaSpoof,
            "ARP from an address",
        );
        from_guest(
            p,
            &udp4_from_guest(GUEST_V4, REMOTE_V4),
            Ipv4Spoof,
            "IPv4 from an address",
        );
        from_guest(
            p,
            &udp6_from_guest(GUEST_V6, REMOTE_V6),
            Ipv6Spoof,
            "IPv6 from a global address",
        );
    }
}
