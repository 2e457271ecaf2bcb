//! The build and gate jobs' standalone commands: `check-model`, `sign` and `attest`.
//!
//! Each does one thing a CI step needs without a release: judge a model version with the
//! pipeline's own model gate (`slipway_pipeline::model_evidence` + `slipway_gates::model`), sign
//! an image as `cosign sign --key` does (legacy `.sig` tag, appended), or attest it as
//! `cosign attest --key` does (`.att` tag, appended), including SLSA v1 provenance built from
//! the build's facts. Flags follow cosign's names where they overlap (`--key`, `--type`,
//! `--predicate`, `--allow-insecure-registry`).
//!
//! Exit codes: 0 passed or done, 1 the model gate said no (every reason listed), 2 an error
//! (bad input with a hint, unreachable registry). Data on stdout (`--output text|json`), notes
//! on stderr.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::Context as _;
use serde::Serialize;
use slipway_attest::Signer as _;
use slipway_attest::attestation::{self, predicate_type_for};
use slipway_attest::provenance::{self, SLSA_PROVENANCE_V1};
use slipway_cli::config::{self, Settings};
use slipway_cli::release::{BuildFacts, build_info};
use slipway_cli::{ExitStatus, GlobalArgs, OutputFormat, UserError};
use slipway_core::ModelRef;
use slipway_gates::model::MetricRule;
use slipway_registry::{OciRegistry, Registry as _};

/// Flags of `check-model`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct CheckModelArgs {
    #[command(flatten)]
    pub(crate) global: GlobalArgs,
    /// The model version: `name@alias`, `name/7` or `name/Stage`.
    #[arg(value_name = "MODEL_REF")]
    model: String,
    /// A lower bound, added to `[policy.model]` (replacing that metric's `min`). Repeatable.
    #[arg(long = "min", value_name = "METRIC=VALUE", value_parser = parse_bound)]
    min: Vec<(String, f64)>,
    /// An upper bound, added to `[policy.model]` (replacing that metric's `max`). Repeatable.
    #[arg(long = "max", value_name = "METRIC=VALUE", value_parser = parse_bound)]
    max: Vec<(String, f64)>,
    /// MLflow tracking server (default: `MLFLOW_TRACKING_URI`, then `mlflow.tracking_uri`).
    #[arg(long, value_name = "URL")]
    mlflow_uri: Option<String>,
}

/// Flags every registry command shares.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct RegistryArgs {
    /// Reach HOST (`host:port`) over plain HTTP, as cosign's flag; added to `registry.insecure`.
    /// Repeatable. Every other registry is HTTPS only.
    #[arg(long = "allow-insecure-registry", value_name = "HOST")]
    pub(crate) allow_insecure_registry: Vec<String>,
}

/// Flags of `sign`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct SignArgs {
    #[command(flatten)]
    pub(crate) global: GlobalArgs,
    /// The signing key: an encrypted `cosign.key` (password from `COSIGN_PASSWORD` or
    /// `signing.password`). Default: `signing.key`.
    #[arg(long, value_name = "PATH")]
    key: Option<PathBuf>,
    /// Write the signature as cosign v3 does: a Sigstore bundle attached to the image as an OCI
    /// 1.1 referrer (listed in the `sha256-<hex>` referrers tag where the registry has no
    /// referrers API), instead of the legacy `.sig` tag.
    #[arg(long)]
    bundle: bool,
    /// The image, by tag (resolved to its digest first) or by digest.
    #[arg(value_name = "IMAGE")]
    image: String,
    #[command(flatten)]
    registry: RegistryArgs,
}

