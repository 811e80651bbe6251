//! The policy of one interface, as docs/policy.md section 1 defines it:
//! validated types, independent of where the policy came from and of the
//! BPF maps.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

pub use filter_common::{LinkLocal, Mode};

mod cidr;
pub use cidr::{Cidr, Cidr4, Cidr6, Family, Prefix, mask32, mask128};
mod pairs;
pub use pairs::{Entry, parse_dhcp_server, parse_dhcp_servers, parse_entry, parse_pairs};

/// Addresses allowed per family and interface. The datapath keeps up to
/// `INLINE_V*` host addresses inline and puts the rest in a trie; the trie
/// is bounded, so a list is bounded too.
pub const MAX_ADDRESSES: usize = 1024;
/// Seconds a DHCP-learned address outlives its lease (section 8).
pub const DEFAULT_LEARN_GRACE_S: u32 = 60;
/// Largest `flood_pps`.
pub const MAX_FLOOD_PPS: u32 = 1_000_000;
/// Address pairs (section 3a) per interface.
pub const MAX_PAIRS: usize = 8;
/// VRRP entries (section 3a) per interface.
pub const MAX_VRRP: usize = 8;
/// Addresses per family in one pair or VRRP entry.
pub const MAX_ENTRY_ADDRESSES: usize = 64;
/// Trusted DHCP servers (section 4) per interface.
pub const MAX_DHCP_SERVERS: usize = 8;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PolicyError {
    #[error("invalid MAC address {0:?} (want six hex bytes like 00:16:3e:12:34:56)")]
    BadMac(String),
    #[error("MAC address {0} is multicast or zero; a vif needs a unicast MAC")]
    NonUnicastMac(MacAddr),
    #[error("invalid IPv4 address or prefix {0:?}")]
    BadIpv4(String),
    #[error("invalid IPv6 address or prefix {0:?}")]
    BadIpv6(String),
    #[error("invalid address or prefix {0:?}")]
    BadCidr(String),
    #[error("prefix {0:?} has host bits set (did you mean {1}?)")]
    HostBitsSet(String, String),
    #[error("unknown mode {0:?} (want unlocked, locked, isolated, disabled or network_default)")]
    BadMode(String),
    #[error("unknown ipv6_link_local value {0:?} (want derived, any or none)")]
    BadLinkLocal(String),
    #[error("invalid EtherType {0:?} (want hex 0x0600..0xffff, e.g. 0x88cc)")]
    BadEthertype(String),
    #[error("pair MAC {0} is multicast or zero; a pair needs a unicast MAC")]
    NonUnicastPairMac(MacAddr),
    #[error("pair MAC {0} is the vif's own MAC; list only the extra ones")]
    PairMacIsOwn(MacAddr),
    #[error("MAC {0} appears twice among the pairs and VRRP entries")]
    DuplicateMac(MacAddr),
    #[error("VRRP router id {0:?} is not in 1..255")]
    BadVrid(String),
    #[error("entry {0:?} has no address (want at least one IPv4 or IPv6 address or prefix)")]
    EmptyEntry(String),
    #[error("invalid pair entry {0:?} (want MAC=ADDR[,ADDR...] or vrrp:VRID=ADDR[,ADDR...])")]
    BadPair(String),
    #[error("invalid DHCP server address {0:?} (want one IPv4 or IPv6 host address)")]
    BadServer(String),
    /// An error about a part of a pair or VRRP entry, naming the entry.
    #[error("entry {entry:?}")]
    InEntry {
        entry: String,
        #[source]
        source: Box<PolicyError>,
    },
    #[error("invalid flood_pps {0:?} (want a whole number 0..={MAX_FLOOD_PPS}, 0: no limit)")]
    BadFloodPps(String),
    #[error("too many {what}: {count} (at most {max})")]
    TooMany {
        what: &'static str,
        count: usize,
        max: usize,
    },
}

/// An Ethernet address.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    pub const fn is_multicast(&self) -> bool {
        self.0[0] & 1 == 1
    }

    pub fn is_zero(&self) -> bool {
        self.0 == [0; 6]
    }

    /// The link-local address a guest derives from this MAC (modified EUI-64,
    /// RFC 4291 appendix A): fe80::, then the MAC with the universal/local
    /// bit flipped and ff:fe in the middle.
    pub fn link_local(&self) -> Ipv6Addr {
        let m = self.0;
        Ipv6Addr::from([
            0xfe,
            0x80,
            0,
            0,
            0,
            0,
            0,
            0,
            m[0] ^ 0x02,
            m[1],
            m[2],
            0xff,
            0xfe,
            m[3],
            m[4],
            m[5],
        ])
    }
}

