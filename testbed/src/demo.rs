//! The demo host: a simulated Xen dom0 in network namespaces, populated the
//! way xl, XAPI and OpenStack populate a real one, with vifguard run exactly
//! as the vif hotplug script runs it; then legitimate traffic and attacks
//! from inside the guests, each observed where it was aimed.
//!
//! Used by the `vifguard-demo` binary (`cargo xtask demo`) and by the
//! end-to-end test `testbed/tests/demo.rs`.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use filter_common::{Direction, Reason, map_names};
use filter_user::datapath::Maps;
use filter_user::policy::MacAddr;

use crate::frames::{
    BROADCAST, DHCPDISCOVER, DHCPREQUEST, Frame, Mac, arp_op, dhcpv4_ack, dhcpv4_offer,
    ipv6_multicast_mac, na_flags, parse_dhcpv4_client_message, solicited_node,
};
use crate::netns::{NetNs, RawSocket, veth};
use crate::xenstored::TestXenstored;

const DOM0_MAC: Mac = [0x00, 0x16, 0x3e, 0x00, 0x00, 0x01];
const GATEWAY: &str = "192.0.2.1";
const GATEWAY6: &str = "2001:db8::1";
/// A MAC the bridge has never seen.
const NEIGHBOUR: Mac = [0x00, 0x16, 0x3e, 0x00, 0x77, 0x01];
const WAIT: Duration = Duration::from_millis(700);
/// What the rogue DHCP server in a guest offers.
const ROGUE_LEASE: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 66);
/// The source port it answers from: not 67, which clients do not check.
const ROGUE_PORT: u16 = 1234;

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

fn run_ok(cmd: &mut Command) -> Result<String, String> {
    let out = cmd.output().map_err(|e| format!("{cmd:?}: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "{cmd:?} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout).trim(),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

impl DemoHost {
    /// Builds the host; `progress` hears what is being set up.
    pub fn build(vifguard: &Path, progress: &dyn Fn(&str)) -> Result<DemoHost, String> {
        let tag = std::process::id();
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

        let plan: [(&str, u32, &str, Source, &str); 5] = [
            ("guest1", 1, "vif1.0", Source::Xl, "locked"),
            ("guest2", 2, "vif2.0", Source::Xapi, "locked"),
            ("guest3", 3, "vif3.0", Source::OpenStack, "locked"),
            ("guest4", 4, "tap4.0", Source::Xl, "isolated"),
            ("guest5", 5, "vif5.0", Source::Xapi, "unlocked"),
        ];
        let mut host = DemoHost {
            dom0,
            guests: Vec::new(),
            xs,
            vifguard: vifguard.to_path_buf(),
            bpffs,
            config,
            dnsmasq: None,
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
                &format!(
                    "--pid-file=/run/vifguard-demo-dnsmasq-{}.pid",
                    std::process::id()
                ),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("starting dnsmasq: {e}"))?;
        self.dnsmasq = Some(child);
        std::thread::sleep(Duration::from_millis(300));
        Ok(())
    }

    pub fn guest(&self, name: &str) -> &Guest {
        self.guests
            .iter()
            .find(|g| g.name == name)
            .unwrap_or_else(|| panic!("no guest {name}"))
    }

    /// vifguard in dom0's network namespace. `nsenter --net`, not `ip netns
    /// exec`: the latter remounts /sys, which hides /sys/fs/bpf.
    fn in_dom0(&self) -> Command {
        let mut c = Command::new("nsenter");
        c.arg(format!("--net=/run/netns/{}", self.dom0.name))
            .arg(&self.vifguard);
        c
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
    fn counts(&self, g: &Guest, dir: Direction) -> Result<Vec<(Reason, u64)>, String> {
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
    fn dhcp_lease(&self, g: &Guest) -> Option<String> {
        let dir = std::env::temp_dir().join(format!("vifguard-demo-udhcpc-{}", std::process::id()));
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
                let seen_by_client = RawSocket::open(&g2.ns, "eth0");
                let rogue = RawSocket::open(&g1.ns, "eth0");
                let stop = AtomicBool::new(false);
                let lease = std::thread::scope(|s| {
                    s.spawn(|| rogue_dhcp_server(&rogue, g1, &stop));
                    let lease = self.dhcp_lease(g2);
                    stop.store(true, Ordering::Relaxed);
                    lease
                });
                let rogue_seen = seen_by_client
                    .drain(Duration::from_millis(100))
                    .iter()
                    .any(|f| f.get(6..12) == Some(&g1.mac[..]));
                rogue_seen || lease.as_deref() != Some(&format!("{} {GATEWAY}", g2.ipv4))
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
        Ok(rows)
    }
}

/// A rogue DHCP server inside guest `g`: answers every DHCPDISCOVER and
/// DHCPREQUEST it sees on `sock` with an offer or ack of [`ROGUE_LEASE`],
/// broadcast from [`ROGUE_PORT`] to the client port, until `stop`.
fn rogue_dhcp_server(sock: &RawSocket, g: &Guest, stop: &AtomicBool) {
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
            let _ = sock.try_send(&reply);
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
        }
        let _ = std::fs::remove_dir_all(&self.bpffs);
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
