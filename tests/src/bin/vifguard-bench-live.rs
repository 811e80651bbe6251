//! Live benchmark against the rules vifguard replaces: a simulated Xen dom0
//! in network namespaces (bridge, uplink to a sink, N guest vifs), small
//! UDP frames from one guest, measured with no filter, with the legacy
//! ebtables/arptables/iptables rules of OpenStack's XenServer `vif_rules.py`
//! (+ `host-rules`) for all N vifs, and with vifguard TC on all N vifs.
//!
//! Measured, in one run, interleaved (the order rotates every round),
//! medians of several rounds:
//! - forwarded packets per second at the sink (the kernel's rx counter of
//!   the sink's veth end) and CPU time per forwarded packet (the sending
//!   thread's CPU time, which includes the softirq work done in its context
//!   since everything runs on its core, plus that core's ksoftirqd);
//! - time to apply one more vif's policy on a host with N vifs: `vifguard
//!   hotplug online` against the `vif_rules.py online` command series, each
//!   as a whole process tree started in dom0;
//! - `vifguard sync` of 1,000 vifs, cold (empty bpffs root) and warm.
//!
//! Prints a Markdown section on stdout (`cargo xtask bench live` puts it into
//! BENCHMARKS.md) and writes an SVG plot of rate vs N (`--svg PATH`).
//! Everything it creates is named after the run id (`--run-id`, default
//! the pid): namespaces `vgbench-<id>-*`, bpffs roots
//! `/sys/fs/bpf/vifguard-bench-<id>-*`; they are removed on success, on
//! error and on SIGINT/SIGTERM. Needs root.

use std::fmt::Write as _;
use std::io::Write as _;
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, RawFd};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use vifguard_tests::demo::find_vifguard;
use vifguard_tests::frames::{Frame, Mac};
use vifguard_tests::kernel::BpffsDir;
use vifguard_tests::netns::{NetNs, RawSocket};
use vifguard_tests::xenstored::TestXenstored;

type Res<T> = Result<T, String>;

/// The MAC of the "router" behind the uplink; the bridge has a static entry
/// for it on the uplink port, so frames to it are never flooded.
const GATEWAY_MAC: Mac = [0x02, 0x00, 0x00, 0x00, 0x00, 0xfe];
const SINK_DST: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);
/// A source no guest owns: used to check that the filters are active.
const SPOOFED_SRC: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 66);
/// Messages per sendmmsg call.
const BATCH: usize = 64;
/// The legacy tools: the kernel has no ebtables legacy (x_tables bridge)
/// support, and arptables-nft has no FORWARD chain, so ebtables is the nft
/// variant and arptables/iptables are the x_tables ("legacy") ones.
const EBTABLES: &str = "ebtables-nft";
const ARPTABLES: &str = "arptables-legacy";
const IPTABLES: &str = "iptables-legacy";

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

fn check_stop() -> Res<()> {
    if STOP.load(Ordering::SeqCst) {
        Err("interrupted".into())
    } else {
        Ok(())
    }
}

fn progress(msg: &str) {
    eprintln!("bench-live: {msg}");
}

// ---------------------------------------------------------------------------
// Configuration

struct Config {
    ns: Vec<usize>,
    seconds: f64,
    rounds: usize,
    apply_reps: usize,
    sync_count: usize,
    sync_reps: usize,
    svg: Option<PathBuf>,
    run_id: String,
}

const USAGE: &str = "\
usage: vifguard-bench-live [--quick] [--n 1,64,512] [--seconds 2] [--rounds 5]
                           [--apply-reps 15] [--sync 1000] [--sync-reps 3]
                           [--svg PATH] [--run-id ID]";

fn parse_args() -> Res<Config> {
    let mut c = Config {
        ns: vec![1, 64, 512],
        seconds: 2.0,
        rounds: 5,
        apply_reps: 15,
        sync_count: 1000,
        sync_reps: 3,
        svg: None,
        run_id: std::process::id().to_string(),
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    let value = |i: usize| -> Res<&String> {
        args.get(i + 1)
            .ok_or_else(|| format!("{} needs a value\n{USAGE}", args[i]))
    };
    let num = |s: &str| -> Res<usize> { s.parse().map_err(|e| format!("{s:?}: {e}\n{USAGE}")) };
    while i < args.len() {
        match args[i].as_str() {
            "--quick" => {
                c.ns = vec![1, 8];
                c.seconds = 0.5;
                c.rounds = 2;
                c.apply_reps = 3;
                c.sync_count = 50;
                c.sync_reps = 1;
                i += 1;
                continue;
            }
            "--n" => {
                c.ns = value(i)?.split(',').map(num).collect::<Res<Vec<usize>>>()?;
            }
            "--seconds" => {
                c.seconds = value(i)?.parse().map_err(|e| format!("--seconds: {e}"))?;
            }
            "--rounds" => c.rounds = num(value(i)?)?,
            "--apply-reps" => c.apply_reps = num(value(i)?)?,
            "--sync" => c.sync_count = num(value(i)?)?,
            "--sync-reps" => c.sync_reps = num(value(i)?)?,
            "--svg" => c.svg = Some(PathBuf::from(value(i)?)),
            "--run-id" => c.run_id = value(i)?.clone(),
            "-h" | "--help" => return Err(USAGE.into()),
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
        i += 2;
    }
    if c.ns.is_empty() || c.ns.contains(&0) || c.rounds == 0 || c.apply_reps == 0 {
        return Err(format!(
            "N values, rounds and reps must be positive\n{USAGE}"
        ));
    }
    if c.sync_reps == 0 || c.sync_count == 0 {
        return Err(format!("--sync and --sync-reps must be positive\n{USAGE}"));
    }
    if c.seconds.is_nan() || c.seconds <= 0.0 {
        return Err(format!("--seconds must be positive\n{USAGE}"));
    }
    c.ns.sort_unstable();
    c.ns.dedup();
    Ok(c)
}

// ---------------------------------------------------------------------------
// Processes, namespaces, sysctls

fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        let a = a.to_string_lossy();
        if a.len() > 80 {
            s.push_str(" <script>");
        } else {
            s.push(' ');
            s.push_str(&a);
        }
    }
    s
}

fn run(cmd: &mut Command) -> Res<String> {
    run_stdin(cmd, None)
}

fn run_stdin(cmd: &mut Command, input: Option<&str>) -> Res<String> {
    check_stop()?;
    let mut child = cmd
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("{}: {e}", describe(cmd)))?;
    if let (Some(text), Some(mut stdin)) = (input, child.stdin.take()) {
        stdin
            .write_all(text.as_bytes())
            .map_err(|e| format!("{}: writing stdin: {e}", describe(cmd)))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| format!("{}: {e}", describe(cmd)))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        let err = String::from_utf8_lossy(&out.stderr);
        let err: String = err.lines().take(10).collect::<Vec<_>>().join("\n");
        Err(format!(
            "{} failed ({}): {}{}",
            describe(cmd),
            out.status,
            String::from_utf8_lossy(&out.stdout).trim(),
            err.trim()
        ))
    }
}

