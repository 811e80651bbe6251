//! Types shared by the vifguard datapath (eBPF) and its loader (userspace).
//!
//! Everything here is `#[repr(C)]` with explicit padding: these structs are
//! the keys and values of BPF maps, read and written by both sides and
//! printed by `bpftool`. Changing a layout is an ABI change: bump
//! [`ABI_VERSION`], which names the bpffs directory the maps are pinned in
//! (the loader of a new version takes over what an older one left, see
//! `filter_user::datapath::pins::Layout::adopt_older`).
#![no_std]

mod reason;

pub use reason::{REASON_COUNT, Reason};

/// Version of the map layout. The loader pins maps under `v{ABI_VERSION}`, so
/// a loader with another layout never reads maps it does not understand.
///
/// 1: the first layout. 2: reasons `dhcp_spoof` and `dad_foreign` appended,
/// so a [`SlotCounters`] row grew from 768 to 832 bytes. 3: reason
/// `dhcp_untrusted` and `flood` (a row of 896 bytes), address sets in the
/// trie keys, the `PAIRS`, `LEARNED` and `FLOOD` maps, learning and flood
/// fields in the policy.
pub const ABI_VERSION: u32 = 3;

/// Host addresses stored inline in [`IfacePolicy`]: the common case (a guest
/// with a few addresses) is answered by the one policy lookup, without a trie.
pub const INLINE_V4: usize = 8;
/// See [`INLINE_V4`].
pub const INLINE_V6: usize = 8;
/// Extra EtherTypes a vif may send (option `ethertypes`).
pub const MAX_ETHERTYPES: usize = 8;
/// Headers are parsed within this many bytes from the start of the frame; a
/// header that ends beyond it counts as running past the frame.
pub const PARSE_WINDOW: usize = 512;
/// IPv6 extension headers walked before the chain counts as too long.
pub const MAX_IPV6_EXT: usize = 8;
/// Neighbor Discovery options walked before the message counts as malformed.
pub const MAX_ND_OPTS: usize = 16;
/// DHCP options walked looking for the message type, the lease time and
/// the requested address (section 8).
pub const MAX_DHCP_OPTS: usize = 16;
/// Addresses learned from DHCP per interface (section 8).
pub const MAX_LEARNED: usize = 4;

/// Filtering mode of one interface (docs/policy.md section 2).
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Mode {
    Unlocked = 0,
    Locked = 1,
    Isolated = 2,
    Disabled = 3,
}

impl Mode {
    pub const fn from_u8(v: u8) -> Option<Mode> {
        match v {
            0 => Some(Mode::Unlocked),
            1 => Some(Mode::Locked),
            2 => Some(Mode::Isolated),
            3 => Some(Mode::Disabled),
            _ => None,
        }
    }

    pub const fn name(self) -> &'static str {
        match self {
            Mode::Unlocked => "unlocked",
            Mode::Locked => "locked",
            Mode::Isolated => "isolated",
            Mode::Disabled => "disabled",
        }
    }
}

/// Which link-local IPv6 sources a vif may use besides its `ipv6` list.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LinkLocal {
    /// Only the modified EUI-64 address derived from the vif's MAC.
    Derived = 0,
    /// All of fe80::/64.
    Any = 1,
    /// None beyond the `ipv6` list.
    None = 2,
}

impl LinkLocal {
    pub const fn from_u8(v: u8) -> Option<LinkLocal> {
        match v {
            0 => Some(LinkLocal::Derived),
            1 => Some(LinkLocal::Any),
            2 => Some(LinkLocal::None),
            _ => None,
        }
    }

    pub const fn name(self) -> &'static str {
        match self {
            LinkLocal::Derived => "derived",
            LinkLocal::Any => "any",
            LinkLocal::None => "none",
        }
    }
}

/// Direction of a frame relative to the guest.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Transmitted by the guest: TC ingress (and XDP) on vifN.M / tapN.M.
    FromGuest = 0,
    /// Delivered to the guest: TC egress on vifN.M / tapN.M.
    ToGuest = 1,
}

impl Direction {
    pub const ALL: [Direction; 2] = [Direction::FromGuest, Direction::ToGuest];

