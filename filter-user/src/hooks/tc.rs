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

use crate::sys::netlink::RouteSocket;

use aya_obj::generated;
use filter_common::Direction;

/// The filter handle vifguard uses at its priority.
pub const FILTER_HANDLE: u32 = 1;
/// Prefix of the names vifguard gives its filters (the program names).
pub const NAME_PREFIX: &str = "vifguard_";

// Kernel numbers from the uapi headers: libc's netlink constants and aya's
// generated bindings (linux/pkt_sched.h, linux/pkt_cls.h), not copies.
const NLMSG_HDRLEN: usize = std::mem::size_of::<libc::nlmsghdr>();
const TCMSG_LEN: usize = std::mem::size_of::<generated::tcmsg>();
const NLMSGERR_ATTR_MSG: u16 = generated::nlmsgerr_attrs::NLMSGERR_ATTR_MSG as u16;
const NLM_F_ACK_TLVS: u16 = libc::NLM_F_ACK_TLVS as u16;
const NLA_F_NESTED: u16 = libc::NLA_F_NESTED as u16;
const NLA_TYPE_MASK: u16 = libc::NLA_TYPE_MASK as u16;

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

/// A message being built: header, tcmsg, attributes.
struct Msg {
    buf: Vec<u8>,
    nests: Vec<usize>,
}

impl Msg {
    fn new(kind: u16, flags: u16, ifindex: u32, handle: u32, parent: u32, info: u32) -> Msg {
        let mut buf = vec![0u8; NLMSG_HDRLEN];
        buf[4..6].copy_from_slice(&kind.to_ne_bytes());
        buf[6..8].copy_from_slice(&(flags | libc::NLM_F_REQUEST as u16).to_ne_bytes());
        // tcmsg: family, pad, pad, ifindex, handle, parent, info.
        buf.extend_from_slice(&[libc::AF_UNSPEC as u8, 0, 0, 0]);
        buf.extend_from_slice(&ifindex.to_ne_bytes());
        buf.extend_from_slice(&handle.to_ne_bytes());
        buf.extend_from_slice(&parent.to_ne_bytes());
        buf.extend_from_slice(&info.to_ne_bytes());
        Msg {
            buf,
            nests: Vec::new(),
        }
    }

    fn attr(&mut self, kind: u16, data: &[u8]) -> &mut Msg {
        let len = 4 + data.len();
        self.buf.extend_from_slice(&(len as u16).to_ne_bytes());
        self.buf.extend_from_slice(&kind.to_ne_bytes());
        self.buf.extend_from_slice(data);
        self.align();
        self
    }

    fn attr_str(&mut self, kind: u16, s: &str) -> &mut Msg {
        let mut data = s.as_bytes().to_vec();
        data.push(0);
        self.attr(kind, &data)
    }

    fn begin(&mut self, kind: u16) -> &mut Msg {
        self.nests.push(self.buf.len());
        self.buf.extend_from_slice(&[0, 0]);
        self.buf
            .extend_from_slice(&(kind | NLA_F_NESTED).to_ne_bytes());
        self
    }

    fn end(&mut self) -> &mut Msg {
        if let Some(at) = self.nests.pop() {
            let len = (self.buf.len() - at) as u16;
            self.buf[at..at + 2].copy_from_slice(&len.to_ne_bytes());
        }
        self
    }

    fn align(&mut self) {
        while !self.buf.len().is_multiple_of(4) {
            self.buf.push(0);
        }
    }

    fn finish(mut self, seq: u32) -> Vec<u8> {
        let len = self.buf.len() as u32;
        self.buf[0..4].copy_from_slice(&len.to_ne_bytes());
        self.buf[8..12].copy_from_slice(&seq.to_ne_bytes());
        self.buf
    }
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// The attributes in `b`: (type without flags, payload).
fn attrs(mut b: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    std::iter::from_fn(move || {
        let len = usize::from(u16_at(b, 0)?);
        let kind = u16_at(b, 2)? & NLA_TYPE_MASK;
        if len < 4 || len > b.len() {
            return None;
        }
        let payload = &b[4..len];
        b = b.get(len.next_multiple_of(4)..).unwrap_or(&[]);
        Some((kind, payload))
    })
}

fn c_string(b: &[u8]) -> String {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..end]).into_owned()
}

