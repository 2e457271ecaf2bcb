//! cosign's simple-signing format: the payload, the `.sig` artifact, signing and verification.
//!
//! Payload (cosign's "critical" section, compact JSON):
//! `{"critical":{"identity":{"docker-reference":"<repo>"},"image":{"docker-manifest-digest":"<digest>"},"type":"cosign container image signature"},"optional":null}`.
//! Each signature is one layer with media type [`SIMPLE_SIGNING_MEDIA_TYPE`], the payload as its
//! content and the base64 DER signature in the [`SIGNATURE_ANNOTATION`] annotation.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use slipway_core::{Digest, ImageRef};
use slipway_registry::{Artifact, Layer, Registry};

use crate::{Error, Signer, Verifier};

/// Media type of a simple-signing layer.
pub const SIMPLE_SIGNING_MEDIA_TYPE: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
/// Annotation holding the base64 signature.
pub const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";

/// The simple-signing payload for `repository` (`registry/repo`) at `digest`.
pub fn simple_signing_payload(repository: &str, digest: &Digest) -> Vec<u8> {
    payload_with(repository, digest, &BTreeMap::new())
}

/// The payload with cosign's `-a key=value` annotations in its `optional` section.
fn payload_with(
    repository: &str,
    digest: &Digest,
    annotations: &BTreeMap<String, String>,
) -> Vec<u8> {
    let optional = if annotations.is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::json!(annotations)
    };
    let payload = serde_json::json!({
        "critical": {
            "identity": {"docker-reference": repository},
            "image": {"docker-manifest-digest": digest.to_string()},
            "type": "cosign container image signature",
        },
        "optional": optional,
    });
    payload.to_string().into_bytes()
}

/// Options for [`sign_image_with`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SignOptions {
    /// Annotations signed into the payload's `optional` section (cosign's `sign -a key=value`).
    pub annotations: BTreeMap<String, String>,
}

/// Options for [`verify_image_with`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VerifyOptions {
    /// Annotations every accepted signature must carry with these values (cosign's
    /// `verify -a key=value`).
    pub annotations: BTreeMap<String, String>,
}

/// Signs the pinned image and appends the signature to its `.sig` artifact. Returns the key id.
pub async fn sign_image(
    registry: &dyn Registry,
    signer: &dyn Signer,
    image: &ImageRef,
) -> Result<String, Error> {
    sign_image_with(registry, signer, image, &SignOptions::default()).await
}

/// [`sign_image`] with annotations. Reads the `.sig` artifact first and pushes all its layers
/// plus the new one, so signatures by other keys are kept (sigstore-rs's `push_signature` would
/// replace them). Two signers racing can still lose one append, as with cosign itself: the
/// registry has no compare-and-swap for tags.
pub async fn sign_image_with(
    registry: &dyn Registry,
    signer: &dyn Signer,
    image: &ImageRef,
    options: &SignOptions,
) -> Result<String, Error> {
    let digest = crate::attestation::pinned(image)?;
    let tag = digest.cosign_tag("sig");
    let registry_error = |source| Error::Registry {
        image: image.to_string(),
        source,
    };
    let mut artifact = crate::attestation::cosign_artifact(registry, image, "sig").await?;
    let payload = payload_with(&image.name(), digest, &options.annotations);
    let signature = signer.sign(&payload)?;
    let annotations =
        BTreeMap::from([(SIGNATURE_ANNOTATION.to_owned(), STANDARD.encode(signature))]);
    artifact.layers.push(Layer {
        media_type: SIMPLE_SIGNING_MEDIA_TYPE.to_owned(),
        data: payload,
        annotations,
    });
    registry
        .put_artifact(image, &tag, &artifact)
        .await
        .map_err(registry_error)?;
    Ok(signer.key_id())
}

/// One signature layer and why it passed or failed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SignatureCheck {
    /// Index of the layer in its source (the `.sig` artifact's layers).
    pub layer: usize,
    /// Where the signature was found ([`LEGACY_SIGNATURE_SOURCE`]; other formats, such as
    /// Sigstore bundles in OCI referrers, add their own checks to the same report).
    pub source: String,
    /// The trusted key that verified it, if any.
    pub key_id: Option<String>,
    /// Whether it verified and its claims match the image.
    pub ok: bool,
    /// Why.
    pub reason: String,
    /// When the signed `docker-reference` names another repository than the one verified
    /// (an image copied between registries): what it says. Informational, as in cosign.
    pub reference_mismatch: Option<String>,
}

/// Every signature found for an image, each checked against every trusted key.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize)]
pub struct VerificationReport {
    /// One entry per layer.
    pub signatures: Vec<SignatureCheck>,
}

impl VerificationReport {
    /// Key ids of the signatures that verified.
    pub fn verified_keys(&self) -> Vec<String> {
        self.signatures
            .iter()
            .filter(|check| check.ok)
            .filter_map(|check| check.key_id.clone())
            .collect()
    }
}

