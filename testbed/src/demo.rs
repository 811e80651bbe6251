//! The demo host: a simulated Xen dom0 in network namespaces, populated the
//! way xl, XAPI and OpenStack populate a real one, with vifguard run exactly
//! as the vif hotplug script runs it; then legitimate traffic and attacks
//! from inside the guests, each observed where it was aimed.
//!
//! Used by the `vifguard-demo` binary (`cargo xtask demo`) and by the
//! end-to-end test `testbed/tests/demo.rs`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use filter_common::{Direction, Reason, map_names};
use filter_user::datapath::Maps;
use filter_user::policy::MacAddr;

use crate::frames::{
    BROADCAST, DHCPDISCOVER, DHCPREQUEST, Frame, Mac, arp_op, dhcpv4_ack, dhcpv4_offer,
    ipv6_multicast_mac, na_flags, parse_dhcpv4_client_message, solicited_node,
};
use crate::keepalived::{Keepalived, VrrpConfig};
use crate::netns::{NetNs, RawSocket, run_ok, veth, vifguard_in};
use crate::xenstored::TestXenstored;

const DOM0_MAC: Mac = [0x00, 0x16, 0x3e, 0x00, 0x00, 0x01];
pub const GATEWAY: &str = "192.0.2.1";
const GATEWAY6: &str = "2001:db8::1";
/// A MAC the bridge has never seen.
const NEIGHBOUR: Mac = [0x00, 0x16, 0x3e, 0x00, 0x77, 0x01];
const WAIT: Duration = Duration::from_millis(700);
/// What the rogue DHCP server in a guest offers.
const ROGUE_LEASE: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 66);
/// The source port it answers from: not 67, which clients do not check.
const ROGUE_PORT: u16 = 1234;
/// The VRRP router guest6 and guest7 share (keepalived, `use_vmac`): its
/// router id and virtual addresses, listed in both guests' policies as
/// `vifguard/pairs` = `vrrp:51=192.0.2.50,2001:db8::50`.
pub const VRID: u8 = 51;
pub const VIP4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 50);
pub const VIP6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x50);
/// The guests that run the VRRP router, master first (higher priority).
const VRRP_ROUTERS: [&str; 2] = ["guest6", "guest7"];
/// Longest a backup may take to answer for the virtual address once the
/// master stops: keepalived's master-down interval at advert_int 0.1 s is
/// about 0.35 s; the rest is slack for a loaded machine.
pub const FAILOVER_LIMIT: Duration = Duration::from_secs(3);

/// Tells apart the demo hosts one process builds (the live tests build
/// several, one after the other).
static HOSTS: AtomicU32 = AtomicU32::new(0);

/// How a guest's policy reaches xenstore.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// xl's `ip=` in the backend directory, plus vifguard's own keys.
    Xl,
    /// XAPI's /xapi/<uuid>/private/vif/<devid> keys.
    Xapi,
    /// OpenStack's vm-data/networking record.
    OpenStack,
}

pub struct Guest {
    pub name: &'static str,
    pub domid: u32,
    /// The dom0 interface: vifN.0, or tapN.0 for the HVM-style guest.
    pub ifname: String,
    pub mac: Mac,
    pub ipv4: Ipv4Addr,
    pub ipv6: Ipv6Addr,
    pub source: Source,
    pub mode: &'static str,
    pub ns: NetNs,
}

pub struct DemoHost {
    pub dom0: NetNs,
    pub guests: Vec<Guest>,
    pub xs: TestXenstored,
    pub vifguard: PathBuf,
    pub bpffs: PathBuf,
    config: PathBuf,
    dnsmasq: Option<Child>,
    /// `<pid>-<n>`: names this host's files, so hosts do not share them.
    tag: String,
}

/// One line of the demo's table.
#[derive(Clone, Debug)]
pub struct Row {
    pub name: &'static str,
    pub attack: bool,
    /// Whether it should reach its target.
    pub expected_reach: bool,
    pub observed_reach: bool,
    /// The counter that should move on the guest's interface.
    pub expected_reason: Reason,
    /// Reasons whose counters moved on that interface meanwhile.
    pub counted: Vec<Reason>,
}

impl Row {
    pub fn ok(&self) -> bool {
        self.expected_reach == self.observed_reach && self.counted.contains(&self.expected_reason)
    }
}

fn mac_of(domid: u32) -> Mac {
    [0x00, 0x16, 0x3e, 0x00, domid as u8, 0x01]
}

