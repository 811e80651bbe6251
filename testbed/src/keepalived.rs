//! keepalived, the VRRP daemon real guests run, inside a test namespace:
//! one instance per guest, with `use_vmac` (a macvlan with the virtual MAC
//! 00:00:5e:00:01:VRID for the IPv4 router, 00:00:5e:00:02:VRID for the
//! IPv6 one), VRRPv3 with short timers, multicast adverts and no scripts.
//! Its configuration, pid files and log live in a temporary directory that
//! is removed, and the daemon stopped, when the handle drops.
//!
//! Verified by hand with Debian 12's keepalived 2.2.7 on veths in a bridge,
//! without vifguard: with `advert_int 0.1` a backup takes over about 0.35 s
//! after the master's link goes down, and at once when the master is
//! stopped (it sends a priority 0 advert on the way out).

use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crate::frames::Mac;
use crate::netns::NetNs;

static NEXT: AtomicU32 = AtomicU32::new(0);

/// The macvlan keepalived creates for the IPv4 router. Named, so that the
/// policy route below can name it before it exists.
pub const VMAC4_IF: &str = "vg4";
/// The macvlan of the IPv6 router.
pub const VMAC6_IF: &str = "vg6";

/// One VRRP router, IPv4 and IPv6, as a guest runs it.
#[derive(Clone, Debug)]
pub struct VrrpConfig {
    pub vrid: u8,
    /// 1..=254; the highest becomes master.
    pub priority: u8,
    pub vip4: Ipv4Addr,
    /// The on-link IPv4 prefix the virtual address is in (e.g.
    /// 192.0.2.0/24): what the virtual address's own route table reaches.
    pub net4: (Ipv4Addr, u8),
    pub vip6: Ipv6Addr,
    pub prefix6: u8,
    /// Advertisement interval in centiseconds (VRRPv3 allows 1..4095).
    pub advert_centis: u16,
}

impl VrrpConfig {
    /// The IPv4 virtual MAC, 00:00:5e:00:01:VRID (RFC 9568).
    pub fn vmac4(&self) -> Mac {
        [0x00, 0x00, 0x5e, 0x00, 0x01, self.vrid]
    }

    /// The IPv6 virtual MAC, 00:00:5e:00:02:VRID.
    pub fn vmac6(&self) -> Mac {
        [0x00, 0x00, 0x5e, 0x00, 0x02, self.vrid]
    }

    fn render(&self, router_id: &str) -> String {
        let adv = format!(
            "{}.{:02}",
            self.advert_centis / 100,
            self.advert_centis % 100
        );
        let table = 100 + u32::from(self.vrid);
        let (net, len) = self.net4;
        // `virtual_rules` / `virtual_routes`: with use_vmac alone, replies
        // from the virtual IPv4 address leave through the parent interface
        // (its connected route comes first) with the guest's own MAC, which
        // a locked vif drops as ipv4_spoof: the virtual address belongs to
        // the virtual MAC. The rule sends everything from it through the
        // macvlan, as RFC 9568 routers do. IPv6 needs no such rule (the
        // kernel picks the interface the address is on).
        // `dynamic_interfaces`: the route names the macvlan before
        // keepalived has created it.
        format!(
            "global_defs {{
  router_id {router_id}
  vrrp_version 3
  dynamic_interfaces
  vrrp_garp_master_delay 0
  vrrp_garp_master_repeat 1
}}
vrrp_instance V4 {{
  state BACKUP
  interface eth0
  use_vmac {VMAC4_IF}
  virtual_router_id {vrid}
  priority {prio}
  advert_int {adv}
  virtual_ipaddress {{
    {vip4}/{len}
  }}
  virtual_rules {{
    from {vip4} table {table} priority 100
  }}
  virtual_routes {{
    {net}/{len} dev {VMAC4_IF} table {table}
  }}
}}
vrrp_instance V6 {{
  state BACKUP
  interface eth0
  use_vmac {VMAC6_IF}
  virtual_router_id {vrid}
  priority {prio}
  advert_int {adv}
  virtual_ipaddress {{
    {vip6}/{prefix6}
  }}
}}
",
            vrid = self.vrid,
            prio = self.priority,
            vip4 = self.vip4,
            vip6 = self.vip6,
            prefix6 = self.prefix6,
        )
    }
}

/// A running keepalived (VRRP subsystem only) in one namespace.
pub struct Keepalived {
    ns: String,
    dir: PathBuf,
    child: Option<Child>,
    config: VrrpConfig,
}

