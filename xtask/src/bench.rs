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
            "testbed",
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
    let machine = crate::report::machine_description();
    let section = format!(
        "{BEGIN}\n## Datapath (BPF_PROG_TEST_RUN)\n\nCommand: `cargo xtask bench datapath` (as root). Machine: {machine}.\n\n{table}{END}\n"
    );
    crate::report::write_section(BEGIN, END, &section)
}
