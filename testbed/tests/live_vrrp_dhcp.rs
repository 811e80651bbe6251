//! Extra sources and trusted DHCP servers (docs/policy.md 3a and section 4
//! step 5) on the demo host, with the real programs guests run: two locked
//! guests fail a VRRP router over with keepalived (`use_vmac`), a third
//! tries to take its address; a locked guest's busybox udhcpc races a
//! rogue DHCP server in an unlocked guest. Checked: what each program
//! achieves, and that the counters of the vifs account for every frame
//! that mattered.
//!
//! Needs root, keepalived, busybox and dnsmasq (`cargo xtask bootstrap`),
//! and the vifguard binary (built with filter-user's tests). Everything is
//! removed when a test ends, also on failure.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use filter_common::{Direction, Reason};
use filter_user::policy::MacAddr;
use testbed::demo::{DemoHost, Guest, MasterFailure, VIP4, VRID, find_vifguard, is_arp_claim};
use testbed::frames::Mac;
use testbed::netns::{NetNs, RawSocket};

/// One host at a time: the failover is timed, and the machine may be small.
static SERIAL: Mutex<()> = Mutex::new(());

const VMAC4: Mac = [0x00, 0x00, 0x5e, 0x00, 0x01, VRID];
const VMAC6: Mac = [0x00, 0x00, 0x5e, 0x00, 0x02, VRID];

fn host() -> DemoHost {
    let vifguard = find_vifguard().expect("the vifguard binary");
    DemoHost::build(&vifguard, &|step| eprintln!("host: {step}")).expect("set up the demo host")
}

fn count(counts: &[(Reason, u64)], reason: Reason) -> u64 {
    counts
        .iter()
        .find(|(r, _)| *r == reason)
        .map_or(0, |(_, n)| *n)
}

/// Counters that moved between `before` and `after`, with how much.
fn moved(before: &[(Reason, u64)], after: &[(Reason, u64)]) -> Vec<(Reason, u64)> {
    after
        .iter()
        .map(|(r, n)| (*r, n - count(before, *r)))
        .filter(|(_, d)| *d > 0)
        .collect()
}

fn names(v: &[(Reason, u64)]) -> Vec<String> {
    v.iter().map(|(r, n)| format!("{}={n}", r.name())).collect()
}

/// Every frame the guest behind dom0's `ifname` sends, as dom0 receives it
/// (a packet socket sees a frame before the tc ingress program judges it),
/// until `stop`.
fn capture(sock: &RawSocket, stop: &AtomicBool) -> Vec<Vec<u8>> {
    let mut frames = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        frames.extend(sock.drain(Duration::from_millis(50)));
    }
    frames.extend(sock.drain(Duration::from_millis(50)));
    frames
}

fn from_mac(frames: &[Vec<u8>], macs: &[Mac]) -> usize {
    frames
        .iter()
        .filter(|f| macs.iter().any(|m| f.get(6..12) == Some(&m[..])))
        .count()
}

/// An IGMP message from `g`'s own MAC whose source is not `g`'s address.
fn is_foreign_igmp(f: &[u8], g: &Guest) -> bool {
    f.get(6..12) == Some(&g.mac[..])
        && f.get(12..14) == Some(&[0x08, 0x00][..])
        && f.get(23) == Some(&2)
        && f.get(26..30) != Some(&g.ipv4.octets()[..])
}

fn vif_socket(dom0: &NetNs, g: &Guest) -> RawSocket {
    RawSocket::open(dom0, &g.ifname)
}

