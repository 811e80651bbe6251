//! An in-memory xenstore daemon for tests.
//!
//! The C xenstored of Debian's xen-utils cannot run without a hypervisor,
//! so tests use this one: it speaks the wire protocol of Xen's
//! `docs/misc/xenstore.txt` on unix sockets, and the real `xenstore-read`,
//! `-write`, `-ls`, `-rm`, `-chmod`, `-list`, `-exists` and `-watch`
//! commands (libxenstore, `XENSTORED_PATH=<socket>`) drive it as they drive
//! the real daemon on a Xen host.
//!
//! Semantics follow C xenstored:
//! - a node's permissions are an owner, the access of every domain not
//!   listed (the default) and per-domain entries (`n0 r5 w7`); the owner may
//!   do everything; a new node inherits its parent's permissions, and a node
//!   an unprivileged domain creates is owned by that domain;
//! - the main socket is dom0 (privileged, no permission checks), like
//!   xenstored's socket; extra sockets can be bound as a guest domain
//!   (unprivileged, relative paths under `/local/domain/<domid>`), so tests
//!   can write "as the guest" with the real tools;
//! - transactions copy the tree; a commit after any other change fails with
//!   `EAGAIN` (the C tools retry);
//! - watches fire on writes, removals and permission changes of the node or
//!   its descendants (and on removal of an ancestor), plus once on setup;
//! - `DIRECTORY` replies over 4096 bytes fail with `E2BIG`, and
//!   `DIRECTORY_PART` pages them like xenstored 4.9+;
//! - a request payload over 4096 bytes closes the connection, as xenstored.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{self, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};

use xenstore::{
    Domid, HEADER_LEN, Header, MsgType, PAYLOAD_MAX, Perms, encode_message, join_strings,
    split_strings, valid_path,
};

/// One node of the tree.
#[derive(Clone, Debug)]
struct Node {
    value: Vec<u8>,
    perms: Perms,
    /// Changes whenever the node's value or children change.
    generation: u64,
}

/// The store: every node by absolute path ("/" is the root), shared
/// copy-on-write: a transaction starts with a
/// reference (O(1), like C xenstored and oxenstored, whose transactions do
/// not copy the store up front) and copies only when it or the store is
/// written while both are alive.
#[derive(Clone, Debug)]
struct Tree {
    nodes: Arc<BTreeMap<String, Node>>,
}

fn parent_of(path: &str) -> Option<&str> {
    if path == "/" {
        return None;
    }
    match path.rfind('/') {
        Some(0) => Some("/"),
        Some(i) => Some(&path[..i]),
        None => None,
    }
}

fn child_prefix(path: &str) -> String {
    if path == "/" {
        "/".to_string()
    } else {
        format!("{path}/")
    }
}

/// Whether `child` is `parent` or below it (xs_path_is_subpath).
fn is_subpath(parent: &str, child: &str) -> bool {
    child == parent
        || parent == "/"
        || (child.len() > parent.len()
            && child.starts_with(parent)
            && child.as_bytes()[parent.len()] == b'/')
}

impl Tree {
    fn new() -> Tree {
        let mut nodes = BTreeMap::new();
        nodes.insert(
            "/".to_string(),
            Node {
                value: Vec::new(),
                perms: Perms::owned_by(0),
                generation: 0,
            },
        );
        Tree {
            nodes: Arc::new(nodes),
        }
    }

    fn children(&self, path: &str) -> Vec<String> {
        let prefix = child_prefix(path);
        self.nodes
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
            .filter_map(|(k, _)| {
                let rest = &k[prefix.len()..];
                (!rest.is_empty() && !rest.contains('/')).then(|| rest.to_string())
            })
            .collect()
    }

