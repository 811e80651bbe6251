//! vifguard's userspace: policy types, the reference model of the datapath,
//! policy sources (xenstore), and the loader that fills and pins BPF maps.

pub mod attach;
pub mod bpf_sys;
pub mod config;
pub mod datapath;
pub mod encode;
pub mod events;
pub mod lifecycle;
pub mod model;
pub mod pins;
pub mod policy;
pub mod sources;
pub mod tc;
