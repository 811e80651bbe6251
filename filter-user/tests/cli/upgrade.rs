//! Upgrades and attach methods: programs swapped without an unfiltered
//! moment, tc and TCX.

use super::*;

#[test]
fn upgrade_replaces_tc_filter_programs_without_unfiltered_moment() {
    upgrade_without_unfiltered_moment("tc");
}

#[test]
fn upgrade_replaces_tcx_link_programs_without_unfiltered_moment() {
    if !tcx_here() {
        return;
    }
    upgrade_without_unfiltered_moment("tcx");
}

/// The program each hook with a vifguard program runs: `<ifindex>-<hook>`
/// and program id, from the kernel (bpftool).
fn hook_programs(h: &Host) -> Vec<(String, u64)> {
    let mut v = h.filters();
    for l in h.links() {
        let pin = h.v().join("links").join(&l);
        let id = bpftool_json(&["link", "show", "pinned", &pin.to_string_lossy()])["prog_id"]
            .as_u64()
            .expect("link prog_id");
        v.push((l, id));
    }
    v.sort();
    v
}

fn upgrade_without_unfiltered_moment(method: &str) {
    use aya::programs::SchedClassifier;
    use filter_common::program_names::{TC_FROM_GUEST, TC_TO_GUEST};

    let mut h = Host::new();
    h.set_attach(method);
    let a = h.vif(40, 0);
    let b = h.vif(41, 0);
    for v in [&a, &b] {
        let out = h.hotplug("online", v);
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let cur = prog_versions(&h);
    assert_eq!(cur.len(), 1, "{cur:?}");
    let cur_dir = h.v().join("progs").join(&cur[0]);

    // An "older version": the object loaded again (its own program ids,
    // same pinned maps), pinned under another version name, and every
    // hook re-pointed at it, as an older vifguard would have left it.
    let old_dir = h.v().join("progs/0000000000000000-old");
    {
        let mut ebpf = filter_user::datapath::load(1024, Some(&h.v().join("maps")))
            .expect("load the object again");
        std::fs::create_dir(&old_dir).expect("old version dir");
        for name in [TC_FROM_GUEST, TC_TO_GUEST] {
            filter_user::datapath::tc_program(&mut ebpf, name)
                .expect("program")
                .pin(old_dir.join(name))
                .expect("pin old program");
        }
    }
    let prog_id = |dir: &PathBuf, name: &str| {
        bpftool_json(&["prog", "show", "pinned", &dir.join(name).to_string_lossy()])["id"]
            .as_u64()
            .expect("prog id")
    };
    let hook_prog = |hook: &str| {
        if hook.ends_with("ingress") {
            (TC_FROM_GUEST, Direction::FromGuest)
        } else {
            (TC_TO_GUEST, Direction::ToGuest)
        }
    };
    let hooks = h.attached();
    assert_eq!(hooks.len(), 4, "{hooks:?}");
    for l in &hooks {
        let (ix, hook) = l.split_once('-').expect("hook name");
        let (name, dir) = hook_prog(hook);
        let mut old = SchedClassifier::from_pin(old_dir.join(name)).expect("old prog");
        if method == "tcx" {
            filter_user::lifecycle::replace(&mut old, &h.v().join("links").join(l))
                .expect("re-point link at the old program");
        } else {
            let _in = h.dom0.enter();
            let mut rtnl = filter_user::hooks::tc::Rtnl::open().expect("rtnetlink");
            let fd = old.fd().expect("fd");
            rtnl.set_filter(
                ix.parse().expect("ifindex"),
                dir,
                1,
                std::os::fd::AsFd::as_fd(fd),
                name,
            )
            .expect("re-point filter at the old program");
        }
    }
    for (l, id) in hook_programs(&h) {
        let name = hook_prog(l.split_once('-').expect("hook").1).0;
        assert_eq!(id, prog_id(&old_dir, name), "{l}");
        assert_ne!(id, prog_id(&cur_dir, name), "{l}");
    }

    // Spoofed frames from a's guest the whole time sync runs: every one
    // must be counted as dropped (a frame no program saw is not counted).
    let tx = RawSocket::open(&h.guests[0], "eth0");
    let frame = spoof_frame(40, 0);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flood = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut sent = 0u64;
            while !stop.load(Ordering::SeqCst) {
                tx.send(&frame);
                sent += 1;
                std::thread::sleep(Duration::from_millis(1));
            }
            for _ in 0..5 {
                tx.send(&frame);
                sent += 1;
            }
            sent
        })
    };
    std::thread::sleep(Duration::from_millis(50));
    h.ok(&["sync"], &[]);
    stop.store(true, Ordering::SeqCst);
    let sent = flood.join().expect("flood thread");
    std::thread::sleep(Duration::from_millis(200));

    let now = hook_programs(&h);
    assert_eq!(now.len(), 4, "{now:?}");
    for (l, id) in now {
        let name = hook_prog(l.split_once('-').expect("hook").1).0;
        assert_eq!(id, prog_id(&cur_dir, name), "{l}");
    }
    assert!(!old_dir.exists(), "old version not removed");
    assert_eq!(prog_versions(&h), cur);
    let e = h.entry(&a).expect("a");
    assert_eq!(
        counter(&e, Direction::FromGuest, Reason::Ipv4Spoof),
        sent,
        "{e}"
    );
    assert_eq!(h.entry(&b).expect("b")["mode"], "locked");
    h.spoof_from(1, 41, 0);
    let e = h.entry(&b).expect("b");
    assert_eq!(
        counter(&e, Direction::FromGuest, Reason::Ipv4Spoof),
        1,
        "{e}"
    );

    for v in [&a, &b] {
        assert!(h.hotplug("offline", v).status.success());
    }
    assert!(h.attached().is_empty());
}

