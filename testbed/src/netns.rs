//! Network namespaces the tests create, and raw sockets inside them. Every
//! namespace is deleted when its handle drops, also when a test panics;
//! deleting a namespace deletes the veths in it.

use std::ffi::CString;
use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

static NEXT: AtomicU32 = AtomicU32::new(0);

/// A named network namespace (`ip netns`), removed on drop.
pub struct NetNs {
    pub name: String,
}

impl NetNs {
    /// A fresh namespace named `vg-<tag>-<pid>-<n>`, with loopback up.
    pub fn new(tag: &str) -> NetNs {
        let name = format!(
            "vg-{tag}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        sh(&["ip", "netns", "add", &name]);
        let ns = NetNs { name };
        ns.ip(&["link", "set", "lo", "up"]);
        ns
    }

    /// Runs `ip -n <ns> <args>`, panicking with its output on failure.
    pub fn ip(&self, args: &[&str]) {
        let mut all = vec!["ip", "-n", &self.name];
        all.extend_from_slice(args);
        sh(&all);
    }

    /// Runs a command inside the namespace.
    pub fn exec(&self, args: &[&str]) -> std::process::Output {
        Command::new("ip")
            .args(["netns", "exec", &self.name])
            .args(args)
            .output()
            .expect("run ip netns exec")
    }

    /// Switches the calling thread into this namespace until the guard
    /// drops (sockets opened meanwhile stay in it).
    pub fn enter(&self) -> Entered {
        let back = File::open("/proc/thread-self/ns/net").expect("open own netns");
        let target = File::open(format!("/run/netns/{}", self.name)).expect("open netns");
        // SAFETY: setns on valid namespace fds, for this thread only.
        let rc = unsafe { libc::setns(target.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(
            rc,
            0,
            "setns into {}: {}",
            self.name,
            std::io::Error::last_os_error()
        );
        Entered { back }
    }

    pub fn ifindex(&self, ifname: &str) -> u32 {
        let _in = self.enter();
        let c = CString::new(ifname).expect("interface name");
        // SAFETY: a valid NUL-terminated name.
        let ix = unsafe { libc::if_nametoindex(c.as_ptr()) };
        assert_ne!(ix, 0, "no interface {ifname} in {}", self.name);
        ix
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// Restores the thread's previous namespace on drop.
pub struct Entered {
    back: File,
}

impl Drop for Entered {
    fn drop(&mut self) {
        // SAFETY: setns back to the namespace this thread came from.
        unsafe { libc::setns(self.back.as_raw_fd(), libc::CLONE_NEWNET) };
    }
}

/// Runs a command on the host, panicking with its output on failure.
pub fn sh(args: &[&str]) {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("run {args:?}: {e}"));
    assert!(
        out.status.success(),
        "{args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `vifguard` run in network namespace `ns` as a test host's dom0 runs it:
/// `nsenter --net`, not `ip netns exec`, which remounts /sys and so hides
/// /sys/fs/bpf.
pub fn vifguard_in(ns: &NetNs, vifguard: &std::path::Path) -> Command {
    let mut c = Command::new("nsenter");
    c.arg(format!("--net=/run/netns/{}", ns.name)).arg(vifguard);
    c
}

/// Runs `cmd`: its stdout, or an error naming it with its exit status and
/// output.
pub fn run_ok(cmd: &mut Command) -> Result<String, String> {
    let out = cmd.output().map_err(|e| format!("{cmd:?}: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "{cmd:?} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout).trim(),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// A veth pair `a` (in `ns_a`) <-> `b` (in `ns_b`), both up.
pub fn veth(ns_a: &NetNs, a: &str, ns_b: &NetNs, b: &str) {
    ns_a.ip(&[
        "link", "add", a, "type", "veth", "peer", "name", b, "netns", &ns_b.name,
    ]);
    ns_a.ip(&["link", "set", a, "up"]);
    ns_b.ip(&["link", "set", b, "up"]);
}

/// An AF_PACKET socket bound to one interface: sends raw frames and
/// receives every frame the interface sees.
pub struct RawSocket {
    fd: OwnedFd,
    ifindex: i32,
}

impl RawSocket {
    pub fn open(ns: &NetNs, ifname: &str) -> RawSocket {
        let ifindex = ns.ifindex(ifname) as i32;
        let _in = ns.enter();
        RawSocket::bind(ifindex).unwrap_or_else(|e| panic!("AF_PACKET socket on {ifname}: {e}"))
    }

    /// A socket on interface `ifindex` of the calling thread's namespace.
    pub fn bind(ifindex: i32) -> std::io::Result<RawSocket> {
        RawSocket::bind_protocol(ifindex, (libc::ETH_P_ALL as u16).to_be())
    }

    /// A socket that only sends: bound with protocol 0, it receives
    /// nothing (a packet generator would otherwise get a copy of every
    /// frame it sends).
    pub fn bind_send_only(ifindex: i32) -> std::io::Result<RawSocket> {
        RawSocket::bind_protocol(ifindex, 0)
    }

    /// The interface the socket is bound to.
    pub fn ifindex(&self) -> i32 {
        self.ifindex
    }

    /// The descriptor, for callers with their own send loop (sendmmsg).
    pub fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.fd.as_raw_fd()
    }

    fn bind_protocol(ifindex: i32, proto: u16) -> std::io::Result<RawSocket> {
        // SAFETY: plain socket(2); the fd is owned below.
        let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW, i32::from(proto)) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: fd is a fresh, valid descriptor we own.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        // SAFETY: zeroed sockaddr_ll is valid; fields set below.
        let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_protocol = proto;
        sll.sll_ifindex = ifindex;
        // SAFETY: sll is a valid sockaddr_ll of the given size.
        let rc = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&raw const sll).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as u32,
            )
        };
        if rc != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(RawSocket { fd, ifindex })
    }

    pub fn send(&self, frame: &[u8]) {
        self.try_send(frame)
            .unwrap_or_else(|e| panic!("send raw frame: {e}"));
    }

    /// Sends one frame as given (its first 6 bytes are the destination).
    pub fn try_send(&self, frame: &[u8]) -> std::io::Result<()> {
        if frame.len() < 6 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "frame shorter than a destination MAC",
            ));
        }
        // SAFETY: zeroed sockaddr_ll is valid; fields set below.
        let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_ifindex = self.ifindex;
        sll.sll_halen = 6;
        sll.sll_addr[..6].copy_from_slice(&frame[..6]);
        // SAFETY: frame and sll are valid for the given lengths.
        let n = unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                frame.as_ptr().cast(),
                frame.len(),
                0,
                (&raw const sll).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as u32,
            )
        };
        if n < 0 {
            return Err(std::io::Error::last_os_error());
        }
        if n as usize != frame.len() {
            return Err(std::io::Error::other(format!(
                "sent {n} of {} bytes",
                frame.len()
            )));
        }
        Ok(())
    }

    /// Frames received within `wait` (outgoing copies excluded).
    pub fn drain(&self, wait: Duration) -> Vec<Vec<u8>> {
        let deadline = Instant::now() + wait;
        let mut out = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return out;
            }
            let mut pfd = libc::pollfd {
                fd: self.fd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd.
            let ready = unsafe { libc::poll(&mut pfd, 1, left.as_millis() as i32) };
            if ready <= 0 {
                continue;
            }
            let mut buf = vec![0u8; 4096];
            // SAFETY: zeroed sockaddr_ll is valid as an output buffer.
            let mut from: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
            let mut len = std::mem::size_of::<libc::sockaddr_ll>() as u32;
            // SAFETY: buf and from are valid for their lengths.
            let n = unsafe {
                libc::recvfrom(
                    self.fd.as_raw_fd(),
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                    0,
                    (&raw mut from).cast(),
                    &mut len,
                )
            };
            if n > 0 && from.sll_pkttype != libc::PACKET_OUTGOING {
                buf.truncate(n as usize);
                out.push(buf);
            }
        }
    }
}

