//! A small xenstore client speaking the wire protocol of Xen's
//! `docs/misc/xenstore.txt` (`io/xs_wire.h`).
//!
//! Every message, in both directions, is a 16-byte header of four `u32` in
//! host byte order (little-endian on the x86 and Arm hosts Xen runs on):
//! `type`, `req_id`, `tx_id`, `len`, followed by `len` (at most 4096) bytes
//! of payload. Request payloads are NUL-terminated strings (a `WRITE` value
//! is raw bytes after the path's NUL); error replies have type `ERROR` and
//! the errno name (`ENOENT`, `EACCES`, ...) as payload.
//!
//! The client connects like libxenstore does: the unix socket named by
//! `XENSTORED_PATH`, else `/run/xenstored/socket` (and the older
//! `/var/run/xenstored/socket`), else the `/dev/xen/xenbus` device, which
//! carries the same framing. All I/O has a timeout so a hung daemon gives a
//! clear error instead of hanging a hotplug script.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::{Duration, Instant};

/// Largest payload either side may send (`XENSTORE_PAYLOAD_MAX`).
pub const PAYLOAD_MAX: usize = 4096;
/// Size of the message header (`struct xsd_sockmsg`).
pub const HEADER_LEN: usize = 16;
/// Longest absolute path (`XENSTORE_ABS_PATH_MAX`).
pub const ABS_PATH_MAX: usize = 3072;
/// Environment variable naming the daemon's socket (as libxenstore).
pub const ENV_SOCKET: &str = "XENSTORED_PATH";
/// Where xenstored listens on current hosts.
pub const DEFAULT_SOCKET: &str = "/run/xenstored/socket";
/// Where older hosts put it (usually a symlink to the above).
pub const LEGACY_SOCKET: &str = "/var/run/xenstored/socket";
/// The kernel's xenbus device, used when no socket is reachable.
pub const XENBUS_DEVICE: &str = "/dev/xen/xenbus";
/// Default time a single request may take.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

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

/// Access a domain has to a node (`n`, `r`, `w`, `b` on the wire).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Access {
    None,
    Read,
    Write,
    Both,
}

impl Access {
    pub const fn letter(self) -> char {
        match self {
            Access::None => 'n',
            Access::Read => 'r',
            Access::Write => 'w',
            Access::Both => 'b',
        }
    }

    pub const fn from_letter(c: char) -> Option<Access> {
        match c {
            'n' => Some(Access::None),
            'r' => Some(Access::Read),
            'w' => Some(Access::Write),
            'b' => Some(Access::Both),
            _ => None,
        }
    }

    pub const fn can_read(self) -> bool {
        matches!(self, Access::Read | Access::Both)
    }

    pub const fn can_write(self) -> bool {
        matches!(self, Access::Write | Access::Both)
    }
}

/// One `<letter><domid>` permission string, like `r5`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PermEntry {
    pub domid: Domid,
    pub access: Access,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid xenstore permission {0:?} (want n, r, w or b followed by a domid, e.g. r5)")]
pub struct PermParseError(pub String);

impl FromStr for PermEntry {
    type Err = PermParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || PermParseError(s.to_string());
        let mut chars = s.chars();
        let access = chars.next().and_then(Access::from_letter).ok_or_else(bad)?;
        let digits = chars.as_str();
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let domid: Domid = digits.parse().map_err(|_| bad())?;
        if domid > 0xffff {
            return Err(bad());
        }
        Ok(PermEntry { domid, access })
    }
}

impl fmt::Display for PermEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.access.letter(), self.domid)
    }
}

/// The permissions of a node: the first entry names the owner and the
/// access of every domain not listed; the others are per-domain entries.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Perms {
    pub owner: Domid,
    pub default: Access,
    pub acl: Vec<PermEntry>,
}

impl Perms {
    /// Owned by `owner`, no access for anyone else (`n<owner>`).
    pub const fn owned_by(owner: Domid) -> Perms {
        Perms {
            owner,
            default: Access::None,
            acl: Vec::new(),
        }
    }

