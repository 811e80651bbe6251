//! Classic tc attachment over rtnetlink: a `clsact` qdisc on the vif and
//! one cls_bpf filter (direct action) per hook at vifguard's priority.
//!
//! This is the default way vifguard attaches (host configuration
//! `attach = "tc"`). Creating a TCX link waits for an RCU grace period
//! under the RTNL lock (`tcx_entry_sync()`, about 15 ms per hook measured
//! here), which puts a floor of ~30 ms under every hotplug and of ~30 s
//! under a sync of 1,000 vifs; a cls_bpf filter is created in a fraction
//! of a millisecond. It also works on kernels without TCX (< 6.6, e.g.
//! Debian 12's 6.1). The filter holds a reference on the program, so it
//! outlives the command as a pinned link does, and re-adding it at the
//! same priority and handle swaps the program atomically (cls_bpf replaces
//! it under RCU): an upgrade leaves no unfiltered moment.
//!
//! One request at a time, each acknowledged; kernel errors carry the
//! kernel's own extended-ack message.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

use crate::rtnetlink::{Conn, Msg, attrs, c_string, u32_at};

use aya_obj::generated;
use filter_common::Direction;

/// The filter handle vifguard uses at its priority.
pub const FILTER_HANDLE: u32 = 1;
/// Prefix of the names vifguard gives its filters (the program names).
pub const NAME_PREFIX: &str = "vifguard_";

// Kernel numbers from the uapi headers: libc's netlink constants and aya's
// generated bindings (linux/pkt_sched.h, linux/pkt_cls.h), not copies.
const TCMSG_LEN: usize = std::mem::size_of::<generated::tcmsg>();

const TC_H_CLSACT: u32 = generated::TC_H_CLSACT;
const TC_H_MIN_INGRESS: u32 = generated::TC_H_MIN_INGRESS;
const TC_H_MIN_EGRESS: u32 = generated::TC_H_MIN_EGRESS;
const ETH_P_ALL: u16 = libc::ETH_P_ALL as u16;

const TCA_BPF_FD: u16 = generated::TCA_BPF_FD as u16;
const TCA_BPF_NAME: u16 = generated::TCA_BPF_NAME as u16;
const TCA_BPF_FLAGS: u16 = generated::TCA_BPF_FLAGS as u16;
const TCA_BPF_ID: u16 = generated::TCA_BPF_ID as u16;
const TCA_BPF_FLAG_ACT_DIRECT: u32 = generated::TCA_BPF_FLAG_ACT_DIRECT;

#[derive(Debug, thiserror::Error)]
pub enum TcError {
    #[error("opening an rtnetlink socket failed")]
    Socket(#[source] io::Error),
    #[error("{action} on ifindex {ifindex} failed{}", message.as_deref().map(|m| format!(" ({m})")).unwrap_or_default())]
    Kernel {
        action: &'static str,
        ifindex: u32,
        /// The kernel's extended-ack text, when it sent one.
        message: Option<String>,
        #[source]
        source: io::Error,
    },
    #[error(
        "ifindex {ifindex} has another ingress qdisc where vifguard needs `clsact` (kernel: {message}); remove it (`tc qdisc del dev <vif> ingress`) or set attach = \"tcx\" in the host configuration"
    )]
    ForeignQdisc { ifindex: u32, message: String },
    #[error("{action} on ifindex {ifindex}: malformed rtnetlink reply ({detail})")]
    Malformed {
        action: &'static str,
        ifindex: u32,
        detail: &'static str,
    },
}

impl TcError {
    /// The errno of a kernel error.
    pub fn errno(&self) -> Option<i32> {
        match self {
            TcError::Kernel { source, .. } => source.raw_os_error(),
            _ => None,
        }
    }
}

/// The clsact parent of the hook that filters frames going in `dir`: frames
/// from the guest enter the host at the vif's ingress.
pub fn parent(dir: Direction) -> u32 {
    let min = match dir {
        Direction::FromGuest => TC_H_MIN_INGRESS,
        Direction::ToGuest => TC_H_MIN_EGRESS,
    };
    (TC_H_CLSACT & 0xffff_0000) | min
}

/// One filter as the kernel lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Filter {
    pub priority: u16,
    pub handle: u32,
    /// Network-order protocol, as in `tcm_info`.
    pub protocol: u16,
    pub kind: String,
    /// cls_bpf: the name given at attach time.
    pub name: Option<String>,
    /// cls_bpf: the program's id.
    pub prog_id: Option<u32>,
}

impl Filter {
    /// Whether vifguard put this filter there.
    pub fn is_vifguard(&self) -> bool {
        self.kind == "bpf"
            && self
                .name
                .as_deref()
                .is_some_and(|n| n.starts_with(NAME_PREFIX))
    }
}

/// One qdisc as the kernel lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Qdisc {
    pub ifindex: u32,
    pub handle: u32,
    pub parent: u32,
    /// `clsact`, `ingress`, `noqueue`, `fq_codel`, ...
    pub kind: String,
}

