//! `verify-image` and `verify-attestation`: cosign's `verify --key` and `verify-attestation
//! --key` for an admission check, a gate job or an auditor, without a release.
//!
//! Both resolve a tag to the digest first (signatures bind digests), check every signature or
//! attestation found against the given public key, and list each with why it passed or failed.
//! Exit 0 when at least one verified (and, for attestations, satisfied the `--builder-id`,
//! `--source-repo` and `--source-ref` constraints), 1 when none did (every reason listed), 2 on
//! bad input or an unreachable registry.
//!
//! Sources: today the legacy `sha256-<hex>.sig` and `.att` tags (each check names its
//! `source`). Another source, such as Sigstore bundles in OCI referrers, adds its checks to the
//! same reports (`slipway_attest::VerificationReport`, the attestation list below), so these
//! commands and their output stay as they are.
//!
//! A signature whose `docker-reference` names another repository (an image copied between
//! registries, or Docker Hub's `index.docker.io` spelling) verifies on its digest, as in cosign;
//! the mismatch is shown next to it (`reference_mismatch`).

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::Context as _;
use serde::Serialize;
use slipway_attest::attestation::{self, predicate_type_for};
use slipway_attest::bundle::{KeylessPolicy, Trust};
use slipway_attest::provenance::{self, BuilderMatch, ProvenancePolicy, SLSA_PROVENANCE_V1};
use slipway_attest::{EcdsaP256PublicKey, Verifier};
use slipway_cli::config::{self, Settings};
use slipway_cli::{ExitStatus, GlobalArgs, OutputFormat, UserError};
use slipway_core::ImageRef;

/// Flags of `verify-image`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct VerifyImageArgs {
    #[command(flatten)]
    pub(crate) global: GlobalArgs,
    /// The public key (`cosign.pub`) a signature must verify with. Without it, keyless: the
    /// `--certificate-*` flags and `signing.trusted_root`.
    #[arg(long, value_name = "PATH")]
    key: Option<PathBuf>,
    /// Keyless: the identity (certificate SAN: email or URI) that must have signed.
    #[arg(long, value_name = "IDENTITY", conflicts_with = "key")]
    certificate_identity: Option<String>,
    /// Keyless: a regular expression the signing identity must match.
    #[arg(long, value_name = "REGEXP", conflicts_with = "key")]
    certificate_identity_regexp: Option<String>,
    /// Keyless: the OIDC issuer that must have authenticated the signer, e.g.
    /// `https://token.actions.githubusercontent.com`.
    #[arg(long, value_name = "URL", conflicts_with = "key")]
    certificate_oidc_issuer: Option<String>,
    /// Keyless: a regular expression the OIDC issuer must match.
    #[arg(long, value_name = "REGEXP", conflicts_with = "key")]
    certificate_oidc_issuer_regexp: Option<String>,
    /// The image, by tag (resolved to its digest first) or by digest.
    #[arg(value_name = "IMAGE")]
    image: String,
    /// Reach HOST (`host:port`) over plain HTTP, as cosign's flag; added to `registry.insecure`.
    #[arg(long = "allow-insecure-registry", value_name = "HOST")]
    allow_insecure_registry: Vec<String>,
}

/// Flags of `verify-attestation`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct VerifyAttestationArgs {
    #[command(flatten)]
    pub(crate) global: GlobalArgs,
    /// The public key (`cosign.pub`) an attestation must verify with (the build's key).
    #[arg(long, value_name = "PATH")]
    key: PathBuf,
    /// Predicate type: `slsaprovenance` (SLSA provenance v1), `vuln`, `custom`, or a URI.
    #[arg(long = "type", value_name = "TYPE", default_value = "custom")]
    kind: String,
    /// SLSA provenance only: the builder id it must state, exactly.
    #[arg(long, value_name = "URI")]
    builder_id: Option<String>,
    /// SLSA provenance only: the source repository it must state (`git+` and `.git` ignored).
    #[arg(long, value_name = "URI")]
    source_repo: Option<String>,
    /// SLSA provenance only: the source ref it must state, e.g. `refs/heads/main`.
    #[arg(long, value_name = "REF")]
    source_ref: Option<String>,
    /// The image, by tag (resolved to its digest first) or by digest.
    #[arg(value_name = "IMAGE")]
    image: String,
    /// Reach HOST (`host:port`) over plain HTTP, as cosign's flag; added to `registry.insecure`.
    #[arg(long = "allow-insecure-registry", value_name = "HOST")]
    allow_insecure_registry: Vec<String>,
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// The configuration, or `None` after `--print-config` printed it.
fn settings(global: &GlobalArgs) -> anyhow::Result<Option<Settings>> {
    config::load_or_print(global)
}

