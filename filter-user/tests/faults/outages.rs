//! Outages under running commands: xenstored killed and restarted while
//! hotplugs and syncs talk to it, and the bpffs that holds vifguard's pins
//! unmounted underneath a sync. Throughout, every guest sends spoofed
//! frames every millisecond and every vif is a bridge port (also a vif
//! whose command failed: failed closed, it must drop them too).

use std::io::Read as _;
use std::process::Stdio;

use testbed::r#gen::Rng;

use super::*;

const GUESTS: u32 = 6;

/// A command started in the background, its stderr collected.
struct Running {
    what: String,
    child: std::process::Child,
    stderr: JoinHandle<String>,
}

impl Running {
    fn start(what: String, mut cmd: Command) -> Running {
        cmd.stdout(Stdio::null()).stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn vifguard");
        let mut pipe = child.stderr.take().expect("stderr");
        let stderr = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = pipe.read_to_string(&mut s);
            s
        });
        Running {
            what,
            child,
            stderr,
        }
    }

    /// Waits at most `limit`: a command that hangs on a dead connection
    /// is a failure of its own.
    fn finish(mut self, limit: Duration) -> (String, Option<i32>, String) {
        let t = Instant::now();
        let status = loop {
            if let Some(st) = self.child.try_wait().expect("wait") {
                break st;
            }
            assert!(
                t.elapsed() < limit,
                "{}: still running after {limit:?} (hangs on the outage)",
                self.what
            );
            std::thread::sleep(Duration::from_millis(2));
        };
        let err = self.stderr.join().expect("stderr reader");
        (self.what, status.code(), err)
    }
}

/// The policy each vif has now, as `status` reports it: name -> (mode,
/// sorted addresses).
fn policies(h: &Host) -> BTreeMap<String, (String, Vec<String>)> {
    h.status()
        .iter()
        .filter_map(|e| {
            let name = e["name"].as_str()?.to_string();
            let mode = e["mode"].as_str().unwrap_or("?").to_string();
            Some((name, (mode, addresses(e))))
        })
        .collect()
}

