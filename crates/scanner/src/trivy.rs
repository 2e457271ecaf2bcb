//! Trivy's JSON report (`trivy image --format json`, `SchemaVersion: 2`) into a [`ScanReport`].
//!
//! Key design decision: the report is stream-parsed with `serde_json::from_reader` into private
//! structs that name only the fields Slipway uses. Everything else (descriptions, reference
//! lists, `Packages[]`, the image config) is skipped as it streams past, so memory grows with the
//! number of findings, not with the size of the file. Files are also refused above a size limit
//! ([`ReportConfig::max_bytes`]) before any parsing, so a runaway report fails fast with the file,
//! its size and the limit in the message rather than slowly.
//!
//! The legacy format (a top-level array, Trivy before 0.20) is refused with a hint: it carries
//! no image metadata, so the report could not be bound to the image being deployed.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use serde::Deserialize;
use slipway_core::Digest;

use crate::{Cvss, Error, Finding, PackageClass, ScanReport, Severity, Status};

/// Default [`ReportConfig::max_bytes`]: 64 MiB. Trivy reports of large images with every
/// reference run to tens of MiB; a report far above that is more likely a mistake (the wrong
/// file, `--list-all-pkgs` on a huge image) than something to read.
pub const DEFAULT_MAX_REPORT_BYTES: u64 = 64 * 1024 * 1024;

/// How reports are read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportConfig {
    /// Reports larger than this many bytes are refused before parsing.
    pub max_bytes: u64,
}

impl Default for ReportConfig {
    fn default() -> ReportConfig {
        ReportConfig {
            max_bytes: DEFAULT_MAX_REPORT_BYTES,
        }
    }
}

/// Reads and parses the Trivy JSON report at `path`, refusing files above `config.max_bytes`.
pub fn read_report(path: &Path, config: &ReportConfig) -> Result<ScanReport, Error> {
    let input = path.display().to_string();
    let file = File::open(path).map_err(|source| Error::ReadReport {
        input: input.clone(),
        detail: source.to_string(),
    })?;
    let size = file
        .metadata()
        .map_err(|source| Error::ReadReport {
            input: input.clone(),
            detail: source.to_string(),
        })?
        .len();
    if size > config.max_bytes {
        return Err(Error::ReportTooLarge {
            input,
            size,
            limit: config.max_bytes,
        });
    }
    // `take` also bounds a file that grows while being read.
    parse_reader(
        BufReader::new(file.take(config.max_bytes.saturating_add(1))),
        &input,
    )
}

/// Parses a Trivy JSON report from bytes; `input` names it in errors.
pub fn parse_report(bytes: &[u8], input: &str) -> Result<ScanReport, Error> {
    parse_reader(bytes, input)
}

fn parse_reader(mut reader: impl BufRead, input: &str) -> Result<ScanReport, Error> {
    if first_non_space(&mut reader) == Some(b'[') {
        return Err(Error::UnsupportedReport {
            input: input.to_owned(),
            detail: "it is in Trivy's legacy format (a top-level array, before SchemaVersion 2)"
                .to_owned(),
        });
    }
    let raw: RawReport = serde_json::from_reader(reader).map_err(|err| parse_error(input, &err))?;
    convert(raw, input)
}

/// Skips leading whitespace and peeks at the next byte, without consuming it.
fn first_non_space(reader: &mut impl BufRead) -> Option<u8> {
    loop {
        let buf = reader.fill_buf().ok()?;
        let first = *buf.first()?;
        if !first.is_ascii_whitespace() {
            return Some(first);
        }
        let spaces = buf.iter().take_while(|b| b.is_ascii_whitespace()).count();
        reader.consume(spaces);
    }
}

