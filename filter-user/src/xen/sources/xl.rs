//! xl / upstream Xen: the vif's backend directory.
//!
//! libxl writes the backend directory
//! `/local/domain/<backend>/backend/vif/<domid>/<devid>` (owned by the
//! backend domain, readable by the guest) from the `vif=` spec: `mac`,
//! `bridge`, and `ip` for `ip=` (a space-separated list; vif-route and
//! vif-nat read it the same way). vifguard adds its own optional keys in
//! the same directory (write them with `xenstore-write` from a hook, or
//! with libxl's vif `script=` wrapper before calling vifguard):
//!
//! | key (relative to the backend dir) | value |
//! |---|---|
//! | `ip` | addresses or prefixes, IPv4 and IPv6, separated by spaces (commas accepted) |
//! | `vifguard/mode` | `unlocked`, `locked`, `isolated`, `disabled` or `network_default` (the default when absent) |
//! | `vifguard/ipv6` | more IPv6 addresses or prefixes (spaces or commas) |
//! | `vifguard/destinations` | `isolated` destinations, IPv4/IPv6 prefixes (any source) |
//! | `vifguard/pairs` | pairs and VRRP entries, `MAC=ADDR[,ADDR...]` / `vrrp:VRID=ADDR[,ADDR...]` separated by spaces (any source) |
//! | `vifguard/dhcp-servers` | trusted DHCP servers, host addresses separated by spaces (any source) |
//! | `vifguard/options/<name>` | per-vif options (any source): `dhcp_client`, `dhcp_server`, `router`, `egress_filter`, `learn_dhcp` (1/0, true/false, on/off, yes/no), `ipv6_link_local` (derived/any/none), `ethertypes` (list like `0x88cc`), `flood_pps` (0 only until issue 18) |

use super::{
    Addresses, Origin, Reader, SourceError, backend_mode, keys, list_items, parse_mixed,
    parse_v6_list,
};

pub(crate) fn read(r: &mut Reader<'_>) -> Result<Addresses, SourceError> {
    let backend = r.vif.backend_path();
    let (mode, mode_origin) = match backend_mode(r)? {
        Some((m, node)) => (m, vec![Origin::Xenstore(node)]),
        None => (None, Vec::new()),
    };
    let mut ipv4 = Vec::new();
    let mut ipv6 = Vec::new();
    let mut ipv4_origin = Vec::new();
    let mut ipv6_origin = Vec::new();
    let ip_node = format!("{backend}/{}", keys::IP);
    if let Some(v) = r.node(&ip_node)? {
        let items: Vec<&str> = list_items(&v).collect();
        parse_mixed(&items, &mut ipv4, &mut ipv6).map_err(|e| r.bad(&ip_node, e))?;
        if !ipv4.is_empty() {
            ipv4_origin.push(Origin::Xenstore(ip_node.clone()));
        }
        if !ipv6.is_empty() {
            ipv6_origin.push(Origin::Xenstore(ip_node.clone()));
        }
    }
    let v6_node = format!("{backend}/{}", keys::IPV6);
    if let Some(v) = r.node(&v6_node)? {
        let items: Vec<&str> = list_items(&v).collect();
        for c in parse_v6_list(&items).map_err(|e| r.bad(&v6_node, e))? {
            if !ipv6.contains(&c) {
                ipv6.push(c);
            }
        }
        ipv6_origin.push(Origin::Xenstore(v6_node));
    }
    if ipv6.len() > crate::policy::MAX_ADDRESSES {
        return Err(r.bad(
            &format!("{backend}/{}", keys::IPV6),
            crate::policy::PolicyError::TooMany {
                what: "IPv6 addresses",
                count: ipv6.len(),
                max: crate::policy::MAX_ADDRESSES,
            },
        ));
    }
    Ok(Addresses {
        mode,
        mode_origin,
        ipv4,
        ipv4_origin,
        ipv6,
        ipv6_origin,
    })
}
