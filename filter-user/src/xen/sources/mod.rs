//! Where a vif's policy comes from: xenstore, in the conventions of the
//! toolstacks that run Xen hosts.
//!
//! # Sources and precedence
//!
//! A vif is named by its backend path, `XENBUS_PATH` =
//! `backend/vif/<domid>/<devid>` below the backend domain's home
//! `/local/domain/<backend>` (dom0: `/local/domain/0/backend/vif/5/0`).
//! One source supplies the mode and the address lists, the first that
//! applies in this order:
//!
//! 1. **XAPI / XCP-ng** ([`xapi`]): `/local/domain/<domid>/vm` names the VM
//!    (`/vm/<uuid>`) and `/xapi/<uuid>/private/vif/<devid>/locking-mode`
//!    exists. Keys `locking-mode`, `ipv4-allowed`, `ipv6-allowed`, as
//!    xenopsd writes them (comma-separated lists).
//! 2. **OpenStack (nova's XenServer driver)** ([`openstack`]):
//!    `/local/domain/<domid>/vm-data/networking/<MAC without colons>` exists
//!    (case-insensitive match) and holds nova's JSON record (`mac`,
//!    `ips[].ip`, `ip6s[].ip`, `enabled`). Mode `locked` unless the
//!    backend's `vifguard/mode` says otherwise.
//! 3. **xl / upstream Xen** ([`xl`]): the backend directory itself, `ip`
//!    (xl's `ip=`, space-separated) plus vifguard's own keys there:
//!    `vifguard/mode` (default `network_default`) and `vifguard/ipv6`.
//!
//! Whatever the source:
//! - the MAC is always the backend's `mac` key (written by the toolstack in
//!   the dom0-owned backend directory; a vif without it fails);
//! - the bridge is the backend's `bridge` key (used for `network_default`);
//! - `vifguard/destinations` (for `isolated`) and
//!   `vifguard/options/<name>` in the backend directory apply, over the
//!   option defaults of the host configuration, over the defaults of
//!   docs/policy.md;
//! - `network_default` resolves through the host configuration's
//!   `[network_default]` table for the vif's bridge.
//!
//! # Trust
//!
//! A guest can write parts of its own `/local/domain/<domid>` tree. Every
//! node read as policy (including the `vm` pointer and nova's `vm-data`
//! record, which live in the guest's tree) is checked before use: it must
//! be owned by dom0 or the backend domain, its default permission must not
//! grant write, and no per-domain entry may grant write to a domain other
//! than dom0 or the backend. Otherwise the vif fails closed with
//! [`SourceError::Untrusted`] naming the node. A node the guest created is
//! owned by the guest, so a guest cannot plant a key where none was either.
//!
//! Each resolved field records the nodes (or host configuration keys) it
//! came from: [`Provenance`], shown by `vifguard policy IFACE`.

pub mod openstack;
pub mod xapi;
pub mod xl;

use std::fmt;

use crate::config::{ConfigKey, HostConfig};
use crate::policy::{
    Cidr, Cidr4, Cidr6, MAX_ADDRESSES, MacAddr, Mode, Options, Policy, PolicyError,
    parse_ethertype, parse_link_local, parse_mode,
};
use xenstore::{Domid, Perms, Xenstore, XsError, found, perms_reply};

/// Read access to a xenstore tree: implemented by [`Xenstore`]; tests can
/// use an in-memory map.
pub trait Store {
    /// A node's value, `None` if it does not exist.
    fn read_opt(&mut self, path: &str) -> Result<Option<Vec<u8>>, XsError>;
    /// A node's children, `None` if it does not exist.
    fn directory_opt(&mut self, path: &str) -> Result<Option<Vec<String>>, XsError>;
    /// A node's permissions.
    fn get_perms(&mut self, path: &str) -> Result<Perms, XsError>;
}

impl Store for Xenstore {
    fn read_opt(&mut self, path: &str) -> Result<Option<Vec<u8>>, XsError> {
        Xenstore::read_opt(self, path)
    }

    fn directory_opt(&mut self, path: &str) -> Result<Option<Vec<String>>, XsError> {
        found(self.directory(path))
    }

    fn get_perms(&mut self, path: &str) -> Result<Perms, XsError> {
        Xenstore::get_perms(self, path)
    }
}

/// The vif a policy is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct VifId {
    /// Domain running the backend (netback): dom0 or a driver domain.
    pub backend_domid: Domid,
    /// The guest.
    pub domid: Domid,
    /// Device index within the guest.
    pub devid: u32,
}

