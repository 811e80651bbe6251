//! The host configuration (`/etc/vifguard/vifguard.toml`).
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(c) =
        filter_user::config::HostConfig::parse(text, Path::new("/etc/vifguard/vifguard.toml"))
    {
        // What the lookups of a parsed configuration do with any bridge.
        let _ = c.network_default_for(Some("xenbr0"));
        let _ = c.dhcp_servers_for(Some("xenbr0"));
        let _ = c.network_default_for(None);
    }
});
