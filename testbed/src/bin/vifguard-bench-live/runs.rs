//! The measurements of a run: forwarding through every host, one more
//! vif's apply on the hosts, and the sync of many vifs.

use std::fmt::Write as _;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use testbed::kernel::BpffsDir;

use crate::blaster::Blaster;
use crate::guests::{publish_policies, publish_prefixes, trie_entries, vif_name};
use crate::host::{Host, Setup};
use crate::legacy::{legacy_offline_script, legacy_online_script};
use crate::nft::{ChainsFile, has_chains, has_elements, netdev_delete, set_elements};
use crate::process::{ip_batch, new_ns, timed};
use crate::stats::{NResult, Sample, SyncResult, SyncRun, median, ms};
use crate::vifguard::{Attach, Ctx, clear, count_attached};
use crate::{Config, progress};

/// Builds every host (each N, each setup), checks them, then measures them
/// all interleaved: every round visits all hosts, starting one further each
/// round, so slow drifts of the machine's load spread over all of them.
pub fn bench_datapath(ctx: &Ctx, cfg: &Config, blaster: &Blaster) -> Result<Vec<NResult>> {
    let mut hosts: Vec<Host> = Vec::new();
    for &n in &cfg.ns {
        let t0 = Instant::now();
        for setup in Setup::ALL {
            hosts.push(Host::build(ctx, setup, n)?);
        }
        progress(&format!(
            "N={n}: {} hosts built in {:.1} s",
            Setup::COUNT,
            t0.elapsed().as_secs_f64()
        ));
    }
    progress("checking that legitimate frames pass and spoofed ones are dropped");
    for h in &hosts {
        h.verify(blaster)?;
    }
    let frames: Vec<Vec<u8>> = hosts.iter().map(Host::legit).collect();
    for (h, f) in hosts.iter().zip(&frames) {
        h.measure(blaster, f, (cfg.seconds / 4.0).min(0.5))?;
    }
    let mut samples: Vec<Vec<Sample>> = vec![Vec::new(); hosts.len()];
    for round in 0..cfg.rounds {
        let t0 = Instant::now();
        for k in 0..hosts.len() {
            let i = (round + k) % hosts.len();
            let s = hosts[i].measure(blaster, &frames[i], cfg.seconds)?;
            samples[i].push(s);
        }
        let line: Vec<String> = hosts
            .iter()
            .zip(&samples)
            .map(|(h, s)| {
                format!(
                    "N={} {} {:.3} Mpps {:.0} ns {:.0}%",
                    h.n,
                    h.setup.tag(),
                    s[round].pps / 1e6,
                    s[round].cpu_ns,
                    s[round].share * 100.0
                )
            })
            .collect();
        progress(&format!(
            "round {}/{} ({:.0} s): {}",
            round + 1,
            cfg.rounds,
            t0.elapsed().as_secs_f64(),
            line.join(", ")
        ));
    }
    let mut results = Vec::new();
    for &n in &cfg.ns {
        let of = |setup: Setup| -> Result<usize> {
            hosts
                .iter()
                .position(|h| h.n == n && h.setup == setup)
                .with_context(|| format!("no host for N={n} {}", setup.label()))
        };
        let mut idx = [0; Setup::COUNT];
        for s in Setup::ALL {
            idx[s.index()] = of(s)?;
        }
        let mut r = NResult {
            n,
            sender: hosts[idx[0]].sender,
            samples: idx.map(|i| samples[i].clone()),
            rules: idx.map(|i| hosts[i].rules.clone()),
            apply_vifguard: Vec::new(),
            reapply_vifguard: Vec::new(),
            apply_tcx: Vec::new(),
            apply_nft_set: Vec::new(),
            offline_nft_set: Vec::new(),
            apply_nft_netdev: Vec::new(),
            offline_nft_netdev: Vec::new(),
            apply_legacy: Vec::new(),
            offline_legacy: Vec::new(),
            offline_vifguard: Vec::new(),
            spawn: Vec::new(),
        };
        let host = |s: Setup| &hosts[idx[s.index()]];
        apply_times(
            ctx,
            cfg,
            &ApplyHosts {
                legacy: host(Setup::Legacy),
                vg: host(Setup::Vifguard),
                tcx: host(Setup::VifguardTcx),
                nft_set: host(Setup::NftSet),
                nft_netdev: host(Setup::NftNetdev),
            },
            &mut r,
        )?;
        results.push(r);
    }
    drop(hosts);
    // Namespace teardown continues in the kernel for a moment.
    std::thread::sleep(Duration::from_secs(1));
    Ok(results)
}

