//! Global functions: the parser's loops (the IPv6 extension header walk,
//! the ND option walk and the DHCP option walk). The verifier checks a global function once, on
//! its own, instead of once per path that reaches it; inlined, the loops
//! multiply each other's paths past the verifier's limit. Global functions
//! take the program context and scalars (at most five arguments) and
//! return a scalar, so each has one version per context type; `end` is
//! where the packet ends ([`Frame::ending_at`]).

use aya_ebpf::bindings::{__sk_buff, xdp_md};

use crate::frame::{Ctx, Frame};
use crate::{ipv4, ipv6};

#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn vifguard_ipv6_walk_tc(ctx: *mut __sk_buff, end: u32) -> u32 {
    ipv6::walk(&Frame::new(Ctx::Tc(ctx)).ending_at(end as usize))
}

#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn vifguard_ipv6_walk_xdp(ctx: *mut xdp_md, end: u32) -> u32 {
    ipv6::walk(&Frame::new(Ctx::Xdp(ctx)).ending_at(end as usize))
}

/// `l4_t`: the ICMPv6 header's offset in bits 0..16, the ND message type
/// in bits 16..24 (packed: a sixth argument is one too many).
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn vifguard_nd_options_tc(
    ctx: *mut __sk_buff,
    l4_t: u32,
    mac_hi: u32,
    mac_lo: u32,
    end: u32,
) -> u32 {
    ipv6::nd_options(
        &Frame::new(Ctx::Tc(ctx)).ending_at(end as usize),
        (l4_t & 0xffff) as usize,
        (l4_t >> 16) as u8,
        unpack_mac(mac_hi, mac_lo),
    )
}

/// See [`vifguard_nd_options_tc`].
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn vifguard_nd_options_xdp(
    ctx: *mut xdp_md,
    l4_t: u32,
    mac_hi: u32,
    mac_lo: u32,
    end: u32,
) -> u32 {
    ipv6::nd_options(
        &Frame::new(Ctx::Xdp(ctx)).ending_at(end as usize),
        (l4_t & 0xffff) as usize,
        (l4_t >> 16) as u8,
        unpack_mac(mac_hi, mac_lo),
    )
}

#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn vifguard_dhcp_options_tc(
    ctx: *mut __sk_buff,
    start: u32,
    end: u32,
    want: u32,
) -> u64 {
    ipv4::options(
        &Frame::new(Ctx::Tc(ctx)).ending_at(end as usize),
        start as usize,
        want as u8,
    )
}

/// See [`vifguard_dhcp_options_tc`].
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn vifguard_dhcp_options_xdp(
    ctx: *mut xdp_md,
    start: u32,
    end: u32,
    want: u32,
) -> u64 {
    ipv4::options(
        &Frame::new(Ctx::Xdp(ctx)).ending_at(end as usize),
        start as usize,
        want as u8,
    )
}

#[inline(always)]
fn unpack_mac(hi: u32, lo: u32) -> [u8; 6] {
    let h = hi.to_ne_bytes();
    let l = lo.to_ne_bytes();
    [h[0], h[1], h[2], h[3], l[0], l[1]]
}

#[inline(always)]
pub fn ipv6_walk(f: &Frame) -> u32 {
    let end = f.limit() as u32;
    match f.ctx {
        Ctx::Tc(c) => vifguard_ipv6_walk_tc(c, end),
        Ctx::Xdp(c) => vifguard_ipv6_walk_xdp(c, end),
    }
}

/// `l4` is below [`filter_common::PARSE_WINDOW`], so it fits 16 bits.
#[inline(always)]
pub fn nd_options(f: &Frame, l4: usize, t: u8, mac: [u8; 6]) -> u32 {
    let hi = u32::from_ne_bytes([mac[0], mac[1], mac[2], mac[3]]);
    let lo = u32::from_ne_bytes([mac[4], mac[5], 0, 0]);
    let l4_t = l4 as u32 | u32::from(t) << 16;
    let end = f.limit() as u32;
    match f.ctx {
        Ctx::Tc(c) => vifguard_nd_options_tc(c, l4_t, hi, lo, end),
        Ctx::Xdp(c) => vifguard_nd_options_xdp(c, l4_t, hi, lo, end),
    }
}

/// The DHCP option walk from `start` ([`ipv4::options`]).
#[inline(always)]
pub fn dhcp_options(f: &Frame, start: usize, want: u8) -> u64 {
    let end = f.limit() as u32;
    match f.ctx {
        Ctx::Tc(c) => vifguard_dhcp_options_tc(c, start as u32, end, u32::from(want)),
        Ctx::Xdp(c) => vifguard_dhcp_options_xdp(c, start as u32, end, u32::from(want)),
    }
}
