//! `cargo xtask package`: the .deb (Debian/Ubuntu dom0s) and the .rpm
//! (CentOS/Alma-based dom0s such as XCP-ng and XenServer) of vifguard,
//! built from the static `dist` binary ([`crate::release`]) with Debian's
//! own tools: `dpkg-deb`, and `rpmbuild` from the `rpm` package (the
//! bootstrap installs it).
//!
//! Both hold the same files (only where the distributions differ, such as
//! zsh's completion directory, do the paths differ):
//! - `/usr/sbin/vifguard`, and XAPI's `/usr/sbin/vifguard-setup-vif-rules`;
//! - the xl hook `/etc/xen/scripts/vif-vifguard`;
//! - the systemd units in `/usr/lib/systemd/system` (the unit directory of
//!   both families; Debian 12's `/lib` is a link to `/usr/lib`);
//! - `/etc/vifguard/vifguard.toml`, a configuration file kept on upgrade
//!   (deb conffile, rpm `%config(noreplace)`): the shipped example, which
//!   sets every key to its default and documents it (a unit test of
//!   filter-user's config checks that it parses to the defaults);
//! - `/etc/vifguard/vifs/`, the host policy directory, empty: the example
//!   policy file is documentation (`/usr/share/doc/vifguard/examples/`),
//!   since any file in the directory applies to a VIF;
//! - man pages for the command and each subcommand and shell completions,
//!   generated from the clap definition by `docgen`;
//! - the licence texts, and the README the units' `Documentation=` names,
//!   with the docs/ pages it links to.
//!
//! The maintainer scripts (`filter-user/packaging/maintscript.sh`) run
//! `vifguard sync` after an install or upgrade on a host with vifs, and
//! stop the services and detach every interface on removal.
//!
//! `--version V` packages the same build under another version (the
//! upgrade test builds an older one); default: the workspace version.

use std::fmt::Write as _;
use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

const NAME: &str = "vifguard";
const SUMMARY: &str = "eBPF anti-spoofing filter for Xen vifs";
const DESCRIPTION: &str = "\
vifguard checks every frame a Xen guest sends or receives on its vifs
against the guest's policy (MAC, IPv4 and IPv6 addresses, ARP, ND, DHCP,
router advertisements, isolation) with eBPF programs attached to each vif,
replacing per-vif iptables/ebtables/arptables rules. Policies come from
xenstore (xl, XAPI, OpenStack keys) and host policy files.
Needs Linux 5.8 or newer in dom0 (the 4.19 dom0 kernel of XCP-ng 8.x and
XenServer 8 cannot load the programs).";
/// No public address yet; `.invalid` says so rather than invent one.
const MAINTAINER: &str = "vifguard maintainers <maintainers@vifguard.invalid>";
/// The workspace's `license` field, which xtask inherits.
const LICENSE: &str = env!("CARGO_PKG_LICENSE");

const MAINT_FUNCTIONS: &str = include_str!("../../filter-user/packaging/maintscript.sh");

/// Configuration files: kept when modified (deb conffiles; rpm
/// `%config(noreplace)` for the configuration, `%config` for the hook,
/// which an upgrade replaces, keeping a modified one as `.rpmsave`).
const CONFIG: &str = "etc/vifguard/vifguard.toml";
const HOOK: &str = "etc/xen/scripts/vif-vifguard";

#[derive(Clone, Copy, PartialEq, Eq)]
enum Format {
    Deb,
    Rpm,
}

/// What `cargo xtask package` made.
pub struct Packages {
    pub deb: PathBuf,
    pub rpm: PathBuf,
}

pub fn run(args: &[String]) -> Result<()> {
    let mut out = None;
    let mut version = env!("CARGO_PKG_VERSION").to_string();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--out" => out = Some(PathBuf::from(it.next().context("--out needs a directory")?)),
            "--version" => version = it.next().context("--version needs a version")?.clone(),
            _ => bail!("package takes --out DIR and --version VERSION (got {a})"),
        }
    }
    check_version(&version)?;
    let out = match out {
        Some(o) => o,
        None => crate::release::target_dir()?.join("package"),
    };
    crate::bootstrap::run()?;
    let p = build(&out, &version)?;
    println!("{}", p.deb.display());
    println!("{}", p.rpm.display());
    Ok(())
}

/// Versions both formats accept the same way: digits, letters and `.+~`
/// (a `-` would start the Debian revision and is not allowed in an rpm
/// Version; `~` sorts before the release in both).
fn check_version(v: &str) -> Result<()> {
    let ok = v.starts_with(|c: char| c.is_ascii_digit())
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '+' | '~'));
    if !ok {
        bail!("package version {v:?}: want a digit first, then only letters, digits and .+~");
    }
    Ok(())
}

