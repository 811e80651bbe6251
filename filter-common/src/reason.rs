//! The one list of verdict reasons. Counters, drop events, the CLI, the
//! metrics and the docs all use these names (docs/policy.md, section 7).

/// Why a frame passed or was dropped. The numbers are the counter index and
/// the `reason` byte of drop events: append new reasons, never renumber.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Reason {
    /// The frame passed.
    Pass = 0,
    /// A program is attached but the interface has no policy entry.
    NoPolicy = 1,
    /// The interface is in `disabled` mode.
    Disabled = 2,
    /// Shorter than an Ethernet header.
    EthMalformed = 3,
    MacSpoof = 4,
    VlanTagged = 5,
    ArpMalformed = 6,
    ArpShaSpoof = 7,
    ArpSpaSpoof = 8,
    RarpSpoof = 9,
    Ipv4Malformed = 10,
    Ipv4Spoof = 11,
    DhcpServer = 12,
    Ipv6Malformed = 13,
    Ipv6Spoof = 14,
    Ipv6LinkLocal = 15,
    NdMalformed = 16,
    NdSpoof = 17,
    RaGuard = 18,
    Ethertype = 19,
    /// `isolated` mode: destination not in the vif's `destinations`.
    Isolation = 20,
    SniffMac = 21,
    SniffIp = 22,
    SniffArp = 23,
}

/// Number of [`Reason`]s: the width of a counter row per direction.
pub const REASON_COUNT: usize = 24;

impl Reason {
    /// Every reason, in counter order.
    pub const ALL: [Reason; REASON_COUNT] = [
        Reason::Pass,
        Reason::NoPolicy,
        Reason::Disabled,
        Reason::EthMalformed,
        Reason::MacSpoof,
        Reason::VlanTagged,
        Reason::ArpMalformed,
        Reason::ArpShaSpoof,
        Reason::ArpSpaSpoof,
        Reason::RarpSpoof,
        Reason::Ipv4Malformed,
        Reason::Ipv4Spoof,
        Reason::DhcpServer,
        Reason::Ipv6Malformed,
        Reason::Ipv6Spoof,
        Reason::Ipv6LinkLocal,
        Reason::NdMalformed,
        Reason::NdSpoof,
        Reason::RaGuard,
        Reason::Ethertype,
        Reason::Isolation,
        Reason::SniffMac,
        Reason::SniffIp,
        Reason::SniffArp,
    ];

    pub const fn from_u8(v: u8) -> Option<Reason> {
        if (v as usize) < REASON_COUNT {
            Some(Reason::ALL[v as usize])
        } else {
            None
        }
    }

    /// The public name: docs/policy.md's word for this verdict.
    pub const fn name(self) -> &'static str {
        match self {
            Reason::Pass => "pass",
            Reason::NoPolicy => "no_policy",
            Reason::Disabled => "disabled",
            Reason::EthMalformed => "eth_malformed",
            Reason::MacSpoof => "mac_spoof",
            Reason::VlanTagged => "vlan_tagged",
            Reason::ArpMalformed => "arp_malformed",
            Reason::ArpShaSpoof => "arp_sha_spoof",
            Reason::ArpSpaSpoof => "arp_spa_spoof",
            Reason::RarpSpoof => "rarp_spoof",
            Reason::Ipv4Malformed => "ipv4_malformed",
            Reason::Ipv4Spoof => "ipv4_spoof",
            Reason::DhcpServer => "dhcp_server",
            Reason::Ipv6Malformed => "ipv6_malformed",
            Reason::Ipv6Spoof => "ipv6_spoof",
            Reason::Ipv6LinkLocal => "ipv6_link_local",
            Reason::NdMalformed => "nd_malformed",
            Reason::NdSpoof => "nd_spoof",
            Reason::RaGuard => "ra_guard",
            Reason::Ethertype => "ethertype",
            Reason::Isolation => "isolation",
            Reason::SniffMac => "sniff_mac",
            Reason::SniffIp => "sniff_ip",
            Reason::SniffArp => "sniff_arp",
        }
    }

    pub fn from_name(name: &str) -> Option<Reason> {
        Reason::ALL.iter().copied().find(|r| r.name() == name)
    }

    pub const fn is_pass(self) -> bool {
        matches!(self, Reason::Pass)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbering_matches_the_list() {
        for (i, r) in Reason::ALL.iter().enumerate() {
            assert_eq!(*r as usize, i, "{} is out of order", r.name());
            assert_eq!(Reason::from_u8(i as u8), Some(*r));
            assert_eq!(Reason::from_name(r.name()), Some(*r));
        }
        assert_eq!(Reason::from_u8(REASON_COUNT as u8), None);
    }
}
