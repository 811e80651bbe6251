//! One simulated dom0 with N vifs and one setup: no filter, the empty TC
//! program, the legacy rules, nftables (bridge set or netdev chains) or
//! vifguard (tc or tcx). The sending guest's namespace hangs off one vif, a
//! sink namespace off the uplink; the sink's rx counter is what was
//! forwarded.

use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Result, anyhow, bail};
use testbed::frames::{Frame, Mac};
use testbed::kernel::BpffsDir;
use testbed::netns::NetNs;

use crate::blaster::{Amount, Blaster, PacketSocket};
use crate::guests::{ip_of, mac_of, mac_str, vif_name};
use crate::legacy::install_legacy;
use crate::nft::{install_bridge_set, install_netdev_chains};
use crate::process::{ip, ip_batch, new_ns, run, rx_packets, sysctl};
use crate::stats::Sample;
use crate::vifguard::{Attach, Ctx, attach_empty, count_attached};

/// The MAC of the "router" behind the uplink; the bridge has a static entry
/// for it on the uplink port, so frames to it are never flooded.
const GATEWAY_MAC: Mac = [0x02, 0x00, 0x00, 0x00, 0x00, 0xfe];
const SINK_DST: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);
/// A source no guest owns: used to check that the filters are active.
const SPOOFED_SRC: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 66);

/// What filters the vifs of a host.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Setup {
    NoFilter,
    /// The object's empty TC program on both hooks of every vif: the cost
    /// of the hook itself, which any TC program pays.
    Empty,
    Legacy,
    NftSet,
    NftNetdev,
    Vifguard,
    VifguardTcx,
}

impl Setup {
    pub const COUNT: usize = 7;
    /// In the order of the report's rows.
    pub const ALL: [Setup; Setup::COUNT] = [
        Setup::NoFilter,
        Setup::Empty,
        Setup::Legacy,
        Setup::NftSet,
        Setup::NftNetdev,
        Setup::Vifguard,
        Setup::VifguardTcx,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Setup::NoFilter => "no filter",
            Setup::Empty => "empty TC program",
            Setup::Legacy => "legacy rules",
            Setup::NftSet => "nftables bridge set",
            Setup::NftNetdev => "nftables netdev chains",
            Setup::Vifguard => "vifguard TC",
            Setup::VifguardTcx => "vifguard TCX",
        }
    }

    pub fn tag(self) -> &'static str {
        match self {
            Setup::NoFilter => "none",
            Setup::Empty => "empty",
            Setup::Legacy => "legacy",
            Setup::NftSet => "nftset",
            Setup::NftNetdev => "nftdev",
            Setup::Vifguard => "vifguard",
            Setup::VifguardTcx => "tcx",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }

    /// Whether the setup drops a spoofed source (the empty program filters
    /// nothing: it only has to forward).
    pub fn filters(self) -> bool {
        !matches!(self, Setup::NoFilter | Setup::Empty)
    }
}

/// One simulated dom0 with N vifs and one of the setups.
pub struct Host {
    pub setup: Setup,
    pub n: usize,
    /// The sending guest's domid.
    pub sender: u32,
    /// A vif created after the filter was installed, for the apply timing.
    pub extra: u32,
    sock: PacketSocket,
    pub bpffs: BpffsDir,
    pub dom0: NetNs,
    _guest: NetNs,
    sink: NetNs,
    /// What the setup installed, for the report.
    pub rules: String,
}

/// `ip -batch` lines that create the extra vif `vif<extra>.0` on the bridge.
fn extra_vif_batch(extra: u32) -> String {
    let vif = vif_name(extra);
    format!(
        "link add {vif} type veth peer name g{extra}\nlink set g{extra} multicast off up\nlink set {vif} master br0\nlink set {vif} multicast off up\n"
    )
}

/// The sending guest: the one in the middle of the rule lists.
fn sender_of(n: usize) -> u32 {
    (n / 2) as u32 + 1
}

