//! The rules vifguard replaces: OpenStack's XenServer `vif_rules.py` and
//! `host-rules`, ebtables/arptables/iptables in the FORWARD chains, per
//! vif.

use std::fmt::Write as _;

use anyhow::{Result, bail};
use testbed::netns::NetNs;

use crate::guests::{ip_of, mac_of, mac_str, vif_name};
use crate::process::{in_ns, run, run_stdin};

/// The legacy tools: the kernel has no ebtables legacy (x_tables bridge)
/// support, and arptables-nft has no FORWARD chain, so ebtables is the nft
/// variant and arptables/iptables are the x_tables ("legacy") ones.
pub const EBTABLES: &str = "ebtables-nft";
pub const ARPTABLES: &str = "arptables-legacy";
pub const IPTABLES: &str = "iptables-legacy";

/// host-rules with the uplink `eth0` (and `eth1`, as the script has it),
/// then vif_rules.py `online` for every vif, in hotplug order. ebtables via
/// ebtables-nft-restore and iptables via iptables-legacy-restore (same
/// resulting tables as the commands, much faster to build);
/// arptables-legacy-restore cannot restore the FORWARD chain, so those are
/// the commands themselves. Returns a description with the rule counts.
pub fn install_legacy(dom0: &NetNs, n: usize) -> Result<String> {
    let mut eb = String::from("*filter\n:INPUT ACCEPT\n:FORWARD DROP\n:OUTPUT ACCEPT\n");
    // `ebtables -I FORWARD 1 -s ! MAC -i VIF -j DROP`: newest first.
    for d in (1..=n as u32).rev() {
        let _ = writeln!(
            eb,
            "-A FORWARD -s ! {} -i {} -j DROP",
            mac_str(mac_of(d)),
            vif_name(d)
        );
    }
    eb.push_str("-A FORWARD -o eth0 -j ACCEPT\n-A FORWARD -o eth1 -j ACCEPT\n");
    for d in 1..=n as u32 {
        let (vif, ip) = (vif_name(d), ip_of(d));
        let _ = writeln!(
            eb,
            "-A FORWARD -p 0806 -o {vif} --arp-ip-dst {ip} -j ACCEPT"
        );
        let _ = writeln!(eb, "-A FORWARD -p 0800 -o {vif} --ip-dst {ip} -j ACCEPT");
    }
    run_stdin(&mut in_ns(dom0, "ebtables-nft-restore"), Some(&eb))?;

    let mut arp = format!("{ARPTABLES} -P FORWARD DROP\n");
    for up in ["eth0", "eth1"] {
        for op in ["Request", "Reply"] {
            let _ = writeln!(
                arp,
                "{ARPTABLES} -A FORWARD --opcode {op} --in-interface {up} -j ACCEPT"
            );
        }
    }
    for d in 1..=n as u32 {
        let (vif, ip, mac) = (vif_name(d), ip_of(d), mac_str(mac_of(d)));
        let _ = writeln!(
            arp,
            "{ARPTABLES} -A FORWARD --opcode Request --in-interface {vif} --source-mac {mac} -j ACCEPT"
        );
        let _ = writeln!(
            arp,
            "{ARPTABLES} -A FORWARD --opcode Reply --in-interface {vif} --source-ip {ip} --source-mac {mac} -j ACCEPT"
        );
    }
    run_stdin(in_ns(dom0, "sh").arg("-e"), Some(&arp))?;

    let mut ipt = String::from(
        "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n\
         -A FORWARD -m physdev --physdev-in eth0 -j ACCEPT\n\
         -A FORWARD -m physdev --physdev-in eth1 -j ACCEPT\n",
    );
    for d in 1..=n as u32 {
        let _ = writeln!(
            ipt,
            "-A FORWARD -m physdev --physdev-in {} -s {} -j ACCEPT",
            vif_name(d),
            ip_of(d)
        );
    }
    ipt.push_str("COMMIT\n");
    run_stdin(&mut in_ns(dom0, "iptables-legacy-restore"), Some(&ipt))?;

    // Count what the kernel holds.
    let count = |out: String, prefix: &str| out.lines().filter(|l| l.starts_with(prefix)).count();
    let eb_n = count(run(in_ns(dom0, EBTABLES).args(["-L", "FORWARD"]))?, "-");
    let arp_n = count(
        run(in_ns(dom0, ARPTABLES).args(["-L", "FORWARD", "-n"]))?,
        "-j",
    );
    let ipt_n = count(run(in_ns(dom0, IPTABLES).args(["-S", "FORWARD"]))?, "-A");
    let want = (3 * n + 2, 2 * n + 4, n + 2);
    if (eb_n, arp_n, ipt_n) != want {
        bail!(
            "legacy rules: ebtables/arptables/iptables FORWARD hold {eb_n}/{arp_n}/{ipt_n} rules, expected {want:?}"
        );
    }
    Ok(format!(
        "FORWARD rules: ebtables {eb_n}, arptables {arp_n}, iptables {ipt_n}"
    ))
}