pub(crate) fn parse_error(input: &str, err: &serde_json::Error) -> Error {
    let what = match err.classify() {
        serde_json::error::Category::Eof => "it ends early (truncated?)",
        serde_json::error::Category::Syntax => "it is not valid JSON",
        serde_json::error::Category::Data => "it is JSON but not a Trivy report",
        serde_json::error::Category::Io => "it could not be read",
    };
    Error::ParseReport {
        input: input.to_owned(),
        detail: format!("{what}: {err}"),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct RawReport {
    schema_version: Option<u64>,
    #[serde(default)]
    artifact_name: String,
    #[serde(default)]
    metadata: Option<RawMetadata>,
    #[serde(default)]
    results: Option<Vec<RawResult>>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct RawMetadata {
    #[serde(rename = "ImageID", default)]
    image_id: Option<String>,
    #[serde(default)]
    repo_digests: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RawResult {
    #[serde(default)]
    target: String,
    #[serde(default)]
    class: Option<String>,
    #[serde(default)]
    vulnerabilities: Option<Vec<RawVulnerability>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RawVulnerability {
    #[serde(rename = "VulnerabilityID")]
    vulnerability_id: String,
    pkg_name: String,
    #[serde(default)]
    pkg_path: Option<String>,
    #[serde(default)]
    pkg_identifier: Option<RawIdentifier>,
    #[serde(default)]
    installed_version: String,
    #[serde(default)]
    fixed_version: Option<String>,
    #[serde(default)]
    status: Option<String>,
    severity: String,
    #[serde(default)]
    layer: Option<RawLayer>,
    #[serde(default)]
    title: Option<String>,
    #[serde(rename = "PrimaryURL", default)]
    primary_url: Option<String>,
    #[serde(rename = "CVSS", default)]
    cvss: Option<BTreeMap<String, RawCvss>>,
}

#[derive(Deserialize)]
struct RawIdentifier {
    #[serde(rename = "PURL", default)]
    purl: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RawLayer {
    #[serde(default)]
    digest: Option<String>,
    #[serde(rename = "DiffID", default)]
    diff_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RawCvss {
    #[serde(default)]
    v3_score: Option<f64>,
    #[serde(default)]
    v3_vector: Option<String>,
    #[serde(default)]
    v2_score: Option<f64>,
}

fn non_empty(text: Option<String>) -> Option<String> {
    text.filter(|text| !text.is_empty())
}

/// Turns the raw report into ours, checking what serde cannot (schema version, severities).
pub(crate) fn convert(raw: RawReport, input: &str) -> Result<ScanReport, Error> {
    match raw.schema_version {
        Some(2) => {}
        Some(other) => {
            return Err(Error::UnsupportedReport {
                input: input.to_owned(),
                detail: format!("its SchemaVersion is {other}; Slipway reads SchemaVersion 2"),
            });
        }
        None => {
            return Err(Error::UnsupportedReport {
                input: input.to_owned(),
                detail: "it has no SchemaVersion (is it a Trivy JSON report?)".to_owned(),
            });
        }
    }
    let metadata = raw.metadata.unwrap_or_default();
    let mut digests = Vec::new();
    let mut add = |text: &str| {
        if let Ok(digest) = Digest::parse(text)
            && !digests.contains(&digest)
        {
            digests.push(digest);
        }
    };
    for repo_digest in metadata.repo_digests.iter().flatten() {
        if let Some((_, digest)) = repo_digest.rsplit_once('@') {
            add(digest);
        }
    }
    if let Some((_, digest)) = raw.artifact_name.rsplit_once('@') {
        add(digest);
    }
    if let Some(image_id) = &metadata.image_id {
        add(image_id);
    }
    let mut findings = Vec::new();
    for result in raw.results.into_iter().flatten() {
        let class = PackageClass::parse(result.class.as_deref().unwrap_or_default());
        for vuln in result.vulnerabilities.into_iter().flatten() {
            let severity = Severity::parse(&vuln.severity).ok_or_else(|| Error::ParseReport {
                input: input.to_owned(),
                detail: format!(
                    "{} in {} has severity `{}`; expected one of CRITICAL, HIGH, MEDIUM, LOW, UNKNOWN",
                    vuln.vulnerability_id, vuln.pkg_name, vuln.severity
                ),
            })?;
            let cvss = vuln
                .cvss
                .unwrap_or_default()
                .into_iter()
                .map(|(source, raw)| Cvss {
                    source,
                    v3_score: raw.v3_score,
                    v3_vector: non_empty(raw.v3_vector),
                    v2_score: raw.v2_score,
                })
                .collect();
            let layer = vuln
                .layer
                .and_then(|layer| non_empty(layer.digest).or(non_empty(layer.diff_id)));
            findings.push(Finding {
                id: vuln.vulnerability_id,
                package: vuln.pkg_name,
                installed_version: vuln.installed_version,
                fixed_version: non_empty(vuln.fixed_version),
                severity,
                status: Status::parse(vuln.status.as_deref().unwrap_or_default()),
                cvss,
                layer,
                title: non_empty(vuln.title),
                primary_url: non_empty(vuln.primary_url),
                target: result.target.clone(),
                class: class.clone(),
                package_path: non_empty(vuln.pkg_path),
                purl: vuln
                    .pkg_identifier
                    .and_then(|identifier| non_empty(identifier.purl)),
            });
        }
    }
    Ok(ScanReport {
        artifact: raw.artifact_name,
        digests,
        findings,
    })
}