/// The hosts of one N the apply timing uses.
struct ApplyHosts<'a> {
    legacy: &'a Host,
    vg: &'a Host,
    tcx: &'a Host,
    nft_set: &'a Host,
    nft_netdev: &'a Host,
}

/// One more vif on hosts with N vifs: `vifguard hotplug online` against
/// `nft add element` (bridge set), `nft -f` of the vif's chains (netdev)
/// and the vif_rules.py command series, alternating whether legacy goes
/// first; each followed by its offline counterpart.
fn apply_times(ctx: &Ctx, cfg: &Config, h: &ApplyHosts, r: &mut NResult) -> Result<()> {
    let n = r.n;
    progress(&format!(
        "N={n}: timing one more vif's apply (vifguard hotplug online, nft, vif_rules.py online commands)"
    ));
    let (legacy, vg) = (h.legacy, h.vg);
    let online = legacy_online_script(legacy.extra);
    let offline = legacy_offline_script(legacy.extra);
    let vg_cmd_with = |host: &Host, action: &str, attach: Attach| {
        let mut c = ctx.vifguard_timed(host.bpffs.path(), attach);
        c.args(["hotplug", action])
            .env("vif", vif_name(host.extra))
            .env("XENBUS_PATH", format!("backend/vif/{}/0", host.extra));
        c
    };
    let vg_cmd = |action: &str| vg_cmd_with(vg, action, Attach::Tc);
    let legacy_turn = |r: &mut NResult| -> Result<()> {
        r.apply_legacy.push(timed(
            &legacy.dom0,
            Command::new("sh").args(["-ec", &online]),
        )?);
        r.offline_legacy.push(timed(
            &legacy.dom0,
            Command::new("sh").args(["-ec", &offline]),
        )?);
        Ok(())
    };
    let set = h.nft_set;
    let chains = ChainsFile::write(h.nft_netdev.extra)?;
    let nft_turn = |r: &mut NResult| -> Result<()> {
        r.apply_nft_set.push(timed(
            &set.dom0,
            Command::new("nft").arg(set_elements("add", set.extra)),
        )?);
        if !has_elements(&set.dom0, set.extra) {
            bail!(
                "nft add element: the elements of {} are not in the sets",
                vif_name(set.extra)
            );
        }
        r.offline_nft_set.push(timed(
            &set.dom0,
            Command::new("nft").arg(set_elements("delete", set.extra)),
        )?);
        let dev = h.nft_netdev;
        r.apply_nft_netdev.push(timed(
            &dev.dom0,
            Command::new("nft").arg("-f").arg(chains.path()),
        )?);
        if !has_chains(&dev.dom0, dev.extra) {
            bail!("nft -f: no chains for {}", vif_name(dev.extra));
        }
        r.offline_nft_netdev.push(timed(
            &dev.dom0,
            Command::new("nft").arg(netdev_delete(dev.extra)),
        )?);
        Ok(())
    };
    for rep in 0..cfg.apply_reps {
        legacy.renew_extra()?;
        vg.renew_extra()?;
        set.renew_extra()?;
        h.nft_netdev.renew_extra()?;
        if rep % 2 == 0 {
            legacy_turn(r)?;
        }
        r.apply_vifguard
            .push(timed(&vg.dom0, &mut vg_cmd("online"))?);
        let hooks = count_attached(&vg.dom0, vg.bpffs.path())?;
        if hooks != 2 * (n + 1) {
            bail!(
                "vifguard hotplug online: {hooks} hooks attached, expected {}",
                2 * (n + 1)
            );
        }
        r.reapply_vifguard
            .push(timed(&vg.dom0, &mut vg_cmd("online"))?);
        r.offline_vifguard
            .push(timed(&vg.dom0, &mut vg_cmd("offline"))?);
        nft_turn(r)?;
        if rep % 2 == 1 {
            legacy_turn(r)?;
        }
        r.spawn.push(timed(&vg.dom0, &mut Command::new("true"))?);
    }
    // TCX in a loop of its own: a TCX link's teardown leaves RCU work
    // behind that slows the next attach on the machine.
    let tcx = h.tcx;
    for _ in 0..cfg.apply_reps {
        tcx.renew_extra()?;
        r.apply_tcx.push(timed(
            &tcx.dom0,
            &mut vg_cmd_with(tcx, "online", Attach::Tcx),
        )?);
        let hooks = count_attached(&tcx.dom0, tcx.bpffs.path())?;
        if hooks != 2 * (n + 1) {
            bail!(
                "vifguard hotplug online (tcx): {hooks} hooks attached, expected {}",
                2 * (n + 1)
            );
        }
        // Started as the timed commands are: in dom0's namespace. (Run
        // in the benchmark's own namespace, the vif is not found there and
        // `hotplug offline` cleans the state of every ifindex that namespace
        // lacks: all of the host's links.)
        timed(&tcx.dom0, &mut vg_cmd_with(tcx, "offline", Attach::Tcx))?;
    }
    progress(&format!(
        "N={n}: apply vifguard {:.1} ms, nft add element {:.1} ms, nft chains {:.1} ms, legacy {:.1} ms, vifguard tcx {:.1} ms (medians)",
        median(&ms(&r.apply_vifguard)),
        median(&ms(&r.apply_nft_set)),
        median(&ms(&r.apply_nft_netdev)),
        median(&ms(&r.apply_legacy)),
        median(&ms(&r.apply_tcx))
    ));
    Ok(())
}

