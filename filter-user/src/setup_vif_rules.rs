//! `vifguard setup-vif-rules`: a drop-in for XAPI's `setup-vif-rules`
//! (xen-api `ocaml/xenopsd/scripts/setup-vif-rules`), which xenopsd and
//! its vif hotplug script run as
//! `<program> <xenopsd-backend> <iface> <vm-uuid> <devid> filter|clear`:
//! `filter` when a vif comes online or a tap is added, and after every
//! live change of a VIF's locking mode (xenopsd's `set_locking_mode`
//! rewrites the private keys, then runs it); `clear` when the device is
//! removed. `iface` is `vif<domid>.<devid>` or `tap<domid>.<devid>`.
//!
//! `filter` does what [`crate::lifecycle`] does for `vifguard attach`
//! (policy into the maps, then both hooks) and only then puts the vif on
//! its network's bridge, so no frame of the guest reaches the bridge
//! unfiltered:
//! - the policy is in force: the vif joins its bridge unless it is a port
//!   of it already (a live update touches neither the port nor the link);
//!   mode `disabled` keeps it off (as the stock script does);
//! - the policy could not be applied (it failed closed, or the hooks could
//!   not be attached): the vif is taken off, or kept off, its bridge and
//!   the command fails;
//! - the policy could not be read *now* and the vif keeps the one it has
//!   (xenstore away, xenopsd's keys half-written): bridge membership is
//!   left as it is and the command fails.
//!
//! The device is set up at the end either way, as the stock script does
//! (a vif left down hangs the guest's shutdown).
//!
//! `clear` takes the vif off its bridge first, then detaches the filter.
//! Both hold the bpffs lock throughout, so a concurrent `filter` of the
//! same vif cannot put it back on the bridge between the two steps.

use std::fmt;
use std::process::{Command, Stdio};

use filter_common::Mode;
use xenstore::{Xenstore, XsError};

use crate::applied::Applier;
use crate::config::HostConfig;
use crate::datapath::Interface;
use crate::datapath::pins::Layout;
use crate::hooks::tc::Rtnl;
use crate::lifecycle::{self, LifecycleError, Loaded};
use crate::network::link::Links;
use crate::network::{self, Bridge, NetworkError, ovs};
use crate::policy::MacAddr;
use crate::xen::sources::xapi::{is_uuid, private_path};
use crate::xen::sources::{Reader, SourceError, VifId};
use crate::xen::vif::vif_of_ifname;
use crate::xen::xapi_vif;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Filter,
    Clear,
}

/// The arguments as xenopsd passes them (its backend name, `classic` or
/// `xenlight`, says where the stock script finds xenopsd's state file;
/// vifguard reads xenstore and has no use for it).
#[derive(Clone, Copy, Debug)]
pub struct Request<'a> {
    pub iface: &'a str,
    pub vm_uuid: &'a str,
    pub devid: u32,
    pub action: Action,
}

#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// The arguments do not name this vif.
    #[error("{0}")]
    Usage(String),
    #[error("setup-vif-rules: cannot read xenstore")]
    Xenstore(#[source] XsError),
    #[error(transparent)]
    Lifecycle(#[from] LifecycleError),
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error("{iface}: kept off its bridge because its filter could not be applied")]
    KeptOff {
        iface: String,
        #[source]
        source: LifecycleError,
    },
    #[error(
        "{iface}: its filter could not be applied ({filter}), and taking it off its bridge failed too"
    )]
    StillBridged {
        iface: String,
        filter: String,
        #[source]
        source: NetworkError,
    },
    #[error("{iface}: {doing}")]
    Network {
        iface: String,
        doing: String,
        #[source]
        source: NetworkError,
    },
    #[error("{iface}: no bridge to put it on: neither {nodes} is set")]
    NoBridgeName { iface: String, nodes: String },
}

impl SetupError {
    /// Whether the caller's arguments are at fault (exit code 2).
    pub fn is_usage(&self) -> bool {
        matches!(self, SetupError::Usage(_))
    }
}

