//! An rtnetlink socket: open, send one message, receive a datagram. The
//! messages themselves are built and parsed in safe code
//! ([`crate::rtnetlink`]).

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

pub struct RouteSocket {
    fd: OwnedFd,
}

impl RouteSocket {
    /// A NETLINK_ROUTE socket asking for extended acks (the kernel's own
    /// error text) and capped acks (errors echo only the request header).
    pub fn open() -> io::Result<RouteSocket> {
        // SAFETY: plain socket(2) call.
        let raw = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                libc::NETLINK_ROUTE,
            )
        };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: raw is a descriptor we own from here on.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        for opt in [libc::NETLINK_EXT_ACK, libc::NETLINK_CAP_ACK] {
            let on: libc::c_int = 1;
            // SAFETY: valid descriptor, option value and its size. Older
            // kernels without these options still work (plain errors).
            unsafe {
                libc::setsockopt(
                    fd.as_raw_fd(),
                    libc::SOL_NETLINK,
                    opt,
                    (&on as *const libc::c_int).cast(),
                    std::mem::size_of::<libc::c_int>() as libc::socklen_t,
                )
            };
        }
        Ok(RouteSocket { fd })
    }

    /// Sends one message to the kernel.
    pub fn send(&self, bytes: &[u8]) -> io::Result<()> {
        // SAFETY: sending our own buffer; the kernel is the default peer.
        let n = unsafe { libc::send(self.fd.as_raw_fd(), bytes.as_ptr().cast(), bytes.len(), 0) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Receives one datagram into `buf` (interrupted calls retried) and
    /// returns its length.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            // SAFETY: receiving into our own buffer of that length.
            let n =
                unsafe { libc::recv(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
            if n >= 0 {
                return Ok(n as usize);
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
    }
}