/// xenstored killed at a random moment while hotplugs (of a new vif and
/// of vifs that have a policy) and a sync run, and restarted a little
/// later. Each command either completes or exits 1 naming xenstore; none
/// hangs. Before the restart: every vif that had a policy still has it,
/// a new vif has its policy or fails closed (`disabled`), no spoofed frame
/// crossed the bridge. After it: one sync converges the host.
#[test]
fn xenstored_killed_and_restarted_during_hotplugs_and_syncs() {
    let iterations: u32 = std::env::var("VIFGUARD_OUTAGE_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(24);
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64);
    eprintln!("outages: {iterations} xenstored kills, seed {seed}");
    let mut rng = Rng::new(seed);
    let mut h = Host::new("xk");
    let n = GUESTS as usize;
    for d in 1..=GUESTS {
        h.guest(d, 0, true);
    }
    // Guest 0..n-1: online from the start but the last, which is plugged
    // and unplugged in turn (the new vif of each iteration).
    let newcomer = n - 1;
    for g in 0..n {
        let name = h.plug(g);
        if g != newcomer {
            let out = h.hotplug("online", g).output().expect("run vifguard");
            assert!(out.status.success(), "{}", stderr(&out));
            h.bridge(&name);
        }
    }
    let everyone: BTreeMap<String, (u32, u32, u8)> = (0..n)
        .filter(|g| *g != newcomer)
        .map(|g| (ifname(g as u32 + 1, 0), (g as u32 + 1, 0, 0)))
        .collect();
    let bad = check_converged(&h, &everyone, false);
    assert!(bad.is_empty(), "before any kill: {bad:#?}");
    let newcomer_name = ifname(newcomer as u32 + 1, 0);
    let mut outcomes: BTreeMap<String, u32> = BTreeMap::new();

    for it in 0..iterations {
        let before = policies(&h);
        // The toolstack: the newcomer's vif is new (unplugged, plugged).
        h.unbridge(&newcomer_name);
        let out = h
            .hotplug("offline", newcomer)
            .output()
            .expect("run vifguard");
        assert!(out.status.success(), "{}", stderr(&out));
        h.unplug(newcomer);
        h.plug(newcomer);

        let mut running = vec![Running::start(
            format!("online {newcomer_name} (new)"),
            h.hotplug("online", newcomer),
        )];
        let again = rng.below(n - 1);
        running.push(Running::start(
            format!("online {} (re-apply)", ifname(again as u32 + 1, 0)),
            h.hotplug("online", again),
        ));
        running.push(Running::start("sync".into(), h.cmd(&["sync"])));
        std::thread::sleep(Duration::from_micros(rng.below(15_000) as u64));
        h.xs.kill();
        let down = Instant::now();
        for r in running {
            let (what, code, err) = r.finish(Duration::from_secs(20));
            match code {
                Some(0) => *outcomes.entry(format!("{what}: completed")).or_default() += 1,
                Some(1) => {
                    assert!(
                        err.contains("xenstore") || err.contains("xenstored"),
                        "iteration {it}: {what} exit 1 without naming xenstore:\n{err}"
                    );
                    *outcomes.entry(format!("{what}: exit 1")).or_default() += 1;
                }
                other => panic!("iteration {it}: {what} exit {other:?}:\n{err}"),
            }
        }
        // The toolstack bridges the new vif once its online ended, even a
        // failed one (the worst case: it must then drop everything).
        h.bridge(&newcomer_name);
        let after = policies(&h);
        for (name, had) in &before {
            if name == &newcomer_name {
                continue;
            }
            assert_eq!(
                after.get(name),
                Some(had),
                "iteration {it}: {name} lost its policy while xenstored was away"
            );
        }
        match after.get(&newcomer_name).map(|(m, _)| m.as_str()) {
            Some("locked") | Some("disabled") => {}
            other => panic!("iteration {it}: the new vif's policy is {other:?}"),
        }
        // Down at least 100 ms, so the next commands meet it away too.
        std::thread::sleep(Duration::from_millis(100).saturating_sub(down.elapsed()));
        h.xs.restart();
        let spoofed = h.spoofed();
        assert!(
            spoofed.is_empty(),
            "iteration {it}: spoofed frames crossed the bridge: {spoofed:?}"
        );
        h.ok(&["sync"]);
        let mut want = everyone.clone();
        want.insert(newcomer_name.clone(), (newcomer as u32 + 1, 0, 0));
        let bad = check_converged(&h, &want, false);
        assert!(
            bad.is_empty(),
            "iteration {it}, after the restart: {bad:#?}"
        );
    }
    eprintln!("outages: outcomes {outcomes:#?}");
    // The kills must have landed inside commands some of the time, or the
    // test proved nothing about running commands.
    assert!(
        outcomes.keys().any(|k| k.ends_with("exit 1")),
        "no command met the outage: {outcomes:?}"
    );
    assert!(h.spoofed().is_empty());
}

/// A bpffs instance of the test's own (every `mount -t bpf` is a new,
/// empty one), unmounted and removed on drop.
struct PrivateBpffs {
    mount: PathBuf,
}

impl PrivateBpffs {
    fn mount() -> PrivateBpffs {
        let mount = std::env::temp_dir().join(format!(
            "vifguard-bpffs-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&mount).expect("create the mount point");
        let b = PrivateBpffs { mount };
        b.remount();
        b
    }

    /// Mounts a new, empty bpffs instance (after [`PrivateBpffs::unmount`]).
    fn remount(&self) {
        let st = Command::new("mount")
            .args(["-t", "bpf", "bpf"])
            .arg(&self.mount)
            .status()
            .expect("mount");
        assert!(st.success(), "mount -t bpf {}", self.mount.display());
    }

    /// Detaches the mount at once (`umount -l`), as an operator or a unit
    /// that unmounts /sys/fs/bpf under a running vifguard.
    fn unmount(&self) {
        let st = Command::new("umount")
            .arg("-l")
            .arg(&self.mount)
            .status()
            .expect("umount");
        assert!(st.success(), "umount -l {}", self.mount.display());
    }
}

impl Drop for PrivateBpffs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.mount).status();
        let _ = std::fs::remove_dir(&self.mount);
    }
}

