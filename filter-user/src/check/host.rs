//! The host around the kernel: the configuration file, the bpffs pin
//! root, xenstore and the toolstack that wrote the vifs' keys, and every
//! vif interface present. Read only: nothing here writes anything.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};
use xenstore::Xenstore;

use super::{Line, Status};
use crate::config::{AttachMethod, HostConfig};
use crate::datapath::object_version;
use crate::datapath::pins::{BPF_FS_MAGIC, BPFFS_MOUNT, Layout, fs_magic, nearest_existing};
use crate::hooks::tc::Rtnl;
use crate::lifecycle::{self, Attachment};
use crate::network::link::Links;
use crate::network::{Bridge, NetworkError, find_bridge, ovs};
use crate::report::chain;
use crate::xen::sources::{self, Resolved, SourceError, VifId};

/// The `config` line, and the configuration the other checks use (the
/// defaults when the file is invalid, so they still run).
pub fn config(path: &Path) -> (Line, HostConfig) {
    match HostConfig::load(path) {
        Ok(c) => {
            let what = format!(
                "attach = \"{}\", bpffs {}, max_interfaces {}",
                c.attach.name(),
                c.bpffs.display(),
                c.max_interfaces
            );
            let line = match &c.file {
                Some(f) => Line::ok("config", format!("{} is valid: {what}", f.display())),
                None => Line::ok(
                    "config",
                    format!(
                        "{} does not exist: built-in defaults ({what})",
                        path.display()
                    ),
                ),
            }
            .data(json!({
                "path": path,
                "exists": c.file.is_some(),
                "attach": c.attach.name(),
                "bpffs": c.bpffs,
            }));
            (line, c)
        }
        Err(e) => (
            Line::fail(
                "config",
                chain(&e),
                format!(
                    "fix {} (every key is shown in vifguard.toml.example); every vifguard command refuses to run until then. The checks below use the built-in defaults",
                    path.display()
                ),
            )
            .data(json!({"path": path, "error": chain(&e)})),
            HostConfig::default(),
        ),
    }
}

/// Whether the running kernel has a bpf filesystem to mount.
fn bpffs_known() -> bool {
    std::fs::read_to_string("/proc/filesystems")
        .map(|s| {
            s.lines()
                .any(|l| l.split_whitespace().last() == Some("bpf"))
        })
        .unwrap_or(false)
}

/// The `bpffs` line (and `pins`, when something is pinned there).
pub fn bpffs(config: &HostConfig) -> Vec<Line> {
    let root = &config.bpffs;
    let data = |on_bpffs: bool| json!({"root": root, "on_bpffs": on_bpffs});
    let at = nearest_existing(root);
    let magic = match fs_magic(&at) {
        Ok(m) => m,
        Err(e) => {
            return vec![
                Line::fail(
                    "bpffs",
                    chain(&e),
                    "set `bpffs` in the configuration to a directory below a bpffs mount",
                )
                .data(data(false)),
            ];
        }
    };
    if magic != BPF_FS_MAGIC {
        // What Layout::ensure does at the first attach: mount bpffs at
        // /sys/fs/bpf if the root is below it. Not done here (a check
        // leaves nothing behind); only whether it could be.
        let mount = Path::new(BPFFS_MOUNT);
        let line = if !root.starts_with(BPFFS_MOUNT) {
            Line::fail(
                "bpffs",
                format!(
                    "{} is not on a bpf filesystem ({} has filesystem magic {magic:#x})",
                    root.display(),
                    at.display()
                ),
                format!(
                    "set `bpffs` in the configuration to a directory below a bpffs mount (default /sys/fs/bpf/vifguard), or mount one there: mount -t bpf bpf {}",
                    root.display()
                ),
            )
        } else if !mount.is_dir() {
            Line::fail(
                "bpffs",
                format!("{BPFFS_MOUNT} does not exist, so bpffs cannot be mounted there"),
                "mount sysfs at /sys (a dom0 always has it)",
            )
        } else if !bpffs_known() {
            Line::fail(
                "bpffs",
                format!("{BPFFS_MOUNT} is not a bpffs and this kernel has no bpf filesystem"),
                "run a kernel built with CONFIG_BPF_SYSCALL",
            )
        } else {
            Line::ok(
                "bpffs",
                format!(
                    "{BPFFS_MOUNT} is not mounted yet; vifguard mounts bpffs there at its first attach (or: mount -t bpf bpf {BPFFS_MOUNT}, or a sys-fs-bpf.mount unit)"
                ),
            )
        };
        return vec![line.data(data(false))];
    }
    let mut lines = vec![
        Line::ok(
            "bpffs",
            if at == *root {
                format!("{} is on a bpf filesystem", root.display())
            } else {
                format!(
                    "{} does not exist yet: the first attach creates it on the bpf filesystem at {}",
                    root.display(),
                    at.display()
                )
            },
        )
        .data(data(true)),
    ];
    let layout = Layout::new(root);
    if layout.versioned().exists()
        && let Some(l) = pins(&layout)
    {
        lines.push(l);
    }
    lines
}

