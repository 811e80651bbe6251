//! Putting the programs on a vif: classic tc (a clsact qdisc and two
//! cls_bpf filters over rtnetlink, [`tc`], the default) or pinned TCX bpf
//! links ([`tcx`], `attach = "tcx"`, Linux 6.6+).

pub mod tc;
pub mod tcx;
