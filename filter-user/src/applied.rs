//! Who last applied each interface's policy, and when: one small file per
//! ifindex under `/run/vifguard/applied/<bpffs root>/` (run state: a
//! reboot starts without filters and without records). `vifguard status`
//! shows it, so an operator can tell a hotplug from a live update.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::datapath::pins::RUN_DIR;

/// Which command applied a policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Applier {
    Hotplug,
    SetupVifRules,
    Watch,
    Sync,
    Attach,
}

impl Applier {
    pub const fn name(self) -> &'static str {
        match self {
            Applier::Hotplug => "hotplug",
            Applier::SetupVifRules => "setup-vif-rules",
            Applier::Watch => "watch",
            Applier::Sync => "sync",
            Applier::Attach => "attach",
        }
    }
}

/// A record: who and when (seconds since the epoch).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Applied {
    pub by: String,
    pub at: u64,
}

/// The records of the vifguard state under bpffs root `root`.
pub struct Records {
    dir: PathBuf,
}

impl Records {
    pub fn new(root: &Path) -> Records {
        Records::under(Path::new(RUN_DIR), root)
    }

    /// The records of `root`, kept below `run_dir`.
    pub fn under(run_dir: &Path, root: &Path) -> Records {
        let name = root.to_string_lossy().trim_matches('/').replace('/', "_");
        Records {
            dir: run_dir.join("applied").join(name),
        }
    }

    /// Notes that `by` applied `ifindex`'s policy now. Best effort: the
    /// record is information, never a reason to fail a hotplug.
    pub fn note(&self, ifindex: u32, by: Applier) {
        let at = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let _ = std::fs::create_dir_all(&self.dir);
        let text = format!("{} {at}\n", by.name());
        // Overwritten in place and cut to length, not truncated to zero
        // first: where /run is ext4 rather than tmpfs, close() after a
        // truncation to zero starts writeback (auto_da_alloc), a disk
        // write in every hotplug.
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(self.dir.join(ifindex.to_string()))
        {
            use std::io::Write as _;
            let _ = f
                .write_all(text.as_bytes())
                .and_then(|()| f.set_len(text.len() as u64));
        }
    }

    /// Forgets `ifindex` (its filter is gone).
    pub fn forget(&self, ifindex: u32) {
        let _ = std::fs::remove_file(self.dir.join(ifindex.to_string()));
    }

    /// Forgets every record of this root (its state was wiped).
    pub fn clear(&self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }

    /// The record of `ifindex`, if there is a readable one.
    pub fn get(&self, ifindex: u32) -> Option<Applied> {
        let text = std::fs::read_to_string(self.dir.join(ifindex.to_string())).ok()?;
        let (by, at) = text.trim().split_once(' ')?;
        Some(Applied {
            by: by.to_string(),
            at: at.parse().ok()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_is_noted_read_and_forgotten() {
        let run = std::env::temp_dir().join(format!("vifguard-applied-{}", std::process::id()));
        let r = Records::under(&run, Path::new("/sys/fs/bpf/vifguard"));
        assert_eq!(r.get(7), None);
        r.note(7, Applier::Watch);
        let got = r.get(7).expect("a record");
        assert_eq!(got.by, "watch");
        assert!(got.at > 1_700_000_000, "{got:?}");
        r.forget(7);
        assert_eq!(r.get(7), None);
        let _ = std::fs::remove_dir_all(&run);
    }
}
