//! The simulated guests: domid `d` has the vif `vif<d>.0`, a MAC and an
//! IPv4 address derived from `d`, and its policy in the test xenstored as
//! xl writes it.

use std::net::Ipv4Addr;
use std::ops::RangeInclusive;
use std::path::Path;

use anyhow::{Context, Result, anyhow};
use testbed::frames::Mac;
use testbed::xenstored::TestXenstored;
use xenstore::XsError;

pub fn mac_of(domid: u32) -> Mac {
    [
        0x00,
        0x16,
        0x3e,
        0x10,
        (domid >> 8) as u8,
        (domid & 0xff) as u8,
    ]
}

pub fn mac_str(m: Mac) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Guest `domid`'s address in 198.18.0.0/15, the range set aside for
/// benchmarks (RFC 2544; the documentation ranges hold too few for
/// thousands of vifs): 250 guests per /24.
pub fn ip_of(domid: u32) -> Ipv4Addr {
    let block = domid / 250;
    Ipv4Addr::new(
        198,
        18 + (block / 256) as u8,
        (block % 256) as u8,
        (domid % 250 + 1) as u8,
    )
}

/// Entries of the SRC_V4 trie pinned under the bpffs root `root`.
pub fn trie_entries(root: &Path) -> Result<usize> {
    let dir = filter_user::datapath::pins::Layout::new(root).maps();
    let maps = filter_user::datapath::Maps::open_pinned(&dir)
        .with_context(|| format!("open the maps in {}", dir.display()))?;
    Ok(maps.extra_entries()?.values().map(|e| e.src_v4.len()).sum())
}

/// The vifs' `ip` nodes as the /24 around their address: one LPM trie
/// entry per vif instead of an address inline in the policy.
pub fn publish_prefixes(xs: &TestXenstored, domids: RangeInclusive<u32>) -> Result<()> {
    let mut c = xs
        .client()
        .map_err(|e| xenstore_error("xenstore client", e))?;
    for d in domids {
        let o = ip_of(d).octets();
        let node = format!("/local/domain/0/backend/vif/{d}/0/ip");
        c.write(&node, format!("{}.{}.{}.0/24", o[0], o[1], o[2]).as_bytes())
            .map_err(|e| xenstore_error(&format!("xenstore write {node}"), e))?;
    }
    Ok(())
}

pub fn vif_name(domid: u32) -> String {
    format!("vif{domid}.0")
}

/// What xl writes for a vif, plus vifguard's mode key: MAC, one address,
/// locked. Nodes owned by dom0 (trusted).
pub fn publish_policies(xs: &TestXenstored, domids: RangeInclusive<u32>) -> Result<()> {
    let mut c = xs
        .client()
        .map_err(|e| xenstore_error("xenstore client", e))?;
    for d in domids {
        let be = format!("/local/domain/0/backend/vif/{d}/0");
        for (k, v) in [
            ("mac", mac_str(mac_of(d))),
            ("ip", ip_of(d).to_string()),
            ("vifguard/mode", "locked".to_string()),
        ] {
            c.write(&format!("{be}/{k}"), v.as_bytes())
                .map_err(|e| xenstore_error(&format!("xenstore write {be}/{k}"), e))?;
        }
    }
    Ok(())
}

/// `what` failed with `e`, as one message: an `XsError` already names its
/// cause, which a context chain would print a second time.
fn xenstore_error(what: &str, e: XsError) -> anyhow::Error {
    anyhow!("{what}: {e}")
}