/// Runs a command to completion and returns its wall time; fails unless it
/// succeeds.
/// Wall time of `cmd` (a plain command, see [`Ctx::vifguard_timed`])
/// started in `ns`. This thread joins `ns` for the spawn, so the command
/// needs no pre-exec step and the standard library starts it with
/// posix_spawn (vfork), as a small hotplug shell script would: forking this
/// large process (its page tables) would add a cost to every command that
/// a real host does not have.
fn timed(ns: &NetNs, cmd: &mut Command) -> Res<Duration> {
    check_stop()?;
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let _in = ns.enter();
    let t0 = Instant::now();
    let out = cmd
        .output()
        .map_err(|e| format!("{}: {e}", describe(cmd)))?;
    let dt = t0.elapsed();
    if !out.status.success() {
        return Err(format!(
            "{} failed ({}): {}",
            describe(cmd),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(dt)
}

/// A fresh namespace (deleted when the handle drops), loopback up, IPv6 off
/// so no autoconfiguration traffic crosses the bridge.
fn new_ns(run_id: &str, label: &str) -> Res<NetNs> {
    let name = format!("vgbench-{run_id}-{label}");
    run(Command::new("ip").args(["netns", "add", &name]))?;
    let ns = NetNs { name };
    ip(&ns, &["link", "set", "lo", "up"])?;
    sysctl(&ns, "net/ipv6/conf/all/disable_ipv6", "1")?;
    sysctl(&ns, "net/ipv6/conf/default/disable_ipv6", "1")?;
    Ok(ns)
}

fn ip(ns: &NetNs, args: &[&str]) -> Res<String> {
    run(Command::new("ip").arg("-n").arg(&ns.name).args(args))
}

fn ip_batch(ns: &NetNs, batch: &str) -> Res<()> {
    run_stdin(
        Command::new("ip")
            .arg("-n")
            .arg(&ns.name)
            .args(["-batch", "-"]),
        Some(batch),
    )
    .map(|_| ())
}

/// Writes a per-namespace sysctl: net sysctls resolve against the writing
/// thread's namespace.
fn sysctl(ns: &NetNs, key: &str, value: &str) -> Res<()> {
    let _in = ns.enter();
    let path = format!("/proc/sys/{key}");
    std::fs::write(&path, value).map_err(|e| format!("{} in {}: {e}", path, ns.name))
}

/// `program` started in the network namespace `ns`: the child joins it
/// (setns) between fork and exec, as `nsenter --net` would but without a
/// process of its own in the timings, and keeps the host's /sys (and so
/// /sys/fs/bpf), unlike `ip netns exec`.
fn in_ns(ns: &NetNs, program: &str) -> Command {
    use std::os::unix::process::CommandExt as _;
    let mut c = Command::new(program);
    match std::fs::File::open(format!("/run/netns/{}", ns.name)) {
        Ok(f) => {
            // SAFETY: setns(2) is async-signal-safe; the file stays open in
            // the closure until the child has joined.
            unsafe {
                c.pre_exec(move || {
                    if libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) == 0 {
                        Ok(())
                    } else {
                        Err(std::io::Error::last_os_error())
                    }
                });
            }
        }
        Err(e) => {
            // Spawning then fails with this error, naming the namespace.
            let msg = format!("open /run/netns/{}: {e}", ns.name);
            // SAFETY: only builds an error in the child.
            unsafe { c.pre_exec(move || Err(std::io::Error::other(msg.clone()))) };
        }
    }
    c
}

/// Packets received by `ifname` in `ns`, from /proc/thread-self/net/dev
/// (which shows the reading thread's namespace).
fn rx_packets(ns: &NetNs, ifname: &str) -> Res<u64> {
    let text = {
        let _in = ns.enter();
        std::fs::read_to_string("/proc/thread-self/net/dev")
            .map_err(|e| format!("read net/dev of {}: {e}", ns.name))?
    };
    for line in text.lines() {
        if let Some((name, rest)) = line.split_once(':')
            && name.trim() == ifname
        {
            return rest
                .split_whitespace()
                .nth(1)
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| format!("malformed net/dev line {line:?}"));
        }
    }
    Err(format!("{ifname} not in net/dev of {}", ns.name))
}

// ---------------------------------------------------------------------------
// Guests

fn mac_of(domid: u32) -> Mac {
    [
        0x00,
        0x16,
        0x3e,
        0x10,
        (domid >> 8) as u8,
        (domid & 0xff) as u8,
    ]
}

fn mac_str(m: Mac) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

fn ip_of(domid: u32) -> Ipv4Addr {
    Ipv4Addr::new(10, (domid / 200) as u8, (domid % 200 + 1) as u8, 10)
}

/// Entries of the SRC_V4 trie pinned under the bpffs root `root`.
fn trie_entries(root: &Path) -> Res<usize> {
    let dir = filter_user::datapath::pins::Layout::new(root).maps();
    let maps = filter_user::datapath::Maps::open_pinned(&dir)
        .map_err(|e| format!("open the maps in {}: {e}", dir.display()))?;
    Ok(maps
        .trie_entries()
        .map_err(|e| e.to_string())?
        .values()
        .map(|e| e.src_v4.len())
        .sum())
}

/// The vifs' `ip` nodes as the /24 around their address: one LPM trie
/// entry per vif instead of an address inline in the policy.
fn publish_prefixes(xs: &TestXenstored, domids: std::ops::RangeInclusive<u32>) -> Res<()> {
    let mut c = xs.client().map_err(|e| format!("xenstore client: {e}"))?;
    for d in domids {
        let o = ip_of(d).octets();
        let node = format!("/local/domain/0/backend/vif/{d}/0/ip");
        c.write(&node, format!("{}.{}.{}.0/24", o[0], o[1], o[2]).as_bytes())
            .map_err(|e| format!("xenstore write {node}: {e}"))?;
    }
    Ok(())
}

fn vif_name(domid: u32) -> String {
    format!("vif{domid}.0")
}

/// What xl writes for a vif, plus vifguard's mode key: MAC, one address,
/// locked. Nodes owned by dom0 (trusted).
fn publish_policies(xs: &TestXenstored, domids: std::ops::RangeInclusive<u32>) -> Res<()> {
    let mut c = xs.client().map_err(|e| format!("xenstore client: {e}"))?;
    for d in domids {
        let be = format!("/local/domain/0/backend/vif/{d}/0");
        for (k, v) in [
            ("mac", mac_str(mac_of(d))),
            ("ip", ip_of(d).to_string()),
            ("vifguard/mode", "locked".to_string()),
        ] {
            c.write(&format!("{be}/{k}"), v.as_bytes())
                .map_err(|e| format!("xenstore write {be}/{k}: {e}"))?;
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Raw packet socket and the sending thread

/// The sending guest's AF_PACKET socket (send only, see
/// [`RawSocket::bind_send_only`]).
struct PacketSocket {
    raw: RawSocket,
}

impl PacketSocket {
    fn open(ns: &NetNs, ifname: &str) -> Res<PacketSocket> {
        let ifindex = ns.ifindex(ifname) as i32;
        let _in = ns.enter();
        let raw = RawSocket::bind_send_only(ifindex)
            .map_err(|e| format!("AF_PACKET socket on {ifname}: {e}"))?;
        Ok(PacketSocket { raw })
    }

    fn dest(&self, frame: &[u8]) -> libc::sockaddr_ll {
        // SAFETY: zeroed sockaddr_ll is valid; fields set below.
        let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_protocol = u16::from_be_bytes([frame[12], frame[13]]).to_be();
        sll.sll_ifindex = self.raw.ifindex();
        sll.sll_halen = 6;
        sll.sll_addr[..6].copy_from_slice(&frame[..6]);
        sll
    }
}

enum Amount {
    For(Duration),
    Count(u64),
}

struct Job {
    fd: RawFd,
    sll: libc::sockaddr_ll,
    frame: Vec<u8>,
    amount: Amount,
    reply: mpsc::Sender<Res<Blast>>,
}

struct Blast {
    sent: u64,
    elapsed: Duration,
    cpu: Duration,
}

/// The sending thread: pinned to one CPU, nice -20, sends on request.
struct Blaster {
    jobs: Option<mpsc::Sender<Job>>,
    thread: Option<std::thread::JoinHandle<()>>,
    cpu: usize,
    ksoftirqd: Option<u32>,
    pinned: bool,
    niced: bool,
    /// The autogroup nice value to restore, if raised.
    autogroup: Option<i32>,
}

/// The nice value of this process's scheduler autogroup (its session's
/// share of the CPU against other sessions).
fn autogroup_nice() -> Option<i32> {
    let s = std::fs::read_to_string("/proc/self/autogroup").ok()?;
    s.split_whitespace().last()?.parse().ok()
}

fn set_autogroup_nice(nice: i32) -> bool {
    std::fs::write("/proc/self/autogroup", nice.to_string()).is_ok()
}

fn thread_cpu() -> Duration {
    // SAFETY: zeroed timespec is a valid output buffer.
    let mut ts: libc::timespec = unsafe { std::mem::zeroed() };
    // SAFETY: valid clock id and pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

fn blast(job: &Job) -> Res<Blast> {
    let mut iov = libc::iovec {
        iov_base: job.frame.as_ptr() as *mut libc::c_void,
        iov_len: job.frame.len(),
    };
    // SAFETY: zeroed mmsghdr is valid; pointers set below stay valid for
    // the loop (iov, job.sll and job.frame outlive it).
    let mut hdrs: [libc::mmsghdr; BATCH] = unsafe { std::mem::zeroed() };
    for h in &mut hdrs {
        h.msg_hdr.msg_name = (&raw const job.sll) as *mut libc::c_void;
        h.msg_hdr.msg_namelen = std::mem::size_of::<libc::sockaddr_ll>() as u32;
        h.msg_hdr.msg_iov = &raw mut iov;
        h.msg_hdr.msg_iovlen = 1;
    }
    let mut sent: u64 = 0;
    let cpu0 = thread_cpu();
    let t0 = Instant::now();
    loop {
        let want = match job.amount {
            Amount::For(d) => {
                if t0.elapsed() >= d {
                    break;
                }
                BATCH
            }
            Amount::Count(n) => {
                if sent >= n {
                    break;
                }
                ((n - sent) as usize).min(BATCH)
            }
        };
        if STOP.load(Ordering::Relaxed) {
            return Err("interrupted".into());
        }
        // SAFETY: hdrs holds `want` <= BATCH valid headers.
        let r = unsafe { libc::sendmmsg(job.fd, hdrs.as_mut_ptr(), want as u32, 0) };
        if r < 0 {
            let e = std::io::Error::last_os_error();
            match e.raw_os_error() {
                Some(libc::ENOBUFS | libc::EAGAIN | libc::EINTR) => continue,
                _ => return Err(format!("sendmmsg: {e}")),
            }
        }
        sent += r as u64;
    }
    let elapsed = t0.elapsed();
    Ok(Blast {
        sent,
        elapsed,
        cpu: thread_cpu().saturating_sub(cpu0),
    })
}

fn find_ksoftirqd(cpu: usize) -> Option<u32> {
    let want = format!("ksoftirqd/{cpu}");
    std::fs::read_dir("/proc").ok()?.find_map(|e| {
        let e = e.ok()?;
        let pid: u32 = e.file_name().to_str()?.parse().ok()?;
        let comm = std::fs::read_to_string(e.path().join("comm")).ok()?;
        (comm.trim() == want).then_some(pid)
    })
}

/// utime + stime of a process, in nanoseconds.
fn process_cpu_ns(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the parenthesised comm: state is field 3; utime 14, stime 15.
    let rest = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = f.get(11)?.parse().ok()?;
    let stime: u64 = f.get(12)?.parse().ok()?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Some((utime + stime) * 1_000_000_000 / hz)
}

impl Blaster {
    fn start() -> Blaster {
        // SAFETY: sysconf has no preconditions.
        let ncpu = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) }.max(1) as usize;
        let cpu = ncpu - 1;
        let (tx, rx) = mpsc::channel::<Job>();
        let (ready_tx, ready_rx) = mpsc::channel::<(bool, bool)>();
        let thread = std::thread::spawn(move || {
            // SAFETY: a zeroed cpu_set_t is empty; CPU_SET stays in bounds
            // for cpu < CPU_SETSIZE; pid 0 is the calling thread.
            let pinned = unsafe {
                let mut set: libc::cpu_set_t = std::mem::zeroed();
                libc::CPU_SET(cpu, &mut set);
                libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) == 0
            };
            // SAFETY: on Linux, PRIO_PROCESS with who 0 is the calling thread.
            let niced = unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, -20) } == 0;
            let _ = ready_tx.send((pinned, niced));
            for job in rx {
                let r = blast(&job);
                let _ = job.reply.send(r);
            }
        });
        let (pinned, niced) = ready_rx.recv().unwrap_or((false, false));
        // With autogroups, nice only ranks threads within a session; other
        // sessions' jobs share the core by autogroup. Raise ours while the
        // benchmark runs (restored on drop).
        let autogroup = autogroup_nice().filter(|_| set_autogroup_nice(-20));
        Blaster {
            jobs: Some(tx),
            thread: Some(thread),
            cpu,
            ksoftirqd: find_ksoftirqd(cpu),
            pinned,
            niced,
            autogroup,
        }
    }

    fn send(&self, sock: &PacketSocket, frame: &[u8], amount: Amount) -> Res<Blast> {
        let (reply, result) = mpsc::channel();
        let job = Job {
            fd: sock.raw.as_raw_fd(),
            sll: sock.dest(frame),
            frame: frame.to_vec(),
            amount,
            reply,
        };
        self.jobs
            .as_ref()
            .ok_or("sender thread gone")?
            .send(job)
            .map_err(|_| "sender thread gone".to_string())?;
        result
            .recv()
            .map_err(|_| "sender thread died".to_string())?
    }

    fn softirq_ns(&self) -> u64 {
        self.ksoftirqd.and_then(process_cpu_ns).unwrap_or(0)
    }
}

