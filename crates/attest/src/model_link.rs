//! The signed link between a model and an image: a statement binding the image digest to the
//! MLflow model name, version and run id, so an audit can prove which model a running image
//! serves. Stored like provenance, as an in-toto statement in the image's `.att` artifact, with
//! predicate type [`MODEL_LINK_V1`]:
//! `{"model": {"name": "iris", "version": "7", "runId": "<mlflow run>"}}`.

use slipway_core::ImageRef;
use slipway_registry::Registry;

use crate::attestation::{self, Attached, StatementCheck};
use crate::{Error, Signer, Verifier};

/// Predicate type of the model link.
pub const MODEL_LINK_V1: &str = "https://slipway.dev/model-link/v1";

/// Which model an image serves.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ModelLink {
    /// Registered model name in MLflow.
    pub model_name: String,
    /// Model version.
    pub model_version: String,
    /// The MLflow run that produced it.
    pub run_id: String,
}

/// The model-link statement for `image` (pinned by digest).
pub fn build_statement(image: &ImageRef, link: &ModelLink) -> Result<serde_json::Value, Error> {
    let predicate = serde_json::json!({"model": {"name": link.model_name, "version": link.model_version, "runId": link.run_id}});
    attestation::statement(image, MODEL_LINK_V1, predicate)
}

/// Signs and appends the model link of `image` to its `.att` artifact.
pub async fn attach_model_link(
    registry: &dyn Registry,
    signer: &dyn Signer,
    image: &ImageRef,
    link: &ModelLink,
) -> Result<Attached, Error> {
    attestation::attach_statement(registry, signer, image, &build_statement(image, link)?).await
}

/// One model-link attestation and why it passed or failed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ModelLinkCheck {
    /// Index of the layer in the `.att` artifact.
    pub layer: usize,
    /// The trusted key that signed it, if any.
    pub key_id: Option<String>,
    /// Whether it is trusted (and matches the expected model, when one was given).
    pub ok: bool,
    /// Why.
    pub reason: String,
    /// What it says, when its signature and subject verified.
    pub link: Option<ModelLink>,
}

/// Every model link of an image, each checked.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize)]
pub struct ModelLinkReport {
    /// One entry per model-link layer.
    pub links: Vec<ModelLinkCheck>,
}

impl ModelLinkReport {
    /// The links that passed.
    pub fn verified(&self) -> Vec<&ModelLink> {
        self.links
            .iter()
            .filter(|check| check.ok)
            .filter_map(|check| check.link.as_ref())
            .collect()
    }

    /// Whether a verified link names model `name` version `version`. An image that loads
    /// models (a server reloaded with each release) carries one link per model version it
    /// shipped with, so links to other versions say nothing against this one.
    pub fn links_to(&self, name: &str, version: &str) -> bool {
        self.verified()
            .iter()
            .any(|link| link.model_name == name && link.model_version == version)
    }
}

/// Checks the model links of `image` against the trusted keys and, when given, the model the
/// image is expected to serve.
pub async fn verify_model_link(
    registry: &dyn Registry,
    keys: &[&dyn Verifier],
    image: &ImageRef,
    expected: Option<&ModelLink>,
) -> Result<ModelLinkReport, Error> {
    let statements = attestation::read_statements(registry, keys, image).await?;
    Ok(evaluate(&statements, expected))
}

/// The policy part of [`verify_model_link`].
pub fn evaluate(statements: &[StatementCheck], expected: Option<&ModelLink>) -> ModelLinkReport {
    let links = statements
        .iter()
        .filter(|check| {
            check
                .annotated_type
                .as_deref()
                .is_none_or(|kind| kind == MODEL_LINK_V1)
        })
        .filter_map(|check| check_link(check, expected))
        .collect();
    ModelLinkReport { links }
}

fn check_link(check: &StatementCheck, expected: Option<&ModelLink>) -> Option<ModelLinkCheck> {
    let mut result = ModelLinkCheck {
        layer: check.layer,
        key_id: check.key_id.clone(),
        ok: false,
        reason: String::new(),
        link: None,
    };
    let Some(statement) = &check.statement else {
        result.reason = check.failure.clone().unwrap_or_default();
        return Some(result);
    };
    let predicate_type = statement
        .pointer("/predicateType")
        .and_then(serde_json::Value::as_str)
        .unwrap_or_default();
    if predicate_type != MODEL_LINK_V1 {
        // Unannotated statements of other kinds are simply not model links.
        return check.annotated_type.is_some().then(|| {
            result.reason = format!("predicate type `{predicate_type}` is not `{MODEL_LINK_V1}`");
            result
        });
    }
    let field = |name: &str| {
        statement
            .pointer(&format!("/predicate/model/{name}"))
            .and_then(serde_json::Value::as_str)
            .map(str::to_owned)
    };
    let (Some(model_name), Some(model_version), Some(run_id)) =
        (field("name"), field("version"), field("runId"))
    else {
        result.reason = "the predicate lacks model name, version or runId".to_owned();
        return Some(result);
    };
    let link = ModelLink {
        model_name,
        model_version,
        run_id,
    };
    let key = check.key_id.as_deref().unwrap_or("?");
    match expected {
        Some(expected) if expected != &link => {
            result.reason = format!(
                "links model {} v{} (run {}), not the expected {} v{} (run {})",
                link.model_name,
                link.model_version,
                link.run_id,
                expected.model_name,
                expected.model_version,
                expected.run_id
            );
        }
        _ => {
            result.ok = true;
            result.reason = format!(
                "signed by {key}: this digest serves model {} v{} (run {})",
                link.model_name, link.model_version, link.run_id
            );
        }
    }
    result.link = Some(link);
    Some(result)
}
