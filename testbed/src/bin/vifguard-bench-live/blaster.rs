//! The sending guest's traffic: one thread, pinned to the last CPU at nice
//! -20, sends frames with `sendmmsg` on an AF_PACKET socket on request and
//! reports its own CPU time; the rest of the path runs in its softirq.

use std::os::fd::RawFd;
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use testbed::netns::{NetNs, RawSocket};

use crate::STOP;

/// Messages per sendmmsg call.
pub const BATCH: usize = 64;

/// The sending guest's AF_PACKET socket (send only, see
/// [`RawSocket::bind_send_only`]).
pub struct PacketSocket {
    raw: RawSocket,
}

impl PacketSocket {
    pub fn open(ns: &NetNs, ifname: &str) -> Result<PacketSocket> {
        let ifindex = ns.ifindex(ifname) as i32;
        let _in = ns.enter();
        let raw = RawSocket::bind_send_only(ifindex)
            .with_context(|| format!("AF_PACKET socket on {ifname}"))?;
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

/// How much one job sends.
pub enum Amount {
    For(Duration),
    Count(u64),
}

struct Job {
    fd: RawFd,
    sll: libc::sockaddr_ll,
    frame: Vec<u8>,
    amount: Amount,
    reply: mpsc::Sender<Result<Blast>>,
}

/// What one job sent, in how much wall time and the sending thread's CPU
/// time.
pub struct Blast {
    pub sent: u64,
    pub elapsed: Duration,
    pub cpu: Duration,
}

/// The sending thread: pinned to one CPU, nice -20, sends on request.
pub struct Blaster {
    jobs: Option<mpsc::Sender<Job>>,
    thread: Option<std::thread::JoinHandle<()>>,
    pub cpu: usize,
    ksoftirqd: Option<u32>,
    pub pinned: bool,
    pub niced: bool,
    /// The autogroup nice value to restore, if raised.
    pub autogroup: Option<i32>,
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

fn blast(job: &Job) -> Result<Blast> {
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
            bail!("interrupted");
        }
        // SAFETY: hdrs holds `want` <= BATCH valid headers.
        let r = unsafe { libc::sendmmsg(job.fd, hdrs.as_mut_ptr(), want as u32, 0) };
        if r < 0 {
            let e = std::io::Error::last_os_error();
            match e.raw_os_error() {
                Some(libc::ENOBUFS | libc::EAGAIN | libc::EINTR) => continue,
                _ => return Err(e).context("sendmmsg"),
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
    pub fn start() -> Blaster {
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

    pub fn send(&self, sock: &PacketSocket, frame: &[u8], amount: Amount) -> Result<Blast> {
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
            .context("sender thread gone")?
            .send(job)
            .map_err(|_| anyhow!("sender thread gone"))?;
        result.recv().map_err(|_| anyhow!("sender thread died"))?
    }

    pub fn softirq_ns(&self) -> u64 {
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
