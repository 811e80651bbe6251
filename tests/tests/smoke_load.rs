#[test]
fn object_loads_and_verifies() {
    let mut ebpf = filter_user::datapath::load(64, None).expect("load");
    let _maps = filter_user::datapath::Maps::take_from(&mut ebpf).expect("maps");
}