impl VifId {
    pub const fn new(backend_domid: Domid, domid: Domid, devid: u32) -> VifId {
        VifId {
            backend_domid,
            domid,
            devid,
        }
    }

    /// From `XENBUS_PATH` as the hotplug scripts get it:
    /// `backend/vif/<domid>/<devid>`, relative to the backend domain's home
    /// (`backend_domid`, usually 0), or absolute
    /// (`/local/domain/<backend>/backend/vif/<domid>/<devid>`).
    pub fn from_xenbus_path(xenbus_path: &str, backend_domid: Domid) -> Result<VifId, SourceError> {
        let bad = || SourceError::BadXenbusPath {
            path: xenbus_path.to_string(),
        };
        let parts: Vec<&str> = xenbus_path.trim().split('/').collect();
        let (backend, rest) = match parts.as_slice() {
            ["", "local", "domain", b, rest @ ..] => (parse_num(b).ok_or_else(bad)?, rest),
            rest => (backend_domid, rest),
        };
        match rest {
            ["backend", "vif", d, i] => {
                let domid = parse_num(d).ok_or_else(bad)?;
                let devid = parse_num(i).ok_or_else(bad)?;
                if domid > 0xffff || backend > 0xffff || domid == backend {
                    return Err(bad());
                }
                Ok(VifId::new(backend, domid, devid))
            }
            _ => Err(bad()),
        }
    }

    /// The backend directory, `/local/domain/<backend>/backend/vif/<domid>/<devid>`.
    pub fn backend_path(&self) -> String {
        format!(
            "/local/domain/{}/backend/vif/{}/{}",
            self.backend_domid, self.domid, self.devid
        )
    }

    /// The guest's home, `/local/domain/<domid>`.
    pub fn domain_path(&self) -> String {
        format!("/local/domain/{}", self.domid)
    }

    /// The netback interface name, `vif<domid>.<devid>`.
    pub fn ifname(&self) -> String {
        format!("vif{}.{}", self.domid, self.devid)
    }
}

impl fmt::Display for VifId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "vif{}.{}", self.domid, self.devid)
    }
}

fn parse_num(s: &str) -> Option<u32> {
    if s.is_empty() || s.len() > 10 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Why a vif's policy could not be resolved. Every variant names the vif
/// and the xenstore node (or value) to fix.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("invalid XENBUS_PATH {path:?} (want backend/vif/<domid>/<devid>)")]
    BadXenbusPath { path: String },
    #[error("{vif}: {source}")]
    Xenstore {
        vif: VifId,
        #[source]
        source: XsError,
    },
    #[error("{vif}: required xenstore node {node} is missing")]
    Missing { vif: VifId, node: String },
    #[error(
        "{vif}: xenstore node {node} is not trusted as policy: {reason} (permissions {perms}); the vif fails closed"
    )]
    Untrusted {
        vif: VifId,
        node: String,
        reason: String,
        perms: String,
    },
    #[error("{vif}: xenstore node {node}: {source}")]
    BadValue {
        vif: VifId,
        node: String,
        #[source]
        source: PolicyError,
    },
    #[error(
        "{vif}: xenstore node {node} = {value:?}: want a boolean (1/0, true/false, on/off, yes/no)"
    )]
    BadBool {
        vif: VifId,
        node: String,
        value: String,
    },
    #[error("{vif}: xenstore node {node} is not a vifguard option (known: {known})")]
    UnknownOption {
        vif: VifId,
        node: String,
        known: &'static str,
    },
    #[error("{vif}: xenstore node {node} holds a value that is not UTF-8 text")]
    NotText { vif: VifId, node: String },
    #[error("{vif}: xenstore node {node} = {value:?} is not a VM path (want /vm/<uuid>)")]
    BadVmPath {
        vif: VifId,
        node: String,
        value: String,
    },
    #[error("{vif}: xenstore node {node} holds invalid JSON: {detail}")]
    BadJson {
        vif: VifId,
        node: String,
        detail: String,
    },
    #[error("{vif}: xenstore node {node}: {detail}")]
    BadRecord {
        vif: VifId,
        node: String,
        detail: String,
    },
    #[error(
        "{vif}: xenstore node {node} is for MAC {found}, but the vif's backend {mac_node} says {expected}"
    )]
    MacMismatch {
        vif: VifId,
        node: String,
        found: String,
        expected: MacAddr,
        mac_node: String,
    },
    #[error("{vif}: more than one xenstore node matches the vif's MAC: {nodes}")]
    Ambiguous { vif: VifId, nodes: String },
    #[error("{vif}: resolved policy is invalid: {source}")]
    Invalid {
        vif: VifId,
        #[source]
        source: PolicyError,
    },
}

