//! A vif's life: programs loaded once per version and pinned, policy
//! written into the maps before the hooks are attached (fail closed),
//! hooks attached so the filter outlives the command (tc filters or pinned
//! TCX links, see [`crate::config::AttachMethod`]), and removal.

use std::collections::HashMap;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use aya::programs::links::{FdLink, PinnedLink};
use aya::programs::{SchedClassifier, tc::SchedClassifierLink};
use filter_common::{Counter, Direction, Mode, program_names};

use crate::applied::{Applier, Records};
use crate::config::{AttachMethod, HostConfig};
use crate::datapath::encode::decode;
use crate::datapath::pins::{HOOKS, Layout, PinError};
use crate::datapath::{self, DatapathError, Interface, Maps, MapsWriter};
use crate::hooks::tc::{Rtnl, TcError};
use crate::hooks::tcx::{AttachError, attach_tc};
use crate::policy::{MacAddr, Policy};
use crate::report::status::{Entry, Status};
use crate::report::{NoPolicy, Snapshot, Vif, chain};
use crate::sys::bpf::detach_pinned_link;
use crate::sys::bpf::obj_get;
use crate::xen::sources::{self, Resolved, VifId};
use xenstore::Xenstore;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, thiserror::Error)]
pub enum LifecycleError {
    #[error(transparent)]
    Pins(#[from] PinError),
    #[error(transparent)]
    Datapath(#[from] DatapathError),
    #[error(transparent)]
    Attach(#[from] AttachError),
    #[error("{iface}: classic tc")]
    Tc {
        iface: String,
        #[source]
        source: TcError,
    },
    #[error(
        "{}: refusing to use this pin: {detail}; vifguard did not create it (stale or foreign): move it away and retry",
        path.display()
    )]
    ForeignPin { path: PathBuf, detail: String },
    #[error(
        "{ifname} (ifindex {ifindex}) vanished while it was being attached; its map entries and link pins were removed"
    )]
    Vanished {
        ifname: String,
        ifindex: u32,
        #[source]
        source: Box<LifecycleError>,
    },
    #[error("no interface named {0:?} in this network namespace")]
    UnknownInterface(String),
    #[error(
        "{ifname}: failed closed (a `disabled` policy is installed, the vif drops everything) because its policy cannot be used"
    )]
    FailedClosed {
        ifname: String,
        #[source]
        source: BoxError,
    },
    #[error(
        "{ifname}: kept the policy it has (not re-applied) because its policy cannot be read now"
    )]
    KeptPolicy {
        ifname: String,
        #[source]
        source: BoxError,
    },
    #[error(
        "{ifname}: its policy could not be written into the maps; {}",
        if *.kept { "it kept the policy it has" } else { "it has none, so its hooks drop everything (no_policy)" }
    )]
    NotInstalled {
        ifname: String,
        kept: bool,
        #[source]
        source: DatapathError,
    },
    #[error("{ifname}: cannot read the policy")]
    Policy {
        ifname: String,
        #[source]
        source: BoxError,
    },
    #[error("{}: {action} failed", path.display())]
    Io {
        path: PathBuf,
        action: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("{}: {action} failed: {detail}", path.display())]
    Link {
        path: PathBuf,
        action: &'static str,
        detail: String,
    },
    #[error(
        "vifguard has no pinned state under {} (nothing attached yet; run `vifguard sync` or a hotplug)",
        .0.display()
    )]
    NotLoaded(PathBuf),
    #[error("reading CLOCK_MONOTONIC (to judge DHCP-learned addresses) failed")]
    Clock(#[source] io::Error),
}

pub use crate::sys::netdev::{ifindex, ifname, interfaces};

pub use crate::xen::vif::vif_of_ifname;

/// Whether a resolve failure is transient (see
/// [`crate::xen::sources::SourceError::is_transient`]): xenstore could not
/// be reached, or the toolstack is halfway through a change.
fn is_transient(e: &(dyn std::error::Error + 'static)) -> bool {
    if let Some(s) = e.downcast_ref::<crate::xen::sources::SourceError>() {
        return s.is_transient();
    }
    e.downcast_ref::<xenstore::XsError>()
        .is_some_and(xenstore::XsError::is_unreachable)
}

/// A policy that drops everything: what a vif gets when its own cannot be
/// trusted.
pub fn disabled_policy() -> Policy {
    let mut p = Policy::locked(MacAddr([0; 6]));
    p.mode = Mode::Disabled;
    p
}

/// The index of a direction in [from the guest, to the guest] arrays.
fn dir_index(dir: Direction) -> usize {
    match dir {
        Direction::FromGuest => 0,
        Direction::ToGuest => 1,
    }
}

/// The TC program name for a direction.
fn tc_name(dir: Direction) -> &'static str {
    match dir {
        Direction::FromGuest => program_names::TC_FROM_GUEST,
        Direction::ToGuest => program_names::TC_TO_GUEST,
    }
}