impl DemoHost {
    /// Builds the host; `progress` hears what is being set up.
    pub fn build(vifguard: &Path, progress: &dyn Fn(&str)) -> Result<DemoHost, String> {
        let tag = format!(
            "{}-{}",
            std::process::id(),
            HOSTS.fetch_add(1, Ordering::Relaxed)
        );
        let bpffs = PathBuf::from(format!("/sys/fs/bpf/vifguard-demo-{tag}"));
        let config = std::env::temp_dir().join(format!("vifguard-demo-{tag}.toml"));
        std::fs::write(&config, format!("bpffs = \"{}\"\n", bpffs.display()))
            .map_err(|e| format!("write {}: {e}", config.display()))?;
        progress("starting a xenstore daemon (wire protocol on a unix socket)");
        let xs = TestXenstored::start();
        progress("creating dom0: bridge xenbr0 with 192.0.2.1/24 and 2001:db8::1/64");
        let dom0 = NetNs::new("demo-dom0");
        dom0.ip(&["link", "add", "xenbr0", "type", "bridge"]);
        dom0.ip(&[
            "link",
            "set",
            "xenbr0",
            "address",
            &MacAddr(DOM0_MAC).to_string(),
        ]);
        dom0.ip(&["addr", "add", "192.0.2.1/24", "dev", "xenbr0"]);
        dom0.ip(&["addr", "add", "2001:db8::1/64", "dev", "xenbr0", "nodad"]);
        dom0.ip(&["link", "set", "xenbr0", "up"]);

        let plan: [(&str, u32, &str, Source, &str); 7] = [
            ("guest1", 1, "vif1.0", Source::Xl, "locked"),
            ("guest2", 2, "vif2.0", Source::Xapi, "locked"),
            ("guest3", 3, "vif3.0", Source::OpenStack, "locked"),
            ("guest4", 4, "tap4.0", Source::Xl, "isolated"),
            ("guest5", 5, "vif5.0", Source::Xapi, "unlocked"),
            // The VRRP routers (keepalived with virtual MACs).
            ("guest6", 6, "vif6.0", Source::Xl, "locked"),
            ("guest7", 7, "vif7.0", Source::Xl, "locked"),
        ];
        let mut host = DemoHost {
            dom0,
            guests: Vec::new(),
            xs,
            vifguard: vifguard.to_path_buf(),
            bpffs,
            config,
            dnsmasq: None,
            tag,
        };
        for (name, domid, ifname, source, mode) in plan {
            progress(&format!(
                "{name}: domain {domid}, {ifname}, policy from {source:?} ({mode})"
            ));
            let g = Guest {
                name,
                domid,
                ifname: ifname.to_string(),
                mac: mac_of(domid),
                ipv4: Ipv4Addr::new(192, 0, 2, 10 + domid as u8),
                ipv6: format!("2001:db8::{}", 10 + domid)
                    .parse()
                    .map_err(|e| format!("{e}"))?,
                source,
                mode,
                ns: NetNs::new(name),
            };
            host.wire(&g)?;
            host.publish(&g)?;
            host.guests.push(g);
        }
        progress("starting dnsmasq as the DHCP server on xenbr0");
        host.start_dhcp_server()?;
        for g in &host.guests {
            progress(&format!(
                "vif hotplug: vif={} XENBUS_PATH=backend/vif/{}/0 vifguard hotplug online",
                g.ifname, g.domid
            ));
            host.hotplug(g, "online")?;
        }
        progress("bringing the guests' links up");
        for g in &host.guests {
            g.ns.ip(&["link", "set", "eth0", "up"]);
            g.ns.ip(&[
                "-6",
                "addr",
                "add",
                &format!("{}/64", g.ipv6),
                "dev",
                "eth0",
                "nodad",
            ]);
            if g.name != "guest2" {
                g.ns.ip(&["route", "add", "default", "via", GATEWAY]);
            }
        }
        std::thread::sleep(Duration::from_millis(300));
        Ok(host)
    }

    /// The guest's NIC: a veth with the guest's MAC, its dom0 end named
    /// like Xen's on the bridge. Addresses are configured as the guest
    /// would; the link comes up after the hotplug, as on a real host.
    fn wire(&self, g: &Guest) -> Result<(), String> {
        veth(&self.dom0, &g.ifname, &g.ns, "eth0");
        g.ns.ip(&["link", "set", "eth0", "down"]);
        g.ns.ip(&[
            "link",
            "set",
            "eth0",
            "address",
            &MacAddr(g.mac).to_string(),
        ]);
        if g.name != "guest2" {
            // guest2 gets its IPv4 address by DHCP.
            g.ns.ip(&["addr", "add", &format!("{}/24", g.ipv4), "dev", "eth0"]);
        }
        self.dom0
            .ip(&["link", "set", &g.ifname, "master", "xenbr0"]);
        Ok(())
    }

    fn xs_write(&self, path: &str, value: &str) -> Result<(), String> {
        self.xs
            .tool_ok("xenstore-write", &[path, value])
            .map(|_| ())
    }