/// One vifguard tc filter as the kernel lists it (`bpftool net`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct TcFilter {
    pub ifindex: u64,
    /// `tc-ingress` or `tc-egress`, as vifguard names its hooks.
    pub hook: &'static str,
    pub prog_id: u64,
}

/// The cls_bpf filters in `ns` whose program name starts with
/// `vifguard_`, read with `bpftool net -j` (independent of vifguard's own
/// netlink code), sorted.
pub fn vifguard_tc_filters(ns: &NetNs) -> Result<Vec<TcFilter>, String> {
    let out = ns.exec(&["bpftool", "net", "-j"]);
    if !out.status.success() {
        return Err(format!(
            "bpftool net in {}: {}",
            ns.name,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let v: serde_json::Value =
        serde_json::from_slice(&out.stdout).map_err(|e| format!("bpftool net -j: {e}"))?;
    let mut found = Vec::new();
    for f in v[0]["tc"].as_array().map(Vec::as_slice).unwrap_or_default() {
        if !f["name"]
            .as_str()
            .is_some_and(|n| n.starts_with("vifguard_"))
        {
            continue;
        }
        let hook = match f["kind"].as_str() {
            Some("clsact/ingress") => "tc-ingress",
            Some("clsact/egress") => "tc-egress",
            other => return Err(format!("unexpected tc hook {other:?} in {f}")),
        };
        let num = |k: &str| f[k].as_u64().ok_or_else(|| format!("no {k} in {f}"));
        found.push(TcFilter {
            ifindex: num("ifindex")?,
            hook,
            prog_id: num("id")?,
        });
    }
    found.sort();
    Ok(found)
}
