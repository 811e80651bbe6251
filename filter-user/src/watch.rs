//! `vifguard watch`: follows live policy changes where no toolstack hook
//! fires (xl, OpenStack, keys written by hand), by watching xenstore.
//!
//! Three watches cover every policy node a source reads: the backends
//! (`/local/domain/0/backend/vif`: `ip`, `mac`, `vifguard/*`), XAPI's
//! private directories (`/xapi`), and the guests' trees
//! (`/local/domain`: the `vm` pointer and OpenStack's `vm-data`). An event
//! marks the vifs it concerns; a vif is re-applied once its keys have been
//! quiet for [`SETTLE`], because toolstacks write them one at a time
//! (xenopsd deletes XAPI's three keys and writes them back outside a
//! transaction). Only vifs vifguard already filters are touched: new vifs
//! are the hotplug's.
//!
//! While a source is incomplete (XAPI's directory without
//! `locking-mode`) the vif keeps its policy; if it stays incomplete for
//! [`INCOMPLETE_LIMIT`] the vif fails closed. When xenstored goes away the
//! watch reconnects with a backoff, registers its watches again and
//! re-applies every filtered vif (what changed meanwhile is unknown).
//! The bpffs lock is held for one apply at a time, so hotplugs and syncs
//! interleave with the watch.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use xenstore::{Domid, Xenstore, XsError};

use crate::applied::Applier;
use crate::config::HostConfig;
use crate::datapath::Interface;
use crate::lifecycle::{self, LifecycleError};
use crate::xen::sources::SourceError;
use crate::xen::sources::xapi;
use crate::xen::vif::{VifId, vif_of_ifname};

/// How long a vif's keys must be quiet before it is re-applied.
pub const SETTLE: Duration = Duration::from_millis(50);
/// How long a source may stay incomplete before the vif fails closed.
pub const INCOMPLETE_LIMIT: Duration = Duration::from_secs(5);
/// The longest wait between reconnection attempts.
const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// The watched paths; their token is the path itself.
pub const WATCHED: [&str; 3] = ["/local/domain/0/backend/vif", "/xapi", "/local/domain"];

/// Which vifs a change of `path` concerns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Touched {
    /// Nothing vifguard reads.
    Nothing,
    /// One vif (its backend directory).
    Vif(VifId),
    /// Every vif of a guest (its `vm` pointer or OpenStack records).
    Domain(Domid),
    /// The vifs of the VM `uuid` with device `devid` (XAPI's keys).
    Xapi { uuid: String, devid: u32 },
    /// Everything (a watch fired for itself: registration, or a whole
    /// tree removed).
    All,
}

/// Classifies an event path.
pub fn touched(path: &str) -> Touched {
    if WATCHED.contains(&path) {
        return Touched::All;
    }
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let num = |s: &str| s.parse::<u32>().ok();
    match parts.as_slice() {
        ["local", "domain", "0", "backend", "vif", d, i, ..] => match (num(d), num(i)) {
            (Some(d), Some(i)) if d != 0 => Touched::Vif(VifId::new(0, d, i)),
            _ => Touched::Nothing,
        },
        ["local", "domain", d, "vm"] | ["local", "domain", d, "vm-data", ..] => num(d)
            .filter(|d| *d != 0)
            .map_or(Touched::Nothing, Touched::Domain),
        ["xapi", uuid, "private", "vif", i, ..] if xapi::is_uuid(uuid) => match num(i) {
            Some(devid) => Touched::Xapi {
                uuid: uuid.to_string(),
                devid,
            },
            None => Touched::Nothing,
        },
        _ => Touched::Nothing,
    }
}

/// A filtered interface waiting to be re-applied.
struct Pending {
    vif: VifId,
    /// The last change seen for it.
    changed: Instant,
    /// Since when its source has been incomplete, if it is.
    incomplete_since: Option<Instant>,
}

/// The watch's state between events.
pub struct Watcher {
    config: HostConfig,
    pending: HashMap<String, Pending>,
}

impl Watcher {
    pub fn new(config: HostConfig) -> Watcher {
        Watcher {
            config,
            pending: HashMap::new(),
        }
    }

