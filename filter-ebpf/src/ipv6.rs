//! IPv6 at offset 14: fixed header, extension header walk, upper-layer
//! header, and Neighbor Discovery options (datapath.md, IPv6 steps 1-4).

use filter_common::{MAX_IPV6_EXT, MAX_ND_OPTS, PARSE_WINDOW, Reason};

use crate::frame::{Frame, eq6};
use crate::proto::icmp6::{ND_REDIRECT, ND_ROUTER_ADVERTISEMENT, ND_ROUTER_SOLICITATION};
use crate::proto::{ipproto, nd_opt, port};

pub struct Ipv6 {
    pub src: [u8; 16],
    pub dst: [u8; 16],
    /// Where the packet ends: 54 + payload length.
    pub end: usize,
    pub hop_limit: u8,
    /// A fragment header was seen.
    pub fragmented: bool,
    /// Offset of the upper-layer header.
    pub l4: usize,
    /// ICMPv6 type, when the upper layer is ICMPv6.
    pub icmp_type: Option<u8>,
    /// UDP (source, destination) port, when the upper layer is UDP.
    pub udp: Option<(u16, u16)>,
}

/// The fixed header alone, whose payload length must end within the frame
/// of `len` bytes: enough to check a destination (to the guest). Returns
/// the source, the destination and where the packet ends.
#[inline(always)]
pub fn header(f: &Frame, len: usize) -> Result<([u8; 16], [u8; 16], usize), Reason> {
    let bad = Reason::Ipv6Malformed;
    if !f.fits(54) || f.u8(14).ok_or(bad)? >> 4 != 6 {
        return Err(bad);
    }
    // Against the whole frame, not the window (see ipv4::parse).
    let end = 54 + f.be16(18).ok_or(bad)? as usize;
    if end > len {
        return Err(bad);
    }
    Ok((f.bytes16(22).ok_or(bad)?, f.bytes16(38).ok_or(bad)?, end))
}

/// Packed result of [`walk`]: a plain scalar, so the walk can run in a
/// global function the verifier checks once (see `subprogs.rs`).
pub mod walked {
    /// Bits 0..16: offset of the upper-layer header.
    pub const L4_MASK: u32 = 0xffff;
    /// Bits 16..24: upper-layer protocol.
    pub const PROTO_SHIFT: u32 = 16;
    /// The walk met a fragment header.
    pub const FRAGMENTED: u32 = 1 << 28;
    /// A non-first fragment: there is no upper-layer header.
    pub const NO_PROTO: u32 = 1 << 29;
    /// The chain is too long or runs past the frame.
    pub const MALFORMED: u32 = 1 << 30;
}

/// The extension headers the walk steps over.
#[inline(always)]
fn is_extension_header(next: u8) -> bool {
    matches!(
        next,
        ipproto::HOPOPTS | ipproto::ROUTING | ipproto::FRAGMENT | ipproto::AH | ipproto::DSTOPTS
    )
}

/// The extension header walk (datapath.md, IPv6 step 2), unrolled: a
/// loop here compiled to a latch that falls through into the loop head,
/// which the verifiers of Linux before 6.4 reject as a back-edge ("back-edge
/// from insn N to N+1") although they accept bounded loops. Straight-line
/// steps have no back-edge on any kernel (the filter-user test
/// `no_loop_closes_on_a_plain_fall_through` checks the whole object).
#[inline(always)]
pub fn walk(f: &Frame) -> u32 {
    let Some(mut next) = f.u8(20) else {
        return walked::MALFORMED;
    };
    let mut off: usize = 54;
    let mut fragmented = 0;
    macro_rules! step {
        () => {
            if let Some(done) = walk_step(f, &mut next, &mut off, &mut fragmented) {
                return done;
            }
        };
    }
    const _: () = assert!(MAX_IPV6_EXT == 8, "one step!() per header walked");
    step!();
    step!();
    step!();
    step!();
    step!();
    step!();
    step!();
    step!();
    if !is_extension_header(next) {
        return off as u32 | (next as u32) << walked::PROTO_SHIFT | fragmented;
    }
    walked::MALFORMED
}

/// One header of the walk: `Some` ends the walk with its result, `None`
/// stepped over an extension header.
#[inline(always)]
fn walk_step(f: &Frame, next: &mut u8, off: &mut usize, fragmented: &mut u32) -> Option<u32> {
    if !is_extension_header(*next) {
        return Some(*off as u32 | (*next as u32) << walked::PROTO_SHIFT | *fragmented);
    }
    let Some(hlen) = f.var().u8(*off + 1) else {
        return Some(walked::MALFORMED);
    };
    let len = match *next {
        ipproto::FRAGMENT => 8,
        ipproto::AH => 4 * (hlen as usize + 2),
        _ => 8 * (hlen as usize + 1),
    };
    if !f.var().fits(*off + len) {
        return Some(walked::MALFORMED);
    }
    if *next == ipproto::FRAGMENT {
        *fragmented = walked::FRAGMENTED;
        match f.var().be16(*off + 2) {
            Some(v) if v >> 3 != 0 => return Some(*off as u32 | walked::NO_PROTO | *fragmented),
            Some(_) => {}
            None => return Some(walked::MALFORMED),
        }
    }
    let Some(n) = f.var().u8(*off) else {
        return Some(walked::MALFORMED);
    };
    *next = n;
    *off += len;
    None
}

