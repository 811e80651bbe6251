//! Fault-injection points for the chaos test (`filter-user/tests/chaos.rs`):
//! named places in a command where a crash leaves the most half-done
//! state (a lock held, programs loaded but not pinned, tries written but
//! not the policy, one hook of two attached, ...).
//!
//! Test-only, driven by one environment variable that no host sets:
//!
//! - `VIFGUARD_FAULT=trace`: print `vifguard-fault: <point>` to stderr at
//!   each point (one write each), so a test that kills the process at a
//!   random moment can tell which point it got past last;
//! - `VIFGUARD_FAULT=kill:<point>` (or `kill:<point>:<n>`): the same, and
//!   SIGKILL itself on reaching `<point>` (the `<n>`th time, default 1),
//!   a crash with no unwinding and no destructor, exactly as an outside
//!   SIGKILL.
//!
//! Unset (every host), [`point`] costs one cached environment lookup.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

/// The environment variable.
pub const ENV: &str = "VIFGUARD_FAULT";

/// Every point, in the order a hotplug reaches them: the chaos test kills
/// at each in turn.
pub const POINTS: &[&str] = &[
    "locked",
    "programs-loaded",
    "programs-pinned",
    "tries-written",
    "policy-written",
    "clsact-created",
    "filter-set",
    "link-pinned",
    "hooks-attached",
    "links-removed",
    "filters-removed",
    "policy-removed",
    "maps-removed",
    "bridge-port",
];

struct Plan {
    trace: bool,
    kill: Option<(String, u32)>,
}

fn plan() -> &'static Option<Plan> {
    static PLAN: OnceLock<Option<Plan>> = OnceLock::new();
    PLAN.get_or_init(|| {
        let v = std::env::var(ENV).ok()?;
        let kill = v
            .strip_prefix("kill:")
            .map(|rest| match rest.split_once(':') {
                Some((p, n)) => (p.to_string(), n.parse().unwrap_or(1)),
                None => (rest.to_string(), 1),
            });
        Some(Plan {
            trace: v == "trace" || kill.is_some(),
            kill,
        })
    })
}

/// Marks `name` (one of [`POINTS`]) reached; see the module doc.
pub fn point(name: &'static str) {
    static HITS: AtomicU32 = AtomicU32::new(0);
    let Some(plan) = plan() else { return };
    if plan.trace {
        use std::io::Write as _;
        let _ = std::io::stderr().write_all(format!("vifguard-fault: {name}\n").as_bytes());
    }
    if let Some((target, n)) = &plan.kill
        && target == name
        && HITS.fetch_add(1, Ordering::SeqCst) + 1 == *n
    {
        crate::sys::signal::kill_self();
    }
}
