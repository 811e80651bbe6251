//! `cargo xtask fuzz`: the coverage-guided fuzz targets of `fuzz/`
//! (libFuzzer, through the libfuzzer-sys crate), each for a bounded time.
//!
//! Built with the machine's own (stable) toolchain: libFuzzer needs only
//! LLVM's sanitizer-coverage instrumentation, which stable rustc's
//! `-C passes=sancov-module` and `-C llvm-args` give; no nightly (a fresh
//! machine has none) and no cargo-fuzz install. No AddressSanitizer
//! either (it would need nightly's `-Z sanitizer`): the targets are safe
//! Rust, where a panic, an overflow (debug assertions are on), a hang or
//! runaway memory is what there is to find.
//!
//! Each target starts from its seeds in `fuzz/corpus/<target>/` (small,
//! in the repository) and writes what it discovers to
//! `fuzz/target/corpus/<target>/` (not committed); a crash lands in
//! `fuzz/artifacts/<target>/` and fails the command.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};

pub const TARGETS: &[&str] = &[
    "xenstore_client",
    "policy_sources",
    "policy_file",
    "host_config",
    "model",
];

const RUSTFLAGS: &str = "-Cpasses=sancov-module \
    -Cllvm-args=-sanitizer-coverage-level=4 \
    -Cllvm-args=-sanitizer-coverage-inline-8bit-counters \
    -Cllvm-args=-sanitizer-coverage-pc-table \
    -Cllvm-args=-sanitizer-coverage-trace-compares \
    --cfg fuzzing -Cdebug-assertions -Coverflow-checks";

/// `cargo xtask fuzz [--seconds N] [TARGET...]` (default: 60 s each, every
/// target); `--smoke` is `--seconds 5` (what `cargo xtask test` runs).
pub fn run(args: &[String]) -> Result<()> {
    let mut seconds = 60u64;
    let mut targets: Vec<String> = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--smoke" => seconds = 5,
            "--seconds" => {
                seconds = it
                    .next()
                    .context("--seconds needs a number")?
                    .parse()
                    .context("--seconds")?;
            }
            t if TARGETS.contains(&t) => targets.push(t.to_string()),
            other => bail!("cargo xtask fuzz: unknown argument {other:?} (targets: {TARGETS:?})"),
        }
    }
    if targets.is_empty() {
        targets = TARGETS.iter().map(|t| t.to_string()).collect();
    }
    fuzz(&targets, seconds)
}

pub fn fuzz(targets: &[String], seconds: u64) -> Result<()> {
    let dir = crate::repo_root()?.join("fuzz");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    // An explicit --target keeps RUSTFLAGS off the build scripts and
    // proc macros, which must not be instrumented (they would need
    // libFuzzer's symbols to link).
    let host = host_triple()?;
    crate::run(
        Command::new(&cargo)
            .current_dir(&dir)
            .env("RUSTFLAGS", RUSTFLAGS)
            // The targets parse; they never load the eBPF object.
            .env("VIFGUARD_SKIP_EBPF", "1")
            .args([
                "build",
                "--release",
                "--locked",
                "--bins",
                "--target",
                &host,
            ]),
    )
    .context("building the fuzz targets")?;
    let mut summary = Vec::new();
    for t in targets {
        let seeds = dir.join("corpus").join(t);
        let found = dir.join("target/corpus").join(t);
        let artifacts = dir.join("artifacts").join(t);
        for d in [&seeds, &found, &artifacts] {
            std::fs::create_dir_all(d).with_context(|| format!("create {}", d.display()))?;
        }
        let bin = dir.join("target").join(&host).join("release").join(t);
        let out = Command::new(&bin)
            .arg(format!("-max_total_time={seconds}"))
            .arg("-timeout=10")
            .arg("-rss_limit_mb=2048")
            .arg("-print_final_stats=1")
            .arg(format!("-artifact_prefix={}/", artifacts.display()))
            .arg(&found)
            .arg(&seeds)
            .output()
            .with_context(|| format!("running {}", bin.display()))?;
        let log = String::from_utf8_lossy(&out.stderr);
        let runs = stat(&log, "stat::number_of_executed_units:");
        let cov = log
            .lines()
            .rev()
            .find_map(|l| {
                l.split_once(" cov: ")
                    .map(|(_, r)| r.split_whitespace().next().unwrap_or("?").to_string())
            })
            .unwrap_or_else(|| "?".into());
        let line = format!(
            "fuzz {t}: {seconds} s, {runs} runs, coverage {cov}, corpus {} new",
            count(&found)
        );
        eprintln!("xtask: {line}");
        summary.push(line);
        if !out.status.success() {
            bail!(
                "fuzz target {t} failed (crash input in {}):\n{}",
                artifacts.display(),
                tail(&log, 40)
            );
        }
    }
    for l in summary {
        println!("{l}");
    }
    Ok(())
}

fn host_triple() -> Result<String> {
    let out = Command::new("rustc")
        .arg("-vV")
        .output()
        .context("running rustc -vV")?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: ").map(str::to_string))
        .context("rustc -vV printed no host")
}

fn stat(log: &str, key: &str) -> String {
    log.lines()
        .find_map(|l| l.strip_prefix(key).map(|v| v.trim().to_string()))
        .unwrap_or_else(|| "?".into())
}

fn count(dir: &Path) -> usize {
    std::fs::read_dir(dir).map_or(0, |rd| rd.count())
}

fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