/// Flags of `attest`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct AttestArgs {
    #[command(flatten)]
    pub(crate) global: GlobalArgs,
    /// The signing key (the build's key, not the deploy's): an encrypted `cosign.key`.
    /// Default: `signing.key`.
    #[arg(long, value_name = "PATH")]
    key: Option<PathBuf>,
    /// Predicate type: `slsaprovenance` (SLSA provenance v1), `vuln`, `custom`, or a URI.
    #[arg(long = "type", value_name = "TYPE", default_value = "custom")]
    kind: String,
    /// The predicate, a JSON file. For `slsaprovenance` it may be left out: the predicate is
    /// then built from `--builder-id`, `--source-repo`, `--source-ref` and `--source-commit`
    /// (each defaulting from GitHub Actions' variables in the build job).
    #[arg(long, value_name = "FILE")]
    predicate: Option<PathBuf>,
    /// SLSA `runDetails.builder.id` (default in GitHub Actions: the workflow at its ref).
    #[arg(long, value_name = "URI")]
    builder_id: Option<String>,
    /// The source repository (default in GitHub Actions: `$GITHUB_SERVER_URL/$GITHUB_REPOSITORY`).
    #[arg(long, value_name = "URI")]
    source_repo: Option<String>,
    /// The source ref built, e.g. `refs/heads/main` or `refs/tags/v1.2.0` (default: `GITHUB_REF`).
    #[arg(long, value_name = "REF")]
    source_ref: Option<String>,
    /// The source commit built (default: `GITHUB_SHA`).
    #[arg(long, value_name = "SHA")]
    source_commit: Option<String>,
    /// Write the attestation as cosign v3 does: a Sigstore bundle (DSSE) attached to the image
    /// as an OCI 1.1 referrer, instead of a layer under the legacy `.att` tag.
    #[arg(long)]
    bundle: bool,
    /// The image, by tag (resolved to its digest first) or by digest.
    #[arg(value_name = "IMAGE")]
    image: String,
    #[command(flatten)]
    registry: RegistryArgs,
}

