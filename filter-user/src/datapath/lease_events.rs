//! Lease events for `vifguard events`: what the programs learned from DHCP
//! (POLICY section 8), as the changes between two reads of `LEARNED`.
//!
//! The programs write `LEARNED` on the fast path and judge expiry by the
//! clock at each lookup, so an address expires without any frame: nothing
//! in the datapath could send that event. `vifguard events` reads the
//! learned addresses of every vif with `learn_dhcp` every 200 ms instead
//! (one batch read of `POLICY` and one lookup per such vif), so a lease
//! event is at most 0.2 s late and costs the fast path nothing; an address
//! learned and removed within one read (0.2 s) is not reported.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use super::{DatapathError, Maps};

/// What happened to one learned address since the last read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeaseChange {
    /// Newly learned (a DHCPACK to the guest).
    Learned,
    /// Learned again with another expiry (a renewal).
    Renewed,
    /// Its lease (and grace) ran out.
    Expired,
    /// Gone before its expiry: a DHCPNAK to the guest, a DHCPRELEASE or
    /// DHCPDECLINE from it, or its vif went offline.
    Removed,
}

impl LeaseChange {
    pub const fn name(self) -> &'static str {
        match self {
            LeaseChange::Learned => "learned",
            LeaseChange::Renewed => "renewed",
            LeaseChange::Expired => "expired",
            LeaseChange::Removed => "removed",
        }
    }
}

/// One change, with the expiry (CLOCK_MONOTONIC seconds) the address has
/// (learned, renewed) or had (expired, removed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LeaseEvent {
    pub ifindex: u32,
    pub addr: Ipv4Addr,
    pub change: LeaseChange,
    pub expires_s: u32,
}

/// The learned addresses in force at the last read.
pub struct LeaseWatch {
    in_force: BTreeMap<(u32, Ipv4Addr), u32>,
}

/// Every learned entry of every vif with `learn_dhcp`, as (ifindex,
/// address, expiry), expired ones included.
pub fn learned_entries(maps: &Maps) -> Result<Vec<(u32, Ipv4Addr, u32)>, DatapathError> {
    let mut out = Vec::new();
    for (ix, p) in maps.policies()? {
        if let Some(learned) = maps.learned_of(&p)? {
            out.extend(learned.into_iter().map(|(a, e)| (ix, a, e)));
        }
    }
    Ok(out)
}

impl LeaseWatch {
    /// Starts from `entries` at `now_s` without reporting them: the
    /// stream tells changes (`vifguard status` tells what is in force).
    pub fn new(entries: &[(u32, Ipv4Addr, u32)], now_s: u32) -> LeaseWatch {
        LeaseWatch {
            in_force: in_force(entries, now_s),
        }
    }

    /// The changes from the last read to `entries`, read at `now_s`. An
    /// address is in force while its expiry is later than now, as the
    /// programs judge it.
    pub fn update(&mut self, entries: &[(u32, Ipv4Addr, u32)], now_s: u32) -> Vec<LeaseEvent> {
        let now = in_force(entries, now_s);
        let mut events = Vec::new();
        for (&(ifindex, addr), &expires_s) in &now {
            let change = match self.in_force.get(&(ifindex, addr)) {
                None => LeaseChange::Learned,
                Some(before) if *before != expires_s => LeaseChange::Renewed,
                Some(_) => continue,
            };
            events.push(LeaseEvent {
                ifindex,
                addr,
                change,
                expires_s,
            });
        }
        for (&(ifindex, addr), &expires_s) in &self.in_force {
            if now.contains_key(&(ifindex, addr)) {
                continue;
            }
            // Still there but out of time, or gone after its time: it
            // expired; gone before: something removed it.
            let change = if expires_s <= now_s {
                LeaseChange::Expired
            } else {
                LeaseChange::Removed
            };
            events.push(LeaseEvent {
                ifindex,
                addr,
                change,
                expires_s,
            });
        }
        self.in_force = now;
        events
    }
}

fn in_force(entries: &[(u32, Ipv4Addr, u32)], now_s: u32) -> BTreeMap<(u32, Ipv4Addr), u32> {
    entries
        .iter()
        .filter(|(_, _, e)| *e > now_s)
        .map(|(ix, a, e)| ((*ix, *a), *e))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 10);
    const B: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 11);

    fn changes(
        w: &mut LeaseWatch,
        e: &[(u32, Ipv4Addr, u32)],
        now: u32,
    ) -> Vec<(u32, Ipv4Addr, &'static str)> {
        w.update(e, now)
            .into_iter()
            .map(|e| (e.ifindex, e.addr, e.change.name()))
            .collect()
    }

    #[test]
    fn a_lease_is_learned_renewed_and_expires() {
        let mut w = LeaseWatch::new(&[], 100);
        assert_eq!(changes(&mut w, &[(7, A, 160)], 101), [(7, A, "learned")]);
        assert_eq!(changes(&mut w, &[(7, A, 160)], 102), []);
        assert_eq!(changes(&mut w, &[(7, A, 220)], 130), [(7, A, "renewed")]);
        // The entry stays in the map after its time: expired, once.
        assert_eq!(changes(&mut w, &[(7, A, 220)], 220), [(7, A, "expired")]);
        assert_eq!(changes(&mut w, &[(7, A, 220)], 221), []);
    }

    #[test]
    fn a_released_lease_is_removed_and_others_are_untouched() {
        let mut w = LeaseWatch::new(&[(7, A, 300), (8, B, 300)], 100);
        assert_eq!(changes(&mut w, &[(8, B, 300)], 101), [(7, A, "removed")]);
        // Gone after its time (its slot reused): expired, not removed.
        assert_eq!(changes(&mut w, &[], 300), [(8, B, "expired")]);
    }

    #[test]
    fn what_is_in_force_at_the_start_is_not_reported() {
        let mut w = LeaseWatch::new(&[(7, A, 300), (7, B, 50)], 100);
        assert_eq!(changes(&mut w, &[(7, A, 300), (7, B, 50)], 101), []);
    }
}