    /// From a list of permission strings, owner first (`["n0", "r5"]`).
    pub fn from_entries<S: AsRef<str>>(entries: &[S]) -> Result<Perms, PermParseError> {
        let mut it = entries.iter();
        let first = it
            .next()
            .ok_or_else(|| PermParseError(String::new()))?
            .as_ref()
            .parse::<PermEntry>()?;
        let acl = it
            .map(|s| s.as_ref().parse::<PermEntry>())
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Perms {
            owner: first.domid,
            default: first.access,
            acl,
        })
    }

    /// From a `GET_PERMS` reply payload.
    pub fn from_wire(payload: &[u8]) -> Result<Perms, PermParseError> {
        let parts = split_strings(payload)
            .into_iter()
            .map(|p| {
                std::str::from_utf8(p)
                    .map(str::to_string)
                    .map_err(|_| PermParseError(String::from_utf8_lossy(p).into_owned()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Perms::from_entries(&parts)
    }

    /// The permission strings, owner first.
    pub fn entries(&self) -> Vec<PermEntry> {
        let mut v = Vec::with_capacity(1 + self.acl.len());
        v.push(PermEntry {
            domid: self.owner,
            access: self.default,
        });
        v.extend_from_slice(&self.acl);
        v
    }

    /// The `SET_PERMS` payload after the path.
    pub fn to_wire(&self) -> Vec<u8> {
        let strings: Vec<String> = self.entries().iter().map(|e| e.to_string()).collect();
        join_strings(&strings)
    }

    /// What an unprivileged domain may do with the node, as C xenstored's
    /// `perm_for_conn` decides: the owner may do everything, the first ACL
    /// entry naming the domain applies next, else the default.
    pub fn access_for(&self, domid: Domid) -> Access {
        if domid == self.owner {
            return Access::Both;
        }
        self.acl
            .iter()
            .find(|e| e.domid == domid)
            .map_or(self.default, |e| e.access)
    }
}

impl fmt::Display for Perms {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.entries().iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl FromStr for Perms {
    type Err = PermParseError;

    /// Space- or comma-separated permission strings, owner first
    /// (`"n0 r5"`, as `xenstore-chmod` takes them).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let parts: Vec<&str> = s
            .split(|c: char| c.is_whitespace() || c == ',')
            .filter(|p| !p.is_empty())
            .collect();
        Perms::from_entries(&parts)
    }
}

/// Errors of the client. Each names the daemon endpoint or the path.
#[derive(Debug, thiserror::Error)]
pub enum XsError {
    #[error(
        "no xenstore daemon reachable (tried {tried}); is xenstored running? (set {ENV_SOCKET} to its socket)"
    )]
    NoDaemon { tried: String },
    #[error("cannot connect to xenstore at {endpoint}: {source}")]
    Connect {
        endpoint: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("xenstore at {endpoint} did not answer {op} {path} within {timeout:?}")]
    Timeout {
        endpoint: PathBuf,
        op: MsgType,
        path: String,
        timeout: Duration,
    },
    #[error("xenstore connection to {endpoint} failed during {op} {path}: {source}")]
    Io {
        endpoint: PathBuf,
        op: MsgType,
        path: String,
        #[source]
        source: io::Error,
    },
    #[error("xenstore node {path} does not exist")]
    NotFound { path: String },
    #[error("xenstore refused {op} {path}: permission denied (EACCES)")]
    Denied { op: MsgType, path: String },
    #[error("xenstore transaction conflicted with another writer (EAGAIN); retry")]
    Conflict,
    #[error("xenstore refused {op} {path}: {errno}")]
    Daemon {
        op: MsgType,
        path: String,
        errno: String,
    },
    #[error("invalid xenstore path {0:?}")]
    InvalidPath(String),
    #[error("xenstore request {op} {path} is {len} bytes, over the {PAYLOAD_MAX}-byte limit")]
    TooLarge {
        op: MsgType,
        path: String,
        len: usize,
    },
    #[error("malformed reply from xenstore at {endpoint} to {op} {path}: {detail}")]
    Protocol {
        endpoint: PathBuf,
        op: MsgType,
        path: String,
        detail: String,
    },
    #[error("xenstore node {path} has malformed permissions: {source}")]
    BadPerms {
        path: String,
        #[source]
        source: PermParseError,
    },
    #[error("xenstore node {path} holds a value that is not UTF-8 text")]
    NotText { path: String },
}

impl XsError {
    /// Whether the error means the node is absent.
    pub fn is_not_found(&self) -> bool {
        matches!(self, XsError::NotFound { .. })
    }
}

enum Conn {
    Socket(UnixStream),
    Device(File),
}

/// A connection to xenstored. Requests are answered in order; a
/// transaction, while open, applies to every request.
pub struct Xenstore {
    conn: Conn,
    endpoint: PathBuf,
    next_req_id: u32,
    tx: u32,
    timeout: Duration,
    /// Bytes read but not yet consumed: one read takes every reply the
    /// daemon has written so far (a pipelined batch costs one syscall,
    /// not two per reply).
    pending: Vec<u8>,
    /// Requests whose replies nobody waits for (see
    /// [`Xenstore::discard_transaction`]): skipped when they arrive.
    unawaited: Vec<u32>,
}

impl fmt::Debug for Xenstore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Xenstore")
            .field("endpoint", &self.endpoint)
            .field("tx", &self.tx)
            .finish()
    }
}

