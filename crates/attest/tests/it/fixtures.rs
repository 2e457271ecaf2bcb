//! Keys, signatures and envelopes made by other implementations (cosign, sigstore-rs, Google
//! Cloud Build, slsa-github-generator), checked without a registry.

use std::collections::BTreeMap;

use slipway_attest::attestation::{PREDICATE_TYPE_ANNOTATION, check_layer};
use slipway_attest::dsse::{DSSE_MEDIA_TYPE, Envelope};
use slipway_attest::provenance::{BuilderMatch, ProvenancePolicy};
use slipway_attest::{
    EcdsaP256Key, EcdsaP256PublicKey, SIGNATURE_ANNOTATION, SIMPLE_SIGNING_MEDIA_TYPE, Signer as _,
    Verifier, verify_image,
};
use slipway_core::{Digest, ImageRef, Secret};
use slipway_registry::{Artifact, Layer, MemoryRegistry, Registry as _};

use crate::support::read;

#[test]
fn cosign_and_sigstore_keys_load_with_their_passwords() {
    let cases = [
        // (key file, password, the public key it must give)
        (
            "cosign/ecdsa_encrypted_private.key",
            "123",
            "cosign/ecdsa_encrypted_private.pub.derived.pem",
        ),
        (
            "cosign/cosign_generated_encrypted_empty_private.key",
            "",
            "cosign/cosign_generated_encrypted_empty_private.pub.derived.pem",
        ),
    ];
    for (key_file, password, public_file) in cases {
        let pem = read(key_file);
        let key = EcdsaP256Key::from_cosign_pem(key_file, &pem, &Secret::new(password))
            .unwrap_or_else(|err| panic!("{key_file}: {err}"));
        let expected =
            EcdsaP256PublicKey::from_pem(public_file, &read(public_file)).expect("public key");
        assert_eq!(key.key_id(), expected.key_id(), "{key_file}");
        assert!(
            expected.verify(b"payload", &key.sign(b"payload").expect("sign")),
            "{key_file} signs for its public key"
        );
        let err = EcdsaP256Key::from_cosign_pem(key_file, &pem, &Secret::new("not-the-password"))
            .expect_err("wrong password");
        assert!(
            err.to_string()
                .contains("wrong password, or the key file is corrupt"),
            "{err}"
        );
    }
}

/// The real cosign signature from sigstore-rs, verified through the whole `.sig` path.
#[tokio::test]
async fn a_cosign_signature_verifies_through_verify_image() {
    let payload = read("cosign/simplesigning_busybox.payload.json");
    let claims: serde_json::Value = serde_json::from_str(&payload).expect("json");
    let digest = Digest::parse(
        claims["critical"]["image"]["docker-manifest-digest"]
            .as_str()
            .expect("digest"),
    )
    .expect("digest");
    let reference = claims["critical"]["identity"]["docker-reference"]
        .as_str()
        .expect("reference");
    let image = ImageRef::parse(reference)
        .expect("ref")
        .with_digest(digest.clone());
    let layer = |data: &str| Layer {
        media_type: SIMPLE_SIGNING_MEDIA_TYPE.into(),
        data: data.as_bytes().to_vec(),
        annotations: BTreeMap::from([(
            SIGNATURE_ANNOTATION.to_owned(),
            read("cosign/simplesigning_busybox.sig").trim().to_owned(),
        )]),
    };
    let registry = MemoryRegistry::new();
    let artifact = Artifact {
        layers: vec![layer(&payload), layer(&format!("{payload}\n"))],
    };
    registry
        .put_artifact(&image, &digest.cosign_tag("sig"), &artifact)
        .await
        .expect("put");

    let cosign_pub =
        EcdsaP256PublicKey::from_pem("busybox.pub", &read("cosign/simplesigning_busybox.pub"))
            .expect("pub");
    let report = verify_image(&registry, &[&cosign_pub], &image)
        .await
        .expect("verify");
    assert!(report.signatures[0].ok, "{:?}", report.signatures[0]);
    assert_eq!(report.verified_keys(), [cosign_pub.key_id()]);
    assert!(
        !report.signatures[1].ok,
        "a trailing newline is a different payload"
    );

    let wrong =
        EcdsaP256PublicKey::from_pem("wrong_key.pub", &read("cosign/wrong_key.pub")).expect("pub");
    let report = verify_image(&registry, &[&wrong], &image)
        .await
        .expect("verify");
    assert_eq!(
        report.signatures[0].reason,
        "signature does not verify with any of the 1 trusted key(s)"
    );
}

