//! A xenstore client. It connects like libxenstore does: the unix socket
//! named by `XENSTORED_PATH`, else `/run/xenstored/socket` (and the older
//! `/var/run/xenstored/socket`), else the `/dev/xen/xenbus` device, which
//! carries the same framing. All I/O has a timeout so a hung daemon gives a
//! clear error instead of hanging a hotplug script.

use std::collections::VecDeque;
use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::perms::{PermParseError, Perms};
use crate::sys::wait_fd;
use crate::wire::{
    HEADER_LEN, Header, MsgType, PAYLOAD_MAX, encode_message, join_strings, split_strings,
    valid_path,
};

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

/// Errors of the client. Each names the daemon endpoint or the path.
#[derive(Debug, thiserror::Error)]
pub enum XsError {
    #[error(
        "no xenstore daemon reachable (tried {tried}); is xenstored running? (set {ENV_SOCKET} to its socket)"
    )]
    NoDaemon { tried: String },
    #[error("cannot connect to xenstore at {endpoint}")]
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
    #[error("xenstore connection to {endpoint} failed during {op} {path}")]
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
    #[error("xenstore node {path} has malformed permissions")]
    BadPerms {
        path: String,
        #[source]
        source: PermParseError,
    },
    #[error("xenstore node {path} holds a value that is not UTF-8 text")]
    NotText { path: String },
}

impl XsError {
    /// Whether the daemon could not be reached or did not answer usably
    /// (not there, restarting, hung, a broken connection): nothing was
    /// learnt about any node.
    pub fn is_unreachable(&self) -> bool {
        matches!(
            self,
            XsError::NoDaemon { .. }
                | XsError::Connect { .. }
                | XsError::Timeout { .. }
                | XsError::Io { .. }
                | XsError::Protocol { .. }
        )
    }

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
    /// Watch events that arrived while a reply was awaited, in order: the
    /// next [`Xenstore::next_event`] calls return them first.
    events: VecDeque<WatchEvent>,
}

/// A watch firing: the node that changed (or the watched path, when an
/// ancestor was removed) and the token the watch was registered with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WatchEvent {
    pub path: String,
    pub token: String,
}

impl WatchEvent {
    fn decode(body: &[u8]) -> WatchEvent {
        let parts = split_strings(body);
        let text =
            |i: usize| String::from_utf8_lossy(parts.get(i).copied().unwrap_or(&[])).into_owned();
        WatchEvent {
            path: text(0),
            token: text(1),
        }
    }
}

impl fmt::Debug for Xenstore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Xenstore")
            .field("endpoint", &self.endpoint)
            .field("tx", &self.tx)
            .finish()
    }
}

/// One entry of the list [`XsError::NoDaemon`] names: the endpoint and why
/// it failed (the cause only: the entry names the endpoint already).
fn tried_entry(endpoint: &str, e: &XsError) -> String {
    match e {
        XsError::Connect { source, .. } => format!("{endpoint}: {source}"),
        e => format!("{endpoint}: {e}"),
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
                Err(e) => tried.push(tried_entry(s, &e)),
            }
        }
        match Xenstore::open_device(XENBUS_DEVICE) {
            Ok(x) => Ok(x),
            Err(e) => {
                tried.push(tried_entry(XENBUS_DEVICE, &e));
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
            events: VecDeque::new(),
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
    /// request in errors. Watch events arriving meanwhile are queued for
    /// [`Xenstore::next_event`].
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
                self.events.push_back(WatchEvent::decode(&body));
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
                self.events.push_back(WatchEvent::decode(&body));
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

    /// Registers a watch on `path` and everything below it; its events
    /// carry `token`. xenstored fires it once right away.
    pub fn watch(&mut self, path: &str, token: &str) -> Result<(), XsError> {
        Xenstore::check_path(path)?;
        self.request(MsgType::Watch, path, &join_strings(&[path, token]))
            .map(drop)
    }

    /// The next watch event, waiting up to `wait` for one; `None` when
    /// none came. Whole messages only: a timeout never leaves half a
    /// message consumed.
    pub fn next_event(&mut self, wait: Duration) -> Result<Option<WatchEvent>, XsError> {
        let deadline = Instant::now() + wait;
        let (op, path) = (MsgType::WatchEvent, "(watch)");
        loop {
            if let Some(e) = self.events.pop_front() {
                return Ok(Some(e));
            }
            while let Some((h, body)) = self
                .take_message()
                .map_err(|d| self.protocol(op, path, d))?
            {
                if h.ty == MsgType::WatchEvent as u32 {
                    self.events.push_back(WatchEvent::decode(&body));
                } else if let Some(i) = self.unawaited.iter().position(|&id| id == h.req_id) {
                    self.unawaited.swap_remove(i);
                } else {
                    return Err(self.protocol(op, path, format!("unexpected reply type {}", h.ty)));
                }
            }
            if !self.events.is_empty() {
                continue;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            match self.read_some(left) {
                Ok(()) => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    return Ok(None);
                }
                Err(e) => return Err(self.io_error(op, path, e)),
            }
        }
    }

    /// A whole message from the bytes read so far, if there is one.
    fn take_message(&mut self) -> Result<Option<(Header, Vec<u8>)>, String> {
        let Some(hb) = self.pending.get(..HEADER_LEN) else {
            return Ok(None);
        };
        let hb: [u8; HEADER_LEN] = hb.try_into().map_err(|_| "short header".to_string())?;
        let h = Header::decode(&hb);
        let len = h.len as usize;
        if len > PAYLOAD_MAX {
            return Err(format!("payload length {len} over {PAYLOAD_MAX}"));
        }
        if self.pending.len() < HEADER_LEN + len {
            return Ok(None);
        }
        let body = self.pending[HEADER_LEN..HEADER_LEN + len].to_vec();
        self.pending.drain(..HEADER_LEN + len);
        Ok(Some((h, body)))
    }

    /// One read of whatever the daemon sent, waiting up to `wait`.
    fn read_some(&mut self, wait: Duration) -> io::Result<()> {
        let mut chunk = [0u8; 4096];
        let n = match &mut self.conn {
            Conn::Socket(s) => {
                s.set_read_timeout(Some(wait.max(Duration::from_millis(1))))?;
                let r = s.read(&mut chunk);
                s.set_read_timeout(Some(self.timeout))?;
                r?
            }
            Conn::Device(f) => {
                wait_fd(f, libc::POLLIN, Instant::now() + wait)?;
                f.read(&mut chunk)?
            }
        };
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "xenstored closed the connection",
            ));
        }
        self.pending.extend_from_slice(&chunk[..n]);
        Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tried_endpoint_is_named_once_with_its_cause() {
        let path = "/nonexistent/vifguard-test/socket";
        let e = Xenstore::open_socket(path).unwrap_err();
        // ENOENT
        let cause = io::Error::from_raw_os_error(2);
        assert_eq!(tried_entry(path, &e), format!("{path}: {cause}"));
    }
}
