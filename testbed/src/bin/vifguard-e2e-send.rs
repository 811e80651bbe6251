//! `vifguard-e2e-send`: crafted IPv6 Neighbor Discovery frames from inside
//! a guest of the Xen end-to-end run (`xen-e2e/domu-init.sh`), which busybox
//! cannot send. Frames come from the interface's own MAC, with hop limit
//! 255 and valid checksums, so the one thing wrong with each is what the
//! check is about:
//!
//! ```text
//! vifguard-e2e-send na IFACE SRC TARGET [COUNT]
//!     unsolicited Neighbor Advertisement (override flag) to ff02::1 from SRC
//!     claiming TARGET is at IFACE's MAC (target link-layer option)
//! vifguard-e2e-send ra IFACE PREFIX [COUNT]
//!     Router Advertisement to ff02::1 from IFACE's derived link-local
//!     address, router lifetime 1800 s, prefix PREFIX/64 (on-link,
//!     autonomous), source link-layer option
//! ```
//!
//! COUNT frames (default 3), 100 ms apart. Exit codes as the guest's
//! commands use them: 0 sent, 2 could not send (bad arguments, no
//! interface, socket error).

use std::net::Ipv6Addr;
use std::process::ExitCode;
use std::time::Duration;

use testbed::frames::{ALL_NODES, Frame, Mac, ipv6_multicast_mac, link_local, na_flags};
use testbed::netns::RawSocket;

const USAGE: &str =
    "usage: vifguard-e2e-send na IFACE SRC TARGET [COUNT] | ra IFACE PREFIX [COUNT]";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(n) => {
            println!("vifguard-e2e-send: sent {n} frame(s)");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("vifguard-e2e-send: {e}");
            ExitCode::from(2)
        }
    }
}

fn run(args: &[String]) -> Result<usize, String> {
    let (kind, rest) = args.split_first().ok_or(USAGE)?;
    let iface = rest.first().ok_or(USAGE)?;
    let mac = own_mac(iface)?;
    let addr = |i: usize| -> Result<Ipv6Addr, String> {
        let s = rest.get(i).ok_or(USAGE)?;
        s.parse().map_err(|e| format!("{s:?}: {e}"))
    };
    let count = |i: usize| -> Result<usize, String> {
        rest.get(i).map_or(Ok(3), |s| {
            s.parse().map_err(|e| format!("count {s:?}: {e}"))
        })
    };
    let to_all = ipv6_multicast_mac(ALL_NODES);
    let (frame, n) = match kind.as_str() {
        "na" => (
            Frame::eth(mac, to_all)
                .ipv6(addr(1)?, ALL_NODES)
                .neighbor_advertisement(addr(2)?, na_flags::OVERRIDE)
                .tlla(mac)
                .build(),
            count(3)?,
        ),
        "ra" => (
            Frame::eth(mac, to_all)
                .ipv6(link_local(mac), ALL_NODES)
                .router_advertisement()
                .slla(mac)
                .prefix_info(addr(1)?, 64)
                .build(),
            count(2)?,
        ),
        _ => return Err(USAGE.into()),
    };
    let ifindex = ifindex(iface)?;
    let sock = RawSocket::bind(ifindex).map_err(|e| format!("AF_PACKET socket on {iface}: {e}"))?;
    for i in 0..n {
        if i > 0 {
            std::thread::sleep(Duration::from_millis(100));
        }
        sock.try_send(&frame)
            .map_err(|e| format!("send on {iface}: {e}"))?;
    }
    Ok(n)
}

fn own_mac(iface: &str) -> Result<Mac, String> {
    let path = format!("/sys/class/net/{iface}/address");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
    let bytes: Vec<u8> = text
        .trim()
        .split(':')
        .map(|b| u8::from_str_radix(b, 16))
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{path}: {e}"))?;
    bytes
        .try_into()
        .map_err(|_| format!("{path}: not a 6-byte MAC: {}", text.trim()))
}

fn ifindex(iface: &str) -> Result<i32, String> {
    let path = format!("/sys/class/net/{iface}/ifindex");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
    text.trim().parse().map_err(|e| format!("{path}: {e}"))
}
