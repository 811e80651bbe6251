//! The policy sources, through the same resolution a hotplug runs
//! (`sources::resolve_from`) over an in-memory xenstore built from the
//! input: xl's `ip=`, XAPI's private keys (`ipv4-allowed`, ...), the
//! OpenStack vm-data JSON record, the `vifguard/*` keys (mode, ipv6,
//! destinations, options, pairs, dhcp-servers). Every one parses or is
//! refused with an error, never a panic; a resolved policy also goes
//! through validation, the map encoding and its description.
//!
//! Input: entries separated by NUL, each `<root><relative path>=<value>`
//! where `<root>` is one letter (b: the backend directory, x: XAPI's
//! private directory, d: the guest's home, v: the VM node, o: the
//! OpenStack record, whose path is the whole entry); an entry that starts
//! with `!` is guest-writable (the trust rule refuses it).
#![no_main]

use std::collections::BTreeMap;

use filter_user::config::HostConfig;
use filter_user::xen::sources::{Store, VifId, resolve_from};
use libfuzzer_sys::fuzz_target;
use xenstore::{Perms, XsError};

const UUID: &str = "6b3f0c2e-0000-4000-8000-000000000005";
const BACKEND: &str = "/local/domain/0/backend/vif/5/0";

struct Mem {
    nodes: BTreeMap<String, (Vec<u8>, Perms)>,
}

impl Store for Mem {
    fn read_opt(&mut self, path: &str) -> Result<Option<Vec<u8>>, XsError> {
        Ok(self.nodes.get(path).map(|(v, _)| v.clone()))
    }

    fn directory_opt(&mut self, path: &str) -> Result<Option<Vec<String>>, XsError> {
        let prefix = format!("{path}/");
        let mut kids: Vec<String> = self
            .nodes
            .keys()
            .filter_map(|k| k.strip_prefix(&prefix))
            .map(|r| r.split('/').next().unwrap_or(r).to_string())
            .collect();
        kids.dedup();
        Ok((!kids.is_empty() || self.nodes.contains_key(path)).then_some(kids))
    }

    fn get_perms(&mut self, path: &str) -> Result<Perms, XsError> {
        // A parent of stored nodes: dom0's, as the toolstack makes them.
        Ok(self
            .nodes
            .get(path)
            .map(|(_, p)| p.clone())
            .unwrap_or_else(|| dom0()))
    }
}

fn dom0() -> Perms {
    Perms::from_entries(&["n0"]).expect("dom0's permissions parse")
}

fuzz_target!(|data: &[u8]| {
    let Ok(vif) = VifId::from_xenbus_path("backend/vif/5/0", 0) else {
        return;
    };
    let guest = Perms::from_entries(&["n0", "b5"]).expect("a guest's permissions parse");
    let mut nodes = BTreeMap::new();
    for entry in data.split(|b| *b == 0) {
        let (writable, entry) = match entry.strip_prefix(b"!") {
            Some(rest) => (true, rest),
            None => (false, entry),
        };
        let Some(eq) = entry.iter().position(|b| *b == b'=') else {
            continue;
        };
        let (key, value) = (&entry[..eq], &entry[eq + 1..]);
        let Ok(key) = std::str::from_utf8(key) else {
            continue;
        };
        let Some(root) = key.chars().next() else {
            continue;
        };
        let rest = &key[root.len_utf8()..];
        let path = match root {
            'b' => format!("{BACKEND}/{rest}"),
            'x' => format!("/xapi/{UUID}/private/vif/0/{rest}"),
            'd' => format!("/local/domain/5/{rest}"),
            'v' => format!("/vm/{UUID}/{rest}"),
            'o' => format!("/local/domain/5/vm-data/networking/{rest}"),
            _ => continue,
        };
        let perms = if writable { guest.clone() } else { dom0() };
        nodes.insert(path, (value.to_vec(), perms));
    }
    let mut store = Mem { nodes };
    let config = HostConfig::default();
    if let Ok(r) = resolve_from(&mut store, &vif, &config) {
        let _ = r.policy.validate();
        let _ = r.describe();
        let _ = r.json();
        let _ = filter_user::datapath::encode::encode(&r.policy, 7, 3, 100);
    }
});
