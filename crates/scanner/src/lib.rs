//! The vulnerability scanner boundary: the [`Scanner`] trait, the findings model, and the
//! implementations Slipway ships.
//!
//! Implementations:
//! - [`MemoryScanner`]: findings recorded per image digest, for the dry run and pipeline tests.

mod memory;

pub use memory::MemoryScanner;
use slipway_core::{Digest, ImageRef};

/// Severity as Trivy reports it, ordered from least to most severe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Severity {
    /// `UNKNOWN`.
    Unknown,
    /// `LOW`.
    Low,
    /// `MEDIUM`.
    Medium,
    /// `HIGH`.
    High,
    /// `CRITICAL`.
    Critical,
}

impl Severity {
    /// Trivy's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Unknown => "UNKNOWN",
            Severity::Low => "LOW",
            Severity::Medium => "MEDIUM",
            Severity::High => "HIGH",
            Severity::Critical => "CRITICAL",
        }
    }
}

/// One vulnerability found in one package.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    /// Vulnerability id (`CVE-2023-1234`, `GHSA-…`).
    pub id: String,
    /// Package name.
    pub package: String,
    /// Installed version.
    pub installed_version: String,
    /// First fixed version, when a fix exists.
    pub fixed_version: Option<String>,
    /// Severity.
    pub severity: Severity,
}

/// What a scan found, and which image it is about.
#[derive(Debug, Clone, PartialEq)]
pub struct ScanReport {
    /// The artifact name the scanner reports.
    pub artifact: String,
    /// Digests the report says the scanned image has (RepoDigests / ImageID).
    pub digests: Vec<Digest>,
    /// Every finding.
    pub findings: Vec<Finding>,
}

/// Errors from a scanner.
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
}

/// A source of vulnerability findings for an image.
#[async_trait::async_trait]
pub trait Scanner: Send + Sync {
    /// Scans (or looks up the scan of) the image, which is pinned by digest.
    async fn scan(&self, image: &ImageRef) -> Result<ScanReport, Error>;
}