    pub const fn from_u8(v: u8) -> Option<Direction> {
        match v {
            0 => Some(Direction::FromGuest),
            1 => Some(Direction::ToGuest),
            _ => None,
        }
    }

    pub const fn name(self) -> &'static str {
        match self {
            Direction::FromGuest => "from_guest",
            Direction::ToGuest => "to_guest",
        }
    }
}

/// Option bits of [`IfacePolicy::flags`] (docs/policy.md section 6).
pub mod flags {
    pub const DHCP_CLIENT: u16 = 1 << 0;
    pub const DHCP_SERVER: u16 = 1 << 1;
    pub const ROUTER: u16 = 1 << 2;
    pub const EGRESS_FILTER: u16 = 1 << 3;
    /// The vif has pairs or VRRP entries (section 3a): a source MAC other
    /// than its own is looked up in `PAIRS`, and to the guest the
    /// addresses of set [`super::set::PAIRS`] count as its own.
    pub const PAIRS: u16 = 1 << 4;
    /// The vif has `dhcp_servers` (section 4): server messages to it must
    /// come from set [`super::set::DHCP_SERVERS`].
    pub const DHCP_SERVERS: u16 = 1 << 5;
    /// Option `learn_dhcp` (section 8): the `LEARNED` row of the vif's
    /// slot holds addresses it may use too.
    pub const LEARN_DHCP: u16 = 1 << 6;
}

/// Bits of [`Addrs::flags`].
pub mod addr_flags {
    /// The `SRC_V4` trie holds entries of this set (prefixes, or hosts
    /// beyond the inline list): consult it when the inline list misses.
    pub const V4_TRIE: u8 = 1 << 0;
    /// Same for `SRC_V6`.
    pub const V6_TRIE: u8 = 1 << 1;
    /// A VRRP virtual MAC: its frames may also use every address of the
    /// vif's own MAC (section 3a).
    pub const OWN_TOO: u8 = 1 << 2;
}

/// Address sets of one interface in the `SRC_V4`/`SRC_V6` tries (the
/// `set` byte of [`V4Key`] and [`V6Key`]).
pub mod set {
    /// The vif's own `ipv4`/`ipv6`.
    pub const OWN: u8 = 0;
    /// The first pair or virtual MAC; the loader numbers them from here.
    pub const FIRST_EXTRA: u8 = 1;
    /// Every address of the pairs and VRRP entries (and the pairs' derived
    /// link-local addresses under `derived`): the guest's addresses besides
    /// its own, to the guest.
    pub const PAIRS: u8 = 254;
    /// The trusted DHCP servers, host addresses.
    pub const DHCP_SERVERS: u8 = 255;
}

/// The addresses one source MAC may use (docs/policy.md 3 step 1, "the
/// frame's addresses"): the vif's own in [`IfacePolicy::own`], a pair's or
/// a virtual MAC's as the value of `PAIRS`. Addresses are stored as they
/// appear on the wire (network byte order bytes), so the datapath compares
/// them without swapping.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Addrs {
    pub mac: [u8; 6],
    /// The [`set`] of this MAC's prefixes and further hosts in the tries.
    pub set: u8,
    /// [`addr_flags`] bits.
    pub flags: u8,
    /// Entries of `ipv4` in use.
    pub n_ipv4: u8,
    /// Entries of `ipv6` in use.
    pub n_ipv6: u8,
    pub _pad: [u8; 2],
    /// Allowed IPv4 host addresses, network byte order.
    pub ipv4: [[u8; 4]; INLINE_V4],
    /// Allowed IPv6 host addresses.
    pub ipv6: [[u8; 16]; INLINE_V6],
    /// The link-local address derived from `mac` (modified EUI-64).
    pub ll_derived: [u8; 16],
}

impl Addrs {
    pub const ZERO: Addrs = Addrs {
        mac: [0; 6],
        set: set::OWN,
        flags: 0,
        n_ipv4: 0,
        n_ipv6: 0,
        _pad: [0; 2],
        ipv4: [[0; 4]; INLINE_V4],
        ipv6: [[0; 16]; INLINE_V6],
        ll_derived: [0; 16],
    };
}

