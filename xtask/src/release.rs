//! The release build: profile `dist` (the release profile with fat LTO,
//! one codegen unit and panic = abort), binaries statically linked against
//! glibc (`-C target-feature=+crt-static`), for the host's target triple.
//!
//! Why static: a Xen host starts `vifguard` once per hotplug, and a static
//! binary skips the dynamic loader and its relocations (about 0.25 ms of a
//! 2 ms hotplug on the benchmark machine, BENCHMARKS.md); it also runs on a
//! dom0 whose glibc is older than the build machine's. vifguard resolves no
//! host names (metrics `--listen` takes an IP address), so no NSS module is
//! needed at run time.
//!
//! crt-static needs an explicit `--target` (the flag must not reach build
//! scripts and proc-macros), so the binaries land in
//! `target/<triple>/dist/`.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, Result};

/// Builds `bins` (package, binary) and returns the directory holding them.
pub fn build(bins: &[(&str, &str)]) -> Result<PathBuf> {
    let triple = host_triple()?;
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "--profile", "dist", "--target", &triple]);
    for (package, bin) in bins {
        cmd.args(["-p", package, "--bin", bin]);
    }
    // RUSTFLAGS would replace the target's flags; the target's own are set.
    let var = format!(
        "CARGO_TARGET_{}_RUSTFLAGS",
        triple.to_uppercase().replace(['-', '.'], "_")
    );
    cmd.env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env(var, "-C target-feature=+crt-static");
    crate::run(&mut cmd)?;
    Ok(target_dir()?.join(triple).join("dist"))
}

/// The workspace's target directory.
pub fn target_dir() -> Result<PathBuf> {
    if let Some(d) = std::env::var_os("CARGO_TARGET_DIR") {
        return Ok(PathBuf::from(d));
    }
    Ok(crate::repo_root()?.join("target"))
}

/// The triple rustc builds for by default (`host:` of `rustc -vV`).
fn host_triple() -> Result<String> {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let out = Command::new(&rustc)
        .arg("-vV")
        .output()
        .with_context(|| format!("running {rustc} -vV"))?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: "))
        .map(|t| t.trim().to_string())
        .with_context(|| format!("{rustc} -vV printed no host triple"))
}
