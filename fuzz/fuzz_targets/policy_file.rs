//! The host policy file (`policy_dir/<mac>.toml`): any text parses or is
//! refused with an error, never a panic.
#![no_main]

use std::path::Path;

use filter_user::policy::MacAddr;
use filter_user::xen::sources::VifId;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(vif) = VifId::from_xenbus_path("backend/vif/5/0", 0) else {
        return;
    };
    let mac = MacAddr([0x00, 0x16, 0x3e, 0x00, 0x05, 0x00]);
    let _ = filter_user::xen::sources::policy_file::parse(
        text,
        Path::new("/etc/vifguard/vifs/00-16-3e-00-05-00.toml"),
        vif,
        mac,
    );
});