fn gcb_envelope() -> (Envelope, Digest) {
    let describe: serde_json::Value =
        serde_json::from_str(&read("slsa/gcb-container-v0.1.gcloud-describe.json")).expect("json");
    let envelope: Envelope =
        serde_json::from_value(describe["provenance_summary"]["provenance"][0]["envelope"].clone())
            .expect("envelope");
    let digest = Digest::parse(
        describe["image_summary"]["digest"]
            .as_str()
            .expect("digest"),
    )
    .expect("digest");
    (envelope, digest)
}

/// Google Cloud Build signs its DSSE envelope over the PAE with one key and over the raw payload
/// with another: only the first is a DSSE signature, and ours must agree.
#[test]
fn dsse_pae_agrees_with_google_cloud_build() {
    let (envelope, digest) = gcb_envelope();
    let pae_key = EcdsaP256PublicKey::from_pem(
        "global-pae",
        &read("slsa/gcb-keys/global-pae-provenanceSigner_1.key.pem"),
    )
    .expect("pub");
    let raw_key = EcdsaP256PublicKey::from_pem("us-west2", &read("slsa/gcb-keys/us-west2.key.pem"))
        .expect("pub");
    assert_eq!(envelope.verify(&[&pae_key]), Ok(pae_key.key_id()));
    assert!(
        envelope.verify(&[&raw_key]).is_err(),
        "the raw-payload signature is not a DSSE signature"
    );
    let mut tampered = envelope.clone();
    tampered.payload_type = "application/json".into();
    assert!(tampered.verify(&[&pae_key]).is_err());

    // Signature and subject check out; the predicate is SLSA v0.1, which Slipway refuses by name.
    let layer = Layer {
        media_type: DSSE_MEDIA_TYPE.into(),
        data: serde_json::to_vec(&envelope).expect("json"),
        annotations: BTreeMap::from([(
            PREDICATE_TYPE_ANNOTATION.to_owned(),
            "https://slsa.dev/provenance/v0.1".to_owned(),
        )]),
    };
    let statement = check_layer(0, &layer, &[&pae_key], &digest);
    assert_eq!(statement.failure, None);
    assert_eq!(statement.key_id, Some(pae_key.key_id()));
    let policy = ProvenancePolicy {
        builder: BuilderMatch::Prefix("https://cloudbuild.googleapis.com/".into()),
        source_repository: None,
        source_ref: None,
    };
    let report = slipway_attest::provenance::evaluate(&[statement], &policy);
    assert_eq!(
        report.attestations[0].reasons,
        [
            "predicate type `https://slsa.dev/provenance/v0.1` is not `https://slsa.dev/provenance/v1` (Slipway checks SLSA provenance v1)"
        ]
    );
    assert_eq!(report.verified(), None);

    let other_digest = Digest::parse(&format!("sha256:{}", "0".repeat(64))).expect("digest");
    let elsewhere = check_layer(0, &layer, &[&pae_key], &other_digest);
    assert!(
        elsewhere.failure.as_deref().is_some_and(
            |failure| failure.ends_with(&format!("not the image digest {other_digest}"))
        ),
        "{elsewhere:?}"
    );
}

