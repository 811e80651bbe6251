//! The kernel: its release, and each feature the programs and the loader
//! use, probed for real (the release alone would miss backports, and a
//! distribution can build a kernel without a feature).

use std::os::fd::AsFd;

use aya::Ebpf;
use aya_obj::generated::bpf_map_type;
use filter_common::{Direction, program_names};
use serde_json::json;

use super::{Line, Status};
use crate::config::{AttachMethod, HostConfig};
use crate::datapath::{self, Maps};
use crate::hooks::tc::Rtnl;
use crate::hooks::tcx::attach_tc;
use crate::report::chain;
use crate::sys::bpf::{MapShape, probe_map};

/// A kernel feature and the mainline release that brought it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Feature {
    pub name: &'static str,
    pub since: (u32, u32),
}

impl Feature {
    const fn new(name: &'static str, major: u32, minor: u32) -> Feature {
        Feature {
            name,
            since: (major, minor),
        }
    }

    /// `ring buffer (Linux 5.8)`.
    pub fn describe(&self) -> String {
        format!("{} (Linux {}.{})", self.name, self.since.0, self.since.1)
    }
}

pub const HASH: Feature = Feature::new("hash map", 3, 19);
pub const CLSACT: Feature = Feature::new("clsact qdisc", 4, 5);
pub const CLS_BPF_DA: Feature = Feature::new("cls_bpf direct action", 4, 4);
pub const PERCPU_ARRAY: Feature = Feature::new("per-CPU array map", 4, 6);
pub const LRU_PERCPU_HASH: Feature = Feature::new("LRU per-CPU hash map", 4, 10);
pub const LPM_TRIE: Feature = Feature::new("LPM trie map", 4, 11);
pub const BPF_CALLS: Feature = Feature::new("bpf-to-bpf calls", 4, 16);
pub const BTF: Feature = Feature::new("BTF", 4, 18);
pub const BTF_FUNC: Feature = Feature::new("BTF function info", 5, 0);
pub const GLOBAL_DATA: Feature = Feature::new("global data (.rodata)", 5, 2);
/// The verifier walks about 144,000 instructions of the from-guest
/// program (6.18, measured by `vifguard check`), over the 131,072 it
/// allowed before 5.2; each program itself is under 4,096 instructions.
pub const VERIFIER_LIMIT: Feature =
    Feature::new("1M-instruction verifier limit (131,072 before)", 5, 2);
pub const BOUNDED_LOOPS: Feature = Feature::new("bounded loops", 5, 3);
pub const GLOBAL_FUNCTIONS: Feature = Feature::new("global functions", 5, 6);
pub const BATCH_LOOKUP: Feature = Feature::new("BPF_MAP_LOOKUP_BATCH", 5, 6);
pub const RINGBUF: Feature = Feature::new("ring buffer map", 5, 8);
pub const LINK_DETACH: Feature = Feature::new("BPF_LINK_DETACH", 5, 9);
pub const TCX: Feature = Feature::new("TCX links", 6, 6);

/// What the programs and the loader need with the default `attach =
/// "tc"`, oldest first: the last sets the oldest kernel expected to work.
pub const NEEDED: &[Feature] = &[
    HASH,
    CLS_BPF_DA,
    CLSACT,
    PERCPU_ARRAY,
    LRU_PERCPU_HASH,
    LPM_TRIE,
    BPF_CALLS,
    BTF,
    BTF_FUNC,
    GLOBAL_DATA,
    VERIFIER_LIMIT,
    BOUNDED_LOOPS,
    GLOBAL_FUNCTIONS,
    RINGBUF,
];

/// The oldest kernel expected to work: the newest of [`NEEDED`].
pub const FLOOR: (u32, u32) = RINGBUF.since;

/// The dom0 kernels the Xen run (`cargo xtask xen-e2e`) tests.
pub const TESTED: [(u32, u32); 2] = [(6, 1), (6, 12)];

/// `major.minor.patch` from a release string such as `6.1.0-56-amd64` or
/// `4.19.0+1`.
pub fn parse_release(release: &str) -> Option<(u32, u32, u32)> {
    let mut parts = release.trim().split(|c: char| !c.is_ascii_digit());
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    let patch = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    Some((major, minor, patch))
}

