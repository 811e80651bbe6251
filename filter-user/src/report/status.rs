//! `vifguard status`: a few lines per interface, or JSON with `--json`.

use std::fmt::{self, Write as _};

use filter_common::Counter;
use serde_json::json;

use super::{Learned, Vif};
use crate::applied::Applied;
use crate::datapath::encode::DecodeError;
use crate::lifecycle::Attachment;
use crate::policy::Policy;

/// What `status` reports.
#[derive(Clone, Debug, Default)]
pub struct Status {
    /// By ifindex.
    pub entries: Vec<Entry>,
    /// The versions of the pinned programs.
    pub program_versions: Vec<String>,
}

/// One interface with a policy entry, as `status` shows it.
#[derive(Clone, Debug)]
pub struct Entry {
    pub vif: Vif,
    /// The policy its entries hold, tries included (or why they do not
    /// decode).
    pub policy: Result<Policy, DecodeError>,
    /// The hooks running a vifguard program, as the kernel lists them.
    pub hooks: Vec<Attachment>,
    /// `no_policy` drops counted on its ifindex, [from the guest, to the
    /// guest].
    pub no_policy: [Counter; 2],
    /// Which command last applied its policy, and when.
    pub applied: Option<Applied>,
}

/// A list on one line, `none` when empty.
fn list<T: fmt::Display>(items: &[T]) -> String {
    if items.is_empty() {
        return "none".into();
    }
    items
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(" ")
}

fn strings<T: fmt::Display>(items: &[T]) -> Vec<String> {
    items.iter().map(ToString::to_string).collect()
}

fn ethertypes(p: &Policy) -> Vec<String> {
    p.options
        .ethertypes
        .iter()
        .map(|e| format!("0x{e:04x}"))
        .collect()
}

fn onoff(on: bool) -> &'static str {
    if on { "on" } else { "off" }
}