/// What a run did, for its log line.
#[derive(Debug)]
pub struct Outcome {
    pub iface: String,
    pub done: String,
    /// What went wrong without failing the command (the PVS proxy hook).
    pub notes: Vec<String>,
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.iface, self.done)?;
        for n in &self.notes {
            write!(f, "; {n}")?;
        }
        Ok(())
    }
}

/// The vif `req` names, after checking the arguments agree with each
/// other and with xenstore's record of the domain.
fn check(xs: &mut Xenstore, req: &Request<'_>) -> Result<VifId, SetupError> {
    let iface = req.iface;
    let vif = vif_of_ifname(iface).ok_or_else(|| {
        SetupError::Usage(format!(
            "{iface}: not named vif<domid>.<devid> or tap<domid>.<devid>"
        ))
    })?;
    if vif.devid != req.devid {
        return Err(SetupError::Usage(format!(
            "{iface} is device {} of domain {}, not device {}",
            vif.devid, vif.domid, req.devid
        )));
    }
    // The uuid becomes part of xenstore paths: nothing but a uuid.
    if !is_uuid(req.vm_uuid) {
        return Err(SetupError::Usage(format!(
            "{:?} is not a VM uuid",
            req.vm_uuid
        )));
    }
    if let Some(vm) = xapi_vif::vm_of_domain(xs, vif.domid).map_err(SetupError::Xenstore)?
        && !vm.eq_ignore_ascii_case(req.vm_uuid)
    {
        return Err(SetupError::Usage(format!(
            "{iface}: domain {} belongs to VM {vm} (/local/domain/{}/vm), not to VM {}",
            vif.domid, vif.domid, req.vm_uuid
        )));
    }
    Ok(vif)
}

/// Runs `req` (see the module documentation).
pub fn run(config: &HostConfig, req: &Request<'_>) -> Result<Outcome, SetupError> {
    let mut xs = Xenstore::open().map_err(SetupError::Xenstore)?;
    let vif = check(&mut xs, req)?;
    let links = Links::open().map_err(|e| SetupError::Network {
        iface: req.iface.into(),
        doing: "reading its link".into(),
        source: e.into(),
    })?;
    let mut run = Run {
        req: *req,
        vif,
        xs,
        links,
        notes: Vec::new(),
    };
    let done = match req.action {
        Action::Filter => run.filter(config)?,
        Action::Clear => run.clear(config)?,
    };
    Ok(Outcome {
        iface: req.iface.into(),
        done,
        notes: run.notes,
    })
}

struct Run<'a> {
    req: Request<'a>,
    vif: VifId,
    xs: Xenstore,
    links: Links,
    notes: Vec<String>,
}

