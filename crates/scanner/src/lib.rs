//! The vulnerability scanner boundary: the [`Scanner`] trait, the findings model, and the
//! implementations Slipway ships.
//!
//! Implementations:
//! - [`MemoryScanner`]: findings recorded per image digest, for the dry run and pipeline tests.

mod finding;
mod ignore;
mod memory;

pub use finding::{Cvss, Finding, PackageClass, Severity, Status};
pub use ignore::IgnoreRule;
pub use memory::MemoryScanner;
use slipway_core::{Digest, ImageRef};

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