/// The needed features newer than kernel `version` (what it lacks unless
/// its distribution backported them), newest first.
pub fn newer_than(version: (u32, u32)) -> Vec<Feature> {
    let mut v: Vec<Feature> = NEEDED
        .iter()
        .copied()
        .filter(|f| f.since > version)
        .collect();
    v.reverse();
    v
}

fn list(features: &[Feature]) -> String {
    features
        .iter()
        .map(Feature::describe)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The `kernel` line for `release`.
pub fn release_line(release: &str) -> Line {
    let data = |v: Option<(u32, u32, u32)>| {
        json!({
            "release": release,
            "version": v.map(|(a, b, c)| format!("{a}.{b}.{c}")),
            "floor": format!("{}.{}", FLOOR.0, FLOOR.1),
        })
    };
    let Some(v) = parse_release(release) else {
        return Line::warn(
            "kernel",
            format!("cannot tell the version of kernel release {release:?}"),
            "the feature probes below decide",
        )
        .data(data(None));
    };
    let tested = TESTED
        .iter()
        .map(|(a, b)| format!("{a}.{b}"))
        .collect::<Vec<_>>()
        .join(" and ");
    let line = if (v.0, v.1) < FLOOR {
        Line::warn(
            "kernel",
            format!(
                "Linux {release} is older than {}.{}, the oldest kernel vifguard's programs load on; it lacks, unless backported: {}",
                FLOOR.0,
                FLOOR.1,
                list(&newer_than((v.0, v.1)))
            ),
            "the probes below tell what is missing; vifguard needs a 6.x dom0 kernel (Debian 12/13, Ubuntu 24.04; XCP-ng 8.x and XenServer 8 run 4.19)",
        )
    } else if (v.0, v.1) < TESTED[0] {
        Line::warn(
            "kernel",
            format!(
                "Linux {release}: new enough ({}.{}+) but older than any kernel the Xen run tests ({tested})",
                FLOOR.0, FLOOR.1
            ),
            format!("expected to work if the probes below pass; {tested} are tested"),
        )
    } else {
        Line::ok(
            "kernel",
            format!(
                "Linux {release} (vifguard needs {}.{}+; the Xen run tests {tested})",
                FLOOR.0, FLOOR.1
            ),
        )
    };
    line.data(data(Some(v)))
}

/// The running kernel's release.
fn release() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// One map type the object declares, and a map of it the kernel accepts.
struct MapProbe {
    check: &'static str,
    feature: Feature,
    shape: MapShape,
}

const fn shape(map_type: bpf_map_type, key: u32, value: u32, max: u32, flags: u32) -> MapShape {
    MapShape {
        map_type,
        key_size: key,
        value_size: value,
        max_entries: max,
        flags,
    }
}

/// BPF_F_NO_PREALLOC: LPM tries must be created with it.
const NO_PREALLOC: u32 = aya_obj::generated::BPF_F_NO_PREALLOC;

const MAP_PROBES: [MapProbe; 5] = [
    MapProbe {
        check: "map.hash",
        feature: HASH,
        shape: shape(bpf_map_type::BPF_MAP_TYPE_HASH, 4, 4, 1, 0),
    },
    MapProbe {
        check: "map.percpu_array",
        feature: PERCPU_ARRAY,
        shape: shape(bpf_map_type::BPF_MAP_TYPE_PERCPU_ARRAY, 4, 4, 1, 0),
    },
    MapProbe {
        check: "map.lru_percpu_hash",
        feature: LRU_PERCPU_HASH,
        shape: shape(bpf_map_type::BPF_MAP_TYPE_LRU_PERCPU_HASH, 4, 4, 256, 0),
    },
    MapProbe {
        check: "map.lpm_trie",
        feature: LPM_TRIE,
        // Key: a 4-byte prefix length, then the data.
        shape: shape(bpf_map_type::BPF_MAP_TYPE_LPM_TRIE, 8, 1, 1, NO_PREALLOC),
    },
    MapProbe {
        check: "map.ringbuf",
        feature: RINGBUF,
        // A power of two and a multiple of the page size (4, 16 or 64 KiB).
        shape: shape(bpf_map_type::BPF_MAP_TYPE_RINGBUF, 0, 0, 64 * 1024, 0),
    },
];

/// What to do about a feature the kernel lacks.
fn newer_kernel(f: &Feature) -> String {
    format!(
        "run a kernel with {} (Linux {}.{} or newer; a 6.x dom0 such as Debian's 6.1 or 6.12)",
        f.name, f.since.0, f.since.1
    )
}

const ROOT: &str = "run `vifguard check` as root (loading programs needs CAP_BPF and CAP_NET_ADMIN, or CAP_SYS_ADMIN)";

/// The map probes' lines; `None` after a line saying bpf(2) itself was
/// refused (no privilege: nothing else can be probed).
fn maps() -> (Vec<Line>, bool) {
    let mut lines = Vec::new();
    for p in &MAP_PROBES {
        let data = json!({"feature": p.feature.name, "since": since(&p.feature)});
        let line = match probe_map(p.shape) {
            Ok(()) => Line::ok(p.check, format!("{} created", p.feature.describe())),
            Err(e) if e.raw_os_error() == Some(libc::EPERM) => {
                lines.push(
                    Line::fail("bpf", format!("bpf(2) refused to create a map: {e}"), ROOT)
                        .data(data),
                );
                return (lines, false);
            }
            // EINVAL: a map type the kernel does not know.
            Err(e) => Line::fail(
                p.check,
                format!("{} missing: creating one failed: {e}", p.feature.describe()),
                newer_kernel(&p.feature),
            ),
        };
        lines.push(line.data(data));
    }
    (lines, true)
}

fn since(f: &Feature) -> String {
    format!("{}.{}", f.since.0, f.since.1)
}

/// aya's own probes (each loads a tiny program or BTF blob at its first
/// load): BTF and its kinds, and global data.
fn aya_features() -> Vec<Line> {
    let f = aya::features();
    let mut lines = Vec::new();
    let (btf, func, global, datasec) = match f.btf() {
        Some(b) => (true, b.btf_func(), b.btf_func_global(), b.btf_datasec()),
        None => (false, false, false, false),
    };
    let have = [
        (BTF, btf),
        (BTF_FUNC, func),
        (GLOBAL_FUNCTIONS, global),
        (Feature::new("BTF data sections", 5, 2), datasec),
    ];
    let missing: Vec<Feature> = have.iter().filter(|(_, h)| !h).map(|(f, _)| *f).collect();
    let data = json!(
        have.iter()
            .map(|(f, h)| (f.name.to_string(), json!(h)))
            .collect::<serde_json::Map<_, _>>()
    );
    lines.push(
        if missing.is_empty() {
            Line::ok(
                "btf",
                format!(
                    "{}, {}, {} (global functions are verified once each)",
                    BTF.describe(),
                    BTF_FUNC.describe(),
                    GLOBAL_FUNCTIONS.describe()
                ),
            )
        } else {
            // aya loads without them where it can (global functions become
            // static ones, verified at every call): the program load decides.
            Line::warn(
                "btf",
                format!("missing: {}", list(&missing)),
                "the program load below decides; if it fails, run a 6.x kernel",
            )
        }
        .data(data),
    );
    lines.push(
        if f.bpf_global_data() {
            Line::ok(
                "global_data",
                format!("{} supported", GLOBAL_DATA.describe()),
            )
        } else {
            // aya then creates no .rodata map and the load cannot relocate
            // the programs' constants.
            Line::fail(
                "global_data",
                format!(
                    "{} missing: the programs keep constants there",
                    GLOBAL_DATA.describe()
                ),
                newer_kernel(&GLOBAL_DATA),
            )
        }
        .data(json!({"since": since(&GLOBAL_DATA)})),
    );
    lines
}

/// One loaded program's sizes: instructions after the kernel's rewrite
/// (xlated) and, from 5.16, those the verifier processed.
fn sizes(ebpf: &Ebpf, name: &str) -> (Option<u32>, Option<u32>) {
    let info = match ebpf.program(name).map(|p| p.info()) {
        Some(Ok(i)) => i,
        _ => return (None, None),
    };
    (
        info.size_translated().map(|b| b / 8),
        info.verified_instruction_count(),
    )
}

const PROGRAMS: [&str; 5] = [
    program_names::TC_FROM_GUEST,
    program_names::TC_TO_GUEST,
    program_names::TC_EMPTY,
    program_names::XDP_FROM_GUEST,
    program_names::XDP_EMPTY,
];

/// Loads and verifies the actual programs (maps created unpinned,
/// nothing attached): the line, and the object for the hook probes.
fn programs(config: &HostConfig, version: Option<(u32, u32)>) -> (Line, Option<Ebpf>) {
    match datapath::load(config.max_interfaces, None) {
        Ok(ebpf) => {
            let mut parts = Vec::new();
            let mut data = serde_json::Map::new();
            for name in PROGRAMS {
                let (xlated, verified) = sizes(&ebpf, name);
                let mut p = format!("{name} {}", count(xlated));
                if let Some(v) = verified {
                    p.push_str(&format!(" ({} processed)", thousands(v)));
                }
                parts.push(p);
                data.insert(
                    name.to_string(),
                    json!({"instructions": xlated, "verified_instructions": verified}),
                );
            }
            let line = Line::ok(
                "programs",
                format!(
                    "{} programs loaded and verified, not attached: {}",
                    PROGRAMS.len(),
                    parts.join(", ")
                ),
            )
            .data(serde_json::Value::Object(data));
            (line, Some(ebpf))
        }
        Err(e) => {
            let mut msg = format!("loading the programs failed: {}", chain(&e));
            let fix = match version.map(newer_than) {
                Some(lacks) if !lacks.is_empty() => {
                    msg.push_str(&format!(
                        "; this kernel predates {}",
                        list(&lacks)
                    ));
                    newer_kernel(&lacks[0])
                }
                _ => match e {
                    datapath::DatapathError::NoObject => {
                        "install a vifguard built with its programs (cargo xtask build)".into()
                    }
                    _ => "the verifier's last lines above name the instruction it refused; report it with `uname -r`".into(),
                },
            };
            (
                Line::fail("programs", shorten(&msg), fix).data(json!({"error": chain(&e)})),
                None,
            )
        }
    }
}

fn count(n: Option<u32>) -> String {
    match n {
        Some(n) => format!("{} instructions", thousands(n)),
        None => "(size unknown)".into(),
    }
}

fn thousands(n: u32) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A verifier log runs to thousands of lines: keep its first line and
/// the last few, where the verifier says what it refused.
fn shorten(msg: &str) -> String {
    let lines: Vec<&str> = msg.lines().filter(|l| !l.trim().is_empty()).collect();
    if lines.len() <= 6 {
        return msg.to_string();
    }
    let mut out = vec![lines[0], "..."];
    out.extend(&lines[lines.len() - 4..]);
    out.join("\n")
}

/// BPF_MAP_LOOKUP_BATCH on the loaded policy map.
fn batch(ebpf: &mut Ebpf) -> Line {
    let data = json!({"since": since(&BATCH_LOOKUP)});
    match Maps::take_from(ebpf).map(|m| m.has_batch_lookup()) {
        Ok(Ok(true)) => Line::ok("batch_lookup", format!("{} works", BATCH_LOOKUP.describe())),
        // The loader falls back to one lookup per entry.
        Ok(Ok(false)) => Line::ok(
            "batch_lookup",
            format!(
                "{} missing: status and sync read the policy map entry by entry (slower with many vifs)",
                BATCH_LOOKUP.describe()
            ),
        ),
        Ok(Err(e)) => Line::warn(
            "batch_lookup",
            format!("{} failed: {e}", BATCH_LOOKUP.describe()),
            "status and metrics may fail; report it with `uname -r`",
        ),
        Err(e) => Line::warn("batch_lookup", format!("not probed: {}", chain(&e)), "report it"),
    }
    .data(data)
}

fn tc_name(dir: Direction) -> &'static str {
    match dir {
        Direction::FromGuest => program_names::TC_FROM_GUEST,
        Direction::ToGuest => program_names::TC_TO_GUEST,
    }
}

