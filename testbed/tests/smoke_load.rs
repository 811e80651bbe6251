#[test]
fn object_loads_and_verifies() {
    let mut ebpf = filter_user::datapath::load(64, None).expect("load");
    let _maps = filter_user::datapath::Maps::take_from(&mut ebpf).expect("maps");
}

/// Installing many interfaces: every one gets its own counter slot (the
/// free-slot search reads all policies in batches of 256), and reading the
/// policies back returns each exactly once.
#[test]
fn many_interfaces_get_distinct_slots_and_read_back() {
    use filter_user::policy::{MacAddr, Policy};
    let mut k = testbed::kernel::Kernel::load_sized(1024);
    let mut slots = std::collections::BTreeMap::new();
    for ix in 1..=700u32 {
        let b = ix.to_be_bytes();
        let mut p = Policy::locked(MacAddr([0x00, 0x16, 0x3e, b[1], b[2], b[3]]));
        p.ipv4 = vec!["198.51.100.7".parse().expect("cidr")];
        let slot = k.set_policy(ix * 3, &p);
        assert!(
            slots.insert(slot, ix * 3).is_none(),
            "slot {slot} given twice"
        );
    }
    for ix in (30..=300u32).step_by(30) {
        k.remove_policy(ix * 3);
    }
    let all = k.maps.policies().expect("read policies");
    assert_eq!(all.len(), 690);
    let mut seen = std::collections::BTreeSet::new();
    for (ix, p) in &all {
        assert!(seen.insert(*ix), "ifindex {ix} twice");
        assert_eq!(slots.get(&p.slot), Some(ix), "slot of {ix}");
    }
    // Freed slots are reused, the lowest first.
    let mut p = Policy::locked(MacAddr([0x00, 0x16, 0x3e, 0, 0, 1]));
    p.ipv4 = vec!["198.51.100.8".parse().expect("cidr")];
    let freed: Vec<u32> = slots
        .iter()
        .filter(|(_, ix)| **ix % 90 == 0 && **ix <= 900)
        .map(|(s, _)| *s)
        .collect();
    assert_eq!(k.set_policy(5000, &p), freed[0]);
}

/// Every slot up to `max_interfaces` is usable: each map indexed by slot
/// (counters, event budget, learned leases, flood window) has that many
/// entries, so a host configured beyond the object's default of 1,024
/// installs its 1,025th vif like its first. The vif after the last slot
/// gets an error that names the limit and the setting to raise.
#[test]
fn every_slot_up_to_max_interfaces_is_usable() {
    use filter_user::datapath::{DatapathError, Interface};
    use filter_user::policy::{MacAddr, Policy};
    let max = 1100;
    let mut k = testbed::kernel::Kernel::load_sized(max);
    let policy = |ix: u32| {
        let b = ix.to_be_bytes();
        let mut p = Policy::locked(MacAddr([0x00, 0x16, 0x3e, b[1], b[2], b[3]]));
        p.ipv4 = vec!["198.51.100.7".parse().expect("cidr")];
        p
    };
    for ix in 1..max {
        let slot = k
            .maps
            .install(ix, &policy(ix), 1000, Interface::New)
            .unwrap_or_else(|e| panic!("install ifindex {ix}: {e:?}"));
        assert_eq!(slot, ix, "slots are taken lowest first");
    }
    let full = k.maps.install(max, &policy(max), 1000, Interface::New);
    match full {
        Err(e @ DatapathError::SlotsExhausted { .. }) => {
            let msg = e.to_string();
            assert!(
                msg.contains(&format!("{}", max - 1)) && msg.contains("max_interfaces"),
                "{msg}"
            );
        }
        other => panic!("vif {max} on a full host: {other:?}"),
    }
    // The full host keeps every installed policy.
    assert_eq!(
        k.maps.policies().expect("policies").len(),
        (max - 1) as usize
    );
}