/// Which convention supplied the mode and the addresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SourceKind {
    Xapi,
    OpenStack,
    Xl,
}

impl SourceKind {
    pub const fn name(self) -> &'static str {
        match self {
            SourceKind::Xapi => "xapi",
            SourceKind::OpenStack => "openstack",
            SourceKind::Xl => "xl",
        }
    }
}

impl fmt::Display for SourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Where one value came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// A xenstore node (absolute path).
    Xenstore(String),
    /// A key of the host configuration (or its default).
    HostConfig(ConfigKey),
    /// The default of docs/policy.md, nothing configured it.
    Default,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Xenstore(p) => write!(f, "xenstore {p}"),
            Origin::HostConfig(k) => write!(f, "host config {k}"),
            Origin::Default => f.write_str("default"),
        }
    }
}

/// Origins of each option.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OptionsProvenance {
    pub dhcp_client: Origin,
    pub dhcp_server: Origin,
    pub router: Origin,
    pub ipv6_link_local: Origin,
    pub egress_filter: Origin,
    pub ethertypes: Origin,
}

/// Origins of each field of a resolved policy. List fields can come from
/// several nodes; an empty list means nothing set it (empty list).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Provenance {
    pub mode: Vec<Origin>,
    pub mac: Vec<Origin>,
    pub bridge: Vec<Origin>,
    pub ipv4: Vec<Origin>,
    pub ipv6: Vec<Origin>,
    pub destinations: Vec<Origin>,
    pub options: OptionsProvenance,
}

/// A resolved, validated policy and where it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolved {
    pub vif: VifId,
    pub source: SourceKind,
    /// The backend's `bridge` key, if set.
    pub bridge: Option<String>,
    pub policy: Policy,
    pub provenance: Provenance,
}

fn join_origins(o: &[Origin]) -> String {
    if o.is_empty() {
        "not set".to_string()
    } else {
        o.iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

fn join_list<T: fmt::Display>(v: &[T]) -> String {
    if v.is_empty() {
        "(none)".to_string()
    } else {
        v.iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(" ")
    }
}

impl Resolved {
    /// Human-readable lines: each field, its value, and where it came from.
    pub fn describe(&self) -> String {
        let p = &self.policy;
        let o = &p.options;
        let po = &self.provenance.options;
        let onoff = |b: bool| if b { "on" } else { "off" };
        let ethertypes: Vec<String> = o.ethertypes.iter().map(|e| format!("0x{e:04x}")).collect();
        let rows: Vec<(&str, String, String)> = vec![
            (
                "mode",
                p.mode.name().to_string(),
                join_origins(&self.provenance.mode),
            ),
            ("mac", p.mac.to_string(), join_origins(&self.provenance.mac)),
            (
                "bridge",
                self.bridge.clone().unwrap_or_else(|| "(none)".into()),
                join_origins(&self.provenance.bridge),
            ),
            (
                "ipv4",
                join_list(&p.ipv4),
                join_origins(&self.provenance.ipv4),
            ),
            (
                "ipv6",
                join_list(&p.ipv6),
                join_origins(&self.provenance.ipv6),
            ),
            (
                "destinations",
                join_list(&p.destinations),
                join_origins(&self.provenance.destinations),
            ),
            (
                "dhcp_client",
                onoff(o.dhcp_client).into(),
                po.dhcp_client.to_string(),
            ),
            (
                "dhcp_server",
                onoff(o.dhcp_server).into(),
                po.dhcp_server.to_string(),
            ),
            ("router", onoff(o.router).into(), po.router.to_string()),
            (
                "ipv6_link_local",
                o.link_local.name().into(),
                po.ipv6_link_local.to_string(),
            ),
            (
                "egress_filter",
                onoff(o.egress_filter).into(),
                po.egress_filter.to_string(),
            ),
            (
                "ethertypes",
                join_list(&ethertypes),
                po.ethertypes.to_string(),
            ),
        ];
        let mut out = format!(
            "{} (domain {}, device {}, backend {}), source {}\n",
            self.vif,
            self.vif.domid,
            self.vif.devid,
            self.vif.backend_path(),
            self.source
        );
        for (name, value, origin) in rows {
            out.push_str(&format!("  {name:<16} {value}  <- {origin}\n"));
        }
        out
    }
}

/// Names of the per-vif options under `vifguard/options/`.
pub const OPTION_NAMES: &str =
    "dhcp_client, dhcp_server, router, ipv6_link_local, egress_filter, ethertypes";

/// Why a node's permissions make it untrusted, or `None` if trusted.
/// Trusted: owned by dom0 or `vif.backend_domid`, no write by default, and
/// no per-domain entry granting write to anyone else.
pub fn distrust(perms: &Perms, vif: &VifId) -> Option<String> {
    let privileged = |d: Domid| d == 0 || d == vif.backend_domid;
    let who = |d: Domid| {
        if d == vif.domid {
            format!("the guest (domain {d})")
        } else {
            format!("domain {d}")
        }
    };
    if !privileged(perms.owner) {
        return Some(format!("owned by {}", who(perms.owner)));
    }
    if perms.default.can_write() {
        return Some(format!(
            "every domain, including the guest (domain {}), may write it (default permission '{}')",
            vif.domid,
            perms.default.letter()
        ));
    }
    perms
        .acl
        .iter()
        .find(|e| e.access.can_write() && !privileged(e.domid))
        .map(|e| format!("{} may write it", who(e.domid)))
}

/// Reads policy nodes for one vif, checking trust.
pub(crate) struct Reader<'a> {
    pub store: &'a mut dyn Store,
    pub vif: VifId,
}

impl Reader<'_> {
    pub fn xs(&self, source: XsError) -> SourceError {
        SourceError::Xenstore {
            vif: self.vif,
            source,
        }
    }

    /// A node used as policy: `None` if absent, its text if present and
    /// trusted.
    pub fn node(&mut self, path: &str) -> Result<Option<String>, SourceError> {
        let Some(raw) = self.store.read_opt(path).map_err(|e| self.xs(e))? else {
            return Ok(None);
        };
        self.check(path)?;
        String::from_utf8(raw)
            .map(Some)
            .map_err(|_| SourceError::NotText {
                vif: self.vif,
                node: path.to_string(),
            })
    }

    /// A node that must exist.
    pub fn required(&mut self, path: &str) -> Result<String, SourceError> {
        self.node(path)?.ok_or_else(|| SourceError::Missing {
            vif: self.vif,
            node: path.to_string(),
        })
    }

    /// Checks the permissions of `path`.
    pub fn check(&mut self, path: &str) -> Result<(), SourceError> {
        let perms = match self.store.get_perms(path) {
            Ok(p) => p,
            // Removed between the read and now: treat as the read failing.
            Err(e) => return Err(self.xs(e)),
        };
        match distrust(&perms, &self.vif) {
            None => Ok(()),
            Some(reason) => Err(SourceError::Untrusted {
                vif: self.vif,
                node: path.to_string(),
                reason,
                perms: perms.to_string(),
            }),
        }
    }

    pub fn directory(&mut self, path: &str) -> Result<Option<Vec<String>>, SourceError> {
        self.store.directory_opt(path).map_err(|e| self.xs(e))
    }

    pub fn bad(&self, node: &str, source: PolicyError) -> SourceError {
        SourceError::BadValue {
            vif: self.vif,
            node: node.to_string(),
            source,
        }
    }
}