/// Verifies every layer under the image's `.sig` tag against the trusted keys and checks its
/// claims (payload digest equals the image digest; docker-reference names the repository).
pub async fn verify_image(
    registry: &dyn Registry,
    keys: &[&dyn Verifier],
    image: &ImageRef,
) -> Result<VerificationReport, Error> {
    verify_image_with(registry, keys, image, &VerifyOptions::default()).await
}

/// [`verify_image`] with annotation constraints.
pub async fn verify_image_with(
    registry: &dyn Registry,
    keys: &[&dyn Verifier],
    image: &ImageRef,
    options: &VerifyOptions,
) -> Result<VerificationReport, Error> {
    let digest = crate::attestation::pinned(image)?;
    let artifact: Artifact = crate::attestation::cosign_artifact(registry, image, "sig").await?;
    let signatures = artifact
        .layers
        .iter()
        .enumerate()
        .map(|(idx, layer)| check_layer(idx, layer, keys, image, digest, options))
        .collect();
    Ok(VerificationReport { signatures })
}

fn check_layer(
    idx: usize,
    layer: &Layer,
    keys: &[&dyn Verifier],
    image: &ImageRef,
    digest: &Digest,
    options: &VerifyOptions,
) -> SignatureCheck {
    let fail = |reason: String| SignatureCheck {
        layer: idx,
        source: LEGACY_SIGNATURE_SOURCE.to_owned(),
        key_id: None,
        ok: false,
        reason,
        reference_mismatch: None,
    };
    let Some(encoded) = layer.annotations.get(SIGNATURE_ANNOTATION) else {
        return fail(format!("no `{SIGNATURE_ANNOTATION}` annotation"));
    };
    let Ok(signature) = STANDARD.decode(encoded) else {
        return fail("signature annotation is not base64".to_owned());
    };
    let Some(key) = keys.iter().find(|key| key.verify(&layer.data, &signature)) else {
        return fail(format!(
            "signature does not verify with any of the {} trusted key(s)",
            keys.len()
        ));
    };
    let key_id = Some(key.key_id());
    let claims: serde_json::Value = match serde_json::from_slice(&layer.data) {
        Ok(value) => value,
        Err(err) => {
            return SignatureCheck {
                layer: idx,
                source: LEGACY_SIGNATURE_SOURCE.to_owned(),
                key_id,
                ok: false,
                reason: format!("payload is not JSON: {err}"),
                reference_mismatch: None,
            };
        }
    };
    let signed_digest = claims
        .pointer("/critical/image/docker-manifest-digest")
        .and_then(|v| v.as_str())
        .unwrap_or("");
    let signed_reference = claims
        .pointer("/critical/identity/docker-reference")
        .and_then(|v| v.as_str())
        .unwrap_or("");
    let missing: Vec<String> = options
        .annotations
        .iter()
        .filter(|(name, value)| {
            claims
                .pointer("/optional")
                .and_then(|optional| optional.get(name.as_str()))
                .and_then(|v| v.as_str())
                != Some(value.as_str())
        })
        .map(|(name, value)| format!("{name}={value}"))
        .collect();
    let reference = docker_reference_note(signed_reference, image);
    let (ok, reason) = if signed_digest != digest.to_string() {
        (
            false,
            format!("signed digest {signed_digest} is not the image digest {digest}"),
        )
    } else if !missing.is_empty() {
        (
            false,
            format!(
                "signature lacks the required annotation(s) {}",
                missing.join(", ")
            ),
        )
    } else {
        (
            true,
            match &reference {
                None => format!(
                    "signature by {} verified; digest and docker-reference match",
                    key.key_id()
                ),
                Some(note) => format!(
                    "signature by {} verified; the digest matches ({note})",
                    key.key_id()
                ),
            },
        )
    };
    SignatureCheck {
        layer: idx,
        source: LEGACY_SIGNATURE_SOURCE.to_owned(),
        key_id,
        ok,
        reason,
        reference_mismatch: reference,
    }
}

/// How the signed `docker-reference` claim compares with the image being verified: `None` when
/// both name the same repository after docker's normalisation (`index.docker.io/library/x`,
/// `docker.io/x` and `x` are one name), otherwise a note naming both.
///
/// The digest is what binds a signature to an image; cosign verifies `docker-manifest-digest`
/// and does not check `docker-reference` (its signature spec says the claim is informational),
/// so an image copied between registries keeps its signatures. Slipway does the same and
/// reports the mismatch beside the verdict, never as a failure: refusing it would refuse every
/// image mirrored from where it was signed, which cosign users copy on purpose.
pub fn docker_reference_note(signed_reference: &str, image: &ImageRef) -> Option<String> {
    let expected = image.name();
    let signed = ImageRef::parse(signed_reference)
        .map(|signed| signed.name())
        .unwrap_or_else(|_| signed_reference.to_owned());
    (signed != expected).then(|| {
        format!(
            "docker-reference `{signed_reference}` names another repository than `{expected}`; the digest binds, as in cosign"
        )
    })
}

/// [`SignatureCheck::source`] of a signature read from the legacy `sha256-<hex>.sig` tag.
pub const LEGACY_SIGNATURE_SOURCE: &str = "legacy .sig tag";