/// State held under the lock: the pinned maps and programs.
pub struct Loaded {
    pub layout: Layout,
    /// The maps, written under the lock this writer holds.
    pub maps: MapsWriter,
    pub version: String,
    /// This version's pinned programs, [from the guest, to the guest]:
    /// plain descriptors, all cls_bpf needs.
    prog_fds: [OwnedFd; 2],
    /// The same as aya programs, opened only for TCX links (aya runs its
    /// kernel feature probes when it opens a pinned program).
    classifiers: Option<[SchedClassifier; 2]>,
    rtnl: Rtnl,
    /// One xenstore connection for every vif of this command (a sync
    /// resolves them all), opened at the first need.
    xs: Option<Xenstore>,
    /// The command applying policies, for [`crate::applied`].
    pub applier: Applier,
}

/// One hook of an interface with a vifguard program on it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attachment {
    /// `tc-ingress` or `tc-egress` (see [`HOOKS`]).
    pub hook: &'static str,
    pub method: AttachMethod,
}

fn tc_err(ix: u32) -> impl FnOnce(TcError) -> LifecycleError {
    move |source| LifecycleError::Tc {
        iface: ifname(ix).unwrap_or_else(|| format!("ifindex {ix}")),
        source,
    }
}

/// The hooks of `ix` that run a vifguard program: pinned TCX links and
/// vifguard's tc filters.
pub fn attachments(
    layout: &Layout,
    rtnl: &mut Rtnl,
    ix: u32,
) -> Result<Vec<Attachment>, LifecycleError> {
    let mut out = Vec::new();
    for (dir, hook) in HOOKS {
        if layout.link(ix, hook).exists() {
            out.push(Attachment {
                hook,
                method: AttachMethod::Tcx,
            });
        }
        let filters = rtnl.filters(ix, dir).map_err(tc_err(ix))?;
        if filters.iter().any(|f| f.is_vifguard()) {
            out.push(Attachment {
                hook,
                method: AttachMethod::Tc,
            });
        }
    }
    Ok(out)
}

fn io_err(path: &Path, action: &'static str) -> impl FnOnce(io::Error) -> LifecycleError {
    let path = path.to_path_buf();
    move |source| LifecycleError::Io {
        path,
        action,
        source,
    }
}

fn link_err(path: &Path, action: &'static str) -> impl FnOnce(String) -> LifecycleError {
    let path = path.to_path_buf();
    move |detail| LifecycleError::Link {
        path,
        action,
        detail,
    }
}

fn programs_pinned(dir: &Path) -> bool {
    [Direction::FromGuest, Direction::ToGuest]
        .iter()
        .all(|d| dir.join(tc_name(*d)).exists())
}

/// Refuses map pins vifguard did not make: anything at `maps/<NAME>` must
/// be a bpf map of the declared type and key/value size, or the loader
/// would reuse it (a directory, a foreign map).
pub fn check_map_pins(layout: &Layout) -> Result<(), LifecycleError> {
    let dir = layout.maps();
    for name in filter_common::map_names::ALL {
        let path = dir.join(name);
        let meta = match std::fs::symlink_metadata(&path) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(io_err(&path, "stat")(e)),
        };
        let foreign = |detail: String| LifecycleError::ForeignPin {
            path: path.clone(),
            detail,
        };
        if meta.is_dir() {
            return Err(foreign("a directory, not a pinned map".into()));
        }
        if !meta.file_type().is_file() {
            return Err(foreign("not a pinned map".into()));
        }
        datapath::check_pinned_map(&dir, name).map_err(|e| foreign(chain(&e)))?;
    }
    Ok(())
}

