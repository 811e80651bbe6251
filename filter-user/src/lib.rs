//! vifguard's userspace: policy types, the reference model of the datapath,
//! policy sources (xenstore), and the loader that fills and pins BPF maps.

pub mod policy;
pub mod xenstore;
pub mod config;
pub mod sources;
