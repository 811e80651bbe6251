//! The real programs in the kernel, driven through BPF_PROG_TEST_RUN: load
//! the object (private, unpinned maps), write policies, run a frame through
//! a hook, and read back which counter moved.

use aya::Ebpf;
use aya::programs::{SchedClassifier, TestRun, TestRunOptions, Xdp};
use filter_common::{Counter, Direction, Reason, program_names as progs};
use filter_user::datapath::{self, Counters, Maps};
use filter_user::policy::Policy;

/// BPF_PROG_TEST_RUN runs TC and XDP programs on the loopback device of the
/// caller's network namespace, whose ifindex is 1.
pub const TEST_IFINDEX: u32 = 1;

/// Where a program is attached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hook {
    /// TC ingress of the vif: frames from the guest.
    TcFromGuest,
    /// XDP on the vif: frames from the guest.
    XdpFromGuest,
    /// TC egress of the vif: frames to the guest.
    TcToGuest,
}

impl Hook {
    pub const fn direction(self) -> Direction {
        match self {
            Hook::TcFromGuest | Hook::XdpFromGuest => Direction::FromGuest,
            Hook::TcToGuest => Direction::ToGuest,
        }
    }

    /// The hooks that see frames going in `dir`.
    pub fn for_direction(dir: Direction) -> &'static [Hook] {
        match dir {
            Direction::FromGuest => &[Hook::TcFromGuest, Hook::XdpFromGuest],
            Direction::ToGuest => &[Hook::TcToGuest],
        }
    }
}

/// Whether BPF_PROG_TEST_RUN can carry `frame` to `hook`. The kernel's
/// test harness refuses (EINVAL) frames under 14 bytes on every hook, and
/// on TC hooks an IPv4 frame shorter than its minimal header (34 bytes) or
/// an IPv6 frame shorter than 54 bytes. The XDP hook runs the same parser
/// on those; the live tests send them through real veths.
pub fn test_run_accepts(hook: Hook, frame: &[u8]) -> bool {
    if frame.len() < 14 {
        return false;
    }
    match (hook, u16::from_be_bytes([frame[12], frame[13]])) {
        (Hook::XdpFromGuest, _) => true,
        (_, 0x0800) => frame.len() >= 34,
        (_, 0x86dd) => frame.len() >= 54,
        _ => true,
    }
}

/// TC_ACT_UNSPEC as the u32 the kernel returns.
const TC_PASS: u32 = u32::MAX;
const TC_SHOT: u32 = 2;
const XDP_DROP: u32 = 1;
const XDP_PASS: u32 = 2;

/// What one run did: the program's verdict and the counter that moved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Outcome {
    pub passed: bool,
    pub reason: Reason,
    pub counted: Counter,
}

pub struct Kernel {
    ebpf: Ebpf,
    pub maps: Maps,
}

impl Kernel {
    /// Loads a private copy of the datapath (nothing pinned, nothing
    /// attached).
    pub fn load() -> Kernel {
        Kernel::load_sized(64)
    }

    /// Like [`Kernel::load`], with room for `max_interfaces` policies.
    pub fn load_sized(max_interfaces: u32) -> Kernel {
        let mut ebpf =
            datapath::load(max_interfaces, None).expect("load the eBPF object into the kernel");
        let maps = Maps::take_from(&mut ebpf).expect("open the object's maps");
        Kernel { ebpf, maps }
    }

    pub fn set_policy(&mut self, ifindex: u32, policy: &Policy) -> u32 {
        policy.validate().expect("test policies are valid");
        self.maps
            .install(ifindex, policy, 1000)
            .expect("write the policy into the maps")
    }

    pub fn remove_policy(&mut self, ifindex: u32) {
        self.maps.remove(ifindex).expect("remove the policy");
    }

    /// Attaches the program of `hook` to `ifname` in the calling thread's
    /// network namespace; detached when the returned link drops.
    pub fn attach(&mut self, hook: Hook, ifname: &str) -> aya::programs::links::FdLink {
        use filter_user::hooks::tcx as attach;
        match hook {
            Hook::XdpFromGuest => {
                let prog = datapath::xdp_program(&mut self.ebpf, progs::XDP_FROM_GUEST)
                    .expect("XDP program");
                attach::attach_xdp(prog, ifname, aya::programs::XdpMode::default())
            }
            Hook::TcFromGuest | Hook::TcToGuest => {
                let name = if hook == Hook::TcFromGuest {
                    progs::TC_FROM_GUEST
                } else {
                    progs::TC_TO_GUEST
                };
                let prog = datapath::tc_program(&mut self.ebpf, name).expect("TC program");
                attach::attach_tc(prog, ifname, hook.direction())
            }
        }
        .expect("attach the program")
    }

    /// The counters of the interface with policy slot `slot`.
    pub fn counters_of(&self, ifindex: u32) -> Counters {
        let slot = self
            .maps
            .policy
            .get(&ifindex, 0)
            .expect("policy entry")
            .slot;
        self.maps.counters(slot).expect("read counters")
    }

    fn tc(&self, name: &str) -> &SchedClassifier {
        self.ebpf
            .program(name)
            .and_then(|p| p.try_into().ok())
            .expect("the object has the TC program")
    }