impl Drop for Blaster {
    fn drop(&mut self) {
        if let Some(nice) = self.autogroup {
            set_autogroup_nice(nice);
        }
        self.jobs.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

// ---------------------------------------------------------------------------
// Hosts

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Setup {
    NoFilter,
    Legacy,
    Vifguard,
}

impl Setup {
    const ALL: [Setup; 3] = [Setup::NoFilter, Setup::Legacy, Setup::Vifguard];

    fn label(self) -> &'static str {
        match self {
            Setup::NoFilter => "no filter",
            Setup::Legacy => "legacy rules",
            Setup::Vifguard => "vifguard TC",
        }
    }

    fn tag(self) -> &'static str {
        match self {
            Setup::NoFilter => "none",
            Setup::Legacy => "legacy",
            Setup::Vifguard => "vifguard",
        }
    }

    fn index(self) -> usize {
        match self {
            Setup::NoFilter => 0,
            Setup::Legacy => 1,
            Setup::Vifguard => 2,
        }
    }
}

struct Ctx {
    run_id: String,
    vifguard: PathBuf,
    xs: TestXenstored,
    /// A host configuration file with `attach = "tcx"`.
    tcx_config: PathBuf,
}

impl Ctx {
    fn bpffs(&self, label: &str) -> PathBuf {
        PathBuf::from(format!(
            "/sys/fs/bpf/vifguard-bench-{}-{label}",
            self.run_id
        ))
    }

    /// The vifguard binary in `ns`, against the test xenstored and `bpffs`,
    /// with the default host configuration (attach = "tc").
    fn vifguard(&self, ns: &NetNs, bpffs: &Path) -> Command {
        self.vifguard_with(ns, bpffs, Attach::Tc)
    }

    fn vifguard_with(&self, ns: &NetNs, bpffs: &Path, attach: Attach) -> Command {
        let mut c = in_ns(ns, &self.vifguard.to_string_lossy());
        self.vifguard_env(&mut c, bpffs, attach);
        c
    }

    /// The vifguard command for [`timed`] (which starts it in a namespace).
    fn vifguard_timed(&self, bpffs: &Path, attach: Attach) -> Command {
        let mut c = Command::new(&self.vifguard);
        self.vifguard_env(&mut c, bpffs, attach);
        c
    }

    fn vifguard_env(&self, c: &mut Command, bpffs: &Path, attach: Attach) {
        let config = match attach {
            Attach::Tc => Path::new("/nonexistent/vifguard-bench.toml"),
            Attach::Tcx => self.tcx_config.as_path(),
        };
        c.env("XENSTORED_PATH", self.xs.socket_path())
            .env("VIFGUARD_BPFFS", bpffs)
            .env("VIFGUARD_CONFIG", config);
    }
}

/// vifguard's two ways to attach (host configuration `attach`).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Attach {
    Tc,
    Tcx,
}

impl Attach {
    fn name(self) -> &'static str {
        match self {
            Attach::Tc => "tc",
            Attach::Tcx => "tcx",
        }
    }
}

/// Waits until no TCX program is attached to any of `ifnames` in `ns`.
/// Removing a link's pin only drops a reference: the kernel detaches it
/// later, from a work item (vifguard itself detaches before it unpins).
/// Returns how long it took.
fn wait_tcx_gone(ns: &NetNs, ifnames: &[String]) -> Res<Duration> {
    use aya::programs::{SchedClassifier, TcAttachType};
    let _in = ns.enter();
    let t0 = Instant::now();
    let mut pending: Vec<&String> = ifnames.iter().collect();
    loop {
        let mut still = Vec::new();
        for name in pending {
            for hook in [TcAttachType::Ingress, TcAttachType::Egress] {
                let (_, progs) = SchedClassifier::query_tcx(name, hook)
                    .map_err(|e| format!("query TCX programs of {name}: {e}"))?;
                if !progs.is_empty() {
                    still.push(name);
                    break;
                }
            }
        }
        if still.is_empty() {
            return Ok(t0.elapsed());
        }
        if t0.elapsed() > Duration::from_secs(180) {
            return Err(format!(
                "{} interface(s) in {} still have TCX programs 180 s after their links were unpinned",
                still.len(),
                ns.name
            ));
        }
        check_stop()?;
        std::thread::sleep(Duration::from_millis(5));
        pending = still;
    }
}

/// Hooks in `ns` running a vifguard program: tc filters as the kernel
/// lists them (bpftool net) plus pinned TCX links under `bpffs`.
fn count_attached(ns: &NetNs, bpffs: &Path) -> Res<usize> {
    let filters = vifguard_tests::netns::vifguard_tc_filters(ns)?.len();
    let links = std::fs::read_dir(bpffs.join(format!("v{}/links", filter_common::ABI_VERSION)))
        .map(|rd| rd.count())
        .unwrap_or(0);
    Ok(filters + links)
}

