//! The eBPF object and its maps: loading, and writing one interface's
//! policy into the maps (or removing it), reading counters back.

use std::collections::HashMap as StdHashMap;
use std::path::Path;

use aya::maps::{
    HashMap, LpmTrie, Map, MapData, MapError, PerCpuArray, PerCpuHashMap, PerCpuValues,
    lpm_trie::Key,
};
use aya::programs::{ProgramError, SchedClassifier, Xdp};
use aya::{Ebpf, EbpfError, EbpfLoader};
use filter_common::{
    Counter, Direction, EventBudget, IfacePolicy, NoPolicyCounters, REASON_COUNT, Reason,
    SlotCounters, V4Key, V6Key, map_names as names,
};

pub mod encode;
pub mod events;
pub mod pins;

use crate::datapath::encode::{Entries, encode};
use crate::policy::Policy;

/// The eBPF object built from filter-ebpf (empty when the build had no
/// eBPF toolchain, see build.rs).
pub static OBJECT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/vifguard.bpf.o"));

/// A short fingerprint of the embedded object (computed by build.rs):
/// names the pinned programs, so an upgrade is visible and old and new
/// programs never share a path.
pub fn object_version() -> String {
    include_str!(concat!(env!("OUT_DIR"), "/object_version")).to_string()
}

#[derive(Debug, thiserror::Error)]
pub enum DatapathError {
    #[error(
        "this vifguard was built without its eBPF programs (no bpf-linker or Debian rustc at build time); run `cargo xtask bootstrap` and rebuild"
    )]
    NoObject,
    #[error("loading the eBPF object failed")]
    Load(#[source] Box<EbpfError>),
    #[error("the eBPF object has no map {0}")]
    MissingMap(&'static str),
    #[error("map {name}: {action} failed")]
    Map {
        name: &'static str,
        action: &'static str,
        #[source]
        source: Box<MapError>,
    },
    #[error("map {name} is not the map this object declares (type, key or value size)")]
    WrongMap {
        name: &'static str,
        #[source]
        source: Box<MapError>,
    },
    #[error("the eBPF object has no program {0}")]
    MissingProgram(&'static str),
    #[error("program {name}: {action} failed")]
    Program {
        name: &'static str,
        action: &'static str,
        #[source]
        source: Box<ProgramError>,
    },
    #[error(
        "all {max} interface slots are in use (raise max_interfaces in the host configuration)"
    )]
    SlotsExhausted { max: u32 },
}

fn map_err(name: &'static str, action: &'static str) -> impl FnOnce(MapError) -> DatapathError {
    move |e| DatapathError::Map {
        name,
        action,
        source: Box::new(e),
    }
}

fn prog_err(
    name: &'static str,
    action: &'static str,
) -> impl FnOnce(ProgramError) -> DatapathError {
    move |e| DatapathError::Program {
        name,
        action,
        source: Box::new(e),
    }
}

/// Loads the object into the kernel: maps are created (or, with `pin_dir`,
/// reused from / pinned to `pin_dir/<NAME>`), programs verified and loaded.
pub fn load(max_interfaces: u32, pin_dir: Option<&Path>) -> Result<Ebpf, DatapathError> {
    if OBJECT.is_empty() {
        return Err(DatapathError::NoObject);
    }
    let mut loader = EbpfLoader::new();
    for name in [names::POLICY, names::COUNTERS, names::EVENT_BUDGET] {
        loader.map_max_entries(name, max_interfaces);
    }
    if let Some(dir) = pin_dir {
        for name in names::ALL {
            loader.map_pin_path(name, dir.join(name));
        }
    }
    let mut ebpf = loader
        .load(OBJECT)
        .map_err(|e| DatapathError::Load(Box::new(e)))?;
    for name in [
        filter_common::program_names::TC_FROM_GUEST,
        filter_common::program_names::TC_TO_GUEST,
        filter_common::program_names::TC_EMPTY,
    ] {
        tc_program(&mut ebpf, name)?
            .load()
            .map_err(prog_err(name, "verify and load"))?;
    }
    for name in [
        filter_common::program_names::XDP_FROM_GUEST,
        filter_common::program_names::XDP_EMPTY,
    ] {
        xdp_program(&mut ebpf, name)?
            .load()
            .map_err(prog_err(name, "verify and load"))?;
    }
    Ok(ebpf)
}

