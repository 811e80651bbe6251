//! IPv4 at offset 14, and the UDP ports behind it.

use filter_common::Reason;

use crate::frame::{Frame, eq6};
use crate::proto::{bootp, dhcp, icmp4, ipproto, port};

pub const BROADCAST: [u8; 4] = [255; 4];

/// Offsets within the parse window, as a mask (the window is 512 bytes).
const PARSE_WINDOW_MASK: usize = filter_common::PARSE_WINDOW - 1;
const _: () = assert!(filter_common::PARSE_WINDOW.is_power_of_two());

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

/// What learning needs of a DHCP message (docs/policy.md section 8).
pub struct Dhcp {
    /// Option 53, 0 when absent.
    pub kind: u8,
    /// The address the message names: `yiaddr` of an ACK, `ciaddr` of a
    /// RELEASE, option 50 of a DECLINE.
    pub addr: [u8; 4],
    /// Option 51, the lease in seconds, of an ACK.
    pub lease_s: Option<u32>,
}

/// The DHCP message in the UDP datagram of the IPv4 packet in `f` (which
/// [`parse`] accepted, UDP between the DHCP ports): BOOTP `op`, Ethernet
/// client `mac`, the magic cookie, and the options within the packet and
/// the parse window. `None` when any of it is missing or different: then
/// nothing is learned or forgotten.
#[inline(always)]
pub fn dhcp(f: &Frame, len: usize, op: u8, mac: [u8; 6]) -> Option<Dhcp> {
    let head = f.bytes4(14)?;
    let end = 14 + u16::from_be_bytes([head[2], head[3]]) as usize;
    if end > len {
        return None;
    }
    let m = 14 + 4 * (head[0] & 0x0f) as usize + 8;
    let f = &f.ending_at(end);
    let v = f.var();
    if v.u8(m + bootp::OP)? != op
        || v.u8(m + bootp::HTYPE)? != bootp::HTYPE_ETHERNET
        || v.u8(m + bootp::HLEN)? != bootp::HLEN_ETHERNET
        || !eq6(v.bytes6(m + bootp::CHADDR)?, mac)
        || v.bytes4(m + bootp::COOKIE)? != bootp::MAGIC
    {
        return None;
    }
    let ciaddr = v.bytes4(m + bootp::CIADDR)?;
    let yiaddr = v.bytes4(m + bootp::YIADDR)?;
    let want = if op == bootp::OP_REPLY {
        dhcp::OPT_LEASE_TIME
    } else {
        dhcp::OPT_REQUESTED_ADDRESS
    };
    let w = crate::subprogs::dhcp_options(f, m + bootp::OPTIONS, want);
    let kind = (w & options::KIND_MASK) as u8;
    let value = (w >> options::VALUE_SHIFT) as u32;
    let found = w & options::FOUND != 0;
    let addr = match kind {
        dhcp::ACK => yiaddr,
        dhcp::RELEASE => ciaddr,
        dhcp::DECLINE if found => value.to_be_bytes(),
        _ => [0; 4],
    };
    Some(Dhcp {
        kind,
        addr,
        lease_s: (found && op == bootp::OP_REPLY).then_some(value),
    })
}

/// Packed result of [`options`]: a plain scalar, so the walk can run in a
/// global function (see `subprogs.rs`).
pub mod options {
    /// Bits 0..8: the message type (option 53), 0 when absent.
    pub const KIND_MASK: u64 = 0xff;
    /// Bits 8..40: the wanted option's 4-byte value, host order.
    pub const VALUE_SHIFT: u32 = 8;
    /// The wanted option was found with 4 bytes of data.
    pub const FOUND: u64 = 1 << 40;
}

/// The DHCP option walk from `o`: the message type and the 4-byte value of
/// option `want` ([`options`] bits). Stops when it has both, at the end
/// option, at the end of the packet or window, or after MAX_DHCP_OPTS
/// options; what it has not seen by then counts as absent. Servers and
/// clients put the message type first and the lease or requested address
/// among the first few options.
#[inline(always)]
pub fn options(f: &Frame, mut o: usize, want: u8) -> u64 {
    let (mut kind, mut value, mut found) = (0u64, 0u64, 0u64);
    let mut n = 0;
    while n < filter_common::MAX_DHCP_OPTS {
        let Some(code) = f.var().u8(o) else {
            break;
        };
        if code == dhcp::OPT_END {
            break;
        }
        // The pad option is one byte; every other has a length byte.
        let len = if code == dhcp::OPT_PAD {
            0
        } else {
            match f.var().u8(o + 1) {
                Some(l) => l as usize,
                None => break,
            }
        };
        if code == dhcp::OPT_MESSAGE_TYPE && len == 1 {
            let Some(t) = f.var().u8(o + 2) else {
                break;
            };
            kind = u64::from(t);
        } else if code == want && len == 4 {
            let Some(b) = f.var().bytes4(o + 2) else {
                break;
            };
            value = u64::from(u32::from_be_bytes(b));
            found = options::FOUND;
        }
        if kind != 0 && found != 0 {
            break;
        }
        o += if code == dhcp::OPT_PAD { 1 } else { 2 + len };
        n += 1;
        if o >= filter_common::PARSE_WINDOW {
            break;
        }
        // Every iteration ends in one state the verifier can prune on,
        // whatever the options were: without this each path through the
        // loop (pad, message type, wanted option, other) is a state of its
        // own, and 16 iterations of them exceed the verifier's budget.
        // (`o` is below the window here, so the mask only tells the
        // verifier so.)
        o = core::hint::black_box(o) & PARSE_WINDOW_MASK;
        (kind, value, found) = core::hint::black_box((kind, value, found));
    }
    kind | value << options::VALUE_SHIFT | found
}
