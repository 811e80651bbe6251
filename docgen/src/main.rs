//! `docgen OUT_DIR`: vifguard's man pages and shell completions, generated
//! from the clap definition the binary parses (`filter_user::cli::Cli`),
//! so they cannot drift from `vifguard --help`. `cargo xtask package` runs
//! it and ships the output.
//!
//! Why a crate of its own rather than a hidden `vifguard` subcommand: the
//! generators (clap_mangen, clap_complete) would otherwise be linked into
//! the static binary a hotplug starts once per vif, for output that only
//! the package build needs. And not in xtask itself: xtask must build
//! before `cargo xtask bootstrap` has installed the eBPF toolchain that
//! building filter-user needs.
//!
//! Writes `OUT_DIR/man/vifguard.8` and one `vifguard-<subcommand>.8` per
//! subcommand (section 8: the binary is in /usr/sbin and needs root), and
//! `OUT_DIR/completions/` for bash (`vifguard`), zsh (`_vifguard`) and
//! fish (`vifguard.fish`).

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::CommandFactory;
use clap_complete::Shell;
use filter_user::cli::Cli;

const SECTION: &str = "8";

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [out] = args.as_slice() else {
        bail!("usage: docgen OUT_DIR");
    };
    let out = PathBuf::from(out);
    let pages = man_pages(&out.join("man"))?;
    let completions = completions(&out.join("completions"))?;
    eprintln!(
        "docgen: {} man pages, {} completion files in {}",
        pages.len(),
        completions.len(),
        out.display()
    );
    Ok(())
}

/// The command as the binary sees it, with `help` left out: clap's `help`
/// subcommand is not one an operator looks up in `man`.
fn command() -> clap::Command {
    let mut cmd = Cli::command().disable_help_subcommand(true);
    // Builds the display names (`vifguard-attach`) the pages are named by.
    cmd.build();
    cmd
}

/// Writes the page of the command and of every visible subcommand, at
/// any depth; returns their paths.
fn man_pages(dir: &Path) -> Result<Vec<PathBuf>> {
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut written = Vec::new();
    let root = command();
    let version = root.get_version().unwrap_or_default().to_string();
    let mut todo = vec![root];
    while let Some(cmd) = todo.pop() {
        todo.extend(cmd.get_subcommands().filter(|s| !s.is_hide_set()).cloned());
        let page = clap_mangen::Man::new(cmd)
            .section(SECTION)
            .source(format!("vifguard {version}"))
            .manual("vifguard");
        let path = page
            .generate_to(dir)
            .with_context(|| format!("writing a man page into {}", dir.display()))?;
        written.push(path);
    }
    written.sort();
    Ok(written)
}

/// Writes the completion scripts; returns their paths.
fn completions(dir: &Path) -> Result<Vec<PathBuf>> {
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    [Shell::Bash, Shell::Zsh, Shell::Fish]
        .into_iter()
        .map(|shell| {
            clap_complete::generate_to(shell, &mut command(), "vifguard", dir)
                .with_context(|| format!("writing the {shell} completion into {}", dir.display()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("docgen-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        d
    }

    fn names(paths: &[PathBuf]) -> Vec<String> {
        paths
            .iter()
            .filter_map(|p| p.file_name())
            .map(|n| n.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn a_page_for_the_command_and_each_subcommand() {
        let d = tmp("man");
        let pages = names(&man_pages(&d).unwrap());
        assert!(pages.contains(&"vifguard.8".to_string()), "{pages:?}");
        for sub in Cli::command().get_subcommands() {
            let want = format!("vifguard-{}.8", sub.get_name());
            assert!(pages.contains(&want), "{want} missing from {pages:?}");
        }
        assert!(!pages.iter().any(|p| p == "vifguard-help.8"), "{pages:?}");
        let attach = fs::read_to_string(d.join("vifguard-attach.8")).unwrap();
        assert!(attach.contains(".TH vifguard-attach 8"), "{attach}");
        assert!(attach.contains("xenbus"), "the options are documented");
        let main = fs::read_to_string(d.join("vifguard.8")).unwrap();
        assert!(main.contains("Exit codes"), "the after-help text is kept");
        let _ = fs::remove_dir_all(&d);
    }

    #[test]
    fn completions_for_bash_zsh_and_fish() {
        let d = tmp("completions");
        let files = names(&completions(&d).unwrap());
        assert_eq!(files, ["vifguard.bash", "_vifguard", "vifguard.fish"]);
        let bash = fs::read_to_string(d.join("vifguard.bash")).unwrap();
        assert!(bash.contains("setup-vif-rules"), "subcommands complete");
        let _ = fs::remove_dir_all(&d);
    }
}