/// The envelope `cosign attest` pushed for slsa-github-generator: we decode its payload to the
/// exact signed statement; its keyless signature cannot verify with a key.
#[test]
fn cosign_attest_envelope_decodes_to_the_signed_statement() {
    let envelope: Envelope =
        serde_json::from_str(&read("slsa/gha-generator-container-v2.1.0.dsse.json"))
            .expect("envelope");
    assert_eq!(
        envelope.payload_bytes().expect("payload"),
        read("slsa/gha-generator-container-v2.1.0.statement.json").into_bytes()
    );
    let some_key = EcdsaP256Key::generate().public();
    assert_eq!(
        envelope.verify(&[&some_key as &dyn Verifier]),
        Err(
            "none of the envelope's 1 signature(s) verifies with any of the 1 trusted key(s)"
                .to_owned()
        )
    );
}

/// slsa-github-generator v2.1.0's SLSA v1 provenance (the container-based builder), as the
/// Sigstore bundle slsa-verifier tests with: its statement is read and the provenance policy
/// judges builder, source repository, source ref and subject. Its signature is keyless (Fulcio
/// and Rekor), which the key path does not verify, so the check is built as if its envelope had
/// verified.
#[test]
fn slsa_github_generator_v1_provenance_is_read_and_checked() {
    use slipway_attest::attestation::StatementCheck;
    use slipway_attest::provenance::evaluate;

    let bundle: serde_json::Value =
        serde_json::from_str(&read("slsa/binary-linux-amd64-push-v14.intoto.build.slsa"))
            .expect("bundle");
    let envelope: Envelope =
        serde_json::from_value(bundle["dsseEnvelope"].clone()).expect("envelope");
    let statement: serde_json::Value =
        serde_json::from_slice(&envelope.payload_bytes().expect("payload")).expect("statement");
    // The artifact is the empty file: its digest is sha256 of nothing.
    let subject =
        Digest::parse("sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
            .expect("digest");
    let builder = "https://github.com/slsa-framework/slsa-github-generator/.github/workflows/builder_container-based_slsa3.yml@refs/tags/v2.1.0";
    let judge = |statement: &serde_json::Value, policy: &ProvenancePolicy, digest: &Digest| {
        // What `attestation::check_layer` yields once an envelope verified and its subject is
        // the image: the same subject rule is applied here through the statement's digests.
        let about = statement["subject"][0]["digest"]["sha256"].as_str() == Some(digest.hex());
        let check = StatementCheck {
            layer: 0,
            source: "test".to_owned(),
            key_id: Some("keyless".to_owned()),
            annotated_type: None,
            statement: about.then(|| statement.clone()),
            failure: (!about).then(|| format!("the statement is not about {digest}")),
        };
        evaluate(&[check], policy).attestations.remove(0)
    };
    let policy = ProvenancePolicy {
        builder: BuilderMatch::Exact(builder.to_owned()),
        source_repository: Some("git+https://github.com/slsa-framework/example-package".to_owned()),
        source_ref: Some("refs/tags/v14".to_owned()),
    };
    let passed = judge(&statement, &policy, &subject);
    assert!(passed.ok, "{:?}", passed.reasons);
    let summary = passed.summary.expect("summary");
    assert_eq!(summary.builder_id, builder);
    assert_eq!(
        summary.source_repository,
        "git+https://github.com/slsa-framework/example-package"
    );
    assert_eq!(summary.source_ref.as_deref(), Some("refs/tags/v14"));

    let wrong_ref = ProvenancePolicy {
        source_ref: Some("refs/heads/main".to_owned()),
        ..policy.clone()
    };
    assert_eq!(
        judge(&statement, &wrong_ref, &subject).reasons,
        ["source ref `refs/tags/v14` is not the expected `refs/heads/main`"]
    );
    let other = Digest::parse(&format!("sha256:{}", "ab".repeat(32))).expect("digest");
    assert!(!judge(&statement, &policy, &other).ok);
}