/// Takes every vifguard hook off `vifs` in `ns` and removes the bpffs
/// root, as a host reboot would leave them: the root goes (TCX links with
/// it, detached by the kernel some time later: waited for), the clsact
/// qdiscs (and the filters on them) are deleted with one `tc -batch`.
fn clear(ns: &NetNs, root: &Path, vifs: &[String]) -> Res<()> {
    let _ = std::fs::remove_dir_all(root);
    let mut batch = String::new();
    for v in vifs {
        let _ = writeln!(batch, "qdisc del dev {v} clsact");
    }
    let path =
        std::env::temp_dir().join(format!("vifguard-bench-{}-clear.batch", std::process::id()));
    std::fs::write(&path, &batch).map_err(|e| format!("{}: {e}", path.display()))?;
    // -force: go on past vifs that have no clsact qdisc.
    let _ = Command::new("ip")
        .args(["netns", "exec", &ns.name, "tc", "-force", "-batch"])
        .arg(&path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    let _ = std::fs::remove_file(&path);
    wait_tcx_gone(ns, vifs)?;
    let left = count_attached(ns, root)?;
    if left != 0 {
        return Err(format!(
            "{left} vifguard hooks left in {} after clearing",
            ns.name
        ));
    }
    Ok(())
}

/// Removes a bpffs root when dropped (detaching its pinned links).
/// One simulated dom0 with N vifs and one of the three setups.
struct Host {
    setup: Setup,
    n: usize,
    /// The sending guest's domid.
    sender: u32,
    /// A vif created after the filter was installed, for the apply timing.
    extra: u32,
    sock: PacketSocket,
    bpffs: BpffsDir,
    dom0: NetNs,
    _guest: NetNs,
    sink: NetNs,
    rules: String,
}

/// `ip -batch` lines that create the extra vif `vif<extra>.0` on the bridge.
fn extra_vif_batch(extra: u32) -> String {
    let vif = vif_name(extra);
    format!(
        "link add {vif} type veth peer name g{extra}\nlink set g{extra} multicast off up\nlink set {vif} master br0\nlink set {vif} multicast off up\n"
    )
}

/// The sending guest: the one in the middle of the rule lists.
fn sender_of(n: usize) -> u32 {
    (n / 2) as u32 + 1
}

impl Host {
    fn build(ctx: &Ctx, setup: Setup, n: usize) -> Res<Host> {
        let label = format!("n{n}-{}", setup.tag());
        let dom0 = new_ns(&ctx.run_id, &format!("{label}-dom0"))?;
        let guest = new_ns(&ctx.run_id, &format!("{label}-guest"))?;
        let sink = new_ns(&ctx.run_id, &format!("{label}-sink"))?;
        let bpffs = BpffsDir::adopt(ctx.bpffs(&label));
        let legacy = u8::from(setup == Setup::Legacy).to_string();
        for key in [
            "bridge-nf-call-iptables",
            "bridge-nf-call-arptables",
            "bridge-nf-call-ip6tables",
        ] {
            sysctl(&dom0, &format!("net/bridge/{key}"), &legacy)?;
        }
        let sender = sender_of(n);
        let mut b = String::new();
        let _ = writeln!(b, "link add br0 type bridge mcast_snooping 0");
        let _ = writeln!(b, "link set br0 multicast off up");
        let _ = writeln!(
            b,
            "link add eth0 type veth peer name up0 netns {}",
            sink.name
        );
        let _ = writeln!(b, "link set eth0 master br0");
        let _ = writeln!(b, "link set eth0 multicast off up");
        for d in 1..=n as u32 {
            let vif = vif_name(d);
            if d == sender {
                let _ = writeln!(
                    b,
                    "link add {vif} type veth peer name eth0 netns {}",
                    guest.name
                );
            } else {
                let _ = writeln!(b, "link add {vif} type veth peer name g{d}");
                let _ = writeln!(b, "link set g{d} multicast off up");
            }
            let _ = writeln!(b, "link set {vif} master br0");
            let _ = writeln!(b, "link set {vif} multicast off up");
        }
        ip_batch(&dom0, &b)?;
        ip(&sink, &["link", "set", "up0", "multicast", "off", "up"])?;
        ip(
            &guest,
            &["link", "set", "eth0", "address", &mac_str(mac_of(sender))],
        )?;
        ip(&guest, &["link", "set", "eth0", "multicast", "off", "up"])?;
        run(Command::new("bridge").args([
            "-n",
            &dom0.name,
            "fdb",
            "add",
            &mac_str(GATEWAY_MAC),
            "dev",
            "eth0",
            "master",
            "static",
        ]))?;
        let rules = match setup {
            Setup::NoFilter => "none".to_string(),
            Setup::Legacy => install_legacy(&dom0, n)?,
            Setup::Vifguard => {
                run(ctx.vifguard(&dom0, bpffs.path()).arg("sync"))?;
                let hooks = count_attached(&dom0, bpffs.path())?;
                if hooks != 2 * n {
                    return Err(format!(
                        "vifguard sync attached {hooks} hooks, expected {}",
                        2 * n
                    ));
                }
                format!("{hooks} tc filters")
            }
        };
        let extra = n as u32 + 1;
        ip_batch(&dom0, &extra_vif_batch(extra))?;
        let sock = PacketSocket::open(&guest, "eth0")?;
        Ok(Host {
            setup,
            n,
            sender,
            extra,
            sock,
            bpffs,
            dom0,
            _guest: guest,
            sink,
            rules,
        })
    }

    /// Replaces the extra vif with a new one (a new ifindex, no qdisc), as
    /// `xl destroy` and `xl create` do: each apply is timed on a vif the
    /// kernel has just made, which is what a hotplug sees.
    fn renew_extra(&self) -> Res<()> {
        let del = format!("link del {}\n", vif_name(self.extra));
        ip_batch(&self.dom0, &(del + &extra_vif_batch(self.extra)))
    }

    fn frame(&self, src: Ipv4Addr) -> Vec<u8> {
        Frame::eth(mac_of(self.sender), GATEWAY_MAC)
            .ipv4(src, SINK_DST)
            .udp(40000, 9)
            .payload(&[0; 18])
            .build()
    }

    fn legit(&self) -> Vec<u8> {
        self.frame(ip_of(self.sender))
    }

    fn sink_rx(&self) -> Res<u64> {
        rx_packets(&self.sink, "up0")
    }

    /// The sink's counter once it stopped moving (three equal reads 20 ms
    /// apart): nothing still queued from earlier frames.
    fn settled_rx(&self) -> Res<u64> {
        let mut last = self.sink_rx()?;
        let mut same = 0;
        for _ in 0..100 {
            std::thread::sleep(Duration::from_millis(20));
            let now = self.sink_rx()?;
            if now == last {
                same += 1;
                if same == 2 {
                    return Ok(now);
                }
            } else {
                same = 0;
            }
            last = now;
        }
        Err(format!(
            "{} N={}: the sink's counter does not settle",
            self.setup.label(),
            self.n
        ))
    }

    /// Frames that reached the sink since `base`, once `expect` of them did
    /// or the counter stood still for 200 ms (frames still in a backlog,
    /// softirq work deferred to ksoftirqd, are waited for).
    fn arrived(&self, base: u64, expect: u64) -> Res<u64> {
        let mut last = self.sink_rx()?;
        let mut still = Instant::now();
        let deadline = Instant::now() + Duration::from_secs(3);
        loop {
            let got = last.saturating_sub(base);
            if got >= expect || still.elapsed() >= Duration::from_millis(200) {
                return Ok(got);
            }
            if Instant::now() > deadline {
                return Ok(got);
            }
            std::thread::sleep(Duration::from_millis(10));
            let now = self.sink_rx()?;
            if now != last {
                still = Instant::now();
                last = now;
            }
        }
    }

    /// Sends `count` frames; returns how many reached the sink.
    fn burst(&self, blaster: &Blaster, frame: &[u8], count: u64) -> Res<u64> {
        let rx0 = self.settled_rx()?;
        blaster.send(&self.sock, frame, Amount::Count(count))?;
        self.arrived(rx0, count)
    }

    /// Legitimate frames must pass, spoofed ones must not (unless no filter).
    fn verify(&self, blaster: &Blaster) -> Res<()> {
        const COUNT: u64 = 2000;
        let ok = self.burst(blaster, &self.legit(), COUNT)?;
        if ok < COUNT * 99 / 100 {
            return Err(format!(
                "{} N={}: only {ok} of {COUNT} legitimate frames reached the sink",
                self.setup.label(),
                self.n
            ));
        }
        let spoofed = self.burst(blaster, &self.frame(SPOOFED_SRC), COUNT)?;
        let expect_pass = self.setup == Setup::NoFilter;
        if expect_pass && spoofed < COUNT * 99 / 100 || !expect_pass && spoofed != 0 {
            return Err(format!(
                "{} N={}: {spoofed} of {COUNT} spoofed frames reached the sink",
                self.setup.label(),
                self.n
            ));
        }
        Ok(())
    }

    fn measure(&self, blaster: &Blaster, frame: &[u8], seconds: f64) -> Res<Sample> {
        let rx0 = self.settled_rx()?;
        let k0 = blaster.softirq_ns();
        let b = blaster.send(
            &self.sock,
            frame,
            Amount::For(Duration::from_secs_f64(seconds)),
        )?;
        let fwd = self.arrived(rx0, b.sent)?;
        let k1 = blaster.softirq_ns();
        if fwd == 0 {
            return Err(format!(
                "{} N={}: nothing forwarded",
                self.setup.label(),
                self.n
            ));
        }
        let cpu_ns = b.cpu.as_nanos() as f64 + k1.saturating_sub(k0) as f64;
        Ok(Sample {
            pps: fwd as f64 / b.elapsed.as_secs_f64(),
            cpu_ns: cpu_ns / fwd as f64,
            share: cpu_ns / 1e9 / b.elapsed.as_secs_f64(),
            sent: b.sent,
            fwd,
        })
    }
}

// ---------------------------------------------------------------------------
// The legacy rules (OpenStack's XenServer vif_rules.py and host-rules)

/// host-rules with the uplink `eth0` (and `eth1`, as the script has it),
/// then vif_rules.py `online` for every vif, in hotplug order. ebtables via
/// ebtables-nft-restore and iptables via iptables-legacy-restore (same
/// resulting tables as the commands, much faster to build);
/// arptables-legacy-restore cannot restore the FORWARD chain, so those are
/// the commands themselves. Returns a description with the rule counts.
fn install_legacy(dom0: &NetNs, n: usize) -> Res<String> {
    let mut eb = String::from("*filter\n:INPUT ACCEPT\n:FORWARD DROP\n:OUTPUT ACCEPT\n");
    // `ebtables -I FORWARD 1 -s ! MAC -i VIF -j DROP`: newest first.
    for d in (1..=n as u32).rev() {
        let _ = writeln!(
            eb,
            "-A FORWARD -s ! {} -i {} -j DROP",
            mac_str(mac_of(d)),
            vif_name(d)
        );
    }
    eb.push_str("-A FORWARD -o eth0 -j ACCEPT\n-A FORWARD -o eth1 -j ACCEPT\n");
    for d in 1..=n as u32 {
        let (vif, ip) = (vif_name(d), ip_of(d));
        let _ = writeln!(
            eb,
            "-A FORWARD -p 0806 -o {vif} --arp-ip-dst {ip} -j ACCEPT"
        );
        let _ = writeln!(eb, "-A FORWARD -p 0800 -o {vif} --ip-dst {ip} -j ACCEPT");
    }
    run_stdin(&mut in_ns(dom0, "ebtables-nft-restore"), Some(&eb))?;

    let mut arp = format!("{ARPTABLES} -P FORWARD DROP\n");
    for up in ["eth0", "eth1"] {
        for op in ["Request", "Reply"] {
            let _ = writeln!(
                arp,
                "{ARPTABLES} -A FORWARD --opcode {op} --in-interface {up} -j ACCEPT"
            );
        }
    }
    for d in 1..=n as u32 {
        let (vif, ip, mac) = (vif_name(d), ip_of(d), mac_str(mac_of(d)));
        let _ = writeln!(
            arp,
            "{ARPTABLES} -A FORWARD --opcode Request --in-interface {vif} --source-mac {mac} -j ACCEPT"
        );
        let _ = writeln!(
            arp,
            "{ARPTABLES} -A FORWARD --opcode Reply --in-interface {vif} --source-ip {ip} --source-mac {mac} -j ACCEPT"
        );
    }
    run_stdin(in_ns(dom0, "sh").arg("-e"), Some(&arp))?;

    let mut ipt = String::from(
        "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n\
         -A FORWARD -m physdev --physdev-in eth0 -j ACCEPT\n\
         -A FORWARD -m physdev --physdev-in eth1 -j ACCEPT\n",
    );
    for d in 1..=n as u32 {
        let _ = writeln!(
            ipt,
            "-A FORWARD -m physdev --physdev-in {} -s {} -j ACCEPT",
            vif_name(d),
            ip_of(d)
        );
    }
    ipt.push_str("COMMIT\n");
    run_stdin(&mut in_ns(dom0, "iptables-legacy-restore"), Some(&ipt))?;

    // Count what the kernel holds.
    let count = |out: String, prefix: &str| out.lines().filter(|l| l.starts_with(prefix)).count();
    let eb_n = count(run(in_ns(dom0, EBTABLES).args(["-L", "FORWARD"]))?, "-");
    let arp_n = count(
        run(in_ns(dom0, ARPTABLES).args(["-L", "FORWARD", "-n"]))?,
        "-j",
    );
    let ipt_n = count(run(in_ns(dom0, IPTABLES).args(["-S", "FORWARD"]))?, "-A");
    let want = (3 * n + 2, 2 * n + 4, n + 2);
    if (eb_n, arp_n, ipt_n) != want {
        return Err(format!(
            "legacy rules: ebtables/arptables/iptables FORWARD hold {eb_n}/{arp_n}/{ipt_n} rules, expected {want:?}"
        ));
    }
    Ok(format!(
        "FORWARD rules: ebtables {eb_n}, arptables {arp_n}, iptables {ipt_n}"
    ))
}

/// vif_rules.py `online` for one vif, command by command in its order
/// (ebtables, arptables, iptables; every add preceded by its delete, whose
/// failure the script ignores).
fn legacy_online_script(domid: u32) -> String {
    let (vif, ip, mac) = (vif_name(domid), ip_of(domid), mac_str(mac_of(domid)));
    let q = "2>/dev/null || true";
    [
        format!("{EBTABLES} -D FORWARD -p 0806 -o {vif} --arp-ip-dst {ip} -j ACCEPT {q}"),
        format!("{EBTABLES} -D FORWARD -p 0800 -o {vif} --ip-dst {ip} -j ACCEPT {q}"),
        format!("{EBTABLES} -A FORWARD -p 0806 -o {vif} --arp-ip-dst {ip} -j ACCEPT"),
        format!("{EBTABLES} -A FORWARD -p 0800 -o {vif} --ip-dst {ip} -j ACCEPT"),
        format!("{EBTABLES} -D FORWARD -s ! {mac} -i {vif} -j DROP {q}"),
        format!("{EBTABLES} -I FORWARD 1 -s ! {mac} -i {vif} -j DROP"),
        format!(
            "{ARPTABLES} -D FORWARD --opcode Request --in-interface {vif} --source-ip {ip} --source-mac {mac} -j ACCEPT {q}"
        ),
        format!(
            "{ARPTABLES} -D FORWARD --opcode Reply --in-interface {vif} --source-ip {ip} --source-mac {mac} -j ACCEPT {q}"
        ),
        format!(
            "{ARPTABLES} -A FORWARD --opcode Request --in-interface {vif} --source-mac {mac} -j ACCEPT"
        ),
        format!(
            "{ARPTABLES} -A FORWARD --opcode Reply --in-interface {vif} --source-ip {ip} --source-mac {mac} -j ACCEPT"
        ),
        format!("{IPTABLES} -D FORWARD -m physdev --physdev-in {vif} -s {ip} -j ACCEPT {q}"),
        format!("{IPTABLES} -A FORWARD -m physdev --physdev-in {vif} -s {ip} -j ACCEPT"),
    ]
    .join("\n")
}

/// Removes what [`legacy_online_script`] added.
fn legacy_offline_script(domid: u32) -> String {
    let (vif, ip, mac) = (vif_name(domid), ip_of(domid), mac_str(mac_of(domid)));
    [
        format!("{EBTABLES} -D FORWARD -p 0806 -o {vif} --arp-ip-dst {ip} -j ACCEPT"),
        format!("{EBTABLES} -D FORWARD -p 0800 -o {vif} --ip-dst {ip} -j ACCEPT"),
        format!("{EBTABLES} -D FORWARD -s ! {mac} -i {vif} -j DROP"),
        format!(
            "{ARPTABLES} -D FORWARD --opcode Request --in-interface {vif} --source-mac {mac} -j ACCEPT"
        ),
        format!(
            "{ARPTABLES} -D FORWARD --opcode Reply --in-interface {vif} --source-ip {ip} --source-mac {mac} -j ACCEPT"
        ),
        format!("{IPTABLES} -D FORWARD -m physdev --physdev-in {vif} -s {ip} -j ACCEPT"),
    ]
    .join("\n")
}

const LEGACY_COMMANDS_PER_VIF: usize = 12;

// ---------------------------------------------------------------------------
// Statistics

#[derive(Clone, Copy)]
struct Sample {
    pps: f64,
    cpu_ns: f64,
    /// CPU time of the sender over wall time: how much of its core it got.
    share: f64,
    sent: u64,
    fwd: u64,
}

fn median(v: &[f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let m = s.len() / 2;
    if s.len() % 2 == 1 {
        s[m]
    } else {
        (s[m - 1] + s[m]) / 2.0
    }
}

fn min_max(v: &[f64]) -> (f64, f64) {
    v.iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), x| {
            (lo.min(*x), hi.max(*x))
        })
}

