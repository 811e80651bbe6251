//! How the run starts vifguard (the release binary against the test
//! xenstored, a bpffs root per host, `attach` = tc or tcx) and how it finds
//! and removes the hooks vifguard left.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use testbed::netns::NetNs;
use testbed::xenstored::TestXenstored;

use crate::check_stop;
use crate::guests::vif_name;
use crate::process::in_ns;

/// What every part of a run shares.
pub struct Ctx {
    pub run_id: String,
    pub vifguard: PathBuf,
    pub xs: TestXenstored,
    /// A host configuration file with `attach = "tcx"`.
    pub tcx_config: PathBuf,
}

impl Ctx {
    pub fn bpffs(&self, label: &str) -> PathBuf {
        PathBuf::from(format!(
            "/sys/fs/bpf/vifguard-bench-{}-{label}",
            self.run_id
        ))
    }

    /// The vifguard binary in `ns`, against the test xenstored and `bpffs`,
    /// attaching with `attach`.
    pub fn vifguard_with(&self, ns: &NetNs, bpffs: &Path, attach: Attach) -> Command {
        let mut c = in_ns(ns, &self.vifguard.to_string_lossy());
        self.vifguard_env(&mut c, bpffs, attach);
        c
    }

    /// The vifguard command for [`crate::process::timed`] (which starts it
    /// in a namespace).
    pub fn vifguard_timed(&self, bpffs: &Path, attach: Attach) -> Command {
        let mut c = Command::new(&self.vifguard);
        self.vifguard_env(&mut c, bpffs, attach);
        c
    }

    fn vifguard_env(&self, c: &mut Command, bpffs: &Path, attach: Attach) {
        let config = match attach {
            Attach::Tc => Path::new("/nonexistent/vifguard-bench.toml"),
            Attach::Tcx => self.tcx_config.as_path(),
        };
        c.env("XENSTORED_PATH", self.xs.socket_path())
            .env("VIFGUARD_BPFFS", bpffs)
            .env("VIFGUARD_CONFIG", config);
    }
}

/// The configuration file goes with the run, also when it fails.
impl Drop for Ctx {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.tcx_config);
    }
}

/// vifguard's two ways to attach (host configuration `attach`).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Attach {
    Tc,
    Tcx,
}

impl Attach {
    pub fn name(self) -> &'static str {
        match self {
            Attach::Tc => "tc",
            Attach::Tcx => "tcx",
        }
    }
}

/// Puts the eBPF object's empty TC program (it passes every frame) on both
/// hooks of `vif1.0`..`vif<n>.0` in `ns`, as vifguard attaches with
/// `attach = "tc"`: a clsact qdisc and one cls_bpf direct-action filter
/// per hook at vifguard's default priority. The filters hold the program,
/// so they stay when the object is dropped here, until the namespace goes.
/// Named like vifguard's filters, so [`count_attached`] counts them.
pub fn attach_empty(ns: &NetNs, n: usize) -> Result<()> {
    use std::os::fd::AsFd as _;

    use filter_common::Direction;
    use filter_common::program_names::TC_EMPTY;
    use filter_user::config::DEFAULT_TC_PRIORITY;
    use filter_user::hooks::tc::Rtnl;

    let mut ebpf = filter_user::datapath::load(1, None).context("loading the eBPF object")?;
    let prog = filter_user::datapath::tc_program(&mut ebpf, TC_EMPTY)?;
    let fd = prog.fd().context("the empty program's fd")?;
    // The rtnetlink socket talks to the namespace it was opened in.
    let _in = ns.enter();
    let mut rtnl = Rtnl::open()?;
    for d in 1..=n as u32 {
        let vif = vif_name(d);
        let ix = filter_user::sys::netdev::ifindex(&vif)
            .with_context(|| format!("no {vif} in {}", ns.name))?;
        rtnl.ensure_clsact(ix)?;
        for dir in [Direction::FromGuest, Direction::ToGuest] {
            rtnl.set_filter(ix, dir, DEFAULT_TC_PRIORITY, fd.as_fd(), TC_EMPTY)?;
        }
    }
    Ok(())
}

/// Waits until no TCX program is attached to any of `ifnames` in `ns`.
/// Removing a link's pin only drops a reference: the kernel detaches it
/// later, from a work item (vifguard itself detaches before it unpins).
/// Returns how long it took.
fn wait_tcx_gone(ns: &NetNs, ifnames: &[String]) -> Result<Duration> {
    use aya::programs::{SchedClassifier, TcAttachType};
    let _in = ns.enter();
    let t0 = Instant::now();
    let mut pending: Vec<&String> = ifnames.iter().collect();
    loop {
        let mut still = Vec::new();
        for name in pending {
            for hook in [TcAttachType::Ingress, TcAttachType::Egress] {
                let (_, progs) = SchedClassifier::query_tcx(name, hook)
                    .with_context(|| format!("query TCX programs of {name}"))?;
                if !progs.is_empty() {
                    still.push(name);
                    break;
                }
            }
        }
        if still.is_empty() {
            return Ok(t0.elapsed());
        }
        if t0.elapsed() > Duration::from_secs(180) {
            bail!(
                "{} interface(s) in {} still have TCX programs 180 s after their links were unpinned",
                still.len(),
                ns.name
            );
        }
        check_stop()?;
        std::thread::sleep(Duration::from_millis(5));
        pending = still;
    }
}

/// Hooks in `ns` running a vifguard program: tc filters as the kernel
/// lists them (bpftool net) plus pinned TCX links under `bpffs`.
pub fn count_attached(ns: &NetNs, bpffs: &Path) -> Result<usize> {
    let filters = testbed::netns::vifguard_tc_filters(ns)
        .map_err(anyhow::Error::msg)?
        .len();
    let links = std::fs::read_dir(bpffs.join(format!("v{}/links", filter_common::ABI_VERSION)))
        .map(|rd| rd.count())
        .unwrap_or(0);
    Ok(filters + links)
}

/// Takes every vifguard hook off `vifs` in `ns` and removes the bpffs
/// root, as a host reboot would leave them: the root goes (TCX links with
/// it, detached by the kernel some time later: waited for), the clsact
/// qdiscs (and the filters on them) are deleted with one `tc -batch`.
pub fn clear(ns: &NetNs, root: &Path, vifs: &[String]) -> Result<()> {
    let _ = std::fs::remove_dir_all(root);
    let mut batch = String::new();
    for v in vifs {
        let _ = writeln!(batch, "qdisc del dev {v} clsact");
    }
    let path =
        std::env::temp_dir().join(format!("vifguard-bench-{}-clear.batch", std::process::id()));
    std::fs::write(&path, &batch).with_context(|| path.display().to_string())?;
    // -force: go on past vifs that have no clsact qdisc.
    let _ = Command::new("ip")
        .args(["netns", "exec", &ns.name, "tc", "-force", "-batch"])
        .arg(&path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    let _ = std::fs::remove_file(&path);
    wait_tcx_gone(ns, vifs)?;
    let left = count_attached(ns, root)?;
    if left != 0 {
        bail!("{left} vifguard hooks left in {} after clearing", ns.name);
    }
    Ok(())
}
