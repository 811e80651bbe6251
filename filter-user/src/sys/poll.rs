//! Waiting for a descriptor (poll(2)) and reading plain-data records.

use std::io;
use std::os::fd::AsRawFd;
use std::time::Duration;

/// Waits up to `wait` for `fd` to become readable; an interrupted wait
/// counts as a timeout (the caller polls again).
pub fn wait_readable(fd: &impl AsRawFd, wait: Duration) -> io::Result<()> {
    let mut pfd = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    let ms = i32::try_from(wait.as_millis()).unwrap_or(i32::MAX);
    // SAFETY: one valid pollfd for the duration of the call.
    let rc = unsafe { libc::poll(&mut pfd, 1, ms) };
    if rc < 0 {
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
    Ok(())
}

/// A `T` read from the start of `bytes`, or `None` when they are too
/// short. `T: Pod` has no invalid bit patterns, so any bytes make a value.
pub fn read_record<T: aya::Pod>(bytes: &[u8]) -> Option<T> {
    if bytes.len() < std::mem::size_of::<T>() {
        return None;
    }
    // SAFETY: length checked above; read_unaligned needs no alignment;
    // T is Pod (every bit pattern is a valid T).
    Some(unsafe { std::ptr::read_unaligned(bytes.as_ptr().cast::<T>()) })
}
