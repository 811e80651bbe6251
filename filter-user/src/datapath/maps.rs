//! The pinned maps: reading them, and writing one interface's policy
//! into them (or removing it) under the layout's lock.

use std::collections::HashMap as StdHashMap;
use std::net::Ipv4Addr;
use std::path::Path;

use aya::Ebpf;
use aya::maps::{
    Array, HashMap, LpmTrie, Map, MapData, MapError, PerCpuArray, PerCpuHashMap, PerCpuValues,
    lpm_trie::Key,
};
use filter_common::{
    Addrs, Counter, EventBudget, FloodWindow, IfacePolicy, Learned, NoPolicyCounters, PairKey,
    SlotCounters, V4Key, V6Key, learned, map_names as names,
};

use super::counters::Counters;
use super::encode::{Entries, encode};
use super::object::{DatapathError, map_err};
use super::pins::Lock;
use crate::policy::Policy;
use crate::sys::bpf::ProgramFence;

/// The pinned maps, to read. Writing needs the layout's lock: see
/// [`MapsWriter`].
pub struct Maps {
    policy: HashMap<MapData, u32, IfacePolicy>,
    pairs: HashMap<MapData, PairKey, Addrs>,
    src_v4: LpmTrie<MapData, V4Key, u8>,
    src_v6: LpmTrie<MapData, V6Key, u8>,
    dst_v4: LpmTrie<MapData, V4Key, u8>,
    dst_v6: LpmTrie<MapData, V6Key, u8>,
    counters: PerCpuArray<MapData, SlotCounters>,
    no_policy: PerCpuHashMap<MapData, u32, NoPolicyCounters>,
    event_budget: PerCpuArray<MapData, EventBudget>,
    learned: Array<MapData, Learned>,
    flood: Array<MapData, FloodWindow>,
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
        names::PAIRS => {
            let _: HashMap<MapData, PairKey, Addrs> = typed!(map, names::PAIRS);
        }
        names::SRC_V4 | names::DST_V4 => {
            let _: LpmTrie<MapData, V4Key, u8> = typed!(map, name);
        }
        names::SRC_V6 | names::DST_V6 => {
            let _: LpmTrie<MapData, V6Key, u8> = typed!(map, name);
        }
        names::COUNTERS => {
            let _: PerCpuArray<MapData, SlotCounters> = typed!(map, names::COUNTERS);
        }
        names::NO_POLICY => {
            let _: PerCpuHashMap<MapData, u32, NoPolicyCounters> = typed!(map, names::NO_POLICY);
        }
        names::FLOOD => {
            let _: Array<MapData, FloodWindow> = typed!(map, names::FLOOD);
        }
        names::LEARNED => {
            let _: Array<MapData, Learned> = typed!(map, names::LEARNED);
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
            pairs: typed!(take(names::PAIRS)?, names::PAIRS),
            src_v4: typed!(take(names::SRC_V4)?, names::SRC_V4),
            src_v6: typed!(take(names::SRC_V6)?, names::SRC_V6),
            dst_v4: typed!(take(names::DST_V4)?, names::DST_V4),
            dst_v6: typed!(take(names::DST_V6)?, names::DST_V6),
            counters: typed!(take(names::COUNTERS)?, names::COUNTERS),
            no_policy: typed!(take(names::NO_POLICY)?, names::NO_POLICY),
            event_budget: typed!(take(names::EVENT_BUDGET)?, names::EVENT_BUDGET),
            learned: typed!(take(names::LEARNED)?, names::LEARNED),
            flood: typed!(take(names::FLOOD)?, names::FLOOD),
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
            pairs: typed!(open(names::PAIRS)?, names::PAIRS),
            src_v4: typed!(open(names::SRC_V4)?, names::SRC_V4),
            src_v6: typed!(open(names::SRC_V6)?, names::SRC_V6),
            dst_v4: typed!(open(names::DST_V4)?, names::DST_V4),
            dst_v6: typed!(open(names::DST_V6)?, names::DST_V6),
            counters: typed!(open(names::COUNTERS)?, names::COUNTERS),
            no_policy: typed!(open(names::NO_POLICY)?, names::NO_POLICY),
            event_budget: typed!(open(names::EVENT_BUDGET)?, names::EVENT_BUDGET),
            learned: typed!(open(names::LEARNED)?, names::LEARNED),
            flood: typed!(open(names::FLOOD)?, names::FLOOD),
        })
    }

    /// Every interface with a policy entry: a few BPF_MAP_LOOKUP_BATCH
    /// calls (one lookup per entry on kernels without batch operations),
    /// so a new vif's slot search and a status of 1,000 vifs do not cost
    /// two syscalls per vif.
    pub fn policies(&self) -> Result<Vec<(u32, IfacePolicy)>, DatapathError> {
        self.policies_with(|ix, p| (*ix, *p))
    }

    /// Every interface's counter slot, as [`Maps::policies`] reads them
    /// but keeping 8 bytes of each entry instead of its whole policy.
    pub fn slots(&self) -> Result<Vec<(u32, u32)>, DatapathError> {
        self.policies_with(|ix, p| (*ix, p.slot))
    }

    /// `keep(ifindex, policy)` of every policy entry, read in batches
    /// (entry by entry on kernels without batch operations).
    fn policies_with<T>(
        &self,
        mut keep: impl FnMut(&u32, &IfacePolicy) -> T,
    ) -> Result<Vec<T>, DatapathError> {
        match crate::sys::bpf::lookup_batch_with(&self.policy, &mut keep) {
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
            .map(|r| r.map(|(ix, p)| keep(&ix, &p)))
            .collect::<Result<Vec<_>, _>>()
            .map_err(map_err(names::POLICY, "iterate"))
    }

    /// Whether the kernel has BPF_MAP_LOOKUP_BATCH for the policy map
    /// (Linux 5.6); without it [`Maps::policies`] reads entry by entry.
    pub fn has_batch_lookup(&self) -> std::io::Result<bool> {
        crate::sys::bpf::lookup_batch(&self.policy).map(|r| r.is_some())
    }

    /// Every interface's entries besides its policy (pairs, and trie
    /// entries: sources and destinations beyond the inline host
    /// addresses), by ifindex; the `policy` field of each is left zero.
    pub fn extra_entries(&self) -> Result<StdHashMap<u32, Entries>, DatapathError> {
        fn scan<K: TrieKey>(
            trie: &LpmTrie<MapData, K, u8>,
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
        let mut t = StdHashMap::new();
        scan(&self.src_v4, names::SRC_V4, &mut t, |e| &mut e.src_v4)?;
        scan(&self.src_v6, names::SRC_V6, &mut t, |e| &mut e.src_v6)?;
        scan(&self.dst_v4, names::DST_V4, &mut t, |e| &mut e.dst_v4)?;
        scan(&self.dst_v6, names::DST_V6, &mut t, |e| &mut e.dst_v6)?;
        for entry in self.pairs.iter() {
            let (key, addrs) = entry.map_err(map_err(names::PAIRS, "iterate"))?;
            t.entry(key.ifindex)
                .or_insert_with(Entries::none)
                .pairs
                .push((key.mac, addrs));
        }
        for e in t.values_mut() {
            e.pairs.sort_by_key(|(_, a)| a.set);
        }
        Ok(t)
    }

    /// Every interface with a policy entry: that entry and its trie
    /// entries, as [`encode`] wrote them ([`super::encode::decode`] reads
    /// the policy back). One pass over each trie, whatever the number of
    /// interfaces.
    pub fn entries(&self) -> Result<Vec<(u32, Entries)>, DatapathError> {
        let mut tries = self.extra_entries()?;
        Ok(self
            .policies()?
            .into_iter()
            .map(|(ifindex, policy)| {
                let mut e = tries.remove(&ifindex).unwrap_or_else(Entries::none);
                e.policy = policy;
                (ifindex, e)
            })
            .collect())
    }

    /// The addresses a slot's interface learned from DHCP (section 8), with
    /// the second (CLOCK_MONOTONIC) each expires, lease and grace
    /// included; expired ones too (the programs ignore them).
    pub fn learned(&self, slot: u32) -> Result<Vec<(Ipv4Addr, u32)>, DatapathError> {
        let row = self
            .learned
            .get(&slot, 0)
            .map_err(map_err(names::LEARNED, "read"))?;
        Ok(row
            .entries
            .iter()
            .filter(|e| **e != 0)
            .map(|e| (Ipv4Addr::from(learned::addr(*e)), learned::expires_s(*e)))
            .collect())
    }

    /// The DHCP-learned addresses of an interface with policy `p`, if it
    /// learns (option `learn_dhcp`): expired ones too.
    pub fn learned_of(
        &self,
        p: &IfacePolicy,
    ) -> Result<Option<Vec<(Ipv4Addr, u32)>>, DatapathError> {
        if p.flags & filter_common::flags::LEARN_DHCP == 0 {
            return Ok(None);
        }
        self.learned(p.slot).map(Some)
    }

    /// The policy entry of `ifindex`, if it has one.
    pub fn policy_of(&self, ifindex: u32) -> Result<Option<IfacePolicy>, DatapathError> {
        match self.policy.get(&ifindex, 0) {
            Ok(p) => Ok(Some(p)),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(map_err(names::POLICY, "read")(e)),
        }
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
            Ok(per_cpu) => Ok(sum_no_policy(&per_cpu)),
            Err(e) if is_not_found(&e) => Ok([Counter::default(); 2]),
            Err(e) => Err(map_err(names::NO_POLICY, "read")(e)),
        }
    }

    /// Every ifindex with `no_policy` drops, with them per direction,
    /// summed over CPUs (in the map's order).
    pub fn all_no_policy_counters(&self) -> Result<Vec<(u32, [Counter; 2])>, DatapathError> {
        self.no_policy
            .iter()
            .map(|entry| {
                entry
                    .map(|(ifindex, per_cpu)| (ifindex, sum_no_policy(&per_cpu)))
                    .map_err(map_err(names::NO_POLICY, "iterate"))
            })
            .collect()
    }
}

