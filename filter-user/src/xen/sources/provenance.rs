//! A resolved policy with the origin of every field, and its description
//! for `vifguard policy`.

use std::fmt;
use std::path::PathBuf;

use serde_json::json;

use crate::config::ConfigKey;
use crate::policy::Policy;
use crate::xen::vif::VifId;

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
    /// A key of the vif's host policy file.
    PolicyFile { path: PathBuf, key: String },
    /// The default of docs/policy.md, nothing configured it.
    Default,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Xenstore(p) => write!(f, "xenstore {p}"),
            Origin::HostConfig(k) => write!(f, "host config {k}"),
            Origin::PolicyFile { path, key } => {
                write!(f, "host policy file {} key {key}", path.display())
            }
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
    pub learn_dhcp: Origin,
    pub flood_pps: Origin,
    /// The host configuration's `learn_grace_secs` (or its default).
    pub learn_grace_secs: Origin,
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
    pub pairs: Vec<Origin>,
    pub vrrp: Vec<Origin>,
    pub dhcp_servers: Vec<Origin>,
    pub options: OptionsProvenance,
}

/// A resolved, validated policy and where it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolved {
    pub vif: VifId,
    pub source: SourceKind,
    /// The backend's `bridge` key, if set.
    pub bridge: Option<String>,
    /// The host policy file that applied, if any (its fields may all be
    /// overridden by xenstore keys).
    pub policy_file: Option<PathBuf>,
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

fn origins_json(o: &[Origin]) -> Vec<String> {
    o.iter().map(ToString::to_string).collect()
}

fn strings<T: fmt::Display>(v: &[T]) -> Vec<String> {
    v.iter().map(ToString::to_string).collect()
}

/// A VRRP entry with its virtual MACs, for display.
fn vrrp_text(v: &crate::policy::Vrrp) -> String {
    let macs: Vec<String> = v.macs().map(|m| m.to_string()).collect();
    format!("{v} (virtual MAC {})", macs.join(" "))
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
                "pairs",
                join_list(&p.pairs),
                join_origins(&self.provenance.pairs),
            ),
            (
                "vrrp",
                if p.vrrp.is_empty() {
                    "(none)".to_string()
                } else {
                    p.vrrp.iter().map(vrrp_text).collect::<Vec<_>>().join(" ")
                },
                join_origins(&self.provenance.vrrp),
            ),
            (
                "dhcp_servers",
                if p.dhcp_servers.is_empty() {
                    "(any)".to_string()
                } else {
                    join_list(&p.dhcp_servers)
                },
                join_origins(&self.provenance.dhcp_servers),
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
            (
                "learn_dhcp",
                onoff(o.learn_dhcp).into(),
                po.learn_dhcp.to_string(),
            ),
            (
                "flood_pps",
                if o.flood_pps == 0 {
                    "0 (no limit)".to_string()
                } else {
                    o.flood_pps.to_string()
                },
                po.flood_pps.to_string(),
            ),
            (
                "learn_grace_secs",
                o.learn_grace_s.to_string(),
                po.learn_grace_secs.to_string(),
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
        if let Some(f) = &self.policy_file {
            out.push_str(&format!("  host policy file {}\n", f.display()));
        }
        for (name, value, origin) in rows {
            out.push_str(&format!("  {name:<16} {value}  <- {origin}\n"));
        }
        out
    }

    /// The same as JSON (`vifguard policy --json`): every field as
    /// `{"value": ..., "from": [origins]}`.
    pub fn json(&self) -> serde_json::Value {
        let p = &self.policy;
        let o = &p.options;
        let po = &self.provenance.options;
        let pv = &self.provenance;
        let field = |value: serde_json::Value, from: &[Origin]| json!({"value": value, "from": origins_json(from)});
        let option = |value: serde_json::Value, from: &Origin| json!({"value": value, "from": [from.to_string()]});
        let pairs: Vec<serde_json::Value> = p
            .pairs
            .iter()
            .map(|x| json!({"mac": x.mac.to_string(), "ipv4": strings(&x.ipv4), "ipv6": strings(&x.ipv6)}))
            .collect();
        let vrrp: Vec<serde_json::Value> = p
            .vrrp
            .iter()
            .map(|v| {
                json!({
                    "vrid": v.vrid,
                    "ipv4": strings(&v.ipv4),
                    "ipv6": strings(&v.ipv6),
                    "macs": v.macs().map(|m| m.to_string()).collect::<Vec<_>>(),
                })
            })
            .collect();
        let ethertypes: Vec<String> = o.ethertypes.iter().map(|e| format!("0x{e:04x}")).collect();
        json!({
            "vif": self.vif.to_string(),
            "domid": self.vif.domid,
            "devid": self.vif.devid,
            "backend": self.vif.backend_path(),
            "source": self.source.name(),
            "policy_file": self.policy_file.as_ref().map(|f| f.display().to_string()),
            "mode": field(json!(p.mode.name()), &pv.mode),
            "mac": field(json!(p.mac.to_string()), &pv.mac),
            "bridge": field(json!(self.bridge), &pv.bridge),
            "ipv4": field(json!(strings(&p.ipv4)), &pv.ipv4),
            "ipv6": field(json!(strings(&p.ipv6)), &pv.ipv6),
            "destinations": field(json!(strings(&p.destinations)), &pv.destinations),
            "pairs": field(json!(pairs), &pv.pairs),
            "vrrp": field(json!(vrrp), &pv.vrrp),
            "dhcp_servers": field(json!(strings(&p.dhcp_servers)), &pv.dhcp_servers),
            "options": {
                "dhcp_client": option(json!(o.dhcp_client), &po.dhcp_client),
                "dhcp_server": option(json!(o.dhcp_server), &po.dhcp_server),
                "router": option(json!(o.router), &po.router),
                "ipv6_link_local": option(json!(o.link_local.name()), &po.ipv6_link_local),
                "egress_filter": option(json!(o.egress_filter), &po.egress_filter),
                "ethertypes": option(json!(ethertypes), &po.ethertypes),
                "learn_dhcp": option(json!(o.learn_dhcp), &po.learn_dhcp),
                "flood_pps": option(json!(o.flood_pps), &po.flood_pps),
                "learn_grace_secs": option(json!(o.learn_grace_s), &po.learn_grace_secs),
            },
        })
    }
}
