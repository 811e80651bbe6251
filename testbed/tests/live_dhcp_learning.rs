//! DHCP learning (docs/policy.md section 8) with the real programs a Xen
//! host runs: dnsmasq as the DHCP server on dom0's bridge, busybox udhcpc
//! in a locked guest with option `learn_dhcp` on and no configured
//! address, a rogue server in an unlocked guest. Checked: the lease makes
//! the leased address the guest's (ping works, a neighbour's address is
//! still `ipv4_spoof`), `vifguard status --json` and `vifguard metrics`
//! show it, and it survives a sync and an upgrade; the rogue's ACK teaches
//! nothing; releasing the lease forgets the address at once; a lease that
//! is not renewed expires; an offline clears the vif's leases; `vifguard
//! events` reported each of these changes, in order.
//!
//! dnsmasq leases for 2 minutes at least, so the expiry is shown with an
//! ACK crafted on dom0's side (lease 2 s) and the host configuration's
//! `learn_grace_secs` = 0: the test takes seconds, not minutes.
//!
//! Needs root, busybox and dnsmasq (`cargo xtask bootstrap`) and the
//! vifguard binary (built with filter-user's tests). Everything is removed
//! when the test ends, also on failure.

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use filter_common::{Direction, Reason};
use filter_user::datapath::Maps;
use filter_user::policy::MacAddr;
use testbed::demo::find_vifguard;
use testbed::frames::{BROADCAST, Frame, Mac, dhcpv4_ack};
use testbed::netns::{NetNs, RawSocket, run_ok, veth, vifguard_in};
use testbed::xenstored::TestXenstored;

const DOM0_MAC: Mac = [0x00, 0x16, 0x3e, 0x00, 0x00, 0x01];
const SERVER: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
/// What dnsmasq leases the learner (its `--dhcp-host`).
const LEASE: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 100);
/// What the rogue server offers it.
const ROGUE_LEASE: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 99);
const ROGUE_IP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 66);
/// A neighbour's address the learner tries to send from.
const NEIGHBOUR: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 77);
/// What the ACK crafted on dom0's side leases, for 2 s.
const SHORT_LEASE: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 120);

struct Guest {
    domid: u32,
    ifname: String,
    mac: Mac,
    ns: NetNs,
}

/// dom0 with a bridge, dnsmasq on it, the learner (locked, learn_dhcp,
/// dnsmasq its only trusted server, no address) and the rogue (unlocked).
struct Host {
    dom0: NetNs,
    xs: TestXenstored,
    vifguard: PathBuf,
    bpffs: PathBuf,
    config: PathBuf,
    pid_file: PathBuf,
    dir: PathBuf,
    dnsmasq: Option<Child>,
    udhcpc: Option<Child>,
    learner: Guest,
    rogue: Guest,
}

fn guest(dom0: &NetNs, domid: u32, name: &str) -> Guest {
    let g = Guest {
        domid,
        ifname: format!("vif{domid}.0"),
        mac: [0x00, 0x16, 0x3e, 0x00, domid as u8, 0x01],
        ns: NetNs::new(name),
    };
    veth(dom0, &g.ifname, &g.ns, "eth0");
    g.ns.ip(&["link", "set", "eth0", "down"]);
    g.ns.ip(&[
        "link",
        "set",
        "eth0",
        "address",
        &MacAddr(g.mac).to_string(),
    ]);
    dom0.ip(&["link", "set", &g.ifname, "master", "xenbr0"]);
    g
}