impl Qdisc {
    /// Whether it sits at the ingress slot (`ingress` or `clsact`): only
    /// one of the two fits there.
    pub fn at_ingress(&self) -> bool {
        self.parent == generated::TC_H_INGRESS
    }
}

/// A tc request: `tcmsg` (family, pad, pad, ifindex, handle, parent,
/// info), attributes to follow.
fn tc_msg(kind: u16, flags: u16, ifindex: u32, handle: u32, parent: u32, info: u32) -> Msg {
    let mut tcmsg = Vec::with_capacity(TCMSG_LEN);
    tcmsg.extend_from_slice(&[libc::AF_UNSPEC as u8, 0, 0, 0]);
    tcmsg.extend_from_slice(&ifindex.to_ne_bytes());
    tcmsg.extend_from_slice(&handle.to_ne_bytes());
    tcmsg.extend_from_slice(&parent.to_ne_bytes());
    tcmsg.extend_from_slice(&info.to_ne_bytes());
    Msg::new(kind, flags, &tcmsg)
}

/// An rtnetlink socket for tc requests.
pub struct Rtnl {
    conn: Conn,
}

impl Rtnl {
    pub fn open() -> Result<Rtnl, TcError> {
        Ok(Rtnl {
            conn: Conn::open().map_err(TcError::Socket)?,
        })
    }

    fn run(
        &mut self,
        action: &'static str,
        ifindex: u32,
        msg: Msg,
    ) -> Result<Vec<Vec<u8>>, TcError> {
        let kernel = |source: io::Error, message| TcError::Kernel {
            action,
            ifindex,
            message,
            source,
        };
        match self.conn.request(msg) {
            Ok(Ok(replies)) => Ok(replies),
            Ok(Err(r)) => Err(kernel(io::Error::from_raw_os_error(r.errno), r.message)),
            Err(e) => Err(kernel(e, None)),
        }
    }

    /// Makes sure `ifindex` has a clsact qdisc; refuses any other ingress
    /// qdisc. Returns whether it created it (then its hooks hold no
    /// filter yet).
    pub fn ensure_clsact(&mut self, ifindex: u32) -> Result<bool, TcError> {
        // A new vif (every hotplug) has no qdisc: create it exclusively.
        // EEXIST means some qdisc sits there already; the second request
        // tells which. NLM_F_CREATE alone: an existing clsact is "changed"
        // with nothing (a no-op), another kind at the same handle
        // (`ingress`) is refused with EINVAL. NLM_F_REPLACE would replace
        // that qdisc, and its filters with it.
        let exclusive = libc::NLM_F_EXCL as u16;
        for extra in [exclusive, 0] {
            let flags = (libc::NLM_F_ACK | libc::NLM_F_CREATE) as u16 | extra;
            let mut msg = tc_msg(
                libc::RTM_NEWQDISC,
                flags,
                ifindex,
                TC_H_CLSACT & 0xffff_0000,
                TC_H_CLSACT,
                0,
            );
            msg.attr_str(libc::TCA_KIND, "clsact");
            match self.run("adding the clsact qdisc", ifindex, msg) {
                Ok(_) => return Ok(extra == exclusive),
                Err(e) if extra == exclusive && e.errno() == Some(libc::EEXIST) => {}
                Err(TcError::Kernel {
                    message, source, ..
                }) if source.raw_os_error() == Some(libc::EINVAL) => {
                    return Err(TcError::ForeignQdisc {
                        ifindex,
                        message: message.unwrap_or_else(|| source.to_string()),
                    });
                }
                Err(e) => return Err(e),
            }
        }
        Ok(false)
    }

    /// The qdiscs of `ifindex` (a read: a dump, nothing changes).
    pub fn qdiscs(&mut self, ifindex: u32) -> Result<Vec<Qdisc>, TcError> {
        let action = "listing qdiscs";
        let msg = tc_msg(
            libc::RTM_GETQDISC,
            libc::NLM_F_DUMP as u16,
            ifindex,
            0,
            0,
            0,
        );
        let mut out = Vec::new();
        for r in self.run(action, ifindex, msg)? {
            let malformed = TcError::Malformed {
                action,
                ifindex,
                detail: "short tcmsg",
            };
            let (Some(ix), Some(handle), Some(parent)) =
                (u32_at(&r, 4), u32_at(&r, 8), u32_at(&r, 12))
            else {
                return Err(malformed);
            };
            // Older kernels dump every device's qdiscs whatever the
            // request's ifindex.
            if ix != ifindex {
                continue;
            }
            let kind = attrs(r.get(TCMSG_LEN..).unwrap_or(&[]))
                .find(|(k, _)| *k == libc::TCA_KIND)
                .map(|(_, v)| c_string(v))
                .unwrap_or_default();
            out.push(Qdisc {
                ifindex: ix,
                handle,
                parent,
                kind,
            });
        }
        Ok(out)
    }

