//! The vulnerability scanner boundary: the [`Scanner`] trait, the findings model, the Trivy report
//! reader, and the ignore-file parsers.
//!
//! Key design decision: every source ends in the same [`ScanReport`], and every source checks that
//! the report is about the image being deployed ([`ScanReport::ensure_about`]) before returning
//! it. A clean report for the wrong image is worse than no report, so a mismatch is an error that
//! shows both sides, never a warning.
//!
//! Implementations:
//! - [`TrivyReportFile`]: a Trivy JSON report (`SchemaVersion: 2`) written by CI's Trivy step.
//! - [`TrivyCli`]: runs `trivy image --format json` when a `trivy` binary is on `PATH`.
//! - [`VulnAttestation`]: the Trivy report inside a cosign `vuln` attestation (parsed by
//!   [`from_vuln_attestation`]; fetching and verifying it is the registry and attest crates' job).
//! - [`MemoryScanner`]: findings recorded per image digest, for the dry run and pipeline tests.
//!
//! Ignore rules ([`IgnoreRule`]) are defined here because this crate parses the files they come
//! from ([`read_ignore_file`]); `slipway-gates` applies them.

mod attestation;
mod finding;
mod ignore;
mod memory;
mod sources;
mod trivy;

pub use attestation::{VULN_PREDICATE_TYPE, from_vuln_attestation};
pub use finding::{Cvss, Finding, PackageClass, Severity, Status};
pub use ignore::{IgnoreRule, parse_trivyignore, parse_trivyignore_yaml, read_ignore_file};
pub use memory::MemoryScanner;
use slipway_core::{Digest, ImageRef};
pub use sources::{TrivyCli, TrivyReportFile, VulnAttestation};
pub use trivy::{DEFAULT_MAX_REPORT_BYTES, ReportConfig, parse_report, read_report};

/// What a scan found, and which image it is about.
#[derive(Debug, Clone, PartialEq)]
pub struct ScanReport {
    /// The artifact name the scanner reports (`ArtifactName`).
    pub artifact: String,
    /// Digests the report says the scanned image has: RepoDigests, a digest in ArtifactName,
    /// ImageID, and for attestations the statement's subjects.
    pub digests: Vec<Digest>,
    /// Every finding, in report order.
    pub findings: Vec<Finding>,
}

impl ScanReport {
    /// Checks that the report is about `image`, which must be pinned by digest: the image's
    /// digest must be one of [`ScanReport::digests`].
    pub fn ensure_about(&self, image: &ImageRef) -> Result<(), Error> {
        let Some(digest) = image.digest() else {
            return Err(Error::NotPinned {
                image: image.to_string(),
            });
        };
        if self.digests.contains(digest) {
            return Ok(());
        }
        let report_digests = if self.digests.is_empty() {
            "none".to_owned()
        } else {
            self.digests
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        };
        Err(Error::WrongImage {
            image: image.to_string(),
            artifact: self.artifact.clone(),
            report_digests,
        })
    }
}

/// Errors from a scanner. Every variant names its input; messages end with a hint.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No scan exists for the image.
    #[error("no vulnerability scan for `{image}`\n\nhint: {hint}")]
    NoReport {
        /// The image.
        image: String,
        /// How to get one.
        hint: String,
    },
    /// The report could not be read.
    ///
    /// The I/O error is rendered into `detail` rather than kept as `#[source]` so that the hint
    /// stays the last line when the message is printed as an error chain.
    #[error(
        "failed to read Trivy report `{input}`: {detail}\n\nhint: check the path given to `--report`"
    )]
    ReadReport {
        /// The file.
        input: String,
        /// The I/O error.
        detail: String,
    },
    /// The report is larger than the configured limit.
    #[error(
        "Trivy report `{input}` is {size} bytes, above the limit of {limit} bytes\n\nhint: if the report is genuine, raise the limit with `--max-report-size BYTES`"
    )]
    ReportTooLarge {
        /// The file.
        input: String,
        /// Its size in bytes.
        size: u64,
        /// The limit in bytes.
        limit: u64,
    },
    /// The report is not well-formed JSON or not shaped like a Trivy report.
    #[error(
        "failed to parse Trivy report `{input}`: {detail}\n\nhint: pass the output of `trivy image --format json` (SchemaVersion 2)"
    )]
    ParseReport {
        /// The file, or what the bytes were.
        input: String,
        /// What is wrong, with line and column when known.
        detail: String,
    },
    /// The report is well-formed but in a format Slipway does not read.
    #[error(
        "unsupported Trivy report `{input}`: {detail}\n\nhint: produce it with a current Trivy: `trivy image --format json --output trivy.json IMAGE@DIGEST`"
    )]
    UnsupportedReport {
        /// The file, or what the bytes were.
        input: String,
        /// What is unsupported.
        detail: String,
    },
    /// The report is about another image.
    #[error(
        "the vulnerability report is about another image: it scanned `{artifact}` (digests: {report_digests}), but the image being deployed is `{image}`\n\nhint: scan the digest you deploy (`trivy image --format json IMAGE@DIGEST`) and pass that report"
    )]
    WrongImage {
        /// The image being deployed.
        image: String,
        /// The report's `ArtifactName`.
        artifact: String,
        /// The report's digests, comma-separated (`none` when it has none).
        report_digests: String,
    },
    /// The image is not pinned by digest, so no report can be bound to it.
    #[error(
        "image `{image}` is not pinned by digest, so the report cannot be checked against it\n\nhint: pass `IMAGE@sha256:…`"
    )]
    NotPinned {
        /// The image.
        image: String,
    },
    /// Running the `trivy` binary failed.
    #[error("`{command}` failed: {detail}\n\nhint: run the command by hand to see Trivy's output")]
    TrivyRun {
        /// The command line.
        command: String,
        /// Exit status and the end of its stderr, or why it could not start.
        detail: String,
    },
    /// An ignore file could not be read.
    #[error(
        "failed to read ignore file `{input}`: {detail}\n\nhint: check the path given to `--ignore-file`"
    )]
    ReadIgnoreFile {
        /// The file.
        input: String,
        /// The I/O error (see [`Error::ReadReport`] for why it is not a `#[source]`).
        detail: String,
    },
    /// An ignore file has a line or entry Slipway cannot read.
    #[error(
        "failed to parse ignore file `{input}`: {detail}\n\nhint: `.trivyignore` lines are `ID [exp:YYYY-MM-DD]`; `.trivyignore.yaml` entries take id, paths, purls, expired_at, statement"
    )]
    ParseIgnoreFile {
        /// The file, with line or entry.
        input: String,
        /// What is wrong.
        detail: String,
    },
}

/// A source of vulnerability findings for an image.
#[async_trait::async_trait]
pub trait Scanner: Send + Sync {
    /// Scans (or looks up the scan of) the image, which is pinned by digest. The report returned
    /// is about that image.
    async fn scan(&self, image: &ImageRef) -> Result<ScanReport, Error>;
}
