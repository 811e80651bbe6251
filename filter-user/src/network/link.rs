//! A network device as a bridge port, over rtnetlink: its master, whether
//! it is up, its kind (a bridge is kind `bridge`); enslaving it to a Linux
//! bridge or releasing it (`IFLA_MASTER`, as `ip link set DEV master BR`
//! and `nomaster` do), and setting it up.
//!
//! rtnetlink, not `/sys/class/net`: sysfs shows the network namespace it
//! was mounted in, not the caller's (a command started with `nsenter
//! --net` sees the host's devices there), while a netlink socket always
//! speaks for the caller's namespace.

use std::io;

use aya_obj::generated;

use crate::rtnetlink::{Conn, Msg, attrs, c_string, u32_at};

const IFINFOMSG_LEN: usize = std::mem::size_of::<generated::ifinfomsg>();
const IFF_UP: u32 = libc::IFF_UP as u32;

#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("opening an rtnetlink socket failed")]
    Socket(#[source] io::Error),
    #[error("{action} of ifindex {ifindex} failed{}", message.as_deref().map(|m| format!(" ({m})")).unwrap_or_default())]
    Kernel {
        action: &'static str,
        ifindex: u32,
        /// The kernel's extended-ack text, when it sent one.
        message: Option<String>,
        #[source]
        source: io::Error,
    },
    #[error("{action} of ifindex {ifindex}: malformed rtnetlink reply")]
    Malformed { action: &'static str, ifindex: u32 },
}

/// A device as the kernel describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Link {
    pub ifindex: u32,
    /// The device it is enslaved to (a bridge, a bond, `ovs-system`).
    pub master: Option<u32>,
    /// Administratively up (`IFF_UP`).
    pub up: bool,
    /// The rtnetlink kind (`bridge`, `veth`, `tun`, ...); `None` for
    /// devices without one (netback's vifs, loopback).
    pub kind: Option<String>,
}

/// `ifinfomsg`: family, pad, type, index, flags, change.
fn ifinfomsg(kind: u16, flags: u16, ifindex: u32, ifi_flags: u32, change: u32) -> Msg {
    let mut h = Vec::with_capacity(IFINFOMSG_LEN);
    h.extend_from_slice(&[libc::AF_UNSPEC as u8, 0, 0, 0]);
    h.extend_from_slice(&ifindex.to_ne_bytes());
    h.extend_from_slice(&ifi_flags.to_ne_bytes());
    h.extend_from_slice(&change.to_ne_bytes());
    Msg::new(kind, flags, &h)
}

/// Parses an `RTM_NEWLINK` payload.
fn parse(b: &[u8]) -> Option<Link> {
    let ifindex = u32_at(b, 4)?;
    let flags = u32_at(b, 8)?;
    let mut link = Link {
        ifindex,
        master: None,
        up: flags & IFF_UP != 0,
        kind: None,
    };
    for (k, v) in attrs(b.get(IFINFOMSG_LEN..)?) {
        if k == libc::IFLA_MASTER {
            link.master = u32_at(v, 0).filter(|&m| m != 0);
        } else if k == libc::IFLA_LINKINFO {
            link.kind = attrs(v)
                .find(|(k, _)| *k == libc::IFLA_INFO_KIND)
                .map(|(_, v)| c_string(v));
        }
    }
    Some(link)
}

/// An rtnetlink socket for link requests.
pub struct Links {
    conn: Conn,
}

impl Links {
    pub fn open() -> Result<Links, LinkError> {
        Ok(Links {
            conn: Conn::open().map_err(LinkError::Socket)?,
        })
    }

    fn run(
        &mut self,
        action: &'static str,
        ifindex: u32,
        msg: Msg,
    ) -> Result<Vec<Vec<u8>>, LinkError> {
        let kernel = |source: io::Error, message| LinkError::Kernel {
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

    /// Device `ifindex`, `None` if there is none.
    pub fn get(&mut self, ifindex: u32) -> Result<Option<Link>, LinkError> {
        let action = "reading the link";
        // NLM_F_ACK: the kernel acknowledges after its one reply, which
        // is what ends the request.
        let msg = ifinfomsg(libc::RTM_GETLINK, libc::NLM_F_ACK as u16, ifindex, 0, 0);
        let replies = match self.run(action, ifindex, msg) {
            Ok(r) => r,
            Err(LinkError::Kernel { source, .. })
                if source.raw_os_error() == Some(libc::ENODEV) =>
            {
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        let reply = replies
            .first()
            .ok_or(LinkError::Malformed { action, ifindex })?;
        parse(reply)
            .map(Some)
            .ok_or(LinkError::Malformed { action, ifindex })
    }

    /// Enslaves `ifindex` to `master` (the kernel first releases it from
    /// the master it has); `master` 0 releases it.
    pub fn set_master(&mut self, ifindex: u32, master: u32) -> Result<(), LinkError> {
        let action = if master == 0 {
            "releasing from its bridge"
        } else {
            "adding to a bridge"
        };
        // RTM_NEWLINK without NLM_F_CREATE changes an existing device, as
        // `ip link set` does.
        let mut msg = ifinfomsg(libc::RTM_NEWLINK, libc::NLM_F_ACK as u16, ifindex, 0, 0);
        msg.attr(libc::IFLA_MASTER, &master.to_ne_bytes());
        self.run(action, ifindex, msg).map(drop)
    }

    /// Sets `ifindex` administratively up.
    pub fn set_up(&mut self, ifindex: u32) -> Result<(), LinkError> {
        let msg = ifinfomsg(
            libc::RTM_NEWLINK,
            libc::NLM_F_ACK as u16,
            ifindex,
            IFF_UP,
            IFF_UP,
        );
        self.run("setting up", ifindex, msg).map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rtnetlink::NLMSG_HDRLEN;

    #[test]
    fn a_link_reply_parses() {
        let mut m = ifinfomsg(libc::RTM_NEWLINK, 0, 7, IFF_UP | 0x1000, 0);
        m.attr(libc::IFLA_MASTER, &3u32.to_ne_bytes())
            .begin(libc::IFLA_LINKINFO)
            .attr_str(libc::IFLA_INFO_KIND, "bridge")
            .end();
        let b = m.finish(1);
        assert_eq!(
            parse(&b[NLMSG_HDRLEN..]),
            Some(Link {
                ifindex: 7,
                master: Some(3),
                up: true,
                kind: Some("bridge".into()),
            })
        );
        let b = ifinfomsg(libc::RTM_NEWLINK, 0, 9, 0, 0).finish(1);
        assert_eq!(
            parse(&b[NLMSG_HDRLEN..]),
            Some(Link {
                ifindex: 9,
                master: None,
                up: false,
                kind: None,
            })
        );
        assert_eq!(IFINFOMSG_LEN, 16);
    }
}
