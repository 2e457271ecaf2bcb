//! `cargo xtask man [DIR]`: the man pages of the three binaries, one per command and
//! subcommand (`slipway-deploy.1`, `slipway-deploy-run.1`, …), into DIR (default
//! `target/man`).
//!
//! xtask stays free of the library crates (as `bench` does): each binary renders its own pages
//! with clap_mangen through its hidden `man DIR` subcommand, run here with `cargo run`.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::{Context as _, Result, bail};
use crate::process::cargo;

/// The binaries whose pages are written.
const BINARIES: [&str; 3] = ["slipway-deploy", "slipway-rollback", "slipway-audit"];

pub(crate) fn run(root: &Path, rest: &[String]) -> Result<Vec<PathBuf>> {
    let dir = match rest {
        [] => root.join("target/man"),
        [dir] => PathBuf::from(dir),
        _ => bail!("`man` takes at most one argument, the directory"),
    };
    for binary in BINARIES {
        let status = Command::new(cargo())
            .current_dir(root)
            .args(["run", "--quiet", "-p", binary, "--", "man"])
            .arg(&dir)
            .status()
            .with_context(|| format!("failed to spawn `cargo run -p {binary}`"))?;
        if !status.success() {
            bail!("`{binary} man {}` failed ({status})", dir.display());
        }
    }
    let mut pages: Vec<PathBuf> = std::fs::read_dir(&dir)
        .with_context(|| format!("reading `{}`", dir.display()))?
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "1"))
        .collect();
    pages.sort();
    Ok(pages)
}
