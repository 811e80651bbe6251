//! Putting a vif on its network's bridge and taking it off, as XAPI's
//! `setup-vif-rules` does (see [`crate::setup_vif_rules`]): a Linux bridge
//! ([`link`], over rtnetlink) or an Open vSwitch bridge ([`ovs`], through
//! `ovs-vsctl`).
//!
//! Which of the two a bridge name means is decided per bridge, the way the
//! host itself would resolve the name: a device of that name in the
//! caller's network namespace that is a Linux bridge (rtnetlink kind
//! `bridge`) is one; anything else is an Open vSwitch bridge if
//! `ovs-vsctl br-exists` says so (an OVS bridge's own device is of kind
//! `openvswitch` with the kernel datapath, `tun` with the userspace one,
//! and a fake VLAN bridge may have none). XAPI's scripts instead ask
//! whether the `openvswitch` kernel module is loaded, a host-wide switch
//! that says nothing about the bridge at hand.

pub mod link;
pub mod ovs;

use crate::sys::netdev::ifindex;
use link::{LinkError, Links};
use ovs::OvsError;

#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    #[error(transparent)]
    Link(#[from] LinkError),
    #[error(transparent)]
    Ovs(#[from] OvsError),
    #[error(
        "no bridge named {0:?}: neither a Linux bridge in this network namespace nor an Open vSwitch bridge"
    )]
    NoBridge(String),
}

/// A network's bridge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Bridge {
    Linux { name: String, ifindex: u32 },
    Ovs { name: String },
}

impl Bridge {
    pub fn name(&self) -> &str {
        match self {
            Bridge::Linux { name, .. } | Bridge::Ovs { name } => name,
        }
    }

    /// `Linux bridge` or `Open vSwitch bridge`, for messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Bridge::Linux { .. } => "Linux bridge",
            Bridge::Ovs { .. } => "Open vSwitch bridge",
        }
    }
}

/// The bridge named `name` (see the module documentation for the rule).
pub fn find_bridge(links: &mut Links, name: &str) -> Result<Bridge, NetworkError> {
    if let Some(ix) = ifindex(name)
        && let Some(l) = links.get(ix)?
        && l.kind.as_deref() == Some("bridge")
    {
        return Ok(Bridge::Linux {
            name: name.to_string(),
            ifindex: ix,
        });
    }
    if ovs::br_exists(name)? {
        return Ok(Bridge::Ovs {
            name: name.to_string(),
        });
    }
    Err(NetworkError::NoBridge(name.to_string()))
}

/// Whether `iface` is a port of `bridge`.
pub fn is_port(
    links: &mut Links,
    bridge: &Bridge,
    iface: &str,
    ix: u32,
) -> Result<bool, NetworkError> {
    Ok(match bridge {
        Bridge::Linux { ifindex, .. } => links.get(ix)?.and_then(|l| l.master) == Some(*ifindex),
        Bridge::Ovs { name } => ovs::has_port(name, iface)?,
    })
}

/// Makes `iface` (index `ix`) a port of `bridge`, moving it from another
/// bridge it may be on; on Open vSwitch with `external_ids` on its
/// Interface record.
pub fn add_port(
    links: &mut Links,
    bridge: &Bridge,
    iface: &str,
    ix: u32,
    external_ids: &[(&str, String)],
) -> Result<(), NetworkError> {
    match bridge {
        Bridge::Linux { ifindex, .. } => links.set_master(ix, *ifindex)?,
        Bridge::Ovs { name } => ovs::add_port(name, iface, external_ids)?,
    }
    Ok(())
}

/// Releases `ix` from the Linux bridge it is a port of, if any (another
/// kind of master, a bond say, is none of vifguard's business). Returns
/// whether it was a port.
pub fn leave_linux_bridge(links: &mut Links, ix: u32) -> Result<bool, NetworkError> {
    let Some(master) = links.get(ix)?.and_then(|l| l.master) else {
        return Ok(false);
    };
    if links.get(master)?.and_then(|m| m.kind).as_deref() != Some("bridge") {
        return Ok(false);
    }
    links.set_master(ix, 0)?;
    Ok(true)
}

/// Sets `ix` up if it is down: only then, so a live update of a vif that
/// is up sends the kernel no link request at all.
pub fn ensure_up(links: &mut Links, ix: u32) -> Result<(), NetworkError> {
    if links.get(ix)?.is_some_and(|l| !l.up) {
        links.set_up(ix)?;
    }
    Ok(())
}
