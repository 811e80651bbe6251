//! `vifguard setup-vif-rules`, XAPI's hook, against real kernel state: a
//! dom0 namespace the test creates with a Linux bridge `xenbr0` and a LAN
//! namespace behind it (a receiver counts what crosses the bridge), vifs
//! as veths with the guest end in a namespace of its own, the test
//! xenstored filled the way xenopsd fills it (real `xenstore-write`,
//! `-rm`, `-chmod`), and for Open vSwitch a real `ovsdb-server` and
//! `ovs-vswitchd` (userspace datapath: this kernel has no openvswitch
//! module) with their own database and sockets, checked through
//! `ovs-vsctl` against that database.
//!
//! The binary runs in dom0 via `nsenter --net` (see cli.rs), called as
//! xenopsd calls it: through `scripts/vifguard-setup-vif-rules` with the
//! five arguments only. Needs root.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use testbed::frames::{BROADCAST, Frame, Mac};
use testbed::netns::{NetNs, RawSocket, sh, veth, vifguard_tc_filters};
use testbed::xenstored::TestXenstored;

static NEXT: AtomicU32 = AtomicU32::new(0);
const BIN: &str = env!("CARGO_BIN_EXE_vifguard");
const WRAPPER: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/scripts/vifguard-setup-vif-rules"
);

/// Addresses of the live update (RFC 5737): allowed before, allowed
/// after, never allowed.
const OLD: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 10);
const NEW: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 10);
const NEVER: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 66);

fn mac(domid: u32, devid: u32) -> Mac {
    [0x00, 0x16, 0x3e, 0x00, domid as u8, devid as u8]
}

fn mac_str(m: Mac) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

fn uuid(domid: u32) -> String {
    format!("6b3f0c2e-0000-4000-8000-{domid:012}")
}

