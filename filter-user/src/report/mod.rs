//! What the commands print: status text and JSON, Prometheus metrics and
//! the HTTP listener that serves them. Pure functions over what the binary
//! reads from the maps and the kernel ([`Snapshot`] and
//! [`status::Status`], see [`crate::lifecycle::snapshot`] and
//! [`crate::lifecycle::status`]): tested without root or kernel state.

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
        }
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