const DIRS: [Direction; 2] = [Direction::FromGuest, Direction::ToGuest];

/// The classic tc attachment as vifguard makes it (a clsact qdisc, one
/// cls_bpf direct-action filter per hook with the real programs), on `lo`
/// of the calling thread's network namespace.
fn try_tc(ebpf: &mut Ebpf, priority: u16) -> Result<(), String> {
    let lo = crate::sys::netdev::ifindex("lo").ok_or("no loopback device")?;
    let mut rtnl = Rtnl::open().map_err(|e| chain(&e))?;
    rtnl.ensure_clsact(lo).map_err(|e| chain(&e))?;
    for dir in DIRS {
        let name = tc_name(dir);
        let prog = datapath::tc_program(ebpf, name).map_err(|e| chain(&e))?;
        let fd = prog.fd().map_err(|e| chain(&e))?;
        rtnl.set_filter(lo, dir, priority, fd.as_fd(), name)
            .map_err(|e| chain(&e))?;
    }
    Ok(())
}

/// TCX links as vifguard makes them with `attach = "tcx"`, on `lo` of the
/// calling thread's network namespace; dropped (detached) at once.
fn try_tcx(ebpf: &mut Ebpf) -> Result<(), String> {
    for dir in DIRS {
        let prog = datapath::tc_program(ebpf, tc_name(dir)).map_err(|e| chain(&e))?;
        let link = attach_tc(prog, "lo", dir).map_err(|e| chain(&e))?;
        drop(link);
    }
    Ok(())
}