#[test]
fn upgrade_across_a_map_layout_change_takes_over_tc_filters() {
    upgrade_across_abi("tc");
}

#[test]
fn upgrade_across_a_map_layout_change_takes_over_tcx_links() {
    if !tcx_here() {
        return;
    }
    upgrade_across_abi("tcx");
}

/// A host left by a vifguard of the previous map layout (`v<N-1>`, whose
/// COUNTERS value is 768 bytes): the new binary is not refused by those
/// pins, a detach before any sync still removes a vif's hooks, and sync
/// re-points every hook at this layout's programs, one program per hook,
/// and removes the older directory.
fn upgrade_across_abi(method: &str) {
    use filter_common::ABI_VERSION;

    let mut h = Host::new();
    h.set_attach(method);
    let a = h.vif(43, 0);
    let b = h.vif(44, 0);
    for v in [&a, &b] {
        let out = h.hotplug("online", v);
        assert!(out.status.success(), "{}", stderr(&out));
    }
    // What the previous layout left: the same pins under v<N-1>, with a
    // COUNTERS map of the old value size.
    let old = h.root.join(format!("v{}", ABI_VERSION - 1));
    std::fs::rename(h.v(), &old).expect("rename the layout directory");
    let mut old_ids = Vec::new();
    for version in std::fs::read_dir(old.join("progs")).expect("older programs") {
        for prog in std::fs::read_dir(version.expect("entry").path()).expect("a version") {
            let pin = prog.expect("entry").path();
            let id = bpftool_json(&["prog", "show", "pinned", &pin.to_string_lossy()])["id"]
                .as_u64()
                .expect("prog id");
            old_ids.push(id);
        }
    }
    assert_eq!(old_ids.len(), 2, "{old_ids:?}");
    let counters = old.join("maps/COUNTERS");
    std::fs::remove_file(&counters).expect("unpin COUNTERS");
    let out = Command::new("bpftool")
        .args(["map", "create", &counters.to_string_lossy()])
        .args([
            "type",
            "percpu_array",
            "key",
            "4",
            "value",
            "768",
            "entries",
            "1025",
            "name",
            "COUNTERS",
        ])
        .output()
        .expect("bpftool");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        vifguard_tc_filters(&h.dom0).expect("bpftool net").len(),
        if method == "tc" { 4 } else { 0 },
        "the older layout's hooks are still attached"
    );

    // Offline before any sync: b's hooks go, whatever layout made them.
    let out = h.hotplug("offline", &b);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        !old.exists(),
        "the older layout directory was not taken over"
    );
    let b_ix = h.dom0.ifindex(&b).to_string();
    assert!(
        !h.attached()
            .iter()
            .any(|x| x.starts_with(&format!("{b_ix}-"))),
        "{:?}",
        h.attached()
    );

    h.ok(&["sync"], &[]);
    let cur = prog_versions(&h);
    assert_eq!(cur.len(), 1, "{cur:?}");
    let cur_dir = h.v().join("progs").join(&cur[0]);
    let hooks = hook_programs(&h);
    // sync attached b again (its interface is there): two hooks each.
    assert_eq!(hooks.len(), 4, "one program per hook: {hooks:?}");
    for (l, id) in hooks {
        let name = if l.ends_with("ingress") {
            filter_common::program_names::TC_FROM_GUEST
        } else {
            filter_common::program_names::TC_TO_GUEST
        };
        let want = bpftool_json(&[
            "prog",
            "show",
            "pinned",
            &cur_dir.join(name).to_string_lossy(),
        ])["id"]
            .as_u64()
            .expect("prog id");
        assert_eq!(id, want, "{l} runs this layout's program");
    }
    // Nothing runs the older layout's programs any more (a link of it
    // left beside the adopted one would).
    let links = bpftool_json(&["link", "show"]);
    let stale: Vec<&serde_json::Value> = links
        .as_array()
        .expect("links")
        .iter()
        .filter(|l| {
            l["prog_id"]
                .as_u64()
                .is_some_and(|id| old_ids.contains(&id))
        })
        .collect();
    assert!(stale.is_empty(), "{stale:?}");
    h.spoof_from(0, 43, 0);
    let e = h.entry(&a).expect("a in status");
    assert_eq!(
        counter(&e, Direction::FromGuest, Reason::Ipv4Spoof),
        1,
        "counted in this layout's maps: {e}"
    );
    for v in [&a, &b] {
        assert!(h.hotplug("offline", v).status.success());
    }
    assert!(h.attached().is_empty(), "{:?}", h.attached());
}

