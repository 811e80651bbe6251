//! `vifguard check`: can vifguard work on this host, and if not, what to
//! do. One [`Line`] per check, each OK, WARN or FAIL with the fix; any
//! FAIL means vifguard cannot work here (exit 1).
//!
//! What is looked at, in the order printed:
//!
//! - [`host::config`]: the configuration file parses (every command reads
//!   it first);
//! - [`kernel`]: the kernel release, then each feature the programs and
//!   the loader need, probed for real: one map of every type the object
//!   declares (the ring buffer among them), aya's own BTF and global-data
//!   probes, the actual programs loaded and verified (maps unpinned,
//!   nothing attached), BPF_MAP_LOOKUP_BATCH on the loaded policy map,
//!   and both hooks: a clsact qdisc with the two cls_bpf filters and two
//!   TCX links, on the loopback device of a private network namespace of
//!   the probing thread ([`crate::sys::netns`]), which the kernel removes
//!   with everything on it when the thread ends;
//! - [`host::bpffs`]: the pin root is on a bpffs, or below /sys/fs/bpf
//!   where vifguard mounts one, and what is pinned there is vifguard's;
//! - [`host::xen`]: xenstore answers, which toolstack convention each
//!   vif's policy comes from (XAPI, OpenStack, xl), and for every vif
//!   interface present: its bridge (Linux bridge or Open vSwitch), an
//!   `ingress` qdisc that `attach = "tc"` cannot coexist with, its hooks
//!   and whether its policy can be used.
//!
//! Nothing is written: no pin, no qdisc or filter on a host interface, no
//! xenstore node, no bpffs mount (a missing one is reported as mountable).

pub mod host;
pub mod kernel;

use std::fmt;
use std::path::PathBuf;

use serde_json::{Value, json};

/// The verdict of one check, worst last.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Status {
    /// Works.
    Ok,
    /// Works, but something needs the operator's attention (a vif not
    /// filtered yet, a policy that fails closed, an untested kernel).
    Warn,
    /// vifguard cannot work here until it is fixed.
    Fail,
}

impl Status {
    pub const fn name(self) -> &'static str {
        match self {
            Status::Ok => "OK",
            Status::Warn => "WARN",
            Status::Fail => "FAIL",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // pad, not write_str: the text lines align the columns.
        f.pad(self.name())
    }
}

/// One check's result.
#[derive(Clone, Debug, PartialEq)]
pub struct Line {
    /// Stable name of the check (`kernel`, `ringbuf`, `vif`, ...), for
    /// tools.
    pub check: &'static str,
    /// What it is about when a check repeats (the interface of a `vif`
    /// line).
    pub subject: Option<String>,
    pub status: Status,
    /// What was found.
    pub message: String,
    /// What to do, for WARN and FAIL.
    pub fix: Option<String>,
    /// Machine-readable findings (`null` when there are none).
    pub data: Value,
}

impl Line {
    pub fn new(check: &'static str, status: Status, message: impl Into<String>) -> Line {
        Line {
            check,
            subject: None,
            status,
            message: message.into(),
            fix: None,
            data: Value::Null,
        }
    }

    pub fn ok(check: &'static str, message: impl Into<String>) -> Line {
        Line::new(check, Status::Ok, message)
    }

    pub fn warn(check: &'static str, message: impl Into<String>, fix: impl Into<String>) -> Line {
        Line::new(check, Status::Warn, message).fix(fix)
    }

    pub fn fail(check: &'static str, message: impl Into<String>, fix: impl Into<String>) -> Line {
        Line::new(check, Status::Fail, message).fix(fix)
    }

    pub fn fix(mut self, fix: impl Into<String>) -> Line {
        self.fix = Some(fix.into());
        self
    }

    pub fn subject(mut self, subject: impl Into<String>) -> Line {
        self.subject = Some(subject.into());
        self
    }

    pub fn data(mut self, data: Value) -> Line {
        self.data = data;
        self
    }

    /// `check` or `check subject`, the second column of the text.
    fn label(&self) -> String {
        match &self.subject {
            Some(s) => format!("{} {s}", self.check),
            None => self.check.to_string(),
        }
    }