/// Both hook probes in a private network namespace (see
/// [`crate::sys::netns::in_private_netns`]): the qdisc, filters and links
/// go with it, and no host interface is touched.
fn hooks(ebpf: &mut Ebpf, config: &HostConfig) -> Vec<Line> {
    let probed = crate::sys::netns::in_private_netns(|| {
        let tc = try_tc(ebpf, config.tc_priority);
        let tcx = try_tcx(ebpf);
        (tc, tcx)
    });
    let (tc, tcx) = match probed {
        Ok(r) => r,
        Err(e) => {
            let msg = format!("cannot create a private network namespace to probe in: {e}");
            return vec![
                Line::fail("tc", msg.clone(), ROOT),
                Line::warn("tcx", msg, ROOT),
            ];
        }
    };
    let chosen = |m: AttachMethod| config.attach == m;
    let tc_line = match tc {
        Ok(()) => Line::ok(
            "tc",
            format!(
                "{} with {} filters of the real programs (probed on the loopback of a private network namespace){}",
                CLSACT.describe(),
                CLS_BPF_DA.describe(),
                if chosen(AttachMethod::Tc) {
                    ""
                } else {
                    "; not used: attach = \"tcx\""
                }
            ),
        ),
        Err(e) if chosen(AttachMethod::Tc) => Line::fail(
            "tc",
            format!("clsact + cls_bpf attachment failed: {e}"),
            "load the sch_ingress and cls_bpf modules (CONFIG_NET_SCH_INGRESS, CONFIG_NET_CLS_BPF), or set attach = \"tcx\" on Linux 6.6+",
        ),
        Err(e) => Line::ok(
            "tc",
            format!("clsact + cls_bpf attachment failed ({e}); not used: attach = \"tcx\""),
        ),
    }
    .data(json!({"used": chosen(AttachMethod::Tc), "since": since(&CLSACT)}));
    let tcx_line = match tcx {
        Ok(()) => Line::ok(
            "tcx",
            format!(
                "{} attach and detach{}",
                TCX.describe(),
                if chosen(AttachMethod::Tcx) {
                    ""
                } else {
                    "; not used: attach = \"tc\""
                }
            ),
        ),
        Err(e) if chosen(AttachMethod::Tcx) => Line::fail(
            "tcx",
            format!("{} missing: {e}", TCX.describe()),
            "set attach = \"tc\" (the default), or run Linux 6.6 or newer",
        ),
        Err(e) => Line::ok(
            "tcx",
            format!(
                "{} unavailable ({e}); not needed: attach = \"tc\"",
                TCX.describe()
            ),
        ),
    }
    .data(json!({"used": chosen(AttachMethod::Tcx), "since": since(&TCX)}));
    vec![tc_line, tcx_line]
}

