//! The packages of `cargo xtask package`, as a user gets them: contents
//! and metadata (`dpkg-deb -c/-I`, `rpm -qlp/-qip`), the .deb installed
//! into a throw-away root and its binary and man page used from there, and
//! an upgrade from an older package version that keeps a modified
//! configuration file.
//!
//! The packages are built once for all tests (the first test to need them
//! builds them; the others wait): the `dist` binary (fat LTO, about 2
//! minutes cold on a 2-core machine, a no-op when it is up to date), then
//! the current version and an older one (`<version>~prev`) from the same
//! binary, a few seconds each. Needs root only as the rest of the suite
//! does: dpkg runs with `--force-not-root` into its own root, and its
//! maintainer scripts see DPKG_ROOT and leave this host alone.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::Instant;

const VERSION: &str = env!("CARGO_PKG_VERSION");

struct Built {
    deb: PathBuf,
    rpm: PathBuf,
    prev_deb: PathBuf,
    prev_rpm: PathBuf,
}

fn scratch(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("vifguard-package-{tag}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&d);
    fs::create_dir_all(&d).expect("create a scratch directory");
    d
}

fn prev_version() -> String {
    format!("{VERSION}~prev")
}

/// Runs `cargo xtask package --out <dir> [--version V]`; returns the .deb
/// and the .rpm it printed.
fn package(out: &Path, version: Option<&str>) -> (PathBuf, PathBuf) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_xtask"));
    cmd.arg("package").arg("--out").arg(out);
    if let Some(v) = version {
        cmd.args(["--version", v]);
    }
    let o = cmd.output().expect("run xtask");
    assert!(
        o.status.success(),
        "xtask package failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let stdout = String::from_utf8_lossy(&o.stdout);
    // The last two lines (the bootstrap may have installed something).
    let mut lines = stdout.lines().rev().map(PathBuf::from);
    let (rpm, deb) = (
        lines.next().expect("the .rpm path"),
        lines.next().expect("the .deb path"),
    );
    assert!(deb.exists() && rpm.exists(), "{stdout}");
    (deb, rpm)
}

fn built() -> &'static Built {
    static BUILT: OnceLock<Built> = OnceLock::new();
    BUILT.get_or_init(|| {
        let dir = scratch("out");
        let t = Instant::now();
        let (deb, rpm) = package(&dir.join("current"), None);
        let first = t.elapsed();
        let t = Instant::now();
        let (prev_deb, prev_rpm) = package(&dir.join("prev"), Some(&prev_version()));
        eprintln!(
            "package test: built {VERSION} in {:.1} s (dist binary included), {} in {:.1} s",
            first.as_secs_f64(),
            prev_version(),
            t.elapsed().as_secs_f64()
        );
        Built {
            deb,
            rpm,
            prev_deb,
            prev_rpm,
        }
    })
}

fn run(cmd: &mut Command) -> Output {
    let o = cmd
        .output()
        .unwrap_or_else(|e| panic!("starting {cmd:?}: {e}"));
    assert!(
        o.status.success(),
        "{cmd:?}: {}\n{}",
        o.status,
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

fn stdout(cmd: &mut Command) -> String {
    String::from_utf8_lossy(&run(cmd).stdout).into_owned()
}

/// What every package installs, as absolute paths.
const FILES: &[&str] = &[
    "/usr/sbin/vifguard",
    "/usr/sbin/vifguard-setup-vif-rules",
    "/etc/xen/scripts/vif-vifguard",
    "/etc/vifguard/vifguard.toml",
    "/usr/lib/systemd/system/vifguard-sync.service",
    "/usr/lib/systemd/system/vifguard-watch.service",
    "/usr/share/doc/vifguard/README.md",
    "/usr/share/doc/vifguard/docs/policy.md",
    "/usr/share/doc/vifguard/docs/reference.md",
    "/usr/share/doc/vifguard/examples/vifs.example.toml",
    "/usr/share/man/man8/vifguard.8.gz",
    "/usr/share/bash-completion/completions/vifguard",
    "/usr/share/fish/vendor_completions.d/vifguard.fish",
];

/// A man page per subcommand (the list `vifguard --help` gives).
const SUBCOMMANDS: &[&str] = &[
    "attach",
    "detach",
    "hotplug",
    "setup-vif-rules",
    "status",
    "sync",
    "watch",
    "policy",
    "events",
    "metrics",
];

fn field<'a>(info: &'a str, name: &str) -> Option<&'a str> {
    info.lines()
        .map(str::trim)
        .find_map(|l| l.strip_prefix(name)?.trim_start().strip_prefix(':'))
        .map(str::trim)
}

