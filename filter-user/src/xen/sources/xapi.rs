//! XAPI / XCP-ng: the VIF's locking mode as xenopsd writes it.
//!
//! xenopsd (xen-api's `xenopsd/xc/xenops_server_xen.ml`, `VIF.plug` and
//! `set_locking_mode`) keeps per-VIF private data in
//! `/xapi/<vm-uuid>/private/vif/<devid>/`, owned by the backend domain with
//! no access for others:
//!
//! | key | value |
//! |---|---|
//! | `locking-mode` | `locked`, `unlocked` or `disabled` (xapi resolves `network_default` before it reaches xenopsd; vifguard accepts `network_default`, and `isolated`, too) |
//! | `ipv4-allowed` | IPv4 addresses, comma-separated (`String.concat ","`); prefixes accepted |
//! | `ipv6-allowed` | IPv6 addresses, comma-separated; prefixes accepted |
//!
//! The VM uuid comes from the guest's `/local/domain/<domid>/vm`
//! (`/vm/<uuid>`), as xenopsd's `uuid_of_domid` finds it. That node lives in
//! the guest's tree, so it is trust-checked like every policy node.
//! The source applies when `locking-mode` exists. A private directory
//! without it is an incomplete source ([`SourceError::Incomplete`]): the
//! vif keeps the policy it has, or fails closed if it has none.

use super::{Addresses, Origin, Reader, SourceError, list_items, parse_v4_list, parse_v6_list};
use crate::policy::parse_mode;

/// The key names, relative to the private directory.
pub const LOCKING_MODE: &str = "locking-mode";
pub const IPV4_ALLOWED: &str = "ipv4-allowed";
pub const IPV6_ALLOWED: &str = "ipv6-allowed";

/// Whether `s` looks like a VM uuid (8-4-4-4-12 hex digits).
pub fn is_uuid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The private directory of a VIF.
pub fn private_path(uuid: &str, devid: u32) -> String {
    format!("/xapi/{uuid}/private/vif/{devid}")
}

/// The VM uuid a domain's `vm` node (`/vm/<uuid>`) names, if it does.
fn vm_uuid(vm: &str) -> Option<&str> {
    vm.trim().strip_prefix("/vm/").filter(|u| is_uuid(u))
}

/// A VIF's private directory and, in it, the nodes [`read`] takes:
/// `locking-mode`, `ipv4-allowed`, `ipv6-allowed`.
fn private_nodes(uuid: &str, devid: u32) -> (String, [String; 3]) {
    let dir = private_path(uuid, devid);
    let nodes = [LOCKING_MODE, IPV4_ALLOWED, IPV6_ALLOWED].map(|k| format!("{dir}/{k}"));
    (dir, nodes)
}

/// What the prefetching store asks for in its second round trip, for the
/// value `vm` of the domain's `vm` node: [`private_nodes`], if it names a
/// VM uuid.
pub(crate) fn prefetch(vm: &[u8], devid: u32) -> Option<(String, [String; 3])> {
    let uuid = vm_uuid(std::str::from_utf8(vm).ok()?)?;
    Some(private_nodes(uuid, devid))
}

pub(crate) fn read(r: &mut Reader<'_>) -> Result<Option<Addresses>, SourceError> {
    let vm_node = format!("{}/vm", r.vif.domain_path());
    let Some(vm) = r.node(&vm_node)? else {
        return Ok(None);
    };
    let Some(uuid) = vm_uuid(&vm) else {
        return Err(SourceError::BadVmPath {
            vif: r.vif,
            node: vm_node,
            value: vm.trim().to_string(),
        });
    };
    let (dir, [mode_node, v4_node, v6_node]) = private_nodes(uuid, r.vif.devid);
    let Some(mode_text) = r.node(&mode_node)? else {
        // No locking mode: not a XAPI-managed VIF, unless its private
        // directory exists. xenopsd's live update deletes the keys and
        // writes them back one by one: meanwhile the source is incomplete,
        // which is not a policy, and no other source may stand in for it.
        if r.directory(&dir)?.is_some() {
            return Err(SourceError::Incomplete {
                vif: r.vif,
                node: mode_node,
            });
        }
        return Ok(None);
    };
    let mode = parse_mode(&mode_text).map_err(|e| r.bad(&mode_node, e))?;
    let mut ipv4 = Vec::new();
    let mut ipv4_origin = Vec::new();
    if let Some(v) = r.node(&v4_node)? {
        let items: Vec<&str> = list_items(&v).collect();
        ipv4 = parse_v4_list(&items).map_err(|e| r.bad(&v4_node, e))?;
        ipv4_origin.push(Origin::Xenstore(v4_node));
    }
    let mut ipv6 = Vec::new();
    let mut ipv6_origin = Vec::new();
    if let Some(v) = r.node(&v6_node)? {
        let items: Vec<&str> = list_items(&v).collect();
        ipv6 = parse_v6_list(&items).map_err(|e| r.bad(&v6_node, e))?;
        ipv6_origin.push(Origin::Xenstore(v6_node));
    }
    Ok(Some(Addresses {
        mode,
        mode_origin: vec![Origin::Xenstore(vm_node), Origin::Xenstore(mode_node)],
        ipv4,
        ipv4_origin,
        ipv6,
        ipv6_origin,
    }))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn uuids() {
        assert!(is_uuid("6a1f3c1e-0b4e-4d7b-9a42-3e6c0f1d2b77"));
        assert!(!is_uuid("6a1f3c1e-0b4e-4d7b-9a42-3e6c0f1d2b7"));
        assert!(!is_uuid("6a1f3c1e-0b4e-4d7b-9a42-3e6c0f1d2b77/x"));
        assert!(!is_uuid("../../local"));
    }
}