/// A kernel refusal: errno and extended-ack text.
struct Refusal {
    errno: i32,
    message: Option<String>,
}

/// An rtnetlink socket for tc requests.
pub struct Rtnl {
    sock: RouteSocket,
    seq: u32,
    buf: Vec<u8>,
}

impl Rtnl {
    pub fn open() -> Result<Rtnl, TcError> {
        Ok(Rtnl {
            sock: RouteSocket::open().map_err(TcError::Socket)?,
            seq: std::process::id().wrapping_mul(65536),
            buf: vec![0u8; 64 * 1024],
        })
    }

    /// Sends `msg` and collects the replies' payloads (after the header)
    /// until the acknowledgement or the end of a dump.
    fn request(&mut self, msg: Msg) -> Result<Result<Vec<Vec<u8>>, Refusal>, io::Error> {
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        let bytes = msg.finish(seq);
        self.sock.send(&bytes)?;
        let mut out = Vec::new();
        loop {
            let n = self.sock.recv(&mut self.buf)?;
            let mut rest = &self.buf[..n];
            while let (Some(len), Some(kind), Some(flags), Some(mseq)) = (
                u32_at(rest, 0),
                u16_at(rest, 4),
                u16_at(rest, 6),
                u32_at(rest, 8),
            ) {
                let len = len as usize;
                if len < NLMSG_HDRLEN || len > rest.len() {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "truncated rtnetlink message",
                    ));
                }
                let payload = &rest[NLMSG_HDRLEN..len];
                rest = rest.get(len.next_multiple_of(4)..).unwrap_or(&[]);
                if mseq != seq {
                    continue; // a late answer to an earlier request
                }
                match i32::from(kind) {
                    libc::NLMSG_ERROR => {
                        let errno = u32_at(payload, 0).map_or(0, |e| -(e as i32));
                        if errno == 0 {
                            return Ok(Ok(out));
                        }
                        // With NETLINK_CAP_ACK the echoed request is only
                        // its header; the ack TLVs follow.
                        let message = (flags & NLM_F_ACK_TLVS != 0)
                            .then(|| {
                                attrs(payload.get(4 + NLMSG_HDRLEN..).unwrap_or(&[]))
                                    .find(|(k, _)| *k == NLMSGERR_ATTR_MSG)
                                    .map(|(_, v)| c_string(v))
                            })
                            .flatten();
                        return Ok(Err(Refusal { errno, message }));
                    }
                    libc::NLMSG_DONE => return Ok(Ok(out)),
                    _ => out.push(payload.to_vec()),
                }
            }
        }
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
        match self.request(msg) {
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
            let mut msg = Msg::new(
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
        let mut msg = Msg::new(
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
        let msg = Msg::new(libc::RTM_GETTFILTER, flags, ifindex, 0, parent(dir), 0);
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
        let mut msg = Msg::new(
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
    fn nested_attributes_have_their_length() {
        let mut m = Msg::new(libc::RTM_NEWTFILTER, 0, 7, 1, 2, 3);
        m.attr_str(libc::TCA_KIND, "bpf")
            .begin(libc::TCA_OPTIONS)
            .attr(TCA_BPF_FD, &5u32.to_ne_bytes())
            .end();
        let b = m.finish(9);
        assert_eq!(u32_at(&b, 0), Some(b.len() as u32));
        assert_eq!(u32_at(&b, 8), Some(9));
        let a: Vec<(u16, Vec<u8>)> = attrs(&b[NLMSG_HDRLEN + TCMSG_LEN..])
            .map(|(k, v)| (k, v.to_vec()))
            .collect();
        assert_eq!(a[0], (libc::TCA_KIND, b"bpf\0".to_vec()));
        assert_eq!(a[1].0, libc::TCA_OPTIONS);
        let inner: Vec<(u16, Vec<u8>)> = attrs(&a[1].1).map(|(k, v)| (k, v.to_vec())).collect();
        assert_eq!(inner, vec![(TCA_BPF_FD, 5u32.to_ne_bytes().to_vec())]);
    }
}
