//! The one list of verdict reasons. Counters, drop events, the CLI, the
//! metrics and the docs all use these names (docs/policy.md, section 7).

use crate::Direction;

/// Writes the reasons out once: each row gives the variant, its number
/// (the counter index and the `reason` byte of drop events), its public
/// name, and the directions a frame can get it in. From the rows come the
/// enum, [`Reason::ALL`], [`REASON_COUNT`], the name and number lookups
/// and the per-direction lists.
macro_rules! reasons {
    ($(
        $(#[$doc:meta])*
        $variant:ident = $number:literal => $name:literal, [$($dir:ident),+];
    )+) => {
        /// Why a frame passed or was dropped. The numbers are the counter
        /// index and the `reason` byte of drop events: append new reasons,
        /// never renumber.
        #[repr(u8)]
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Reason {
            $($(#[$doc])* $variant = $number,)+
        }

        /// Number of [`Reason`]s: the width of a counter row per direction.
        pub const REASON_COUNT: usize = [$(Reason::$variant),+].len();

        impl Reason {
            /// Every reason, in counter order.
            pub const ALL: [Reason; REASON_COUNT] = [$(Reason::$variant),+];

            pub const fn from_u8(v: u8) -> Option<Reason> {
                match v {
                    $($number => Some(Reason::$variant),)+
                    _ => None,
                }
            }

            /// The public name: docs/policy.md's word for this verdict.
            pub const fn name(self) -> &'static str {
                match self {
                    $(Reason::$variant => $name,)+
                }
            }

            pub fn from_name(name: &str) -> Option<Reason> {
                match name {
                    $($name => Some(Reason::$variant),)+
                    _ => None,
                }
            }

            /// Whether a frame going in `dir` can get this verdict.
            pub const fn occurs(self, dir: Direction) -> bool {
                match self {
                    $(Reason::$variant => false $(|| dir as u8 == Direction::$dir as u8)+,)+
                }
            }
        }
    };
}

reasons! {
    /// The frame passed.
    Pass = 0 => "pass", [FromGuest, ToGuest];
    /// A program is attached but the interface has no policy entry.
    NoPolicy = 1 => "no_policy", [FromGuest, ToGuest];
    /// The interface is in `disabled` mode.
    Disabled = 2 => "disabled", [FromGuest, ToGuest];
    /// Shorter than an Ethernet header.
    EthMalformed = 3 => "eth_malformed", [FromGuest, ToGuest];
    /// The source MAC is not the vif's, a pair's or a VRRP virtual MAC of
    /// the vif, or is multicast.
    MacSpoof = 4 => "mac_spoof", [FromGuest];
    /// An 802.1Q / 802.1ad tag, in the frame or moved out by the kernel.
    VlanTagged = 5 => "vlan_tagged", [FromGuest];
    /// Not a well-formed ARP request or reply for IPv4 over Ethernet, or a
    /// RARP frame too short to hold one.
    ArpMalformed = 6 => "arp_malformed", [FromGuest, ToGuest];
    /// The ARP sender hardware address is not the frame's source MAC.
    ArpShaSpoof = 7 => "arp_sha_spoof", [FromGuest];
    /// The ARP sender IP is not one of the vif's addresses (and not a probe).
    ArpSpaSpoof = 8 => "arp_spa_spoof", [FromGuest];
    /// A RARP frame whose sender or target hardware address is not the
    /// vif's MAC.
    RarpSpoof = 9 => "rarp_spoof", [FromGuest];
    /// Not a sane IPv4 header (or a truncated UDP header behind it).
    Ipv4Malformed = 10 => "ipv4_malformed", [FromGuest, ToGuest];
    /// The IPv4 source is not one of the vif's addresses.
    Ipv4Spoof = 11 => "ipv4_spoof", [FromGuest];
    /// A DHCP (or DHCPv6) server or relay message from the guest.
    DhcpServer = 12 => "dhcp_server", [FromGuest];
    /// Not a sane IPv6 header, extension header chain or upper-layer header.
    Ipv6Malformed = 13 => "ipv6_malformed", [FromGuest, ToGuest];
    /// The IPv6 source is not one of the vif's addresses (`::` only for
    /// DAD and MLD reports).
    Ipv6Spoof = 14 => "ipv6_spoof", [FromGuest];
    /// An fe80::/64 source the `ipv6_link_local` option does not allow.
    Ipv6LinkLocal = 15 => "ipv6_link_local", [FromGuest];
    /// Neighbor Discovery with a wrong hop limit, fragmented, or with a
    /// malformed option.
    NdMalformed = 16 => "nd_malformed", [FromGuest];
    /// Neighbor Discovery naming an address the frame's source MAC may not
    /// use, or another MAC than the frame's source.
    NdSpoof = 17 => "nd_spoof", [FromGuest];
    /// A Router Advertisement or Redirect (IPv6, or ICMP for IPv4) without
    /// option `router`.
    RaGuard = 18 => "ra_guard", [FromGuest];
    /// An EtherType that is neither parsed nor listed in `ethertypes`.
    Ethertype = 19 => "ethertype", [FromGuest];
    /// `isolated` mode: destination not in the vif's `destinations`.
    Isolation = 20 => "isolation", [FromGuest];
    /// To the guest: unicast to a MAC that is not the guest's.
    SniffMac = 21 => "sniff_mac", [ToGuest];
    /// To the guest: IP to an address that is not the vif's.
    SniffIp = 22 => "sniff_ip", [ToGuest];
    /// To the guest: ARP for an address that is not the vif's.
    SniffArp = 23 => "sniff_arp", [ToGuest];
    /// A DHCP client message whose client hardware address is not the
    /// frame's source MAC (or is not an Ethernet address, or is cut off).
    DhcpSpoof = 24 => "dhcp_spoof", [FromGuest];
    /// Duplicate address detection (an ARP probe or a DAD Neighbor
    /// Solicitation) for an address that is not the vif's.
    DadForeign = 25 => "dad_foreign", [FromGuest];
    /// To the guest: a DHCP or DHCPv6 server message (to port 68 or 546)
    /// from a source not in the vif's `dhcp_servers`.
    DhcpUntrusted = 26 => "dhcp_untrusted", [ToGuest];
    /// A broadcast or multicast frame beyond the vif's `flood_pps`.
    Flood = 27 => "flood", [FromGuest];
}

/// The reasons that occur in `dir`, in counter order (`N` of them).
const fn only_in<const N: usize>(dir: Direction) -> [Reason; N] {
    let mut out = [Reason::Pass; N];
    let (mut i, mut n) = (0, 0);
    while i < REASON_COUNT {
        if Reason::ALL[i].occurs(dir) {
            out[n] = Reason::ALL[i];
            n += 1;
        }
        i += 1;
    }
    assert!(n == N, "N is the number of reasons of the direction");
    out
}

const fn count_in(dir: Direction) -> usize {
    let (mut i, mut n) = (0, 0);
    while i < REASON_COUNT {
        if Reason::ALL[i].occurs(dir) {
            n += 1;
        }
        i += 1;
    }
    n
}

impl Reason {
    /// Every verdict a frame from the guest can get, in counter order.
    pub const FROM_GUEST: [Reason; count_in(Direction::FromGuest)] = only_in(Direction::FromGuest);
    /// Every verdict a frame to the guest can get, in counter order.
    pub const TO_GUEST: [Reason; count_in(Direction::ToGuest)] = only_in(Direction::ToGuest);

    /// [`Reason::FROM_GUEST`] or [`Reason::TO_GUEST`].
    pub const fn in_direction(dir: Direction) -> &'static [Reason] {
        match dir {
            Direction::FromGuest => &Reason::FROM_GUEST,
            Direction::ToGuest => &Reason::TO_GUEST,
        }
    }

    pub const fn is_pass(self) -> bool {
        matches!(self, Reason::Pass)
    }
}

/// The counters are indexed by number: the numbers must be 0, 1, 2, ... in
/// the order of the rows, so appending a row is the only way to add one.
const _: () = {
    let mut i = 0;
    while i < REASON_COUNT {
        assert!(
            Reason::ALL[i] as usize == i,
            "reason numbers are 0.. in row order"
        );
        i += 1;
    }
};

/// Names are looked up both ways: no two reasons share one.
const _: () = {
    const fn same(a: &str, b: &str) -> bool {
        let (a, b) = (a.as_bytes(), b.as_bytes());
        if a.len() != b.len() {
            return false;
        }
        let mut i = 0;
        while i < a.len() {
            if a[i] != b[i] {
                return false;
            }
            i += 1;
        }
        true
    }
    let mut i = 0;
    while i < REASON_COUNT {
        let mut j = i + 1;
        while j < REASON_COUNT {
            assert!(
                !same(Reason::ALL[i].name(), Reason::ALL[j].name()),
                "reason names are unique"
            );
            j += 1;
        }
        i += 1;
    }
};

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;

    #[test]
    fn numbers_and_names_round_trip() {
        for r in Reason::ALL {
            assert_eq!(Reason::from_u8(r as u8), Some(r));
            assert_eq!(Reason::from_name(r.name()), Some(r));
        }
        assert_eq!(Reason::from_u8(REASON_COUNT as u8), None);
        assert_eq!(Reason::from_name("no_such_reason"), None);
    }

    #[test]
    fn direction_lists_hold_what_occurs_there() {
        for dir in Direction::ALL {
            let listed = Reason::in_direction(dir);
            let occurring: std::vec::Vec<Reason> =
                Reason::ALL.into_iter().filter(|r| r.occurs(dir)).collect();
            assert_eq!(listed, &occurring[..], "{}", dir.name());
        }
        // Sniffing is only ever judged on the way to the guest, spoofing
        // only on the way from it.
        assert!(!Reason::FROM_GUEST.contains(&Reason::SniffIp));
        assert!(!Reason::TO_GUEST.contains(&Reason::MacSpoof));
    }
}
