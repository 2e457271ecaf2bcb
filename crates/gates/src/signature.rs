//! The signature gate: the image must carry a signature that verified against a trusted key, and
//! SLSA provenance from a trusted builder, built from an allowed source repository.
//!
//! Cryptography happens elsewhere (`slipway-attest`): this gate receives what was *already
//! verified* ([`SignatureEvidence`]) and judges it against the [`SignaturePolicy`]. A signature
//! counts only when it verified *and* its key is trusted; failed or untrusted signatures are named
//! in the reason but do not fail the gate on their own, because an image may carry old signatures
//! next to a good one (cosign appends, it does not replace).
//!
//! Fail closed: with signatures required and no trusted key configured, the signature check
//! fails and says which key to set, rather than trusting any key.
//!
//! Provenance is the build's word, not the deploy's: it counts only when signed by a key in
//! `[policy.provenance] keys` (the build system's keys; the deploy key is not among them unless
//! listed). The pipeline verifies signatures and subjects with those keys and passes what
//! verified as [`ProvenanceSummary`], plus why every other provenance was rejected, so a failed
//! gate names the reason (signed by an untrusted key, about another digest).

use serde::{Deserialize, Serialize};

use crate::{CheckStatus, GateReport};

const GATE: &str = "signatures";

/// How a builder id must match (`{ exact = "…" }` or `{ prefix = "…" }` in TOML).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", deny_unknown_fields)]
pub enum BuilderMatch {
    /// The builder id equals this text.
    Exact(String),
    /// The builder id starts with this text (e.g. a reusable workflow path without its `@ref`).
    Prefix(String),
}

impl BuilderMatch {
    /// True when `builder_id` matches.
    pub fn matches(&self, builder_id: &str) -> bool {
        match self {
            BuilderMatch::Exact(exact) => builder_id == exact,
            BuilderMatch::Prefix(prefix) => builder_id.starts_with(prefix.as_str()),
        }
    }

    /// The configured text.
    pub fn text(&self) -> &str {
        match self {
            BuilderMatch::Exact(text) | BuilderMatch::Prefix(text) => text,
        }
    }
}

/// The signature gate's policy (`[policy.signatures]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SignaturePolicy {
    /// Require a verified signature by a trusted key.
    pub require_signature: bool,
    /// Key ids or fingerprints whose signatures count.
    pub trusted_keys: Vec<String>,
    /// Require verified provenance.
    pub require_provenance: bool,
    /// Builders whose provenance counts; empty = any builder (the check is skipped).
    pub trusted_builders: Vec<BuilderMatch>,
    /// Source repositories the image may be built from; empty = any (the check is skipped).
    /// Compared after normalising: a leading `git+`, a trailing `/` and `.git` are ignored.
    pub source_repositories: Vec<String>,
    /// Source refs (branches and tags) the image may be built from: `refs/heads/main`,
    /// `refs/tags/v*` (a trailing `*` matches any rest); empty = any (the check is skipped).
    pub source_refs: Vec<String>,
}

/// `[policy.provenance]`: whose provenance counts.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProvenanceKeys {
    /// Public keys (`cosign.pub` files) of the build system that attests provenance
    /// (`slipway-deploy attest` in the build job). The deploy key (`signing.key`) is not trusted
    /// for provenance unless its public key is listed here.
    pub keys: Vec<std::path::PathBuf>,
}

impl Default for SignaturePolicy {
    fn default() -> SignaturePolicy {
        SignaturePolicy {
            require_signature: true,
            trusted_keys: Vec::new(),
            require_provenance: true,
            trusted_builders: Vec::new(),
            source_repositories: Vec::new(),
            source_refs: Vec::new(),
        }
    }
}

/// One signature found on the image, after verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedSignature {
    /// The key id or fingerprint the signature claims.
    pub key_id: String,
    /// `Ok` when the signature verified; otherwise why not.
    pub result: Result<(), String>,
    /// Where it was found; the report names it for a Sigstore bundle.
    pub format: SignatureFormat,
}

