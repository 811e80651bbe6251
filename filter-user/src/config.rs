//! The host configuration file, `/etc/vifguard/vifguard.toml` by default.
//!
//! A missing file means every default. Unknown keys are errors (a typo must
//! not silently change nothing). The shipped `vifguard.toml.example`
//! documents every key:
//!
//! ```toml
//! bpffs = "/sys/fs/bpf/vifguard"   # pin directory (a versioned subdir is used)
//! max_interfaces = 1024            # interfaces the maps hold
//! events_per_sec = 20              # drop events per interface and second
//! attach = "tc"                    # "tc" (clsact + cls_bpf) or "tcx" (bpf links)
//! tc_priority = 1                  # priority of vifguard's tc filters
//! policy_dir = "/etc/vifguard/vifs" # host policy files, one per VIF MAC
//! learn_grace_secs = 60            # a DHCP-learned address outlives its lease by this
//!
//! [network_default]                # what a vif's `network_default` means
//! mode = "unlocked"                # for bridges not listed below
//! [network_default.bridges]
//! xenbr1 = "locked"
//!
//! [options]                        # option defaults (docs/policy.md section 6)
//! dhcp_client = true
//! dhcp_server = false
//! router = false
//! ipv6_link_local = "derived"
//! egress_filter = true
//! ethertypes = []                  # e.g. ["0x88cc"] or [0x88cc]
//! learn_dhcp = false               # allow the addresses leased from trusted servers
//! flood_pps = 0                    # 0 only until the flood limit is enforced (issue 18)
//!
//! [dhcp_servers]                   # trusted DHCP servers (docs/policy.md section 4)
//! default = []                     # for bridges not listed below; empty: any
//! [dhcp_servers.bridges]
//! xenbr1 = ["192.0.2.1", "fe80::1"]
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use std::net::IpAddr;

use crate::policy::{
    MAX_DHCP_SERVERS, Mode, Options, PolicyError, flood_pps, parse_dhcp_server, parse_ethertype,
    parse_link_local, parse_mode,
};

/// Where the host configuration lives unless told otherwise.
pub const DEFAULT_PATH: &str = "/etc/vifguard/vifguard.toml";
/// Default bpffs directory for pins.
pub const DEFAULT_BPFFS: &str = "/sys/fs/bpf/vifguard";
/// Default number of interfaces the maps are sized for.
pub const DEFAULT_MAX_INTERFACES: u32 = 1024;
/// Largest `max_interfaces` accepted.
pub const MAX_MAX_INTERFACES: u32 = 65536;
/// Default drop events per interface and second.
pub const DEFAULT_EVENTS_PER_SEC: u32 = 20;
/// Largest `events_per_sec` accepted.
pub const MAX_EVENTS_PER_SEC: u32 = 100_000;
/// Default priority of vifguard's tc filters (first to run).
pub const DEFAULT_TC_PRIORITY: u16 = 1;
/// Default directory of the host policy files (one per VIF MAC, see
/// [`crate::xen::sources::policy_file`]).
pub const DEFAULT_POLICY_DIR: &str = "/etc/vifguard/vifs";
/// Largest `learn_grace_secs` accepted: a day.
pub const MAX_LEARN_GRACE_SECS: u32 = 86_400;

/// How the programs are attached to a vif's hooks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AttachMethod {
    /// A clsact qdisc and cls_bpf filters over netlink (see [`crate::hooks::tc`]).
    #[default]
    Tc,
    /// Pinned TCX bpf links (kernel 6.6 or later).
    Tcx,
}