impl FromStr for MacAddr {
    type Err = PolicyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || PolicyError::BadMac(s.to_string());
        let mut out = [0u8; 6];
        let mut parts = s.trim().split([':', '-']);
        for byte in &mut out {
            let p = parts.next().ok_or_else(bad)?;
            if p.is_empty() || p.len() > 2 {
                return Err(bad());
            }
            *byte = u8::from_str_radix(p, 16).map_err(|_| bad())?;
        }
        if parts.next().is_some() {
            return Err(bad());
        }
        Ok(MacAddr(out))
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            m[0], m[1], m[2], m[3], m[4], m[5]
        )
    }
}

impl fmt::Debug for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// The options of docs/policy.md section 6, each with its safe default.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    pub dhcp_client: bool,
    pub dhcp_server: bool,
    pub router: bool,
    pub link_local: LinkLocal,
    pub egress_filter: bool,
    /// Extra EtherTypes the guest may send (host byte order).
    pub ethertypes: Vec<u16>,
    /// Allow the IPv4 addresses the guest leases from a trusted DHCP
    /// server (section 8).
    pub learn_dhcp: bool,
    /// Broadcast and multicast frames per second the guest may send; 0:
    /// no limit (section 9).
    pub flood_pps: u32,
    /// Seconds a learned address outlives its lease. Host configuration
    /// only (`learn_grace_secs`): not a per-vif option.
    pub learn_grace_s: u32,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            dhcp_client: true,
            dhcp_server: false,
            router: false,
            link_local: LinkLocal::Derived,
            egress_filter: true,
            ethertypes: Vec::new(),
            learn_dhcp: false,
            flood_pps: 0,
            learn_grace_s: DEFAULT_LEARN_GRACE_S,
        }
    }
}

/// An extra allowed source (section 3a): frames from `mac`, with these
/// addresses and the link-local address derived from `mac`; never the
/// vif's own addresses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pair {
    pub mac: MacAddr,
    pub ipv4: Vec<Cidr4>,
    pub ipv6: Vec<Cidr6>,
}

/// A VRRP router the guest may be (section 3a, RFC 9568): its IPv4
/// virtual addresses from 00:00:5e:00:01:VRID and its IPv6 ones from
/// 00:00:5e:00:02:VRID; frames from either virtual MAC may also use the
/// vif's own addresses (advertisements come from the router's address).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Vrrp {
    /// 1..=255.
    pub vrid: u8,
    pub ipv4: Vec<Cidr4>,
    pub ipv6: Vec<Cidr6>,
}

impl Vrrp {
    /// The virtual MAC of the IPv4 router (RFC 9568 7.3).
    pub const fn mac_v4(&self) -> MacAddr {
        MacAddr([0x00, 0x00, 0x5e, 0x00, 0x01, self.vrid])
    }

    /// The virtual MAC of the IPv6 router.
    pub const fn mac_v6(&self) -> MacAddr {
        MacAddr([0x00, 0x00, 0x5e, 0x00, 0x02, self.vrid])
    }

    /// The virtual MACs in use: one per family that has addresses.
    pub fn macs(&self) -> impl Iterator<Item = MacAddr> + '_ {
        let v4 = (!self.ipv4.is_empty()).then(|| self.mac_v4());
        let v6 = (!self.ipv6.is_empty()).then(|| self.mac_v6());
        v4.into_iter().chain(v6)
    }
}

/// The resolved policy of one interface.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    pub mode: Mode,
    pub mac: MacAddr,
    pub ipv4: Vec<Cidr4>,
    pub ipv6: Vec<Cidr6>,
    /// `isolated` only: where the guest may send.
    pub destinations: Vec<Cidr>,
    /// Extra MACs with their own addresses (section 3a).
    pub pairs: Vec<Pair>,
    /// VRRP routers (section 3a).
    pub vrrp: Vec<Vrrp>,
    /// Trusted DHCP servers towards the guest (section 4); empty: any.
    pub dhcp_servers: Vec<IpAddr>,
    pub options: Options,
}

impl Policy {
    /// A locked policy with no addresses: the guest may send only DHCP and
    /// DAD bootstrap traffic.
    pub fn locked(mac: MacAddr) -> Policy {
        Policy {
            mode: Mode::Locked,
            mac,
            ipv4: Vec::new(),
            ipv6: Vec::new(),
            destinations: Vec::new(),
            pairs: Vec::new(),
            vrrp: Vec::new(),
            dhcp_servers: Vec::new(),
            options: Options::default(),
        }
    }

