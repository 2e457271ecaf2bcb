//! Interop proven by someone else's code, on the real registry: sigstore-rs's cosign client
//! (`trusted_signature_layers` + `verify_constraints` with a `PublicKeyVerifier`) verifies what
//! Slipway signed, and Slipway verifies what sigstore-rs signed (`SignatureLayer::new_unsigned`,
//! its own ECDSA signer, `push_signature`). When a `cosign` binary is on `PATH`, it verifies
//! Slipway's signatures too; otherwise that part is skipped with a note.

use std::process::Command;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use sigstore::cosign::verification_constraint::{PublicKeyVerifier, VerificationConstraintVec};
use sigstore::cosign::{ClientBuilder, CosignCapabilities as _, verify_constraints};
use sigstore::crypto::{CosignVerificationKey, Signature, SigningScheme};
use sigstore::registry::{Auth, ClientConfig, ClientProtocol, OciReference};
use slipway_attest::dsse::Envelope;
use slipway_attest::provenance::{BuildInfo, attach_provenance};
use slipway_attest::{EcdsaP256Key, EcdsaP256PublicKey, Verifier, sign_image, verify_image};
use slipway_core::ImageRef;
use slipway_registry::Registry as _;
use slipway_registry::testing::service_registry;

use crate::support::{client, push_images};

fn sigstore_client(addr: &str) -> sigstore::cosign::Client {
    ClientBuilder::default()
        .with_oci_client_config(ClientConfig {
            protocol: ClientProtocol::HttpsExcept(vec![addr.to_owned()]),
            ..ClientConfig::default()
        })
        .build()
        .expect("sigstore client")
}

fn oci_reference(image: &ImageRef) -> OciReference {
    image
        .to_string()
        .parse()
        .expect("sigstore parses the reference")
}

/// `cosign verify …` when cosign is installed; `None` (skipped) otherwise.
#[allow(
    clippy::print_stderr,
    reason = "a skipped half is said where the test runs"
)]
fn cosign(args: &[&str]) -> Option<std::process::Output> {
    match Command::new("cosign").args(args).output() {
        Ok(output) => Some(output),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            eprintln!("skipping the cosign half: no `cosign` on PATH");
            None
        }
        Err(err) => panic!("cosign: {err}"),
    }
}

