//! SLSA provenance v1 for an image, as an in-toto Statement v1 in cosign's `.att` form.
//!
//! Written predicate (only the fields Slipway sets):
//! ```text
//! buildDefinition: { buildType, externalParameters: { source: { repository, ref, commit }, workflow },
//!                    resolvedDependencies: [ { uri: "git+<repository>@<ref>", digest: { gitCommit } } ] }
//! runDetails:      { builder: { id }, metadata: { invocationId, startedOn, finishedOn } }
//! ```
//! Reading also accepts GitHub's shapes: `externalParameters.workflow.{repository, ref, path}`
//! (GitHub artifact attestations) and `externalParameters.source.uri` =
//! `git+<repository>@<ref>` (slsa-github-generator v2's container-based builder, whose v1
//! provenance is a fixture in the tests), so provenance from either verifies against the same
//! policy. Slipway writes this provenance only from `slipway-deploy attest` in the build job:
//! a deploy never attests its own build (the provenance would describe the deploy job).

use slipway_core::ImageRef;
use slipway_registry::Registry;

use crate::attestation::{self, Attached, StatementCheck};
use crate::{Error, Signer, Verifier};

/// SLSA provenance v1.
pub const SLSA_PROVENANCE_V1: &str = "https://slsa.dev/provenance/v1";
/// Prefix shared by every SLSA provenance version.
const SLSA_PROVENANCE_PREFIX: &str = "https://slsa.dev/provenance/";

/// What the build system tells Slipway about a build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildInfo {
    /// `buildDefinition.buildType`, a URI naming the build template.
    pub build_type: String,
    /// `runDetails.builder.id`, a URI naming the builder (e.g. a CI workflow at a ref).
    pub builder_id: String,
    /// The source repository URI.
    pub source_repository: String,
    /// The source ref (e.g. `refs/heads/main`).
    pub source_ref: String,
    /// The source commit.
    pub source_commit: String,
    /// The workflow (file or job) that ran the build.
    pub workflow: String,
    /// `runDetails.metadata.invocationId`: the CI run.
    pub invocation_id: String,
    /// When the build started.
    pub started_on: jiff::Timestamp,
    /// When it finished.
    pub finished_on: jiff::Timestamp,
}

/// The SLSA provenance statement for `image` (pinned by digest).
pub fn build_statement(image: &ImageRef, info: &BuildInfo) -> Result<serde_json::Value, Error> {
    let predicate = serde_json::json!({
        "buildDefinition": {
            "buildType": info.build_type,
            "externalParameters": {
                "source": {"repository": info.source_repository, "ref": info.source_ref, "commit": info.source_commit},
                "workflow": info.workflow,
            },
            "resolvedDependencies": [{
                "uri": format!("git+{}@{}", info.source_repository, info.source_ref),
                "digest": {"gitCommit": info.source_commit},
            }],
        },
        "runDetails": {
            "builder": {"id": info.builder_id},
            "metadata": {
                "invocationId": info.invocation_id,
                "startedOn": info.started_on.to_string(),
                "finishedOn": info.finished_on.to_string(),
            },
        },
    });
    attestation::statement(image, SLSA_PROVENANCE_V1, predicate)
}

/// Builds, signs and appends the provenance of `image` to its `.att` artifact.
pub async fn attach_provenance(
    registry: &dyn Registry,
    signer: &dyn Signer,
    image: &ImageRef,
    info: &BuildInfo,
) -> Result<Attached, Error> {
    attestation::attach_statement(registry, signer, image, &build_statement(image, info)?).await
}

/// How the builder id must match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BuilderMatch {
    /// Exactly this id.
    Exact(String),
    /// Any id starting with this (e.g. a workflow at any tag: `https://github.com/acme/ci/.github/workflows/build.yml@`).
    Prefix(String),
}

/// What a trusted provenance must say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProvenancePolicy {
    /// The builder the team expects.
    pub builder: BuilderMatch,
    /// The source repository, when it must be checked.
    pub source_repository: Option<String>,
    /// The source ref, when it must be checked.
    pub source_ref: Option<String>,
}

/// What a provenance says, for the gates and the audit (the pipeline converts it to its own type).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ProvenanceSummary {
    /// `runDetails.builder.id`.
    pub builder_id: String,
    /// `buildDefinition.buildType`.
    pub build_type: String,
    /// The source repository.
    pub source_repository: String,
    /// The source ref, when the provenance names one.
    pub source_ref: Option<String>,
    /// The source commit, when stated.
    pub source_commit: Option<String>,
    /// The CI run, when stated.
    pub invocation_id: Option<String>,
}

