//! Anti-spoofing: frames the guest transmits (datapath.md, "From the
//! guest"), for locked and isolated interfaces.

use filter_common::{Addrs, IfacePolicy, MAX_ETHERTYPES, Mode, Reason, flags, set};

use crate::addrs::{is_link_local, of_mac, v4_allowed, v4_destination, v6_allowed, v6_destination};
use crate::frame::{Frame, eq6, is_zero16};
use crate::proto::{self, bootp, dhcp, ethertype, icmp6, port};
use crate::verdict::Origin;
use crate::{arp, flood, ipv4, ipv6, learn};

#[inline(always)]
pub fn check(f: &Frame, p: &IfacePolicy, o: &Origin) -> Reason {
    if !f.fits(14) {
        return Reason::EthMalformed;
    }
    let (Some(dst), Some(src), Some(et)) = (f.bytes6(0), f.bytes6(6), f.be16(12)) else {
        return Reason::EthMalformed;
    };
    if src[0] & 1 != 0 {
        return Reason::MacSpoof;
    }
    // Step 1: the source MAC picks the frame's addresses, the vif's own or
    // a pair's or virtual MAC's (docs/policy.md 3a).
    let Some(a) = of_mac(p, o.ifindex, src) else {
        return Reason::MacSpoof;
    };
    if o.hw_vlan_tag {
        return Reason::VlanTagged;
    }
    let isolated = p.mode == Mode::Isolated as u8;
    let verdict = match et {
        ethertype::VLAN | ethertype::QINQ | ethertype::QINQ_OLD => Reason::VlanTagged,
        ethertype::ARP => check_arp(f, p, a, o.ifindex, isolated),
        ethertype::RARP => check_rarp(f, p, src),
        ethertype::IPV4 => check_ipv4(f, p, a, o, isolated),
        ethertype::IPV6 => check_ipv6(f, p, a, o, isolated),
        other => {
            if ethertype_listed(p, other) {
                Reason::Pass
            } else {
                Reason::Ethertype
            }
        }
    };
    // Section 9, last: only frames that would pass spend the budget, and
    // unicast never does.
    if verdict.is_pass() && p.flood_pps != 0 && dst[0] & 1 != 0 && flood::over_limit(p) {
        return Reason::Flood;
    }
    verdict
}

#[inline(always)]
fn ethertype_listed(p: &IfacePolicy, et: u16) -> bool {
    let wire = et.to_be();
    let n = p.n_ethertypes as usize;
    let mut i = 0;
    while i < MAX_ETHERTYPES {
        if i >= n {
            break;
        }
        if p.ethertypes[i] == wire {
            return true;
        }
        i += 1;
    }
    false
}

#[inline(always)]
fn check_arp(f: &Frame, p: &IfacePolicy, a: &Addrs, ifindex: u32, isolated: bool) -> Reason {
    let arp = match arp::parse(f) {
        Ok(arp) => arp,
        Err(r) => return r,
    };
    // The frame's source MAC, which step 1 found to be `a.mac`.
    if !eq6(arp.sha, a.mac) {
        return Reason::ArpShaSpoof;
    }
    // An RFC 5227 probe claims no address (sender 0.0.0.0) but makes the
    // target's owner give it up: only the guest's own may be probed.
    if arp.op == proto::arp::OP_REQUEST && arp.spa == [0; 4] {
        if !v4_allowed(p, a, ifindex, arp.tpa) {
            return Reason::DadForeign;
        }
    } else if !v4_allowed(p, a, ifindex, arp.spa) {
        return Reason::ArpSpaSpoof;
    }
    if isolated && !v4_destination(ifindex, arp.tpa) && !v4_allowed(p, a, ifindex, arp.tpa) {
        return Reason::Isolation;
    }
    Reason::Pass
}

/// Only from the vif's own MAC: QEMU announces the NIC's MAC alone.
#[inline(always)]
fn check_rarp(f: &Frame, p: &IfacePolicy, src: [u8; 6]) -> Reason {
    if !f.fits(arp::ARP_END) {
        return Reason::ArpMalformed;
    }
    let mac = p.own.mac;
    match (f.bytes6(22), f.bytes6(32)) {
        (Some(sha), Some(tha)) if eq6(src, mac) && eq6(sha, mac) && eq6(tha, mac) => Reason::Pass,
        _ => Reason::RarpSpoof,
    }
}

