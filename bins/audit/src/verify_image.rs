//! `verify-image` and `verify-attestation`: cosign's `verify` and `verify-attestation` for an
//! admission check, a gate job or an auditor, without a release.
//!
//! Both resolve a tag to the digest first (signatures bind digests; a digest is taken as
//! given), check every signature or attestation found, and list each with its source and why it
//! passed or failed. Trust is a public key (`--key`) or keyless (`--certificate-identity[-regexp]`
//! and `--certificate-oidc-issuer[-regexp]`, against the Sigstore trusted root: configured,
//! refreshed by `trusted-root refresh`, or built in, and named in the output): [`TrustArgs`],
//! the same flags on both commands. Exit 0 when at least one verified (and, for attestations,
//! satisfied the `--builder-id`, `--source-repo` and `--source-ref` constraints), 1 when none did
//! (every reason listed), 2 on bad input or an unreachable registry.
//!
//! Sources, both read by both commands: the legacy `sha256-<hex>.sig` and `.att` tags (keys
//! only: Slipway reads no keyless legacy layers) and Sigstore bundles among the image's OCI 1.1
//! referrers (key or keyless; image-signature bundles count for `verify-image`, every other
//! statement for `verify-attestation`).
//!
//! A signature whose `docker-reference` names another repository (an image copied between
//! registries, or Docker Hub's `index.docker.io` spelling) verifies on its digest, as in cosign;
//! the mismatch is shown next to it (`reference_mismatch`).

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::Context as _;
use serde::Serialize;
use slipway_attest::attestation::{self, predicate_type_for};
use slipway_attest::bundle::{KeylessPolicy, Trust, TrustedRoot};
use slipway_attest::provenance::{self, BuilderMatch, ProvenancePolicy, SLSA_PROVENANCE_V1};
use slipway_attest::trust_root::RootSource;
use slipway_attest::{EcdsaP256PublicKey, Verifier};
use slipway_cli::backends::TrustedRootUsed;
use slipway_cli::config::{self, Settings};
use slipway_cli::{ExitStatus, GlobalArgs, OutputFormat, UserError};
use slipway_core::ImageRef;

/// What must have signed, as cosign's flags say it: `--key`, or keyless `--certificate-*`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct TrustArgs {
    /// The public key (`cosign.pub`) that must have signed. Without it, keyless: the
    /// `--certificate-*` flags and the Sigstore trusted root (`signing.trusted_root`, else the
    /// one `trusted-root refresh` wrote, else the built-in one).
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
}

/// The trust [`TrustArgs`] name, loaded: the key read, or the keyless policy and trusted root
/// with where it came from.
enum Loaded {
    Key(EcdsaP256PublicKey),
    Keyless(KeylessPolicy, TrustedRoot, RootSource),
}

impl TrustArgs {
    /// Reads the key, or builds the keyless policy and reads the trusted root: all before any
    /// request, so bad input exits 2 before the registry is asked.
    fn load(&self, settings: &Settings) -> Result<Loaded, UserError> {
        if let Some(path) = &self.key {
            return public_key(path).map(Loaded::Key);
        }
        let policy = KeylessPolicy::from_flags(
            self.certificate_identity.as_deref(),
            self.certificate_identity_regexp.as_deref(),
            self.certificate_oidc_issuer.as_deref(),
            self.certificate_oidc_issuer_regexp.as_deref(),
        )
        .map_err(|err| UserError {
            message: format!(
                "{err}\n\nhint: pass `--key cosign.pub`, or verify keyless with `--certificate-identity` and `--certificate-oidc-issuer`"
            )
            .replacen("\n\nhint: ", "; ", 1),
        })?;
        let (root, source) = slipway_cli::backends::trusted_root(settings)?;
        Ok(Loaded::Keyless(policy, root, source))
    }

    /// Who must have signed, in words: the key id, or the identity asked for.
    fn signer(&self, loaded: &Loaded) -> String {
        match (
            loaded,
            &self.certificate_identity,
            &self.certificate_identity_regexp,
        ) {
            (Loaded::Key(key), _, _) => key.key_id(),
            (_, Some(identity), _) => format!("identity `{identity}`"),
            (_, None, Some(pattern)) => format!("an identity matching `{pattern}`"),
            (_, None, None) => "the given identity".to_owned(),
        }
    }

    /// What was trusted, for the JSON report.
    fn used(&self, loaded: &Loaded) -> TrustUsed {
        TrustUsed {
            key_id: loaded.key_id(),
            keyless: self.keyless(),
            trusted_root: loaded.trusted_root(),
        }
    }

    /// The keyless flags given, for the JSON report.
    fn keyless(&self) -> Option<BTreeMap<&'static str, String>> {
        self.key.is_none().then(|| {
            [
                ("certificate_identity", &self.certificate_identity),
                (
                    "certificate_identity_regexp",
                    &self.certificate_identity_regexp,
                ),
                ("certificate_oidc_issuer", &self.certificate_oidc_issuer),
                (
                    "certificate_oidc_issuer_regexp",
                    &self.certificate_oidc_issuer_regexp,
                ),
            ]
            .into_iter()
            .filter_map(|(name, value)| value.clone().map(|value| (name, value)))
            .collect()
        })
    }
}

