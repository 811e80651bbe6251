//! The chaos test: `vifguard` started for one of its state-changing
//! commands and killed with SIGKILL, either after a random delay (which
//! point it got past is read from its `VIFGUARD_FAULT=trace` lines) or at
//! a fault-injection point (`VIFGUARD_FAULT=kill:<point>`, every point in
//! turn), while every guest sends spoofed frames every millisecond. After
//! each kill: not one spoofed frame crossed the bridge, and one `vifguard
//! sync` converges the host (see [`check_converged`]).
//!
//! `VIFGUARD_CHAOS_ITERATIONS` (default 300) and `VIFGUARD_CHAOS_SEED`
//! (default: from the clock, printed) replay a run.

use std::io::Read as _;

use filter_user::fault::{ENV, POINTS};
use testbed::r#gen::Rng;

use super::*;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Action {
    Online,
    Offline,
    Attach,
    Sync,
    SetupFilter,
    SetupClear,
    Watch,
    /// The vif vanishes (domain destroyed), then its offline runs.
    Vanish,
    /// A vanished vif comes back (new ifindex), then its online runs.
    Return,
    /// A new vifguard build: its program version is not pinned yet (the
    /// pins of the running one are removed; the hooks keep their
    /// programs), then an online.
    Upgrade,
}

const ACTIONS: &[(Action, usize)] = &[
    (Action::Online, 3),
    (Action::Offline, 2),
    (Action::Attach, 2),
    (Action::Sync, 3),
    (Action::SetupFilter, 2),
    (Action::SetupClear, 1),
    (Action::Watch, 2),
    (Action::Vanish, 1),
    (Action::Return, 2),
    (Action::Upgrade, 1),
];

const GUESTS: u32 = 6;

/// Converge times above this are reported (not failed: the machine is
/// shared).
const SLOW: Duration = Duration::from_millis(100);

struct Stats {
    kill_points: BTreeMap<String, u32>,
    actions: BTreeMap<Action, u32>,
    converge: Vec<Duration>,
    slow: Vec<(u32, Action, Duration)>,
}

