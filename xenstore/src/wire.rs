//! The wire protocol of Xen's `docs/misc/xenstore.txt` (`io/xs_wire.h`):
//! message header, message types, string payloads and path rules. Shared
//! by the client and by the test daemon that stands in for xenstored.
//!
//! Every message, in both directions, is a 16-byte header of four `u32` in
//! host byte order (little-endian on the x86 and Arm hosts Xen runs on):
//! `type`, `req_id`, `tx_id`, `len`, followed by `len` (at most 4096) bytes
//! of payload. Request payloads are NUL-terminated strings (a `WRITE` value
//! is raw bytes after the path's NUL); error replies have type `ERROR` and
//! the errno name (`ENOENT`, `EACCES`, ...) as payload.

use std::fmt;

/// Largest payload either side may send (`XENSTORE_PAYLOAD_MAX`).
pub const PAYLOAD_MAX: usize = 4096;
/// Size of the message header (`struct xsd_sockmsg`).
pub const HEADER_LEN: usize = 16;
/// Longest absolute path (`XENSTORE_ABS_PATH_MAX`).
pub const ABS_PATH_MAX: usize = 3072;
/// A Xen domain id (0..=65535 on the wire, decimal).
pub type Domid = u32;

/// Message types of `enum xsd_sockmsg_type`.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MsgType {
    /// Formerly `DEBUG`.
    Control = 0,
    Directory = 1,
    Read = 2,
    GetPerms = 3,
    Watch = 4,
    Unwatch = 5,
    TransactionStart = 6,
    TransactionEnd = 7,
    Introduce = 8,
    Release = 9,
    GetDomainPath = 10,
    Write = 11,
    Mkdir = 12,
    Rm = 13,
    SetPerms = 14,
    WatchEvent = 15,
    Error = 16,
    IsDomainIntroduced = 17,
    Resume = 18,
    SetTarget = 19,
    /// Removed in Xen 4.9; daemons answer it with an error.
    Restrict = 20,
    ResetWatches = 21,
    DirectoryPart = 22,
}

impl MsgType {
    pub const fn from_u32(v: u32) -> Option<MsgType> {
        use MsgType::*;
        Some(match v {
            0 => Control,
            1 => Directory,
            2 => Read,
            3 => GetPerms,
            4 => Watch,
            5 => Unwatch,
            6 => TransactionStart,
            7 => TransactionEnd,
            8 => Introduce,
            9 => Release,
            10 => GetDomainPath,
            11 => Write,
            12 => Mkdir,
            13 => Rm,
            14 => SetPerms,
            15 => WatchEvent,
            16 => Error,
            17 => IsDomainIntroduced,
            18 => Resume,
            19 => SetTarget,
            20 => Restrict,
            21 => ResetWatches,
            22 => DirectoryPart,
            _ => return None,
        })
    }

    /// The name xenstore.txt uses (`READ`, `GET_PERMS`, ...).
    pub const fn name(self) -> &'static str {
        use MsgType::*;
        match self {
            Control => "CONTROL",
            Directory => "DIRECTORY",
            Read => "READ",
            GetPerms => "GET_PERMS",
            Watch => "WATCH",
            Unwatch => "UNWATCH",
            TransactionStart => "TRANSACTION_START",
            TransactionEnd => "TRANSACTION_END",
            Introduce => "INTRODUCE",
            Release => "RELEASE",
            GetDomainPath => "GET_DOMAIN_PATH",
            Write => "WRITE",
            Mkdir => "MKDIR",
            Rm => "RM",
            SetPerms => "SET_PERMS",
            WatchEvent => "WATCH_EVENT",
            Error => "ERROR",
            IsDomainIntroduced => "IS_DOMAIN_INTRODUCED",
            Resume => "RESUME",
            SetTarget => "SET_TARGET",
            Restrict => "RESTRICT",
            ResetWatches => "RESET_WATCHES",
            DirectoryPart => "DIRECTORY_PART",
        }
    }
}

impl fmt::Display for MsgType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The message header. `ty` stays a raw `u32` so a daemon can answer types
/// it does not know.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    pub ty: u32,
    pub req_id: u32,
    pub tx_id: u32,
    pub len: u32,
}

impl Header {
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[0..4].copy_from_slice(&self.ty.to_le_bytes());
        b[4..8].copy_from_slice(&self.req_id.to_le_bytes());
        b[8..12].copy_from_slice(&self.tx_id.to_le_bytes());
        b[12..16].copy_from_slice(&self.len.to_le_bytes());
        b
    }

    pub fn decode(b: &[u8; HEADER_LEN]) -> Header {
        let word = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        Header {
            ty: word(0),
            req_id: word(4),
            tx_id: word(8),
            len: word(12),
        }
    }
}

