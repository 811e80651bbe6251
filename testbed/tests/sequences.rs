//! What the datapath keeps between frames, in sequences: DHCP learning
//! (docs/policy.md section 8) and the flood limit (section 9). Each step
//! is a frame through the real programs (BPF_PROG_TEST_RUN) and through
//! the reference model with its state, asserting the verdict of both and
//! that the kernel's `LEARNED` row holds what the model's table does.
//!
//! Needs root (loads eBPF programs).

use std::net::Ipv4Addr;

use filter_common::{Direction, Reason};
use filter_user::model::{self, State};
use filter_user::policy::{MacAddr, Policy};
use filter_user::sys::clock::monotonic_s;
use testbed::frames::{BROADCAST, Frame, Mac, arp_op, dhcpv4};
use testbed::kernel::{Hook, Kernel, TEST_IFINDEX, test_run_accepts};

const GUEST: Mac = [0x00, 0x16, 0x3e, 0x00, 0x00, 0x01];
const OTHER: Mac = [0x00, 0x16, 0x3e, 0x00, 0x00, 0x99];
const ROUTER: Mac = [0x00, 0x16, 0x3e, 0x00, 0x00, 0xfe];
const SERVER: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const ROGUE: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 66);

/// Seconds on the programs' clock.
fn now() -> u64 {
    u64::from(monotonic_s().expect("clock_gettime"))
}

fn a(last: u8) -> Ipv4Addr {
    Ipv4Addr::new(192, 0, 2, last)
}

/// A locked guest with no configured address that learns, a trusted
/// server, no grace (expiry tests need not wait a minute).
fn learning() -> Policy {
    let mut p = Policy::locked(MacAddr(GUEST));
    p.options.learn_dhcp = true;
    p.options.learn_grace_s = 0;
    p.dhcp_servers = vec![SERVER.into()];
    p
}

/// A server message to the guest, broadcast as most servers send it.
fn reply(server: Ipv4Addr, sport: u16, payload: Vec<u8>) -> Vec<u8> {
    Frame::eth(ROUTER, BROADCAST)
        .ipv4(server, Ipv4Addr::BROADCAST)
        .udp(sport, 68)
        .payload(&payload)
        .build()
}

fn ack(client: Mac, yiaddr: Ipv4Addr, lease_s: u32) -> Vec<u8> {
    dhcpv4(
        2,
        client,
        Ipv4Addr::UNSPECIFIED,
        yiaddr,
        &[
            (53, &[5]),
            (54, &SERVER.octets()),
            (51, &lease_s.to_be_bytes()),
        ],
    )
}

fn nak() -> Vec<u8> {
    dhcpv4(
        2,
        GUEST,
        Ipv4Addr::UNSPECIFIED,
        Ipv4Addr::UNSPECIFIED,
        &[(53, &[6]), (54, &SERVER.octets())],
    )
}

/// A client message from the guest to the server.
fn request(payload: Vec<u8>) -> Vec<u8> {
    Frame::eth(GUEST, ROUTER)
        .ipv4(Ipv4Addr::UNSPECIFIED, Ipv4Addr::BROADCAST)
        .udp(68, 67)
        .payload(&payload)
        .build()
}

fn release(addr: Ipv4Addr) -> Vec<u8> {
    Frame::eth(GUEST, ROUTER)
        .ipv4(addr, SERVER)
        .udp(68, 67)
        .payload(&dhcpv4(
            1,
            GUEST,
            addr,
            Ipv4Addr::UNSPECIFIED,
            &[(53, &[7]), (54, &SERVER.octets())],
        ))
        .build()
}

fn decline(addr: Ipv4Addr) -> Vec<u8> {
    request(dhcpv4(
        1,
        GUEST,
        Ipv4Addr::UNSPECIFIED,
        Ipv4Addr::UNSPECIFIED,
        &[(53, &[4]), (50, &addr.octets()), (54, &SERVER.octets())],
    ))
}

fn ping_from(src: Ipv4Addr) -> Vec<u8> {
    Frame::eth(GUEST, ROUTER)
        .ipv4(src, SERVER)
        .icmp_echo_request(1, 1)
        .build()
}

fn ping_to(dst: Ipv4Addr) -> Vec<u8> {
    Frame::eth(ROUTER, GUEST)
        .ipv4(SERVER, dst)
        .icmp_echo_request(1, 1)
        .build()
}

fn garp(spa: Ipv4Addr) -> Vec<u8> {
    Frame::eth(GUEST, BROADCAST)
        .arp(arp_op::REQUEST)
        .spa(spa)
        .tpa(spa)
        .build()
}