#[test]
fn vrrp_failover_between_locked_guests_passes_the_virtual_macs() {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let host = host();
    let routers = [host.guest("guest6"), host.guest("guest7")];
    let counts = |g: &Guest, d| host.counts(g, d).expect("counters");
    // The capture starts before the counters are first read and ends
    // after they are read again: every frame counted is in it.
    let socks = routers.map(|g| vif_socket(&host.dom0, g));
    let before: Vec<_> = routers
        .iter()
        .map(|g| {
            (
                counts(g, Direction::FromGuest),
                counts(g, Direction::ToGuest),
            )
        })
        .collect();
    let stop = AtomicBool::new(false);
    let (frames, after, took) = std::thread::scope(|s| {
        let caps = socks
            .each_ref()
            .map(|sock| s.spawn(|| capture(sock, &stop)));
        let result = (|| {
            let mut pair = host.start_vrrp()?;
            let stopped = host.vrrp_failover(&mut pair, MasterFailure::Stop)?;
            // guest6 comes back and takes the router over again (it has
            // the higher priority), then its NIC fails.
            host.vrrp_restart_master(&mut pair)?;
            let link_down = host.vrrp_failover(&mut pair, MasterFailure::LinkDown)?;
            // A few advertisements from the new master.
            std::thread::sleep(Duration::from_millis(300));
            Ok::<_, String>([stopped, link_down])
        })();
        // Both keepalived have stopped. The kernel repeats IGMP and MLD
        // state-change reports for up to a second after a group change:
        // let them pass before the counters are read, and keep capturing
        // until they have been, so that the capture holds every frame
        // counted.
        std::thread::sleep(Duration::from_millis(1500));
        let after: Vec<_> = routers
            .iter()
            .map(|g| {
                (
                    counts(g, Direction::FromGuest),
                    counts(g, Direction::ToGuest),
                )
            })
            .collect();
        stop.store(true, Ordering::Relaxed);
        let frames = caps.map(|c| c.join().expect("capture thread"));
        (frames, after, result)
    });
    let [stopped, link_down] = took.unwrap_or_else(|e| panic!("VRRP failover: {e}"));
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    eprintln!(
        "failover: {:.0} ms after keepalived stopped, {:.0} ms after the NIC went down",
        ms(stopped),
        ms(link_down)
    );

    for (i, g) in routers.iter().enumerate() {
        let from = moved(&before[i].0, &after[i].0);
        let to = moved(&before[i].1, &after[i].1);
        let vmac_frames = from_mac(&frames[i], &[VMAC4, VMAC6]);
        let sent = frames[i].len() as u64;
        eprintln!(
            "{} ({}): sent {sent} frames, {vmac_frames} from {} or {}; counted from the guest {:?}, to it {:?}",
            g.name,
            g.ifname,
            MacAddr(VMAC4),
            MacAddr(VMAC6),
            names(&from),
            names(&to)
        );
        // Both were master once (guest6 first, guest7 after the failover),
        // so both sent from the virtual MACs: advertisements, gratuitous
        // ARP, unsolicited NA, echo replies.
        assert!(
            vmac_frames > 0,
            "{} sent nothing from the virtual MACs",
            g.name
        );
        // Nothing a VRRP router sends is dropped but IGMP reports from
        // its own MAC with a source it does not own: when keepalived joins
        // 224.0.0.18 and adds or removes the virtual address, the kernel
        // reports from 0.0.0.0 or from the virtual address (taken from the
        // macvlan) through eth0. ipv4_spoof is right for them (section 3
        // knows no IGMP bootstrap, and the virtual address belongs to the
        // virtual MAC) and harmless: 224.0.0.0/24 is flooded without
        // reports. So every frame from the virtual MACs passed; pass
        // counted the other frames seen, or fewer (the capture began a
        // little before the counters were first read).
        let igmp = frames[i].iter().filter(|f| is_foreign_igmp(f, g)).count() as u64;
        let drops: Vec<_> = from
            .iter()
            .filter(|(r, _)| *r != Reason::Pass && *r != Reason::Ipv4Spoof)
            .collect();
        assert!(drops.is_empty(), "{}: drops {drops:?}", g.name);
        assert_eq!(
            count(&from, Reason::Ipv4Spoof),
            igmp,
            "{}: ipv4_spoof besides {igmp} IGMP reports from foreign sources",
            g.name
        );
        assert!(
            count(&from, Reason::Pass) > 0 && count(&from, Reason::Pass) <= sent - igmp,
            "{}: pass {} for {} frames sent",
            g.name,
            count(&from, Reason::Pass),
            sent - igmp
        );
        // And no unicast for the virtual MACs or addresses was kept from
        // it. (sniff_arp may move: ARP requests the other guests broadcast
        // for addresses not its own are withheld by design.)
        for r in [Reason::SniffMac, Reason::SniffIp] {
            assert_eq!(count(&to, r), 0, "{}: {} to the guest", g.name, r.name());
        }
    }
}

