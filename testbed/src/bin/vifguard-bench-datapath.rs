//! Mean cost per frame of each datapath hook, per frame class, next to an
//! empty program of the same hook measured in the same run (interleaved,
//! medians of several rounds). Prints a Markdown table on stdout; `cargo
//! xtask bench datapath` puts it into BENCHMARKS.md. Needs root.

use std::net::Ipv4Addr;

use filter_common::Mode;
use filter_user::policy::{Cidr4, Cidr6, MacAddr, Pair, Policy, Vrrp};
use filter_user::sys::clock::monotonic_s;
use testbed::frames::{BROADCAST, Frame, Mac, arp_op, dhcpv4, dhcpv4_offer};
use testbed::kernel::{Hook, Kernel, TEST_IFINDEX};

const GUEST: Mac = [0x00, 0x16, 0x3e, 0x00, 0x00, 0x01];
const PEER: Mac = [0x00, 0x16, 0x3e, 0x00, 0x00, 0xfe];
/// A pair's MAC and the virtual MAC of VRRP router 7 (section 3a).
const PAIR: Mac = [0x02, 0x16, 0x3e, 0x00, 0x07, 0x09];
const VMAC: Mac = [0x00, 0x00, 0x5e, 0x00, 0x01, 0x07];
const ROUNDS: usize = 7;
const REPEAT: u32 = 200_000;
/// The highest `flood_pps` (docs/policy.md section 6): the rows under the
/// limit pace their runs to stay within it each second.
const MAX_FLOOD_PPS: u32 = 1_000_000;
/// The trusted DHCP server and the address it leases in the learning rows.
const SERVER: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 254);
const LEASED: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 20);

/// How the test interface's allowed addresses are written.
#[derive(Clone, Copy)]
enum Addresses {
    Hosts,
    Prefixes,
}

fn policy_for(mac: Mac, i: u32, addresses: Addresses) -> Policy {
    let mut p = Policy::locked(MacAddr(mac));
    p.mode = Mode::Locked;
    let [_, _, hi, lo] = i.to_be_bytes();
    match addresses {
        Addresses::Hosts => {
            p.ipv4 = vec![Cidr4::host(Ipv4Addr::new(192, 0, 2, 10))];
            p.ipv6 = vec![Cidr6::host(
                format!("2001:db8:{hi:x}{lo:02x}::10")
                    .parse()
                    .expect("address"),
            )];
        }
        Addresses::Prefixes => {
            p.ipv4 = vec![Cidr4::new(Ipv4Addr::new(192, 0, 2, 0), 24).expect("prefix")];
            p.ipv6 = vec![
                Cidr6::new(
                    format!("2001:db8:{hi:x}{lo:02x}::")
                        .parse()
                        .expect("address"),
                    64,
                )
                .expect("prefix"),
            ];
        }
    }
    p
}