    /// Runs until an error that reconnecting cannot cure (the bpffs state
    /// unusable); logs one line per change through `log`.
    pub fn run(&mut self, log: &dyn Fn(&str)) -> Result<(), LifecycleError> {
        let mut backoff = Duration::from_millis(100);
        loop {
            let mut xs = match connect() {
                Ok(xs) => {
                    backoff = Duration::from_millis(100);
                    log(&format!("watching xenstore at {}", xs.endpoint().display()));
                    xs
                }
                Err(e) => {
                    log(&format!(
                        "xenstore unreachable ({e}); retrying in {backoff:?}"
                    ));
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                    continue;
                }
            };
            match self.serve(&mut xs, log) {
                Ok(()) => return Ok(()),
                Err(WatchError::Xenstore(e)) => {
                    log(&format!(
                        "xenstore connection lost ({}); reconnecting",
                        crate::report::chain(&e)
                    ));
                }
                Err(WatchError::Lost(e)) => {
                    log(&format!("xenstore unusable ({e}); reconnecting"));
                }
                Err(WatchError::Lifecycle(e)) => return Err(e),
            }
        }
    }

    /// Serves one connection until it fails.
    fn serve(&mut self, xs: &mut Xenstore, log: &dyn Fn(&str)) -> Result<(), WatchError> {
        for w in WATCHED {
            xs.watch(w, w)?;
        }
        // What changed while nobody watched is unknown: re-read everything
        // (the registration events say the same).
        self.mark(Touched::All, xs)?;
        loop {
            let wait = self.next_deadline().map_or(Duration::from_secs(1), |d| {
                d.saturating_duration_since(Instant::now())
            });
            if let Some(e) = xs.next_event(wait)? {
                self.mark(touched(&e.path), xs)?;
                // Drain what came with it before applying anything.
                continue;
            }
            self.apply_settled(log)?;
        }
    }

    /// When the next pending vif is due.
    fn next_deadline(&self) -> Option<Instant> {
        self.pending
            .values()
            .map(|p| match p.incomplete_since {
                Some(since) => (p.changed + SETTLE).max(since + INCOMPLETE_LIMIT),
                None => p.changed + SETTLE,
            })
            .min()
    }

    /// Marks the filtered interfaces `t` concerns as changed now.
    fn mark(&mut self, t: Touched, xs: &mut Xenstore) -> Result<(), WatchError> {
        if t == Touched::Nothing {
            return Ok(());
        }
        let now = Instant::now();
        for (ifname, vif) in filtered(&self.config)? {
            let hit = match &t {
                Touched::Nothing => false,
                Touched::All => true,
                Touched::Vif(v) => *v == vif,
                Touched::Domain(d) => vif.domid == *d,
                Touched::Xapi { uuid, devid } => {
                    vif.devid == *devid && vm_uuid(xs, vif.domid)?.as_deref() == Some(uuid)
                }
            };
            if hit {
                let p = self.pending.entry(ifname).or_insert(Pending {
                    vif,
                    changed: now,
                    incomplete_since: None,
                });
                p.changed = now;
            }
        }
        Ok(())
    }

    /// Re-applies every pending vif whose keys have settled.
    fn apply_settled(&mut self, log: &dyn Fn(&str)) -> Result<(), WatchError> {
        let now = Instant::now();
        let due: Vec<String> = self
            .pending
            .iter()
            .filter(|(_, p)| now >= p.changed + SETTLE)
            .map(|(n, _)| n.clone())
            .collect();
        for ifname in due {
            let Some(p) = self.pending.get_mut(&ifname) else {
                continue;
            };
            let vif = p.vif;
            let started = Instant::now();
            let mut loaded = lifecycle::ensure_loaded(&self.config)?;
            loaded.applier = Applier::Watch;
            match loaded.attach(&ifname, &vif, &self.config, Interface::Known) {
                Ok(_) => {
                    log(&format!(
                        "{ifname}: policy re-applied ({} ms after the last change)",
                        p.changed.elapsed().as_millis()
                    ));
                    self.pending.remove(&ifname);
                }
                Err(LifecycleError::KeptPolicy { source, .. }) if is_incomplete(&*source) => {
                    let since = *p.incomplete_since.get_or_insert(started);
                    if since.elapsed() >= INCOMPLETE_LIMIT {
                        loaded.fail_closed(&ifname, &self.config)?;
                        log(&format!(
                            "{ifname}: failed closed: its source stayed incomplete for {INCOMPLETE_LIMIT:?} ({source})"
                        ));
                        self.pending.remove(&ifname);
                    } else {
                        // Look again when the limit is up, unless a write
                        // comes first.
                        p.changed = now;
                    }
                }
                Err(LifecycleError::KeptPolicy { source, .. }) => {
                    // xenstore away: the reconnect re-reads everything.
                    return Err(WatchError::Lost(crate::report::chain(&*source)));
                }
                Err(
                    e @ (LifecycleError::FailedClosed { .. }
                    | LifecycleError::UnknownInterface(_)
                    | LifecycleError::Vanished { .. }),
                ) => {
                    log(&format!("{ifname}: {}", crate::report::chain(&e)));
                    self.pending.remove(&ifname);
                }
                Err(e) => return Err(WatchError::Lifecycle(e)),
            }
        }
        Ok(())
    }
}