/// Where a signature was found: cosign's two layouts. Either counts; the report says which.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SignatureFormat {
    /// The `sha256-<hex>.sig` tag (cosign v2 and earlier, and Slipway's default).
    #[default]
    LegacyTag,
    /// A Sigstore bundle attached as an OCI 1.1 referrer (cosign v3's default).
    SigstoreBundle,
}

/// The SLSA provenance statement, after its signature and subject digest were verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProvenanceSummary {
    /// `builder.id`.
    pub builder_id: String,
    /// The source repository URI.
    pub source_repository: String,
    /// The source ref (`refs/heads/main`), when the provenance names one.
    pub source_ref: Option<String>,
}

/// What the signature gate judges: collected by the pipeline through `slipway-attest`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SignatureEvidence {
    /// Every signature found on the image.
    pub signatures: Vec<VerifiedSignature>,
    /// Verified provenance, if any was found and verified.
    pub provenance: Option<ProvenanceSummary>,
    /// Why each provenance attestation that did not verify was rejected (untrusted key, another
    /// digest, not SLSA v1), named when no provenance verified.
    pub rejected_provenance: Vec<String>,
}

/// Judges the evidence: a signature check, then provenance present, builder and source checks
/// (without provenance, the builder and source checks appear only when configured).
pub fn evaluate(policy: &SignaturePolicy, evidence: &SignatureEvidence) -> GateReport {
    let mut report = GateReport::default();
    let (status, reason) = signature(policy, &evidence.signatures);
    report.push(GATE, "signed by a trusted key", status, reason);
    provenance(
        policy,
        evidence.provenance.as_ref(),
        &evidence.rejected_provenance,
        &mut report,
    );
    report
}

fn signature(policy: &SignaturePolicy, signatures: &[VerifiedSignature]) -> (CheckStatus, String) {
    let trusted = |key: &str| policy.trusted_keys.iter().any(|t| t == key);
    let good: Vec<&VerifiedSignature> = signatures
        .iter()
        .filter(|s| s.result.is_ok() && trusted(&s.key_id))
        .collect();
    let others: Vec<String> = signatures
        .iter()
        .filter_map(|s| match &s.result {
            Err(why) => Some(format!("`{}` did not verify: {why}", s.key_id)),
            Ok(()) if !trusted(&s.key_id) => Some(format!("`{}` is not trusted", s.key_id)),
            Ok(()) => None,
        })
        .collect();
    let others = if others.is_empty() {
        String::new()
    } else {
        format!(" (ignored: {})", others.join("; "))
    };
    if let Some(first) = good.first() {
        let format = match first.format {
            SignatureFormat::LegacyTag => "",
            SignatureFormat::SigstoreBundle => " in a Sigstore bundle",
        };
        return (
            CheckStatus::Pass,
            format!(
                "verified with trusted key `{}`{format}{others}",
                first.key_id
            ),
        );
    }
    let status = if policy.require_signature {
        CheckStatus::Fail
    } else {
        CheckStatus::Skip
    };
    let missing = if policy.require_signature && policy.trusted_keys.is_empty() {
        "no trusted key is configured (set `policy.signatures.trusted_keys`)".to_owned()
    } else if signatures.is_empty() {
        "the image has no signature".to_owned()
    } else {
        "no signature verified with a trusted key".to_owned()
    };
    let suffix = if policy.require_signature {
        ""
    } else {
        "; not required"
    };
    (status, format!("{missing}{others}{suffix}"))
}

