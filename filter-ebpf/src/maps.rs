//! The maps, BTF-defined so `bpftool map dump` prints keys and values as
//! structs. The sizes of the maps with one entry per interface or counter
//! slot are defaults: the loader sets the real ones (`max_interfaces` of
//! the host configuration; `map_names::SIZED_BY_MAX_INTERFACES`).

use aya_ebpf::{
    btf_maps::{Array, HashMap, LpmTrie, LruPerCpuHashMap, PerCpuArray, RingBuf},
    macros::btf_map,
};
use filter_common::{
    Addrs, DropEvent, EventBudget, FloodWindow, IfacePolicy, Learned, NoPolicyCounters, PairKey,
    SlotCounters, V4Key, V6Key,
};

/// ifindex -> policy.
///
/// A preallocated hash map whose values the programs read in place. That
/// is safe although the kernel recycles an element as soon as an update
/// replaces or deletes it (the next update on that CPU rewrites it): the
/// programs only read this map, and hold an element only while they run;
/// userspace, its only writer, waits after each write that unlinks an
/// element until every program then running has returned (an RCU grace
/// period, `MapsWriter::install` and `MapsWriter::remove` in filter-user)
/// before it writes again. So no program reads an element while it is
/// rewritten. BPF_F_NO_PREALLOC would not help: since Linux 6.1 those
/// elements are reused at once too.
#[btf_map]
pub static POLICY: HashMap<u32, IfacePolicy, 1024> = HashMap::new();

/// (ifindex, source MAC) -> the addresses of a pair's or a VRRP virtual
/// MAC (docs/policy.md 3a). Read in place like `POLICY`, under the same
/// rule: userspace waits for the programs after each write that unlinks an
/// element before it writes again.
#[btf_map]
pub static PAIRS: HashMap<PairKey, Addrs, 4096> = HashMap::new();

/// (ifindex, set, IPv4 prefix) -> 1: allowed sources beyond the inline
/// lists, the guest's pair addresses and its DHCP servers (`set`).
#[btf_map]
pub static SRC_V4: LpmTrie<V4Key, u8, 65536> = LpmTrie::new();

/// (ifindex, set, IPv6 prefix) -> 1: see `SRC_V4`.
#[btf_map]
pub static SRC_V6: LpmTrie<V6Key, u8, 65536> = LpmTrie::new();

/// (ifindex, set 0, IPv4 prefix) -> 1: `isolated` destinations.
#[btf_map]
pub static DST_V4: LpmTrie<V4Key, u8, 65536> = LpmTrie::new();

/// (ifindex, set 0, IPv6 prefix) -> 1: `isolated` destinations.
#[btf_map]
pub static DST_V6: LpmTrie<V6Key, u8, 65536> = LpmTrie::new();

/// slot -> the addresses the interface leased from DHCP (option
/// `learn_dhcp`), written by the programs (a DHCPACK or DHCPNAK to the
/// guest, a DHCPRELEASE or DHCPDECLINE from it) one 64-bit entry at a
/// time, and zeroed by userspace when a new interface takes the slot.
#[btf_map]
pub static LEARNED: Array<Learned, 1024> = Array::new();

/// slot -> broadcast and multicast frames sent this second (option
/// `flood_pps`), shared by all CPUs so the limit holds for the vif as a
/// whole; zeroed by userspace when a new interface takes the slot.
#[btf_map]
pub static FLOOD: Array<FloodWindow, 1024> = Array::new();

/// slot -> per-CPU counters by direction and reason.
#[btf_map]
pub static COUNTERS: PerCpuArray<SlotCounters, 1024> = PerCpuArray::new();

/// ifindex -> per-CPU drops on interfaces without a policy entry.
#[btf_map]
pub static NO_POLICY: LruPerCpuHashMap<u32, NoPolicyCounters, 256> = LruPerCpuHashMap::new();

/// slot -> per-CPU event rate-limit window.
#[btf_map]
pub static EVENT_BUDGET: PerCpuArray<EventBudget, 1024> = PerCpuArray::new();

/// Sampled drop events for `vifguard events`.
#[btf_map]
pub static EVENTS: RingBuf<DropEvent, { 256 * 1024 }> = RingBuf::new();