/// Splits a list value on whitespace and commas.
pub fn list_items(value: &str) -> impl Iterator<Item = &str> {
    value
        .split(|c: char| c.is_whitespace() || c == ',')
        .filter(|s| !s.is_empty())
}

fn bounded(count: usize, what: &'static str) -> Result<(), PolicyError> {
    if count > MAX_ADDRESSES {
        Err(PolicyError::TooMany {
            what,
            count,
            max: MAX_ADDRESSES,
        })
    } else {
        Ok(())
    }
}

fn push_unique<T: PartialEq>(v: &mut Vec<T>, x: T) {
    if !v.contains(&x) {
        v.push(x);
    }
}

/// Parses a list of IPv4 and IPv6 addresses or prefixes into `v4`/`v6`.
pub(crate) fn parse_mixed(
    items: &[&str],
    v4: &mut Vec<Cidr4>,
    v6: &mut Vec<Cidr6>,
) -> Result<(), PolicyError> {
    bounded(items.len(), "addresses")?;
    for item in items {
        match item.parse::<Cidr>()? {
            Cidr::V4(c) => push_unique(v4, c),
            Cidr::V6(c) => push_unique(v6, c),
        }
    }
    Ok(())
}

pub(crate) fn parse_v4_list(items: &[&str]) -> Result<Vec<Cidr4>, PolicyError> {
    bounded(items.len(), "IPv4 addresses")?;
    let mut out = Vec::new();
    for i in items {
        push_unique(&mut out, i.parse::<Cidr4>()?);
    }
    Ok(out)
}

pub(crate) fn parse_v6_list(items: &[&str]) -> Result<Vec<Cidr6>, PolicyError> {
    bounded(items.len(), "IPv6 addresses")?;
    let mut out = Vec::new();
    for i in items {
        push_unique(&mut out, i.parse::<Cidr6>()?);
    }
    Ok(out)
}