fn sum_no_policy(per_cpu: &PerCpuValues<NoPolicyCounters>) -> [Counter; 2] {
    per_cpu.iter().fold([Counter::default(); 2], |mut acc, v| {
        for (a, c) in acc.iter_mut().zip(v.c.iter()) {
            a.packets += c.packets;
            a.bytes += c.bytes;
        }
        acc
    })
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

/// Write access to the maps. It exists only with the layout's lock
/// (taken by [`MapsWriter::new`]'s caller and held for the writer's
/// life), so every write happens under the lock and the index below is
/// never read without it.
pub struct MapsWriter {
    maps: Maps,
    /// Built on the first write, see [`Index`].
    index: Option<Index>,
    /// Made on the first replaced or removed policy or pair.
    fence: Option<ProgramFence>,
    /// A POLICY or PAIRS element was unlinked and no wait for the programs
    /// that may still read it has completed since.
    unfenced: bool,
    _lock: Lock,
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
    /// Each interface's counter slot (a policy value itself is read when
    /// its interface is installed: a hotplug needs one, not all).
    slots: StdHashMap<u32, u32>,
    tries: StdHashMap<u32, Entries>,
}

impl std::ops::Deref for MapsWriter {
    type Target = Maps;

    fn deref(&self) -> &Maps {
        &self.maps
    }
}

/// Whether the interface being installed is new (a hotplug `online`:
/// whatever entry its index had belongs to a vif that vanished without
/// its offline, and the counters start at zero) or the one the entry
/// is for (a re-apply keeps the counters).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Interface {
    New,
    Known,
}