    /// Writes what the toolstack would write for this guest's vif.
    fn publish(&self, g: &Guest) -> Result<(), String> {
        let backend = format!("/local/domain/0/backend/vif/{}/0", g.domid);
        let dom = format!("/local/domain/{}", g.domid);
        self.xs_write(&format!("{dom}/name"), g.name)?;
        self.xs_write(&format!("{backend}/mac"), &MacAddr(g.mac).to_string())?;
        self.xs_write(&format!("{backend}/bridge"), "xenbr0")?;
        self.xs_write(&format!("{backend}/online"), "1")?;
        match g.source {
            Source::Xl => {
                self.xs_write(&format!("{backend}/ip"), &format!("{} {}", g.ipv4, g.ipv6))?;
                self.xs_write(&format!("{backend}/vifguard/mode"), g.mode)?;
                if g.mode == "isolated" {
                    self.xs_write(
                        &format!("{backend}/vifguard/destinations"),
                        "192.0.2.1/32 2001:db8::1/128",
                    )?;
                }
            }
            Source::Xapi => {
                let uuid = format!("6b3f0c2e-0000-4000-8000-00000000000{}", g.domid);
                self.xs_write(&format!("{dom}/vm"), &format!("/vm/{uuid}"))?;
                let xapi = format!("/xapi/{uuid}/private/vif/0");
                self.xs_write(&format!("{xapi}/locking-mode"), g.mode)?;
                if g.mode == "locked" {
                    self.xs_write(&format!("{xapi}/ipv4-allowed"), &g.ipv4.to_string())?;
                    self.xs_write(&format!("{xapi}/ipv6-allowed"), &g.ipv6.to_string())?;
                }
                self.xs.tool_ok("xenstore-chmod", &["-r", "/xapi", "n0"])?;
            }
            Source::OpenStack => {
                let key: String = MacAddr(g.mac).to_string().replace(':', "");
                let record = format!(
                    r#"{{"label": "public", "mac": "{}", "ips": [{{"ip": "{}", "netmask": "255.255.255.0", "enabled": "1"}}], "ip6s": [{{"ip": "{}", "netmask": 64, "enabled": "1"}}], "gateway": "{GATEWAY}", "gateway_v6": "{GATEWAY6}"}}"#,
                    MacAddr(g.mac),
                    g.ipv4,
                    g.ipv6
                );
                self.xs_write(&format!("{dom}/vm-data/networking/{key}"), &record)?;
            }
        }
        if VRRP_ROUTERS.contains(&g.name) {
            // The VRRP router both may be: its virtual MACs and addresses.
            self.xs_write(
                &format!("{backend}/vifguard/pairs"),
                &format!("vrrp:{VRID}={VIP4},{VIP6}"),
            )?;
        }
        if g.name == "guest2" {
            // guest2 takes leases from dom0's dnsmasq only: a DHCP server
            // anywhere else on the bridge is dhcp_untrusted to it.
            self.xs_write(
                &format!("{backend}/vifguard/dhcp-servers"),
                &format!("{GATEWAY} {GATEWAY6}"),
            )?;
        }
        // The guest may read its own tree but write none of what is policy.
        self.xs.tool_ok(
            "xenstore-chmod",
            &["-r", &dom, "n0", &format!("r{}", g.domid)],
        )?;
        self.xs.tool_ok(
            "xenstore-chmod",
            &["-r", &backend, "n0", &format!("r{}", g.domid)],
        )?;
        Ok(())
    }

    fn start_dhcp_server(&mut self) -> Result<(), String> {
        let g2 = self.guest("guest2");
        let child = Command::new("ip")
            .args(["netns", "exec", &self.dom0.name, "dnsmasq"])
            .args([
                "--keep-in-foreground",
                "--no-resolv",
                "--no-hosts",
                "--port=0",
                "--interface=xenbr0",
                "--bind-interfaces",
                "--dhcp-range=192.0.2.100,192.0.2.150,255.255.255.0,1h",
                &format!("--dhcp-host={},{}", MacAddr(g2.mac), g2.ipv4),
                "--dhcp-leasefile=/dev/null",
                "--log-facility=-",
                &format!("--pid-file={}", self.dnsmasq_pid_file().display()),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("starting dnsmasq: {e}"))?;
        self.dnsmasq = Some(child);
        std::thread::sleep(Duration::from_millis(300));
        Ok(())
    }

    /// dnsmasq's pid file (it insists on one; killed, it leaves it).
    fn dnsmasq_pid_file(&self) -> PathBuf {
        PathBuf::from(format!("/run/vifguard-demo-dnsmasq-{}.pid", self.tag))
    }

    pub fn guest(&self, name: &str) -> &Guest {
        self.guests
            .iter()
            .find(|g| g.name == name)
            .unwrap_or_else(|| panic!("no guest {name}"))
    }

    /// vifguard in dom0's network namespace.
    fn in_dom0(&self) -> Command {
        vifguard_in(&self.dom0, &self.vifguard)
    }

    /// Runs vifguard as the vif hotplug script does, in dom0.
    pub fn hotplug(&self, g: &Guest, action: &str) -> Result<String, String> {
        let verb = if g.ifname.starts_with("tap") {
            if action == "online" { "add" } else { "remove" }
        } else {
            action
        };
        run_ok(
            self.in_dom0()
                .args(["hotplug", verb])
                .env("vif", &g.ifname)
                .env("XENBUS_PATH", format!("backend/vif/{}/0", g.domid))
                .env("XENSTORED_PATH", self.xs.socket_path())
                .env("VIFGUARD_CONFIG", &self.config),
        )
    }

    /// `vifguard status` as an operator would run it.
    pub fn status(&self) -> Result<String, String> {
        run_ok(
            self.in_dom0()
                .arg("status")
                .env("VIFGUARD_CONFIG", &self.config),
        )
    }

    fn maps(&self) -> Result<Maps, String> {
        let dir = self
            .bpffs
            .join(format!("v{}", filter_common::ABI_VERSION))
            .join("maps");
        Maps::open_pinned(&dir)
            .map_err(|e| format!("open {}: {e}", dir.join(map_names::POLICY).display()))
    }

    /// Packets counted per reason on `g`'s interface, in `dir`.
    pub fn counts(&self, g: &Guest, dir: Direction) -> Result<Vec<(Reason, u64)>, String> {
        let ifindex = self.dom0.ifindex(&g.ifname);
        let maps = self.maps()?;
        let policy = maps
            .policy_of(ifindex)
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("{} has no policy entry", g.ifname))?;
        let c = maps.counters(policy.slot).map_err(|e| e.to_string())?;
        Ok(Reason::ALL
            .iter()
            .map(|r| (*r, c.get(dir, *r).packets))
            .collect())
    }

    /// Runs `act`, returning whether it reached its target and which
    /// counters of `g`'s interface moved (in `dir`) meanwhile.
    fn observe(
        &self,
        g: &Guest,
        dir: Direction,
        act: impl FnOnce() -> bool,
    ) -> Result<(bool, Vec<Reason>), String> {
        let before = self.counts(g, dir)?;
        let reached = act();
        let after = self.counts(g, dir)?;
        let moved = before
            .iter()
            .zip(after.iter())
            .filter(|(b, a)| a.1 > b.1)
            .map(|(b, _)| b.0)
            .collect();
        Ok((reached, moved))
    }