/// `offline` then `online` of the same interface back to back, as a vif
/// re-plug does, with TCX links (the kernel-level race this once hit is
/// reproduced in tests/tcx_links.rs).
#[test]
fn tcx_offline_then_online_at_once() {
    if !tcx_here() {
        return;
    }
    let mut h = Host::new();
    h.set_attach("tcx");
    let vif = h.vif(42, 0);
    let out = h.hotplug("online", &vif);
    assert!(out.status.success(), "{}", stderr(&out));
    for round in 0..10 {
        let out = h.hotplug("offline", &vif);
        assert!(out.status.success(), "round {round}: {}", stderr(&out));
        let out = h.hotplug("online", &vif);
        assert!(out.status.success(), "round {round}: {}", stderr(&out));
    }
    assert_eq!(h.attached().len(), 2, "{:?}", h.attached());
    let out = h.hotplug("offline", &vif);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(h.attached().is_empty(), "{:?}", h.attached());
}

/// Changing `attach` takes effect at the next attach: the new way is in
/// place and the old one gone, one program per hook.
#[test]
fn switching_the_attach_method() {
    if !tcx_here() {
        return;
    }
    let mut h = Host::new();
    let vif = h.vif(43, 0);
    let ix = h.dom0.ifindex(&vif);
    let both = vec![format!("{ix}-tc-egress"), format!("{ix}-tc-ingress")];
    assert!(h.hotplug("online", &vif).status.success());
    assert!(h.links().is_empty());
    assert_eq!(h.attached(), both);
    h.set_attach("tcx");
    let out = h.hotplug("online", &vif);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(h.filters().is_empty(), "{:?}", h.filters());
    assert_eq!(h.links(), both);
    let e = h.entry(&vif).expect("entry");
    assert_eq!(
        e["attach"],
        serde_json::json!(["tc-ingress:tcx", "tc-egress:tcx"])
    );
    h.set_attach("tc");
    h.ok(&["sync"], &[]);
    assert!(h.links().is_empty());
    assert_eq!(h.attached(), both);
    h.spoof_from(0, 43, 0);
    let e = h.entry(&vif).expect("entry");
    assert_eq!(
        e["attach"],
        serde_json::json!(["tc-ingress:tc", "tc-egress:tc"])
    );
    assert_eq!(
        counter(&e, Direction::FromGuest, Reason::Ipv4Spoof),
        1,
        "{e}"
    );
    assert!(h.hotplug("offline", &vif).status.success());
    assert!(h.attached().is_empty());
}

