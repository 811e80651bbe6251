//! The Xen side: the vif a command is about ([`vif`]) and its policy in
//! xenstore ([`sources`]), and what XAPI's setup-vif-rules reads besides
//! ([`xapi_vif`]).

pub mod sources;
pub mod vif;
pub mod xapi_vif;