#[tokio::test]
async fn sigstore_rs_verifies_a_slipway_signature() {
    let Some(addr) = service_registry("sigstore_rs_verifies_a_slipway_signature") else {
        return;
    };
    let images = push_images(&addr, "interop-sig", 1);
    let registry = client(&addr);
    let key = EcdsaP256Key::generate();
    let image = &images[0];
    sign_image(&registry, &key, image).await.expect("sign");
    let pem = key.public().to_pem().expect("pem");

    let mut sigstore = sigstore_client(&addr);
    let layers = sigstore
        .trusted_signature_layers(&Auth::Anonymous, &oci_reference(image))
        .await
        .expect("sigstore-rs reads the .sig tag");
    assert_eq!(layers.len(), 1);
    assert_eq!(
        layers[0]
            .simple_signing
            .critical
            .image
            .docker_manifest_digest,
        image.digest().expect("pinned").to_string()
    );
    let constraints: VerificationConstraintVec = vec![Box::new(
        PublicKeyVerifier::new(pem.as_bytes(), &SigningScheme::ECDSA_P256_SHA256_ASN1)
            .expect("sigstore-rs loads the key"),
    )];
    verify_constraints(&layers, constraints.iter()).expect("sigstore-rs verifies it");

    let other = EcdsaP256Key::generate().public().to_pem().expect("pem");
    let wrong: VerificationConstraintVec = vec![Box::new(
        PublicKeyVerifier::new(other.as_bytes(), &SigningScheme::ECDSA_P256_SHA256_ASN1)
            .expect("key"),
    )];
    assert!(
        verify_constraints(&layers, wrong.iter()).is_err(),
        "another key must not verify it"
    );

    let dir = tempfile::tempdir().expect("tempdir");
    let pub_path = dir.path().join("cosign.pub");
    std::fs::write(&pub_path, &pem).expect("write key");
    if let Some(output) = cosign(&[
        "verify",
        "--key",
        pub_path.to_str().expect("utf-8"),
        "--insecure-ignore-tlog",
        "--allow-insecure-registry",
        &image.to_string(),
    ]) {
        assert!(
            output.status.success(),
            "cosign verify: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

#[tokio::test]
async fn sigstore_rs_verifies_a_slipway_slsa_attestation() {
    let Some(addr) = service_registry("sigstore_rs_verifies_a_slipway_slsa_attestation") else {
        return;
    };
    let images = push_images(&addr, "interop-att", 1);
    let registry = client(&addr);
    let key = EcdsaP256Key::generate();
    let image = &images[0];
    let digest = image.digest().expect("pinned").clone();
    let now = jiff::Timestamp::now();
    attach_provenance(
        &registry,
        &key,
        image,
        &BuildInfo {
            build_type: "https://slipway.dev/build/v1".to_owned(),
            builder_id: "https://github.com/acme/iris/.github/workflows/build.yml@refs/heads/main"
                .to_owned(),
            source_repository: "git+https://github.com/acme/iris".to_owned(),
            source_ref: "refs/heads/main".to_owned(),
            source_commit: "0123456789abcdef0123456789abcdef01234567".to_owned(),
            workflow: ".github/workflows/build.yml".to_owned(),
            invocation_id: "https://github.com/acme/iris/actions/runs/1".to_owned(),
            started_on: now,
            finished_on: now,
        },
    )
    .await
    .expect("attest");

    // sigstore 0.15's cosign client reads `.sig` tags and keyless bundles but has no reader for
    // key-signed `.att` attestations; its key type checks the DSSE signature over the PAE of the
    // envelope Slipway pushed under the `.att` tag.
    let artifact = registry
        .get_artifact(image, &digest.cosign_tag("att"))
        .await
        .expect("read .att")
        .expect("an attestation");
    let envelope: Envelope = serde_json::from_slice(&artifact.layers[0].data).expect("dsse");
    let payload = STANDARD.decode(&envelope.payload).expect("base64");
    let mut pae = format!(
        "DSSEv1 {} {} {} ",
        envelope.payload_type.len(),
        envelope.payload_type,
        payload.len()
    )
    .into_bytes();
    pae.extend_from_slice(&payload);
    let pem = key.public().to_pem().expect("pem");
    let sigstore_key =
        CosignVerificationKey::from_pem(pem.as_bytes(), &SigningScheme::ECDSA_P256_SHA256_ASN1)
            .expect("key");
    sigstore_key
        .verify_signature(
            Signature::Base64Encoded(envelope.signatures[0].sig.as_bytes()),
            &pae,
        )
        .expect("sigstore-rs verifies the attestation signature");
    let statement: serde_json::Value = serde_json::from_slice(&payload).expect("statement");
    assert_eq!(
        statement["subject"][0]["digest"]["sha256"].as_str(),
        Some(digest.hex())
    );
    assert_eq!(statement["predicateType"], "https://slsa.dev/provenance/v1");

    let dir = tempfile::tempdir().expect("tempdir");
    let pub_path = dir.path().join("cosign.pub");
    std::fs::write(&pub_path, &pem).expect("write key");
    if let Some(output) = cosign(&[
        "verify-attestation",
        "--key",
        pub_path.to_str().expect("utf-8"),
        "--type",
        "slsaprovenance1",
        "--insecure-ignore-tlog",
        "--allow-insecure-registry",
        &image.to_string(),
    ]) {
        assert!(
            output.status.success(),
            "cosign verify-attestation: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

#[tokio::test]
async fn slipway_verifies_a_signature_sigstore_rs_made() {
    let Some(addr) = service_registry("slipway_verifies_a_signature_sigstore_rs_made") else {
        return;
    };
    let images = push_images(&addr, "interop-rs", 1);
    let image = &images[0];
    // sigstore-rs signs the tag reference, as a user of it would.
    let tagged = image.with_tag("v0").expect("tag");
    let tagged = ImageRef::parse(&format!("{}:v0", tagged.name())).expect("ref");

    let mut sigstore = sigstore_client(&addr);
    let reference = oci_reference(&tagged);
    let (signature_ref, manifest_digest) = sigstore
        .triangulate(&reference, &Auth::Anonymous)
        .await
        .expect("sigstore-rs resolves the image");
    assert_eq!(manifest_digest, image.digest().expect("pinned").to_string());
    let signer = SigningScheme::ECDSA_P256_SHA256_ASN1
        .create_signer()
        .expect("sigstore-rs key");
    let mut layer = sigstore::cosign::SignatureLayer::new_unsigned(&reference, &manifest_digest)
        .expect("payload");
    layer.signature = Some(STANDARD.encode(signer.sign(&layer.raw_data).expect("sign")));
    sigstore
        .push_signature(None, &Auth::Anonymous, &signature_ref, vec![layer])
        .await
        .expect("sigstore-rs pushes its signature");

    let pem = signer
        .to_sigstore_keypair()
        .expect("keypair")
        .public_key_to_pem()
        .expect("pem");
    let public = EcdsaP256PublicKey::from_pem("sigstore-rs", &pem).expect("Slipway loads it");
    let keys: [&dyn Verifier; 1] = [&public];
    let report = verify_image(&client(&addr), &keys, image)
        .await
        .expect("verify");
    assert_eq!(
        report.verified_keys(),
        [public.key_id()],
        "{:?}",
        report.signatures
    );
    // sigstore-rs wrote `host/repo:v0` as docker-reference: the same repository.
    assert!(
        report.signatures[0]
            .reason
            .ends_with("digest and docker-reference match"),
        "{}",
        report.signatures[0].reason
    );
}
