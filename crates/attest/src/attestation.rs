//! in-toto statements in cosign's `.att` form: a DSSE envelope per layer (media type
//! `application/vnd.dsse.envelope.v1+json`, annotation `predicateType`) under the
//! `sha256-<hex>.att` tag. Attaching appends, like signing: nobody's attestation is lost.
//!
//! Provenance ([`crate::provenance`]) and the model link ([`crate::model_link`]) are predicates
//! over this one mechanism; the checks every statement gets (signature, payload type, statement
//! type, subject digest) live here once.

use std::collections::BTreeMap;

use slipway_core::{Digest, ImageRef};
use slipway_registry::{Layer, Registry};

use crate::bundle::Trust;
use crate::dsse::{DSSE_MEDIA_TYPE, Envelope, IN_TOTO_PAYLOAD_TYPE};
use crate::{Error, Signer, Verifier};

/// [`StatementCheck::source`] of a layer of the `sha256-<hex>.att` artifact.
pub const LEGACY_ATTESTATION_SOURCE: &str = "legacy .att tag";

/// The layer annotation cosign uses to name an attestation's predicate type.
pub const PREDICATE_TYPE_ANNOTATION: &str = "predicateType";
/// in-toto Statement v1.
pub const IN_TOTO_STATEMENT_V1: &str = "https://in-toto.io/Statement/v1";
/// in-toto Statement v0.1 (what cosign 1.x and slsa-github-generator wrote); read, never written.
pub const IN_TOTO_STATEMENT_V01: &str = "https://in-toto.io/Statement/v0.1";

/// cosign's predicate type for a vulnerability scan (`cosign attest --type vuln`).
pub const COSIGN_VULN_V1: &str = "https://cosign.sigstore.dev/attestation/vuln/v1";
/// cosign's predicate type for anything else (`cosign attest --type custom`).
pub const COSIGN_CUSTOM_V1: &str = "https://cosign.sigstore.dev/attestation/v1";

/// The predicate type URI for cosign's `--type` names: `slsaprovenance` (and cosign's
/// `slsaprovenance1`) is SLSA provenance **v1**, the only version Slipway checks (cosign's own
/// `slsaprovenance` means v0.2, which Slipway would refuse); `vuln` and `custom` are cosign's.
/// A value containing `://` is taken as the URI itself, as cosign does. `None` for other names.
pub fn predicate_type_for(kind: &str) -> Option<&str> {
    match kind {
        "slsaprovenance" | "slsaprovenance1" => Some(crate::provenance::SLSA_PROVENANCE_V1),
        "vuln" => Some(COSIGN_VULN_V1),
        "custom" => Some(COSIGN_CUSTOM_V1),
        uri if uri.contains("://") => Some(uri),
        _ => None,
    }
}

/// What attaching a statement produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attached {
    /// The key that signed it.
    pub key_id: String,
    /// The tag it is stored under (`sha256-<hex>.att`).
    pub tag: String,
    /// Digest of the `.att` manifest after the append.
    pub manifest_digest: Digest,
    /// How many attestations the image has now, this one included.
    pub count: usize,
}

/// One attestation layer after the checks common to every statement.
#[derive(Debug, Clone, PartialEq)]
pub struct StatementCheck {
    /// Index of the layer in the `.att` artifact, or of the bundle among the image's referrers.
    pub layer: usize,
    /// Where it was found: [`LEGACY_ATTESTATION_SOURCE`], or [`crate::bundle::BUNDLE_SIGNATURE_SOURCE`]
    /// followed by the referrer manifest's digest.
    pub source: String,
    /// The trusted key that signed the envelope, if any; keyless: the certificate identity.
    pub key_id: Option<String>,
    /// The predicate type the layer annotation claims (unsigned: only a hint for filtering).
    pub annotated_type: Option<String>,
    /// The statement, when the envelope verified and the subject is this image.
    pub statement: Option<serde_json::Value>,
    /// Why the statement cannot be trusted for this image, if it cannot.
    pub failure: Option<String>,
}

