//! Workspace hygiene checks, as `#[test]`s so plain `cargo test --workspace` enforces them.
//!
//! Modeled on rust-analyzer's `xtask/src/tidy.rs` and omicron's `check_workspace_deps.rs`.
//! Each check collects every violation before failing, and each message names the file
//! and the fix, so one run tells you everything to change.

use std::fs;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    crate::workspace_root().expect("xtask lives one level below the workspace root")
}

/// Directories directly under `root/parent` (e.g. every crate in `crates/`), sorted.
fn subdirs(root: &Path, parent: &str) -> Vec<String> {
    let dir = root.join(parent);
    let mut names: Vec<String> = fs::read_dir(&dir)
        .unwrap_or_else(|err| panic!("failed to read `{}`: {err}", dir.display()))
        .filter_map(Result::ok)
        .filter(|entry| entry.file_type().is_ok_and(|kind| kind.is_dir()))
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[track_caller]
fn assert_no_problems(check: &str, problems: &[String]) {
    assert!(
        problems.is_empty(),
        "{check}: {} problem(s)\n\n{}\n",
        problems.len(),
        problems.join("\n")
    );
}

/// Every manifest, in the members order of the workspace `Cargo.toml`.
fn member_manifests(root: &Path) -> Vec<PathBuf> {
    let mut manifests = Vec::new();
    for parent in ["crates", "bins"] {
        for name in subdirs(root, parent) {
            manifests.push(root.join(parent).join(name).join("Cargo.toml"));
        }
    }
    manifests.push(root.join("xtask").join("Cargo.toml"));
    manifests.push(root.join("tests").join("Cargo.toml"));
    manifests
}

/// Whether a manifest opts into the workspace lints, as `[lints]\nworkspace = true`
/// or the dotted `lints.workspace = true`.
fn has_workspace_lints(manifest: &str) -> bool {
    let mut in_lints = false;
    for line in manifest.lines() {
        let line: String = line
            .split('#')
            .next()
            .unwrap_or("")
            .split_whitespace()
            .collect();
        if line.starts_with('[') {
            in_lints = line == "[lints]";
        } else if (in_lints && line == "workspace=true")
            || (!in_lints && line == "lints.workspace=true")
        {
            return true;
        }
    }
    false
}

#[test]
fn every_member_uses_workspace_lints() {
    let root = root();
    let mut problems = Vec::new();
    for manifest in member_manifests(&root) {
        let shown = manifest
            .strip_prefix(&root)
            .unwrap_or(&manifest)
            .display()
            .to_string();
        match fs::read_to_string(&manifest) {
            Ok(text) if has_workspace_lints(&text) => {}
            Ok(_) => problems.push(format!(
                "{shown}: does not inherit the workspace lints\n  fix: add `[lints]` followed by `workspace = true`"
            )),
            Err(err) => problems.push(format!(
                "{shown}: cannot be read ({err})\n  fix: every directory under crates/ and bins/ must be a crate"
            )),
        }
    }
    assert_no_problems("workspace lints", &problems);
}

/// Every `.rs` file under `dir`, skipping build output and fuzz targets.
fn rust_files(dir: &Path, files: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.filter_map(Result::ok) {
        let path = entry.path();
        let name = entry.file_name();
        let is_dir = entry.file_type().is_ok_and(|kind| kind.is_dir());
        if is_dir {
            if name != "target" && name != "fuzz" && !name.to_string_lossy().starts_with('.') {
                rust_files(&path, files);
            }
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            files.push(path);
        }
    }
}

#[test]
fn every_rust_file_starts_with_a_module_doc() {
    let root = root();
    let mut files = Vec::new();
    for dir in ["crates", "bins", "xtask", "tests"] {
        rust_files(&root.join(dir), &mut files);
    }
    files.sort();
    assert!(
        !files.is_empty(),
        "found no .rs files under {}",
        root.display()
    );
    let mut problems = Vec::new();
    for file in files {
        let shown = file
            .strip_prefix(&root)
            .unwrap_or(&file)
            .display()
            .to_string();
        let text = fs::read_to_string(&file)
            .unwrap_or_else(|err| panic!("failed to read `{shown}`: {err}"));
        let first_line = text
            .trim_start_matches('\u{feff}')
            .lines()
            .next()
            .unwrap_or("");
        if !first_line.starts_with("//!") {
            problems.push(format!(
                "{shown}: first line is not a `//!` module doc\n  fix: start the file with `//! <what this module is for and why>` (STYLE.md §6)"
            ));
        }
    }
    assert_no_problems("module docs", &problems);
}

/// The `crates/<dir>` or `bins/<dir>` a Markdown heading names, if it is a `### ` heading.
/// Backticks are ignored, and text after the path (`### crates/core — domain types`) too.
fn heading_target(line: &str) -> Option<String> {
    let rest = line.strip_prefix("### ")?;
    let path = rest.replace('`', "");
    let path = path.split_whitespace().next()?.trim_end_matches('/');
    (path.starts_with("crates/") || path.starts_with("bins/")).then(|| path.to_owned())
}

#[test]
fn architecture_md_has_a_heading_per_crate_and_bin() {
    let root = root();
    let path = root.join("ARCHITECTURE.md");
    let text = fs::read_to_string(&path).unwrap_or_else(|err| {
        panic!(
            "ARCHITECTURE.md: cannot be read at `{}` ({err})\n  fix: write it with one `### crates/<dir>` or `### bins/<dir>` heading per directory (STYLE.md §9)",
            path.display()
        )
    });
    let headings: Vec<String> = text.lines().filter_map(heading_target).collect();
    let mut expected = Vec::new();
    for parent in ["crates", "bins"] {
        for name in subdirs(&root, parent) {
            expected.push(format!("{parent}/{name}"));
        }
    }
    let mut problems = Vec::new();
    for dir in &expected {
        if !headings.contains(dir) {
            problems.push(format!(
                "ARCHITECTURE.md: no heading for `{dir}`\n  fix: add a `### {dir}` section to the Code Map saying what it owns"
            ));
        }
    }
    for heading in &headings {
        if !expected.contains(heading) {
            problems.push(format!(
                "ARCHITECTURE.md: heading `### {heading}` names a directory that does not exist\n  fix: remove or rename the section"
            ));
        }
    }
    assert_no_problems("ARCHITECTURE.md code map", &problems);
}

#[cfg(test)]
mod tests {
    use super::{has_workspace_lints, heading_target};

    #[test]
    fn recognises_workspace_lints() {
        let cases = [
            (
                "[package]\nname = \"x\"\n\n[lints]\nworkspace = true\n",
                true,
            ),
            ("[lints]\nworkspace=true # inherit\n", true),
            ("lints.workspace = true\n", true),
            ("[lints]\n\n[dependencies]\nworkspace = true\n", false),
            ("[lints.clippy]\nworkspace = true\n", false),
            ("[package]\nname = \"x\"\n", false),
        ];
        for (manifest, expected) in cases {
            assert_eq!(has_workspace_lints(manifest), expected, "{manifest:?}");
        }
    }

    #[test]
    fn reads_code_map_headings() {
        let cases = [
            ("### crates/core", Some("crates/core")),
            ("### `crates/k8s-rollout`", Some("crates/k8s-rollout")),
            ("### bins/deploy/ — the deploy binary", Some("bins/deploy")),
            ("## crates/core", None),
            ("### Testing", None),
        ];
        for (line, expected) in cases {
            assert_eq!(heading_target(line).as_deref(), expected, "{line:?}");
        }
    }
}
