//! The real programs in the kernel, driven through BPF_PROG_TEST_RUN: load
//! the object (private, unpinned maps), write policies, run a frame through
//! a hook, and read back which counter moved.

use aya::Ebpf;
use aya::programs::{SchedClassifier, TestRun, TestRunOptions, Xdp};
use filter_common::{Counter, Direction, Reason, program_names as progs};
use filter_user::datapath::{self, Counters, Interface, Maps, MapsWriter};
use filter_user::hooks::tc::Rtnl;
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

/// How a TC program goes on an interface: as a host does by default, or
/// as a TCX link (`attach = "tcx"`, Linux 6.6+).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TcWay {
    ClsBpf,
    Tcx,
}

/// A program on an interface, taken off when dropped.
pub enum Attached {
    Filter {
        rtnl: Rtnl,
        ifindex: u32,
        dir: Direction,
    },
    Link(aya::programs::links::FdLink),
}

impl Drop for Attached {
    fn drop(&mut self) {
        if let Attached::Filter { rtnl, ifindex, dir } = self {
            // The interface may be gone with its namespace already.
            let _ = rtnl.delete_vifguard_filters(*ifindex, *dir);
        }
    }
}

/// Whether this kernel has TCX links (Linux 6.6+); `Err` names the kernel
/// for the skip message of a test that needs them.
pub fn tcx_supported() -> Result<(), String> {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map_err(|e| format!("cannot read the kernel release: {e}"))?;
    let release = release.trim();
    let mut parts = release.split(|c: char| !c.is_ascii_digit());
    let major: u32 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    let minor: u32 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    if (major, minor) >= (6, 6) {
        Ok(())
    } else {
        Err(format!("kernel {release} has no TCX links (Linux 6.6+)"))
    }
}

pub struct Kernel {
    ebpf: Ebpf,
    pub maps: MapsWriter,
    /// The directory whose lock the writer holds (private maps need no
    /// lock, but writing takes one like everywhere else).
    _lock_dir: LockDir,
}

/// A scratch layout root to take a write lock in; removed on drop.
pub struct LockDir(std::path::PathBuf);

impl LockDir {
    /// A fresh directory and the layout lock on it, for a test that writes
    /// maps only it can see.
    pub fn take() -> (LockDir, filter_user::datapath::pins::Lock) {
        use std::sync::atomic::{AtomicU32, Ordering};
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let root = std::env::temp_dir().join(format!(
            "vifguard-kernel-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        ));
        let layout = filter_user::datapath::pins::Layout::new(&root);
        std::fs::create_dir_all(layout.versioned()).expect("create the lock directory");
        let lock = layout.lock().expect("take the layout lock");
        (LockDir(root), lock)
    }
}

impl Drop for LockDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
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
        let (dir, lock) = LockDir::take();
        Kernel {
            ebpf,
            maps: MapsWriter::new(maps, lock),
            _lock_dir: dir,
        }
    }

    pub fn set_policy(&mut self, ifindex: u32, policy: &Policy) -> u32 {
        policy.validate().expect("test policies are valid");
        self.maps
            .install(ifindex, policy, 1000, Interface::Known)
            .expect("write the policy into the maps")
    }

    pub fn remove_policy(&mut self, ifindex: u32) {
        self.maps.remove(ifindex).expect("remove the policy");
    }

    /// Attaches the program of `hook` to `ifname` in the calling thread's
    /// network namespace the way a host does by default: TC hooks as a
    /// cls_bpf filter on a clsact qdisc over rtnetlink (`attach = "tc"`),
    /// XDP as a link. Detached when the returned value drops.
    pub fn attach(&mut self, hook: Hook, ifname: &str) -> Attached {
        self.attach_via(hook, ifname, TcWay::ClsBpf)
    }

    /// As [`Kernel::attach`], TC hooks the given way.
    pub fn attach_via(&mut self, hook: Hook, ifname: &str, way: TcWay) -> Attached {
        use filter_user::hooks::tcx;
        let name = match hook {
            Hook::XdpFromGuest => {
                let prog = datapath::xdp_program(&mut self.ebpf, progs::XDP_FROM_GUEST)
                    .expect("XDP program");
                let link = tcx::attach_xdp(prog, ifname, aya::programs::XdpMode::default())
                    .expect("attach the XDP program");
                return Attached::Link(link);
            }
            Hook::TcFromGuest => progs::TC_FROM_GUEST,
            Hook::TcToGuest => progs::TC_TO_GUEST,
        };
        let prog = datapath::tc_program(&mut self.ebpf, name).expect("TC program");
        let dir = hook.direction();
        match way {
            TcWay::Tcx => Attached::Link(
                tcx::attach_tc(prog, ifname, dir).expect("attach the TC program as a TCX link"),
            ),
            TcWay::ClsBpf => {
                use std::os::fd::AsFd as _;
                let ifindex = filter_user::sys::netdev::ifindex(ifname).expect("the interface");
                let mut rtnl = Rtnl::open().expect("rtnetlink socket");
                rtnl.ensure_clsact(ifindex).expect("clsact qdisc");
                let fd = prog.fd().expect("loaded program");
                rtnl.set_filter(
                    ifindex,
                    dir,
                    filter_user::config::DEFAULT_TC_PRIORITY,
                    fd.as_fd(),
                    name,
                )
                .expect("attach the cls_bpf filter");
                Attached::Filter { rtnl, ifindex, dir }
            }
        }
    }

    /// The addresses `ifindex` learned from DHCP, with their expiries.
    pub fn learned_of(&self, ifindex: u32) -> Vec<(std::net::Ipv4Addr, u32)> {
        let slot = self
            .maps
            .policy_of(ifindex)
            .expect("read the policy map")
            .expect("policy entry")
            .slot;
        self.maps.learned(slot).expect("read the learned addresses")
    }

    /// The counters of the interface with policy slot `slot`.
    pub fn counters_of(&self, ifindex: u32) -> Counters {
        let slot = self
            .maps
            .policy_of(ifindex)
            .expect("read the policy map")
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
        let slot = self
            .maps
            .policy_of(TEST_IFINDEX)
            .expect("read the policy map")
            .map(|p| p.slot);
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
        remove_root(&self.0);
    }
}

/// Removes a vifguard bpffs root a test or the demo made, and the records
/// vifguard kept for it under /run/vifguard/applied (a root of its own per
/// run, so they would pile up there).
pub fn remove_root(root: &std::path::Path) {
    filter_user::applied::Records::new(root).clear();
    let _ = std::fs::remove_dir_all(root);
}