fn provenance(
    policy: &SignaturePolicy,
    provenance: Option<&ProvenanceSummary>,
    rejected: &[String],
    report: &mut GateReport,
) {
    let Some(provenance) = provenance else {
        let why = if rejected.is_empty() {
            String::new()
        } else {
            format!(" (rejected: {})", rejected.join("; "))
        };
        let (status, reason) = if policy.require_provenance {
            (
                CheckStatus::Fail,
                format!("no verified provenance for the image{why}"),
            )
        } else {
            (
                CheckStatus::Skip,
                if rejected.is_empty() {
                    "no provenance; not required".to_owned()
                } else {
                    format!("no verified provenance{why}; not required")
                },
            )
        };
        report.push(GATE, "provenance verified", status, reason);
        // A configured builder or source rule is still listed, so a rule the team wrote never
        // silently drops out of the report (or out of a diff of two reports). It skips: the
        // provenance check above already carries the verdict. Unconfigured rules stay out, as
        // there is nothing to say about them without provenance.
        if !policy.trusted_builders.is_empty() {
            report.push(
                GATE,
                "builder is trusted",
                CheckStatus::Skip,
                "not checked: no verified provenance names a builder",
            );
        }
        if !policy.source_repositories.is_empty() {
            report.push(
                GATE,
                "source repository allowed",
                CheckStatus::Skip,
                "not checked: no verified provenance names a source repository",
            );
        }
        if !policy.source_refs.is_empty() {
            report.push(
                GATE,
                "source ref allowed",
                CheckStatus::Skip,
                "not checked: no verified provenance names a source ref",
            );
        }
        return;
    };
    let from_ref = provenance
        .source_ref
        .as_deref()
        .map(|source_ref| format!(" at {source_ref}"))
        .unwrap_or_default();
    report.push(
        GATE,
        "provenance verified",
        CheckStatus::Pass,
        format!(
            "built by `{}` from `{}`{from_ref}",
            provenance.builder_id, provenance.source_repository
        ),
    );

    let builder = &provenance.builder_id;
    let (status, reason) = if policy.trusted_builders.is_empty() {
        (
            CheckStatus::Skip,
            "no trusted builders configured: any builder is accepted".to_owned(),
        )
    } else if let Some(rule) = policy.trusted_builders.iter().find(|b| b.matches(builder)) {
        let how = match rule {
            BuilderMatch::Exact(_) => "is",
            BuilderMatch::Prefix(_) => "starts with",
        };
        (
            CheckStatus::Pass,
            format!("`{builder}` {how} `{}`", rule.text()),
        )
    } else {
        (
            CheckStatus::Fail,
            format!("`{builder}` matches no trusted builder"),
        )
    };
    report.push(GATE, "builder is trusted", status, reason);

    let source = &provenance.source_repository;
    let (status, reason) = if policy.source_repositories.is_empty() {
        (
            CheckStatus::Skip,
            "no source repositories configured: any source is accepted".to_owned(),
        )
    } else if policy
        .source_repositories
        .iter()
        .any(|allowed| normalise_repository(allowed) == normalise_repository(source))
    {
        (CheckStatus::Pass, format!("`{source}`{from_ref}"))
    } else {
        (
            CheckStatus::Fail,
            format!(
                "`{source}` is not one of {}",
                quoted_list(&policy.source_repositories)
            ),
        )
    };
    report.push(GATE, "source repository allowed", status, reason);

    let (status, reason) = match (&provenance.source_ref, policy.source_refs.is_empty()) {
        (_, true) => (
            CheckStatus::Skip,
            "no source refs configured: any branch or tag is accepted".to_owned(),
        ),
        (None, false) => (
            CheckStatus::Fail,
            format!(
                "the provenance names no source ref; allowed: {}",
                quoted_list(&policy.source_refs)
            ),
        ),
        (Some(source_ref), false) => match policy
            .source_refs
            .iter()
            .find(|allowed| ref_matches(allowed, source_ref))
        {
            Some(rule) => (
                CheckStatus::Pass,
                format!("`{source_ref}` matches `{rule}`"),
            ),
            None => (
                CheckStatus::Fail,
                format!(
                    "source ref `{source_ref}` is not one of {}",
                    quoted_list(&policy.source_refs)
                ),
            ),
        },
    };
    report.push(GATE, "source ref allowed", status, reason);
}

