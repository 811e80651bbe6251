//! `cargo xtask bench live`: vifguard (attached with tc and with tcx)
//! against no filter, the eBPF object's empty TC program, the legacy
//! ebtables/arptables/iptables rules and two nftables setups (a bridge
//! table with sets, netdev chains per vif) on a simulated Xen host in
//! network namespaces (forwarding rate and CPU per packet vs the number of
//! vifs, per-vif apply time against `nft add element` and the legacy
//! commands, sync of 1,000 vifs). Runs the
//! `vifguard-bench-live` binary of the tests crate, writes its section of
//! BENCHMARKS.md between markers (other sections stay) and the plot
//! docs/bench-live.svg. Whatever the run leaves behind (namespaces
//! `vgbench-<id>-*`, bpffs roots `/sys/fs/bpf/vifguard-bench-<id>-*` and
//! their records under /run/vifguard/applied) is removed afterwards, also
//! when it fails or is interrupted.

use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

const BEGIN: &str = "<!-- bench live: begin -->";
const END: &str = "<!-- bench live: end -->";
const SVG: &str = "docs/bench-live.svg";
/// How long the full run takes on the 2-core benchmark machine (an
/// estimate from its parts; the TCX sync's part varies with the kernel's
/// RCU grace periods): seven setups at N = 1, 64, 512, 21 hosts built in
/// about half a minute (vifguard with TCX on 512 vifs waits for an RCU
/// grace period per link), checked and warmed up in another half, then 5
/// rounds of 2 s on each (about 4 minutes with settling), the apply
/// timings (under a minute) and the syncs of 1,000 vifs (TCX once: its
/// cold sync takes 25-40 s, and clearing it about as long).
const DURATION: &str = "about 7 minutes";
/// The same with `--quick` (N = 1, 8, short rounds, sync of 50 vifs).
const DURATION_QUICK: &str = "about a minute";

pub fn run(args: &[String]) -> Result<()> {
    crate::bootstrap::run()?;
    crate::bootstrap::require_root(
        "the live benchmark creates network namespaces, netfilter rules and loads eBPF programs",
    )?;
    // The benchmark runs the release vifguard, the binary a host installs
    // (found next to the benchmark's own binary).
    let release = crate::release::build(&[
        ("filter-user", "vifguard"),
        ("testbed", "vifguard-bench-live"),
    ])?;
    let run_id = format!("x{}", std::process::id());
    let tools: Vec<String> = [
        ("ebtables-nft", "-V"),
        ("arptables-legacy", "-V"),
        ("iptables-legacy", "-V"),
        ("nft", "--version"),
    ]
    .iter()
    .map(|(t, a)| {
        let v = crate::report::output_of(t, &[a]);
        v.lines().next().unwrap_or(t).to_string()
    })
    .collect();
    let machine = format!(
        "{} (shared machine); {}",
        crate::report::machine_description(),
        tools.join(", ")
    );
    let mut cmd = Command::new(release.join("vifguard-bench-live"));
    cmd.args(["--svg", SVG, "--run-id", &run_id])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    let duration = if args.iter().any(|a| a == "--quick") {
        DURATION_QUICK
    } else {
        DURATION
    };
    eprintln!("xtask: running {cmd:?} ({duration})");
    // Ctrl-C reaches the benchmark too; it stops and cleans up, and so do
    // we after it (this process must outlive it for that).
    // SAFETY: setting a signal disposition to SIG_IGN has no preconditions.
    let old = unsafe { libc::signal(libc::SIGINT, libc::SIG_IGN) };
    let child = cmd.spawn().context("starting the live benchmark");
    // `cargo run` execs the benchmark: this is its pid.
    let pid = child.as_ref().map(std::process::Child::id).ok();
    let out = child.and_then(|c| c.wait_with_output().context("running the live benchmark"));
    // SAFETY: restores the previous disposition.
    unsafe { libc::signal(libc::SIGINT, old) };
    sweep(&run_id, pid);
    let out = out?;
    if !out.status.success() {
        bail!("the live benchmark failed ({})", out.status);
    }
    let table = String::from_utf8(out.stdout).context("benchmark output is UTF-8")?;
    print!("{table}");
    let section = format!(
        "{BEGIN}\n## Live: legacy rules, nftables and vifguard on a simulated host\n\n\
         Command: `cargo xtask bench live` (as root; {DURATION}; extra arguments go to the benchmark, e.g. `--quick`). \
         Machine: {machine}.\n\n{table}{END}\n"
    );
    crate::report::write_section(BEGIN, END, &section)?;
    eprintln!("xtask: wrote {SVG}");
    Ok(())
}

/// Removes namespaces and bpffs roots of run `run_id`, and temporary files
/// of process `pid`, that are still there (the benchmark removes its own;
/// this covers a crash or a kill).
fn sweep(run_id: &str, pid: Option<u32>) {
    let prefix = format!("vgbench-{run_id}-");
    if let Ok(out) = Command::new("ip").args(["netns", "list"]).output() {
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            let Some(name) = line.split_whitespace().next() else {
                continue;
            };
            if name.starts_with(&prefix) {
                eprintln!("xtask: removing leftover namespace {name}");
                let _ = Command::new("ip").args(["netns", "del", name]).status();
            }
        }
    }
    let bpf_prefix = format!("vifguard-bench-{run_id}-");
    if let Ok(rd) = std::fs::read_dir("/sys/fs/bpf") {
        for e in rd.flatten() {
            if e.file_name().to_string_lossy().starts_with(&bpf_prefix) {
                eprintln!("xtask: removing leftover {}", e.path().display());
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
    // The records vifguard kept for those roots (named after the root).
    let records = format!("sys_fs_bpf_{bpf_prefix}");
    if let Ok(rd) = std::fs::read_dir("/run/vifguard/applied") {
        for e in rd.flatten() {
            if e.file_name().to_string_lossy().starts_with(&records) {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
    // The test xenstored's socket directory and the tc batch file.
    if let Some(pid) = pid {
        let prefixes = [
            format!("vifguard-xs-{pid}-"),
            format!("vifguard-bench-{pid}-"),
        ];
        let tmp = std::env::temp_dir();
        if let Ok(rd) = std::fs::read_dir(&tmp) {
            for e in rd.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if prefixes.iter().any(|p| name.starts_with(p.as_str())) {
                    let p = e.path();
                    let _ = std::fs::remove_dir_all(&p).or_else(|_| std::fs::remove_file(&p));
                }
            }
        }
    }
}