/// Why serving a connection stopped.
enum WatchError {
    Xenstore(XsError),
    Lost(String),
    Lifecycle(LifecycleError),
}

impl From<XsError> for WatchError {
    fn from(e: XsError) -> WatchError {
        WatchError::Xenstore(e)
    }
}

impl From<LifecycleError> for WatchError {
    fn from(e: LifecycleError) -> WatchError {
        WatchError::Lifecycle(e)
    }
}

fn connect() -> Result<Xenstore, XsError> {
    Xenstore::open()
}

/// Whether a resolve failure is an incomplete source.
fn is_incomplete(e: &(dyn std::error::Error + 'static)) -> bool {
    matches!(
        e.downcast_ref::<SourceError>(),
        Some(SourceError::Incomplete { .. })
    )
}

/// The VM uuid of guest `domid` (its `vm` pointer, `/vm/<uuid>`).
fn vm_uuid(xs: &mut Xenstore, domid: Domid) -> Result<Option<String>, XsError> {
    let v = xs.read_opt(&format!("/local/domain/{domid}/vm"))?;
    Ok(v.and_then(|v| {
        String::from_utf8_lossy(&v)
            .trim()
            .strip_prefix("/vm/")
            .map(str::to_string)
    }))
}

/// The interfaces vifguard filters now (a policy entry) that are named
/// like a vif, with the vif each is for.
fn filtered(config: &HostConfig) -> Result<Vec<(String, VifId)>, LifecycleError> {
    let (_, maps) = match lifecycle::open_maps(config) {
        Ok(m) => m,
        // Nothing loaded yet: nothing is filtered.
        Err(LifecycleError::NotLoaded(_)) => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    for (ix, _) in maps.policies()? {
        if let Some(name) = lifecycle::ifname(ix)
            && let Some(vif) = vif_of_ifname(&name)
        {
            out.push((name, vif));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_paths_name_the_vifs_they_concern() {
        let uuid = "6a1f3c1e-0b4e-4d7b-9a42-3e6c0f1d2b77";
        for (path, want) in [
            ("/local/domain/0/backend/vif", Touched::All),
            ("/xapi", Touched::All),
            (
                "/local/domain/0/backend/vif/5/1/vifguard/mode",
                Touched::Vif(VifId::new(0, 5, 1)),
            ),
            (
                "/local/domain/0/backend/vif/5/1",
                Touched::Vif(VifId::new(0, 5, 1)),
            ),
            ("/local/domain/0/backend/vif/5", Touched::Nothing),
            ("/local/domain/7/vm", Touched::Domain(7)),
            (
                "/local/domain/7/vm-data/networking/00163e000007",
                Touched::Domain(7),
            ),
            ("/local/domain/7/data/updated", Touched::Nothing),
            ("/local/domain/0/vm", Touched::Nothing),
            (
                &format!("/xapi/{uuid}/private/vif/2/ipv4-allowed"),
                Touched::Xapi {
                    uuid: uuid.to_string(),
                    devid: 2,
                },
            ),
            (&format!("/xapi/{uuid}/hotplug/5/vif/2"), Touched::Nothing),
            ("/xapi/not-a-uuid/private/vif/2", Touched::Nothing),
        ] {
            assert_eq!(touched(path), want, "{path}");
        }
    }
}