fn parse_bool(s: &str) -> Option<bool> {
    match s.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "on" | "yes" => Some(true),
        "0" | "false" | "off" | "no" => Some(false),
        _ => None,
    }
}

/// What a source contributes: the mode (`None` = `network_default`) and
/// the addresses, with their origins.
pub(crate) struct Addresses {
    pub mode: Option<Mode>,
    pub mode_origin: Vec<Origin>,
    pub ipv4: Vec<Cidr4>,
    pub ipv4_origin: Vec<Origin>,
    pub ipv6: Vec<Cidr6>,
    pub ipv6_origin: Vec<Origin>,
}

/// Keys in the backend directory, relative to it.
pub mod keys {
    /// The vif's MAC (toolstack).
    pub const MAC: &str = "mac";
    /// The bridge the vif is on (toolstack).
    pub const BRIDGE: &str = "bridge";
    /// xl's `ip=`: space-separated addresses or prefixes.
    pub const IP: &str = "ip";
    /// vifguard: mode (unlocked, locked, isolated, disabled, network_default).
    pub const MODE: &str = "vifguard/mode";
    /// vifguard: extra IPv6 addresses or prefixes (space/comma-separated).
    pub const IPV6: &str = "vifguard/ipv6";
    /// vifguard: `isolated` destinations, IPv4 and IPv6 prefixes.
    pub const DESTINATIONS: &str = "vifguard/destinations";
    /// vifguard: directory of per-vif options (`dhcp_client`, ...).
    pub const OPTIONS: &str = "vifguard/options";
}

/// Reads the backend's `vifguard/mode`, if set.
pub(crate) fn backend_mode(
    r: &mut Reader<'_>,
) -> Result<Option<(Option<Mode>, String)>, SourceError> {
    let node = format!("{}/{}", r.vif.backend_path(), keys::MODE);
    match r.node(&node)? {
        None => Ok(None),
        Some(v) => {
            let m = parse_mode(&v).map_err(|e| r.bad(&node, e))?;
            Ok(Some((m, node)))
        }
    }
}

fn read_options(
    r: &mut Reader<'_>,
    config: &HostConfig,
) -> Result<(Options, OptionsProvenance), SourceError> {
    let mut o = config.options.clone();
    let from_config = |name: &str| {
        let k = config.option_key(name);
        if k.set {
            Origin::HostConfig(k)
        } else {
            Origin::Default
        }
    };
    let mut prov = OptionsProvenance {
        dhcp_client: from_config("dhcp_client"),
        dhcp_server: from_config("dhcp_server"),
        router: from_config("router"),
        ipv6_link_local: from_config("ipv6_link_local"),
        egress_filter: from_config("egress_filter"),
        ethertypes: from_config("ethertypes"),
    };
    let dir = format!("{}/{}", r.vif.backend_path(), keys::OPTIONS);
    let Some(names) = r.directory(&dir)? else {
        return Ok((o, prov));
    };
    for name in names {
        let node = format!("{dir}/{name}");
        let Some(value) = r.node(&node)? else {
            continue;
        };
        let boolean = |r: &Reader<'_>| {
            parse_bool(&value).ok_or_else(|| SourceError::BadBool {
                vif: r.vif,
                node: node.clone(),
                value: value.clone(),
            })
        };
        let origin = Origin::Xenstore(node.clone());
        match name.as_str() {
            "dhcp_client" => {
                o.dhcp_client = boolean(r)?;
                prov.dhcp_client = origin;
            }
            "dhcp_server" => {
                o.dhcp_server = boolean(r)?;
                prov.dhcp_server = origin;
            }
            "router" => {
                o.router = boolean(r)?;
                prov.router = origin;
            }
            "egress_filter" => {
                o.egress_filter = boolean(r)?;
                prov.egress_filter = origin;
            }
            "ipv6_link_local" => {
                o.link_local = parse_link_local(&value).map_err(|e| r.bad(&node, e))?;
                prov.ipv6_link_local = origin;
            }
            "ethertypes" => {
                let mut list = Vec::new();
                for item in list_items(&value) {
                    push_unique(
                        &mut list,
                        parse_ethertype(item).map_err(|e| r.bad(&node, e))?,
                    );
                }
                if list.len() > filter_common::MAX_ETHERTYPES {
                    return Err(r.bad(
                        &node,
                        PolicyError::TooMany {
                            what: "ethertypes",
                            count: list.len(),
                            max: filter_common::MAX_ETHERTYPES,
                        },
                    ));
                }
                o.ethertypes = list;
                prov.ethertypes = origin;
            }
            _ => {
                return Err(SourceError::UnknownOption {
                    vif: r.vif,
                    node,
                    known: OPTION_NAMES,
                });
            }
        }
    }
    Ok((o, prov))
}