impl MapsWriter {
    pub fn new(maps: Maps, lock: Lock) -> MapsWriter {
        MapsWriter {
            maps,
            index: None,
            fence: None,
            unfenced: false,
            _lock: lock,
        }
    }

    /// Writes `policy` for `ifindex`. Fail closed, in this order: the
    /// tries first, then the pairs, then the policy value (one atomic
    /// element update; until then the old policy or none applies; skipped
    /// when the value is already there), then stale pairs and trie entries
    /// of a previous policy are removed. A pair's new addresses are in the
    /// tries under its new set before its value names that set. Returns
    /// the counter slot.
    pub fn install(
        &mut self,
        ifindex: u32,
        policy: &Policy,
        events_per_sec: u32,
        interface: Interface,
    ) -> Result<u32, DatapathError> {
        let r = self.install_indexed(ifindex, policy, events_per_sec, interface);
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
        interface: Interface,
    ) -> Result<u32, DatapathError> {
        self.fence_policy()?;
        let index = self.index()?;
        let old = index.tries.get(&ifindex).cloned();
        let existing = match index.slots.contains_key(&ifindex) {
            true => self.maps.policy_of(ifindex)?,
            false => None,
        };
        let slot = match existing.map(|p| p.slot) {
            Some(slot) if interface == Interface::Known => slot,
            Some(slot) => {
                // A stale entry of a vanished vif: its numbers are not
                // this interface's.
                self.reset_slot(slot)?;
                self.remove_no_policy(ifindex)?;
                slot
            }
            None => {
                let slot = self.free_slot()?;
                self.reset_slot(slot)?;
                slot
            }
        };
        let new = encode(policy, ifindex, slot, events_per_sec);
        for (len, k) in &new.src_v4 {
            self.maps
                .src_v4
                .insert(&Key::new(*len, *k), 1, 0)
                .map_err(map_err(names::SRC_V4, "insert"))?;
        }
        for (len, k) in &new.src_v6 {
            self.maps
                .src_v6
                .insert(&Key::new(*len, *k), 1, 0)
                .map_err(map_err(names::SRC_V6, "insert"))?;
        }
        for (len, k) in &new.dst_v4 {
            self.maps
                .dst_v4
                .insert(&Key::new(*len, *k), 1, 0)
                .map_err(map_err(names::DST_V4, "insert"))?;
        }
        for (len, k) in &new.dst_v6 {
            self.maps
                .dst_v6
                .insert(&Key::new(*len, *k), 1, 0)
                .map_err(map_err(names::DST_V6, "insert"))?;
        }
        let old_pairs = old.as_ref().map(|o| &o.pairs[..]).unwrap_or(&[]);
        for (mac, addrs) in &new.pairs {
            let before = old_pairs.iter().find(|(m, _)| m == mac).map(|(_, a)| a);
            if before == Some(addrs) {
                continue;
            }
            // An element this insert may reuse must be unread first.
            self.fence_policy()?;
            self.maps
                .pairs
                .insert(pair_key(ifindex, *mac), *addrs, 0)
                .map_err(map_err(names::PAIRS, "insert"))?;
            if before.is_some() {
                self.unfenced = true;
            }
        }
        crate::fault::point("tries-written"); // chaos test hook (crate::fault)
        if existing != Some(new.policy) {
            self.fence_policy()?;
            self.maps
                .policy
                .insert(ifindex, new.policy, 0)
                .map_err(map_err(names::POLICY, "insert"))?;
            if existing.is_some() {
                self.unfenced = true;
            }
        }
        for (mac, _) in old_pairs {
            if !new.pairs.iter().any(|(m, _)| m == mac) {
                self.remove_pair(ifindex, *mac)?;
            }
        }
        // Nothing unlinked is left for the next writer, which may be
        // another process.
        self.fence_policy()?;
        if let Some(old) = &old {
            self.remove_trie_entries(old, Some(&new))?;
        }
        let index = self.index()?;
        index.slots.insert(ifindex, new.policy.slot);
        index.tries.insert(ifindex, new);
        Ok(slot)
    }