/// Builds the binary and the generated documentation, then both packages
/// into `out`.
pub fn build(out: &Path, version: &str) -> Result<Packages> {
    let started = std::time::Instant::now();
    let repo = crate::repo_root()?;
    let binary = crate::release::build(&[("filter-user", NAME)])?.join(NAME);
    fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let work = out.join(format!(".work-{version}"));
    remove(&work)?;
    let generated = work.join("generated");
    crate::run(
        Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .stdout(std::io::stderr())
            .args(["run", "--quiet", "-p", "docgen", "--"])
            .arg(&generated),
    )?;
    let arch = Arch::host()?;
    let deb = deb(&repo, &binary, &generated, &work, out, version, &arch)?;
    let rpm = rpm(&repo, &binary, &generated, &work, out, version, &arch)?;
    remove(&work)?;
    eprintln!(
        "xtask: packages of vifguard {version} in {:.1} s: {}, {}",
        started.elapsed().as_secs_f64(),
        deb.display(),
        rpm.display()
    );
    Ok(Packages { deb, rpm })
}

fn remove(dir: &Path) -> Result<()> {
    match fs::remove_dir_all(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("removing {}", dir.display()))
        }
        _ => Ok(()),
    }
}

/// The architecture names of the host's target in both formats.
struct Arch {
    deb: &'static str,
    rpm: &'static str,
}

impl Arch {
    fn host() -> Result<Arch> {
        match std::env::consts::ARCH {
            "x86_64" => Ok(Arch {
                deb: "amd64",
                rpm: "x86_64",
            }),
            "aarch64" => Ok(Arch {
                deb: "arm64",
                rpm: "aarch64",
            }),
            a => bail!("packaging for {a} is not set up (x86_64 and aarch64 are)"),
        }
    }
}

/// Copies `src` to `tree/dest` with `mode`.
fn put(tree: &Path, src: &Path, dest: &str, mode: u32) -> Result<()> {
    let to = tree.join(dest);
    if let Some(dir) = to.parent() {
        mkdir(dir)?;
    }
    fs::copy(src, &to).with_context(|| format!("copying {} to {}", src.display(), to.display()))?;
    fs::set_permissions(&to, fs::Permissions::from_mode(mode))
        .with_context(|| format!("chmod {}", to.display()))
}

fn write(tree: &Path, dest: &str, text: &str, mode: u32) -> Result<()> {
    let to = tree.join(dest);
    if let Some(dir) = to.parent() {
        mkdir(dir)?;
    }
    fs::write(&to, text).with_context(|| format!("writing {}", to.display()))?;
    fs::set_permissions(&to, fs::Permissions::from_mode(mode))
        .with_context(|| format!("chmod {}", to.display()))
}

/// Creates `dir` and its parents, each 0755 whatever the umask (the
/// packages record the modes).
fn mkdir(dir: &Path) -> Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent() {
        mkdir(parent)?;
    }
    fs::create_dir(dir).with_context(|| format!("creating {}", dir.display()))?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o755))
        .with_context(|| format!("chmod {}", dir.display()))
}