fn parse_bound(text: &str) -> Result<(String, f64), String> {
    let (metric, value) = text
        .split_once('=')
        .ok_or_else(|| format!("`{text}` is not METRIC=VALUE (e.g. `accuracy=0.9`)"))?;
    let value: f64 = value
        .trim()
        .parse()
        .map_err(|_| format!("`{value}` in `{text}` is not a number"))?;
    if metric.trim().is_empty() || !value.is_finite() {
        return Err(format!(
            "`{text}` needs a metric name and a finite number (e.g. `accuracy=0.9`)"
        ));
    }
    Ok((metric.trim().to_owned(), value))
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

/// `check-model`: the pipeline's model gate on one version.
pub(crate) async fn check_model(args: &CheckModelArgs) -> anyhow::Result<ExitStatus> {
    let Some(settings) = settings(&args.global)? else {
        return Ok(ExitStatus::Success);
    };
    let model = ModelRef::parse(&args.model).map_err(|err| UserError {
        message: slipway_cli::backends::with_hint(
            format!("invalid MODEL_REF: {err}"),
            "write `name@alias`, `name/7` or `name/Stage`",
        ),
    })?;
    let mut policy = settings.policy.model.clone();
    for (metric, min) in &args.min {
        policy
            .metrics
            .entry(metric.clone())
            .or_insert_with(MetricRule::default)
            .min = Some(*min);
    }
    for (metric, max) in &args.max {
        policy
            .metrics
            .entry(metric.clone())
            .or_insert_with(MetricRule::default)
            .max = Some(*max);
    }
    let (client, uri) =
        slipway_cli::backends::mlflow_client(&settings, args.mlflow_uri.as_deref(), &env)?;
    let (info, evidence) =
        slipway_pipeline::model_evidence(&client, &model, &settings.model.serving_alias)
            .await
            .with_context(|| format!("reading `{model}` from MLflow at {uri}"))?;
    let report = slipway_gates::model::evaluate(&policy, &evidence);
    let text = format!(
        "model {model} is {} (run {})\n{}",
        info.version,
        info.run_id.as_deref().unwrap_or("unknown"),
        report.render_text()
    );
    let json = CheckedModel {
        model: model.to_string(),
        version: info.version.to_string(),
        run_id: info.run_id.clone(),
        passed: report.passed(),
        checks: serde_json::to_value(&report.checks)?,
    };
    print(args.global.output, &text, &json)?;
    Ok(if report.passed() {
        ExitStatus::Success
    } else {
        ExitStatus::No
    })
}

/// The registry client for a standalone command.
fn registry(settings: &Settings, args: &RegistryArgs) -> Result<OciRegistry, UserError> {
    slipway_cli::backends::oci_registry(settings, &args.allow_insecure_registry, &env)
        .map(|(registry, _)| registry)
}

fn signing_key(
    settings: &Settings,
    flag: Option<&PathBuf>,
) -> Result<slipway_attest::EcdsaP256Key, UserError> {
    let (path, key) = match (flag, &settings.signing.key) {
        (Some(path), _) => (path, "--key"),
        (None, Some(path)) => (path, "signing.key"),
        (None, None) => {
            return Err(UserError {
                message: "no signing key given\n\nhint: pass `--key cosign.key` (from `cosign generate-key-pair`) or set `signing.key`".to_owned(),
            });
        }
    };
    slipway_cli::backends::load_signing_key(path, settings.signing.password.as_ref(), key, &env)
}

/// What `sign` did, as `--output json` prints it.
/// What `check-model` judged, as `--output json` prints it.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub(crate) struct CheckedModel {
    /// The model reference asked for.
    model: String,
    /// The version it resolved to.
    version: String,
    /// The MLflow run that produced the version.
    run_id: Option<String>,
    /// Whether every check of the model gate passed.
    passed: bool,
    /// The gate's checks (the same as in `run`'s report).
    #[schemars(with = "Vec<serde_json::Value>")]
    checks: serde_json::Value,
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
pub(crate) struct Signed {
    image: String,
    digest: String,
    key_id: String,
    tag: String,
    signatures: usize,
    /// With `--bundle`: the referrer manifest that holds the Sigstore bundle.
    #[serde(skip_serializing_if = "Option::is_none")]
    bundle: Option<String>,
}

/// `sign`: cosign's simple signing, appended under the `.sig` tag.
pub(crate) async fn sign(args: &SignArgs) -> anyhow::Result<ExitStatus> {
    let Some(settings) = settings(&args.global)? else {
        return Ok(ExitStatus::Success);
    };
    slipway_cli::backends::parse_image(&args.image)?;
    let key = signing_key(&settings, args.key.as_ref())?;
    let registry = registry(&settings, &args.registry)?;
    let image = slipway_cli::backends::pin_image(&registry, &args.image).await?;
    let digest = image.digest().cloned().context("pinned image")?;
    if args.bundle {
        let manifest = slipway_attest::bundle::sign_image_bundle(&registry, &key, &image)
            .await
            .with_context(|| format!("signing `{image}`"))?;
        let bundles = slipway_attest::bundle::find_bundles(&registry, &image)
            .await
            .with_context(|| format!("reading back the referrers of `{image}`"))?
            .len();
        let signed = Signed {
            image: image.name(),
            digest: digest.to_string(),
            key_id: key.key_id(),
            tag: slipway_registry::manifest::referrers_tag(&digest),
            signatures: bundles,
            bundle: Some(manifest.to_string()),
        };
        let text = format!(
            "signed {}@{} with key {}\nstored as a Sigstore bundle in referrer {} ({} bundle(s), earlier ones kept)\n",
            signed.image, signed.digest, signed.key_id, manifest, signed.signatures
        );
        print(args.global.output, &text, &signed)?;
        return Ok(ExitStatus::Success);
    }
    let key_id = slipway_attest::sign_image(&registry, &key, &image)
        .await
        .with_context(|| format!("signing `{image}`"))?;
    let tag = digest.cosign_tag("sig");
    let signatures = registry
        .get_artifact(&image, &tag)
        .await
        .with_context(|| format!("reading back `{tag}`"))?
        .map_or(0, |artifact| artifact.layers.len());
    let signed = Signed {
        image: image.name(),
        digest: digest.to_string(),
        key_id,
        tag,
        signatures,
        bundle: None,
    };
    let text = format!(
        "signed {}@{} with key {}\nstored under {} ({} signature(s), earlier ones kept)\n",
        signed.image, signed.digest, signed.key_id, signed.tag, signed.signatures
    );
    print(args.global.output, &text, &signed)?;
    Ok(ExitStatus::Success)
}

/// What `attest` did, as `--output json` prints it.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub(crate) struct Attested {
    image: String,
    digest: String,
    predicate_type: String,
    key_id: String,
    tag: String,
    attestations: usize,
    /// With `--bundle`: the referrer manifest that holds the Sigstore bundle.
    #[serde(skip_serializing_if = "Option::is_none")]
    bundle: Option<String>,
    /// For SLSA provenance built from flags: what it says.
    #[serde(skip_serializing_if = "Option::is_none")]
    provenance: Option<BTreeMap<&'static str, String>>,
}

