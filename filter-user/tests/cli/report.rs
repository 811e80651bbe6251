//! What operators read: status, events, metrics.

use super::*;

#[test]
fn events_stream_a_sampled_drop() {
    let mut h = Host::new();
    let vif = h.vif(8, 0);
    let out = h.hotplug("online", &vif);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let reader = h
        .cmd(
            &["events", "--json", "--count", "1", "--timeout", "10"],
            &[],
        )
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("start vifguard events");
    std::thread::sleep(Duration::from_millis(300));
    h.spoof_from(0, 8, 0);
    let out = reader.wait_with_output().expect("vifguard events");
    assert!(out.status.success(), "vifguard events failed");
    let line = String::from_utf8_lossy(&out.stdout);
    let ev: serde_json::Value = serde_json::from_str(line.trim())
        .unwrap_or_else(|e| panic!("one JSON event expected, got {line:?}: {e}"));
    assert_eq!(ev["interface"], vif.as_str(), "{ev}");
    assert_eq!(ev["reason"], Reason::Ipv4Spoof.name(), "{ev}");
    assert_eq!(ev["direction"], Direction::FromGuest.name(), "{ev}");
    assert_eq!(ev["src"], "203.0.113.66", "{ev}");
    assert_eq!(ev["src_mac"], mac_str(mac(8, 0)), "{ev}");
}