pub(crate) fn pinned(image: &ImageRef) -> Result<&Digest, Error> {
    image.digest().ok_or_else(|| Error::NotPinned {
        image: image.to_string(),
    })
}

/// The pinned image's cosign artifact under `sha256-<hex>.<suffix>` (`sig` or `att`), empty
/// when the tag does not exist yet.
pub(crate) async fn cosign_artifact(
    registry: &dyn Registry,
    image: &ImageRef,
    suffix: &str,
) -> Result<slipway_registry::Artifact, Error> {
    let tag = pinned(image)?.cosign_tag(suffix);
    Ok(registry
        .get_artifact(image, &tag)
        .await
        .map_err(|source| Error::Registry {
            image: image.to_string(),
            source,
        })?
        .unwrap_or_default())
}

/// The in-toto Statement v1 for `image` (which must be pinned by digest).
pub fn statement(
    image: &ImageRef,
    predicate_type: &str,
    predicate: serde_json::Value,
) -> Result<serde_json::Value, Error> {
    let digest = pinned(image)?;
    Ok(serde_json::json!({
        "_type": IN_TOTO_STATEMENT_V1,
        "subject": [{"name": image.name(), "digest": {digest.algorithm().as_str(): digest.hex()}}],
        "predicateType": predicate_type,
        "predicate": predicate,
    }))
}

