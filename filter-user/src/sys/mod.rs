//! System calls without a safe wrapper in std or aya: bpf(2), rtnetlink,
//! network device names, bpffs, poll, network namespaces, the monotonic clock. The only module tree of the crate
//! that may use `unsafe`; every block says why it is sound.
#![allow(unsafe_code)]

pub mod bpf;
pub mod clock;
pub mod fs;
pub mod netdev;
pub mod netlink;
pub mod netns;
pub mod poll;
pub mod signal;
