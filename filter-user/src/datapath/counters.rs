//! Counters read back from the per-CPU maps, summed over CPUs.

use filter_common::{Counter, Direction, REASON_COUNT, Reason, SlotCounters};

/// One interface's counters, summed over CPUs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Counters(pub [Counter; 2 * REASON_COUNT]);

impl Default for Counters {
    fn default() -> Self {
        Counters([Counter::default(); 2 * REASON_COUNT])
    }
}

impl Counters {
    pub fn get(&self, dir: Direction, reason: Reason) -> Counter {
        self.0[SlotCounters::index(dir, reason)]
    }

    /// Non-zero counters, in reason order.
    pub fn nonzero(&self) -> impl Iterator<Item = (Direction, Reason, Counter)> + '_ {
        Direction::ALL.into_iter().flat_map(move |d| {
            Reason::ALL
                .into_iter()
                .map(move |r| (d, r, self.get(d, r)))
                .filter(|(_, _, c)| c.packets > 0)
        })
    }
}
