//! Attaching the programs to an interface as bpf links (`attach = "tcx"`,
//! and XDP). Links can be pinned (the filter outlives the loader) and
//! atomically replaced (an upgrade leaves no unfiltered moment); see
//! [`crate::hooks::tc`] for the default, classic tc filters.

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