/// The host-address policy with a pair, a VRRP router and a trusted DHCP
/// server: what the section 3a and 4 rows run against.
fn with_pairs() -> Policy {
    let mut p = policy_for(GUEST, 1, Addresses::Hosts);
    p.pairs = vec![Pair {
        mac: MacAddr(PAIR),
        ipv4: vec![Cidr4::host(Ipv4Addr::new(192, 0, 2, 9))],
        ipv6: Vec::new(),
    }];
    p.vrrp = vec![Vrrp {
        vrid: 7,
        ipv4: vec![Cidr4::host(Ipv4Addr::new(192, 0, 2, 100))],
        ipv6: Vec::new(),
    }];
    p.dhcp_servers = vec![Ipv4Addr::new(192, 0, 2, 254).into()];
    p
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let frames: Vec<(&str, Hook, Vec<u8>)> = vec![
        (
            "IPv4 UDP, allowed source",
            Hook::TcFromGuest,
            Frame::eth(GUEST, PEER)
                .ipv4(
                    "192.0.2.10".parse().expect("a"),
                    "203.0.113.5".parse().expect("a"),
                )
                .udp(40000, 53)
                .payload(&[0; 18])
                .build(),
        ),
        (
            "IPv6 UDP, allowed source",
            Hook::TcFromGuest,
            Frame::eth(GUEST, PEER)
                .ipv6(
                    "2001:db8:1::10".parse().expect("a"),
                    "2001:db8::1".parse().expect("a"),
                )
                .udp(40000, 53)
                .build(),
        ),
        (
            "ARP request, allowed sender",
            Hook::TcFromGuest,
            Frame::eth(GUEST, [0xff; 6])
                .arp(arp_op::REQUEST)
                .spa("192.0.2.10".parse().expect("a"))
                .tpa("192.0.2.1".parse().expect("a"))
                .build(),
        ),
        (
            "IPv4 UDP, spoofed source (drop)",
            Hook::TcFromGuest,
            Frame::eth(GUEST, PEER)
                .ipv4(
                    "198.51.100.66".parse().expect("a"),
                    "203.0.113.5".parse().expect("a"),
                )
                .udp(40000, 53)
                .payload(&[0; 18])
                .build(),
        ),
        (
            "IPv6 UDP, spoofed source (drop)",
            Hook::TcFromGuest,
            Frame::eth(GUEST, PEER)
                .ipv6(
                    "2001:db8:ffff::66".parse().expect("a"),
                    "2001:db8::1".parse().expect("a"),
                )
                .udp(40000, 53)
                .build(),
        ),
        (
            "IPv4 to the guest, its address",
            Hook::TcToGuest,
            Frame::eth(PEER, GUEST)
                .ipv4(
                    "203.0.113.5".parse().expect("a"),
                    "192.0.2.10".parse().expect("a"),
                )
                .udp(53, 40000)
                .payload(&[0; 18])
                .build(),
        ),
        (
            "unicast for another MAC (sniff_mac drop)",
            Hook::TcToGuest,
            Frame::eth(PEER, [0x00, 0x16, 0x3e, 0, 0, 0x77])
                .ipv4(
                    "203.0.113.5".parse().expect("a"),
                    "192.0.2.77".parse().expect("a"),
                )
                .udp(53, 40000)
                .payload(&[0; 18])
                .build(),
        ),
    ];

    println!(
        "Mean ns per frame (median of {ROUNDS} rounds of {REPEAT} runs), next to an empty program of the same hook type measured in the same rounds. \"+ns\" is the datapath's own cost. Policies: interfaces with a policy entry; the test interface's addresses are either host addresses (inline in the policy value) or prefixes (LPM trie). The last rows: broadcast under `flood_pps` (runs paced to stay under the limit each second), with no limit, and over it (flood_pps 1: every frame after the first each second is a `flood` drop); a source learned from a DHCPACK the to-guest program saw, next to the configured one.\n"
    );
    println!("| hook | frame | policies | addresses | ns/frame | empty | +ns |");
    println!("|---|---|---|---|---|---|---|");
    for (n_policies, addresses) in [
        (1u32, Addresses::Hosts),
        (1000, Addresses::Hosts),
        (1, Addresses::Prefixes),
        (1000, Addresses::Prefixes),
    ] {
        let mut kernel = Kernel::load_sized(1024);
        for i in 2..=n_policies {
            // Other vifs: distinct MACs, same kind of address lists, each
            // with its own trie entries when prefixes are used.
            let [_, _, hi, lo] = i.to_be_bytes();
            kernel.set_policy(
                i + 10,
                &policy_for([0x00, 0x16, 0x3e, 1, hi, lo], i, addresses),
            );
        }
        kernel.set_policy(TEST_IFINDEX, &policy_for(GUEST, 1, addresses));
        let addr_name = match addresses {
            Addresses::Hosts => "hosts",
            Addresses::Prefixes => "prefixes",
        };
        measure(&mut kernel, &frames, n_policies, addr_name);
    }

    // Sections 3a and 4: frames from a pair's and a virtual MAC (one
    // PAIRS lookup), the vif's own frame under that policy (none), and
    // DHCP offers to the guest checked against its trusted server.
    let mut kernel = Kernel::load_sized(1024);
    kernel.set_policy(TEST_IFINDEX, &with_pairs());
    let offer = |server: &str| {
        Frame::eth(PEER, BROADCAST)
            .ipv4(server.parse().expect("a"), Ipv4Addr::BROADCAST)
            .udp(67, 68)
            .payload(&dhcpv4_offer(
                GUEST,
                1,
                Ipv4Addr::new(192, 0, 2, 10),
                server.parse().expect("a"),
            ))
            .build()
    };
    let pair_frames: Vec<(&str, Hook, Vec<u8>)> = vec![
        (frames[0].0, Hook::TcFromGuest, frames[0].2.clone()),
        (
            "IPv4 UDP from a pair's MAC, its source",
            Hook::TcFromGuest,
            Frame::eth(PAIR, PEER)
                .ipv4(
                    "192.0.2.9".parse().expect("a"),
                    "203.0.113.5".parse().expect("a"),
                )
                .udp(40000, 53)
                .payload(&[0; 18])
                .build(),
        ),
        (
            "VRRP advertisement from the virtual MAC",
            Hook::TcFromGuest,
            Frame::eth(VMAC, [0x01, 0x00, 0x5e, 0x00, 0x00, 0x12])
                .ipv4(
                    "192.0.2.10".parse().expect("a"),
                    "224.0.0.18".parse().expect("a"),
                )
                .protocol(112)
                .payload(&[0x31, 7, 100, 1, 0, 100, 0, 0, 192, 0, 2, 100])
                .build(),
        ),
        (
            "DHCP offer to the guest, trusted server",
            Hook::TcToGuest,
            offer("192.0.2.254"),
        ),
        (
            "DHCP offer to the guest, rogue (dhcp_untrusted drop)",
            Hook::TcToGuest,
            offer("192.0.2.66"),
        ),
    ];
    measure(
        &mut kernel,
        &pair_frames,
        1,
        "hosts, a pair, VRRP, a DHCP server",
    );

    flood_rows(&frames[2].2, &frames[0].2);
    learned_rows(&frames[0].2);
}

