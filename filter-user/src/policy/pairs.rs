//! The text forms of pairs, VRRP entries and trusted DHCP servers, as the
//! xenstore keys `vifguard/pairs` and `vifguard/dhcp-servers` and the host
//! policy files hold them (docs/policy.md, "Where a policy comes from").
//!
//! `pairs`: entries separated by whitespace, each `MAC=ADDR[,ADDR...]` or
//! `vrrp:VRID=ADDR[,ADDR...]`, an address being a host or a prefix of
//! either family:
//!
//! ```text
//! 02:16:3e:00:07:09=192.0.2.9,2001:db8::9 vrrp:7=192.0.2.100,2001:db8::100
//! ```
//!
//! `dhcp-servers`: host addresses of either family, separated by
//! whitespace (commas accepted, like the other lists).
//!
//! The parsers check here what [`Policy::validate`](super::Policy::validate)
//! checks again for the whole policy, so that an error names the entry it
//! is about, not just the policy.

use std::fmt;
use std::net::IpAddr;

use super::{
    Cidr, MAX_DHCP_SERVERS, MAX_ENTRY_ADDRESSES, MAX_PAIRS, MAX_VRRP, MacAddr, Pair, PolicyError,
    Vrrp,
};

/// One entry of a pairs value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Entry {
    Pair(Pair),
    Vrrp(Vrrp),
}

impl Entry {
    /// The MACs the entry lets the guest send from.
    fn macs(&self) -> Vec<MacAddr> {
        match self {
            Entry::Pair(p) => vec![p.mac],
            Entry::Vrrp(v) => v.macs().collect(),
        }
    }
}

/// Wraps an error about a part of `entry` so that it names the entry.
fn in_entry(entry: &str) -> impl Fn(PolicyError) -> PolicyError + '_ {
    move |source| PolicyError::InEntry {
        entry: entry.to_string(),
        source: Box::new(source),
    }
}

/// Parses one entry, `MAC=ADDR[,ADDR...]` or `vrrp:VRID=ADDR[,ADDR...]`.
pub fn parse_entry(entry: &str) -> Result<Entry, PolicyError> {
    let wrap = in_entry(entry);
    let Some((head, list)) = entry.split_once('=') else {
        return Err(PolicyError::BadPair(entry.to_string()));
    };
    if list.is_empty() {
        return Err(PolicyError::EmptyEntry(entry.to_string()));
    }
    let mut ipv4 = Vec::new();
    let mut ipv6 = Vec::new();
    for item in list.split(',') {
        // `a,,b` or a trailing comma: a typo, not an empty address.
        if item.is_empty() {
            return Err(PolicyError::BadPair(entry.to_string()));
        }
        match item.parse::<Cidr>().map_err(&wrap)? {
            Cidr::V4(c) if !ipv4.contains(&c) => ipv4.push(c),
            Cidr::V6(c) if !ipv6.contains(&c) => ipv6.push(c),
            _ => {}
        }
    }
    for (what, count) in [
        ("IPv4 addresses", ipv4.len()),
        ("IPv6 addresses", ipv6.len()),
    ] {
        if count > MAX_ENTRY_ADDRESSES {
            return Err(wrap(PolicyError::TooMany {
                what,
                count,
                max: MAX_ENTRY_ADDRESSES,
            }));
        }
    }
    let vrid = head
        .get(..5)
        .filter(|p| p.eq_ignore_ascii_case("vrrp:"))
        .and_then(|_| head.get(5..));
    if let Some(id) = vrid {
        // Digits only: `u8::from_str` would also take `+7`.
        let vrid = Some(id)
            .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|s| s.parse::<u8>().ok())
            .filter(|&v| v != 0)
            .ok_or_else(|| wrap(PolicyError::BadVrid(id.to_string())))?;
        return Ok(Entry::Vrrp(Vrrp { vrid, ipv4, ipv6 }));
    }
    let mac: MacAddr = head.parse().map_err(&wrap)?;
    if mac.is_multicast() || mac.is_zero() {
        return Err(wrap(PolicyError::NonUnicastPairMac(mac)));
    }
    Ok(Entry::Pair(Pair { mac, ipv4, ipv6 }))
}

