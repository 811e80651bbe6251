//! Pinned TCX links (`attach = "tcx"`) against the kernel. Needs root and
//! Linux 6.6+.

use filter_common::{Direction, program_names};
use filter_user::datapath;
use filter_user::hooks::tcx::attach_tc;
use filter_user::sys::bpf::detach_pinned_link;
use testbed::netns::{NetNs, veth};

/// Unpinning a link leaves its release to a kernel work item (it happens
/// some milliseconds later); until then the same program cannot be
/// attached to the same hook again (EEXIST). `detach_pinned_link` detaches
/// first, so a re-plug right after an unplug attaches at once.
#[test]
fn detached_link_frees_the_hook_at_once() {
    if let Err(why) = testbed::kernel::tcx_supported() {
        eprintln!("skipped: {why}");
        return;
    }
    let ns = NetNs::new("tcxl");
    let peer = NetNs::new("tcxp");
    veth(&ns, "vif9.2", &peer, "eth0");
    let root = testbed::kernel::BpffsDir::new("tcx");
    let pin = root.path().join("link");
    let mut ebpf = datapath::load(16, None).expect("load the programs");
    let prog = datapath::tc_program(&mut ebpf, program_names::TC_FROM_GUEST).expect("program");
    let _in = ns.enter();
    for round in 0..50 {
        let link = attach_tc(prog, "vif9.2", Direction::FromGuest)
            .unwrap_or_else(|e| panic!("round {round}: {e:?}"));
        link.pin(&pin).expect("pin");
        assert!(detach_pinned_link(&pin).expect("detach"), "round {round}");
        assert!(!pin.exists());
    }
    assert!(!detach_pinned_link(&pin).expect("no pin"));
}