/// Resolves the policy of `vif`, reading in one xenstore transaction so
/// the nodes are a consistent snapshot (the transaction is discarded, it
/// never writes).
pub fn resolve(
    xs: &mut Xenstore,
    vif: &VifId,
    config: &HostConfig,
) -> Result<Resolved, SourceError> {
    let in_tx = xs.transaction_start().is_ok();
    let r = {
        let mut store = Prefetched::fetch(xs, vif);
        resolve_from(&mut store, vif, config)
    };
    if in_tx {
        // Nothing was written: discard the snapshot without a round trip.
        let _ = xs.discard_transaction();
    }
    r
}

/// The nodes every resolution reads (and checks the permissions of, where
/// they exist), relative to nothing: absolute paths for `vif`.
fn common_nodes(vif: &VifId) -> Vec<String> {
    let backend = vif.backend_path();
    let mut v: Vec<String> = [
        keys::MAC,
        keys::BRIDGE,
        keys::MODE,
        keys::IP,
        keys::IPV6,
        keys::DESTINATIONS,
    ]
    .iter()
    .map(|k| format!("{backend}/{k}"))
    .collect();
    v.push(format!("{}/vm", vif.domain_path()));
    v
}

/// The directories every resolution lists: the vif's options and
/// OpenStack's networking keys.
fn common_dirs(vif: &VifId) -> [String; 2] {
    [
        format!("{}/{}", vif.backend_path(), keys::OPTIONS),
        format!("{}/{}", vif.domain_path(), openstack::NETWORKING_DIR),
    ]
}

/// A [`Store`] over a xenstore connection that first fetches the common
/// nodes, their permissions and the common directories in one pipelined
/// round trip (instead of a round trip each); each prefetched reply
/// answers the first request for it, everything else goes to xenstored as
/// usual.
struct Prefetched<'a> {
    xs: &'a mut Xenstore,
    reads: Replies,
    perms: Replies,
    dirs: Replies,
}

type Replies = std::collections::HashMap<String, Result<Vec<u8>, XsError>>;

impl<'a> Prefetched<'a> {
    fn fetch(xs: &'a mut Xenstore, vif: &VifId) -> Prefetched<'a> {
        use xenstore::MsgType;
        let nodes = common_nodes(vif);
        let dirs = common_dirs(vif);
        let mut reqs: Vec<(MsgType, &str)> = Vec::new();
        for n in &nodes {
            reqs.push((MsgType::Read, n));
            reqs.push((MsgType::GetPerms, n));
        }
        for d in &dirs {
            reqs.push((MsgType::Directory, d));
        }
        let mut p = Prefetched {
            xs,
            reads: Replies::new(),
            perms: Replies::new(),
            dirs: Replies::new(),
        };
        // A connection failure leaves the caches empty: the requests then
        // fail one by one with their own errors.
        if let Ok(replies) = p.xs.pipeline(&reqs) {
            for ((op, path), reply) in reqs.iter().zip(replies) {
                let map = match op {
                    MsgType::Read => &mut p.reads,
                    MsgType::GetPerms => &mut p.perms,
                    _ => &mut p.dirs,
                };
                map.insert(path.to_string(), reply);
            }
        }
        p
    }
}

impl Store for Prefetched<'_> {
    fn read_opt(&mut self, path: &str) -> Result<Option<Vec<u8>>, XsError> {
        match self.reads.remove(path) {
            Some(reply) => found(reply),
            None => self.xs.read_opt(path),
        }
    }

    fn directory_opt(&mut self, path: &str) -> Result<Option<Vec<String>>, XsError> {
        match self.dirs.remove(path) {
            Some(Ok(body)) => self.xs.names(path, &body).map(Some),
            Some(Err(e)) if e.is_not_found() => Ok(None),
            // E2BIG (a list over one reply) and the like: ask again the
            // long way, which knows how to page.
            Some(Err(_)) | None => Store::directory_opt(self.xs, path),
        }
    }

    fn get_perms(&mut self, path: &str) -> Result<Perms, XsError> {
        match self.perms.remove(path) {
            Some(reply) => perms_reply(path, &reply?),
            None => self.xs.get_perms(path),
        }
    }
}

