//! The `vifguard` binary against real kernel state: veths named like
//! netback vifs in a namespace the test creates, the test xenstored filled
//! with the real `xenstore-write`, a private bpffs root per test.
//!
//! The binary runs in the namespace via `nsenter --net` (not `ip netns
//! exec`, which remounts /sys and so hides /sys/fs/bpf). Needs root.
//!
//! This file holds the simulated host ([`Host`]) and helpers; the tests
//! are grouped by topic in the modules below.

use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use filter_common::{Direction, Reason};
use testbed::frames::{BROADCAST, Frame, Mac};
use testbed::netns::{NetNs, RawSocket, veth, vifguard_tc_filters};
use testbed::xenstored::TestXenstored;

mod bad_input;
mod check;
mod hotplug;
mod report;
mod upgrade;
mod watch;

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
        self.cmd_of(BIN, args, env)
    }

    /// As [`Host::cmd`], with another vifguard binary (an older release).
    fn cmd_of(&self, bin: &str, args: &[&str], env: &[(&str, &str)]) -> Command {
        let mut c = Command::new("nsenter");
        c.arg(format!("--net=/run/netns/{}", self.dom0.name))
            .arg(bin)
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
        testbed::kernel::remove_root(&self.root);
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

impl Host {
    /// Points the host configuration's `policy_dir` at a fresh directory
    /// (root-owned, 0755) and returns it; `extra` goes into the
    /// configuration too.
    fn policy_dir(&mut self, extra: &str) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let dir =
            std::env::temp_dir().join(format!("vifguard-test-vifs-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("policy dir");
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let path =
            std::env::temp_dir().join(format!("vifguard-test-{}-{n}.toml", std::process::id()));
        std::fs::write(
            &path,
            format!("policy_dir = {:?}\n{extra}", dir.display().to_string()),
        )
        .expect("write config");
        self.config = path;
        dir
    }

    /// Writes `key` (relative to the vif's backend directory) in xenstore.
    fn set_backend_key(&self, domid: u32, devid: u32, key: &str, value: &str) {
        let node = format!("/local/domain/0/backend/vif/{domid}/{devid}/{key}");
        self.xs
            .tool_ok("xenstore-write", &[&node, value])
            .expect("xenstore-write");
    }
}

/// `bpftool -j <args>`. A listing walks every object of the machine by
/// id and fails when one vanishes between the walk and its open (another
/// test, or any process, closing a link): such a run is retried.
fn bpftool_json(args: &[&str]) -> serde_json::Value {
    let mut tries = 0;
    loop {
        let out = Command::new("bpftool")
            .arg("-j")
            .args(args)
            .output()
            .expect("run bpftool");
        tries += 1;
        if out.status.success() {
            return serde_json::from_slice(&out.stdout).expect("bpftool JSON");
        }
        // With -j, bpftool reports its error as JSON on stdout.
        assert!(
            tries < 20,
            "bpftool {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            stderr(&out)
        );
        std::thread::sleep(Duration::from_millis(10));
    }
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
