//! What the commands print: status text and JSON, Prometheus metrics and
//! the HTTP listener that serves them. Pure functions over a snapshot of
//! the maps ([`Vif`]), which the binary reads (see
//! [`crate::lifecycle::snapshot`]): tested without root or kernel state.

use filter_common::{Counter, IfacePolicy};

use crate::datapath::Counters;

pub mod http;
pub mod prometheus;
pub mod status;

/// One interface with a policy entry, as read from the maps. Its hooks
/// are not part of it: listing them dumps the tc filters of every
/// interface, which only `status` shows (see [`status::Status`]).
#[derive(Clone, Debug)]
pub struct Vif {
    pub ifindex: u32,
    /// `None` once the interface is gone.
    pub name: Option<String>,
    pub policy: IfacePolicy,
    /// Summed over CPUs.
    pub counters: Counters,
    /// `no_policy` drops counted on this ifindex, [from the guest, to the
    /// guest].
    pub no_policy: [Counter; 2],
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
    use crate::datapath::encode::encode;
    use crate::policy::{MacAddr, Policy};

    /// vif5.0 at ifindex 7, locked to 198.51.100.6, with 3 spoofed packets
    /// (180 bytes) and 2 passed (1000 bytes).
    pub fn vif() -> Vif {
        let mut p = Policy::locked(MacAddr([0x00, 0x16, 0x3e, 0x05, 0x00, 0x00]));
        p.ipv4 = vec!["198.51.100.6".parse().unwrap()];
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
            policy: encode(&p, 7, 1, 20).policy,
            counters,
            no_policy: [Counter::default(); 2],
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