    /// Sends `frame` from `from`'s NIC and reports whether it (its marker,
    /// the last 16 bytes) arrived at `to`'s NIC.
    fn frame_reaches(&self, from: &NetNs, to: &NetNs, frame: &[u8]) -> bool {
        let rx = RawSocket::open(
            to,
            if to.name == self.dom0.name {
                "xenbr0"
            } else {
                "eth0"
            },
        );
        let tx = RawSocket::open(
            from,
            if from.name == self.dom0.name {
                "xenbr0"
            } else {
                "eth0"
            },
        );
        tx.send(frame);
        let tail = &frame[frame.len().saturating_sub(16)..];
        rx.drain(WAIT)
            .iter()
            .any(|r| r == frame || r.windows(tail.len()).any(|w| w == tail))
    }

    /// Runs busybox udhcpc in `g` (a real DHCP client) and returns the
    /// lease it accepted as "ADDRESS SERVER", or `None` if it got none.
    pub fn dhcp_lease(&self, g: &Guest) -> Option<String> {
        let dir = std::env::temp_dir().join(format!("vifguard-demo-udhcpc-{}", self.tag));
        std::fs::create_dir_all(&dir).ok()?;
        let (script, lease) = (dir.join("script"), dir.join("lease"));
        let _ = std::fs::remove_file(&lease);
        std::fs::write(
            &script,
            format!(
                "#!/bin/sh\n[ \"$1\" = bound ] && echo \"$ip $serverid\" > {}\nexit 0\n",
                lease.display()
            ),
        )
        .ok()?;
        std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .ok()?;
        let script_arg = script.display().to_string();
        g.ns.exec(&[
            "busybox",
            "udhcpc",
            "-i",
            "eth0",
            "-n",
            "-q",
            "-f",
            "-t",
            "4",
            "-T",
            "1",
            "-s",
            &script_arg,
        ]);
        let got = std::fs::read_to_string(&lease).ok();
        let _ = std::fs::remove_dir_all(&dir);
        got.map(|l| l.trim().to_string())
    }

    /// The lease dom0's dnsmasq gives `g`, as [`DemoHost::dhcp_lease`]
    /// reports it.
    pub fn dnsmasq_lease(&self, g: &Guest) -> String {
        format!("{} {GATEWAY}", g.ipv4)
    }

    /// Runs busybox udhcpc in `client` while a rogue DHCP server in
    /// `rogue` answers every request it sees, as fast as it can.
    pub fn dhcp_race(&self, client: &Guest, rogue: &Guest) -> DhcpRace {
        let seen_by_client = RawSocket::open(&client.ns, "eth0");
        let sock = RawSocket::open(&rogue.ns, "eth0");
        let stop = AtomicBool::new(false);
        let sent = AtomicUsize::new(0);
        let lease = std::thread::scope(|s| {
            s.spawn(|| rogue_dhcp_server(&sock, rogue, &stop, &sent));
            let lease = self.dhcp_lease(client);
            stop.store(true, Ordering::Relaxed);
            lease
        });
        let rogue_seen = seen_by_client
            .drain(Duration::from_millis(100))
            .iter()
            .filter(|f| is_dhcp_reply_from(f, rogue.mac))
            .count();
        DhcpRace {
            lease,
            rogue_replies: sent.load(Ordering::Relaxed),
            rogue_seen,
        }
    }

    /// The router guest6 and guest7 share, at `priority`: advertisements
    /// every 0.1 s (a backup takes over about 0.35 s after the master
    /// falls silent).
    pub fn vrrp_config(&self, priority: u8) -> VrrpConfig {
        VrrpConfig {
            vrid: VRID,
            priority,
            vip4: VIP4,
            net4: (Ipv4Addr::new(192, 0, 2, 0), 24),
            vip6: VIP6,
            prefix6: 64,
            advert_centis: 10,
        }
    }

    /// Starts keepalived in guest6 (priority 150) and guest7 (100) and
    /// waits until guest6 is master and dom0 reaches both virtual
    /// addresses.
    pub fn start_vrrp(&self) -> Result<VrrpPair, String> {
        let [m, b] = VRRP_ROUTERS.map(|n| self.guest(n));
        let pair = VrrpPair {
            routers: [
                Keepalived::start(&m.ns, &self.vrrp_config(150))?,
                Keepalived::start(&b.ns, &self.vrrp_config(100))?,
            ],
        };
        if !pair.routers[0].wait_master(Duration::from_secs(5)) {
            return Err(format!(
                "keepalived in guest6 did not become master:\n{}",
                pair.routers[0].log()
            ));
        }
        // The first pings wait for ARP and ND through the virtual MACs.
        let reached = |a: IpAddr| (0..10).any(|_| self.dom0_ping(a, Duration::from_millis(300)));
        for a in [IpAddr::V4(VIP4), IpAddr::V6(VIP6)] {
            if !reached(a) {
                return Err(format!(
                    "dom0 does not reach {a} on guest6:\n{}",
                    pair.routers[0].log()
                ));
            }
        }
        Ok(pair)
    }

    /// One ping from dom0 (the client the VRRP router serves) to `addr`.
    pub fn dom0_ping(&self, addr: IpAddr, wait: Duration) -> bool {
        let wait = format!("{:.2}", wait.as_secs_f64());
        let addr = addr.to_string();
        self.dom0
            .exec(&["ping", "-n", "-q", "-c", "1", "-W", &wait, &addr])
            .status
            .success()
    }

