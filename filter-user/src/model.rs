//! The reference model of the datapath: `docs/datapath.md` in plain, safe
//! Rust.
//!
//! The eBPF programs and this model implement the same page; the
//! differential test feeds both the same frames and compares the reasons.
//! So this file follows the page step by step, in the page's order, and
//! says which step every check is. It never panics: every read goes through
//! [`Window`], which answers `None` past the parse window instead of
//! indexing out of bounds.
//!
//! Section names in comments ("IPv4 3", "to the guest 4", ...) are the
//! headings and numbered steps of `docs/datapath.md`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use filter_common::{Direction, LinkLocal, MAX_IPV6_EXT, MAX_ND_OPTS, Mode, PARSE_WINDOW, Reason};

use crate::policy::{MacAddr, Pair, Policy, Vrrp, is_link_local_64};

/// The verdict of the datapath for one frame on an interface whose policy is
/// `policy` (`None`: a program is attached but the interface has no policy
/// entry). `frame` is the frame as on the wire, from the first byte of the
/// Ethernet destination address, without FCS.
pub fn verdict(policy: Option<&Policy>, direction: Direction, frame: &[u8]) -> Reason {
    step(policy, &mut State::default(), 0, direction, frame)
}

/// What the datapath keeps per interface between frames: the addresses
/// learned from DHCP (section 8) and the flood window (section 9).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct State {
    pub learned: Learned,
    pub flood: filter_common::FloodWindow,
}

/// The verdict on an interface in `state`, at second `now_s` of the
/// clock the kernel uses (CLOCK_MONOTONIC). A frame that passes may
/// change the state: a DHCPACK to the guest adds its lease, a DHCPNAK to
/// it clears them, a DHCPRELEASE or DHCPDECLINE from it forgets the
/// address it names; a broadcast or multicast frame from it spends one of
/// this second's `flood_pps`, and is `flood` when none is left.
pub fn step(
    policy: Option<&Policy>,
    state: &mut State,
    now_s: u64,
    direction: Direction,
    frame: &[u8],
) -> Reason {
    let learned = &mut state.learned;
    // Expiries are 32-bit seconds, as the kernel keeps them.
    let now_s32 = u32::try_from(now_s).unwrap_or(u32::MAX);
    // Learned addresses count as the vif's own (section 8): the model
    // adds the live ones to a copy of the policy (only then: the fuzz and
    // differential runs judge millions of frames), and keeps the
    // configured list's emptiness for the one rule that asks for it.
    let effective: Option<std::borrow::Cow<'_, Policy>> = policy.map(|p| {
        let mut live = learned.live(now_s32).peekable();
        if p.options.learn_dhcp && live.peek().is_some() {
            let mut e = p.clone();
            e.ipv4.extend(live.map(crate::policy::Cidr4::host));
            std::borrow::Cow::Owned(e)
        } else {
            std::borrow::Cow::Borrowed(p)
        }
    });
    let configured_v4_empty = policy.is_some_and(|p| p.ipv4.is_empty());
    match judge(effective.as_deref(), direction, frame, configured_v4_empty) {
        Ok(()) => {
            if let Some(p) = policy.filter(|p| p.options.learn_dhcp) {
                learning::after_pass(p, learned, now_s32, direction, frame);
            }
            // Section 9, after every other check: only frames that would
            // pass spend the budget, and unicast never does.
            let flooding = policy.is_some_and(|p| {
                p.options.flood_pps != 0
                    && direction == Direction::FromGuest
                    && frame.first().is_some_and(|b| b & 1 == 1)
                    && spend(&mut state.flood, now_s, p.options.flood_pps)
            });
            if flooding {
                Reason::Flood
            } else {
                Reason::Pass
            }
        }
        Err(reason) => reason,
    }
}

/// One frame against a one-second window: a new second starts the count
/// again. Whether the frame is beyond the limit.
fn spend(w: &mut filter_common::FloodWindow, now_s: u64, limit: u32) -> bool {
    if w.second != now_s {
        w.count = 0;
        w.second = now_s;
    }
    w.count += 1;
    w.count > u64::from(limit)
}

/// The `LEARNED` row of one interface, as the kernel keeps it: four
/// entries of (address, second it expires), `None` when free.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Learned {
    pub entries: [Option<(Ipv4Addr, u32)>; filter_common::MAX_LEARNED],
}

impl Learned {
    /// The addresses that have not expired at `now_s`.
    pub fn live(&self, now_s: u32) -> impl Iterator<Item = Ipv4Addr> + '_ {
        self.entries
            .iter()
            .flatten()
            .filter(move |(_, expires)| *expires > now_s)
            .map(|(a, _)| *a)
    }
}

/// `Ok(())`: this check has no objection, go on. `Err(reason)`: drop the
/// frame and count it as `reason`. The first failing check decides, which is
/// what `?` gives.
type Check = Result<(), Reason>;

/// Drops with `reason` unless `ok`.
fn ensure(ok: bool, reason: Reason) -> Check {
    if ok { Ok(()) } else { Err(reason) }
}

// EtherTypes (datapath.md, "From the guest" 3 and 4).
const ETH_P_IPV4: u16 = 0x0800;
const ETH_P_ARP: u16 = 0x0806;
const ETH_P_RARP: u16 = 0x8035;
const ETH_P_IPV6: u16 = 0x86dd;
const ETH_P_8021Q: u16 = 0x8100;
const ETH_P_8021AD: u16 = 0x88a8;
const ETH_P_QINQ_OLD: u16 = 0x9100;

/// Ethernet header length; the IP and ARP headers start here.
const ETH_LEN: usize = 14;

// IP protocol numbers (IPv4 2, IPv6 2 and 3) and IPv6 extension headers.
const IPPROTO_HOPOPTS: u8 = 0;
const IPPROTO_ICMP: u8 = 1;
const IPPROTO_UDP: u8 = 17;
const IPPROTO_ROUTING: u8 = 43;
const IPPROTO_FRAGMENT: u8 = 44;
const IPPROTO_AH: u8 = 51;
const IPPROTO_ICMPV6: u8 = 58;
const IPPROTO_DSTOPTS: u8 = 60;

// ICMP types (IPv4 6).
const ICMP_REDIRECT: u8 = 5;

// ICMPv6 types (IPv6 4 to 8).
const MLD_REPORT: u8 = 131;
const MLDV2_REPORT: u8 = 143;
const ND_ROUTER_SOLICIT: u8 = 133;
const ND_ROUTER_ADVERT: u8 = 134;
const ND_NEIGHBOR_SOLICIT: u8 = 135;
const ND_NEIGHBOR_ADVERT: u8 = 136;
const ND_REDIRECT: u8 = 137;

// ND option types that carry a link-layer address (IPv6 4).
const ND_OPT_SOURCE_LL: u8 = 1;
const ND_OPT_TARGET_LL: u8 = 2;