impl Xenstore {
    /// Connects as libxenstore does: `$XENSTORED_PATH`, else
    /// [`DEFAULT_SOCKET`] / [`LEGACY_SOCKET`], else [`XENBUS_DEVICE`].
    pub fn open() -> Result<Xenstore, XsError> {
        if let Some(p) = std::env::var_os(ENV_SOCKET) {
            return Xenstore::open_socket(PathBuf::from(p));
        }
        let mut tried = Vec::new();
        for s in [DEFAULT_SOCKET, LEGACY_SOCKET] {
            match Xenstore::open_socket(s) {
                Ok(x) => return Ok(x),
                Err(e) => tried.push(format!("{s}: {e}")),
            }
        }
        match Xenstore::open_device(XENBUS_DEVICE) {
            Ok(x) => Ok(x),
            Err(e) => {
                tried.push(format!("{XENBUS_DEVICE}: {e}"));
                Err(XsError::NoDaemon {
                    tried: tried.join("; "),
                })
            }
        }
    }

    /// Connects to a daemon's unix socket.
    pub fn open_socket(path: impl AsRef<Path>) -> Result<Xenstore, XsError> {
        let endpoint = path.as_ref().to_path_buf();
        let s = UnixStream::connect(&endpoint).map_err(|source| XsError::Connect {
            endpoint: endpoint.clone(),
            source,
        })?;
        let mut x = Xenstore::new(Conn::Socket(s), endpoint);
        x.set_timeout(DEFAULT_TIMEOUT)?;
        Ok(x)
    }

