//! OpenStack: nova's XenServer (xenapi) driver convention.
//!
//! nova's `vmops.inject_network_info` writes, for each vif, the JSON of
//! `_vif_xenstore_data` to the guest's
//! `/local/domain/<domid>/vm-data/networking/<MAC without colons>` (the key
//! keeps the MAC's case; vifguard matches it case-insensitively):
//!
//! ```json
//! {"label": "private", "mac": "00:16:3e:00:00:05",
//!  "ips":  [{"ip": "192.0.2.10", "netmask": "255.255.255.0", "enabled": "1", "gateway": "192.0.2.1"}],
//!  "ip6s": [{"ip": "2001:db8::10", "netmask": 64, "enabled": "1", "gateway": "2001:db8::1"}],
//!  "gateway": "192.0.2.1", "dns": ["192.0.2.53"], "broadcast": "192.0.2.255"}
//! ```
//!
//! vifguard allows each enabled `ips[].ip` / `ip6s[].ip` as a host address
//! (`netmask` describes the subnet for the guest's own configuration, not
//! the sources it may use, and is ignored). `enabled` "1" (or 1/true, or
//! absent) counts, "0" (0/false) is skipped. `mac` must equal the
//! backend's `mac`. Mode is `locked` (nova used these records for its
//! anti-spoofing rules) unless the backend's `vifguard/mode` says
//! otherwise.
//!
//! The record lives in the guest's tree: it is trusted only if dom0 (or
//! the backend domain) owns it and the guest cannot write it; on hosts
//! where the toolstack leaves `vm-data` guest-writable, the vif fails
//! closed.

use serde_json::Value;

use super::{Addresses, Origin, Reader, SourceError, backend_mode, bounded};
use crate::policy::{Cidr4, Cidr6, MacAddr};

/// The record's directory, relative to the guest's home.
pub const NETWORKING_DIR: &str = "vm-data/networking";

/// The record's key for `mac`: nova's `mac.replace(':', '')`.
pub fn record_key(mac: &MacAddr) -> String {
    mac.to_string().replace(':', "")
}

fn enabled(v: Option<&Value>) -> Option<bool> {
    match v {
        None | Some(Value::Null) => Some(true),
        Some(Value::String(s)) => match s.trim() {
            "1" | "true" | "True" => Some(true),
            "0" | "false" | "False" => Some(false),
            _ => None,
        },
        Some(Value::Number(n)) => match n.as_u64() {
            Some(1) => Some(true),
            Some(0) => Some(false),
            _ => None,
        },
        Some(Value::Bool(b)) => Some(*b),
        Some(_) => None,
    }
}

/// The enabled `ip` strings of list `field` (`ips` or `ip6s`).
fn addresses<'v>(
    r: &Reader<'_>,
    node: &str,
    obj: &'v serde_json::Map<String, Value>,
    field: &str,
) -> Result<Vec<&'v str>, SourceError> {
    let record = |detail: String| SourceError::BadRecord {
        vif: r.vif,
        node: node.to_string(),
        detail,
    };
    let list = match obj.get(field) {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(a)) => a,
        Some(_) => return Err(record(format!("\"{field}\" is not a list"))),
    };
    bounded(list.len(), "addresses").map_err(|e| r.bad(node, e))?;
    let mut out = Vec::new();
    for (i, entry) in list.iter().enumerate() {
        let Value::Object(e) = entry else {
            return Err(record(format!("\"{field}\"[{i}] is not an object")));
        };
        match enabled(e.get("enabled")) {
            Some(true) => {}
            Some(false) => continue,
            None => {
                return Err(record(format!(
                    "\"{field}\"[{i}].enabled = {} is not \"1\" or \"0\"",
                    e.get("enabled").map_or_else(String::new, Value::to_string)
                )));
            }
        }
        match e.get("ip") {
            Some(Value::String(s)) => out.push(s.as_str()),
            Some(other) => {
                return Err(record(format!(
                    "\"{field}\"[{i}].ip = {other} is not a string"
                )));
            }
            None => return Err(record(format!("\"{field}\"[{i}] has no \"ip\""))),
        }
    }
    Ok(out)
}

