//! `vifguard status`: a few lines per interface, or JSON with `--json`.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use filter_common::{IfacePolicy, Mode};

use super::Snapshot;
use crate::lifecycle::Attachment;
use crate::policy::MacAddr;

/// What `status` reports.
#[derive(Clone, Debug, Default)]
pub struct Status {
    pub snapshot: Snapshot,
    /// The hooks running a vifguard program, by ifindex, as the kernel
    /// lists them (an ifindex without an entry has none).
    pub hooks: BTreeMap<u32, Vec<Attachment>>,
    /// The versions of the pinned programs.
    pub program_versions: Vec<String>,
}

fn mode_name(p: &IfacePolicy) -> &'static str {
    Mode::from_u8(p.mode).map_or("invalid", Mode::name)
}

fn addresses(p: &IfacePolicy) -> Vec<String> {
    let mut a: Vec<String> = p
        .ipv4
        .iter()
        .take(usize::from(p.n_ipv4))
        .map(|b| std::net::Ipv4Addr::from(*b).to_string())
        .collect();
    a.extend(
        p.ipv6
            .iter()
            .take(usize::from(p.n_ipv6))
            .map(|b| std::net::Ipv6Addr::from(*b).to_string()),
    );
    a
}

impl Status {
    fn hooks(&self, ifindex: u32) -> &[Attachment] {
        self.hooks.get(&ifindex).map_or(&[], Vec::as_slice)
    }

    /// A few lines per interface.
    pub fn text(&self) -> String {
        let mut s = String::new();
        for r in &self.snapshot.vifs {
            let hooks = self.hooks(r.ifindex);
            let _ = writeln!(
                s,
                "{} (ifindex {}): mode {}, mac {}, {} address(es) [{}]",
                r.name.as_deref().unwrap_or("(gone)"),
                r.ifindex,
                mode_name(&r.policy),
                MacAddr(r.policy.mac),
                addresses(&r.policy).len(),
                addresses(&r.policy).join(", ")
            );
            let _ = writeln!(
                s,
                "  hooks: {}; program version {}",
                if hooks.is_empty() {
                    "none".to_string()
                } else {
                    hooks
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
        if self.snapshot.vifs.is_empty() {
            s.push_str("no interfaces\n");
        }
        s
    }

    /// A list with one object per interface.
    pub fn json(&self) -> serde_json::Value {
        self.snapshot
            .vifs
            .iter()
            .map(|r| {
                let hooks = self.hooks(r.ifindex);
                let no_policy = self.snapshot.no_policy_drops(r.ifindex);
                serde_json::json!({
                    "ifindex": r.ifindex,
                    "name": r.name.clone().unwrap_or_else(|| "(gone)".into()),
                    "mode": mode_name(&r.policy),
                    "mac": MacAddr(r.policy.mac).to_string(),
                    "addresses": addresses(&r.policy),
                    "n_ipv4": r.policy.n_ipv4,
                    "n_ipv6": r.policy.n_ipv6,
                    "slot": r.policy.slot,
                    "hooks": hooks.iter().map(|a| a.hook).collect::<Vec<_>>(),
                    "attach": hooks.iter().map(|a| format!("{}:{}", a.hook, a.method.name())).collect::<Vec<_>>(),
                    "program_versions": self.program_versions,
                    "counters": r.counters.nonzero().map(|(d, rs, c)| serde_json::json!({
                        "direction": d.name(), "reason": rs.name(), "packets": c.packets, "bytes": c.bytes,
                    })).collect::<Vec<_>>(),
                    "no_policy_drops": {"from_guest": no_policy[0].packets, "to_guest": no_policy[1].packets},
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::AttachMethod;
    use crate::report::tests::vif;
    use crate::report::{NoPolicy, Vif};

    /// `vifs`, attached with tc.
    fn status(vifs: Vec<Vif>) -> Status {
        let tc = |hook| Attachment {
            hook,
            method: AttachMethod::Tc,
        };
        Status {
            hooks: vifs
                .iter()
                .map(|v| (v.ifindex, vec![tc("tc-ingress"), tc("tc-egress")]))
                .collect(),
            snapshot: Snapshot {
                vifs,
                no_policy: Vec::new(),
            },
            program_versions: vec!["abc".into()],
        }
    }

    #[test]
    fn text_lists_policy_hooks_and_counters() {
        assert_eq!(
            status(vec![vif()]).text(),
            "vif5.0 (ifindex 7): mode locked, mac 00:16:3e:05:00:00, 1 address(es) [198.51.100.6]\n\
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
        let mut st = status(vec![vif(), gone]);
        st.snapshot.no_policy.push(NoPolicy {
            ifindex: 7,
            name: Some("vif5.0".into()),
            drops: [
                filter_common::Counter {
                    packets: 2,
                    bytes: 120,
                },
                filter_common::Counter::default(),
            ],
        });
        let j = st.json();
        let e = &j[0];
        assert_eq!(e["name"], "vif5.0");
        assert_eq!(e["ifindex"], 7);
        assert_eq!(e["mode"], "locked");
        assert_eq!(e["mac"], "00:16:3e:05:00:00");
        assert_eq!(e["addresses"], serde_json::json!(["198.51.100.6"]));
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
}
