//! What every BENCHMARKS.md section says about where it was measured, and
//! how a section is replaced between its markers (other sections stay).

use std::process::Command;

use anyhow::{Context, Result};

const PATH: &str = "BENCHMARKS.md";

/// The trimmed standard output of a command, or "" if it cannot run.
pub fn output_of(cmd: &str, args: &[&str]) -> String {
    Command::new(cmd)
        .args(args)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

/// CPU, cores, memory, kernel, OS and the load when the run started.
pub fn machine_description() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let field = |name: &str| {
        cpuinfo
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split(':').nth(1))
            .map(|s| s.trim().to_string())
    };
    let cpu = field("model name").unwrap_or_else(|| "unknown CPU".into());
    let mhz = field("cpu MHz")
        .map(|m| format!(" @ {m} MHz"))
        .unwrap_or_default();
    let virt = if cpuinfo.contains(" hypervisor") {
        ", virtual machine"
    } else {
        ""
    };
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map(|kb| format!(", {} GiB RAM", (kb + (1 << 19)) >> 20))
        .unwrap_or_default();
    let os = std::fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("PRETTY_NAME=")).map(|l| {
                l.trim_start_matches("PRETTY_NAME=")
                    .trim_matches('"')
                    .to_string()
            })
        })
        .unwrap_or_default();
    let load = load_average(0).unwrap_or_default();
    format!(
        "{cpu}{mhz}, {} cores{virt}{mem}, kernel {}, {os}; load average {load} when the run started",
        output_of("nproc", &[]),
        output_of("uname", &["-r"]),
    )
}

/// The host's load average over the last minute (`window` 0), 5 minutes
/// (1) or 15 minutes (2), as /proc/loadavg prints it.
pub fn load_average(window: usize) -> Option<String> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().nth(window).map(str::to_string))
}

/// Puts `section` (which starts with `begin` and ends with `end`) into
/// BENCHMARKS.md in place of the previous one, or appends it.
pub fn write_section(begin: &str, end: &str, section: &str) -> Result<()> {
    let old = std::fs::read_to_string(PATH).unwrap_or_else(|_| "# vifguard benchmarks\n".into());
    let new = match (old.find(begin), old.find(end)) {
        (Some(b), Some(e)) if b < e => {
            let rest = old[e + end.len()..].trim_start_matches('\n');
            format!(
                "{}{section}{}{rest}",
                &old[..b],
                if rest.is_empty() { "" } else { "\n" }
            )
        }
        _ => format!("{}\n\n{section}", old.trim_end()),
    };
    std::fs::write(PATH, new).context("writing BENCHMARKS.md")?;
    eprintln!("xtask: wrote {PATH}");
    Ok(())
}