/// Runs the steps in order on one interface, kernel and model side by
/// side, and checks after each that both learned the same addresses.
struct Run {
    kernel: Kernel,
    policy: Policy,
    state: State,
    failures: Vec<String>,
}

impl Run {
    fn new(policy: Policy) -> Run {
        let mut kernel = Kernel::load();
        kernel.set_policy(TEST_IFINDEX, &policy);
        Run {
            kernel,
            policy,
            state: State::default(),
            failures: Vec::new(),
        }
    }

    fn step(&mut self, name: &str, dir: Direction, frame: Vec<u8>, expect: Reason) {
        let modelled = model::step(Some(&self.policy), &mut self.state, now(), dir, &frame);
        if modelled != expect {
            self.failures.push(format!(
                "{name}: model says {}, expected {}",
                modelled.name(),
                expect.name()
            ));
        }
        // One hook per direction: a second run would learn twice.
        let hook = Hook::for_direction(dir)
            .iter()
            .copied()
            .find(|h| test_run_accepts(*h, &frame))
            .expect("a hook can run the frame");
        let got = self.kernel.run(hook, &frame).reason;
        if got != expect {
            self.failures.push(format!(
                "{name}: {hook:?} counted {}, expected {}",
                got.name(),
                expect.name()
            ));
        }
        let mut kernel: Vec<Ipv4Addr> = self
            .kernel
            .learned_of(TEST_IFINDEX)
            .into_iter()
            .map(|(a, _)| a)
            .collect();
        let mut modelled: Vec<Ipv4Addr> = self
            .state
            .learned
            .entries
            .iter()
            .flatten()
            .map(|(a, _)| *a)
            .collect();
        kernel.sort();
        modelled.sort();
        if kernel != modelled {
            self.failures.push(format!(
                "{name}: the kernel learned {kernel:?}, the model {modelled:?}"
            ));
        }
    }

    fn finish(self) {
        assert!(
            self.failures.is_empty(),
            "{} failures:\n{}",
            self.failures.len(),
            self.failures.join("\n")
        );
    }
}

use Direction::{FromGuest as From, ToGuest as To};

#[test]
fn a_lease_is_learned_used_and_given_back() {
    let mut r = Run::new(learning());
    r.step(
        "before the lease",
        From,
        ping_from(a(10)),
        Reason::Ipv4Spoof,
    );
    r.step(
        "unicast before the lease",
        To,
        ping_to(a(10)),
        Reason::SniffIp,
    );
    r.step(
        "trusted ACK",
        To,
        reply(SERVER, 67, ack(GUEST, a(10), 3600)),
        Reason::Pass,
    );
    r.step("from the lease", From, ping_from(a(10)), Reason::Pass);
    r.step("to the lease", To, ping_to(a(10)), Reason::Pass);
    r.step(
        "gratuitous ARP for the lease",
        From,
        garp(a(10)),
        Reason::Pass,
    );
    r.step(
        "a neighbour's address",
        From,
        ping_from(a(11)),
        Reason::Ipv4Spoof,
    );
    r.step(
        "rogue ACK",
        To,
        reply(ROGUE, 67, ack(GUEST, a(11), 3600)),
        Reason::DhcpUntrusted,
    );
    r.step(
        "not taught by the rogue",
        From,
        ping_from(a(11)),
        Reason::Ipv4Spoof,
    );
    r.step(
        "ACK from another port",
        To,
        reply(SERVER, 1234, ack(GUEST, a(12), 3600)),
        Reason::Pass,
    );
    r.step(
        "not taught from another port",
        From,
        ping_from(a(12)),
        Reason::Ipv4Spoof,
    );
    r.step(
        "ACK for another MAC",
        To,
        reply(SERVER, 67, ack(OTHER, a(13), 3600)),
        Reason::Pass,
    );
    r.step(
        "not taught for another MAC",
        From,
        ping_from(a(13)),
        Reason::Ipv4Spoof,
    );
    r.step("release", From, release(a(10)), Reason::Pass);
    r.step(
        "after the release",
        From,
        ping_from(a(10)),
        Reason::Ipv4Spoof,
    );
    r.finish();
}

