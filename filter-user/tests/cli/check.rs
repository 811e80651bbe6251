//! `vifguard check`: every verdict on this machine, the kernel's real
//! answers for the OK paths and simulations for what the kernel here
//! cannot be made to lack (an `ingress` qdisc on a vif, a pin root off
//! bpffs, xenstored away, a bad configuration, a foreign pin).

use std::path::Path;

use super::*;

/// The check's output: exit code, stdout, stderr.
struct Checked {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Checked {
    /// The printed line of check `label` (`kernel`, `vif vif5.0`, ...).
    fn line(&self, label: &str) -> &str {
        self.stdout
            .lines()
            // Status, padded to 4, two blanks, then the label.
            .find(|l| {
                l.get(6..)
                    .is_some_and(|r| r.starts_with(&format!("{label} ")))
            })
            .unwrap_or_else(|| panic!("no line {label:?} in:\n{}", self.stdout))
    }
}

impl Host {
    /// `vifguard check [--json]` with the host's configuration and
    /// `bpffs` (or another pin root), and extra environment.
    fn check_with(&self, bpffs: &Path, json: bool, env: &[(&str, &str)]) -> Checked {
        let mut c = Command::new("nsenter");
        c.arg(format!("--net=/run/netns/{}", self.dom0.name))
            .arg(BIN)
            .arg("--bpffs")
            .arg(bpffs)
            .arg("--config")
            .arg(&self.config)
            .arg("check")
            .env("XENSTORED_PATH", self.xs.socket_path());
        if json {
            c.arg("--json");
        }
        for (k, v) in env {
            c.env(k, v);
        }
        let out = c.output().expect("run vifguard check");
        Checked {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    fn check(&self) -> Checked {
        self.check_with(&self.root, false, &[])
    }

    /// The JSON report, with its exit code.
    fn check_json(&self, env: &[(&str, &str)]) -> (Option<i32>, serde_json::Value) {
        let c = self.check_with(&self.root, true, env);
        let j = serde_json::from_str(&c.stdout)
            .unwrap_or_else(|e| panic!("check --json: {e}:\n{}\n{}", c.stdout, c.stderr));
        (c.code, j)
    }

    /// `tc qdisc show dev IFACE` in dom0.
    fn qdiscs(&self, iface: &str) -> String {
        let out = self.dom0.exec(&["tc", "qdisc", "show", "dev", iface]);
        assert!(out.status.success(), "{}", stderr(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The keys xenopsd writes for a locked XAPI VIF (vm pointer, backend
    /// MAC, private directory), dom0-owned.
    fn xapi_vif(&mut self, domid: u32, devid: u32) -> String {
        let name = self.vif(domid, devid);
        let be = format!("/local/domain/0/backend/vif/{domid}/{devid}");
        // xl's `ip` must not be what decides: XAPI comes first.
        let _ = self.xs.tool("xenstore-rm", &[&format!("{be}/ip")]);
        let uuid = format!("6b3f0c2e-0000-4000-8000-{domid:012}");
        let private = format!("/xapi/{uuid}/private/vif/{devid}");
        for (k, v) in [
            (format!("/local/domain/{domid}/vm"), format!("/vm/{uuid}")),
            (format!("{private}/locking-mode"), "locked".to_string()),
            (format!("{private}/ipv4-allowed"), ip_of(domid, devid)),
        ] {
            self.xs
                .tool_ok("xenstore-write", &[&k, &v])
                .expect("xenstore-write");
        }
        for (node, perms) in [
            (format!("/local/domain/{domid}"), vec!["n0", "r0"]),
            (format!("/xapi/{uuid}"), vec!["n0"]),
        ] {
            let mut args = vec!["-r", node.as_str()];
            args.extend(perms);
            self.xs
                .tool_ok("xenstore-chmod", &args)
                .expect("xenstore-chmod");
        }
        name
    }
}

/// The entry of check `check` (and `subject`) in a JSON report.
fn entry<'a>(
    j: &'a serde_json::Value,
    check: &str,
    subject: Option<&str>,
) -> &'a serde_json::Value {
    j["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .find(|c| c["check"] == check && c["subject"].as_str() == subject)
        .unwrap_or_else(|| panic!("no check {check} {subject:?} in {j:#}"))
}

/// Every file and directory below `root`, for "left nothing behind".
fn tree(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut todo = vec![root.to_path_buf()];
    while let Some(d) = todo.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.filter_map(Result::ok) {
            out.push(e.path().display().to_string());
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                todo.push(e.path());
            }
        }
    }
    out.sort();
    out
}

/// Every line OK on a host as it should be: an xl vif on a Linux bridge
/// and an XAPI vif, both filtered. The probes leave nothing: no qdisc or
/// filter changed on the vifs, nothing pinned, no bpffs directory made
/// where there was none.
#[test]
fn check_all_ok_on_a_filtered_host_and_leaves_nothing_behind() {
    let mut h = Host::new();
    // Before anything is attached the pin root does not exist: the check
    // must not create it.
    let c = h.check();
    assert!(!h.root.exists(), "check created {}", h.root.display());
    assert_eq!(c.code, Some(0), "{}\n{}", c.stdout, c.stderr);
    assert!(c.line("vifs").contains("no vif interfaces"), "{}", c.stdout);

    let a = h.vif(70, 0);
    let b = h.xapi_vif(71, 0);
    h.dom0.ip(&["link", "add", "xenbr0", "type", "bridge"]);
    h.dom0.ip(&["link", "set", "xenbr0", "up"]);
    h.dom0.ip(&["link", "set", &a, "master", "xenbr0"]);
    h.set_backend_key(70, 0, "bridge", "xenbr0");
    for v in [&a, &b] {
        let out = h.hotplug("online", v);
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let before = (h.qdiscs(&a), h.qdiscs(&b), h.filters(), tree(&h.root));

    let c = h.check();
    assert_eq!(c.code, Some(0), "{}\n{}", c.stdout, c.stderr);
    assert!(
        c.stderr.contains("vifguard can work here (0 warning(s))"),
        "{}",
        c.stderr
    );
    for label in [
        "config",
        "kernel",
        "map.hash",
        "map.percpu_array",
        "map.lru_percpu_hash",
        "map.lpm_trie",
        "map.ringbuf",
        "btf",
        "global_data",
        "programs",
        "tc",
        "tcx",
        "batch_lookup",
        "bpffs",
        "pins",
        "xenstore",
        "toolstack",
    ] {
        assert!(c.line(label).starts_with("OK "), "{}", c.stdout);
    }
    assert!(
        c.stdout.lines().all(|l| l.starts_with("OK ")),
        "{}",
        c.stdout
    );
    assert!(
        c.line("map.ringbuf")
            .contains("ring buffer map (Linux 5.8) created"),
        "{}",
        c.stdout
    );
    assert!(
        c.line("programs")
            .contains("5 programs loaded and verified, not attached: vifguard_tc_from_guest"),
        "{}",
        c.stdout
    );
    assert!(
        c.line("tc")
            .contains("probed on the loopback of a private network namespace"),
        "{}",
        c.stdout
    );
    assert!(
        c.line("toolstack")
            .contains(&format!("XAPI ({b}); xl ({a})")),
        "{}",
        c.stdout
    );
    assert_eq!(
        c.line(&format!("vif {a}"))
            .split_once(&a)
            .map(|(_, r)| r.trim()),
        Some(
            "policy from xl (locked); Linux bridge xenbr0; filtered (tc-ingress, tc-egress via tc)"
        )
    );
    assert!(
        c.line(&format!("vif {b}"))
            .contains("policy from xapi (locked); not on a bridge;"),
        "{}",
        c.stdout
    );
    let after = (h.qdiscs(&a), h.qdiscs(&b), h.filters(), tree(&h.root));
    assert_eq!(before, after, "the check changed the host");

    let (code, j) = h.check_json(&[]);
    assert_eq!(code, Some(0));
    assert_eq!(j["status"], "OK");
    assert_eq!(j["exit_code"], 0);
    let v = entry(&j, "vif", Some(&a));
    assert_eq!(v["status"], "OK");
    assert_eq!(v["data"]["bridge"]["kind"], "linux");
    assert_eq!(v["data"]["bridge"]["name"], "xenbr0");
    assert_eq!(v["data"]["source"], "xl");
    assert_eq!(v["data"]["ingress_qdisc"], false);
    assert_eq!(v["data"]["hooks"][0]["method"], "tc");
    assert_eq!(entry(&j, "vif", Some(&b))["data"]["source"], "xapi");
    assert_eq!(entry(&j, "toolstack", None)["data"]["vifs"]["xapi"][0], b);
    assert_eq!(entry(&j, "map.ringbuf", None)["data"]["since"], "5.8");
    assert_eq!(entry(&j, "tcx", None)["data"]["used"], false);
    for v in [&a, &b] {
        assert!(h.hotplug("offline", v).status.success());
    }
}

/// An `ingress` qdisc (what Open vSwitch's ingress policing installs) on
/// a vif with attach = "tc": FAIL naming the vif and the fix, exit 1; the
/// qdisc is left as it was. With attach = "tcx" it is no conflict.
#[test]
fn check_fails_on_an_ingress_qdisc_with_attach_tc() {
    let mut h = Host::new();
    let ok = h.vif(72, 0);
    let bad = h.vif(73, 0);
    assert!(h.hotplug("online", &ok).status.success());
    let out = h.dom0.exec(&["tc", "qdisc", "add", "dev", &bad, "ingress"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let qdiscs = h.qdiscs(&bad);

    let c = h.check();
    assert_eq!(c.code, Some(1), "{}\n{}", c.stdout, c.stderr);
    let line = c.line(&format!("vif {bad}"));
    assert!(line.starts_with("FAIL  vif vif73.0 "), "{line}");
    assert!(
        line.contains("has an `ingress` qdisc, which cannot coexist with the clsact qdisc attach = \"tc\" needs")
            && line.contains("-> ")
            && line.contains("tc qdisc del dev vif73.0 ingress")
            && line.contains("ingress_policing_rate=0")
            && line.contains("set attach = \"tcx\""),
        "{line}"
    );
    assert!(
        c.line(&format!("vif {ok}")).starts_with("OK "),
        "{}",
        c.stdout
    );
    assert!(
        c.stderr
            .contains("vifguard cannot work here: 1 failed (vif vif73.0)"),
        "{}",
        c.stderr
    );
    let (code, j) = h.check_json(&[]);
    assert_eq!(code, Some(1));
    assert_eq!((&j["status"], &j["exit_code"]), (&"FAIL".into(), &1.into()));
    let v = entry(&j, "vif", Some(&bad));
    assert_eq!(v["status"], "FAIL");
    assert_eq!(v["data"]["ingress_qdisc"], true);
    assert!(
        v["fix"]
            .as_str()
            .unwrap_or("")
            .contains("tc qdisc del dev vif73.0 ingress")
    );
    assert_eq!(h.qdiscs(&bad), qdiscs, "the check touched the qdisc");

    // attach = "tcx": the ingress qdisc is no conflict; the vif is only
    // not filtered yet (WARN), so the check passes.
    h.set_attach("tcx");
    let c = h.check();
    let line = c.line(&format!("vif {bad}"));
    assert!(
        line.starts_with("WARN ")
            && line.contains("has an `ingress` qdisc (no conflict with attach = \"tcx\")")
            && line.contains("not filtered: no vifguard hook -> run `vifguard sync`"),
        "{line}"
    );
    if tcx_here() {
        assert_eq!(c.code, Some(0), "{}\n{}", c.stdout, c.stderr);
        assert!(c.line("tcx").starts_with("OK "), "{}", c.stdout);
        assert!(!c.line("tcx").contains("not used"), "{}", c.stdout);
        assert!(
            c.line("tc").contains("not used: attach = \"tcx\""),
            "{}",
            c.stdout
        );
    }
    assert!(h.hotplug("offline", &ok).status.success());
}

/// The pin root on a filesystem that is not bpffs: FAIL, exit 1.
#[test]
fn check_fails_when_the_pin_root_is_not_on_bpffs() {
    let h = Host::new();
    let dir = std::env::temp_dir().join(format!("vifguard-check-nobpffs-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("mkdir");
    let c = h.check_with(&dir, false, &[]);
    let line = c.line("bpffs").to_string();
    let json = h.check_with(&dir, true, &[]);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(c.code, Some(1), "{}\n{}", c.stdout, c.stderr);
    assert!(
        line.starts_with("FAIL  bpffs ")
            && line.contains(&format!("{} is not on a bpf filesystem", dir.display()))
            && line.contains("-> set `bpffs` in the configuration"),
        "{line}"
    );
    assert!(c.stderr.contains("1 failed (bpffs)"), "{}", c.stderr);
    assert_eq!(json.code, Some(1));
    let j: serde_json::Value = serde_json::from_str(&json.stdout).expect("JSON");
    assert_eq!(j["status"], "FAIL");
    let b = entry(&j, "bpffs", None);
    assert_eq!(b["status"], "FAIL");
    assert_eq!(b["data"]["on_bpffs"], false);
}

/// No xenstored (a socket nobody listens on): FAIL, exit 1; the vifs are
/// still looked at, without their policy.
#[test]
fn check_fails_without_xenstore() {
    let mut h = Host::new();
    let v = h.vif(74, 0);
    let away = [(
        "XENSTORED_PATH",
        "/nonexistent/vifguard-test/xenstored.sock",
    )];
    let c = h.check_with(&h.root, false, &away);
    assert_eq!(c.code, Some(1), "{}\n{}", c.stdout, c.stderr);
    let line = c.line("xenstore");
    assert!(
        line.starts_with("FAIL  xenstore ")
            && line.contains("/nonexistent/vifguard-test/xenstored.sock")
            && line.contains("-> start xenstored"),
        "{line}"
    );
    assert!(
        !c.stdout
            .lines()
            .any(|l| l.get(6..).is_some_and(|r| r.starts_with("toolstack "))),
        "{}",
        c.stdout
    );
    assert!(
        c.line(&format!("vif {v}"))
            .contains("policy not read (xenstore unreachable)"),
        "{}",
        c.stdout
    );
    let (code, j) = h.check_json(&away);
    assert_eq!(code, Some(1));
    let x = entry(&j, "xenstore", None);
    assert_eq!(x["status"], "FAIL");
    assert_eq!(x["data"]["reachable"], false);
}

/// A configuration error: FAIL naming the key, exit 1; the other checks
/// still run (on the defaults).
#[test]
fn check_fails_on_a_configuration_error() {
    let mut h = Host::new();
    h.set_attach("bogus");
    let c = h.check();
    assert_eq!(c.code, Some(1), "{}\n{}", c.stdout, c.stderr);
    let line = c.line("config");
    assert!(
        line.starts_with("FAIL  config ")
            && line.contains("attach")
            && line.contains("bogus")
            && line.contains("-> fix "),
        "{line}"
    );
    assert!(c.line("kernel").starts_with("OK "), "{}", c.stdout);
    assert!(c.line("xenstore").starts_with("OK "), "{}", c.stdout);
    assert!(c.stderr.contains("1 failed (config)"), "{}", c.stderr);
    let (code, j) = h.check_json(&[]);
    assert_eq!(code, Some(1));
    assert_eq!(entry(&j, "config", None)["status"], "FAIL");
    assert_eq!(entry(&j, "programs", None)["status"], "OK");
}

/// WARN, exit 0: a vif not filtered yet, a vif whose policy fails closed,
/// and programs pinned by another vifguard version. FAIL, exit 1: a
/// foreign pin where a map belongs.
#[test]
fn check_warns_and_fails_on_vif_and_pin_state() {
    let mut h = Host::new();
    let plain = h.vif(75, 0);
    let untrusted = h.vif(76, 0);
    // The guest owns its ip node: not trusted as policy.
    h.xs.tool_ok(
        "xenstore-chmod",
        &["/local/domain/0/backend/vif/76/0/ip", "n76"],
    )
    .expect("chmod");
    // Another version's programs directory (what an upgrade leaves until
    // `vifguard sync`).
    let progs = h.v().join("progs").join("0123456789abcdef");
    std::fs::create_dir_all(&progs).expect("mkdir in bpffs");

    let c = h.check();
    assert_eq!(c.code, Some(0), "{}\n{}", c.stdout, c.stderr);
    assert!(c.stderr.contains("(3 warning(s))"), "{}", c.stderr);
    let line = c.line(&format!("vif {plain}"));
    assert!(
        line.starts_with("WARN  vif vif75.0 ")
            && line.contains(
                "policy from xl (locked); not on a bridge; not filtered: no vifguard hook"
            )
            && line.ends_with("-> run `vifguard sync` (or plug the vif again)"),
        "{line}"
    );
    let line = c.line(&format!("vif {untrusted}"));
    assert!(
        line.starts_with("WARN  vif vif76.0 ")
            && line.contains("policy cannot be used (")
            && line.contains("backend/vif/76/0/ip")
            && line.contains("the vif drops everything"),
        "{line}"
    );
    let line = c.line("pins");
    assert!(
        line.starts_with("WARN  pins ")
            && line.contains("0123456789abcdef")
            && line.contains("-> run `vifguard sync`"),
        "{line}"
    );
    assert!(
        c.line("toolstack")
            .contains("policy unresolved (vif76.0); xl (vif75.0)"),
        "{}",
        c.stdout
    );
    let (code, j) = h.check_json(&[]);
    assert_eq!(code, Some(0));
    assert_eq!(j["status"], "WARN");
    assert_eq!(
        entry(&j, "vif", Some(&plain))["data"]["hooks"],
        serde_json::json!([])
    );
    assert!(
        entry(&j, "vif", Some(&untrusted))["data"]["policy_error"]
            .as_str()
            .unwrap_or("")
            .contains("not trusted")
    );
    assert_eq!(entry(&j, "pins", None)["status"], "WARN");

    // A directory where the POLICY map belongs: every loading command
    // refuses it, so the check fails.
    std::fs::create_dir_all(h.v().join("maps").join("POLICY")).expect("mkdir");
    let c = h.check();
    assert_eq!(c.code, Some(1), "{}\n{}", c.stdout, c.stderr);
    let line = c.line("pins");
    assert!(
        line.starts_with("FAIL  pins ")
            && line.contains("maps/POLICY")
            && line.contains("-> move the named pin away"),
        "{line}"
    );
}

/// A private ovsdb-server and ovs-vswitchd (userspace datapath) in dom0's
/// namespace, stopped by their pids when dropped (as in
/// tests/setup_vif_rules.rs).
struct Ovs {
    dir: PathBuf,
    pids: Vec<i32>,
}

impl Ovs {
    fn start(h: &Host) -> Ovs {
        let dir = std::env::temp_dir().join(format!(
            "vifguard-check-ovs-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("OVS directory");
        let p = |f: &str| dir.join(f).to_string_lossy().into_owned();
        testbed::netns::sh(&[
            "ovsdb-tool",
            "create",
            &p("conf.db"),
            "/usr/share/openvswitch/vswitch.ovsschema",
        ]);
        let netns = format!("--net=/run/netns/{}", h.dom0.name);
        let mut ovs = Ovs {
            dir: dir.clone(),
            pids: Vec::new(),
        };
        let pid = |f: &str| -> i32 {
            std::fs::read_to_string(dir.join(f))
                .expect("pid file")
                .trim()
                .parse()
                .expect("pid")
        };
        testbed::netns::sh(&[
            "nsenter",
            &netns,
            "ovsdb-server",
            &p("conf.db"),
            &format!("--remote=punix:{}", p("db.sock")),
            &format!("--pidfile={}", p("ovsdb-server.pid")),
            &format!("--unixctl={}", p("ovsdb-server.ctl")),
            &format!("--log-file={}", p("ovsdb-server.log")),
            "--detach",
            "--no-chdir",
        ]);
        ovs.pids.push(pid("ovsdb-server.pid"));
        ovs.vsctl(&["--no-wait", "init"]);
        testbed::netns::sh(&[
            "nsenter",
            &netns,
            "ovs-vswitchd",
            &format!("unix:{}", p("db.sock")),
            &format!("--pidfile={}", p("ovs-vswitchd.pid")),
            &format!("--unixctl={}", p("ovs-vswitchd.ctl")),
            &format!("--log-file={}", p("ovs-vswitchd.log")),
            "--detach",
            "--no-chdir",
        ]);
        ovs.pids.push(pid("ovs-vswitchd.pid"));
        ovs
    }

    fn vsctl(&self, args: &[&str]) -> String {
        let out = Command::new("ovs-vsctl")
            .arg(format!("--db=unix:{}", self.dir.join("db.sock").display()))
            .arg("--timeout=30")
            .args(args)
            .output()
            .expect("ovs-vsctl");
        assert!(out.status.success(), "ovs-vsctl {args:?}: {}", stderr(&out));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// What vifguard's ovs-vsctl needs to find this database.
    fn env(&self) -> (&'static str, String) {
        ("OVS_RUNDIR", self.dir.display().to_string())
    }
}

impl Drop for Ovs {
    fn drop(&mut self) {
        for pid in self.pids.iter().rev() {
            let _ = Command::new("kill").arg(pid.to_string()).status();
        }
        std::thread::sleep(Duration::from_millis(200));
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A vif on an Open vSwitch bridge with ingress policing, which makes
/// Open vSwitch install an `ingress` qdisc on it (a real one, not
/// simulated): FAIL with attach = "tc", naming the bridge kind; the fix
/// the line gives (policing off) clears it.
#[test]
fn check_names_an_open_vswitch_port_and_its_policing_qdisc() {
    let mut h = Host::new();
    let ovs = Ovs::start(&h);
    ovs.vsctl(&[
        "add-br",
        "xapi1",
        "--",
        "set",
        "bridge",
        "xapi1",
        "datapath_type=netdev",
    ]);
    let vif = h.vif(77, 0);
    h.set_backend_key(77, 0, "bridge", "xapi1");
    ovs.vsctl(&["add-port", "xapi1", &vif]);
    ovs.vsctl(&["set", "interface", &vif, "ingress_policing_rate=1000"]);
    let (k, v) = ovs.env();
    let env = [(k, v.as_str())];
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !h.qdiscs(&vif).contains("qdisc ingress") {
        assert!(
            std::time::Instant::now() < deadline,
            "no ingress qdisc from OVS policing: {}",
            h.qdiscs(&vif)
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    let c = h.check_with(&h.root, false, &env);
    assert_eq!(c.code, Some(1), "{}\n{}", c.stdout, c.stderr);
    let line = c.line(&format!("vif {vif}"));
    assert!(
        line.starts_with("FAIL  vif vif77.0 ")
            && line.contains(
                "policy from xl (locked); Open vSwitch bridge xapi1; has an `ingress` qdisc"
            )
            && line.contains(&format!(
                "ovs-vsctl set interface {vif} ingress_policing_rate=0"
            )),
        "{line}"
    );
    let c = h.check_with(&h.root, true, &env);
    let j: serde_json::Value = serde_json::from_str(&c.stdout).expect("JSON");
    let e = entry(&j, "vif", Some(&vif));
    assert_eq!(
        e["data"]["bridge"],
        serde_json::json!({"kind": "openvswitch", "name": "xapi1"})
    );
    assert_eq!(e["data"]["ingress_qdisc"], true);

    // The fix: policing off; Open vSwitch removes its qdisc.
    ovs.vsctl(&["set", "interface", &vif, "ingress_policing_rate=0"]);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while h.qdiscs(&vif).contains("qdisc ingress") {
        assert!(std::time::Instant::now() < deadline, "qdisc stayed");
        std::thread::sleep(Duration::from_millis(100));
    }
    let c = h.check_with(&h.root, false, &env);
    assert_eq!(c.code, Some(0), "{}\n{}", c.stdout, c.stderr);
    let line = c.line(&format!("vif {vif}"));
    assert!(
        line.starts_with("WARN  vif vif77.0 ")
            && line.contains("policy from xl (locked); Open vSwitch bridge xapi1; not filtered"),
        "{line}"
    );
}