impl Keepalived {
    /// Starts keepalived in `ns` (its NIC is `eth0`) in the foreground.
    pub fn start(ns: &NetNs, config: &VrrpConfig) -> Result<Keepalived, String> {
        let dir = std::env::temp_dir().join(format!(
            "vifguard-keepalived-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).map_err(|e| format!("mkdir {}: {e}", dir.display()))?;
        // arp_ignore=1 everywhere: keepalived sets it on eth0 and on the
        // IPv4 macvlan, not on the IPv6 one, which would otherwise answer
        // ARP for the IPv4 virtual address with the IPv6 virtual MAC (a
        // reply a locked vif rightly drops as arp_spa_spoof).
        let out = ns.exec(&["sysctl", "-qw", "net.ipv4.conf.all.arp_ignore=1"]);
        if !out.status.success() {
            return Err(format!(
                "sysctl arp_ignore in {}: {}",
                ns.name,
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        let conf = dir.join("keepalived.conf");
        std::fs::write(&conf, config.render(&ns.name))
            .map_err(|e| format!("write {}: {e}", conf.display()))?;
        let log = std::fs::File::create(dir.join("log")).map_err(|e| format!("log file: {e}"))?;
        let log2 = log.try_clone().map_err(|e| format!("log file: {e}"))?;
        let path = |name: &str| dir.join(name).display().to_string();
        // -n: no daemon; -P: VRRP only; -l -D -G: detailed log on the
        // console, not syslog; -p/-r: pid files here, not in /run, so
        // instances in several namespaces do not take each other for a
        // running copy. `ip netns exec` execs keepalived: the child's pid
        // is keepalived's parent process, which SIGTERM shuts down.
        let child = Command::new("ip")
            .args(["netns", "exec", &ns.name, "keepalived"])
            .args(["-n", "-P", "-l", "-D", "-G"])
            .args(["-f", &path("keepalived.conf")])
            .args(["-p", &path("keepalived.pid")])
            .args(["-r", &path("vrrp.pid")])
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .spawn()
            .map_err(|e| format!("starting keepalived in {}: {e}", ns.name))?;
        Ok(Keepalived {
            ns: ns.name.clone(),
            dir,
            child: Some(child),
            config: config.clone(),
        })
    }

    pub fn config(&self) -> &VrrpConfig {
        &self.config
    }

    /// Whether this router holds both virtual addresses (is master for
    /// IPv4 and IPv6): keepalived puts them on its macvlans then.
    pub fn is_master(&self) -> bool {
        let has = |ifname: &str, addr: &str| {
            Command::new("ip")
                .args(["-n", &self.ns, "-o", "addr", "show", "dev", ifname])
                .output()
                .is_ok_and(|o| {
                    String::from_utf8_lossy(&o.stdout)
                        .split_whitespace()
                        .any(|w| w.split('/').next() == Some(addr))
                })
        };
        has(VMAC4_IF, &self.config.vip4.to_string()) && has(VMAC6_IF, &self.config.vip6.to_string())
    }

    /// Waits up to `timeout` for [`Keepalived::is_master`].
    pub fn wait_master(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.is_master() {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends SIGTERM without waiting: keepalived gives up mastership (a
    /// priority 0 advert) and removes its macvlans on the way out.
    pub fn signal_stop(&self) {
        if let Some(c) = &self.child {
            // SAFETY: kill(2) on the pid of a child we spawned and have
            // not reaped yet, so the pid is still ours.
            unsafe { libc::kill(c.id() as libc::pid_t, libc::SIGTERM) };
        }
    }

    /// Stops keepalived and waits for it (SIGKILL after 5 s).
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if matches!(child.try_wait(), Ok(None)) {
            // SAFETY: as in signal_stop; the child is not reaped yet.
            unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        if matches!(child.try_wait(), Ok(None)) {
            let _ = child.kill();
            // A killed parent does not stop keepalived's VRRP child (only
            // a parent that handles SIGTERM does): kill it by its pid file.
            if let Ok(pid) = std::fs::read_to_string(self.dir.join("vrrp.pid"))
                && let Ok(pid) = pid.trim().parse::<libc::pid_t>()
            {
                // SAFETY: kill(2) on the pid keepalived wrote for its VRRP
                // child, which is still running (its parent was just
                // killed and never removed the file).
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
        let _ = child.wait();
    }

    /// What keepalived logged so far (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("log")).unwrap_or_default()
    }
}

impl Drop for Keepalived {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