/// Section 9: what the flood limit costs a broadcast frame that passes
/// every other check (one array lookup and an atomic add), next to the
/// same frame with no limit; the drop path once the second's budget is
/// spent; and unicast under a limit, which pays nothing.
fn flood_rows(broadcast_arp: &[u8], unicast: &[u8]) {
    let with_limit = |pps: u32| {
        let mut p = policy_for(GUEST, 1, Addresses::Hosts);
        p.options.flood_pps = pps;
        let mut kernel = Kernel::load_sized(1024);
        kernel.set_policy(TEST_IFINDEX, &p);
        kernel
    };
    let label = |pps: u32| format!("hosts, flood_pps {pps}");
    let mut kernel = with_limit(MAX_FLOOD_PPS);
    measure_checked(
        &mut kernel,
        &[
            (
                "ARP request (broadcast), under the limit",
                broadcast_arp,
                true,
            ),
            ("IPv4 UDP (unicast), allowed source", unicast, true),
        ],
        &label(MAX_FLOOD_PPS),
        Some(u64::from(MAX_FLOOD_PPS)),
    );
    let mut kernel = with_limit(0);
    measure_checked(
        &mut kernel,
        &[("ARP request (broadcast), no limit", broadcast_arp, true)],
        &label(0),
        None,
    );
    // One frame a second passes: every run after the first is all drops.
    let mut kernel = with_limit(1);
    measure_checked(
        &mut kernel,
        &[(
            "ARP request (broadcast), over the limit (flood drop)",
            broadcast_arp,
            false,
        )],
        &label(1),
        None,
    );
}

/// Section 8: a frame from an address learned from a DHCPACK (the
/// learned-address lookup is paid when the source is not in the configured
/// list), next to the configured address under the same policy.
fn learned_rows(configured: &[u8]) {
    let mut p = policy_for(GUEST, 1, Addresses::Hosts);
    p.options.learn_dhcp = true;
    p.dhcp_servers = vec![SERVER.into()];
    let mut kernel = Kernel::load_sized(1024);
    kernel.set_policy(TEST_IFINDEX, &p);
    // The trusted server's ACK through the to-guest program, as on a host:
    // the kernel learns the lease itself.
    let ack = Frame::eth(PEER, BROADCAST)
        .ipv4(SERVER, Ipv4Addr::BROADCAST)
        .udp(67, 68)
        .payload(&dhcpv4(
            2,
            GUEST,
            Ipv4Addr::UNSPECIFIED,
            LEASED,
            &[
                (53, &[5]),
                (54, &SERVER.octets()),
                (51, &3600u32.to_be_bytes()),
            ],
        ))
        .build();
    let (passed, _) = kernel.run_raw(Hook::TcToGuest, &ack, 1);
    let learned = kernel.learned_of(TEST_IFINDEX);
    assert!(
        passed && learned.iter().any(|(a, _)| *a == LEASED),
        "the DHCPACK taught nothing: passed {passed}, learned {learned:?}"
    );
    let from_leased = Frame::eth(GUEST, PEER)
        .ipv4(LEASED, "203.0.113.5".parse().expect("a"))
        .udp(40000, 53)
        .payload(&[0; 18])
        .build();
    measure_checked(
        &mut kernel,
        &[
            ("IPv4 UDP, configured source", configured, true),
            ("IPv4 UDP, learned source", &from_leased, true),
        ],
        "hosts, learn_dhcp on, one learned",
        None,
    );
}

