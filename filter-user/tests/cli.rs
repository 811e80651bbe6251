//! The `vifguard` binary against real kernel state: veths named like
//! netback vifs in a namespace the test creates, the test xenstored filled
//! with the real `xenstore-write`, a private bpffs root per test.
//!
//! The binary runs in the namespace via `nsenter --net` (not `ip netns
//! exec`, which remounts /sys and so hides /sys/fs/bpf). Needs root.

use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use filter_common::{Direction, Reason};
use testbed::frames::{BROADCAST, Frame, Mac};
use testbed::netns::{NetNs, RawSocket, veth, vifguard_tc_filters};
use testbed::xenstored::TestXenstored;

static NEXT: AtomicU32 = AtomicU32::new(0);
const BIN: &str = env!("CARGO_BIN_EXE_vifguard");

fn mac(domid: u32, devid: u32) -> Mac {
    [
        0x00,
        0x16,
        0x3e,
        domid as u8,
        (domid >> 8) as u8,
        devid as u8,
    ]
}

fn mac_str(m: Mac) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// A documentation address per vif (RFC 5737): 198.51.100.0/24 for
/// devid 0, 203.0.113.0/24 otherwise.
fn ip_of(domid: u32, devid: u32) -> String {
    let net = if devid == 0 {
        "198.51.100"
    } else {
        "203.0.113"
    };
    format!("{net}.{}", domid % 250 + 1)
}

struct Host {
    root: PathBuf,
    /// The host configuration file (absent: every default, attach = "tc").
    config: PathBuf,
    xs: TestXenstored,
    dom0: NetNs,
    guests: Vec<NetNs>,
}