#[allow(clippy::print_stdout, reason = "the report is data")]
fn print(output: OutputFormat, text: &str, json: &impl Serialize) -> anyhow::Result<()> {
    slipway_cli::output::print(output, json, || text.to_owned())
}

fn public_key(path: &PathBuf) -> Result<EcdsaP256PublicKey, UserError> {
    let name = path.display().to_string();
    let pem = std::fs::read_to_string(path).map_err(|err| UserError {
        message: format!(
            "cannot read `--key {name}`: {err}\n\nhint: pass the signer's `cosign.pub`"
        ),
    })?;
    EcdsaP256PublicKey::from_pem(&name, &pem).map_err(|err| UserError {
        message: slipway_cli::backends::with_hint(
            format!("`--key {name}` is not a public key: {err}"),
            "pass the `cosign.pub` that `cosign generate-key-pair` wrote (not the private `cosign.key`)",
        ),
    })
}

async fn pinned(
    settings: &Settings,
    insecure: &[String],
    text: &str,
) -> anyhow::Result<(slipway_registry::OciRegistry, ImageRef)> {
    let (registry, _) = slipway_cli::backends::oci_registry(settings, insecure, &env)?;
    // As with cosign, a digest is verified as given: the signatures bind the digest, so the
    // image itself is not fetched (an auditor may check a digest whose image lives elsewhere).
    // A tag is resolved to its digest first.
    let parsed = slipway_cli::backends::parse_image(text)?;
    let image = if parsed.digest().is_some() {
        parsed
    } else {
        slipway_cli::backends::pin_image(&registry, text).await?
    };
    Ok((registry, image))
}

/// The `--output json` document of `verify-image`.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub(crate) struct ImageVerdict {
    image: String,
    digest: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    key_id: Option<String>,
    /// Keyless: the identity and issuer required.
    #[serde(skip_serializing_if = "Option::is_none")]
    keyless: Option<BTreeMap<&'static str, String>>,
    /// Keyless: the Sigstore trusted root verified against (where it came from, its sha256).
    #[serde(skip_serializing_if = "Option::is_none")]
    trusted_root: Option<slipway_cli::backends::TrustedRootUsed>,
    verified: bool,
    /// Every signature found, each with its source, whether it verified and why.
    #[schemars(with = "Vec<serde_json::Value>")]
    signatures: Vec<slipway_attest::SignatureCheck>,
}

