//! `cargo xtask xen-e2e`: vifguard on a real Xen host. Boots Xen 4.17, a
//! Debian dom0 and three PV guests under QEMU (software emulation), all
//! from Debian packages, with vifguard plugged into xl's vif hotplug path;
//! the checks run in dom0 (`xen-e2e/dom0-test.sh`) and report on the serial
//! console, which this command reads back ([`CHECKS`] lists them):
//! attachment by hotplug, IPv4/MAC/ARP and IPv6/ND/RA spoofing from a
//! guest (crafted ND frames come from `vifguard-e2e-send`, built here from
//! the `tests` crate and run inside the guest), a guest whose policy comes
//! from XAPI's `/xapi/<uuid>/private/vif/<devid>` keys instead of its xl
//! `ip=`, cleanup on `xl destroy`, restart with a new domid, and `vifguard
//! sync` after a simulated reboot, and the .deb's maintainer scripts (sync
//! on upgrade, detach on removal). vifguard comes from its .deb (`cargo
//! xtask package`), unpacked into dom0 as dpkg lays it out. "Attached" is what `vifguard status`
//! reports (both TC hooks), so the checks hold for any attach method.
//!
//! Downloads (`apt-get download`) and their unpacked tree are cached in
//! `$VIFGUARD_CACHE` (default `.cache/xen-e2e` in the repository); the
//! images are rebuilt on every run (about 12 s) so they always hold the
//! vifguard built now. `VIFGUARD_E2E_KERNEL` names the Debian package of
//! the dom0 (and guest) kernel ([`DEFAULT_KERNEL`] unless set); each kernel
//! is unpacked into a directory of its own. `VIFGUARD_E2E_BREAK=noattach`
//! makes dom0's vifguard attach nothing, to see the checks fail.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// Host tools: QEMU, GRUB's ISO builder, and what mkimage.sh runs.
const HOST_PACKAGES: &[&str] = &[
    "qemu-system-x86",
    "grub-pc-bin",
    "grub-common",
    "xorriso",
    "mtools",
    "cpio",
    "kmod",
    "xz-utils",
    "zstd",
    "file",
];

/// The dom0 kernel (the guests boot it too) unless `VIFGUARD_E2E_KERNEL`
/// names another: a meta package such as this one or `linux-image-amd64`
/// (bookworm's default 6.1), or a versioned image package such as
/// `linux-image-6.1.0-56-amd64`. vifguard attaches with classic tc by
/// default (clsact + cls_bpf); only `attach = "tcx"` needs Linux 6.6.
const DEFAULT_KERNEL: &str = "linux-image-6.12-amd64";

/// Xen, its toolstack and libraries, unpacked into the dom0 image; and a
/// static busybox (downloaded, not installed: it conflicts with the
/// `busybox` package the other commands install).
const GUEST_PACKAGES: &[&str] = &[
    "xen-hypervisor-4.17-amd64",
    "xen-utils-4.17",
    "xen-utils-common",
    "xenstore-utils",
    "libxencall1",
    "libxenevtchn1",
    "libxenforeignmemory1",
    "libxengnttab1",
    "libxenmisc4.17",
    "libxenstore4",
    "libxentoollog1",
    "libxenhypfs1",
    "libxendevicemodel1",
    "libxentoolcore1",
    "libyajl2",
];

/// Every check dom0-test.sh reports; each must PASS.
const CHECKS: &[&str] = &[
    "boot",
    "guests-up",
    "hotplug-attached",
    "legit-ping",
    "ipv4-spoof",
    "mac-spoof",
    "arp-poison",
    "ipv6-legit-ping",
    "ipv6-spoof",
    "nd-spoof",
    "ra-guard",
    "watch-isolated",
    "xapi-policy",
    "xapi-allowed",
    "xapi-xl-ip-spoof",
    "xapi-live-update",
    "destroy-cleanup",
    "restart-new-domid",
    "restart-ipv4-spoof",
    "save-restore",
    "sync-attached",
    "sync-ipv4-spoof",
    "sync-mac-spoof",
    "sync-legit-ping",
    "sync-after-wipe",
    "package-postinst-sync",
    "package-prerm-detach",
];

const MARKER: &str = "VIFGUARD-E2E";
const CPU: &str = "qemu64";
const DEFAULT_TIMEOUT_SECS: u64 = 900;

