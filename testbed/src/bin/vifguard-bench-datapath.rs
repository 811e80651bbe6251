//! Mean cost per frame of each datapath hook, per frame class, next to an
//! empty program of the same hook measured in the same run (interleaved,
//! medians of several rounds). Prints a Markdown table on stdout; `cargo
//! xtask bench datapath` puts it into BENCHMARKS.md. Needs root.

use std::net::Ipv4Addr;

use filter_common::Mode;
use filter_user::policy::{Cidr4, Cidr6, MacAddr, Pair, Policy, Vrrp};
use testbed::frames::{BROADCAST, Frame, Mac, arp_op, dhcpv4_offer};
use testbed::kernel::{Hook, Kernel, TEST_IFINDEX};

const GUEST: Mac = [0x00, 0x16, 0x3e, 0x00, 0x00, 0x01];
const PEER: Mac = [0x00, 0x16, 0x3e, 0x00, 0x00, 0xfe];
/// A pair's MAC and the virtual MAC of VRRP router 7 (section 3a).
const PAIR: Mac = [0x02, 0x16, 0x3e, 0x00, 0x07, 0x09];
const VMAC: Mac = [0x00, 0x00, 0x5e, 0x00, 0x01, 0x07];
const ROUNDS: usize = 7;
const REPEAT: u32 = 200_000;

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
        "Mean ns per frame (median of {ROUNDS} rounds of {REPEAT} runs), next to an empty program of the same hook type measured in the same rounds. \"+ns\" is the datapath's own cost. Policies: interfaces with a policy entry; the test interface's addresses are either host addresses (inline in the policy value) or prefixes (LPM trie).\n"
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
            let (f, e) = (median(full), median(empty));
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
    }
}