#[test]
fn nak_decline_and_the_fifth_lease() {
    let mut r = Run::new(learning());
    for last in [20, 21, 22, 23] {
        r.step(
            "four leases",
            To,
            reply(SERVER, 67, ack(GUEST, a(last), 3600 + u32::from(last))),
            Reason::Pass,
        );
    }
    // The fifth takes the entry that expires first: .20's.
    r.step(
        "fifth lease",
        To,
        reply(SERVER, 67, ack(GUEST, a(24), 7200)),
        Reason::Pass,
    );
    r.step(
        "the replaced lease",
        From,
        ping_from(a(20)),
        Reason::Ipv4Spoof,
    );
    r.step("the fifth", From, ping_from(a(24)), Reason::Pass);
    r.step("decline", From, decline(a(21)), Reason::Pass);
    r.step(
        "after the decline",
        From,
        ping_from(a(21)),
        Reason::Ipv4Spoof,
    );
    r.step("still there", From, ping_from(a(22)), Reason::Pass);
    r.step("NAK", To, reply(SERVER, 67, nak()), Reason::Pass);
    r.step("after the NAK", From, ping_from(a(22)), Reason::Ipv4Spoof);
    // A message type the 16-option walk does not reach teaches nothing.
    let mut options: Vec<(u8, &[u8])> = vec![(0, &[]); 20];
    let lease = 3600u32.to_be_bytes();
    options.extend([(53, &[5][..]), (51, &lease[..])]);
    let far = dhcpv4(2, GUEST, Ipv4Addr::UNSPECIFIED, a(30), &options);
    r.step(
        "ACK past the option walk",
        To,
        reply(SERVER, 67, far),
        Reason::Pass,
    );
    r.step(
        "not taught past the walk",
        From,
        ping_from(a(30)),
        Reason::Ipv4Spoof,
    );
    r.finish();
}

#[test]
fn a_lease_that_is_not_renewed_expires() {
    let mut r = Run::new(learning());
    r.step(
        "one-second lease",
        To,
        reply(SERVER, 67, ack(GUEST, a(40), 1)),
        Reason::Pass,
    );
    // Past the lease (no grace) on both clocks, whichever second each
    // started counting in.
    std::thread::sleep(std::time::Duration::from_millis(2200));
    r.step(
        "after it ran out",
        From,
        ping_from(a(40)),
        Reason::Ipv4Spoof,
    );
    r.step(
        "to it after it ran out",
        To,
        ping_to(a(40)),
        Reason::SniffIp,
    );
    r.finish();
}

#[test]
fn without_the_option_nothing_is_learned() {
    let mut p = learning();
    p.options.learn_dhcp = false;
    let mut r = Run::new(p);
    r.step(
        "trusted ACK",
        To,
        reply(SERVER, 67, ack(GUEST, a(50), 3600)),
        Reason::Pass,
    );
    r.step("not learned", From, ping_from(a(50)), Reason::Ipv4Spoof);
    r.finish();
}