/// Parses a pairs value for a vif whose own MAC is `own`: its pairs and
/// VRRP entries, bounded, no MAC twice (the vif's own included).
pub fn parse_pairs(value: &str, own: MacAddr) -> Result<(Vec<Pair>, Vec<Vrrp>), PolicyError> {
    let mut pairs = Vec::new();
    let mut vrrp = Vec::new();
    let mut macs = vec![own];
    for text in value.split_whitespace() {
        let entry = parse_entry(text)?;
        for m in entry.macs() {
            let e = if m == own && matches!(entry, Entry::Pair(_)) {
                PolicyError::PairMacIsOwn(m)
            } else {
                PolicyError::DuplicateMac(m)
            };
            if macs.contains(&m) {
                return Err(in_entry(text)(e));
            }
            macs.push(m);
        }
        match entry {
            Entry::Pair(p) => pairs.push(p),
            Entry::Vrrp(v) => vrrp.push(v),
        }
    }
    if pairs.len() > MAX_PAIRS {
        return Err(PolicyError::TooMany {
            what: "pairs",
            count: pairs.len(),
            max: MAX_PAIRS,
        });
    }
    if vrrp.len() > MAX_VRRP {
        return Err(PolicyError::TooMany {
            what: "VRRP entries",
            count: vrrp.len(),
            max: MAX_VRRP,
        });
    }
    Ok((pairs, vrrp))
}

/// Parses one trusted DHCP server: a host address that can be a source
/// (not unspecified, multicast or the IPv4 broadcast). A DHCPv6 server
/// usually answers from its link-local address, which is accepted.
pub fn parse_dhcp_server(item: &str) -> Result<IpAddr, PolicyError> {
    let bad = || PolicyError::BadServer(item.to_string());
    let a: IpAddr = item.trim().parse().map_err(|_| bad())?;
    let broadcast = matches!(a, IpAddr::V4(v4) if v4.is_broadcast());
    if a.is_unspecified() || a.is_multicast() || broadcast {
        return Err(bad());
    }
    Ok(a)
}

/// Parses a list of trusted DHCP servers (whitespace or commas), bounded,
/// duplicates merged.
pub fn parse_dhcp_servers(value: &str) -> Result<Vec<IpAddr>, PolicyError> {
    let mut out = Vec::new();
    for item in value
        .split(|c: char| c.is_whitespace() || c == ',')
        .filter(|s| !s.is_empty())
    {
        let a = parse_dhcp_server(item)?;
        if !out.contains(&a) {
            out.push(a);
        }
    }
    if out.len() > MAX_DHCP_SERVERS {
        return Err(PolicyError::TooMany {
            what: "DHCP servers",
            count: out.len(),
            max: MAX_DHCP_SERVERS,
        });
    }
    Ok(out)
}

/// `ADDR,ADDR` in the order of the lists: IPv4 first.
fn write_addresses(
    f: &mut fmt::Formatter<'_>,
    ipv4: &[super::Cidr4],
    ipv6: &[super::Cidr6],
) -> fmt::Result {
    let mut first = true;
    let mut sep = |f: &mut fmt::Formatter<'_>| {
        let s = if first { "" } else { "," };
        first = false;
        f.write_str(s)
    };
    for a in ipv4 {
        sep(f)?;
        write!(f, "{a}")?;
    }
    for a in ipv6 {
        sep(f)?;
        write!(f, "{a}")?;
    }
    Ok(())
}

/// The entry as `vifguard/pairs` writes it.
impl fmt::Display for Pair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}=", self.mac)?;
        write_addresses(f, &self.ipv4, &self.ipv6)
    }
}

