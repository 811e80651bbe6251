//! A policy replaced while frames are judged: every frame must be judged by
//! one whole policy, the old or the new, never by a mix of the two.
//!
//! The kernel recycles a hash map element as soon as an update replaces
//! it, so without care the next update rewrites the element a program on
//! another CPU is still reading. Three policies take turns on one
//! interface, written the way the loader writes them, while the real
//! program judges a frame that each of them drops but a mix lets through:
//! the source MAC of the first with the source address of the third.
//!
//! Needs root (loads eBPF programs). Runs for a few seconds.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use aya::programs::{TestRun, TestRunOptions};
use filter_common::{Direction, Reason, program_names};
use filter_user::datapath::{self, Interface, Maps, MapsWriter};
use filter_user::policy::{MacAddr, Policy};
use testbed::frames::Frame;
use testbed::kernel::{BpffsDir, LockDir, TEST_IFINDEX};

/// How long frames are judged while the policies change.
const DURATION: Duration = Duration::from_secs(5);
/// Frames per BPF_PROG_TEST_RUN.
const BATCH: u32 = 10_000;

fn mac(i: u8) -> [u8; 6] {
    [0x00, 0x16, 0x3e, 0x00, 0x00, i]
}

/// Locked to MAC `..:0i` and address 2001:db8::i.
fn policy(i: u8) -> Policy {
    let mut p = Policy::locked(MacAddr(mac(i)));
    p.ipv6 = vec![format!("2001:db8::{i}").parse().expect("a prefix")];
    p.validate().expect("a valid policy");
    p
}

/// From policy 1's MAC and policy 3's address: `ipv6_spoof` under policy 1,
/// `mac_spoof` under 2 and 3. The program reads the MAC first and the
/// address list last; seven extension headers and fifteen ND options to
/// walk in between keep the two reads far apart.
fn frame() -> Vec<u8> {
    let mut ip = Frame::eth(mac(1), mac(9)).ipv6(
        "2001:db8::3".parse().expect("an address"),
        "2001:db8::9".parse().expect("an address"),
    );
    for _ in 0..7 {
        ip = ip.dest_opts();
    }
    let mut ns = ip.neighbor_solicitation("2001:db8::9".parse().expect("an address"));
    for _ in 0..15 {
        // Nonce options (type 14): walked, but they name no MAC.
        ns = ns.option(14, &[1, 2, 3, 4, 5, 6]);
    }
    ns.build()
}

#[test]
fn a_replaced_policy_is_never_read_half_old_half_new() {
    let dir = BpffsDir::new("replace");
    let mut ebpf = datapath::load(64, Some(dir.path())).expect("load the object");
    let (_lock_dir, lock) = LockDir::take();
    let mut writer = MapsWriter::new(
        Maps::open_pinned(dir.path()).expect("open the pinned maps"),
        lock,
    );
    let reader = Maps::open_pinned(dir.path()).expect("open the pinned maps");
    let policies = [policy(1), policy(2), policy(3)];
    let slot = writer
        .install(TEST_IFINDEX, &policies[0], 100, Interface::New)
        .expect("install");

    let stop = Arc::new(AtomicBool::new(false));
    let writes = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut n = 0u64;
            for p in policies.iter().cycle() {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                writer
                    .install(TEST_IFINDEX, p, 100, Interface::Known)
                    .expect("replace");
                n += 1;
            }
            n
        })
    };

    let frame = frame();
    let prog = datapath::tc_program(&mut ebpf, program_names::TC_FROM_GUEST).expect("program");
    let started = Instant::now();
    let mut judged = 0u64;
    let mut passed = 0;
    while passed == 0 && started.elapsed() < DURATION {
        let opts = TestRunOptions {
            data_in: Some(&frame),
            repeat: BATCH,
            ..TestRunOptions::default()
        };
        prog.test_run(opts).expect("BPF_PROG_TEST_RUN");
        judged += u64::from(BATCH);
        passed = reader
            .counters(slot)
            .expect("read the counters")
            .get(Direction::FromGuest, Reason::Pass)
            .packets;
    }
    stop.store(true, Ordering::Relaxed);
    let writes = writes.join().expect("the writer");
    println!("{judged} frames judged while {writes} policy writes ran, {passed} passed");

    assert!(writes > 10, "only {writes} policy writes happened");
    assert_eq!(
        passed, 0,
        "{passed} of {judged} frames passed while {writes} policy writes ran: \
         only a policy read half from one write and half from another lets \
         this frame through"
    );
}