    fn xdp(&self, name: &str) -> &Xdp {
        self.ebpf
            .program(name)
            .and_then(|p| p.try_into().ok())
            .expect("the object has the XDP program")
    }

    /// Runs `frame` through `hook` `repeat` times; returns the program's
    /// verdict and the kernel's mean run time in nanoseconds.
    pub fn run_raw(&self, hook: Hook, frame: &[u8], repeat: u32) -> (bool, f64) {
        let opts = TestRunOptions {
            data_in: Some(frame),
            repeat,
            ..TestRunOptions::default()
        };
        let r = match hook {
            Hook::TcFromGuest => self.tc(progs::TC_FROM_GUEST).test_run(opts),
            Hook::TcToGuest => self.tc(progs::TC_TO_GUEST).test_run(opts),
            Hook::XdpFromGuest => self.xdp(progs::XDP_FROM_GUEST).test_run(opts),
        }
        .expect("BPF_PROG_TEST_RUN");
        let passed = match (hook, r.return_value) {
            (Hook::XdpFromGuest, XDP_PASS) => true,
            (Hook::XdpFromGuest, XDP_DROP) => false,
            (Hook::TcFromGuest | Hook::TcToGuest, TC_PASS) => true,
            (Hook::TcFromGuest | Hook::TcToGuest, TC_SHOT) => false,
            (h, v) => panic!("{h:?} returned {v}, which is neither pass nor drop"),
        };
        (passed, r.duration.as_nanos() as f64)
    }

    /// Runs an empty program of the same hook type, for benchmarks.
    pub fn run_empty(&self, hook: Hook, frame: &[u8], repeat: u32) -> f64 {
        let opts = TestRunOptions {
            data_in: Some(frame),
            repeat,
            ..TestRunOptions::default()
        };
        let r = match hook {
            Hook::XdpFromGuest => self.xdp(progs::XDP_EMPTY).test_run(opts),
            _ => self.tc(progs::TC_EMPTY).test_run(opts),
        }
        .expect("BPF_PROG_TEST_RUN");
        r.duration.as_nanos() as f64
    }

    fn snapshot(&self, slot: Option<u32>) -> Counters {
        match slot {
            Some(s) => self.maps.counters(s).expect("read counters"),
            None => Counters::default(),
        }
    }

    /// Runs `frame` once through `hook` on interface [`TEST_IFINDEX`] and
    /// finds the one counter that moved. Panics unless exactly one counter
    /// of this interface moved, by one packet and the frame's length in
    /// bytes, in the hook's direction.
    pub fn run(&self, hook: Hook, frame: &[u8]) -> Outcome {
        let slot = self.maps.policy.get(&TEST_IFINDEX, 0).ok().map(|p| p.slot);
        let dir = hook.direction();
        let before = self.snapshot(slot);
        let no_policy_before = self.maps.no_policy_counters(TEST_IFINDEX).expect("read");
        let (passed, _) = self.run_raw(hook, frame, 1);
        let after = self.snapshot(slot);
        let no_policy_after = self.maps.no_policy_counters(TEST_IFINDEX).expect("read");

        let mut moved = Vec::new();
        for d in Direction::ALL {
            for r in Reason::ALL {
                let (b, a) = (before.get(d, r), after.get(d, r));
                if a != b {
                    moved.push((
                        d,
                        r,
                        Counter {
                            packets: a.packets - b.packets,
                            bytes: a.bytes - b.bytes,
                        },
                    ));
                }
            }
            let (b, a) = (no_policy_before[d as usize], no_policy_after[d as usize]);
            if a != b {
                moved.push((
                    d,
                    Reason::NoPolicy,
                    Counter {
                        packets: a.packets - b.packets,
                        bytes: a.bytes - b.bytes,
                    },
                ));
            }
        }
        assert_eq!(
            moved.len(),
            1,
            "{hook:?}: exactly one counter should move per frame, these moved: {moved:?}"
        );
        let (d, reason, counted) = moved[0];
        assert_eq!(d, dir, "{hook:?}: counted in the wrong direction");
        assert_eq!(
            counted,
            Counter {
                packets: 1,
                bytes: frame.len() as u64
            },
            "{hook:?}: the {} counter should grow by one packet of {} bytes",
            reason.name(),
            frame.len()
        );
        assert_eq!(
            passed,
            reason.is_pass(),
            "{hook:?}: verdict and counted reason {} disagree",
            reason.name()
        );
        Outcome {
            passed,
            reason,
            counted,
        }
    }
}

/// A bpffs directory owned by a test or benchmark: removed with
/// everything pinned in it when dropped, also on a panic.
pub struct BpffsDir(std::path::PathBuf);

impl BpffsDir {
    /// `/sys/fs/bpf/vifguard-test-<label>-<pid>`, created empty.
    pub fn new(label: &str) -> BpffsDir {
        let p = std::path::PathBuf::from(format!(
            "/sys/fs/bpf/vifguard-test-{label}-{}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).expect("create the test's bpffs directory");
        BpffsDir(p)
    }

    /// `path`, left to whoever creates it (vifguard, as a bpffs root).
    pub fn adopt(path: std::path::PathBuf) -> BpffsDir {
        BpffsDir(path)
    }

    pub fn path(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for BpffsDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
