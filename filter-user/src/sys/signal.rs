//! Signal dispositions.

/// Lets a write to a closed pipe end the process quietly (`vifguard status
/// | head`), as other command-line tools do, instead of failing the write.
/// Call before any thread exists.
pub fn default_sigpipe() {
    // SAFETY: setting a signal disposition before any thread exists.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
}

/// SIGKILL to this process: the fault-injection crash ([`crate::fault`]).
pub fn kill_self() {
    // SAFETY: kill(2) on our own pid; it does not return.
    unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
}
