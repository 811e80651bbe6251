//! The datapath on real interfaces: a simulated dom0 (a namespace with a
//! bridge) and two guests (namespaces) wired by veth pairs named like Xen's
//! vifs. Guest 1 sends real frames through a raw socket; the program on
//! vif1.0 decides; guest 2 sees what the bridge forwarded. Checked: the
//! right frames arrive, the spoofed ones do not, and the counters say why.
//!
//! Needs root. Namespaces are removed when the test ends, also on failure.

use std::net::Ipv6Addr;
use std::time::Duration;

use filter_common::{Direction, Reason};
use filter_user::datapath::Counters;
use filter_user::policy::{MacAddr, Policy};
use testbed::frames::{BROADCAST, Frame, Mac, arp_op, ipv6_multicast_mac, solicited_node};
use testbed::kernel::{Hook, Kernel, TcWay, tcx_supported};
use testbed::netns::{NetNs, RawSocket, veth};

const G1: Mac = [0x00, 0x16, 0x3e, 0x00, 0x01, 0x01];
const G2: Mac = [0x00, 0x16, 0x3e, 0x00, 0x02, 0x01];
const ROUTER_IP: &str = "192.0.2.1";

struct Host {
    dom0: NetNs,
    g1: NetNs,
    g2: NetNs,
}

/// dom0 with bridge br0 and vif1.0 / vif2.0; guests g1 and g2 with eth0.
/// IPv6 is off in the guests and bridge multicast snooping is off, so no
/// kernel sends anything on its own while the test counts.
fn host() -> Host {
    let h = Host {
        dom0: NetNs::new("dom0"),
        g1: NetNs::new("g1"),
        g2: NetNs::new("g2"),
    };
    for ns in [&h.dom0, &h.g1, &h.g2] {
        for key in ["all", "default"] {
            let out = ns.exec(&[
                "sysctl",
                "-qw",
                &format!("net.ipv6.conf.{key}.disable_ipv6=1"),
            ]);
            assert!(out.status.success(), "disable IPv6 in {}", ns.name);
        }
    }
    // No multicast snooping: with it the bridge itself joins 224.0.0.106
    // (IGMP), a frame the counters below would see.
    h.dom0.ip(&[
        "link",
        "add",
        "br0",
        "type",
        "bridge",
        "mcast_snooping",
        "0",
    ]);
    h.dom0.ip(&["link", "set", "br0", "up"]);
    for (guest, vif, mac) in [(&h.g1, "vif1.0", G1), (&h.g2, "vif2.0", G2)] {
        veth(&h.dom0, vif, guest, "eth0");
        guest.ip(&["link", "set", "eth0", "address", &MacAddr(mac).to_string()]);
        h.dom0.ip(&["link", "set", vif, "master", "br0"]);
    }
    h
}

