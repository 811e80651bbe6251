//! The repository explains itself: every relative link in its Markdown
//! (README, BENCHMARKS, docs/) names a file of the repository, and every
//! `#anchor` a heading of that file. Checked by `cargo xtask test` as a
//! unit test of xtask.

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    fn repo() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("xtask lives in the repository")
            .to_path_buf()
    }

    /// The targets of `[text](target)` links in `md`.
    fn links(md: &str) -> Vec<String> {
        md.split("](")
            .skip(1)
            .filter_map(|rest| rest.split_once(')').map(|(t, _)| t.to_string()))
            .collect()
    }

    /// GitHub's anchor of a heading: lower case, punctuation dropped,
    /// spaces as dashes.
    fn anchor(heading: &str) -> String {
        heading
            .trim_start_matches('#')
            .trim()
            .to_lowercase()
            .chars()
            .filter(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_'))
            .map(|c| if c == ' ' { '-' } else { c })
            .collect()
    }

    #[test]
    fn every_markdown_link_resolves_inside_the_repository() {
        let root = repo();
        let mut files = vec![root.join("README.md"), root.join("BENCHMARKS.md")];
        for e in std::fs::read_dir(root.join("docs")).expect("docs/") {
            let p = e.expect("entry").path();
            if p.extension().is_some_and(|x| x == "md") {
                files.push(p);
            }
        }
        let mut broken = Vec::new();
        let mut checked = 0;
        for f in &files {
            let text = std::fs::read_to_string(f).expect("read the Markdown file");
            for t in links(&text) {
                if t.starts_with("http://") || t.starts_with("https://") || t.starts_with("mailto:")
                {
                    continue;
                }
                checked += 1;
                let (path, frag) = t.split_once('#').unwrap_or((&t, ""));
                let target = if path.is_empty() {
                    f.clone()
                } else {
                    f.parent().expect("a directory").join(path)
                };
                if !target.starts_with(&root) || !target.exists() {
                    broken.push(format!("{} -> {t}: no such file", f.display()));
                    continue;
                }
                if !frag.is_empty() && target.is_file() {
                    let body = std::fs::read_to_string(&target).unwrap_or_default();
                    if !body
                        .lines()
                        .filter(|l| l.starts_with('#'))
                        .any(|l| anchor(l) == frag)
                    {
                        broken.push(format!("{} -> {t}: no such heading", f.display()));
                    }
                }
            }
        }
        assert!(
            checked > 10,
            "found only {checked} links: is the parser right?"
        );
        assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
    }

    #[test]
    fn the_link_parser_finds_what_a_reader_clicks() {
        assert_eq!(
            links("see [a](docs/a.md#x) and [b](b.md), [c](https://e.org)"),
            ["docs/a.md#x", "b.md", "https://e.org"]
        );
        assert_eq!(anchor("## The vifguard command"), "the-vifguard-command");
    }
}
