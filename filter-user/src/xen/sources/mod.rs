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
//! - `vifguard/destinations` (for `isolated`), `vifguard/pairs` (section
//!   3a: pairs and VRRP entries, [`crate::policy::parse_pairs`]),
//!   `vifguard/dhcp-servers` (section 4) and `vifguard/options/<name>` in
//!   the backend directory apply;
//! - the host policy file for the vif's MAC ([`policy_file`], in the host
//!   configuration's `policy_dir`) supplies the same fields where the
//!   backend has no key, and its `mode` overrides the source's mode
//!   (except a `disabled` one);
//! - the host configuration supplies option defaults (`[options]`) and
//!   DHCP server defaults (`[dhcp_servers]`) where neither sets them, over
//!   the defaults of docs/policy.md;
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

pub mod lists;
pub mod openstack;
pub mod options;
pub mod pairs;
pub mod policy_file;
pub mod provenance;
pub mod store;
pub mod trust;
pub mod xapi;
pub mod xl;

use std::path::PathBuf;

use xenstore::{Xenstore, XsError};

use crate::config::HostConfig;
use crate::policy::{Cidr, MacAddr, Mode, Policy, PolicyError, parse_mode};
pub use crate::xen::vif::VifId;
pub(crate) use lists::{
    Addresses, bounded, list_items, parse_mixed, parse_v4_list, parse_v6_list, push_unique,
};
use options::read_options;
pub use provenance::{OptionsProvenance, Origin, Provenance, Resolved, SourceKind};
use store::Prefetched;
pub use store::Store;
pub(crate) use trust::Reader;
pub use trust::distrust;

/// Why a vif's policy could not be resolved. Every variant names the vif
/// and the xenstore node (or value) to fix.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("invalid XENBUS_PATH {path:?} (want backend/vif/<domid>/<devid>)")]
    BadXenbusPath { path: String },
    #[error("{vif}: reading its policy from xenstore failed")]
    Xenstore {
        vif: VifId,
        #[source]
        source: XsError,
    },
    #[error("{vif}: required xenstore node {node} is missing")]
    Missing { vif: VifId, node: String },
    #[error(
        "{vif}: the source is incomplete: {node} is missing while its directory exists (a toolstack rewriting the keys?)"
    )]
    Incomplete { vif: VifId, node: String },
    #[error(
        "{vif}: xenstore node {node} is not trusted as policy: {reason} (permissions {perms}); the vif fails closed"
    )]
    Untrusted {
        vif: VifId,
        node: String,
        reason: String,
        perms: String,
    },
    #[error("{vif}: xenstore node {node} holds an invalid value")]
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
    #[error(
        "{vif}: host policy {what} {} is not trusted: {reason}; the vif fails closed",
        path.display()
    )]
    UntrustedFile {
        vif: VifId,
        /// `file` or `directory`.
        what: &'static str,
        path: PathBuf,
        reason: String,
    },
    #[error("{vif}: cannot read host policy file or directory {}", path.display())]
    FileRead {
        vif: VifId,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{vif}: host policy file {} is not valid TOML or has an unknown key: {message}",
        path.display()
    )]
    FileParse {
        vif: VifId,
        path: PathBuf,
        message: String,
    },
    #[error("{vif}: host policy file {}: {field} holds an invalid value", path.display())]
    FileValue {
        vif: VifId,
        path: PathBuf,
        field: String,
        #[source]
        source: PolicyError,
    },
    #[error("{vif}: more than one host policy file is for MAC {mac}: {files}")]
    AmbiguousFile {
        vif: VifId,
        mac: MacAddr,
        files: String,
    },
    #[error("{vif}: the resolved policy is invalid")]
    Invalid {
        vif: VifId,
        #[source]
        source: PolicyError,
    },
}

