//! rtnetlink requests, built and parsed in safe code over
//! [`RouteSocket`]: a message (netlink header, the request's family
//! header, attributes), sent one at a time and answered by its
//! acknowledgement or the end of a dump, a refusal carrying the kernel's
//! extended-ack text. Two users: tc filters ([`crate::hooks::tc`]) and
//! bridge ports ([`crate::network::link`]).

use std::io;

use crate::sys::netlink::RouteSocket;

use aya_obj::generated;

// Kernel numbers from the uapi headers: libc's netlink constants and aya's
// generated bindings, not copies.
pub const NLMSG_HDRLEN: usize = std::mem::size_of::<libc::nlmsghdr>();
const NLMSGERR_ATTR_MSG: u16 = generated::nlmsgerr_attrs::NLMSGERR_ATTR_MSG as u16;
const NLM_F_ACK_TLVS: u16 = libc::NLM_F_ACK_TLVS as u16;
const NLA_F_NESTED: u16 = libc::NLA_F_NESTED as u16;
const NLA_TYPE_MASK: u16 = libc::NLA_TYPE_MASK as u16;

/// A message being built: netlink header, family header, attributes.
pub struct Msg {
    buf: Vec<u8>,
    nests: Vec<usize>,
}

impl Msg {
    /// A request of type `kind` whose family header (`tcmsg`,
    /// `ifinfomsg`, ...) is `header`, already in the kernel's layout.
    pub fn new(kind: u16, flags: u16, header: &[u8]) -> Msg {
        let mut buf = vec![0u8; NLMSG_HDRLEN];
        buf[4..6].copy_from_slice(&kind.to_ne_bytes());
        buf[6..8].copy_from_slice(&(flags | libc::NLM_F_REQUEST as u16).to_ne_bytes());
        buf.extend_from_slice(header);
        let mut m = Msg {
            buf,
            nests: Vec::new(),
        };
        m.align();
        m
    }

    pub fn attr(&mut self, kind: u16, data: &[u8]) -> &mut Msg {
        let len = 4 + data.len();
        self.buf.extend_from_slice(&(len as u16).to_ne_bytes());
        self.buf.extend_from_slice(&kind.to_ne_bytes());
        self.buf.extend_from_slice(data);
        self.align();
        self
    }

    pub fn attr_str(&mut self, kind: u16, s: &str) -> &mut Msg {
        let mut data = s.as_bytes().to_vec();
        data.push(0);
        self.attr(kind, &data)
    }

    /// Opens a nested attribute; [`Msg::end`] closes it.
    pub fn begin(&mut self, kind: u16) -> &mut Msg {
        self.nests.push(self.buf.len());
        self.buf.extend_from_slice(&[0, 0]);
        self.buf
            .extend_from_slice(&(kind | NLA_F_NESTED).to_ne_bytes());
        self
    }

    pub fn end(&mut self) -> &mut Msg {
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

    /// The message's bytes, with its length and sequence number.
    pub(crate) fn finish(mut self, seq: u32) -> Vec<u8> {
        let len = self.buf.len() as u32;
        self.buf[0..4].copy_from_slice(&len.to_ne_bytes());
        self.buf[8..12].copy_from_slice(&seq.to_ne_bytes());
        self.buf
    }
}

pub fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

pub fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// The attributes in `b`: (type without flags, payload).
pub fn attrs(mut b: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
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

/// A NUL-terminated string attribute.
pub fn c_string(b: &[u8]) -> String {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..end]).into_owned()
}

/// A kernel refusal: errno and extended-ack text.
pub struct Refusal {
    pub errno: i32,
    pub message: Option<String>,
}

/// An rtnetlink socket sending one request at a time.
pub struct Conn {
    sock: RouteSocket,
    seq: u32,
    buf: Vec<u8>,
}

impl Conn {
    pub fn open() -> io::Result<Conn> {
        Ok(Conn {
            sock: RouteSocket::open()?,
            seq: std::process::id().wrapping_mul(65536),
            buf: vec![0u8; 64 * 1024],
        })
    }

    /// Sends `msg` and collects the replies' payloads (after the netlink
    /// header) until the acknowledgement or the end of a dump. A request
    /// that expects no dump must ask for an ack (`NLM_F_ACK`), or this
    /// waits for one forever.
    pub fn request(&mut self, msg: Msg) -> Result<Result<Vec<Vec<u8>>, Refusal>, io::Error> {
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_attributes_have_their_length() {
        let mut m = Msg::new(libc::RTM_NEWTFILTER, 0, &[7; 20]);
        m.attr_str(libc::TCA_KIND, "bpf")
            .begin(libc::TCA_OPTIONS)
            .attr(1, &5u32.to_ne_bytes())
            .end();
        let b = m.finish(9);
        assert_eq!(u32_at(&b, 0), Some(b.len() as u32));
        assert_eq!(u32_at(&b, 8), Some(9));
        assert_eq!(&b[NLMSG_HDRLEN..NLMSG_HDRLEN + 20], &[7; 20]);
        let a: Vec<(u16, Vec<u8>)> = attrs(&b[NLMSG_HDRLEN + 20..])
            .map(|(k, v)| (k, v.to_vec()))
            .collect();
        assert_eq!(a[0], (libc::TCA_KIND, b"bpf\0".to_vec()));
        assert_eq!(a[1].0, libc::TCA_OPTIONS);
        let inner: Vec<(u16, Vec<u8>)> = attrs(&a[1].1).map(|(k, v)| (k, v.to_vec())).collect();
        assert_eq!(inner, vec![(1, 5u32.to_ne_bytes().to_vec())]);
    }

    #[test]
    fn a_family_header_is_padded_to_four_bytes() {
        let b = Msg::new(libc::RTM_GETLINK, 0, &[1, 2, 3]).finish(1);
        assert_eq!(b.len(), NLMSG_HDRLEN + 4);
    }
}