/// The entry as `vifguard/pairs` writes it.
impl fmt::Display for Vrrp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "vrrp:{}=", self.vrid)?;
        write_addresses(f, &self.ipv4, &self.ipv6)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const OWN: MacAddr = MacAddr([0x00, 0x16, 0x3e, 0x00, 0x00, 0x05]);

    fn err(value: &str) -> PolicyError {
        parse_pairs(value, OWN).unwrap_err()
    }

    /// The error under [`PolicyError::InEntry`], checking it names `entry`.
    fn inner(e: PolicyError, entry: &str) -> PolicyError {
        match e {
            PolicyError::InEntry { entry: en, source } => {
                assert_eq!(en, entry);
                *source
            }
            other => panic!("not wrapped in {entry:?}: {other:?}"),
        }
    }

    #[test]
    fn the_issue_example_parses_and_prints_back() {
        let v = "02:16:3e:00:07:09=192.0.2.9,2001:db8::9 vrrp:7=192.0.2.100,2001:db8::100";
        let (pairs, vrrp) = parse_pairs(v, OWN).unwrap();
        assert_eq!(pairs.len(), 1);
        assert_eq!(pairs[0].mac.to_string(), "02:16:3e:00:07:09");
        assert_eq!(pairs[0].ipv4, vec!["192.0.2.9".parse().unwrap()]);
        assert_eq!(pairs[0].ipv6, vec!["2001:db8::9".parse().unwrap()]);
        assert_eq!(vrrp.len(), 1);
        assert_eq!(vrrp[0].vrid, 7);
        assert_eq!(vrrp[0].mac_v4().to_string(), "00:00:5e:00:01:07");
        let shown = format!("{} {}", pairs[0], vrrp[0]);
        assert_eq!(shown, v);
        assert_eq!(parse_pairs(&shown, OWN).unwrap(), (pairs, vrrp));
    }

    #[test]
    fn lists_are_loose_where_harmless() {
        // Any whitespace between entries, upper-case hex, `-` in the MAC,
        // `VRRP:`, prefixes, duplicates merged, IPv6 before IPv4.
        let (pairs, vrrp) = parse_pairs(
            "\n 02-16-3E-00-07-09=2001:db8::/64,192.0.2.0/28,192.0.2.0/28\tVRRP:255=2001:db8::1 ",
            OWN,
        )
        .unwrap();
        assert_eq!(pairs[0].ipv4.len(), 1);
        assert_eq!(
            pairs[0].to_string(),
            "02:16:3e:00:07:09=192.0.2.0/28,2001:db8::/64"
        );
        assert_eq!(vrrp[0].vrid, 255);
        assert_eq!(vrrp[0].macs().count(), 1, "IPv6 only: one virtual MAC");
        assert_eq!(parse_pairs("", OWN).unwrap(), (vec![], vec![]));
        assert_eq!(parse_pairs("  ", OWN).unwrap(), (vec![], vec![]));
    }

    #[test]
    fn malformed_entries_are_named() {
        for bad in [
            "02:16:3e:00:07:09",
            "vrrp:7",
            "02:16:3e:00:07:09=192.0.2.9,",
            "02:16:3e:00:07:09=,192.0.2.9",
            "02:16:3e:00:07:09=192.0.2.9,,2001:db8::9",
        ] {
            assert_eq!(err(bad), PolicyError::BadPair(bad.into()), "{bad}");
        }
        for empty in ["02:16:3e:00:07:09=", "vrrp:7="] {
            assert_eq!(err(empty), PolicyError::EmptyEntry(empty.into()));
        }
        let e = err("02:16:3e:00:07=192.0.2.9");
        assert!(matches!(
            inner(e, "02:16:3e:00:07=192.0.2.9"),
            PolicyError::BadMac(_)
        ));
        let e = err("=192.0.2.9");
        assert!(matches!(inner(e, "=192.0.2.9"), PolicyError::BadMac(_)));
        let e = err("02:16:3e:00:07:09=192.0.2.300");
        assert!(matches!(
            inner(e, "02:16:3e:00:07:09=192.0.2.300"),
            PolicyError::BadCidr(_) | PolicyError::BadIpv4(_)
        ));
        let e = err("02:16:3e:00:07:09=192.0.2.9/24");
        assert!(matches!(
            inner(e, "02:16:3e:00:07:09=192.0.2.9/24"),
            PolicyError::HostBitsSet(..)
        ));
        let msg = crate::report::chain(&err("02:16:3e:00:07:09=192.0.2.9/24"));
        assert!(
            msg.contains("02:16:3e:00:07:09=192.0.2.9/24") && msg.contains("192.0.2.0/24"),
            "{msg}"
        );
    }

    #[test]
    fn router_ids_are_1_to_255() {
        for id in ["0", "256", "x", "", "+7", "-1", "07a"] {
            let entry = format!("vrrp:{id}=192.0.2.100");
            assert_eq!(
                inner(err(&entry), &entry),
                PolicyError::BadVrid(id.into()),
                "{entry}"
            );
        }
        assert!(parse_pairs("vrrp:1=192.0.2.1 vrrp:255=192.0.2.2", OWN).is_ok());
        assert!(parse_pairs("vrrp:007=192.0.2.1", OWN).is_ok());
    }

    #[test]
    fn macs_are_unicast_and_unique() {
        for m in [
            "01:00:5e:00:00:01",
            "ff:ff:ff:ff:ff:ff",
            "00:00:00:00:00:00",
        ] {
            let entry = format!("{m}=192.0.2.9");
            assert!(
                matches!(
                    inner(err(&entry), &entry),
                    PolicyError::NonUnicastPairMac(_)
                ),
                "{entry}"
            );
        }
        let own = format!("{OWN}=192.0.2.9");
        assert_eq!(inner(err(&own), &own), PolicyError::PairMacIsOwn(OWN));
        let second = "02:16:3e:00:07:09=192.0.2.10";
        let e = err(&format!("02:16:3e:00:07:09=192.0.2.9 {second}"));
        assert!(matches!(inner(e, second), PolicyError::DuplicateMac(_)));
        // The same router twice, and a pair on a virtual MAC in use.
        let e = err("vrrp:7=192.0.2.1 vrrp:7=2001:db8::1 vrrp:7=192.0.2.2");
        assert!(matches!(
            inner(e, "vrrp:7=192.0.2.2"),
            PolicyError::DuplicateMac(_)
        ));
        let e = err("vrrp:7=192.0.2.1 00:00:5e:00:01:07=192.0.2.2");
        assert!(matches!(
            inner(e, "00:00:5e:00:01:07=192.0.2.2"),
            PolicyError::DuplicateMac(_)
        ));
        // Not in use (no IPv6 virtual address): free for a pair.
        assert!(parse_pairs("vrrp:7=192.0.2.1 00:00:5e:00:02:07=192.0.2.2", OWN).is_ok());
    }

    #[test]
    fn counts_are_bounded() {
        let pairs = |n: usize| {
            (0..n)
                .map(|i| format!("02:00:00:00:00:{:02x}=192.0.2.{}", i + 1, i + 1))
                .collect::<Vec<_>>()
                .join(" ")
        };
        let (p, _) = parse_pairs(&pairs(MAX_PAIRS), OWN).unwrap();
        assert_eq!(p.len(), MAX_PAIRS);
        assert!(matches!(
            err(&pairs(MAX_PAIRS + 1)),
            PolicyError::TooMany { what: "pairs", .. }
        ));
        let vrrp = |n: usize| {
            (1..=n)
                .map(|i| format!("vrrp:{i}=192.0.2.{i}"))
                .collect::<Vec<_>>()
                .join(" ")
        };
        assert!(parse_pairs(&vrrp(MAX_VRRP), OWN).is_ok());
        assert!(matches!(
            err(&vrrp(MAX_VRRP + 1)),
            PolicyError::TooMany {
                what: "VRRP entries",
                ..
            }
        ));
        let addrs = |n: usize| {
            (1..=n)
                .map(|i| format!("2001:db8::{i:x}"))
                .collect::<Vec<_>>()
                .join(",")
        };
        assert!(parse_pairs(&format!("vrrp:1={}", addrs(MAX_ENTRY_ADDRESSES)), OWN).is_ok());
        let entry = format!("vrrp:1={}", addrs(MAX_ENTRY_ADDRESSES + 1));
        assert!(matches!(
            inner(err(&entry), &entry),
            PolicyError::TooMany {
                what: "IPv6 addresses",
                ..
            }
        ));
    }

    #[test]
    fn dhcp_servers_are_host_addresses() {
        assert_eq!(
            parse_dhcp_servers("192.0.2.1 fe80::1, 2001:db8::53 192.0.2.1").unwrap(),
            vec![
                "192.0.2.1".parse::<IpAddr>().unwrap(),
                "fe80::1".parse().unwrap(),
                "2001:db8::53".parse().unwrap(),
            ]
        );
        assert!(parse_dhcp_servers("").unwrap().is_empty());
        for bad in [
            "192.0.2.0/24",
            "192.0.2.1/32",
            "dhcp.example",
            "0.0.0.0",
            "::",
            "255.255.255.255",
            "224.0.0.1",
            "ff02::1:2",
            "192.0.2.300",
        ] {
            assert_eq!(
                parse_dhcp_servers(&format!("192.0.2.1 {bad}")),
                Err(PolicyError::BadServer(bad.into())),
                "{bad}"
            );
        }
        let many: Vec<String> = (1..=MAX_DHCP_SERVERS + 1)
            .map(|i| format!("192.0.2.{i}"))
            .collect();
        assert!(matches!(
            parse_dhcp_servers(&many.join(" ")),
            Err(PolicyError::TooMany {
                what: "DHCP servers",
                ..
            })
        ));
        assert!(parse_dhcp_servers(&many[..MAX_DHCP_SERVERS].join(" ")).is_ok());
    }
}
