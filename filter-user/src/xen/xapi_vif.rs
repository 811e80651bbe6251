//! What XAPI's `setup-vif-rules` needs of a vif besides its policy (which
//! [`crate::xen::sources::xapi`] reads): the VM the guest domain belongs
//! to, the network's bridge, the external-ids an Open vSwitch port gets,
//! and the PVS proxy hook.
//!
//! The stock script reads these from xenopsd's state file
//! (`/var/run/nonpersistent/xenopsd/<backend>/VM/<uuid>/vif.<devid>`);
//! vifguard reads the xenstore keys xenopsd writes from the same record
//! (`Device.Vif.add`'s private keys), where its policy comes from too.
//! Every node but the VM pointer is read through the trust rule: they say
//! where a guest's frames go and which program runs as root.

use xenstore::{Xenstore, XsError};

use super::sources::xapi::private_path;
use super::sources::{Reader, SourceError, keys};
use super::vif::VifId;

/// The VM uuid `/local/domain/<domid>/vm` names (`/vm/<uuid>`), or its
/// whole value if it is not of that form; `None` if the node is absent.
/// Read without the trust rule: it only checks the caller's arguments.
pub fn vm_of_domain(xs: &mut Xenstore, domid: u32) -> Result<Option<String>, XsError> {
    let node = format!("/local/domain/{domid}/vm");
    Ok(xs.read_opt(&node)?.map(|v| {
        let v = String::from_utf8_lossy(&v).trim().to_string();
        v.strip_prefix("/vm/").map_or(v.clone(), str::to_string)
    }))
}

/// The vif's hotplug directory, `/xapi/<uuid>/hotplug/<domid>/vif/<devid>`
/// (an argument of the PVS proxy hook).
pub fn hotplug_path(uuid: &str, domid: u32, devid: u32) -> String {
    format!("/xapi/{uuid}/hotplug/{domid}/vif/{devid}")
}

/// A node's text, `None` when absent or empty.
fn text(r: &mut Reader<'_>, node: &str) -> Result<Option<String>, SourceError> {
    Ok(r.node(node)?
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty()))
}

/// The nodes that name the network's bridge, in the order XAPI's vif
/// hotplug script (`vif-real`, `add_to_bridge`) reads them: the backend's
/// `bridge` key, then the private one.
pub fn bridge_nodes(vif: &VifId, uuid: &str) -> [String; 2] {
    [
        format!("{}/{}", vif.backend_path(), keys::BRIDGE),
        format!("{}/bridge", private_path(uuid, vif.devid)),
    ]
}

/// The network's bridge: the first of [`bridge_nodes`] that is set.
pub(crate) fn bridge(r: &mut Reader<'_>, uuid: &str) -> Result<Option<String>, SourceError> {
    for node in bridge_nodes(&r.vif, uuid) {
        if let Some(name) = text(r, &node)? {
            return Ok(Some(name));
        }
    }
    Ok(None)
}

/// The external-ids XAPI's script sets on the vif's Open vSwitch
/// Interface record (common.py `get_external_ids`): `xs-vm-uuid` (the
/// final uuid of a VM being migrated here, else `uuid`), `xs-vif-uuid`
/// and `xs-network-uuid` when xenopsd wrote them, and `attached-mac`.
pub(crate) fn external_ids(
    r: &mut Reader<'_>,
    uuid: &str,
    mac: &str,
) -> Result<Vec<(&'static str, String)>, SourceError> {
    let private = private_path(uuid, r.vif.devid);
    let vm = text(r, &format!("/vm/{uuid}/final-uuid"))?.unwrap_or_else(|| uuid.to_string());
    let mut ids = vec![("xs-vm-uuid", vm)];
    for (id, key) in [
        ("xs-vif-uuid", "vif-uuid"),
        ("xs-network-uuid", "network-uuid"),
    ] {
        if let Some(v) = text(r, &format!("{private}/{key}"))? {
            ids.push((id, v));
        }
    }
    ids.push(("attached-mac", mac.to_string()));
    Ok(ids)
}

/// The PVS proxy hook to run for this vif: the private
/// `setup-pvs-proxy-rules` program, when the private `pvs-interface` key
/// exists (the stock script's condition); `Err` names a missing program.
pub(crate) fn pvs_proxy_program(
    r: &mut Reader<'_>,
    uuid: &str,
) -> Result<Option<String>, SourceError> {
    let private = private_path(uuid, r.vif.devid);
    if r.node(&format!("{private}/pvs-interface"))?.is_none() {
        return Ok(None);
    }
    let node = format!("{private}/setup-pvs-proxy-rules");
    text(r, &node)?
        .map(Some)
        .ok_or(SourceError::Missing { vif: r.vif, node })
}