/// Signs `statement` into a DSSE envelope and appends it to the image's `.att` artifact.
pub async fn attach_statement(
    registry: &dyn Registry,
    signer: &dyn Signer,
    image: &ImageRef,
    statement: &serde_json::Value,
) -> Result<Attached, Error> {
    let digest = pinned(image)?;
    let predicate_type = statement
        .get("predicateType")
        .and_then(serde_json::Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let payload = serde_json::to_vec(statement).map_err(|err| Error::Key {
        key: signer.key_id(),
        message: format!("cannot serialise the statement ({err})"),
    })?;
    let envelope = Envelope::sign(signer, IN_TOTO_PAYLOAD_TYPE, &payload)?;
    let data = serde_json::to_vec(&envelope).map_err(|err| Error::Key {
        key: signer.key_id(),
        message: format!("cannot serialise the envelope ({err})"),
    })?;
    let tag = digest.cosign_tag("att");
    let registry_error = |source| Error::Registry {
        image: image.to_string(),
        source,
    };
    let mut artifact = cosign_artifact(registry, image, "att").await?;
    artifact.layers.push(Layer {
        media_type: DSSE_MEDIA_TYPE.to_owned(),
        data,
        annotations: BTreeMap::from([(PREDICATE_TYPE_ANNOTATION.to_owned(), predicate_type)]),
    });
    let manifest_digest = registry
        .put_artifact(image, &tag, &artifact)
        .await
        .map_err(registry_error)?;
    Ok(Attached {
        key_id: signer.key_id(),
        tag,
        manifest_digest,
        count: artifact.layers.len(),
    })
}

/// Every attestation of the image in both formats, checked with `keys`: the layers of its
/// `.att` artifact (cosign v2 and earlier), then the Sigstore bundles among its referrers that
/// hold a statement other than an image signature (cosign v3's `attest`, or `slipway-deploy
/// attest --bundle`). What every reader of attestations (provenance, model link, drift,
/// `verify-attestation`) goes through, so both formats count everywhere.
pub async fn read_statements(
    registry: &dyn Registry,
    keys: &[&dyn Verifier],
    image: &ImageRef,
) -> Result<Vec<StatementCheck>, Error> {
    read_statements_trusting(registry, Trust::Keys(keys), image).await
}

/// [`read_statements`] with keys or keyless trust. Keyless reads only bundles: Slipway reads no
/// keyless `.att` layers (cosign keeps their certificate in layer annotations; cosign v3 writes
/// bundles), as [`crate::bundle::verify_image_any_format`] reads no keyless `.sig` layers.
pub async fn read_statements_trusting(
    registry: &dyn Registry,
    trust: Trust<'_>,
    image: &ImageRef,
) -> Result<Vec<StatementCheck>, Error> {
    let digest = pinned(image)?;
    let mut checks = Vec::new();
    if let Trust::Keys(keys) = trust {
        let artifact = cosign_artifact(registry, image, "att").await?;
        checks.extend(
            artifact
                .layers
                .iter()
                .enumerate()
                .map(|(idx, layer)| check_layer(idx, layer, keys, digest)),
        );
    }
    for (idx, found) in crate::bundle::find_bundles(registry, image)
        .await?
        .iter()
        .enumerate()
    {
        if let Some(check) =
            crate::bundle::check_attestation_bundle(idx, found, digest, trust).await
        {
            checks.push(check);
        }
    }
    Ok(checks)
}

/// The checks of one layer, as a pure function (the DSSE fixture tests call it directly).
pub fn check_layer(
    idx: usize,
    layer: &Layer,
    keys: &[&dyn Verifier],
    digest: &Digest,
) -> StatementCheck {
    let annotated_type = layer.annotations.get(PREDICATE_TYPE_ANNOTATION).cloned();
    let mut check = StatementCheck {
        layer: idx,
        source: LEGACY_ATTESTATION_SOURCE.to_owned(),
        key_id: None,
        annotated_type,
        statement: None,
        failure: None,
    };
    let fail = |mut check: StatementCheck, reason: String| {
        check.failure = Some(reason);
        check
    };
    if layer.media_type != DSSE_MEDIA_TYPE {
        return fail(
            check,
            format!("media type `{}` is not a DSSE envelope", layer.media_type),
        );
    }
    let envelope: Envelope = match serde_json::from_slice(&layer.data) {
        Ok(envelope) => envelope,
        Err(err) => return fail(check, format!("not a DSSE envelope ({err})")),
    };
    if envelope.payload_type != IN_TOTO_PAYLOAD_TYPE {
        return fail(
            check,
            format!(
                "payload type `{}` is not `{IN_TOTO_PAYLOAD_TYPE}`",
                envelope.payload_type
            ),
        );
    }
    match envelope.verify(keys) {
        Ok(key_id) => check.key_id = Some(key_id),
        Err(reason) => return fail(check, reason),
    }
    match envelope
        .payload_bytes()
        .and_then(|bytes| about_image(&bytes, digest))
    {
        Ok(statement) => check.statement = Some(statement),
        Err(reason) => return fail(check, reason),
    }
    check
}

/// The checks of a verified payload: it is an in-toto statement (v1, or v0.1 as older tools
/// wrote) and one of its subjects is `digest`. Returns the statement.
pub(crate) fn about_image(payload: &[u8], digest: &Digest) -> Result<serde_json::Value, String> {
    let statement: serde_json::Value = serde_json::from_slice(payload)
        .map_err(|err| format!("the payload is not JSON ({err})"))?;
    let statement_type = statement
        .get("_type")
        .and_then(serde_json::Value::as_str)
        .unwrap_or_default();
    if statement_type != IN_TOTO_STATEMENT_V1 && statement_type != IN_TOTO_STATEMENT_V01 {
        return Err(format!(
            "statement type `{statement_type}` is not an in-toto statement"
        ));
    }
    let algorithm = digest.algorithm().as_str();
    let subjects: Vec<&str> = statement
        .get("subject")
        .and_then(serde_json::Value::as_array)
        .map(|subjects| {
            subjects
                .iter()
                .filter_map(|subject| {
                    subject
                        .pointer(&format!("/digest/{algorithm}"))
                        .and_then(serde_json::Value::as_str)
                })
                .collect()
        })
        .unwrap_or_default();
    if !subjects.contains(&digest.hex()) {
        let listed = if subjects.is_empty() {
            "no subject".to_owned()
        } else {
            subjects
                .iter()
                .map(|hex| format!("{algorithm}:{hex}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        return Err(format!(
            "the statement is about {listed}, not the image digest {digest}"
        ));
    }
    Ok(statement)
}
