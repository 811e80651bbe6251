//! The differential test: random policies and random frames (valid ones of
//! every kind docs/datapath.md looks at, some with trailers or lying IP
//! length fields, then truncated, bit-flipped and stretched) through the
//! real programs with BPF_PROG_TEST_RUN and through the reference model
//! (`filter_user::model`). Every frame on every hook
//! that can carry it must get the model's reason, and exactly the counter
//! of that reason must move (`Kernel::run` checks it).
//!
//! Environment:
//! - `VIFGUARD_DIFF_FRAMES`: frames to run (default 500,000, about 20 s);
//! - `VIFGUARD_DIFF_SEED`: the seed (decimal or 0x-hex); without it the
//!   seed comes from the clock and is printed first, so any run replays.
//!
//! Needs root (loads eBPF programs).

use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use filter_common::{Direction, REASON_COUNT, Reason};
use filter_user::model;
use filter_user::policy::Policy;
use testbed::r#gen::{Gen, hex};
use testbed::kernel::{Hook, Kernel, TEST_IFINDEX, test_run_accepts};

const DEFAULT_FRAMES: u64 = 500_000;
/// Disagreements described in full in the failure message; the rest are
/// only counted.
const REPORTED: usize = 10;

fn env_u64(name: &str) -> Option<u64> {
    let v = std::env::var(name).ok()?;
    let v = v.trim();
    let parsed = match v.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16),
        None => v.parse(),
    };
    Some(parsed.unwrap_or_else(|_| panic!("{name}={v:?} is not a number")))
}

fn clock_seed() -> u64 {
    let t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the clock is after 1970");
    t.as_secs() ^ (u64::from(t.subsec_nanos()) << 20) ^ (u64::from(std::process::id()) << 48)
}

/// One frame on one hook where the kernel and the model part ways (or the
/// kernel's counters are inconsistent): everything needed to replay it.
struct Disagreement {
    index: u64,
    hook: Hook,
    policy: Option<Policy>,
    frame: Vec<u8>,
    kernel: String,
    model: Reason,
}

impl Disagreement {
    fn describe(&self, seed: u64) -> String {
        format!(
            "seed {seed} frame #{} hook {:?}: kernel {} vs model {}\n  policy: {:?}\n  frame ({} bytes): {}",
            self.index,
            self.hook,
            self.kernel,
            self.model.name(),
            self.policy,
            self.frame.len(),
            hex(&self.frame)
        )
    }
}

/// How long one stretch of frames keeps its policy.
fn segment_len(g: &mut Gen, policy: Option<&Policy>) -> u64 {
    use filter_common::Mode;
    match policy.map(|p| p.mode) {
        // Nothing to parse: a short stretch proves the point.
        None | Some(Mode::Unlocked | Mode::Disabled) => g.rng.range(10, 40) as u64,
        Some(Mode::Locked | Mode::Isolated) => g.rng.range(100, 400) as u64,
    }
}

#[test]
fn kernel_and_model_agree_on_random_frames() {
    let seed = env_u64("VIFGUARD_DIFF_SEED").unwrap_or_else(clock_seed);
    let target = env_u64("VIFGUARD_DIFF_FRAMES").unwrap_or(DEFAULT_FRAMES);
    println!("differential: seed {seed} (replay: VIFGUARD_DIFF_SEED={seed}), {target} frames");

    let started = Instant::now();
    let mut kernel = Kernel::load();
    let mut g = Gen::new(seed);
    let mut policy: Option<Policy> = None;
    let mut left = 0;
    let (mut index, mut frames, mut runs, mut policies) = (0u64, 0u64, 0u64, 0u64);
    let mut seen = [[0u64; REASON_COUNT]; 2];
    let mut disagreements: Vec<Disagreement> = Vec::new();
    let mut disagreeing = 0u64;
    let mut pairs: BTreeMap<String, u64> = BTreeMap::new();

    while frames < target {
        if left == 0 {
            // A new policy, or (now and then) none at all.
            let p = g.policy();
            if policy.is_some() && g.rng.percent(5) {
                kernel.remove_policy(TEST_IFINDEX);
                policy = None;
            } else {
                kernel.set_policy(TEST_IFINDEX, &p);
                policy = Some(p);
                policies += 1;
            }
            left = segment_len(&mut g, policy.as_ref());
        }
        let (dir, frame) = g.next_frame();
        index += 1;
        let hooks: Vec<Hook> = Hook::for_direction(dir)
            .iter()
            .copied()
            .filter(|h| test_run_accepts(*h, &frame))
            .collect();
        if hooks.is_empty() {
            continue;
        }
        left -= 1;
        frames += 1;
        let want = model::verdict(policy.as_ref(), dir, &frame);
        seen[dir as usize][want as usize] += 1;
        for hook in hooks {
            runs += 1;
            let got = catch_unwind(AssertUnwindSafe(|| kernel.run(hook, &frame)));
            let kernel_said = match got {
                Ok(o) if o.reason == want => continue,
                Ok(o) => o.reason.name().to_string(),
                Err(e) => {
                    let msg = e
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                        .unwrap_or_default();
                    format!("<harness panic: {msg}>")
                }
            };
            disagreeing += 1;
            *pairs
                .entry(format!(
                    "{hook:?}: kernel {kernel_said} / model {}",
                    want.name()
                ))
                .or_default() += 1;
            if disagreements.len() < REPORTED {
                disagreements.push(Disagreement {
                    index,
                    hook,
                    policy: policy.clone(),
                    frame: frame.clone(),
                    kernel: kernel_said,
                    model: want,
                });
            }
        }
    }

    let elapsed = started.elapsed();
    println!(
        "differential: {frames} frames ({index} generated), {runs} hook runs, {policies} policies, {:.1} s, {disagreeing} disagreements",
        elapsed.as_secs_f64()
    );
    for dir in Direction::ALL {
        for reason in Reason::ALL {
            let n = seen[dir as usize][reason as usize];
            if n > 0 {
                println!("  {:<10} {:<16} {n}", dir.name(), reason.name());
            }
        }
    }
    if !disagreements.is_empty() {
        let kinds: Vec<String> = pairs.iter().map(|(k, n)| format!("  {n} x {k}")).collect();
        let details: Vec<String> = disagreements.iter().map(|d| d.describe(seed)).collect();
        panic!(
            "{disagreeing} disagreements between the kernel and the model (seed {seed}):\n{}\nfirst {}:\n{}",
            kinds.join("\n"),
            details.len(),
            details.join("\n")
        );
    }
    if target >= DEFAULT_FRAMES {
        // The generator must reach every verdict a frame can get in the
        // direction it goes, except `eth_malformed`: BPF_PROG_TEST_RUN
        // refuses frames shorter than an Ethernet header (tests/model.rs
        // covers those); and `flood`, which depends on the frames before
        // it and the clock (tests/sequences.rs compares it).
        let missing: Vec<String> = Direction::ALL
            .into_iter()
            .flat_map(|d| Reason::in_direction(d).iter().map(move |r| (d, *r)))
            .filter(|(_, r)| !matches!(r, Reason::EthMalformed | Reason::Flood))
            .filter(|(d, r)| seen[*d as usize][*r as usize] == 0)
            .map(|(d, r)| format!("{} {}", d.name(), r.name()))
            .collect();
        assert!(
            missing.is_empty(),
            "seed {seed}: the generator never produced {missing:?}"
        );
    }
}