#[test]
fn chaos_kills_anywhere_under_spoofed_traffic() {
    let iterations: u32 = std::env::var("VIFGUARD_CHAOS_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    let seed: u64 = std::env::var("VIFGUARD_CHAOS_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        });
    eprintln!("chaos: {iterations} iterations, VIFGUARD_CHAOS_SEED={seed}");
    let mut rng = Rng::new(seed);
    let started = Instant::now();

    let mut h = Host::new("ch");
    let n = GUESTS as usize;
    for d in 1..=GUESTS {
        h.guest(d, 0, true);
    }
    let mut present = vec![true; n];
    let mut variant = vec![0u8; n];
    for g in 0..n {
        let name = h.plug(g);
        let out = h.hotplug("online", g).output().expect("run vifguard");
        assert!(out.status.success(), "{}", stderr(&out));
        h.bridge(&name);
    }
    let expected = |present: &[bool], variant: &[u8]| -> BTreeMap<String, (u32, u32, u8)> {
        (0..n)
            .filter(|g| present[*g])
            .map(|g| (ifname(g as u32 + 1, 0), (g as u32 + 1, 0, variant[g])))
            .collect()
    };
    let bad = check_converged(&h, &expected(&present, &variant), false);
    assert!(bad.is_empty(), "before any kill: {bad:#?}");
    // The control: legitimate frames of every vif reach the receiver, so
    // a spoofed frame that got through would be seen.
    wait_legit(&h, &present);

    // Kill specs for the fault-injection iterations: every point, and the
    // second tc filter (one hook of two attached).
    let mut specs: Vec<String> = POINTS.iter().map(|p| p.to_string()).collect();
    specs.push("filter-set:2".into());
    specs.push("link-pinned:2".into());
    let tcx_ok = match testbed::kernel::tcx_supported() {
        Ok(()) => true,
        Err(why) => {
            eprintln!("chaos: no TCX phase: {why}");
            false
        }
    };
    let mut tcx = false;
    // Estimated run time of each command (ms), for the random delays.
    let mut est: BTreeMap<Action, f64> = BTreeMap::new();
    let mut stats = Stats {
        kill_points: BTreeMap::new(),
        actions: BTreeMap::new(),
        converge: Vec::new(),
        slow: Vec::new(),
    };

    for it in 0..iterations {
        let weights: Vec<usize> = ACTIONS.iter().map(|(_, w)| *w).collect();
        let mut action = ACTIONS[rng.weighted(&weights)].0;
        let g = rng.below(n);
        let name = ifname(g as u32 + 1, 0);
        // What each action needs of its vif.
        action = match action {
            Action::Online | Action::Attach | Action::SetupFilter | Action::Upgrade
                if !present[g] =>
            {
                Action::Return
            }
            Action::Return if present[g] => Action::Online,
            Action::Vanish if !present[g] => Action::Offline,
            a => a,
        };
        // The middle third runs with attach = "tcx" (pinned links).
        let want_tcx = tcx_ok && (iterations / 3..2 * iterations / 3).contains(&it);
        if want_tcx != tcx {
            tcx = want_tcx;
            h.set_attach(if tcx { "tcx" } else { "tc" });
            h.ok(&["sync"]);
        }
        let mut spec = (it % 2 == 0).then(|| specs[(it as usize / 2) % specs.len()].clone());
        // A command that reaches the point: the loader's points only a
        // version not pinned yet, the removal points a detach, the bridge
        // point a setup-vif-rules of a vif off its bridge.
        let detaching = [Action::Offline, Action::Vanish, Action::SetupClear];
        let attaching = [
            Action::Online,
            Action::Attach,
            Action::Sync,
            Action::SetupFilter,
        ];
        let p = spec
            .clone()
            .map(|s| s.split(':').next().unwrap_or(&s).to_string());
        if !present[g] && p.is_some() {
            action = Action::Return;
        } else {
            match p.as_deref() {
                Some("locked" | "programs-loaded" | "programs-pinned") => {
                    action = Action::Upgrade;
                }
                Some("links-removed" | "filters-removed" | "policy-removed" | "maps-removed")
                    if !detaching.contains(&action) =>
                {
                    action = detaching[rng.below(detaching.len())];
                }
                Some("link-pinned") if !tcx => {
                    // Only TCX pins links: kill at the first tc filter.
                    spec = Some("filter-set".into());
                    if !attaching.contains(&action) {
                        action = Action::Attach;
                    }
                }
                Some("link-pinned") => {
                    // A link is pinned only on a vif without one.
                    h.unbridge(&name);
                    h.ok(&["detach", &name]);
                    action = Action::Online;
                }
                Some("bridge-port") => {
                    h.unbridge(&name);
                    action = Action::SetupFilter;
                }
                Some(_) if !attaching.contains(&action) && action != Action::Watch => {
                    action = attaching[rng.below(attaching.len())];
                }
                _ => {}
            }
        }
        *stats.actions.entry(action).or_default() += 1;

        let mut cmd = match action {
            Action::Online | Action::Upgrade => h.hotplug("online", g),
            Action::Return => {
                h.plug(g);
                present[g] = true;
                h.hotplug("online", g)
            }
            Action::Offline => {
                h.unbridge(&name);
                h.hotplug("offline", g)
            }
            Action::Vanish => {
                h.unplug(g);
                present[g] = false;
                h.hotplug("offline", g)
            }
            Action::Attach => h.cmd(&["attach", &name]),
            Action::Sync => h.cmd(&["sync"]),
            Action::SetupFilter | Action::SetupClear => {
                let what = if action == Action::SetupFilter {
                    "filter"
                } else {
                    "clear"
                };
                h.cmd(&[
                    "setup-vif-rules",
                    "classic",
                    &name,
                    &uuid(g as u32 + 1),
                    "0",
                    what,
                ])
            }
            Action::Watch => h.cmd(&["watch"]),
        };
        if action == Action::Upgrade || spec.as_deref() == Some("locked") {
            for v in std::fs::read_dir(h.v().join("progs"))
                .expect("progs")
                .filter_map(Result::ok)
            {
                std::fs::remove_dir_all(v.path()).expect("remove a program version");
            }
        }
        let fault = match &spec {
            Some(s) => format!("kill:{s}"),
            None => "trace".into(),
        };
        cmd.env(ENV, &fault)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped());
        let t0 = Instant::now();
        let mut child = cmd.spawn().expect("spawn vifguard");
        let mut err_pipe = child.stderr.take().expect("stderr");
        let reader = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = err_pipe.read_to_string(&mut s);
            s
        });
        let e = *est.entry(action).or_insert(20.0);
        if action == Action::Watch {
            // A live update while the watch runs: the change it follows.
            std::thread::sleep(Duration::from_micros(rng.below(30_000) as u64));
            let live: Vec<usize> = (0..n).filter(|g| present[*g]).collect();
            if !live.is_empty() {
                let w = live[rng.below(live.len())];
                variant[w] ^= 1;
                h.set_variant(w as u32 + 1, 0, variant[w]);
            }
        }
        // Random iterations: a delay up to 1.5 times the command's usual
        // run time (so most kills land inside it). Fault iterations: until
        // the point kills it, or it ends without reaching it (the watch
        // never ends: half a second).
        let deadline = match &spec {
            None => t0 + Duration::from_micros(rng.below((e * 1500.0) as usize + 1) as u64),
            Some(_) if action == Action::Watch => t0 + Duration::from_millis(500),
            Some(_) => t0 + Duration::from_secs(10),
        };
        let mut killed_by_us = false;
        let status = loop {
            if let Some(st) = child.try_wait().expect("wait") {
                break st;
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                killed_by_us = true;
                break child.wait().expect("wait");
            }
            std::thread::sleep(Duration::from_micros(200));
        };
        let took = t0.elapsed();
        let err = reader.join().expect("stderr reader");
        let last = err
            .lines()
            .filter_map(|l| l.strip_prefix("vifguard-fault: "))
            .next_back()
            .unwrap_or("start");
        use std::os::unix::process::ExitStatusExt as _;
        let point = match (&spec, status.signal(), killed_by_us) {
            (Some(s), Some(9), false) => format!("kill:{s}"),
            (Some(s), _, true) => format!("kill:{s} not reached (killed the running watch)"),
            (Some(s), _, _) => format!("kill:{s} not reached ({action:?} ended)"),
            (None, _, true) => format!("random: after {last}"),
            (None, _, false) => {
                // Finished before the delay: its time improves the estimate.
                *est.entry(action).or_insert(20.0) = e * 0.7 + took.as_secs_f64() * 1000.0 * 0.3;
                "random: completed".into()
            }
        };
        *stats.kill_points.entry(point.clone()).or_default() += 1;
        let finished_ok = status.success();
        // The toolstack: a vif goes on the bridge once vifguard filters it.
        if finished_ok && matches!(action, Action::Online | Action::Attach | Action::Return) {
            h.bridge(&name);
        }

        let spoofed = h.spoofed();
        assert!(
            spoofed.is_empty(),
            "iteration {it} ({action:?} on {name}, {point}): spoofed frames crossed the bridge: {spoofed:?}\n{err}"
        );

        let t = Instant::now();
        let out = h.cmd(&["sync"]).output().expect("run vifguard sync");
        let dt = t.elapsed();
        assert!(
            out.status.success(),
            "iteration {it} ({action:?} on {name}, {point}): sync did not converge: {}",
            stderr(&out)
        );
        stats.converge.push(dt);
        if dt > SLOW {
            stats.slow.push((it, action, dt));
        }
        let bad = check_converged(&h, &expected(&present, &variant), tcx);
        assert!(
            bad.is_empty(),
            "iteration {it} ({action:?} on {name}, {point}), seed {seed}: not converged: {bad:#?}\nits stderr:\n{err}"
        );
        let bridged = h.bridged();
        for (g, p) in present.iter().enumerate() {
            let nm = ifname(g as u32 + 1, 0);
            if *p && !bridged.contains(&nm) {
                h.bridge(&nm);
            }
        }
        if it % 10 == 9 {
            wait_legit(&h, &present);
        }
    }
    wait_legit(&h, &present);
    let spoofed = h.spoofed();
    assert!(spoofed.is_empty(), "spoofed frames crossed: {spoofed:?}");

    let sent: u64 = h
        .guests
        .iter()
        .map(|g| g.sent.load(Ordering::Relaxed))
        .sum();
    let mut sorted = stats.converge.clone();
    sorted.sort();
    let pct = |p: usize| sorted[(sorted.len() - 1) * p / 100];
    eprintln!(
        "chaos: {iterations} iterations in {:.1} s, seed {seed}; {sent} frames sent by {GUESTS} guests (3 of 4 spoofed), 0 spoofed received",
        started.elapsed().as_secs_f64()
    );
    eprintln!("chaos: actions {:?}", stats.actions);
    for (p, c) in &stats.kill_points {
        eprintln!("chaos: {c:4} x {p}");
    }
    eprintln!(
        "chaos: converge (sync) median {:?}, p90 {:?}, max {:?}; above {SLOW:?}: {} {:?}",
        pct(50),
        pct(90),
        pct(100),
        stats.slow.len(),
        stats.slow
    );
}