    /// The bridge port dom0's bridge has learned `mac` on, if any.
    pub fn fdb_port(&self, mac: Mac) -> Option<String> {
        let out = self
            .dom0
            .exec(&["bridge", "fdb", "show", "br", "xenbr0"])
            .stdout;
        let mac = MacAddr(mac).to_string();
        String::from_utf8_lossy(&out).lines().find_map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            (w.first() == Some(&mac.as_str()) && w.get(1) == Some(&"dev"))
                .then(|| w.get(2).map(|p| p.to_string()))
                .flatten()
        })
    }

    /// Makes guest6, the master, fail as `failure` says, and pings the
    /// IPv4 virtual address from dom0 until guest7 answers it: the time
    /// from the failure to that first answer. Then checks that guest7
    /// answers for the IPv6 address too, and that the bridge sends both
    /// virtual MACs to guest7's vif.
    pub fn vrrp_failover(
        &self,
        pair: &mut VrrpPair,
        failure: MasterFailure,
    ) -> Result<Duration, String> {
        let [master, backup] = VRRP_ROUTERS.map(|n| self.guest(n));
        let vmac4 = pair.routers[1].config().vmac4();
        if !pair.routers[0].is_master() {
            return Err("guest6 is not master before the failover".into());
        }
        let t0 = Instant::now();
        match failure {
            MasterFailure::Stop => pair.routers[0].signal_stop(),
            MasterFailure::LinkDown => master.ns.ip(&["link", "set", "eth0", "down"]),
        }
        // Answered by guest7: it holds the address and the bridge has
        // learned the virtual MAC on its port (a stopping master answers
        // from the same MAC until it has let go).
        let took = loop {
            if self.dom0_ping(IpAddr::V4(VIP4), Duration::from_millis(100))
                && self.fdb_port(vmac4).as_deref() == Some(backup.ifname.as_str())
                && pair.routers[1].is_master()
            {
                break t0.elapsed();
            }
            if t0.elapsed() > FAILOVER_LIMIT {
                return Err(format!(
                    "guest7 does not answer for {VIP4} {FAILOVER_LIMIT:?} after the master's {failure:?}; its log:\n{}",
                    pair.routers[1].log()
                ));
            }
        };
        if failure == MasterFailure::Stop {
            pair.routers[0].stop();
        }
        if !(0..10).any(|_| self.dom0_ping(IpAddr::V6(VIP6), Duration::from_millis(300))) {
            return Err(format!("dom0 does not reach {VIP6} on guest7"));
        }
        let cfg = pair.routers[1].config();
        for mac in [cfg.vmac4(), cfg.vmac6()] {
            let port = self.fdb_port(mac);
            if port.as_deref() != Some(backup.ifname.as_str()) {
                return Err(format!(
                    "the bridge sends {} to {port:?}, not to {}",
                    MacAddr(mac),
                    backup.ifname
                ));
            }
        }
        Ok(took)
    }

    /// Starts guest6's keepalived again after a stop: with the higher
    /// priority it takes the router back (preemption). Waits until dom0
    /// reaches the virtual address through guest6's vif.
    pub fn vrrp_restart_master(&self, pair: &mut VrrpPair) -> Result<(), String> {
        let master = self.guest(VRRP_ROUTERS[0]);
        pair.routers[0] = Keepalived::start(&master.ns, &self.vrrp_config(150))?;
        let vmac4 = pair.routers[0].config().vmac4();
        let deadline = Instant::now() + Duration::from_secs(5);
        while !(pair.routers[0].is_master()
            && self.dom0_ping(IpAddr::V4(VIP4), Duration::from_millis(200))
            && self.fdb_port(vmac4).as_deref() == Some(master.ifname.as_str()))
        {
            if Instant::now() > deadline {
                return Err(format!(
                    "guest6 did not take the router back:\n{}",
                    pair.routers[0].log()
                ));
            }
        }
        Ok(())
    }

    /// `g` takes the IPv4 virtual address over the way a node does that
    /// claims an address: adds it and announces it by gratuitous ARP
    /// (busybox arping -U, from its own MAC). Whether the announcement
    /// reached dom0.
    pub fn claim_vip(&self, g: &Guest) -> Result<bool, String> {
        let seen_by_dom0 = RawSocket::open(&self.dom0, "xenbr0");
        let vip = VIP4.to_string();
        g.ns.ip(&["addr", "add", &format!("{vip}/32"), "dev", "eth0"]);
        let out = g.ns.exec(&[
            "busybox", "arping", "-U", "-c", "2", "-w", "1", "-I", "eth0", "-s", &vip, &vip,
        ]);
        g.ns.ip(&["addr", "del", &format!("{vip}/32"), "dev", "eth0"]);
        // busybox arping -U exits 1 when nobody answered, which nobody
        // does to an announcement: only a failure to send is an error.
        if !out.status.success() && !String::from_utf8_lossy(&out.stdout).contains("Sent") {
            return Err(format!(
                "arping in {}: {}{}",
                g.name,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Ok(seen_by_dom0
            .drain(Duration::from_millis(100))
            .iter()
            .any(|f| is_arp_claim(f, g.mac, VIP4)))
    }

    /// A rogue VRRP router in `g`: keepalived for the same router id with
    /// the highest priority, so it takes mastership at once in its own
    /// view and sends advertisements and gratuitous ARP from the virtual
    /// MACs. Whether it took the router over: the bridge learned a
    /// virtual MAC on `g`'s vif, or guest6 lost mastership.
    pub fn rogue_vrrp_router(&self, g: &Guest, pair: &VrrpPair) -> Result<bool, String> {
        let rogue = Keepalived::start(&g.ns, &self.vrrp_config(254))?;
        if !rogue.wait_master(Duration::from_secs(5)) {
            return Err(format!(
                "the rogue keepalived in {} never became master:\n{}",
                g.name,
                rogue.log()
            ));
        }
        // A few advertisement intervals as master.
        std::thread::sleep(Duration::from_millis(500));
        let cfg = rogue.config();
        let took_mac = [cfg.vmac4(), cfg.vmac6()]
            .iter()
            .any(|m| self.fdb_port(*m).as_deref() == Some(g.ifname.as_str()));
        let took = took_mac || !pair.routers[0].is_master();
        drop(rogue);
        Ok(took)
    }

    fn ping(&self, from: &Guest, to: &str) -> bool {
        let v6 = to.contains(':');
        from.ns
            .exec(&[
                "ping",
                if v6 { "-6" } else { "-4" },
                "-c",
                "1",
                "-W",
                "1",
                to,
            ])
            .status
            .success()
    }

    /// Every row of the demo, in order.
    pub fn rows(&self) -> Result<Vec<Row>, String> {
        let g1 = self.guest("guest1");
        let g2 = self.guest("guest2");
        let g3 = self.guest("guest3");
        let g4 = self.guest("guest4");
        let g5 = self.guest("guest5");
        let mut rows = Vec::new();
        let mut row = |name: &'static str,
                       attack: bool,
                       g: &Guest,
                       dir: Direction,
                       expected_reason: Reason,
                       act: &dyn Fn() -> bool|
         -> Result<(), String> {
            let (observed_reach, counted) = self.observe(g, dir, act)?;
            rows.push(Row {
                name,
                attack,
                expected_reach: !attack,
                observed_reach,
                expected_reason,
                counted,
            });
            Ok(())
        };
        let marker = |i: u8| {
            let mut m = b"vifguard-demo-".to_vec();
            m.extend_from_slice(&[b'0' + i / 10, b'0' + i % 10]);
            m
        };

        row(
            "DHCP exchange with the host's server (guest2)",
            false,
            g2,
            Direction::FromGuest,
            Reason::Pass,
            &|| {
                g2.ns
                    .exec(&[
                        "busybox",
                        "udhcpc",
                        "-i",
                        "eth0",
                        "-n",
                        "-q",
                        "-f",
                        "-t",
                        "4",
                        "-T",
                        "1",
                        "-s",
                        "/bin/true",
                    ])
                    .status
                    .success()
            },
        )?;
        // udhcpc ran its script as /bin/true: configure what it leased.
        g2.ns
            .ip(&["addr", "replace", &format!("{}/24", g2.ipv4), "dev", "eth0"]);
        row(
            "ping guest1 -> guest2 (ARP, IPv4)",
            false,
            g1,
            Direction::FromGuest,
            Reason::Pass,
            &|| self.ping(g1, &g2.ipv4.to_string()),
        )?;
        row(
            "ping guest1 -> guest3 (IPv6, neighbour discovery)",
            false,
            g1,
            Direction::FromGuest,
            Reason::Pass,
            &|| self.ping(g1, &g3.ipv6.to_string()),
        )?;
        row(
            "isolated guest4 -> its gateway",
            false,
            g4,
            Direction::FromGuest,
            Reason::Pass,
            &|| self.ping(g4, GATEWAY),
        )?;

        let udp = |src_mac: Mac, dst_mac: Mac, src: Ipv4Addr, dst: Ipv4Addr, i: u8| {
            Frame::eth(src_mac, dst_mac)
                .ipv4(src, dst)
                .udp(5000, 5000)
                .payload(&marker(i))
                .build()
        };
        row(
            "source MAC spoofing (guest1 as guest3)",
            true,
            g1,
            Direction::FromGuest,
            Reason::MacSpoof,
            &|| self.frame_reaches(&g1.ns, &g2.ns, &udp(g3.mac, g2.mac, g1.ipv4, g2.ipv4, 1)),
        )?;
        row(
            "IPv4 source spoofing (guest1 as guest3)",
            true,
            g1,
            Direction::FromGuest,
            Reason::Ipv4Spoof,
            &|| self.frame_reaches(&g1.ns, &g2.ns, &udp(g1.mac, g2.mac, g3.ipv4, g2.ipv4, 2)),
        )?;
        row(
            "ARP poisoning: forged sender IP (the gateway's)",
            true,
            g1,
            Direction::FromGuest,
            Reason::ArpSpaSpoof,
            &|| {
                let f = Frame::eth(g1.mac, BROADCAST)
                    .arp(arp_op::REPLY)
                    .spa(GATEWAY.parse().expect("address"))
                    .tpa(GATEWAY.parse().expect("address"))
                    .build();
                self.frame_reaches(&g1.ns, &g3.ns, &f)
            },
        )?;
        row(
            "ARP poisoning: forged sender MAC (guest3's)",
            true,
            g1,
            Direction::FromGuest,
            Reason::ArpShaSpoof,
            &|| {
                let f = Frame::eth(g1.mac, BROADCAST)
                    .arp(arp_op::REPLY)
                    .sha(g3.mac)
                    .spa(g1.ipv4)
                    .tpa(GATEWAY.parse().expect("address"))
                    .build();
                self.frame_reaches(&g1.ns, &g3.ns, &f)
            },
        )?;
        let all_nodes: Ipv6Addr = "ff02::1".parse().map_err(|e| format!("{e}"))?;
        row(
            "IPv6 source spoofing (guest1 as guest3)",
            true,
            g1,
            Direction::FromGuest,
            Reason::Ipv6Spoof,
            &|| {
                let f = Frame::eth(g1.mac, g2.mac)
                    .ipv6(g3.ipv6, g2.ipv6)
                    .udp(5000, 5000)
                    .payload(&marker(3))
                    .build();
                self.frame_reaches(&g1.ns, &g2.ns, &f)
            },
        )?;
        row(
            "NA spoofing of guest3's address",
            true,
            g1,
            Direction::FromGuest,
            Reason::NdSpoof,
            &|| {
                let f = Frame::eth(g1.mac, ipv6_multicast_mac(all_nodes))
                    .ipv6(g1.ipv6, all_nodes)
                    .neighbor_advertisement(g3.ipv6, na_flags::OVERRIDE)
                    .tlla(g1.mac)
                    .build();
                self.frame_reaches(&g1.ns, &g2.ns, &f)
            },
        )?;
        row(
            "DAD denial attempt (guest1 probes guest3's address)",
            true,
            g1,
            Direction::FromGuest,
            Reason::DadForeign,
            &|| {
                // Duplicate address detection for an address guest1 does
                // not own: a node doing DAD for it would give it up. The
                // nonce option (RFC 7527) carries the marker.
                let group = solicited_node(g3.ipv6);
                let f = Frame::eth(g1.mac, ipv6_multicast_mac(group))
                    .ipv6(Ipv6Addr::UNSPECIFIED, group)
                    .neighbor_solicitation(g3.ipv6)
                    .option(14, &marker(6))
                    .build();
                self.frame_reaches(&g1.ns, &g3.ns, &f)
            },
        )?;
        row(
            "rogue router advertisement",
            true,
            g1,
            Direction::FromGuest,
            Reason::RaGuard,
            &|| {
                let f = Frame::eth(g1.mac, ipv6_multicast_mac(all_nodes))
                    .ipv6(crate::frames::link_local(g1.mac), all_nodes)
                    .router_advertisement()
                    .slla(g1.mac)
                    .prefix_info("2001:db8:bad::".parse().expect("prefix"), 64)
                    .build();
                self.frame_reaches(&g1.ns, &g2.ns, &f)
            },
        )?;
        row(
            "rogue DHCP server offer",
            true,
            g1,
            Direction::FromGuest,
            Reason::DhcpServer,
            &|| {
                let f = Frame::eth(g1.mac, BROADCAST)
                    .ipv4(g1.ipv4, Ipv4Addr::BROADCAST)
                    .udp(67, 68)
                    .payload(&dhcpv4_offer(g2.mac, 7, g3.ipv4, g1.ipv4))
                    .build();
                self.frame_reaches(&g1.ns, &g2.ns, &f)
            },
        )?;
        row(
            "rogue DHCP server on port 1234 vs guest2's real DHCP client",
            true,
            g1,
            Direction::FromGuest,
            Reason::DhcpServer,
            &|| {
                // Reaches when guest2 saw a rogue answer or leased anything
                // but its address from dnsmasq (which also shows that the
                // legitimate server still works).
                let race = self.dhcp_race(g2, g1);
                race.rogue_seen > 0 || race.lease != Some(self.dnsmasq_lease(g2))
            },
        )?;
        row(
            "VLAN-tagged frame carrying a spoofed packet",
            true,
            g1,
            Direction::FromGuest,
            Reason::VlanTagged,
            &|| {
                let f = Frame::eth(g1.mac, BROADCAST)
                    .vlan(7)
                    .ipv4(g3.ipv4, Ipv4Addr::new(192, 0, 2, 255))
                    .udp(5000, 5000)
                    .payload(&marker(4))
                    .build();
                self.frame_reaches(&g1.ns, &g2.ns, &f)
            },
        )?;
        row(
            "sniffing a neighbour's unicast flood",
            true,
            g1,
            Direction::ToGuest,
            Reason::SniffMac,
            &|| {
                // A neighbour the bridge has not learned (its entry aged out,
                // or it lives behind the uplink): the bridge floods frames for
                // it to every port. guest1 must not see them; guest5
                // (unlocked) does, which shows the flood happened.
                let f = udp(
                    DOM0_MAC,
                    NEIGHBOUR,
                    GATEWAY.parse().expect("address"),
                    Ipv4Addr::new(192, 0, 2, 77),
                    5,
                );
                let seen_by_unlocked = RawSocket::open(&g5.ns, "eth0");
                let reached = self.frame_reaches(&self.dom0, &g1.ns, &f);
                let flooded = seen_by_unlocked
                    .drain(Duration::from_millis(10))
                    .iter()
                    .any(|r| r == &f);
                reached || !flooded
            },
        )?;
        row(
            "isolated guest4 -> a forbidden destination (guest2)",
            true,
            g4,
            Direction::FromGuest,
            Reason::Isolation,
            &|| self.ping(g4, &g2.ipv4.to_string()),
        )?;
        row(
            "rogue DHCP in unlocked guest5 vs guest2's servers",
            true,
            g2,
            Direction::ToGuest,
            Reason::DhcpUntrusted,
            &|| {
                // guest2's policy lists dom0's dnsmasq as its DHCP server;
                // guest5 (unlocked) may send anything, so the rogue's
                // offers reach the bridge and must stop at guest2's vif.
                let race = self.dhcp_race(g2, g5);
                race.rogue_seen > 0 || race.lease != Some(self.dnsmasq_lease(g2))
            },
        )?;

        // VRRP: guest6 (master) and guest7 (backup) run keepalived with
        // virtual MACs, which their policies list; guest1's does not.
        let vrrp = std::cell::RefCell::new(self.start_vrrp()?);
        let failed = |what: &str, e: String| eprintln!("demo: {what}: {e}");
        row(
            "guest1 claims the VRRP address (gratuitous ARP)",
            true,
            g1,
            Direction::FromGuest,
            Reason::ArpSpaSpoof,
            &|| {
                self.claim_vip(g1)
                    .inspect_err(|e| failed("gratuitous ARP", e.clone()))
                    .unwrap_or(true)
            },
        )?;
        row(
            "rogue VRRP router in guest1 (keepalived, vmac)",
            true,
            g1,
            Direction::FromGuest,
            Reason::MacSpoof,
            &|| {
                self.rogue_vrrp_router(g1, &vrrp.borrow())
                    .inspect_err(|e| failed("rogue VRRP router", e.clone()))
                    .unwrap_or(true)
            },
        )?;
        row(
            "VRRP failover guest6 -> guest7 (keepalived, vmac)",
            false,
            self.guest(VRRP_ROUTERS[1]),
            Direction::FromGuest,
            Reason::Pass,
            &|| {
                self.vrrp_failover(&mut vrrp.borrow_mut(), MasterFailure::Stop)
                    .inspect_err(|e| failed("VRRP failover", e.clone()))
                    .is_ok()
            },
        )?;
        drop(vrrp);
        Ok(rows)
    }
}

/// The VRRP router guest6 (priority 150, master) and guest7 (100,
/// backup) run, in that order.
pub struct VrrpPair {
    pub routers: [Keepalived; 2],
}

/// How the master fails in [`DemoHost::vrrp_failover`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MasterFailure {
    /// keepalived is stopped (SIGTERM): it hands over at once with a
    /// priority 0 advertisement.
    Stop,
    /// The guest's NIC goes down: the backup takes over when its
    /// master-down timer (3 advertisement intervals and the skew) runs out.
    LinkDown,
}

/// What a guest's DHCP client got while a rogue server answered too.
#[derive(Clone, Debug)]
pub struct DhcpRace {
    /// The lease busybox udhcpc accepted, "ADDRESS SERVER".
    pub lease: Option<String>,
    /// Offers and acks the rogue server sent.
    pub rogue_replies: usize,
    /// Those that reached the client's NIC.
    pub rogue_seen: usize,
}

/// An ARP frame from `src` whose sender is `src` at `ip`: a claim of `ip`.
pub fn is_arp_claim(f: &[u8], src: Mac, ip: Ipv4Addr) -> bool {
    f.get(6..12) == Some(&src[..])
        && f.get(12..14) == Some(&[0x08, 0x06][..])
        && f.get(22..28) == Some(&src[..])
        && f.get(28..32) == Some(&ip.octets()[..])
}

/// A frame from `src` carrying UDP to the DHCP client port: a DHCP server
/// message (IPv4 only; the rogue server here speaks DHCPv4).
fn is_dhcp_reply_from(f: &[u8], src: Mac) -> bool {
    let ihl = f.get(14).map_or(0, |b| usize::from(b & 0x0f) * 4);
    f.get(6..12) == Some(&src[..])
        && f.get(12..14) == Some(&[0x08, 0x00][..])
        && f.get(23) == Some(&17)
        && f.get(14 + ihl + 2..14 + ihl + 4) == Some(&68u16.to_be_bytes()[..])
}

/// A rogue DHCP server inside guest `g`: answers every DHCPDISCOVER and
/// DHCPREQUEST it sees on `sock` with an offer or ack of [`ROGUE_LEASE`],
/// broadcast from [`ROGUE_PORT`] to the client port, until `stop`. Counts
/// the replies it sent into `sent`.
fn rogue_dhcp_server(sock: &RawSocket, g: &Guest, stop: &AtomicBool, sent: &AtomicUsize) {
    while !stop.load(Ordering::Relaxed) {
        for frame in sock.drain(Duration::from_millis(20)) {
            let Some((xid, client, kind)) = parse_dhcpv4_client_message(&frame) else {
                continue;
            };
            let payload = match kind {
                DHCPDISCOVER => dhcpv4_offer(client, xid, ROGUE_LEASE, g.ipv4),
                DHCPREQUEST => dhcpv4_ack(client, xid, ROGUE_LEASE, g.ipv4),
                _ => continue,
            };
            let reply = Frame::eth(g.mac, BROADCAST)
                .ipv4(g.ipv4, Ipv4Addr::BROADCAST)
                .udp(ROGUE_PORT, 68)
                .payload(&payload)
                .build();
            if sock.try_send(&reply).is_ok() {
                sent.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

impl Drop for DemoHost {
    fn drop(&mut self) {
        for g in &self.guests {
            let _ = self.hotplug(g, "offline");
        }
        if let Some(mut c) = self.dnsmasq.take() {
            let _ = c.kill();
            let _ = c.wait();
            let _ = std::fs::remove_file(self.dnsmasq_pid_file());
        }
        crate::kernel::remove_root(&self.bpffs);
        let _ = std::fs::remove_file(&self.config);
    }
}

/// The vifguard binary next to the running executable (target/<profile>/),
/// or $VIFGUARD_BIN.
pub fn find_vifguard() -> Result<PathBuf, String> {
    if let Some(p) = std::env::var_os("VIFGUARD_BIN") {
        return Ok(PathBuf::from(p));
    }
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    for dir in exe.ancestors().skip(1).take(2) {
        let candidate = dir.join("vifguard");
        if candidate.is_file() {
            return Ok(candidate);
        }
    }
    Err("the vifguard binary was not found next to this program; build it (cargo build -p filter-user) or set VIFGUARD_BIN".into())
}
