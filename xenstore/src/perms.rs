//! Node permissions (`xenstore-chmod`'s `n0 r5 ...`): the owner, the
//! access of everyone else, and per-domain exceptions, with the access rule
//! xenstored applies.

use std::fmt;
use std::str::FromStr;

use crate::wire::{Domid, join_strings, split_strings};

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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

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
