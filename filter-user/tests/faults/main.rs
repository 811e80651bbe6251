//! Faults and load: the `vifguard` binary killed at random moments and at
//! every fault-injection point while guests send spoofed frames
//! ([`chaos`]), and hundreds of vifs plugged and unplugged at once
//! ([`load`]).
//!
//! The simulated host is XAPI-shaped (as in `setup_vif_rules.rs`): dom0
//! with a Linux bridge `xenbr0` and a LAN namespace behind its `uplink`
//! port, where a receiver counts every frame that crossed the bridge. Each
//! vif is a veth whose guest end sits in a namespace of its own; the test
//! xenstored holds xenopsd's keys (locked mode, IPv4 list), so `hotplug`,
//! `attach`, `sync`, `watch` and `setup-vif-rules` all read the same
//! policy. The harness plays the toolstack: a vif joins the bridge only
//! once vifguard filters it (as the hook scripts order it) and leaves the
//! bridge before an offline. Needs root.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{Ipv4Addr, Ipv6Addr};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use testbed::frames::{BROADCAST, Frame, Mac};
use testbed::netns::{NetNs, RawSocket, veth, vifguard_tc_filters};
use testbed::xenstored::{TestXenstored, perms};

mod chaos;
mod load;
mod outages;

static NEXT: AtomicU32 = AtomicU32::new(0);
const BIN: &str = env!("CARGO_BIN_EXE_vifguard");

/// Payload markers: the receiver tells test frames from the kernel's own
/// (ND, MLD) by these.
const SPOOF: &[u8] = b"vifguard-faults-spoof";
const LEGIT: &[u8] = b"vifguard-faults-legit";

fn mac(domid: u32, devid: u32) -> Mac {
    [
        0x00,
        0x16,
        0x3e,
        (domid >> 8) as u8,
        domid as u8,
        devid as u8,
    ]
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

/// The guest's own address (RFC 5737), allowed in every policy variant.
fn own_ip(domid: u32, devid: u32) -> Ipv4Addr {
    let n = domid * 4 + devid;
    if n < 250 {
        Ipv4Addr::new(198, 51, 100, (n + 1) as u8)
    } else {
        // Beyond 250 vifs: 203.0.113.0/24 is the spoofed source, so the
        // load tests' extra vifs take hosts of 192.0.2.0/24 and then the
        // prefix's upper bits (documentation addresses only).
        Ipv4Addr::new(192, 0, 2, (n % 250 + 1) as u8)
    }
}

/// The IPv4 source every spoofed frame claims: never allowed.
const NEVER: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 66);
const NEVER6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xffff, 0, 0, 0, 0, 0x66);

/// xenopsd's `ipv4-allowed` for a vif, variant 0 or 1: the watch and the
/// chaos test switch between them. Variant 1 adds a prefix (a trie entry:
/// a kill between the trie and the policy update must not leave it).
fn ipv4_allowed(domid: u32, devid: u32, variant: u8) -> String {
    let own = own_ip(domid, devid);
    match variant {
        0 => own.to_string(),
        _ => format!("{own},192.0.2.{}/30", (domid % 60) * 4),
    }
}

fn ifname(domid: u32, devid: u32) -> String {
    format!("vif{domid}.{devid}")
}

/// The frames a guest sends every millisecond: three spoofs (source IPv4,
/// source MAC, source IPv6) and one legitimate frame.
fn frames(domid: u32, devid: u32) -> [Vec<u8>; 4] {
    let own = mac(domid, devid);
    let ip = own_ip(domid, devid);
    let dst = Ipv4Addr::new(198, 51, 100, 255);
    let foreign: Mac = [0x02, 0, 0, 0xee, domid as u8, devid as u8];
    [
        Frame::eth(own, BROADCAST)
            .ipv4(NEVER, dst)
            .udp(5000, 5000)
            .payload(SPOOF)
            .build(),
        Frame::eth(foreign, BROADCAST)
            .ipv4(ip, dst)
            .udp(5000, 5000)
            .payload(SPOOF)
            .build(),
        Frame::eth(own, [0x33, 0x33, 0, 0, 0, 1])
            .ipv6(NEVER6, "ff02::1".parse().expect("address"))
            .udp(5000, 5000)
            .payload(SPOOF)
            .build(),
        Frame::eth(own, BROADCAST)
            .ipv4(ip, dst)
            .udp(5000, 5000)
            .payload(LEGIT)
            .build(),
    ]
}

/// What the receiver behind the bridge saw.
#[derive(Default)]
struct Seen {
    /// Spoofed frames that crossed the bridge: must stay empty. Each as
    /// (source MAC, when).
    spoofed: Vec<(String, Instant)>,
    /// Legitimate frames per source MAC.
    legit: BTreeMap<Mac, u64>,
}

