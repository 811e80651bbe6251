//! `vifguard metrics`: the counters in the Prometheus text exposition
//! format (version 0.0.4).

use std::fmt::Write as _;

use filter_common::{Counter, Direction, Reason};

use super::Snapshot;
use crate::lifecycle::vif_of_ifname;

/// A label value as the text format requires it: backslash, double quote
/// and line feed escaped (an interface name may hold the first two).
fn escape(value: &str) -> String {
    let mut s = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            '"' => s.push_str("\\\""),
            '\n' => s.push_str("\\n"),
            c => s.push(c),
        }
    }
    s
}

/// The labels of one interface: its name (`ifindex<N>` once gone), and
/// the domid and devid that name carries (empty for other names).
fn iface_labels(ifindex: u32, name: Option<&str>) -> String {
    let name = name.map_or_else(|| format!("ifindex{ifindex}"), str::to_string);
    let (domid, devid) = vif_of_ifname(&name)
        .map(|v| (v.domid.to_string(), v.devid.to_string()))
        .unwrap_or_default();
    format!(
        "interface=\"{}\",domid=\"{domid}\",devid=\"{devid}\"",
        escape(&name)
    )
}

/// The labels of one counter: the interface's name (`ifindex<N>` once
/// gone), the domid and devid its name carries (empty for other names),
/// direction and reason.
fn labels(ifindex: u32, name: Option<&str>, dir: Direction, reason: Reason) -> String {
    format!(
        "{},direction=\"{}\",reason=\"{}\"",
        iface_labels(ifindex, name),
        dir.name(),
        reason.name()
    )
}

/// The metrics text of `snapshot`: its non-zero counters, the `no_policy`
/// drops among them as reason `no_policy`, and the DHCP-learned addresses
/// in force of each vif with option `learn_dhcp`.
pub fn render(snapshot: &Snapshot) -> String {
    let mut series: Vec<(u32, Direction, Reason, Option<&str>, Counter)> = Vec::new();
    for v in &snapshot.vifs {
        let name = v.name.as_deref();
        series.extend(
            v.counters
                .nonzero()
                .map(|(d, r, c)| (v.ifindex, d, r, name, c)),
        );
    }
    for n in &snapshot.no_policy {
        for (d, c) in Direction::ALL.into_iter().zip(n.drops) {
            if c.packets > 0 {
                series.push((n.ifindex, d, Reason::NoPolicy, n.name.as_deref(), c));
            }
        }
    }
    series.sort_by_key(|(ix, d, r, _, _)| (*ix, *d as u8, *r));
    let series: Vec<(String, Counter)> = series
        .into_iter()
        .map(|(ix, d, r, name, c)| (labels(ix, name, d, r), c))
        .collect();
    let mut s = String::new();
    family(&mut s, "vifguard_packets_total", "Packets", &series, |c| {
        c.packets
    });
    family(&mut s, "vifguard_bytes_total", "Bytes", &series, |c| {
        c.bytes
    });
    // A gauge for vifs that learn only: 0 then says "learns, has none",
    // which an alert on a guest that lost its lease can tell from "does
    // not learn".
    let learning: Vec<&super::Vif> = snapshot
        .vifs
        .iter()
        .filter(|v| v.learned.is_some())
        .collect();
    if !learning.is_empty() {
        let metric = "vifguard_learned_addresses";
        let _ = writeln!(
            s,
            "# HELP {metric} IPv4 addresses the interface learned from DHCP and may use now (option learn_dhcp).\n# TYPE {metric} gauge"
        );
        for v in learning {
            let n = v.learned.as_ref().map_or(0, Vec::len);
            let _ = writeln!(
                s,
                "{metric}{{{}}} {n}",
                iface_labels(v.ifindex, v.name.as_deref())
            );
        }
    }
    s
}

