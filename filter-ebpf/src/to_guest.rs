//! Anti-sniffing: frames delivered to the guest (datapath.md, "To the
//! guest"), for locked and isolated interfaces with `egress_filter` on.

use filter_common::{IfacePolicy, Reason, flags};

use crate::addrs::{
    of_mac, own_v4_empty, v4_dhcp_server, v4_of_guest, v6_dhcp_server, v6_of_guest,
};
use aya_ebpf::bindings::__sk_buff;

use crate::frame::{Ctx, Frame, eq6};
use crate::proto::{bootp, dhcp, ethertype, port};
use crate::verdict::Origin;
use crate::{arp, ipv4, ipv6, learn};

#[inline(always)]
pub fn check(f: &Frame, p: &IfacePolicy, o: &Origin) -> Reason {
    let (ifindex, len) = (o.ifindex, o.len as usize);
    if !f.fits(14) {
        return Reason::EthMalformed;
    }
    let (Some(dst), Some(et)) = (f.bytes6(0), f.be16(12)) else {
        return Reason::EthMalformed;
    };
    // Step 1: unicast to one of the guest's MACs (its own, a pair's, a
    // virtual one), or broadcast/multicast.
    let unicast = dst[0] & 1 == 0;
    let to_guest = unicast && (eq6(dst, p.own.mac) || of_mac(p, ifindex, dst).is_some());
    if unicast && !to_guest {
        return Reason::SniffMac;
    }
    // Step 5 looks into every IP packet, whatever its destination MAC, and
    // so does learning (section 8) into every IPv4 one: DHCP replies are
    // often broadcast.
    let servers = p.flags & flags::DHCP_SERVERS != 0;
    let learns = p.flags & flags::LEARN_DHCP != 0;
    match et {
        ethertype::ARP => match arp::parse(f) {
            Err(r) => r,
            Ok(a) if v4_of_guest(p, ifindex, a.tpa) => Reason::Pass,
            Ok(_) => Reason::SniffArp,
        },
        ethertype::IPV4 if to_guest || servers || learns => {
            let ip = match ipv4::parse(f, len, None) {
                Ok(ip) => ip,
                Err(r) => return r,
            };
            // Step 3, and its exception: a server may unicast the offer
            // to a guest that has no address yet.
            if to_guest
                && !v4_of_guest(p, ifindex, ip.dst)
                && !(own_v4_empty(p) && ip.udp == Some((port::DHCP_SERVER, port::DHCP_CLIENT)))
            {
                return Reason::SniffIp;
            }
            if servers
                && matches!(ip.udp, Some((_, port::DHCP_CLIENT)))
                && !v4_dhcp_server(ifindex, ip.src)
            {
                return Reason::DhcpUntrusted;
            }
            if learns
                && ip.udp == Some((port::DHCP_SERVER, port::DHCP_CLIENT))
                && let Ctx::Tc(skb) = f.ctx
            {
                learn_from_reply(skb, p, len);
            }
            Reason::Pass
        }
        // Step 4 needs only the destination: no extension header walk
        // unless step 5 must find the UDP header.
        ethertype::IPV6 if to_guest && !servers => match ipv6::header(f, len) {
            Err(r) => r,
            Ok((_, dst, _)) if v6_of_guest(p, ifindex, &dst) => Reason::Pass,
            Ok(_) => Reason::SniffIp,
        },
        ethertype::IPV6 if servers => {
            // Step 4 before step 5's walk: a unicast packet for another
            // address is `sniff_ip` whatever its extension headers.
            if to_guest {
                match ipv6::header(f, len) {
                    Err(r) => return r,
                    Ok((_, dst, _)) if !v6_of_guest(p, ifindex, &dst) => return Reason::SniffIp,
                    Ok(_) => {}
                }
            }
            let ip = match ipv6::parse(f, len) {
                Ok(ip) => ip,
                Err(r) => return r,
            };
            if matches!(ip.udp, Some((_, port::DHCP6_CLIENT))) && !v6_dhcp_server(ifindex, &ip.src)
            {
                return Reason::DhcpUntrusted;
            }
            Reason::Pass
        }
        _ => Reason::Pass,
    }
}

/// A trusted server's ACK leases an address, its NAK takes the guest's
/// away (section 8). Out of line: DHCP replies are rare, and inlined, this
/// code's registers cost every other frame to the guest. It takes the TC
/// context, not a `Frame`: with a `Frame` it would carry both contexts'
/// code, and the XDP option walk's global function, whose context
/// argument a TC program's verifier before 6.4 types as possibly NULL,
/// would then be in this TC program and fail verification there.
#[inline(never)]
fn learn_from_reply(skb: *mut __sk_buff, p: &IfacePolicy, len: usize) {
    let f = &Frame::new(Ctx::Tc(skb));
    if let Some(d) = ipv4::dhcp(f, len, bootp::OP_REPLY, p.own.mac) {
        match (d.kind, d.lease_s) {
            (dhcp::ACK, Some(lease_s)) => learn::learn(p, d.addr, lease_s),
            (dhcp::NAK, _) => learn::forget(p, None),
            _ => {}
        }
    }
}