fn private(domid: u32, devid: u32) -> String {
    format!("/xapi/{}/private/vif/{devid}", uuid(domid))
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A simulated XAPI host: dom0 with `xenbr0`, a LAN namespace on it.
struct Host {
    root: PathBuf,
    xs: TestXenstored,
    guests: Vec<NetNs>,
    lan: NetNs,
    dom0: NetNs,
    /// `OVS_RUNDIR` for vifguard's ovs-vsctl, when the test runs OVS.
    ovs_rundir: Option<PathBuf>,
}

impl Host {
    fn new() -> Host {
        let root = PathBuf::from(format!(
            "/sys/fs/bpf/vifguard-svr-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        ));
        let dom0 = NetNs::new("svr0");
        let lan = NetNs::new("svrlan");
        dom0.ip(&["link", "add", "xenbr0", "type", "bridge"]);
        dom0.ip(&["link", "set", "xenbr0", "up"]);
        veth(&dom0, "uplink", &lan, "eth0");
        dom0.ip(&["link", "set", "uplink", "master", "xenbr0"]);
        Host {
            root,
            xs: TestXenstored::start(),
            guests: Vec::new(),
            lan,
            dom0,
            ovs_rundir: None,
        }
    }

    /// `vif<domid>.<devid>` in dom0, `eth0` with the vif's MAC in a guest
    /// namespace; the dom0 end up or down (XAPI's vif script sets it down
    /// before it calls setup-vif-rules).
    fn vif(&mut self, domid: u32, devid: u32, up: bool) -> String {
        let g = NetNs::new("svrg");
        let name = format!("vif{domid}.{devid}");
        veth(&self.dom0, &name, &g, "eth0");
        g.ip(&[
            "link",
            "set",
            "eth0",
            "address",
            &mac_str(mac(domid, devid)),
        ]);
        if !up {
            self.dom0.ip(&["link", "set", &name, "down"]);
        }
        self.guests.push(g);
        name
    }

    fn write(&self, pairs: &[(&str, &str)]) {
        let args: Vec<&str> = pairs.iter().flat_map(|(k, v)| [*k, *v]).collect();
        self.xs
            .tool_ok("xenstore-write", &args)
            .expect("xenstore-write");
    }

    fn chmod(&self, path: &str, perms: &[&str]) {
        let mut args = vec!["-r", path];
        args.extend_from_slice(perms);
        self.xs
            .tool_ok("xenstore-chmod", &args)
            .expect("xenstore-chmod");
    }

    /// The keys xenopsd writes for a locked VIF on plug: the guest's `vm`
    /// pointer, the backend's `mac` (and `bridge` if `backend_bridge`),
    /// and the private directory with the locking mode, the network's
    /// bridge and the uuids the vSwitch external-ids come from.
    fn xapi_keys(
        &self,
        domid: u32,
        devid: u32,
        ipv4: Ipv4Addr,
        backend_bridge: Option<&str>,
        bridge: &str,
    ) {
        let u = uuid(domid);
        let dom = format!("/local/domain/{domid}");
        let be = format!("/local/domain/0/backend/vif/{domid}/{devid}");
        let p = private(domid, devid);
        let v4 = ipv4.to_string();
        let m = mac_str(mac(domid, devid));
        let vm = format!("/vm/{u}");
        self.write(&[(&format!("{dom}/vm"), &vm), (&format!("{vm}/uuid"), &u)]);
        self.chmod(&dom, &["n0", &format!("r{domid}")]);
        self.chmod(&vm, &["n0"]);
        let mut backend = vec![(format!("{be}/mac"), m)];
        if let Some(b) = backend_bridge {
            backend.push((format!("{be}/bridge"), b.to_string()));
        }
        let backend: Vec<(&str, &str)> = backend
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        self.write(&backend);
        self.chmod(&be, &["n0", &format!("r{domid}")]);
        let keys = [
            ("locking-mode", "locked"),
            ("ipv4-allowed", v4.as_str()),
            ("ipv6-allowed", ""),
            ("bridge", bridge),
            ("vif-uuid", "0f0e0d0c-0000-4000-8000-00000000aaaa"),
            ("network-uuid", "0f0e0d0c-0000-4000-8000-00000000bbbb"),
            ("setup-vif-rules", "/usr/sbin/vifguard-setup-vif-rules"),
            ("xenopsd-backend", "classic"),
        ];
        let keys: Vec<(String, &str)> =
            keys.iter().map(|(k, v)| (format!("{p}/{k}"), *v)).collect();
        let keys: Vec<(&str, &str)> = keys.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        self.write(&keys);
        self.chmod(&format!("/xapi/{u}"), &["n0"]);
    }

    /// xenopsd's `set_locking_mode`, step by step as it does it: the three
    /// keys removed, the new ones written one at a time (no transaction,
    /// `locking-mode` first), then the frontend's disconnect flag.
    fn xenopsd_set_locking_mode(&self, domid: u32, devid: u32, mode: &str, ipv4: &str) {
        let p = private(domid, devid);
        for k in ["locking-mode", "ipv4-allowed", "ipv6-allowed"] {
            // safe_rm: a missing key is fine.
            let _ = self.xs.tool("xenstore-rm", &[&format!("{p}/{k}")]);
        }
        self.write(&[(&format!("{p}/locking-mode"), mode)]);
        if mode == "locked" {
            self.write(&[(&format!("{p}/ipv4-allowed"), ipv4)]);
            self.write(&[(&format!("{p}/ipv6-allowed"), "")]);
        }
        let flag = if mode == "disabled" { "1" } else { "0" };
        self.write(&[(
            &format!("/local/domain/{domid}/device/vif/{devid}/disconnect"),
            flag,
        )]);
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new("nsenter");
        c.arg(format!("--net=/run/netns/{}", self.dom0.name))
            .arg(BIN)
            .arg("--bpffs")
            .arg(&self.root)
            .arg("--config")
            .arg("/nonexistent/vifguard.toml")
            .args(args)
            .env("XENSTORED_PATH", self.xs.socket_path());
        c
    }

    /// `vifguard-setup-vif-rules classic <iface> <uuid> <devid> <action>`,
    /// as xenopsd runs it.
    fn setup(&self, iface: &str, action: &str) -> Output {
        let (domid, devid) = ids(iface);
        self.setup_as(iface, &uuid(domid), &devid.to_string(), action)
    }

    /// Through the wrapper xenopsd.conf names, with the five arguments
    /// only (the bpffs root and configuration come from the environment).
    fn setup_as(&self, iface: &str, uuid: &str, devid: &str, action: &str) -> Output {
        let mut c = Command::new("nsenter");
        c.arg(format!("--net=/run/netns/{}", self.dom0.name))
            .arg(WRAPPER)
            .args(["classic", iface, uuid, devid, action])
            .env("VIFGUARD", BIN)
            .env("VIFGUARD_BPFFS", &self.root)
            .env("VIFGUARD_CONFIG", "/nonexistent/vifguard.toml")
            .env("XENSTORED_PATH", self.xs.socket_path());
        if let Some(d) = &self.ovs_rundir {
            c.env("OVS_RUNDIR", d);
        }
        c.output().expect("run vifguard-setup-vif-rules")
    }

    fn setup_ok(&self, iface: &str, action: &str) -> String {
        let out = self.setup(iface, action);
        assert!(
            out.status.success(),
            "setup-vif-rules {iface} {action}: {}\n{}",
            out.status,
            stderr(&out)
        );
        stderr(&out)
    }

    /// `ip -j -d link show dev <iface>` in dom0.
    fn link(&self, iface: &str) -> serde_json::Value {
        let out = self
            .dom0
            .exec(&["ip", "-j", "-d", "link", "show", "dev", iface]);
        assert!(
            out.status.success(),
            "ip link show {iface}: {}",
            stderr(&out)
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("ip -j");
        v[0].clone()
    }

    fn master(&self, iface: &str) -> Option<String> {
        self.link(iface)["master"].as_str().map(str::to_string)
    }

    fn is_up(&self, iface: &str) -> bool {
        self.link(iface)["flags"]
            .as_array()
            .is_some_and(|f| f.iter().any(|x| x == "UP"))
    }

    /// vifguard's hooks on `iface` as the kernel lists them (bpftool).
    fn hooks(&self, iface: &str) -> Vec<&'static str> {
        let ix = u64::from(self.dom0.ifindex(iface));
        vifguard_tc_filters(&self.dom0)
            .expect("bpftool net")
            .into_iter()
            .filter(|f| f.ifindex == ix)
            .map(|f| f.hook)
            .collect()
    }

    /// `vifguard status --json` for `iface`.
    fn entry(&self, iface: &str) -> Option<serde_json::Value> {
        let out = self.cmd(&["status", "--json"]).output().expect("status");
        assert!(out.status.success(), "status: {}", stderr(&out));
        let v: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).expect("JSON");
        v.into_iter().find(|e| e["name"] == iface)
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        testbed::kernel::remove_root(&self.root);
    }
}

fn ids(iface: &str) -> (u32, u32) {
    let (d, i) = iface
        .trim_start_matches("vif")
        .trim_start_matches("tap")
        .split_once('.')
        .expect("vif name");
    (d.parse().expect("domid"), i.parse().expect("devid"))
}

/// Our frames' UDP payload: this tag, then the frame's number.
const TAG: &[u8] = b"vifguard-setup-vif-rules";

/// A UDP broadcast from the guest of `vif<domid>.<devid>` with source
/// `src`; its last 8 bytes are the frame's number, set per send.
fn frame(domid: u32, devid: u32, src: Ipv4Addr) -> Vec<u8> {
    let mut payload = TAG.to_vec();
    payload.extend_from_slice(&[0; 8]);
    Frame::eth(mac(domid, devid), BROADCAST)
        .ipv4(src, Ipv4Addr::BROADCAST)
        .udp(5000, 5000)
        .payload(&payload)
        .build()
}

/// The number of one of our frames, if `f` is one. (The UDP checksum
/// no longer matches once the number is written in; nothing on the way
/// checks it.)
fn our_number(f: &[u8]) -> Option<u64> {
    let tail = f.len().checked_sub(8)?;
    let tagged = f.get(tail.checked_sub(TAG.len())?..tail)? == TAG;
    let ipv4_udp = f.get(12..14)? == [0x08, 0x00] && f.get(23)? == &17;
    (tagged && ipv4_udp).then(|| u64::from_be_bytes(f[tail..].try_into().unwrap_or_default()))
}

/// One frame the sender sent: its source, and the time just before and
/// just after the send (the filter ran between the two: a veth delivers
/// within the send, softirqs included).
#[derive(Clone, Copy)]
struct Sent {
    src: Ipv4Addr,
    before: Instant,
    after: Instant,
}

/// Traffic through the bridge: a sender in the guest namespace sending
/// one frame from each of `sources` every `every` (zero: back to back),
/// each numbered, and a receiver in the LAN namespace noting the numbers
/// that arrive. Judging a frame by when it was sent, not by when the
/// receiver got to it, keeps the result independent of how the receiver
/// thread is scheduled.
struct Traffic {
    stop: Arc<AtomicBool>,
    sender: Option<JoinHandle<Vec<Sent>>>,
    receiver: Option<JoinHandle<Vec<u64>>>,
}

impl Traffic {
    fn start(
        h: &Host,
        guest: usize,
        domid: u32,
        devid: u32,
        sources: &[Ipv4Addr],
        every: Duration,
    ) -> Traffic {
        let stop = Arc::new(AtomicBool::new(false));
        let rx = RawSocket::open(&h.lan, "eth0");
        let tx = RawSocket::open(&h.guests[guest], "eth0");
        let mut frames: Vec<(Ipv4Addr, Vec<u8>)> = sources
            .iter()
            .map(|s| (*s, frame(domid, devid, *s)))
            .collect();
        let s = Arc::clone(&stop);
        let receiver = std::thread::spawn(move || {
            let mut got = Vec::new();
            while !s.load(Ordering::SeqCst) {
                got.extend(
                    rx.drain(Duration::from_millis(1))
                        .iter()
                        .filter_map(|f| our_number(f)),
                );
            }
            got
        });
        let s = Arc::clone(&stop);
        let sender = std::thread::spawn(move || {
            let mut sent = Vec::new();
            let mut next = Instant::now();
            while !s.load(Ordering::SeqCst) {
                for (src, f) in &mut frames {
                    let tail = f.len() - 8;
                    f[tail..].copy_from_slice(&(sent.len() as u64).to_be_bytes());
                    let before = Instant::now();
                    // A vif that is down refuses the send: not a failure.
                    if tx.try_send(f).is_ok() {
                        sent.push(Sent {
                            src: *src,
                            before,
                            after: Instant::now(),
                        });
                    }
                }
                // Zero: back to back, so even a window of microseconds
                // sees frames.
                if !every.is_zero() {
                    next += every;
                    std::thread::sleep(next.saturating_duration_since(Instant::now()));
                }
            }
            sent
        });
        Traffic {
            stop,
            sender: Some(sender),
            receiver: Some(receiver),
        }
    }

    /// Stops both; what was sent, and what of it crossed.
    fn stop(mut self) -> Seen {
        // Let frames in flight arrive.
        std::thread::sleep(Duration::from_millis(20));
        self.stop.store(true, Ordering::SeqCst);
        let sent = self
            .sender
            .take()
            .map_or_else(Vec::new, |t| t.join().expect("sender"));
        let got = self
            .receiver
            .take()
            .map_or_else(Vec::new, |t| t.join().expect("receiver"));
        let crossed = got
            .iter()
            .filter_map(|n| usize::try_from(*n).ok().and_then(|n| sent.get(n)).copied())
            .collect();
        Seen {
            sent: sent.len(),
            crossed,
        }
    }
}

impl Drop for Traffic {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// The frames that crossed the bridge.
struct Seen {
    sent: usize,
    crossed: Vec<Sent>,
}

impl Seen {
    /// How many of `src`'s frames crossed.
    fn total(&self, src: Ipv4Addr) -> usize {
        self.crossed.iter().filter(|f| f.src == src).count()
    }

    /// How many of `src`'s frames that were sent before `t` crossed.
    fn sent_before(&self, src: Ipv4Addr, t: Instant) -> usize {
        self.crossed
            .iter()
            .filter(|f| f.src == src && f.after < t)
            .count()
    }

    /// How many of `src`'s frames that were sent after `t` crossed.
    fn sent_after(&self, src: Ipv4Addr, t: Instant) -> usize {
        self.crossed
            .iter()
            .filter(|f| f.src == src && f.before > t)
            .count()
    }
}

/// `ip monitor link` in dom0: every link message the kernel sends while
/// it runs (a flag change, a new master, a release).
struct LinkMonitor {
    child: Child,
}

impl LinkMonitor {
    fn start(h: &Host) -> LinkMonitor {
        let child = Command::new("ip")
            .args(["-n", &h.dom0.name, "-o", "monitor", "link"])
            .stdout(Stdio::piped())
            .spawn()
            .expect("ip monitor");
        // Let it subscribe before anything happens.
        std::thread::sleep(Duration::from_millis(200));
        LinkMonitor { child }
    }

    /// Stops it; the lines it printed about `iface`.
    fn lines_about(mut self, iface: &str) -> Vec<String> {
        std::thread::sleep(Duration::from_millis(100));
        let _ = self.child.kill();
        let out = self.child.wait_with_output().expect("ip monitor output");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| l.contains(&format!(" {iface}@")) || l.contains(&format!(" {iface}:")))
            .map(str::to_string)
            .collect()
    }
}

/// How many times the ordering tests plug (or unplug) the vif while the
/// guest floods: an order that leaves a window of a few milliseconds, or
/// less, may slip through one round; not five.
const ROUNDS: usize = 5;

/// The vif joins the bridge only once its filter is attached: a guest
/// flooding spoofed frames through every call gets none across, its
/// legitimate frames cross once the call is done.
#[test]
fn filter_attaches_the_hooks_then_bridges_the_vif() {
    let mut h = Host::new();
    // Up before the call: frames reach the bridge the moment it joins.
    let vif = h.vif(5, 0, true);
    h.xapi_keys(5, 0, OLD, Some("xenbr0"), "xenbr0");
    assert_eq!(h.master(&vif), None);

    let traffic = Traffic::start(&h, 0, 5, 0, &[NEVER, OLD], Duration::ZERO);
    std::thread::sleep(Duration::from_millis(50));
    let mut logs = Vec::new();
    for round in 0..ROUNDS {
        if round > 0 {
            // Back to a vif just plugged: off the bridge, then no filter.
            h.dom0.ip(&["link", "set", &vif, "nomaster"]);
            let out = h.cmd(&["detach", &vif]).output().expect("detach");
            assert!(out.status.success(), "detach: {}", stderr(&out));
            assert!(h.hooks(&vif).is_empty());
        }
        logs.push(h.setup_ok(&vif, "filter"));
    }
    let done = Instant::now();
    std::thread::sleep(Duration::from_millis(200));
    let seen = traffic.stop();

    assert_eq!(
        seen.total(NEVER),
        0,
        "spoofed frames crossed the bridge ({} frames sent in all)",
        seen.sent
    );
    assert!(
        seen.sent_after(OLD, done) > 0,
        "no legitimate frame crossed"
    );
    for log in &logs {
        assert!(log.contains("added to Linux bridge xenbr0"), "{log}");
    }
    assert_eq!(h.master(&vif).as_deref(), Some("xenbr0"));
    assert!(h.is_up(&vif));
    assert_eq!(h.hooks(&vif), ["tc-egress", "tc-ingress"]);
    let e = h.entry(&vif).expect("status entry");
    assert_eq!(e["mode"], "locked");
    assert_eq!(e["addresses"], serde_json::json!([OLD.to_string()]));
}

/// A policy that fails closed (a key the guest owns) keeps the vif off the
/// bridge, up, and fails the command; so does one that fails closed on a
/// live update of a vif that was on the bridge.
#[test]
fn a_vif_whose_policy_fails_closed_stays_off_the_bridge() {
    let mut h = Host::new();
    let vif = h.vif(6, 0, false);
    h.xapi_keys(6, 0, OLD, Some("xenbr0"), "xenbr0");
    let node = format!("{}/ipv4-allowed", private(6, 0));
    h.xs.tool_ok("xenstore-chmod", &[&node, "n6"])
        .expect("chmod");

    let out = h.setup(&vif, "filter");
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(h.master(&vif), None, "bridged although its filter failed");
    assert!(
        err.contains("kept off its bridge") && err.contains(&node) && err.contains("failed closed"),
        "{err}"
    );
    assert!(h.is_up(&vif), "left down");
    assert_eq!(h.hooks(&vif), ["tc-egress", "tc-ingress"]);
    assert_eq!(h.entry(&vif).expect("entry")["mode"], "disabled");

    // Trusted again: filtered and bridged. Then an invalid value on a
    // live update: off the bridge again.
    h.xs.tool_ok("xenstore-chmod", &[&node, "n0"])
        .expect("chmod");
    h.setup_ok(&vif, "filter");
    assert_eq!(h.master(&vif).as_deref(), Some("xenbr0"));
    h.xenopsd_set_locking_mode(6, 0, "locked", "198.51.100.300");
    let out = h.setup(&vif, "filter");
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("198.51.100.300"), "{}", stderr(&out));
    assert_eq!(
        h.master(&vif),
        None,
        "left on the bridge with a failed-closed policy"
    );
    assert_eq!(h.entry(&vif).expect("entry")["mode"], "disabled");
}

/// `clear` takes the vif off the bridge before it removes the filter: a
/// guest flooding spoofed frames through every call gets none across.
#[test]
fn clear_takes_the_vif_off_then_detaches() {
    let mut h = Host::new();
    let vif = h.vif(7, 0, false);
    h.xapi_keys(7, 0, OLD, Some("xenbr0"), "xenbr0");

    let traffic = Traffic::start(&h, 0, 7, 0, &[NEVER, OLD], Duration::ZERO);
    let mut logs = Vec::new();
    for _ in 0..ROUNDS {
        h.setup_ok(&vif, "filter");
        assert_eq!(h.master(&vif).as_deref(), Some("xenbr0"));
        // The guest's frames cross now: the flood is on.
        std::thread::sleep(Duration::from_millis(20));
        logs.push(h.setup_ok(&vif, "clear"));
        assert_eq!(h.master(&vif), None);
        assert!(h.hooks(&vif).is_empty(), "{:?}", h.hooks(&vif));
    }
    let seen = traffic.stop();

    assert_eq!(
        seen.total(NEVER),
        0,
        "spoofed frames crossed the bridge ({} frames sent in all)",
        seen.sent
    );
    assert!(seen.total(OLD) > 0, "no legitimate frame ever crossed");
    for log in &logs {
        assert!(log.contains("off its bridge, then detached"), "{log}");
    }
    assert!(h.entry(&vif).is_none());
    // Gone already (a remove hotplug): nothing left, exit 0.
    h.dom0.ip(&["link", "del", &vif]);
    h.setup_ok(&vif, "clear");
}

/// XAPI's live update, exactly as xenopsd runs it, on a filtered and
/// bridged vif while its guest sends every millisecond from the old, the
/// new and a never-allowed address: after the call the new address
/// passes and the old one drops, the never-allowed one never passes, and
/// the vif stays on its bridge, up, without a single link change.
#[test]
fn live_update_the_xenopsd_way() {
    let mut h = Host::new();
    let vif = h.vif(8, 0, false);
    h.xapi_keys(8, 0, OLD, Some("xenbr0"), "xenbr0");
    h.setup_ok(&vif, "filter");
    let master = h.master(&vif);
    assert_eq!(master.as_deref(), Some("xenbr0"));

    let monitor = LinkMonitor::start(&h);
    let traffic = Traffic::start(&h, 0, 8, 0, &[OLD, NEW, NEVER], Duration::from_millis(1));
    std::thread::sleep(Duration::from_millis(300));
    let begin = Instant::now();
    h.xenopsd_set_locking_mode(8, 0, "locked", &NEW.to_string());
    let out = h.setup(&vif, "filter");
    let done = Instant::now();
    std::thread::sleep(Duration::from_millis(300));
    let seen = traffic.stop();
    let link_events = monitor.lines_about(&vif);

    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        seen.sent_before(OLD, begin) > 0,
        "the old address never passed"
    );
    assert_eq!(
        seen.sent_before(NEW, begin),
        0,
        "the new address passed before the update"
    );
    assert_eq!(
        seen.sent_after(OLD, done),
        0,
        "the old address still passes after the call"
    );
    assert!(
        seen.sent_after(NEW, done) > 0,
        "the new address does not pass after the call"
    );
    assert_eq!(
        seen.total(NEVER),
        0,
        "the never-allowed address passed ({} frames sent in all)",
        seen.sent
    );
    assert_eq!(h.master(&vif), master, "bridge membership changed");
    assert!(h.is_up(&vif));
    assert!(
        link_events.is_empty(),
        "the vif's link changed: {link_events:#?}"
    );
    assert!(
        stderr(&out).contains("already a port of Linux bridge xenbr0"),
        "{}",
        stderr(&out)
    );
    let e = h.entry(&vif).expect("entry");
    assert_eq!(e["addresses"], serde_json::json!([NEW.to_string()]));
    assert_eq!(e["applied"]["by"], "setup-vif-rules", "{e}");
}