/// One HTTP/1.0 GET from inside `ns` (retrying until the server is up).
fn http_get(ns: &NetNs, port: u16, path: &str) -> String {
    use std::io::{Read as _, Write as _};
    let _in = ns.enter();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let mut s = loop {
        match std::net::TcpStream::connect(("127.0.0.1", port)) {
            Ok(s) => break s,
            Err(_) if std::time::Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => panic!("connect to metrics server: {e}"),
        }
    };
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    write!(s, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").expect("send request");
    let mut out = String::new();
    s.read_to_string(&mut out).expect("read response");
    out
}

#[test]
fn metrics_served_over_http() {
    let mut h = Host::new();
    let vif = h.vif(9, 0);
    let out = h.hotplug("online", &vif);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A host name is a usage error (the static binary resolves none).
    let out = h.run(&["metrics", "--listen", "localhost:9469"], &[]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("not IP:PORT"), "{}", stderr(&out));
    // The test's dom0 namespace is fresh: any port is free in it.
    let port = 9469;
    let mut server = h
        .cmd(&["metrics", "--listen", &format!("127.0.0.1:{port}")], &[])
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start vifguard metrics --listen");
    let first = http_get(&h.dom0, port, "/metrics");
    h.spoof_from(0, 9, 0);
    // Maps are re-read per request: the drop shows up in the next one.
    let second = http_get(&h.dom0, port, "/metrics");
    let missing = http_get(&h.dom0, port, "/nope");
    let _ = server.kill();
    let _ = server.wait();

    assert!(first.starts_with("HTTP/1.0 200"), "{first}");
    assert!(
        first.contains("# TYPE vifguard_packets_total counter"),
        "{first}"
    );
    let line = format!(
        "vifguard_packets_total{{interface=\"{vif}\",domid=\"9\",devid=\"0\",direction=\"{}\",reason=\"{}\"}} 1",
        Direction::FromGuest.name(),
        Reason::Ipv4Spoof.name()
    );
    assert!(!first.contains("reason=\"ipv4_spoof\""), "{first}");
    assert!(second.starts_with("HTTP/1.0 200"), "{second}");
    assert!(second.lines().any(|l| l == line), "{line} not in\n{second}");
    assert!(missing.starts_with("HTTP/1.0 404"), "{missing}");

    assert!(h.hotplug("offline", &vif).status.success());
    assert!(h.attached().is_empty());
}

/// Frames on a hook whose policy entry is gone are dropped as `no_policy`;
/// metrics export them, per interface.
#[test]
fn metrics_export_no_policy_drops() {
    let mut h = Host::new();
    let vif = h.vif(74, 0);
    let out = h.hotplug("online", &vif);
    assert!(out.status.success(), "{}", stderr(&out));
    // The entry lost (as a crash between map writes could leave it): the
    // hooks stay and drop everything.
    let ix = h.dom0.ifindex(&vif);
    let policy = h.v().join("maps/POLICY");
    let key: Vec<String> = ix.to_ne_bytes().iter().map(u8::to_string).collect();
    let out = Command::new("bpftool")
        .args(["map", "delete", "pinned", &policy.to_string_lossy(), "key"])
        .args(&key)
        .output()
        .expect("bpftool");
    assert!(out.status.success(), "{}", stderr(&out));
    h.spoof_from(0, 74, 0);
    let m = h.ok(&["metrics"], &[]);
    let line = format!(
        "vifguard_packets_total{{interface=\"{vif}\",domid=\"74\",devid=\"0\",direction=\"from_guest\",reason=\"{}\"}} ",
        Reason::NoPolicy.name()
    );
    let packets = m
        .lines()
        .find_map(|l| l.strip_prefix(&line))
        .unwrap_or_else(|| panic!("no {line:?} in\n{m}"));
    // At least ours (the guest kernel may send its own frames too).
    assert!(packets.parse::<u64>().expect("a count") >= 1, "{m}");
    assert!(h.hotplug("offline", &vif).status.success());
    assert!(h.attached().is_empty());
}

/// Status shows the policy as installed, trie entries included: a /64, a
/// list longer than the inline one, 0.0.0.0/0, destinations and options.
#[test]
fn status_shows_the_whole_policy() {
    let mut h = Host::new();
    let prefix = h.vif(70, 0);
    h.set_backend_key(70, 0, "ip", &format!("{} 2001:db8:70::/64", ip_of(70, 0)));
    let many = h.vif(71, 0);
    let hosts: Vec<String> = (0..290u32)
        .map(|i| format!("10.71.{}.{}", i / 250, i % 250 + 1))
        .collect();
    h.set_backend_key(71, 0, "ip", &hosts.join(" "));
    let any = h.vif(72, 0);
    h.set_backend_key(72, 0, "ip", "0.0.0.0/0");
    h.set_backend_key(72, 0, "vifguard/mode", "isolated");
    h.set_backend_key(72, 0, "vifguard/destinations", "192.0.2.0/24 2001:db8::/32");
    h.set_backend_key(72, 0, "vifguard/options/router", "1");
    h.set_backend_key(72, 0, "vifguard/options/ethertypes", "0x88cc");
    for v in [&prefix, &many, &any] {
        let out = h.hotplug("online", v);
        assert!(out.status.success(), "{v}: {}", stderr(&out));
    }

    let e = h.entry(&prefix).expect("prefix vif");
    assert_eq!(
        e["addresses"],
        serde_json::json!([ip_of(70, 0), "2001:db8:70::/64"]),
        "{e}"
    );
    assert_eq!(e["ipv4"], serde_json::json!([ip_of(70, 0)]), "{e}");
    assert_eq!(e["ipv6"], serde_json::json!(["2001:db8:70::/64"]), "{e}");
    assert_eq!(e["destinations"], serde_json::json!([]), "{e}");

    let e = h.entry(&many).expect("vif with 290 addresses");
    // Eight inline, the rest from the trie: in order either way, as
    // they were written in order.
    assert_eq!(e["ipv4"], serde_json::json!(hosts), "{e}");
    assert_eq!(e["n_ipv4"], 290, "{e}");

    let e = h.entry(&any).expect("isolated vif");
    assert_eq!(e["mode"], "isolated");
    assert_eq!(e["ipv4"], serde_json::json!(["0.0.0.0/0"]), "{e}");
    assert_eq!(
        e["destinations"],
        serde_json::json!(["192.0.2.0/24", "2001:db8::/32"]),
        "{e}"
    );
    assert_eq!(
        e["options"],
        serde_json::json!({
            "dhcp_client": true,
            "dhcp_server": false,
            "router": true,
            "ipv6_link_local": "derived",
            "egress_filter": true,
            "ethertypes": ["0x88cc"],
            "learn_dhcp": false,
            "flood_pps": 0,
        }),
        "{e}"
    );

    let text = h.ok(&["status", &prefix], &[]);
    assert!(text.contains("2001:db8:70::/64"), "{text}");
    let text = h.ok(&["status", &many], &[]);
    for a in &hosts {
        assert!(
            text.split([' ', '\n']).any(|w| w == a.as_str()),
            "{a} missing:\n{text}"
        );
    }
    let text = h.ok(&["status", &any], &[]);
    for want in [
        "mode isolated",
        "0.0.0.0/0",
        "192.0.2.0/24 2001:db8::/32",
        "router on",
        "ethertypes 0x88cc",
    ] {
        assert!(text.contains(want), "{want:?} missing:\n{text}");
    }
    for v in [&prefix, &many, &any] {
        assert!(h.hotplug("offline", v).status.success());
    }
}

/// A host policy file for a vif's MAC: `vifguard policy` (text and JSON)
/// shows its fields with the file as their origin, under the vif's own
/// xenstore keys, over the host configuration.
#[test]
fn policy_shows_the_host_policy_file() {
    let mut h = Host::new();
    let dir = h.policy_dir("[dhcp_servers]\ndefault = [\"198.51.100.1\"]\n");
    let vif = h.vif(82, 0);
    let file = dir.join("00:16:3E:52:00:00.toml");
    std::fs::write(
        &file,
        "mode = \"isolated\"\n\
         destinations = [\"192.0.2.1\"]\n\
         pairs = [\"02:16:3e:00:07:09=192.0.2.9,2001:db8::9\", \"vrrp:7=192.0.2.100,2001:db8::100\"]\n\
         dhcp_servers = [\"192.0.2.1\"]\n\
         [options]\n\
         router = true\n",
    )
    .expect("write");
    h.set_backend_key(82, 0, "vifguard/dhcp-servers", "192.0.2.2 fe80::2");
    let shown = file.display().to_string();

    let text = h.ok(&["policy", &vif], &[]);
    assert!(
        text.contains(&format!("host policy file {shown}\n"))
            && text.contains(&format!("isolated  <- host policy file {shown} key mode"))
            && text.contains("02:16:3e:00:07:09=192.0.2.9,2001:db8::9")
            && text.contains("vrrp:7=192.0.2.100,2001:db8::100 (virtual MAC 00:00:5e:00:01:07 00:00:5e:00:02:07)")
            && text.contains("192.0.2.2 fe80::2  <- xenstore /local/domain/0/backend/vif/82/0/vifguard/dhcp-servers"),
        "{text}"
    );

    let j: serde_json::Value =
        serde_json::from_str(&h.ok(&["policy", &vif, "--json"], &[])).expect("policy JSON");
    let from_file = |key: &str| serde_json::json!([format!("host policy file {shown} key {key}")]);
    assert_eq!(j["policy_file"], shown);
    assert_eq!(j["mode"]["value"], "isolated");
    assert_eq!(j["mode"]["from"], from_file("mode"));
    assert_eq!(j["pairs"]["from"], from_file("pairs"));
    assert_eq!(
        j["pairs"]["value"],
        serde_json::json!([{"mac": "02:16:3e:00:07:09", "ipv4": ["192.0.2.9"], "ipv6": ["2001:db8::9"]}])
    );
    assert_eq!(j["vrrp"]["value"][0]["vrid"], 7);
    assert_eq!(
        j["vrrp"]["value"][0]["macs"],
        serde_json::json!(["00:00:5e:00:01:07", "00:00:5e:00:02:07"])
    );
    assert_eq!(j["destinations"]["from"], from_file("destinations"));
    assert_eq!(j["options"]["router"]["value"], true);
    assert_eq!(j["options"]["router"]["from"], from_file("options.router"));
    assert_eq!(
        j["dhcp_servers"]["value"],
        serde_json::json!(["192.0.2.2", "fe80::2"])
    );

    // Without the vif's key the file's servers apply; without the file's
    // too, the host configuration's.
    h.xs.tool_ok(
        "xenstore-rm",
        &["/local/domain/0/backend/vif/82/0/vifguard/dhcp-servers"],
    )
    .expect("rm");
    let j: serde_json::Value =
        serde_json::from_str(&h.ok(&["policy", &vif, "--json"], &[])).expect("policy JSON");
    assert_eq!(j["dhcp_servers"]["value"], serde_json::json!(["192.0.2.1"]));
    assert_eq!(j["dhcp_servers"]["from"], from_file("dhcp_servers"));
    std::fs::write(&file, "mode = \"isolated\"\n").expect("write");
    let j: serde_json::Value =
        serde_json::from_str(&h.ok(&["policy", &vif, "--json"], &[])).expect("policy JSON");
    assert_eq!(
        j["dhcp_servers"]["value"],
        serde_json::json!(["198.51.100.1"])
    );
    let from = j["dhcp_servers"]["from"][0]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        from.starts_with("host config dhcp_servers.default in "),
        "{from}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