/// Mounts/creates the layout, takes the lock, takes over what an older
/// map layout left ([`Layout::adopt_older`]), and opens the pinned maps
/// and programs of this binary's version, loading and pinning them first
/// if this version was never loaded.
pub fn ensure_loaded(config: &HostConfig) -> Result<Loaded, LifecycleError> {
    let layout = Layout::new(&config.bpffs);
    layout.ensure()?;
    let lock = layout.lock()?;
    crate::fault::point("locked");
    remove_stale_tmp(&layout);
    layout.adopt_older()?;
    let version = datapath::object_version();
    let progs = layout.progs(&version);
    if !programs_pinned(&progs) {
        // The loader reuses whatever is pinned under maps/: check it all
        // first. Once loaded, opening the maps below checks them again.
        check_map_pins(&layout)?;
        let tmp = layout
            .progs_root()
            .join(format!("tmp-{version}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        std::fs::create_dir_all(&tmp).map_err(io_err(&tmp, "create directory"))?;
        {
            let mut ebpf = datapath::load(config.max_interfaces, Some(&layout.maps()))?;
            for d in [Direction::FromGuest, Direction::ToGuest] {
                let name = tc_name(d);
                let path = tmp.join(name);
                datapath::tc_program(&mut ebpf, name)?
                    .pin(&path)
                    .map_err(|e| link_err(&path, "pin program")(e.to_string()))?;
            }
        }
        crate::fault::point("programs-loaded");
        let _ = std::fs::remove_dir_all(&progs);
        std::fs::rename(&tmp, &progs).map_err(io_err(&progs, "rename pinned programs"))?;
        crate::fault::point("programs-pinned");
    }
    let open = |d: Direction| {
        let path = progs.join(tc_name(d));
        obj_get(&path).map_err(io_err(&path, "open pinned program"))
    };
    let prog_fds = [open(Direction::FromGuest)?, open(Direction::ToGuest)?];
    let maps = MapsWriter::new(open_pinned_maps(&layout)?, lock);
    let rtnl = Rtnl::open().map_err(tc_err(0))?;
    Ok(Loaded {
        layout,
        maps,
        version,
        prog_fds,
        classifiers: None,
        rtnl,
        xs: None,
        applier: Applier::Attach,
    })
}

/// Removes every `progs/tmp-*` directory: programs a loader pinned before
/// it was killed (the chaos test found them left forever, each holding
/// two loaded programs). With the lock held no other loader is running,
/// so any such directory is a dead one's.
fn remove_stale_tmp(layout: &Layout) {
    let Ok(rd) = std::fs::read_dir(layout.progs_root()) else {
        return;
    };
    for entry in rd.filter_map(Result::ok) {
        if entry.file_name().to_string_lossy().starts_with("tmp-") {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// Opens the pinned maps; a pin of another type, key or value size is
/// refused as foreign.
fn open_pinned_maps(layout: &Layout) -> Result<Maps, LifecycleError> {
    let dir = layout.maps();
    Maps::open_pinned(&dir).map_err(|e| match e {
        DatapathError::WrongMap { name, .. } => LifecycleError::ForeignPin {
            path: dir.join(name),
            detail: chain(&e),
        },
        e => e.into(),
    })
}

/// Opens the pinned maps without loading anything (for reading).
pub fn open_maps(config: &HostConfig) -> Result<(Layout, Maps), LifecycleError> {
    let layout = Layout::new(&config.bpffs);
    if !layout
        .maps()
        .join(filter_common::map_names::POLICY)
        .exists()
    {
        return Err(LifecycleError::NotLoaded(layout.versioned()));
    }
    let maps = open_pinned_maps(&layout)?;
    Ok((layout, maps))
}

/// One interface with policy entry `p`, with its counters and, when it
/// learns from DHCP, the addresses in force at `now` (CLOCK_MONOTONIC
/// seconds).
fn vif(
    maps: &Maps,
    ifindex: u32,
    p: &filter_common::IfacePolicy,
    now: u32,
) -> Result<Vif, LifecycleError> {
    let learned = maps
        .learned_of(p)?
        .map(|row| crate::report::in_force(&row, now));
    Ok(Vif {
        ifindex,
        name: ifname(ifindex),
        slot: p.slot,
        counters: maps.counters(p.slot)?,
        learned,
    })
}

/// What a scrape reads: every interface with a policy entry and every
/// ifindex with `no_policy` drops, with their names and counters.
pub fn snapshot(maps: &Maps) -> Result<Snapshot, LifecycleError> {
    let now = crate::sys::clock::monotonic_s().map_err(LifecycleError::Clock)?;
    let mut vifs = Vec::new();
    for (ix, p) in maps.policies()? {
        vifs.push(vif(maps, ix, &p, now)?);
    }
    vifs.sort_by_key(|v| v.ifindex);
    let mut no_policy: Vec<NoPolicy> = maps
        .all_no_policy_counters()?
        .into_iter()
        .map(|(ifindex, drops)| NoPolicy {
            ifindex,
            name: ifname(ifindex),
            drops,
        })
        .collect();
    no_policy.sort_by_key(|n| n.ifindex);
    Ok(Snapshot { vifs, no_policy })
}

/// What `status` shows of every interface with a policy entry (or only
/// `only`): its policy decoded from its entries (tries included),
/// counters, `no_policy` drops and hooks (two tc filter dumps each).
pub fn status(layout: &Layout, maps: &Maps, only: Option<u32>) -> Result<Status, LifecycleError> {
    let no_policy: HashMap<u32, [Counter; 2]> =
        maps.all_no_policy_counters()?.into_iter().collect();
    let mut rtnl = Rtnl::open().map_err(tc_err(0))?;
    let records = Records::new(&layout.root);
    let now = crate::sys::clock::monotonic_s().map_err(LifecycleError::Clock)?;
    let mut entries = Vec::new();
    for (ix, e) in maps.entries()? {
        if only.is_some_and(|o| o != ix) {
            continue;
        }
        entries.push(Entry {
            vif: vif(maps, ix, &e.policy, now)?,
            policy: decode(&e),
            hooks: attachments(layout, &mut rtnl, ix)?,
            no_policy: no_policy.get(&ix).copied().unwrap_or_default(),
            applied: records.get(ix),
        });
    }
    entries.sort_by_key(|e| e.vif.ifindex);
    Ok(Status {
        entries,
        program_versions: layout.prog_versions()?,
    })
}

/// Resolves a vif's policy from xenstore.
pub fn resolve(vif: &VifId, config: &HostConfig) -> Result<Resolved, BoxError> {
    let mut xs = Xenstore::open()?;
    Ok(sources::resolve(&mut xs, vif, config)?)
}

impl Loaded {
    /// Resolves `vif`'s policy over this command's xenstore connection. A
    /// failure drops the connection: the next vif starts on a fresh one.
    fn resolve(&mut self, vif: &VifId, config: &HostConfig) -> Result<Resolved, BoxError> {
        let xs = match &mut self.xs {
            Some(xs) => xs,
            None => self.xs.insert(Xenstore::open()?),
        };
        sources::resolve(xs, vif, config).map_err(|e| {
            self.xs = None;
            e.into()
        })
    }

    /// Puts `ifname` under `vif`'s policy: policy into the maps, then the
    /// links (replacing the program of existing pinned links atomically).
    /// An unusable policy installs [`disabled_policy`], still attaches,
    /// and returns [`LifecycleError::FailedClosed`]; a transient failure
    /// on a vif that has a policy keeps it ([`LifecycleError::KeptPolicy`]).
    /// `interface` says whether `ifname` is new (a hotplug `online`): its
    /// counters then start at zero even if its index had a stale entry.
    pub fn attach(
        &mut self,
        ifname: &str,
        vif: &VifId,
        config: &HostConfig,
        interface: Interface,
    ) -> Result<u32, LifecycleError> {
        let ix = ifindex(ifname).ok_or_else(|| LifecycleError::UnknownInterface(ifname.into()))?;
        let failure = match self.resolve(vif, config) {
            Ok(r) => {
                let installed = self
                    .maps
                    .install(ix, &r.policy, config.events_per_sec, interface);
                crate::fault::point("policy-written");
                installed.err().map(|e| self.not_installed(ix, ifname, e))
            }
            // xenstore away or the keys half-written: the policy the vif
            // has is still the best one known (a new interface has none).
            Err(e) if is_transient(&*e) && self.has_own_policy(ix, interface)? => {
                Some(LifecycleError::KeptPolicy {
                    ifname: ifname.into(),
                    source: e,
                })
            }
            Err(e) => Some(
                match self
                    .maps
                    .install(ix, &disabled_policy(), config.events_per_sec, interface)
                {
                    Ok(_) => LifecycleError::FailedClosed {
                        ifname: ifname.into(),
                        source: e,
                    },
                    Err(e) => self.not_installed(ix, ifname, e),
                },
            ),
        };
        let hooked = self.attach_hooks(ix, ifname, config);
        crate::fault::point("hooks-attached");
        if let Err(e) = hooked {
            if ifindex(ifname) != Some(ix) {
                // Gone mid-operation: leave nothing behind for its index.
                self.detach(ix)?;
                return Err(LifecycleError::Vanished {
                    ifname: ifname.into(),
                    ifindex: ix,
                    source: Box::new(e),
                });
            }
            return Err(e);
        }
        if !matches!(
            failure,
            Some(LifecycleError::KeptPolicy { .. } | LifecycleError::NotInstalled { .. })
        ) {
            Records::new(&self.layout.root).note(ix, self.applier);
        }
        match failure {
            None => Ok(ix),
            Some(e) => Err(e),
        }
    }

    /// Whether `ix` has a policy entry written for this very interface:
    /// it has one, and the interface is known (a re-apply) or already
    /// carries vifguard's hooks on both sides (an `online` run again for a
    /// live vif): tc filters, which a vanished interface takes along, or
    /// TCX links the kernel reports attached to `ix` (a vanished
    /// interface's links report none). Either proves the entry is not a
    /// stale one of a vanished interface whose index this one reuses.
    fn has_own_policy(&mut self, ix: u32, interface: Interface) -> Result<bool, LifecycleError> {
        if self.maps.policy_of(ix)?.is_none() {
            return Ok(false);
        }
        if interface == Interface::Known {
            return Ok(true);
        }
        let hooks = attachments(&self.layout, &mut self.rtnl, ix)?;
        for (_, hook) in HOOKS {
            let filtered = hooks
                .iter()
                .any(|a| a.hook == hook && a.method == AttachMethod::Tc);
            let link = self.layout.link(ix, hook);
            let linked = || {
                crate::sys::bpf::pinned_tcx_ifindex(&link)
                    .map_err(io_err(&link, "read the pinned link"))
            };
            if !filtered && linked()? != Some(ix) {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// A policy the maps refused (no free slot, a full map): the vif
    /// still gets its hooks (attached next), so it either keeps the policy
    /// it has (the install replaces the policy value last) or, without
    /// one, drops everything as `no_policy`. Never an unhooked vif.
    fn not_installed(&self, ix: u32, ifname: &str, source: DatapathError) -> LifecycleError {
        LifecycleError::NotInstalled {
            ifname: ifname.into(),
            kept: matches!(self.maps.policy_of(ix), Ok(Some(_))),
            source,
        }
    }

    /// Installs [`disabled_policy`] on `ifname` and attaches its hooks:
    /// for a vif whose source stayed incomplete too long.
    pub fn fail_closed(&mut self, ifname: &str, config: &HostConfig) -> Result<(), LifecycleError> {
        let ix = ifindex(ifname).ok_or_else(|| LifecycleError::UnknownInterface(ifname.into()))?;
        self.maps.install(
            ix,
            &disabled_policy(),
            config.events_per_sec,
            Interface::Known,
        )?;
        self.attach_hooks(ix, ifname, config)?;
        Records::new(&self.layout.root).note(ix, self.applier);
        Ok(())
    }

    /// Attaches (or atomically re-points) both hooks of `ix` the
    /// configured way, then removes an attachment made the other way (so a
    /// change of `attach` leaves no unfiltered moment).
    pub fn attach_hooks(
        &mut self,
        ix: u32,
        ifname: &str,
        config: &HostConfig,
    ) -> Result<(), LifecycleError> {
        match config.attach {
            AttachMethod::Tc => {
                self.attach_filters(ix, config.tc_priority)?;
                self.remove_links(ix).map(drop)
            }
            AttachMethod::Tcx => {
                self.attach_links(ix, ifname)?;
                self.remove_filters(ix).map(drop)
            }
        }
    }

    /// Puts vifguard's cls_bpf filters on both hooks of `ix` at
    /// `priority` (re-pointing existing ones), then removes vifguard
    /// filters left at another priority (none on a qdisc just created).
    fn attach_filters(&mut self, ix: u32, priority: u16) -> Result<(), LifecycleError> {
        let created = self.rtnl.ensure_clsact(ix).map_err(tc_err(ix))?;
        crate::fault::point("clsact-created");
        for (dir, _) in HOOKS {
            let fd = self.prog_fds[dir_index(dir)].as_fd();
            self.rtnl
                .set_filter(ix, dir, priority, fd, tc_name(dir))
                .map_err(tc_err(ix))?;
            crate::fault::point("filter-set");
            if created {
                continue;
            }
            for f in self.rtnl.filters(ix, dir).map_err(tc_err(ix))? {
                if f.is_vifguard() && f.priority != priority {
                    self.rtnl.delete_filter(ix, dir, &f).map_err(tc_err(ix))?;
                }
            }
        }
        Ok(())
    }

    /// Removes vifguard's tc filters from both hooks of `ix`.
    fn remove_filters(&mut self, ix: u32) -> Result<bool, LifecycleError> {
        let mut had = false;
        for (dir, _) in HOOKS {
            had |= self
                .rtnl
                .delete_vifguard_filters(ix, dir)
                .map_err(tc_err(ix))?
                > 0;
        }
        Ok(had)
    }

    /// Detaches and unpins the TCX links of `ix`.
    fn remove_links(&mut self, ix: u32) -> Result<bool, LifecycleError> {
        let mut had = false;
        for (_, hook) in HOOKS {
            let path = self.layout.link(ix, hook);
            had |= detach_pinned_link(&path).map_err(io_err(&path, "detach link"))?;
        }
        Ok(had)
    }

    /// Attaches (or atomically re-points) pinned TCX links on both hooks
    /// of `ix`.
    fn attach_links(&mut self, ix: u32, ifname: &str) -> Result<(), LifecycleError> {
        let progs = self.layout.progs(&self.version);
        let open = |d: Direction| {
            let path = progs.join(tc_name(d));
            SchedClassifier::from_pin(&path)
                .map_err(|e| link_err(&path, "open pinned program")(e.to_string()))
        };
        let classifiers = match &mut self.classifiers {
            Some(c) => c,
            None => self
                .classifiers
                .insert([open(Direction::FromGuest)?, open(Direction::ToGuest)?]),
        };
        for (dir, hook) in HOOKS {
            let path = self.layout.link(ix, hook);
            let prog = &mut classifiers[dir_index(dir)];
            if path.exists() {
                match replace(prog, &path) {
                    Ok(()) => continue,
                    Err(_) => {
                        // A stale pin (e.g. for an interface that had this
                        // index before): drop it and attach afresh.
                        detach_pinned_link(&path).map_err(io_err(&path, "remove stale pin"))?;
                    }
                }
            }
            let link = attach_tc(prog, ifname, dir)?;
            link.pin(&path)
                .map_err(|e| link_err(&path, "pin link")(e.to_string()))?;
            crate::fault::point("link-pinned");
        }
        Ok(())
    }

    /// Removes `ix`'s hooks (links and filters) and map entries.
    pub fn detach(&mut self, ix: u32) -> Result<bool, LifecycleError> {
        Records::new(&self.layout.root).forget(ix);
        let mut had = self.remove_links(ix)?;
        crate::fault::point("links-removed");
        if ifname(ix).is_some() {
            had |= self.remove_filters(ix)?;
            crate::fault::point("filters-removed");
        }
        had |= self.maps.remove(ix)?;
        crate::fault::point("maps-removed");
        Ok(had)
    }

    /// Removes link pins and map entries of interfaces that no longer
    /// exist. Returns the ifindexes cleaned.
    pub fn clean_vanished(&mut self) -> Result<Vec<u32>, LifecycleError> {
        let mut gone: Vec<u32> = Vec::new();
        for pin in self.layout.link_pins()? {
            if ifname(pin.ifindex).is_none() {
                gone.push(pin.ifindex);
            }
        }
        for (ix, _) in self.maps.policies()? {
            if ifname(ix).is_none() {
                gone.push(ix);
            }
        }
        // Trie and pair entries without a policy entry: a detach killed
        // after it removed the policy (found by the chaos test); only
        // these name the vanished ifindex then.
        for ix in self.maps.extra_entries()?.into_keys() {
            if ifname(ix).is_none() {
                gone.push(ix);
            }
        }
        gone.sort_unstable();
        gone.dedup();
        for ix in &gone {
            self.detach(*ix)?;
        }
        Ok(gone)
    }
}

/// Points a pinned TCX link at `prog` (one bpf_link_update: no moment
/// without a program).
pub fn replace(prog: &mut SchedClassifier, path: &Path) -> Result<(), LifecycleError> {
    let pinned = PinnedLink::from_pin(path)
        .map_err(|e| link_err(path, "open pinned link")(e.to_string()))?;
    let fd: FdLink = pinned.into();
    let link = SchedClassifierLink::try_from(fd)
        .map_err(|e| link_err(path, "use pinned link")(e.to_string()))?;
    let id = prog
        .attach_to_link(link)
        .map_err(|e| link_err(path, "replace program")(e.to_string()))?;
    // The pin keeps the link; our fd may go.
    let link = prog
        .take_link(id)
        .map_err(|e| link_err(path, "replace program")(e.to_string()))?;
    let _fd: FdLink = link
        .try_into()
        .map_err(|e: aya::programs::links::LinkError| {
            link_err(path, "replace program")(e.to_string())
        })?;
    Ok(())
}