    /// Opens the xenbus device (same framing as the socket).
    pub fn open_device(path: impl AsRef<Path>) -> Result<Xenstore, XsError> {
        let endpoint = path.as_ref().to_path_buf();
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&endpoint)
            .map_err(|source| XsError::Connect {
                endpoint: endpoint.clone(),
                source,
            })?;
        Ok(Xenstore::new(Conn::Device(f), endpoint))
    }

    fn new(conn: Conn, endpoint: PathBuf) -> Xenstore {
        Xenstore {
            conn,
            endpoint,
            next_req_id: 1,
            tx: 0,
            timeout: DEFAULT_TIMEOUT,
            pending: Vec::new(),
            unawaited: Vec::new(),
        }
    }

    /// The next request id and the framed message for `op` (`path` only
    /// names it in the error when the payload is too large).
    fn message(
        &mut self,
        op: MsgType,
        tx_id: u32,
        payload: &[u8],
        path: &str,
    ) -> Result<(u32, Vec<u8>), XsError> {
        let req_id = self.next_req_id;
        self.next_req_id = self.next_req_id.wrapping_add(1);
        let msg =
            encode_message(op as u32, req_id, tx_id, payload).ok_or_else(|| XsError::TooLarge {
                op,
                path: path.to_string(),
                len: payload.len(),
            })?;
        Ok((req_id, msg))
    }

    /// The socket or device this client talks to.
    pub fn endpoint(&self) -> &Path {
        &self.endpoint
    }

    /// How long one request may wait for the daemon.
    pub fn set_timeout(&mut self, timeout: Duration) -> Result<(), XsError> {
        let timeout = timeout.max(Duration::from_millis(1));
        if let Conn::Socket(s) = &self.conn {
            let set = s
                .set_read_timeout(Some(timeout))
                .and_then(|()| s.set_write_timeout(Some(timeout)));
            set.map_err(|source| XsError::Connect {
                endpoint: self.endpoint.clone(),
                source,
            })?;
        }
        self.timeout = timeout;
        Ok(())
    }

    /// Sends one request and returns the reply payload. Error replies
    /// become [`XsError::NotFound`], [`XsError::Denied`],
    /// [`XsError::Conflict`] or [`XsError::Daemon`]; `path` only names the
    /// request in errors. Watch events arriving meanwhile are skipped.
    pub fn request(&mut self, op: MsgType, path: &str, payload: &[u8]) -> Result<Vec<u8>, XsError> {
        let tx_id = match op {
            // Not legal inside a transaction, or ignored there.
            MsgType::TransactionStart | MsgType::Watch | MsgType::Unwatch => 0,
            _ => self.tx,
        };
        let (req_id, msg) = self.message(op, tx_id, payload, path)?;
        let deadline = Instant::now() + self.timeout;
        self.send(&msg, deadline, op, path)?;
        loop {
            let (h, body) = self.recv(deadline, op, path)?;
            if h.ty == MsgType::WatchEvent as u32 {
                continue;
            }
            if h.req_id != req_id {
                return Err(self.protocol(
                    op,
                    path,
                    format!("reply has req_id {}, expected {req_id}", h.req_id),
                ));
            }
            return self.reply(op, path, &h, body);
        }
    }

    /// Sends every request of `reqs` (operation, path) before reading any
    /// reply: one round trip for all of them (xenstored answers a
    /// connection's requests in order). Each reply comes back as
    /// [`Xenstore::request`] would return it; the outer error is a broken
    /// connection.
    pub fn pipeline(
        &mut self,
        reqs: &[(MsgType, &str)],
    ) -> Result<Vec<Result<Vec<u8>, XsError>>, XsError> {
        let deadline = Instant::now() + self.timeout;
        let first = self.next_req_id;
        let mut batch = Vec::new();
        for (op, path) in reqs {
            Xenstore::check_path(path)?;
            let (_, msg) = self.message(*op, self.tx, &join_strings(&[path]), path)?;
            match self.conn {
                // The xenbus device wants one message per write().
                Conn::Device(_) => self.send(&msg, deadline, *op, path)?,
                Conn::Socket(_) => batch.extend_from_slice(&msg),
            }
        }
        if let Some((op, path)) = reqs.first()
            && !batch.is_empty()
        {
            self.send(&batch, deadline, *op, path)?;
        }
        let mut out: Vec<Option<Result<Vec<u8>, XsError>>> =
            (0..reqs.len()).map(|_| None).collect();
        let mut left = reqs.len();
        while left > 0 {
            let (op0, path0) = reqs[reqs.len() - left];
            let (h, body) = self.recv(deadline, op0, path0)?;
            if h.ty == MsgType::WatchEvent as u32 {
                continue;
            }
            let i = h.req_id.wrapping_sub(first) as usize;
            let Some(slot) = out.get_mut(i).filter(|s| s.is_none()) else {
                return Err(self.protocol(
                    op0,
                    path0,
                    format!("reply has unexpected req_id {}", h.req_id),
                ));
            };
            let (op, path) = reqs[i];
            *slot = Some(self.reply(op, path, &h, body));
            left -= 1;
        }
        Ok(out.into_iter().flatten().collect())
    }

    /// A reply to request `op` on `path`: its payload, or the error it
    /// carries.
    fn reply(
        &self,
        op: MsgType,
        path: &str,
        h: &Header,
        body: Vec<u8>,
    ) -> Result<Vec<u8>, XsError> {
        if h.ty == MsgType::Error as u32 {
            let errno = String::from_utf8_lossy(split_strings(&body).first().unwrap_or(&&[][..]))
                .into_owned();
            return Err(match errno.as_str() {
                "ENOENT" => XsError::NotFound {
                    path: path.to_string(),
                },
                "EACCES" => XsError::Denied {
                    op,
                    path: path.to_string(),
                },
                "EAGAIN" if op == MsgType::TransactionEnd => XsError::Conflict,
                _ => XsError::Daemon {
                    op,
                    path: path.to_string(),
                    errno,
                },
            });
        }
        if h.ty != op as u32 {
            return Err(self.protocol(
                op,
                path,
                format!("reply has type {}, expected {}", h.ty, op as u32),
            ));
        }
        Ok(body)
    }

    fn protocol(&self, op: MsgType, path: &str, detail: String) -> XsError {
        XsError::Protocol {
            endpoint: self.endpoint.clone(),
            op,
            path: path.to_string(),
            detail,
        }
    }

    fn io_error(&self, op: MsgType, path: &str, e: io::Error) -> XsError {
        if matches!(
            e.kind(),
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
        ) {
            XsError::Timeout {
                endpoint: self.endpoint.clone(),
                op,
                path: path.to_string(),
                timeout: self.timeout,
            }
        } else {
            XsError::Io {
                endpoint: self.endpoint.clone(),
                op,
                path: path.to_string(),
                source: e,
            }
        }
    }

    fn send(
        &mut self,
        msg: &[u8],
        deadline: Instant,
        op: MsgType,
        path: &str,
    ) -> Result<(), XsError> {
        let r = match &mut self.conn {
            Conn::Socket(s) => s.write_all(msg),
            // The xenbus device wants a whole message per write().
            Conn::Device(f) => wait_fd(f, libc::POLLOUT, deadline).and_then(|()| {
                let n = f.write(msg)?;
                if n == msg.len() {
                    Ok(())
                } else {
                    Err(io::Error::new(
                        io::ErrorKind::WriteZero,
                        "short write to xenbus device",
                    ))
                }
            }),
        };
        r.map_err(|e| self.io_error(op, path, e))
    }

    fn read_exact_until(&mut self, buf: &mut [u8], deadline: Instant) -> io::Result<()> {
        let mut got = 0;
        loop {
            let take = self.pending.len().min(buf.len() - got);
            buf[got..got + take].copy_from_slice(&self.pending[..take]);
            self.pending.drain(..take);
            got += take;
            if got == buf.len() {
                return Ok(());
            }
            let mut chunk = [0u8; 4096];
            let n = match &mut self.conn {
                Conn::Socket(s) => {
                    if Instant::now() >= deadline {
                        return Err(io::ErrorKind::TimedOut.into());
                    }
                    s.read(&mut chunk)
                }
                Conn::Device(f) => {
                    wait_fd(f, libc::POLLIN, deadline).and_then(|()| f.read(&mut chunk))
                }
            };
            match n {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "xenstored closed the connection",
                    ));
                }
                Ok(n) => self.pending.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    fn recv(
        &mut self,
        deadline: Instant,
        op: MsgType,
        path: &str,
    ) -> Result<(Header, Vec<u8>), XsError> {
        loop {
            let mut hb = [0u8; HEADER_LEN];
            self.read_exact_until(&mut hb, deadline)
                .map_err(|e| self.io_error(op, path, e))?;
            let h = Header::decode(&hb);
            let len = h.len as usize;
            if len > PAYLOAD_MAX {
                return Err(self.protocol(
                    op,
                    path,
                    format!("payload length {len} over {PAYLOAD_MAX}"),
                ));
            }
            let mut body = vec![0u8; len];
            self.read_exact_until(&mut body, deadline)
                .map_err(|e| self.io_error(op, path, e))?;
            if h.ty != MsgType::WatchEvent as u32
                && let Some(i) = self.unawaited.iter().position(|&id| id == h.req_id)
            {
                self.unawaited.swap_remove(i);
                continue;
            }
            return Ok((h, body));
        }
    }

    fn check_path(path: &str) -> Result<(), XsError> {
        if valid_path(path) && !path.starts_with('@') {
            Ok(())
        } else {
            Err(XsError::InvalidPath(path.to_string()))
        }
    }

    fn path_request(&mut self, op: MsgType, path: &str, extra: &[u8]) -> Result<Vec<u8>, XsError> {
        Xenstore::check_path(path)?;
        let mut payload = join_strings(&[path]);
        payload.extend_from_slice(extra);
        self.request(op, path, &payload)
    }

    /// The value of a node.
    pub fn read(&mut self, path: &str) -> Result<Vec<u8>, XsError> {
        self.path_request(MsgType::Read, path, &[])
    }

    /// The value of a node as text.
    pub fn read_string(&mut self, path: &str) -> Result<String, XsError> {
        let v = self.read(path)?;
        String::from_utf8(v).map_err(|_| XsError::NotText {
            path: path.to_string(),
        })
    }

    /// The value of a node, or `None` when it does not exist.
    pub fn read_opt(&mut self, path: &str) -> Result<Option<Vec<u8>>, XsError> {
        found(self.read(path))
    }

    /// Whether a node exists.
    pub fn exists(&mut self, path: &str) -> Result<bool, XsError> {
        Ok(self.read_opt(path)?.is_some())
    }

    /// Names of the children of a node. Falls back to `DIRECTORY_PART`
    /// when the list does not fit one reply (`E2BIG`), as libxenstore does.
    pub fn directory(&mut self, path: &str) -> Result<Vec<String>, XsError> {
        let body = match self.path_request(MsgType::Directory, path, &[]) {
            Ok(b) => b,
            Err(XsError::Daemon { errno, .. }) if errno == "E2BIG" => {
                return self.directory_part(path);
            }
            Err(e) => return Err(e),
        };
        self.names(path, &body)
    }

    /// The child names in a `DIRECTORY` reply for `path`.
    pub fn names(&self, path: &str, body: &[u8]) -> Result<Vec<String>, XsError> {
        split_strings(body)
            .into_iter()
            .map(|n| {
                String::from_utf8(n.to_vec()).map_err(|_| {
                    self.protocol(MsgType::Directory, path, "child name is not UTF-8".into())
                })
            })
            .collect()
    }

    fn directory_part(&mut self, path: &str) -> Result<Vec<String>, XsError> {
        let mut all = Vec::new();
        let mut generation: Option<Vec<u8>> = None;
        let mut restarts = 0;
        loop {
            let off = all.len().to_string();
            let body = self.path_request(MsgType::DirectoryPart, path, &join_strings(&[off]))?;
            let Some(nul) = body.iter().position(|&b| b == 0) else {
                return Err(self.protocol(
                    MsgType::DirectoryPart,
                    path,
                    "no generation count".into(),
                ));
            };
            let (gen_, rest) = (body[..nul].to_vec(), &body[nul + 1..]);
            match &generation {
                Some(g) if *g != gen_ => {
                    // The node changed between two parts: start again.
                    restarts += 1;
                    if restarts > 8 {
                        return Err(self.protocol(
                            MsgType::DirectoryPart,
                            path,
                            "directory kept changing".into(),
                        ));
                    }
                    all.clear();
                    generation = None;
                    continue;
                }
                _ => generation = Some(gen_),
            }
            all.extend_from_slice(rest);
            // The list ends with an empty string (two NULs in a row).
            if rest.is_empty() || all.ends_with(&[0, 0]) || all == [0] {
                break;
            }
        }
        if all.ends_with(&[0, 0]) || all == [0] {
            all.pop();
        }
        self.names(path, &all)
    }

    /// The permissions of a node.
    pub fn get_perms(&mut self, path: &str) -> Result<Perms, XsError> {
        let body = self.path_request(MsgType::GetPerms, path, &[])?;
        perms_reply(path, &body)
    }

    /// Writes a value, creating the node and missing parents.
    pub fn write(&mut self, path: &str, value: &[u8]) -> Result<(), XsError> {
        self.path_request(MsgType::Write, path, value).map(drop)
    }

    /// Creates a node (and parents) with an empty value if it is absent.
    pub fn mkdir(&mut self, path: &str) -> Result<(), XsError> {
        self.path_request(MsgType::Mkdir, path, &[]).map(drop)
    }

    /// Removes a node and everything under it.
    pub fn rm(&mut self, path: &str) -> Result<(), XsError> {
        self.path_request(MsgType::Rm, path, &[]).map(drop)
    }

    /// Sets the permissions of a node.
    pub fn set_perms(&mut self, path: &str, perms: &Perms) -> Result<(), XsError> {
        self.path_request(MsgType::SetPerms, path, &perms.to_wire())
            .map(drop)
    }

    /// The home path of a domain (`/local/domain/<domid>`).
    pub fn get_domain_path(&mut self, domid: Domid) -> Result<String, XsError> {
        let d = domid.to_string();
        let body = self.request(MsgType::GetDomainPath, &d, &join_strings(&[&d]))?;
        let first = split_strings(&body)
            .first()
            .map(|s| s.to_vec())
            .unwrap_or_default();
        String::from_utf8(first)
            .map_err(|_| self.protocol(MsgType::GetDomainPath, &d, "path is not UTF-8".into()))
    }

    /// Starts a transaction; every request until [`Xenstore::transaction_end`]
    /// belongs to it. Returns its id.
    pub fn transaction_start(&mut self) -> Result<u32, XsError> {
        if self.tx != 0 {
            return Err(XsError::Daemon {
                op: MsgType::TransactionStart,
                path: String::new(),
                errno: "EBUSY (a transaction is already open on this connection)".into(),
            });
        }
        let body = self.request(MsgType::TransactionStart, "", &[0])?;
        let text = split_strings(&body)
            .first()
            .map(|s| String::from_utf8_lossy(s).into_owned())
            .unwrap_or_default();
        let id: u32 = text.trim().parse().map_err(|_| {
            self.protocol(
                MsgType::TransactionStart,
                "",
                format!("transaction id {text:?} is not a number"),
            )
        })?;
        self.tx = id;
        Ok(id)
    }

    /// Ends the open transaction: commits when `commit`, else discards it.
    /// A commit that lost a race is [`XsError::Conflict`].
    pub fn transaction_end(&mut self, commit: bool) -> Result<(), XsError> {
        if self.tx == 0 {
            return Ok(());
        }
        let r = self.request(
            MsgType::TransactionEnd,
            "",
            &join_strings(&[if commit { "T" } else { "F" }]),
        );
        self.tx = 0;
        r.map(drop)
    }

    /// Discards the open transaction (a read-only snapshot) without
    /// waiting for the answer, which cannot be an error worth acting on:
    /// the reply is skipped when it arrives with the next request's, and a
    /// connection closed before then discards the transaction all the
    /// same. Saves a hotplug one round trip.
    pub fn discard_transaction(&mut self) -> Result<(), XsError> {
        if self.tx == 0 {
            return Ok(());
        }
        let op = MsgType::TransactionEnd;
        let (req_id, msg) = self.message(op, self.tx, &join_strings(&["F"]), "")?;
        self.tx = 0;
        let deadline = Instant::now() + self.timeout;
        self.send(&msg, deadline, op, "")?;
        self.unawaited.push(req_id);
        Ok(())
    }

    /// The id of the open transaction, 0 if none.
    pub fn transaction(&self) -> u32 {
        self.tx
    }
}