/// `refs/tags/v*` matches every ref starting with `refs/tags/v`; anything else matches exactly.
/// A bare branch name is not expanded: provenance states full refs, and so must the policy.
fn ref_matches(allowed: &str, source_ref: &str) -> bool {
    match allowed.strip_suffix('*') {
        Some(prefix) => source_ref.starts_with(prefix),
        None => allowed == source_ref,
    }
}

/// `git+https://github.com/org/repo.git/` and `https://github.com/org/repo` name the same
/// repository; SLSA generators write the former, people the latter.
fn normalise_repository(uri: &str) -> &str {
    let uri = uri.strip_prefix("git+").unwrap_or(uri);
    let uri = uri.strip_suffix('/').unwrap_or(uri);
    uri.strip_suffix(".git").unwrap_or(uri)
}

fn quoted_list(items: &[String]) -> String {
    items
        .iter()
        .map(|item| format!("`{item}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    const GHA: &str = "https://github.com/slsa-framework/slsa-github-generator/.github/workflows/generator_container_slsa3.yml@refs/tags/v2.1.0";

    fn policy() -> SignaturePolicy {
        SignaturePolicy {
            trusted_keys: vec!["release-key".to_owned()],
            trusted_builders: vec![BuilderMatch::Prefix(
                "https://github.com/slsa-framework/slsa-github-generator/".to_owned(),
            )],
            source_repositories: vec!["https://github.com/acme/iris".to_owned()],
            ..SignaturePolicy::default()
        }
    }

    fn signed(key: &str, result: Result<(), &str>) -> VerifiedSignature {
        VerifiedSignature {
            key_id: key.to_owned(),
            result: result.map_err(str::to_owned),
            format: SignatureFormat::LegacyTag,
        }
    }

    #[test]
    fn a_signature_in_a_sigstore_bundle_passes_and_says_so() {
        let policy = SignaturePolicy {
            trusted_keys: vec!["k1".to_owned()],
            require_provenance: false,
            ..SignaturePolicy::default()
        };
        let evidence = SignatureEvidence {
            signatures: vec![
                signed("k2", Ok(())),
                VerifiedSignature {
                    format: SignatureFormat::SigstoreBundle,
                    ..signed("k1", Ok(()))
                },
            ],
            provenance: None,
            rejected_provenance: Vec::new(),
        };
        let report = evaluate(&policy, &evidence);
        let check = &report.checks[0];
        assert_eq!(check.status, CheckStatus::Pass);
        assert_eq!(
            check.reason,
            "verified with trusted key `k1` in a Sigstore bundle (ignored: `k2` is not trusted)"
        );
    }

    fn provenance(builder: &str, source: &str) -> Option<ProvenanceSummary> {
        Some(ProvenanceSummary {
            builder_id: builder.to_owned(),
            source_repository: source.to_owned(),
            source_ref: Some("refs/heads/main".to_owned()),
        })
    }

    fn outcome(report: &GateReport) -> Vec<String> {
        report
            .checks
            .iter()
            .map(|c| format!("{} {}: {}", c.status.as_str(), c.name, c.reason))
            .collect()
    }

    #[test]
    fn signatures() {
        let cases: &[(&str, SignaturePolicy, Vec<VerifiedSignature>, &str)] = &[
            (
                "trusted and verified",
                policy(),
                vec![signed("release-key", Ok(()))],
                "pass signed by a trusted key: verified with trusted key `release-key`",
            ),
            (
                "a good signature next to bad ones passes and names the bad ones",
                policy(),
                vec![
                    signed("old-key", Ok(())),
                    signed("release-key", Err("signature mismatch")),
                    signed("release-key", Ok(())),
                ],
                "pass signed by a trusted key: verified with trusted key `release-key` (ignored: `old-key` is not trusted; `release-key` did not verify: signature mismatch)",
            ),
            (
                "trusted key that did not verify",
                policy(),
                vec![signed("release-key", Err("signature mismatch"))],
                "fail signed by a trusted key: no signature verified with a trusted key (ignored: `release-key` did not verify: signature mismatch)",
            ),
            (
                "verified but untrusted",
                policy(),
                vec![signed("someone-else", Ok(()))],
                "fail signed by a trusted key: no signature verified with a trusted key (ignored: `someone-else` is not trusted)",
            ),
            (
                "unsigned",
                policy(),
                vec![],
                "fail signed by a trusted key: the image has no signature",
            ),
            (
                "no trusted keys fails closed",
                SignaturePolicy::default(),
                vec![signed("release-key", Ok(()))],
                "fail signed by a trusted key: no trusted key is configured (set `policy.signatures.trusted_keys`) (ignored: `release-key` is not trusted)",
            ),
            (
                "not required and unsigned skips",
                SignaturePolicy {
                    require_signature: false,
                    ..policy()
                },
                vec![],
                "skip signed by a trusted key: the image has no signature; not required",
            ),
            (
                "not required still passes when signed",
                SignaturePolicy {
                    require_signature: false,
                    ..policy()
                },
                vec![signed("release-key", Ok(()))],
                "pass signed by a trusted key: verified with trusted key `release-key`",
            ),
        ];
        for (what, policy, signatures, want) in cases {
            let evidence = SignatureEvidence {
                signatures: signatures.clone(),
                provenance: provenance(GHA, "git+https://github.com/acme/iris"),
                rejected_provenance: Vec::new(),
            };
            let got = outcome(&evaluate(policy, &evidence));
            assert_eq!(got[0], *want, "case: {what}");
        }
    }

    #[test]
    fn provenance_rules() {
        let exact = SignaturePolicy {
            trusted_builders: vec![BuilderMatch::Exact(GHA.to_owned())],
            ..policy()
        };
        let open = SignaturePolicy {
            trusted_builders: vec![],
            source_repositories: vec![],
            ..policy()
        };
        let optional = SignaturePolicy {
            require_provenance: false,
            ..policy()
        };
        let cases: &[(&str, &SignaturePolicy, Option<ProvenanceSummary>, &[&str])] = &[
            (
                "trusted prefix, normalised source",
                &policy(),
                provenance(GHA, "git+https://github.com/acme/iris.git"),
                &[
                    "pass provenance verified: built by `https://github.com/slsa-framework/slsa-github-generator/.github/workflows/generator_container_slsa3.yml@refs/tags/v2.1.0` from `git+https://github.com/acme/iris.git` at refs/heads/main",
                    "pass builder is trusted: `https://github.com/slsa-framework/slsa-github-generator/.github/workflows/generator_container_slsa3.yml@refs/tags/v2.1.0` starts with `https://github.com/slsa-framework/slsa-github-generator/`",
                    "pass source repository allowed: `git+https://github.com/acme/iris.git` at refs/heads/main",
                ],
            ),
            (
                "exact builder must match whole id",
                &exact,
                provenance(&format!("{GHA}-evil"), "https://github.com/acme/iris"),
                &[
                    "pass provenance verified: built by `https://github.com/slsa-framework/slsa-github-generator/.github/workflows/generator_container_slsa3.yml@refs/tags/v2.1.0-evil` from `https://github.com/acme/iris` at refs/heads/main",
                    "fail builder is trusted: `https://github.com/slsa-framework/slsa-github-generator/.github/workflows/generator_container_slsa3.yml@refs/tags/v2.1.0-evil` matches no trusted builder",
                    "pass source repository allowed: `https://github.com/acme/iris` at refs/heads/main",
                ],
            ),
            (
                "untrusted builder and wrong source",
                &policy(),
                provenance(
                    "https://github.com/attacker/generator",
                    "https://github.com/acme/iris-fork",
                ),
                &[
                    "pass provenance verified: built by `https://github.com/attacker/generator` from `https://github.com/acme/iris-fork` at refs/heads/main",
                    "fail builder is trusted: `https://github.com/attacker/generator` matches no trusted builder",
                    "fail source repository allowed: `https://github.com/acme/iris-fork` is not one of `https://github.com/acme/iris`",
                ],
            ),
            (
                "missing provenance fails when required, and still lists the other checks",
                &policy(),
                None,
                &[
                    "fail provenance verified: no verified provenance for the image",
                    "skip builder is trusted: not checked: no verified provenance names a builder",
                    "skip source repository allowed: not checked: no verified provenance names a source repository",
                ],
            ),
            (
                "missing provenance skips when optional",
                &optional,
                None,
                &[
                    "skip provenance verified: no provenance; not required",
                    "skip builder is trusted: not checked: no verified provenance names a builder",
                    "skip source repository allowed: not checked: no verified provenance names a source repository",
                ],
            ),
            (
                "missing provenance with no builder or source rules",
                &open,
                None,
                &["fail provenance verified: no verified provenance for the image"],
            ),
            (
                "no builder or source rules skip those checks",
                &open,
                provenance("anything", "anywhere"),
                &[
                    "pass provenance verified: built by `anything` from `anywhere` at refs/heads/main",
                    "skip builder is trusted: no trusted builders configured: any builder is accepted",
                    "skip source repository allowed: no source repositories configured: any source is accepted",
                ],
            ),
        ];
        for (what, policy, provenance, want) in cases {
            let evidence = SignatureEvidence {
                signatures: vec![signed("release-key", Ok(()))],
                provenance: provenance.clone(),
                rejected_provenance: Vec::new(),
            };
            let got = outcome(&evaluate(policy, &evidence));
            let got: Vec<&String> = got[1..]
                .iter()
                .filter(|line| !line.starts_with("skip source ref allowed: no source refs"))
                .collect();
            assert_eq!(got, **want, "case: {what}");
        }
    }

    #[test]
    fn source_refs_and_rejected_provenance() {
        let refs = SignaturePolicy {
            source_refs: vec!["refs/heads/main".to_owned(), "refs/tags/v*".to_owned()],
            ..policy()
        };
        let at = |source_ref: Option<&str>| {
            provenance(GHA, "https://github.com/acme/iris").map(|mut summary| {
                summary.source_ref = source_ref.map(str::to_owned);
                summary
            })
        };
        let cases: &[(&str, Option<ProvenanceSummary>, &[&str], &str)] = &[
            (
                "a branch listed exactly",
                at(Some("refs/heads/main")),
                &[],
                "pass source ref allowed: `refs/heads/main` matches `refs/heads/main`",
            ),
            (
                "a tag under a prefix",
                at(Some("refs/tags/v1.2.0")),
                &[],
                "pass source ref allowed: `refs/tags/v1.2.0` matches `refs/tags/v*`",
            ),
            (
                "another branch",
                at(Some("refs/heads/feature")),
                &[],
                "fail source ref allowed: source ref `refs/heads/feature` is not one of `refs/heads/main`, `refs/tags/v*`",
            ),
            (
                "no ref stated",
                at(None),
                &[],
                "fail source ref allowed: the provenance names no source ref; allowed: `refs/heads/main`, `refs/tags/v*`",
            ),
            (
                "rejected provenance is named",
                None,
                &["#0: not signed by a provenance key"],
                "fail provenance verified: no verified provenance for the image (rejected: #0: not signed by a provenance key)",
            ),
        ];
        for (what, provenance, rejected, want) in cases {
            let evidence = SignatureEvidence {
                signatures: vec![signed("release-key", Ok(()))],
                provenance: provenance.clone(),
                rejected_provenance: rejected.iter().map(|r| (*r).to_owned()).collect(),
            };
            let got = outcome(&evaluate(&refs, &evidence));
            assert!(
                got.iter().any(|line| line == want),
                "case: {what}: {got:#?}"
            );
        }
    }
}