/// `verify-image`.
pub(crate) async fn verify_image(args: &VerifyImageArgs) -> anyhow::Result<ExitStatus> {
    let Some(settings) = settings(&args.global)? else {
        return Ok(ExitStatus::Success);
    };
    slipway_cli::backends::parse_image(&args.image)?;
    // With a key as before; without one, keyless: the identity policy from cosign's flags and
    // the trusted root, configured, refreshed or built in (both checked before any request).
    let key = args.key.as_ref().map(public_key).transpose()?;
    let keyless = match &key {
        Some(_) => None,
        None => {
            let policy = KeylessPolicy::from_flags(
                args.certificate_identity.as_deref(),
                args.certificate_identity_regexp.as_deref(),
                args.certificate_oidc_issuer.as_deref(),
                args.certificate_oidc_issuer_regexp.as_deref(),
            )
            .map_err(|err| UserError {
                message: format!(
                    "{err}\n\nhint: pass `--key cosign.pub`, or verify keyless with `--certificate-identity` and `--certificate-oidc-issuer`"
                )
                .replacen("\n\nhint: ", "; ", 1),
            })?;
            let (root, source) = slipway_cli::backends::trusted_root(&settings)?;
            Some((policy, root, source))
        }
    };
    let (registry, image) = pinned(&settings, &args.allow_insecure_registry, &args.image).await?;
    let digest = image.digest().cloned().context("pinned image")?;
    let keys: Vec<&dyn Verifier> = key.iter().map(|key| key as &dyn Verifier).collect();
    let trust = match &keyless {
        Some((policy, root, _)) => Trust::Keyless { root, policy },
        None => Trust::Keys(&keys),
    };
    let report = slipway_attest::bundle::verify_image_report(&registry, &image, trust)
        .await
        .with_context(|| format!("reading the signatures of `{image}`"))?;
    let verified = report.signatures.iter().any(|check| check.ok);
    let signer = match (
        &key,
        &args.certificate_identity,
        &args.certificate_identity_regexp,
    ) {
        (Some(key), _, _) => key.key_id(),
        (None, Some(identity), _) => format!("identity `{identity}`"),
        (None, None, Some(pattern)) => format!("an identity matching `{pattern}`"),
        (None, None, None) => "the given identity".to_owned(),
    };
    let mut text = format!("{}@{digest}\n", image.name());
    if let Some((_, root, source)) = &keyless {
        text.push_str(&format!("trusted root: {source}, sha256:{}\n", root.sha256));
    }
    if report.signatures.is_empty() {
        text.push_str(&format!(
            "fail  no signatures under {} nor Sigstore bundles among its referrers (signed with `slipway-deploy sign` or `cosign sign`?)\n",
            digest.cosign_tag("sig")
        ));
    }
    for check in &report.signatures {
        text.push_str(&format!(
            "{}  #{} ({}): {}\n",
            if check.ok { "pass" } else { "fail" },
            check.layer,
            check.source,
            check.reason
        ));
    }
    text.push_str(&format!(
        "{}: {}\n",
        if verified { "verified" } else { "NOT verified" },
        if verified {
            format!("a signature by {signer} binds this digest")
        } else {
            format!("no signature verifies with {signer}")
        }
    ));
    let verdict = ImageVerdict {
        image: image.name(),
        digest: digest.to_string(),
        key_id: key.as_ref().map(|key| key.key_id()),
        keyless: keyless.as_ref().map(|_| {
            [
                ("certificate_identity", args.certificate_identity.clone()),
                (
                    "certificate_identity_regexp",
                    args.certificate_identity_regexp.clone(),
                ),
                (
                    "certificate_oidc_issuer",
                    args.certificate_oidc_issuer.clone(),
                ),
                (
                    "certificate_oidc_issuer_regexp",
                    args.certificate_oidc_issuer_regexp.clone(),
                ),
            ]
            .into_iter()
            .filter_map(|(name, value)| value.map(|value| (name, value)))
            .collect()
        }),
        trusted_root: keyless
            .as_ref()
            .map(|(_, root, source)| slipway_cli::backends::TrustedRootUsed::new(root, source)),
        verified,
        signatures: report.signatures,
    };
    print(args.global.output, &text, &verdict)?;
    Ok(if verified {
        ExitStatus::Success
    } else {
        ExitStatus::No
    })
}

/// One attestation in the `--output json` document of `verify-attestation`.
#[derive(Debug, Serialize, schemars::JsonSchema)]
struct AttestationVerdict {
    layer: usize,
    source: &'static str,
    key_id: Option<String>,
    ok: bool,
    reasons: Vec<String>,
    /// For SLSA provenance: what it says (builder, source repository, ref, commit).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<serde_json::Value>")]
    provenance: Option<provenance::ProvenanceSummary>,
}

/// The `--output json` document of `verify-attestation`.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub(crate) struct AttestationsVerdict {
    image: String,
    digest: String,
    predicate_type: String,
    key_id: String,
    verified: bool,
    attestations: Vec<AttestationVerdict>,
}

const LEGACY_ATTESTATION_SOURCE: &str = "legacy .att tag";