    /// Removes every entry of `ifindex`: the policy first (the interface
    /// then fails closed as `no_policy`), then its pairs and trie entries.
    pub fn remove(&mut self, ifindex: u32) -> Result<bool, DatapathError> {
        let r = self.remove_indexed(ifindex);
        if r.is_err() {
            self.index = None;
        }
        r
    }

    fn remove_indexed(&mut self, ifindex: u32) -> Result<bool, DatapathError> {
        self.fence_policy()?;
        let slot = self.index()?.slots.get(&ifindex).copied();
        let had = match self.maps.policy.remove(&ifindex) {
            Ok(()) => true,
            Err(e) if is_not_found(&e) => false,
            Err(e) => return Err(map_err(names::POLICY, "remove")(e)),
        };
        if had {
            self.unfenced = true;
        }
        crate::fault::point("policy-removed"); // chaos test hook (crate::fault)
        if let Some(old) = self.index()?.tries.get(&ifindex).cloned() {
            for (mac, _) in &old.pairs {
                self.remove_pair(ifindex, *mac)?;
            }
            self.fence_policy()?;
            self.remove_trie_entries(&old, None)?;
        }
        self.fence_policy()?;
        self.remove_no_policy(ifindex)?;
        if let Some(slot) = slot {
            // Its leases end with it (after the fence: no program that
            // read its policy still writes them).
            self.maps
                .learned
                .set(slot, Learned::default(), 0)
                .map_err(map_err(names::LEARNED, "zero"))?;
        }
        let index = self.index()?;
        index.slots.remove(&ifindex);
        index.tries.remove(&ifindex);
        Ok(had)
    }

    /// Removes the `PAIRS` entry of `mac` on `ifindex`, if any.
    fn remove_pair(&mut self, ifindex: u32, mac: [u8; 6]) -> Result<(), DatapathError> {
        match self.maps.pairs.remove(&pair_key(ifindex, mac)) {
            Ok(()) => {
                self.unfenced = true;
                Ok(())
            }
            Err(e) if is_not_found(&e) => Ok(()),
            Err(e) => Err(map_err(names::PAIRS, "remove")(e)),
        }
    }

