//! The Xen side: the vif a command is about ([`vif`]) and its policy in
//! xenstore ([`sources`]).

pub mod sources;
pub mod vif;
