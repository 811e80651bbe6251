//! `vifguard watch`: live policy changes followed from xenstore.

use super::*;

/// A running `vifguard watch` and the lines it logged; killed on drop.
struct Watch {
    child: std::process::Child,
    lines: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Watch {
    fn start(h: &Host) -> Watch {
        use std::io::BufRead;
        let mut child = h
            .cmd(&["watch"], &[])
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("start vifguard watch");
        let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let stderr = child.stderr.take().expect("stderr");
        let sink = std::sync::Arc::clone(&lines);
        std::thread::spawn(move || {
            for l in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                sink.lock().expect("lines").push(l);
            }
        });
        let w = Watch { child, lines };
        w.wait_for_line("watching xenstore", 1);
        w
    }

    /// Waits (5 s at most) until `n` lines contain `what`.
    fn wait_for_line(&self, what: &str, n: usize) {
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        loop {
            let got = self.count(what);
            if got >= n {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "vifguard watch did not log {what:?} {n} time(s): {:?}",
                self.lines.lock().expect("lines")
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn count(&self, what: &str) -> usize {
        self.lines
            .lock()
            .expect("lines")
            .iter()
            .filter(|l| l.contains(what))
            .count()
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `vifguard status --json` until `ok` holds for `vif`'s entry;
/// returns how long that took (panics after 3 s).
fn until_status(h: &Host, vif: &str, ok: impl Fn(&serde_json::Value) -> bool) -> Duration {
    until_status_within(h, vif, Duration::from_secs(3), ok)
}

fn until_status_within(
    h: &Host,
    vif: &str,
    limit: Duration,
    ok: impl Fn(&serde_json::Value) -> bool,
) -> Duration {
    let start = std::time::Instant::now();
    loop {
        if h.entry(vif).is_some_and(|e| ok(&e)) {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < limit,
            "{vif} never reached the expected state: {:?}",
            h.entry(vif)
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// An xl guest switched to `isolated` while it runs: `vifguard watch`
/// applies it, well within a second (the delay is printed).
#[test]
fn watch_applies_an_xl_change_of_a_running_guest() {
    let mut h = Host::new();
    let v = h.vif(62, 0);
    assert!(h.hotplug("online", &v).status.success());
    assert_eq!(h.entry(&v).expect("in status")["applied"]["by"], "hotplug");
    let w = Watch::start(&h);
    let be = "/local/domain/0/backend/vif/62/0";
    h.xs.tool_ok(
        "xenstore-write",
        &[&format!("{be}/vifguard/destinations"), "192.0.2.1/32"],
    )
    .expect("write");
    h.xs.tool_ok(
        "xenstore-write",
        &[&format!("{be}/vifguard/mode"), "isolated"],
    )
    .expect("write");
    let delay = until_status(&h, &v, |e| e["mode"] == "isolated");
    eprintln!(
        "watch: xl change applied {} ms after the write",
        delay.as_millis()
    );
    assert!(delay < Duration::from_secs(1), "{delay:?}");
    w.wait_for_line(&format!("{v}: policy re-applied"), 1);
    let e = h.entry(&v).expect("in status");
    assert_eq!(e["applied"]["by"], "watch", "{e}");
    assert!(h.ok(&["status", &v], &[]).contains("applied by watch"));
}

/// xenopsd's live update with `vifguard watch` running and no other
/// call: the keys are deleted and written back one by one. A guest sends
/// from a never-allowed address every millisecond meanwhile: not one of
/// those frames passes at any moment; the new address is applied within
/// a second; keys left incomplete fail the vif closed after 5 s.
#[test]
fn watch_rides_the_xenopsd_live_update_without_an_unlocked_moment() {
    let mut h = Host::new();
    let v = h.vif(63, 0);
    let uuid = "6b3f0c2e-0000-4000-8000-000000000063";
    let dir = format!("/xapi/{uuid}/private/vif/0");
    let w = |h: &Host, k: &str, val: &str| {
        h.xs.tool_ok("xenstore-write", &[k, val]).expect("write");
    };
    w(&h, "/local/domain/63/vm", &format!("/vm/{uuid}"));
    w(&h, &format!("{dir}/locking-mode"), "locked");
    w(&h, &format!("{dir}/ipv4-allowed"), "198.51.100.63");
    w(&h, &format!("{dir}/ipv6-allowed"), "");
    h.xs.tool_ok("xenstore-chmod", &["-r", "/xapi", "n0"])
        .expect("chmod");
    h.xs.tool_ok("xenstore-chmod", &["-r", "/local/domain/63", "n0", "r63"])
        .expect("chmod");
    assert!(h.hotplug("online", &v).status.success());
    let watch = Watch::start(&h);

    // The never-allowed sender.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let tx = RawSocket::open(&h.guests[0], "eth0");
    let frame = Frame::eth(mac(63, 0), BROADCAST)
        .ipv4(
            "203.0.113.99".parse().expect("a"),
            "198.51.100.255".parse().expect("a"),
        )
        .udp(5000, 5000)
        .payload(b"vifguard-watch-never")
        .build();
    let before = counter(
        &h.entry(&v).expect("in status"),
        Direction::FromGuest,
        Reason::Ipv4Spoof,
    );
    let sender = {
        let stop = std::sync::Arc::clone(&stop);
        std::thread::spawn(move || {
            let mut sent = 0u64;
            while !stop.load(Ordering::Relaxed) {
                tx.send(&frame);
                sent += 1;
                std::thread::sleep(Duration::from_millis(1));
            }
            sent
        })
    };

    // xenops_server_xen.ml set_locking_mode: delete, then write one by one.
    for k in ["locking-mode", "ipv4-allowed", "ipv6-allowed"] {
        h.xs.tool_ok("xenstore-rm", &[&format!("{dir}/{k}")])
            .expect("rm");
    }
    std::thread::sleep(Duration::from_millis(20));
    w(&h, &format!("{dir}/locking-mode"), "locked");
    w(&h, &format!("{dir}/ipv4-allowed"), "198.51.100.64");
    w(&h, &format!("{dir}/ipv6-allowed"), "");
    let delay = until_status(&h, &v, |e| {
        e["addresses"] == serde_json::json!(["198.51.100.64"])
    });
    eprintln!(
        "watch: xenopsd update applied {} ms after the last write",
        delay.as_millis()
    );
    assert!(delay < Duration::from_secs(1), "{delay:?}");
    std::thread::sleep(Duration::from_millis(50));
    stop.store(true, Ordering::Relaxed);
    let sent = sender.join().expect("sender");
    std::thread::sleep(Duration::from_millis(50));
    let e = h.entry(&v).expect("in status");
    assert_eq!(
        counter(&e, Direction::FromGuest, Reason::Ipv4Spoof) - before,
        sent,
        "every frame from the never-allowed address dropped: {e}"
    );
    assert_eq!(e["mode"], "locked");

    // Keys left incomplete: kept for a while, then fail closed.
    h.xs.tool_ok("xenstore-rm", &[&format!("{dir}/locking-mode")])
        .expect("rm");
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(h.entry(&v).expect("in status")["mode"], "locked");
    let waited = until_status_within(&h, &v, Duration::from_secs(6), |e| e["mode"] == "disabled");
    assert!(waited > Duration::from_millis(2500), "{waited:?}");
    watch.wait_for_line(&format!("{v}: failed closed"), 1);
}

/// xenstored killed and restarted under a running watch: it reconnects,
/// and a change made after the restart is applied.
#[test]
fn watch_survives_a_xenstored_restart() {
    let mut h = Host::new();
    let v = h.vif(64, 0);
    assert!(h.hotplug("online", &v).status.success());
    let w = Watch::start(&h);
    h.xs.kill();
    w.wait_for_line("xenstore connection lost", 1);
    std::thread::sleep(Duration::from_millis(300));
    h.xs.restart();
    w.wait_for_line("watching xenstore", 2);
    let be = "/local/domain/0/backend/vif/64/0";
    h.xs.tool_ok("xenstore-write", &[&format!("{be}/ip"), "198.51.100.65"])
        .expect("write");
    until_status(&h, &v, |e| {
        e["addresses"] == serde_json::json!(["198.51.100.65"])
    });
    let e = h.entry(&v).expect("in status");
    assert_eq!(e["mode"], "locked", "{e}");
}