/// One metric: its help and type lines, then a line per series.
fn family(
    s: &mut String,
    metric: &str,
    what: &str,
    series: &[(String, Counter)],
    value: impl Fn(&Counter) -> u64,
) {
    let _ = writeln!(
        s,
        "# HELP {metric} {what} seen by vifguard, by decision reason.\n# TYPE {metric} counter"
    );
    for (labels, c) in series {
        let _ = writeln!(s, "{metric}{{{labels}}} {}", value(c));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::tests::vif;
    use crate::report::{NoPolicy, Vif};

    #[test]
    fn counters_by_interface_direction_and_reason() {
        let mut gone = vif();
        gone.name = None;
        gone.ifindex = 9;
        assert_eq!(
            render(&Snapshot {
                vifs: vec![vif(), gone],
                no_policy: Vec::new(),
            }),
            "# HELP vifguard_packets_total Packets seen by vifguard, by decision reason.\n\
             # TYPE vifguard_packets_total counter\n\
             vifguard_packets_total{interface=\"vif5.0\",domid=\"5\",devid=\"0\",direction=\"from_guest\",reason=\"pass\"} 2\n\
             vifguard_packets_total{interface=\"vif5.0\",domid=\"5\",devid=\"0\",direction=\"from_guest\",reason=\"ipv4_spoof\"} 3\n\
             vifguard_packets_total{interface=\"ifindex9\",domid=\"\",devid=\"\",direction=\"from_guest\",reason=\"pass\"} 2\n\
             vifguard_packets_total{interface=\"ifindex9\",domid=\"\",devid=\"\",direction=\"from_guest\",reason=\"ipv4_spoof\"} 3\n\
             # HELP vifguard_bytes_total Bytes seen by vifguard, by decision reason.\n\
             # TYPE vifguard_bytes_total counter\n\
             vifguard_bytes_total{interface=\"vif5.0\",domid=\"5\",devid=\"0\",direction=\"from_guest\",reason=\"pass\"} 1000\n\
             vifguard_bytes_total{interface=\"vif5.0\",domid=\"5\",devid=\"0\",direction=\"from_guest\",reason=\"ipv4_spoof\"} 180\n\
             vifguard_bytes_total{interface=\"ifindex9\",domid=\"\",devid=\"\",direction=\"from_guest\",reason=\"pass\"} 1000\n\
             vifguard_bytes_total{interface=\"ifindex9\",domid=\"\",devid=\"\",direction=\"from_guest\",reason=\"ipv4_spoof\"} 180\n"
        );
    }

    #[test]
    fn learned_addresses_are_a_gauge_of_vifs_that_learn() {
        let mut learning = vif();
        learning.learned = Some(vec![crate::report::Learned {
            addr: "192.0.2.100".parse().unwrap(),
            expires_s: 200,
            expires_in_s: 20,
        }]);
        let mut empty = vif();
        empty.ifindex = 8;
        empty.name = Some("vif6.0".into());
        empty.learned = Some(Vec::new());
        let text = render(&Snapshot {
            vifs: vec![learning, empty, vif()],
            no_policy: Vec::new(),
        });
        let tail: Vec<&str> = text
            .lines()
            .skip_while(|l| !l.contains("vifguard_learned_addresses"))
            .collect();
        assert_eq!(
            tail,
            [
                "# HELP vifguard_learned_addresses IPv4 addresses the interface learned from DHCP and may use now (option learn_dhcp).",
                "# TYPE vifguard_learned_addresses gauge",
                "vifguard_learned_addresses{interface=\"vif5.0\",domid=\"5\",devid=\"0\"} 1",
                "vifguard_learned_addresses{interface=\"vif6.0\",domid=\"6\",devid=\"0\"} 0",
            ]
        );
        let none = render(&Snapshot {
            vifs: vec![vif()],
            no_policy: Vec::new(),
        });
        assert!(!none.contains("learned"), "{none}");
    }

    #[test]
    fn label_values_are_escaped() {
        let mut odd = vif();
        odd.name = Some("a\\b\"c\nd".into());
        let text = render(&Snapshot {
            vifs: vec![odd],
            no_policy: Vec::new(),
        });
        let line = text
            .lines()
            .find(|l| l.starts_with("vifguard_packets_total{"))
            .unwrap();
        assert!(
            line.starts_with(r#"vifguard_packets_total{interface="a\\b\"c\nd",domid="","#),
            "{line}"
        );
    }

    /// A scrape reads the counters only: what [`render`] takes holds no
    /// hook state, whose listing dumps two tc filter lists per interface,
    /// and no decoded policy, whose trie entries are one per prefix. (A
    /// field added to [`Snapshot`] or [`Vif`] must be named here, and must
    /// not be either.)
    #[test]
    fn metrics_take_no_hook_state() {
        let Snapshot {
            vifs: _,
            no_policy: _,
        } = Snapshot::default();
        let Vif {
            ifindex: _,
            name: _,
            slot: _,
            counters: _,
            learned: _,
        } = vif();
    }

    /// Drops on a hook without a policy entry are reason `no_policy`, of
    /// interfaces with or without a policy entry now.
    #[test]
    fn no_policy_drops_are_counters_of_their_own_reason() {
        let drops = |p, b| {
            [
                Counter {
                    packets: p,
                    bytes: b,
                },
                Counter::default(),
            ]
        };
        let text = render(&Snapshot {
            vifs: vec![vif()],
            no_policy: vec![
                NoPolicy {
                    ifindex: 7,
                    name: Some("vif5.0".into()),
                    drops: drops(1, 60),
                },
                NoPolicy {
                    ifindex: 8,
                    name: Some("vif6.1".into()),
                    drops: drops(4, 240),
                },
            ],
        });
        let lines: Vec<&str> = text.lines().filter(|l| l.contains("no_policy")).collect();
        assert_eq!(
            lines,
            [
                "vifguard_packets_total{interface=\"vif5.0\",domid=\"5\",devid=\"0\",direction=\"from_guest\",reason=\"no_policy\"} 1",
                "vifguard_packets_total{interface=\"vif6.1\",domid=\"6\",devid=\"1\",direction=\"from_guest\",reason=\"no_policy\"} 4",
                "vifguard_bytes_total{interface=\"vif5.0\",domid=\"5\",devid=\"0\",direction=\"from_guest\",reason=\"no_policy\"} 60",
                "vifguard_bytes_total{interface=\"vif6.1\",domid=\"6\",devid=\"1\",direction=\"from_guest\",reason=\"no_policy\"} 240",
            ]
        );
    }
}
