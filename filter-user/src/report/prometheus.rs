//! `vifguard metrics`: the counters in the Prometheus text exposition
//! format (version 0.0.4).

use std::fmt::Write as _;

use super::Vif;
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

/// The labels naming an interface, escaped: its name (`ifindex<N>` once
/// gone), and the domid and devid its name carries (empty for other
/// names).
fn labels(r: &Vif) -> (String, String, String) {
    let name = r
        .name
        .clone()
        .unwrap_or_else(|| format!("ifindex{}", r.ifindex));
    let (domid, devid) = vif_of_ifname(&name)
        .map(|v| (v.domid.to_string(), v.devid.to_string()))
        .unwrap_or_default();
    (escape(&name), domid, devid)
}

/// The metrics text of `vifs`.
pub fn render(vifs: &[Vif]) -> String {
    let mut s = String::new();
    s.push_str("# HELP vifguard_packets_total Packets seen by vifguard, by decision reason.\n");
    s.push_str("# TYPE vifguard_packets_total counter\n");
    for r in vifs {
        let (name, domid, devid) = labels(r);
        for (d, rs, c) in r.counters.nonzero() {
            let _ = writeln!(
                s,
                "vifguard_packets_total{{interface=\"{name}\",domid=\"{domid}\",devid=\"{devid}\",direction=\"{}\",reason=\"{}\"}} {}",
                d.name(),
                rs.name(),
                c.packets
            );
        }
    }
    s.push_str("# HELP vifguard_bytes_total Bytes seen by vifguard, by decision reason.\n");
    s.push_str("# TYPE vifguard_bytes_total counter\n");
    for r in vifs {
        let (name, domid, devid) = labels(r);
        for (d, rs, c) in r.counters.nonzero() {
            let _ = writeln!(
                s,
                "vifguard_bytes_total{{interface=\"{name}\",domid=\"{domid}\",devid=\"{devid}\",direction=\"{}\",reason=\"{}\"}} {}",
                d.name(),
                rs.name(),
                c.bytes
            );
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::tests::vif;

    #[test]
    fn counters_by_interface_direction_and_reason() {
        let mut gone = vif();
        gone.name = None;
        gone.ifindex = 9;
        assert_eq!(
            render(&[vif(), gone]),
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
    fn label_values_are_escaped() {
        let mut odd = vif();
        odd.name = Some("a\\b\"c\nd".into());
        let text = render(&[odd]);
        let line = text
            .lines()
            .find(|l| l.starts_with("vifguard_packets_total{"))
            .unwrap();
        assert!(
            line.starts_with(r#"vifguard_packets_total{interface="a\\b\"c\nd",domid="","#),
            "{line}"
        );
    }

    /// A scrape reads the maps only: what [`render`] takes holds no hook
    /// state, whose listing dumps two tc filter lists per interface. (A
    /// field added to [`Vif`] must be named here, and must not be that.)
    #[test]
    fn metrics_take_no_hook_state() {
        let Vif {
            ifindex: _,
            name: _,
            policy: _,
            counters: _,
            no_policy: _,
        } = vif();
    }
}
