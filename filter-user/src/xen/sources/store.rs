//! Reading xenstore for a resolution: the [`Store`] seam, and the
//! prefetching store that fetches what every resolution reads in one
//! pipelined round trip.

use xenstore::{MsgType, Perms, Xenstore, XsError, found, perms_reply};

use super::{keys, openstack, xapi};
use crate::xen::vif::VifId;

/// Read access to a xenstore tree: implemented by [`Xenstore`]; tests can
/// use an in-memory map.
pub trait Store {
    /// A node's value, `None` if it does not exist.
    fn read_opt(&mut self, path: &str) -> Result<Option<Vec<u8>>, XsError>;
    /// A node's children, `None` if it does not exist.
    fn directory_opt(&mut self, path: &str) -> Result<Option<Vec<String>>, XsError>;
    /// A node's permissions.
    fn get_perms(&mut self, path: &str) -> Result<Perms, XsError>;
}

impl Store for Xenstore {
    fn read_opt(&mut self, path: &str) -> Result<Option<Vec<u8>>, XsError> {
        Xenstore::read_opt(self, path)
    }

    fn directory_opt(&mut self, path: &str) -> Result<Option<Vec<String>>, XsError> {
        found(self.directory(path))
    }

    fn get_perms(&mut self, path: &str) -> Result<Perms, XsError> {
        Xenstore::get_perms(self, path)
    }
}

/// The nodes every resolution reads (and checks the permissions of, where
/// they exist), relative to nothing: absolute paths for `vif`.
fn common_nodes(vif: &VifId) -> Vec<String> {
    let backend = vif.backend_path();
    let mut v: Vec<String> = [
        keys::MAC,
        keys::BRIDGE,
        keys::MODE,
        keys::IP,
        keys::IPV6,
        keys::DESTINATIONS,
        keys::PAIRS,
        keys::DHCP_SERVERS,
    ]
    .iter()
    .map(|k| format!("{backend}/{k}"))
    .collect();
    v.push(format!("{}/vm", vif.domain_path()));
    v
}

/// The directories every resolution lists: the vif's options and
/// OpenStack's networking keys.
fn common_dirs(vif: &VifId) -> [String; 2] {
    [
        format!("{}/{}", vif.backend_path(), keys::OPTIONS),
        format!("{}/{}", vif.domain_path(), openstack::NETWORKING_DIR),
    ]
}

/// A [`Store`] over a xenstore connection that first fetches the common
/// nodes, their permissions and the common directories in one pipelined
/// round trip (instead of a round trip each); each prefetched reply
/// answers the first request for it, everything else goes to xenstored as
/// usual.
pub(crate) struct Prefetched<'a> {
    xs: &'a mut Xenstore,
    reads: Replies,
    perms: Replies,
    dirs: Replies,
}

type Replies = std::collections::HashMap<String, Result<Vec<u8>, XsError>>;

impl<'a> Prefetched<'a> {
    pub(crate) fn fetch(xs: &'a mut Xenstore, vif: &VifId) -> Prefetched<'a> {
        let nodes = common_nodes(vif);
        let dirs = common_dirs(vif);
        let mut reqs: Vec<(MsgType, &str)> = Vec::new();
        for n in &nodes {
            reqs.push((MsgType::Read, n));
            reqs.push((MsgType::GetPerms, n));
        }
        for d in &dirs {
            reqs.push((MsgType::Directory, d));
        }
        let mut p = Prefetched {
            xs,
            reads: Replies::new(),
            perms: Replies::new(),
            dirs: Replies::new(),
        };
        // A connection failure leaves the caches empty: the requests then
        // fail one by one with their own errors.
        p.run(&reqs);
        // XAPI's private directory is named by the VM uuid in the domain's
        // `vm` node: a second round trip fetches its nodes, their
        // permissions and the directory (a read and a permission request
        // each, one after the other, otherwise).
        let vm_node = format!("{}/vm", vif.domain_path());
        let xapi = match p.reads.get(&vm_node) {
            Some(Ok(vm)) => xapi::prefetch(vm, vif.devid),
            _ => None,
        };
        if let Some((dir, nodes)) = &xapi {
            let mut reqs: Vec<(MsgType, &str)> = Vec::new();
            for n in nodes {
                reqs.push((MsgType::Read, n));
                reqs.push((MsgType::GetPerms, n));
            }
            reqs.push((MsgType::Directory, dir));
            p.run(&reqs);
        }
        p
    }

    /// Sends `reqs` in one pipelined round trip and keeps the replies for
    /// the first request of each.
    fn run(&mut self, reqs: &[(MsgType, &str)]) {
        if let Ok(replies) = self.xs.pipeline(reqs) {
            for ((op, path), reply) in reqs.iter().zip(replies) {
                let map = match op {
                    MsgType::Read => &mut self.reads,
                    MsgType::GetPerms => &mut self.perms,
                    _ => &mut self.dirs,
                };
                map.insert(path.to_string(), reply);
            }
        }
    }
}

impl Store for Prefetched<'_> {
    fn read_opt(&mut self, path: &str) -> Result<Option<Vec<u8>>, XsError> {
        match self.reads.remove(path) {
            Some(reply) => found(reply),
            None => self.xs.read_opt(path),
        }
    }

    fn directory_opt(&mut self, path: &str) -> Result<Option<Vec<String>>, XsError> {
        match self.dirs.remove(path) {
            Some(Ok(body)) => self.xs.names(path, &body).map(Some),
            Some(Err(e)) if e.is_not_found() => Ok(None),
            // E2BIG (a list over one reply) and the like: ask again the
            // long way, which knows how to page.
            Some(Err(_)) | None => Store::directory_opt(self.xs, path),
        }
    }

    fn get_perms(&mut self, path: &str) -> Result<Perms, XsError> {
        match self.perms.remove(path) {
            Some(reply) => perms_reply(path, &reply?),
            None => self.xs.get_perms(path),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) mod mem {
    //! An in-memory [`Store`] for unit tests.
    use super::*;
    use std::collections::BTreeMap;

    #[derive(Default)]
    pub struct MemStore {
        pub nodes: BTreeMap<String, (String, Perms)>,
    }

    impl MemStore {
        pub fn put(&mut self, path: &str, value: &str, perms: &str) {
            let p: Perms = perms.parse().unwrap();
            self.nodes.insert(path.to_string(), (value.to_string(), p));
        }
    }

    impl Store for MemStore {
        fn read_opt(&mut self, path: &str) -> Result<Option<Vec<u8>>, XsError> {
            Ok(self.nodes.get(path).map(|(v, _)| v.as_bytes().to_vec()))
        }

        fn directory_opt(&mut self, path: &str) -> Result<Option<Vec<String>>, XsError> {
            let prefix = format!("{path}/");
            let kids: Vec<String> = self
                .nodes
                .keys()
                .filter_map(|k| k.strip_prefix(&prefix))
                .filter(|r| !r.contains('/'))
                .map(str::to_string)
                .collect();
            Ok((!kids.is_empty() || self.nodes.contains_key(path)).then_some(kids))
        }

        fn get_perms(&mut self, path: &str) -> Result<Perms, XsError> {
            self.nodes
                .get(path)
                .map(|(_, p)| p.clone())
                .ok_or_else(|| XsError::NotFound {
                    path: path.to_string(),
                })
        }
    }
}