/// `attest`: an in-toto statement in a DSSE envelope, appended under the `.att` tag, or with
/// `--bundle` in a Sigstore bundle among the image's OCI referrers.
pub(crate) async fn attest(args: &AttestArgs) -> anyhow::Result<ExitStatus> {
    let Some(settings) = settings(&args.global)? else {
        return Ok(ExitStatus::Success);
    };
    slipway_cli::backends::parse_image(&args.image)?;
    let predicate_type = predicate_type_for(&args.kind).ok_or_else(|| UserError {
        message: format!(
            "unknown `--type {}`\n\nhint: use `slsaprovenance`, `vuln`, `custom`, or a predicate type URI",
            args.kind
        ),
    })?;
    let facts = BuildFacts {
        builder_id: args.builder_id.clone(),
        source_repository: args.source_repo.clone(),
        source_ref: args.source_ref.clone(),
        source_commit: args.source_commit.clone(),
    };
    let has_facts = facts != BuildFacts::default();
    if has_facts && predicate_type != SLSA_PROVENANCE_V1 {
        return Err(UserError {
            message: format!(
                "`--builder-id`, `--source-repo`, `--source-ref` and `--source-commit` build SLSA provenance, not `--type {}`\n\nhint: add `--type slsaprovenance`, or pass the predicate with `--predicate FILE`",
                args.kind
            ),
        }
        .into());
    }
    if has_facts && args.predicate.is_some() {
        return Err(UserError {
            message: "both `--predicate` and build facts (`--builder-id`, …) given\n\nhint: pass the predicate file, or the build facts, not both".to_owned(),
        }
        .into());
    }
    let predicate = match &args.predicate {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|err| UserError {
                message: format!(
                    "cannot read `--predicate {}`: {err}\n\nhint: pass the predicate as a JSON file",
                    path.display()
                ),
            })?;
            let value: serde_json::Value = serde_json::from_str(&text).map_err(|err| UserError {
                message: format!(
                    "`--predicate {}` is not JSON: {err}\n\nhint: the predicate is the JSON object that goes into the statement's `predicate`",
                    path.display()
                ),
            })?;
            Some(value)
        }
        None if predicate_type == SLSA_PROVENANCE_V1 => None,
        None => {
            return Err(UserError {
                message: format!(
                    "`--type {}` needs `--predicate FILE`\n\nhint: only `--type slsaprovenance` can be built from the build's facts",
                    args.kind
                ),
            }
            .into());
        }
    };
    let build = match &predicate {
        None => Some(build_info(&facts, &env)?),
        Some(_) => None,
    };
    let key = signing_key(&settings, args.key.as_ref())?;
    let registry = registry(&settings, &args.registry)?;
    let image = slipway_cli::backends::pin_image(&registry, &args.image).await?;
    let digest = image.digest().cloned().context("pinned image")?;
    let statement = match (&predicate, &build) {
        (Some(predicate), _) => attestation::statement(&image, predicate_type, predicate.clone())?,
        (None, Some(build)) => provenance::build_statement(&image, build)?,
        (None, None) => anyhow::bail!("neither a predicate nor build facts"),
    };
    let (tag, attestations, bundle) = if args.bundle {
        let payload = serde_json::to_vec(&statement).context("serialising the statement")?;
        let manifest = slipway_attest::bundle::attach_statement_bundle(
            &registry,
            &key,
            &image,
            &payload,
            predicate_type,
        )
        .await
        .with_context(|| format!("attesting `{image}`"))?;
        let bundles = slipway_attest::bundle::find_bundles(&registry, &image)
            .await
            .with_context(|| format!("reading back the referrers of `{image}`"))?
            .len();
        (
            slipway_registry::manifest::referrers_tag(&digest),
            bundles,
            Some(manifest.to_string()),
        )
    } else {
        let attached = attestation::attach_statement(&registry, &key, &image, &statement)
            .await
            .with_context(|| format!("attesting `{image}`"))?;
        (attached.tag, attached.count, None)
    };
    let attested = Attested {
        image: image.name(),
        digest: digest.to_string(),
        predicate_type: predicate_type.to_owned(),
        key_id: key.key_id(),
        tag,
        attestations,
        bundle,
        provenance: build.as_ref().map(|build| {
            BTreeMap::from([
                ("builder_id", build.builder_id.clone()),
                ("source_repository", build.source_repository.clone()),
                ("source_ref", build.source_ref.clone()),
                ("source_commit", build.source_commit.clone()),
            ])
        }),
    };
    let mut text = format!(
        "attested {}@{} ({}) with key {}\n",
        attested.image, attested.digest, attested.predicate_type, attested.key_id,
    );
    text.push_str(&match &attested.bundle {
        Some(manifest) => format!(
            "stored as a Sigstore bundle in referrer {manifest} ({} bundle(s), earlier ones kept)\n",
            attested.attestations
        ),
        None => format!(
            "stored under {} ({} attestation(s), earlier ones kept)\n",
            attested.tag, attested.attestations
        ),
    });
    if let Some(build) = &build {
        text.push_str(&format!(
            "built by {} from {} at {} ({})\n",
            build.builder_id,
            build.source_repository,
            if build.source_ref.is_empty() {
                "no ref"
            } else {
                &build.source_ref
            },
            if build.source_commit.is_empty() {
                "no commit"
            } else {
                &build.source_commit
            }
        ));
    }
    print(args.global.output, &text, &attested)?;
    Ok(ExitStatus::Success)
}
