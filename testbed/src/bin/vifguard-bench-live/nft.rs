//! The nftables ways to do what vifguard does, as far as nftables can say
//! it cheaply: one bridge-family table whose sets hold every vif's
//! (name, MAC, address) tuples, so the rules do not grow with the number
//! of vifs, and one netdev-family table with an ingress and an egress
//! chain per vif, as a per-device hook (like vifguard's) with the vif's
//! addresses written into its rules.
//!
//! Both check, from the guest: source MAC and IPv4 source together
//! (one tuple), the DHCP client bootstrap (0.0.0.0:68 to
//! 255.255.255.255:67 from the vif's MAC), the DHCP server guard (UDP from
//! port 67 or to port 68) and ICMP Redirect; Ethernet/IPv4 ARP requests
//! and replies whose frame source, sender MAC and sender IP are the vif's;
//! every other frame (IPv6, VLAN-tagged, other EtherTypes) is dropped. To
//! the guest: unicast frames for another MAC are dropped (anti-sniffing).
//! What they lack against vifguard is in the report ([`LACKS`]).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use testbed::netns::NetNs;

use crate::guests::{ip_of, mac_of, mac_str, vif_name};
use crate::process::{in_ns, run, run_stdin};

/// The table both setups create (in their own dom0 namespace only).
pub const TABLE: &str = "vgbench";

/// What both nftables setups leave out of vifguard's checks (docs/policy.md).
pub const LACKS: &str = "IPv6 (dropped whole: no source check, no ND, RA or DAD guard, no DHCPv6 guard), \
RARP (the migration announcement is dropped), ARP probes (sender 0.0.0.0: dropped, no `dad_foreign` check of the target), \
the IPv4 header and length checks, the DHCP `chaddr` check, prefixes, extra address pairs, VRRP, trusted DHCP servers, DHCP learning, the flood limit, \
isolated mode, per-vif modes, and per-reason counters and drop events";

/// The bridge-family table: the hooks see every frame entering a bridge
/// port (prerouting, as vifguard's TC ingress does, so frames to dom0
/// itself are checked too) and every frame the bridge forwards to a port.
/// Frames from ports that are not vifs (the uplink) are not looked at;
/// a vif with no elements passes nothing (fail closed, as vifguard's
/// `no_policy`).
const BRIDGE_TABLE: &str = r#"table bridge vgbench {
    set src_v4 { type ifname . ether_addr . ipv4_addr; }
    set src_arp { type ifname . ether_addr . ether_addr . ipv4_addr; }
    set vif_mac { type ifname . ether_addr; }
    chain from_guest {
        type filter hook prerouting priority filter; policy accept;
        iifname != "vif*" accept
        iifname . ether saddr . ip saddr @src_v4 jump v4_ok
        ip saddr 0.0.0.0 ip daddr 255.255.255.255 udp sport 68 udp dport 67 iifname . ether saddr @vif_mac accept
        arp htype 1 arp ptype ip arp hlen 6 arp plen 4 arp operation { request, reply } iifname . ether saddr . arp saddr ether . arp saddr ip @src_arp accept
        drop
    }
    chain v4_ok {
        udp sport 67 drop
        udp dport 68 drop
        icmp type redirect drop
        accept
    }
    chain to_guest {
        type filter hook forward priority filter; policy accept;
        oifname != "vif*" accept
        ether daddr & 01:00:00:00:00:00 == 01:00:00:00:00:00 accept
        oifname . ether daddr @vif_mac accept
        drop
    }
}
"#;

/// The elements of guest `domid` in the bridge table's sets, as one `nft`
/// command line (`verb` is `add` or `delete`).
pub fn set_elements(verb: &str, domid: u32) -> String {
    let (vif, mac, ip) = (vif_name(domid), mac_str(mac_of(domid)), ip_of(domid));
    format!(
        "{verb} element bridge {TABLE} src_v4 {{ \"{vif}\" . {mac} . {ip} }}; \
         {verb} element bridge {TABLE} src_arp {{ \"{vif}\" . {mac} . {mac} . {ip} }}; \
         {verb} element bridge {TABLE} vif_mac {{ \"{vif}\" . {mac} }}"
    )
}