/// Header plus payload in one buffer, ready to send. `None` when the payload
/// is longer than [`PAYLOAD_MAX`].
pub fn encode_message(ty: u32, req_id: u32, tx_id: u32, payload: &[u8]) -> Option<Vec<u8>> {
    if payload.len() > PAYLOAD_MAX {
        return None;
    }
    let len = u32::try_from(payload.len()).ok()?;
    let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
    out.extend_from_slice(
        &Header {
            ty,
            req_id,
            tx_id,
            len,
        }
        .encode(),
    );
    out.extend_from_slice(payload);
    Some(out)
}

/// Each string followed by a NUL, as requests and list replies carry them.
pub fn join_strings<S: AsRef<[u8]>>(parts: &[S]) -> Vec<u8> {
    let mut out = Vec::new();
    for p in parts {
        out.extend_from_slice(p.as_ref());
        out.push(0);
    }
    out
}

/// Splits a payload of NUL-terminated strings. A final string without its
/// NUL is returned too; nothing after the last NUL means no extra string.
pub fn split_strings(payload: &[u8]) -> Vec<&[u8]> {
    let mut out: Vec<&[u8]> = payload.split(|&b| b == 0).collect();
    if payload.last() == Some(&0) || payload.is_empty() {
        out.pop();
    }
    out
}

/// Checks a path as xenstored does: absolute, characters `[A-Za-z0-9-/_@]`,
/// no doubled or trailing slash (except the root), at most
/// [`ABS_PATH_MAX`] bytes. `@` paths (special watches) are accepted.
pub fn valid_path(path: &str) -> bool {
    if path.starts_with('@') {
        return path.len() > 1 && path.bytes().all(valid_path_byte);
    }
    if !path.starts_with('/') || path.len() > ABS_PATH_MAX {
        return false;
    }
    if path == "/" {
        return true;
    }
    !path.ends_with('/') && !path.contains("//") && path.bytes().all(valid_path_byte)
}

fn valid_path_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'/' | b'_' | b'@')
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn header_roundtrip_is_little_endian() {
        let h = Header {
            ty: MsgType::Write as u32,
            req_id: 0x0102_0304,
            tx_id: 7,
            len: 5,
        };
        let b = h.encode();
        assert_eq!(&b[0..4], &[11, 0, 0, 0]);
        assert_eq!(&b[4..8], &[4, 3, 2, 1]);
        assert_eq!(&b[8..12], &[7, 0, 0, 0]);
        assert_eq!(&b[12..16], &[5, 0, 0, 0]);
        assert_eq!(Header::decode(&b), h);
    }

    #[test]
    fn message_encoding_and_limit() {
        let m = encode_message(MsgType::Read as u32, 1, 0, b"/a\0").unwrap();
        assert_eq!(m.len(), HEADER_LEN + 3);
        assert_eq!(&m[12..16], &[3, 0, 0, 0]);
        assert!(encode_message(2, 1, 0, &[b'x'; PAYLOAD_MAX]).is_some());
        assert!(encode_message(2, 1, 0, &[b'x'; PAYLOAD_MAX + 1]).is_none());
    }

    #[test]
    fn message_types_match_xs_wire() {
        assert_eq!(MsgType::Control as u32, 0);
        assert_eq!(MsgType::Write as u32, 11);
        assert_eq!(MsgType::Error as u32, 16);
        assert_eq!(MsgType::ResetWatches as u32, 21);
        assert_eq!(MsgType::DirectoryPart as u32, 22);
        for v in 0..=22 {
            assert_eq!(MsgType::from_u32(v).map(|t| t as u32), Some(v));
        }
        assert_eq!(MsgType::from_u32(23), None);
        assert_eq!(MsgType::GetPerms.name(), "GET_PERMS");
    }

    #[test]
    fn strings_split_and_join() {
        assert_eq!(join_strings(&["a", "bc"]), b"a\0bc\0");
        assert_eq!(split_strings(b"a\0bc\0"), vec![&b"a"[..], &b"bc"[..]]);
        assert_eq!(split_strings(b"a\0bc"), vec![&b"a"[..], &b"bc"[..]]);
        assert!(split_strings(b"").is_empty());
        assert_eq!(split_strings(b"\0"), vec![&b""[..]]);
    }

    #[test]
    fn paths_are_checked_like_xenstored() {
        assert!(valid_path("/"));
        assert!(valid_path("/local/domain/0/backend/vif/5/0"));
        assert!(valid_path("@releaseDomain"));
        assert!(!valid_path(""));
        assert!(!valid_path("local/domain"));
        assert!(!valid_path("/a/"));
        assert!(!valid_path("/a//b"));
        assert!(!valid_path("/a b"));
        assert!(!valid_path("/a.b"));
        assert!(!valid_path(&format!("/{}", "a".repeat(ABS_PATH_MAX))));
    }
}
