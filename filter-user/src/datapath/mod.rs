//! The datapath from userspace: the eBPF object ([`object`]), its pinned
//! maps ([`maps`]: read by anyone, written under the layout's lock), how a
//! policy is encoded into them ([`encode`]), counters ([`counters`]), drop
//! events ([`events`]) and the bpffs layout ([`pins`]).

pub mod counters;
pub mod encode;
pub mod events;
pub mod lease_events;
pub mod maps;
pub mod object;
pub mod pins;

pub use counters::Counters;
pub use maps::{Interface, Maps, MapsWriter, check_pinned_map, is_not_found};
pub use object::{DatapathError, OBJECT, load, object_version, tc_program, xdp_program};
