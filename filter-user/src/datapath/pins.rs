//! The bpffs layout vifguard keeps its state in, in one place.
//!
//! ```text
//! <root>/                              HostConfig.bpffs, default /sys/fs/bpf/vifguard
//!   v<ABI_VERSION>/                    one directory per map layout (flock'ed);
//!                                      an older one is taken over and removed
//!     maps/<NAME>                      every map of the object
//!     progs/<object_version>/<name>    the programs, loaded and verified once
//!     links/<ifindex>-<hook>           one bpf link per interface and hook
//! ```
//!
//! Hooks are `tc-ingress` (frames from the guest) and `tc-egress` (frames
//! to the guest).

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use filter_common::{ABI_VERSION, Direction};

/// statfs magic of a bpf filesystem.
pub const BPF_FS_MAGIC: i64 = 0xcafe_4a11;
/// Where bpffs is mounted when the root is not on one.
pub const BPFFS_MOUNT: &str = "/sys/fs/bpf";
/// Lock files when the pin directory cannot be flock'ed.
pub const RUN_DIR: &str = "/run/vifguard";

/// The hooks a vif is attached at, with the direction each filters.
pub const HOOKS: [(Direction, &str); 2] = [
    (Direction::FromGuest, "tc-ingress"),
    (Direction::ToGuest, "tc-egress"),
];

#[derive(Debug, thiserror::Error)]
pub enum PinError {
    #[error("{}: {action} failed", path.display())]
    Io {
        path: PathBuf,
        action: &'static str,
        #[source]
        source: io::Error,
    },
    #[error(
        "{} is not on a bpf filesystem and mounting bpffs at {BPFFS_MOUNT} failed (mount -t bpf bpf {BPFFS_MOUNT}; needs root/CAP_SYS_ADMIN)",
        root.display()
    )]
    Mount {
        root: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "{} is not on a bpf filesystem (filesystem magic {magic:#x}); set `bpffs` in the host configuration to a directory below a bpffs mount",
        root.display()
    )]
    NotBpffs { root: PathBuf, magic: i64 },
}

fn io_err(path: &Path, action: &'static str) -> impl FnOnce(io::Error) -> PinError {
    let path = path.to_path_buf();
    move |source| PinError::Io {
        path,
        action,
        source,
    }
}

/// One pinned link, as found in `links/`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkPin {
    pub ifindex: u32,
    pub hook: String,
    pub path: PathBuf,
}

/// The paths below one bpffs root.
#[derive(Clone, Debug)]
pub struct Layout {
    pub root: PathBuf,
}

impl Layout {
    pub fn new(root: impl Into<PathBuf>) -> Layout {
        Layout { root: root.into() }
    }

    /// `<root>/v<ABI_VERSION>`.
    pub fn versioned(&self) -> PathBuf {
        self.root.join(format!("v{ABI_VERSION}"))
    }

