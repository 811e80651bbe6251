//! Plugging and unplugging: hotplug online/offline, sync, the xl hook
//! script, interface names, recycled indexes, vanishing interfaces.

use super::*;

#[test]
fn online_traffic_offline() {
    let mut h = Host::new();
    let vif = h.vif(5, 0);
    let out = h.hotplug("online", &vif);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Idempotent: a second online replaces, never attaches twice.
    let out = h.hotplug("online", &vif);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let e = h.entry(&vif).expect("vif in status");
    assert_eq!(e["mode"], "locked");
    assert_eq!(e["mac"], mac_str(mac(5, 0)));
    assert_eq!(e["addresses"], serde_json::json!([ip_of(5, 0)]));
    assert_eq!(e["hooks"], serde_json::json!(["tc-ingress", "tc-egress"]));
    let text = h.ok(&["status", &vif], &[]);
    assert!(text.contains("mode locked"), "{text}");

    h.spoof_from(0, 5, 0);
    let e = h.entry(&vif).expect("vif in status");
    assert_eq!(
        counter(&e, Direction::FromGuest, Reason::Ipv4Spoof),
        1,
        "{e}"
    );
    let m = h.ok(&["metrics"], &[]);
    assert!(
        m.contains("reason=\"ipv4_spoof\"") || m.contains(Reason::Ipv4Spoof.name()),
        "{m}"
    );

    let p = h.ok(&["policy", &vif], &[]);
    assert!(p.contains("source xl"), "{p}");

    let out = h.hotplug("offline", &vif);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(h.attached().is_empty(), "{:?}", h.attached());
    assert!(h.status().is_empty());
}

/// A vif that vanished without its offline hotplug leaves its policy entry
/// and counter slot behind; a new vif that the kernel gives the same
/// interface index starts with zeroed counters, not the old vif's drops.
#[test]
fn a_new_vif_on_a_recycled_ifindex_starts_at_zero() {
    let mut h = Host::new();
    let old = h.vif(5, 0);
    let ix = h.dom0.ifindex(&old);
    assert!(h.hotplug("online", &old).status.success());
    h.spoof_from(0, 5, 0);
    let e = h.entry(&old).expect("old vif in status");
    assert_eq!(
        counter(&e, Direction::FromGuest, Reason::Ipv4Spoof),
        1,
        "{e}"
    );
    // Gone without `offline` (a crashed backend, a killed hotplug).
    h.dom0.ip(&["link", "del", &old]);
    let new = h.vif_at(6, 0, Some(ix));
    assert_eq!(h.dom0.ifindex(&new), ix, "the kernel reused the index");
    let out = h.hotplug("online", &new);
    assert!(out.status.success(), "{}", stderr(&out));
    let e = h.entry(&new).expect("new vif in status");
    assert_eq!(
        counter(&e, Direction::FromGuest, Reason::Ipv4Spoof),
        0,
        "the new vif inherited the old one's drops: {e}"
    );
    // A re-apply on the same interface keeps its counters.
    h.spoof_from(1, 6, 0);
    h.ok(&["attach", &new], &[]);
    let e = h.entry(&new).expect("new vif in status");
    assert_eq!(
        counter(&e, Direction::FromGuest, Reason::Ipv4Spoof),
        1,
        "{e}"
    );
}

