//! ARP (and RARP, which shares its format) at offset 14.

use filter_common::Reason;

use crate::frame::Frame;
use crate::proto::arp::{HLEN_ETHERNET, HTYPE_ETHERNET, OP_REPLY, OP_REQUEST, PLEN_IPV4};
use crate::proto::ethertype;

/// 14 bytes of Ethernet + 28 of ARP for IPv4 over Ethernet.
pub const ARP_END: usize = 42;

pub struct Arp {
    pub op: u16,
    pub sha: [u8; 6],
    pub spa: [u8; 4],
    pub tpa: [u8; 4],
}

/// A well-formed ARP request or reply for IPv4 over Ethernet, else
/// `arp_malformed` (datapath.md, ARP step 1).
#[inline(always)]
pub fn parse(f: &Frame) -> Result<Arp, Reason> {
    let bad = Reason::ArpMalformed;
    if !f.fits(ARP_END) {
        return Err(bad);
    }
    let op = f.be16(20).ok_or(bad)?;
    if f.be16(14) != Some(HTYPE_ETHERNET)
        || f.be16(16) != Some(ethertype::IPV4)
        || f.u8(18) != Some(HLEN_ETHERNET)
        || f.u8(19) != Some(PLEN_IPV4)
        || (op != OP_REQUEST && op != OP_REPLY)
    {
        return Err(bad);
    }
    Ok(Arp {
        op,
        sha: f.bytes6(22).ok_or(bad)?,
        spa: f.bytes4(28).ok_or(bad)?,
        tpa: f.bytes4(38).ok_or(bad)?,
    })
}