impl Host {
    fn new() -> Host {
        let root = PathBuf::from(format!(
            "/sys/fs/bpf/vifguard-test-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        ));
        Host {
            config: PathBuf::from("/nonexistent/vifguard.toml"),
            root,
            xs: TestXenstored::start(),
            dom0: NetNs::new("cli0"),
            guests: Vec::new(),
        }
    }

    /// A vif<domid>.<devid> in dom0 with its guest end, and xl's backend
    /// keys in xenstore (locked to one IPv4 address).
    fn vif(&mut self, domid: u32, devid: u32) -> String {
        self.vif_at(domid, devid, None)
    }

    /// As [`Host::vif`], the dom0 end with interface index `index`.
    fn vif_at(&mut self, domid: u32, devid: u32, index: Option<u32>) -> String {
        let g = NetNs::new("cg");
        let name = format!("vif{domid}.{devid}");
        match index {
            None => veth(&self.dom0, &name, &g, "eth0"),
            Some(ix) => {
                let ix = ix.to_string();
                self.dom0.ip(&[
                    "link", "add", &name, "index", &ix, "type", "veth", "peer", "name", "eth0",
                    "netns", &g.name,
                ]);
                self.dom0.ip(&["link", "set", &name, "up"]);
                g.ip(&["link", "set", "eth0", "up"]);
            }
        }
        // The MAC before the link comes up, as a Xen guest's NIC has it:
        // the guest kernel's link-local address (and its duplicate address
        // detection) is then the one derived from the vif's MAC, not from
        // a random one the policy does not allow.
        g.ip(&["link", "set", "eth0", "down"]);
        g.ip(&[
            "link",
            "set",
            "eth0",
            "address",
            &mac_str(mac(domid, devid)),
        ]);
        g.ip(&["link", "set", "eth0", "up"]);
        self.guests.push(g);
        let be = format!("/local/domain/0/backend/vif/{domid}/{devid}");
        for (k, v) in [
            ("mac", mac_str(mac(domid, devid))),
            ("ip", ip_of(domid, devid)),
            ("vifguard/mode", "locked".to_string()),
        ] {
            self.xs
                .tool_ok("xenstore-write", &[&format!("{be}/{k}"), &v])
                .expect("xenstore-write");
        }
        self.xs
            .tool_ok("xenstore-chmod", &["-r", &be, "n0", &format!("r{domid}")])
            .expect("xenstore-chmod");
        name
    }

    fn cmd(&self, args: &[&str], env: &[(&str, &str)]) -> Command {
        let mut c = Command::new("nsenter");
        c.arg(format!("--net=/run/netns/{}", self.dom0.name))
            .arg(BIN)
            .arg("--bpffs")
            .arg(&self.root)
            .arg("--config")
            .arg(&self.config)
            .args(args)
            .env("XENSTORED_PATH", self.xs.socket_path());
        for (k, v) in env {
            c.env(k, v);
        }
        c
    }

    fn run(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        self.cmd(args, env).output().expect("run vifguard")
    }

    fn ok(&self, args: &[&str], env: &[(&str, &str)]) -> String {
        let out = self.run(args, env);
        assert!(
            out.status.success(),
            "vifguard {args:?}: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn hotplug(&self, action: &str, vif: &str) -> Output {
        let (d, i) = vif
            .trim_start_matches("vif")
            .split_once('.')
            .expect("vif name");
        let path = format!("backend/vif/{d}/{i}");
        self.run(
            &["hotplug", action],
            &[("vif", vif), ("XENBUS_PATH", &path)],
        )
    }

    fn status(&self) -> Vec<serde_json::Value> {
        let s = self.ok(&["status", "--json"], &[]);
        serde_json::from_str(&s).expect("status JSON")
    }

    fn entry(&self, vif: &str) -> Option<serde_json::Value> {
        self.status().into_iter().find(|e| e["name"] == vif)
    }

    /// Switches the host configuration to `attach = "<method>"`.
    fn set_attach(&mut self, method: &str) {
        let path = std::env::temp_dir().join(format!(
            "vifguard-test-{}-{}.toml",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::write(&path, format!("attach = \"{method}\"\n")).expect("write config");
        self.config = path;
    }

    /// This map layout's directory: `<root>/v<ABI_VERSION>`.
    fn v(&self) -> PathBuf {
        self.root.join(format!("v{}", filter_common::ABI_VERSION))
    }

    /// Pinned TCX links, as `<ifindex>-<hook>`.
    fn links(&self) -> Vec<String> {
        let mut v: Vec<String> = match std::fs::read_dir(self.v().join("links")) {
            Ok(rd) => rd
                .filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect(),
            Err(_) => Vec::new(),
        };
        v.sort();
        v
    }

    /// vifguard's tc filters in dom0 as the kernel lists them (bpftool
    /// net), as `<ifindex>-<hook>` with their program ids.
    fn filters(&self) -> Vec<(String, u64)> {
        vifguard_tc_filters(&self.dom0)
            .expect("bpftool net")
            .into_iter()
            .map(|f| (format!("{}-{}", f.ifindex, f.hook), f.prog_id))
            .collect()
    }

    /// Every hook with a vifguard program, either way, as
    /// `<ifindex>-<hook>`.
    fn attached(&self) -> Vec<String> {
        let mut v = self.links();
        v.extend(self.filters().into_iter().map(|(h, _)| h));
        v.sort();
        v
    }

    fn spoof_from(&self, guest: usize, domid: u32, devid: u32) {
        let tx = RawSocket::open(&self.guests[guest], "eth0");
        let frame = Frame::eth(mac(domid, devid), BROADCAST)
            .ipv4(
                "203.0.113.66".parse().expect("a"),
                "198.51.100.255".parse().expect("a"),
            )
            .udp(5000, 5000)
            .payload(b"vifguard-cli-spoof")
            .build();
        tx.send(&frame);
        std::thread::sleep(Duration::from_millis(100));
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        filter_user::applied::Records::new(&self.root).clear();
        let _ = std::fs::remove_dir_all(&self.root);
        if self.config.starts_with(std::env::temp_dir()) {
            let _ = std::fs::remove_file(&self.config);
        }
    }
}

fn counter(entry: &serde_json::Value, dir: Direction, reason: Reason) -> u64 {
    entry["counters"]
        .as_array()
        .expect("counters")
        .iter()
        .find(|c| c["direction"] == dir.name() && c["reason"] == reason.name())
        .and_then(|c| c["packets"].as_u64())
        .unwrap_or(0)
}

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
fn events_stream_a_sampled_drop() {
    let mut h = Host::new();
    let vif = h.vif(8, 0);
    let out = h.hotplug("online", &vif);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let reader = h
        .cmd(
            &["events", "--json", "--count", "1", "--timeout", "10"],
            &[],
        )
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("start vifguard events");
    std::thread::sleep(Duration::from_millis(300));
    h.spoof_from(0, 8, 0);
    let out = reader.wait_with_output().expect("vifguard events");
    assert!(out.status.success(), "vifguard events failed");
    let line = String::from_utf8_lossy(&out.stdout);
    let ev: serde_json::Value = serde_json::from_str(line.trim())
        .unwrap_or_else(|e| panic!("one JSON event expected, got {line:?}: {e}"));
    assert_eq!(ev["interface"], vif.as_str(), "{ev}");
    assert_eq!(ev["reason"], Reason::Ipv4Spoof.name(), "{ev}");
    assert_eq!(ev["direction"], Direction::FromGuest.name(), "{ev}");
    assert_eq!(ev["src"], "203.0.113.66", "{ev}");
    assert_eq!(ev["src_mac"], mac_str(mac(8, 0)), "{ev}");
}

/// One HTTP/1.0 GET from inside `ns` (retrying until the server is up).
fn http_get(ns: &NetNs, port: u16, path: &str) -> String {
    use std::io::{Read as _, Write as _};
    let _in = ns.enter();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let mut s = loop {
        match std::net::TcpStream::connect(("127.0.0.1", port)) {
            Ok(s) => break s,
            Err(_) if std::time::Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => panic!("connect to metrics server: {e}"),
        }
    };
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    write!(s, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").expect("send request");
    let mut out = String::new();
    s.read_to_string(&mut out).expect("read response");
    out
}

#[test]
fn metrics_served_over_http() {
    let mut h = Host::new();
    let vif = h.vif(9, 0);
    let out = h.hotplug("online", &vif);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A host name is a usage error (the static binary resolves none).
    let out = h.run(&["metrics", "--listen", "localhost:9469"], &[]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("not IP:PORT"), "{}", stderr(&out));
    // The test's dom0 namespace is fresh: any port is free in it.
    let port = 9469;
    let mut server = h
        .cmd(&["metrics", "--listen", &format!("127.0.0.1:{port}")], &[])
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start vifguard metrics --listen");
    let first = http_get(&h.dom0, port, "/metrics");
    h.spoof_from(0, 9, 0);
    // Maps are re-read per request: the drop shows up in the next one.
    let second = http_get(&h.dom0, port, "/metrics");
    let missing = http_get(&h.dom0, port, "/nope");
    let _ = server.kill();
    let _ = server.wait();

    assert!(first.starts_with("HTTP/1.0 200"), "{first}");
    assert!(
        first.contains("# TYPE vifguard_packets_total counter"),
        "{first}"
    );
    let line = format!(
        "vifguard_packets_total{{interface=\"{vif}\",domid=\"9\",devid=\"0\",direction=\"{}\",reason=\"{}\"}} 1",
        Direction::FromGuest.name(),
        Reason::Ipv4Spoof.name()
    );
    assert!(!first.contains("reason=\"ipv4_spoof\""), "{first}");
    assert!(second.starts_with("HTTP/1.0 200"), "{second}");
    assert!(second.lines().any(|l| l == line), "{line} not in\n{second}");
    assert!(missing.starts_with("HTTP/1.0 404"), "{missing}");

    assert!(h.hotplug("offline", &vif).status.success());
    assert!(h.attached().is_empty());
}

fn spoof_frame(domid: u32, devid: u32) -> Vec<u8> {
    Frame::eth(mac(domid, devid), BROADCAST)
        .ipv4(
            "203.0.113.66".parse().expect("a"),
            "198.51.100.255".parse().expect("a"),
        )
        .udp(5000, 5000)
        .payload(b"vifguard-cli-spoof")
        .build()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn bpftool_json(args: &[&str]) -> serde_json::Value {
    let out = Command::new("bpftool")
        .arg("-j")
        .args(args)
        .output()
        .expect("run bpftool");
    assert!(out.status.success(), "bpftool {args:?}: {}", stderr(&out));
    serde_json::from_slice(&out.stdout).expect("bpftool JSON")
}

fn prog_versions(h: &Host) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(h.v().join("progs"))
        .expect("progs dir")
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

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

/// Whether TCX tests can run on this kernel; says why not on stderr.
fn tcx_here() -> bool {
    match testbed::kernel::tcx_supported() {
        Ok(()) => true,
        Err(why) => {
            eprintln!("skipped: {why}");
            false
        }
    }
}

/// Frames on a hook whose policy entry is gone are dropped as `no_policy`;
/// metrics export them, per interface.
#[test]
fn metrics_export_no_policy_drops() {
    let mut h = Host::new();
    let vif = h.vif(74, 0);
    let out = h.hotplug("online", &vif);
    assert!(out.status.success(), "{}", stderr(&out));
    // The entry lost (as a crash between map writes could leave it): the
    // hooks stay and drop everything.
    let ix = h.dom0.ifindex(&vif);
    let policy = h.v().join("maps/POLICY");
    let key: Vec<String> = ix.to_ne_bytes().iter().map(u8::to_string).collect();
    let out = Command::new("bpftool")
        .args(["map", "delete", "pinned", &policy.to_string_lossy(), "key"])
        .args(&key)
        .output()
        .expect("bpftool");
    assert!(out.status.success(), "{}", stderr(&out));
    h.spoof_from(0, 74, 0);
    let m = h.ok(&["metrics"], &[]);
    let line = format!(
        "vifguard_packets_total{{interface=\"{vif}\",domid=\"74\",devid=\"0\",direction=\"from_guest\",reason=\"{}\"}} ",
        Reason::NoPolicy.name()
    );
    let packets = m
        .lines()
        .find_map(|l| l.strip_prefix(&line))
        .unwrap_or_else(|| panic!("no {line:?} in\n{m}"));
    // At least ours (the guest kernel may send its own frames too).
    assert!(packets.parse::<u64>().expect("a count") >= 1, "{m}");
    assert!(h.hotplug("offline", &vif).status.success());
    assert!(h.attached().is_empty());
}

impl Host {
    /// Writes `key` (relative to the vif's backend directory) in xenstore.
    fn set_backend_key(&self, domid: u32, devid: u32, key: &str, value: &str) {
        let node = format!("/local/domain/0/backend/vif/{domid}/{devid}/{key}");
        self.xs
            .tool_ok("xenstore-write", &[&node, value])
            .expect("xenstore-write");
    }
}

/// Status shows the policy as installed, trie entries included: a /64, a
/// list longer than the inline one, 0.0.0.0/0, destinations and options.
#[test]
fn status_shows_the_whole_policy() {
    let mut h = Host::new();
    let prefix = h.vif(70, 0);
    h.set_backend_key(70, 0, "ip", &format!("{} 2001:db8:70::/64", ip_of(70, 0)));
    let many = h.vif(71, 0);
    let hosts: Vec<String> = (0..290u32)
        .map(|i| format!("10.71.{}.{}", i / 250, i % 250 + 1))
        .collect();
    h.set_backend_key(71, 0, "ip", &hosts.join(" "));
    let any = h.vif(72, 0);
    h.set_backend_key(72, 0, "ip", "0.0.0.0/0");
    h.set_backend_key(72, 0, "vifguard/mode", "isolated");
    h.set_backend_key(72, 0, "vifguard/destinations", "192.0.2.0/24 2001:db8::/32");
    h.set_backend_key(72, 0, "vifguard/options/router", "1");
    h.set_backend_key(72, 0, "vifguard/options/ethertypes", "0x88cc");
    for v in [&prefix, &many, &any] {
        let out = h.hotplug("online", v);
        assert!(out.status.success(), "{v}: {}", stderr(&out));
    }

    let e = h.entry(&prefix).expect("prefix vif");
    assert_eq!(
        e["addresses"],
        serde_json::json!([ip_of(70, 0), "2001:db8:70::/64"]),
        "{e}"
    );
    assert_eq!(e["ipv4"], serde_json::json!([ip_of(70, 0)]), "{e}");
    assert_eq!(e["ipv6"], serde_json::json!(["2001:db8:70::/64"]), "{e}");
    assert_eq!(e["destinations"], serde_json::json!([]), "{e}");

    let e = h.entry(&many).expect("vif with 290 addresses");
    // Eight inline, the rest from the trie: in order either way, as
    // they were written in order.
    assert_eq!(e["ipv4"], serde_json::json!(hosts), "{e}");
    assert_eq!(e["n_ipv4"], 290, "{e}");

    let e = h.entry(&any).expect("isolated vif");
    assert_eq!(e["mode"], "isolated");
    assert_eq!(e["ipv4"], serde_json::json!(["0.0.0.0/0"]), "{e}");
    assert_eq!(
        e["destinations"],
        serde_json::json!(["192.0.2.0/24", "2001:db8::/32"]),
        "{e}"
    );
    assert_eq!(
        e["options"],
        serde_json::json!({
            "dhcp_client": true,
            "dhcp_server": false,
            "router": true,
            "ipv6_link_local": "derived",
            "egress_filter": true,
            "ethertypes": ["0x88cc"],
        }),
        "{e}"
    );

    let text = h.ok(&["status", &prefix], &[]);
    assert!(text.contains("2001:db8:70::/64"), "{text}");
    let text = h.ok(&["status", &many], &[]);
    for a in &hosts {
        assert!(
            text.split([' ', '\n']).any(|w| w == a.as_str()),
            "{a} missing:\n{text}"
        );
    }
    let text = h.ok(&["status", &any], &[]);
    for want in [
        "mode isolated",
        "0.0.0.0/0",
        "192.0.2.0/24 2001:db8::/32",
        "router on",
        "ethertypes 0x88cc",
    ] {
        assert!(text.contains(want), "{want:?} missing:\n{text}");
    }
    for v in [&prefix, &many, &any] {
        assert!(h.hotplug("offline", v).status.success());
    }
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

/// A running `vifguard watch` and the lines it logged; killed on drop.
struct Watch {
    child: std::process::Child,
    lines: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Watch {
    fn start(h: &Host) -> Watch {
        use std::io::BufRead;
        let mut child = h
            .cmd(&["watch"], &[])
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("start vifguard watch");
        let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let stderr = child.stderr.take().expect("stderr");
        let sink = std::sync::Arc::clone(&lines);
        std::thread::spawn(move || {
            for l in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                sink.lock().expect("lines").push(l);
            }
        });
        let w = Watch { child, lines };
        w.wait_for_line("watching xenstore", 1);
        w
    }

    /// Waits (5 s at most) until `n` lines contain `what`.
    fn wait_for_line(&self, what: &str, n: usize) {
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        loop {
            let got = self.count(what);
            if got >= n {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "vifguard watch did not log {what:?} {n} time(s): {:?}",
                self.lines.lock().expect("lines")
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn count(&self, what: &str) -> usize {
        self.lines
            .lock()
            .expect("lines")
            .iter()
            .filter(|l| l.contains(what))
            .count()
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `vifguard status --json` until `ok` holds for `vif`'s entry;
/// returns how long that took (panics after 3 s).
fn until_status(h: &Host, vif: &str, ok: impl Fn(&serde_json::Value) -> bool) -> Duration {
    until_status_within(h, vif, Duration::from_secs(3), ok)
}

fn until_status_within(
    h: &Host,
    vif: &str,
    limit: Duration,
    ok: impl Fn(&serde_json::Value) -> bool,
) -> Duration {
    let start = std::time::Instant::now();
    loop {
        if h.entry(vif).is_some_and(|e| ok(&e)) {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < limit,
            "{vif} never reached the expected state: {:?}",
            h.entry(vif)
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// An xl guest switched to `isolated` while it runs: `vifguard watch`
/// applies it, well within a second (the delay is printed).
#[test]
fn watch_applies_an_xl_change_of_a_running_guest() {
    let mut h = Host::new();
    let v = h.vif(62, 0);
    assert!(h.hotplug("online", &v).status.success());
    assert_eq!(h.entry(&v).expect("in status")["applied"]["by"], "hotplug");
    let w = Watch::start(&h);
    let be = "/local/domain/0/backend/vif/62/0";
    h.xs.tool_ok(
        "xenstore-write",
        &[&format!("{be}/vifguard/destinations"), "192.0.2.1/32"],
    )
    .expect("write");
    h.xs.tool_ok(
        "xenstore-write",
        &[&format!("{be}/vifguard/mode"), "isolated"],
    )
    .expect("write");
    let delay = until_status(&h, &v, |e| e["mode"] == "isolated");
    eprintln!(
        "watch: xl change applied {} ms after the write",
        delay.as_millis()
    );
    assert!(delay < Duration::from_secs(1), "{delay:?}");
    w.wait_for_line(&format!("{v}: policy re-applied"), 1);
    let e = h.entry(&v).expect("in status");
    assert_eq!(e["applied"]["by"], "watch", "{e}");
    assert!(h.ok(&["status", &v], &[]).contains("applied by watch"));
}

/// xenopsd's live update with `vifguard watch` running and no other
/// call: the keys are deleted and written back one by one. A guest sends
/// from a never-allowed address every millisecond meanwhile: not one of
/// those frames passes at any moment; the new address is applied within
/// a second; keys left incomplete fail the vif closed after 5 s.
#[test]
fn watch_rides_the_xenopsd_live_update_without_an_unlocked_moment() {
    let mut h = Host::new();
    let v = h.vif(63, 0);
    let uuid = "6b3f0c2e-0000-4000-8000-000000000063";
    let dir = format!("/xapi/{uuid}/private/vif/0");
    let w = |h: &Host, k: &str, val: &str| {
        h.xs.tool_ok("xenstore-write", &[k, val]).expect("write");
    };
    w(&h, "/local/domain/63/vm", &format!("/vm/{uuid}"));
    w(&h, &format!("{dir}/locking-mode"), "locked");
    w(&h, &format!("{dir}/ipv4-allowed"), "198.51.100.63");
    w(&h, &format!("{dir}/ipv6-allowed"), "");
    h.xs.tool_ok("xenstore-chmod", &["-r", "/xapi", "n0"])
        .expect("chmod");
    h.xs.tool_ok("xenstore-chmod", &["-r", "/local/domain/63", "n0", "r63"])
        .expect("chmod");
    assert!(h.hotplug("online", &v).status.success());
    let watch = Watch::start(&h);

    // The never-allowed sender.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let tx = RawSocket::open(&h.guests[0], "eth0");
    let frame = Frame::eth(mac(63, 0), BROADCAST)
        .ipv4(
            "203.0.113.99".parse().expect("a"),
            "198.51.100.255".parse().expect("a"),
        )
        .udp(5000, 5000)
        .payload(b"vifguard-watch-never")
        .build();
    let before = counter(
        &h.entry(&v).expect("in status"),
        Direction::FromGuest,
        Reason::Ipv4Spoof,
    );
    let sender = {
        let stop = std::sync::Arc::clone(&stop);
        std::thread::spawn(move || {
            let mut sent = 0u64;
            while !stop.load(Ordering::Relaxed) {
                tx.send(&frame);
                sent += 1;
                std::thread::sleep(Duration::from_millis(1));
            }
            sent
        })
    };

    // xenops_server_xen.ml set_locking_mode: delete, then write one by one.
    for k in ["locking-mode", "ipv4-allowed", "ipv6-allowed"] {
        h.xs.tool_ok("xenstore-rm", &[&format!("{dir}/{k}")])
            .expect("rm");
    }
    std::thread::sleep(Duration::from_millis(20));
    w(&h, &format!("{dir}/locking-mode"), "locked");
    w(&h, &format!("{dir}/ipv4-allowed"), "198.51.100.64");
    w(&h, &format!("{dir}/ipv6-allowed"), "");
    let delay = until_status(&h, &v, |e| {
        e["addresses"] == serde_json::json!(["198.51.100.64"])
    });
    eprintln!(
        "watch: xenopsd update applied {} ms after the last write",
        delay.as_millis()
    );
    assert!(delay < Duration::from_secs(1), "{delay:?}");
    std::thread::sleep(Duration::from_millis(50));
    stop.store(true, Ordering::Relaxed);
    let sent = sender.join().expect("sender");
    std::thread::sleep(Duration::from_millis(50));
    let e = h.entry(&v).expect("in status");
    assert_eq!(
        counter(&e, Direction::FromGuest, Reason::Ipv4Spoof) - before,
        sent,
        "every frame from the never-allowed address dropped: {e}"
    );
    assert_eq!(e["mode"], "locked");

    // Keys left incomplete: kept for a while, then fail closed.
    h.xs.tool_ok("xenstore-rm", &[&format!("{dir}/locking-mode")])
        .expect("rm");
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(h.entry(&v).expect("in status")["mode"], "locked");
    let waited = until_status_within(&h, &v, Duration::from_secs(6), |e| e["mode"] == "disabled");
    assert!(waited > Duration::from_millis(2500), "{waited:?}");
    watch.wait_for_line(&format!("{v}: failed closed"), 1);
}

/// xenstored killed and restarted under a running watch: it reconnects,
/// and a change made after the restart is applied.
#[test]
fn watch_survives_a_xenstored_restart() {
    let mut h = Host::new();
    let v = h.vif(64, 0);
    assert!(h.hotplug("online", &v).status.success());
    let w = Watch::start(&h);
    h.xs.kill();
    w.wait_for_line("xenstore connection lost", 1);
    std::thread::sleep(Duration::from_millis(300));
    h.xs.restart();
    w.wait_for_line("watching xenstore", 2);
    let be = "/local/domain/0/backend/vif/64/0";
    h.xs.tool_ok("xenstore-write", &[&format!("{be}/ip"), "198.51.100.65"])
        .expect("write");
    until_status(&h, &v, |e| {
        e["addresses"] == serde_json::json!(["198.51.100.65"])
    });
    let e = h.entry(&v).expect("in status");
    assert_eq!(e["mode"], "locked", "{e}");
}
