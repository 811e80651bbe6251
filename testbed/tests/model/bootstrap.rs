//! From the guest, across the families: a vif with no addresses yet may
//! only send what gets it one (DHCP, probes, DHCPv6 from its link-local).

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
    for p in &bare {
        from_guest(p, &dhcp_discover(), Pass, "DHCPDISCOVER without addresses");
        // An isolated vif's ARP target must be listed: without addresses,
        // not even the probe for the address DHCP offered is.
        let probe_verdict = if p.mode == Mode::Isolated {
            Isolation
        } else {
            Pass
        };
        from_guest(p, &probe, probe_verdict, "ARP probe without addresses");
        from_guest(p, &dad, Pass, "DAD probe without addresses");
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