#[test]
fn deb_contents_and_metadata() {
    let b = built();
    let info = stdout(Command::new("dpkg-deb").arg("-I").arg(&b.deb));
    assert_eq!(field(&info, "Package"), Some("vifguard"), "{info}");
    assert_eq!(field(&info, "Version"), Some(VERSION), "{info}");
    assert!(field(&info, "Architecture").is_some(), "{info}");
    assert!(field(&info, "Maintainer").is_some(), "{info}");
    let size: u64 = field(&info, "Installed-Size").unwrap().parse().unwrap();
    assert!(
        size > 1000,
        "Installed-Size {size} KiB: the binary alone is more"
    );
    for script in ["postinst", "prerm", "postrm", "conffiles", "md5sums"] {
        assert!(info.contains(script), "no {script}: {info}");
    }
    let conffiles = stdout(
        Command::new("dpkg-deb")
            .arg("--info")
            .arg(&b.deb)
            .arg("conffiles"),
    );
    assert_eq!(
        conffiles,
        "/etc/vifguard/vifguard.toml\n/etc/xen/scripts/vif-vifguard\n"
    );

    let listing = stdout(Command::new("dpkg-deb").arg("-c").arg(&b.deb));
    let entry = |path: &str| {
        listing
            .lines()
            .find(|l| l.ends_with(&format!(".{path}")) || l.ends_with(&format!(".{path}/")))
            .unwrap_or_else(|| panic!("{path} not in the .deb:\n{listing}"))
    };
    for f in FILES {
        assert!(entry(f).contains("root/root"), "{}", entry(f));
    }
    assert!(entry("/usr/share/zsh/vendor-completions/_vifguard").starts_with("-rw-r--r--"));
    assert!(entry("/usr/share/doc/vifguard/copyright").starts_with("-rw-r--r--"));
    for exe in [
        "/usr/sbin/vifguard",
        "/usr/sbin/vifguard-setup-vif-rules",
        "/etc/xen/scripts/vif-vifguard",
    ] {
        assert!(entry(exe).starts_with("-rwxr-xr-x"), "{}", entry(exe));
    }
    // The policy directory: there, empty, not writable by others.
    assert!(entry("/etc/vifguard/vifs").starts_with("drwxr-xr-x"));
    assert!(!listing.contains("./etc/vifguard/vifs/0"), "{listing}");
    for sub in SUBCOMMANDS {
        entry(&format!("/usr/share/man/man8/vifguard-{sub}.8.gz"));
    }
}

#[test]
fn rpm_contents_and_metadata() {
    let b = built();
    let info = stdout(Command::new("rpm").arg("-qip").arg(&b.rpm));
    assert_eq!(field(&info, "Name"), Some("vifguard"), "{info}");
    assert_eq!(field(&info, "Version"), Some(VERSION), "{info}");
    assert_eq!(field(&info, "License"), Some("MIT OR Apache-2.0"), "{info}");
    assert!(field(&info, "Architecture").is_some(), "{info}");

    let list = stdout(Command::new("rpm").arg("-qlp").arg(&b.rpm));
    let files: Vec<&str> = list.lines().collect();
    for f in FILES
        .iter()
        .chain(&["/usr/share/zsh/site-functions/_vifguard"])
        .chain(&["/usr/share/licenses/vifguard/LICENSE-MIT"])
        .chain(&["/usr/share/licenses/vifguard/LICENSE-APACHE"])
        .chain(&["/etc/vifguard/vifs"])
    {
        assert!(files.contains(f), "{f} not in the .rpm:\n{list}");
    }
    for sub in SUBCOMMANDS {
        let page = format!("/usr/share/man/man8/vifguard-{sub}.8.gz");
        assert!(files.contains(&page.as_str()), "{page} not in the .rpm");
    }
    // Not /etc/xen or /usr/sbin themselves: they are the system's.
    assert!(!files.contains(&"/etc/xen/scripts"), "{list}");
    assert!(!files.contains(&"/usr/sbin"), "{list}");

    let config = stdout(
        Command::new("rpm")
            .args(["-qp", "--configfiles"])
            .arg(&b.rpm),
    );
    assert_eq!(
        config,
        "/etc/vifguard/vifguard.toml\n/etc/xen/scripts/vif-vifguard\n"
    );
    // noreplace for the configuration (kept on upgrade, the new one as
    // .rpmnew); 0x11 = RPMFILE_CONFIG | RPMFILE_NOREPLACE.
    let flags = stdout(
        Command::new("rpm")
            .args(["-qp", "--qf", "[%{FILENAMES} %{FILEFLAGS}\n]"])
            .arg(&b.rpm),
    );
    assert!(
        flags.lines().any(|l| l == "/etc/vifguard/vifguard.toml 17"),
        "{flags}"
    );
    let scripts = stdout(Command::new("rpm").args(["-qp", "--scripts"]).arg(&b.rpm));
    for s in ["postinstall", "preuninstall", "vg_sync", "vg_remove"] {
        assert!(scripts.contains(s), "no {s} in the scriptlets:\n{scripts}");
    }
    // XCP-ng 8.x's rpm 4.11 reads no zstd payload.
    let payload = stdout(
        Command::new("rpm")
            .args(["-qp", "--qf", "%{PAYLOADCOMPRESSOR}"])
            .arg(&b.rpm),
    );
    assert_eq!(payload, "gzip");
}