/// XAPI's `disabled` locking mode keeps the vif off the bridge (up, its
/// filter dropping everything); back to `locked`, it rejoins.
#[test]
fn disabled_mode_keeps_the_vif_off_the_bridge() {
    let mut h = Host::new();
    let vif = h.vif(9, 0, false);
    h.xapi_keys(9, 0, OLD, Some("xenbr0"), "xenbr0");
    h.setup_ok(&vif, "filter");
    assert_eq!(h.master(&vif).as_deref(), Some("xenbr0"));

    h.xenopsd_set_locking_mode(9, 0, "disabled", "");
    let log = h.setup_ok(&vif, "filter");
    assert_eq!(h.master(&vif), None);
    assert!(
        log.contains("mode disabled: kept off Linux bridge xenbr0"),
        "{log}"
    );
    assert!(h.is_up(&vif));
    assert_eq!(h.entry(&vif).expect("entry")["mode"], "disabled");

    h.xenopsd_set_locking_mode(9, 0, "locked", &OLD.to_string());
    h.setup_ok(&vif, "filter");
    assert_eq!(h.master(&vif).as_deref(), Some("xenbr0"));
    assert_eq!(h.entry(&vif).expect("entry")["mode"], "locked");
}

/// Arguments that do not name the vif are usage errors that name both
/// sides, and change nothing.
#[test]
fn arguments_that_do_not_name_the_vif_are_usage_errors() {
    let mut h = Host::new();
    let vif = h.vif(10, 0, false);
    h.xapi_keys(10, 0, OLD, Some("xenbr0"), "xenbr0");
    let other = uuid(11);
    let cases: Vec<(String, String, &str, Vec<String>)> = vec![
        (
            vif.clone(),
            uuid(10),
            "1",
            vec!["device 0".into(), "not device 1".into()],
        ),
        (
            vif.clone(),
            other.clone(),
            "0",
            vec![uuid(10), other.clone()],
        ),
        (
            vif.clone(),
            "../../local".into(),
            "0",
            vec!["not a VM uuid".into()],
        ),
        ("eth0".into(), uuid(10), "0", vec!["not named vif".into()]),
    ];
    for (iface, u, devid, want) in cases {
        let out = h.setup_as(&iface, &u, devid, "filter");
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{iface} {u} {devid}: {err}");
        for w in &want {
            assert!(err.contains(w.as_str()), "{w:?} not in {err}");
        }
    }
    assert_eq!(h.master(&vif), None);
    assert!(h.hooks(&vif).is_empty());
}

