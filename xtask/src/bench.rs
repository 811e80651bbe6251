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
        Some("sync") => sync(),
        _ => bail!("usage: cargo xtask bench datapath|sync|live"),
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

const SYNC_BEGIN: &str = "<!-- bench sync: begin -->";
const SYNC_END: &str = "<!-- bench sync: end -->";

/// `vifguard sync` of 4,096 vifs: the ignored test `load::sync_of_4096`
/// (filter-user/tests/faults) in a release build, its times written to
/// BENCHMARKS.md. Not in `cargo xtask test`: setting up 4,096 veths and
/// their xenstore keys takes longer than the sync itself.
fn sync() -> Result<()> {
    crate::bootstrap::run()?;
    crate::bootstrap::require_root("the benchmark creates veths and loads eBPF programs")?;
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args([
            "test",
            "--release",
            "--quiet",
            "-p",
            "filter-user",
            "--test",
            "faults",
            "--",
            "--ignored",
            "--exact",
            "load::sync_of_4096",
            "--nocapture",
        ])
        .output()
        .context("running the sync benchmark")?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        bail!("the sync benchmark failed:\n{stdout}\n{stderr}");
    }
    let line = stdout
        .lines()
        .find(|l| l.starts_with("sync-of-"))
        .context("no sync-of- line in the benchmark output")?;
    let words: Vec<&str> = line.split_whitespace().collect();
    let (first, again) = match words.as_slice() {
        [_, "first", f, "again", a] => (*f, *a),
        _ => bail!("unexpected benchmark line {line:?}"),
    };
    println!("{line}");
    let machine = crate::report::machine_description();
    let section = format!(
        "{SYNC_BEGIN}\n## Sync of 4096 vifs\n\nCommand: `cargo xtask bench sync` (as root; the ignored test `load::sync_of_4096` in filter-user/tests/faults, release build). Machine: {machine}. 4,096 veth vifs in one namespace, XAPI keys (locked, one IPv4 address) in the test xenstored, `attach = \"tc\"`; checked afterwards: every vif filtered on both hooks with its policy.\n\n| sync | time |\n|---|---|\n| first (nothing attached: loads the programs, attaches 8,192 hooks) | {first} |\n| second (everything attached: re-resolves and re-points) | {again} |\n\nMeasured once, not asserted.\n{SYNC_END}\n"
    );
    crate::report::write_section(SYNC_BEGIN, SYNC_END, &section)
}
