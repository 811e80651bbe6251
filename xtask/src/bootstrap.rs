//! Installs what building the eBPF programs and running the tests need, on a
//! fresh Debian 12 machine of this project's kind. Idempotent: checks first,
//! installs only what is missing. The recipe was verified by hand on such a
//! machine: Debian's rustc-web 1.96 (LLVM 22) with its library source for
//! `-Z build-std=core`, and bpf-linker 0.13.0 built against the same LLVM 22
//! (the linker's LLVM must be the major version the rustc emits bitcode for).

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Result, bail};

/// Debian packages: the compiler and library source for the eBPF build
/// (`-Z build-std=core`), the LLVM bpf-linker links against, and the tools
/// the tests and the demo drive, and the packagers.
const PACKAGES: &[&str] = &[
    "rustc-web",
    "cargo-web",
    "rust-web-src",
    "llvm-22-dev",
    "libpolly-22-dev",
    "libzstd-dev",
    "zlib1g-dev",
    "bpftool",
    "iproute2",
    "iputils-ping",
    "xenstore-utils",
    "dnsmasq-base",
    "busybox",
    "ebtables",
    "arptables",
    "iptables",
    // nft: the nftables setups of `cargo xtask bench live` (bridge-family
    // sets, netdev-family per-vif chains).
    "nftables",
    // ovsdb-server, ovs-vswitchd and ovs-vsctl: the setup-vif-rules tests
    // start their own (userspace datapath) to check the ports vifguard adds.
    "openvswitch-switch",
    // keepalived: the VRRP live test and demo row run two real VRRP
    // routers (use_vmac) in guests, failing over through vifguard.
    "keepalived",
    // rpmbuild and rpm: `cargo xtask package` builds the .rpm with them
    // (dpkg-deb, for the .deb, comes with dpkg), and its tests read both.
    "rpm",
    // g++: libfuzzer-sys compiles libFuzzer (C++) for `cargo xtask fuzz`
    // and the fuzz smoke of `cargo xtask test` (there on a fresh machine
    // of this kind; named so that stays true).
    "g++",
];

const BPF_LINKER_VERSION: &str = "0.13.0";
const LLVM_PREFIX: &str = "/usr/lib/llvm-22";

pub fn run() -> Result<()> {
    install_missing(PACKAGES)?;
    if bpf_linker_version().as_deref() != Some(BPF_LINKER_VERSION) {
        eprintln!("xtask: installing bpf-linker {BPF_LINKER_VERSION} (about a minute)");
        let path = format!(
            "{LLVM_PREFIX}/bin:{}",
            std::env::var("PATH").unwrap_or_default()
        );
        crate::run(
            Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
                .env("LLVM_PREFIX", LLVM_PREFIX)
                .env("LLVM_SYS_221_PREFIX", LLVM_PREFIX)
                .env("PATH", path)
                .args([
                    "install",
                    "bpf-linker",
                    "--version",
                    BPF_LINKER_VERSION,
                    "--no-default-features",
                    "--features",
                    "llvm-22",
                    "--locked",
                ]),
        )?;
    }
    Ok(())
}

/// Installs those of `packages` that are not installed yet (Debian names).
pub fn install_missing(packages: &[&str]) -> Result<()> {
    let missing: Vec<&str> = packages.iter().copied().filter(|p| !installed(p)).collect();
    if missing.is_empty() {
        return Ok(());
    }
    require_root("installing Debian packages")?;
    eprintln!("xtask: installing {}", missing.join(" "));
    crate::run(Command::new("apt-get").args(["update", "-q"]))?;
    crate::run(
        Command::new("apt-get")
            .env("DEBIAN_FRONTEND", "noninteractive")
            .args(["install", "-y", "-q", "--no-install-recommends"])
            .args(&missing),
    )
}

fn installed(package: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", package])
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("install ok installed"))
}

fn bpf_linker() -> PathBuf {
    std::env::var_os("HOME")
        .map(|h| PathBuf::from(h).join(".cargo/bin/bpf-linker"))
        .filter(|p| p.exists())
        .unwrap_or_else(|| PathBuf::from("bpf-linker"))
}

fn bpf_linker_version() -> Option<String> {
    let out = Command::new(bpf_linker()).arg("--version").output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.split_whitespace().nth(1).map(str::to_string)
}

pub fn require_root(why: &str) -> Result<()> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        bail!("root is needed: {why}");
    }
    Ok(())
}