/// A private ovsdb-server and ovs-vswitchd (userspace datapath) in dom0's
/// namespace, stopped by their pids when dropped.
struct Ovs {
    dir: PathBuf,
    pids: Vec<u32>,
}

impl Ovs {
    fn start(h: &mut Host) -> Ovs {
        let dir = std::env::temp_dir().join(format!(
            "vifguard-ovs-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("OVS directory");
        let p = |f: &str| dir.join(f).to_string_lossy().into_owned();
        sh(&[
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
        sh(&[
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
        ovs.pids.push(read_pid(&dir.join("ovsdb-server.pid")));
        ovs.vsctl(&["--no-wait", "init"]);
        sh(&[
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
        ovs.pids.push(read_pid(&dir.join("ovs-vswitchd.pid")));
        h.ovs_rundir = Some(dir);
        ovs
    }

    /// `ovs-vsctl` against this database; its output.
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

    fn ports(&self, bridge: &str) -> Vec<String> {
        self.vsctl(&["list-ports", bridge])
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// An Interface record's external_ids (`--format=json` output).
    fn external_ids(&self, iface: &str) -> BTreeMap<String, String> {
        let out = self.vsctl(&[
            "--format=json",
            "--columns=external_ids",
            "list",
            "Interface",
            iface,
        ]);
        let v: serde_json::Value = serde_json::from_str(&out).expect("ovs-vsctl JSON");
        // {"data":[[["map",[[k,v],...]]]], ...}
        v["data"][0][0][1]
            .as_array()
            .expect("external_ids map")
            .iter()
            .map(|kv| {
                (
                    kv[0].as_str().expect("key").to_string(),
                    kv[1].as_str().expect("value").to_string(),
                )
            })
            .collect()
    }
}

fn read_pid(path: &Path) -> u32 {
    std::fs::read_to_string(path)
        .expect("pid file")
        .trim()
        .parse()
        .expect("pid")
}

impl Drop for Ovs {
    fn drop(&mut self) {
        for pid in self.pids.iter().rev() {
            let _ = Command::new("kill").arg(pid.to_string()).status();
        }
        std::thread::sleep(Duration::from_millis(100));
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A script standing in for xenopsd's PVS proxy hook: it appends its
/// arguments to a log.
fn pvs_hook(h: &Host) -> (PathBuf, PathBuf) {
    let dir = h.ovs_rundir.clone().expect("OVS directory");
    let script = dir.join("pvs-proxy-hook");
    let log = dir.join("pvs-proxy-hook.log");
    std::fs::write(
        &script,
        format!("#!/bin/sh\necho \"$@\" >> {}\n", log.display()),
    )
    .expect("write hook");
    sh(&["chmod", "755", &script.to_string_lossy()]);
    (script, log)
}

/// On an Open vSwitch bridge: `filter` adds the port with XAPI's four
/// external-ids (the final uuid of a VM migrated here), the bridge named
/// only in the private keys; a live update leaves the port alone; `clear`
/// deletes it; the PVS proxy hook runs with the stock arguments around it.
#[test]
fn open_vswitch_port_with_xapi_external_ids() {
    let mut h = Host::new();
    let ovs = Ovs::start(&mut h);
    ovs.vsctl(&[
        "add-br",
        "xapi1",
        "--",
        "set",
        "bridge",
        "xapi1",
        "datapath_type=netdev",
    ]);
    let vif = h.vif(12, 0, false);
    h.xapi_keys(12, 0, OLD, None, "xapi1");
    let u = uuid(12);
    let final_uuid = "6b3f0c2e-0000-4000-8000-999999999999";
    let p = private(12, 0);
    let (hook, hook_log) = pvs_hook(&h);
    h.write(&[
        (&format!("/vm/{u}/final-uuid"), final_uuid),
        (&format!("{p}/pvs-interface"), "pvs-proxy0"),
        (
            &format!("{p}/setup-pvs-proxy-rules"),
            &hook.to_string_lossy(),
        ),
    ]);

    let log = h.setup_ok(&vif, "filter");
    assert!(log.contains("added to Open vSwitch bridge xapi1"), "{log}");
    assert_eq!(ovs.ports("xapi1"), [vif.as_str()]);
    let ids = ovs.external_ids(&vif);
    let want: BTreeMap<String, String> = [
        ("xs-vm-uuid", final_uuid),
        ("xs-vif-uuid", "0f0e0d0c-0000-4000-8000-00000000aaaa"),
        ("xs-network-uuid", "0f0e0d0c-0000-4000-8000-00000000bbbb"),
        ("attached-mac", &mac_str(mac(12, 0))),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    assert_eq!(ids, want);
    assert_eq!(h.hooks(&vif), ["tc-egress", "tc-ingress"]);
    assert!(h.is_up(&vif));

    // The live update: the same Interface record (a del-port and add-port
    // would make a new one), the PVS proxy hook not run again.
    let record = ovs.vsctl(&["get", "Interface", &vif, "_uuid"]);
    h.xenopsd_set_locking_mode(12, 0, "locked", &NEW.to_string());
    let live = h.setup_ok(&vif, "filter");
    assert_eq!(
        ovs.vsctl(&["get", "Interface", &vif, "_uuid"]),
        record,
        "the port was deleted and added again"
    );
    assert_eq!(
        h.entry(&vif).expect("entry")["addresses"],
        serde_json::json!([NEW.to_string()])
    );
    let hotplug = format!("/xapi/{u}/hotplug/12/vif/0");
    let add = format!("add vif {vif} {p} {hotplug}");
    assert_eq!(
        std::fs::read_to_string(&hook_log)
            .expect("hook log")
            .lines()
            .collect::<Vec<_>>(),
        [add.as_str()]
    );
    assert!(
        live.contains("already a port of Open vSwitch bridge xapi1"),
        "{live}"
    );

    h.setup_ok(&vif, "clear");
    assert!(ovs.ports("xapi1").is_empty(), "{:?}", ovs.ports("xapi1"));
    assert!(h.hooks(&vif).is_empty());
    let remove = format!("remove vif {vif} {p} {hotplug}");
    assert_eq!(
        std::fs::read_to_string(&hook_log)
            .expect("hook log")
            .lines()
            .collect::<Vec<_>>(),
        [add.as_str(), remove.as_str()]
    );
}

/// On Open vSwitch, a filter that fails closed adds no port.
#[test]
fn open_vswitch_failing_filter_adds_no_port() {
    let mut h = Host::new();
    let ovs = Ovs::start(&mut h);
    ovs.vsctl(&[
        "add-br",
        "xapi1",
        "--",
        "set",
        "bridge",
        "xapi1",
        "datapath_type=netdev",
    ]);
    let vif = h.vif(13, 0, false);
    h.xapi_keys(13, 0, OLD, Some("xapi1"), "xapi1");
    let node = format!("{}/ipv4-allowed", private(13, 0));
    h.xs.tool_ok("xenstore-chmod", &[&node, "n13"])
        .expect("chmod");

    let out = h.setup(&vif, "filter");
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(ovs.ports("xapi1").is_empty(), "{:?}", ovs.ports("xapi1"));
    assert!(
        stderr(&out).contains("kept off its bridge"),
        "{}",
        stderr(&out)
    );
    assert_eq!(h.hooks(&vif), ["tc-egress", "tc-ingress"]);
    assert_eq!(h.entry(&vif).expect("entry")["mode"], "disabled");
}