/// `flood_pps` = 3: within one second, three broadcast frames pass and the
/// fourth is `flood`; unicast is never counted, nor is a frame dropped for
/// another reason. Retried when the second changes during the sequence
/// (the window restarts on both clocks, but not at the same instant).
#[test]
fn the_flood_limit_counts_broadcast_that_passes() {
    let mut p = learning();
    p.ipv4 = vec![filter_user::policy::Cidr4::host(a(10))];
    p.options.flood_pps = 3;
    for _attempt in 0..5 {
        let mut r = Run::new(p.clone());
        // Start right after a second begins: the sequence takes
        // milliseconds.
        let before = now();
        while now() == before {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        let start = now();
        for _ in 0..3 {
            r.step(
                "broadcast within the limit",
                From,
                garp(a(10)),
                Reason::Pass,
            );
            r.step(
                "unicast is not counted",
                From,
                ping_from(a(10)),
                Reason::Pass,
            );
        }
        r.step(
            "spoofed broadcast: its own reason",
            From,
            garp(a(11)),
            Reason::ArpSpaSpoof,
        );
        r.step("one too many", From, garp(a(10)), Reason::Flood);
        r.step("unicast still passes", From, ping_from(a(10)), Reason::Pass);
        r.step(
            "to the guest is not limited",
            To,
            reply(SERVER, 67, nak()),
            Reason::Pass,
        );
        if now() == start {
            r.finish();
            return;
        }
    }
    panic!("the second changed during each of 5 attempts");
}

/// Random sequences, kernel against model: for each, a learning policy
/// with random trusted servers, configured address and flood limit, then
/// random steps drawn from what changes the state (ACKs from the trusted
/// server and a rogue with short and long leases, NAKs, RELEASEs and
/// DECLINEs of a small pool of addresses), what reads it (pings from and
/// to the pool, gratuitous ARP, broadcast that the flood limit counts) and
/// time passing (up to the next second, so one- and two-second leases
/// expire and the flood window restarts). Every step must get the same
/// verdict from both, with the same learned addresses after it. No step
/// straddles a second boundary (both would read the clock a moment
/// apart).
///
/// `VIFGUARD_SEQ_RUNS` (default 12, about 30 s: mostly the waits for the
/// next second) and `VIFGUARD_SEQ_SEED` replay a run.
#[test]
fn random_sequences_agree_with_the_model() {
    use filter_user::sys::clock::monotonic_ns;
    use testbed::r#gen::Rng;

    let runs: usize = std::env::var("VIFGUARD_SEQ_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(12);
    let seed: u64 = std::env::var("VIFGUARD_SEQ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| monotonic_ns().expect("clock") ^ u64::from(std::process::id()));
    eprintln!("random sequences: {runs} runs, VIFGUARD_SEQ_SEED={seed}");
    let mut rng = Rng::new(seed);
    let pool: Vec<Ipv4Addr> = (60..66).map(a).collect();
    let mut kernel = Kernel::load();
    let mut seen: std::collections::BTreeMap<&'static str, u32> = Default::default();
    let mut failures = Vec::new();
    for run in 0..runs {
        let mut p = learning();
        if rng.percent(30) {
            p.dhcp_servers.clear();
        }
        if rng.percent(40) {
            p.ipv4 = vec![filter_user::policy::Cidr4::host(a(10))];
        }
        p.options.flood_pps = rng.pick(&[0, 2, 2, 5]);
        // A new interface on the same kernel: a fresh slot, zeroed.
        kernel.remove_policy(TEST_IFINDEX);
        let mut r = Run {
            kernel,
            policy: p,
            state: State::default(),
            failures: Vec::new(),
        };
        r.kernel.set_policy(TEST_IFINDEX, &r.policy);
        for step in 0..30 {
            let x = rng.pick(&pool);
            let lease = rng.pick(&[1u32, 2, 3600]);
            let discover = || {
                Frame::eth(GUEST, BROADCAST)
                    .ipv4(Ipv4Addr::UNSPECIFIED, Ipv4Addr::BROADCAST)
                    .udp(68, 67)
                    .payload(&dhcpv4(
                        1,
                        GUEST,
                        Ipv4Addr::UNSPECIFIED,
                        Ipv4Addr::UNSPECIFIED,
                        &[(53, &[1])],
                    ))
                    .build()
            };
            let frames: Vec<(&str, Direction, Vec<u8>)> = match rng.below(13) {
                0 | 1 => vec![("ACK", To, reply(SERVER, 67, ack(GUEST, x, lease)))],
                2 => vec![("rogue ACK", To, reply(ROGUE, 67, ack(GUEST, x, lease)))],
                3 => vec![("NAK", To, reply(SERVER, 67, nak()))],
                4 => vec![("RELEASE", From, release(x))],
                5 => vec![("DECLINE", From, decline(x))],
                6 | 7 => vec![("ping from", From, ping_from(x))],
                8 => vec![("ping to", To, ping_to(x))],
                9 => vec![("gratuitous ARP", From, garp(x))],
                10 => vec![("configured broadcast", From, garp(a(10)))],
                // A client retrying: broadcast the flood limit counts.
                11 => (0..rng.range(2, 7))
                    .map(|_| ("DISCOVER", From, discover()))
                    .collect(),
                _ => {
                    // Time passes: to just after the next second.
                    let ns = monotonic_ns().expect("clock");
                    let left = 1_000_000_000 - ns % 1_000_000_000;
                    std::thread::sleep(std::time::Duration::from_nanos(left + 5_000_000));
                    *seen.entry("time passes").or_default() += 1;
                    continue;
                }
            };
            // Not within 30 ms of a second's end (a burst takes less).
            let ns = monotonic_ns().expect("clock");
            if ns % 1_000_000_000 > 970_000_000 {
                std::thread::sleep(std::time::Duration::from_nanos(
                    1_000_000_000 - ns % 1_000_000_000 + 1_000_000,
                ));
            }
            for (name, dir, frame) in frames {
                let mut probe = r.state.clone();
                let want = model::step(Some(&r.policy), &mut probe, now(), dir, &frame);
                *seen.entry(want.name()).or_default() += 1;
                r.step(
                    &format!("run {run} step {step}: {name} {x}"),
                    dir,
                    frame,
                    want,
                );
            }
        }
        failures.append(&mut r.failures);
        kernel = r.kernel;
        if failures.len() > 20 {
            break;
        }
    }
    eprintln!("random sequences: verdicts {seen:?}");
    assert!(
        failures.is_empty(),
        "seed {seed}: {} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
    // The draw reached what it is for.
    for needed in ["pass", "ipv4_spoof", "flood", "time passes"] {
        assert!(
            seen.contains_key(needed),
            "seed {seed}: never {needed}: {seen:?}"
        );
    }
}