    /// Checks what the types cannot: unicast MACs, no MAC twice, router
    /// ids in range, entries with addresses, and bounded lists.
    pub fn validate(&self) -> Result<(), PolicyError> {
        if self.mac.is_multicast() || self.mac.is_zero() {
            return Err(PolicyError::NonUnicastMac(self.mac));
        }
        let bounded = |what, count, max| {
            if count > max {
                Err(PolicyError::TooMany { what, count, max })
            } else {
                Ok(())
            }
        };
        bounded("IPv4 addresses", self.ipv4.len(), MAX_ADDRESSES)?;
        bounded("IPv6 addresses", self.ipv6.len(), MAX_ADDRESSES)?;
        bounded("destinations", self.destinations.len(), MAX_ADDRESSES)?;
        bounded(
            "ethertypes",
            self.options.ethertypes.len(),
            filter_common::MAX_ETHERTYPES,
        )?;
        bounded("pairs", self.pairs.len(), MAX_PAIRS)?;
        bounded("VRRP entries", self.vrrp.len(), MAX_VRRP)?;
        bounded("DHCP servers", self.dhcp_servers.len(), MAX_DHCP_SERVERS)?;
        let mut macs = vec![self.mac];
        for pair in &self.pairs {
            if pair.mac.is_multicast() || pair.mac.is_zero() {
                return Err(PolicyError::NonUnicastPairMac(pair.mac));
            }
            if pair.mac == self.mac {
                return Err(PolicyError::PairMacIsOwn(pair.mac));
            }
            if pair.ipv4.is_empty() && pair.ipv6.is_empty() {
                return Err(PolicyError::EmptyEntry(pair.mac.to_string()));
            }
            bounded("pair IPv4 addresses", pair.ipv4.len(), MAX_ENTRY_ADDRESSES)?;
            bounded("pair IPv6 addresses", pair.ipv6.len(), MAX_ENTRY_ADDRESSES)?;
            macs.push(pair.mac);
        }
        for v in &self.vrrp {
            if v.vrid == 0 {
                return Err(PolicyError::BadVrid(v.vrid.to_string()));
            }
            if v.ipv4.is_empty() && v.ipv6.is_empty() {
                return Err(PolicyError::EmptyEntry(format!("vrrp:{}", v.vrid)));
            }
            bounded("VRRP IPv4 addresses", v.ipv4.len(), MAX_ENTRY_ADDRESSES)?;
            bounded("VRRP IPv6 addresses", v.ipv6.len(), MAX_ENTRY_ADDRESSES)?;
            macs.extend(v.macs());
        }
        for (i, m) in macs.iter().enumerate() {
            if macs[..i].contains(m) {
                return Err(PolicyError::DuplicateMac(*m));
            }
        }
        Ok(())
    }

    /// Whether `a` is an allowed IPv4 source (section 3.5, before exceptions).
    pub fn allows_v4(&self, a: Ipv4Addr) -> bool {
        self.ipv4.iter().any(|c| c.contains(a))
    }

    /// Whether `a` is an allowed IPv6 source: in the list, or an allowed
    /// link-local address (section 3.6).
    pub fn allows_v6(&self, a: Ipv6Addr) -> bool {
        self.ipv6.iter().any(|c| c.contains(a)) || self.allows_link_local(a)
    }

    /// Whether `a` is allowed by the `ipv6_link_local` option alone.
    pub fn allows_link_local(&self, a: Ipv6Addr) -> bool {
        match self.options.link_local {
            LinkLocal::Derived => a == self.mac.link_local(),
            LinkLocal::Any => is_link_local_64(a),
            LinkLocal::None => false,
        }
    }

    pub fn allows_destination(&self, a: IpAddr) -> bool {
        self.destinations.iter().any(|c| c.contains(a))
    }
}

/// fe80::/64, the link-local prefix of docs/policy.md.
pub fn is_link_local_64(a: Ipv6Addr) -> bool {
    u128::from(a) >> 64 == 0xfe80_0000_0000_0000
}

pub fn parse_mode(s: &str) -> Result<Option<Mode>, PolicyError> {
    // `network_default` resolves later, against the host configuration.
    match s.trim() {
        "unlocked" => Ok(Some(Mode::Unlocked)),
        "locked" => Ok(Some(Mode::Locked)),
        "isolated" => Ok(Some(Mode::Isolated)),
        "disabled" => Ok(Some(Mode::Disabled)),
        "network_default" => Ok(None),
        other => Err(PolicyError::BadMode(other.to_string())),
    }
}

pub fn parse_link_local(s: &str) -> Result<LinkLocal, PolicyError> {
    match s.trim() {
        "derived" => Ok(LinkLocal::Derived),
        "any" => Ok(LinkLocal::Any),
        "none" => Ok(LinkLocal::None),
        other => Err(PolicyError::BadLinkLocal(other.to_string())),
    }
}