#[inline(always)]
fn check_ipv4(f: &Frame, p: &IfacePolicy, a: &Addrs, o: &Origin, isolated: bool) -> Reason {
    let ifindex = o.ifindex;
    // Step 5's client MAC: the frame's source, which step 1 found `a.mac`.
    let ip = match ipv4::parse(f, o.len as usize, Some(a.mac)) {
        Ok(ip) => ip,
        Err(r) => return r,
    };
    if !v4_allowed(p, a, ifindex, ip.src) {
        let bootstrap = ip.src == [0; 4]
            && ipv4::is_dhcp_client_broadcast(&ip)
            && p.flags & flags::DHCP_CLIENT != 0;
        if !bootstrap {
            return Reason::Ipv4Spoof;
        }
    }
    let relay = p.flags & flags::DHCP_SERVER != 0;
    if ipv4::is_dhcp_server_message(&ip) && !relay {
        return Reason::DhcpServer;
    }
    // A client message naming another MAC would exhaust the server's pool
    // or release another guest's lease; only a relay forwards those.
    if ip.notes & ipv4::notes::DHCP_FOREIGN_CLIENT != 0 && !relay {
        return Reason::DhcpSpoof;
    }
    // A Redirect reroutes its receiver's traffic: a router's message, as
    // the IPv6 Redirect is.
    if ip.notes & ipv4::notes::ICMP_REDIRECT != 0 && p.flags & flags::ROUTER == 0 {
        return Reason::RaGuard;
    }
    if isolated && !ipv4::is_dhcp_client_broadcast(&ip) && !v4_destination(ifindex, ip.dst) {
        return Reason::Isolation;
    }
    // Section 8: a lease the guest gives back is forgotten at once. Only
    // its own MAC's leases are learned.
    if p.flags & flags::LEARN_DHCP != 0
        && a.set == set::OWN
        && ip.udp == Some((port::DHCP_CLIENT, port::DHCP_SERVER))
        && let Some(d) = ipv4::dhcp(f, o.len as usize, bootp::OP_REQUEST, a.mac)
        && (d.kind == dhcp::RELEASE || d.kind == dhcp::DECLINE)
    {
        learn::forget(p, Some(d.addr));
    }
    Reason::Pass
}

#[inline(always)]
fn check_ipv6(f: &Frame, p: &IfacePolicy, a: &Addrs, o: &Origin, isolated: bool) -> Reason {
    let ifindex = o.ifindex;
    let ip = match ipv6::parse(f, o.len as usize) {
        Ok(ip) => ip,
        Err(r) => return r,
    };
    // The payload length ends the packet: nothing is read beyond it.
    let f = &f.ending_at(ip.end);
    let nd_type = match ip.icmp_type {
        Some(t) if ipv6::is_nd(t) => Some(t),
        _ => None,
    };
    let nd = nd_type.map(|t| crate::subprogs::nd_options(f, ip.l4, t, a.mac));

    // Step 5: the source.
    if is_zero16(&ip.src) {
        let dad = nd_type == Some(icmp6::ND_NEIGHBOR_SOLICITATION)
            && ipv6::is_solicited_node(&ip.dst)
            && matches!(nd, Some(o) if o & (ipv6::nd::WELL_FORMED | ipv6::nd::SOURCE_LLA) == ipv6::nd::WELL_FORMED);
        let mld = matches!(
            ip.icmp_type,
            Some(icmp6::MLD_REPORT_V1) | Some(icmp6::MLD_REPORT_V2)
        );
        if !dad && !mld {
            return Reason::Ipv6Spoof;
        }
    } else if !v6_allowed(p, a, ifindex, &ip.src) {
        return if is_link_local(&ip.src) {
            Reason::Ipv6LinkLocal
        } else {
            Reason::Ipv6Spoof
        };
    }

    // Step 6: Neighbor Discovery.
    if let (Some(t), Some(opts)) = (nd_type, nd) {
        if ip.hop_limit != icmp6::ND_HOP_LIMIT || ip.fragmented || opts & ipv6::nd::WELL_FORMED == 0
        {
            return Reason::NdMalformed;
        }
        if (t == icmp6::ND_ROUTER_ADVERTISEMENT || t == icmp6::ND_REDIRECT)
            && p.flags & flags::ROUTER == 0
        {
            return Reason::RaGuard;
        }
        // An NA claims its target; a DAD probe (an NS from `::`, which
        // step 5 let through only as DAD) makes the target's owner give it
        // up. Either only for the guest's own addresses.
        let dad = t == icmp6::ND_NEIGHBOR_SOLICITATION && is_zero16(&ip.src);
        if t == icmp6::ND_NEIGHBOR_ADVERTISEMENT || dad {
            let Some(target) = f.var().bytes16(ip.l4 + 8) else {
                return Reason::NdMalformed;
            };
            if is_zero16(&target) || !v6_allowed(p, a, ifindex, &target) {
                return if dad {
                    Reason::DadForeign
                } else {
                    Reason::NdSpoof
                };
            }
        }
        if opts & ipv6::nd::FOREIGN_LLA != 0 {
            return Reason::NdSpoof;
        }
    }

    // Step 7: DHCPv6 server or relay messages.
    if ipv6::is_dhcp_server_message(&ip) && p.flags & flags::DHCP_SERVER == 0 {
        return Reason::DhcpServer;
    }

    // Step 8: isolation.
    if isolated && !v6_destination(ifindex, &ip.dst) {
        let bootstrap = ip.dst[0] == 0xff
            && (nd_type.is_some_and(|t| t != icmp6::ND_REDIRECT)
                || matches!(
                    ip.icmp_type,
                    Some(icmp6::MLD_REPORT_V1) | Some(icmp6::MLD_REPORT_V2)
                )
                || ip.udp == Some((port::DHCP6_CLIENT, port::DHCP6_SERVER)));
        if !bootstrap {
            return Reason::Isolation;
        }
    }
    Reason::Pass
}