impl Host {
    fn build() -> Host {
        let tag = format!("{}", std::process::id());
        let dir = std::env::temp_dir().join(format!("vifguard-learn-{tag}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temporary directory");
        let bpffs = PathBuf::from(format!("/sys/fs/bpf/vifguard-learn-{tag}"));
        let config = dir.join("vifguard.toml");
        // No grace: a lease ends when the server said.
        std::fs::write(
            &config,
            format!("bpffs = \"{}\"\nlearn_grace_secs = 0\n", bpffs.display()),
        )
        .expect("write the host configuration");
        let xs = TestXenstored::start();
        let dom0 = NetNs::new("learn-dom0");
        dom0.ip(&["link", "add", "xenbr0", "type", "bridge"]);
        dom0.ip(&[
            "link",
            "set",
            "xenbr0",
            "address",
            &MacAddr(DOM0_MAC).to_string(),
        ]);
        dom0.ip(&["addr", "add", "192.0.2.1/24", "dev", "xenbr0"]);
        dom0.ip(&["link", "set", "xenbr0", "up"]);
        let learner = guest(&dom0, 21, "learner");
        let rogue = guest(&dom0, 22, "rogue");
        let mut host = Host {
            pid_file: PathBuf::from(format!("/run/vifguard-learn-dnsmasq-{tag}.pid")),
            dom0,
            xs,
            vifguard: find_vifguard().expect("the vifguard binary"),
            bpffs,
            config,
            dir,
            dnsmasq: None,
            udhcpc: None,
            learner,
            rogue,
        };
        let b = |g: &Guest| format!("/local/domain/0/backend/vif/{}/0", g.domid);
        let (l, r) = (b(&host.learner), b(&host.rogue));
        let mut keys = vec![
            (format!("{l}/mac"), MacAddr(host.learner.mac).to_string()),
            (format!("{l}/vifguard/mode"), "locked".into()),
            (format!("{l}/vifguard/options/learn_dhcp"), "on".into()),
            (format!("{l}/vifguard/dhcp-servers"), SERVER.to_string()),
            (format!("{r}/mac"), MacAddr(host.rogue.mac).to_string()),
            (format!("{r}/vifguard/mode"), "unlocked".into()),
        ];
        for g in [&l, &r] {
            keys.push((format!("{g}/bridge"), "xenbr0".into()));
            keys.push((format!("{g}/online"), "1".into()));
        }
        for (k, v) in &keys {
            host.xs
                .tool_ok("xenstore-write", &[k, v])
                .expect("xenstore-write");
        }
        host.xs
            .tool_ok("xenstore-chmod", &["-r", "/local/domain/0/backend", "n0"])
            .expect("xenstore-chmod");
        host.start_dnsmasq();
        for g in [&host.learner, &host.rogue] {
            host.hotplug(g, "online").expect("vifguard hotplug online");
            g.ns.ip(&["link", "set", "eth0", "up"]);
        }
        host.rogue
            .ns
            .ip(&["addr", "add", &format!("{ROGUE_IP}/24"), "dev", "eth0"]);
        host
    }

    fn start_dnsmasq(&mut self) {
        let child = Command::new("ip")
            .args(["netns", "exec", &self.dom0.name, "dnsmasq"])
            .args([
                "--keep-in-foreground",
                "--no-resolv",
                "--no-hosts",
                "--port=0",
                "--interface=xenbr0",
                "--bind-interfaces",
                // 2 minutes: dnsmasq's shortest lease.
                "--dhcp-range=192.0.2.100,192.0.2.150,255.255.255.0,2m",
                &format!("--dhcp-host={},{LEASE}", MacAddr(self.learner.mac)),
                "--dhcp-leasefile=/dev/null",
                "--log-facility=-",
                &format!("--pid-file={}", self.pid_file.display()),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start dnsmasq");
        self.dnsmasq = Some(child);
        std::thread::sleep(Duration::from_millis(300));
    }

    /// vifguard in dom0, with the host's xenstored and configuration.
    fn vifguard(&self, args: &[&str]) -> Result<String, String> {
        run_ok(
            vifguard_in(&self.dom0, &self.vifguard)
                .args(args)
                .env("XENSTORED_PATH", self.xs.socket_path())
                .env("VIFGUARD_CONFIG", &self.config),
        )
    }

    /// `vifguard hotplug` with the environment the xl hook gives it.
    fn hotplug(&self, g: &Guest, action: &str) -> Result<String, String> {
        run_ok(
            vifguard_in(&self.dom0, &self.vifguard)
                .args(["hotplug", action])
                .env("vif", &g.ifname)
                .env("XENBUS_PATH", format!("backend/vif/{}/0", g.domid))
                .env("XENSTORED_PATH", self.xs.socket_path())
                .env("VIFGUARD_CONFIG", &self.config),
        )
    }

    /// The learner's `learned` in `vifguard status --json`: (address,
    /// seconds left).
    fn learned(&self) -> Vec<(Ipv4Addr, u64)> {
        let text = self
            .vifguard(&["status", &self.learner.ifname, "--json"])
            .expect("vifguard status --json");
        let j: serde_json::Value = serde_json::from_str(&text).expect("status JSON");
        let e = j
            .as_array()
            .and_then(|a| a.iter().find(|e| e["name"] == self.learner.ifname.as_str()))
            .unwrap_or_else(|| panic!("no {} in {text}", self.learner.ifname));
        let list = e["learned"]
            .as_array()
            .unwrap_or_else(|| panic!("no learned list (learn_dhcp on): {e}"));
        list.iter()
            .map(|l| {
                (
                    l["address"]
                        .as_str()
                        .and_then(|a| a.parse().ok())
                        .unwrap_or_else(|| panic!("address in {l}")),
                    l["expires_in_s"]
                        .as_u64()
                        .unwrap_or_else(|| panic!("expires_in_s in {l}")),
                )
            })
            .collect()
    }

    /// The pinned maps and the learner's policy entry.
    fn learner_entry(&self) -> (Maps, filter_common::IfacePolicy) {
        let maps = Maps::open_pinned(
            &self
                .bpffs
                .join(format!("v{}", filter_common::ABI_VERSION))
                .join("maps"),
        )
        .expect("open the pinned maps");
        let ifindex = self.dom0.ifindex(&self.learner.ifname);
        let p = maps
            .policy_of(ifindex)
            .expect("read the policy")
            .expect("the learner has a policy entry");
        (maps, p)
    }

    /// Packets counted on the learner's vif in `dir` under `reason`.
    fn count(&self, dir: Direction, reason: Reason) -> u64 {
        let (maps, p) = self.learner_entry();
        maps.counters(p.slot)
            .expect("counters")
            .get(dir, reason)
            .packets
    }

    /// The learner's counter slot.
    fn slot(&self) -> u32 {
        self.learner_entry().1.slot
    }

    /// The learner's `ipv4_spoof` count.
    fn spoofed(&self) -> u64 {
        self.count(Direction::FromGuest, Reason::Ipv4Spoof)
    }

    /// One ping from the learner to dom0's address, 1 s to answer.
    fn ping(&self) -> bool {
        self.learner
            .ns
            .exec(&["ping", "-c", "1", "-W", "1", &SERVER.to_string()])
            .status
            .success()
    }

    /// busybox udhcpc in the learner, in the foreground, releasing its
    /// lease when it exits (`-R`); its script configures the address and
    /// writes the lease to a file. Waits for the lease.
    fn start_udhcpc(&mut self) -> String {
        let (script, lease) = (self.dir.join("udhcpc.sh"), self.dir.join("lease"));
        std::fs::write(
            &script,
            format!(
                "#!/bin/sh\n\
                 case \"$1\" in\n\
                 bound|renew) ip addr add \"$ip/$mask\" dev \"$interface\" 2>/dev/null; echo \"$ip $serverid $lease\" > {lease} ;;\n\
                 deconfig) ip -4 addr flush dev \"$interface\" ;;\n\
                 esac\n\
                 exit 0\n",
                lease = lease.display()
            ),
        )
        .expect("write the udhcpc script");
        std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .expect("chmod the udhcpc script");
        let script = script.display().to_string();
        let child = Command::new("ip")
            .args(["netns", "exec", &self.learner.ns.name])
            .args(["busybox", "udhcpc", "-i", "eth0", "-f", "-R", "-t", "5"])
            .args(["-T", "1", "-s", &script])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start busybox udhcpc");
        self.udhcpc = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(l) = std::fs::read_to_string(&lease) {
                return l.trim().to_string();
            }
            assert!(Instant::now() < deadline, "udhcpc got no lease in 10 s");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Stops udhcpc as an init system does (SIGTERM): with `-R` it sends
    /// a DHCPRELEASE first.
    fn stop_udhcpc(&mut self) {
        let Some(mut c) = self.udhcpc.take() else {
            return;
        };
        let pid = c.id() as libc::pid_t;
        // SAFETY: signalling our own child, which has not been reaped.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(5);
        while c.try_wait().ok().flatten().is_none() {
            if Instant::now() > deadline {
                let _ = c.kill();
                let _ = c.wait();
                panic!("udhcpc did not exit on SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// A DHCPACK of `yiaddr` for `lease_s` seconds to the learner,
    /// broadcast to the client port from port 67 of `src` (MAC `src_mac`)
    /// through `sock`.
    fn send_ack(
        &self,
        sock: &RawSocket,
        src_mac: Mac,
        src: Ipv4Addr,
        yiaddr: Ipv4Addr,
        lease_s: u32,
    ) {
        let mut ack = dhcpv4_ack(self.learner.mac, 0x5eed, yiaddr, src);
        set_lease(&mut ack, lease_s);
        sock.send(
            &Frame::eth(src_mac, BROADCAST)
                .ipv4(src, Ipv4Addr::BROADCAST)
                .udp(67, 68)
                .payload(&ack)
                .build(),
        );
    }

    /// A UDP datagram from the learner's MAC with source `src`, to dom0.
    fn send_from(&self, src: Ipv4Addr) {
        let sock = RawSocket::open(&self.learner.ns, "eth0");
        sock.send(
            &Frame::eth(self.learner.mac, DOM0_MAC)
                .ipv4(src, SERVER)
                .udp(40000, 9)
                .payload(b"vifguard learn test")
                .build(),
        );
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        if let Some(mut c) = self.udhcpc.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        if let Some(mut c) = self.dnsmasq.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = std::fs::remove_file(&self.pid_file);
        for g in [&self.learner, &self.rogue] {
            let _ = self.hotplug(g, "offline");
        }
        testbed::kernel::remove_root(&self.bpffs);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Sets option 51 (lease time) of a DHCP message built by
/// [`dhcpv4_ack`] to `secs`.
fn set_lease(m: &mut [u8], secs: u32) {
    let mut o = 240; // after the BOOTP header and the magic cookie
    while o + 1 < m.len() && m[o] != 255 {
        if m[o] == 51 {
            m[o + 2..o + 6].copy_from_slice(&secs.to_be_bytes());
            return;
        }
        o += 2 + usize::from(m[o + 1]);
    }
    panic!("no lease time option");
}

/// Polls `f` every 100 ms for up to `wait`.
fn eventually(wait: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + wait;
    loop {
        if f() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_lease_from_the_trusted_server_is_the_guests_address_while_it_lasts() {
    let started = Instant::now();
    let mut host = Host::build();
    // `vifguard events` follows the learned addresses the whole test.
    let events = vifguard_in(&host.dom0, &host.vifguard)
        .args(["events", "--json", "--timeout", "120"])
        .env("VIFGUARD_CONFIG", &host.config)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start vifguard events");
    let events = KillOnDrop(Some(events));
    std::thread::sleep(Duration::from_millis(500));

    // Nothing learned yet: the learner has no address at all.
    assert_eq!(host.learned(), []);
    let before = host.spoofed();
    host.send_from(LEASE);
    assert!(
        eventually(Duration::from_secs(1), || host.spoofed() == before + 1),
        "the address to be leased was allowed before the lease"
    );

    // busybox udhcpc takes its lease from dnsmasq.
    let lease = host.start_udhcpc();
    eprintln!("udhcpc bound: {lease} (address, server, lease s)");
    assert!(
        lease.starts_with(&format!("{LEASE} {SERVER} ")),
        "lease {lease:?}"
    );
    let learned = host.learned();
    eprintln!("learned: {learned:?}");
    assert_eq!(learned.len(), 1, "{learned:?}");
    let (addr, left) = learned[0];
    assert_eq!(addr, LEASE);
    // dnsmasq's 2 minutes, no grace.
    assert!((100..=120).contains(&left), "expires in {left} s");
    let metrics = host.vifguard(&["metrics"]).expect("vifguard metrics");
    let gauge = format!(
        "vifguard_learned_addresses{{interface=\"{}\",domid=\"21\",devid=\"0\"}} 1",
        host.learner.ifname
    );
    assert!(metrics.lines().any(|l| l == gauge), "{metrics}");

    // The loader runs again (a sync re-applies every policy) and is
    // upgraded (a build whose programs are not pinned yet: its sync loads
    // them and re-points every hook): the lease stays learned, with its
    // expiry.
    // (Same address, expiry a second or two nearer at most.)
    let kept = |now: Vec<(Ipv4Addr, u64)>| matches!((&now[..], &learned[..]), ([(a, l)], [(b, before)]) if a == b && l + 2 >= *before && l <= before);
    host.vifguard(&["sync"]).expect("vifguard sync");
    let now = host.learned();
    assert!(
        kept(now.clone()),
        "a re-applied policy lost its lease: {now:?}"
    );
    let progs = host
        .bpffs
        .join(format!("v{}/progs", filter_common::ABI_VERSION));
    std::fs::remove_dir_all(&progs).expect("unpin the programs");
    host.vifguard(&["sync"]).expect("vifguard sync (upgrade)");
    assert!(progs.is_dir(), "the sync loaded no programs");
    let now = host.learned();
    assert!(kept(now.clone()), "an upgrade lost the lease: {now:?}");

    // The leased address works; a neighbour's does not.
    assert!(host.ping(), "ping from the leased address failed");
    let before = host.spoofed();
    host.send_from(NEIGHBOUR);
    assert!(
        eventually(Duration::from_secs(1), || host.spoofed() == before + 1),
        "a neighbour's address was not ipv4_spoof"
    );

    // A rogue server (an unlocked guest, not in dhcp-servers) ACKs another
    // address to the learner, from port 67 as a real server would: it is
    // dhcp_untrusted and teaches nothing.
    let untrusted = |h: &Host| h.count(Direction::ToGuest, Reason::DhcpUntrusted);
    let before = untrusted(&host);
    let rogue_sock = RawSocket::open(&host.rogue.ns, "eth0");
    host.send_ack(&rogue_sock, host.rogue.mac, ROGUE_IP, ROGUE_LEASE, 3600);
    assert!(
        eventually(Duration::from_secs(1), || untrusted(&host) == before + 1),
        "the rogue ACK was not dhcp_untrusted"
    );
    let learned = host.learned();
    assert_eq!(
        learned.iter().map(|l| l.0).collect::<Vec<_>>(),
        [LEASE],
        "the rogue taught something"
    );
    let before = host.spoofed();
    host.send_from(ROGUE_LEASE);
    assert!(
        eventually(Duration::from_secs(1), || host.spoofed() == before + 1),
        "the rogue's lease was allowed"
    );

    // The client releases its lease: forgotten at once.
    host.stop_udhcpc();
    assert_eq!(host.learned(), [], "the released lease is still learned");
    let before = host.spoofed();
    host.send_from(LEASE);
    assert!(
        eventually(Duration::from_secs(1), || host.spoofed() == before + 1),
        "the released address was still allowed"
    );
    assert!(metrics.contains("vifguard_learned_addresses"));
    let metrics = host.vifguard(&["metrics"]).expect("vifguard metrics");
    assert!(
        metrics.lines().any(|l| l == gauge.replace("} 1", "} 0")),
        "{metrics}"
    );

    // A lease nobody renews: dom0's server ACKs a 2-second lease (no
    // grace in this host's configuration). Static neighbours, so the
    // ping is one round trip with nothing to resolve first.
    let (l, d) = (&host.learner, &host.dom0);
    l.ns.ip(&["addr", "add", &format!("{SHORT_LEASE}/24"), "dev", "eth0"]);
    let dom0_mac = MacAddr(DOM0_MAC).to_string();
    let learner_mac = MacAddr(l.mac).to_string();
    let (server, short) = (SERVER.to_string(), SHORT_LEASE.to_string());
    l.ns.ip(&[
        "neigh", "replace", &server, "lladdr", &dom0_mac, "dev", "eth0",
    ]);
    d.ip(&[
        "neigh",
        "replace",
        &short,
        "lladdr",
        &learner_mac,
        "dev",
        "xenbr0",
    ]);
    assert!(!host.ping(), "the address worked before its ACK");
    let dom0_sock = RawSocket::open(&host.dom0, "xenbr0");
    host.send_ack(&dom0_sock, DOM0_MAC, SERVER, SHORT_LEASE, 2);
    let acked = Instant::now();
    assert!(host.ping(), "the 2-second lease did not work");
    let learned = host.learned();
    assert!(
        matches!(learned[..], [(a, 1..=2)] if a == SHORT_LEASE),
        "{learned:?}"
    );
    assert!(
        eventually(Duration::from_secs(3), || host.learned().is_empty()),
        "the 2-second lease did not expire"
    );
    let expired = acked.elapsed();
    eprintln!("the 2-second lease expired after {expired:?}");
    assert!(expired >= Duration::from_secs(1), "{expired:?}");
    let before = host.spoofed();
    assert!(!host.ping(), "the expired address still works");
    assert_eq!(
        host.spoofed(),
        before + 1,
        "the ping after expiry was not ipv4_spoof"
    );
    // A lease learned, then the vif goes offline: nothing of it is left
    // for whichever interface takes its slot next.
    let dom0_sock = RawSocket::open(&host.dom0, "xenbr0");
    host.send_ack(&dom0_sock, DOM0_MAC, SERVER, SHORT_LEASE, 600);
    assert!(
        eventually(Duration::from_secs(2), || !host.learned().is_empty()),
        "the 10-minute lease was not learned"
    );
    // (`vifguard events` reads every 200 ms: give it one read.)
    std::thread::sleep(Duration::from_millis(500));
    let slot = host.slot();
    host.hotplug(&host.learner, "offline")
        .expect("hotplug offline");
    let maps = filter_user::datapath::Maps::open_pinned(
        &host
            .bpffs
            .join(format!("v{}/maps", filter_common::ABI_VERSION)),
    )
    .expect("the pinned maps");
    assert_eq!(
        maps.learned(slot).expect("LEARNED"),
        [],
        "offline kept the lease"
    );

    // `vifguard events` reads the learned addresses every 200 ms.
    std::thread::sleep(Duration::from_millis(500));
    let printed = events.finish();
    eprintln!("vifguard events printed:\n{printed}");
    let lease_events: Vec<(String, String)> = printed
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|e| e["event"] != "drop" && e["interface"] == host.learner.ifname.as_str())
        .map(|e| {
            (
                e["event"].as_str().unwrap_or("?").to_string(),
                e["address"].as_str().unwrap_or("?").to_string(),
            )
        })
        .collect();
    let want: Vec<(String, String)> = [
        ("learned", LEASE),
        ("removed", LEASE),
        ("learned", SHORT_LEASE),
        ("expired", SHORT_LEASE),
        ("learned", SHORT_LEASE),
        ("removed", SHORT_LEASE),
    ]
    .iter()
    .map(|(e, a)| (e.to_string(), a.to_string()))
    .collect();
    assert_eq!(lease_events, want, "vifguard events");
    eprintln!("whole test: {:?}", started.elapsed());
}

/// A child process killed (and reaped) when dropped, unless finished.
struct KillOnDrop(Option<std::process::Child>);

impl KillOnDrop {
    /// Stops the child and returns what it printed.
    fn finish(mut self) -> String {
        let Some(mut c) = self.0.take() else {
            return String::new();
        };
        let _ = c.kill();
        let out = c.wait_with_output().expect("wait for the child");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(c) = &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
