//! The previous release of vifguard, built from this repository's history
//! for the upgrade test (`upgrade_from_the_previous_release_at_full_rate`
//! in filter-user/tests/cli/upgrade.rs), which hands a host that release
//! left over to the current binary while frames flow.
//!
//! The release is [`COMMIT`]: the last datapath before POLICY.md revision
//! 2 (map layout v1, 24 reasons), the one hosts ran before this layout.
//! Its source is taken with `git archive` (no worktree), built once in
//! its own target directory under `target/previous-release/` and reused.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

pub const COMMIT: &str = "15dcf003e37b1cc7a6170a510908e24d367082c4";

/// Builds (once) the previous release's `vifguard` and returns its path.
pub fn build() -> Result<PathBuf> {
    let root = crate::release::target_dir()?
        .join("previous-release")
        .join(COMMIT);
    let bin = root.join("target/debug/vifguard");
    if bin.is_file() {
        return Ok(bin);
    }
    let repo = crate::repo_root()?;
    let present = Command::new("git")
        .args(["cat-file", "-e", &format!("{COMMIT}^{{commit}}")])
        .current_dir(&repo)
        .status()
        .context("running git")?;
    if !present.success() {
        bail!(
            "the previous release ({COMMIT}) is not in this clone (a shallow clone?): `git fetch --unshallow`, then retry"
        );
    }
    let src = root.join("src");
    if !src.join("Cargo.toml").is_file() {
        let _ = std::fs::remove_dir_all(&src);
        std::fs::create_dir_all(&src).with_context(|| format!("creating {}", src.display()))?;
        let mut archive = Command::new("git")
            .args(["archive", COMMIT])
            .current_dir(&repo)
            .stdout(Stdio::piped())
            .spawn()
            .context("running git archive")?;
        let tar = Command::new("tar")
            .arg("-x")
            .arg("-C")
            .arg(&src)
            .stdin(archive.stdout.take().context("git archive's output")?)
            .status()
            .context("running tar")?;
        let archived = archive.wait().context("waiting for git archive")?;
        if !tar.success() || !archived.success() {
            let _ = std::fs::remove_dir_all(&src);
            bail!("extracting {COMMIT} into {} failed", src.display());
        }
    }
    eprintln!(
        "xtask: building the previous release ({COMMIT}) for the upgrade test (once; about 4 minutes)"
    );
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    crate::run(
        Command::new(cargo)
            .args(["build", "-p", "filter-user", "--bin", "vifguard"])
            .current_dir(&src)
            .env("CARGO_TARGET_DIR", root.join("target"))
            .env_remove("RUSTFLAGS")
            .env_remove("CARGO_ENCODED_RUSTFLAGS"),
    )?;
    Ok(bin)
}