pub fn parse_ethertype(s: &str) -> Result<u16, PolicyError> {
    let t = s.trim();
    let hex = t
        .strip_prefix("0x")
        .or_else(|| t.strip_prefix("0X"))
        .unwrap_or(t);
    match u16::from_str_radix(hex, 16) {
        Ok(v) if v >= 0x0600 => Ok(v),
        _ => Err(PolicyError::BadEthertype(s.to_string())),
    }
}

/// Option `flood_pps` (section 9) as a number: 0..=[`MAX_FLOOD_PPS`],
/// and for now 0 only. The programs do not enforce the limit yet (issue
/// 18): an operator who set 1000 would believe the bridge protected when
/// nothing limits the guest, so a limit is refused rather than ignored.
pub fn flood_pps(v: i64) -> Result<u32, PolicyError> {
    let n = u32::try_from(v)
        .ok()
        .filter(|&n| n <= MAX_FLOOD_PPS)
        .ok_or_else(|| PolicyError::BadFloodPps(v.to_string()))?;
    Ok(n)
}

/// Option `flood_pps` as text (a xenstore key): see [`flood_pps`].
pub fn parse_flood_pps(s: &str) -> Result<u32, PolicyError> {
    let t = s.trim();
    // Digits only: `+5` or `0x10` would parse elsewhere but are no count.
    if t.is_empty() || t.len() > 10 || !t.bytes().all(|b| b.is_ascii_digit()) {
        return Err(PolicyError::BadFloodPps(s.to_string()));
    }
    let v: i64 = t
        .parse()
        .map_err(|_| PolicyError::BadFloodPps(s.to_string()))?;
    flood_pps(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flood_pps_is_a_bounded_count_and_zero_for_now() {
        assert_eq!(parse_flood_pps("0"), Ok(0));
        assert_eq!(parse_flood_pps(" 0 "), Ok(0));
        assert_eq!(flood_pps(0), Ok(0));
        for bad in [
            "",
            "-1",
            "+5",
            "0x10",
            "1e3",
            "1000001",
            "99999999999",
            "many",
        ] {
            assert!(
                matches!(parse_flood_pps(bad), Err(PolicyError::BadFloodPps(_))),
                "{bad:?}"
            );
        }
        assert!(matches!(flood_pps(-1), Err(PolicyError::BadFloodPps(_))));
        assert!(matches!(
            flood_pps(i64::from(MAX_FLOOD_PPS) + 1),
            Err(PolicyError::BadFloodPps(_))
        ));
        for (text, n) in [("0", 0), ("1", 1), ("1000", 1000), ("1000000", 1_000_000)] {
            assert_eq!(parse_flood_pps(text), Ok(n), "{text}");
        }
    }

    #[test]
    fn mac_parses_and_derives_link_local() {
        let m: MacAddr = "00:16:3e:12:34:56".parse().unwrap();
        assert_eq!(m.to_string(), "00:16:3e:12:34:56");
        assert_eq!(
            m.link_local(),
            "fe80::216:3eff:fe12:3456".parse::<Ipv6Addr>().unwrap()
        );
        assert!("00:16:3e:12:34".parse::<MacAddr>().is_err());
        assert!("00:16:3e:12:34:56:78".parse::<MacAddr>().is_err());
        assert!("zz:16:3e:12:34:56".parse::<MacAddr>().is_err());
    }

    #[test]
    fn cidrs_parse_and_contain() {
        let c: Cidr4 = "192.0.2.0/24".parse().unwrap();
        assert!(c.contains("192.0.2.77".parse().unwrap()));
        assert!(!c.contains("192.0.3.1".parse().unwrap()));
        assert_eq!("192.0.2.1".parse::<Cidr4>().unwrap().len, 32);
        assert!(matches!(
            "192.0.2.1/24".parse::<Cidr4>(),
            Err(PolicyError::HostBitsSet(..))
        ));
        assert!("192.0.2.0/33".parse::<Cidr4>().is_err());
        let any: Cidr4 = "0.0.0.0/0".parse().unwrap();
        assert!(any.contains("203.0.113.9".parse().unwrap()));
        let c6: Cidr6 = "2001:db8::/32".parse().unwrap();
        assert!(c6.contains("2001:db8:1::1".parse().unwrap()));
        assert!(!c6.contains("2001:db9::1".parse().unwrap()));
        assert!(matches!("::/0".parse::<Cidr>(), Ok(Cidr::V6(_))));
    }

    #[test]
    fn validation_rejects_multicast_mac() {
        let p = Policy::locked("01:00:5e:00:00:01".parse().unwrap());
        assert!(matches!(p.validate(), Err(PolicyError::NonUnicastMac(_))));
    }

    #[test]
    fn ethertypes_parse() {
        assert_eq!(parse_ethertype("0x88cc"), Ok(0x88cc));
        assert!(parse_ethertype("0x0100").is_err());
        assert!(parse_ethertype("lldp").is_err());
    }
}
