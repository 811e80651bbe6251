//! Live benchmark against the rules vifguard replaces: a simulated Xen dom0
//! in network namespaces (bridge, uplink to a sink, N guest vifs), small
//! UDP frames from one guest, measured with no filter, with the legacy
//! ebtables/arptables/iptables rules of OpenStack's XenServer `vif_rules.py`
//! (+ `host-rules`) for all N vifs, and with vifguard TC on all N vifs.
//!
//! Measured, in one run, interleaved (the order rotates every round),
//! medians of several rounds:
//! - forwarded packets per second at the sink (the kernel's rx counter of
//!   the sink's veth end) and CPU time per forwarded packet (the sending
//!   thread's CPU time, which includes the softirq work done in its context
//!   since everything runs on its core, plus that core's ksoftirqd);
//! - time to apply one more vif's policy on a host with N vifs: `vifguard
//!   hotplug online` against the `vif_rules.py online` command series, each
//!   as a whole process tree started in dom0;
//! - `vifguard sync` of 1,000 vifs, cold (empty bpffs root) and warm.
//!
//! Prints a Markdown section on stdout (`cargo xtask bench live` puts it into
//! BENCHMARKS.md) and writes an SVG plot of rate vs N (`--svg PATH`).
//! Everything it creates is named after the run id (`--run-id`, default
//! the pid): namespaces `vgbench-<id>-*`, bpffs roots
//! `/sys/fs/bpf/vifguard-bench-<id>-*`; they are removed on success, on
//! error and on SIGINT/SIGTERM. Needs root.
//!
//! The modules, in the order a run uses them: `process` (commands and
//! namespaces), `guests` (the guests' addresses and their policies in the
//! test xenstored), `vifguard` (how the run starts vifguard and finds its
//! hooks), `legacy` (the rules vifguard replaces), `host` (one simulated
//! dom0 with one setup), `blaster` (the sending thread), `runs` (the
//! measurements), `stats`, then `report` (the Markdown) and `plot` (the
//! SVG).

mod blaster;
mod guests;
mod host;
mod legacy;
mod plot;
mod process;
mod report;
mod runs;
mod stats;
mod vifguard;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, Result, anyhow, bail};
use vifguard_tests::demo::find_vifguard;
use vifguard_tests::xenstored::TestXenstored;

use crate::blaster::Blaster;
use crate::vifguard::Ctx;

/// Set by SIGINT, SIGTERM and SIGHUP. Every step checks it and fails, so
/// the run unwinds through the guards that remove what it created.
static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

fn check_stop() -> Result<()> {
    if STOP.load(Ordering::SeqCst) {
        bail!("interrupted");
    }
    Ok(())
}

fn progress(msg: &str) {
    eprintln!("bench-live: {msg}");
}

struct Config {
    ns: Vec<usize>,
    seconds: f64,
    rounds: usize,
    apply_reps: usize,
    sync_count: usize,
    sync_reps: usize,
    svg: Option<PathBuf>,
    run_id: String,
}

const USAGE: &str = "\
usage: vifguard-bench-live [--quick] [--n 1,64,512] [--seconds 2] [--rounds 5]
                           [--apply-reps 15] [--sync 1000] [--sync-reps 3]
                           [--svg PATH] [--run-id ID]";

fn parse_args() -> Result<Config> {
    let mut c = Config {
        ns: vec![1, 64, 512],
        seconds: 2.0,
        rounds: 5,
        apply_reps: 15,
        sync_count: 1000,
        sync_reps: 3,
        svg: None,
        run_id: std::process::id().to_string(),
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    let value = |i: usize| -> Result<&String> {
        args.get(i + 1)
            .with_context(|| format!("{} needs a value\n{USAGE}", args[i]))
    };
    let num = |s: &str| -> Result<usize> { s.parse().map_err(|e| anyhow!("{s:?}: {e}\n{USAGE}")) };
    while i < args.len() {
        match args[i].as_str() {
            "--quick" => {
                c.ns = vec![1, 8];
                c.seconds = 0.5;
                c.rounds = 2;
                c.apply_reps = 3;
                c.sync_count = 50;
                c.sync_reps = 1;
                i += 1;
                continue;
            }
            "--n" => {
                c.ns = value(i)?
                    .split(',')
                    .map(num)
                    .collect::<Result<Vec<usize>>>()?;
            }
            "--seconds" => {
                c.seconds = value(i)?.parse().context("--seconds")?;
            }
            "--rounds" => c.rounds = num(value(i)?)?,
            "--apply-reps" => c.apply_reps = num(value(i)?)?,
            "--sync" => c.sync_count = num(value(i)?)?,
            "--sync-reps" => c.sync_reps = num(value(i)?)?,
            "--svg" => c.svg = Some(PathBuf::from(value(i)?)),
            "--run-id" => c.run_id = value(i)?.clone(),
            "-h" | "--help" => bail!(USAGE),
            other => bail!("unknown argument {other:?}\n{USAGE}"),
        }
        i += 2;
    }
    if c.ns.is_empty() || c.ns.contains(&0) || c.rounds == 0 || c.apply_reps == 0 {
        bail!("N values, rounds and reps must be positive\n{USAGE}");
    }
    if c.sync_reps == 0 || c.sync_count == 0 {
        bail!("--sync and --sync-reps must be positive\n{USAGE}");
    }
    if c.seconds.is_nan() || c.seconds <= 0.0 {
        bail!("--seconds must be positive\n{USAGE}");
    }
    c.ns.sort_unstable();
    c.ns.dedup();
    Ok(c)
}

fn run() -> Result<()> {
    let cfg = parse_args()?;
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        bail!("needs root (network namespaces, netfilter rules, eBPF)");
    }
    let vifguard = find_vifguard().map_err(anyhow::Error::msg)?;
    let max_n = cfg.ns.iter().copied().max().unwrap_or(1);
    let tcx_config = std::env::temp_dir().join(format!("vifguard-bench-{}-tcx.toml", cfg.run_id));
    std::fs::write(&tcx_config, "attach = \"tcx\"\n")
        .with_context(|| tcx_config.display().to_string())?;
    let ctx = Ctx {
        run_id: cfg.run_id.clone(),
        vifguard,
        xs: TestXenstored::start(),
        tcx_config,
    };
    let domids = (max_n + 1).max(cfg.sync_count) as u32;
    progress(&format!(
        "run {}: publishing {domids} vif policies in a test xenstored",
        ctx.run_id
    ));
    guests::publish_policies(&ctx.xs, 1..=domids)?;
    let blaster = Blaster::start();
    if !blaster.pinned || !blaster.niced {
        progress("warning: could not pin the sending thread or raise its priority");
    }
    let res = runs::bench_datapath(&ctx, &cfg, &blaster)?;
    let sync = runs::bench_sync(&ctx, &cfg)?;
    if let Some(path) = &cfg.svg {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).with_context(|| dir.display().to_string())?;
        }
        std::fs::write(path, plot::svg(&res)).with_context(|| path.display().to_string())?;
        progress(&format!("wrote {}", path.display()));
    }
    let _ = std::fs::remove_file(&ctx.tcx_config);
    print!("{}", report::report(&cfg, &blaster, &res, &sync));
    Ok(())
}

fn main() -> ExitCode {
    for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        // SAFETY: the handler only stores to an atomic.
        unsafe {
            libc::signal(
                sig,
                on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t,
            )
        };
    }
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vifguard-bench-live: {e:#}");
            ExitCode::FAILURE
        }
    }
}