/// libxl names an HVM guest's emulated NIC `vifN.M-emu` (XAPI: `tapN.M`):
/// it gets the vif's policy through attach, hotplug and sync, and status
/// and metrics name it.
#[test]
fn emulated_nics_named_by_libxl() {
    let mut h = Host::new();
    let pv = h.vif(8, 0);
    let emu = format!("{pv}-emu");
    let g = NetNs::new("cge");
    veth(&h.dom0, &emu, &g, "eth0");
    g.ip(&["link", "set", "eth0", "address", &mac_str(mac(8, 0))]);
    h.guests.push(g);

    h.ok(&["attach", &emu], &[]);
    let e = h.entry(&emu).expect("the -emu NIC in status");
    assert_eq!(e["mode"], "locked", "{e}");
    h.ok(&["detach", &emu], &[]);
    assert!(h.entry(&emu).is_none());
    let out = h.run(
        &["hotplug", "online"],
        &[("vif", &emu), ("XENBUS_PATH", "backend/vif/8/0")],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    h.ok(&["detach", &emu], &[]);

    h.ok(&["sync"], &[]);
    for v in [&pv, &emu] {
        let e = h.entry(v).expect("in status after sync");
        assert_eq!(e["mode"], "locked", "{v}: {e}");
    }
    h.spoof_from(1, 8, 0);
    let e = h.entry(&emu).expect("the -emu NIC in status");
    assert_eq!(
        counter(&e, Direction::FromGuest, Reason::Ipv4Spoof),
        1,
        "{e}"
    );
    let m = h.ok(&["metrics"], &[]);
    assert!(
        m.lines()
            .any(|l| l.contains(&format!("interface=\"{emu}\"")) && l.contains("domid=\"8\"")),
        "{m}"
    );
}

#[test]
fn concurrent_hotplug_of_32() {
    let mut h = Host::new();
    let vifs: Vec<String> = (0..32).map(|i| h.vif(10 + i / 4, i % 4)).collect();
    let children: Vec<_> = vifs
        .iter()
        .map(|v| {
            let (d, i) = v.trim_start_matches("vif").split_once('.').expect("n");
            h.cmd(
                &["hotplug", "online"],
                &[("vif", v), ("XENBUS_PATH", &format!("backend/vif/{d}/{i}"))],
            )
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn")
        })
        .collect();
    for c in children {
        let out = c.wait_with_output().expect("wait");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let st = h.status();
    assert_eq!(st.len(), 32);
    for (i, v) in vifs.iter().enumerate() {
        let e = st.iter().find(|e| e["name"] == v.as_str()).expect("entry");
        let (d, dev) = (10 + i as u32 / 4, i as u32 % 4);
        assert_eq!(e["mode"], "locked");
        assert_eq!(e["mac"], mac_str(mac(d, dev)));
        assert_eq!(e["addresses"], serde_json::json!([ip_of(d, dev)]));
        assert_eq!(e["hooks"].as_array().map(Vec::len), Some(2), "{e}");
    }
    assert_eq!(h.attached().len(), 64);
    for v in &vifs {
        let out = h.hotplug("offline", v);
        assert!(out.status.success());
    }
    assert!(h.attached().is_empty());
    assert!(h.status().is_empty());
}

#[test]
fn sync_restores_after_wipe_and_cleans_vanished() {
    let mut h = Host::new();
    let a = h.vif(20, 0);
    let b = h.vif(21, 0);
    for v in [&a, &b] {
        assert!(h.hotplug("online", v).status.success());
    }
    std::fs::remove_dir_all(&h.root).expect("wipe pins");
    h.ok(&["sync"], &[]);
    let st = h.status();
    assert_eq!(st.len(), 2, "{st:?}");
    assert_eq!(h.attached().len(), 4);
    h.spoof_from(1, 21, 0);
    let e = h.entry(&b).expect("b");
    assert_eq!(
        counter(&e, Direction::FromGuest, Reason::Ipv4Spoof),
        1,
        "{e}"
    );

    // b vanishes (its guest goes away); offline afterwards still cleans.
    h.dom0.ip(&["link", "del", &b]);
    let out = h.hotplug("offline", &b);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(h.attached().len(), 2, "{:?}", h.attached());
    assert_eq!(h.status().len(), 1);
    h.ok(&["sync"], &[]);
    assert_eq!(h.status().len(), 1);
    h.ok(&["detach", &a], &[]);
    assert!(h.attached().is_empty());
}

#[test]
fn interface_vanishing_mid_attach_leaves_nothing() {
    let mut h = Host::new();
    let a = h.vif(53, 0);
    let b = h.vif(54, 0);
    let out = h.hotplug("online", &a);
    assert!(out.status.success(), "{}", stderr(&out));
    let ix_b = h.dom0.ifindex(&b);

    // A xenstore that holds the request: when vifguard connects it has
    // resolved b's ifindex; b is deleted, then the connection dropped.
    let sock = std::env::temp_dir().join(format!(
        "vg-fake-xs-{}-{}.sock",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = std::fs::remove_file(&sock);
    let listener = std::os::unix::net::UnixListener::bind(&sock).expect("bind");
    let child = h
        .cmd(
            &["hotplug", "online"],
            &[
                ("vif", &b),
                ("XENBUS_PATH", "backend/vif/54/0"),
                ("XENSTORED_PATH", &sock.to_string_lossy()),
            ],
        )
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let (conn, _) = listener.accept().expect("vifguard connects");
    h.dom0.ip(&["link", "del", &b]);
    drop(conn);
    let out = child.wait_with_output().expect("wait");
    let _ = std::fs::remove_file(&sock);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains(&b) && err.contains("vanished"), "{err}");
    let prefix = format!("{ix_b}-");
    assert!(
        !h.attached().iter().any(|l| l.starts_with(&prefix)),
        "{:?}",
        h.attached()
    );
    let st = h.status();
    assert_eq!(st.len(), 1, "{st:?}");
    assert_eq!(st[0]["name"], a.as_str());
    assert_eq!(st[0]["mode"], "locked");

    // A name that does not exist at all: exit 1, nothing installed.
    let out = h.run(
        &["hotplug", "online"],
        &[("vif", "vif55.0"), ("XENBUS_PATH", "backend/vif/55/0")],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("vif55.0"), "{}", stderr(&out));
    assert_eq!(h.status().len(), 1);
    assert_eq!(h.attached().len(), 2, "{:?}", h.attached());
    assert!(h.hotplug("offline", &a).status.success());
    assert!(h.attached().is_empty());
}

/// The xl hook script (scripts/vif-vifguard) never has a vif bridged
/// without its filter: online runs the bridge script only after vifguard
/// attached (and not at all when vifguard failed closed), offline runs it
/// before vifguard detaches. A stand-in bridge script records, when it
/// runs, whether the vif has vifguard's ingress filter.
#[test]
fn hook_script_keeps_an_unfiltered_vif_off_the_bridge() {
    let mut h = Host::new();
    let vif = h.vif(60, 0);
    let bad = h.vif(61, 0);
    let dir = std::env::temp_dir().join(format!("vg-hook-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let log = dir.join("bridge.log");
    let bridge = dir.join("vif-bridge");
    std::fs::write(
        &bridge,
        "#!/bin/sh\nn=$(tc filter show dev \"$vif\" ingress | grep -c vifguard_)\necho \"$1 $vif $n\" >>\"$LOG\"\n",
    )
    .expect("write the stand-in bridge script");
    Command::new("chmod")
        .args(["755", &bridge.to_string_lossy()])
        .status()
        .expect("chmod");
    let hook = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/vif-vifguard");
    let run_hook = |action: &str, vif: &str, domid: u32| -> Output {
        Command::new("nsenter")
            .arg(format!("--net=/run/netns/{}", h.dom0.name))
            .args(["bash", hook, action])
            .env("vif", vif)
            .env("XENBUS_PATH", format!("backend/vif/{domid}/0"))
            .env("VIFGUARD", BIN)
            .env("VIFGUARD_BRIDGE_SCRIPT", &bridge)
            .env("VIFGUARD_BPFFS", &h.root)
            .env("VIFGUARD_CONFIG", &h.config)
            .env("XENSTORED_PATH", h.xs.socket_path())
            .env("LOG", &log)
            .output()
            .expect("run the hook script")
    };
    let logged = || std::fs::read_to_string(&log).unwrap_or_default();

    let out = run_hook("online", &vif, 60);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(logged(), format!("online {vif} 1\n"), "bridged unfiltered");

    let out = run_hook("offline", &vif, 60);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        logged(),
        format!("online {vif} 1\noffline {vif} 1\n"),
        "filter removed while still bridged"
    );
    assert!(h.attached().is_empty(), "{:?}", h.attached());

    // A policy vifguard cannot use: it fails closed, and the vif is not
    // bridged at all.
    h.xs.tool_ok(
        "xenstore-write",
        &["/local/domain/0/backend/vif/61/0/mac", "not-a-mac"],
    )
    .expect("xenstore-write");
    let out = run_hook("online", &bad, 61);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        !logged().contains(&bad),
        "bridged after a failure: {}",
        logged()
    );
    let _ = std::fs::remove_dir_all(&dir);
}
