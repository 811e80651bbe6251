//! The policy of one interface, as docs/policy.md section 1 defines it:
//! validated types, independent of where the policy came from and of the
//! BPF maps.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

pub use filter_common::{LinkLocal, Mode};

/// Addresses allowed per family and interface. The datapath keeps up to
/// `INLINE_V*` host addresses inline and puts the rest in a trie; the trie
/// is bounded, so a list is bounded too.
pub const MAX_ADDRESSES: usize = 1024;

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

/// An IPv4 host address or prefix. Host bits must be zero.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Cidr4 {
    pub addr: Ipv4Addr,
    pub len: u8,
}

/// An IPv6 host address or prefix. Host bits must be zero.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Cidr6 {
    pub addr: Ipv6Addr,
    pub len: u8,
}

impl Cidr4 {
    pub fn new(addr: Ipv4Addr, len: u8) -> Option<Cidr4> {
        (len <= 32 && u32::from(addr) & !mask32(len) == 0).then_some(Cidr4 { addr, len })
    }

    pub const fn host(addr: Ipv4Addr) -> Cidr4 {
        Cidr4 { addr, len: 32 }
    }

    pub fn contains(&self, a: Ipv4Addr) -> bool {
        u32::from(a) & mask32(self.len) == u32::from(self.addr)
    }

    pub const fn is_host(&self) -> bool {
        self.len == 32
    }
}

impl Cidr6 {
    pub fn new(addr: Ipv6Addr, len: u8) -> Option<Cidr6> {
        (len <= 128 && u128::from(addr) & !mask128(len) == 0).then_some(Cidr6 { addr, len })
    }

    pub const fn host(addr: Ipv6Addr) -> Cidr6 {
        Cidr6 { addr, len: 128 }
    }

    pub fn contains(&self, a: Ipv6Addr) -> bool {
        u128::from(a) & mask128(self.len) == u128::from(self.addr)
    }

    pub const fn is_host(&self) -> bool {
        self.len == 128
    }
}

/// The netmask of an IPv4 prefix of `len` bits.
pub fn mask32(len: u8) -> u32 {
    if len == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(len))
    }
}

/// The netmask of an IPv6 prefix of `len` bits.
pub fn mask128(len: u8) -> u128 {
    if len == 0 {
        0
    } else {
        u128::MAX << (128 - u32::from(len))
    }
}

/// Splits "addr/len" (or "addr", a host) into its parts.
fn split_prefix(s: &str) -> (&str, Option<&str>) {
    match s.split_once('/') {
        Some((a, l)) => (a, Some(l)),
        None => (s, None),
    }
}

impl FromStr for Cidr4 {
    type Err = PolicyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        let bad = || PolicyError::BadIpv4(s.to_string());
        let (a, l) = split_prefix(t);
        let addr: Ipv4Addr = a.parse().map_err(|_| bad())?;
        let len = match l {
            None => 32,
            Some(l) => l.parse::<u8>().map_err(|_| bad())?,
        };
        if len > 32 {
            return Err(bad());
        }
        Cidr4::new(addr, len).ok_or_else(|| {
            let net = Ipv4Addr::from(u32::from(addr) & mask32(len));
            PolicyError::HostBitsSet(s.to_string(), format!("{net}/{len}"))
        })
    }
}

impl FromStr for Cidr6 {
    type Err = PolicyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        let bad = || PolicyError::BadIpv6(s.to_string());
        let (a, l) = split_prefix(t);
        let addr: Ipv6Addr = a.parse().map_err(|_| bad())?;
        let len = match l {
            None => 128,
            Some(l) => l.parse::<u8>().map_err(|_| bad())?,
        };
        if len > 128 {
            return Err(bad());
        }
        Cidr6::new(addr, len).ok_or_else(|| {
            let net = Ipv6Addr::from(u128::from(addr) & mask128(len));
            PolicyError::HostBitsSet(s.to_string(), format!("{net}/{len}"))
        })
    }
}

impl fmt::Display for Cidr4 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_host() {
            write!(f, "{}", self.addr)
        } else {
            write!(f, "{}/{}", self.addr, self.len)
        }
    }
}

impl fmt::Display for Cidr6 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_host() {
            write!(f, "{}", self.addr)
        } else {
            write!(f, "{}/{}", self.addr, self.len)
        }
    }
}

/// A destination prefix of either family (`isolated` mode).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Cidr {
    V4(Cidr4),
    V6(Cidr6),
}

impl Cidr {
    pub fn contains(&self, a: IpAddr) -> bool {
        match (self, a) {
            (Cidr::V4(c), IpAddr::V4(a)) => c.contains(a),
            (Cidr::V6(c), IpAddr::V6(a)) => c.contains(a),
            _ => false,
        }
    }
}

impl FromStr for Cidr {
    type Err = PolicyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.contains(':') {
            s.parse().map(Cidr::V6)
        } else if s.contains('.') {
            s.parse().map(Cidr::V4)
        } else {
            Err(PolicyError::BadCidr(s.to_string()))
        }
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cidr::V4(c) => c.fmt(f),
            Cidr::V6(c) => c.fmt(f),
        }
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
        }
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
            options: Options::default(),
        }
    }

    /// Checks what the types cannot: a unicast MAC and bounded lists.
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

#[cfg(test)]
mod tests {
    use super::*;

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
