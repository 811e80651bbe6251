//! Per-vif options under `vifguard/options/<name>`, over the host
//! configuration's defaults.

use crate::config::HostConfig;
use crate::policy::{Options, PolicyError, parse_ethertype, parse_flood_pps, parse_link_local};

use super::lists::{list_items, push_unique};
use super::policy_file::PolicyFile;
use super::provenance::{OptionsProvenance, Origin};
use super::trust::Reader;
use super::{SourceError, keys};

/// Names of the per-vif options under `vifguard/options/`.
pub const OPTION_NAMES: &str = "dhcp_client, dhcp_server, router, ipv6_link_local, egress_filter, ethertypes, learn_dhcp, flood_pps";

fn parse_bool(s: &str) -> Option<bool> {
    match s.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "on" | "yes" => Some(true),
        "0" | "false" | "off" | "no" => Some(false),
        _ => None,
    }
}

/// The options: the defaults, under the host configuration's `[options]`,
/// under the host policy file's `[options]`, under the vif's own keys.
pub(crate) fn read_options(
    r: &mut Reader<'_>,
    config: &HostConfig,
    file: Option<&PolicyFile>,
) -> Result<(Options, OptionsProvenance), SourceError> {
    let mut o = config.options.clone();
    let from_config = |name: &str| {
        let k = config.option_key(name);
        if k.set {
            Origin::HostConfig(k)
        } else {
            Origin::Default
        }
    };
    let mut prov = OptionsProvenance {
        dhcp_client: from_config("dhcp_client"),
        dhcp_server: from_config("dhcp_server"),
        router: from_config("router"),
        ipv6_link_local: from_config("ipv6_link_local"),
        egress_filter: from_config("egress_filter"),
        ethertypes: from_config("ethertypes"),
        learn_dhcp: from_config("learn_dhcp"),
        flood_pps: from_config("flood_pps"),
        // Host-wide only: no policy file or xenstore key sets it.
        learn_grace_secs: if config.learn_grace_set {
            Origin::HostConfig(config.learn_grace_key())
        } else {
            Origin::Default
        },
    };
    if let Some(f) = file {
        let fo = &f.options;
        let origin = |name: &str| Origin::PolicyFile {
            path: f.path.clone(),
            key: format!("options.{name}"),
        };
        if let Some(v) = fo.dhcp_client {
            o.dhcp_client = v;
            prov.dhcp_client = origin("dhcp_client");
        }
        if let Some(v) = fo.dhcp_server {
            o.dhcp_server = v;
            prov.dhcp_server = origin("dhcp_server");
        }
        if let Some(v) = fo.router {
            o.router = v;
            prov.router = origin("router");
        }
        if let Some(v) = fo.ipv6_link_local {
            o.link_local = v;
            prov.ipv6_link_local = origin("ipv6_link_local");
        }
        if let Some(v) = fo.egress_filter {
            o.egress_filter = v;
            prov.egress_filter = origin("egress_filter");
        }
        if let Some(v) = &fo.ethertypes {
            o.ethertypes.clone_from(v);
            prov.ethertypes = origin("ethertypes");
        }
        if let Some(v) = fo.learn_dhcp {
            o.learn_dhcp = v;
            prov.learn_dhcp = origin("learn_dhcp");
        }
        if let Some(v) = fo.flood_pps {
            o.flood_pps = v;
            prov.flood_pps = origin("flood_pps");
        }
    }
    let dir = format!("{}/{}", r.vif.backend_path(), keys::OPTIONS);
    let Some(names) = r.directory(&dir)? else {
        return Ok((o, prov));
    };
    for name in names {
        let node = format!("{dir}/{name}");
        let Some(value) = r.node(&node)? else {
            continue;
        };
        let boolean = |r: &Reader<'_>| {
            parse_bool(&value).ok_or_else(|| SourceError::BadBool {
                vif: r.vif,
                node: node.clone(),
                value: value.clone(),
            })
        };
        let origin = Origin::Xenstore(node.clone());
        match name.as_str() {
            "dhcp_client" => {
                o.dhcp_client = boolean(r)?;
                prov.dhcp_client = origin;
            }
            "dhcp_server" => {
                o.dhcp_server = boolean(r)?;
                prov.dhcp_server = origin;
            }
            "router" => {
                o.router = boolean(r)?;
                prov.router = origin;
            }
            "egress_filter" => {
                o.egress_filter = boolean(r)?;
                prov.egress_filter = origin;
            }
            "learn_dhcp" => {
                o.learn_dhcp = boolean(r)?;
                prov.learn_dhcp = origin;
            }
            "flood_pps" => {
                o.flood_pps = parse_flood_pps(&value).map_err(|e| r.bad(&node, e))?;
                prov.flood_pps = origin;
            }
            "ipv6_link_local" => {
                o.link_local = parse_link_local(&value).map_err(|e| r.bad(&node, e))?;
                prov.ipv6_link_local = origin;
            }
            "ethertypes" => {
                let mut list = Vec::new();
                for item in list_items(&value) {
                    push_unique(
                        &mut list,
                        parse_ethertype(item).map_err(|e| r.bad(&node, e))?,
                    );
                }
                if list.len() > filter_common::MAX_ETHERTYPES {
                    return Err(r.bad(
                        &node,
                        PolicyError::TooMany {
                            what: "ethertypes",
                            count: list.len(),
                            max: filter_common::MAX_ETHERTYPES,
                        },
                    ));
                }
                o.ethertypes = list;
                prov.ethertypes = origin;
            }
            _ => {
                return Err(SourceError::UnknownOption {
                    vif: r.vif,
                    node,
                    known: OPTION_NAMES,
                });
            }
        }
    }
    Ok((o, prov))
}
