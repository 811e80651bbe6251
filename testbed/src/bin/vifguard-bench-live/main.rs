//! Live benchmark against the rules vifguard replaces and the other ways to
//! filter a vif: a simulated Xen dom0 in network namespaces (bridge, uplink
//! to a sink, N guest vifs), small UDP frames from one guest, measured with
//! each of these setups on all N vifs (module `host`, `Setup`):
//! - no filter;
//! - the eBPF object's empty TC program (`vifguard_tc_empty`) attached as
//!   vifguard attaches (clsact, both hooks): the floor any TC program pays;
//! - the legacy ebtables/arptables/iptables rules of OpenStack's XenServer
//!   `vif_rules.py` (+ `host-rules`);
//! - nftables, one bridge-family table whose sets hold every vif's
//!   (name, MAC, IPv4) tuples: rules independent of N;
//! - nftables, one netdev-family table with an ingress and an egress chain
//!   per vif (module `nft`; what both lack against vifguard: `nft::LACKS`);
//! - vifguard attached with `attach = "tc"` and with `attach = "tcx"`.
//!
//! Every host is first checked: legitimate frames (IPv4 UDP as measured,
//! ARP replies) reach the sink, spoofed ones (source IP, ARP sender IP) do
//! not (they do with no filter and the empty program).
//!
//! Measured, in one run, interleaved (the order rotates every round),
//! medians of several rounds:
//! - forwarded packets per second at the sink (the kernel's rx counter of
//!   the sink's veth end) and CPU time per forwarded packet (the sending
//!   thread's CPU time, which includes the softirq work done in its context
//!   since everything runs on its core, plus that core's ksoftirqd), also
//!   as the difference to no filter and to the empty program;
//! - time to apply one more vif's policy on a host with N vifs: `vifguard
//!   hotplug online` (tc; tcx on the TCX host) against `nft add element`
//!   (bridge set), `nft -f` of the vif's chains (netdev), the
//!   `vif_rules.py online` command series and `true`, each as a whole
//!   process tree started in dom0;
//! - `vifguard sync` of 1,000 vifs, cold (empty bpffs root) and warm, with
//!   tc (`--sync-reps` times) and tcx (once: a cold TCX sync of 1,000 vifs
//!   takes tens of seconds, see `runs::sync_reps`).
//!
//! Prints a Markdown section on stdout (`cargo xtask bench live` puts it into
//! BENCHMARKS.md) and writes an SVG plot of rate vs N (`--svg PATH`).
//! Everything it creates is named after the run id (`--run-id`, default
//! the pid): namespaces `vgbench-<id>-*` (the nftables tables live in their
//! dom0 namespaces and go with them), bpffs roots
//! `/sys/fs/bpf/vifguard-bench-<id>-*`; they are removed on success, on
//! error and on SIGINT/SIGTERM. Needs root, and `nft` (nftables).
//!
//! The modules, in the order a run uses them: `process` (commands and
//! namespaces), `guests` (the guests' addresses and their policies in the
//! test xenstored), `vifguard` (how the run starts vifguard, attaches the
//! empty program and finds its hooks), `legacy` (the rules vifguard
//! replaces), `nft` (the nftables setups), `host` (one simulated dom0 with
//! one setup), `blaster` (the sending thread), `runs` (the measurements),
//! `stats`, then `report` (the Markdown) and `plot` (the SVG).

mod blaster;
mod guests;
mod host;
mod legacy;
mod nft;
mod plot;
mod process;
mod report;
mod runs;
mod stats;
mod vifguard;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, Result, bail};
use clap::Parser;
use testbed::demo::find_vifguard;
use testbed::xenstored::TestXenstored;

use crate::blaster::Blaster;
use crate::process::run as run_tool;
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

/// Live benchmark of vifguard (tc and tcx) against no filter, an empty TC
/// program, the legacy ebtables/arptables/iptables rules and two nftables
/// setups on a simulated Xen host. Needs root.
#[derive(Parser)]
#[command(name = "vifguard-bench-live")]
struct Config {
    /// A short run that checks the benchmark works rather than measures:
    /// the defaults become --n 1,8 --seconds 0.5 --rounds 2 --apply-reps 3
    /// --sync 50 --sync-reps 1 (options given explicitly still apply).
    #[arg(long)]
    quick: bool,
    /// Numbers of vifs per host, comma-separated.
    #[arg(
        long = "n",
        value_name = "N,...",
        value_delimiter = ',',
        value_parser = positive,
        default_value = "1,64,512",
        default_value_if("quick", "true", "1,8")
    )]
    ns: Vec<usize>,
    /// Seconds of sending per host and round.
    #[arg(
        long,
        allow_negative_numbers = true,
        value_parser = positive_seconds,
        default_value = "2",
        default_value_if("quick", "true", "0.5")
    )]
    seconds: f64,
    /// Rounds over all hosts.
    #[arg(
        long,
        value_parser = positive,
        default_value = "5",
        default_value_if("quick", "true", "2")
    )]
    rounds: usize,
    /// Times one more vif's policy is applied per N.
    #[arg(
        long,
        value_parser = positive,
        default_value = "15",
        default_value_if("quick", "true", "3")
    )]
    apply_reps: usize,
    /// Number of vifs for the sync timing.
    #[arg(
        long = "sync",
        value_name = "VIFS",
        value_parser = positive,
        default_value = "1000",
        default_value_if("quick", "true", "50")
    )]
    sync_count: usize,
    /// Repetitions of each sync timing with `attach = "tc"` (with "tcx":
    /// once, its cold sync alone takes tens of seconds).
    #[arg(
        long,
        value_parser = positive,
        default_value = "3",
        default_value_if("quick", "true", "1")
    )]
    sync_reps: usize,
    /// Write the plot of forwarded rate vs N here (SVG).
    #[arg(long, value_name = "PATH")]
    svg: Option<PathBuf>,
    /// The name of this run in everything it creates [default: the pid].
    #[arg(
        long,
        value_name = "ID",
        default_value_t = std::process::id().to_string(),
        hide_default_value = true
    )]
    run_id: String,
}