fn marker(i: usize) -> Vec<u8> {
    format!("vifguard-live-{i:04}").into_bytes()
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fn guest1_policy() -> Policy {
    let mut p = Policy::locked(MacAddr(G1));
    p.ipv4 = vec!["192.0.2.10".parse().expect("cidr")];
    p.ipv6 = vec!["2001:db8::10".parse().expect("cidr")];
    p
}

/// Every counter of vif1.0 in `dir` grew by exactly the number of frames
/// sent with that reason.
fn assert_counted(
    before: &Counters,
    after: &Counters,
    dir: Direction,
    sent: &[(&str, Vec<u8>, Reason)],
) {
    for reason in Reason::ALL {
        let want = sent.iter().filter(|(_, _, r)| *r == reason).count() as u64;
        let got = after.get(dir, reason).packets - before.get(dir, reason).packets;
        assert_eq!(
            got,
            want,
            "{} counter {} of vif1.0 should grow by {want}",
            dir.name(),
            reason.name()
        );
    }
}

/// Whether a TCX test can run here; says why not on stderr.
fn tcx_here() -> bool {
    match tcx_supported() {
        Ok(()) => true,
        Err(why) => {
            eprintln!("skipped: {why}");
            false
        }
    }
}

/// Whether vif1.0 carries a vifguard cls_bpf filter on the hook of `dir`:
/// the tests run the path a host uses by default.
fn has_cls_bpf_filter(h: &Host, dir: Direction) -> bool {
    let _in = h.dom0.enter();
    let ix = h.dom0.ifindex("vif1.0");
    let mut rtnl = filter_user::hooks::tc::Rtnl::open().expect("rtnetlink");
    rtnl.filters(ix, dir)
        .expect("list filters")
        .iter()
        .any(|f| f.is_vifguard())
}

fn check_live(hook: Hook, way: TcWay) {
    let h = host();
    let mut kernel = Kernel::load();
    let vif1 = h.dom0.ifindex("vif1.0");
    kernel.set_policy(vif1, &guest1_policy());
    let _link = {
        let _in = h.dom0.enter();
        kernel.attach_via(hook, "vif1.0", way)
    };
    if hook == Hook::TcFromGuest {
        assert_eq!(
            has_cls_bpf_filter(&h, Direction::FromGuest),
            way == TcWay::ClsBpf,
            "{way:?}: a cls_bpf filter on vif1.0 exactly when attached that way"
        );
    }
    let tx = RawSocket::open(&h.g1, "eth0");
    let rx = RawSocket::open(&h.g2, "eth0");

    let v4 = |src: &str, i: usize| {
        Frame::eth(G1, BROADCAST)
            .ipv4(src.parse().expect("a"), "192.0.2.255".parse().expect("a"))
            .udp(5000, 5000)
            .payload(&marker(i))
            .build()
    };
    let all_nodes: Ipv6Addr = "ff02::1".parse().expect("a");
    let v6 = |src: &str, i: usize| {
        Frame::eth(G1, ipv6_multicast_mac(all_nodes))
            .ipv6(src.parse().expect("a"), all_nodes)
            .udp(5000, 5000)
            .payload(&marker(i))
            .build()
    };
    let sent: Vec<(&str, Vec<u8>, Reason)> = vec![
        ("allowed IPv4", v4("192.0.2.10", 0), Reason::Pass),
        ("allowed IPv6", v6("2001:db8::10", 1), Reason::Pass),
        (
            "allowed ARP request",
            Frame::eth(G1, BROADCAST)
                .arp(arp_op::REQUEST)
                .spa("192.0.2.10".parse().expect("a"))
                .tpa(ROUTER_IP.parse().expect("a"))
                .build(),
            Reason::Pass,
        ),
        (
            "forged source MAC",
            Frame::eth(G2, BROADCAST)
                .ipv4(
                    "192.0.2.10".parse().expect("a"),
                    "192.0.2.255".parse().expect("a"),
                )
                .udp(5000, 5000)
                .payload(&marker(3))
                .build(),
            Reason::MacSpoof,
        ),
        ("forged IPv4 source", v4("192.0.2.99", 4), Reason::Ipv4Spoof),
        (
            "forged IPv6 source",
            v6("2001:db8::99", 5),
            Reason::Ipv6Spoof,
        ),
        (
            "ARP poisoning the router's address",
            Frame::eth(G1, BROADCAST)
                .arp(arp_op::REPLY)
                .spa(ROUTER_IP.parse().expect("a"))
                .tpa(ROUTER_IP.parse().expect("a"))
                .build(),
            Reason::ArpSpaSpoof,
        ),
        (
            "VLAN tag around a forged source",
            Frame::eth(G1, BROADCAST)
                .vlan(7)
                .ipv4(
                    "192.0.2.99".parse().expect("a"),
                    "192.0.2.255".parse().expect("a"),
                )
                .udp(5000, 5000)
                .payload(&marker(7))
                .build(),
            Reason::VlanTagged,
        ),
    ];
    let before = kernel.counters_of(vif1);
    for (_, frame, _) in &sent {
        tx.send(frame);
    }
    let received = rx.drain(Duration::from_millis(500));
    let after = kernel.counters_of(vif1);

    for (name, frame, expect) in &sent {
        let arrived = received
            .iter()
            .any(|r| r == frame || (frame.len() > 60 && contains(r, &frame[frame.len() - 18..])));
        assert_eq!(
            arrived,
            expect.is_pass(),
            "{hook:?}: {name} should {} guest 2",
            if expect.is_pass() {
                "reach"
            } else {
                "not reach"
            }
        );
    }
    assert_counted(&before, &after, Direction::FromGuest, &sent);
}

#[test]
fn tc_on_a_veth_vif_passes_legitimate_frames_and_stops_forged_ones() {
    check_live(Hook::TcFromGuest, TcWay::ClsBpf);
}

#[test]
fn tcx_on_a_veth_vif_passes_legitimate_frames_and_stops_forged_ones() {
    if tcx_here() {
        check_live(Hook::TcFromGuest, TcWay::Tcx);
    }
}

#[test]
fn xdp_on_a_veth_vif_passes_legitimate_frames_and_stops_forged_ones() {
    check_live(Hook::XdpFromGuest, TcWay::ClsBpf);
}

/// Frames sent by guest 2 towards the bridge, each with the counter reason
/// the to-guest program on vif1.0 should give it, or `None` when the bridge
/// does not send it to vif1.0 at all.
#[test]
fn tc_egress_keeps_a_guest_from_sniffing_its_neighbours() {
    check_egress(TcWay::ClsBpf);
}

#[test]
fn tcx_egress_keeps_a_guest_from_sniffing_its_neighbours() {
    if tcx_here() {
        check_egress(TcWay::Tcx);
    }
}

fn check_egress(way: TcWay) {
    let h = host();
    let mut kernel = Kernel::load();
    let vif1 = h.dom0.ifindex("vif1.0");
    kernel.set_policy(vif1, &guest1_policy());
    let _link = {
        let _in = h.dom0.enter();
        kernel.attach_via(Hook::TcToGuest, "vif1.0", way)
    };
    assert_eq!(
        has_cls_bpf_filter(&h, Direction::ToGuest),
        way == TcWay::ClsBpf,
        "{way:?}: a cls_bpf filter on vif1.0 exactly when attached that way"
    );
    let tx = RawSocket::open(&h.g2, "eth0");
    let rx = RawSocket::open(&h.g1, "eth0");
    let unknown: Mac = [0x00, 0x16, 0x3e, 0x00, 0x03, 0x01];
    let udp_to = |dst_mac: Mac, dst: &str, i: usize| {
        Frame::eth(G2, dst_mac)
            .ipv4("192.0.2.20".parse().expect("a"), dst.parse().expect("a"))
            .udp(5000, 5000)
            .payload(&marker(i))
            .build()
    };
    let arp_for = |tpa: &str| {
        Frame::eth(G2, BROADCAST)
            .arp(arp_op::REQUEST)
            .spa("192.0.2.20".parse().expect("a"))
            .tpa(tpa.parse().expect("a"))
            .build()
    };
    let sent: Vec<(&str, Vec<u8>, Reason)> = vec![
        (
            "unicast to guest 1's MAC and address",
            udp_to(G1, "192.0.2.10", 10),
            Reason::Pass,
        ),
        (
            "flooded unicast for an unknown MAC",
            udp_to(unknown, "192.0.2.30", 11),
            Reason::SniffMac,
        ),
        (
            "unicast to guest 1's MAC for another address",
            udp_to(G1, "192.0.2.30", 12),
            Reason::SniffIp,
        ),
        (
            "ARP request for guest 1",
            arp_for("192.0.2.10"),
            Reason::Pass,
        ),
        (
            "ARP request for a neighbour",
            arp_for("192.0.2.30"),
            Reason::SniffArp,
        ),
    ];
    let before = kernel.counters_of(vif1);
    for (_, frame, _) in &sent {
        tx.send(frame);
    }
    let received = rx.drain(Duration::from_millis(500));
    let after = kernel.counters_of(vif1);
    for (name, frame, expect) in &sent {
        let arrived = received.iter().any(|r| r == frame);
        assert_eq!(
            arrived,
            expect.is_pass(),
            "{name} should {} guest 1",
            if expect.is_pass() {
                "reach"
            } else {
                "not reach"
            }
        );
    }
    assert_counted(&before, &after, Direction::ToGuest, &sent);
}

#[test]
fn isolated_guest_reaches_only_its_destinations() {
    let h = host();
    let mut kernel = Kernel::load();
    let vif1 = h.dom0.ifindex("vif1.0");
    let mut policy = guest1_policy();
    policy.mode = filter_common::Mode::Isolated;
    policy.destinations = vec!["192.0.2.20".parse().expect("cidr")];
    kernel.set_policy(vif1, &policy);
    let _link = {
        let _in = h.dom0.enter();
        kernel.attach(Hook::TcFromGuest, "vif1.0")
    };
    let tx = RawSocket::open(&h.g1, "eth0");
    let rx = RawSocket::open(&h.g2, "eth0");
    let to_g2 = |dst: &str, i: usize| {
        Frame::eth(G1, G2)
            .ipv4("192.0.2.10".parse().expect("a"), dst.parse().expect("a"))
            .udp(5000, 5000)
            .payload(&marker(i))
            .build()
    };
    let allowed = to_g2("192.0.2.20", 20);
    let forbidden = to_g2("192.0.2.30", 21);
    let before = kernel.counters_of(vif1);
    tx.send(&allowed);
    tx.send(&forbidden);
    let received = rx.drain(Duration::from_millis(500));
    let after = kernel.counters_of(vif1);
    assert!(
        received.contains(&allowed),
        "the listed destination should be reachable"
    );
    assert!(
        !received.contains(&forbidden),
        "an unlisted destination must not be reachable"
    );
    let moved = |r: Reason| {
        after.get(Direction::FromGuest, r).packets - before.get(Direction::FromGuest, r).packets
    };
    assert_eq!(moved(Reason::Pass), 1, "one frame passed");
    assert_eq!(
        moved(Reason::Isolation),
        1,
        "one frame counted as isolation"
    );
}

/// What a duplicate address detection race left: guest 2's `ip` line for
/// the address once its DAD is over, and how many of guest 1's probes were
/// sent and reached guest 2.
struct DadRace {
    line: String,
    sent: usize,
    reached: usize,
}

/// Guest 1 sends DAD probes (NS from `::` to the solicited-node group, no
/// options) for `addr` every 50 ms while guest 2's kernel configures
/// `addr` with DAD on: the classic denial, a node doing DAD gives up an
/// address another node probes (RFC 4862 5.4.3).
fn dad_race(h: &Host, addr: Ipv6Addr) -> DadRace {
    let group = solicited_node(addr);
    let probe = Frame::eth(G1, ipv6_multicast_mac(group))
        .ipv6(Ipv6Addr::UNSPECIFIED, group)
        .neighbor_solicitation(addr)
        .build();
    let tx = RawSocket::open(&h.g1, "eth0");
    let rx = RawSocket::open(&h.g2, "eth0");
    let stop = std::sync::atomic::AtomicBool::new(false);
    let (line, sent) = std::thread::scope(|s| {
        let sender = s.spawn(|| {
            let mut sent = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                tx.send(&probe);
                sent += 1;
                std::thread::sleep(Duration::from_millis(50));
            }
            sent
        });
        std::thread::sleep(Duration::from_millis(200));
        h.g2.ip(&["-6", "addr", "add", &format!("{addr}/64"), "dev", "eth0"]);
        let deadline = std::time::Instant::now() + Duration::from_secs(15);
        let line = loop {
            let out =
                h.g2.exec(&["ip", "-6", "-o", "addr", "show", "dev", "eth0"]);
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            let line = text
                .lines()
                .find(|l| l.contains(&format!(" {addr}/64 ")))
                .unwrap_or_default()
                .to_string();
            if !line.contains("tentative") || line.contains("dadfailed") {
                break line;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "guest 2's DAD for {addr} never ended: {text}"
            );
            std::thread::sleep(Duration::from_millis(100));
        };
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        (line, sender.join().expect("the probe sender"))
    });
    let reached = rx
        .drain(Duration::from_millis(200))
        .iter()
        .filter(|f| **f == probe)
        .count();
    DadRace {
        line,
        sent,
        reached,
    }
}