    /// The line as printed: status, label, message, and after ` -> ` what
    /// to do. Always one line: embedded newlines (a verifier log) are
    /// folded.
    pub fn text(&self) -> String {
        let mut s = format!(
            "{:<4}  {:<19} {}",
            self.status,
            self.label(),
            one_line(&self.message)
        );
        if let Some(fix) = &self.fix {
            s.push_str(" -> ");
            s.push_str(&one_line(fix));
        }
        s
    }

    pub fn json(&self) -> Value {
        json!({
            "check": self.check,
            "subject": self.subject,
            "status": self.status.name(),
            "message": one_line(&self.message),
            "fix": self.fix.as_deref().map(one_line),
            "data": self.data,
        })
    }
}

/// `s` with every run of line breaks (and the blanks around them) turned
/// into ` / `.
fn one_line(s: &str) -> String {
    s.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" / ")
}

/// Every check's line, in the order run.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Report {
    pub lines: Vec<Line>,
}

impl Report {
    /// The worst status of any line (OK for none).
    pub fn status(&self) -> Status {
        self.lines
            .iter()
            .map(|l| l.status)
            .max()
            .unwrap_or(Status::Ok)
    }

    /// 1 when a check failed (vifguard cannot work here), else 0.
    pub fn exit_code(&self) -> u8 {
        u8::from(self.status() == Status::Fail)
    }

    pub fn count(&self, status: Status) -> usize {
        self.lines.iter().filter(|l| l.status == status).count()
    }

    /// The labels of the lines with `status`.
    pub fn labels(&self, status: Status) -> Vec<String> {
        self.lines
            .iter()
            .filter(|l| l.status == status)
            .map(Line::label)
            .collect()
    }

    pub fn text(&self) -> String {
        self.lines.iter().map(|l| l.text() + "\n").collect()
    }

    pub fn json(&self) -> Value {
        json!({
            "status": self.status().name(),
            "exit_code": self.exit_code(),
            "checks": self.lines.iter().map(Line::json).collect::<Vec<_>>(),
        })
    }
}

/// What `vifguard check` was asked to check.
#[derive(Clone, Debug)]
pub struct Input {
    /// The configuration file (`--config`).
    pub config: PathBuf,
    /// `--bpffs`, overriding the configuration's.
    pub bpffs: Option<PathBuf>,
}

/// Runs every check (see the module documentation).
pub fn run(input: &Input) -> Report {
    let mut report = Report::default();
    let (line, mut config) = host::config(&input.config);
    report.lines.push(line);
    if let Some(b) = &input.bpffs {
        config.bpffs = b.clone();
    }
    report.lines.extend(kernel::probe(&config));
    report.lines.extend(host::bpffs(&config));
    report.lines.extend(host::xen(&config));
    report
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_worst_line_decides_and_only_fail_exits_1() {
        let mut r = Report::default();
        assert_eq!((r.status(), r.exit_code()), (Status::Ok, 0));
        r.lines.push(Line::ok("kernel", "Linux 6.1"));
        r.lines
            .push(Line::warn("vif", "not filtered", "run `vifguard sync`").subject("vif5.0"));
        assert_eq!((r.status(), r.exit_code()), (Status::Warn, 0));
        r.lines
            .push(Line::fail("xenstore", "unreachable", "start xenstored"));
        assert_eq!((r.status(), r.exit_code()), (Status::Fail, 1));
        assert_eq!(r.labels(Status::Warn), ["vif vif5.0"]);
        let j = r.json();
        assert_eq!(j["status"], "FAIL");
        assert_eq!(j["exit_code"], 1);
        assert_eq!(j["checks"][1]["subject"], "vif5.0");
        assert_eq!(j["checks"][2]["fix"], "start xenstored");
        assert_eq!(j["checks"][0]["fix"], Value::Null);
    }

    #[test]
    fn a_line_is_one_line() {
        let l = Line::fail(
            "programs",
            "load failed: verifier said:\n0: (b7) r0 = 0\n\n  back-edge\n",
            "use a newer kernel",
        );
        assert_eq!(
            l.text(),
            "FAIL  programs            load failed: verifier said: / 0: (b7) r0 = 0 / back-edge -> use a newer kernel"
        );
        assert!(!l.json()["message"].as_str().unwrap().contains('\n'));
    }
}
