//! The few bpf(2) commands vifguard issues itself: ones aya does not offer
//! (BPF_LINK_DETACH, BPF_MAP_LOOKUP_BATCH, a wait for running programs),
//! and opening a pinned program by path, which through aya would first run
//! its kernel feature probes (about 17 probe loads, a good share of a
//! hotplug's time).

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::path::Path;

use aya_obj::generated::{bpf_cmd, bpf_link_type, bpf_map_type};

const BPF_MAP_CREATE: libc::c_long = bpf_cmd::BPF_MAP_CREATE as libc::c_long;
const BPF_MAP_UPDATE_ELEM: libc::c_long = bpf_cmd::BPF_MAP_UPDATE_ELEM as libc::c_long;
const BPF_OBJ_GET: libc::c_long = bpf_cmd::BPF_OBJ_GET as libc::c_long;
const BPF_MAP_LOOKUP_BATCH: libc::c_long = bpf_cmd::BPF_MAP_LOOKUP_BATCH as libc::c_long;
const BPF_LINK_DETACH: libc::c_long = bpf_cmd::BPF_LINK_DETACH as libc::c_long;
const BPF_OBJ_GET_INFO_BY_FD: libc::c_long = bpf_cmd::BPF_OBJ_GET_INFO_BY_FD as libc::c_long;

/// A zero-padded prefix of `union bpf_attr`, large enough for the
/// commands used here.
#[repr(C, align(8))]
struct BpfAttr([u8; 24]);