impl SourceError {
    /// Whether the failure says nothing about the policy itself: xenstore
    /// could not be reached or answered nothing usable, or a toolstack is
    /// halfway through rewriting the keys. A vif that has a policy keeps
    /// it then; only a vif without one fails closed.
    pub fn is_transient(&self) -> bool {
        match self {
            SourceError::Xenstore { source, .. } => source.is_unreachable(),
            SourceError::Incomplete { .. } => true,
            _ => false,
        }
    }
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
    /// vifguard: pairs and VRRP entries (section 3a), space-separated
    /// `MAC=ADDR[,ADDR...]` / `vrrp:VRID=ADDR[,ADDR...]`.
    pub const PAIRS: &str = "vifguard/pairs";
    /// vifguard: trusted DHCP servers (section 4), space-separated.
    pub const DHCP_SERVERS: &str = "vifguard/dhcp-servers";
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

    // Read before the sources, so that an unusable file fails the vif
    // whatever else is wrong.
    let file = policy_file::find(&config.policy_dir, *vif, mac)?;
    let file_origin = |key: &str, f: &policy_file::PolicyFile| Origin::PolicyFile {
        path: f.path.clone(),
        key: key.to_string(),
    };

    let (source, addrs) = if let Some(a) = xapi::read(&mut r)? {
        (SourceKind::Xapi, a)
    } else if let Some(a) = openstack::read(&mut r, mac, &mac_node)? {
        (SourceKind::OpenStack, a)
    } else {
        (SourceKind::Xl, xl::read(&mut r)?)
    };

    let mut mode_origin = addrs.mode_origin;
    let mut mode = addrs.mode;
    // The file's mode beats the toolstack's (on XAPI it is the only way to
    // `isolated`), but never lifts a `disabled` the toolstack set: that is
    // an operator cutting a VIF off, and a forgotten file must not undo it.
    if let Some(f) = &file
        && let Some(m) = f.mode
        && mode != Some(Mode::Disabled)
    {
        mode = m;
        mode_origin = vec![file_origin("mode", f)];
    }
    let mode = match mode {
        Some(m) => m,
        None => {
            let (m, key) = config.network_default_for(bridge.as_deref());
            mode_origin.push(Origin::HostConfig(key));
            m
        }
    };