impl AttachMethod {
    pub fn name(self) -> &'static str {
        match self {
            AttachMethod::Tc => "tc",
            AttachMethod::Tcx => "tcx",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read host configuration {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("host configuration {path} is not valid TOML or has an unknown key: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("host configuration {path}: {key} = {value} is invalid: {reason}")]
    Invalid {
        path: PathBuf,
        key: String,
        value: String,
        reason: String,
    },
}

/// `[network_default]`: the mode `network_default` resolves to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetworkDefault {
    /// For bridges not listed in `bridges` (and vifs without a bridge).
    pub mode: Mode,
    /// Per-bridge modes, by bridge name.
    pub bridges: BTreeMap<String, Mode>,
}

impl Default for NetworkDefault {
    fn default() -> Self {
        NetworkDefault {
            mode: Mode::Unlocked,
            bridges: BTreeMap::new(),
        }
    }
}

/// `[dhcp_servers]`: host defaults of a vif's trusted DHCP servers, for
/// vifs that set none themselves. Unset (`None`) means no default: any
/// server.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DhcpServers {
    /// For bridges not listed in `bridges` (and vifs without a bridge).
    pub default: Option<Vec<IpAddr>>,
    /// Per-bridge lists, by bridge name (an empty list: any server).
    pub bridges: BTreeMap<String, Vec<IpAddr>>,
}

/// Which key of the host configuration decided a value (for provenance).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigKey {
    /// The file, `None` when built-in defaults were used.
    pub file: Option<PathBuf>,
    /// Dotted key, like `network_default.bridges.xenbr0`.
    pub key: String,
    /// Whether the key was set in the file (else its default applied).
    pub set: bool,
}

impl fmt::Display for ConfigKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.file, self.set) {
            (Some(file), true) => write!(f, "{} in {}", self.key, file.display()),
            (Some(file), false) => {
                write!(f, "{} (default; not set in {})", self.key, file.display())
            }
            (None, _) => write!(f, "{} (built-in default)", self.key),
        }
    }
}

/// The host configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostConfig {
    /// The file it was read from; `None` for built-in defaults (also when
    /// the file does not exist).
    pub file: Option<PathBuf>,
    pub bpffs: PathBuf,
    pub max_interfaces: u32,
    pub events_per_sec: u32,
    pub attach: AttachMethod,
    /// Priority (tc `pref`) of the cls_bpf filters with `attach = "tc"`.
    pub tc_priority: u16,
    pub network_default: NetworkDefault,
    /// Option defaults, before per-vif settings.
    pub options: Options,
    /// Dotted names of the `[options]` keys the file sets.
    pub options_set: Vec<&'static str>,
    /// The directory of host policy files, one per VIF MAC.
    pub policy_dir: PathBuf,
    /// Default trusted DHCP servers.
    pub dhcp_servers: DhcpServers,
    /// Whether the file sets `learn_grace_secs` (its value is
    /// `options.learn_grace_s`, the same for every vif).
    pub learn_grace_set: bool,
}

