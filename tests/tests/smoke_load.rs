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
    let mut k = vifguard_tests::kernel::Kernel::load_sized(1024);
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