    /// Points the filter at (`priority`, [`FILTER_HANDLE`]) of the `dir`
    /// hook of `ifindex` at `prog`, creating it or replacing its program
    /// in one step.
    pub fn set_filter(
        &mut self,
        ifindex: u32,
        dir: Direction,
        priority: u16,
        prog: BorrowedFd<'_>,
        name: &str,
    ) -> Result<(), TcError> {
        let flags = (libc::NLM_F_ACK | libc::NLM_F_CREATE) as u16;
        let info = (u32::from(priority) << 16) | u32::from(ETH_P_ALL.to_be());
        let mut msg = tc_msg(
            libc::RTM_NEWTFILTER,
            flags,
            ifindex,
            FILTER_HANDLE,
            parent(dir),
            info,
        );
        msg.attr_str(libc::TCA_KIND, "bpf")
            .begin(libc::TCA_OPTIONS)
            .attr(TCA_BPF_FD, &(prog.as_raw_fd() as u32).to_ne_bytes())
            .attr_str(TCA_BPF_NAME, name)
            .attr(TCA_BPF_FLAGS, &TCA_BPF_FLAG_ACT_DIRECT.to_ne_bytes())
            .end();
        let action = match dir {
            Direction::FromGuest => "attaching the tc ingress filter",
            Direction::ToGuest => "attaching the tc egress filter",
        };
        self.run(action, ifindex, msg).map(drop)
    }

    /// The filters of the `dir` hook of `ifindex` (none when it has no
    /// clsact qdisc).
    pub fn filters(&mut self, ifindex: u32, dir: Direction) -> Result<Vec<Filter>, TcError> {
        let action = "listing tc filters";
        let flags = (libc::NLM_F_DUMP) as u16;
        let msg = tc_msg(libc::RTM_GETTFILTER, flags, ifindex, 0, parent(dir), 0);
        let replies = match self.run(action, ifindex, msg) {
            Ok(r) => r,
            Err(e) if matches!(e.errno(), Some(libc::EINVAL | libc::ENOENT)) => {
                return Ok(Vec::new());
            }
            Err(e) => return Err(e),
        };
        let mut out = Vec::new();
        for r in replies {
            let malformed = |detail| TcError::Malformed {
                action,
                ifindex,
                detail,
            };
            let handle = u32_at(&r, 8).ok_or(malformed("short tcmsg"))?;
            let info = u32_at(&r, 16).ok_or(malformed("short tcmsg"))?;
            if handle == 0 {
                continue; // the priority's own entry, not a filter
            }
            let mut f = Filter {
                priority: (info >> 16) as u16,
                handle,
                protocol: (info & 0xffff) as u16,
                kind: String::new(),
                name: None,
                prog_id: None,
            };
            for (k, v) in attrs(r.get(TCMSG_LEN..).unwrap_or(&[])) {
                if k == libc::TCA_KIND {
                    f.kind = c_string(v);
                } else if k == libc::TCA_OPTIONS {
                    for (k, v) in attrs(v) {
                        match k {
                            TCA_BPF_NAME => f.name = Some(c_string(v)),
                            TCA_BPF_ID => f.prog_id = u32_at(v, 0),
                            _ => {}
                        }
                    }
                }
            }
            out.push(f);
        }
        Ok(out)
    }

    /// Deletes filter `f` of the `dir` hook of `ifindex`. Returns whether
    /// it was there.
    pub fn delete_filter(
        &mut self,
        ifindex: u32,
        dir: Direction,
        f: &Filter,
    ) -> Result<bool, TcError> {
        let info = (u32::from(f.priority) << 16) | u32::from(f.protocol);
        let mut msg = tc_msg(
            libc::RTM_DELTFILTER,
            libc::NLM_F_ACK as u16,
            ifindex,
            f.handle,
            parent(dir),
            info,
        );
        msg.attr_str(libc::TCA_KIND, &f.kind);
        match self.run("deleting a tc filter", ifindex, msg) {
            Ok(_) => Ok(true),
            Err(e) if matches!(e.errno(), Some(libc::ENOENT | libc::ENODEV)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Deletes every vifguard filter of the `dir` hook of `ifindex`.
    /// Returns how many there were.
    pub fn delete_vifguard_filters(
        &mut self,
        ifindex: u32,
        dir: Direction,
    ) -> Result<usize, TcError> {
        let mut n = 0;
        for f in self.filters(ifindex, dir)? {
            if f.is_vifguard() && self.delete_filter(ifindex, dir, &f)? {
                n += 1;
            }
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parents_are_the_clsact_minors() {
        assert_eq!(parent(Direction::FromGuest), 0xffff_fff2);
        assert_eq!(parent(Direction::ToGuest), 0xffff_fff3);
    }

    #[test]
    fn a_tcmsg_is_laid_out_as_the_uapi_struct() {
        use crate::rtnetlink::NLMSG_HDRLEN;
        let b = tc_msg(libc::RTM_NEWTFILTER, 0, 7, 1, 2, 3).finish(9);
        assert_eq!(b.len(), NLMSG_HDRLEN + TCMSG_LEN);
        let tcmsg = &b[NLMSG_HDRLEN..];
        assert_eq!(tcmsg[0], libc::AF_UNSPEC as u8);
        assert_eq!(
            [4, 8, 12, 16].map(|at| u32_at(tcmsg, at)),
            [Some(7), Some(1), Some(2), Some(3)]
        );
    }
}