/// POLICY section 3 item 6 with real Linux: a locked guest cannot make a
/// neighbour give up an address by racing the neighbour's DAD. Guest 2 runs
/// IPv6 with DAD on (three probes, about 3 s). Unlocked first, as the
/// control: the probes reach guest 2 and its address fails DAD. Locked:
/// none reaches it, every one is counted `dad_foreign`, and the address
/// guest 2 configures meanwhile ends up usable.
#[test]
fn a_locked_guest_cannot_deny_a_neighbour_its_address_through_dad() {
    let h = host();
    for (key, value) in [
        ("all.disable_ipv6", "0"),
        ("default.disable_ipv6", "0"),
        ("eth0.disable_ipv6", "0"),
        ("eth0.accept_dad", "1"),
        ("eth0.dad_transmits", "3"),
    ] {
        let out =
            h.g2.exec(&["sysctl", "-qw", &format!("net.ipv6.conf.{key}={value}")]);
        assert!(out.status.success(), "sysctl {key} in guest 2");
    }
    let mut kernel = Kernel::load();
    let vif1 = h.dom0.ifindex("vif1.0");
    let mut unlocked = guest1_policy();
    unlocked.mode = filter_common::Mode::Unlocked;
    kernel.set_policy(vif1, &unlocked);
    let _link = {
        let _in = h.dom0.enter();
        kernel.attach(Hook::TcFromGuest, "vif1.0")
    };

    let control = dad_race(&h, "2001:db8::20".parse().expect("a"));
    assert!(
        control.reached > 0 && control.line.contains("dadfailed"),
        "unlocked, guest 1's probes should reach guest 2 ({} of {} did) and fail its DAD: {:?}",
        control.reached,
        control.sent,
        control.line
    );

    kernel.set_policy(vif1, &guest1_policy());
    let before = kernel.counters_of(vif1);
    let locked = dad_race(&h, "2001:db8::21".parse().expect("a"));
    let after = kernel.counters_of(vif1);
    assert_eq!(locked.reached, 0, "a foreign DAD probe reached guest 2");
    assert!(
        !locked.line.is_empty() && !locked.line.contains("tentative"),
        "guest 2's address should be usable: {:?}",
        locked.line
    );
    let moved = |r: Reason| {
        after.get(Direction::FromGuest, r).packets - before.get(Direction::FromGuest, r).packets
    };
    assert_eq!(
        moved(Reason::DadForeign),
        locked.sent as u64,
        "every probe counted as dad_foreign"
    );
    assert_eq!(moved(Reason::Pass), 0, "nothing of guest 1 passed");
}