/// A vif's trie entries follow its policy across commands: each command
/// (here: each `Maps` opened on the pinned maps) reads who holds what once
/// and keeps it in step with its own writes; a prefix replaced or dropped
/// leaves no entry behind, in the same command or the next, and entries
/// left without a policy (a loader killed mid-install) are removed when
/// their ifindex is installed again.
#[test]
fn trie_entries_follow_the_policy_across_commands() {
    use aya::maps::{LpmTrie, Map, MapData};
    use filter_common::V4Key;
    use filter_user::datapath::{Interface, Maps, MapsWriter};
    use filter_user::policy::{MacAddr, Policy};
    use std::collections::BTreeSet;

    let dir = testbed::kernel::BpffsDir::new("tries");
    let _ebpf = filter_user::datapath::load(64, Some(dir.path())).expect("load");
    // Each command takes the lock and opens the pinned maps.
    let open = || {
        let (lock_dir, lock) = testbed::kernel::LockDir::take();
        let maps = Maps::open_pinned(dir.path()).expect("open the pinned maps");
        (MapsWriter::new(maps, lock), lock_dir)
    };
    // The tries as the kernel holds them, read past vifguard's API.
    let trie = |name: &str| {
        let data = MapData::from_pin(dir.path().join(name)).expect("pinned trie");
        Map::from_map_data(data).expect("map")
    };
    let v4 = |_: &MapsWriter| -> BTreeSet<(u32, [u8; 4], [u8; 4])> {
        let t: LpmTrie<MapData, V4Key, u8> = trie("SRC_V4").try_into().expect("IPv4 trie");
        t.keys()
            .map(|k| k.expect("key"))
            .map(|k| {
                let d: V4Key = k.data();
                (k.prefix_len(), d.ifindex, d.addr)
            })
            .collect()
    };
    let v6 = |_: &MapsWriter| -> usize {
        let t: LpmTrie<MapData, filter_common::V6Key, u8> =
            trie("SRC_V6").try_into().expect("IPv6 trie");
        t.keys().count()
    };
    let policy = |prefixes: &[&str]| {
        let mut p = Policy::locked(MacAddr([0x00, 0x16, 0x3e, 0, 0, 7]));
        for c in prefixes {
            match c.parse::<filter_user::policy::Cidr>().expect("cidr") {
                filter_user::policy::Cidr::V4(c) => p.ipv4.push(c),
                filter_user::policy::Cidr::V6(c) => p.ipv6.push(c),
            }
        }
        p.validate().expect("valid");
        p
    };
    let ix = 7u32.to_ne_bytes();

    let (mut first, _l1) = open();
    first
        .install(
            7,
            &policy(&["198.51.100.0/24", "2001:db8:7::/48"]),
            100,
            Interface::Known,
        )
        .expect("install");
    assert_eq!(
        v4(&first),
        BTreeSet::from([(filter_common::OWNER_BITS + 24, ix, [198, 51, 100, 0])])
    );
    assert_eq!(v6(&first), 1);
    // Same command: the /24 is replaced, the IPv6 prefix dropped.
    first
        .install(7, &policy(&["203.0.113.0/24"]), 100, Interface::Known)
        .expect("re-install");
    assert_eq!(
        v4(&first),
        BTreeSet::from([(filter_common::OWNER_BITS + 24, ix, [203, 0, 113, 0])])
    );
    assert_eq!(v6(&first), 0);
    drop((first, _l1));

    // Next command: reads the maps, drops the prefix.
    let (mut second, _l2) = open();
    second
        .install(7, &policy(&[]), 100, Interface::Known)
        .expect("install");
    assert!(v4(&second).is_empty());
    // Entries with no policy (a killed install) for ifindex 9 ...
    let orphan = V4Key {
        ifindex: 9u32.to_ne_bytes(),
        set: filter_common::set::OWN,
        addr: [192, 0, 2, 0],
    };
    let mut src_v4: LpmTrie<MapData, V4Key, u8> = trie("SRC_V4").try_into().expect("IPv4 trie");
    src_v4
        .insert(
            &aya::maps::lpm_trie::Key::new(filter_common::OWNER_BITS + 24, orphan),
            1,
            0,
        )
        .expect("orphan");
    drop((second, _l2));
    // ... are gone when the next command installs ifindex 9.
    let (mut third, _l3) = open();
    third
        .install(9, &policy(&["198.51.100.0/25"]), 100, Interface::Known)
        .expect("install");
    let ix9 = 9u32.to_ne_bytes();
    assert_eq!(
        v4(&third),
        BTreeSet::from([(filter_common::OWNER_BITS + 25, ix9, [198, 51, 100, 0])])
    );
    // Removal takes the entries along.
    assert!(third.remove(9).expect("remove"));
    assert!(v4(&third).is_empty());
}