fn ms(d: &[Duration]) -> Vec<f64> {
    d.iter().map(|d| d.as_secs_f64() * 1000.0).collect()
}

/// Results for one N.
struct NResult {
    n: usize,
    sender: u32,
    /// Per setup, per round.
    samples: [Vec<Sample>; 3],
    rules: [String; 3],
    /// `hotplug online` with the default attach = "tc".
    apply_vifguard: Vec<Duration>,
    /// `hotplug online` again while the vif is attached (policy rewrite and
    /// filter replace, nothing created).
    reapply_vifguard: Vec<Duration>,
    /// `hotplug online` with attach = "tcx" (two TCX links created).
    apply_tcx: Vec<Duration>,
    apply_legacy: Vec<Duration>,
    offline_vifguard: Vec<Duration>,
    offline_legacy: Vec<Duration>,
    /// `true` started the same way: process start-up, part of every
    /// column.
    spawn: Vec<Duration>,
}

impl NResult {
    fn pps(&self, s: Setup) -> Vec<f64> {
        self.samples[s.index()].iter().map(|x| x.pps).collect()
    }

    fn cpu(&self, s: Setup) -> Vec<f64> {
        self.samples[s.index()].iter().map(|x| x.cpu_ns).collect()
    }

    /// Median over rounds of the CPU time per packet of `s` above `base`
    /// within the round.
    fn cpu_above(&self, s: Setup, base: Setup) -> f64 {
        let d: Vec<f64> = self.samples[s.index()]
            .iter()
            .zip(&self.samples[base.index()])
            .map(|(a, b)| a.cpu_ns - b.cpu_ns)
            .collect();
        median(&d)
    }

    /// Median over rounds of the rate ratio `s` / `base` within the round.
    fn ratio(&self, s: Setup, base: Setup) -> f64 {
        let r: Vec<f64> = self.samples[s.index()]
            .iter()
            .zip(&self.samples[base.index()])
            .map(|(a, b)| a.pps / b.pps)
            .collect();
        median(&r)
    }

    fn loss(&self, s: Setup) -> f64 {
        let (sent, fwd) = self.samples[s.index()]
            .iter()
            .fold((0u64, 0u64), |(a, b), x| (a + x.sent, b + x.fwd));
        if sent == 0 {
            0.0
        } else {
            1.0 - fwd as f64 / sent as f64
        }
    }
}

/// `vifguard sync` of many vifs, one way of attaching.
struct SyncRun {
    attach: Attach,
    /// Policies with a /24 prefix each (trie entries) instead of one address.
    prefixes: bool,
    /// From nothing attached and nothing pinned, as after a reboot.
    cold: Vec<Duration>,
    /// Everything attached already.
    warm: Vec<Duration>,
}

struct SyncResult {
    count: usize,
    runs: Vec<SyncRun>,
}

// ---------------------------------------------------------------------------
// The runs

