//! `cargo xtask bench datapath`: the per-frame cost of the datapath next to
//! an empty program of the same hook, measured in one run, written to
//! BENCHMARKS.md between markers so other sections stay.

use std::process::Command;

use anyhow::{Context, Result, bail};

const BEGIN: &str = "<!-- bench datapath: begin -->";
const END: &str = "<!-- bench datapath: end -->";

pub fn run(args: &[String]) -> Result<()> {
    match args.first().map(String::as_str) {
        Some("datapath") => datapath(),
        _ => bail!("usage: cargo xtask bench datapath"),
    }
}

fn datapath() -> Result<()> {
    crate::bootstrap::run()?;
    crate::bootstrap::require_root("BPF_PROG_TEST_RUN loads eBPF programs")?;
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args([
            "run",
            "--release",
            "--quiet",
            "-p",
            "vifguard-tests",
            "--bin",
            "vifguard-bench-datapath",
        ])
        .output()
        .context("running the datapath benchmark")?;
    if !out.status.success() {
        bail!(
            "the datapath benchmark failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let table = String::from_utf8(out.stdout).context("benchmark output is UTF-8")?;
    print!("{table}");
    let machine = machine_description();
    let section = format!(
        "{BEGIN}\n## Datapath (BPF_PROG_TEST_RUN)\n\nCommand: `cargo xtask bench datapath` (as root). Machine: {machine}.\n\n{table}{END}\n"
    );
    let path = "BENCHMARKS.md";
    let old = std::fs::read_to_string(path).unwrap_or_else(|_| "# vifguard benchmarks\n\n".into());
    let new = match (old.find(BEGIN), old.find(END)) {
        (Some(b), Some(e)) if b < e => {
            format!("{}{section}{}", &old[..b], &old[e + END.len() + 1..])
        }
        _ => format!("{old}\n{section}"),
    };
    std::fs::write(path, new).context("writing BENCHMARKS.md")?;
    eprintln!("xtask: wrote {path}");
    Ok(())
}

fn machine_description() -> String {
    let read = |cmd: &str, args: &[&str]| {
        Command::new(cmd)
            .args(args)
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default()
    };
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    format!(
        "{cpu}, {} cores, kernel {}",
        read("nproc", &[]),
        read("uname", &["-r"])
    )
}