impl Default for HostConfig {
    fn default() -> Self {
        HostConfig {
            file: None,
            bpffs: PathBuf::from(DEFAULT_BPFFS),
            max_interfaces: DEFAULT_MAX_INTERFACES,
            events_per_sec: DEFAULT_EVENTS_PER_SEC,
            attach: AttachMethod::default(),
            tc_priority: DEFAULT_TC_PRIORITY,
            network_default: NetworkDefault::default(),
            options: Options::default(),
            options_set: Vec::new(),
            policy_dir: PathBuf::from(DEFAULT_POLICY_DIR),
            dhcp_servers: DhcpServers::default(),
            learn_grace_set: false,
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    bpffs: Option<String>,
    max_interfaces: Option<i64>,
    events_per_sec: Option<i64>,
    attach: Option<String>,
    tc_priority: Option<i64>,
    network_default: Option<RawNetworkDefault>,
    options: Option<RawOptions>,
    policy_dir: Option<String>,
    dhcp_servers: Option<RawDhcpServers>,
    learn_grace_secs: Option<i64>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawDhcpServers {
    default: Option<Vec<String>>,
    bridges: Option<BTreeMap<String, Vec<String>>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawNetworkDefault {
    mode: Option<String>,
    bridges: Option<BTreeMap<String, String>>,
}

/// An `[options]` table as TOML writes it: the host configuration's and a
/// host policy file's (`xen::sources::policy_file`).
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawOptions {
    pub dhcp_client: Option<bool>,
    pub dhcp_server: Option<bool>,
    pub router: Option<bool>,
    pub ipv6_link_local: Option<String>,
    pub egress_filter: Option<bool>,
    pub ethertypes: Option<Vec<RawEthertype>>,
    pub learn_dhcp: Option<bool>,
    pub flood_pps: Option<i64>,
}

/// An EtherType written as a TOML integer (0x88cc) or string ("0x88cc").
#[derive(Deserialize)]
#[serde(untagged)]
pub(crate) enum RawEthertype {
    Int(i64),
    Text(String),
}

/// The `ethertypes` option from TOML: each 0x0600..0xffff, duplicates
/// merged, at most [`filter_common::MAX_ETHERTYPES`].
pub(crate) fn parse_ethertypes(list: &[RawEthertype]) -> Result<Vec<u16>, PolicyError> {
    let mut out = Vec::new();
    for e in list {
        let v = match e {
            RawEthertype::Int(i) => u16::try_from(*i)
                .ok()
                .filter(|&v| v >= 0x0600)
                .ok_or_else(|| PolicyError::BadEthertype(i.to_string())),
            RawEthertype::Text(s) => parse_ethertype(s),
        }?;
        if !out.contains(&v) {
            out.push(v);
        }
    }
    if out.len() > filter_common::MAX_ETHERTYPES {
        return Err(PolicyError::TooMany {
            what: "ethertypes",
            count: out.len(),
            max: filter_common::MAX_ETHERTYPES,
        });
    }
    Ok(out)
}

/// Whether `name` can be a Linux interface (bridge) name.
pub fn valid_ifname(name: &str) -> bool {
    !name.is_empty()
        && name.len() < 16
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b'/' && b != b':')
}

impl HostConfig {
    /// Reads `path`; a file that does not exist gives the defaults.
    pub fn load(path: &Path) -> Result<HostConfig, ConfigError> {
        match std::fs::read_to_string(path) {
            Ok(text) => HostConfig::parse(&text, path),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(HostConfig::default()),
            Err(source) => Err(ConfigError::Read {
                path: path.to_path_buf(),
                source,
            }),
        }
    }

    /// Parses the text of a configuration file; `path` names it in errors.
    pub fn parse(text: &str, path: &Path) -> Result<HostConfig, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| {
            let line = e
                .span()
                .map(|sp| text.bytes().take(sp.start).filter(|&b| b == b'\n').count() + 1);
            let message = e.message().trim().replace('\n', " ");
            ConfigError::Parse {
                path: path.to_path_buf(),
                message: match line {
                    Some(l) => format!("line {l}: {message}"),
                    None => message,
                },
            }
        })?;
        let invalid = |key: &str, value: String, reason: &str| ConfigError::Invalid {
            path: path.to_path_buf(),
            key: key.to_string(),
            value,
            reason: reason.to_string(),
        };
        let mut c = HostConfig {
            file: Some(path.to_path_buf()),
            ..HostConfig::default()
        };
        if let Some(b) = raw.bpffs {
            let p = PathBuf::from(&b);
            if !p.is_absolute() || b.contains('\0') {
                return Err(invalid("bpffs", format!("{b:?}"), "want an absolute path"));
            }
            c.bpffs = p;
        }
        if let Some(d) = raw.policy_dir {
            let p = PathBuf::from(&d);
            if !p.is_absolute() || d.contains('\0') {
                return Err(invalid(
                    "policy_dir",
                    format!("{d:?}"),
                    "want an absolute path",
                ));
            }
            c.policy_dir = p;
        }
        if let Some(n) = raw.max_interfaces {
            c.max_interfaces = u32::try_from(n)
                .ok()
                .filter(|&v| (1..=MAX_MAX_INTERFACES).contains(&v))
                .ok_or_else(|| {
                    invalid(
                        "max_interfaces",
                        n.to_string(),
                        &format!("want 1..={MAX_MAX_INTERFACES}"),
                    )
                })?;
        }
        if let Some(n) = raw.events_per_sec {
            c.events_per_sec = u32::try_from(n)
                .ok()
                .filter(|&v| v <= MAX_EVENTS_PER_SEC)
                .ok_or_else(|| {
                    invalid(
                        "events_per_sec",
                        n.to_string(),
                        &format!("want 0..={MAX_EVENTS_PER_SEC} (0 turns drop events off)"),
                    )
                })?;
        }
        if let Some(a) = raw.attach {
            c.attach = match a.as_str() {
                "tc" => AttachMethod::Tc,
                "tcx" => AttachMethod::Tcx,
                _ => {
                    return Err(invalid(
                        "attach",
                        format!("{a:?}"),
                        "want \"tc\" or \"tcx\"",
                    ));
                }
            };
        }
        if let Some(n) = raw.tc_priority {
            c.tc_priority = u16::try_from(n)
                .ok()
                .filter(|&v| v >= 1)
                .ok_or_else(|| invalid("tc_priority", n.to_string(), "want 1..=65535"))?;
        }
        if let Some(n) = raw.learn_grace_secs {
            c.options.learn_grace_s = u32::try_from(n)
                .ok()
                .filter(|&v| v <= MAX_LEARN_GRACE_SECS)
                .ok_or_else(|| {
                    invalid(
                        "learn_grace_secs",
                        n.to_string(),
                        &format!("want 0..={MAX_LEARN_GRACE_SECS} (seconds)"),
                    )
                })?;
            c.learn_grace_set = true;
        }
        let concrete_mode = |key: &str, s: &str| -> Result<Mode, ConfigError> {
            match parse_mode(s) {
                Ok(Some(m)) => Ok(m),
                Ok(None) => Err(invalid(
                    key,
                    format!("{s:?}"),
                    "network_default cannot default to itself; want unlocked, locked, isolated or disabled",
                )),
                Err(e) => Err(invalid(key, format!("{s:?}"), &e.to_string())),
            }
        };
        if let Some(nd) = raw.network_default {
            if let Some(m) = nd.mode {
                c.network_default.mode = concrete_mode("network_default.mode", &m)?;
            }
            for (bridge, m) in nd.bridges.unwrap_or_default() {
                let key = format!("network_default.bridges.{bridge}");
                if !valid_ifname(&bridge) {
                    return Err(invalid(
                        &key,
                        format!("{m:?}"),
                        "the key is not a valid bridge (interface) name",
                    ));
                }
                let mode = concrete_mode(&key, &m)?;
                c.network_default.bridges.insert(bridge, mode);
            }
        }
        let servers = |key: &str, list: Vec<String>| -> Result<Vec<IpAddr>, ConfigError> {
            let mut out = Vec::new();
            for item in list {
                let a = parse_dhcp_server(&item)
                    .map_err(|e| invalid(key, format!("{item:?}"), &e.to_string()))?;
                if !out.contains(&a) {
                    out.push(a);
                }
            }
            if out.len() > MAX_DHCP_SERVERS {
                return Err(invalid(
                    key,
                    format!("{} entries", out.len()),
                    &format!("at most {MAX_DHCP_SERVERS}"),
                ));
            }
            Ok(out)
        };
        if let Some(ds) = raw.dhcp_servers {
            if let Some(list) = ds.default {
                c.dhcp_servers.default = Some(servers("dhcp_servers.default", list)?);
            }
            for (bridge, list) in ds.bridges.unwrap_or_default() {
                let key = format!("dhcp_servers.bridges.{bridge}");
                if !valid_ifname(&bridge) {
                    return Err(invalid(
                        &key,
                        format!("{list:?}"),
                        "the key is not a valid bridge (interface) name",
                    ));
                }
                let list = servers(&key, list)?;
                c.dhcp_servers.bridges.insert(bridge, list);
            }
        }
        if let Some(o) = raw.options {
            let set = &mut c.options_set;
            if let Some(v) = o.dhcp_client {
                c.options.dhcp_client = v;
                set.push("dhcp_client");
            }
            if let Some(v) = o.dhcp_server {
                c.options.dhcp_server = v;
                set.push("dhcp_server");
            }
            if let Some(v) = o.router {
                c.options.router = v;
                set.push("router");
            }
            if let Some(v) = o.egress_filter {
                c.options.egress_filter = v;
                set.push("egress_filter");
            }
            if let Some(v) = o.ipv6_link_local {
                c.options.link_local = parse_link_local(&v).map_err(|e| {
                    invalid("options.ipv6_link_local", format!("{v:?}"), &e.to_string())
                })?;
                set.push("ipv6_link_local");
            }
            if let Some(list) = o.ethertypes {
                c.options.ethertypes = parse_ethertypes(&list).map_err(|e| {
                    invalid(
                        "options.ethertypes",
                        format!("{} entries", list.len()),
                        &e.to_string(),
                    )
                })?;
                set.push("ethertypes");
            }
            if let Some(v) = o.learn_dhcp {
                c.options.learn_dhcp = v;
                set.push("learn_dhcp");
            }
            if let Some(v) = o.flood_pps {
                c.options.flood_pps = flood_pps(v)
                    .map_err(|e| invalid("options.flood_pps", v.to_string(), &e.to_string()))?;
                set.push("flood_pps");
            }
        }
        Ok(c)
    }

    /// The mode `network_default` means on `bridge`, and the key that says
    /// so.
    pub fn network_default_for(&self, bridge: Option<&str>) -> (Mode, ConfigKey) {
        if let Some((b, m)) = bridge.and_then(|b| self.network_default.bridges.get_key_value(b)) {
            return (
                *m,
                ConfigKey {
                    file: self.file.clone(),
                    key: format!("network_default.bridges.{b}"),
                    set: true,
                },
            );
        }
        (
            self.network_default.mode,
            ConfigKey {
                file: self.file.clone(),
                key: "network_default.mode".to_string(),
                set: self.file.is_some(),
            },
        )
    }

    /// The default trusted DHCP servers on `bridge`, and the key that sets
    /// them; `None` when the file sets none (any server).
    pub fn dhcp_servers_for(&self, bridge: Option<&str>) -> Option<(Vec<IpAddr>, ConfigKey)> {
        let key = |key: String| ConfigKey {
            file: self.file.clone(),
            key,
            set: true,
        };
        if let Some((b, list)) = bridge.and_then(|b| self.dhcp_servers.bridges.get_key_value(b)) {
            return Some((list.clone(), key(format!("dhcp_servers.bridges.{b}"))));
        }
        self.dhcp_servers
            .default
            .clone()
            .map(|list| (list, key("dhcp_servers.default".to_string())))
    }

    /// Where `learn_grace_secs` came from.
    pub fn learn_grace_key(&self) -> ConfigKey {
        ConfigKey {
            file: self.file.clone(),
            key: "learn_grace_secs".to_string(),
            set: self.learn_grace_set,
        }
    }

    /// Where the default of option `name` (`dhcp_client`, ...) came from.
    pub fn option_key(&self, name: &str) -> ConfigKey {
        ConfigKey {
            file: self.file.clone(),
            key: format!("options.{name}"),
            set: self.options_set.contains(&name),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<HostConfig, ConfigError> {
        HostConfig::parse(s, Path::new("/test/vifguard.toml"))
    }

    #[test]
    fn empty_file_is_defaults() {
        let c = parse("").unwrap();
        assert_eq!(c.bpffs, PathBuf::from(DEFAULT_BPFFS));
        assert_eq!(c.max_interfaces, 1024);
        assert_eq!(c.events_per_sec, 20);
        assert_eq!(c.network_default.mode, Mode::Unlocked);
        assert_eq!(c.options, Options::default());
    }

    #[test]
    fn missing_file_is_defaults() {
        let c = HostConfig::load(Path::new("/nonexistent/vifguard/vifguard.toml")).unwrap();
        assert_eq!(c, HostConfig::default());
    }

    #[test]
    fn full_file_parses() {
        let c = parse(
            r#"
bpffs = "/sys/fs/bpf/vg"
max_interfaces = 64
events_per_sec = 0
attach = "tcx"
tc_priority = 7
policy_dir = "/srv/vifguard/vifs"
learn_grace_secs = 0
[network_default]
mode = "locked"
[network_default.bridges]
xenbr0 = "unlocked"
xenbr1 = "isolated"
[options]
dhcp_server = true
ipv6_link_local = "any"
ethertypes = ["0x88cc", 0x88b5]
learn_dhcp = true
flood_pps = 0
[dhcp_servers]
default = ["192.0.2.1", "192.0.2.1", "fe80::1"]
[dhcp_servers.bridges]
xenbr1 = []
"#,
        )
        .unwrap();
        assert_eq!(c.bpffs, PathBuf::from("/sys/fs/bpf/vg"));
        assert_eq!(c.max_interfaces, 64);
        assert_eq!(c.events_per_sec, 0);
        assert_eq!(c.attach, AttachMethod::Tcx);
        assert_eq!(c.tc_priority, 7);
        assert_eq!(c.network_default_for(Some("xenbr0")).0, Mode::Unlocked);
        assert_eq!(c.network_default_for(Some("xenbr1")).0, Mode::Isolated);
        let (m, key) = c.network_default_for(Some("other"));
        assert_eq!(m, Mode::Locked);
        assert_eq!(key.key, "network_default.mode");
        assert_eq!(c.network_default_for(None).0, Mode::Locked);
        assert!(c.options.dhcp_server && c.options.dhcp_client);
        assert_eq!(c.options.link_local, crate::policy::LinkLocal::Any);
        assert_eq!(c.options.ethertypes, vec![0x88cc, 0x88b5]);
        assert!(c.option_key("dhcp_server").set);
        assert!(!c.option_key("router").set);
        assert!(c.options.learn_dhcp && c.option_key("learn_dhcp").set);
        assert_eq!(c.options.flood_pps, 0);
        assert!(c.option_key("flood_pps").set);
        assert_eq!(c.options.learn_grace_s, 0);
        assert_eq!(
            c.learn_grace_key().to_string(),
            "learn_grace_secs in /test/vifguard.toml"
        );
        assert_eq!(parse("").unwrap().options.learn_grace_s, 60);
        assert!(!parse("").unwrap().learn_grace_key().set);
        assert_eq!(
            parse("learn_grace_secs = 86400")
                .unwrap()
                .options
                .learn_grace_s,
            86_400
        );
        assert_eq!(c.policy_dir, PathBuf::from("/srv/vifguard/vifs"));
        let (list, key) = c.dhcp_servers_for(Some("xenbr0")).unwrap();
        assert_eq!(list.len(), 2, "duplicates merged");
        assert_eq!(
            key.to_string(),
            "dhcp_servers.default in /test/vifguard.toml"
        );
        let (list, key) = c.dhcp_servers_for(Some("xenbr1")).unwrap();
        assert!(list.is_empty(), "a bridge can say: any server");
        assert_eq!(key.key, "dhcp_servers.bridges.xenbr1");
        assert_eq!(parse("").unwrap().dhcp_servers_for(Some("xenbr0")), None);
        assert_eq!(
            parse("").unwrap().policy_dir,
            PathBuf::from(DEFAULT_POLICY_DIR)
        );
    }

    #[test]
    fn unknown_keys_are_rejected() {
        for text in [
            "bpfs = \"/x\"",
            "[options]\ndhcp = true",
            "[network_default]\nmodes = \"locked\"",
            "[extra]\na = 1",
        ] {
            let e = parse(text).unwrap_err();
            assert!(matches!(e, ConfigError::Parse { .. }), "{text}: {e}");
            let msg = e.to_string();
            assert!(
                msg.contains("/test/vifguard.toml") && msg.contains("line "),
                "{msg}"
            );
        }
    }

    #[test]
    fn bad_values_name_the_key() {
        let cases = [
            ("bpffs = \"relative\"", "bpffs"),
            ("max_interfaces = 0", "max_interfaces"),
            ("max_interfaces = -5", "max_interfaces"),
            ("events_per_sec = 10000000", "events_per_sec"),
            ("attach = \"xdp\"", "attach"),
            ("tc_priority = 0", "tc_priority"),
            ("tc_priority = 65536", "tc_priority"),
            (
                "[network_default]\nmode = \"network_default\"",
                "network_default.mode",
            ),
            (
                "[network_default]\nmode = \"lockd\"",
                "network_default.mode",
            ),
            (
                "[network_default.bridges]\nxenbr0 = \"open\"",
                "network_default.bridges.xenbr0",
            ),
            (
                "[options]\nipv6_link_local = \"some\"",
                "options.ipv6_link_local",
            ),
            ("[options]\nethertypes = [\"0x0100\"]", "options.ethertypes"),
            ("[options]\nethertypes = [70000]", "options.ethertypes"),
            ("policy_dir = \"vifs\"", "policy_dir"),
            ("learn_grace_secs = -1", "learn_grace_secs"),
            ("learn_grace_secs = 86401", "learn_grace_secs"),
            ("[options]\nflood_pps = -1", "options.flood_pps"),
            ("[options]\nflood_pps = 1000001", "options.flood_pps"),
            ("[options]\nflood_pps = 1000001", "options.flood_pps"),
            (
                "[dhcp_servers]\ndefault = [\"192.0.2.0/24\"]",
                "dhcp_servers.default",
            ),
            (
                "[dhcp_servers]\ndefault = [\"0.0.0.0\"]",
                "dhcp_servers.default",
            ),
            (
                "[dhcp_servers]\ndefault = [\"192.0.2.1\", \"192.0.2.2\", \"192.0.2.3\", \"192.0.2.4\", \"192.0.2.5\", \"192.0.2.6\", \"192.0.2.7\", \"192.0.2.8\", \"192.0.2.9\"]",
                "dhcp_servers.default",
            ),
            (
                "[dhcp_servers.bridges]\nxenbr0 = [\"dhcp.example\"]",
                "dhcp_servers.bridges.xenbr0",
            ),
            (
                "[dhcp_servers.bridges]\n\"a/b\" = []",
                "dhcp_servers.bridges.a/b",
            ),
        ];
        for (text, key) in cases {
            match parse(text) {
                Err(ConfigError::Invalid { key: k, .. }) => assert_eq!(k, key, "{text}"),
                other => panic!("{text}: {other:?}"),
            }
        }
        assert!(matches!(
            parse("max_interfaces = \"many\""),
            Err(ConfigError::Parse { .. })
        ));
        assert!(matches!(
            parse("[options]\nlearn_dhcp = \"yes\""),
            Err(ConfigError::Parse { .. })
        ));
        // Beyond the largest limit.
        let msg = parse("[options]\nflood_pps = 1000001")
            .unwrap_err()
            .to_string();
        assert!(msg.contains("flood_pps"), "{msg}");
        assert_eq!(
            parse("[options]\nflood_pps = 1000")
                .map(|c| c.options.flood_pps)
                .ok(),
            Some(1000)
        );
    }

    #[test]
    fn shipped_example_parses() {
        let text = include_str!("../vifguard.toml.example");
        let c = parse(text).unwrap();
        assert_eq!(c.bpffs, PathBuf::from(DEFAULT_BPFFS));
        assert_eq!(c.max_interfaces, DEFAULT_MAX_INTERFACES);
        assert_eq!(c.events_per_sec, DEFAULT_EVENTS_PER_SEC);
        assert_eq!(c.attach, AttachMethod::Tc);
        assert_eq!(c.tc_priority, DEFAULT_TC_PRIORITY);
        assert_eq!(c.options, Options::default());
        assert_eq!(c.policy_dir, PathBuf::from(DEFAULT_POLICY_DIR));
        assert_eq!(c.dhcp_servers, DhcpServers::default());
    }
}