/// A count of at least one.
fn positive(s: &str) -> Result<usize> {
    match s.parse()? {
        0 => bail!("must be positive"),
        n => Ok(n),
    }
}

fn positive_seconds(s: &str) -> Result<f64> {
    let v: f64 = s.parse()?;
    if v.is_nan() || v <= 0.0 {
        bail!("must be positive");
    }
    Ok(v)
}

fn run(mut cfg: Config) -> Result<()> {
    // Measured and reported by increasing N, each once.
    cfg.ns.sort_unstable();
    cfg.ns.dedup();
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        bail!("needs root (network namespaces, netfilter rules, eBPF)");
    }
    // Fail before building anything rather than at the first nft host.
    run_tool(std::process::Command::new("nft").arg("--version"))
        .context("the nftables setups need `nft` (Debian package nftables; `cargo xtask bootstrap` installs it)")?;
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
    print!("{}", report::report(&cfg, &blaster, &res, &sync));
    Ok(())
}

fn main() -> ExitCode {
    let cfg = Config::parse();
    for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        // SAFETY: the handler only stores to an atomic.
        unsafe {
            libc::signal(
                sig,
                on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t,
            )
        };
    }
    match run(cfg) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vifguard-bench-live: {e:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    use super::*;

    fn parse(args: &[&str]) -> Config {
        Config::try_parse_from(std::iter::once("vifguard-bench-live").chain(args.iter().copied()))
            .expect("valid arguments")
    }

    #[test]
    fn setups_are_indexed_in_report_order() {
        for (i, s) in host::Setup::ALL.iter().enumerate() {
            assert_eq!(s.index(), i, "{s:?}");
        }
        let tags: std::collections::BTreeSet<_> =
            host::Setup::ALL.iter().map(|s| s.tag()).collect();
        assert_eq!(
            tags.len(),
            host::Setup::COUNT,
            "tags name namespaces: unique"
        );
    }

    #[test]
    fn the_command_line_is_well_formed() {
        Config::command().debug_assert();
    }

    #[test]
    fn defaults_are_the_full_run_and_quick_the_short_one() {
        let full = parse(&[]);
        assert_eq!(full.ns, [1, 64, 512]);
        assert_eq!(full.seconds, 2.0);
        assert_eq!(
            (
                full.rounds,
                full.apply_reps,
                full.sync_count,
                full.sync_reps
            ),
            (5, 15, 1000, 3)
        );
        assert_eq!(full.run_id, std::process::id().to_string());
        assert_eq!(full.svg, None);
        let quick = parse(&["--quick"]);
        assert_eq!(quick.ns, [1, 8]);
        assert_eq!(quick.seconds, 0.5);
        assert_eq!(
            (
                quick.rounds,
                quick.apply_reps,
                quick.sync_count,
                quick.sync_reps
            ),
            (2, 3, 50, 1)
        );
    }

    #[test]
    fn options_given_override_quick_as_xtask_passes_them() {
        let c = parse(&[
            "--svg",
            "docs/bench-live.svg",
            "--run-id",
            "x42",
            "--quick",
            "--n",
            "2,4",
            "--sync",
            "7",
        ]);
        assert_eq!(c.ns, [2, 4]);
        assert_eq!(c.sync_count, 7);
        assert_eq!(c.rounds, 2);
        assert_eq!(c.run_id, "x42");
        assert_eq!(c.svg, Some(PathBuf::from("docs/bench-live.svg")));
    }

    #[test]
    fn counts_and_seconds_must_be_positive() {
        for args in [
            ["--n", "1,0"],
            ["--rounds", "0"],
            ["--apply-reps", "0"],
            ["--sync", "0"],
            ["--sync-reps", "0"],
            ["--seconds", "0"],
            ["--seconds", "-1"],
            ["--seconds", "NaN"],
        ] {
            let argv = std::iter::once("vifguard-bench-live").chain(args);
            assert!(Config::try_parse_from(argv).is_err(), "{args:?} accepted");
        }
    }
}
