//! Bad input: untrusted or malformed policies, xenstore away, foreign
//! pins, usage errors; none opens a door or touches another vif.

use super::*;

#[test]
fn untrusted_policy_fails_closed() {
    let mut h = Host::new();
    let vif = h.vif(6, 0);
    // The guest owns the ip node: not trusted.
    h.xs.tool_ok(
        "xenstore-chmod",
        &["/local/domain/0/backend/vif/6/0/ip", "n6"],
    )
    .expect("chmod");
    let out = h.hotplug("online", &vif);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("vif6.0")
            && err.contains("backend/vif/6/0/ip")
            && err.contains("failed closed"),
        "{err}"
    );
    let e = h.entry(&vif).expect("vif in status");
    assert_eq!(e["mode"], "disabled");
    assert_eq!(e["hooks"], serde_json::json!(["tc-ingress", "tc-egress"]));
    // A frame with the right addresses is dropped too.
    let tx = RawSocket::open(&h.guests[0], "eth0");
    tx.send(
        &Frame::eth(mac(6, 0), BROADCAST)
            .ipv4(
                ip_of(6, 0).parse().expect("a"),
                "198.51.100.255".parse().expect("a"),
            )
            .udp(5000, 5000)
            .payload(b"x")
            .build(),
    );
    std::thread::sleep(Duration::from_millis(100));
    let e = h.entry(&vif).expect("vif in status");
    // At least ours (the guest kernel may send its own frames too).
    assert!(
        counter(&e, Direction::FromGuest, Reason::Disabled) >= 1,
        "{e}"
    );
    assert_eq!(counter(&e, Direction::FromGuest, Reason::Pass), 0, "{e}");

    // Malformed: a bad address.
    let vif2 = h.vif(7, 0);
    h.xs.tool_ok(
        "xenstore-write",
        &["/local/domain/0/backend/vif/7/0/ip", "198.51.100.300"],
    )
    .expect("write");
    let out = h.hotplug("online", &vif2);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(h.entry(&vif2).expect("vif2")["mode"], "disabled");
    assert!(h.ok(&["detach", &vif], &[]).is_empty());
    assert!(h.ok(&["detach", &vif2], &[]).is_empty());
    assert!(h.attached().is_empty());
}

#[test]
fn unknown_interface_and_usage() {
    let h = Host::new();
    let out = h.run(&["attach", "vif99.0"], &[]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no interface named \"vif99.0\""), "{err}");
    let out = h.run(&["hotplug", "online"], &[]);
    assert_eq!(out.status.code(), Some(2));
    let out = h.run(&["attach", "eth7"], &[]);
    assert_eq!(out.status.code(), Some(2));
    let out = h.run(&["frobnicate"], &[]);
    assert_eq!(out.status.code(), Some(2));
    let help = h.ok(&["--help"], &[]);
    assert!(help.contains("Exit codes"), "{help}");
}

