//! IPv4 at offset 14, and the UDP ports behind it.

use filter_common::Reason;

use crate::frame::{Frame, eq6};
use crate::proto::{bootp, icmp4, ipproto, port};

pub const BROADCAST: [u8; 4] = [255; 4];

pub struct Ipv4 {
    pub src: [u8; 4],
    pub dst: [u8; 4],
    /// UDP (source, destination) port; `None` for other protocols and for
    /// non-first fragments, which carry no UDP header.
    pub udp: Option<(u16, u16)>,
    /// What later steps judge of the upper layer ([`notes`] bits), noted
    /// while the packet's bounds are at hand: offsets and ends need not
    /// stay live through the source check and its map lookup.
    pub notes: u8,
}

/// Bits of [`Ipv4::notes`].
pub mod notes {
    /// An ICMP Redirect (type 5).
    pub const ICMP_REDIRECT: u8 = 1;
    /// A DHCP client message (UDP to the server port) that does not name
    /// the MAC `parse` was given (datapath.md, IPv4 step 5).
    pub const DHCP_FOREIGN_CLIENT: u8 = 2;
}

/// datapath.md, IPv4 steps 1 and 2: a sane header whose total length holds
/// it and ends within the frame of `len` bytes (and a whole UDP or ICMP
/// header within that total length when there should be one), else
/// `ipv4_malformed`. With `client_mac` (from the guest), DHCP client
/// messages are checked against it for step 5.
#[inline(always)]
pub fn parse(f: &Frame, len: usize, client_mac: Option<[u8; 6]>) -> Result<Ipv4, Reason> {
    let bad = Reason::Ipv4Malformed;
    if !f.fits(34) {
        return Err(bad);
    }
    // Version, IHL and total length in one read.
    let head = f.bytes4(14).ok_or(bad)?;
    let ihl = (head[0] & 0x0f) as usize;
    if head[0] >> 4 != 4 || ihl < 5 {
        return Err(bad);
    }
    let l4 = 14 + 4 * ihl;
    if !f.var().fits(l4) {
        return Err(bad);
    }
    // The total length must hold the header, and is checked against the
    // whole frame, not the window: a full-size packet is longer than the
    // window and fine.
    let end = 14 + u16::from_be_bytes([head[2], head[3]]) as usize;
    if end < l4 || end > len {
        return Err(bad);
    }
    // The header lies within the total length: read at constant offsets.
    let non_first_fragment = f.be16(20).ok_or(bad)? & 0x1fff != 0;
    let proto = f.u8(23).ok_or(bad)?;
    let (src, dst) = (f.bytes4(26).ok_or(bad)?, f.bytes4(30).ok_or(bad)?);
    // The upper-layer header must end within the total length too: one
    // comparison with `end` here instead of a packet-bounded frame, whose
    // every read would compare again.
    let (mut udp, mut notes) = (None, 0);
    if proto == ipproto::UDP && !non_first_fragment {
        if l4 + 8 > end || !f.var().fits(l4 + 8) {
            return Err(bad);
        }
        let ports = f.var().be16_pair(l4).ok_or(bad)?;
        if let (port::DHCP_SERVER, Some(mac)) = (ports.1, client_mac)
            && !dhcp_client_names(&f.ending_at(end), l4 + 8, mac)
        {
            notes |= notes::DHCP_FOREIGN_CLIENT;
        }
        udp = Some(ports);
    } else if proto == ipproto::ICMP && !non_first_fragment {
        // Type, code and checksum.
        if l4 + 4 > end || !f.var().fits(l4 + 4) {
            return Err(bad);
        }
        if f.var().u8(l4) == Some(icmp4::REDIRECT) {
            notes |= notes::ICMP_REDIRECT;
        }
    }
    Ok(Ipv4 {
        src,
        dst,
        udp,
        notes,
    })
}

/// The DHCPv4 client bootstrap shape: 0.0.0.0 (checked by the caller) to
/// 255.255.255.255, UDP 68 -> 67.
#[inline(always)]
pub fn is_dhcp_client_broadcast(ip: &Ipv4) -> bool {
    ip.dst == BROADCAST && ip.udp == Some((port::DHCP_CLIENT, port::DHCP_SERVER))
}

/// datapath.md, IPv4 step 5: whether the UDP payload at `m` of a datagram
/// to the server port is no DHCP client message (its op byte says so) or
/// one whose client hardware address is `mac`, over Ethernet. `packet`
/// ends where the total length does: a message too short to hold
/// `chaddr`, or cut by the total length, is not.
#[inline(always)]
fn dhcp_client_names(packet: &Frame, m: usize, mac: [u8; 6]) -> bool {
    let f = packet;
    if matches!(f.var().u8(m + bootp::OP), Some(op) if op != bootp::OP_REQUEST) {
        return true;
    }
    f.var().u8(m + bootp::HTYPE) == Some(bootp::HTYPE_ETHERNET)
        && f.var().u8(m + bootp::HLEN) == Some(bootp::HLEN_ETHERNET)
        && matches!(f.var().bytes6(m + bootp::CHADDR), Some(c) if eq6(c, mac))
}

/// A DHCP server or relay message: anything to the client port (clients
/// accept an offer whatever its source port) or from the server port.
#[inline(always)]
pub fn is_dhcp_server_message(ip: &Ipv4) -> bool {
    matches!(ip.udp, Some((s, d)) if s == port::DHCP_SERVER || d == port::DHCP_CLIENT)
}