// BOOTP (RFC 951), the format of DHCP messages (IPv4 5): field offsets in
// the UDP payload, and what a client message over Ethernet holds.
const BOOTP_OP: usize = 0;
const BOOTP_HTYPE: usize = 1;
const BOOTP_HLEN: usize = 2;
const BOOTP_CHADDR: usize = 28;
const BOOTREQUEST: u8 = 1;
const HTYPE_ETHERNET: u8 = 1;
const HLEN_ETHERNET: u8 = 6;

// UDP ports of DHCPv4 (IPv4 3 to 6) and DHCPv6 (IPv6 7 and 8).
const DHCP4_SERVER_PORT: u16 = 67;
const DHCP4_CLIENT_PORT: u16 = 68;
const DHCP6_CLIENT_PORT: u16 = 546;
const DHCP6_SERVER_PORT: u16 = 547;

/// The part of the frame the filter may parse: the first
/// `L = min(frame length, PARSE_WINDOW)` bytes ("Notation"), and within an
/// IP packet only the bytes its length field counts (`E`). A header "fits"
/// when it ends at or before `L` (and `E`); every read is bounds-checked
/// and answers `None` when it does not fit.
struct Window<'a> {
    bytes: &'a [u8],
    /// The whole frame's length: the IP length fields are checked against
    /// it, not against `L`.
    frame_len: usize,
}

impl<'a> Window<'a> {
    fn new(frame: &'a [u8]) -> Window<'a> {
        let len = frame.len().min(PARSE_WINDOW);
        Window {
            bytes: frame.get(..len).unwrap_or_default(),
            frame_len: frame.len(),
        }
    }

    /// The window of a packet that ends at `end` (`E`): what follows is
    /// trailer and never read.
    fn ending_at(&self, end: usize) -> Window<'a> {
        Window {
            bytes: self.bytes.get(..end.min(self.len())).unwrap_or_default(),
            frame_len: self.frame_len,
        }
    }

    /// `L` (or `min(L, E)` in a packet's window).
    fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Whether `n` bytes at `off` fit.
    fn fits(&self, off: usize, n: usize) -> bool {
        off.checked_add(n).is_some_and(|end| end <= self.len())
    }

    fn array<const N: usize>(&self, off: usize) -> Option<[u8; N]> {
        let end = off.checked_add(N)?;
        self.bytes.get(off..end)?.try_into().ok()
    }

    fn u8(&self, off: usize) -> Option<u8> {
        self.bytes.get(off).copied()
    }

    fn u16(&self, off: usize) -> Option<u16> {
        self.array(off).map(u16::from_be_bytes)
    }

    fn ipv4(&self, off: usize) -> Option<Ipv4Addr> {
        self.array::<4>(off).map(Ipv4Addr::from)
    }

    fn ipv6(&self, off: usize) -> Option<Ipv6Addr> {
        self.array::<16>(off).map(Ipv6Addr::from)
    }
}

fn is_multicast_mac(mac: &[u8; 6]) -> bool {
    mac[0] & 1 == 1
}

/// "Both directions: before anything else", then the direction's section.
fn judge(
    policy: Option<&Policy>,
    direction: Direction,
    frame: &[u8],
    configured_v4_empty: bool,
) -> Check {
    // 1. Fail closed on an interface nobody configured.
    let policy = policy.ok_or(Reason::NoPolicy)?;
    match policy.mode {
        // 2.
        Mode::Disabled => return Err(Reason::Disabled),
        // 3. Before any parsing: unlocked passes even a truncated frame.
        Mode::Unlocked => return Ok(()),
        Mode::Locked | Mode::Isolated => {}
    }
    // 4. Only the to-guest direction has an off switch.
    if direction == Direction::ToGuest && !policy.options.egress_filter {
        return Ok(());
    }
    let w = Window::new(frame);
    // 5.
    let eth = Ethernet::parse(&w).ok_or(Reason::EthMalformed)?;
    match direction {
        Direction::FromGuest => from_guest(policy, &w, &eth),
        Direction::ToGuest => to_guest(policy, &w, &eth, configured_v4_empty),
    }
}

/// The Ethernet header: `dst` 0..6, `src` 6..12, `et` 12..14. VLAN tags are
/// not skipped: a tag shows up as the EtherType 0x8100/0x88a8/0x9100.
struct Ethernet {
    dst: [u8; 6],
    src: [u8; 6],
    ethertype: u16,
}

impl Ethernet {
    fn parse(w: &Window) -> Option<Ethernet> {
        Some(Ethernet {
            dst: w.array(0)?,
            src: w.array(6)?,
            ethertype: w.u16(12)?,
        })
    }
}

// ---------------------------------------------------------------------------
// From the guest (locked and isolated)
// ---------------------------------------------------------------------------

/// "From the guest", steps 1 to 4.
fn from_guest(p: &Policy, w: &Window, eth: &Ethernet) -> Check {
    // 1. The toolstack's MAC, a pair's or a virtual MAC in use, and nothing
    // else; a multicast source is never a guest's own address, whatever
    // the policy says. The MAC that matched picks the frame's addresses.
    let s = if is_multicast_mac(&eth.src) {
        None
    } else {
        Source::identify(p, eth.src)
    };
    let s = s.ok_or(Reason::MacSpoof)?;
    // 2. (`skb->vlan_present`) is TC only: the model sees frames as on the
    // wire, where a tag is an EtherType (step 3).
    // 3. A tag must not let a frame skip the checks below.
    ensure(
        !matches!(eth.ethertype, ETH_P_8021Q | ETH_P_8021AD | ETH_P_QINQ_OLD),
        Reason::VlanTagged,
    )?;
    // 4. Dispatch.
    match eth.ethertype {
        ETH_P_ARP => arp_from_guest(&s, w),
        ETH_P_RARP => rarp_from_guest(&s, w),
        ETH_P_IPV4 => ipv4_from_guest(&s, w),
        ETH_P_IPV6 => ipv6_from_guest(&s, w),
        other => ensure(p.options.ethertypes.contains(&other), Reason::Ethertype),
    }
}

/// The frame's addresses (from the guest 1): what the frame may claim,
/// decided by the MAC it came from.
struct Source<'a> {
    p: &'a Policy,
    /// The frame's source MAC: ARP, ND and DHCP must name it inside.
    mac: [u8; 6],
    of: Sender<'a>,
}

