//! Builds the eBPF object (filter-ebpf) for the `vifguard` binary to embed.
//!
//! The eBPF side needs Debian's rustc (for `-Z build-std=core` with its
//! library source) and bpf-linker; `cargo xtask bootstrap` installs both.
//! Without them (or with VIFGUARD_SKIP_EBPF=1) an empty placeholder is
//! embedded instead, so `cargo check` and `clippy` of the userspace crates
//! work anywhere; such a binary refuses to load and says why.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

const DEBIAN_RUSTC: &str = "/usr/bin/rustc";
const DEBIAN_CARGO: &str = "/usr/bin/cargo";

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("set by cargo")).join("vifguard.bpf.o");
    build_object(&out);
    write_version(&out);
}

/// Writes `object_version` beside the object: a short FNV-1a fingerprint
/// of it (stable across builds and platforms), computed here rather than
/// at every start of the command.
fn write_version(object: &Path) {
    let bytes = std::fs::read(object).expect("read the eBPF object");
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    std::fs::write(object.with_file_name("object_version"), format!("{h:016x}"))
        .expect("write the object version");
}

fn build_object(out: &Path) {
    let manifest = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let root = manifest
        .parent()
        .expect("filter-user is in the workspace")
        .to_path_buf();
    for dir in [
        "filter-ebpf/src",
        "filter-ebpf/Cargo.toml",
        "filter-common/src",
    ] {
        println!("cargo:rerun-if-changed={}", root.join(dir).display());
    }
    println!("cargo:rerun-if-env-changed=VIFGUARD_SKIP_EBPF");

    if env::var_os("VIFGUARD_SKIP_EBPF").is_some_and(|v| v == "1") {
        return placeholder(out, "VIFGUARD_SKIP_EBPF=1");
    }
    let Some(linker) = find_in_path("bpf-linker") else {
        return placeholder(out, "bpf-linker not found (run `cargo xtask bootstrap`)");
    };
    if !Path::new(DEBIAN_RUSTC).exists() || !Path::new(DEBIAN_CARGO).exists() {
        return placeholder(
            out,
            "Debian rustc/cargo missing (run `cargo xtask bootstrap`)",
        );
    }

    // A stable target directory beside the workspace's, so rebuilds are
    // incremental across profiles and clean clones build once.
    let target = env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"))
        .join("ebpf");
    let mut cmd = Command::new(DEBIAN_CARGO);
    // The outer cargo's settings must not leak into the eBPF build (clippy
    // sets a rustc wrapper, the profile sets RUSTFLAGS, ...).
    for (k, _) in env::vars_os() {
        let k = k.to_string_lossy().into_owned();
        if k.starts_with("CARGO")
            || k.starts_with("RUSTC")
            || k.starts_with("RUSTFLAGS")
            || k == "RUSTDOCFLAGS"
        {
            cmd.env_remove(&k);
        }
    }
    let linker_dir = linker.parent().map(Path::to_path_buf).unwrap_or_default();
    let path = env::join_paths(
        std::iter::once(linker_dir)
            .chain(env::split_paths(&env::var_os("PATH").unwrap_or_default())),
    )
    .expect("PATH entries are valid");
    cmd.current_dir(&root)
        .env("PATH", path)
        .env("RUSTC", DEBIAN_RUSTC)
        .env("RUSTC_BOOTSTRAP", "1")
        .env("CARGO_TARGET_DIR", &target)
        .env("RUSTFLAGS", "-C debuginfo=2 -C link-arg=--btf")
        .args([
            "build",
            "--release",
            "--target",
            "bpfel-unknown-none",
            "-Z",
            "build-std=core",
            "-p",
            "filter-ebpf",
        ]);
    let status = cmd.status().expect("run Debian's cargo for the eBPF build");
    assert!(status.success(), "building filter-ebpf failed: {status}");
    let built = target.join("bpfel-unknown-none/release/vifguard-ebpf");
    std::fs::copy(&built, out).expect("copy the eBPF object into OUT_DIR");
}

fn placeholder(out: &Path, why: &str) {
    println!("cargo:warning=vifguard is built WITHOUT its eBPF programs: {why}");
    std::fs::write(out, b"").expect("write the placeholder object");
}

fn find_in_path(name: &str) -> Option<PathBuf> {
    let home_bin = env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo/bin"));
    env::split_paths(&env::var_os("PATH").unwrap_or_default())
        .chain(home_bin)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}