/// The previous release (`cargo xtask test` builds it from git and passes
/// its binary as `VIFGUARD_PREVIOUS_BIN`; xtask/src/previous.rs) filters
/// two vifs; one guest sends spoofed frames as fast as it can while the
/// current binary's sync takes the host over (older map layout, other
/// programs, other counters). Every frame the guest sent is accounted
/// for: counted as `ipv4_spoof` by the old programs (their COUNTERS map,
/// held open across the takeover) or by the new ones, or dropped by the
/// veth before any hook (its `tx_dropped`). None went unseen, and both
/// versions saw some (the switch happened under traffic).
#[test]
fn upgrade_from_the_previous_release_at_full_rate() {
    use aya::maps::{MapData, PerCpuArray};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicU64};

    let previous = std::env::var("VIFGUARD_PREVIOUS_BIN").expect(
        "VIFGUARD_PREVIOUS_BIN: the previous release's vifguard (`cargo xtask test` builds it)",
    );
    let mut h = Host::new();
    let a = h.vif(47, 0);
    let b = h.vif(48, 0);
    let xenbus = |v: &str| {
        let (d, i) = v.trim_start_matches("vif").split_once('.').expect("vif");
        format!("backend/vif/{d}/{i}")
    };
    for v in [&a, &b] {
        let out = h
            .cmd_of(
                &previous,
                &["hotplug", "online"],
                &[("vif", v), ("XENBUS_PATH", &xenbus(v))],
            )
            .output()
            .expect("run the previous vifguard");
        assert!(
            out.status.success(),
            "previous release online: {}",
            stderr(&out)
        );
    }
    // The previous release's layout, and its counters held open: after
    // the takeover unpins them, they live on in this descriptor.
    let old_layouts: Vec<PathBuf> = std::fs::read_dir(&h.root)
        .expect("bpffs root")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('v'))
        })
        .collect();
    assert_eq!(old_layouts.len(), 1, "{old_layouts:?}");
    assert_ne!(
        old_layouts[0],
        h.v(),
        "the previous release has another map layout"
    );
    let old_counters: PerCpuArray<MapData, [u64; 96]> =
        PerCpuArray::try_from(aya::maps::Map::PerCpuArray(
            MapData::from_pin(old_layouts[0].join("maps/COUNTERS")).expect("old COUNTERS"),
        ))
        .expect("old COUNTERS: a per-CPU array of 768-byte rows (24 reasons)");
    // The old layout: [direction * 24 + reason] of {packets, bytes}; the
    // reason ids it had kept their numbers (ipv4_spoof = 11).
    let old_spoofs = || -> u64 {
        let at = (Direction::FromGuest as usize * 24 + Reason::Ipv4Spoof as usize) * 2;
        (0..old_counters.len())
            .map(|slot| {
                old_counters
                    .get(&slot, 0)
                    .expect("old row")
                    .iter()
                    .map(|row| row[at])
                    .sum::<u64>()
            })
            .sum()
    };
    let tx_dropped = || -> u64 {
        let out = h.guests[0].exec(&["cat", "/sys/class/net/eth0/statistics/tx_dropped"]);
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .expect("tx_dropped")
    };
    let dropped_before = tx_dropped();

    let tx = RawSocket::open(&h.guests[0], "eth0");
    let frame = spoof_frame(47, 0);
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let flood = {
        let (stop, sent) = (stop.clone(), sent.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                if tx.try_send(&frame).is_ok() {
                    sent.fetch_add(1, Ordering::SeqCst);
                }
            }
        })
    };
    std::thread::sleep(Duration::from_millis(150));
    let before_sync = sent.load(Ordering::SeqCst);
    h.ok(&["sync"], &[]);
    let during_sync = sent.load(Ordering::SeqCst) - before_sync;
    std::thread::sleep(Duration::from_millis(150));
    stop.store(true, Ordering::SeqCst);
    flood.join().expect("sender");
    std::thread::sleep(Duration::from_millis(200));
    let sent = sent.load(Ordering::SeqCst);

    let old = old_spoofs();
    let new = counter(
        &h.entry(&a).expect("a in status"),
        Direction::FromGuest,
        Reason::Ipv4Spoof,
    );
    let dropped = tx_dropped() - dropped_before;
    eprintln!(
        "upgrade at full rate: {sent} spoofed frames sent ({during_sync} during the sync): {old} counted by the previous release, {new} by this one, {dropped} dropped by the veth before any hook"
    );
    assert!(
        old > 0 && new > 0,
        "the switch was not under traffic: old {old}, new {new}"
    );
    assert_eq!(old + new + dropped, sent, "frames no program saw");
    assert!(
        !old_layouts[0].exists(),
        "the previous layout was not taken over"
    );
    // One program per hook, this release's.
    let cur = prog_versions(&h);
    assert_eq!(cur.len(), 1, "{cur:?}");
    assert_eq!(hook_programs(&h).len(), 4);
    assert_eq!(h.entry(&b).expect("b")["mode"], "locked");
    for v in [&a, &b] {
        assert!(h.hotplug("offline", v).status.success());
    }
    assert!(h.attached().is_empty(), "{:?}", h.attached());
}