/// Which of the policy's MACs a frame came from.
#[derive(Clone, Copy)]
enum Sender<'a> {
    /// `mac`: the vif's own lists and link-local addresses.
    Own,
    /// A pair's MAC: the pair's lists and the link-local address of its
    /// MAC, never the vif's own (a pair is another interface).
    Pair(&'a Pair),
    /// 00:00:5e:00:01:VRID: the IPv4 virtual addresses, and everything
    /// `mac` may use (advertisements come from the router's address).
    VirtualV4(&'a Vrrp),
    /// 00:00:5e:00:02:VRID: the IPv6 virtual addresses, and everything
    /// `mac` may use (keepalived reuses the parent's link-local address).
    VirtualV6(&'a Vrrp),
}

impl<'a> Source<'a> {
    /// From the guest 1: `mac`, then the pairs, then the virtual MACs in
    /// use (validation keeps them distinct, so the order never decides).
    /// A family without virtual addresses has no virtual MAC.
    fn identify(p: &'a Policy, mac: [u8; 6]) -> Option<Source<'a>> {
        let of = if mac == p.mac.0 {
            Sender::Own
        } else if let Some(pair) = p.pairs.iter().find(|pair| pair.mac.0 == mac) {
            Sender::Pair(pair)
        } else if let Some(v) = p.vrrp.iter().find(|v| uses(v, v.mac_v4(), mac)) {
            Sender::VirtualV4(v)
        } else {
            Sender::VirtualV6(p.vrrp.iter().find(|v| uses(v, v.mac_v6(), mac))?)
        };
        Some(Source { p, mac, of })
    }

    /// `ipv4` of the frame's addresses.
    fn allows_v4(&self, a: Ipv4Addr) -> bool {
        match self.of {
            Sender::Own | Sender::VirtualV6(_) => self.p.allows_v4(a),
            Sender::Pair(pair) => pair.ipv4.iter().any(|c| c.contains(a)),
            Sender::VirtualV4(v) => v.ipv4.iter().any(|c| c.contains(a)) || self.p.allows_v4(a),
        }
    }

    /// `ipv6` of the frame's addresses, or one of its allowed link-local
    /// addresses.
    fn allows_v6(&self, a: Ipv6Addr) -> bool {
        match self.of {
            Sender::Own | Sender::VirtualV4(_) => self.p.allows_v6(a),
            Sender::Pair(pair) => {
                pair.ipv6.iter().any(|c| c.contains(a))
                    || link_local_allowed(self.p.options.link_local, pair.mac, a)
            }
            Sender::VirtualV6(v) => v.ipv6.iter().any(|c| c.contains(a)) || self.p.allows_v6(a),
        }
    }
}

/// Whether `mac` is the virtual MAC `vmac` of `v` and in use: the family
/// it serves has addresses.
fn uses(v: &Vrrp, vmac: MacAddr, mac: [u8; 6]) -> bool {
    vmac.0 == mac && v.macs().any(|m| m == vmac)
}

/// The link-local addresses option `ipv6_link_local` allows for an
/// interface with MAC `mac`: `derived` only the one derived from it.
fn link_local_allowed(option: LinkLocal, mac: MacAddr, a: Ipv6Addr) -> bool {
    match option {
        LinkLocal::Derived => a == mac.link_local(),
        LinkLocal::Any => is_link_local_64(a),
        LinkLocal::None => false,
    }
}

// --- ARP and RARP ----------------------------------------------------------

/// The 28-byte ARP/RARP body at 14 (ends at 42), fields as the page lists
/// them. Parsing only checks that it fits; [`Arp::check_format`] is ARP 1.
struct Arp {
    htype: u16,
    ptype: u16,
    hlen: u8,
    plen: u8,
    op: u16,
    sha: [u8; 6],
    spa: Ipv4Addr,
    tha: [u8; 6],
    tpa: Ipv4Addr,
}

impl Arp {
    /// The 42 bytes must fit, else `arp_malformed` (ARP 1, RARP 1: RARP
    /// shares ARP's format, so a cut RARP is `arp_malformed` too).
    fn parse(w: &Window) -> Result<Arp, Reason> {
        Arp::read(w).ok_or(Reason::ArpMalformed)
    }

    fn read(w: &Window) -> Option<Arp> {
        Some(Arp {
            htype: w.u16(14)?,
            ptype: w.u16(16)?,
            hlen: w.u8(18)?,
            plen: w.u8(19)?,
            op: w.u16(20)?,
            sha: w.array(22)?,
            spa: w.ipv4(28)?,
            tha: w.array(32)?,
            tpa: w.ipv4(38)?,
        })
    }

    /// ARP 1: Ethernet/IPv4 ARP, request or reply.
    fn check_format(&self) -> Check {
        ensure(
            self.htype == 1
                && self.ptype == ETH_P_IPV4
                && self.hlen == 6
                && self.plen == 4
                && (self.op == 1 || self.op == 2),
            Reason::ArpMalformed,
        )
    }
}

/// "ARP (0x0806), header at 14".
fn arp_from_guest(s: &Source, w: &Window) -> Check {
    // 1.
    let arp = Arp::parse(w)?;
    arp.check_format()?;
    // 2. The sender hardware address is what neighbours cache: it must be
    // the MAC the frame came from, which step 1 vouched for.
    ensure(arp.sha == s.mac, Reason::ArpShaSpoof)?;
    // 3. An RFC 5227 probe claims no address (sender 0.0.0.0), so its
    // sender is not checked; but the target's owner gives its address up
    // when it sees one, so only the guest's own may be probed.
    let probe = arp.op == 1 && arp.spa.is_unspecified();
    if probe {
        ensure(s.allows_v4(arp.tpa), Reason::DadForeign)?;
    } else {
        ensure(s.allows_v4(arp.spa), Reason::ArpSpaSpoof)?;
    }
    // 4. Gratuitous ARP, announcements and probes name the guest's own
    // address as target, so `ipv4` counts as well as `destinations`.
    if s.p.mode == Mode::Isolated {
        ensure(
            s.p.allows_destination(IpAddr::V4(arp.tpa)) || s.allows_v4(arp.tpa),
            Reason::Isolation,
        )?;
    }
    // 5.
    Ok(())
}

/// "RARP (0x8035)": only the announce a migrated guest sends, which names
/// its own MAC as both sender and target.
fn rarp_from_guest(s: &Source, w: &Window) -> Check {
    // 1. Only the fit, not ARP's format check.
    let rarp = Arp::parse(w)?;
    // 2. QEMU announces the NIC's own MAC only: from a pair's or a virtual
    // MAC, a RARP is no announcement.
    let own = s.p.mac.0;
    ensure(
        s.mac == own && rarp.sha == own && rarp.tha == own,
        Reason::RarpSpoof,
    )
}

// --- IPv4 -------------------------------------------------------------------

/// UDP source and destination ports.
#[derive(Clone, Copy)]
struct Ports {
    sport: u16,
    dport: u16,
}

impl Ports {
    /// The ports of the UDP header at `off`, if its 8 bytes fit.
    fn read(w: &Window, off: usize) -> Option<Ports> {
        if !w.fits(off, 8) {
            return None;
        }
        Some(Ports {
            sport: w.u16(off)?,
            dport: w.u16(off + 2)?,
        })
    }

    fn are(self, sport: u16, dport: u16) -> bool {
        self.sport == sport && self.dport == dport
    }
}

/// What the IPv4 header at 14 tells the filter.
struct Ipv4 {
    /// Offset of the upper-layer header: `14 + 4 * IHL`.
    l4: usize,
    /// Where the packet ends: `E = 14 + total length`.
    end: usize,
    /// Fragment offset != 0: a non-first fragment, with no upper-layer
    /// header of its own.
    non_first_fragment: bool,
    proto: u8,
    src: Ipv4Addr,
    dst: Ipv4Addr,
}

impl Ipv4 {
    /// IPv4 1 (also "to the guest" 4): the fixed header fits, version 4,
    /// IHL >= 5 and the whole header with options fits; the total length
    /// holds the header and does not run past the frame. The checksum is
    /// not checked.
    fn parse(w: &Window) -> Result<Ipv4, Reason> {
        const MALFORMED: Reason = Reason::Ipv4Malformed;
        ensure(w.fits(ETH_LEN, 20), MALFORMED)?;
        let ver_ihl = w.u8(ETH_LEN).ok_or(MALFORMED)?;
        let ihl = usize::from(ver_ihl & 0x0f);
        ensure(ver_ihl >> 4 == 4 && ihl >= 5, MALFORMED)?;
        let l4 = ETH_LEN + 4 * ihl;
        ensure(w.fits(ETH_LEN, 4 * ihl), MALFORMED)?;
        // The whole frame, not the window: a full-size packet is longer
        // than the window and fine.
        let total = usize::from(w.u16(16).ok_or(MALFORMED)?);
        let end = ETH_LEN + total;
        ensure(total >= 4 * ihl && end <= w.frame_len, MALFORMED)?;
        let frag_field = w.u16(20).ok_or(MALFORMED)?;
        Ok(Ipv4 {
            l4,
            end,
            non_first_fragment: frag_field & 0x1fff != 0,
            proto: w.u8(23).ok_or(MALFORMED)?,
            src: w.ipv4(26).ok_or(MALFORMED)?,
            dst: w.ipv4(30).ok_or(MALFORMED)?,
        })
    }

    /// IPv4 2: the ports of a UDP packet that is not a non-first fragment;
    /// its 8-byte header must then fit. `None`: not UDP, or UDP without
    /// ports (a non-first fragment).
    fn udp_ports(&self, w: &Window) -> Result<Option<Ports>, Reason> {
        if self.proto != IPPROTO_UDP || self.non_first_fragment {
            return Ok(None);
        }
        Ports::read(w, self.l4)
            .ok_or(Reason::Ipv4Malformed)
            .map(Some)
    }

    /// IPv4 2: the type of an ICMP message that is not a non-first
    /// fragment; its 4-byte header (type, code, checksum) must then fit.
    fn icmp_type(&self, w: &Window) -> Result<Option<u8>, Reason> {
        if self.proto != IPPROTO_ICMP || self.non_first_fragment {
            return Ok(None);
        }
        ensure(w.fits(self.l4, 4), Reason::Ipv4Malformed)?;
        Ok(w.u8(self.l4))
    }
}

/// IPv4 5: whether the BOOTP message of a UDP datagram to the server port
/// (the UDP payload at `bootp`) is no client message, its op byte being
/// there and not 1, or one naming `mac` over Ethernet: htype 1, hlen 6,
/// the 6 bytes of `chaddr` whole.
fn dhcp_client_names(w: &Window, bootp: usize, mac: [u8; 6]) -> bool {
    if w.u8(bootp + BOOTP_OP).is_some_and(|op| op != BOOTREQUEST) {
        return true;
    }
    w.u8(bootp + BOOTP_HTYPE) == Some(HTYPE_ETHERNET)
        && w.u8(bootp + BOOTP_HLEN) == Some(HLEN_ETHERNET)
        && w.array(bootp + BOOTP_CHADDR) == Some(mac)
}

/// "IPv4 (0x0800), header at 14".
fn ipv4_from_guest(s: &Source, w: &Window) -> Check {
    let p = s.p;
    // 1.
    let ip = Ipv4::parse(w)?;
    // The total length ends the packet: a header it cuts is cut.
    let w = &w.ending_at(ip.end);
    // 2.
    let ports = ip.udp_ports(w)?;
    let icmp_type = ip.icmp_type(w)?;
    let dhcp_client_to_server = ports.is_some_and(|p| p.are(DHCP4_CLIENT_PORT, DHCP4_SERVER_PORT));
    // 3. A DHCP client has no address yet: it sends from 0.0.0.0 to the
    // broadcast address.
    let dhcp_bootstrap = ip.src.is_unspecified()
        && ip.dst.is_broadcast()
        && dhcp_client_to_server
        && p.options.dhcp_client;
    ensure(s.allows_v4(ip.src) || dhcp_bootstrap, Reason::Ipv4Spoof)?;
    // 4. A rogue DHCP server in a guest would hand out its neighbours'
    // addresses and gateway. Clients accept an offer whatever its source
    // port, so anything to the client port counts, as does anything from
    // the server port.
    let dhcp_server_reply =
        ports.is_some_and(|p| p.sport == DHCP4_SERVER_PORT || p.dport == DHCP4_CLIENT_PORT);
    ensure(
        !dhcp_server_reply || p.options.dhcp_server,
        Reason::DhcpServer,
    )?;
    // 5. A client message naming another MAC would exhaust the server's
    // pool or release another guest's lease. A relay forwards other
    // clients' messages, so `dhcp_server` lets them through.
    if ports.is_some_and(|p| p.dport == DHCP4_SERVER_PORT) && !p.options.dhcp_server {
        ensure(dhcp_client_names(w, ip.l4 + 8, s.mac), Reason::DhcpSpoof)?;
    }
    // 6. A Redirect reroutes its receiver's traffic: a router's message,
    // guarded like the IPv6 Redirect.
    ensure(
        icmp_type != Some(ICMP_REDIRECT) || p.options.router,
        Reason::RaGuard,
    )?;
    // 7. The broadcast DHCP request needs no listed destination; any other
    // broadcast or multicast does.
    if p.mode == Mode::Isolated {
        let dhcp_broadcast = ip.dst.is_broadcast() && dhcp_client_to_server;
        ensure(
            p.allows_destination(IpAddr::V4(ip.dst)) || dhcp_broadcast,
            Reason::Isolation,
        )?;
    }
    // 8.
    Ok(())
}

// --- IPv6 -------------------------------------------------------------------

/// Offset of the first IPv6 extension header / upper-layer header.
const IPV6_PAYLOAD: usize = ETH_LEN + 40;

/// What the IPv6 fixed header at 14 tells the filter.
struct Ipv6 {
    /// Where the packet ends: `E = 54 + payload length`.
    end: usize,
    next_header: u8,
    hop_limit: u8,
    src: Ipv6Addr,
    dst: Ipv6Addr,
}

impl Ipv6 {
    /// IPv6 1 (also "to the guest" 5): the 40-byte fixed header fits, the
    /// version is 6 and the payload length does not run past the frame.
    fn parse(w: &Window) -> Result<Ipv6, Reason> {
        const MALFORMED: Reason = Reason::Ipv6Malformed;
        ensure(w.fits(ETH_LEN, 40), MALFORMED)?;
        ensure(w.u8(ETH_LEN).is_some_and(|b| b >> 4 == 6), MALFORMED)?;
        let ip = Ipv6::read(w).ok_or(MALFORMED)?;
        // The whole frame, not the window (see IPv4 1).
        ensure(ip.end <= w.frame_len, MALFORMED)?;
        Ok(ip)
    }

    fn read(w: &Window) -> Option<Ipv6> {
        Some(Ipv6 {
            end: IPV6_PAYLOAD + usize::from(w.u16(18)?),
            next_header: w.u8(20)?,
            hop_limit: w.u8(21)?,
            src: w.ipv6(22)?,
            dst: w.ipv6(38)?,
        })
    }
}

/// Result of the extension header walk (IPv6 2).
struct Chain {
    /// A fragment header was seen (RFC 6980 forbids ND in fragments).
    fragmented: bool,
    /// The upper-layer protocol and the offset of its header; `None` for a
    /// non-first fragment, which carries no upper-layer header.
    upper: Option<(u8, usize)>,
}

/// IPv6 2: skips up to `MAX_IPV6_EXT` hop-by-hop, routing, fragment,
/// destination options and AH headers to find the upper-layer protocol.
/// AH is walked too, so ND or DHCP hidden behind it is still seen.
fn walk_extension_headers(w: &Window, first: u8) -> Result<Chain, Reason> {
    const MALFORMED: Reason = Reason::Ipv6Malformed;
    let mut next = first;
    let mut off = IPV6_PAYLOAD;
    let mut fragmented = false;
    let mut walked = 0;
    loop {
        let len = match next {
            IPPROTO_HOPOPTS | IPPROTO_ROUTING | IPPROTO_DSTOPTS | IPPROTO_FRAGMENT | IPPROTO_AH => {
                // A ninth extension header: the chain is too long to follow.
                walked += 1;
                ensure(walked <= MAX_IPV6_EXT, MALFORMED)?;
                // The next-header and length bytes must fit ...
                let len_byte = w.u8(off + 1).ok_or(MALFORMED)?;
                let len_byte = usize::from(len_byte);
                match next {
                    IPPROTO_FRAGMENT => 8,
                    IPPROTO_AH => 4 * (len_byte + 2),
                    _ => 8 * (len_byte + 1),
                }
            }
            // The first other value is the upper-layer protocol.
            proto => {
                return Ok(Chain {
                    fragmented,
                    upper: Some((proto, off)),
                });
            }
        };
        // ... and then the whole header.
        ensure(w.fits(off, len), MALFORMED)?;
        if next == IPPROTO_FRAGMENT {
            fragmented = true;
            let offset = w.u16(off + 2).ok_or(MALFORMED)? >> 3;
            if offset != 0 {
                // A non-first fragment: the walk stops, `proto` = none.
                return Ok(Chain {
                    fragmented,
                    upper: None,
                });
            }
        }
        next = w.u8(off).ok_or(MALFORMED)?;
        off += len;
    }
}

/// The upper layer of an IPv6 packet (IPv6 3).
#[derive(Clone, Copy)]
enum Upper {
    /// Non-first fragment: `proto` is none.
    Unknown,
    /// ICMPv6 at `l4`, 4 bytes fit.
    Icmp6 { ty: u8, l4: usize },
    /// UDP, 8 bytes fit.
    Udp(Ports),
    /// Any other protocol; nothing of it is looked at.
    Other,
}

impl Upper {
    /// IPv6 3: the first 4 bytes of ICMPv6, the 8 bytes of UDP must fit.
    fn parse(w: &Window, chain: &Chain) -> Result<Upper, Reason> {
        const MALFORMED: Reason = Reason::Ipv6Malformed;
        Ok(match chain.upper {
            None => Upper::Unknown,
            Some((IPPROTO_ICMPV6, l4)) => {
                ensure(w.fits(l4, 4), MALFORMED)?;
                Upper::Icmp6 {
                    ty: w.u8(l4).ok_or(MALFORMED)?,
                    l4,
                }
            }
            Some((IPPROTO_UDP, l4)) => Upper::Udp(Ports::read(w, l4).ok_or(MALFORMED)?),
            Some(_) => Upper::Other,
        })
    }

    fn icmp6_type(self) -> Option<u8> {
        match self {
            Upper::Icmp6 { ty, .. } => Some(ty),
            _ => None,
        }
    }

    fn is_mld_report(self) -> bool {
        matches!(self.icmp6_type(), Some(MLD_REPORT | MLDV2_REPORT))
    }

    fn udp_ports(self) -> Option<Ports> {
        match self {
            Upper::Udp(ports) => Some(ports),
            _ => None,
        }
    }
}

/// A Neighbor Discovery message (ICMPv6 133..137) and its options (IPv6 4).
struct NdMessage {
    ty: u8,
    l4: usize,
    /// `None`: "bad options", the fixed part does not fit or the option walk
    /// is malformed; judged in IPv6 5 and 6.
    options: Option<NdOptions>,
}

/// The link-layer address options found by the walk.
struct NdOptions {
    /// An option of type 1 was present, whatever its length (IPv6 5: a DAD
    /// probe from `::` carries none, RFC 4861 7.1.1).
    has_source_ll: bool,
    /// The address of every type 1 or 2 option of length 1 (8 bytes, the
    /// Ethernet form), in order.
    ll_addrs: Vec<[u8; 6]>,
}

impl NdMessage {
    /// IPv6 4, for ICMPv6 types 133..137; `None` for any other message.
    fn parse(w: &Window, upper: Upper) -> Option<NdMessage> {
        let Upper::Icmp6 { ty, l4 } = upper else {
            return None;
        };
        let fixed = match ty {
            ND_ROUTER_SOLICIT => 8,
            ND_ROUTER_ADVERT => 16,
            ND_NEIGHBOR_SOLICIT | ND_NEIGHBOR_ADVERT => 24,
            ND_REDIRECT => 40,
            _ => return None,
        };
        Some(NdMessage {
            ty,
            l4,
            options: walk_nd_options(w, l4 + fixed),
        })
    }

    /// The NS or NA target (16 bytes at `l4 + 8`), when the fixed part fits.
    fn target(&self, w: &Window) -> Option<Ipv6Addr> {
        w.ipv6(self.l4 + 8)
    }
}

/// IPv6 4: the option walk from `o` (the end of the fixed part) to the end
/// of the packet (`E`, or the parse window's end if that is sooner). `None`
/// if the fixed part does not fit or the walk is malformed.
fn walk_nd_options(w: &Window, mut o: usize) -> Option<NdOptions> {
    if o > w.len() {
        return None;
    }
    let mut found = NdOptions {
        has_source_ll: false,
        ll_addrs: Vec::new(),
    };
    for _ in 0..MAX_ND_OPTS {
        if o >= w.len() {
            return Some(found);
        }
        let ty = w.u8(o)?;
        let len = usize::from(w.u8(o + 1)?);
        // A zero length would loop forever; RFC 4861 says discard.
        if len == 0 || !w.fits(o, 8 * len) {
            return None;
        }
        if ty == ND_OPT_SOURCE_LL {
            found.has_source_ll = true;
        }
        if (ty == ND_OPT_SOURCE_LL || ty == ND_OPT_TARGET_LL) && len == 1 {
            found.ll_addrs.push(w.array(o + 2)?);
        }
        o += 8 * len;
    }
    // More options than MAX_ND_OPTS before the end of the packet.
    (o >= w.len()).then_some(found)
}

/// A solicited-node multicast group, ff02::1:ffXX:XXXX (RFC 4291 2.7.1):
/// where DAD probes go.
fn is_solicited_node(a: Ipv6Addr) -> bool {
    const PREFIX: [u8; 13] = [0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0xff];
    a.octets().starts_with(&PREFIX)
}

/// "IPv6 (0x86dd), header at 14".
fn ipv6_from_guest(s: &Source, w: &Window) -> Check {
    let p = s.p;
    // 1.
    let ip = Ipv6::parse(w)?;
    // The payload length ends the packet: no extension header, upper-layer
    // header or ND option is read beyond it.
    let w = &w.ending_at(ip.end);
    // 2.
    let chain = walk_extension_headers(w, ip.next_header)?;
    // 3.
    let upper = Upper::parse(w, &chain)?;
    // 4. (Judged in 5 and 6.)
    let nd = NdMessage::parse(w, upper);
    // 5.
    ipv6_source(s, &ip, upper, nd.as_ref())?;
    // 6.
    if let Some(nd) = &nd {
        nd_checks(s, w, &ip, &chain, nd)?;
    }
    // 7. DHCPv6 server or relay messages come from port 547 or go to the
    // client port 546 (clients accept a reply whatever its source port).
    // Clients send from their link-local address, which 5 already governs:
    // the option `dhcp_client` adds nothing for IPv6.
    let ports = upper.udp_ports();
    let dhcp6_server =
        ports.is_some_and(|p| p.sport == DHCP6_SERVER_PORT || p.dport == DHCP6_CLIENT_PORT);
    ensure(!dhcp6_server || p.options.dhcp_server, Reason::DhcpServer)?;
    // 8. Multicast that ND, MLD and DHCPv6 clients need passes without a
    // listed destination; everything else (non-first fragments included)
    // needs one.
    if p.mode == Mode::Isolated {
        let nd_like = matches!(
            upper.icmp6_type(),
            Some(ND_ROUTER_SOLICIT..=ND_NEIGHBOR_ADVERT)
        );
        let dhcp6_client = ports.is_some_and(|p| p.are(DHCP6_CLIENT_PORT, DHCP6_SERVER_PORT));
        let bootstrap_multicast =
            ip.dst.is_multicast() && (nd_like || upper.is_mld_report() || dhcp6_client);
        ensure(
            p.allows_destination(IpAddr::V6(ip.dst)) || bootstrap_multicast,
            Reason::Isolation,
        )?;
    }
    // 9.
    Ok(())
}

/// IPv6 5: the source address.
fn ipv6_source(s: &Source, ip: &Ipv6, upper: Upper, nd: Option<&NdMessage>) -> Check {
    if ip.src.is_unspecified() {
        // `::` is decided here, even if `ipv6` holds `::/0`: only DAD
        // probes and MLD reports are sent before the guest has an address.
        let dad_probe = nd.is_some_and(|nd| {
            nd.ty == ND_NEIGHBOR_SOLICIT
                && is_solicited_node(ip.dst)
                && nd.options.as_ref().is_some_and(|o| !o.has_source_ll)
        });
        return ensure(dad_probe || upper.is_mld_report(), Reason::Ipv6Spoof);
    }
    // In `ipv6`, or an allowed link-local address.
    if s.allows_v6(ip.src) {
        return Ok(());
    }
    // A disallowed fe80::/64 source has its own reason: usually a guest with
    // random interface identifiers that needs `ipv6_link_local = any`.
    if is_link_local_64(ip.src) {
        Err(Reason::Ipv6LinkLocal)
    } else {
        Err(Reason::Ipv6Spoof)
    }
}

/// IPv6 6: the checks of ND messages (ICMPv6 133..137).
fn nd_checks(s: &Source, w: &Window, ip: &Ipv6, chain: &Chain, nd: &NdMessage) -> Check {
    const MALFORMED: Reason = Reason::NdMalformed;
    // 1. Hop limit 255 proves the message was not forwarded (RFC 4861).
    ensure(ip.hop_limit == 255, MALFORMED)?;
    // 2. RFC 6980: no ND in fragments.
    ensure(!chain.fragmented, MALFORMED)?;
    // 3.
    let options = nd.options.as_ref().ok_or(MALFORMED)?;
    // 4. RA guard: only a guest that is a router may announce routes.
    ensure(
        !matches!(nd.ty, ND_ROUTER_ADVERT | ND_REDIRECT) || s.p.options.router,
        Reason::RaGuard,
    )?;
    // 5. An NA claims its target: same rule as a source, `::` never.
    if nd.ty == ND_NEIGHBOR_ADVERT {
        let target = nd.target(w).ok_or(MALFORMED)?;
        ensure(
            !target.is_unspecified() && s.allows_v6(target),
            Reason::NdSpoof,
        )?;
    }
    // 6. A DAD probe (an NS from `::`, which 5 allowed only as DAD) makes
    // the target's owner give its address up: same rule as an NA's.
    if nd.ty == ND_NEIGHBOR_SOLICIT && ip.src.is_unspecified() {
        let target = nd.target(w).ok_or(MALFORMED)?;
        ensure(
            !target.is_unspecified() && s.allows_v6(target),
            Reason::DadForeign,
        )?;
    }
    // 7. Every link-layer address option must name the MAC the frame came
    // from, or the guest would redirect its neighbours' traffic elsewhere.
    ensure(
        options.ll_addrs.iter().all(|a| *a == s.mac),
        Reason::NdSpoof,
    )
}

// ---------------------------------------------------------------------------
// To the guest (locked and isolated, `egress_filter` on)
// ---------------------------------------------------------------------------

/// "To the guest", steps 1 to 7.
fn to_guest(p: &Policy, w: &Window, eth: &Ethernet, configured_v4_empty: bool) -> Check {
    let unicast_to_guest = guest_macs(p).any(|m| m.0 == eth.dst);
    // 1. Unknown unicast flooded by the bridge: another guest's traffic.
    ensure(
        unicast_to_guest || is_multicast_mac(&eth.dst),
        Reason::SniffMac,
    )?;
    // 2. Dispatch; a VLAN tag is an EtherType like any other here (7).
    match eth.ethertype {
        // 3.
        ETH_P_ARP => arp_to_guest(p, w),
        // 4 and 6.
        ETH_P_IPV4 => ipv4_to_guest(p, w, unicast_to_guest, configured_v4_empty),
        // 5 and 6.
        ETH_P_IPV6 => ipv6_to_guest(p, w, unicast_to_guest),
        // 7. Other EtherTypes.
        _ => Ok(()),
    }
}

/// The guest's MACs (to the guest 1): `mac`, the pairs' and the virtual
/// MACs in use.
fn guest_macs(p: &Policy) -> impl Iterator<Item = MacAddr> + '_ {
    std::iter::once(p.mac)
        .chain(p.pairs.iter().map(|pair| pair.mac))
        .chain(p.vrrp.iter().flat_map(Vrrp::macs))
}

/// One of the guest's IPv4 addresses: its own, its pairs' or a virtual
/// one, whichever of its MACs the frame goes to.
fn guest_has_v4(p: &Policy, a: Ipv4Addr) -> bool {
    p.allows_v4(a)
        || p.pairs
            .iter()
            .any(|pair| pair.ipv4.iter().any(|c| c.contains(a)))
        || p.vrrp.iter().any(|v| v.ipv4.iter().any(|c| c.contains(a)))
}

/// One of the guest's IPv6 addresses: its own and allowed link-local
/// ones, its pairs' with their link-local ones, or a virtual one.
fn guest_has_v6(p: &Policy, a: Ipv6Addr) -> bool {
    p.allows_v6(a)
        || p.pairs.iter().any(|pair| {
            pair.ipv6.iter().any(|c| c.contains(a))
                || link_local_allowed(p.options.link_local, pair.mac, a)
        })
        || p.vrrp.iter().any(|v| v.ipv6.iter().any(|c| c.contains(a)))
}

/// "To the guest" 3: ARP that concerns the guest's own addresses, whatever
/// the destination MAC and opcode.
fn arp_to_guest(p: &Policy, w: &Window) -> Check {
    let arp = Arp::parse(w)?;
    arp.check_format()?;
    ensure(guest_has_v4(p, arp.tpa), Reason::SniffArp)
}

/// "To the guest" 4 (IPv4 unicast to one of the guest's MACs) and 6.
fn ipv4_to_guest(p: &Policy, w: &Window, unicast: bool, configured_v4_empty: bool) -> Check {
    let trusted_servers_only = !p.dhcp_servers.is_empty();
    if !unicast && !trusted_servers_only && !p.options.learn_dhcp {
        // 7. Broadcast and multicast IPv4 is not looked into, unless
        // learning (section 8) must find the DHCP replies in it.
        return Ok(());
    }
    // 4, 6. Header, UDP ports and ICMP header as from the guest, 1 and 2:
    // a cut UDP or ICMP header is `ipv4_malformed` whatever the
    // destination.
    let ip = Ipv4::parse(w)?;
    let w = &w.ending_at(ip.end);
    let ports = ip.udp_ports(w)?;
    ip.icmp_type(w)?;
    // 4. The DHCP reply exception: a server may unicast the OFFER/ACK to
    // the client's MAC before the client has an address. Its client runs
    // on `mac`, so only the vif's own configured list counts (learned
    // addresses do not: a renewal goes to the learned address itself).
    if unicast {
        let dhcp_reply = ports.is_some_and(|p| p.are(DHCP4_SERVER_PORT, DHCP4_CLIENT_PORT));
        ensure(
            guest_has_v4(p, ip.dst) || (configured_v4_empty && dhcp_reply),
            Reason::SniffIp,
        )?;
    }
    // 6. A client takes an offer from whatever port it comes: the
    // destination port alone makes a server message.
    let server_message = ports.is_some_and(|p| p.dport == DHCP4_CLIENT_PORT);
    if trusted_servers_only && server_message {
        ensure(
            p.dhcp_servers.contains(&IpAddr::V4(ip.src)),
            Reason::DhcpUntrusted,
        )?;
    }
    // 7.
    Ok(())
}

/// "To the guest" 5 (IPv6 unicast to one of the guest's MACs) and 6.
fn ipv6_to_guest(p: &Policy, w: &Window, unicast: bool) -> Check {
    let trusted_servers_only = !p.dhcp_servers.is_empty();
    if !unicast && !trusted_servers_only {
        // 7. Broadcast and multicast IPv6 is not looked into.
        return Ok(());
    }
    // 5, 6. The fixed header as from the guest, 1.
    let ip = Ipv6::parse(w)?;
    // 5. Only the destination address matters: no extension header walk.
    if unicast {
        ensure(guest_has_v6(p, ip.dst), Reason::SniffIp)?;
    }
    if !trusted_servers_only {
        // 7.
        return Ok(());
    }
    // 6. As from the guest, 2 and 3: a server message hidden behind
    // extension headers is still one, and a chain that cannot be followed
    // could hide one.
    let w = &w.ending_at(ip.end);
    let chain = walk_extension_headers(w, ip.next_header)?;
    let upper = Upper::parse(w, &chain)?;
    let server_message = upper
        .udp_ports()
        .is_some_and(|p| p.dport == DHCP6_CLIENT_PORT);
    if server_message {
        ensure(
            p.dhcp_servers.contains(&IpAddr::V6(ip.src)),
            Reason::DhcpUntrusted,
        )?;
    }
    // 7.
    Ok(())
}

// ---------------------------------------------------------------------------
// Learning addresses from DHCP (section 8)
// ---------------------------------------------------------------------------

mod learning {
    use super::*;

    // BOOTP fields and DHCP options (RFC 2131, RFC 2132) learning reads.
    const BOOTREPLY: u8 = 2;
    const BOOTP_CIADDR: usize = 12;
    const BOOTP_YIADDR: usize = 16;
    const BOOTP_COOKIE: usize = 236;
    const BOOTP_OPTIONS: usize = 240;
    const MAGIC: [u8; 4] = [99, 130, 83, 99];
    const OPT_PAD: u8 = 0;
    const OPT_REQUESTED_ADDRESS: u8 = 50;
    const OPT_LEASE_TIME: u8 = 51;
    const OPT_MESSAGE_TYPE: u8 = 53;
    const OPT_END: u8 = 255;
    const DHCPDECLINE: u8 = 4;
    const DHCPACK: u8 = 5;
    const DHCPNAK: u8 = 6;
    const DHCPRELEASE: u8 = 7;

    /// After a frame passed on a learning interface: what it teaches.
    pub(super) fn after_pass(
        p: &Policy,
        learned: &mut Learned,
        now_s: u32,
        direction: Direction,
        frame: &[u8],
    ) {
        let w = Window::new(frame);
        let Some(eth) = Ethernet::parse(&w) else {
            return;
        };
        // Only the vif's own MAC leases (a pair's or virtual MAC's DHCP
        // is not learned), and only IPv4.
        let mac_ok = match direction {
            Direction::FromGuest => eth.src == p.mac.0,
            Direction::ToGuest => true,
        };
        if eth.ethertype != ETH_P_IPV4 || !mac_ok {
            return;
        }
        let Ok(ip) = Ipv4::parse(&w) else {
            return;
        };
        let w = &w.ending_at(ip.end);
        let Ok(Some(ports)) = ip.udp_ports(w) else {
            return;
        };
        match direction {
            Direction::ToGuest if ports.are(DHCP4_SERVER_PORT, DHCP4_CLIENT_PORT) => {
                let Some(m) = message(w, ip.l4 + 8, BOOTREPLY, p.mac.0, OPT_LEASE_TIME) else {
                    return;
                };
                match (m.kind, m.value) {
                    (DHCPACK, Some(lease_s)) => {
                        let expires = now_s
                            .saturating_add(lease_s)
                            .saturating_add(p.options.learn_grace_s);
                        learn(learned, now_s, m.yiaddr, expires);
                    }
                    (DHCPNAK, _) => learned.entries = Default::default(),
                    _ => {}
                }
            }
            Direction::FromGuest if ports.are(DHCP4_CLIENT_PORT, DHCP4_SERVER_PORT) => {
                let Some(m) = message(w, ip.l4 + 8, BOOTREQUEST, p.mac.0, OPT_REQUESTED_ADDRESS)
                else {
                    return;
                };
                let gone = match (m.kind, m.value) {
                    (DHCPRELEASE, _) => m.ciaddr,
                    (DHCPDECLINE, Some(a)) => Ipv4Addr::from(a),
                    _ => return,
                };
                for e in &mut learned.entries {
                    if e.is_some_and(|(a, _)| a == gone) {
                        *e = None;
                    }
                }
            }
            _ => {}
        }
    }

    /// Takes the entry holding `addr` already, else the first free or
    /// expired one, else the first of those that expire first.
    fn learn(learned: &mut Learned, now_s: u32, addr: Ipv4Addr, expires: u32) {
        if addr.is_unspecified() {
            return;
        }
        let slot = learned
            .entries
            .iter()
            .position(|e| e.is_some_and(|(a, _)| a == addr))
            .unwrap_or_else(|| {
                let live_expiry = |e: &Option<(Ipv4Addr, u32)>| match e {
                    Some((_, x)) if *x > now_s => *x,
                    _ => 0,
                };
                // `min_by_key` keeps the first of equal keys.
                (0..learned.entries.len())
                    .min_by_key(|i| live_expiry(&learned.entries[*i]))
                    .unwrap_or(0)
            });
        learned.entries[slot] = Some((addr, expires));
    }

    /// A DHCP message, as learning reads it.
    struct Message {
        kind: u8,
        ciaddr: Ipv4Addr,
        yiaddr: Ipv4Addr,
        /// The 4-byte value of the wanted option.
        value: Option<u32>,
    }

    /// The BOOTP message at `m` of `op`, naming `mac` over Ethernet, with
    /// the magic cookie; its message type and the option `want`.
    fn message(w: &Window, m: usize, op: u8, mac: [u8; 6], want: u8) -> Option<Message> {
        if w.u8(m + BOOTP_OP)? != op
            || w.u8(m + BOOTP_HTYPE)? != HTYPE_ETHERNET
            || w.u8(m + BOOTP_HLEN)? != HLEN_ETHERNET
            || w.array::<6>(m + BOOTP_CHADDR)? != mac
            || w.array::<4>(m + BOOTP_COOKIE)? != MAGIC
        {
            return None;
        }
        let ciaddr = w.ipv4(m + BOOTP_CIADDR)?;
        let yiaddr = w.ipv4(m + BOOTP_YIADDR)?;
        let (kind, value) = options(w, m + BOOTP_OPTIONS, want);
        Some(Message {
            kind,
            ciaddr,
            yiaddr,
            value,
        })
    }

    /// The option walk: the first MAX_DHCP_OPTS options within the packet
    /// and the window, stopping at the end option, at what cannot be read,
    /// or once it has both the message type and the wanted option.
    fn options(w: &Window, mut o: usize, want: u8) -> (u8, Option<u32>) {
        let (mut kind, mut value) = (0, None);
        for _ in 0..filter_common::MAX_DHCP_OPTS {
            let Some(code) = w.u8(o) else {
                break;
            };
            if code == OPT_END {
                break;
            }
            let len = if code == OPT_PAD {
                0
            } else {
                match w.u8(o + 1) {
                    Some(l) => usize::from(l),
                    None => break,
                }
            };
            if code == OPT_MESSAGE_TYPE && len == 1 {
                let Some(t) = w.u8(o + 2) else {
                    break;
                };
                kind = t;
            } else if code == want && len == 4 {
                let Some(b) = w.array::<4>(o + 2) else {
                    break;
                };
                value = Some(u32::from_be_bytes(b));
            }
            if kind != 0 && value.is_some() {
                break;
            }
            o += if code == OPT_PAD { 1 } else { 2 + len };
            if o >= PARSE_WINDOW {
                break;
            }
        }
        (kind, value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_reads_stop_at_the_parse_window() {
        let frame = vec![0xab; PARSE_WINDOW + 100];
        let w = Window::new(&frame);
        assert_eq!(w.len(), PARSE_WINDOW);
        assert!(w.fits(PARSE_WINDOW - 2, 2));
        assert!(!w.fits(PARSE_WINDOW - 1, 2));
        assert!(!w.fits(usize::MAX, 2), "overflow must not fit");
        assert_eq!(w.u16(PARSE_WINDOW - 1), None);
        assert_eq!(w.array::<4>(usize::MAX - 1), None);
    }

    #[test]
    fn solicited_node_groups_are_recognised() {
        let yes: Ipv6Addr = "ff02::1:ff12:3456".parse().expect("literal");
        let no: Ipv6Addr = "ff02::1:fe12:3456".parse().expect("literal");
        let all_nodes: Ipv6Addr = "ff02::1".parse().expect("literal");
        assert!(is_solicited_node(yes));
        assert!(!is_solicited_node(no));
        assert!(!is_solicited_node(all_nodes));
    }
}