impl Loaded {
    /// The key to verify with, as the list `Trust::Keys` takes (empty when keyless).
    fn verifiers(&self) -> Vec<&dyn Verifier> {
        match self {
            Loaded::Key(key) => vec![key as &dyn Verifier],
            Loaded::Keyless(..) => Vec::new(),
        }
    }

    /// What to trust: `keys` (from [`Loaded::verifiers`]), or keyless against the root.
    fn trust<'a>(&'a self, keys: &'a [&'a dyn Verifier]) -> Trust<'a> {
        match self {
            Loaded::Keyless(policy, root, _) => Trust::Keyless { root, policy },
            Loaded::Key(_) => Trust::Keys(keys),
        }
    }

    fn key_id(&self) -> Option<String> {
        match self {
            Loaded::Key(key) => Some(key.key_id()),
            Loaded::Keyless(..) => None,
        }
    }

    /// Keyless: which trusted root, for the JSON report.
    fn trusted_root(&self) -> Option<TrustedRootUsed> {
        match self {
            Loaded::Keyless(_, root, source) => Some(TrustedRootUsed::new(root, source)),
            Loaded::Key(_) => None,
        }
    }

    /// Keyless: which trusted root, as the text report's line.
    fn trusted_root_line(&self) -> String {
        match self {
            Loaded::Keyless(_, root, source) => {
                format!("trusted root: {source}, sha256:{}\n", root.sha256)
            }
            Loaded::Key(_) => String::new(),
        }
    }
}

/// What the verification trusted, in both commands' JSON: the key, or the keyless identity and
/// issuer required and the trusted root verified against.
#[derive(Debug, Serialize, schemars::JsonSchema)]
struct TrustUsed {
    #[serde(skip_serializing_if = "Option::is_none")]
    key_id: Option<String>,
    /// Keyless: the identity and issuer required.
    #[serde(skip_serializing_if = "Option::is_none")]
    keyless: Option<BTreeMap<&'static str, String>>,
    /// Keyless: the Sigstore trusted root verified against (where it came from, its sha256).
    #[serde(skip_serializing_if = "Option::is_none")]
    trusted_root: Option<TrustedRootUsed>,
}

/// Flags of `verify-image`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct VerifyImageArgs {
    #[command(flatten)]
    pub(crate) global: GlobalArgs,
    #[command(flatten)]
    trust: TrustArgs,
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
    #[command(flatten)]
    trust: TrustArgs,
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
    /// What had to have signed.
    #[serde(flatten)]
    trust: TrustUsed,
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
    // With a key, or keyless: the identity policy from cosign's flags and the trusted root
    // (both checked before any request).
    let loaded = args.trust.load(&settings)?;
    let (registry, image) = pinned(&settings, &args.allow_insecure_registry, &args.image).await?;
    let digest = image.digest().cloned().context("pinned image")?;
    let keys = loaded.verifiers();
    let trust = loaded.trust(&keys);
    let report = slipway_attest::bundle::verify_image_report(&registry, &image, trust)
        .await
        .with_context(|| format!("reading the signatures of `{image}`"))?;
    let verified = report.signatures.iter().any(|check| check.ok);
    let signer = args.trust.signer(&loaded);
    let mut text = format!("{}@{digest}\n", image.name());
    text.push_str(&loaded.trusted_root_line());
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
        trust: args.trust.used(&loaded),
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
    /// `legacy .att tag`, or `Sigstore bundle` and the referrer manifest's digest.
    source: String,
    /// The key that signed it; keyless: the certificate identity and issuer.
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
    /// What had to have signed.
    #[serde(flatten)]
    trust: TrustUsed,
    verified: bool,
    attestations: Vec<AttestationVerdict>,
}

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
    let loaded = args.trust.load(&settings)?;
    let (registry, image) = pinned(&settings, &args.allow_insecure_registry, &args.image).await?;
    let digest = image.digest().cloned().context("pinned image")?;
    let keys = loaded.verifiers();
    let trust = loaded.trust(&keys);
    let statements = attestation::read_statements_trusting(&registry, trust, &image)
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
                source: check.source,
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
                    source: check.source,
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
    text.push_str(&loaded.trusted_root_line());
    if attestations.is_empty() {
        text.push_str(&format!(
            "fail  no `{predicate_type}` attestation under {} nor among its referrers (Sigstore bundles)\n",
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
    let signer = args.trust.signer(&loaded);
    text.push_str(&format!(
        "{}: {}\n",
        if verified { "verified" } else { "NOT verified" },
        if verified {
            format!("an attestation by {signer} holds for this digest")
        } else {
            format!("no `{predicate_type}` attestation by {signer} holds for this digest")
        }
    ));
    let verdict = AttestationsVerdict {
        image: image.name(),
        digest: digest.to_string(),
        predicate_type: predicate_type.to_owned(),
        trust: args.trust.used(&loaded),
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
