//! The [`Scanner`] implementations over Trivy: a report file, the `trivy` binary, and a cosign
//! `vuln` attestation.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use slipway_core::ImageRef;

use crate::trivy::{parse_report, read_report};
use crate::{Error, ReportConfig, ScanReport, Scanner, from_vuln_attestation};

/// A Trivy JSON report written by CI (`trivy image --format json --output trivy.json`).
#[derive(Debug, Clone)]
pub struct TrivyReportFile {
    /// The report.
    pub path: PathBuf,
    /// Size limit.
    pub config: ReportConfig,
}

impl TrivyReportFile {
    /// A report file with the default size limit.
    pub fn new(path: impl Into<PathBuf>) -> TrivyReportFile {
        TrivyReportFile {
            path: path.into(),
            config: ReportConfig::default(),
        }
    }
}

#[async_trait::async_trait]
impl Scanner for TrivyReportFile {
    async fn scan(&self, image: &ImageRef) -> Result<ScanReport, Error> {
        // Reading a local file of bounded size; not worth a blocking-pool hop.
        let report = read_report(&self.path, &self.config)?;
        report.ensure_about(image)?;
        Ok(report)
    }
}

/// Runs `trivy image --format json --quiet IMAGE@DIGEST` and parses its stdout.
#[derive(Debug, Clone)]
pub struct TrivyCli {
    /// The `trivy` executable.
    pub program: PathBuf,
    /// Size limit for its output.
    pub config: ReportConfig,
}

impl TrivyCli {
    /// Finds an executable `trivy` in the directories of `path_var` (the value of `PATH`, passed
    /// in because libraries do not read the environment).
    pub fn find_on_path(path_var: &OsStr) -> Option<TrivyCli> {
        std::env::split_paths(path_var)
            .map(|dir| dir.join("trivy"))
            .find(|candidate| is_executable(candidate))
            .map(|program| TrivyCli {
                program,
                config: ReportConfig::default(),
            })
    }
}

fn is_executable(path: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        path.metadata()
            .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
    }
    #[cfg(not(unix))]
    {
        path.is_file()
    }
}

#[async_trait::async_trait]
impl Scanner for TrivyCli {
    async fn scan(&self, image: &ImageRef) -> Result<ScanReport, Error> {
        let pinned = image.pinned().ok_or_else(|| Error::NotPinned {
            image: image.to_string(),
        })?;
        let args = ["image", "--format", "json", "--quiet", pinned.as_str()];
        let command = format!("{} {}", self.program.display(), args.join(" "));
        let output = tokio::process::Command::new(&self.program)
            .args(args)
            .kill_on_drop(true)
            .output()
            .await
            .map_err(|err| Error::TrivyRun {
                command: command.clone(),
                detail: format!("could not start it: {err}"),
            })?;
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr);
            let tail: Vec<&str> = stderr
                .lines()
                .rev()
                .take(5)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            return Err(Error::TrivyRun {
                command,
                detail: format!("it exited with {}: {}", output.status, tail.join("\n")),
            });
        }
        let size = output.stdout.len() as u64;
        if size > self.config.max_bytes {
            return Err(Error::ReportTooLarge {
                input: command,
                size,
                limit: self.config.max_bytes,
            });
        }
        let report = parse_report(&output.stdout, &format!("output of `{command}`"))?;
        report.ensure_about(image)?;
        Ok(report)
    }
}

/// The Trivy report inside a cosign `vuln` attestation that was already fetched and verified.
#[derive(Debug, Clone)]
pub struct VulnAttestation {
    /// The in-toto statement's JSON.
    pub statement_json: Vec<u8>,
}

#[async_trait::async_trait]
impl Scanner for VulnAttestation {
    async fn scan(&self, image: &ImageRef) -> Result<ScanReport, Error> {
        let report = from_vuln_attestation(&self.statement_json)?;
        report.ensure_about(image)?;
        Ok(report)
    }
}