/// An empty dpkg database below `root`.
fn dpkg_root(tag: &str) -> PathBuf {
    let root = scratch(tag);
    let admin = root.join("var/lib/dpkg");
    for d in ["info", "updates", "triggers"] {
        fs::create_dir_all(admin.join(d)).expect("create the dpkg database");
    }
    fs::write(admin.join("status"), "").expect("create the dpkg database");
    fs::write(admin.join("available"), "").expect("create the dpkg database");
    root
}

/// dpkg against the throw-away `root`, its maintainer scripts run outside
/// a chroot with DPKG_ROOT set (they then change nothing on this host).
fn dpkg(root: &Path) -> Command {
    let mut cmd = Command::new("dpkg");
    cmd.arg(format!("--root={}", root.display()))
        .args([
            "--force-not-root",
            "--force-script-chrootless",
            "--log=/dev/null",
        ])
        .env("DEBIAN_FRONTEND", "noninteractive");
    cmd
}

fn installed_version(root: &Path) -> String {
    let status = stdout(
        Command::new("dpkg-query")
            .arg(format!(
                "--admindir={}",
                root.join("var/lib/dpkg").display()
            ))
            .args(["-W", "-f=${Status} ${Version}", "vifguard"]),
    );
    assert!(status.starts_with("install ok installed "), "{status}");
    status.rsplit(' ').next().unwrap_or_default().to_string()
}

#[test]
fn deb_installs_and_runs_from_a_throwaway_root() {
    let b = built();
    let root = dpkg_root("install");
    run(dpkg(&root).arg("-i").arg(&b.deb));
    assert_eq!(installed_version(&root), VERSION);
    let bin = root.join("usr/sbin/vifguard");

    let version = stdout(Command::new(&bin).arg("--version"));
    assert_eq!(version.trim(), format!("vifguard {VERSION}"));
    let help = stdout(Command::new(&bin).arg("--help"));
    for sub in SUBCOMMANDS {
        assert!(help.contains(sub), "{sub} not in --help:\n{help}");
    }
    // The installed configuration file parses (every default): `status`
    // reads it first, and with nothing pinned says so.
    let empty = root.join("no-pins");
    let status = stdout(
        Command::new(&bin)
            .arg("--config")
            .arg(root.join("etc/vifguard/vifguard.toml"))
            .arg("--bpffs")
            .arg(&empty)
            .arg("status"),
    );
    assert!(status.starts_with("no interfaces"), "{status}");
    // The XAPI wrapper reaches the installed binary.
    let svr = Command::new(root.join("usr/sbin/vifguard-setup-vif-rules"))
        .env("VIFGUARD", &bin)
        .arg("--help")
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&svr.stdout).contains("setup-vif-rules"),
        "{svr:?}"
    );

    // `man vifguard` from the installed tree.
    if Command::new("man").arg("--version").output().is_ok() {
        let page = stdout(
            Command::new("man")
                .env("MANPATH", root.join("usr/share/man"))
                .env("MANPAGER", "cat")
                .env("MANWIDTH", "100")
                .args(["8", "vifguard"]),
        );
        assert!(page.contains("vifguard-attach(8)"), "{page}");
        let sync = stdout(
            Command::new("man")
                .env("MANPATH", root.join("usr/share/man"))
                .env("MANPAGER", "cat")
                .arg("vifguard-sync"),
        );
        assert!(sync.contains("Reconcile"), "{sync}");
    }
    // The boot-time sync enabled in that root (where systemctl can).
    let wants = root.join("etc/systemd/system/multi-user.target.wants/vifguard-sync.service");
    if Command::new("systemctl").arg("--version").output().is_ok() {
        assert!(wants.is_symlink(), "vifguard-sync.service not enabled");
    }

    // Removal keeps the configuration file; purge removes it and the
    // enable link.
    run(dpkg(&root).args(["-r", "vifguard"]));
    assert!(!bin.exists());
    assert!(root.join("etc/vifguard/vifguard.toml").exists());
    run(dpkg(&root).args(["-P", "vifguard"]));
    assert!(!root.join("etc/vifguard/vifguard.toml").exists());
    assert!(!wants.is_symlink());
    let _ = fs::remove_dir_all(&root);
}