/// Builds every host (each N, each setup), checks them, then measures them
/// all interleaved: every round visits all hosts, starting one further each
/// round, so slow drifts of the machine's load spread over all of them.
fn bench_datapath(ctx: &Ctx, cfg: &Config, blaster: &Blaster) -> Res<Vec<NResult>> {
    let mut hosts: Vec<Host> = Vec::new();
    for &n in &cfg.ns {
        let t0 = Instant::now();
        for setup in Setup::ALL {
            hosts.push(Host::build(ctx, setup, n)?);
        }
        progress(&format!(
            "N={n}: three hosts built in {:.1} s",
            t0.elapsed().as_secs_f64()
        ));
    }
    progress("checking that legitimate frames pass and spoofed ones are dropped");
    for h in &hosts {
        h.verify(blaster)?;
    }
    let frames: Vec<Vec<u8>> = hosts.iter().map(Host::legit).collect();
    for (h, f) in hosts.iter().zip(&frames) {
        h.measure(blaster, f, (cfg.seconds / 4.0).min(0.5))?;
    }
    let mut samples: Vec<Vec<Sample>> = vec![Vec::new(); hosts.len()];
    for round in 0..cfg.rounds {
        let t0 = Instant::now();
        for k in 0..hosts.len() {
            let i = (round + k) % hosts.len();
            let s = hosts[i].measure(blaster, &frames[i], cfg.seconds)?;
            samples[i].push(s);
        }
        let line: Vec<String> = hosts
            .iter()
            .zip(&samples)
            .map(|(h, s)| {
                format!(
                    "N={} {} {:.3} Mpps {:.0} ns {:.0}%",
                    h.n,
                    h.setup.tag(),
                    s[round].pps / 1e6,
                    s[round].cpu_ns,
                    s[round].share * 100.0
                )
            })
            .collect();
        progress(&format!(
            "round {}/{} ({:.0} s): {}",
            round + 1,
            cfg.rounds,
            t0.elapsed().as_secs_f64(),
            line.join(", ")
        ));
    }
    let mut results = Vec::new();
    for &n in &cfg.ns {
        let of = |setup: Setup| -> Res<usize> {
            hosts
                .iter()
                .position(|h| h.n == n && h.setup == setup)
                .ok_or_else(|| format!("no host for N={n} {}", setup.label()))
        };
        let idx = [
            of(Setup::NoFilter)?,
            of(Setup::Legacy)?,
            of(Setup::Vifguard)?,
        ];
        let mut r = NResult {
            n,
            sender: hosts[idx[0]].sender,
            samples: idx.map(|i| samples[i].clone()),
            rules: idx.map(|i| hosts[i].rules.clone()),
            apply_vifguard: Vec::new(),
            reapply_vifguard: Vec::new(),
            apply_tcx: Vec::new(),
            apply_legacy: Vec::new(),
            offline_vifguard: Vec::new(),
            offline_legacy: Vec::new(),
            spawn: Vec::new(),
        };
        apply_times(ctx, cfg, &hosts[idx[1]], &hosts[idx[2]], &mut r)?;
        results.push(r);
    }
    drop(hosts);
    // Namespace teardown continues in the kernel for a moment.
    std::thread::sleep(Duration::from_secs(1));
    Ok(results)
}

/// One more vif on hosts with N vifs: `vifguard hotplug online` against the
/// vif_rules.py command series, alternating which goes first; each followed
/// by its offline counterpart.
fn apply_times(ctx: &Ctx, cfg: &Config, legacy: &Host, vg: &Host, r: &mut NResult) -> Res<()> {
    let n = r.n;
    progress(&format!(
        "N={n}: timing one more vif's apply (vifguard hotplug online vs vif_rules.py online commands)"
    ));
    let extra = vg.extra;
    let online = legacy_online_script(legacy.extra);
    let offline = legacy_offline_script(legacy.extra);
    let vg_cmd_with = |action: &str, attach: Attach| {
        let mut c = ctx.vifguard_timed(vg.bpffs.path(), attach);
        c.args(["hotplug", action])
            .env("vif", vif_name(extra))
            .env("XENBUS_PATH", format!("backend/vif/{extra}/0"));
        c
    };
    let vg_cmd = |action: &str| vg_cmd_with(action, Attach::Tc);
    let legacy_turn = |r: &mut NResult| -> Res<()> {
        r.apply_legacy.push(timed(
            &legacy.dom0,
            Command::new("sh").args(["-ec", &online]),
        )?);
        r.offline_legacy.push(timed(
            &legacy.dom0,
            Command::new("sh").args(["-ec", &offline]),
        )?);
        Ok(())
    };
    for rep in 0..cfg.apply_reps {
        legacy.renew_extra()?;
        vg.renew_extra()?;
        if rep % 2 == 0 {
            legacy_turn(r)?;
        }
        r.apply_vifguard
            .push(timed(&vg.dom0, &mut vg_cmd("online"))?);
        let hooks = count_attached(&vg.dom0, vg.bpffs.path())?;
        if hooks != 2 * (n + 1) {
            return Err(format!(
                "vifguard hotplug online: {hooks} hooks attached, expected {}",
                2 * (n + 1)
            ));
        }
        r.reapply_vifguard
            .push(timed(&vg.dom0, &mut vg_cmd("online"))?);
        r.offline_vifguard
            .push(timed(&vg.dom0, &mut vg_cmd("offline"))?);
        if rep % 2 == 1 {
            legacy_turn(r)?;
        }
        r.spawn.push(timed(&vg.dom0, &mut Command::new("true"))?);
    }
    // TCX in a loop of its own: a TCX link's teardown leaves RCU work
    // behind that slows the next attach on the machine.
    for _ in 0..cfg.apply_reps {
        vg.renew_extra()?;
        r.apply_tcx
            .push(timed(&vg.dom0, &mut vg_cmd_with("online", Attach::Tcx))?);
        let hooks = count_attached(&vg.dom0, vg.bpffs.path())?;
        if hooks != 2 * (n + 1) {
            return Err(format!(
                "vifguard hotplug online (tcx): {hooks} hooks attached, expected {}",
                2 * (n + 1)
            ));
        }
        run(&mut vg_cmd_with("offline", Attach::Tcx))?;
    }
    progress(&format!(
        "N={n}: apply vifguard {:.1} ms, legacy {:.1} ms (medians)",
        median(&ms(&r.apply_vifguard)),
        median(&ms(&r.apply_legacy))
    ));
    Ok(())
}

fn bench_sync(ctx: &Ctx, cfg: &Config) -> Res<SyncResult> {
    let count = cfg.sync_count;
    progress(&format!("sync: creating {count} vifs"));
    let dom0 = new_ns(&ctx.run_id, "sync-dom0")?;
    let mut b = String::new();
    for d in 1..=count as u32 {
        let vif = vif_name(d);
        let _ = writeln!(b, "link add {vif} type veth peer name g{d}");
        let _ = writeln!(b, "link set {vif} up");
        let _ = writeln!(b, "link set g{d} up");
    }
    ip_batch(&dom0, &b)?;
    let root = BpffsDir::adopt(ctx.bpffs("sync"));
    let vifs: Vec<String> = (1..=count as u32).map(vif_name).collect();
    let mut runs = Vec::new();
    for (attach, prefixes) in [
        (Attach::Tc, false),
        (Attach::Tcx, false),
        (Attach::Tc, true),
    ] {
        if prefixes {
            publish_prefixes(&ctx.xs, 1..=count as u32)?;
        }
        let mut run = SyncRun {
            attach,
            prefixes,
            cold: Vec::new(),
            warm: Vec::new(),
        };
        for rep in 0..cfg.sync_reps {
            clear(&dom0, root.path(), &vifs)?;
            let cold = timed(&dom0, ctx.vifguard_timed(root.path(), attach).arg("sync"))?;
            let hooks = count_attached(&dom0, root.path())?;
            if hooks != 2 * count {
                return Err(format!(
                    "vifguard sync ({}) attached {hooks} hooks, expected {}",
                    attach.name(),
                    2 * count
                ));
            }
            if prefixes {
                let entries = trie_entries(root.path())?;
                if entries != count {
                    return Err(format!(
                        "vifguard sync with prefixes: {entries} SRC_V4 trie entries, expected {count}"
                    ));
                }
            }
            let warm = timed(&dom0, ctx.vifguard_timed(root.path(), attach).arg("sync"))?;
            progress(&format!(
                "sync {}{} {}/{}: cold {:.2} s, warm {:.2} s",
                attach.name(),
                if prefixes { ", a /24 per vif" } else { "" },
                rep + 1,
                cfg.sync_reps,
                cold.as_secs_f64(),
                warm.as_secs_f64()
            ));
            run.cold.push(cold);
            run.warm.push(warm);
        }
        runs.push(run);
        if prefixes {
            publish_policies(&ctx.xs, 1..=count as u32)?;
        }
    }
    clear(&dom0, root.path(), &vifs)?;
    drop(root);
    drop(dom0);
    Ok(SyncResult { count, runs })
}

// ---------------------------------------------------------------------------
// Report

fn mpps(x: f64) -> String {
    format!("{:.3}", x / 1e6)
}

fn verdict(ok: bool) -> &'static str {
    if ok { "**met**" } else { "**missed**" }
}

