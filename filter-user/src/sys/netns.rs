//! A private network namespace to probe the kernel in (unshare(2)).

use std::io;

/// Runs `f` on a thread of its own that first moves into a new, empty
/// network namespace (only its loopback device, down), and returns what
/// `f` returns. Nothing `f` creates there (qdiscs, filters, links) is
/// visible to the host or can disturb its interfaces, and all of it goes
/// with the namespace, which the kernel destroys once the thread has
/// exited and `f`'s sockets are closed. The namespace has no name, so
/// nothing is left under /run/netns either.
///
/// Namespaces belong to a thread, not the process: the caller's thread and
/// every other stay where they are.
pub fn in_private_netns<T: Send>(f: impl FnOnce() -> T + Send) -> io::Result<T> {
    std::thread::scope(|s| {
        s.spawn(|| {
            // SAFETY: unshare(2) with CLONE_NEWNET changes only the calling
            // thread's network namespace (allowed in a multi-threaded
            // process); it reads and writes no memory of ours.
            if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(f())
        })
        .join()
        .unwrap_or_else(|_| Err(io::Error::other("the probe thread panicked")))
    })
}