/// One guest: its namespace (kept while its vif comes and goes) and the
/// thread that sends its frames every millisecond.
struct Guest {
    domid: u32,
    devid: u32,
    ns: NetNs,
    sent: Arc<AtomicU64>,
}

/// The simulated XAPI host.
struct Host {
    root: PathBuf,
    config: PathBuf,
    xs: TestXenstored,
    dom0: NetNs,
    lan: NetNs,
    guests: Vec<Guest>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    seen: Arc<Mutex<Seen>>,
}

impl Host {
    fn new(tag: &str) -> Host {
        let root = PathBuf::from(format!(
            "/sys/fs/bpf/vifguard-{tag}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        ));
        Host::with_root(tag, root)
    }

    /// A host whose vifguard keeps its pins at `root`.
    fn with_root(tag: &str, root: PathBuf) -> Host {
        let dom0 = NetNs::new(&format!("{tag}0"));
        let lan = NetNs::new(&format!("{tag}l"));
        dom0.ip(&["link", "add", "xenbr0", "type", "bridge"]);
        dom0.ip(&["link", "set", "xenbr0", "up"]);
        veth(&dom0, "uplink", &lan, "eth0");
        dom0.ip(&["link", "set", "uplink", "master", "xenbr0"]);
        let config = std::env::temp_dir().join(format!(
            "vifguard-{tag}-{}-{}.toml",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::write(&config, "max_interfaces = 8192\n").expect("write config");
        let mut h = Host {
            root,
            config,
            xs: TestXenstored::start(),
            dom0,
            lan,
            guests: Vec::new(),
            stop: Arc::new(AtomicBool::new(false)),
            threads: Vec::new(),
            seen: Arc::new(Mutex::new(Seen::default())),
        };
        h.start_receiver();
        h
    }

    /// The receiver in the LAN namespace: counts test frames that crossed
    /// the bridge.
    fn start_receiver(&mut self) {
        let rx = RawSocket::open(&self.lan, "eth0");
        let stop = Arc::clone(&self.stop);
        let seen = Arc::clone(&self.seen);
        self.threads.push(std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                for f in rx.drain(Duration::from_millis(20)) {
                    let has = |m: &[u8]| f.windows(m.len()).any(|w| w == m);
                    if has(SPOOF) {
                        let src: Mac = f[6..12].try_into().expect("source MAC");
                        seen.lock()
                            .expect("seen")
                            .spoofed
                            .push((mac_str(src), Instant::now()));
                    } else if has(LEGIT) {
                        let src: Mac = f[6..12].try_into().expect("source MAC");
                        *seen.lock().expect("seen").legit.entry(src).or_default() += 1;
                    }
                }
            }
        }));
    }

    /// xenopsd's keys for vif `domid.devid` (see `setup_vif_rules.rs`),
    /// over one client connection.
    fn xapi_keys(&self, xs: &mut xenstore::Xenstore, domid: u32, devid: u32, variant: u8) {
        let u = uuid(domid);
        let dom = format!("/local/domain/{domid}");
        let be = format!("/local/domain/0/backend/vif/{domid}/{devid}");
        let p = format!("/xapi/{u}/private/vif/{devid}");
        let vm = format!("/vm/{u}");
        let w = |xs: &mut xenstore::Xenstore, k: &str, v: &str| {
            xs.write(k, v.as_bytes()).expect("xenstore write");
        };
        w(xs, &format!("{dom}/vm"), &vm);
        w(xs, &format!("{vm}/uuid"), &u);
        w(xs, &format!("{be}/mac"), &mac_str(mac(domid, devid)));
        for (k, v) in [
            ("locking-mode", "locked".to_string()),
            ("ipv4-allowed", ipv4_allowed(domid, devid, variant)),
            ("ipv6-allowed", String::new()),
            ("bridge", "xenbr0".to_string()),
            (
                "vif-uuid",
                "0f0e0d0c-0000-4000-8000-00000000aaaa".to_string(),
            ),
            (
                "network-uuid",
                "0f0e0d0c-0000-4000-8000-00000000bbbb".to_string(),
            ),
            ("xenopsd-backend", "classic".to_string()),
        ] {
            w(xs, &format!("{p}/{k}"), &v);
        }
        let guest = perms(&format!("n0 r{domid}"));
        for node in [dom.as_str(), be.as_str()] {
            xs.set_perms(node, &guest).expect("set perms");
        }
        for node in [format!("{dom}/vm"), format!("{be}/mac")] {
            xs.set_perms(&node, &guest).expect("set perms");
        }
        for node in [vm.clone(), format!("{vm}/uuid"), format!("/xapi/{u}")] {
            xs.set_perms(&node, &perms("n0")).expect("set perms");
        }
        let mut nodes = vec![p.clone()];
        nodes.extend(
            [
                "locking-mode",
                "ipv4-allowed",
                "ipv6-allowed",
                "bridge",
                "vif-uuid",
                "network-uuid",
                "xenopsd-backend",
            ]
            .iter()
            .map(|k| format!("{p}/{k}")),
        );
        for n in [
            format!("/xapi/{u}/private"),
            format!("/xapi/{u}/private/vif"),
        ] {
            nodes.push(n);
        }
        for n in nodes {
            xs.set_perms(&n, &perms("n0")).expect("set perms");
        }
    }

    /// Switches a vif's `ipv4-allowed` (xenopsd's live update).
    fn set_variant(&self, domid: u32, devid: u32, variant: u8) {
        let mut xs = self.xs.client().expect("xenstore client");
        let node = format!("/xapi/{}/private/vif/{devid}/ipv4-allowed", uuid(domid));
        xs.write(&node, ipv4_allowed(domid, devid, variant).as_bytes())
            .expect("xenstore write");
    }

    /// A guest namespace for vif `domid.devid` with its keys in xenstore;
    /// the vif itself is created by [`Host::plug`]. `traffic`: start its
    /// sender thread.
    fn guest(&mut self, domid: u32, devid: u32, traffic: bool) -> usize {
        let mut xs = self.xs.client().expect("xenstore client");
        self.xapi_keys(&mut xs, domid, devid, 0);
        let ns = NetNs::new("fg");
        let sent = Arc::new(AtomicU64::new(0));
        if traffic {
            let path = PathBuf::from(format!("/run/netns/{}", ns.name));
            let stop = Arc::clone(&self.stop);
            let sent = Arc::clone(&sent);
            self.threads.push(std::thread::spawn(move || {
                sender(&path, domid, devid, &stop, &sent)
            }));
        }
        self.guests.push(Guest {
            domid,
            devid,
            ns,
            sent,
        });
        self.guests.len() - 1
    }

    /// Creates guest `g`'s vif (the dom0 end, down until the guest end
    /// has the guest's MAC, then up), not bridged.
    fn plug(&self, g: usize) -> String {
        let guest = &self.guests[g];
        let name = ifname(guest.domid, guest.devid);
        self.dom0.ip(&[
            "link",
            "add",
            &name,
            "type",
            "veth",
            "peer",
            "name",
            "eth0",
            "netns",
            &guest.ns.name,
        ]);
        guest.ns.ip(&[
            "link",
            "set",
            "eth0",
            "address",
            &mac_str(mac(guest.domid, guest.devid)),
        ]);
        // No IPv6 on the guest end: its DAD and router solicitations
        // would only add frames the filter drops.
        let _ = guest
            .ns
            .exec(&["sysctl", "-q", "-w", "net.ipv6.conf.eth0.disable_ipv6=1"]);
        guest.ns.ip(&["link", "set", "eth0", "up"]);
        self.dom0.ip(&["link", "set", &name, "up"]);
        name
    }

    /// Removes guest `g`'s vif (the guest end goes with it).
    fn unplug(&self, g: usize) {
        let guest = &self.guests[g];
        self.dom0
            .ip(&["link", "del", &ifname(guest.domid, guest.devid)]);
    }

    /// Switches the host configuration's `attach` (the next sync moves
    /// every hook).
    fn set_attach(&self, method: &str) {
        std::fs::write(
            &self.config,
            format!("max_interfaces = 8192\nattach = \"{method}\"\n"),
        )
        .expect("write config");
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new("nsenter");
        c.arg(format!("--net=/run/netns/{}", self.dom0.name))
            .arg(BIN)
            .arg("--bpffs")
            .arg(&self.root)
            .arg("--config")
            .arg(&self.config)
            .args(args)
            .env("XENSTORED_PATH", self.xs.socket_path())
            .env_remove(filter_user::fault::ENV);
        c
    }

    /// `vifguard hotplug <action>` for guest `g`'s vif, as the vif script
    /// runs it.
    fn hotplug(&self, action: &str, g: usize) -> Command {
        let guest = &self.guests[g];
        let mut c = self.cmd(&["hotplug", action]);
        c.env("vif", ifname(guest.domid, guest.devid)).env(
            "XENBUS_PATH",
            format!("backend/vif/{}/{}", guest.domid, guest.devid),
        );
        c
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.cmd(args).output().expect("run vifguard");
        assert!(
            out.status.success(),
            "vifguard {args:?}: {}\n{}",
            out.status,
            stderr(&out)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn status(&self) -> Vec<serde_json::Value> {
        serde_json::from_str(&self.ok(&["status", "--json"])).expect("status JSON")
    }

    fn v(&self) -> PathBuf {
        self.root.join(format!("v{}", filter_common::ABI_VERSION))
    }

    /// Puts `name` on the bridge (the toolstack, once vifguard filters it).
    fn bridge(&self, name: &str) {
        self.dom0.ip(&["link", "set", name, "master", "xenbr0"]);
    }

    /// Takes `name` off the bridge (the toolstack, before an offline).
    fn unbridge(&self, name: &str) {
        let _ = self.dom0.exec(&["ip", "link", "set", name, "nomaster"]);
    }

    /// The vifs that are bridge ports now.
    fn bridged(&self) -> BTreeSet<String> {
        let out = self
            .dom0
            .exec(&["ip", "-j", "link", "show", "master", "xenbr0"]);
        let v: serde_json::Value =
            serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
        v.as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .filter_map(|l| l["ifname"].as_str())
            .filter(|n| n.starts_with("vif"))
            .map(str::to_string)
            .collect()
    }

    fn spoofed(&self) -> Vec<(String, Instant)> {
        self.seen.lock().expect("seen").spoofed.clone()
    }

    fn legit(&self, m: Mac) -> u64 {
        self.seen
            .lock()
            .expect("seen")
            .legit
            .get(&m)
            .copied()
            .unwrap_or(0)
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        testbed::kernel::remove_root(&self.root);
        let _ = std::fs::remove_file(&self.config);
    }
}

/// A guest's sender: in its namespace for good, its frames every
/// millisecond on `eth0`, re-bound when the vif comes back.
fn sender(ns: &Path, domid: u32, devid: u32, stop: &AtomicBool, sent: &AtomicU64) {
    let target = std::fs::File::open(ns).expect("open the guest namespace");
    // SAFETY: setns on a valid namespace fd, for this thread only (it
    // stays there until it ends).
    let rc = unsafe { libc::setns(target.as_raw_fd(), libc::CLONE_NEWNET) };
    assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
    let frames = frames(domid, devid);
    let mut sock: Option<RawSocket> = None;
    while !stop.load(Ordering::SeqCst) {
        if sock.is_none() {
            // SAFETY: a valid NUL-terminated name.
            let ix = unsafe { libc::if_nametoindex(c"eth0".as_ptr()) };
            if ix != 0 {
                sock = RawSocket::bind_send_only(ix as i32).ok();
            }
        }
        if let Some(s) = &sock {
            for f in &frames {
                if s.try_send(f).is_err() {
                    // The vif vanished (unplugged): find it again.
                    sock = None;
                    break;
                }
                sent.fetch_add(1, Ordering::Relaxed);
            }
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The vifguard tc filters of dom0 as `ifindex -> hooks`.
fn filters(h: &Host) -> BTreeMap<u64, Vec<&'static str>> {
    let mut m: BTreeMap<u64, Vec<&'static str>> = BTreeMap::new();
    for f in vifguard_tc_filters(&h.dom0).expect("bpftool net") {
        m.entry(f.ifindex).or_default().push(f.hook);
    }
    m
}

/// What a converged host looks like, checked against the kernel and the
/// pins: every present vif (`expected`: name -> variant) filtered on both
/// hooks with its policy, nothing for any other interface, one program
/// version, no leftovers of a killed loader, the lock free. Returns the
/// problems found (empty: converged).
fn check_converged(
    h: &Host,
    expected: &BTreeMap<String, (u32, u32, u8)>,
    tcx: bool,
) -> Vec<String> {
    let mut bad = Vec::new();
    // The lock: free once every vifguard is gone (flock dies with its
    // holder).
    match std::fs::File::open(h.v()) {
        Ok(f) => {
            // SAFETY: flock on a valid fd.
            let rc = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
            if rc != 0 {
                bad.push(format!("lock held: {}", std::io::Error::last_os_error()));
            }
        }
        Err(e) => bad.push(format!("{}: {e}", h.v().display())),
    }
    let ix_of = |name: &str| -> Option<u32> {
        let _in = h.dom0.enter();
        let c = std::ffi::CString::new(name).expect("name");
        // SAFETY: a valid NUL-terminated name.
        let ix = unsafe { libc::if_nametoindex(c.as_ptr()) };
        (ix != 0).then_some(ix)
    };
    let mut present: BTreeMap<u32, &str> = BTreeMap::new();
    for name in expected.keys() {
        match ix_of(name) {
            Some(ix) => {
                present.insert(ix, name);
            }
            None => bad.push(format!("{name}: expected present, not found")),
        }
    }

    let status = h.status();
    let names: BTreeSet<&str> = status.iter().filter_map(|e| e["name"].as_str()).collect();
    let want: BTreeSet<&str> = expected.keys().map(String::as_str).collect();
    if names != want {
        bad.push(format!("status lists {names:?}, expected {want:?}"));
    }
    for e in &status {
        let Some((d, i, variant)) = e["name"].as_str().and_then(|n| expected.get(n)) else {
            continue;
        };
        let mut addrs: Vec<String> = ipv4_allowed(*d, *i, *variant)
            .split(',')
            .map(str::to_string)
            .collect();
        addrs.sort();
        let got = addresses(e);
        if e["mode"] != "locked" || e["mac"] != mac_str(mac(*d, *i)) || got != addrs {
            bad.push(format!(
                "{}: mode {} mac {} addresses {got:?}, expected locked {} {addrs:?}",
                e["name"],
                e["mode"],
                e["mac"],
                mac_str(mac(*d, *i))
            ));
        }
    }

    // Map entries: no ifindex but the present vifs', trie entries
    // included (status shows only what has a policy entry).
    match filter_user::datapath::Maps::open_pinned(&h.v().join("maps")) {
        Ok(maps) => {
            let with_policy: BTreeSet<u32> = maps
                .policies()
                .expect("POLICY")
                .into_iter()
                .map(|(ix, _)| ix)
                .collect();
            let with_extra: BTreeSet<u32> =
                maps.extra_entries().expect("tries").into_keys().collect();
            let ixs: BTreeSet<u32> = present.keys().copied().collect();
            if with_policy != ixs {
                bad.push(format!(
                    "POLICY has ifindexes {with_policy:?}, present vifs are {ixs:?}"
                ));
            }
            if !with_extra.is_subset(&ixs) {
                bad.push(format!(
                    "orphan trie/pair entries: ifindexes {:?}",
                    with_extra.difference(&ixs).collect::<Vec<_>>()
                ));
            }
        }
        Err(e) => bad.push(format!("open the pinned maps: {e}")),
    }

    // Hooks: both tc filters on every present vif, none elsewhere (a
    // vanished interface takes its qdisc and filters along; an interface
    // that is no vif must have none).
    // With attach = "tcx": pinned links instead, and no tc filter at all.
    let f = filters(h);
    for ix in present.keys() {
        let mut hooks = f.get(&u64::from(*ix)).cloned().unwrap_or_default();
        hooks.sort_unstable();
        if !tcx && hooks != ["tc-egress", "tc-ingress"] {
            bad.push(format!("{}: hooks {hooks:?}", present[ix]));
        }
    }
    for ix in f.keys() {
        if tcx || !present.contains_key(&(*ix as u32)) {
            bad.push(format!("tc filters on ifindex {ix} (tcx: {tcx})"));
        }
    }

    // Pins: the TCX links of the present vifs only, one program version,
    // no half-loaded temporary directory.
    let list = |p: PathBuf| -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(p)
            .map(|rd| {
                rd.filter_map(Result::ok)
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    };
    let links = list(h.v().join("links"));
    let mut want_links: Vec<String> = Vec::new();
    if tcx {
        for ix in present.keys() {
            for (_, hook) in filter_user::datapath::pins::HOOKS {
                want_links.push(format!("{ix}-{hook}"));
            }
        }
    }
    want_links.sort();
    if links != want_links {
        bad.push(format!("link pins {links:?}, expected {want_links:?}"));
    }
    let progs = list(h.v().join("progs"));
    if progs.len() != 1 {
        bad.push(format!("program versions pinned: {progs:?}"));
    }
    // Records of who applied what: only for present vifs.
    let records = list(records_dir(h));
    for r in &records {
        if !r.parse::<u32>().is_ok_and(|ix| present.contains_key(&ix)) {
            bad.push(format!("applied record {r} for no present vif"));
        }
    }
    bad
}

/// A `vifguard status --json` entry's addresses, sorted.
fn addresses(entry: &serde_json::Value) -> Vec<String> {
    let mut v: Vec<String> = entry["addresses"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .filter_map(|a| a.as_str().map(str::to_string))
        .collect();
    v.sort();
    v
}

fn records_dir(h: &Host) -> PathBuf {
    let name = h.root.to_string_lossy().trim_matches('/').replace('/', "_");
    Path::new(filter_user::datapath::pins::RUN_DIR)
        .join("applied")
        .join(name)
}
