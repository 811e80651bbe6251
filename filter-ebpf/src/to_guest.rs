//! Anti-sniffing: frames delivered to the guest (datapath.md, "To the
//! guest"), for locked and isolated interfaces with `egress_filter` on.

use filter_common::{IfacePolicy, Reason};

use crate::addrs::{v4_allowed, v4_list_empty, v6_allowed};
use crate::frame::{Frame, eq6};
use crate::proto::{ethertype, port};
use crate::verdict::Origin;
use crate::{arp, ipv4, ipv6};

#[inline(always)]
pub fn check(f: &Frame, p: &IfacePolicy, o: &Origin) -> Reason {
    let (ifindex, len) = (o.ifindex, o.len as usize);
    if !f.fits(14) {
        return Reason::EthMalformed;
    }
    let (Some(dst), Some(et)) = (f.bytes6(0), f.be16(12)) else {
        return Reason::EthMalformed;
    };
    let to_guest = eq6(dst, p.mac);
    if !to_guest && dst[0] & 1 == 0 {
        return Reason::SniffMac;
    }
    match et {
        ethertype::ARP => match arp::parse(f) {
            Err(r) => r,
            Ok(a) if v4_allowed(p, ifindex, a.tpa) => Reason::Pass,
            Ok(_) => Reason::SniffArp,
        },
        ethertype::IPV4 if to_guest => match ipv4::parse(f, len, None) {
            Err(r) => r,
            Ok(ip) if v4_allowed(p, ifindex, ip.dst) => Reason::Pass,
            Ok(ip)
                if v4_list_empty(p) && ip.udp == Some((port::DHCP_SERVER, port::DHCP_CLIENT)) =>
            {
                Reason::Pass
            }
            Ok(_) => Reason::SniffIp,
        },
        ethertype::IPV6 if to_guest => match ipv6::header(f, len) {
            Err(r) => r,
            Ok((_, dst, _)) if v6_allowed(p, ifindex, &dst) => Reason::Pass,
            Ok(_) => Reason::SniffIp,
        },
        _ => Reason::Pass,
    }
}
