//! Network device names and indexes (if_nametoindex(3) and friends).

use std::ffi::{CStr, CString};
use std::io;

/// The interface index of `name` in the caller's network namespace.
pub fn ifindex(name: &str) -> Option<u32> {
    let c = CString::new(name).ok()?;
    // SAFETY: valid NUL-terminated name.
    let ix = unsafe { libc::if_nametoindex(c.as_ptr()) };
    (ix != 0).then_some(ix)
}

/// The name of interface `ifindex`, if it exists.
pub fn ifname(ifindex: u32) -> Option<String> {
    let mut buf = [0 as libc::c_char; libc::IF_NAMESIZE];
    // SAFETY: buf has IF_NAMESIZE bytes as if_indextoname requires.
    let p = unsafe { libc::if_indextoname(ifindex, buf.as_mut_ptr()) };
    if p.is_null() {
        return None;
    }
    // SAFETY: on success buf holds a NUL-terminated name.
    let s = unsafe { CStr::from_ptr(buf.as_ptr()) };
    Some(s.to_string_lossy().into_owned())
}

/// Every interface of the caller's network namespace.
pub fn interfaces() -> io::Result<Vec<(u32, String)>> {
    // SAFETY: if_nameindex returns a list freed below, or NULL.
    let list = unsafe { libc::if_nameindex() };
    if list.is_null() {
        return Err(io::Error::last_os_error());
    }
    let mut out = Vec::new();
    let mut p = list;
    loop {
        // SAFETY: p points into the array, which ends with a zero entry.
        let e = unsafe { &*p };
        if e.if_index == 0 || e.if_name.is_null() {
            break;
        }
        // SAFETY: if_name is a NUL-terminated string of the list.
        let name = unsafe { CStr::from_ptr(e.if_name) };
        out.push((e.if_index, name.to_string_lossy().into_owned()));
        // SAFETY: still inside the array (the terminator is not passed).
        p = unsafe { p.add(1) };
    }
    // SAFETY: list came from if_nameindex.
    unsafe { libc::if_freenameindex(list) };
    Ok(out)
}