fn report(cfg: &Config, blaster: &Blaster, res: &[NResult], sync: &SyncResult) -> String {
    let mut o = String::new();
    let cpu = blaster.cpu;
    let all_shares: Vec<f64> = res
        .iter()
        .flat_map(|r| r.samples.iter().flatten().map(|x| x.share))
        .collect();
    let shares = min_max(&all_shares);
    let _ = writeln!(
        o,
        "Setup: for each N, three simulated dom0s in network namespaces (one per setup below), all {} of them present at once: bridge `br0`, uplink `eth0` (a veth to a sink namespace; a static FDB entry for the gateway MAC on it, so nothing is flooded), and N guest vifs `vif<domid>.0` (veths; the sending guest's peer is in its own namespace, the others' peers stay in dom0), IPv6, multicast and the bridge's multicast snooping off (no IGMP/MLD/ND chatter reaches the sink, so its counter counts the guest's frames only). \
Traffic: 60-byte IPv4 UDP frames (64 on the wire) from the guest in the middle of the rule lists (domid N/2+1) to the gateway, generated with AF_PACKET `sendmmsg` ({BATCH} frames per call) by one thread pinned to CPU {cpu}{}. The whole path (guest veth, bridge, filter, uplink veth, sink) runs in that thread's softirq on that core, so the rate is one core's worth. \
Forwarded = the kernel's rx_packets counter of the sink's veth end; CPU/pkt = the sending thread's CPU time (which includes the softirq work run in its context) plus CPU {cpu}'s ksoftirqd, per forwarded packet. The sender got {} of its core (CPU time over wall time, all measurements), so the rates are not a scheduling artefact. \
{} rounds of {} s per host; every round visits all hosts, starting one further each round (so every setup and N is measured interleaved with the others); medians; ratios are medians of the per-round ratios to no filter of the same N. Before measuring, each host is checked: 2,000 legitimate frames reach the sink, 2,000 with a spoofed source do not (legacy, vifguard) or do (no filter).\n",
        3 * res.len(),
        match (blaster.pinned, blaster.niced, blaster.autogroup.is_some()) {
            (true, true, true) =>
                " at nice -20, its session's scheduler autogroup at nice -20 during the run (on this shared machine other sessions' jobs would otherwise take part of the core)",
            (true, true, false) => " at nice -20",
            (true, false, _) => "",
            (false, _, _) => " (pinning failed)",
        },
        if (shares.0 * 100.0).round() == (shares.1 * 100.0).round() {
            format!("{:.0}%", shares.1 * 100.0)
        } else {
            format!("{:.0}–{:.0}%", shares.0 * 100.0, shares.1 * 100.0)
        },
        cfg.rounds,
        cfg.seconds
    );
    let _ = writeln!(
        o,
        "- **no filter**: the bridge alone; `net.bridge.bridge-nf-call-{{iptables,arptables,ip6tables}} = 0` in dom0 (they are per namespace; the kernel has br_netfilter built in).\n\
- **legacy rules**: OpenStack's XenServer `vif_rules.py online` rules for every vif on top of its `host-rules` (FORWARD chains with policy DROP, accept from/to the uplink): per vif, ebtables `-s ! MAC -i VIF -j DROP` (inserted at the top) and ARP/IPv4 to the vif by destination address, arptables Request (sender MAC) and Reply (sender IP and MAC), iptables `-m physdev --physdev-in VIF -s IP -j ACCEPT`; bridge-nf-call-iptables/arptables = 1. Backends: `{EBTABLES}` (this kernel has no ebtables legacy support), `{ARPTABLES}` (arptables-nft has no FORWARD chain), `{IPTABLES}`. XAPI's bridge backend (`setup-vif-rules`) has the same shape (a jump per vif in FORWARD to a per-vif ebtables chain), so the same linear walk.\n\
- **vifguard TC**: `vifguard sync` attached to all N vifs (policies from a test xenstored, xl keys: MAC, one IPv4 address, `locked`); bridge-nf-call-* = 0.\n"
    );

    let _ = writeln!(o, "### Forwarding rate and CPU per packet\n");
    let _ = writeln!(
        o,
        "| N | setup | forwarded Mpps | ratio to no filter | min–max Mpps | CPU ns/pkt | filter ns/pkt | rules |"
    );
    let _ = writeln!(o, "|---|---|---|---|---|---|---|---|");
    for r in res {
        for s in Setup::ALL {
            let pps = r.pps(s);
            let (lo, hi) = min_max(&pps);
            let cpu = median(&r.cpu(s));
            let loss = r.loss(s);
            let _ = writeln!(
                o,
                "| {} | {} | {} | {:.2} | {}–{} | {:.0} | {} | {}{} |",
                r.n,
                s.label(),
                mpps(median(&pps)),
                r.ratio(s, Setup::NoFilter),
                mpps(lo),
                mpps(hi),
                cpu,
                if s == Setup::NoFilter {
                    "–".to_string()
                } else {
                    format!("{:+.0}", r.cpu_above(s, Setup::NoFilter))
                },
                r.rules[s.index()],
                if loss > 0.01 {
                    format!(" ({:.1}% of sent frames not forwarded)", loss * 100.0)
                } else {
                    String::new()
                }
            );
        }
    }
    let _ = writeln!(
        o,
        "\n\"filter ns/pkt\" is the CPU time per packet above no filter in the same N and round (median over rounds). The sending guest is domid {}.\n",
        res.iter()
            .map(|r| format!("{} (N={})", r.sender, r.n))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let _ = writeln!(
        o,
        "![forwarded rate vs number of vifs](docs/bench-live.svg)\n"
    );

    let _ = writeln!(o, "### Applying one vif's policy\n");
    let _ = writeln!(
        o,
        "On the hosts above (N vifs already filtered), one more vif `vif<N+1>.0` is brought online and offline {} times, alternating which goes first; before each round it is deleted and created again, as `xl destroy`/`xl create` do (a new ifindex, no qdisc: what a hotplug sees). vifguard: the release binary (`cargo xtask build`: statically linked), `vifguard hotplug online` (env `vif`, `XENBUS_PATH`), started in dom0's namespace with posix_spawn from a thread that joined it (as a small hotplug shell script starts it), which also reads and checks the policy from xenstore, with the default `attach = \"tc\"` (clsact qdisc + two cls_bpf filters over netlink) and, in its own column and its own loop (a TCX link's teardown leaves RCU work behind that slows the next attach), with `attach = \"tcx\"` (two pinned TCX links). Legacy: `sh -ec '<the {LEGACY_COMMANDS_PER_VIF} commands of vif_rules.py online>'` started the same way (the rule commands only; the script's own xenstore reads are not counted). Wall time of the whole process tree; medians. \"re-apply\" is `hotplug online` again while the vif is attached (policy rewritten, both filters re-pointed, nothing created). `true` started the same way is shown: process start-up, part of every column.\n",
        cfg.apply_reps
    );
    let _ = writeln!(
        o,
        "| N | vifguard hotplug online ms | legacy commands ms | speedup | vifguard re-apply ms | vifguard offline ms | legacy offline ms | vifguard online, attach = tcx, ms | `true` alone ms |"
    );
    let _ = writeln!(o, "|---|---|---|---|---|---|---|---|---|");
    for r in res {
        let v = median(&ms(&r.apply_vifguard));
        let l = median(&ms(&r.apply_legacy));
        let _ = writeln!(
            o,
            "| {} | {:.1} | {:.1} | {:.1}x | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} |",
            r.n,
            v,
            l,
            l / v,
            median(&ms(&r.reapply_vifguard)),
            median(&ms(&r.offline_vifguard)),
            median(&ms(&r.offline_legacy)),
            median(&ms(&r.apply_tcx)),
            median(&ms(&r.spawn))
        );
    }

    let _ = writeln!(o, "\n### Sync of {} interfaces\n", sync.count);
    let _ = writeln!(
        o,
        "{} veth vifs `vif1.0`…`vif{}.0` in one namespace, their policies in the test xenstored; `vifguard sync` in that namespace, {} times each way of attaching, and with `attach = \"tc\"` once more with every vif's `ip` node a /24 prefix instead of one address (an LPM trie entry per vif: what a sync costs when policies have prefixes): cold (nothing pinned and nothing attached, as after a host reboot: loads and verifies the programs, creates and pins the maps, resolves every policy, attaches 2 hooks per vif) and warm (everything attached: re-resolves every policy and re-points every hook). Before each cold run the bpffs root and every clsact qdisc are removed and the benchmark waits until the kernel has no vifguard program on any vif.\n",
        sync.count,
        sync.count,
        sync.runs.first().map_or(0, |r| r.cold.len()),
    );
    let _ = writeln!(o, "| attach | policies | sync | median s | min–max s |");
    let _ = writeln!(o, "|---|---|---|---|---|");
    for run in &sync.runs {
        let policies = if run.prefixes {
            "a /24 each (LPM trie entries)"
        } else {
            "one address each"
        };
        for (name, v) in [("cold", &run.cold), ("warm", &run.warm)] {
            let s: Vec<f64> = v.iter().map(Duration::as_secs_f64).collect();
            let (lo, hi) = min_max(&s);
            let _ = writeln!(
                o,
                "| {} | {policies} | {name} | {:.2} | {lo:.2}–{hi:.2} |",
                run.attach.name(),
                median(&s)
            );
        }
    }
    let secs = |attach: Attach, cold: bool| {
        sync.runs
            .iter()
            .find(|r| r.attach == attach && !r.prefixes)
            .map_or(f64::NAN, |r| {
                median(&ms(if cold { &r.cold } else { &r.warm })) / 1000.0
            })
    };
    let (cold, warm) = (secs(Attach::Tc, true), secs(Attach::Tc, false));
    let tcx_cold = secs(Attach::Tcx, true);
    let _ = writeln!(
        o,
        "\nWith `attach = \"tcx\"` every link creation waits for an RCU grace period in the kernel (`tcx_entry_sync()` → `synchronize_rcu()` in kernel/bpf/tcx.c, under the RTNL lock, so parallel attaches do not help): {:.1} ms per link here ({tcx_cold:.1} s for {} links). That is why the default is classic tc.",
        tcx_cold * 1000.0 / (2 * sync.count) as f64,
        2 * sync.count
    );

    let _ = writeln!(o, "\n### Targets\n");
    let first = res.first();
    let last = res.last();
    if let (Some(first), Some(last)) = (first, last) {
        let vg_first = median(&first.pps(Setup::Vifguard));
        let vg_last = median(&last.pps(Setup::Vifguard));
        let keep = vg_last / vg_first;
        let vs_legacy = last.ratio(Setup::Vifguard, Setup::Legacy);
        let speedups: Vec<(usize, f64)> = res
            .iter()
            .map(|r| {
                (
                    r.n,
                    median(&ms(&r.apply_legacy)) / median(&ms(&r.apply_vifguard)),
                )
            })
            .collect();
        let min_speedup = speedups.iter().map(|x| x.1).fold(f64::INFINITY, f64::min);
        let miss = |ok: bool, why: String| if ok { String::new() } else { why };
        // (N, speedup, vifguard ms, legacy ms, `true` ms, re-apply ms)
        let worst = res
            .iter()
            .map(|r| {
                let (v, l) = (median(&ms(&r.apply_vifguard)), median(&ms(&r.apply_legacy)));
                (
                    r.n,
                    l / v,
                    v,
                    l,
                    median(&ms(&r.spawn)),
                    median(&ms(&r.reapply_vifguard)),
                )
            })
            .fold((0, f64::INFINITY, 0.0, 0.0, 0.0, 0.0), |w, x| {
                if x.1 < w.1 { x } else { w }
            });
        let _ = writeln!(
            o,
            "| target | measured | | if missed: by how much, why |\n|---|---|---|---|"
        );
        let _ = writeln!(
            o,
            "| vifguard at N={} within 10% of its rate at N={} | {:.1}% of it ({} vs {} Mpps) | {} | {} |",
            last.n,
            first.n,
            keep * 100.0,
            mpps(vg_last),
            mpps(vg_first),
            verdict(keep >= 0.9),
            miss(
                keep >= 0.9,
                format!("{:.1} points below 90%", 90.0 - keep * 100.0)
            )
        );
        let _ = writeln!(
            o,
            "| vifguard ≥ 1.5x legacy at N={} | {:.2}x | {} | {} |",
            last.n,
            vs_legacy,
            verdict(vs_legacy >= 1.5),
            miss(vs_legacy >= 1.5, format!("{:.2}x short", 1.5 - vs_legacy))
        );
        let _ = writeln!(
            o,
            "| per-vif apply ≥ 10x faster than legacy | {} | {} | {} |",
            speedups
                .iter()
                .map(|(n, s)| format!("{s:.1}x at N={n}"))
                .collect::<Vec<_>>()
                .join(", "),
            verdict(min_speedup >= 10.0),
            miss(
                min_speedup >= 10.0,
                format!(
                    "Worst {:.1}x (N={}), a factor {:.1} short of 10x: there vifguard takes {:.1} ms against {:.1} ms. Of vifguard's time, starting a process (`true`) takes {:.1} ms; `hotplug online` on an attached vif (nothing created) {:.1} ms.",
                    worst.1,
                    worst.0,
                    10.0 / worst.1,
                    worst.2,
                    worst.3,
                    worst.4,
                    worst.5
                )
            )
        );
        let _ = writeln!(
            o,
            "| sync of {} interfaces < 2 s (cold, as at boot) | {:.2} s cold, {:.2} s warm (attach = tc); {:.2} s cold with attach = tcx | {} | {} |",
            sync.count,
            cold,
            warm,
            tcx_cold,
            verdict(cold < 2.0),
            miss(cold < 2.0, format!("{:.2}x over 2 s", cold / 2.0))
        );
    }
    o
}

/// A line chart of forwarded rate vs N (log scale), one polyline per setup.
fn svg(res: &[NResult]) -> String {
    let (w, h) = (640.0, 400.0);
    let (left, right, top, bottom) = (70.0, 170.0, 40.0, 60.0);
    let pw = w - left - right;
    let ph = h - top - bottom;
    let ymax_raw = res
        .iter()
        .flat_map(|r| Setup::ALL.iter().map(move |s| median(&r.pps(*s))))
        .fold(0.0f64, f64::max)
        / 1e6;
    // A round axis maximum: 1, 2 or 5 times a power of ten, with 5 ticks.
    let step = {
        let raw = (ymax_raw * 1.1 / 5.0).max(1e-3);
        let p = 10f64.powf(raw.log10().floor());
        let m = raw / p;
        p * if m <= 1.0 {
            1.0
        } else if m <= 2.0 {
            2.0
        } else if m <= 5.0 {
            5.0
        } else {
            10.0
        }
    };
    let ticks = ((ymax_raw * 1.1 / step).ceil() as usize).max(1);
    let ymax = step * ticks as f64;
    let xs: Vec<f64> = res.iter().map(|r| (r.n as f64).log2()).collect();
    let (xmin, xmax) = (
        xs.iter().copied().fold(f64::INFINITY, f64::min),
        xs.iter().copied().fold(f64::NEG_INFINITY, f64::max),
    );
    let span = if xmax > xmin { xmax - xmin } else { 1.0 };
    let px = |x: f64| left + (x - xmin) / span * pw;
    let py = |y: f64| top + ph - y / ymax * ph;
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r#"<rect width="{w}" height="{h}" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="{}" y="22" text-anchor="middle" font-size="14">Forwarded 64-byte UDP frames from one guest vs number of vifs</text>"#,
        left + pw / 2.0
    );
    for i in 0..=ticks {
        let y = step * i as f64;
        let _ = writeln!(
            s,
            r##"<line x1="{left}" y1="{0:.1}" x2="{1:.1}" y2="{0:.1}" stroke="#ddd"/><text x="{2:.1}" y="{3:.1}" text-anchor="end">{4}</text>"##,
            py(y),
            left + pw,
            left - 6.0,
            py(y) + 4.0,
            if step < 0.1 {
                format!("{y:.2}")
            } else {
                format!("{y:.1}")
            }
        );
    }
    for (r, x) in res.iter().zip(&xs) {
        let _ = writeln!(
            s,
            r##"<line x1="{0:.1}" y1="{top}" x2="{0:.1}" y2="{1:.1}" stroke="#eee"/><text x="{0:.1}" y="{2:.1}" text-anchor="middle">{3}</text>"##,
            px(*x),
            top + ph,
            top + ph + 18.0,
            r.n
        );
    }
    let _ = writeln!(
        s,
        r##"<line x1="{left}" y1="{top}" x2="{left}" y2="{0:.1}" stroke="#333"/><line x1="{left}" y1="{0:.1}" x2="{1:.1}" y2="{0:.1}" stroke="#333"/>"##,
        top + ph,
        left + pw
    );
    let _ = writeln!(
        s,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">number of vifs N (log scale)</text>"#,
        left + pw / 2.0,
        h - 18.0
    );
    let _ = writeln!(
        s,
        r#"<text x="18" y="{0:.1}" text-anchor="middle" transform="rotate(-90 18 {0:.1})">forwarded Mpps (median)</text>"#,
        top + ph / 2.0
    );
    let colors = ["#7f7f7f", "#d62728", "#1f77b4"];
    for setup in Setup::ALL {
        let color = colors[setup.index()];
        let pts: Vec<(f64, f64)> = res
            .iter()
            .zip(&xs)
            .map(|(r, x)| (px(*x), py(median(&r.pps(setup)) / 1e6)))
            .collect();
        let line: Vec<String> = pts.iter().map(|(x, y)| format!("{x:.1},{y:.1}")).collect();
        let _ = writeln!(
            s,
            r#"<polyline points="{}" fill="none" stroke="{color}" stroke-width="2"/>"#,
            line.join(" ")
        );
        for (x, y) in &pts {
            let _ = writeln!(
                s,
                r#"<circle cx="{x:.1}" cy="{y:.1}" r="3.5" fill="{color}"/>"#
            );
        }
        let ly = top + 20.0 + setup.index() as f64 * 22.0;
        let lx = left + pw + 16.0;
        let _ = writeln!(
            s,
            r#"<line x1="{lx:.1}" y1="{ly:.1}" x2="{:.1}" y2="{ly:.1}" stroke="{color}" stroke-width="2"/><circle cx="{:.1}" cy="{ly:.1}" r="3.5" fill="{color}"/><text x="{:.1}" y="{:.1}">{}</text>"#,
            lx + 24.0,
            lx + 12.0,
            lx + 30.0,
            ly + 4.0,
            setup.label()
        );
    }
    s.push_str("</svg>\n");
    s
}