/// Repetitions of the sync timing with `attach`. TCX once only: its cold
/// sync of 1,000 vifs takes 25-40 s (an RCU grace period per link), and
/// clearing it before the next cold run about as long again (each link's
/// detach waits for one too); three would add about four minutes to a run.
pub fn sync_reps(cfg: &Config, attach: Attach) -> usize {
    match attach {
        Attach::Tc => cfg.sync_reps,
        Attach::Tcx => 1,
    }
}

pub fn bench_sync(ctx: &Ctx, cfg: &Config) -> Result<SyncResult> {
    let count = cfg.sync_count;
    progress(&format!("sync: creating {count} vifs"));
    let dom0 = new_ns(&ctx.run_id, "sync-dom0")?;
    let mut b = String::new();
    for d in 1..=count as u32 {
        let vif = vif_name(d);
        let _ = writeln!(b, "link add {vif} type veth peer name g{d}");
        let _ = writeln!(b, "link set {vif} up");
        let _ = writeln!(b, "link set g{d} up");
    }
    ip_batch(&dom0, &b)?;
    let root = BpffsDir::adopt(ctx.bpffs("sync"));
    let vifs: Vec<String> = (1..=count as u32).map(vif_name).collect();
    let mut runs = Vec::new();
    for (attach, prefixes) in [
        (Attach::Tc, false),
        (Attach::Tcx, false),
        (Attach::Tc, true),
    ] {
        if prefixes {
            publish_prefixes(&ctx.xs, 1..=count as u32)?;
        }
        let mut run = SyncRun {
            attach,
            prefixes,
            cold: Vec::new(),
            warm: Vec::new(),
        };
        let reps = sync_reps(cfg, attach);
        for rep in 0..reps {
            clear(&dom0, root.path(), &vifs)?;
            let cold = timed(&dom0, ctx.vifguard_timed(root.path(), attach).arg("sync"))?;
            let hooks = count_attached(&dom0, root.path())?;
            if hooks != 2 * count {
                bail!(
                    "vifguard sync ({}) attached {hooks} hooks, expected {}",
                    attach.name(),
                    2 * count
                );
            }
            if prefixes {
                let entries = trie_entries(root.path())?;
                if entries != count {
                    bail!(
                        "vifguard sync with prefixes: {entries} SRC_V4 trie entries, expected {count}"
                    );
                }
            }
            let warm = timed(&dom0, ctx.vifguard_timed(root.path(), attach).arg("sync"))?;
            progress(&format!(
                "sync {}{} {}/{}: cold {:.2} s, warm {:.2} s",
                attach.name(),
                if prefixes { ", a /24 per vif" } else { "" },
                rep + 1,
                reps,
                cold.as_secs_f64(),
                warm.as_secs_f64()
            ));
            run.cold.push(cold);
            run.warm.push(warm);
        }
        runs.push(run);
        if prefixes {
            publish_policies(&ctx.xs, 1..=count as u32)?;
        }
    }
    clear(&dom0, root.path(), &vifs)?;
    drop(root);
    drop(dom0);
    Ok(SyncResult { count, runs })
}