/// The policy of one interface: the value of the `POLICY` hash map, keyed by
/// ifindex.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IfacePolicy {
    /// [`Mode`] as u8.
    pub mode: u8,
    /// [`LinkLocal`] as u8.
    pub link_local: u8,
    /// [`flags`] bits.
    pub flags: u16,
    /// Index of this interface's row in `COUNTERS` and `EVENT_BUDGET`.
    pub slot: u32,
    /// Drop events per second (per CPU) this interface may emit.
    pub events_per_sec: u32,
    /// Seconds a learned address outlives its lease.
    pub learn_grace_s: u32,
    /// Option `flood_pps`; 0: no limit.
    pub flood_pps: u32,
    /// Entries of `ethertypes` in use.
    pub n_ethertypes: u8,
    pub _pad: [u8; 3],
    /// Extra EtherTypes, network byte order.
    pub ethertypes: [u16; MAX_ETHERTYPES],
    /// The vif's `mac` and its addresses.
    pub own: Addrs,
}

impl IfacePolicy {
    pub const ZERO: IfacePolicy = IfacePolicy {
        mode: Mode::Disabled as u8,
        link_local: LinkLocal::Derived as u8,
        flags: 0,
        slot: 0,
        events_per_sec: 0,
        learn_grace_s: 0,
        flood_pps: 0,
        n_ethertypes: 0,
        _pad: [0; 3],
        ethertypes: [0; MAX_ETHERTYPES],
        own: Addrs::ZERO,
    };
}

/// A `LEARNED` row, indexed by slot: the addresses the interface leased
/// from DHCP (section 8). Each entry is one 64-bit word, so the programs
/// (which write it) and userspace read and write it whole: see
/// [`learned`].
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Learned {
    pub entries: [u64; MAX_LEARNED],
}

/// The packing of a [`Learned`] entry: the address (network byte order)
/// in the low 32 bits, the second it expires (`bpf_ktime_get_ns`, i.e.
/// CLOCK_MONOTONIC, in seconds, lease and grace included) in the high 32.
/// 0: free.
pub mod learned {
    pub const fn pack(addr: [u8; 4], expires_s: u32) -> u64 {
        (expires_s as u64) << 32 | u32::from_ne_bytes(addr) as u64
    }

    pub const fn addr(e: u64) -> [u8; 4] {
        (e as u32).to_ne_bytes()
    }

    pub const fn expires_s(e: u64) -> u32 {
        (e >> 32) as u32
    }
}

/// A `FLOOD` row, indexed by slot: the broadcast and multicast frames the
/// interface sent in the current second (section 9). Shared by all CPUs:
/// the programs add with an atomic add and reset it when the second
/// changes.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FloodWindow {
    /// The second (CLOCK_MONOTONIC) `count` is for.
    pub second: u64,
    pub count: u64,
}

/// Key of the `PAIRS` hash map: a source MAC of an interface besides its
/// own (a pair's, or a VRRP virtual MAC).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PairKey {
    pub ifindex: u32,
    pub mac: [u8; 6],
    pub _pad: [u8; 2],
}

/// Data part of an IPv4 trie key: the interface, the address [`set`], then
/// the address. The prefix length always covers the ifindex and the set
/// ([`OWNER_BITS`] + address bits), so a prefix never matches another
/// interface or set.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct V4Key {
    pub ifindex: [u8; 4],
    pub set: u8,
    pub addr: [u8; 4],
}

/// Data part of an IPv6 trie key, see [`V4Key`].
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct V6Key {
    pub ifindex: [u8; 4],
    pub set: u8,
    pub addr: [u8; 16],
}

/// Bits of the trie key taken by the ifindex and the set.
pub const OWNER_BITS: u32 = 40;

/// Packets and bytes for one (interface, direction, reason).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counter {
    pub packets: u64,
    pub bytes: u64,
}

/// One row of the per-CPU `COUNTERS` array (indexed by slot): a counter per
/// direction and reason, at `[direction * REASON_COUNT + reason]`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SlotCounters {
    pub c: [Counter; 2 * REASON_COUNT],
}

impl SlotCounters {
    pub const ZERO: SlotCounters = SlotCounters {
        c: [Counter {
            packets: 0,
            bytes: 0,
        }; 2 * REASON_COUNT],
    };

    pub const fn index(direction: Direction, reason: Reason) -> usize {
        direction as usize * REASON_COUNT + reason as usize
    }
}