pub fn tc_program<'a>(
    ebpf: &'a mut Ebpf,
    name: &'static str,
) -> Result<&'a mut SchedClassifier, DatapathError> {
    ebpf.program_mut(name)
        .and_then(|p| p.try_into().ok())
        .ok_or(DatapathError::MissingProgram(name))
}

pub fn xdp_program<'a>(
    ebpf: &'a mut Ebpf,
    name: &'static str,
) -> Result<&'a mut Xdp, DatapathError> {
    ebpf.program_mut(name)
        .and_then(|p| p.try_into().ok())
        .ok_or(DatapathError::MissingProgram(name))
}

/// The maps one interface's policy lives in.
pub struct Maps {
    pub policy: HashMap<MapData, u32, IfacePolicy>,
    pub src_v4: LpmTrie<MapData, V4Key, u32>,
    pub src_v6: LpmTrie<MapData, V6Key, u32>,
    pub dst_v4: LpmTrie<MapData, V4Key, u32>,
    pub dst_v6: LpmTrie<MapData, V6Key, u32>,
    pub counters: PerCpuArray<MapData, SlotCounters>,
    pub no_policy: PerCpuHashMap<MapData, u32, NoPolicyCounters>,
    pub event_budget: PerCpuArray<MapData, EventBudget>,
    /// Built on the first write, see [`Index`].
    index: Option<Index>,
}

/// Who holds what, read from the maps once per command and then kept in
/// step with every write the command makes: it holds the layout's lock,
/// and the programs never write these maps. Without it every install
/// would read the whole policy map (to find a free slot) and iterate all
/// four tries (to find the interface's old entries): a sync of N vifs
/// with prefixes would cost O(N²) syscalls. Dropped after a failed write
/// (what was written is unknown; the next write reads the maps again).
#[derive(Default)]
struct Index {
    slots: StdHashMap<u32, u32>,
    tries: StdHashMap<u32, Entries>,
}

/// The data part of a trie key: the interface it belongs to comes first.
trait TrieKey: Copy + aya::Pod {
    fn ifindex(&self) -> u32;
}

impl TrieKey for V4Key {
    fn ifindex(&self) -> u32 {
        u32::from_ne_bytes(self.ifindex)
    }
}

impl TrieKey for V6Key {
    fn ifindex(&self) -> u32 {
        u32::from_ne_bytes(self.ifindex)
    }
}

macro_rules! typed {
    ($map:expr, $name:expr) => {
        $map.try_into().map_err(|e| DatapathError::WrongMap {
            name: $name,
            source: Box::new(e),
        })?
    };
}

/// Checks that the pin `dir/name` is a bpf map of the type, key size and
/// value size this object declares for `name` (the loader would otherwise
/// reuse whatever is pinned there).
pub fn check_pinned_map(dir: &Path, name: &'static str) -> Result<(), DatapathError> {
    let data = MapData::from_pin(dir.join(name)).map_err(map_err(name, "open pinned"))?;
    let map = Map::from_map_data(data).map_err(map_err(name, "open pinned"))?;
    match name {
        names::POLICY => {
            let _: HashMap<MapData, u32, IfacePolicy> = typed!(map, names::POLICY);
        }
        names::SRC_V4 | names::DST_V4 => {
            let _: LpmTrie<MapData, V4Key, u32> = typed!(map, name);
        }
        names::SRC_V6 | names::DST_V6 => {
            let _: LpmTrie<MapData, V6Key, u32> = typed!(map, name);
        }
        names::COUNTERS => {
            let _: PerCpuArray<MapData, SlotCounters> = typed!(map, names::COUNTERS);
        }
        names::NO_POLICY => {
            let _: PerCpuHashMap<MapData, u32, NoPolicyCounters> = typed!(map, names::NO_POLICY);
        }
        names::EVENT_BUDGET => {
            let _: PerCpuArray<MapData, EventBudget> = typed!(map, names::EVENT_BUDGET);
        }
        names::EVENTS => {
            let _: aya::maps::RingBuf<MapData> = typed!(map, names::EVENTS);
        }
        _ => {}
    }
    Ok(())
}