pub fn run(args: &[String]) -> Result<()> {
    if let Some(a) = args.first() {
        bail!(
            "xen-e2e takes no arguments (got {a}); environment: VIFGUARD_CACHE, VIFGUARD_E2E_KERNEL, VIFGUARD_E2E_TIMEOUT, VIFGUARD_E2E_BREAK"
        );
    }
    let started = Instant::now();
    crate::bootstrap::run()?;
    crate::bootstrap::require_root("installing packages and building images as root")?;
    let repo = crate::repo_root()?;
    let cache = std::env::var_os("VIFGUARD_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo.join(".cache/xen-e2e"));
    crate::bootstrap::install_missing(HOST_PACKAGES)?;
    let meta = std::env::var("VIFGUARD_E2E_KERNEL")
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| DEFAULT_KERNEL.to_string());
    let kernel = kernel_package(&meta)?;
    eprintln!("xtask: dom0 kernel {kernel} (from {meta})");
    let (root, kernel_root) = fetch_and_unpack(&cache, &kernel)?;
    let busybox = fetch_busybox(&cache)?;
    // vifguard as users install it: the .deb of `cargo xtask package`.
    let deb = crate::package::build(&cache.join("package"), env!("CARGO_PKG_VERSION"))?.deb;
    let sender =
        crate::release::build(&[("testbed", "vifguard-e2e-send")])?.join("vifguard-e2e-send");
    let out = cache.join("build");
    crate::run(
        Command::new("bash")
            .arg(repo.join("xen-e2e/mkimage.sh"))
            .env("ROOT", &root)
            .env("KROOT", &kernel_root)
            .env("BUSYBOX", &busybox)
            .env("DEB", &deb)
            .env("SENDER", &sender)
            .env("SRC", repo.join("xen-e2e"))
            .env("OUT", &out),
    )?;
    eprintln!(
        "xtask: image ready after {} s; booting Xen under QEMU (about 3 minutes)",
        started.elapsed().as_secs()
    );
    let log = out.join("serial.log");
    let timeout = std::env::var("VIFGUARD_E2E_TIMEOUT")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(DEFAULT_TIMEOUT_SECS);
    let boot = Instant::now();
    let timed_out = boot_qemu(&out.join("xen.iso"), &log, Duration::from_secs(timeout))?;
    let text = fs::read(&log).with_context(|| format!("reading {}", log.display()))?;
    let text = String::from_utf8_lossy(&text);
    let verdict = judge(&text, timed_out);
    // Other work on the host slows TCG down a lot: say how busy it was.
    let load = crate::report::load_average(1).unwrap_or_else(|| "?".into());
    eprintln!(
        "xtask: QEMU ran {} s, whole run {} s (host load average {load} over the last 5 minutes); serial log {}",
        boot.elapsed().as_secs(),
        started.elapsed().as_secs(),
        log.display()
    );
    verdict
}

/// Whether `p` names a kernel image by its version (`linux-image-<digit>...`):
/// the packages that hold a kernel, and meta packages of one series such
/// as `linux-image-6.12-amd64`; not `linux-image-amd64`.
fn versioned_image(p: &str) -> bool {
    p.strip_prefix("linux-image-")
        .and_then(|v| v.chars().next())
        .is_some_and(|c| c.is_ascii_digit())
}

