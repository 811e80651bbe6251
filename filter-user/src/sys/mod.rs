//! System calls without a safe wrapper in std or aya: bpf(2), rtnetlink, clock_gettime(2),
//! network device names, bpffs, poll, network namespaces. The only module tree of the crate
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