    /// The nearest existing node at or above `path`.
    fn nearest_existing<'a>(&self, mut path: &'a str) -> &'a str {
        loop {
            if self.nodes.contains_key(path) {
                return path;
            }
            match parent_of(path) {
                Some(p) => path = p,
                None => return "/",
            }
        }
    }

    /// Creates `path` and missing parents. New nodes inherit the parent's
    /// permissions; an unprivileged creator owns them. Returns created paths.
    fn create(&mut self, path: &str, creator: Domid, generation: u64) -> Vec<String> {
        let mut missing = Vec::new();
        let mut p = path;
        while !self.nodes.contains_key(p) {
            missing.push(p.to_string());
            match parent_of(p) {
                Some(q) => p = q,
                None => break,
            }
        }
        for m in missing.iter().rev() {
            let parent = parent_of(m).unwrap_or("/");
            let mut perms = self
                .nodes
                .get(parent)
                .map_or_else(|| Perms::owned_by(0), |n| n.perms.clone());
            if creator != 0 {
                perms.owner = creator;
            }
            if let Some(pn) = Arc::make_mut(&mut self.nodes).get_mut(parent) {
                pn.generation = generation;
            }
            Arc::make_mut(&mut self.nodes).insert(
                m.clone(),
                Node {
                    value: Vec::new(),
                    perms,
                    generation,
                },
            );
        }
        missing
    }

    fn remove(&mut self, path: &str, generation: u64) {
        let prefix = child_prefix(path);
        let doomed: Vec<String> = self
            .nodes
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
            .map(|(k, _)| k.clone())
            .collect();
        for k in doomed {
            Arc::make_mut(&mut self.nodes).remove(&k);
        }
        Arc::make_mut(&mut self.nodes).remove(path);
        if let Some(parent) =
            parent_of(path).and_then(|p| Arc::make_mut(&mut self.nodes).get_mut(p))
        {
            parent.generation = generation;
        }
    }
}

struct Watch {
    conn: u64,
    /// As the client gave it (relative or absolute or `@special`).
    given: String,
    /// Absolute path, or the `@special` name.
    path: String,
    token: Vec<u8>,
    /// Prefix to strip from event paths of a relative watch.
    relative_base: Option<String>,
}

struct Transaction {
    conn: u64,
    tree: Tree,
    base: u64,
    changed: Vec<String>,
}

struct ConnEntry {
    tx: Sender<Vec<u8>>,
    stream: UnixStream,
}

struct State {
    tree: Tree,
    /// Bumped on every committed change.
    generation: u64,
    transactions: HashMap<u32, Transaction>,
    next_tx: u32,
    watches: Vec<Watch>,
    conns: HashMap<u64, ConnEntry>,
    introduced: BTreeSet<Domid>,
    log: bool,
}

/// Request log entry: what a client sent, for tests that check which
/// operations a tool uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoggedRequest {
    pub domid: Domid,
    pub op: String,
    pub first_arg: String,
    /// The client's next request was already waiting when this one was
    /// read: both came in one pipelined write, no round trip between them.
    pub followed_at_once: bool,
}

/// The daemon: shared state plus the listeners' threads.
pub struct Daemon {
    state: Arc<Mutex<State>>,
    requests: Arc<Mutex<Vec<LoggedRequest>>>,
    next_conn: Arc<AtomicU64>,
}

impl Clone for Daemon {
    fn clone(&self) -> Self {
        Daemon {
            state: Arc::clone(&self.state),
            requests: Arc::clone(&self.requests),
            next_conn: Arc::clone(&self.next_conn),
        }
    }
}

impl Default for Daemon {
    fn default() -> Self {
        Daemon::new(false)
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    }
}

/// A reply: type, payload. Errors are `Err(errno)`.
type Reply = Result<(u32, Vec<u8>), &'static str>;

fn ok_reply(op: MsgType) -> Reply {
    Ok((op as u32, b"OK\0".to_vec()))
}

impl Daemon {
    /// An empty store (only `/`, owned by dom0). `log` prints every request
    /// to stderr.
    pub fn new(log: bool) -> Daemon {
        Daemon {
            state: Arc::new(Mutex::new(State {
                tree: Tree::new(),
                generation: 1,
                transactions: HashMap::new(),
                next_tx: 1,
                watches: Vec::new(),
                conns: HashMap::new(),
                introduced: BTreeSet::new(),
                log,
            })),
            requests: Arc::new(Mutex::new(Vec::new())),
            next_conn: Arc::new(AtomicU64::new(1)),
        }
    }