/// Waits until every present vif's legitimate frames reach the receiver
/// (2 s at most): its policy lets the guest's own traffic through.
fn wait_legit(h: &Host, present: &[bool]) {
    let before: Vec<u64> = (0..present.len())
        .map(|g| h.legit(mac(g as u32 + 1, 0)))
        .collect();
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let missing: Vec<usize> = (0..present.len())
            .filter(|g| present[*g] && h.legit(mac(*g as u32 + 1, 0)) <= before[*g])
            .collect();
        if missing.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "no legitimate frame of guests {missing:?} crossed the bridge"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The chaos test's first finding: a loader killed after loading and
/// pinning the programs under `progs/tmp-<version>-<pid>` but before
/// renaming that directory left it there for good (two loaded programs
/// per kill, never removed by a sync). The next command removes it.
#[test]
fn a_loader_killed_before_renaming_leaves_no_programs_behind() {
    let mut h = Host::new("ct");
    let g = h.guest(90, 0, false);
    h.plug(g);
    let out = h
        .hotplug("online", g)
        .env(ENV, "kill:programs-loaded")
        .output()
        .expect("run vifguard");
    use std::os::unix::process::ExitStatusExt as _;
    assert_eq!(out.status.signal(), Some(9), "{}", stderr(&out));
    let progs = h.v().join("progs");
    let names = || -> Vec<String> {
        std::fs::read_dir(&progs)
            .expect("progs")
            .filter_map(Result::ok)
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect()
    };
    assert!(
        names().iter().any(|n| n.starts_with("tmp-")),
        "{:?}",
        names()
    );
    let out = h.hotplug("online", g).output().expect("run vifguard");
    assert!(out.status.success(), "{}", stderr(&out));
    let left = names();
    assert_eq!(left.len(), 1, "{left:?}");
    assert!(!left[0].starts_with("tmp-"), "{left:?}");
    let expected = BTreeMap::from([(ifname(90, 0), (90, 0, 0))]);
    let bad = check_converged(&h, &expected, false);
    assert!(bad.is_empty(), "{bad:#?}");
}

/// The chaos test's second finding: a vanished vif's offline killed after
/// it removed the policy entry but before the trie entries left those
/// entries for good (`clean_vanished` looked only at policy entries and
/// link pins). A sync now removes them.
#[test]
fn a_detach_killed_after_the_policy_leaves_no_trie_entries() {
    let mut h = Host::new("cd");
    let g = h.guest(91, 0, false);
    h.set_variant(91, 0, 1); // a prefix: trie entries
    h.plug(g);
    let out = h.hotplug("online", g).output().expect("run vifguard");
    assert!(out.status.success(), "{}", stderr(&out));
    h.unplug(g);
    let out = h
        .hotplug("offline", g)
        .env(ENV, "kill:policy-removed")
        .output()
        .expect("run vifguard");
    use std::os::unix::process::ExitStatusExt as _;
    assert_eq!(out.status.signal(), Some(9), "{}", stderr(&out));
    let maps = filter_user::datapath::Maps::open_pinned(&h.v().join("maps")).expect("maps");
    assert!(maps.policies().expect("POLICY").is_empty());
    assert!(!maps.extra_entries().expect("tries").is_empty());
    h.ok(&["sync"]);
    let bad = check_converged(&h, &BTreeMap::new(), false);
    assert!(bad.is_empty(), "{bad:#?}");
}
