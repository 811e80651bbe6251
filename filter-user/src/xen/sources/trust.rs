//! The trust rule: which xenstore nodes may be read as policy (a guest
//! can write parts of its own tree), and the reader that applies it to
//! every node it returns.

use xenstore::{Domid, Perms, XsError};

use super::SourceError;
use super::store::Store;
use crate::policy::PolicyError;
use crate::xen::vif::VifId;

/// Why a node's permissions make it untrusted, or `None` if trusted.
/// Trusted: owned by dom0 or `vif.backend_domid`, no write by default, and
/// no per-domain entry granting write to anyone else.
pub fn distrust(perms: &Perms, vif: &VifId) -> Option<String> {
    let privileged = |d: Domid| d == 0 || d == vif.backend_domid;
    let who = |d: Domid| {
        if d == vif.domid {
            format!("the guest (domain {d})")
        } else {
            format!("domain {d}")
        }
    };
    if !privileged(perms.owner) {
        return Some(format!("owned by {}", who(perms.owner)));
    }
    if perms.default.can_write() {
        return Some(format!(
            "every domain, including the guest (domain {}), may write it (default permission '{}')",
            vif.domid,
            perms.default.letter()
        ));
    }
    perms
        .acl
        .iter()
        .find(|e| e.access.can_write() && !privileged(e.domid))
        .map(|e| format!("{} may write it", who(e.domid)))
}

/// Reads policy nodes for one vif, checking trust.
pub(crate) struct Reader<'a> {
    pub store: &'a mut dyn Store,
    pub vif: VifId,
}

impl Reader<'_> {
    pub fn xs(&self, source: XsError) -> SourceError {
        SourceError::Xenstore {
            vif: self.vif,
            source,
        }
    }

    /// A node used as policy: `None` if absent, its text if present and
    /// trusted.
    pub fn node(&mut self, path: &str) -> Result<Option<String>, SourceError> {
        let Some(raw) = self.store.read_opt(path).map_err(|e| self.xs(e))? else {
            return Ok(None);
        };
        self.check(path)?;
        String::from_utf8(raw)
            .map(Some)
            .map_err(|_| SourceError::NotText {
                vif: self.vif,
                node: path.to_string(),
            })
    }

    /// A node that must exist.
    pub fn required(&mut self, path: &str) -> Result<String, SourceError> {
        self.node(path)?.ok_or_else(|| SourceError::Missing {
            vif: self.vif,
            node: path.to_string(),
        })
    }

    /// Checks the permissions of `path`.
    pub fn check(&mut self, path: &str) -> Result<(), SourceError> {
        let perms = match self.store.get_perms(path) {
            Ok(p) => p,
            // Removed between the read and now: treat as the read failing.
            Err(e) => return Err(self.xs(e)),
        };
        match distrust(&perms, &self.vif) {
            None => Ok(()),
            Some(reason) => Err(SourceError::Untrusted {
                vif: self.vif,
                node: path.to_string(),
                reason,
                perms: perms.to_string(),
            }),
        }
    }

    pub fn directory(&mut self, path: &str) -> Result<Option<Vec<String>>, SourceError> {
        self.store.directory_opt(path).map_err(|e| self.xs(e))
    }

    pub fn bad(&self, node: &str, source: PolicyError) -> SourceError {
        SourceError::BadValue {
            vif: self.vif,
            node: node.to_string(),
            source,
        }
    }
}