/// One provenance attestation and why it passed or failed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ProvenanceCheck {
    /// Index of the layer in the `.att` artifact, or of the bundle among the referrers.
    pub layer: usize,
    /// Where it was found (see [`StatementCheck::source`]).
    pub source: String,
    /// The trusted key that signed it, if any.
    pub key_id: Option<String>,
    /// Whether it is trusted and satisfies the policy.
    pub ok: bool,
    /// Why: every failed check, or one line saying what verified.
    pub reasons: Vec<String>,
    /// What it says, when its signature and subject verified.
    pub summary: Option<ProvenanceSummary>,
}

/// Every provenance attestation of an image, each checked.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize)]
pub struct ProvenanceReport {
    /// One entry per provenance layer (other predicate types are not listed).
    pub attestations: Vec<ProvenanceCheck>,
}

impl ProvenanceReport {
    /// The first provenance that passed, if any.
    pub fn verified(&self) -> Option<&ProvenanceSummary> {
        self.attestations
            .iter()
            .find(|check| check.ok)
            .and_then(|check| check.summary.as_ref())
    }

    /// Key ids of the provenance attestations that passed.
    pub fn verified_keys(&self) -> Vec<String> {
        self.attestations
            .iter()
            .filter(|check| check.ok)
            .filter_map(|check| check.key_id.clone())
            .collect()
    }
}

/// Checks every provenance attestation of `image` against the trusted keys and `policy`:
/// DSSE signature, subject digest, predicate type, builder id, source repository and ref.
pub async fn verify_provenance(
    registry: &dyn Registry,
    keys: &[&dyn Verifier],
    image: &ImageRef,
    policy: &ProvenancePolicy,
) -> Result<ProvenanceReport, Error> {
    let statements = attestation::read_statements(registry, keys, image).await?;
    Ok(evaluate(&statements, policy))
}

/// The policy part of [`verify_provenance`], over statements already read and checked.
pub fn evaluate(statements: &[StatementCheck], policy: &ProvenancePolicy) -> ProvenanceReport {
    let attestations = statements
        .iter()
        // The annotation is unsigned, so it only selects candidates; the signed predicate type
        // is checked below. Layers without it are candidates too.
        .filter(|check| {
            check
                .annotated_type
                .as_deref()
                .is_none_or(|kind| kind.starts_with(SLSA_PROVENANCE_PREFIX))
        })
        .map(|check| check_provenance(check, policy))
        .collect();
    ProvenanceReport { attestations }
}

fn check_provenance(check: &StatementCheck, policy: &ProvenancePolicy) -> ProvenanceCheck {
    let mut result = ProvenanceCheck {
        layer: check.layer,
        source: check.source.clone(),
        key_id: check.key_id.clone(),
        ok: false,
        reasons: Vec::new(),
        summary: None,
    };
    let Some(statement) = &check.statement else {
        result.reasons.push(
            check
                .failure
                .clone()
                .unwrap_or_else(|| "the statement could not be read".to_owned()),
        );
        return result;
    };
    let predicate_type = text(statement, "/predicateType").unwrap_or_default();
    if predicate_type != SLSA_PROVENANCE_V1 {
        result.reasons.push(format!("predicate type `{predicate_type}` is not `{SLSA_PROVENANCE_V1}` (Slipway checks SLSA provenance v1)"));
        return result;
    }
    let summary = summarise(statement);
    match &policy.builder {
        BuilderMatch::Exact(expected) if &summary.builder_id != expected => {
            result.reasons.push(format!(
                "builder `{}` is not the expected `{expected}`",
                summary.builder_id
            ))
        }
        BuilderMatch::Prefix(prefix) if !summary.builder_id.starts_with(prefix.as_str()) => {
            result.reasons.push(format!(
                "builder `{}` does not start with the expected `{prefix}`",
                summary.builder_id
            ))
        }
        _ => {}
    }
    if let Some(expected) = policy.source_repository.as_ref().filter(|expected| {
        normalise_repository(expected) != normalise_repository(&summary.source_repository)
    }) {
        result.reasons.push(format!(
            "source repository `{}` is not the expected `{expected}`",
            summary.source_repository
        ));
    }
    if let Some(expected) = policy
        .source_ref
        .as_ref()
        .filter(|expected| Some(*expected) != summary.source_ref.as_ref())
    {
        result.reasons.push(match &summary.source_ref {
            Some(actual) => format!("source ref `{actual}` is not the expected `{expected}`"),
            None => format!("the provenance names no source ref; expected `{expected}`"),
        });
    }
    result.ok = result.reasons.is_empty();
    if result.ok {
        result.reasons.push(format!(
            "provenance signed by {} for this digest; built by `{}` from `{}` at `{}`",
            check.key_id.as_deref().unwrap_or("?"),
            summary.builder_id,
            summary.source_repository,
            summary.source_ref.as_deref().unwrap_or("no ref")
        ));
    }
    result.summary = Some(summary);
    result
}