#[test]
fn upgrade_keeps_a_modified_configuration_file() {
    let b = built();
    let root = dpkg_root("upgrade");
    run(dpkg(&root).arg("-i").arg(&b.prev_deb));
    assert_eq!(installed_version(&root), prev_version());

    let conf = root.join("etc/vifguard/vifguard.toml");
    let shipped = fs::read_to_string(&conf).unwrap();
    let mine = shipped
        .replace("events_per_sec = 20", "events_per_sec = 5")
        .replace("# xenbr0 = \"locked\"", "xenbr0 = \"locked\"");
    assert_ne!(mine, shipped);
    fs::write(&conf, &mine).unwrap();

    // The upgrade: no prompt (stdin is closed: one would fail it), the
    // administrator's file kept as it is.
    run(dpkg(&root)
        .arg("-i")
        .arg(&b.deb)
        .stdin(std::process::Stdio::null()));
    assert_eq!(installed_version(&root), VERSION);
    assert_eq!(fs::read_to_string(&conf).unwrap(), mine);
    for leftover in ["vifguard.toml.dpkg-new", "vifguard.toml.dpkg-dist"] {
        assert!(
            !root.join("etc/vifguard").join(leftover).exists(),
            "{leftover}"
        );
    }
    // The modified file is what the new binary reads, and it is valid.
    let bin = root.join("usr/sbin/vifguard");
    let status = stdout(
        Command::new(&bin)
            .arg("--config")
            .arg(&conf)
            .arg("--bpffs")
            .arg(root.join("no-pins"))
            .arg("status"),
    );
    assert!(status.starts_with("no interfaces"), "{status}");
    let _ = fs::remove_dir_all(&root);
}

/// rpm against the throw-away `root`. Without scriptlets: rpm runs them
/// chrooted into the root, which has no shell (the deb test runs the
/// shared script functions).
fn rpm(root: &Path) -> Command {
    let mut cmd = Command::new("rpm");
    cmd.arg("--root")
        .arg(root)
        .args(["--nodeps", "--noscripts"]);
    cmd
}

#[test]
fn rpm_installs_and_upgrades_in_a_throwaway_root() {
    let b = built();
    let root = scratch("rpm");
    run(Command::new("rpm").arg("--root").arg(&root).arg("--initdb"));
    run(rpm(&root).arg("-i").arg(&b.prev_rpm));
    let conf = root.join("etc/vifguard/vifguard.toml");
    let mine = fs::read_to_string(&conf)
        .expect("the installed configuration")
        .replace("events_per_sec = 20", "events_per_sec = 5");
    fs::write(&conf, &mine).expect("edit the configuration");

    run(rpm(&root).arg("-U").arg(&b.rpm));
    let q = stdout(Command::new("rpm").arg("--root").arg(&root).args([
        "-q",
        "--qf",
        "%{VERSION}",
        "vifguard",
    ]));
    assert_eq!(q, VERSION);
    assert_eq!(fs::read_to_string(&conf).expect("configuration"), mine);
    let version = stdout(Command::new(root.join("usr/sbin/vifguard")).arg("--version"));
    assert_eq!(version.trim(), format!("vifguard {VERSION}"));
    let _ = fs::remove_dir_all(&root);
}