/// Frames sent through the from-guest programs in the current monotonic
/// second, as the flood window counts them, so that runs under a limit
/// stay under it.
struct Budget {
    per_second: u64,
    second: u32,
    spent: u64,
}

impl Budget {
    fn second() -> u32 {
        monotonic_s().expect("clock_gettime")
    }

    /// Waits, if need be, for a second with room for `n` more frames.
    fn reserve(&mut self, n: u64) {
        let now = Budget::second();
        if now != self.second {
            self.second = now;
            self.spent = 0;
        }
        while self.spent + n > self.per_second {
            std::thread::sleep(std::time::Duration::from_millis(5));
            let now = Budget::second();
            if now != self.second {
                self.second = now;
                self.spent = 0;
            }
        }
    }

    /// Books `n` frames just run: to the second the run ended in (all of
    /// them, should it have begun in the one before).
    fn spend(&mut self, n: u64) {
        let now = Budget::second();
        if now != self.second {
            self.second = now;
            self.spent = n;
        } else {
            self.spent += n;
        }
    }
}

/// As [`measure`], for from-guest frames whose verdict is known: checks
/// it after every run (a row under the limit that measured drops would
/// mislead), and with `budget` keeps the runs of each second within it.
fn measure_checked(
    kernel: &mut Kernel,
    frames: &[(&str, &[u8], bool)],
    policy_name: &str,
    budget: Option<u64>,
) {
    let mut budget = budget.map(|per_second| Budget {
        per_second,
        second: Budget::second(),
        spent: 0,
    });
    for (name, frame, expect_pass) in frames {
        for hook in [Hook::TcFromGuest, Hook::XdpFromGuest] {
            let mut full = Vec::new();
            let mut empty = Vec::new();
            for _ in 0..ROUNDS {
                if let Some(b) = budget.as_mut() {
                    b.reserve(u64::from(REPEAT));
                }
                let (passed, ns) = kernel.run_raw(hook, frame, REPEAT);
                if let Some(b) = budget.as_mut() {
                    b.spend(u64::from(REPEAT));
                }
                assert_eq!(
                    passed, *expect_pass,
                    "{name} on {hook:?}: the verdict is not the one measured"
                );
                full.push(ns);
                empty.push(kernel.run_empty(hook, frame, REPEAT));
            }
            print_row(hook, name, 1, policy_name, median(full), median(empty));
        }
    }
}

/// Times each frame on its hooks against the empty program, interleaved,
/// and prints one table row per hook.
fn measure(
    kernel: &mut Kernel,
    frames: &[(&str, Hook, Vec<u8>)],
    n_policies: u32,
    addr_name: &str,
) {
    for (name, tc_hook, frame) in frames {
        let hooks: &[Hook] = if *tc_hook == Hook::TcFromGuest {
            &[Hook::TcFromGuest, Hook::XdpFromGuest]
        } else {
            &[Hook::TcToGuest]
        };
        for hook in hooks {
            let mut full = Vec::new();
            let mut empty = Vec::new();
            for _ in 0..ROUNDS {
                full.push(kernel.run_raw(*hook, frame, REPEAT).1);
                empty.push(kernel.run_empty(*hook, frame, REPEAT));
            }
            print_row(
                *hook,
                name,
                n_policies,
                addr_name,
                median(full),
                median(empty),
            );
        }
    }
}

fn print_row(hook: Hook, name: &str, n_policies: u32, addr_name: &str, f: f64, e: f64) {
    let hook_name = match hook {
        Hook::TcFromGuest => "TC from guest",
        Hook::XdpFromGuest => "XDP from guest",
        Hook::TcToGuest => "TC to guest",
    };
    println!(
        "| {hook_name} | {name} | {n_policies} | {addr_name} | {f:.1} | {e:.1} | {:.1} |",
        f - e
    );
}