// ---------------------------------------------------------------------------

fn real_main() -> Res<()> {
    let cfg = parse_args()?;
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Err("needs root (network namespaces, netfilter rules, eBPF)".into());
    }
    let vifguard = find_vifguard()?;
    let max_n = cfg.ns.iter().copied().max().unwrap_or(1);
    let tcx_config = std::env::temp_dir().join(format!("vifguard-bench-{}-tcx.toml", cfg.run_id));
    std::fs::write(&tcx_config, "attach = \"tcx\"\n")
        .map_err(|e| format!("{}: {e}", tcx_config.display()))?;
    let ctx = Ctx {
        run_id: cfg.run_id.clone(),
        vifguard,
        xs: TestXenstored::start(),
        tcx_config,
    };
    let domids = (max_n + 1).max(cfg.sync_count) as u32;
    progress(&format!(
        "run {}: publishing {domids} vif policies in a test xenstored",
        ctx.run_id
    ));
    publish_policies(&ctx.xs, 1..=domids)?;
    let blaster = Blaster::start();
    if !blaster.pinned || !blaster.niced {
        progress("warning: could not pin the sending thread or raise its priority");
    }
    let res = bench_datapath(&ctx, &cfg, &blaster)?;
    let sync = bench_sync(&ctx, &cfg)?;
    if let Some(path) = &cfg.svg {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        std::fs::write(path, svg(&res)).map_err(|e| format!("{}: {e}", path.display()))?;
        progress(&format!("wrote {}", path.display()));
    }
    let _ = std::fs::remove_file(&ctx.tcx_config);
    print!("{}", report(&cfg, &blaster, &res, &sync));
    Ok(())
}

fn main() -> ExitCode {
    for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        // SAFETY: the handler only stores to an atomic.
        unsafe {
            libc::signal(
                sig,
                on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t,
            )
        };
    }
    match real_main() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vifguard-bench-live: {e}");
            ExitCode::FAILURE
        }
    }
}
