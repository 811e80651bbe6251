//! Host addresses and prefixes: one generic [`Prefix`] over the address
//! family ([`Cidr4`], [`Cidr6`]), and [`Cidr`] for lists of either.

use std::fmt;
use std::hash::Hash;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use super::PolicyError;

/// An IP address family: its width, and its addresses as numbers.
pub trait Family: Copy + Eq + Hash + fmt::Debug + fmt::Display + FromStr {
    /// Address width in bits.
    const BITS: u8;
    /// The address as an unsigned number (right-aligned in a u128).
    fn to_bits(self) -> u128;
    fn from_bits(bits: u128) -> Self;
    /// The error for an unparsable address or prefix of this family.
    fn bad(text: &str) -> PolicyError;
}

impl Family for Ipv4Addr {
    const BITS: u8 = 32;
    fn to_bits(self) -> u128 {
        u128::from(u32::from(self))
    }
    fn from_bits(bits: u128) -> Self {
        Ipv4Addr::from(bits as u32)
    }
    fn bad(text: &str) -> PolicyError {
        PolicyError::BadIpv4(text.to_string())
    }
}

impl Family for Ipv6Addr {
    const BITS: u8 = 128;
    fn to_bits(self) -> u128 {
        u128::from(self)
    }
    fn from_bits(bits: u128) -> Self {
        Ipv6Addr::from(bits)
    }
    fn bad(text: &str) -> PolicyError {
        PolicyError::BadIpv6(text.to_string())
    }
}

/// A host address or prefix of family `A`. Host bits must be zero.
/// Ordered by address, then length.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct Prefix<A> {
    pub addr: A,
    pub len: u8,
}

/// An IPv4 host address or prefix.
pub type Cidr4 = Prefix<Ipv4Addr>;
/// An IPv6 host address or prefix.
pub type Cidr6 = Prefix<Ipv6Addr>;

/// The netmask of a prefix of `len` bits in a family of `bits` bits,
/// right-aligned.
fn mask(bits: u8, len: u8) -> u128 {
    let width = u128::MAX >> (128 - u32::from(bits));
    if len == 0 {
        0
    } else {
        width & (width << (u32::from(bits) - u32::from(len)))
    }
}

/// The netmask of an IPv4 prefix of `len` bits.
pub fn mask32(len: u8) -> u32 {
    mask(32, len) as u32
}

/// The netmask of an IPv6 prefix of `len` bits.
pub fn mask128(len: u8) -> u128 {
    mask(128, len)
}

impl<A: Family> Prefix<A> {
    /// `None` when `len` is too long for the family or host bits are set.
    pub fn new(addr: A, len: u8) -> Option<Prefix<A>> {
        (len <= A::BITS && addr.to_bits() & !mask(A::BITS, len) == 0)
            .then_some(Prefix { addr, len })
    }

    pub const fn host(addr: A) -> Prefix<A> {
        Prefix { addr, len: A::BITS }
    }

    pub fn contains(&self, a: A) -> bool {
        a.to_bits() & mask(A::BITS, self.len) == self.addr.to_bits()
    }

    pub const fn is_host(&self) -> bool {
        self.len == A::BITS
    }
}

impl<A: Family> FromStr for Prefix<A> {
    type Err = PolicyError;

    /// "addr/len", or "addr" for a host.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (a, l) = match s.trim().split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (s.trim(), None),
        };
        let addr: A = a.parse().map_err(|_| A::bad(s))?;
        let len = match l {
            None => A::BITS,
            Some(l) => l.parse::<u8>().map_err(|_| A::bad(s))?,
        };
        if len > A::BITS {
            return Err(A::bad(s));
        }
        Prefix::new(addr, len).ok_or_else(|| {
            let net = A::from_bits(addr.to_bits() & mask(A::BITS, len));
            PolicyError::HostBitsSet(s.to_string(), format!("{net}/{len}"))
        })
    }
}

impl<A: Family> fmt::Display for Prefix<A> {
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn masks_at_the_edges() {
        assert_eq!(mask32(0), 0);
        assert_eq!(mask32(1), 0x8000_0000);
        assert_eq!(mask32(24), 0xffff_ff00);
        assert_eq!(mask32(32), u32::MAX);
        assert_eq!(mask128(0), 0);
        assert_eq!(mask128(1), 1 << 127);
        assert_eq!(mask128(128), u128::MAX);
    }

    #[test]
    fn one_type_for_both_families() {
        let v4: Cidr4 = "192.0.2.0/24".parse().unwrap();
        assert!(v4.contains("192.0.2.200".parse().unwrap()));
        assert!(!v4.contains("192.0.3.1".parse().unwrap()));
        let v6: Cidr6 = "2001:db8::/32".parse().unwrap();
        assert!(v6.contains("2001:db8:ffff::1".parse().unwrap()));
        assert!(!v6.contains("2001:db9::1".parse().unwrap()));
        assert_eq!(Cidr6::host(Ipv6Addr::LOCALHOST).to_string(), "::1");
        assert!(
            "0.0.0.0/0"
                .parse::<Cidr4>()
                .unwrap()
                .contains(Ipv4Addr::BROADCAST)
        );
        assert!("2001:db8::/129".parse::<Cidr6>().is_err());
        assert!("192.0.2.1/33".parse::<Cidr4>().is_err());
        assert_eq!(
            "192.0.2.1/24".parse::<Cidr4>(),
            Err(PolicyError::HostBitsSet(
                "192.0.2.1/24".into(),
                "192.0.2.0/24".into()
            ))
        );
    }
}
