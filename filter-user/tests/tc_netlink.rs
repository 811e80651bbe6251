//! The classic tc attachment (filter_user::hooks::tc) against the kernel: a veth
//! in a namespace the test creates, vifguard's real programs, and what
//! `tc` itself lists afterwards. Needs root.

use std::os::fd::AsFd;

use filter_common::{Direction, program_names};
use filter_user::datapath;
use filter_user::hooks::tc::{Rtnl, TcError};
use testbed::netns::{NetNs, veth};

/// `tc filter show` of one hook, as text.
fn tc_show(ns: &NetNs, dev: &str, hook: &str) -> String {
    let out = ns.exec(&["tc", "filter", "show", "dev", dev, hook]);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn filters_are_created_listed_replaced_and_deleted() {
    let ns = NetNs::new("tcnl");
    let peer = NetNs::new("tcnp");
    veth(&ns, "vif9.0", &peer, "eth0");
    let ix = ns.ifindex("vif9.0");
    let mut ebpf = datapath::load(16, None).expect("load the programs");
    let _in = ns.enter();
    let mut rtnl = Rtnl::open().expect("rtnetlink");

    assert!(rtnl.ensure_clsact(ix).expect("clsact"), "created");
    assert!(
        !rtnl.ensure_clsact(ix).expect("clsact again is fine"),
        "already there"
    );
    assert!(
        rtnl.filters(ix, Direction::FromGuest)
            .expect("list")
            .is_empty()
    );

    let name = program_names::TC_FROM_GUEST;
    let prog = datapath::tc_program(&mut ebpf, name).expect("program");
    let first_id = prog.info().expect("info").id();
    let fd = prog
        .fd()
        .expect("fd")
        .as_fd()
        .try_clone_to_owned()
        .expect("dup");
    rtnl.set_filter(ix, Direction::FromGuest, 3, fd.as_fd(), name)
        .expect("attach");
    let listed = rtnl.filters(ix, Direction::FromGuest).expect("list");
    assert_eq!(listed.len(), 1, "{listed:?}");
    let f = &listed[0];
    assert_eq!((f.priority, f.kind.as_str()), (3, "bpf"));
    assert_eq!(f.name.as_deref(), Some(name));
    assert_eq!(f.prog_id, Some(first_id));
    assert!(f.is_vifguard());
    assert!(
        rtnl.filters(ix, Direction::ToGuest)
            .expect("list")
            .is_empty()
    );
    let shown = tc_show(&ns, "vif9.0", "ingress");
    assert!(
        shown.contains("pref 3") && shown.contains(name) && shown.contains("direct-action"),
        "{shown}"
    );

    // Re-adding at the same priority swaps the program in place.
    let other = datapath::tc_program(&mut ebpf, program_names::TC_TO_GUEST).expect("program");
    let other_id = other.info().expect("info").id();
    let ofd = other
        .fd()
        .expect("fd")
        .as_fd()
        .try_clone_to_owned()
        .expect("dup");
    rtnl.set_filter(ix, Direction::FromGuest, 3, ofd.as_fd(), name)
        .expect("replace");
    let listed = rtnl.filters(ix, Direction::FromGuest).expect("list");
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0].prog_id, Some(other_id));

    // Someone else's filter (another name) is listed but not vifguard's
    // to delete.
    rtnl.set_filter(ix, Direction::FromGuest, 9, fd.as_fd(), "site_policy")
        .expect("attach another");
    let listed = rtnl.filters(ix, Direction::FromGuest).expect("list");
    assert_eq!(listed.len(), 2, "{listed:?}");
    assert_eq!(
        rtnl.delete_vifguard_filters(ix, Direction::FromGuest)
            .expect("delete"),
        1
    );
    let listed = rtnl.filters(ix, Direction::FromGuest).expect("list");
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0].name.as_deref(), Some("site_policy"));
    assert!(!listed[0].is_vifguard());
    assert_eq!(
        rtnl.delete_vifguard_filters(ix, Direction::FromGuest)
            .expect("delete"),
        0
    );
}

#[test]
fn an_ingress_qdisc_is_refused_by_name() {
    let ns = NetNs::new("tcnq");
    let peer = NetNs::new("tcnr");
    veth(&ns, "vif9.1", &peer, "eth0");
    let ix = ns.ifindex("vif9.1");
    let out = ns.exec(&["tc", "qdisc", "add", "dev", "vif9.1", "ingress"]);
    assert!(out.status.success(), "{out:?}");
    let _in = ns.enter();
    let mut rtnl = Rtnl::open().expect("rtnetlink");
    match rtnl.ensure_clsact(ix) {
        Err(e @ TcError::ForeignQdisc { .. }) => {
            assert!(e.to_string().contains("ifindex"), "{e}");
        }
        other => panic!("{other:?}"),
    }
    // Refused, not replaced: the operator's qdisc is still there.
    let out = ns.exec(&["tc", "qdisc", "show", "dev", "vif9.1"]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("qdisc ingress"),
        "{out:?}"
    );
}

#[test]
fn unknown_interface_is_a_kernel_error() {
    let ns = NetNs::new("tcnu");
    let _in = ns.enter();
    let mut rtnl = Rtnl::open().expect("rtnetlink");
    let e = rtnl.ensure_clsact(4_000_000).expect_err("no such ifindex");
    assert_eq!(e.errno(), Some(libc::ENODEV), "{e}");
    assert!(e.to_string().contains("ifindex 4000000"), "{e}");
}