#[test]
fn no_xenstore_fails_closed_without_touching_other_vifs() {
    let mut h = Host::new();
    let a = h.vif(50, 0);
    let b = h.vif(51, 0);
    let out = h.hotplug("online", &a);
    assert!(out.status.success(), "{}", stderr(&out));
    h.spoof_from(0, 50, 0);

    let out = h.run(
        &["hotplug", "online"],
        &[
            ("vif", &b),
            ("XENBUS_PATH", "backend/vif/51/0"),
            (
                "XENSTORED_PATH",
                "/nonexistent/vifguard-test/xenstored.sock",
            ),
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains(&b)
            && err.contains("failed closed")
            && err.contains("/nonexistent/vifguard-test"),
        "{err}"
    );
    let eb = h.entry(&b).expect("b installed");
    assert_eq!(eb["mode"], "disabled");
    assert_eq!(eb["hooks"], serde_json::json!(["tc-ingress", "tc-egress"]));
    let ea = h.entry(&a).expect("a");
    assert_eq!(ea["mode"], "locked");
    assert_eq!(ea["addresses"], serde_json::json!([ip_of(50, 0)]));
    assert_eq!(
        counter(&ea, Direction::FromGuest, Reason::Ipv4Spoof),
        1,
        "{ea}"
    );
    h.spoof_from(0, 50, 0);
    let ea = h.entry(&a).expect("a");
    assert_eq!(
        counter(&ea, Direction::FromGuest, Reason::Ipv4Spoof),
        2,
        "{ea}"
    );
    for v in [&a, &b] {
        assert!(h.hotplug("offline", v).status.success());
    }
    assert!(h.attached().is_empty());
}

/// xenstored away (restarting, hung) during a sync, the boot and upgrade
/// path: every vif keeps the policy it has (exit 1, naming the socket),
/// none is cut off; a vif without a policy still fails closed (above).
#[test]
fn sync_with_xenstore_away_keeps_every_vif_policy() {
    let mut h = Host::new();
    let a = h.vif(52, 0);
    let b = h.vif(53, 0);
    for v in [&a, &b] {
        let out = h.hotplug("online", v);
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let away = [(
        "XENSTORED_PATH",
        "/nonexistent/vifguard-test/xenstored.sock",
    )];
    for args in [&["sync"][..], &["attach", &a][..]] {
        let out = h.run(args, &away);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(
            err.contains(&a) && err.contains("kept") && err.contains("/nonexistent/vifguard-test"),
            "{args:?}: {err}"
        );
    }
    for (i, (v, domid)) in [(&a, 52), (&b, 53)].into_iter().enumerate() {
        let e = h.entry(v).expect("vif in status");
        assert_eq!(e["mode"], "locked", "{v} lost its policy: {e}");
        h.spoof_from(i, domid, 0);
        let e = h.entry(v).expect("vif in status");
        assert_eq!(
            counter(&e, Direction::FromGuest, Reason::Ipv4Spoof),
            1,
            "{e}"
        );
    }
}

/// `hotplug online` run again for a vif that is already filtered (udev
/// replaying an event, a toolstack retrying its hook) while xenstored is
/// away: the vif keeps its policy (exit 1, "kept"), with tc filters and
/// with TCX links alike; a vif that has an entry but no hooks of its own
/// (a stale one of a vanished interface whose index it reuses) still
/// fails closed.
#[test]
fn an_online_run_again_with_xenstore_away_keeps_the_policy() {
    for method in ["tc", "tcx"] {
        if method == "tcx" && !tcx_here() {
            continue;
        }
        let mut h = Host::new();
        h.set_attach(method);
        let a = h.vif(54, 0);
        let out = h.hotplug("online", &a);
        assert!(out.status.success(), "{method}: {}", stderr(&out));
        let away = [
            ("vif", a.as_str()),
            ("XENBUS_PATH", "backend/vif/54/0"),
            (
                "XENSTORED_PATH",
                "/nonexistent/vifguard-test/xenstored.sock",
            ),
        ];
        let out = h.run(&["hotplug", "online"], &away);
        assert_eq!(out.status.code(), Some(1), "{method}: {}", stderr(&out));
        assert!(stderr(&out).contains("kept"), "{method}: {}", stderr(&out));
        let e = h.entry(&a).expect("a in status");
        assert_eq!(e["mode"], "locked", "{method}: {e}");
        h.spoof_from(0, 54, 0);
        let e = h.entry(&a).expect("a in status");
        assert_eq!(
            counter(&e, Direction::FromGuest, Reason::Ipv4Spoof),
            1,
            "{method}: {e}"
        );

        // Its hooks gone (as a vanished interface's would be), the entry
        // proves nothing: the next online fails closed.
        assert!(h.hotplug("offline", &a).status.success());
        let out = h.hotplug("online", &a);
        assert!(out.status.success(), "{method}: {}", stderr(&out));
        let ix: u32 = h.dom0.ifindex(&a);
        {
            let _in = h.dom0.enter();
            let mut rtnl = filter_user::hooks::tc::Rtnl::open().expect("rtnetlink");
            for (dir, hook) in filter_user::datapath::pins::HOOKS {
                let _ = rtnl.delete_vifguard_filters(ix, dir);
                let _ = filter_user::sys::bpf::detach_pinned_link(
                    &h.v().join("links").join(format!("{ix}-{hook}")),
                );
            }
        }
        let out = h.run(&["hotplug", "online"], &away);
        assert_eq!(out.status.code(), Some(1), "{method}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("failed closed"),
            "{method}: {}",
            stderr(&out)
        );
        assert_eq!(h.entry(&a).expect("a")["mode"], "disabled", "{method}");
        assert!(h.hotplug("offline", &a).status.success());
    }
}

/// xenopsd's live update deletes `locking-mode` and the address keys, then
/// writes them one by one: a re-apply that meets the half-written
/// directory keeps the vif's policy (never falls back to another source,
/// which would be xl's `network_default`, unlocked).
#[test]
fn an_incomplete_xapi_directory_keeps_the_policy() {
    let mut h = Host::new();
    let v = h.vif(54, 0);
    let uuid = "6b3f0c2e-0000-4000-8000-000000000054";
    let dir = format!("/xapi/{uuid}/private/vif/0");
    for (k, val) in [
        ("/local/domain/54/vm".to_string(), format!("/vm/{uuid}")),
        (format!("{dir}/locking-mode"), "locked".to_string()),
        (format!("{dir}/ipv4-allowed"), ip_of(54, 0)),
    ] {
        h.xs.tool_ok("xenstore-write", &[&k, &val]).expect("write");
    }
    h.xs.tool_ok("xenstore-chmod", &["-r", "/xapi", "n0"])
        .expect("chmod");
    h.xs.tool_ok("xenstore-chmod", &["-r", "/local/domain/54", "n0", "r54"])
        .expect("chmod");
    let out = h.hotplug("online", &v);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(h.ok(&["policy", &v], &[]).contains("source xapi"));

    for k in ["locking-mode", "ipv4-allowed"] {
        h.xs.tool_ok("xenstore-rm", &[&format!("{dir}/{k}")])
            .expect("rm");
    }
    let out = h.run(&["attach", &v], &[]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("locking-mode") && err.contains("kept"),
        "{err}"
    );
    let e = h.entry(&v).expect("vif in status");
    assert_eq!(e["mode"], "locked", "{e}");
    h.spoof_from(0, 54, 0);
    let e = h.entry(&v).expect("vif in status");
    assert_eq!(
        counter(&e, Direction::FromGuest, Reason::Ipv4Spoof),
        1,
        "{e}"
    );
}

#[test]
fn foreign_pins_are_refused() {
    let h = Host::new();
    let mut h = h;
    let vif = h.vif(52, 0);
    let maps = h.v().join("maps");
    let policy = maps.join("POLICY");

    // A directory where the POLICY map belongs.
    std::fs::create_dir_all(&policy).expect("stale dir");
    let out = h.hotplug("online", &vif);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains(&*policy.to_string_lossy()) && err.contains("directory"),
        "{err}"
    );
    assert!(policy.is_dir(), "the directory was touched");
    assert!(h.attached().is_empty());
    assert!(prog_versions(&h).is_empty(), "programs loaded over it");
    std::fs::remove_dir(&policy).expect("rmdir");

    // A foreign map of the right type but the wrong value size.
    let out = Command::new("bpftool")
        .args(["map", "create", &policy.to_string_lossy()])
        .args([
            "type", "hash", "key", "4", "value", "8", "entries", "16", "name", "foreign",
        ])
        .output()
        .expect("bpftool");
    assert!(out.status.success(), "{}", stderr(&out));
    for args in [&["hotplug", "online"][..], &["status"][..], &["sync"][..]] {
        let out = h.run(args, &[("vif", &vif), ("XENBUS_PATH", "backend/vif/52/0")]);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(
            err.contains(&*policy.to_string_lossy()) && err.contains("refusing"),
            "{args:?}: {err}"
        );
    }
    assert!(h.attached().is_empty());
    assert!(prog_versions(&h).is_empty(), "programs loaded over it");
    let m = bpftool_json(&["map", "show", "pinned", &policy.to_string_lossy()]);
    assert_eq!(m["name"], "foreign", "{m}");
}

#[test]
fn malformed_xenbus_path_is_a_usage_error() {
    let mut h = Host::new();
    let vif = h.vif(56, 0);
    for bad in ["backend/vif/x/0", "backend/vbd/56/0", "backend/vif/56"] {
        let out = h.run(
            &["hotplug", "online"],
            &[("vif", &vif), ("XENBUS_PATH", bad)],
        );
        assert_eq!(out.status.code(), Some(2), "{bad}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(err.contains(bad) && err.contains(&vif), "{bad}: {err}");
    }
    assert!(h.attached().is_empty());
    assert!(!h.v().exists(), "state created on a usage error");
}

/// An invalid XAPI address is named once in each command's message: no
/// error repeats its cause.
#[test]
fn a_bad_xapi_value_is_reported_once() {
    let mut h = Host::new();
    let vif = h.vif(73, 0);
    let uuid = "6a1f3c1e-0b4e-4d7b-9a42-3e6c0f1d2b73";
    let dir = format!("/xapi/{uuid}/private/vif/0");
    let bad = "1.2.3.4/33";
    for (node, value) in [
        ("/local/domain/73/vm".to_string(), format!("/vm/{uuid}")),
        (format!("{dir}/locking-mode"), "locked".to_string()),
        (format!("{dir}/ipv4-allowed"), format!("192.0.2.5,{bad}")),
    ] {
        h.xs.tool_ok("xenstore-write", &[&node, &value])
            .expect("xenstore-write");
        h.xs.tool_ok("xenstore-chmod", &[&node, "n0"])
            .expect("xenstore-chmod");
    }
    let out = h.hotplug("online", &vif);
    let sync = h.run(&["sync"], &[]);
    let policy = h.run(&["policy", &vif], &[]);
    let wrong: Vec<String> = [("hotplug online", out), ("sync", sync), ("policy", policy)]
        .into_iter()
        .filter(|(_, out)| {
            let err = stderr(out);
            out.status.code() != Some(1)
                || err.matches(bad).count() != 1
                || !err.contains("ipv4-allowed")
        })
        .map(|(what, out)| format!("{what}: {}: {}", out.status, stderr(&out)))
        .collect();
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    assert!(h.hotplug("offline", &vif).status.success());
}

/// A malformed `vifguard/pairs`: exit 1, the message names the vif, the
/// key and the entry, and the vif drops everything.
#[test]
fn a_malformed_pairs_key_fails_closed() {
    let mut h = Host::new();
    let vif = h.vif(80, 0);
    let entry = "vrrp:300=192.0.2.100";
    h.set_backend_key(
        80,
        0,
        "vifguard/pairs",
        &format!("02:16:3e:00:07:09=192.0.2.9 {entry}"),
    );
    let out = h.hotplug("online", &vif);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("vif80.0")
            && err.contains("/local/domain/0/backend/vif/80/0/vifguard/pairs")
            && err.contains(&format!("{entry:?}"))
            && err.contains("failed closed"),
        "{err}"
    );
    assert_eq!(h.entry(&vif).expect("vif in status")["mode"], "disabled");
    // `policy` says the same, without installing anything.
    let out = h.run(&["policy", &vif], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains(&format!("{entry:?}")),
        "{}",
        stderr(&out)
    );
    // A malformed dhcp-servers key alike.
    h.set_backend_key(80, 0, "vifguard/pairs", "02:16:3e:00:07:09=192.0.2.9");
    h.set_backend_key(80, 0, "vifguard/dhcp-servers", "192.0.2.1 dhcp.example");
    let out = h.run(&["attach", &vif], &[]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("vifguard/dhcp-servers") && err.contains("\"dhcp.example\""),
        "{err}"
    );
    assert_eq!(h.entry(&vif).expect("vif in status")["mode"], "disabled");
    assert!(h.hotplug("offline", &vif).status.success());
}

/// A host policy file another user owns, or its group may write, is
/// refused like a guest-writable xenstore node: the vif fails closed and
/// the message names the file.
#[test]
fn an_untrusted_host_policy_file_fails_closed() {
    use std::os::unix::fs::{PermissionsExt, chown};
    let mut h = Host::new();
    let dir = h.policy_dir("");
    let vif = h.vif(81, 0);
    let file = dir.join("00-16-3e-51-00-00.toml");
    std::fs::write(&file, "mode = \"unlocked\"\n").expect("write");
    // nobody
    chown(&file, Some(65534), None).expect("chown");
    let out = h.hotplug("online", &vif);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("vif81.0")
            && err.contains(&file.display().to_string())
            && err.contains("owned by uid 65534")
            && err.contains("failed closed"),
        "{err}"
    );
    assert_eq!(h.entry(&vif).expect("vif in status")["mode"], "disabled");

    chown(&file, Some(0), None).expect("chown");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o664)).expect("chmod");
    let out = h.run(&["attach", &vif], &[]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("group may write"), "{}", stderr(&out));
    assert_eq!(h.entry(&vif).expect("vif in status")["mode"], "disabled");

    // Malformed: names the file and the field.
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    std::fs::write(&file, "dhcp_servers = [\"192.0.2.0/24\"]\n").expect("write");
    let out = h.run(&["attach", &vif], &[]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains(&file.display().to_string()) && err.contains("dhcp_servers holds"),
        "{err}"
    );

    // Fixed: the vif gets its policy back on the next apply.
    std::fs::write(&file, "mode = \"locked\"\n").expect("write");
    let out = h.run(&["attach", &vif], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(h.entry(&vif).expect("vif in status")["mode"], "locked");
    assert!(h.hotplug("offline", &vif).status.success());
    let _ = std::fs::remove_dir_all(&dir);
}