impl Run<'_> {
    fn net(&self, doing: String) -> impl FnOnce(NetworkError) -> SetupError {
        let iface = self.req.iface.to_string();
        move |source| SetupError::Network {
            iface,
            doing,
            source,
        }
    }

    /// The network's bridge, `None` when no key names one or the bridge
    /// it names does not exist (any more).
    fn bridge(&mut self) -> Result<Option<Bridge>, SetupError> {
        let mut r = Reader {
            store: &mut self.xs,
            vif: self.vif,
        };
        let Some(name) = xapi_vif::bridge(&mut r, self.req.vm_uuid)? else {
            return Ok(None);
        };
        match network::find_bridge(&mut self.links, &name) {
            Ok(b) => Ok(Some(b)),
            Err(NetworkError::NoBridge(_)) => Ok(None),
            Err(e) => Err(self.net(format!("looking up bridge {name}"))(e)),
        }
    }

    /// Runs the PVS proxy hook with `command` (`add` or `remove`), as the
    /// stock script does around an Open vSwitch port, when xenopsd set
    /// the vif up for a PVS proxy. Its failure is noted, not fatal: the
    /// proxy caches a PVS server's traffic, the guest works without it.
    fn pvs(&mut self, command: &str) {
        let mut r = Reader {
            store: &mut self.xs,
            vif: self.vif,
        };
        let program = match xapi_vif::pvs_proxy_program(&mut r, self.req.vm_uuid) {
            Ok(None) => return,
            Ok(Some(p)) => p,
            Err(e) => {
                self.notes
                    .push(format!("PVS proxy rules not {command}ed: {e}"));
                return;
            }
        };
        let iface = self.req.iface;
        let uuid = self.req.vm_uuid;
        let out = Command::new(&program)
            .args([
                command,
                // The stock script's device type: the name's first three
                // letters.
                iface.get(..3).unwrap_or(iface),
                iface,
                &private_path(uuid, self.vif.devid),
                &xapi_vif::hotplug_path(uuid, self.vif.domid, self.vif.devid),
            ])
            .stdin(Stdio::null())
            .output();
        match out {
            Ok(o) if o.status.success() => {}
            Ok(o) => self.notes.push(format!(
                "PVS proxy hook `{program} {command}` failed ({}): {}",
                o.status,
                String::from_utf8_lossy(&o.stderr).trim()
            )),
            Err(e) => self
                .notes
                .push(format!("PVS proxy hook {program} could not run: {e}")),
        }
    }

    /// Takes the vif off the bridge it is a port of: a Linux bridge the
    /// kernel names as its master, and an Open vSwitch port when the
    /// kernel's OVS datapath is its master or `bridge` is an OVS bridge
    /// (a port whose device is gone, or on the userspace datapath, has no
    /// master).
    fn take_off(&mut self, ix: Option<u32>, bridge: Option<&Bridge>) -> Result<(), NetworkError> {
        let master = match ix {
            Some(ix) => match self.links.get(ix)?.and_then(|l| l.master) {
                Some(m) => self.links.get(m)?.and_then(|l| l.kind),
                None => None,
            },
            None => None,
        };
        if let (Some(ix), Some("bridge")) = (ix, master.as_deref()) {
            network::leave_linux_bridge(&mut self.links, ix)?;
        }
        if master.as_deref() == Some("openvswitch") || matches!(bridge, Some(Bridge::Ovs { .. })) {
            self.pvs("remove");
            ovs::del_port(self.req.iface)?;
        }
        Ok(())
    }

    fn up(&mut self, ix: u32) -> Result<(), SetupError> {
        network::ensure_up(&mut self.links, ix).map_err(self.net("setting it up".into()))
    }

    fn filter(&mut self, config: &HostConfig) -> Result<String, SetupError> {
        let iface = self.req.iface;
        let ix = lifecycle::ifindex(iface)
            .ok_or_else(|| LifecycleError::UnknownInterface(iface.into()))?;
        // Held until the vif is on its bridge: see the module documentation.
        let mut loaded = lifecycle::ensure_loaded(config)?;
        loaded.applier = Applier::SetupVifRules;
        let interface = if has_hooks(&loaded, ix)? {
            Interface::Known
        } else {
            // Nothing of vifguard's on it yet: a vif just plugged, whose
            // counters start at zero and which has no policy to keep.
            Interface::New
        };
        match loaded.attach(iface, &self.vif, config, interface) {
            Ok(_) => {}
            Err(e @ LifecycleError::KeptPolicy { .. }) => return Err(e.into()),
            Err(e) => return Err(self.keep_off(e)),
        }
        let policy = loaded.maps.policy_of(ix).map_err(LifecycleError::from)?;
        // No entry after a successful attach cannot happen; if it did, the
        // vif would drop everything (`no_policy`): kept off like `disabled`.
        let disabled = policy.is_none_or(|p| p.mode == Mode::Disabled as u8);
        let mac = policy
            .map(|p| MacAddr(p.own.mac).to_string())
            .unwrap_or_default();

        let Some(bridge) = self.bridge()? else {
            return Err(SetupError::NoBridgeName {
                iface: iface.into(),
                nodes: xapi_vif::bridge_nodes(&self.vif, self.req.vm_uuid).join(" nor "),
            });
        };
        let (name, kind) = (bridge.name().to_string(), bridge.kind());
        let done = if disabled {
            self.take_off(Some(ix), Some(&bridge))
                .map_err(self.net(format!("taking it off {kind} {name}")))?;
            format!("filtered, mode disabled: kept off {kind} {name}")
        } else if network::is_port(&mut self.links, &bridge, iface, ix)
            .map_err(self.net(format!("reading its membership of {kind} {name}")))?
        {
            format!("filtered, already a port of {kind} {name} (left as it is)")
        } else {
            let ids = match bridge {
                Bridge::Ovs { .. } => {
                    let mut r = Reader {
                        store: &mut self.xs,
                        vif: self.vif,
                    };
                    xapi_vif::external_ids(&mut r, self.req.vm_uuid, &mac)?
                }
                Bridge::Linux { .. } => Vec::new(),
            };
            network::add_port(&mut self.links, &bridge, iface, ix, &ids)
                .map_err(self.net(format!("adding it to {kind} {name}")))?;
            crate::fault::point("bridge-port");
            if matches!(bridge, Bridge::Ovs { .. }) {
                self.pvs("add");
            }
            format!("filtered, then added to {kind} {name}")
        };
        self.up(ix)?;
        drop(loaded);
        Ok(format!("(ifindex {ix}) {done}"))
    }

    /// After a filter could not be applied: the vif off its bridge and up,
    /// and the error to return.
    fn keep_off(&mut self, filter: LifecycleError) -> SetupError {
        let iface = self.req.iface.to_string();
        let ix = lifecycle::ifindex(&iface);
        // The bridge named in xenstore is only needed to find an Open
        // vSwitch port the kernel does not show; when xenstore is what
        // failed, the kernel's view is all there is.
        let bridge = self.bridge().ok().flatten();
        let off = self
            .take_off(ix, bridge.as_ref())
            .and_then(|()| ix.map_or(Ok(()), |ix| network::ensure_up(&mut self.links, ix)));
        match off {
            Ok(()) => SetupError::KeptOff {
                iface,
                source: filter,
            },
            Err(source) => SetupError::StillBridged {
                iface,
                filter: std::iter::successors(Some(&filter as &dyn std::error::Error), |e| {
                    e.source()
                })
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(": "),
                source,
            },
        }
    }

    fn clear(&mut self, config: &HostConfig) -> Result<String, SetupError> {
        let iface = self.req.iface;
        let ix = lifecycle::ifindex(iface);
        let layout = Layout::new(&config.bpffs);
        // Held from before the vif leaves its bridge until it is
        // detached: see the module documentation.
        // State of an older map layout counts (ensure_loaded takes it
        // over); a root that cannot be listed is left to ensure_loaded to
        // report.
        let loaded = if layout.has_state().unwrap_or(true) {
            Some(lifecycle::ensure_loaded(config))
        } else {
            None
        };
        // Off the bridge even if the filter's state cannot be opened (a vif
        // on no bridge needs no filter), and as far as the kernel shows
        // even if xenstore cannot name the bridge; an Open vSwitch port
        // the kernel does not show needs that name, and without it the
        // filter stays (the error below).
        let bridge = self.bridge();
        self.take_off(ix, bridge.as_ref().ok().and_then(Option::as_ref))
            .map_err(self.net("taking it off its bridge".into()))?;
        bridge?;
        if let Some(ix) = ix {
            self.up(ix)?;
        }
        let Some(loaded) = loaded else {
            return Ok("off its bridge (vifguard has no state here)".into());
        };
        let mut loaded = loaded?;
        match ix {
            Some(ix) => {
                loaded.detach(ix)?;
                Ok(format!("(ifindex {ix}) off its bridge, then detached"))
            }
            None => {
                let gone = loaded.clean_vanished()?;
                Ok(format!(
                    "gone; off its bridge, removed the state of vanished ifindexes {gone:?}"
                ))
            }
        }
    }
}

/// Whether `ix` has a vifguard program on any hook.
fn has_hooks(loaded: &Loaded, ix: u32) -> Result<bool, LifecycleError> {
    let mut rtnl = Rtnl::open().map_err(|source| LifecycleError::Tc {
        iface: format!("ifindex {ix}"),
        source,
    })?;
    Ok(!lifecycle::attachments(&loaded.layout, &mut rtnl, ix)?.is_empty())
}