/// Fixed header, extension header walk and upper-layer header, all within
/// the packet's payload length.
#[inline(always)]
pub fn parse(f: &Frame, len: usize) -> Result<Ipv6, Reason> {
    let bad = Reason::Ipv6Malformed;
    let (src, dst, end) = header(f, len)?;
    // Fixed header fields first, from the frame as is (constant offsets);
    // what follows the fixed header only within the payload length.
    let next = f.u8(20).ok_or(bad)?;
    let hop_limit = f.u8(21).ok_or(bad)?;
    let f = &f.ending_at(end);
    // Most packets carry no extension header: skip the walk's call.
    let w = if is_extension_header(next) {
        crate::subprogs::ipv6_walk(f)
    } else {
        54 | (next as u32) << walked::PROTO_SHIFT
    };
    let l4 = (w & walked::L4_MASK) as usize;
    if w & walked::MALFORMED != 0 || l4 > PARSE_WINDOW {
        return Err(bad);
    }
    let mut ip = Ipv6 {
        src,
        dst,
        end,
        hop_limit,
        fragmented: w & walked::FRAGMENTED != 0,
        l4,
        icmp_type: None,
        udp: None,
    };
    if w & walked::NO_PROTO != 0 {
        return Ok(ip);
    }
    match (w >> walked::PROTO_SHIFT) as u8 {
        ipproto::ICMPV6 => {
            if !f.var().fits(l4 + 4) {
                return Err(bad);
            }
            ip.icmp_type = f.var().u8(l4);
        }
        ipproto::UDP => {
            if !f.var().fits(l4 + 8) {
                return Err(bad);
            }
            ip.udp = Some(f.var().be16_pair(l4).ok_or(bad)?);
        }
        _ => {}
    }
    Ok(ip)
}

/// A DHCPv6 server or relay message: anything to the client port (clients
/// accept a reply whatever its source port) or from the server port.
#[inline(always)]
pub fn is_dhcp_server_message(ip: &Ipv6) -> bool {
    matches!(ip.udp, Some((s, d)) if s == port::DHCP6_SERVER || d == port::DHCP6_CLIENT)
}

pub fn is_nd(t: u8) -> bool {
    (ND_ROUTER_SOLICITATION..=ND_REDIRECT).contains(&t)
}

/// Bits of the ND option walk's result.
pub mod nd {
    /// The fixed part fits and every option is well-formed.
    pub const WELL_FORMED: u32 = 1;
    /// A source link-layer address option is present.
    pub const SOURCE_LLA: u32 = 2;
    /// A link-layer address option names another MAC than the vif's.
    pub const FOREIGN_LLA: u32 = 4;
}

/// The ND option walk (datapath.md, IPv6 step 4) of message type `t` whose
/// ICMPv6 header is at `l4`; returns [`nd`] bits.
#[inline(always)]
pub fn nd_options(f: &Frame, l4: usize, t: u8, mac: [u8; 6]) -> u32 {
    let fixed = match t {
        ND_ROUTER_SOLICITATION => 8,
        ND_ROUTER_ADVERTISEMENT => 16,
        ND_REDIRECT => 40,
        _ => 24,
    };
    let mut o = l4 + fixed;
    if !f.var().fits(o) {
        return 0;
    }
    let mut found = 0;
    let mut n = 0;
    while n < MAX_ND_OPTS {
        if !f.var().fits(o + 1) {
            return found | nd::WELL_FORMED;
        }
        let (Some(kind), Some(len)) = (f.var().u8(o), f.var().u8(o + 1)) else {
            return 0;
        };
        let bytes = 8 * len as usize;
        if len == 0 || !f.var().fits(o + bytes) {
            return 0;
        }
        // Any source link-layer option counts for DAD (RFC 4861 7.1.1),
        // whatever its length; only the Ethernet-sized ones carry a MAC.
        if kind == nd_opt::SOURCE_LLA {
            found |= nd::SOURCE_LLA;
        }
        if (kind == nd_opt::SOURCE_LLA || kind == nd_opt::TARGET_LLA) && len == 1 {
            let Some(lla) = f.var().bytes6(o + 2) else {
                return 0;
            };
            if !eq6(lla, mac) {
                found |= nd::FOREIGN_LLA;
            }
        }
        o += bytes;
        n += 1;
    }
    // More options than the walk looks at: malformed unless none are left.
    if f.var().fits(o + 1) {
        0
    } else {
        found | nd::WELL_FORMED
    }
}

/// ff02::1:ffXX:XXXX, the solicited-node groups DAD sends to.
#[inline(always)]
pub fn is_solicited_node(a: &[u8; 16]) -> bool {
    let w = crate::frame::words(a);
    let prefix = u64::from_ne_bytes([0xff, 0x02, 0, 0, 0, 0, 0, 0]);
    let mid = u64::from_ne_bytes([0, 0, 0, 0x01, 0xff, 0, 0, 0]);
    let mid_mask = u64::from_ne_bytes([0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 0]);
    w[0] == prefix && w[1] & mid_mask == mid
}
