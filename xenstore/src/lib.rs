//! xenstore for vifguard: a small client speaking the wire protocol of Xen's
//! `docs/misc/xenstore.txt` (`io/xs_wire.h`).
//!
//! Every message, in both directions, is a 16-byte header of four `u32` in
//! host byte order (little-endian on the x86 and Arm hosts Xen runs on):
//! `type`, `req_id`, `tx_id`, `len`, followed by `len` (at most 4096) bytes
//! of payload. Request payloads are NUL-terminated strings (a `WRITE` value
//! is raw bytes after the path's NUL); error replies have type `ERROR` and
//! the errno name (`ENOENT`, `EACCES`, ...) as payload.
//!
//! The client connects like libxenstore does: the unix socket named by
//! `XENSTORED_PATH`, else `/run/xenstored/socket` (and the older
//! `/var/run/xenstored/socket`), else the `/dev/xen/xenbus` device, which
//! carries the same framing. All I/O has a timeout so a hung daemon gives a
//! clear error instead of hanging a hotplug script.

//!
//! Modules: [`wire`] (framing, message types, paths), [`perms`] (node
//! permissions), [`client`] (the connection). No eBPF here: the crate and
//! the test daemon built on it compile without the eBPF toolchain.
#![deny(unsafe_code)]

pub mod client;
pub mod perms;
mod sys;
pub mod wire;

pub use client::*;
pub use perms::*;
pub use wire::*;