/// What is pinned below the root: vifguard's maps (refused by every
/// command if foreign) and which program versions.
fn pins(layout: &Layout) -> Option<Line> {
    if let Err(e) = lifecycle::check_map_pins(layout) {
        return Some(Line::fail(
            "pins",
            chain(&e),
            "move the named pin away (every command that loads refuses it until then)",
        ));
    }
    let versions = match layout.prog_versions() {
        Ok(v) => v,
        Err(e) => return Some(Line::warn("pins", chain(&e), "check the bpffs permissions")),
    };
    let ours = object_version();
    let data = json!({"program_versions": versions, "this_version": ours});
    Some(
        if versions.is_empty() || versions.contains(&ours) {
            Line::ok(
                "pins",
                format!(
                    "{}: maps are vifguard's; program versions pinned: {}",
                    layout.versioned().display(),
                    if versions.is_empty() {
                        "none".to_string()
                    } else {
                        versions.join(", ")
                    }
                ),
            )
        } else {
            Line::warn(
                "pins",
                format!(
                    "{}: the pinned programs ({}) are another vifguard version's (this binary: {ours})",
                    layout.versioned().display(),
                    versions.join(", ")
                ),
                "run `vifguard sync` to move every vif to this version's programs",
            )
        }
        .data(data),
    )
}

/// The `xenstore` and `toolstack` lines and one `vif` line per vif
/// interface in this network namespace.
pub fn xen(config: &HostConfig) -> Vec<Line> {
    let mut lines = Vec::new();
    let (line, mut xs) = xenstore();
    lines.push(line);
    let mut resolved: BTreeMap<VifId, Result<Resolved, SourceError>> = BTreeMap::new();
    if let Some(xs) = &mut xs {
        match backend_vifs(xs) {
            Ok(vifs) => {
                for vif in vifs {
                    resolved.insert(vif, sources::resolve(xs, &vif, config));
                }
                lines.push(toolstack(xs, &resolved));
            }
            Err(e) => lines.push(Line::fail(
                "toolstack",
                format!("listing the vifs in xenstore failed: {}", chain(&e)),
                "check xenstored (xenstore-ls /local/domain/0/backend/vif)",
            )),
        }
    }
    lines.extend(vifs(config, xs.as_mut(), &mut resolved));
    lines
}

/// The `xenstore` line, and a connection to xenstored that has answered
/// one request.
fn xenstore() -> (Line, Option<Xenstore>) {
    match connect() {
        Ok((xs, line)) => (line, Some(xs)),
        Err(line) => (*line, None),
    }
}

