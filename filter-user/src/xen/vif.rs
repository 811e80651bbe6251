//! Which vif a command is about: its backend, guest and device, and the
//! names the backend path and the interfaces derive from them.

use std::fmt;

use xenstore::Domid;

use crate::xen::sources::SourceError;

/// The vif a policy is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct VifId {
    /// Domain running the backend (netback): dom0 or a driver domain.
    pub backend_domid: Domid,
    /// The guest.
    pub domid: Domid,
    /// Device index within the guest.
    pub devid: u32,
}

impl VifId {
    pub const fn new(backend_domid: Domid, domid: Domid, devid: u32) -> VifId {
        VifId {
            backend_domid,
            domid,
            devid,
        }
    }

    /// From `XENBUS_PATH` as the hotplug scripts get it:
    /// `backend/vif/<domid>/<devid>`, relative to the backend domain's home
    /// (`backend_domid`, usually 0), or absolute
    /// (`/local/domain/<backend>/backend/vif/<domid>/<devid>`).
    pub fn from_xenbus_path(xenbus_path: &str, backend_domid: Domid) -> Result<VifId, SourceError> {
        let bad = || SourceError::BadXenbusPath {
            path: xenbus_path.to_string(),
        };
        let parts: Vec<&str> = xenbus_path.trim().split('/').collect();
        let (backend, rest) = match parts.as_slice() {
            ["", "local", "domain", b, rest @ ..] => (parse_num(b).ok_or_else(bad)?, rest),
            rest => (backend_domid, rest),
        };
        match rest {
            ["backend", "vif", d, i] => {
                let domid = parse_num(d).ok_or_else(bad)?;
                let devid = parse_num(i).ok_or_else(bad)?;
                if domid > 0xffff || backend > 0xffff || domid == backend {
                    return Err(bad());
                }
                Ok(VifId::new(backend, domid, devid))
            }
            _ => Err(bad()),
        }
    }

    /// The backend directory, `/local/domain/<backend>/backend/vif/<domid>/<devid>`.
    pub fn backend_path(&self) -> String {
        format!(
            "/local/domain/{}/backend/vif/{}/{}",
            self.backend_domid, self.domid, self.devid
        )
    }

    /// The guest's home, `/local/domain/<domid>`.
    pub fn domain_path(&self) -> String {
        format!("/local/domain/{}", self.domid)
    }

    /// The netback interface name, `vif<domid>.<devid>`.
    pub fn ifname(&self) -> String {
        format!("vif{}.{}", self.domid, self.devid)
    }
}

impl fmt::Display for VifId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "vif{}.{}", self.domid, self.devid)
    }
}

fn parse_num(s: &str) -> Option<u32> {
    if s.is_empty() || s.len() > 10 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// The vif an interface is for: netback's `vifN.M`, and the emulated NIC
/// of an HVM guest, which XAPI names `tapN.M` and libxl `vifN.M-emu`
/// (both carry the vif's MAC and get its policy).
pub fn vif_of_ifname(name: &str) -> Option<VifId> {
    let rest = match name.strip_prefix("tap") {
        Some(rest) => rest,
        None => {
            let rest = name.strip_prefix("vif")?;
            rest.strip_suffix("-emu").unwrap_or(rest)
        }
    };
    let (d, i) = rest.split_once('.')?;
    let digits = |s: &str| !s.is_empty() && s.len() <= 10 && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(d) || !digits(i) {
        return None;
    }
    VifId::from_xenbus_path(&format!("backend/vif/{d}/{i}"), 0).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interface_names_of_every_toolstack() {
        for (name, want) in [
            ("vif5.0", Some(VifId::new(0, 5, 0))),
            ("tap5.1", Some(VifId::new(0, 5, 1))),
            ("vif5.2-emu", Some(VifId::new(0, 5, 2))),
            ("tap5.0-emu", None),
            ("vif5.0-emux", None),
            ("vif5-emu", None),
            ("vif.0", None),
            ("eth0", None),
            ("vif0.0", None),
        ] {
            assert_eq!(vif_of_ifname(name), want, "{name}");
        }
    }
}
