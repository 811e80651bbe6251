//! What the commands print: status text and JSON, Prometheus metrics and
//! the HTTP listener that serves them. Pure functions over what the binary
//! reads from the maps and the kernel ([`Snapshot`] and
//! [`status::Status`], see [`crate::lifecycle::snapshot`] and
//! [`crate::lifecycle::status`]): tested without root or kernel state.

use std::net::Ipv4Addr;

use filter_common::Counter;

use crate::datapath::Counters;

pub mod http;
pub mod prometheus;
pub mod status;

/// The counters the maps hold, read once per scrape. Hooks and decoded
/// policies are not part of it: listing the hooks dumps the tc filters of
/// every interface, and a policy's trie entries are one per prefix or
/// address beyond the inline ones; only `status` shows them (see
/// [`status::Status`]).
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    /// The interfaces with a policy entry, by ifindex.
    pub vifs: Vec<Vif>,
    /// Every ifindex with `no_policy` drops, by ifindex.
    pub no_policy: Vec<NoPolicy>,
}

/// One interface with a policy entry.
#[derive(Clone, Debug)]
pub struct Vif {
    pub ifindex: u32,
    /// `None` once the interface is gone.
    pub name: Option<String>,
    /// Its row of the counter maps.
    pub slot: u32,
    /// Summed over CPUs.
    pub counters: Counters,
    /// The addresses it learned from DHCP that are in force, the first to
    /// expire first; `None` when option `learn_dhcp` is off (one array
    /// lookup per vif: cheap enough for a scrape).
    pub learned: Option<Vec<Learned>>,
}

/// An address an interface learned from DHCP (docs/policy.md section 8).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Learned {
    pub addr: Ipv4Addr,
    /// When it expires, lease and grace included: CLOCK_MONOTONIC seconds,
    /// as the programs judge it.
    pub expires_s: u32,
    /// Seconds from the reading until then (at least 1: an expired entry
    /// is not in force and not listed).
    pub expires_in_s: u32,
}

/// The entries of a `LEARNED` row (address, expiry) in force at `now`
/// (CLOCK_MONOTONIC seconds), the first to expire first. The programs
/// count an entry expired from its expiry second on, and leave it in the
/// row until its slot is reused: those are not listed.
pub fn in_force(row: &[(Ipv4Addr, u32)], now: u32) -> Vec<Learned> {
    let mut v: Vec<Learned> = row
        .iter()
        .filter(|(_, e)| *e > now)
        .map(|&(addr, expires_s)| Learned {
            addr,
            expires_s,
            expires_in_s: expires_s - now,
        })
        .collect();
    v.sort_by_key(|l| (l.expires_s, l.addr));
    v
}

/// The frames dropped on one ifindex because it had a hook but no policy
/// entry (before its first attach, or after its entry was lost).
#[derive(Clone, Debug)]
pub struct NoPolicy {
    pub ifindex: u32,
    /// `None` once the interface is gone.
    pub name: Option<String>,
    /// [from the guest, to the guest], summed over CPUs.
    pub drops: [Counter; 2],
}

/// The message of `e` and of every error under it, on one line.
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

#[cfg(test)]
pub(crate) mod tests {
    use filter_common::{Direction, Reason, SlotCounters};

    use super::*;

    /// vif5.0 at ifindex 7, slot 1, with 3 spoofed packets (180 bytes) and
    /// 2 passed (1000 bytes).
    pub fn vif() -> Vif {
        let mut counters = Counters::default();
        counters.0[SlotCounters::index(Direction::FromGuest, Reason::Ipv4Spoof)] = Counter {
            packets: 3,
            bytes: 180,
        };
        counters.0[SlotCounters::index(Direction::FromGuest, Reason::Pass)] = Counter {
            packets: 2,
            bytes: 1000,
        };
        Vif {
            ifindex: 7,
            name: Some("vif5.0".into()),
            slot: 1,
            counters,
            learned: None,
        }
    }

    #[test]
    fn learned_entries_in_force_only() {
        let a = |s: &str| s.parse::<Ipv4Addr>().unwrap();
        let row = [
            (a("192.0.2.7"), 1000),
            (a("192.0.2.8"), 100),
            (a("192.0.2.9"), 99),
            (a("192.0.2.6"), 500),
        ];
        let got = in_force(&row, 99);
        assert_eq!(
            got.iter()
                .map(|l| (l.addr.to_string(), l.expires_in_s))
                .collect::<Vec<_>>(),
            [
                ("192.0.2.8".to_string(), 1),
                ("192.0.2.6".to_string(), 401),
                ("192.0.2.7".to_string(), 901),
            ]
        );
        assert!(in_force(&row, 1000).is_empty());
    }

    #[test]
    fn chain_joins_every_cause() {
        #[derive(Debug, thiserror::Error)]
        #[error("outer")]
        struct Outer(#[source] std::io::Error);
        assert_eq!(
            chain(&Outer(std::io::Error::other("inner"))),
            "outer: inner"
        );
    }
}