/// vif_rules.py `online` for one vif, command by command in its order
/// (ebtables, arptables, iptables; every add preceded by its delete, whose
/// failure the script ignores).
pub fn legacy_online_script(domid: u32) -> String {
    let (vif, ip, mac) = (vif_name(domid), ip_of(domid), mac_str(mac_of(domid)));
    let q = "2>/dev/null || true";
    [
        format!("{EBTABLES} -D FORWARD -p 0806 -o {vif} --arp-ip-dst {ip} -j ACCEPT {q}"),
        format!("{EBTABLES} -D FORWARD -p 0800 -o {vif} --ip-dst {ip} -j ACCEPT {q}"),
        format!("{EBTABLES} -A FORWARD -p 0806 -o {vif} --arp-ip-dst {ip} -j ACCEPT"),
        format!("{EBTABLES} -A FORWARD -p 0800 -o {vif} --ip-dst {ip} -j ACCEPT"),
        format!("{EBTABLES} -D FORWARD -s ! {mac} -i {vif} -j DROP {q}"),
        format!("{EBTABLES} -I FORWARD 1 -s ! {mac} -i {vif} -j DROP"),
        format!(
            "{ARPTABLES} -D FORWARD --opcode Request --in-interface {vif} --source-ip {ip} --source-mac {mac} -j ACCEPT {q}"
        ),
        format!(
            "{ARPTABLES} -D FORWARD --opcode Reply --in-interface {vif} --source-ip {ip} --source-mac {mac} -j ACCEPT {q}"
        ),
        format!(
            "{ARPTABLES} -A FORWARD --opcode Request --in-interface {vif} --source-mac {mac} -j ACCEPT"
        ),
        format!(
            "{ARPTABLES} -A FORWARD --opcode Reply --in-interface {vif} --source-ip {ip} --source-mac {mac} -j ACCEPT"
        ),
        format!("{IPTABLES} -D FORWARD -m physdev --physdev-in {vif} -s {ip} -j ACCEPT {q}"),
        format!("{IPTABLES} -A FORWARD -m physdev --physdev-in {vif} -s {ip} -j ACCEPT"),
    ]
    .join("\n")
}

/// Removes what [`legacy_online_script`] added.
pub fn legacy_offline_script(domid: u32) -> String {
    let (vif, ip, mac) = (vif_name(domid), ip_of(domid), mac_str(mac_of(domid)));
    [
        format!("{EBTABLES} -D FORWARD -p 0806 -o {vif} --arp-ip-dst {ip} -j ACCEPT"),
        format!("{EBTABLES} -D FORWARD -p 0800 -o {vif} --ip-dst {ip} -j ACCEPT"),
        format!("{EBTABLES} -D FORWARD -s ! {mac} -i {vif} -j DROP"),
        format!(
            "{ARPTABLES} -D FORWARD --opcode Request --in-interface {vif} --source-mac {mac} -j ACCEPT"
        ),
        format!(
            "{ARPTABLES} -D FORWARD --opcode Reply --in-interface {vif} --source-ip {ip} --source-mac {mac} -j ACCEPT"
        ),
        format!("{IPTABLES} -D FORWARD -m physdev --physdev-in {vif} -s {ip} -j ACCEPT"),
    ]
    .join("\n")
}

/// The commands of [`legacy_online_script`].
pub const LEGACY_COMMANDS_PER_VIF: usize = 12;