/// Every kernel line: the release, the map types, aya's feature probes,
/// the programs, batch lookups and the two hooks.
pub fn probe(config: &HostConfig) -> Vec<Line> {
    let release = release();
    let mut lines = vec![release_line(&release)];
    let version = parse_release(&release).map(|(a, b, _)| (a, b));
    let (map_lines, privileged) = maps();
    lines.extend(map_lines);
    if !privileged {
        return lines;
    }
    lines.extend(aya_features());
    let (line, ebpf) = programs(config, version);
    lines.push(line);
    match ebpf {
        Some(mut ebpf) => {
            lines.extend(hooks(&mut ebpf, config));
            lines.push(batch(&mut ebpf));
        }
        None => {
            for (check, used) in [
                ("tc", config.attach == AttachMethod::Tc),
                ("tcx", config.attach == AttachMethod::Tcx),
            ] {
                let msg = "not probed: the programs did not load";
                lines.push(if used {
                    Line::fail(check, msg, "see the programs line")
                } else {
                    Line::new(check, Status::Ok, format!("{msg} (not used)"))
                });
            }
        }
    }
    lines
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn releases_parse() {
        assert_eq!(parse_release("6.1.0-56-amd64"), Some((6, 1, 0)));
        assert_eq!(parse_release("6.18.44-fc-v1045"), Some((6, 18, 44)));
        assert_eq!(parse_release("4.19.0+1"), Some((4, 19, 0)));
        assert_eq!(parse_release("5.8"), Some((5, 8, 0)));
        assert_eq!(parse_release("xen"), None);
    }

    #[test]
    fn the_floor_is_the_newest_needed_feature() {
        let newest = NEEDED.iter().map(|f| f.since).max().unwrap();
        assert_eq!(newest, FLOOR);
        assert_eq!(FLOOR, (5, 8));
        assert!(newer_than(FLOOR).is_empty());
    }

    /// XCP-ng 8.2/8.3 and XenServer 8: what the kernel line says there.
    #[test]
    fn a_4_19_dom0_lacks_five_features_newest_first() {
        let names: Vec<&str> = newer_than((4, 19)).iter().map(|f| f.name).collect();
        assert_eq!(
            names,
            [
                "ring buffer map",
                "global functions",
                "bounded loops",
                "1M-instruction verifier limit (131,072 before)",
                "global data (.rodata)",
                "BTF function info",
            ]
        );
        let l = release_line("4.19.0+1");
        assert_eq!(l.status, Status::Warn);
        assert!(
            l.message.contains("older than 5.8")
                && l.message.contains("ring buffer map (Linux 5.8)")
                && l.message.contains("bounded loops (Linux 5.3)"),
            "{}",
            l.message
        );
        assert!(l.fix.unwrap().contains("XCP-ng"));
    }

    #[test]
    fn kernel_line_verdicts() {
        assert_eq!(release_line("6.12.57+deb13-amd64").status, Status::Ok);
        assert_eq!(release_line("6.1.0-56-amd64").status, Status::Ok);
        let l = release_line("5.15.0-100-generic");
        assert_eq!(l.status, Status::Warn);
        assert!(
            l.message
                .contains("older than any kernel the Xen run tests (6.1 and 6.12)")
        );
        assert_eq!(release_line("").status, Status::Warn);
        assert_eq!(release_line("6.1.0").data["version"], "6.1.0");
    }

    #[test]
    fn long_verifier_logs_keep_their_end() {
        let log = (0..100).map(|i| format!("{i}: insn")).collect::<Vec<_>>();
        let msg = format!("load failed:\n{}", log.join("\n"));
        let s = shorten(&msg);
        assert!(s.starts_with("load failed:\n...\n96: insn"), "{s}");
        assert!(s.ends_with("99: insn"));
        assert_eq!(thousands(1234567), "1,234,567");
        assert_eq!(thousands(999), "999");
    }
}