    let dest_node = format!("{backend}/{}", keys::DESTINATIONS);
    let (destinations, dest_origin) = match r.node(&dest_node)? {
        None => match &file {
            Some(f) if f.destinations.is_some() => (
                f.destinations.clone().unwrap_or_default(),
                vec![file_origin("destinations", f)],
            ),
            _ => (Vec::new(), Vec::new()),
        },
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

    let (pairs, vrrp, pairs_origin) = match pairs::read_pairs(&mut r, mac)? {
        Some((p, v, node)) => (p, v, vec![Origin::Xenstore(node)]),
        None => match &file {
            Some(f) if f.pairs.is_some() => {
                let (p, v) = f.pairs.clone().unwrap_or_default();
                (p, v, vec![file_origin("pairs", f)])
            }
            _ => (Vec::new(), Vec::new(), Vec::new()),
        },
    };

    let (dhcp_servers, servers_origin) = match pairs::read_dhcp_servers(&mut r)? {
        Some((list, node)) => (list, vec![Origin::Xenstore(node)]),
        None => match &file {
            Some(f) if f.dhcp_servers.is_some() => (
                f.dhcp_servers.clone().unwrap_or_default(),
                vec![file_origin("dhcp_servers", f)],
            ),
            _ => match config.dhcp_servers_for(bridge.as_deref()) {
                Some((list, key)) => (list, vec![Origin::HostConfig(key)]),
                None => (Vec::new(), Vec::new()),
            },
        },
    };

    let (options, options_prov) = read_options(&mut r, config, file.as_ref())?;

    let policy = Policy {
        mode,
        mac,
        ipv4: addrs.ipv4,
        ipv6: addrs.ipv6,
        destinations,
        pairs,
        vrrp,
        dhcp_servers,
        options,
    };
    policy
        .validate()
        .map_err(|source| SourceError::Invalid { vif: *vif, source })?;
    Ok(Resolved {
        vif: *vif,
        source,
        bridge: bridge.clone(),
        policy_file: file.map(|f| f.path),
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
            pairs: pairs_origin.clone(),
            vrrp: pairs_origin,
            dhcp_servers: servers_origin,
            options: options_prov,
        },
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::store::mem::MemStore;
    use super::*;
    use crate::policy::MAX_ADDRESSES;

    const B: &str = "/local/domain/0/backend/vif/5/0";

    fn vif() -> VifId {
        VifId::new(0, 5, 0)
    }

    fn base() -> MemStore {
        let mut s = MemStore::default();
        s.put(&format!("{B}/mac"), "00:16:3e:00:00:05", "n0 r5");
        s
    }

    /// xenopsd's live update: keys deleted, the directory still there.
    /// Never xl's fallback (network_default: unlocked), and transient.
    #[test]
    fn an_empty_xapi_directory_is_incomplete_not_another_source() {
        let uuid = "6b3f0c2e-0000-4000-8000-000000000005";
        let dir = format!("/xapi/{uuid}/private/vif/0");
        let mut s = base();
        s.put("/local/domain/5/vm", &format!("/vm/{uuid}"), "n0 r5");
        s.put(&dir, "", "n0");
        s.put(&format!("{B}/ip"), "192.0.2.5", "n0 r5");
        let e = resolve_from(&mut s, &vif(), &HostConfig::default()).unwrap_err();
        assert!(matches!(e, SourceError::Incomplete { .. }), "{e}");
        assert!(e.is_transient());
        assert!(e.to_string().contains("locking-mode"), "{e}");
        // With the keys back, XAPI is the source again.
        s.put(&format!("{dir}/locking-mode"), "locked", "n0");
        let r = resolve_from(&mut s, &vif(), &HostConfig::default()).unwrap();
        assert_eq!(r.source, SourceKind::Xapi);
        // Not transient: a policy that is wrong, not one being written.
        s.put(&format!("{dir}/ipv4-allowed"), "192.0.2.5/33", "n0");
        let e = resolve_from(&mut s, &vif(), &HostConfig::default()).unwrap_err();
        assert!(!e.is_transient(), "{e}");
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
        let msg = crate::report::chain(&e);
        assert!(msg.contains("too many destinations"), "{msg}");
    }

    /// A host configuration whose policy directory is a fresh temporary
    /// one (mode 0755), and the directory.
    fn with_policy_dir(tag: &str) -> (HostConfig, std::path::PathBuf) {
        use std::os::unix::fs::PermissionsExt;
        let d = std::env::temp_dir().join(format!("vifguard-sources-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755)).unwrap();
        let cfg = HostConfig {
            policy_dir: d.clone(),
            ..HostConfig::default()
        };
        (cfg, d)
    }

    #[test]
    fn pairs_and_dhcp_servers_keys_apply() {
        let mut s = base();
        s.put(
            &format!("{B}/vifguard/pairs"),
            "02:16:3e:00:07:09=192.0.2.9,2001:db8::9 vrrp:7=192.0.2.100,2001:db8::100",
            "n0 r5",
        );
        s.put(
            &format!("{B}/vifguard/dhcp-servers"),
            "192.0.2.1 fe80::1",
            "n0 r5",
        );
        let (cfg, d) = with_policy_dir("keys");
        let r = resolve_from(&mut s, &vif(), &cfg).unwrap();
        assert_eq!(r.policy.pairs.len(), 1);
        assert_eq!(r.policy.vrrp.len(), 1);
        assert_eq!(r.policy.dhcp_servers.len(), 2);
        let node = |k: &str| vec![Origin::Xenstore(format!("{B}/vifguard/{k}"))];
        assert_eq!(r.provenance.pairs, node("pairs"));
        assert_eq!(r.provenance.vrrp, node("pairs"));
        assert_eq!(r.provenance.dhcp_servers, node("dhcp-servers"));
        assert_eq!(r.policy_file, None);
        let text = r.describe();
        assert!(
            text.contains("02:16:3e:00:07:09=192.0.2.9,2001:db8::9")
                && text.contains("00:00:5e:00:01:07 00:00:5e:00:02:07")
                && text.contains(&format!("<- xenstore {B}/vifguard/dhcp-servers")),
            "{text}"
        );
        let j = r.json();
        assert_eq!(j["vrrp"]["value"][0]["vrid"], 7);
        assert_eq!(
            j["dhcp_servers"]["from"],
            serde_json::json!([format!("xenstore {B}/vifguard/dhcp-servers")])
        );
        // Nothing set: no pairs, any server.
        let r = resolve_from(&mut base(), &vif(), &cfg).unwrap();
        assert!(r.policy.pairs.is_empty() && r.policy.dhcp_servers.is_empty());
        assert!(r.provenance.pairs.is_empty());
        assert!(r.describe().contains("dhcp_servers     (any)  <- not set"));
        std::fs::remove_dir_all(d).unwrap();
    }

    /// Malformed, guest-writable or too long: the error names the vif, the
    /// node and the entry, and is not transient (the vif fails closed).
    #[test]
    fn bad_pairs_and_servers_name_vif_key_and_entry() {
        let (cfg, d) = with_policy_dir("bad-keys");
        let cases = [
            (
                "pairs",
                "02:16:3e:00:07:09=192.0.2.9 zz:16:3e:00:07:0a=192.0.2.10",
                "zz:16:3e:00:07:0a=192.0.2.10",
            ),
            (
                "pairs",
                "01:00:5e:00:00:01=192.0.2.9",
                "01:00:5e:00:00:01=192.0.2.9",
            ),
            (
                "pairs",
                "02:16:3e:00:07:09=192.0.2.9 02:16:3e:00:07:09=192.0.2.10",
                "02:16:3e:00:07:09=192.0.2.10",
            ),
            (
                "pairs",
                "00:16:3e:00:00:05=192.0.2.9",
                "00:16:3e:00:00:05=192.0.2.9",
            ),
            ("pairs", "vrrp:256=192.0.2.100", "vrrp:256=192.0.2.100"),
            ("pairs", "vrrp:7=", "vrrp:7="),
            ("pairs", "02:16:3e:00:07:09", "02:16:3e:00:07:09"),
            ("dhcp-servers", "192.0.2.1 192.0.2.0/24", "192.0.2.0/24"),
        ];
        for (key, value, entry) in cases {
            let mut s = base();
            s.put(&format!("{B}/vifguard/{key}"), value, "n0 r5");
            let e = resolve_from(&mut s, &vif(), &cfg).unwrap_err();
            assert!(!e.is_transient());
            let msg = crate::report::chain(&e);
            assert!(
                msg.starts_with("vif5.0: ")
                    && msg.contains(&format!("{B}/vifguard/{key}"))
                    && msg.contains(&format!("{entry:?}")),
                "{value}: {msg}"
            );
        }
        let many: Vec<String> = (1..=9)
            .map(|i| format!("02:00:00:00:00:{i:02x}=192.0.2.{i}"))
            .collect();
        let mut s = base();
        s.put(&format!("{B}/vifguard/pairs"), &many.join(" "), "n0 r5");
        let msg = crate::report::chain(&resolve_from(&mut s, &vif(), &cfg).unwrap_err());
        assert!(
            msg.contains("vifguard/pairs") && msg.contains("too many pairs"),
            "{msg}"
        );
        // The guest wrote it: not trusted.
        let mut s = base();
        s.put(
            &format!("{B}/vifguard/pairs"),
            "02:16:3e:00:07:09=192.0.2.9",
            "n5",
        );
        let e = resolve_from(&mut s, &vif(), &cfg).unwrap_err();
        assert!(
            matches!(&e, SourceError::Untrusted { node, .. } if node.ends_with("vifguard/pairs")),
            "{e}"
        );
        std::fs::remove_dir_all(d).unwrap();
    }

    /// The host policy file: applies where the backend has no key, its
    /// mode beats the toolstack's but not a `disabled`, and its options
    /// sit between the host configuration's and the vif's keys.
    #[test]
    fn the_host_policy_file_and_its_precedence() {
        let (mut cfg, d) = with_policy_dir("file");
        cfg.dhcp_servers.default = Some(vec!["198.51.100.1".parse().unwrap()]);
        cfg.file = Some("/test/vifguard.toml".into());
        cfg.options.router = true;
        cfg.options_set.push("router");
        // Host defaults alone.
        let r = resolve_from(&mut base(), &vif(), &cfg).unwrap();
        assert_eq!(
            r.policy.dhcp_servers,
            vec!["198.51.100.1".parse::<std::net::IpAddr>().unwrap()]
        );
        assert!(
            matches!(&r.provenance.dhcp_servers[..], [Origin::HostConfig(k)] if k.key == "dhcp_servers.default")
        );

        let f = d.join("00-16-3e-00-00-05.toml");
        std::fs::write(
            &f,
            r#"
mode = "isolated"
destinations = ["192.0.2.1"]
pairs = ["02:16:3e:00:07:09=192.0.2.9"]
dhcp_servers = "192.0.2.1"
[options]
dhcp_server = true
router = false
"#,
        )
        .unwrap();
        let from_file = |key: &str| Origin::PolicyFile {
            path: f.clone(),
            key: key.into(),
        };
        let mut s = base();
        s.put(&format!("{B}/vifguard/mode"), "locked", "n0 r5");
        s.put(&format!("{B}/vifguard/options/dhcp_server"), "0", "n0 r5");
        let r = resolve_from(&mut s, &vif(), &cfg).unwrap();
        assert_eq!(r.policy_file.as_deref(), Some(f.as_path()));
        assert_eq!(r.policy.mode, Mode::Isolated);
        assert_eq!(r.provenance.mode, vec![from_file("mode")]);
        assert_eq!(r.policy.destinations.len(), 1);
        assert_eq!(r.provenance.destinations, vec![from_file("destinations")]);
        assert_eq!(r.policy.pairs.len(), 1);
        assert_eq!(r.provenance.pairs, vec![from_file("pairs")]);
        assert_eq!(
            r.policy.dhcp_servers,
            vec!["192.0.2.1".parse::<std::net::IpAddr>().unwrap()]
        );
        assert_eq!(r.provenance.dhcp_servers, vec![from_file("dhcp_servers")]);
        // The vif's key beats the file, the file beats the host.
        assert!(!r.policy.options.dhcp_server);
        assert!(matches!(
            r.provenance.options.dhcp_server,
            Origin::Xenstore(_)
        ));
        assert!(!r.policy.options.router);
        assert_eq!(r.provenance.options.router, from_file("options.router"));
        let text = r.describe();
        assert!(
            text.contains(&format!("host policy file {}\n", f.display()))
                && text.contains(&format!("<- host policy file {} key pairs", f.display())),
            "{text}"
        );
        assert_eq!(r.json()["policy_file"], f.display().to_string());

        // The vif's own keys beat the file, field by field; an empty key
        // sets the field empty.
        let mut s = base();
        s.put(&format!("{B}/vifguard/pairs"), "", "n0 r5");
        s.put(&format!("{B}/vifguard/dhcp-servers"), "192.0.2.2", "n0 r5");
        s.put(&format!("{B}/vifguard/destinations"), "192.0.2.3", "n0 r5");
        let r = resolve_from(&mut s, &vif(), &cfg).unwrap();
        assert!(r.policy.pairs.is_empty());
        assert!(matches!(&r.provenance.pairs[..], [Origin::Xenstore(_)]));
        assert_eq!(
            r.policy.dhcp_servers,
            vec!["192.0.2.2".parse::<std::net::IpAddr>().unwrap()]
        );
        assert_eq!(r.policy.destinations, vec!["192.0.2.3".parse().unwrap()]);
        assert_eq!(r.policy.mode, Mode::Isolated);

        // A disabled vif stays disabled.
        let mut s = base();
        s.put(&format!("{B}/vifguard/mode"), "disabled", "n0 r5");
        let r = resolve_from(&mut s, &vif(), &cfg).unwrap();
        assert_eq!(r.policy.mode, Mode::Disabled);
        assert!(matches!(&r.provenance.mode[..], [Origin::Xenstore(_)]));

        // Another vif's file does not apply.
        let mut s = MemStore::default();
        s.put(
            "/local/domain/0/backend/vif/6/0/mac",
            "00:16:3e:00:00:06",
            "n0 r6",
        );
        let r = resolve_from(&mut s, &VifId::new(0, 6, 0), &cfg).unwrap();
        assert_eq!(r.policy_file, None);
        assert_eq!(r.policy.mode, Mode::Unlocked);

        // A malformed file fails the vif, naming the file and the field;
        // a group-writable one is refused.
        std::fs::write(&f, "pairs = [\"02:16:3e:00:07:09=192.0.2.9/24\"]").unwrap();
        let msg = crate::report::chain(&resolve_from(&mut base(), &vif(), &cfg).unwrap_err());
        assert!(
            msg.starts_with("vif5.0: ")
                && msg.contains(&f.display().to_string())
                && msg.contains("pairs holds an invalid value")
                && msg.contains("192.0.2.0/24"),
            "{msg}"
        );
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::write(&f, "").unwrap();
            std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o664)).unwrap();
        }
        let e = resolve_from(&mut base(), &vif(), &cfg).unwrap_err();
        assert!(matches!(e, SourceError::UntrustedFile { .. }), "{e}");
        assert!(!e.is_transient());
        std::fs::remove_dir_all(d).unwrap();
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
        let e = {
            let mut s = base();
            s.put(&format!("{B}/vifguard/options/dhcp_srever"), "on", "n0");
            resolve_from(&mut s, &vif(), &cfg).unwrap_err()
        };
        assert!(
            e.to_string().contains("learn_dhcp, flood_pps"),
            "the error lists every option: {e}"
        );
    }

    #[test]
    fn learn_dhcp_and_flood_pps_keys() {
        let opt = |k: &str| format!("{B}/vifguard/options/{k}");
        let mut s = base();
        s.put(&opt("learn_dhcp"), "yes", "n0");
        s.put(&opt("flood_pps"), "0", "n0");
        let mut cfg = HostConfig::default();
        cfg.options.learn_grace_s = 0;
        cfg.learn_grace_set = true;
        cfg.file = Some("/test/vifguard.toml".into());
        let r = resolve_from(&mut s, &vif(), &cfg).unwrap();
        assert!(r.policy.options.learn_dhcp);
        assert_eq!(r.policy.options.flood_pps, 0);
        assert_eq!(r.policy.options.learn_grace_s, 0);
        let po = &r.provenance.options;
        assert_eq!(po.learn_dhcp, Origin::Xenstore(opt("learn_dhcp")));
        assert_eq!(po.flood_pps, Origin::Xenstore(opt("flood_pps")));
        assert!(matches!(po.learn_grace_secs, Origin::HostConfig(_)));
        let text = r.describe();
        assert!(
            text.contains(&format!(
                "learn_dhcp       on  <- xenstore {}",
                opt("learn_dhcp")
            )) && text.contains(
                "learn_grace_secs 0  <- host config learn_grace_secs in /test/vifguard.toml"
            ),
            "{text}"
        );
        let j = r.json();
        assert_eq!(j["options"]["learn_dhcp"]["value"], true);
        assert_eq!(j["options"]["flood_pps"]["value"], 0);
        assert_eq!(j["options"]["learn_grace_secs"]["value"], 0);

        // Unset: the defaults, off and no limit.
        let r = resolve_from(&mut base(), &vif(), &HostConfig::default()).unwrap();
        assert!(!r.policy.options.learn_dhcp);
        assert_eq!(r.policy.options.learn_grace_s, 60);
        assert_eq!(r.provenance.options.learn_dhcp, Origin::Default);
        assert_eq!(r.provenance.options.learn_grace_secs, Origin::Default);

        // Errors as for the other options: the vif fails, naming the node.
        for (key, value) in [("learn_dhcp", "maybe"), ("learn_dhcp", "")] {
            let mut s = base();
            s.put(&opt(key), value, "n0");
            let e = resolve_from(&mut s, &vif(), &cfg).unwrap_err();
            assert!(matches!(e, SourceError::BadBool { .. }), "{value:?}: {e}");
        }
        for (value, says) in [
            ("1000001", "want a whole number 0..=1000000"),
            ("-1", "invalid flood_pps"),
            ("lots", "invalid flood_pps"),
        ] {
            let mut s = base();
            s.put(&opt("flood_pps"), value, "n0");
            let e = resolve_from(&mut s, &vif(), &cfg).unwrap_err();
            let msg = crate::report::chain(&e);
            assert!(
                matches!(e, SourceError::BadValue { .. })
                    && msg.contains(&opt("flood_pps"))
                    && msg.contains(says),
                "{value:?}: {msg}"
            );
        }
    }
}