    /// After writes that replaced or removed POLICY or PAIRS elements
    /// (`unfenced`): waits until no program still reads them. The kernel
    /// reuses a hash map element at once (the next update on this CPU
    /// rewrites it), in preallocated maps and, since Linux 6.1
    /// (bpf_mem_alloc), in BPF_F_NO_PREALLOC ones alike. Only these writes
    /// allocate POLICY and PAIRS elements (the programs only read them,
    /// within one run) and they are serialized (the layout's lock), so
    /// when every insert into either map and the end of every command
    /// come after this wait, no program sees half of one value and half
    /// of another. Unlinks in a row share one wait.
    fn fence_policy(&mut self) -> Result<(), DatapathError> {
        if !self.unfenced {
            return Ok(());
        }
        let fence_err = |call| {
            move |io_error| {
                map_err(names::POLICY, "wait for the programs reading it")(MapError::SyscallError(
                    aya::sys::SyscallError { call, io_error },
                ))
            }
        };
        let fence = match &self.fence {
            Some(f) => f,
            None => self
                .fence
                .insert(ProgramFence::new().map_err(fence_err("bpf_map_create"))?),
        };
        fence.wait().map_err(fence_err("bpf_map_update_elem"))?;
        self.unfenced = false;
        Ok(())
    }

    /// Forgets the drops counted on `ifindex` while it had no policy.
    fn remove_no_policy(&mut self, ifindex: u32) -> Result<(), DatapathError> {
        match self.maps.no_policy.remove(&ifindex) {
            Ok(()) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            Err(e) => Err(map_err(names::NO_POLICY, "remove")(e)),
        }
    }

    /// The index, read from the maps on first use.
    fn index(&mut self) -> Result<&mut Index, DatapathError> {
        if self.index.is_none() {
            self.index = Some(self.read_index()?);
        }
        Ok(self.index.get_or_insert_with(Index::default))
    }

    /// Every interface's slot, pairs and trie entries, as the maps hold
    /// them.
    fn read_index(&self) -> Result<Index, DatapathError> {
        Ok(Index {
            slots: self.maps.slots()?.into_iter().collect(),
            tries: self.maps.extra_entries()?,
        })
    }

    fn remove_trie_entries(
        &mut self,
        old: &Entries,
        keep: Option<&Entries>,
    ) -> Result<(), DatapathError> {
        fn sweep<K: Copy + PartialEq + aya::Pod>(
            trie: &mut LpmTrie<MapData, K, u8>,
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
            &mut self.maps.src_v4,
            names::SRC_V4,
            &old.src_v4,
            keep.map(|k| &k.src_v4[..]),
        )?;
        sweep(
            &mut self.maps.src_v6,
            names::SRC_V6,
            &old.src_v6,
            keep.map(|k| &k.src_v6[..]),
        )?;
        sweep(
            &mut self.maps.dst_v4,
            names::DST_V4,
            &old.dst_v4,
            keep.map(|k| &k.dst_v4[..]),
        )?;
        sweep(
            &mut self.maps.dst_v6,
            names::DST_V6,
            &old.dst_v6,
            keep.map(|k| &k.dst_v6[..]),
        )?;
        Ok(())
    }

    /// The lowest slot no policy uses. Slot 0 is reserved for interfaces
    /// without a policy (their event budget).
    fn free_slot(&mut self) -> Result<u32, DatapathError> {
        let max = self.maps.counters.len();
        let mut used = vec![false; max as usize];
        for slot in self.index()?.slots.values() {
            if let Some(u) = used.get_mut(*slot as usize) {
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
        self.maps
            .counters
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
        self.maps
            .event_budget
            .set(slot, zero_budget, 0)
            .map_err(map_err(names::EVENT_BUDGET, "zero"))?;
        // A new interface learns its own leases, not the last one's.
        self.maps
            .learned
            .set(slot, Learned::default(), 0)
            .map_err(map_err(names::LEARNED, "zero"))?;
        // Nor its flood budget.
        self.maps
            .flood
            .set(slot, FloodWindow::default(), 0)
            .map_err(map_err(names::FLOOD, "zero"))?;
        Ok(())
    }
}

fn pair_key(ifindex: u32, mac: [u8; 6]) -> PairKey {
    PairKey {
        ifindex,
        mac,
        _pad: [0; 2],
    }
}