/// The permissions in a `GET_PERMS` reply for `path`.
pub fn perms_reply(path: &str, body: &[u8]) -> Result<Perms, XsError> {
    Perms::from_wire(body).map_err(|source| XsError::BadPerms {
        path: path.to_string(),
        source,
    })
}

/// `r` with a missing node as `None`.
pub fn found<T>(r: Result<T, XsError>) -> Result<Option<T>, XsError> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e),
    }
}

fn wait_fd(f: &File, events: libc::c_short, deadline: Instant) -> io::Result<()> {
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::ErrorKind::TimedOut.into());
        }
        let mut pfd = libc::pollfd {
            fd: f.as_raw_fd(),
            events,
            revents: 0,
        };
        let ms = libc::c_int::try_from(left.as_millis().max(1)).unwrap_or(libc::c_int::MAX);
        // SAFETY: one valid pollfd, owned by this frame, for the call.
        let r = unsafe { libc::poll(&mut pfd, 1, ms) };
        if r > 0 {
            return Ok(());
        }
        if r == 0 {
            return Err(io::ErrorKind::TimedOut.into());
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
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

    #[test]
    fn permission_strings_parse() {
        let p: Perms = "n0 r5".parse().unwrap();
        assert_eq!(p.owner, 0);
        assert_eq!(p.default, Access::None);
        assert_eq!(
            p.acl,
            vec![PermEntry {
                domid: 5,
                access: Access::Read
            }]
        );
        assert_eq!(p.to_string(), "n0 r5");
        assert_eq!(p.to_wire(), b"n0\0r5\0");
        assert_eq!(Perms::from_wire(b"b7\0w0\0").unwrap().default, Access::Both);
        assert_eq!(Perms::from_wire(b"b7\0w0\0").unwrap().owner, 7);
        for bad in ["", "x0", "r", "r-1", "r5a", "r70000", "R5"] {
            assert!(bad.parse::<Perms>().is_err(), "{bad:?}");
        }
        assert!(Perms::from_wire(b"").is_err());
    }

    #[test]
    fn access_follows_perm_for_conn() {
        let p: Perms = "r0 w5 n6".parse().unwrap();
        assert_eq!(p.access_for(0), Access::Both, "owner");
        assert_eq!(p.access_for(5), Access::Write, "ACL entry");
        assert_eq!(p.access_for(6), Access::None, "ACL entry overrides default");
        assert_eq!(p.access_for(9), Access::Read, "default");
        let owned: Perms = "n5".parse().unwrap();
        assert_eq!(owned.access_for(5), Access::Both);
        assert!(Access::Both.can_write() && Access::Both.can_read());
        assert!(!Access::Read.can_write());
    }
}