/// Per-CPU `NO_POLICY` value, keyed by ifindex: frames dropped on an
/// interface that has a program attached but no policy entry.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NoPolicyCounters {
    /// Indexed by [`Direction`].
    pub c: [Counter; 2],
}

/// Per-CPU `EVENT_BUDGET` value, indexed by slot: a one-second window that
/// caps how many drop events an interface emits.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EventBudget {
    pub window_start_ns: u64,
    pub sent: u32,
    pub _pad: u32,
}

/// Address family carried in a [`DropEvent`].
pub mod family {
    pub const NONE: u8 = 0;
    pub const IPV4: u8 = 4;
    pub const IPV6: u8 = 6;
}

/// A sampled drop, sent on the `EVENTS` ring buffer.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DropEvent {
    pub ifindex: u32,
    /// [`Direction`] as u8.
    pub direction: u8,
    /// [`Reason`] as u8.
    pub reason: u8,
    /// EtherType of the frame (host byte order); 0 if the frame was too short.
    pub ethertype: u16,
    pub src_mac: [u8; 6],
    pub dst_mac: [u8; 6],
    /// [`family`] of `src_addr`/`dst_addr`.
    pub family: u8,
    pub _pad: [u8; 3],
    /// Length of the frame in bytes.
    pub len: u32,
    /// IP source, or ARP sender protocol address (IPv4 in the first 4 bytes).
    pub src_addr: [u8; 16],
    /// IP destination, ARP target, or ND target (IPv4 in the first 4 bytes).
    pub dst_addr: [u8; 16],
}

impl DropEvent {
    pub const ZERO: DropEvent = DropEvent {
        ifindex: 0,
        direction: 0,
        reason: 0,
        ethertype: 0,
        src_mac: [0; 6],
        dst_mac: [0; 6],
        family: family::NONE,
        _pad: [0; 3],
        len: 0,
        src_addr: [0; 16],
        dst_addr: [0; 16],
    };
}

/// Names of the maps, as the eBPF object declares them and as they are
/// pinned in bpffs.
pub mod map_names {
    pub const POLICY: &str = "POLICY";
    pub const PAIRS: &str = "PAIRS";
    pub const LEARNED: &str = "LEARNED";
    pub const FLOOD: &str = "FLOOD";
    pub const SRC_V4: &str = "SRC_V4";
    pub const SRC_V6: &str = "SRC_V6";
    pub const DST_V4: &str = "DST_V4";
    pub const DST_V6: &str = "DST_V6";
    pub const COUNTERS: &str = "COUNTERS";
    pub const NO_POLICY: &str = "NO_POLICY";
    pub const EVENT_BUDGET: &str = "EVENT_BUDGET";
    pub const EVENTS: &str = "EVENTS";
    /// The maps with one entry per interface (POLICY, by ifindex) or per
    /// counter slot (the rest): the loader sizes each to the host's
    /// `max_interfaces`, whatever the object declares.
    pub const SIZED_BY_MAX_INTERFACES: [&str; 5] = [POLICY, COUNTERS, EVENT_BUDGET, LEARNED, FLOOD];
    pub const ALL: [&str; 12] = [
        POLICY,
        PAIRS,
        LEARNED,
        FLOOD,
        SRC_V4,
        SRC_V6,
        DST_V4,
        DST_V6,
        COUNTERS,
        NO_POLICY,
        EVENT_BUDGET,
        EVENTS,
    ];
}

/// Names of the programs in the eBPF object.
pub mod program_names {
    pub const TC_FROM_GUEST: &str = "vifguard_tc_from_guest";
    pub const TC_TO_GUEST: &str = "vifguard_tc_to_guest";
    pub const XDP_FROM_GUEST: &str = "vifguard_xdp_from_guest";
    /// Programs that return "pass" and do nothing else: the floor the
    /// benchmarks compare with.
    pub const TC_EMPTY: &str = "vifguard_tc_empty";
    pub const XDP_EMPTY: &str = "vifguard_xdp_empty";
}