#[test]
fn vrrp_address_claims_from_a_guest_without_the_entry_are_dropped() {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let host = host();
    let g1 = host.guest("guest1");
    let counts = || host.counts(g1, Direction::FromGuest).expect("counters");
    let pair = host.start_vrrp().expect("VRRP router in guest6 and guest7");
    let sock = vif_socket(&host.dom0, g1);

    // Gratuitous ARP for the virtual address, from guest1's own MAC.
    let before = counts();
    let reached = host.claim_vip(g1).expect("arping");
    let after = counts();
    let frames = sock.drain(Duration::from_millis(100));
    let claims = frames
        .iter()
        .filter(|f| is_arp_claim(f, g1.mac, VIP4))
        .count() as u64;
    let got = moved(&before, &after);
    eprintln!("gratuitous ARP: {claims} sent, counted {:?}", names(&got));
    assert!(!reached, "guest1's gratuitous ARP reached dom0");
    assert!(claims > 0, "arping sent no gratuitous ARP");
    assert_eq!(count(&got, Reason::ArpSpaSpoof), claims, "{got:?}");

    // keepalived for the same router with the highest priority: it makes
    // itself master and sends from the virtual MACs.
    let before = counts();
    let took = host.rogue_vrrp_router(g1, &pair).expect("rogue keepalived");
    let after = counts();
    let frames = sock.drain(Duration::from_millis(100));
    let vmac_frames = from_mac(&frames, &[VMAC4, VMAC6]) as u64;
    let got = moved(&before, &after);
    eprintln!(
        "rogue VRRP router: {vmac_frames} frames from the virtual MACs, counted {:?}",
        names(&got)
    );
    assert!(!took, "the rogue router in guest1 took the virtual MAC");
    assert!(vmac_frames > 0, "the rogue keepalived sent nothing");
    assert_eq!(count(&got, Reason::MacSpoof), vmac_frames, "{got:?}");

    // The real router never noticed.
    assert!(pair.routers[0].is_master(), "guest6 lost mastership");
    assert_eq!(
        host.fdb_port(VMAC4).as_deref(),
        Some("vif6.0"),
        "the bridge sends the virtual MAC elsewhere"
    );
    assert!(host.dom0_ping(VIP4.into(), Duration::from_secs(1)));
}

#[test]
fn dhcp_servers_only_the_listed_server_gives_a_lease() {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let host = host();
    // guest2's policy lists dom0's dnsmasq (vifguard/dhcp-servers); the
    // rogue server is in guest5, whose vif is unlocked.
    let (g2, g5) = (host.guest("guest2"), host.guest("guest5"));
    let before = host.counts(g2, Direction::ToGuest).expect("counters");
    let race = host.dhcp_race(g2, g5);
    let after = host.counts(g2, Direction::ToGuest).expect("counters");
    let got = moved(&before, &after);
    eprintln!("DHCP race: {race:?}, counted to guest2 {:?}", names(&got));
    assert_eq!(race.lease, Some(host.dnsmasq_lease(g2)), "{race:?}");
    assert!(race.rogue_replies > 0, "the rogue server never answered");
    assert_eq!(race.rogue_seen, 0, "rogue offers reached guest2");
    assert_eq!(
        count(&got, Reason::DhcpUntrusted),
        race.rogue_replies as u64,
        "{got:?}"
    );
}
