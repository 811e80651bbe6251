//! Project automation: `cargo xtask <command>`. Every command installs what
//! it needs first (`bootstrap`), so each works on a fresh machine.

mod bench;
mod bench_live;
mod bootstrap;
mod demo;
mod doc_links;
mod fuzz;
mod package;
mod previous;
mod release;
mod report;
mod xen_e2e;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{Context, Result, bail};

const USAGE: &str = "\
usage: cargo xtask <command>

commands:
  bootstrap        install what building and testing need (Debian packages,
                   bpf-linker); quick when everything is there
  build            bootstrap, then build the release vifguard (statically
                   linked) and print its path: the binary to install
  package [--out DIR]
                   bootstrap, then build the .deb and the .rpm of vifguard
                   (default into target/package) and print their paths
  test             bootstrap, then format check, clippy on every crate, and
                   the whole test suite (needs root: loads eBPF programs)
  demo [--json]    bootstrap, then run the demo host: simulated Xen guests
                   in network namespaces, real attacks, vifguard stopping them
  bench datapath   bootstrap, then measure the datapath per frame class with
                   BPF_PROG_TEST_RUN and write BENCHMARKS.md
  bench sync       bootstrap, then time `vifguard sync` of 4,096 vifs (release
                   build) and write it to BENCHMARKS.md
  bench live       bootstrap, then vifguard vs the legacy ebtables/arptables/
                   iptables rules on a simulated host (rate and CPU per packet
                   vs number of vifs, apply time, sync of 1,000 vifs); writes
                   BENCHMARKS.md and docs/bench-live.svg
  fuzz [--seconds N|--smoke] [TARGET...]
                   run the libFuzzer targets of fuzz/ (every parser of
                   outside data, the reference model) for N seconds each
                   (default 60; --smoke: 5, as `test` does)
  xen-e2e          boot Xen, a Debian dom0 and PV guests under QEMU and check
                   vifguard on real netback vifs (about 3 minutes warm)
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("bootstrap") => bootstrap::run(),
        Some("build") => build(),
        Some("package") => package::run(&args[1..]),
        Some("test") => test(),
        Some("demo") => demo::run(&args[1..]),
        Some("bench") if args.get(1).is_some_and(|a| a == "live") => bench_live::run(&args[2..]),
        Some("bench") => bench::run(&args[1..]),
        Some("xen-e2e") => xen_e2e::run(&args[1..]),
        Some("fuzz") => fuzz::run(&args[1..]),
        Some("-h" | "--help" | "help") => {
            print!("{USAGE}");
            Ok(())
        }
        _ => {
            eprint!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The release binary for a host: its path on stdout.
fn build() -> Result<()> {
    bootstrap::run()?;
    let dir = release::build(&[("filter-user", "vifguard")])?;
    println!("{}", dir.join("vifguard").display());
    Ok(())
}

/// The workspace root (xtask's parent directory).
pub fn repo_root() -> Result<PathBuf> {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .context("xtask has no parent directory")
}

/// The project's whole check, as CI runs it.
fn test() -> Result<()> {
    bootstrap::run()?;
    bootstrap::require_root("the tests load eBPF programs and create network namespaces")?;
    cargo(&["fmt", "--all", "--", "--check"])
        .context("cargo fmt --check: run `cargo fmt --all`")?;
    cargo(&[
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ])?;
    let previous = previous::build()?;
    let cargo_bin = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    run(Command::new(cargo_bin)
        .args(["test", "--workspace", "--no-fail-fast"])
        .env("VIFGUARD_PREVIOUS_BIN", &previous))?;
    // A few seconds per fuzz target: the seeds and what mutations of them
    // reach still parse without a panic (`cargo xtask fuzz` runs longer).
    let targets: Vec<String> = fuzz::TARGETS.iter().map(|t| t.to_string()).collect();
    fuzz::fuzz(&targets, 5)
}

pub fn cargo(args: &[&str]) -> Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    run(Command::new(cargo).args(args))
}

pub fn run(cmd: &mut Command) -> Result<()> {
    eprintln!("xtask: running {cmd:?}");
    let status = cmd.status().with_context(|| format!("starting {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed: {status}");
    }
    Ok(())
}
