//! The Xen side: the vif a command is about and its policy in xenstore.

pub mod sources;