impl Maps {
    /// Takes the maps out of a freshly loaded object.
    pub fn take_from(ebpf: &mut Ebpf) -> Result<Maps, DatapathError> {
        let mut take =
            |name: &'static str| ebpf.take_map(name).ok_or(DatapathError::MissingMap(name));
        Ok(Maps {
            policy: typed!(take(names::POLICY)?, names::POLICY),
            src_v4: typed!(take(names::SRC_V4)?, names::SRC_V4),
            src_v6: typed!(take(names::SRC_V6)?, names::SRC_V6),
            dst_v4: typed!(take(names::DST_V4)?, names::DST_V4),
            dst_v6: typed!(take(names::DST_V6)?, names::DST_V6),
            counters: typed!(take(names::COUNTERS)?, names::COUNTERS),
            no_policy: typed!(take(names::NO_POLICY)?, names::NO_POLICY),
            event_budget: typed!(take(names::EVENT_BUDGET)?, names::EVENT_BUDGET),
            index: None,
        })
    }

    /// Opens the maps pinned in `dir` (one file per map, named as in the
    /// object).
    pub fn open_pinned(dir: &Path) -> Result<Maps, DatapathError> {
        let open = |name: &'static str| -> Result<Map, DatapathError> {
            let data = MapData::from_pin(dir.join(name)).map_err(map_err(name, "open pinned"))?;
            Map::from_map_data(data).map_err(map_err(name, "open pinned"))
        };
        Ok(Maps {
            policy: typed!(open(names::POLICY)?, names::POLICY),
            src_v4: typed!(open(names::SRC_V4)?, names::SRC_V4),
            src_v6: typed!(open(names::SRC_V6)?, names::SRC_V6),
            dst_v4: typed!(open(names::DST_V4)?, names::DST_V4),
            dst_v6: typed!(open(names::DST_V6)?, names::DST_V6),
            counters: typed!(open(names::COUNTERS)?, names::COUNTERS),
            no_policy: typed!(open(names::NO_POLICY)?, names::NO_POLICY),
            event_budget: typed!(open(names::EVENT_BUDGET)?, names::EVENT_BUDGET),
            index: None,
        })
    }

    /// Every interface with a policy entry: a few BPF_MAP_LOOKUP_BATCH
    /// calls (one lookup per entry on kernels without batch operations),
    /// so a new vif's slot search and a status of 1,000 vifs do not cost
    /// two syscalls per vif.
    pub fn policies(&self) -> Result<Vec<(u32, IfacePolicy)>, DatapathError> {
        match crate::sys::bpf::lookup_batch(&self.policy) {
            Ok(Some(all)) => return Ok(all),
            Ok(None) => {}
            Err(e) => {
                return Err(map_err(names::POLICY, "read")(MapError::SyscallError(
                    aya::sys::SyscallError {
                        call: "bpf_map_lookup_batch",
                        io_error: e,
                    },
                )));
            }
        }
        self.policy
            .iter()
            .collect::<Result<Vec<_>, _>>()
            .map_err(map_err(names::POLICY, "iterate"))
    }

    /// Writes `policy` for `ifindex`. Fail closed, in this order: the
    /// tries first, then the policy value (one atomic element update; until
    /// then the old policy or none applies), then stale trie entries of a
    /// previous policy are removed. Returns the counter slot.
    pub fn install(
        &mut self,
        ifindex: u32,
        policy: &Policy,
        events_per_sec: u32,
    ) -> Result<u32, DatapathError> {
        let r = self.install_indexed(ifindex, policy, events_per_sec);
        if r.is_err() {
            self.index = None;
        }
        r
    }

    fn install_indexed(
        &mut self,
        ifindex: u32,
        policy: &Policy,
        events_per_sec: u32,
    ) -> Result<u32, DatapathError> {
        let index = self.index()?;
        let existing = index.slots.get(&ifindex).copied();
        let old = index.tries.get(&ifindex).cloned();
        let slot = match existing {
            Some(slot) => slot,
            None => {
                let slot = self.free_slot()?;
                self.reset_slot(slot)?;
                slot
            }
        };
        let new = encode(policy, ifindex, slot, events_per_sec);
        for (len, k) in &new.src_v4 {
            self.src_v4
                .insert(&Key::new(*len, *k), 1, 0)
                .map_err(map_err(names::SRC_V4, "insert"))?;
        }
        for (len, k) in &new.src_v6 {
            self.src_v6
                .insert(&Key::new(*len, *k), 1, 0)
                .map_err(map_err(names::SRC_V6, "insert"))?;
        }
        for (len, k) in &new.dst_v4 {
            self.dst_v4
                .insert(&Key::new(*len, *k), 1, 0)
                .map_err(map_err(names::DST_V4, "insert"))?;
        }
        for (len, k) in &new.dst_v6 {
            self.dst_v6
                .insert(&Key::new(*len, *k), 1, 0)
                .map_err(map_err(names::DST_V6, "insert"))?;
        }
        self.policy
            .insert(ifindex, new.policy, 0)
            .map_err(map_err(names::POLICY, "insert"))?;
        if let Some(old) = &old {
            self.remove_trie_entries(old, Some(&new))?;
        }
        let index = self.index()?;
        index.slots.insert(ifindex, slot);
        index.tries.insert(ifindex, new);
        Ok(slot)
    }

    /// Removes every entry of `ifindex`: the policy first (the interface
    /// then fails closed as `no_policy`), then its trie entries.
    pub fn remove(&mut self, ifindex: u32) -> Result<bool, DatapathError> {
        let r = self.remove_indexed(ifindex);
        if r.is_err() {
            self.index = None;
        }
        r
    }

    fn remove_indexed(&mut self, ifindex: u32) -> Result<bool, DatapathError> {
        let had = match self.policy.remove(&ifindex) {
            Ok(()) => true,
            Err(e) if is_not_found(&e) => false,
            Err(e) => return Err(map_err(names::POLICY, "remove")(e)),
        };
        if let Some(old) = self.index()?.tries.get(&ifindex).cloned() {
            self.remove_trie_entries(&old, None)?;
        }
        match self.no_policy.remove(&ifindex) {
            Ok(()) => {}
            Err(e) if is_not_found(&e) => {}
            Err(e) => return Err(map_err(names::NO_POLICY, "remove")(e)),
        }
        let index = self.index()?;
        index.slots.remove(&ifindex);
        index.tries.remove(&ifindex);
        Ok(had)
    }

    /// The index, read from the maps on first use.
    fn index(&mut self) -> Result<&mut Index, DatapathError> {
        if self.index.is_none() {
            self.index = Some(self.read_index()?);
        }
        Ok(self.index.get_or_insert_with(Index::default))
    }

    /// Every interface's slot and trie entries, as the maps hold them.
    fn read_index(&self) -> Result<Index, DatapathError> {
        fn scan<K: TrieKey>(
            trie: &LpmTrie<MapData, K, u32>,
            name: &'static str,
            tries: &mut StdHashMap<u32, Entries>,
            field: impl Fn(&mut Entries) -> &mut Vec<(u32, K)>,
        ) -> Result<(), DatapathError> {
            for key in trie.keys() {
                let key = key.map_err(map_err(name, "iterate"))?;
                let e = tries
                    .entry(key.data().ifindex())
                    .or_insert_with(Entries::none);
                field(e).push((key.prefix_len(), key.data()));
            }
            Ok(())
        }
        let mut index = Index::default();
        for (ifindex, p) in self.policies()? {
            index.slots.insert(ifindex, p.slot);
        }
        let t = &mut index.tries;
        scan(&self.src_v4, names::SRC_V4, t, |e| &mut e.src_v4)?;
        scan(&self.src_v6, names::SRC_V6, t, |e| &mut e.src_v6)?;
        scan(&self.dst_v4, names::DST_V4, t, |e| &mut e.dst_v4)?;
        scan(&self.dst_v6, names::DST_V6, t, |e| &mut e.dst_v6)?;
        Ok(index)
    }

    fn remove_trie_entries(
        &mut self,
        old: &Entries,
        keep: Option<&Entries>,
    ) -> Result<(), DatapathError> {
        fn sweep<K: Copy + PartialEq + aya::Pod>(
            trie: &mut LpmTrie<MapData, K, u32>,
            name: &'static str,
            old: &[(u32, K)],
            keep: Option<&[(u32, K)]>,
        ) -> Result<(), DatapathError> {
            for e in old {
                if keep.is_some_and(|k| k.contains(e)) {
                    continue;
                }
                match trie.remove(&Key::new(e.0, e.1)) {
                    Ok(()) => {}
                    Err(err) if is_not_found(&err) => {}
                    Err(err) => return Err(map_err(name, "remove")(err)),
                }
            }
            Ok(())
        }
        sweep(
            &mut self.src_v4,
            names::SRC_V4,
            &old.src_v4,
            keep.map(|k| &k.src_v4[..]),
        )?;
        sweep(
            &mut self.src_v6,
            names::SRC_V6,
            &old.src_v6,
            keep.map(|k| &k.src_v6[..]),
        )?;
        sweep(
            &mut self.dst_v4,
            names::DST_V4,
            &old.dst_v4,
            keep.map(|k| &k.dst_v4[..]),
        )?;
        sweep(
            &mut self.dst_v6,
            names::DST_V6,
            &old.dst_v6,
            keep.map(|k| &k.dst_v6[..]),
        )?;
        Ok(())
    }

    /// The lowest slot no policy uses. Slot 0 is reserved for interfaces
    /// without a policy (their event budget).
    fn free_slot(&mut self) -> Result<u32, DatapathError> {
        let max = self.counters.len();
        let mut used = vec![false; max as usize];
        for &slot in self.index()?.slots.values() {
            if let Some(u) = used.get_mut(slot as usize) {
                *u = true;
            }
        }
        (1..max)
            .find(|s| !used[*s as usize])
            .ok_or(DatapathError::SlotsExhausted { max: max - 1 })
    }

    /// Zeroes a slot's counters and event budget before a new interface
    /// takes it, so it never inherits another interface's numbers.
    fn reset_slot(&mut self, slot: u32) -> Result<(), DatapathError> {
        let cpus = aya::util::nr_cpus().map_err(|(_, e)| {
            map_err(names::COUNTERS, "count CPUs")(MapError::SyscallError(aya::sys::SyscallError {
                call: "nr_cpus",
                io_error: e,
            }))
        })?;
        let zero_counters =
            PerCpuValues::try_from(vec![SlotCounters::ZERO; cpus]).map_err(|e| {
                map_err(names::COUNTERS, "zero")(MapError::SyscallError(aya::sys::SyscallError {
                    call: "alloc",
                    io_error: e,
                }))
            })?;
        self.counters
            .set(slot, zero_counters, 0)
            .map_err(map_err(names::COUNTERS, "zero"))?;
        let zero_budget =
            PerCpuValues::try_from(vec![EventBudget::default(); cpus]).map_err(|e| {
                map_err(names::EVENT_BUDGET, "zero")(MapError::SyscallError(
                    aya::sys::SyscallError {
                        call: "alloc",
                        io_error: e,
                    },
                ))
            })?;
        self.event_budget
            .set(slot, zero_budget, 0)
            .map_err(map_err(names::EVENT_BUDGET, "zero"))?;
        Ok(())
    }

    /// The counters of a slot, summed over CPUs.
    pub fn counters(&self, slot: u32) -> Result<Counters, DatapathError> {
        let per_cpu = self
            .counters
            .get(&slot, 0)
            .map_err(map_err(names::COUNTERS, "read"))?;
        let mut sum = Counters::default();
        for row in per_cpu.iter() {
            for (i, c) in row.c.iter().enumerate() {
                sum.0[i].packets += c.packets;
                sum.0[i].bytes += c.bytes;
            }
        }
        Ok(sum)
    }

    /// Drops counted on `ifindex` while it had no policy entry, per
    /// direction, summed over CPUs.
    pub fn no_policy_counters(&self, ifindex: u32) -> Result<[Counter; 2], DatapathError> {
        match self.no_policy.get(&ifindex, 0) {
            Ok(per_cpu) => Ok(per_cpu.iter().fold([Counter::default(); 2], |mut acc, v| {
                for (a, c) in acc.iter_mut().zip(v.c.iter()) {
                    a.packets += c.packets;
                    a.bytes += c.bytes;
                }
                acc
            })),
            Err(e) if is_not_found(&e) => Ok([Counter::default(); 2]),
            Err(e) => Err(map_err(names::NO_POLICY, "read")(e)),
        }
    }
}

/// A lookup or delete of a key that is not there (aya reports it either
/// way, depending on the call).
pub fn is_not_found(e: &MapError) -> bool {
    match e {
        MapError::KeyNotFound => true,
        MapError::SyscallError(s) => s.io_error.kind() == std::io::ErrorKind::NotFound,
        _ => false,
    }
}

/// One interface's counters, summed over CPUs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Counters(pub [Counter; 2 * REASON_COUNT]);

impl Default for Counters {
    fn default() -> Self {
        Counters([Counter::default(); 2 * REASON_COUNT])
    }
}

impl Counters {
    pub fn get(&self, dir: Direction, reason: Reason) -> Counter {
        self.0[SlotCounters::index(dir, reason)]
    }

    /// Non-zero counters, in reason order.
    pub fn nonzero(&self) -> impl Iterator<Item = (Direction, Reason, Counter)> + '_ {
        Direction::ALL.into_iter().flat_map(move |d| {
            Reason::ALL
                .into_iter()
                .map(move |r| (d, r, self.get(d, r)))
                .filter(|(_, _, c)| c.packets > 0)
        })
    }
}