/// bpf(2) with `attr` as the attribute union.
///
/// # Safety
/// `attr` is the prefix of `union bpf_attr` that `cmd` reads, and every
/// pointer in it is valid for what the kernel reads or writes there.
unsafe fn bpf<A>(cmd: libc::c_long, attr: &mut A) -> io::Result<libc::c_long> {
    // SAFETY: the caller's promise; the size passed is the attribute's own.
    let rc = unsafe { libc::syscall(libc::SYS_bpf, cmd, attr as *mut A, std::mem::size_of::<A>()) };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

/// Opens the bpf object (program, map or link) pinned at `path`.
pub fn obj_get(path: &Path) -> io::Result<OwnedFd> {
    let cpath = CString::new(path.as_os_str().as_encoded_bytes())
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // BPF_OBJ_GET: pathname (u64) first.
    let mut attr = BpfAttr([0; 24]);
    attr.0[..8].copy_from_slice(&(cpath.as_ptr() as u64).to_ne_bytes());
    // SAFETY: a BPF_OBJ_GET prefix; the path outlives the call.
    let fd = unsafe { bpf(BPF_OBJ_GET, &mut attr) }?;
    // SAFETY: BPF_OBJ_GET returned a new descriptor we own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// Detaches the bpf link pinned at `path` from its hook now
/// (BPF_LINK_DETACH), then removes the pin. Removing only the pin would
/// leave the kernel to detach the link later, from a work item: a new
/// attach of the same program to the same hook in that window fails with
/// EEXIST (tests/tcx_links.rs shows it). Returns false if there was no pin.
pub fn detach_pinned_link(path: &Path) -> io::Result<bool> {
    match obj_get(path) {
        Ok(fd) => {
            // BPF_LINK_DETACH: link_fd (u32) first.
            let mut attr = BpfAttr([0; 24]);
            attr.0[..4].copy_from_slice(&(fd.as_raw_fd() as u32).to_ne_bytes());
            // Links whose kind cannot be detached, or that are detached
            // already, go with their pin.
            // SAFETY: a BPF_LINK_DETACH prefix, no pointers.
            if let Err(e) = unsafe { bpf(BPF_LINK_DETACH, &mut attr) }
                && !matches!(
                    e.raw_os_error(),
                    Some(libc::EOPNOTSUPP | libc::ENOLINK | libc::EINVAL)
                )
            {
                return Err(e);
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        // Not a link (or unreadable): still remove the pin below.
        Err(_) => {}
    }
    match std::fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// The interface the TCX link pinned at `path` is attached to: `None`
/// when there is no pin, or the link is not a TCX link or no longer
/// attached (its interface went away: the kernel then reports ifindex 0).
pub fn pinned_tcx_ifindex(path: &Path) -> io::Result<Option<u32>> {
    const LINK_TYPE_TCX: u32 = bpf_link_type::BPF_LINK_TYPE_TCX as u32;
    let fd = match obj_get(path) {
        Ok(fd) => fd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    // struct bpf_link_info: type, id, prog_id (u32 each), then a union
    // aligned to 8 whose TCX member starts with the ifindex (u32).
    let mut info = [0u32; 16];
    // union bpf_attr, info part: bpf_fd (u32), info_len (u32), info (u64).
    #[repr(C)]
    struct InfoAttr {
        bpf_fd: u32,
        info_len: u32,
        info: u64,
    }
    let mut attr = InfoAttr {
        bpf_fd: fd.as_raw_fd() as u32,
        info_len: std::mem::size_of_val(&info) as u32,
        info: info.as_mut_ptr() as u64,
    };
    // SAFETY: an info-by-fd prefix; `info` has `info_len` writable bytes
    // and outlives the call.
    unsafe { bpf(BPF_OBJ_GET_INFO_BY_FD, &mut attr) }?;
    Ok((info[0] == LINK_TYPE_TCX && info[4] != 0).then_some(info[4]))
}

/// Waits until the BPF programs that are running have finished: after
/// that, no program still holds a map element unlinked before the wait.
pub struct ProgramFence {
    /// A one-entry array of maps; writing its entry is the wait.
    outer: OwnedFd,
    /// What is written there, each time the same.
    inner: OwnedFd,
}

impl ProgramFence {
    pub fn new() -> io::Result<ProgramFence> {
        let inner = map_create(bpf_map_type::BPF_MAP_TYPE_ARRAY, None, c"vifguard_inner")?;
        let outer = map_create(
            bpf_map_type::BPF_MAP_TYPE_ARRAY_OF_MAPS,
            Some(inner.as_fd()),
            c"vifguard_fence",
        )?;
        Ok(ProgramFence { outer, inner })
    }

    /// Returns once every BPF program that was running when it was called
    /// has returned. The kernel waits for an RCU grace period after every
    /// update of a map of maps from userspace, "so that userspace, when we
    /// return to it, knows that all non-sleepable programs that could be
    /// running use the new map value" (kernel/bpf/syscall.c,
    /// maybe_wait_bpf_programs; commit 1ae80cf31938 of 2018, older than
    /// vifguard's 5.8 floor). TC and XDP programs are not sleepable. It
    /// takes a grace period: about 10-25 ms on the test machines.
    pub fn wait(&self) -> io::Result<()> {
        // union bpf_attr, element part: map_fd (u32, padded), key, value
        // (u64 pointers), flags.
        #[repr(C)]
        struct UpdateAttr {
            map_fd: u32,
            _pad: u32,
            key: u64,
            value: u64,
            flags: u64,
        }
        let key: u32 = 0;
        let value: u32 = self.inner.as_raw_fd() as u32;
        let mut attr = UpdateAttr {
            map_fd: self.outer.as_raw_fd() as u32,
            _pad: 0,
            key: &key as *const u32 as u64,
            value: &value as *const u32 as u64,
            flags: 0,
        };
        // SAFETY: an element-update prefix; key and value are the 4 bytes
        // an array of maps reads (an index and a map descriptor) and
        // outlive the call.
        unsafe { bpf(BPF_MAP_UPDATE_ELEM, &mut attr) }?;
        Ok(())
    }
}

/// A one-entry array (of u32, or of maps like `inner`) named `name`.
fn map_create(
    map_type: bpf_map_type,
    inner: Option<BorrowedFd<'_>>,
    name: &CStr,
) -> io::Result<OwnedFd> {
    map_create_sized(
        MapShape {
            map_type,
            key_size: 4,
            value_size: 4,
            max_entries: 1,
            flags: 0,
        },
        inner,
        name,
    )
}

/// The shape of a map to create: what BPF_MAP_CREATE checks.
#[derive(Clone, Copy, Debug)]
pub struct MapShape {
    pub map_type: bpf_map_type,
    pub key_size: u32,
    pub value_size: u32,
    pub max_entries: u32,
    pub flags: u32,
}

/// Creates a map of `shape` and closes it again: whether this kernel has
/// that kind of map (EINVAL when it does not know the type). `vifguard
/// check` asks this of each map type the object declares, so a missing one
/// is named instead of failing the object's load as a whole.
pub fn probe_map(shape: MapShape) -> io::Result<()> {
    map_create_sized(shape, None, c"vifguard_probe").map(drop)
}

fn map_create_sized(
    shape: MapShape,
    inner: Option<BorrowedFd<'_>>,
    name: &CStr,
) -> io::Result<OwnedFd> {
    // union bpf_attr, map creation part, up to the name.
    #[repr(C)]
    struct CreateAttr {
        map_type: u32,
        key_size: u32,
        value_size: u32,
        max_entries: u32,
        map_flags: u32,
        inner_map_fd: u32,
        numa_node: u32,
        map_name: [u8; 16],
    }
    let mut attr = CreateAttr {
        map_type: shape.map_type as u32,
        key_size: shape.key_size,
        value_size: shape.value_size,
        max_entries: shape.max_entries,
        map_flags: shape.flags,
        inner_map_fd: inner.map_or(0, |fd| fd.as_raw_fd() as u32),
        numa_node: 0,
        map_name: [0; 16],
    };
    let name = name.to_bytes();
    // The kernel wants the name NUL-terminated within its 16 bytes.
    let n = name.len().min(15);
    attr.map_name[..n].copy_from_slice(&name[..n]);
    // SAFETY: a map-creation prefix without pointers.
    let fd = unsafe { bpf(BPF_MAP_CREATE, &mut attr) }?;
    // SAFETY: BPF_MAP_CREATE returned a new descriptor we own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// Every entry of the hash map by BPF_MAP_LOOKUP_BATCH; `None` when the
/// kernel has no batch operations for it.
///
/// The kernel writes `count` keys and values of the map's own sizes into
/// our buffers, so the map must be the typed aya map: aya checked its key
/// and value sizes against `K` and `V` when it was opened. A bare
/// descriptor does not compile:
///
/// ```compile_fail
/// # fn f(fd: std::os::fd::BorrowedFd<'_>) {
/// let _ = filter_user::sys::bpf::lookup_batch::<u32, u64>(fd);
/// # }
/// ```
pub fn lookup_batch<K: aya::Pod, V: aya::Pod>(
    map: &aya::maps::HashMap<aya::maps::MapData, K, V>,
) -> io::Result<Option<Vec<(K, V)>>> {
    lookup_batch_with(map, |k, v| (*k, *v))
}

/// As [`lookup_batch`], keeping `keep(key, value)` of each entry: a
/// caller that needs a few bytes of each value does not hold (and copy)
/// them whole. The chunk buffers are allocated once.
pub fn lookup_batch_with<K: aya::Pod, V: aya::Pod, T>(
    map: &aya::maps::HashMap<aya::maps::MapData, K, V>,
    mut keep: impl FnMut(&K, &V) -> T,
) -> io::Result<Option<Vec<T>>> {
    use aya::maps::IterableMap as _;
    use std::os::fd::AsFd as _;
    let fd = map.map().fd().as_fd();
    // union bpf_attr, batch part: in_batch, out_batch, keys, values (u64
    // pointers), count, map_fd (u32), elem_flags, flags (u64).
    #[repr(C)]
    struct BatchAttr {
        in_batch: u64,
        out_batch: u64,
        keys: u64,
        values: u64,
        count: u32,
        map_fd: u32,
        elem_flags: u64,
        flags: u64,
    }
    let mut chunk: usize = 256;
    let mut out = Vec::new();
    // The hash map's position token (a bucket index, u32; room for more).
    let mut token_in = [0u64; 1];
    let mut token_out = [0u64; 1];
    let mut first = true;
    let mut keys: Vec<K> = Vec::new();
    let mut values: Vec<V> = Vec::new();
    loop {
        keys.clear();
        values.clear();
        keys.reserve_exact(chunk);
        values.reserve_exact(chunk);
        let mut attr = BatchAttr {
            in_batch: if first {
                0
            } else {
                token_in.as_mut_ptr() as u64
            },
            out_batch: token_out.as_mut_ptr() as u64,
            keys: keys.as_mut_ptr() as u64,
            values: values.as_mut_ptr() as u64,
            count: chunk as u32,
            map_fd: fd.as_raw_fd() as u32,
            elem_flags: 0,
            flags: 0,
        };
        // SAFETY: a batch-lookup prefix; keys/values have room for `count`
        // elements of the map's key and value size (aya checked them
        // against K and V when it opened the typed map); the tokens are
        // 8 bytes.
        let done = match unsafe { bpf(BPF_MAP_LOOKUP_BATCH, &mut attr) } {
            Ok(_) => false,
            Err(e) => match e.raw_os_error() {
                Some(libc::ENOENT) => true,
                Some(libc::ENOSPC) if chunk < 1 << 20 => {
                    // One bucket holds more than `chunk` entries: retry bigger.
                    chunk *= 4;
                    continue;
                }
                // 524: the kernel's ENOTSUPP, for map types without batch ops.
                Some(libc::EINVAL | 524 | libc::EOPNOTSUPP) if first => return Ok(None),
                _ => return Err(e),
            },
        };
        let n = (attr.count as usize).min(chunk);
        // SAFETY: the kernel wrote `n` keys and values.
        unsafe {
            keys.set_len(n);
            values.set_len(n);
        }
        out.extend(keys.iter().zip(&values).map(|(k, v)| keep(k, v)));
        if done {
            return Ok(Some(out));
        }
        token_in = token_out;
        first = false;
    }
}