/// `verify-attestation`.
pub(crate) async fn verify_attestation(args: &VerifyAttestationArgs) -> anyhow::Result<ExitStatus> {
    let Some(settings) = settings(&args.global)? else {
        return Ok(ExitStatus::Success);
    };
    let predicate_type = predicate_type_for(&args.kind).ok_or_else(|| UserError {
        message: format!(
            "unknown `--type {}`\n\nhint: use `slsaprovenance`, `vuln`, `custom`, or a predicate type URI",
            args.kind
        ),
    })?;
    let constrained =
        args.builder_id.is_some() || args.source_repo.is_some() || args.source_ref.is_some();
    if constrained && predicate_type != SLSA_PROVENANCE_V1 {
        return Err(UserError {
            message: format!(
                "`--builder-id`, `--source-repo` and `--source-ref` check SLSA provenance, not `--type {}`\n\nhint: add `--type slsaprovenance`",
                args.kind
            ),
        }
        .into());
    }
    let key = public_key(&args.key)?;
    let keys = [&key as &dyn Verifier];
    let (registry, image) = pinned(&settings, &args.allow_insecure_registry, &args.image).await?;
    let digest = image.digest().cloned().context("pinned image")?;
    let statements = attestation::read_statements(&registry, &keys, &image)
        .await
        .with_context(|| format!("reading the attestations of `{image}`"))?;
    let attestations: Vec<AttestationVerdict> = if predicate_type == SLSA_PROVENANCE_V1 {
        let policy = ProvenancePolicy {
            builder: match &args.builder_id {
                Some(id) => BuilderMatch::Exact(id.clone()),
                None => BuilderMatch::Prefix(String::new()),
            },
            source_repository: args.source_repo.clone(),
            source_ref: args.source_ref.clone(),
        };
        provenance::evaluate(&statements, &policy)
            .attestations
            .into_iter()
            .map(|check| AttestationVerdict {
                layer: check.layer,
                source: LEGACY_ATTESTATION_SOURCE,
                key_id: check.key_id,
                ok: check.ok,
                reasons: check.reasons,
                provenance: check.summary,
            })
            .collect()
    } else {
        statements
            .into_iter()
            // The unsigned annotation only selects candidates; the signed type decides.
            .filter(|check| {
                check
                    .annotated_type
                    .as_deref()
                    .is_none_or(|kind| kind == predicate_type)
            })
            .map(|check| {
                let signed_type = check
                    .statement
                    .as_ref()
                    .and_then(|statement| statement.get("predicateType"))
                    .and_then(serde_json::Value::as_str)
                    .map(str::to_owned);
                let (ok, reason) = match (&check.failure, &signed_type) {
                    (Some(failure), _) => (false, failure.clone()),
                    (None, Some(kind)) if kind == predicate_type => (
                        true,
                        format!(
                            "attestation signed by {} for this digest",
                            check.key_id.as_deref().unwrap_or("?")
                        ),
                    ),
                    (None, kind) => (
                        false,
                        format!(
                            "signed predicate type `{}` is not `{predicate_type}`",
                            kind.as_deref().unwrap_or("none")
                        ),
                    ),
                };
                AttestationVerdict {
                    layer: check.layer,
                    source: LEGACY_ATTESTATION_SOURCE,
                    key_id: check.key_id,
                    ok,
                    reasons: vec![reason],
                    provenance: None,
                }
            })
            .collect()
    };
    let verified = attestations.iter().any(|check| check.ok);
    let mut text = format!("{}@{digest} ({predicate_type})\n", image.name());
    if attestations.is_empty() {
        text.push_str(&format!(
            "fail  no `{predicate_type}` attestation under {}\n",
            digest.cosign_tag("att")
        ));
    }
    for check in &attestations {
        text.push_str(&format!(
            "{}  #{} ({}): {}\n",
            if check.ok { "pass" } else { "fail" },
            check.layer,
            check.source,
            check.reasons.join("; ")
        ));
    }
    text.push_str(&format!(
        "{}: {}\n",
        if verified { "verified" } else { "NOT verified" },
        if verified {
            format!("an attestation by {} holds for this digest", key.key_id())
        } else {
            format!(
                "no `{predicate_type}` attestation by {} holds for this digest",
                key.key_id()
            )
        }
    ));
    let verdict = AttestationsVerdict {
        image: image.name(),
        digest: digest.to_string(),
        predicate_type: predicate_type.to_owned(),
        key_id: key.key_id(),
        verified,
        attestations,
    };
    print(args.global.output, &text, &verdict)?;
    Ok(if verified {
        ExitStatus::Success
    } else {
        ExitStatus::No
    })
}