/// The DHCP-learned addresses line: each with the seconds it has left.
fn learned_text(learned: &[Learned]) -> String {
    if learned.is_empty() {
        return "none".into();
    }
    learned
        .iter()
        .map(|l| format!("{} (expires in {} s)", l.addr, l.expires_in_s))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The same as JSON: `null` when option `learn_dhcp` is off.
fn learned_json(learned: Option<&[Learned]>) -> serde_json::Value {
    match learned {
        None => serde_json::Value::Null,
        Some(v) => v
            .iter()
            .map(|l| {
                json!({
                    "address": l.addr.to_string(),
                    "expires_in_s": l.expires_in_s,
                    "expires_monotonic_s": l.expires_s,
                })
            })
            .collect(),
    }
}

/// A VRRP entry with its virtual MACs.
fn vrrp_text(v: &crate::policy::Vrrp) -> String {
    let macs: Vec<String> = v.macs().map(|m| m.to_string()).collect();
    format!("{v} (virtual MAC {})", macs.join(" "))
}

/// The policy lines of the text status. Pairs, VRRP entries and DHCP
/// servers only when set: most vifs have none, and the lines before them
/// keep their place for whoever reads them.
fn policy_text(s: &mut String, p: &Policy) {
    let o = &p.options;
    let _ = writeln!(s, "  ipv4: {}", list(&p.ipv4));
    let _ = writeln!(s, "  ipv6: {}", list(&p.ipv6));
    let _ = writeln!(s, "  destinations: {}", list(&p.destinations));
    if !p.pairs.is_empty() {
        let _ = writeln!(s, "  pairs: {}", list(&p.pairs));
    }
    if !p.vrrp.is_empty() {
        let vrrp: Vec<String> = p.vrrp.iter().map(vrrp_text).collect();
        let _ = writeln!(s, "  vrrp: {}", vrrp.join(" "));
    }
    if !p.dhcp_servers.is_empty() {
        let _ = writeln!(s, "  dhcp_servers: {}", list(&p.dhcp_servers));
    }
    let _ = writeln!(
        s,
        "  options: dhcp_client {}, dhcp_server {}, router {}, ipv6_link_local {}, egress_filter {}, ethertypes {}, learn_dhcp {}, flood_pps {}",
        onoff(o.dhcp_client),
        onoff(o.dhcp_server),
        onoff(o.router),
        o.link_local.name(),
        onoff(o.egress_filter),
        list(&ethertypes(p)),
        onoff(o.learn_dhcp),
        o.flood_pps
    );
}

/// The policy keys of the JSON status. `addresses` (both families) and
/// the counts predate the per-family lists; scripts read them.
fn policy_json(p: &Policy) -> serde_json::Value {
    let o = &p.options;
    let mut addresses = strings(&p.ipv4);
    addresses.extend(strings(&p.ipv6));
    json!({
        "mode": p.mode.name(),
        "mac": p.mac.to_string(),
        "addresses": addresses,
        "ipv4": strings(&p.ipv4),
        "ipv6": strings(&p.ipv6),
        "n_ipv4": p.ipv4.len(),
        "n_ipv6": p.ipv6.len(),
        "destinations": strings(&p.destinations),
        "pairs": p.pairs.iter().map(|x| json!({
            "mac": x.mac.to_string(),
            "ipv4": strings(&x.ipv4),
            "ipv6": strings(&x.ipv6),
        })).collect::<Vec<_>>(),
        "vrrp": p.vrrp.iter().map(|v| json!({
            "vrid": v.vrid,
            "ipv4": strings(&v.ipv4),
            "ipv6": strings(&v.ipv6),
            "macs": v.macs().map(|m| m.to_string()).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "dhcp_servers": strings(&p.dhcp_servers),
        "options": {
            "dhcp_client": o.dhcp_client,
            "dhcp_server": o.dhcp_server,
            "router": o.router,
            "ipv6_link_local": o.link_local.name(),
            "egress_filter": o.egress_filter,
            "ethertypes": ethertypes(p),
            "learn_dhcp": o.learn_dhcp,
            "flood_pps": o.flood_pps,
        },
    })
}

impl Status {
    /// A few lines per interface.
    pub fn text(&self) -> String {
        let mut s = String::new();
        for e in &self.entries {
            let r = &e.vif;
            let name = r.name.as_deref().unwrap_or("(gone)");
            match &e.policy {
                Ok(p) => {
                    let _ = writeln!(
                        s,
                        "{name} (ifindex {}): mode {}, mac {}",
                        r.ifindex,
                        p.mode.name(),
                        p.mac
                    );
                    policy_text(&mut s, p);
                }
                Err(why) => {
                    let _ = writeln!(
                        s,
                        "{name} (ifindex {}): policy entry unreadable: {why}",
                        r.ifindex
                    );
                }
            }
            // Only vifs with option learn_dhcp have the line, so the
            // others read as before.
            if let Some(l) = &r.learned {
                let _ = writeln!(s, "  learned from DHCP: {}", learned_text(l));
            }
            if let Some(a) = &e.applied {
                let _ = writeln!(s, "  applied by {} at {} (unix time)", a.by, a.at);
            }
            let _ = writeln!(
                s,
                "  hooks: {}; program version {}",
                if e.hooks.is_empty() {
                    "none".to_string()
                } else {
                    e.hooks
                        .iter()
                        .map(|a| format!("{} ({})", a.hook, a.method.name()))
                        .collect::<Vec<_>>()
                        .join(", ")
                },
                self.program_versions.join(", ")
            );
            for (d, rs, c) in r.counters.nonzero() {
                let _ = writeln!(
                    s,
                    "  {:<10} {:<24} {} packets, {} bytes",
                    d.name(),
                    rs.name(),
                    c.packets,
                    c.bytes
                );
            }
        }
        if self.entries.is_empty() {
            s.push_str("no interfaces\n");
        }
        s
    }

    /// A list with one object per interface.
    pub fn json(&self) -> serde_json::Value {
        self.entries.iter().map(|e| self.entry_json(e)).collect()
    }

    fn entry_json(&self, e: &Entry) -> serde_json::Value {
        let r = &e.vif;
        let counters: Vec<serde_json::Value> = r
            .counters
            .nonzero()
            .map(|(d, rs, c)| {
                json!({
                    "direction": d.name(),
                    "reason": rs.name(),
                    "packets": c.packets,
                    "bytes": c.bytes,
                })
            })
            .collect();
        let mut v = json!({
            "ifindex": r.ifindex,
            "name": r.name.as_deref().unwrap_or("(gone)"),
            "slot": r.slot,
            "hooks": e.hooks.iter().map(|a| a.hook).collect::<Vec<_>>(),
            "attach": e
                .hooks
                .iter()
                .map(|a| format!("{}:{}", a.hook, a.method.name()))
                .collect::<Vec<_>>(),
            "program_versions": self.program_versions,
            "counters": counters,
            "no_policy_drops": {
                "from_guest": e.no_policy[0].packets,
                "to_guest": e.no_policy[1].packets,
            },
            "applied": e.applied.as_ref().map(|a| json!({"by": a.by, "at": a.at})),
            "learned": learned_json(r.learned.as_deref()),
        });
        let policy = match &e.policy {
            Ok(p) => policy_json(p),
            Err(why) => json!({"mode": "invalid", "error": why.to_string()}),
        };
        if let (Some(v), serde_json::Value::Object(p)) = (v.as_object_mut(), policy) {
            v.extend(p);
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::AttachMethod;
    use crate::policy::MacAddr;
    use crate::report::tests::vif;

    /// [`vif`]'s: locked to 198.51.100.6.
    fn policy() -> Policy {
        let mut p = Policy::locked(MacAddr([0x00, 0x16, 0x3e, 0x05, 0x00, 0x00]));
        p.ipv4 = vec!["198.51.100.6".parse().unwrap()];
        p
    }

    /// `vif` under `policy`, attached with tc, without `no_policy` drops.
    fn entry(vif: Vif, policy: Policy) -> Entry {
        let tc = |hook| Attachment {
            hook,
            method: AttachMethod::Tc,
        };
        Entry {
            vif,
            policy: Ok(policy),
            hooks: vec![tc("tc-ingress"), tc("tc-egress")],
            no_policy: [Counter::default(); 2],
            applied: None,
        }
    }

    fn status(entries: Vec<Entry>) -> Status {
        Status {
            entries,
            program_versions: vec!["abc".into()],
        }
    }

    #[test]
    fn text_lists_policy_hooks_and_counters() {
        assert_eq!(
            status(vec![entry(vif(), policy())]).text(),
            "vif5.0 (ifindex 7): mode locked, mac 00:16:3e:05:00:00\n\
             \x20 ipv4: 198.51.100.6\n\
             \x20 ipv6: none\n\
             \x20 destinations: none\n\
             \x20 options: dhcp_client on, dhcp_server off, router off, ipv6_link_local derived, egress_filter on, ethertypes none, learn_dhcp off, flood_pps 0\n\
             \x20 hooks: tc-ingress (tc), tc-egress (tc); program version abc\n\
             \x20 from_guest pass                     2 packets, 1000 bytes\n\
             \x20 from_guest ipv4_spoof               3 packets, 180 bytes\n"
        );
        assert_eq!(Status::default().text(), "no interfaces\n");
    }

    #[test]
    fn json_has_the_keys_scripts_read() {
        let mut gone = vif();
        gone.name = None;
        gone.ifindex = 9;
        let mut dropped = entry(vif(), policy());
        dropped.no_policy[0] = Counter {
            packets: 2,
            bytes: 120,
        };
        let j = status(vec![dropped, entry(gone, policy())]).json();
        let e = &j[0];
        assert_eq!(e["name"], "vif5.0");
        assert_eq!(e["ifindex"], 7);
        assert_eq!(e["mode"], "locked");
        assert_eq!(e["mac"], "00:16:3e:05:00:00");
        assert_eq!(e["addresses"], serde_json::json!(["198.51.100.6"]));
        assert_eq!(e["ipv4"], serde_json::json!(["198.51.100.6"]));
        assert_eq!(e["ipv6"], serde_json::json!([]));
        assert_eq!(e["n_ipv4"], 1);
        assert_eq!(e["destinations"], serde_json::json!([]));
        assert_eq!(
            e["options"],
            serde_json::json!({
                "dhcp_client": true,
                "dhcp_server": false,
                "router": false,
                "ipv6_link_local": "derived",
                "egress_filter": true,
                "ethertypes": [],
                "learn_dhcp": false,
                "flood_pps": 0,
            })
        );
        assert_eq!(e["slot"], 1);
        assert_eq!(e["hooks"], serde_json::json!(["tc-ingress", "tc-egress"]));
        assert_eq!(
            e["attach"],
            serde_json::json!(["tc-ingress:tc", "tc-egress:tc"])
        );
        assert_eq!(e["program_versions"], serde_json::json!(["abc"]));
        assert_eq!(
            e["counters"][1],
            serde_json::json!({"direction": "from_guest", "reason": "ipv4_spoof", "packets": 3, "bytes": 180})
        );
        assert_eq!(
            e["no_policy_drops"],
            serde_json::json!({"from_guest": 2, "to_guest": 0})
        );
        assert_eq!(
            j[1]["no_policy_drops"],
            serde_json::json!({"from_guest": 0, "to_guest": 0})
        );
        assert_eq!(j[1]["name"], "(gone)");
        // dom0-test.sh finds an ifindex by `"ifindex": N,` in the pretty
        // output: a key must follow it.
        let pretty = serde_json::to_string_pretty(&j).unwrap();
        assert!(pretty.contains("\"ifindex\": 7,"), "{pretty}");
    }

    /// The policies whose status once showed only the inline hosts: a
    /// /64 ("1 address"), 290 hosts ("8 addresses"), 0.0.0.0/0 ("0
    /// addresses").
    fn wide() -> Status {
        let with = |ifindex, f: &dyn Fn(&mut Policy)| {
            let mut v = vif();
            v.ifindex = ifindex;
            v.name = Some(format!("vif{ifindex}.0"));
            let mut p = policy();
            f(&mut p);
            entry(v, p)
        };
        status(vec![
            with(1, &|p| p.ipv6 = vec!["2001:db8:1::/64".parse().unwrap()]),
            with(2, &|p| {
                p.ipv4 = (0..290u32)
                    .map(|i| std::net::Ipv4Addr::from(0x0a00_0000 + i))
                    .map(crate::policy::Cidr4::host)
                    .collect();
            }),
            with(3, &|p| {
                p.mode = crate::policy::Mode::Isolated;
                p.ipv4 = vec!["0.0.0.0/0".parse().unwrap()];
                p.destinations = vec![
                    "192.0.2.0/24".parse().unwrap(),
                    "2001:db8::/32".parse().unwrap(),
                ];
                p.options.router = true;
                p.options.link_local = crate::policy::LinkLocal::None;
                p.options.ethertypes = vec![0x88cc, 0x88b5];
            }),
            with(4, &|p| {
                let (pairs, vrrp) = crate::policy::parse_pairs(
                    "02:16:3e:00:07:09=192.0.2.9,2001:db8::9 vrrp:7=192.0.2.100",
                    p.mac,
                )
                .unwrap();
                p.pairs = pairs;
                p.vrrp = vrrp;
                p.dhcp_servers = vec!["192.0.2.1".parse().unwrap(), "fe80::1".parse().unwrap()];
            }),
        ])
    }

    #[test]
    fn text_shows_the_whole_policy() {
        let text = wide().text();
        let block = |name: &str| {
            text.split_inclusive('\n')
                .skip_while(|l| !l.starts_with(name))
                .take(5)
                .collect::<String>()
        };
        assert_eq!(
            block("vif1.0"),
            "vif1.0 (ifindex 1): mode locked, mac 00:16:3e:05:00:00\n\
             \x20 ipv4: 198.51.100.6\n\
             \x20 ipv6: 2001:db8:1::/64\n\
             \x20 destinations: none\n\
             \x20 options: dhcp_client on, dhcp_server off, router off, ipv6_link_local derived, egress_filter on, ethertypes none, learn_dhcp off, flood_pps 0\n"
        );
        let hosts: Vec<String> = (0..290u32)
            .map(|i| std::net::Ipv4Addr::from(0x0a00_0000 + i).to_string())
            .collect();
        assert!(
            block("vif2.0").contains(&format!("\n  ipv4: {}\n", hosts.join(" "))),
            "{text}"
        );
        assert_eq!(
            block("vif3.0"),
            "vif3.0 (ifindex 3): mode isolated, mac 00:16:3e:05:00:00\n\
             \x20 ipv4: 0.0.0.0/0\n\
             \x20 ipv6: none\n\
             \x20 destinations: 192.0.2.0/24 2001:db8::/32\n\
             \x20 options: dhcp_client on, dhcp_server off, router on, ipv6_link_local none, egress_filter on, ethertypes 0x88cc 0x88b5, learn_dhcp off, flood_pps 0\n"
        );
        let block4: String = text
            .split_inclusive('\n')
            .skip_while(|l| !l.starts_with("vif4.0"))
            .take(8)
            .collect();
        assert_eq!(
            block4,
            "vif4.0 (ifindex 4): mode locked, mac 00:16:3e:05:00:00\n\
             \x20 ipv4: 198.51.100.6\n\
             \x20 ipv6: none\n\
             \x20 destinations: none\n\
             \x20 pairs: 02:16:3e:00:07:09=192.0.2.9,2001:db8::9\n\
             \x20 vrrp: vrrp:7=192.0.2.100 (virtual MAC 00:00:5e:00:01:07)\n\
             \x20 dhcp_servers: 192.0.2.1 fe80::1\n\
             \x20 options: dhcp_client on, dhcp_server off, router off, ipv6_link_local derived, egress_filter on, ethertypes none, learn_dhcp off, flood_pps 0\n"
        );
    }

    #[test]
    fn json_shows_the_whole_policy() {
        let j = wide().json();
        assert_eq!(j[0]["ipv6"], serde_json::json!(["2001:db8:1::/64"]));
        assert_eq!(
            j[0]["addresses"],
            serde_json::json!(["198.51.100.6", "2001:db8:1::/64"])
        );
        assert_eq!(j[0]["n_ipv6"], 1);
        assert_eq!(j[1]["ipv4"].as_array().map(Vec::len), Some(290));
        assert_eq!(j[1]["ipv4"][289], "10.0.1.33");
        assert_eq!(j[1]["n_ipv4"], 290);
        assert_eq!(j[2]["mode"], "isolated");
        assert_eq!(j[2]["ipv4"], serde_json::json!(["0.0.0.0/0"]));
        assert_eq!(
            j[2]["destinations"],
            serde_json::json!(["192.0.2.0/24", "2001:db8::/32"])
        );
        assert_eq!(j[2]["options"]["router"], true);
        assert_eq!(j[2]["options"]["ipv6_link_local"], "none");
        assert_eq!(
            j[2]["options"]["ethertypes"],
            serde_json::json!(["0x88cc", "0x88b5"])
        );
        assert_eq!(j[0]["pairs"], serde_json::json!([]));
        assert_eq!(j[0]["vrrp"], serde_json::json!([]));
        assert_eq!(j[0]["dhcp_servers"], serde_json::json!([]));
        assert_eq!(
            j[3]["pairs"],
            serde_json::json!([{"mac": "02:16:3e:00:07:09", "ipv4": ["192.0.2.9"], "ipv6": ["2001:db8::9"]}])
        );
        assert_eq!(
            j[3]["vrrp"],
            serde_json::json!([{"vrid": 7, "ipv4": ["192.0.2.100"], "ipv6": [], "macs": ["00:00:5e:00:01:07"]}])
        );
        assert_eq!(
            j[3]["dhcp_servers"],
            serde_json::json!(["192.0.2.1", "fe80::1"])
        );
    }

    #[test]
    fn learned_addresses_with_their_expiry() {
        let mut v = vif();
        v.learned = Some(vec![
            Learned {
                addr: "192.0.2.100".parse().unwrap(),
                expires_s: 1120,
                expires_in_s: 20,
            },
            Learned {
                addr: "192.0.2.101".parse().unwrap(),
                expires_s: 4700,
                expires_in_s: 3600,
            },
        ]);
        let mut p = policy();
        p.ipv4.clear();
        p.options.learn_dhcp = true;
        let mut none = vif();
        none.ifindex = 8;
        none.name = Some("vif6.0".into());
        none.learned = Some(Vec::new());
        let st = status(vec![
            entry(v, p.clone()),
            entry(none, p),
            entry(vif(), policy()),
        ]);
        let text = st.text();
        assert!(
            text.contains("  options: dhcp_client on, dhcp_server off, router off, ipv6_link_local derived, egress_filter on, ethertypes none, learn_dhcp on, flood_pps 0\n\
                 \x20 learned from DHCP: 192.0.2.100 (expires in 20 s), 192.0.2.101 (expires in 3600 s)\n"),
            "{text}"
        );
        assert!(text.contains("  learned from DHCP: none\n"), "{text}");
        assert_eq!(
            text.matches("learned from DHCP").count(),
            2,
            "a vif without learn_dhcp has no such line: {text}"
        );
        let j = st.json();
        assert_eq!(
            j[0]["learned"],
            serde_json::json!([
                {"address": "192.0.2.100", "expires_in_s": 20, "expires_monotonic_s": 1120},
                {"address": "192.0.2.101", "expires_in_s": 3600, "expires_monotonic_s": 4700},
            ])
        );
        assert_eq!(j[1]["learned"], serde_json::json!([]));
        assert_eq!(j[2]["learned"], serde_json::Value::Null);
    }

    #[test]
    fn an_unreadable_entry_says_why() {
        let mut e = entry(vif(), policy());
        e.policy = Err(DecodeError::Mode(9));
        let st = status(vec![e]);
        let text = st.text();
        assert!(
            text.starts_with(
                "vif5.0 (ifindex 7): policy entry unreadable: unknown mode 9\n  hooks: "
            ),
            "{text}"
        );
        let j = st.json();
        assert_eq!(j[0]["mode"], "invalid");
        assert_eq!(j[0]["error"], "unknown mode 9");
        assert_eq!(
            j[0]["hooks"],
            serde_json::json!(["tc-ingress", "tc-egress"])
        );
    }
}