fn connect() -> Result<(Xenstore, Line), Box<Line>> {
    let fix = "start xenstored (systemctl start xenstored, or the toolstack's service), or set XENSTORED_PATH to its socket; until then every hotplug fails closed (the vif drops everything)";
    let fail = |e: &xenstore::XsError| {
        Box::new(
            Line::fail(
                "xenstore",
                format!("xenstore unreachable: {}", chain(e)),
                fix,
            )
            .data(json!({"reachable": false, "error": chain(e)})),
        )
    };
    let mut xs = Xenstore::open().map_err(|e| fail(&e))?;
    // A hung daemon must not hang the check.
    xs.set_timeout(Duration::from_secs(5))
        .map_err(|e| fail(&e))?;
    // Opening may succeed on a socket nobody answers; one read proves it.
    match xs.read_opt("/local/domain/0/name") {
        Ok(_) => {}
        Err(e) => return Err(fail(&e)),
    }
    let endpoint = xs.endpoint().to_path_buf();
    let line = Line::ok(
        "xenstore",
        format!("xenstored answers at {}", endpoint.display()),
    )
    .data(json!({"reachable": true, "endpoint": endpoint}));
    Ok((xs, line))
}

/// dom0's vif backends in xenstore: `/local/domain/0/backend/vif/<domid>/<devid>`.
fn backend_vifs(xs: &mut Xenstore) -> Result<Vec<VifId>, xenstore::XsError> {
    let base = "/local/domain/0/backend/vif";
    let mut out = Vec::new();
    for d in xenstore::found(xs.directory(base))?.unwrap_or_default() {
        let Ok(domid) = d.parse::<u32>() else {
            continue;
        };
        for i in xenstore::found(xs.directory(&format!("{base}/{d}")))?.unwrap_or_default() {
            if let Ok(devid) = i.parse::<u32>() {
                out.push(VifId::new(0, domid, devid));
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Which toolstack convention supplied each vif's policy.
fn toolstack(xs: &mut Xenstore, resolved: &BTreeMap<VifId, Result<Resolved, SourceError>>) -> Line {
    let mut by: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for (vif, r) in resolved {
        let key = match r {
            Ok(r) => r.source.name(),
            Err(_) => "unresolved",
        };
        by.entry(key).or_default().push(vif.to_string());
    }
    // XAPI keeps its own tree; a host without guests can still be told.
    let xapi_tree = matches!(xs.directory("/xapi"), Ok(d) if !d.is_empty());
    let data = json!({
        "vifs": by,
        "xapi_tree": xapi_tree,
    });
    if resolved.is_empty() {
        return Line::ok(
            "toolstack",
            format!(
                "no vifs in xenstore yet (no guest running){}",
                if xapi_tree {
                    "; /xapi exists: an XAPI host"
                } else {
                    ""
                }
            ),
        )
        .data(data);
    }
    let names = |k: &str| match k {
        "xapi" => "XAPI",
        "openstack" => "OpenStack",
        "xl" => "xl",
        _ => "policy unresolved",
    };
    let parts: Vec<String> = by
        .iter()
        .map(|(k, v)| format!("{} ({})", names(k), v.join(", ")))
        .collect();
    Line::ok(
        "toolstack",
        format!("policies written by {}", parts.join("; ")),
    )
    .data(data)
}

/// A vif's bridge as the kernel sees it now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Seen {
    /// Enslaved to a Linux bridge.
    Linux(String),
    /// A port of Open vSwitch: of its kernel datapath (the master is
    /// `ovs-system`, of kind `openvswitch`; the bridge is the vif's
    /// xenstore `bridge` key) or of a userspace datapath bridge
    /// (`ovs-vsctl list-ports` names it).
    Ovs { bridge: Option<String> },
    /// Enslaved to something else (a bond, a VRF).
    Other { name: String, kind: Option<String> },
    /// No master.
    None,
}

impl Seen {
    /// From the master's name and rtnetlink kind.
    pub fn of_master(name: String, kind: Option<&str>) -> Seen {
        match kind {
            Some("bridge") => Seen::Linux(name),
            Some("openvswitch") => Seen::Ovs { bridge: None },
            k => Seen::Other {
                name,
                kind: k.map(str::to_string),
            },
        }
    }

    fn json(&self) -> Value {
        match self {
            Seen::Linux(n) => json!({"kind": "linux", "name": n}),
            Seen::Ovs { bridge } => json!({"kind": "openvswitch", "name": bridge}),
            Seen::Other { name, kind } => json!({"kind": kind, "name": name}),
            Seen::None => Value::Null,
        }
    }
}

fn seen(links: &mut Links, ix: u32) -> Result<Seen, NetworkError> {
    let Some(master) = links.get(ix)?.and_then(|l| l.master) else {
        return Ok(Seen::None);
    };
    let kind = links.get(master)?.and_then(|m| m.kind);
    let name = lifecycle::ifname(master).unwrap_or_else(|| format!("ifindex {master}"));
    Ok(Seen::of_master(name, kind.as_deref()))
}

/// What one vif line is made of, before it is a line.
#[derive(Default)]
struct Findings {
    status: Option<Status>,
    parts: Vec<String>,
    fixes: Vec<String>,
}

impl Findings {
    fn note(&mut self, part: impl Into<String>) {
        self.parts.push(part.into());
    }

    fn flag(&mut self, status: Status, part: impl Into<String>, fix: impl Into<String>) {
        self.status = self.status.max(Some(status));
        self.parts.push(part.into());
        self.fixes.push(fix.into());
    }
}

/// One `vif` line per vif interface (vifN.M, vifN.M-emu, tapN.M) present.
fn vifs(
    config: &HostConfig,
    mut xs: Option<&mut Xenstore>,
    resolved: &mut BTreeMap<VifId, Result<Resolved, SourceError>>,
) -> Vec<Line> {
    let present: Vec<(u32, String, VifId)> = match lifecycle::interfaces() {
        Ok(all) => all
            .into_iter()
            .filter_map(|(ix, name)| lifecycle::vif_of_ifname(&name).map(|v| (ix, name, v)))
            .collect(),
        Err(e) => {
            return vec![Line::fail(
                "vifs",
                format!("listing the network interfaces failed: {e}"),
                "report it",
            )];
        }
    };
    if present.is_empty() {
        return vec![Line::ok(
            "vifs",
            "no vif interfaces (vifN.M, vifN.M-emu, tapN.M) in this network namespace",
        )];
    }
    let (mut rtnl, mut links) = match (Rtnl::open(), Links::open()) {
        (Ok(r), Ok(l)) => (r, l),
        (Err(e), _) => return vec![rtnetlink_failed(&chain(&e))],
        (_, Err(e)) => return vec![rtnetlink_failed(&chain(&e))],
    };
    let layout = Layout::new(&config.bpffs);
    let mut lines = Vec::new();
    for (ix, name, vif) in present {
        // A vif whose backend is not below dom0's (or appeared since the
        // listing) is resolved on its own.
        if !resolved.contains_key(&vif)
            && let Some(xs) = xs.as_deref_mut()
        {
            resolved.insert(vif, sources::resolve(xs, &vif, config));
        }
        let r = resolved.get(&vif);
        lines.push(vif_line(
            config, &layout, &mut rtnl, &mut links, ix, &name, &vif, r,
        ));
    }
    lines
}

fn rtnetlink_failed(e: &str) -> Line {
    Line::fail(
        "vifs",
        format!("opening rtnetlink failed: {e}"),
        "report it",
    )
}

#[allow(clippy::too_many_arguments)]
fn vif_line(
    config: &HostConfig,
    layout: &Layout,
    rtnl: &mut Rtnl,
    links: &mut Links,
    ix: u32,
    name: &str,
    vif: &VifId,
    resolved: Option<&Result<Resolved, SourceError>>,
) -> Line {
    let mut f = Findings::default();
    let mut data = serde_json::Map::new();
    data.insert("ifindex".into(), json!(ix));
    data.insert("vif".into(), json!(vif.to_string()));

    // The policy, as the next attach would resolve it.
    let mut bridge_key = None;
    match resolved {
        None => f.note("policy not read (xenstore unreachable)"),
        Some(Ok(r)) => {
            f.note(format!(
                "policy from {} ({})",
                r.source.name(),
                r.policy.mode.name()
            ));
            data.insert("source".into(), json!(r.source.name()));
            data.insert("mode".into(), json!(r.policy.mode.name()));
            bridge_key = r.bridge.clone();
        }
        Some(Err(e)) => {
            f.flag(
                Status::Warn,
                format!(
                    "policy cannot be used ({}): an attach installs `disabled`, the vif drops everything",
                    chain(e)
                ),
                "fix the xenstore key or policy file named (`vifguard policy IFACE` shows the resolution)",
            );
            data.insert("policy_error".into(), json!(chain(e)));
        }
    }

    // The bridge, as the kernel sees it (a port of OVS's userspace
    // datapath has no master: Open vSwitch itself is asked).
    match seen(links, ix) {
        Ok(mut s) => {
            match &s {
                Seen::Linux(b) => f.note(format!("Linux bridge {b}")),
                Seen::Ovs { bridge } => f.note(match bridge {
                    Some(b) => format!("Open vSwitch bridge {b}"),
                    None => "Open vSwitch port".to_string(),
                }),
                Seen::Other { name, kind } => f.note(format!(
                    "enslaved to {name} ({}), not a bridge",
                    kind.as_deref().unwrap_or("no kind")
                )),
                Seen::None => match bridge_key.as_deref() {
                    None => f.note("not on a bridge"),
                    Some(b) => match find_bridge(links, b) {
                        Ok(Bridge::Ovs { .. }) if ovs::has_port(b, name).unwrap_or(false) => {
                            f.note(format!("Open vSwitch bridge {b}"));
                            s = Seen::Ovs {
                                bridge: Some(b.to_string()),
                            };
                        }
                        Ok(br) => f.note(format!(
                            "not on a bridge yet (its network's bridge {b} is {})",
                            match br {
                                Bridge::Linux { .. } => "a Linux bridge",
                                Bridge::Ovs { .. } => "an Open vSwitch bridge",
                            }
                        )),
                        Err(e) => f.flag(
                            Status::Warn,
                            format!(
                                "not on a bridge, and its bridge {b} cannot be found: {}",
                                chain(&e)
                            ),
                            format!("create bridge {b} or fix the vif's bridge key"),
                        ),
                    },
                },
            }
            if let Seen::Ovs { bridge: None } = &s {
                s = Seen::Ovs {
                    bridge: bridge_key.clone(),
                };
            }
            data.insert("bridge".into(), s.json());
        }
        Err(e) => f.flag(
            Status::Warn,
            format!("its bridge cannot be read: {}", chain(&e)),
            "report it",
        ),
    }

    // An `ingress` qdisc sits where clsact must (OVS's ingress policing
    // installs one: ingress_policing_rate).
    match rtnl.qdiscs(ix) {
        Ok(qs) => {
            let ingress = qs.iter().any(|q| q.at_ingress() && q.kind == "ingress");
            data.insert("ingress_qdisc".into(), json!(ingress));
            if ingress {
                match config.attach {
                    AttachMethod::Tc => f.flag(
                        Status::Fail,
                        "has an `ingress` qdisc, which cannot coexist with the clsact qdisc attach = \"tc\" needs: its attach fails".to_string(),
                        format!(
                            "remove it (tc qdisc del dev {name} ingress; on Open vSwitch ingress policing adds it: ovs-vsctl set interface {name} ingress_policing_rate=0) or set attach = \"tcx\" (Linux 6.6+)"
                        ),
                    ),
                    AttachMethod::Tcx => {
                        f.note("has an `ingress` qdisc (no conflict with attach = \"tcx\")")
                    }
                }
            }
        }
        Err(e) => f.flag(
            Status::Warn,
            format!("its qdiscs cannot be listed: {}", chain(&e)),
            "report it",
        ),
    }

    // vifguard's hooks on it now.
    match lifecycle::attachments(layout, rtnl, ix) {
        Ok(hooks) => {
            data.insert(
                "hooks".into(),
                json!(
                    hooks
                        .iter()
                        .map(|a| json!({"hook": a.hook, "method": a.method.name()}))
                        .collect::<Vec<_>>()
                ),
            );
            hooks_finding(&mut f, &hooks, config.attach);
        }
        Err(e) => f.flag(
            Status::Warn,
            format!("its hooks cannot be listed: {}", chain(&e)),
            "report it",
        ),
    }

    let status = f.status.unwrap_or(Status::Ok);
    let mut line = Line::new("vif", status, f.parts.join("; "))
        .subject(name)
        .data(Value::Object(data));
    if !f.fixes.is_empty() {
        line = line.fix(f.fixes.join("; "));
    }
    line
}

fn hooks_finding(f: &mut Findings, hooks: &[Attachment], attach: AttachMethod) {
    let names = |m: AttachMethod| {
        hooks
            .iter()
            .filter(|a| a.method == m)
            .map(|a| a.hook)
            .collect::<Vec<_>>()
    };
    let want = names(attach);
    if want.len() == 2 {
        f.note(format!(
            "filtered ({} via {})",
            want.join(", "),
            attach.name()
        ));
    } else if hooks.is_empty() {
        f.flag(
            Status::Warn,
            "not filtered: no vifguard hook",
            "run `vifguard sync` (or plug the vif again)",
        );
    } else {
        let all: Vec<String> = hooks
            .iter()
            .map(|a| format!("{} via {}", a.hook, a.method.name()))
            .collect();
        f.flag(
            Status::Warn,
            format!(
                "hooks {} do not match attach = \"{}\"",
                all.join(", "),
                attach.name()
            ),
            "run `vifguard sync` to attach every vif the configured way",
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bridge_kinds_from_the_master() {
        assert_eq!(
            Seen::of_master("xenbr0".into(), Some("bridge")),
            Seen::Linux("xenbr0".into())
        );
        assert_eq!(
            Seen::of_master("ovs-system".into(), Some("openvswitch")),
            Seen::Ovs { bridge: None }
        );
        assert_eq!(
            Seen::of_master("bond0".into(), Some("bond")),
            Seen::Other {
                name: "bond0".into(),
                kind: Some("bond".into())
            }
        );
        let ovs = Seen::Ovs {
            bridge: Some("xapi1".into()),
        };
        assert_eq!(ovs.json(), json!({"kind": "openvswitch", "name": "xapi1"}));
    }

    #[test]
    fn hooks_made_the_other_way_warn() {
        let tc = |hook| Attachment {
            hook,
            method: AttachMethod::Tc,
        };
        let mut f = Findings::default();
        hooks_finding(
            &mut f,
            &[tc("tc-ingress"), tc("tc-egress")],
            AttachMethod::Tc,
        );
        assert_eq!(f.status, None);
        assert_eq!(f.parts, ["filtered (tc-ingress, tc-egress via tc)"]);
        let mut f = Findings::default();
        hooks_finding(
            &mut f,
            &[tc("tc-ingress"), tc("tc-egress")],
            AttachMethod::Tcx,
        );
        assert_eq!(f.status, Some(Status::Warn));
        assert!(f.parts[0].contains("do not match attach = \"tcx\""));
        let mut f = Findings::default();
        hooks_finding(&mut f, &[], AttachMethod::Tc);
        assert_eq!(f.status, Some(Status::Warn));
        assert_eq!(f.fixes, ["run `vifguard sync` (or plug the vif again)"]);
    }

    #[test]
    fn an_invalid_config_fails_and_the_defaults_go_on() {
        let p = std::env::temp_dir().join(format!("vifguard-check-{}.toml", std::process::id()));
        std::fs::write(&p, "attach = \"bogus\"\n").expect("write");
        let (l, c) = config(&p);
        let _ = std::fs::remove_file(&p);
        assert_eq!(l.status, Status::Fail);
        assert!(l.message.contains("attach"), "{}", l.message);
        assert_eq!(c, HostConfig::default());
        let (l, _) = config(Path::new("/nonexistent/vifguard.toml"));
        assert_eq!(l.status, Status::Ok);
        assert!(l.message.contains("does not exist: built-in defaults"));
    }
}