#[cfg(test)]
mod tests {
    use slipway_registry::MemoryRegistry;

    use super::*;
    use crate::EcdsaP256Key;

    #[tokio::test]
    async fn signing_appends_and_verification_checks_each_signature() {
        let registry = MemoryRegistry::new();
        let tagged = ImageRef::parse("ghcr.io/acme/iris:1.0").expect("ref");
        let digest = registry.push_image(&tagged, "v1");
        let image = tagged.with_digest(digest);
        let (alice, bob) = (EcdsaP256Key::generate(), EcdsaP256Key::generate());
        sign_image(&registry, &alice, &image)
            .await
            .expect("alice signs");
        sign_image(&registry, &bob, &image)
            .await
            .expect("bob signs");

        let alice_pub = alice.public();
        let report = verify_image(&registry, &[&alice_pub], &image)
            .await
            .expect("verify");
        assert_eq!(
            report.signatures.len(),
            2,
            "bob's signature must not replace alice's"
        );
        assert_eq!(report.verified_keys(), [alice.key_id()]);
        assert!(
            report.signatures[1]
                .reason
                .contains("does not verify with any of the 1 trusted key")
        );

        let other = image.with_digest(registry.push_image(
            &ImageRef::parse("ghcr.io/acme/iris:2.0").expect("ref"),
            "v2",
        ));
        let unsigned = verify_image(&registry, &[&alice_pub], &other)
            .await
            .expect("verify");
        assert!(unsigned.signatures.is_empty());
    }

    #[tokio::test]
    async fn a_signature_copied_to_another_digest_fails_its_claims() {
        let registry = MemoryRegistry::new();
        let v1 = ImageRef::parse("ghcr.io/acme/iris:1.0").expect("ref");
        let v1 = v1.with_digest(registry.push_image(&v1, "v1"));
        let v2 = ImageRef::parse("ghcr.io/acme/iris:2.0").expect("ref");
        let v2 = v2.with_digest(registry.push_image(&v2, "v2"));
        let key = EcdsaP256Key::generate();
        sign_image(&registry, &key, &v1).await.expect("sign");
        let copied = registry
            .get_artifact(&v1, &v1.digest().expect("d").cosign_tag("sig"))
            .await
            .expect("get")
            .expect("sig");
        registry
            .put_artifact(&v2, &v2.digest().expect("d").cosign_tag("sig"), &copied)
            .await
            .expect("put");
        let public = key.public();
        let report = verify_image(&registry, &[&public], &v2)
            .await
            .expect("verify");
        assert!(!report.signatures[0].ok);
        assert!(
            report.signatures[0]
                .reason
                .contains("is not the image digest"),
            "{:?}",
            report.signatures[0]
        );
    }

    #[tokio::test]
    async fn docker_reference_is_normalised_and_a_copied_image_still_verifies() {
        let registry = MemoryRegistry::new();
        let key = EcdsaP256Key::generate();
        let public = key.public();
        // A Docker Hub-style payload claims `index.docker.io/library/x`; the image is
        // `docker.io/library/x@digest`.
        let hub = ImageRef::parse("docker.io/library/x:1").expect("ref");
        let hub = hub.with_digest(registry.push_image(&hub, "x"));
        let digest = hub.digest().expect("pinned").clone();
        let payload = simple_signing_payload("index.docker.io/library/x", &digest);
        let signature = key.sign(&payload).expect("sign");
        let artifact = Artifact {
            layers: vec![Layer {
                media_type: SIMPLE_SIGNING_MEDIA_TYPE.to_owned(),
                data: payload,
                annotations: BTreeMap::from([(
                    SIGNATURE_ANNOTATION.to_owned(),
                    STANDARD.encode(signature),
                )]),
            }],
        };
        registry
            .put_artifact(&hub, &digest.cosign_tag("sig"), &artifact)
            .await
            .expect("put");
        let report = verify_image(&registry, &[&public], &hub)
            .await
            .expect("verify");
        assert!(report.signatures[0].ok, "{:?}", report.signatures[0]);
        assert_eq!(report.signatures[0].reference_mismatch, None);
        assert!(
            report.signatures[0]
                .reason
                .contains("docker-reference match")
        );

        // The same signature on a copy in another registry: the digest binds, the other
        // repository is reported.
        let mirror = ImageRef::parse(&format!("mirror.example/acme/x@{digest}"));
        let mirror = mirror.expect("ref");
        registry
            .put_artifact(&mirror, &digest.cosign_tag("sig"), &artifact)
            .await
            .expect("put");
        let report = verify_image(&registry, &[&public], &mirror)
            .await
            .expect("verify");
        assert!(report.signatures[0].ok, "{:?}", report.signatures[0]);
        assert_eq!(
            report.signatures[0].reference_mismatch.as_deref(),
            Some(
                "docker-reference `index.docker.io/library/x` names another repository than `mirror.example/acme/x`; the digest binds, as in cosign"
            )
        );
    }
}
