//! The measurements and what is computed from them: medians, ranges and
//! per-round ratios.

use std::time::Duration;

use crate::host::Setup;
use crate::vifguard::Attach;

/// One host's measurement in one round.
#[derive(Clone, Copy)]
pub struct Sample {
    pub pps: f64,
    pub cpu_ns: f64,
    /// CPU time of the sender over wall time: how much of its core it got.
    pub share: f64,
    pub sent: u64,
    pub fwd: u64,
}

pub fn median(v: &[f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let m = s.len() / 2;
    if s.len() % 2 == 1 {
        s[m]
    } else {
        (s[m - 1] + s[m]) / 2.0
    }
}

pub fn min_max(v: &[f64]) -> (f64, f64) {
    v.iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), x| {
            (lo.min(*x), hi.max(*x))
        })
}

pub fn ms(d: &[Duration]) -> Vec<f64> {
    d.iter().map(|d| d.as_secs_f64() * 1000.0).collect()
}

/// Results for one N.
pub struct NResult {
    pub n: usize,
    pub sender: u32,
    /// Per setup ([`Setup::index`]), per round.
    pub samples: [Vec<Sample>; Setup::COUNT],
    pub rules: [String; Setup::COUNT],
    /// `hotplug online` with the default attach = "tc".
    pub apply_vifguard: Vec<Duration>,
    /// `hotplug online` again while the vif is attached (policy rewrite and
    /// filter replace, nothing created).
    pub reapply_vifguard: Vec<Duration>,
    /// `hotplug online` with attach = "tcx" (two TCX links created), on
    /// the host whose N vifs vifguard attached with TCX.
    pub apply_tcx: Vec<Duration>,
    /// `nft add element` of the vif's three elements (bridge-set setup).
    pub apply_nft_set: Vec<Duration>,
    pub offline_nft_set: Vec<Duration>,
    /// `nft -f` of the vif's two chains (netdev setup).
    pub apply_nft_netdev: Vec<Duration>,
    pub offline_nft_netdev: Vec<Duration>,
    pub apply_legacy: Vec<Duration>,
    pub offline_vifguard: Vec<Duration>,
    pub offline_legacy: Vec<Duration>,
    /// `true` started the same way: process start-up, part of every
    /// column.
    pub spawn: Vec<Duration>,
}

impl NResult {
    pub fn pps(&self, s: Setup) -> Vec<f64> {
        self.samples[s.index()].iter().map(|x| x.pps).collect()
    }

    pub fn cpu(&self, s: Setup) -> Vec<f64> {
        self.samples[s.index()].iter().map(|x| x.cpu_ns).collect()
    }

    /// Median over rounds of the CPU time per packet of `s` above `base`
    /// within the round.
    pub fn cpu_above(&self, s: Setup, base: Setup) -> f64 {
        let d: Vec<f64> = self.samples[s.index()]
            .iter()
            .zip(&self.samples[base.index()])
            .map(|(a, b)| a.cpu_ns - b.cpu_ns)
            .collect();
        median(&d)
    }

    /// Median over rounds of the rate ratio `s` / `base` within the round.
    pub fn ratio(&self, s: Setup, base: Setup) -> f64 {
        let r: Vec<f64> = self.samples[s.index()]
            .iter()
            .zip(&self.samples[base.index()])
            .map(|(a, b)| a.pps / b.pps)
            .collect();
        median(&r)
    }

    pub fn loss(&self, s: Setup) -> f64 {
        let (sent, fwd) = self.samples[s.index()]
            .iter()
            .fold((0u64, 0u64), |(a, b), x| (a + x.sent, b + x.fwd));
        if sent == 0 {
            0.0
        } else {
            1.0 - fwd as f64 / sent as f64
        }
    }
}

/// `vifguard sync` of many vifs, one way of attaching.
pub struct SyncRun {
    pub attach: Attach,
    /// Policies with a /24 prefix each (trie entries) instead of one address.
    pub prefixes: bool,
    /// From nothing attached and nothing pinned, as after a reboot.
    pub cold: Vec<Duration>,
    /// Everything attached already.
    pub warm: Vec<Duration>,
}

/// The sync timings of one run.
pub struct SyncResult {
    pub count: usize,
    pub runs: Vec<SyncRun>,
}
