//! vifguard's datapath: TC programs for both directions of a vif and an XDP
//! program for the guest's transmit side, all on one parse/classify core.
//! The behaviour is specified in docs/datapath.md.
#![cfg_attr(target_arch = "bpf", no_std)]
#![cfg_attr(target_arch = "bpf", no_main)]
// The atomic add of the flood limit (flood.rs).
#![cfg_attr(target_arch = "bpf", feature(core_intrinsics))]
#![cfg_attr(target_arch = "bpf", allow(internal_features))]

mod addrs;
mod arp;
mod flood;
mod frame;
mod from_guest;
mod ipv4;
mod ipv6;
mod learn;
mod maps;
mod proto;
mod subprogs;
mod to_guest;
mod verdict;

use aya_ebpf::{
    bindings::{TC_ACT_SHOT, TC_ACT_UNSPEC, xdp_action},
    macros::{classifier, xdp},
    programs::{TcContext, XdpContext},
};
use filter_common::{Direction, PARSE_WINDOW, Reason};

use crate::frame::{Ctx, Frame};
use crate::verdict::Origin;

/// Pass means "no objection" (TCX next): later programs on the hook still
/// decide. Drop is final.
#[inline(always)]
fn tc_action(r: Reason) -> i32 {
    if r.is_pass() {
        TC_ACT_UNSPEC
    } else {
        TC_ACT_SHOT
    }
}

#[inline(always)]
fn tc(ctx: &TcContext, dir: Direction) -> i32 {
    let len = ctx.len();
    // netback hands over non-linear skbs; pull the headers into the linear
    // area so they are parsed like a linear frame.
    let linear = ctx.data_end().saturating_sub(ctx.data());
    if linear < len as usize && linear < PARSE_WINDOW {
        let _ = ctx.pull_data(len.min(PARSE_WINDOW as u32));
    }
    // SAFETY: the context pointer the kernel passed in.
    let (ifindex, hw_vlan_tag) =
        unsafe { ((*ctx.skb.skb).ifindex, (*ctx.skb.skb).vlan_present != 0) };
    let origin = Origin {
        ifindex,
        hw_vlan_tag: hw_vlan_tag && dir == Direction::FromGuest,
        len,
    };
    let f = Frame::new(Ctx::Tc(ctx.skb.skb));
    tc_action(verdict::decide(dir, &f, &origin))
}

#[classifier]
pub fn vifguard_tc_from_guest(ctx: TcContext) -> i32 {
    tc(&ctx, Direction::FromGuest)
}

#[classifier]
pub fn vifguard_tc_to_guest(ctx: TcContext) -> i32 {
    tc(&ctx, Direction::ToGuest)
}

#[xdp]
pub fn vifguard_xdp_from_guest(ctx: XdpContext) -> u32 {
    let f = Frame::new(Ctx::Xdp(ctx.ctx));
    let origin = Origin {
        ifindex: ctx.ingress_ifindex() as u32,
        hw_vlan_tag: false,
        len: ctx.data_end().saturating_sub(ctx.data()) as u32,
    };
    if verdict::decide(Direction::FromGuest, &f, &origin).is_pass() {
        xdp_action::XDP_PASS
    } else {
        xdp_action::XDP_DROP
    }
}

/// The floor for benchmarks: same hook, no work.
#[classifier]
pub fn vifguard_tc_empty(_ctx: TcContext) -> i32 {
    TC_ACT_UNSPEC
}

#[xdp]
pub fn vifguard_xdp_empty(_ctx: XdpContext) -> u32 {
    xdp_action::XDP_PASS
}

#[cfg(target_arch = "bpf")]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[cfg(target_arch = "bpf")]
#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 4] = *b"GPL\0";

#[cfg(not(target_arch = "bpf"))]
fn main() {}