    /// Requests received so far.
    pub fn requests(&self) -> Vec<LoggedRequest> {
        lock(&self.requests).clone()
    }

    /// Serves one listener until `stop` is set (and a connection wakes the
    /// accept). Connections are served as `domid` (0 = privileged).
    pub fn serve(&self, listener: UnixListener, domid: Domid, stop: Arc<AtomicBool>) {
        for conn in listener.incoming() {
            if stop.load(Ordering::SeqCst) {
                break;
            }
            let Ok(stream) = conn else { continue };
            let d = self.clone();
            thread::spawn(move || d.serve_conn(stream, domid));
        }
    }

    /// Closes every client connection (their threads then end).
    pub fn disconnect_all(&self) {
        let st = lock(&self.state);
        for c in st.conns.values() {
            let _ = c.stream.shutdown(std::net::Shutdown::Both);
        }
    }

    fn serve_conn(&self, stream: UnixStream, domid: Domid) {
        let id = self.next_conn.fetch_add(1, Ordering::SeqCst);
        let (Ok(writer), Ok(registered)) = (stream.try_clone(), stream.try_clone()) else {
            return;
        };
        let (tx, rx): (Sender<Vec<u8>>, Receiver<Vec<u8>>) = channel();
        lock(&self.state).conns.insert(
            id,
            ConnEntry {
                tx: tx.clone(),
                stream: registered,
            },
        );
        let writer_thread = thread::spawn(move || {
            let mut w = writer;
            for msg in rx {
                if w.write_all(&msg).is_err() {
                    break;
                }
            }
        });
        // Requests are read from a buffer (a pipelined batch takes one
        // read), and the replies to a batch go out in one write at its end
        // (when no further request is waiting), as a daemon with an event
        // loop answers: one wakeup for the client, not one per reply.
        let mut reader = std::io::BufReader::with_capacity(64 * 1024, stream);
        let mut replies: Vec<u8> = Vec::new();
        loop {
            let mut hb = [0u8; HEADER_LEN];
            if reader.read_exact(&mut hb).is_err() {
                break;
            }
            let h = Header::decode(&hb);
            if h.len as usize > PAYLOAD_MAX {
                // xenstored kills connections that exceed the limit.
                break;
            }
            let mut body = vec![0u8; h.len as usize];
            if reader.read_exact(&mut body).is_err() {
                break;
            }
            let followed_at_once =
                !reader.buffer().is_empty() || bytes_waiting(reader.get_ref()) > 0;
            let (reply, events) = self.handle(id, domid, &h, &body, followed_at_once);
            let (ty, payload) = match reply {
                Ok(r) => r,
                Err(errno) => (MsgType::Error as u32, join_strings(&[errno])),
            };
            match encode_message(ty, h.req_id, h.tx_id, &payload) {
                Some(m) => replies.extend_from_slice(&m),
                None => {
                    if let Some(m) =
                        encode_message(MsgType::Error as u32, h.req_id, h.tx_id, b"E2BIG\0")
                    {
                        replies.extend_from_slice(&m);
                    }
                }
            }
            // Watch events go after the reply that caused them.
            if (!followed_at_once || !events.is_empty())
                && tx.send(std::mem::take(&mut replies)).is_err()
            {
                break;
            }
            self.deliver(events);
        }
        {
            let mut st = lock(&self.state);
            st.conns.remove(&id);
            st.watches.retain(|w| w.conn != id);
            st.transactions.retain(|_, t| t.conn != id);
        }
        drop(tx);
        let _ = reader.get_ref().shutdown(std::net::Shutdown::Both);
        let _ = writer_thread.join();
    }

    /// Sends watch events (connection id, message) after the reply.
    fn deliver(&self, events: Vec<(u64, Vec<u8>)>) {
        if events.is_empty() {
            return;
        }
        let st = lock(&self.state);
        for (conn, msg) in events {
            if let Some(c) = st.conns.get(&conn) {
                let _ = c.tx.send(msg);
            }
        }
    }