/// The pins taken away under a running sync: the bpffs unmounted, or the
/// pinned programs' directory removed (a stray `rm -r`). The sync either
/// completes or exits 1 naming what is wrong; every vif keeps filtering
/// (its hooks hold their programs and maps, whatever happens to the
/// pins), so no spoofed frame crosses the bridge; a command run while the
/// bpffs is gone exits 1 naming the root and changes nothing; once the
/// bpffs is back, one sync converges the host (one set of hooks per vif,
/// on the new programs).
#[test]
fn pins_taken_away_under_a_running_sync() {
    let bpffs = PrivateBpffs::mount();
    let mut h = Host::with_root("pg", bpffs.mount.join("vifguard"));
    let n = GUESTS as usize;
    for d in 1..=GUESTS {
        h.guest(d, 0, true);
    }
    for g in 0..n {
        let name = h.plug(g);
        let out = h.hotplug("online", g).output().expect("run vifguard");
        assert!(out.status.success(), "{}", stderr(&out));
        h.bridge(&name);
    }
    let all: BTreeMap<String, (u32, u32, u8)> = (0..n)
        .map(|g| (ifname(g as u32 + 1, 0), (g as u32 + 1, 0, 0)))
        .collect();
    let bad = check_converged(&h, &all, false);
    assert!(bad.is_empty(), "before: {bad:#?}");
    let mut rng = Rng::new(0x5eed);
    let mut outcomes: BTreeMap<String, u32> = BTreeMap::new();

    for it in 0..8 {
        let unmount = it % 2 == 0;
        // A live change, so the sync has work to do on every vif.
        for g in 0..n {
            h.set_variant(g as u32 + 1, 0, (it % 2) as u8);
        }
        let sync = Running::start("sync".into(), h.cmd(&["sync"]));
        std::thread::sleep(Duration::from_micros(rng.below(20_000) as u64));
        if unmount {
            bpffs.unmount();
        } else {
            let _ = std::fs::remove_dir_all(h.v().join("progs"));
        }
        let (_, code, err) = sync.finish(Duration::from_secs(20));
        let what = if unmount {
            "unmounted"
        } else {
            "progs removed"
        };
        match code {
            Some(0) => *outcomes.entry(format!("{what}: completed")).or_default() += 1,
            Some(1) => {
                assert!(!err.trim().is_empty(), "iteration {it}: exit 1, silent");
                *outcomes.entry(format!("{what}: exit 1")).or_default() += 1;
            }
            other => panic!("iteration {it} ({what}): sync exit {other:?}:\n{err}"),
        }
        if unmount {
            // Nothing below the root now: a command refuses, naming it.
            let out = h.hotplug("online", 0).output().expect("run vifguard");
            let err = stderr(&out);
            assert_eq!(out.status.code(), Some(1), "iteration {it}: {err}");
            assert!(
                err.contains(&h.root.display().to_string()) && err.contains("bpf"),
                "iteration {it}: {err}"
            );
            std::thread::sleep(Duration::from_millis(50));
            bpffs.remount();
        }
        let spoofed = h.spoofed();
        assert!(
            spoofed.is_empty(),
            "iteration {it} ({what}): spoofed frames crossed the bridge: {spoofed:?}\n{err}"
        );
        h.ok(&["sync"]);
        let want: BTreeMap<String, (u32, u32, u8)> = all
            .iter()
            .map(|(k, (d, i, _))| (k.clone(), (*d, *i, (it % 2) as u8)))
            .collect();
        let bad = check_converged(&h, &want, false);
        assert!(
            bad.is_empty(),
            "iteration {it} ({what}), after a sync: {bad:#?}"
        );
    }
    eprintln!("pins taken away: {outcomes:#?}");
    // Every guest's legitimate frames still cross: the hosts filter, not
    // cut off.
    std::thread::sleep(Duration::from_millis(100));
    for g in &h.guests {
        assert!(
            h.legit(mac(g.domid, g.devid)) > 0,
            "vif{}.0 cut off",
            g.domid
        );
    }
}