    /// The layout directories loaders of older map layouts left below the
    /// root (`v<N>`, N < [`ABI_VERSION`]), oldest first.
    pub fn older(&self) -> Result<Vec<PathBuf>, PinError> {
        let rd = match std::fs::read_dir(&self.root) {
            Ok(rd) => rd,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_err(&self.root, "list layout versions")(e)),
        };
        let mut out = Vec::new();
        for entry in rd {
            let entry = entry.map_err(io_err(&self.root, "list layout versions"))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(v) = name.strip_prefix('v').and_then(|n| n.parse::<u32>().ok())
                && v < ABI_VERSION
            {
                out.push((v, entry.path()));
            }
        }
        out.sort();
        Ok(out.into_iter().map(|(_, p)| p).collect())
    }

    /// Whether vifguard left anything below the root, in this layout or
    /// an older one.
    pub fn has_state(&self) -> Result<bool, PinError> {
        Ok(self.versioned().exists() || !self.older()?.is_empty())
    }

    /// Takes over what loaders of older map layouts left (an upgrade
    /// across an [`ABI_VERSION`] change), each older directory under its
    /// own lock, so a change an older binary is making finishes first. Its
    /// link pins move into this layout's `links/` (a rename: the link stays
    /// attached and runs the older program until the next attach of its
    /// interface re-points it, and detach and sync find it where they
    /// look); one whose name this layout has taken already is detached (it
    /// ran an older program beside this layout's). Then the directory goes:
    /// its maps and programs are unpinned, not destroyed, so a tc filter or
    /// link still running an older program keeps it, and the maps it
    /// reads, until its interface is attached again (`vifguard sync` does
    /// every one). Counters are not carried over: they restart at zero in
    /// this layout's maps. Call with this layout's lock held.
    pub fn adopt_older(&self) -> Result<(), PinError> {
        for dir in self.older()? {
            // `None`: the filesystem refuses flock, and the lock file that
            // stands in for every version's lock is the one held already.
            let _lock = flock_dir(&dir)?;
            for pin in link_pins_in(&dir.join("links"))? {
                let ours = self.link(pin.ifindex, &pin.hook);
                if ours.exists() {
                    crate::sys::bpf::detach_pinned_link(&pin.path)
                        .map_err(io_err(&pin.path, "detach link"))?;
                } else {
                    std::fs::rename(&pin.path, &ours)
                        .map_err(io_err(&pin.path, "move link pin"))?;
                }
            }
            std::fs::remove_dir_all(&dir).map_err(io_err(&dir, "remove"))?;
        }
        Ok(())
    }

    pub fn maps(&self) -> PathBuf {
        self.versioned().join("maps")
    }

    pub fn progs_root(&self) -> PathBuf {
        self.versioned().join("progs")
    }

    pub fn progs(&self, version: &str) -> PathBuf {
        self.progs_root().join(version)
    }

    pub fn links(&self) -> PathBuf {
        self.versioned().join("links")
    }

    pub fn link(&self, ifindex: u32, hook: &str) -> PathBuf {
        self.links().join(format!("{ifindex}-{hook}"))
    }

    /// Every link pin (names that do not parse are ignored).
    pub fn link_pins(&self) -> Result<Vec<LinkPin>, PinError> {
        link_pins_in(&self.links())
    }

    /// The program versions pinned under `progs/`.
    pub fn prog_versions(&self) -> Result<Vec<String>, PinError> {
        let dir = self.progs_root();
        let rd = match std::fs::read_dir(&dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_err(&dir, "list program versions")(e)),
        };
        let mut out = Vec::new();
        for entry in rd {
            let entry = entry.map_err(io_err(&dir, "list program versions"))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if !name.starts_with("tmp-") {
                out.push(name);
            }
        }
        out.sort();
        Ok(out)
    }

    /// Makes sure the root is on a bpffs (mounting one at
    /// [`BPFFS_MOUNT`] if needed) and the directories exist.
    pub fn ensure(&self) -> Result<(), PinError> {
        let magic = fs_magic(&nearest_existing(&self.root))?;
        if magic != BPF_FS_MAGIC {
            if !self.root.starts_with(BPFFS_MOUNT) {
                return Err(PinError::NotBpffs {
                    root: self.root.clone(),
                    magic,
                });
            }
            // Serialize the mount itself: two hotplugs mounting at once
            // would stack two bpffs instances and split the pins.
            let _guard = lock_file(&Path::new(RUN_DIR).join("mount.lock"))?;
            if fs_magic(Path::new(BPFFS_MOUNT))? != BPF_FS_MAGIC {
                crate::sys::fs::mount_bpffs().map_err(|source| PinError::Mount {
                    root: self.root.clone(),
                    source,
                })?;
            }
            let magic = fs_magic(&nearest_existing(&self.root))?;
            if magic != BPF_FS_MAGIC {
                return Err(PinError::NotBpffs {
                    root: self.root.clone(),
                    magic,
                });
            }
        }
        // Created in this order: when the last is there, all are (one
        // stat for every hotplug instead of a mkdir and a stat each).
        if !self.links().is_dir() {
            for d in [self.maps(), self.progs_root(), self.links()] {
                std::fs::create_dir_all(&d).map_err(io_err(&d, "create directory"))?;
            }
        }
        Ok(())
    }

    /// Takes the exclusive lock that serializes every change below the
    /// root: flock on the versioned directory, or, where the filesystem
    /// refuses that, on a lock file under [`RUN_DIR`].
    pub fn lock(&self) -> Result<Lock, PinError> {
        if let Some(lock) = flock_dir(&self.versioned())? {
            return Ok(lock);
        }
        let name = self
            .root
            .to_string_lossy()
            .trim_matches('/')
            .replace('/', "_");
        lock_file(&Path::new(RUN_DIR).join(format!("{name}.lock")))
    }
}

/// The link pins in `dir`, sorted (names that do not parse are ignored).
fn link_pins_in(dir: &Path) -> Result<Vec<LinkPin>, PinError> {
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_err(dir, "list link pins")(e)),
    };
    let mut out = Vec::new();
    for entry in rd {
        let entry = entry.map_err(io_err(dir, "list link pins"))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some((ix, hook)) = name.split_once('-')
            && let Ok(ifindex) = ix.parse::<u32>()
            && HOOKS.iter().any(|(_, h)| *h == hook)
        {
            out.push(LinkPin {
                ifindex,
                hook: hook.to_string(),
                path: entry.path(),
            });
        }
    }
    out.sort_by(|a, b| (a.ifindex, &a.hook).cmp(&(b.ifindex, &b.hook)));
    Ok(out)
}

/// flock(LOCK_EX) on a directory; `None` where its filesystem refuses
/// flock (the caller then locks a file under [`RUN_DIR`]).
fn flock_dir(dir: &Path) -> Result<Option<Lock>, PinError> {
    let f = File::open(dir).map_err(io_err(dir, "open for locking"))?;
    match crate::sys::fs::flock_exclusive(&f) {
        Ok(()) => Ok(Some(Lock { _file: f })),
        Err(e)
            if matches!(
                e.raw_os_error(),
                Some(libc::EINVAL | libc::EOPNOTSUPP | libc::ENOLCK)
            ) =>
        {
            Ok(None)
        }
        Err(e) => Err(io_err(dir, "flock")(e)),
    }
}

/// Held while the lock is; released on drop (or process exit).
pub struct Lock {
    _file: File,
}

fn lock_file(path: &Path) -> Result<Lock, PinError> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(io_err(parent, "create directory"))?;
    }
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(io_err(path, "open lock file"))?;
    crate::sys::fs::flock_exclusive(&f).map_err(io_err(path, "flock"))?;
    Ok(Lock { _file: f })
}

/// `p`, or its nearest ancestor that exists: the filesystem a directory
/// created at `p` would be on.
pub fn nearest_existing(p: &Path) -> PathBuf {
    let mut cur = p.to_path_buf();
    while !cur.exists() {
        match cur.parent() {
            Some(parent) => cur = parent.to_path_buf(),
            None => break,
        }
    }
    cur
}

/// The filesystem magic of the filesystem `p` is on.
pub fn fs_magic(p: &Path) -> Result<i64, PinError> {
    crate::sys::fs::fs_magic(p).map_err(io_err(p, "statfs"))
}