/// The bridge table with the elements of guests 1..=n.
pub fn install_bridge_set(dom0: &NetNs, n: usize) -> Result<String> {
    let mut script = String::from(BRIDGE_TABLE);
    for d in 1..=n as u32 {
        script.push_str(&set_elements("add", d).replace("; ", "\n"));
        script.push('\n');
    }
    run_stdin(in_ns(dom0, "nft").args(["-f", "-"]), Some(&script))?;
    let listed = run(in_ns(dom0, "nft").args(["list", "set", "bridge", TABLE, "src_v4"]))?;
    let elements = listed.matches("\"vif").count();
    if elements != n {
        bail!("nftables bridge set: {elements} elements in set src_v4, expected {n}");
    }
    Ok(format!("1 table, 3 sets with {n} elements each, 9 rules"))
}

/// The chain every per-vif ingress chain jumps to for a good IPv4 source.
const NETDEV_TABLE: &str = r#"table netdev vgbench {
    chain v4_ok {
        udp sport 67 drop
        udp dport 68 drop
        icmp type redirect drop
        accept
    }
}
"#;

/// Guest `domid`'s two chains in the netdev table, as an `nft -f` block:
/// ingress (from the guest, policy drop) and egress (to the guest).
pub fn netdev_chains(domid: u32) -> String {
    let (vif, mac, ip) = (vif_name(domid), mac_str(mac_of(domid)), ip_of(domid));
    format!(
        r#"table netdev {TABLE} {{
    chain in{domid} {{
        type filter hook ingress device "{vif}" priority filter; policy drop;
        ether saddr != {mac} drop
        ip saddr {ip} jump v4_ok
        ip saddr 0.0.0.0 ip daddr 255.255.255.255 udp sport 68 udp dport 67 accept
        arp htype 1 arp ptype ip arp hlen 6 arp plen 4 arp operation {{ request, reply }} arp saddr ether {mac} arp saddr ip {ip} accept
    }}
    chain out{domid} {{
        type filter hook egress device "{vif}" priority filter; policy accept;
        ether daddr & 01:00:00:00:00:00 == 00:00:00:00:00:00 ether daddr != {mac} drop
    }}
}}
"#
    )
}

/// Removes guest `domid`'s chains, as one `nft` command line.
pub fn netdev_delete(domid: u32) -> String {
    format!("delete chain netdev {TABLE} in{domid}; delete chain netdev {TABLE} out{domid}")
}

/// The netdev table with the chains of guests 1..=n.
pub fn install_netdev_chains(dom0: &NetNs, n: usize) -> Result<String> {
    let mut script = String::from(NETDEV_TABLE);
    for d in 1..=n as u32 {
        script.push_str(&netdev_chains(d));
    }
    run_stdin(in_ns(dom0, "nft").args(["-f", "-"]), Some(&script))?;
    let listed = run(in_ns(dom0, "nft").args(["list", "table", "netdev", TABLE]))?;
    let hooks = listed.matches("type filter hook").count();
    if hooks != 2 * n {
        bail!(
            "nftables netdev chains: {hooks} base chains, expected {}",
            2 * n
        );
    }
    Ok(format!(
        "{hooks} base chains (ingress and egress per vif), 5 rules per vif"
    ))
}

/// Whether guest `domid`'s elements are in the bridge table's sets.
pub fn has_elements(dom0: &NetNs, domid: u32) -> bool {
    run(in_ns(dom0, "nft").arg(set_elements("get", domid))).is_ok()
}

/// Whether guest `domid`'s ingress chain is in the netdev table.
pub fn has_chains(dom0: &NetNs, domid: u32) -> bool {
    run(in_ns(dom0, "nft").args(["list", "chain", "netdev", TABLE, &format!("in{domid}")])).is_ok()
}

/// A file holding guest `domid`'s netdev chains, for `nft -f` in the
/// apply timing (written before the clock starts).
pub struct ChainsFile(PathBuf);

impl ChainsFile {
    pub fn write(domid: u32) -> Result<ChainsFile> {
        // Named after the pid, as the files xtask sweeps after a crash.
        let path = std::env::temp_dir().join(format!(
            "vifguard-bench-{}-chains-{domid}.nft",
            std::process::id()
        ));
        std::fs::write(&path, netdev_chains(domid)).with_context(|| path.display().to_string())?;
        Ok(ChainsFile(path))
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for ChainsFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