#[cfg(feature = "user")]
mod pod {
    // SAFETY: all of these are repr(C), contain only integers and arrays of
    // integers, and have their padding spelled out as fields.
    unsafe impl aya::Pod for super::IfacePolicy {}
    unsafe impl aya::Pod for super::Addrs {}
    unsafe impl aya::Pod for super::PairKey {}
    unsafe impl aya::Pod for super::Learned {}
    unsafe impl aya::Pod for super::FloodWindow {}
    unsafe impl aya::Pod for super::V4Key {}
    unsafe impl aya::Pod for super::V6Key {}
    unsafe impl aya::Pod for super::Counter {}
    unsafe impl aya::Pod for super::SlotCounters {}
    unsafe impl aya::Pod for super::NoPolicyCounters {}
    unsafe impl aya::Pod for super::EventBudget {}
    unsafe impl aya::Pod for super::DropEvent {}
}

/// Pins the layout of a map key or value at compile time, in the eBPF build
/// as in userspace: its size and alignment, and its fields in order, each
/// starting where the one before it ends (no implicit padding: bpftool, the
/// kernel's value copies and the other side see every byte). The sizes are
/// those of [`ABI_VERSION`] 3: a layout change that makes one of these fail
/// is an ABI change.
macro_rules! layout {
    ($ty:ty, size $size:literal, align $align:literal, [$($field:ident: $fty:ty),+ $(,)?]) => {
        const _: () = {
            let mut end = 0;
            $(
                assert!(
                    core::mem::offset_of!($ty, $field) == end,
                    concat!(stringify!($ty), ".", stringify!($field), " starts where the field before it ends"),
                );
                end += core::mem::size_of::<$fty>();
            )+
            assert!(
                end == core::mem::size_of::<$ty>(),
                concat!(stringify!($ty), " ends with its last field"),
            );
            assert!(
                core::mem::size_of::<$ty>() == $size,
                concat!(stringify!($ty), " is ", stringify!($size), " bytes"),
            );
            assert!(
                core::mem::align_of::<$ty>() == $align,
                concat!(stringify!($ty), " is aligned to ", stringify!($align)),
            );
        };
    };
}

layout!(Addrs, size 188, align 1, [
    mac: [u8; 6],
    set: u8,
    flags: u8,
    n_ipv4: u8,
    n_ipv6: u8,
    _pad: [u8; 2],
    ipv4: [[u8; 4]; INLINE_V4],
    ipv6: [[u8; 16]; INLINE_V6],
    ll_derived: [u8; 16],
]);
layout!(IfacePolicy, size 228, align 4, [
    mode: u8,
    link_local: u8,
    flags: u16,
    slot: u32,
    events_per_sec: u32,
    learn_grace_s: u32,
    flood_pps: u32,
    n_ethertypes: u8,
    _pad: [u8; 3],
    ethertypes: [u16; MAX_ETHERTYPES],
    own: Addrs,
]);
layout!(Learned, size 32, align 8, [entries: [u64; MAX_LEARNED]]);
layout!(FloodWindow, size 16, align 8, [second: u64, count: u64]);
layout!(PairKey, size 12, align 4, [ifindex: u32, mac: [u8; 6], _pad: [u8; 2]]);
// The ifindex and the set come first in the trie keys: a prefix of
// OWNER_BITS + n bits then never matches another interface or set.
layout!(V4Key, size 9, align 1, [ifindex: [u8; 4], set: u8, addr: [u8; 4]]);
layout!(V6Key, size 21, align 1, [ifindex: [u8; 4], set: u8, addr: [u8; 16]]);
layout!(Counter, size 16, align 8, [packets: u64, bytes: u64]);
// A counter per direction and reason: appending a reason grows it (and
// bumps ABI_VERSION: a pinned COUNTERS map of the old value size is not
// this layout's).
layout!(SlotCounters, size 896, align 8, [c: [Counter; 2 * REASON_COUNT]]);
layout!(NoPolicyCounters, size 32, align 8, [c: [Counter; 2]]);
layout!(EventBudget, size 16, align 8, [window_start_ns: u64, sent: u32, _pad: u32]);
layout!(DropEvent, size 60, align 4, [
    ifindex: u32,
    direction: u8,
    reason: u8,
    ethertype: u16,
    src_mac: [u8; 6],
    dst_mac: [u8; 6],
    family: u8,
    _pad: [u8; 3],
    len: u32,
    src_addr: [u8; 16],
    dst_addr: [u8; 16],
]);