/// Lays out the installed files of `format` below `tree`.
fn stage(repo: &Path, binary: &Path, generated: &Path, tree: &Path, format: Format) -> Result<()> {
    let fu = repo.join("filter-user");
    let doc = "usr/share/doc/vifguard";
    put(tree, binary, "usr/sbin/vifguard", 0o755)?;
    put(
        tree,
        &fu.join("scripts/vifguard-setup-vif-rules"),
        "usr/sbin/vifguard-setup-vif-rules",
        0o755,
    )?;
    put(tree, &fu.join("scripts/vif-vifguard"), HOOK, 0o755)?;
    for unit in ["vifguard-sync.service", "vifguard-watch.service"] {
        put(
            tree,
            &fu.join("systemd").join(unit),
            &format!("usr/lib/systemd/system/{unit}"),
            0o644,
        )?;
    }
    put(tree, &fu.join("vifguard.toml.example"), CONFIG, 0o644)?;
    // root-owned and not writable by others, as vifguard requires of it.
    mkdir(&tree.join("etc/vifguard/vifs"))?;
    for example in ["vifs.example.toml", "vifguard.toml.example"] {
        put(
            tree,
            &fu.join(example),
            &format!("{doc}/examples/{example}"),
            0o644,
        )?;
    }
    put(
        tree,
        &repo.join("README.md"),
        &format!("{doc}/README.md"),
        0o644,
    )?;
    // The README links into docs/: ship it beside it, so its links work
    // where the units' `Documentation=` sends an operator.
    let docs = repo.join("docs");
    let mut pages: Vec<_> = std::fs::read_dir(&docs)
        .with_context(|| format!("list {}", docs.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "md" || x == "svg"))
        .collect();
    pages.sort();
    for page in pages {
        let Some(name) = page.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        put(tree, &page, &format!("{doc}/docs/{name}"), 0o644)?;
    }
    match format {
        Format::Deb => write(tree, &format!("{doc}/copyright"), &copyright(repo)?, 0o644)?,
        Format::Rpm => {
            for l in ["LICENSE-MIT", "LICENSE-APACHE"] {
                put(
                    tree,
                    &repo.join(l),
                    &format!("usr/share/licenses/vifguard/{l}"),
                    0o644,
                )?;
            }
        }
    }
    let man = generated.join("man");
    let mut pages: Vec<PathBuf> = fs::read_dir(&man)
        .with_context(|| format!("listing {}", man.display()))?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    pages.sort();
    if pages.is_empty() {
        bail!("docgen wrote no man pages into {}", man.display());
    }
    let man8 = tree.join("usr/share/man/man8");
    mkdir(&man8)?;
    for page in &pages {
        let name = page.file_name().context("a man page without a name")?;
        let gz = man8.join(format!("{}.gz", name.to_string_lossy()));
        // -n: no name or time stamp in the header, so the same page gives
        // the same bytes.
        let out = Command::new("gzip")
            .args(["-9nc"])
            .arg(page)
            .output()
            .context("running gzip")?;
        if !out.status.success() {
            bail!(
                "gzip {}: {}",
                page.display(),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        fs::write(&gz, out.stdout).with_context(|| format!("writing {}", gz.display()))?;
        fs::set_permissions(&gz, fs::Permissions::from_mode(0o644))?;
    }
    let zsh = match format {
        Format::Deb => "usr/share/zsh/vendor-completions/_vifguard",
        Format::Rpm => "usr/share/zsh/site-functions/_vifguard",
    };
    let completions = generated.join("completions");
    for (file, dest) in [
        (
            "vifguard.bash",
            "usr/share/bash-completion/completions/vifguard",
        ),
        ("_vifguard", zsh),
        (
            "vifguard.fish",
            "usr/share/fish/vendor_completions.d/vifguard.fish",
        ),
    ] {
        put(tree, &completions.join(file), dest, 0o644)?;
    }
    Ok(())
}

/// Debian's machine-readable copyright file: the MIT text in full, and
/// Apache-2.0 by reference to the copy every Debian system has.
fn copyright(repo: &Path) -> Result<String> {
    let mit = fs::read_to_string(repo.join("LICENSE-MIT")).context("reading LICENSE-MIT")?;
    let holder = mit
        .lines()
        .find(|l| l.starts_with("Copyright"))
        .context("LICENSE-MIT names no copyright holder")?
        .trim_start_matches("Copyright (c) ")
        .to_string();
    let mut s = format!(
        "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\
         Upstream-Name: vifguard\n\n\
         Files: *\n\
         Copyright: {holder}\n\
         License: {LICENSE}\n\n\
         License: MIT\n"
    );
    for line in mit.lines().skip_while(|l| !l.starts_with("Permission")) {
        if line.is_empty() {
            s.push_str(" .\n");
        } else {
            let _ = writeln!(s, " {line}");
        }
    }
    s.push_str(
        "\nLicense: Apache-2.0\n \
         On Debian systems, the complete text of the Apache License, Version 2.0\n \
         can be found in /usr/share/common-licenses/Apache-2.0.\n",
    );
    Ok(s)
}

/// The maintainer script or scriptlet: the shared functions, then `body`.
fn script(body: &str) -> String {
    format!("{MAINT_FUNCTIONS}\n# --- what this script does\n{body}")
}

fn deb(
    repo: &Path,
    binary: &Path,
    generated: &Path,
    work: &Path,
    out: &Path,
    version: &str,
    arch: &Arch,
) -> Result<PathBuf> {
    let tree = work.join("deb");
    mkdir(&tree)?;
    stage(repo, binary, generated, &tree, Format::Deb)?;
    let size_kib = du_kib(&tree)?;
    let control = format!(
        "Package: {NAME}\n\
         Version: {version}\n\
         Architecture: {}\n\
         Maintainer: {MAINTAINER}\n\
         Installed-Size: {size_kib}\n\
         Section: net\n\
         Priority: optional\n\
         Description: {SUMMARY}\n{}",
        arch.deb,
        DESCRIPTION
            .lines()
            .map(|l| format!(" {l}\n"))
            .collect::<String>()
    );
    let sh = "#!/bin/sh\nset -e\n";
    // configure's $2 is the version configured before: empty on a first
    // install.
    let postinst = script(
        "case \"$1\" in\n\
         configure)\n    \
             [ -n \"${2:-}\" ] || vg_enable\n    \
             vg_reload\n    \
             vg_sync\n    \
             [ -z \"${2:-}\" ] || vg_restart_watch\n    \
             ;;\n\
         esac\nexit 0\n",
    );
    // Not on `upgrade`: the vifs keep their filters until the new
    // version's postinst syncs them.
    let prerm = script("case \"$1\" in\nremove) vg_remove ;;\nesac\nexit 0\n");
    let postrm = script(
        "case \"$1\" in\n\
         remove) vg_reload ;;\n\
         purge) vg_purge; vg_reload ;;\n\
         esac\nexit 0\n",
    );
    write(&tree, "DEBIAN/control", &control, 0o644)?;
    write(
        &tree,
        "DEBIAN/conffiles",
        &format!("/{CONFIG}\n/{HOOK}\n"),
        0o644,
    )?;
    write(&tree, "DEBIAN/postinst", &format!("{sh}{postinst}"), 0o755)?;
    write(&tree, "DEBIAN/prerm", &format!("{sh}{prerm}"), 0o755)?;
    write(&tree, "DEBIAN/postrm", &format!("{sh}{postrm}"), 0o755)?;
    write(&tree, "DEBIAN/md5sums", &md5sums(&tree)?, 0o644)?;
    let deb = out.join(format!("{NAME}_{version}_{}.deb", arch.deb));
    crate::run(
        Command::new("dpkg-deb")
            // stdout is for the packages' paths (what `package` prints).
            .stdout(std::io::stderr())
            .args(["--root-owner-group", "--build"])
            .arg(&tree)
            .arg(&deb),
    )?;
    Ok(deb)
}

/// The installed size in KiB, as dpkg counts it (each file rounded up).
fn du_kib(tree: &Path) -> Result<u64> {
    Ok(files(tree)?
        .iter()
        .map(|f| fs::metadata(tree.join(f)).map(|m| m.len().div_ceil(1024)))
        .collect::<Result<Vec<_>, _>>()?
        .iter()
        .sum())
}

/// Every file below `tree`, relative, sorted, DEBIAN/ left out.
fn files(tree: &Path) -> Result<Vec<String>> {
    Ok(entries(tree)?
        .into_iter()
        .filter_map(|(rel, dir)| (!dir).then_some(rel))
        .collect())
}

/// Every directory below `tree`, relative, sorted, DEBIAN/ left out.
fn dirs(tree: &Path) -> Result<Vec<String>> {
    Ok(entries(tree)?
        .into_iter()
        .filter_map(|(rel, dir)| dir.then_some(rel))
        .collect())
}

/// Every path below `tree`, relative, with whether it is a directory.
fn entries(tree: &Path) -> Result<Vec<(String, bool)>> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, bool)>) -> Result<()> {
        for e in fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))? {
            let path = e?.path();
            let rel = path
                .strip_prefix(root)
                .context("a path outside the tree")?
                .to_string_lossy()
                .into_owned();
            if rel == "DEBIAN" {
                continue;
            }
            let is_dir = path.is_dir();
            out.push((rel, is_dir));
            if is_dir {
                walk(root, &path, out)?;
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    walk(tree, tree, &mut out)?;
    out.sort();
    Ok(out)
}

/// `DEBIAN/md5sums`, for `dpkg --verify`.
fn md5sums(tree: &Path) -> Result<String> {
    let files = files(tree)?;
    let out = Command::new("md5sum")
        .args(&files)
        .current_dir(tree)
        .output()
        .context("running md5sum")?;
    if !out.status.success() {
        bail!("md5sum: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn rpm(
    repo: &Path,
    binary: &Path,
    generated: &Path,
    work: &Path,
    out: &Path,
    version: &str,
    arch: &Arch,
) -> Result<PathBuf> {
    let tree = work.join("rpm-tree");
    mkdir(&tree)?;
    stage(repo, binary, generated, &tree, Format::Rpm)?;
    // Directories the package owns; the others (/usr/sbin, /etc/xen/...)
    // belong to the system or to Xen.
    let own = |d: &str| {
        d == "etc/vifguard"
            || d.starts_with("etc/vifguard/")
            || d.starts_with("usr/share/doc/vifguard")
            || d.starts_with("usr/share/licenses/vifguard")
    };
    let mut list = String::from("%defattr(-,root,root,-)\n");
    for d in dirs(&tree)?.into_iter().filter(|d| own(d)) {
        let _ = writeln!(list, "%dir /{d}");
    }
    for f in files(&tree)? {
        let attr = if f == CONFIG {
            "%config(noreplace) "
        } else if f == HOOK {
            "%config "
        } else if f.starts_with("usr/share/licenses/") {
            "%license "
        } else {
            ""
        };
        let _ = writeln!(list, "{attr}/{f}");
    }
    let scriptlet = |body: &str| script(body).replace('%', "%%");
    // $1: how many versions are installed once this one is done (post)
    // or gone (preun, postun): 1 on a first install, 2 on an upgrade, 0
    // on removal. An upgrade runs the new %post before the old %preun.
    let post = scriptlet(
        "if [ \"$1\" -eq 1 ]; then vg_enable; fi\n\
         vg_reload\n\
         vg_sync\n\
         if [ \"$1\" -ge 2 ]; then vg_restart_watch; fi\nexit 0\n",
    );
    let preun = scriptlet("if [ \"$1\" -eq 0 ]; then vg_remove; vg_disable; fi\nexit 0\n");
    let postun = scriptlet("vg_reload\nexit 0\n");
    let spec = format!(
        "# Generated by `cargo xtask package`.\n\
         # The binary is prebuilt, static and unstripped on purpose: no\n\
         # debuginfo split, no strip, no build-id links.\n\
         %global debug_package %{{nil}}\n\
         %global __os_install_post %{{nil}}\n\
         %define _build_id_links none\n\
         # gzip payload: rpm 4.11 (CentOS 7, XCP-ng 8.x's dom0) reads no\n\
         # zstd, the default of newer rpmbuilds.\n\
         %define _binary_payload w9.gzdio\n\
         Name: {NAME}\n\
         Version: {version}\n\
         Release: 1\n\
         Summary: {SUMMARY}\n\
         License: {LICENSE}\n\
         AutoReqProv: no\n\
         Requires: bash\n\n\
         %description\n{DESCRIPTION}\n\n\
         %install\n\
         cp -a {tree}/. %{{buildroot}}/\n\n\
         %files\n{list}\n\
         %post\n{post}\n\
         %preun\n{preun}\n\
         %postun\n{postun}\n",
        tree = tree.display(),
    );
    let top = work.join("rpmbuild");
    mkdir(&top)?;
    let spec_path = top.join("vifguard.spec");
    fs::write(&spec_path, spec).with_context(|| format!("writing {}", spec_path.display()))?;
    let define = |k: &str, v: &str| format!("{k} {v}");
    let out_abs = fs::canonicalize(out).with_context(|| format!("resolving {}", out.display()))?;
    crate::run(
        Command::new("rpmbuild")
            .stdout(std::io::stderr())
            .args(["-bb", "--quiet", "--target", arch.rpm])
            .arg("--define")
            .arg(define("_topdir", &top.to_string_lossy()))
            .arg("--define")
            .arg(define("_rpmdir", &out_abs.to_string_lossy()))
            .arg("--define")
            .arg(define(
                "_rpmfilename",
                "%{NAME}-%{VERSION}-%{RELEASE}.%{ARCH}.rpm",
            ))
            .arg(&spec_path),
    )?;
    let rpm = out_abs.join(format!("{NAME}-{version}-1.{}.rpm", arch.rpm));
    if !rpm.exists() {
        bail!("rpmbuild made no {}", rpm.display());
    }
    Ok(rpm)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        for ok in ["0.1.0", "0.1.0~prev", "1.2+git3"] {
            assert!(check_version(ok).is_ok(), "{ok}");
        }
        for bad in ["", "v1", "0.1.0-1", "1 2", "1/2"] {
            assert!(check_version(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn maintainer_scripts_parse() {
        // sh -n: the shared functions and each body are valid sh.
        for body in ["vg_sync\n", "vg_remove\n"] {
            let out = Command::new("sh")
                .args(["-n", "-c", &script(body)])
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }

    #[test]
    fn copyright_has_both_licences() {
        let root = crate::repo_root().unwrap();
        let c = copyright(&root).unwrap();
        assert!(c.contains("License: MIT OR Apache-2.0"), "{c}");
        assert!(
            c.contains("License: MIT\n Permission is hereby granted"),
            "{c}"
        );
        assert!(c.contains("/usr/share/common-licenses/Apache-2.0"), "{c}");
    }
}
