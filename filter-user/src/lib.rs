//! vifguard's userspace, in the order data flows through it:
//!
//! - [`cli`]: the `vifguard` command line (clap); in the library so the
//!   man pages and shell completions are generated from the same
//!   definition (the `docgen` crate) without growing the binary.
//! - [`xen`]: which vif a hotplug is about and where its policy lives in
//!   xenstore ([`xen::sources`]: xl, XAPI, OpenStack, precedence, trust).
//! - [`policy`]: the policy types every source produces.
//! - [`config`]: the host configuration (`/etc/vifguard/vifguard.toml`).
//! - [`datapath`]: the eBPF object, its pinned maps, how a policy is
//!   encoded into them, counters and drop events.
//! - [`hooks`]: attaching the programs to a vif (tc cls_bpf or TCX).
//! - [`lifecycle`]: the commands' orchestration (attach, detach, sync),
//!   and [`applied`]: who last applied each vif's policy.
//! - [`watch`]: `vifguard watch`, re-applying policies that change in
//!   xenstore.
//! - [`network`]: a vif's bridge port (Linux bridge or Open vSwitch).
//! - [`setup_vif_rules`]: XAPI's setup-vif-rules hook: the filter, then
//!   the bridge port.
//! - [`report`]: status text and JSON, Prometheus text and its HTTP
//!   listener, over snapshots of the maps.
//! - [`check`]: `vifguard check`, the preflight: kernel features probed,
//!   bpffs, configuration, xenstore and the vifs present.
//! - [`rtnetlink`]: rtnetlink requests (tc filters, bridge ports) over
//!   [`sys::netlink`].
//! - [`model`]: the reference model of the datapath the tests compare the
//!   kernel with.
//! - [`fault`]: test-only fault-injection points (`VIFGUARD_FAULT`).
//! - [`sys`]: the system calls without a safe std wrapper; the only module
//!   tree with `unsafe`.
#![deny(unsafe_code)]

pub mod applied;
pub mod check;
pub mod cli;
pub mod config;
pub mod datapath;
pub mod fault;
pub mod hooks;
pub mod lifecycle;
pub mod model;
pub mod network;
pub mod policy;
pub mod report;
pub mod rtnetlink;
pub mod setup_vif_rules;
pub mod sys;
pub mod watch;
pub mod xen;
