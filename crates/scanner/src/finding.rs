//! The findings model: one [`Finding`] per (vulnerability, package, target), with the fields a
//! reviewer needs to decide on it and the fields ignore rules match on (path, purl).

use std::fmt;

/// Severity as Trivy reports it, ordered from least to most severe.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
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
    /// Every severity, most severe first (the order reports list them in).
    pub const ALL_DESCENDING: [Severity; 5] = [
        Severity::Critical,
        Severity::High,
        Severity::Medium,
        Severity::Low,
        Severity::Unknown,
    ];

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

    /// Parses Trivy's spelling, case-insensitively. Anything else is `None`.
    pub fn parse(text: &str) -> Option<Severity> {
        Severity::ALL_DESCENDING
            .into_iter()
            .find(|severity| severity.as_str().eq_ignore_ascii_case(text))
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether and how the vendor fixes a vulnerability (Trivy's `Status`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Status {
    /// `unknown`, or no status in the report.
    Unknown,
    /// `not_affected`.
    NotAffected,
    /// `affected`: no fix released.
    Affected,
    /// `fixed`: a fixed version exists.
    Fixed,
    /// `under_investigation`.
    UnderInvestigation,
    /// `will_not_fix`.
    WillNotFix,
    /// `fix_deferred`.
    FixDeferred,
    /// `end_of_life`.
    EndOfLife,
    /// A status this version of Slipway does not know, kept verbatim.
    Other(String),
}

impl Status {
    /// Parses Trivy's spelling; unknown spellings are kept in [`Status::Other`].
    pub fn parse(text: &str) -> Status {
        match text {
            "" | "unknown" => Status::Unknown,
            "not_affected" => Status::NotAffected,
            "affected" => Status::Affected,
            "fixed" => Status::Fixed,
            "under_investigation" => Status::UnderInvestigation,
            "will_not_fix" => Status::WillNotFix,
            "fix_deferred" => Status::FixDeferred,
            "end_of_life" => Status::EndOfLife,
            other => Status::Other(other.to_owned()),
        }
    }

    /// Trivy's spelling.
    pub fn as_str(&self) -> &str {
        match self {
            Status::Unknown => "unknown",
            Status::NotAffected => "not_affected",
            Status::Affected => "affected",
            Status::Fixed => "fixed",
            Status::UnderInvestigation => "under_investigation",
            Status::WillNotFix => "will_not_fix",
            Status::FixDeferred => "fix_deferred",
            Status::EndOfLife => "end_of_life",
            Status::Other(text) => text,
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What kind of package a target holds (Trivy's result `Class`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PackageClass {
    /// `os-pkgs`: distribution packages (apk, dpkg, rpm).
    Os,
    /// `lang-pkgs`: language packages (pip, gem, cargo, npm, …).
    Language,
    /// No class in the report (old schema) or one Slipway does not know, kept verbatim.
    Other(String),
}

impl PackageClass {
    /// Parses Trivy's spelling.
    pub fn parse(text: &str) -> PackageClass {
        match text {
            "os-pkgs" => PackageClass::Os,
            "lang-pkgs" => PackageClass::Language,
            other => PackageClass::Other(other.to_owned()),
        }
    }

    /// Trivy's spelling.
    pub fn as_str(&self) -> &str {
        match self {
            PackageClass::Os => "os-pkgs",
            PackageClass::Language => "lang-pkgs",
            PackageClass::Other(text) => text,
        }
    }
}

/// One CVSS rating from one source (`nvd`, `redhat`, `ghsa`, …).
#[derive(Debug, Clone, PartialEq)]
pub struct Cvss {
    /// Who rated it.
    pub source: String,
    /// CVSS v3 score.
    pub v3_score: Option<f64>,
    /// CVSS v3 vector.
    pub v3_vector: Option<String>,
    /// CVSS v2 score.
    pub v2_score: Option<f64>,
}

/// One vulnerability found in one package of one target.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    /// Vulnerability id (`CVE-2023-1234`, `GHSA-…`).
    pub id: String,
    /// Package name.
    pub package: String,
    /// Installed version.
    pub installed_version: String,
    /// First fixed version(s), when a fix exists (Trivy may list several: `6.0.3.1, 5.2.4.3`).
    pub fixed_version: Option<String>,
    /// Severity.
    pub severity: Severity,
    /// Whether the vendor fixes it.
    pub status: Status,
    /// CVSS ratings, in source-name order.
    pub cvss: Vec<Cvss>,
    /// Digest of the image layer that added the package, when known.
    pub layer: Option<String>,
    /// One-line title.
    pub title: Option<String>,
    /// The advisory to read first.
    pub primary_url: Option<String>,
    /// What was scanned: `alpine:3.10 (alpine 3.10.2)`, `requirements.txt`, `Ruby`.
    pub target: String,
    /// OS or language package.
    pub class: PackageClass,
    /// Path of the package inside the image (language packages), for path-scoped ignores.
    pub package_path: Option<String>,
    /// Package URL, for purl-scoped ignores.
    pub purl: Option<String>,
}

impl Finding {
    /// A finding with the identifying fields set and the rest empty; `status` follows
    /// `fixed_version` (`fixed` when there is one, else `affected`).
    pub fn new(
        id: impl Into<String>,
        package: impl Into<String>,
        installed_version: impl Into<String>,
        fixed_version: Option<String>,
        severity: Severity,
    ) -> Finding {
        let status = if fixed_version.is_some() {
            Status::Fixed
        } else {
            Status::Affected
        };
        Finding {
            id: id.into(),
            package: package.into(),
            installed_version: installed_version.into(),
            fixed_version,
            severity,
            status,
            cvss: Vec::new(),
            layer: None,
            title: None,
            primary_url: None,
            target: String::new(),
            class: PackageClass::Other(String::new()),
            package_path: None,
            purl: None,
        }
    }

    /// True when a fixed version exists. Trivy's `--ignore-unfixed` uses the same test.
    pub fn has_fix(&self) -> bool {
        self.fixed_version
            .as_deref()
            .is_some_and(|fixed| !fixed.trim().is_empty())
    }

    /// The highest CVSS v3 score any source gives, with its source.
    pub fn max_cvss_v3(&self) -> Option<(&str, f64)> {
        self.cvss
            .iter()
            .filter_map(|cvss| cvss.v3_score.map(|score| (cvss.source.as_str(), score)))
            .max_by(|left, right| left.1.total_cmp(&right.1))
    }
}
