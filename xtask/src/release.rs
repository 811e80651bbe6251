//! The release build: profile `dist` (the release profile with fat LTO,
//! one codegen unit and panic = abort), binaries statically linked, for
//! the host's architecture with musl libc (`<arch>-unknown-linux-musl`,
//! static by default) where rustup can add that target, else against
//! glibc (`-C target-feature=+crt-static`, the host's triple).
//!
//! Why static: a Xen host starts `vifguard` once per hotplug, and a static
//! binary skips the dynamic loader and its relocations; it also runs on a
//! dom0 whose glibc is older than the build machine's. vifguard resolves no
//! host names (metrics `--listen` takes an IP address), so no NSS module is
//! needed at run time.
//!
//! Why musl: glibc's start-up, static or not, sizes the CPU caches with
//! loops of CPUID (leaves 2 and 4: `init_cacheinfo`, `intel_check_word`),
//! and CPUID traps to the hypervisor in a virtual machine, which a dom0
//! is. On the benchmark machine a static glibc `vifguard --version` takes
//! 0.91 ms and a static musl one 0.41 ms (200 starts each, 3 rounds;
//! BENCHMARKS.md): half a millisecond of every hotplug. vifguard's own
//! work is small system calls and small allocations, where musl's slower
//! `malloc` and `memcpy` do not show.
//!
//! crt-static needs an explicit `--target` (the flag must not reach build
//! scripts and proc-macros), so the binaries land in
//! `target/<triple>/dist/`.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, Result};

/// Builds `bins` (package, binary) and returns the directory holding them.
pub fn build(bins: &[(&str, &str)]) -> Result<PathBuf> {
    let triple = release_triple()?;
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

/// The target of the release binaries: musl for the host's architecture
/// when rustup has (or can add) its standard library, else the host's own
/// (glibc) triple.
fn release_triple() -> Result<String> {
    let host = host_triple()?;
    let Some(arch) = host.strip_suffix("-unknown-linux-gnu") else {
        return Ok(host);
    };
    let musl = format!("{arch}-unknown-linux-musl");
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .is_ok_and(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .any(|l| l == musl)
        });
    if installed {
        return Ok(musl);
    }
    eprintln!("xtask: adding the {musl} target (rustup; once)");
    match Command::new("rustup")
        .args(["target", "add", &musl])
        .status()
    {
        Ok(st) if st.success() => Ok(musl),
        _ => {
            eprintln!(
                "xtask: warning: rustup could not add {musl}: building against glibc ({host}, crt-static) instead, whose start-up costs about half a millisecond more per hotplug on a virtual machine"
            );
            Ok(host)
        }
    }
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
