//! Reading the sampled drop events the datapath sends on the pinned `EVENTS`
//! ring buffer. The datapath rate-limits them per interface, so a flood of
//! spoofed frames cannot flood this reader.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::Path;
use std::time::Duration;

use aya::maps::{Map, MapData, MapError, RingBuf};
use filter_common::{Direction, DropEvent, Reason, family, map_names};

use crate::policy::MacAddr;

#[derive(Debug, thiserror::Error)]
pub enum EventsError {
    #[error("opening the pinned event ring buffer {path}")]
    Open {
        path: String,
        #[source]
        source: Box<MapError>,
    },
    #[error("waiting for events")]
    Poll(#[source] std::io::Error),
}

pub struct EventReader {
    ring: RingBuf<MapData>,
}

impl EventReader {
    /// Opens `maps_dir/EVENTS`.
    pub fn open(maps_dir: &Path) -> Result<EventReader, EventsError> {
        let path = maps_dir.join(map_names::EVENTS);
        let err = |e| EventsError::Open {
            path: path.display().to_string(),
            source: Box::new(e),
        };
        let data = MapData::from_pin(&path).map_err(err)?;
        let map = Map::from_map_data(data).map_err(err)?;
        let ring = RingBuf::try_from(map).map_err(err)?;
        Ok(EventReader { ring })
    }

    /// The events available now, after waiting up to `wait` for the first.
    pub fn poll(&mut self, wait: Duration) -> Result<Vec<DropEvent>, EventsError> {
        let mut out = self.drain();
        if !out.is_empty() {
            return Ok(out);
        }
        crate::sys::poll::wait_readable(&self.ring, wait).map_err(EventsError::Poll)?;
        out.extend(self.drain());
        Ok(out)
    }

    fn drain(&mut self) -> Vec<DropEvent> {
        let mut out = Vec::new();
        while let Some(item) = self.ring.next() {
            // The datapath writes whole DropEvents.
            if let Some(e) = crate::sys::poll::read_record::<DropEvent>(&item) {
                out.push(e);
            }
        }
        out
    }
}

/// An event's fields in words an operator reads.
pub struct Described {
    pub ifindex: u32,
    pub direction: &'static str,
    pub reason: &'static str,
    pub ethertype: u16,
    pub src_mac: String,
    pub dst_mac: String,
    pub src: Option<String>,
    pub dst: Option<String>,
    pub len: u32,
}

pub fn describe(e: &DropEvent) -> Described {
    let addr = |b: &[u8; 16]| match e.family {
        family::IPV4 => Some(Ipv4Addr::new(b[0], b[1], b[2], b[3]).to_string()),
        family::IPV6 => Some(Ipv6Addr::from(*b).to_string()),
        _ => None,
    };
    Described {
        ifindex: e.ifindex,
        direction: Direction::from_u8(e.direction).map_or("unknown", Direction::name),
        reason: Reason::from_u8(e.reason).map_or("unknown", Reason::name),
        ethertype: e.ethertype,
        src_mac: MacAddr(e.src_mac).to_string(),
        dst_mac: MacAddr(e.dst_mac).to_string(),
        src: addr(&e.src_addr),
        dst: addr(&e.dst_addr),
        len: e.len,
    }
}