/// A host at `max_interfaces`: the next vif's hotplug exits 1 naming the
/// limit and the setting to raise, the vif is fail-closed (its frames,
/// spoofed or not, go nowhere), the vifs already there keep their
/// policies and traffic; once one leaves, the waiting vif's next online
/// succeeds.
#[test]
fn a_full_host_fails_the_next_vif_closed() {
    let mut h = Host::new("fu");
    // Slot 0 is the no-policy slot: room for two vifs.
    std::fs::write(&h.config, "max_interfaces = 3\n").expect("write config");
    for d in 1..=3 {
        h.guest(d, 0, true);
    }
    for g in 0..2 {
        let name = h.plug(g);
        let out = h.hotplug("online", g).output().expect("run vifguard");
        assert!(out.status.success(), "{}", stderr(&out));
        h.bridge(&name);
    }
    let third = h.plug(2);
    let out = h.hotplug("online", 2).output().expect("run vifguard");
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&third) && err.contains("max_interfaces") && err.contains("2 interface slots"),
        "{err}"
    );
    // The toolstack bridges it anyway (worst case): it must drop.
    h.bridge(&third);
    let two: BTreeMap<String, (u32, u32, u8)> =
        (1..=2).map(|d| (ifname(d, 0), (d, 0, 0))).collect();
    let hooks = filters(&h);
    let ix = {
        let _in = h.dom0.enter();
        let c = std::ffi::CString::new(third.as_str()).expect("name");
        // SAFETY: a valid NUL-terminated name.
        u64::from(unsafe { libc::if_nametoindex(c.as_ptr()) })
    };
    let mut third_hooks = hooks.get(&ix).cloned().unwrap_or_default();
    third_hooks.sort_unstable();
    assert_eq!(
        third_hooks,
        ["tc-egress", "tc-ingress"],
        "the vif that found no room is not hooked"
    );
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(h.legit(mac(3, 0)), 0, "the fail-closed vif forwarded");
    for d in 1..=2 {
        assert!(h.legit(mac(d, 0)) > 0, "vif{d}.0 cut off");
    }
    assert!(h.spoofed().is_empty(), "{:?}", h.spoofed());
    let st = policies(&h);
    for name in two.keys() {
        assert_eq!(st[name].0, "locked", "{name}: {st:?}");
    }

    // One guest leaves: the waiting vif gets its slot.
    h.unbridge(&ifname(1, 0));
    let out = h.hotplug("offline", 0).output().expect("run vifguard");
    assert!(out.status.success(), "{}", stderr(&out));
    h.unplug(0);
    let out = h.hotplug("online", 2).output().expect("run vifguard");
    assert!(out.status.success(), "{}", stderr(&out));
    let want: BTreeMap<String, (u32, u32, u8)> =
        [2, 3].iter().map(|d| (ifname(*d, 0), (*d, 0, 0))).collect();
    let bad = check_converged(&h, &want, false);
    assert!(bad.is_empty(), "{bad:#?}");
    let before = h.legit(mac(3, 0));
    std::thread::sleep(Duration::from_millis(200));
    assert!(h.legit(mac(3, 0)) > before, "vif3.0 still cut off");
    assert!(h.spoofed().is_empty(), "{:?}", h.spoofed());
}
