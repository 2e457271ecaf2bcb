//! Cosign's vulnerability attestation (`cosign attest --type vuln`): an in-toto statement whose
//! predicate (`https://cosign.sigstore.dev/attestation/vuln/v1`) holds the scanner's own report
//! in `predicate.scanner.result`.
//!
//! Only parsing lives here: fetching and verifying the attestation is the registry and attest
//! crates' job, and they hand the verified statement's bytes to [`from_vuln_attestation`].

use std::collections::BTreeMap;

use serde::Deserialize;
use slipway_core::Digest;

use crate::trivy::{RawReport, convert, parse_error};
use crate::{Error, ScanReport};

/// The predicate type cosign writes for `--type vuln`.
pub const VULN_PREDICATE_TYPE: &str = "https://cosign.sigstore.dev/attestation/vuln/v1";

const INPUT: &str = "vulnerability attestation";

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Statement {
    #[serde(default)]
    predicate_type: String,
    #[serde(default)]
    subject: Vec<Subject>,
    predicate: Option<Predicate>,
}

#[derive(Deserialize)]
struct Subject {
    #[serde(default)]
    digest: BTreeMap<String, String>,
}

#[derive(Deserialize)]
struct Predicate {
    scanner: Option<PredicateScanner>,
}

#[derive(Deserialize)]
struct PredicateScanner {
    #[serde(default)]
    uri: String,
    result: Option<RawReport>,
}

/// Parses an in-toto statement carrying a cosign `vuln` predicate whose scanner is Trivy.
///
/// The statement's subject digests are added to the report's digests, so the report binds to
/// the image the attestation is attached to even when the embedded Trivy report names it by tag.
pub fn from_vuln_attestation(statement_json: &[u8]) -> Result<ScanReport, Error> {
    let statement: Statement =
        serde_json::from_slice(statement_json).map_err(|err| parse_error(INPUT, &err))?;
    if statement.predicate_type != VULN_PREDICATE_TYPE {
        return Err(Error::UnsupportedReport {
            input: INPUT.to_owned(),
            detail: format!(
                "its predicateType is `{}`, not `{VULN_PREDICATE_TYPE}`",
                statement.predicate_type
            ),
        });
    }
    let scanner = statement
        .predicate
        .and_then(|predicate| predicate.scanner)
        .ok_or_else(|| Error::UnsupportedReport {
            input: INPUT.to_owned(),
            detail: "it has no predicate.scanner".to_owned(),
        })?;
    if !scanner.uri.is_empty() && !scanner.uri.contains("trivy") {
        return Err(Error::UnsupportedReport {
            input: INPUT.to_owned(),
            detail: format!(
                "its scanner is `{}`; Slipway reads Trivy results only",
                scanner.uri
            ),
        });
    }
    let raw = scanner.result.ok_or_else(|| Error::UnsupportedReport {
        input: INPUT.to_owned(),
        detail: "it has no predicate.scanner.result".to_owned(),
    })?;
    let mut report = convert(raw, INPUT)?;
    for subject in statement.subject {
        for (algorithm, hex) in subject.digest {
            if let Ok(digest) = Digest::parse(&format!("{algorithm}:{hex}"))
                && !report.digests.contains(&digest)
            {
                report.digests.push(digest);
            }
        }
    }
    Ok(report)
}