impl Host {
    pub fn build(ctx: &Ctx, setup: Setup, n: usize) -> Result<Host> {
        let label = format!("n{n}-{}", setup.tag());
        let dom0 = new_ns(&ctx.run_id, &format!("{label}-dom0"))?;
        let guest = new_ns(&ctx.run_id, &format!("{label}-guest"))?;
        let sink = new_ns(&ctx.run_id, &format!("{label}-sink"))?;
        let bpffs = BpffsDir::adopt(ctx.bpffs(&label));
        let legacy = u8::from(setup == Setup::Legacy).to_string();
        for key in [
            "bridge-nf-call-iptables",
            "bridge-nf-call-arptables",
            "bridge-nf-call-ip6tables",
        ] {
            sysctl(&dom0, &format!("net/bridge/{key}"), &legacy)?;
        }
        let sender = sender_of(n);
        let mut b = String::new();
        let _ = writeln!(b, "link add br0 type bridge mcast_snooping 0");
        let _ = writeln!(b, "link set br0 multicast off up");
        let _ = writeln!(
            b,
            "link add eth0 type veth peer name up0 netns {}",
            sink.name
        );
        let _ = writeln!(b, "link set eth0 master br0");
        let _ = writeln!(b, "link set eth0 multicast off up");
        for d in 1..=n as u32 {
            let vif = vif_name(d);
            if d == sender {
                let _ = writeln!(
                    b,
                    "link add {vif} type veth peer name eth0 netns {}",
                    guest.name
                );
            } else {
                let _ = writeln!(b, "link add {vif} type veth peer name g{d}");
                let _ = writeln!(b, "link set g{d} multicast off up");
            }
            let _ = writeln!(b, "link set {vif} master br0");
            let _ = writeln!(b, "link set {vif} multicast off up");
        }
        ip_batch(&dom0, &b)?;
        ip(&sink, &["link", "set", "up0", "multicast", "off", "up"])?;
        ip(
            &guest,
            &["link", "set", "eth0", "address", &mac_str(mac_of(sender))],
        )?;
        ip(&guest, &["link", "set", "eth0", "multicast", "off", "up"])?;
        run(Command::new("bridge").args([
            "-n",
            &dom0.name,
            "fdb",
            "add",
            &mac_str(GATEWAY_MAC),
            "dev",
            "eth0",
            "master",
            "static",
        ]))?;
        let rules = match setup {
            Setup::NoFilter => "none".to_string(),
            Setup::Legacy => install_legacy(&dom0, n)?,
            Setup::NftSet => install_bridge_set(&dom0, n)?,
            Setup::NftNetdev => install_netdev_chains(&dom0, n)?,
            Setup::Empty => {
                attach_empty(&dom0, n)?;
                let hooks = count_attached(&dom0, bpffs.path())?;
                if hooks != 2 * n {
                    bail!("the empty program is on {hooks} hooks, expected {}", 2 * n);
                }
                format!("{hooks} tc filters")
            }
            Setup::Vifguard | Setup::VifguardTcx => {
                let attach = if setup == Setup::Vifguard {
                    Attach::Tc
                } else {
                    Attach::Tcx
                };
                run(ctx.vifguard_with(&dom0, bpffs.path(), attach).arg("sync"))?;
                let hooks = count_attached(&dom0, bpffs.path())?;
                if hooks != 2 * n {
                    bail!(
                        "vifguard sync ({}) attached {hooks} hooks, expected {}",
                        attach.name(),
                        2 * n
                    );
                }
                match attach {
                    Attach::Tc => format!("{hooks} tc filters"),
                    Attach::Tcx => format!("{hooks} TCX links"),
                }
            }
        };
        let extra = n as u32 + 1;
        ip_batch(&dom0, &extra_vif_batch(extra))?;
        let sock = PacketSocket::open(&guest, "eth0")?;
        Ok(Host {
            setup,
            n,
            sender,
            extra,
            sock,
            bpffs,
            dom0,
            _guest: guest,
            sink,
            rules,
        })
    }

    /// Replaces the extra vif with a new one (a new ifindex, no qdisc), as
    /// `xl destroy` and `xl create` do: each apply is timed on a vif the
    /// kernel has just made, which is what a hotplug sees.
    pub fn renew_extra(&self) -> Result<()> {
        let del = format!("link del {}\n", vif_name(self.extra));
        ip_batch(&self.dom0, &(del + &extra_vif_batch(self.extra)))
    }

    fn frame(&self, src: Ipv4Addr) -> Vec<u8> {
        Frame::eth(mac_of(self.sender), GATEWAY_MAC)
            .ipv4(src, SINK_DST)
            .udp(40000, 9)
            .payload(&[0; 18])
            .build()
    }

    pub fn legit(&self) -> Vec<u8> {
        self.frame(ip_of(self.sender))
    }

    fn sink_rx(&self) -> Result<u64> {
        rx_packets(&self.sink, "up0")
    }