    fn handle(
        &self,
        conn: u64,
        domid: Domid,
        h: &Header,
        body: &[u8],
        followed_at_once: bool,
    ) -> (Reply, Vec<(u64, Vec<u8>)>) {
        let args = split_strings(body);
        let arg = |i: usize| -> String {
            args.get(i)
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .unwrap_or_default()
        };
        let op = MsgType::from_u32(h.ty);
        let op_name = op.map_or_else(|| format!("type {}", h.ty), |o| o.name().to_string());
        let mut st = lock(&self.state);
        if st.log {
            eprintln!(
                "vifguard-test-xenstored: conn {conn} dom{domid} {op_name} tx={} {:?}",
                h.tx_id,
                String::from_utf8_lossy(body)
            );
        }
        lock(&self.requests).push(LoggedRequest {
            domid,
            op: op_name,
            first_arg: arg(0),
            followed_at_once,
        });
        let Some(op) = op else {
            return (Err("EINVAL"), Vec::new());
        };
        let mut events = Vec::new();
        let reply = st.dispatch(conn, domid, op, h.tx_id, body, &mut events);
        (reply, events)
    }
}

impl State {
    fn canonical(&self, domid: Domid, p: &str) -> Result<String, &'static str> {
        let abs = if p.starts_with('/') || p.starts_with('@') {
            p.to_string()
        } else {
            format!("/local/domain/{domid}/{p}")
        };
        if valid_path(&abs) {
            Ok(abs)
        } else {
            Err("EINVAL")
        }
    }

    fn access(domid: Domid, node: &Node) -> xenstore::Access {
        if domid == 0 {
            xenstore::Access::Both
        } else {
            node.perms.access_for(domid)
        }
    }

    fn tree_for(&mut self, conn: u64, tx_id: u32) -> Result<&mut Tree, &'static str> {
        if tx_id == 0 {
            return Ok(&mut self.tree);
        }
        match self.transactions.get_mut(&tx_id) {
            Some(t) if t.conn == conn => Ok(&mut t.tree),
            _ => Err("ENOENT"),
        }
    }

    /// Records a change: bumps the generation outside transactions, or
    /// remembers the path for the commit.
    fn changed(&mut self, tx_id: u32, paths: Vec<String>, events: &mut Vec<(u64, Vec<u8>)>) {
        if tx_id == 0 {
            self.generation += 1;
            for p in paths {
                self.fire(&p, events);
            }
        } else if let Some(t) = self.transactions.get_mut(&tx_id) {
            t.changed.extend(paths);
        }
    }

    fn fire(&self, path: &str, events: &mut Vec<(u64, Vec<u8>)>) {
        for w in &self.watches {
            let hit = if path.starts_with('@') || w.path.starts_with('@') {
                w.path == path
            } else {
                // The changed node is at or below the watch, or an ancestor
                // of the watch was removed (then the event names the watch).
                is_subpath(&w.path, path) || is_subpath(path, &w.path)
            };
            if !hit {
                continue;
            }
            let epath = if is_subpath(&w.path, path) || path.starts_with('@') {
                path.to_string()
            } else {
                w.path.clone()
            };
            let shown = match &w.relative_base {
                Some(base) => epath
                    .strip_prefix(base.as_str())
                    .map_or(epath.clone(), str::to_string),
                None => epath,
            };
            let mut payload = join_strings(&[shown.as_bytes()]);
            payload.extend_from_slice(&w.token);
            payload.push(0);
            if let Some(m) = encode_message(MsgType::WatchEvent as u32, 0, 0, &payload) {
                events.push((w.conn, m));
            }
        }
    }

    fn dispatch(
        &mut self,
        conn: u64,
        domid: Domid,
        op: MsgType,
        tx_id: u32,
        body: &[u8],
        events: &mut Vec<(u64, Vec<u8>)>,
    ) -> Reply {
        let args = split_strings(body);
        let text = |i: usize| -> Result<String, &'static str> {
            let a = args.get(i).ok_or("EINVAL")?;
            String::from_utf8(a.to_vec()).map_err(|_| "EINVAL")
        };
        let generation = self.generation + 1;
        match op {
            MsgType::Read => {
                let path = self.canonical(domid, &text(0)?)?;
                let tree = self.tree_for(conn, tx_id)?;
                let node = tree.nodes.get(&path).ok_or("ENOENT")?;
                if !State::access(domid, node).can_read() {
                    return Err("EACCES");
                }
                Ok((op as u32, node.value.clone()))
            }
            MsgType::Directory | MsgType::DirectoryPart => {
                let path = self.canonical(domid, &text(0)?)?;
                let tree = self.tree_for(conn, tx_id)?;
                let node = tree.nodes.get(&path).ok_or("ENOENT")?;
                if !State::access(domid, node).can_read() {
                    return Err("EACCES");
                }
                let list = join_strings(&tree.children(&path));
                if op == MsgType::Directory {
                    if list.len() > PAYLOAD_MAX {
                        return Err("E2BIG");
                    }
                    return Ok((op as u32, list));
                }
                let offset: usize = text(1)?.parse().map_err(|_| "EINVAL")?;
                if offset > list.len() {
                    return Err("EINVAL");
                }
                let mut out = join_strings(&[node.generation.to_string()]);
                let room = PAYLOAD_MAX - out.len() - 1;
                let rest = &list[offset..];
                if rest.len() <= room {
                    out.extend_from_slice(rest);
                    out.push(0);
                } else {
                    // Whole names only.
                    let cut = rest[..room]
                        .iter()
                        .rposition(|&b| b == 0)
                        .map_or(0, |i| i + 1);
                    if cut == 0 {
                        return Err("E2BIG");
                    }
                    out.extend_from_slice(&rest[..cut]);
                }
                Ok((op as u32, out))
            }
            MsgType::GetPerms => {
                let path = self.canonical(domid, &text(0)?)?;
                let tree = self.tree_for(conn, tx_id)?;
                let node = tree.nodes.get(&path).ok_or("ENOENT")?;
                if !State::access(domid, node).can_read() {
                    return Err("EACCES");
                }
                Ok((op as u32, node.perms.to_wire()))
            }
            MsgType::Write | MsgType::Mkdir => {
                let (raw_path, value) = if op == MsgType::Write {
                    let nul = body.iter().position(|&b| b == 0).ok_or("EINVAL")?;
                    (&body[..nul], Some(body[nul + 1..].to_vec()))
                } else {
                    (args.first().copied().ok_or("EINVAL")?, None)
                };
                let raw = String::from_utf8(raw_path.to_vec()).map_err(|_| "EINVAL")?;
                let path = self.canonical(domid, &raw)?;
                if path.starts_with('@') {
                    return Err("EINVAL");
                }
                let tree = self.tree_for(conn, tx_id)?;
                let near = tree.nearest_existing(&path).to_string();
                let node = tree.nodes.get(&near).ok_or("ENOENT")?;
                if !State::access(domid, node).can_write() {
                    return Err("EACCES");
                }
                let mut changed = tree.create(&path, domid, generation);
                if let Some(v) = value {
                    if let Some(n) = Arc::make_mut(&mut tree.nodes).get_mut(&path) {
                        n.value = v;
                        n.generation = generation;
                    }
                    if changed.is_empty() {
                        changed.push(path.clone());
                    }
                }
                if !changed.is_empty() {
                    self.changed(tx_id, changed, events);
                }
                ok_reply(op)
            }
            MsgType::Rm => {
                let path = self.canonical(domid, &text(0)?)?;
                if path == "/" || path.starts_with('@') {
                    return Err("EINVAL");
                }
                let tree = self.tree_for(conn, tx_id)?;
                match tree.nodes.get(&path) {
                    None => {
                        let parent = parent_of(&path).unwrap_or("/");
                        return if tree.nodes.contains_key(parent) {
                            ok_reply(op)
                        } else {
                            Err("ENOENT")
                        };
                    }
                    Some(node) => {
                        if !State::access(domid, node).can_write() {
                            return Err("EACCES");
                        }
                    }
                }
                tree.remove(&path, generation);
                self.changed(tx_id, vec![path], events);
                ok_reply(op)
            }
            MsgType::SetPerms => {
                let path = self.canonical(domid, &text(0)?)?;
                let entries: Vec<String> = args[1..]
                    .iter()
                    .map(|a| String::from_utf8_lossy(a).into_owned())
                    .collect();
                let perms = Perms::from_entries(&entries).map_err(|_| "EINVAL")?;
                if path.starts_with('@') {
                    return ok_reply(op);
                }
                let tree = self.tree_for(conn, tx_id)?;
                let node = Arc::make_mut(&mut tree.nodes)
                    .get_mut(&path)
                    .ok_or("ENOENT")?;
                if domid != 0 {
                    // Only the owner may change permissions, and it may not
                    // give the node away.
                    if node.perms.owner != domid {
                        return Err("EACCES");
                    }
                    if perms.owner != domid {
                        return Err("EPERM");
                    }
                }
                node.perms = perms;
                self.changed(tx_id, vec![path], events);
                ok_reply(op)
            }
            MsgType::Watch => {
                let given = text(0)?;
                let token = args.get(1).copied().ok_or("EINVAL")?.to_vec();
                let path = self.canonical(domid, &given)?;
                let relative_base = (!given.starts_with('/') && !given.starts_with('@'))
                    .then(|| format!("/local/domain/{domid}/"));
                if self
                    .watches
                    .iter()
                    .any(|w| w.conn == conn && w.given == given && w.token == token)
                {
                    return Err("EEXIST");
                }
                // The initial event goes out after the reply.
                let mut payload = join_strings(&[given.as_bytes()]);
                payload.extend_from_slice(&token);
                payload.push(0);
                if let Some(m) = encode_message(MsgType::WatchEvent as u32, 0, 0, &payload) {
                    events.push((conn, m));
                }
                self.watches.push(Watch {
                    conn,
                    given,
                    path,
                    token,
                    relative_base,
                });
                ok_reply(op)
            }
            MsgType::Unwatch => {
                let given = text(0)?;
                let token = args.get(1).copied().ok_or("EINVAL")?.to_vec();
                let before = self.watches.len();
                self.watches
                    .retain(|w| !(w.conn == conn && w.given == given && w.token == token));
                if self.watches.len() == before {
                    return Err("ENOENT");
                }
                ok_reply(op)
            }
            MsgType::ResetWatches => {
                self.watches.retain(|w| w.conn != conn);
                self.transactions.retain(|_, t| t.conn != conn);
                ok_reply(op)
            }
            MsgType::TransactionStart => {
                if tx_id != 0 {
                    return Err("EBUSY");
                }
                let id = self.next_tx;
                self.next_tx = self.next_tx.wrapping_add(1).max(1);
                self.transactions.insert(
                    id,
                    Transaction {
                        conn,
                        tree: self.tree.clone(),
                        base: self.generation,
                        changed: Vec::new(),
                    },
                );
                Ok((op as u32, join_strings(&[id.to_string()])))
            }
            MsgType::TransactionEnd => {
                let commit = match text(0)?.as_str() {
                    "T" => true,
                    "F" => false,
                    _ => return Err("EINVAL"),
                };
                let t = match self.transactions.get(&tx_id) {
                    Some(t) if t.conn == conn => self.transactions.remove(&tx_id),
                    _ => None,
                };
                let t = t.ok_or("ENOENT")?;
                if commit && !t.changed.is_empty() {
                    if t.base != self.generation {
                        return Err("EAGAIN");
                    }
                    self.tree = t.tree;
                    self.generation += 1;
                    let mut seen = BTreeSet::new();
                    for p in t.changed {
                        if seen.insert(p.clone()) {
                            self.fire(&p, events);
                        }
                    }
                }
                ok_reply(op)
            }
            MsgType::GetDomainPath => {
                let d: Domid = text(0)?.trim().parse().map_err(|_| "EINVAL")?;
                Ok((op as u32, join_strings(&[format!("/local/domain/{d}")])))
            }
            MsgType::IsDomainIntroduced => {
                let d: Domid = text(0)?.trim().parse().map_err(|_| "EINVAL")?;
                let yes = d == 0 || self.introduced.contains(&d);
                Ok((op as u32, join_strings(&[if yes { "T" } else { "F" }])))
            }
            MsgType::Introduce | MsgType::Release | MsgType::Resume | MsgType::SetTarget => {
                if domid != 0 {
                    return Err("EACCES");
                }
                let d: Domid = text(0)?.trim().parse().map_err(|_| "EINVAL")?;
                match op {
                    MsgType::Introduce => {
                        self.introduced.insert(d);
                        self.fire("@introduceDomain", events);
                    }
                    MsgType::Release => {
                        self.introduced.remove(&d);
                        self.fire("@releaseDomain", events);
                    }
                    _ => {}
                }
                ok_reply(op)
            }
            MsgType::Control => {
                if domid != 0 {
                    return Err("EACCES");
                }
                match text(0)?.as_str() {
                    "help" => Ok((
                        op as u32,
                        join_strings(&["check\nlog\nprint <string>\nhelp\n"]),
                    )),
                    "print" => {
                        eprintln!("vifguard-test-xenstored: {}", text(1).unwrap_or_default());
                        ok_reply(op)
                    }
                    "check" | "log" | "logfile" | "memreport" => ok_reply(op),
                    _ => Err("EINVAL"),
                }
            }
            MsgType::Restrict => Err("EINVAL"),
            MsgType::WatchEvent | MsgType::Error => Err("EINVAL"),
        }
    }
}