/// Resolves the policy of `vif` from any [`Store`].
pub fn resolve_from(
    store: &mut dyn Store,
    vif: &VifId,
    config: &HostConfig,
) -> Result<Resolved, SourceError> {
    let mut r = Reader { store, vif: *vif };
    let backend = vif.backend_path();

    let mac_node = format!("{backend}/{}", keys::MAC);
    let mac_text = r.required(&mac_node)?;
    let mac: MacAddr = mac_text.parse().map_err(|e| r.bad(&mac_node, e))?;
    if mac.is_multicast() || mac.is_zero() {
        return Err(r.bad(&mac_node, PolicyError::NonUnicastMac(mac)));
    }

    let bridge_node = format!("{backend}/{}", keys::BRIDGE);
    let bridge = r
        .node(&bridge_node)?
        .map(|b| b.trim().to_string())
        .filter(|b| !b.is_empty());

    let (source, addrs) = if let Some(a) = xapi::read(&mut r)? {
        (SourceKind::Xapi, a)
    } else if let Some(a) = openstack::read(&mut r, mac, &mac_node)? {
        (SourceKind::OpenStack, a)
    } else {
        (SourceKind::Xl, xl::read(&mut r)?)
    };

    let mut mode_origin = addrs.mode_origin;
    let mode = match addrs.mode {
        Some(m) => m,
        None => {
            let (m, key) = config.network_default_for(bridge.as_deref());
            mode_origin.push(Origin::HostConfig(key));
            m
        }
    };

    let dest_node = format!("{backend}/{}", keys::DESTINATIONS);
    let (destinations, dest_origin) = match r.node(&dest_node)? {
        None => (Vec::new(), Vec::new()),
        Some(v) => {
            let items: Vec<&str> = list_items(&v).collect();
            bounded(items.len(), "destinations").map_err(|e| r.bad(&dest_node, e))?;
            let mut out = Vec::new();
            for i in items {
                push_unique(
                    &mut out,
                    i.parse::<Cidr>().map_err(|e| r.bad(&dest_node, e))?,
                );
            }
            (out, vec![Origin::Xenstore(dest_node)])
        }
    };

    let (options, options_prov) = read_options(&mut r, config)?;

    let policy = Policy {
        mode,
        mac,
        ipv4: addrs.ipv4,
        ipv6: addrs.ipv6,
        destinations,
        options,
    };
    policy
        .validate()
        .map_err(|source| SourceError::Invalid { vif: *vif, source })?;
    Ok(Resolved {
        vif: *vif,
        source,
        bridge: bridge.clone(),
        policy,
        provenance: Provenance {
            mode: mode_origin,
            mac: vec![Origin::Xenstore(mac_node)],
            bridge: if bridge.is_some() {
                vec![Origin::Xenstore(bridge_node)]
            } else {
                Vec::new()
            },
            ipv4: addrs.ipv4_origin,
            ipv6: addrs.ipv6_origin,
            destinations: dest_origin,
            options: options_prov,
        },
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) mod mem {
    //! An in-memory [`Store`] for unit tests.
    use super::*;
    use std::collections::BTreeMap;

    #[derive(Default)]
    pub struct MemStore {
        pub nodes: BTreeMap<String, (String, Perms)>,
    }

    impl MemStore {
        pub fn put(&mut self, path: &str, value: &str, perms: &str) {
            let p: Perms = perms.parse().unwrap();
            self.nodes.insert(path.to_string(), (value.to_string(), p));
        }
    }

    impl Store for MemStore {
        fn read_opt(&mut self, path: &str) -> Result<Option<Vec<u8>>, XsError> {
            Ok(self.nodes.get(path).map(|(v, _)| v.as_bytes().to_vec()))
        }

        fn directory_opt(&mut self, path: &str) -> Result<Option<Vec<String>>, XsError> {
            let prefix = format!("{path}/");
            let kids: Vec<String> = self
                .nodes
                .keys()
                .filter_map(|k| k.strip_prefix(&prefix))
                .filter(|r| !r.contains('/'))
                .map(str::to_string)
                .collect();
            Ok((!kids.is_empty() || self.nodes.contains_key(path)).then_some(kids))
        }

        fn get_perms(&mut self, path: &str) -> Result<Perms, XsError> {
            self.nodes
                .get(path)
                .map(|(_, p)| p.clone())
                .ok_or_else(|| XsError::NotFound {
                    path: path.to_string(),
                })
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::mem::MemStore;
    use super::*;

    const B: &str = "/local/domain/0/backend/vif/5/0";

    fn vif() -> VifId {
        VifId::new(0, 5, 0)
    }

    fn base() -> MemStore {
        let mut s = MemStore::default();
        s.put(&format!("{B}/mac"), "00:16:3e:00:00:05", "n0 r5");
        s
    }

    #[test]
    fn xenbus_paths_parse() {
        assert_eq!(
            VifId::from_xenbus_path("backend/vif/5/0", 0).unwrap(),
            VifId::new(0, 5, 0)
        );
        assert_eq!(
            VifId::from_xenbus_path("/local/domain/3/backend/vif/7/2", 0).unwrap(),
            VifId::new(3, 7, 2)
        );
        for bad in [
            "",
            "backend/vbd/5/0",
            "backend/vif/x/0",
            "backend/vif/5",
            "backend/vif/5/0/mac",
            "backend/vif/0/0",
            "/local/domain/0/backend/vif/-1/0",
        ] {
            let e = VifId::from_xenbus_path(bad, 0).unwrap_err();
            assert!(e.to_string().contains("XENBUS_PATH"), "{bad}: {e}");
        }
        assert_eq!(VifId::new(0, 5, 1).to_string(), "vif5.1");
        assert_eq!(
            VifId::new(0, 5, 1).backend_path(),
            "/local/domain/0/backend/vif/5/1"
        );
    }

    #[test]
    fn trust_rule() {
        let v = vif();
        let t = |s: &str| distrust(&s.parse().unwrap(), &v);
        assert_eq!(t("n0"), None);
        assert_eq!(t("n0 r5"), None);
        assert_eq!(t("r0"), None);
        assert_eq!(t("n0 w0"), None);
        assert!(t("n5").unwrap().contains("owned by the guest"));
        assert!(t("n7").unwrap().contains("owned by domain 7"));
        assert!(t("b0").unwrap().contains("default permission 'b'"));
        assert!(t("w0").unwrap().contains("default permission 'w'"));
        assert!(
            t("n0 b5")
                .unwrap()
                .contains("the guest (domain 5) may write")
        );
        assert!(t("n0 w9").unwrap().contains("domain 9 may write"));
        // A driver domain serving the vif may own its backend nodes.
        let dd = VifId::new(3, 5, 0);
        assert_eq!(distrust(&"n3 r5".parse().unwrap(), &dd), None);
    }

    #[test]
    fn too_many_addresses_name_the_node() {
        let mut s = base();
        let list: Vec<String> = (0..(MAX_ADDRESSES + 1))
            .map(|i| format!("2001:db8::{:x}", i + 1))
            .collect();
        s.put(&format!("{B}/ip"), &list.join(" "), "n0 r5");
        let e = resolve_from(&mut s, &vif(), &HostConfig::default()).unwrap_err();
        assert!(
            matches!(&e, SourceError::BadValue { node, source: PolicyError::TooMany { .. }, .. } if node.ends_with("/ip")),
            "{e}"
        );
        let mut s = base();
        let list: Vec<String> = (0..(MAX_ADDRESSES + 1))
            .map(|i| format!("2001:db8::{:x}", i + 1))
            .collect();
        s.put(
            &format!("{B}/vifguard/destinations"),
            &list.join(","),
            "n0 r5",
        );
        let e = resolve_from(&mut s, &vif(), &HostConfig::default()).unwrap_err();
        assert!(e.to_string().contains("too many destinations"), "{e}");
    }

    #[test]
    fn options_apply_over_host_defaults() {
        let mut s = base();
        s.put(&format!("{B}/vifguard/options/dhcp_server"), "on", "n0");
        s.put(
            &format!("{B}/vifguard/options/ethertypes"),
            "0x88cc, 0x88b5",
            "n0",
        );
        let mut cfg = HostConfig::default();
        cfg.options.router = true;
        cfg.options_set.push("router");
        let r = resolve_from(&mut s, &vif(), &cfg).unwrap();
        assert!(r.policy.options.dhcp_server);
        assert!(r.policy.options.router);
        assert_eq!(r.policy.options.ethertypes, vec![0x88cc, 0x88b5]);
        assert!(matches!(r.provenance.options.router, Origin::HostConfig(_)));
        assert_eq!(r.provenance.options.dhcp_client, Origin::Default);
        assert!(r.describe().contains("dhcp_server"));

        let mut s = base();
        s.put(&format!("{B}/vifguard/options/dhcp_srever"), "on", "n0");
        let e = resolve_from(&mut s, &vif(), &cfg).unwrap_err();
        assert!(matches!(e, SourceError::UnknownOption { .. }), "{e}");
        let mut s = base();
        s.put(&format!("{B}/vifguard/options/router"), "maybe", "n0");
        let e = resolve_from(&mut s, &vif(), &cfg).unwrap_err();
        assert!(matches!(e, SourceError::BadBool { .. }), "{e}");
    }
}