pub(crate) fn read(
    r: &mut Reader<'_>,
    mac: MacAddr,
    mac_node: &str,
) -> Result<Option<Addresses>, SourceError> {
    let dir = format!("{}/{NETWORKING_DIR}", r.vif.domain_path());
    let Some(children) = r.directory(&dir)? else {
        return Ok(None);
    };
    let want = record_key(&mac);
    let matches: Vec<String> = children
        .into_iter()
        .filter(|c| c.eq_ignore_ascii_case(&want))
        .map(|c| format!("{dir}/{c}"))
        .collect();
    let node = match matches.as_slice() {
        [] => return Ok(None),
        [one] => one.clone(),
        _ => {
            return Err(SourceError::Ambiguous {
                vif: r.vif,
                nodes: matches.join(", "),
            });
        }
    };
    let text = r.required(&node)?;
    let json: Value = serde_json::from_str(&text).map_err(|e| SourceError::BadJson {
        vif: r.vif,
        node: node.clone(),
        detail: e.to_string(),
    })?;
    let Value::Object(obj) = &json else {
        return Err(SourceError::BadRecord {
            vif: r.vif,
            node,
            detail: "the record is not a JSON object".into(),
        });
    };
    match obj.get("mac") {
        Some(Value::String(m)) => {
            let found: Option<MacAddr> = m.parse().ok();
            if found != Some(mac) {
                return Err(SourceError::MacMismatch {
                    vif: r.vif,
                    node,
                    found: m.clone(),
                    expected: mac,
                    mac_node: mac_node.to_string(),
                });
            }
        }
        _ => {
            return Err(SourceError::BadRecord {
                vif: r.vif,
                node,
                detail: "the record has no \"mac\" string".into(),
            });
        }
    }
    let mut ipv4 = Vec::new();
    for ip in addresses(r, &node, obj, "ips")? {
        let c: Cidr4 = ip.parse().map_err(|e| r.bad(&node, e))?;
        if !ipv4.contains(&c) {
            ipv4.push(c);
        }
    }
    let mut ipv6 = Vec::new();
    for ip in addresses(r, &node, obj, "ip6s")? {
        let c: Cidr6 = ip.parse().map_err(|e| r.bad(&node, e))?;
        if !ipv6.contains(&c) {
            ipv6.push(c);
        }
    }
    let (mode, mode_origin) = match backend_mode(r)? {
        Some((m, n)) => (m, vec![Origin::Xenstore(n)]),
        None => (
            Some(crate::policy::Mode::Locked),
            vec![Origin::Xenstore(node.clone())],
        ),
    };
    Ok(Some(Addresses {
        mode,
        mode_origin,
        ipv4_origin: if obj.contains_key("ips") {
            vec![Origin::Xenstore(node.clone())]
        } else {
            Vec::new()
        },
        ipv6_origin: if obj.contains_key("ip6s") {
            vec![Origin::Xenstore(node.clone())]
        } else {
            Vec::new()
        },
        ipv4,
        ipv6,
    }))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::store::mem::MemStore;
    use super::super::{SourceKind, VifId, resolve_from};
    use super::NETWORKING_DIR;
    use crate::config::HostConfig;

    const B: &str = "/local/domain/0/backend/vif/5/0";
    const N: &str = "/local/domain/5/vm-data/networking";

    #[test]
    fn dir_constant_matches() {
        assert!(N.ends_with(NETWORKING_DIR));
    }

    fn store(record: &str) -> MemStore {
        let mut s = MemStore::default();
        s.put(&format!("{B}/mac"), "00:16:3e:00:00:05", "n0 r5");
        s.put(&format!("{N}/00163E000005"), record, "n0 r5");
        s
    }

    #[test]
    fn nova_record_with_disabled_entries() {
        let mut s = store(
            r#"{"mac": "00:16:3E:00:00:05", "label": "public",
                "ips": [{"ip": "192.0.2.10", "netmask": "255.255.255.0", "enabled": "1"},
                        {"ip": "192.0.2.11", "netmask": "255.255.255.0", "enabled": "0"}],
                "ip6s": [{"ip": "2001:db8::10", "netmask": 64, "enabled": "1"}]}"#,
        );
        let r = resolve_from(&mut s, &VifId::new(0, 5, 0), &HostConfig::default()).unwrap();
        assert_eq!(r.source, SourceKind::OpenStack);
        assert_eq!(r.policy.mode, crate::policy::Mode::Locked);
        assert_eq!(r.policy.ipv4, vec!["192.0.2.10".parse().unwrap()]);
        assert_eq!(r.policy.ipv6, vec!["2001:db8::10".parse().unwrap()]);
    }

    #[test]
    fn record_shape_errors() {
        for (rec, want) in [
            (
                r#"{"mac": "00:16:3e:00:00:05", "ips": {}}"#,
                "is not a list",
            ),
            (
                r#"{"mac": "00:16:3e:00:00:05", "ips": [1]}"#,
                "is not an object",
            ),
            (
                r#"{"mac": "00:16:3e:00:00:05", "ips": [{"enabled": "1"}]}"#,
                "has no \"ip\"",
            ),
            (
                r#"{"mac": "00:16:3e:00:00:05", "ips": [{"ip": 5}]}"#,
                "is not a string",
            ),
            (
                r#"{"mac": "00:16:3e:00:00:05", "ips": [{"ip": "192.0.2.1", "enabled": "yes"}]}"#,
                "enabled",
            ),
            (r#"{"ips": []}"#, "no \"mac\""),
            (r#"[1, 2]"#, "not a JSON object"),
        ] {
            let mut s = store(rec);
            let e = resolve_from(&mut s, &VifId::new(0, 5, 0), &HostConfig::default()).unwrap_err();
            let msg = e.to_string();
            assert!(msg.contains(want) && msg.contains(N), "{rec}: {msg}");
        }
    }
}
