//! `vifguard/pairs` and `vifguard/dhcp-servers` in the backend directory
//! (any source), in the syntax of [`crate::policy::parse_pairs`] and
//! [`crate::policy::parse_dhcp_servers`].

use std::net::IpAddr;

use crate::policy::{MacAddr, Pair, Vrrp, parse_dhcp_servers, parse_pairs};

use super::trust::Reader;
use super::{SourceError, keys};

/// Pairs and VRRP entries, and the node they came from.
pub(crate) type PairsKey = (Vec<Pair>, Vec<Vrrp>, String);

/// The vif's `vifguard/pairs`, if set (an empty value sets no pairs: it
/// still overrides a host policy file), and the node.
pub(crate) fn read_pairs(
    r: &mut Reader<'_>,
    own: MacAddr,
) -> Result<Option<PairsKey>, SourceError> {
    let node = format!("{}/{}", r.vif.backend_path(), keys::PAIRS);
    let Some(v) = r.node(&node)? else {
        return Ok(None);
    };
    let (pairs, vrrp) = parse_pairs(&v, own).map_err(|e| r.bad(&node, e))?;
    Ok(Some((pairs, vrrp, node)))
}

/// The vif's `vifguard/dhcp-servers`, if set (empty: any server, over a
/// host policy file or a host default), and the node.
pub(crate) fn read_dhcp_servers(
    r: &mut Reader<'_>,
) -> Result<Option<(Vec<IpAddr>, String)>, SourceError> {
    let node = format!("{}/{}", r.vif.backend_path(), keys::DHCP_SERVERS);
    let Some(v) = r.node(&node)? else {
        return Ok(None);
    };
    let servers = parse_dhcp_servers(&v).map_err(|e| r.bad(&node, e))?;
    Ok(Some((servers, node)))
}