    /// The sink's counter once it stopped moving (three equal reads 20 ms
    /// apart): nothing still queued from earlier frames.
    fn settled_rx(&self) -> Result<u64> {
        let mut last = self.sink_rx()?;
        let mut same = 0;
        for _ in 0..100 {
            std::thread::sleep(Duration::from_millis(20));
            let now = self.sink_rx()?;
            if now == last {
                same += 1;
                if same == 2 {
                    return Ok(now);
                }
            } else {
                same = 0;
            }
            last = now;
        }
        Err(anyhow!(
            "{} N={}: the sink's counter does not settle",
            self.setup.label(),
            self.n
        ))
    }

    /// Frames that reached the sink since `base`, once `expect` of them did
    /// or the counter stood still for 200 ms (frames still in a backlog,
    /// softirq work deferred to ksoftirqd, are waited for).
    fn arrived(&self, base: u64, expect: u64) -> Result<u64> {
        let mut last = self.sink_rx()?;
        let mut still = Instant::now();
        let deadline = Instant::now() + Duration::from_secs(3);
        loop {
            let got = last.saturating_sub(base);
            if got >= expect || still.elapsed() >= Duration::from_millis(200) {
                return Ok(got);
            }
            if Instant::now() > deadline {
                return Ok(got);
            }
            std::thread::sleep(Duration::from_millis(10));
            let now = self.sink_rx()?;
            if now != last {
                still = Instant::now();
                last = now;
            }
        }
    }

    /// Sends `count` frames; returns how many reached the sink.
    fn burst(&self, blaster: &Blaster, frame: &[u8], count: u64) -> Result<u64> {
        let rx0 = self.settled_rx()?;
        blaster.send(&self.sock, frame, Amount::Count(count))?;
        self.arrived(rx0, count)
    }

    /// An ARP reply from the sender to the gateway, sender IP `spa`.
    fn arp_reply(&self, spa: Ipv4Addr) -> Vec<u8> {
        Frame::eth(mac_of(self.sender), GATEWAY_MAC)
            .arp(2)
            .spa(spa)
            .tha(GATEWAY_MAC)
            .tpa(SINK_DST)
            .build()
    }

    /// Legitimate frames must pass, spoofed ones must not (unless the setup
    /// filters nothing: then they must pass too). IPv4 UDP (the frames
    /// measured) and ARP replies (the setups' ARP rules: a rule that drops
    /// every ARP would otherwise go unnoticed).
    pub fn verify(&self, blaster: &Blaster) -> Result<()> {
        const COUNT: u64 = 2000;
        let ip = ip_of(self.sender);
        for (what, legit, spoofed) in [
            ("IPv4", self.legit(), self.frame(SPOOFED_SRC)),
            ("ARP", self.arp_reply(ip), self.arp_reply(SPOOFED_SRC)),
        ] {
            let ok = self.burst(blaster, &legit, COUNT)?;
            if ok < COUNT * 99 / 100 {
                bail!(
                    "{} N={}: only {ok} of {COUNT} legitimate {what} frames reached the sink",
                    self.setup.label(),
                    self.n
                );
            }
            let passed = self.burst(blaster, &spoofed, COUNT)?;
            let expect_pass = !self.setup.filters();
            if expect_pass && passed < COUNT * 99 / 100 || !expect_pass && passed != 0 {
                bail!(
                    "{} N={}: {passed} of {COUNT} spoofed {what} frames reached the sink",
                    self.setup.label(),
                    self.n
                );
            }
        }
        Ok(())
    }

    pub fn measure(&self, blaster: &Blaster, frame: &[u8], seconds: f64) -> Result<Sample> {
        let rx0 = self.settled_rx()?;
        let k0 = blaster.softirq_ns();
        let b = blaster.send(
            &self.sock,
            frame,
            Amount::For(Duration::from_secs_f64(seconds)),
        )?;
        let fwd = self.arrived(rx0, b.sent)?;
        let k1 = blaster.softirq_ns();
        if fwd == 0 {
            bail!("{} N={}: nothing forwarded", self.setup.label(), self.n);
        }
        let cpu_ns = b.cpu.as_nanos() as f64 + k1.saturating_sub(k0) as f64;
        Ok(Sample {
            pps: fwd as f64 / b.elapsed.as_secs_f64(),
            cpu_ns: cpu_ns / fwd as f64,
            share: cpu_ns / 1e9 / b.elapsed.as_secs_f64(),
            sent: b.sent,
            fwd,
        })
    }
}
