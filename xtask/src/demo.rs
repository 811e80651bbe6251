//! `cargo xtask demo [--json]`: builds vifguard and runs the demo host.

use std::process::Command;

use anyhow::Result;

pub fn run(args: &[String]) -> Result<()> {
    crate::bootstrap::run()?;
    crate::bootstrap::require_root("the demo creates network namespaces and loads eBPF programs")?;
    crate::cargo(&["build", "--quiet", "-p", "filter-user", "--bin", "vifguard"])?;
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    crate::run(
        Command::new(cargo)
            .args([
                "run",
                "--quiet",
                "-p",
                "testbed",
                "--bin",
                "vifguard-demo",
                "--",
            ])
            .args(args),
    )
}