/// The versioned kernel package a meta package such as
/// `linux-image-6.12-amd64` points at, or `package` itself when it is the
/// versioned one (it depends on no other image).
fn kernel_package(package: &str) -> Result<String> {
    let out = Command::new("apt-cache")
        .args(["depends", package])
        .output()
        .context("running apt-cache")?;
    if !out.status.success() {
        bail!(
            "apt-cache depends {package}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let dep = text
        .lines()
        .filter_map(|l| l.trim().strip_prefix("Depends: "))
        .find(|p| versioned_image(p));
    match dep {
        Some(p) => Ok(p.to_string()),
        None if versioned_image(package) => Ok(package.to_string()),
        None => bail!("apt-cache depends {package}: no linux-image dependency"),
    }
}

/// Downloads (once) `packages` into `dir` with `apt-get download`; returns
/// the .deb files.
fn download(dir: &Path, packages: &[String]) -> Result<Vec<PathBuf>> {
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let deb_of = |p: &str| -> Result<Option<PathBuf>> {
        let prefix = format!("{p}_");
        for e in fs::read_dir(dir)? {
            let path = e?.path();
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
            if name.is_some_and(|n| n.starts_with(&prefix) && n.ends_with(".deb")) {
                return Ok(Some(path));
            }
        }
        Ok(None)
    };
    let mut missing = Vec::new();
    for p in packages {
        if deb_of(p)?.is_none() {
            missing.push(p.as_str());
        }
    }
    if !missing.is_empty() {
        eprintln!("xtask: downloading {}", missing.join(" "));
        let get = || {
            Command::new("apt-get")
                .arg("download")
                .args(&missing)
                .current_dir(dir)
                .status()
        };
        if !get().is_ok_and(|s| s.success()) {
            crate::run(Command::new("apt-get").args(["update", "-q"]))?;
            crate::run(
                Command::new("apt-get")
                    .arg("download")
                    .args(&missing)
                    .current_dir(dir),
            )?;
        }
    }
    packages
        .iter()
        .map(|p| deb_of(p)?.with_context(|| format!("{p}: no .deb in {}", dir.display())))
        .collect()
}

/// The Xen packages, unpacked into `cache/root`, and the kernel package,
/// unpacked into `cache/kernels/<package>` (one directory per kernel, so
/// switching kernels neither mixes their modules nor unpacks Xen again).
fn fetch_and_unpack(cache: &Path, kernel: &str) -> Result<(PathBuf, PathBuf)> {
    let debs_dir = cache.join("debs");
    let xen: Vec<String> = GUEST_PACKAGES.iter().map(|s| s.to_string()).collect();
    let root = unpack(&download(&debs_dir, &xen)?, &cache.join("root"))?;
    let debs = download(&debs_dir, &[kernel.to_string()])?;
    let kernel_root = unpack(&debs, &cache.join("kernels").join(kernel))?;
    Ok((root, kernel_root))
}

/// Unpacks `debs` into `dir` with `dpkg-deb -x`, from scratch unless the
/// stamp next to it (`<dir>.stamp`) lists exactly these .deb files.
fn unpack(debs: &[PathBuf], dir: &Path) -> Result<PathBuf> {
    let mut stamp = dir.as_os_str().to_owned();
    stamp.push(".stamp");
    let stamp = PathBuf::from(stamp);
    let want: String = debs
        .iter()
        .filter_map(|d| d.file_name().map(|n| format!("{}\n", n.to_string_lossy())))
        .collect();
    if fs::read_to_string(&stamp).ok().as_deref() == Some(want.as_str()) && dir.is_dir() {
        return Ok(dir.to_path_buf());
    }
    if dir.exists() {
        fs::remove_dir_all(dir).with_context(|| format!("removing {}", dir.display()))?;
    }
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    eprintln!(
        "xtask: unpacking {} packages into {}",
        debs.len(),
        dir.display()
    );
    for d in debs {
        crate::run(Command::new("dpkg-deb").arg("-x").arg(d).arg(dir))?;
    }
    fs::write(&stamp, want).with_context(|| format!("writing {}", stamp.display()))?;
    Ok(dir.to_path_buf())
}

fn fetch_busybox(cache: &Path) -> Result<PathBuf> {
    let dir = cache.join("busybox");
    let bin = dir.join("bin/busybox");
    if bin.exists() {
        return Ok(bin);
    }
    let debs = download(&cache.join("debs"), &["busybox-static".to_string()])?;
    for d in &debs {
        crate::run(Command::new("dpkg-deb").arg("-x").arg(d).arg(&dir))?;
    }
    Ok(bin)
}

/// Boots the ISO; returns whether the timeout killed QEMU.
fn boot_qemu(iso: &Path, log: &Path, timeout: Duration) -> Result<bool> {
    if log.exists() {
        fs::remove_file(log)?;
    }
    let mut cmd = Command::new("qemu-system-x86_64");
    // With `-cpu max`, programs in dom0 and the guests crashed now and then
    // (a busybox segfault, a malloc abort in bash, hangs): QEMU 7.2 brought
    // a new SSE/AVX decoder for TCG, and glibc picks AVX2/SSE4 routines
    // when the CPU has them. The baseline CPU keeps glibc on plain SSE2.
    cmd.args(["-accel", "tcg,thread=multi", "-cpu", CPU, "-m", "1536"])
        .args(["-smp", "2", "-display", "none", "-monitor", "none"])
        .args(["-no-reboot", "-cdrom"])
        .arg(iso)
        .arg("-serial")
        .arg(format!("file:{}", log.display()));
    eprintln!("xtask: running {cmd:?}");
    let mut child = cmd.spawn().context("starting qemu-system-x86_64")?;
    let start = Instant::now();
    let mut seen = 0;
    loop {
        seen = echo_markers(log, seen);
        if let Some(status) = child.try_wait()? {
            echo_markers(log, seen);
            if !status.success() {
                eprintln!("xtask: QEMU exited with {status}");
            }
            return Ok(false);
        }
        if start.elapsed() > timeout {
            eprintln!(
                "xtask: timeout after {} s: stopping QEMU",
                timeout.as_secs()
            );
            child.kill()?;
            child.wait()?;
            return Ok(true);
        }
        std::thread::sleep(Duration::from_secs(2));
    }
}

/// Whether a serial console line is worth showing.
fn relevant(line: &str) -> bool {
    [
        MARKER,
        "dom0:",
        "GUEST ",
        "vifguard:",
        "libxl: error",
        "Kernel panic",
        "(XEN) Panic",
    ]
    .iter()
    .any(|m| line.contains(m))
}

/// Prints the relevant lines of the log past byte `from` as they arrive;
/// returns how far it has read (whole lines only).
fn echo_markers(log: &Path, from: usize) -> usize {
    let Ok(bytes) = fs::read(log) else {
        return from;
    };
    let Some(end) = bytes.iter().rposition(|b| *b == b'\n').map(|i| i + 1) else {
        return from;
    };
    if end <= from {
        return from;
    }
    for line in String::from_utf8_lossy(&bytes[from..end]).lines() {
        if relevant(line) {
            eprintln!("  | {}", line.trim_end());
        }
    }
    end
}

fn judge(text: &str, timed_out: bool) -> Result<()> {
    let mut failed = Vec::new();
    let mut passed = Vec::new();
    let mut done = false;
    for line in text.lines() {
        let Some(rest) = line.find(MARKER).map(|i| line[i + MARKER.len()..].trim()) else {
            continue;
        };
        let mut words = rest.splitn(2, ' ');
        match words.next() {
            Some("PASS") => passed.push(words.next().unwrap_or("").trim().to_string()),
            Some("FAIL") => failed.push(words.next().unwrap_or("").trim().to_string()),
            Some("DONE") => done = true,
            _ => {}
        }
    }
    let missing: Vec<&str> = CHECKS
        .iter()
        .copied()
        .filter(|c| !passed.iter().any(|p| p == c))
        .collect();
    eprintln!(
        "xtask: xen-e2e: {} of {} checks passed",
        CHECKS.len() - missing.len(),
        CHECKS.len()
    );
    for f in &failed {
        eprintln!("xtask: FAIL {f}");
    }
    let mut problems = Vec::new();
    if timed_out {
        problems.push("timeout".to_string());
    }
    if !done {
        problems.push("dom0 never reported DONE".to_string());
    }
    if !failed.is_empty() {
        problems.push(format!("{} check(s) failed", failed.len()));
    }
    if !missing.is_empty() {
        problems.push(format!("no PASS for: {}", missing.join(", ")));
    }
    if problems.is_empty() {
        eprintln!("xtask: xen-e2e passed: {}", CHECKS.join(", "));
        Ok(())
    } else {
        bail!("xen-e2e failed: {}", problems.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full_log() -> String {
        let mut s = String::from("(XEN) noise\n");
        for c in CHECKS {
            s.push_str(&format!("VIFGUARD-E2E PASS {c}\n"));
        }
        s.push_str("VIFGUARD-E2E DONE\n");
        s
    }

    #[test]
    fn versioned_kernel_packages() {
        assert!(versioned_image("linux-image-6.1.0-56-amd64"));
        assert!(versioned_image("linux-image-6.12.117+deb12-amd64"));
        assert!(versioned_image("linux-image-6.12-amd64"));
        assert!(!versioned_image("linux-image-amd64"));
        assert!(!versioned_image("linux-image-cloud-amd64"));
        assert!(!versioned_image("linux-base"));
    }

    #[test]
    fn every_check_passing_passes() {
        assert!(judge(&full_log(), false).is_ok());
    }

    #[test]
    fn a_fail_line_fails() {
        let log = full_log() + "VIFGUARD-E2E FAIL ipv4-spoof got through\n";
        assert!(judge(&log, false).is_err());
    }

    #[test]
    fn a_missing_check_fails() {
        let log = full_log().replace("VIFGUARD-E2E PASS arp-poison\n", "");
        let err = judge(&log, false).expect_err("missing arp-poison must fail");
        assert!(err.to_string().contains("arp-poison"), "{err}");
    }

    #[test]
    fn no_done_or_timeout_fails() {
        assert!(judge(&full_log().replace("VIFGUARD-E2E DONE\n", ""), false).is_err());
        assert!(judge(&full_log(), true).is_err());
    }
}
