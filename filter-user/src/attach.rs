//! Attaching the programs to an interface as bpf links (`attach = "tcx"`,
//! and XDP). Links can be pinned (the filter outlives the loader) and
//! atomically replaced (an upgrade leaves no unfiltered moment); see
//! [`crate::tc`] for the default, classic tc filters.

use aya::programs::links::FdLink;
use aya::programs::{ProgramError, SchedClassifier, TcAttachType, Xdp, XdpMode};
use filter_common::Direction;

#[derive(Debug, thiserror::Error)]
pub enum AttachError {
    #[error("attaching the {hook} program to {ifname} failed")]
    Attach {
        hook: &'static str,
        ifname: String,
        #[source]
        source: Box<ProgramError>,
    },
    #[error("the {hook} link on {ifname} is not a bpf link (kernel older than 6.6?)")]
    NotALink { hook: &'static str, ifname: String },
}

/// The TC hook for frames going in `dir` on a vif.
pub fn tc_hook(dir: Direction) -> TcAttachType {
    match dir {
        Direction::FromGuest => TcAttachType::Ingress,
        Direction::ToGuest => TcAttachType::Egress,
    }
}

pub fn hook_name(dir: Direction) -> &'static str {
    match dir {
        Direction::FromGuest => "tc ingress",
        Direction::ToGuest => "tc egress",
    }
}

/// Attaches `prog` to `ifname` (in the caller's network namespace) for
/// frames going in `dir`, as a TCX link.
pub fn attach_tc(
    prog: &mut SchedClassifier,
    ifname: &str,
    dir: Direction,
) -> Result<FdLink, AttachError> {
    let hook = hook_name(dir);
    let err = |e| AttachError::Attach {
        hook,
        ifname: ifname.to_string(),
        source: Box::new(e),
    };
    let id = prog.attach(ifname, tc_hook(dir)).map_err(err)?;
    let link = prog.take_link(id).map_err(err)?;
    FdLink::try_from(link).map_err(|_| AttachError::NotALink {
        hook,
        ifname: ifname.to_string(),
    })
}

/// Attaches the XDP program to `ifname` as a link (native mode where the
/// driver has it, else generic).
pub fn attach_xdp(prog: &mut Xdp, ifname: &str, mode: XdpMode) -> Result<FdLink, AttachError> {
    let hook = "xdp";
    let err = |e| AttachError::Attach {
        hook,
        ifname: ifname.to_string(),
        source: Box::new(e),
    };
    let id = prog.attach(ifname, mode).map_err(err)?;
    let link = prog.take_link(id).map_err(err)?;
    FdLink::try_from(link).map_err(|_| AttachError::NotALink {
        hook,
        ifname: ifname.to_string(),
    })
}

const BPF_OBJ_GET: libc::c_long = 7;
const BPF_LINK_DETACH: libc::c_long = 34;

/// A zero-padded prefix of `union bpf_attr`, large enough for the
/// commands used here.
#[repr(C, align(8))]
struct BpfAttr([u8; 24]);

fn bpf(cmd: libc::c_long, attr: &mut BpfAttr) -> std::io::Result<libc::c_long> {
    // SAFETY: `attr` is a zero-padded bpf_attr prefix of the size passed.
    let rc = unsafe { libc::syscall(libc::SYS_bpf, cmd, attr.0.as_mut_ptr(), attr.0.len()) };
    if rc < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

/// Detaches the bpf link pinned at `path` from its hook now
/// (BPF_LINK_DETACH), then removes the pin. Removing only the pin would
/// leave the kernel to detach the link later, asynchronously (20-30 ms
/// measured): a new attach of the same program to the same interface in
/// that window fails with EEXIST. Returns false if there was no pin.
pub fn detach_pinned_link(path: &std::path::Path) -> std::io::Result<bool> {
    use std::os::fd::FromRawFd;
    let cpath = std::ffi::CString::new(path.as_os_str().as_encoded_bytes())
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput))?;
    // BPF_OBJ_GET: pathname (u64) first.
    let mut attr = BpfAttr([0; 24]);
    attr.0[..8].copy_from_slice(&(cpath.as_ptr() as u64).to_ne_bytes());
    match bpf(BPF_OBJ_GET, &mut attr) {
        Ok(fd) => {
            // SAFETY: BPF_OBJ_GET returned a new descriptor we own.
            let fd = unsafe { std::os::fd::OwnedFd::from_raw_fd(fd as i32) };
            // BPF_LINK_DETACH: link_fd (u32) first.
            let mut attr = BpfAttr([0; 24]);
            let raw = std::os::fd::AsRawFd::as_raw_fd(&fd) as u32;
            attr.0[..4].copy_from_slice(&raw.to_ne_bytes());
            // Links whose kind cannot be detached (EOPNOTSUPP) or that are
            // detached already go with their pin.
            if let Err(e) = bpf(BPF_LINK_DETACH, &mut attr)
                && !matches!(
                    e.raw_os_error(),
                    Some(libc::EOPNOTSUPP | libc::ENOLINK | libc::EINVAL)
                )
            {
                return Err(e);
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        // Not a link (or unreadable): still remove the pin below.
        Err(_) => {}
    }
    match std::fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}
