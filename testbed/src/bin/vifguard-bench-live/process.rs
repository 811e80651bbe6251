//! Starting commands, in the host's or a simulated host's network
//! namespace, and what the run reads and writes of a namespace: `ip`,
//! sysctls, interface counters.

use std::io::Write as _;
use std::os::fd::AsRawFd;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use testbed::netns::NetNs;

use crate::check_stop;

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

pub fn run(cmd: &mut Command) -> Result<String> {
    run_stdin(cmd, None)
}

pub fn run_stdin(cmd: &mut Command, input: Option<&str>) -> Result<String> {
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
        .with_context(|| describe(cmd))?;
    if let (Some(text), Some(mut stdin)) = (input, child.stdin.take()) {
        stdin
            .write_all(text.as_bytes())
            .with_context(|| format!("{}: writing stdin", describe(cmd)))?;
    }
    let out = child.wait_with_output().with_context(|| describe(cmd))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        let err = String::from_utf8_lossy(&out.stderr);
        let err: String = err.lines().take(10).collect::<Vec<_>>().join("\n");
        Err(anyhow!(
            "{} failed ({}): {}{}",
            describe(cmd),
            out.status,
            String::from_utf8_lossy(&out.stdout).trim(),
            err.trim()
        ))
    }
}

/// Wall time of `cmd` (a plain command, see
/// [`crate::vifguard::Ctx::vifguard_timed`]) started in `ns`. This thread
/// joins `ns` for the spawn, so the command needs no pre-exec step and the
/// standard library starts it with posix_spawn (vfork), as a small hotplug
/// shell script would: forking this large process (its page tables) would
/// add a cost to every command that a real host does not have.
pub fn timed(ns: &NetNs, cmd: &mut Command) -> Result<Duration> {
    check_stop()?;
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let _in = ns.enter();
    let t0 = Instant::now();
    let out = cmd.output().with_context(|| describe(cmd))?;
    let dt = t0.elapsed();
    if !out.status.success() {
        bail!(
            "{} failed ({}): {}",
            describe(cmd),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(dt)
}

/// A fresh namespace (deleted when the handle drops), loopback up, IPv6 off
/// so no autoconfiguration traffic crosses the bridge.
pub fn new_ns(run_id: &str, label: &str) -> Result<NetNs> {
    let name = format!("vgbench-{run_id}-{label}");
    run(Command::new("ip").args(["netns", "add", &name]))?;
    let ns = NetNs { name };
    ip(&ns, &["link", "set", "lo", "up"])?;
    sysctl(&ns, "net/ipv6/conf/all/disable_ipv6", "1")?;
    sysctl(&ns, "net/ipv6/conf/default/disable_ipv6", "1")?;
    Ok(ns)
}

pub fn ip(ns: &NetNs, args: &[&str]) -> Result<String> {
    run(Command::new("ip").arg("-n").arg(&ns.name).args(args))
}

pub fn ip_batch(ns: &NetNs, batch: &str) -> Result<()> {
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
pub fn sysctl(ns: &NetNs, key: &str, value: &str) -> Result<()> {
    let _in = ns.enter();
    let path = format!("/proc/sys/{key}");
    std::fs::write(&path, value).with_context(|| format!("{path} in {}", ns.name))
}

/// `program` started in the network namespace `ns`: the child joins it
/// (setns) between fork and exec, as `nsenter --net` would but without a
/// process of its own in the timings, and keeps the host's /sys (and so
/// /sys/fs/bpf), unlike `ip netns exec`.
pub fn in_ns(ns: &NetNs, program: &str) -> Command {
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
pub fn rx_packets(ns: &NetNs, ifname: &str) -> Result<u64> {
    let text = {
        let _in = ns.enter();
        std::fs::read_to_string("/proc/thread-self/net/dev")
            .with_context(|| format!("read net/dev of {}", ns.name))?
    };
    for line in text.lines() {
        if let Some((name, rest)) = line.split_once(':')
            && name.trim() == ifname
        {
            return rest
                .split_whitespace()
                .nth(1)
                .and_then(|v| v.parse().ok())
                .with_context(|| format!("malformed net/dev line {line:?}"));
        }
    }
    bail!("{ifname} not in net/dev of {}", ns.name)
}