/// Binds `path` (replacing a stale socket file).
pub fn bind(path: &Path) -> io::Result<UnixListener> {
    let _ = std::fs::remove_file(path);
    UnixListener::bind(path)
}

static NEXT_DIR: AtomicU64 = AtomicU64::new(0);

/// Bytes the client has sent that are not read yet (FIONREAD).
fn bytes_waiting(s: &UnixStream) -> i32 {
    use std::os::fd::AsRawFd as _;
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD writes one int to the pointer given.
    let rc = unsafe { libc::ioctl(s.as_raw_fd(), libc::FIONREAD, &mut n) };
    if rc == 0 { n } else { 0 }
}

/// A test daemon on a private socket, stopped and cleaned up on drop.
pub struct TestXenstored {
    daemon: Daemon,
    dir: PathBuf,
    socket: PathBuf,
    domain_sockets: BTreeMap<Domid, PathBuf>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl TestXenstored {
    /// Starts a daemon with only the dom0 socket.
    pub fn start() -> TestXenstored {
        TestXenstored::start_with_domains(&[])
    }

    /// Starts a daemon with the dom0 socket plus one unprivileged socket per
    /// domid in `guests` (see [`TestXenstored::domain_socket_path`]).
    ///
    /// # Panics
    /// If the temporary directory or a socket cannot be created.
    pub fn start_with_domains(guests: &[Domid]) -> TestXenstored {
        let n = NEXT_DIR.fetch_add(1, Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("vifguard-xs-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create the test xenstored directory");
        let log = std::env::var_os("VIFGUARD_XENSTORED_LOG").is_some();
        let daemon = Daemon::new(log);
        let stop = Arc::new(AtomicBool::new(false));
        let mut threads = Vec::new();
        let socket = dir.join("socket");
        let mut listeners = vec![(0, socket.clone())];
        let mut domain_sockets = BTreeMap::new();
        for &g in guests {
            let p = dir.join(format!("socket-dom{g}"));
            domain_sockets.insert(g, p.clone());
            listeners.push((g, p));
        }
        for (domid, path) in listeners {
            let l = bind(&path).expect("bind the test xenstored socket");
            let d = daemon.clone();
            let s = Arc::clone(&stop);
            threads.push(thread::spawn(move || d.serve(l, domid, s)));
        }
        TestXenstored {
            daemon,
            dir,
            socket,
            domain_sockets,
            stop,
            threads,
        }
    }

    /// Stops serving, as a xenstored that was killed: every connection
    /// is closed and the socket is gone, until [`TestXenstored::restart`].
    /// The store itself is kept (as a restarted daemon that reloads it).
    pub fn kill(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let mut paths = vec![self.socket.clone()];
        paths.extend(self.domain_sockets.values().cloned());
        for p in &paths {
            let _ = UnixStream::connect(p);
        }
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        self.daemon.disconnect_all();
        for p in &paths {
            let _ = std::fs::remove_file(p);
        }
    }

    /// Serves again on the same sockets after [`TestXenstored::kill`].
    pub fn restart(&mut self) {
        self.stop = Arc::new(AtomicBool::new(false));
        let mut listeners = vec![(0, self.socket.clone())];
        listeners.extend(self.domain_sockets.iter().map(|(d, p)| (*d, p.clone())));
        for (domid, path) in listeners {
            let l = bind(&path).expect("bind the test xenstored socket");
            let d = self.daemon.clone();
            let s = Arc::clone(&self.stop);
            self.threads
                .push(thread::spawn(move || d.serve(l, domid, s)));
        }
    }

    /// The dom0 (privileged) socket: pass it as `XENSTORED_PATH`.
    pub fn socket_path(&self) -> &Path {
        &self.socket
    }

    /// The socket that acts as domain `domid`, if started with it.
    pub fn domain_socket_path(&self, domid: Domid) -> Option<&Path> {
        self.domain_sockets.get(&domid).map(PathBuf::as_path)
    }

    /// The daemon, e.g. to look at the request log.
    pub fn daemon(&self) -> &Daemon {
        &self.daemon
    }

    /// A client connected as dom0.
    pub fn client(&self) -> Result<xenstore::Xenstore, xenstore::XsError> {
        xenstore::Xenstore::open_socket(&self.socket)
    }

    /// Runs a real xenstore-utils command (`xenstore-write`, ...) against
    /// this daemon as dom0.
    pub fn tool(&self, tool: &str, args: &[&str]) -> io::Result<Output> {
        run_tool(&self.socket, tool, args)
    }

    /// Like [`TestXenstored::tool`], but fails unless the command succeeds;
    /// returns its standard output.
    pub fn tool_ok(&self, tool: &str, args: &[&str]) -> Result<String, String> {
        tool_ok_at(&self.socket, tool, args)
    }

    /// Runs a xenstore-utils command as guest `domid` (unprivileged).
    pub fn tool_as(&self, domid: Domid, tool: &str, args: &[&str]) -> Result<String, String> {
        let sock = self
            .domain_socket_path(domid)
            .ok_or_else(|| format!("daemon has no socket for domain {domid}"))?;
        tool_ok_at(sock, tool, args)
    }
}

/// Runs `tool args...` with `XENSTORED_PATH=socket`.
pub fn run_tool(socket: &Path, tool: &str, args: &[&str]) -> io::Result<Output> {
    Command::new(tool)
        .args(args)
        .env("XENSTORED_PATH", socket)
        .output()
}

fn tool_ok_at(socket: &Path, tool: &str, args: &[&str]) -> Result<String, String> {
    let out = run_tool(socket, tool, args).map_err(|e| format!("{tool}: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "{tool} {args:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

impl Drop for TestXenstored {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake every accept() so the listener threads see the flag.
        let mut paths = vec![self.socket.clone()];
        paths.extend(self.domain_sockets.values().cloned());
        for p in &paths {
            let _ = UnixStream::connect(p);
        }
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        self.daemon.disconnect_all();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Convenience for building permission lists in tests: `perms("n0 r5")`.
///
/// # Panics
/// On a malformed permission string.
pub fn perms(s: &str) -> Perms {
    s.parse().expect("valid permission string")
}