/// `git+https://github.com/org/repo.git/` and `https://github.com/org/repo` name the same
/// repository: SLSA generators write the former, people the latter.
fn normalise_repository(uri: &str) -> &str {
    let uri = uri.strip_prefix("git+").unwrap_or(uri);
    let uri = uri.strip_suffix('/').unwrap_or(uri);
    uri.strip_suffix(".git").unwrap_or(uri)
}

fn text(value: &serde_json::Value, pointer: &str) -> Option<String> {
    value
        .pointer(pointer)
        .and_then(serde_json::Value::as_str)
        .map(str::to_owned)
}

fn summarise(statement: &serde_json::Value) -> ProvenanceSummary {
    let external = "/predicate/buildDefinition/externalParameters";
    let first = |pointers: &[&str]| {
        pointers
            .iter()
            .find_map(|pointer| text(statement, &format!("{external}{pointer}")))
    };
    // slsa-github-generator's container-based builder names the source as one URI,
    // `git+https://github.com/org/repo@refs/tags/v14`.
    let source_uri = first(&["/source/uri"]);
    let (uri_repository, uri_ref) = match source_uri.as_deref().map(|uri| uri.rsplit_once('@')) {
        Some(Some((repository, git_ref))) => {
            (Some(repository.to_owned()), Some(git_ref.to_owned()))
        }
        Some(None) => (source_uri.clone(), None),
        None => (None, None),
    };
    ProvenanceSummary {
        builder_id: text(statement, "/predicate/runDetails/builder/id").unwrap_or_default(),
        build_type: text(statement, "/predicate/buildDefinition/buildType").unwrap_or_default(),
        source_repository: first(&["/source/repository", "/workflow/repository"])
            .or(uri_repository)
            .unwrap_or_default(),
        source_ref: first(&["/source/ref", "/workflow/ref"]).or(uri_ref),
        source_commit: first(&["/source/commit"]).or_else(|| {
            text(
                statement,
                "/predicate/buildDefinition/resolvedDependencies/0/digest/gitCommit",
            )
        }),
        invocation_id: text(statement, "/predicate/runDetails/metadata/invocationId"),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use slipway_core::Digest;
    use slipway_registry::Layer;

    use super::*;
    use crate::EcdsaP256Key;
    use crate::attestation::{PREDICATE_TYPE_ANNOTATION, check_layer};
    use crate::dsse::{DSSE_MEDIA_TYPE, Envelope, IN_TOTO_PAYLOAD_TYPE};

    fn info() -> BuildInfo {
        BuildInfo {
            build_type: "https://slipway.dev/build/container/v1".into(),
            builder_id: "https://github.com/acme/ci/.github/workflows/build.yml@refs/tags/v3"
                .into(),
            source_repository: "https://github.com/acme/iris".into(),
            source_ref: "refs/heads/main".into(),
            source_commit: "4d329c75e7ec1725f7c9ce917a8799d408d06be3".into(),
            workflow: ".github/workflows/release.yml".into(),
            invocation_id: "https://github.com/acme/iris/actions/runs/1/attempts/1".into(),
            started_on: "2026-01-02T03:04:05Z".parse().expect("ts"),
            finished_on: "2026-01-02T03:09:05Z".parse().expect("ts"),
        }
    }

    fn image() -> ImageRef {
        ImageRef::parse("ghcr.io/acme/iris:1.0")
            .expect("ref")
            .with_digest(Digest::parse(&format!("sha256:{}", "ab".repeat(32))).expect("digest"))
    }

    fn layer(key: &EcdsaP256Key, statement: &serde_json::Value) -> Layer {
        let envelope = Envelope::sign(
            key,
            IN_TOTO_PAYLOAD_TYPE,
            &serde_json::to_vec(statement).expect("json"),
        )
        .expect("sign");
        let annotations = BTreeMap::from([(
            PREDICATE_TYPE_ANNOTATION.to_owned(),
            SLSA_PROVENANCE_V1.to_owned(),
        )]);
        Layer {
            media_type: DSSE_MEDIA_TYPE.into(),
            data: serde_json::to_vec(&envelope).expect("json"),
            annotations,
        }
    }

    fn policy() -> ProvenancePolicy {
        ProvenancePolicy {
            builder: BuilderMatch::Prefix(
                "https://github.com/acme/ci/.github/workflows/build.yml@".into(),
            ),
            source_repository: Some("https://github.com/acme/iris".into()),
            source_ref: Some("refs/heads/main".into()),
        }
    }

    #[track_caller]
    fn check(statement: serde_json::Value, policy: ProvenancePolicy, expected: &[&str]) {
        let key = EcdsaP256Key::generate();
        let public = key.public();
        let image = image();
        let statements = [check_layer(
            0,
            &layer(&key, &statement),
            &[&public],
            image.digest().expect("pinned"),
        )];
        let report = evaluate(&statements, &policy);
        assert_eq!(report.attestations.len(), 1);
        let reasons: Vec<&str> = report.attestations[0]
            .reasons
            .iter()
            .map(String::as_str)
            .collect();
        if expected.is_empty() {
            assert!(report.attestations[0].ok, "{reasons:?}");
            assert_eq!(
                report
                    .verified()
                    .map(|summary| summary.source_commit.clone()),
                Some(Some(info().source_commit))
            );
        } else {
            assert!(!report.attestations[0].ok);
            assert_eq!(reasons, expected);
        }
    }

    #[test]
    fn policy_checks() {
        let good = build_statement(&image(), &info()).expect("statement");
        check(good.clone(), policy(), &[]);
        check(
            good.clone(),
            ProvenancePolicy {
                builder: BuilderMatch::Exact(info().builder_id),
                ..policy()
            },
            &[],
        );
        check(
            good.clone(),
            ProvenancePolicy {
                builder: BuilderMatch::Exact("https://evil.example/builder".into()),
                source_repository: Some("https://github.com/acme/other".into()),
                source_ref: Some("refs/heads/dev".into()),
            },
            &[
                "builder `https://github.com/acme/ci/.github/workflows/build.yml@refs/tags/v3` is not the expected `https://evil.example/builder`",
                "source repository `https://github.com/acme/iris` is not the expected `https://github.com/acme/other`",
                "source ref `refs/heads/main` is not the expected `refs/heads/dev`",
            ],
        );
        let mut old = good.clone();
        old["predicateType"] = "https://slsa.dev/provenance/v0.2".into();
        check(
            old,
            policy(),
            &[
                "predicate type `https://slsa.dev/provenance/v0.2` is not `https://slsa.dev/provenance/v1` (Slipway checks SLSA provenance v1)",
            ],
        );
        let mut elsewhere = good;
        elsewhere["subject"][0]["digest"]["sha256"] = "cd".repeat(32).into();
        check(
            elsewhere,
            policy(),
            &[&format!(
                "the statement is about sha256:{}, not the image digest {}",
                "cd".repeat(32),
                image().digest().expect("d")
            )],
        );
    }

    #[test]
    fn statement_shape() {
        let statement = build_statement(&image(), &info()).expect("statement");
        assert_eq!(statement["_type"], "https://in-toto.io/Statement/v1");
        assert_eq!(statement["subject"][0]["name"], "ghcr.io/acme/iris");
        assert_eq!(
            statement["predicate"]["runDetails"]["metadata"]["startedOn"],
            "2026-01-02T03:04:05Z"
        );
        assert_eq!(
            statement["predicate"]["buildDefinition"]["resolvedDependencies"][0]["uri"],
            "git+https://github.com/acme/iris@refs/heads/main"
        );
        let unpinned = build_statement(
            &ImageRef::parse("ghcr.io/acme/iris:1.0").expect("ref"),
            &info(),
        );
        assert!(matches!(unpinned, Err(Error::NotPinned { .. })));
    }
}
