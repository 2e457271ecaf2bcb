//! Interop with an independent implementation: OpenSSL's ECDSA. A signature made with
//! `openssl dgst -sign` over the simple-signing payload verifies with Slipway, and Slipway's
//! signatures (simple signing and DSSE) verify with `openssl dgst -verify`.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use slipway_attest::dsse::{Envelope, pae};
use slipway_attest::provenance::{BuildInfo, attach_provenance};
use slipway_attest::{
    EcdsaP256Key, EcdsaP256PublicKey, SIGNATURE_ANNOTATION, SIMPLE_SIGNING_MEDIA_TYPE, Signer as _,
    Verifier as _, sign_image, simple_signing_payload, verify_image,
};
use slipway_registry::testing::{CI_ENV, service_registry};
use slipway_registry::{Layer, Registry as _};

use crate::support::{client, push_images};

/// Runs openssl in `dir`; `None` (skip) when openssl is missing outside CI.
fn openssl(dir: &Path, args: &[&str]) -> Option<std::process::Output> {
    match Command::new("openssl").args(args).current_dir(dir).output() {
        Ok(output) => Some(output),
        Err(err) => {
            assert!(
                std::env::var_os(CI_ENV).is_none(),
                "openssl is needed for the interop tests: {err}"
            );
            None
        }
    }
}

#[tokio::test]
async fn an_openssl_signature_verifies_with_slipway_next_to_ours() {
    let Some(addr) = service_registry("an_openssl_signature_verifies_with_slipway_next_to_ours")
    else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let Some(generated) = openssl(
        dir.path(),
        &[
            "ecparam",
            "-name",
            "prime256v1",
            "-genkey",
            "-noout",
            "-out",
            "key.pem",
        ],
    ) else {
        return;
    };
    assert!(generated.status.success());
    assert!(
        openssl(
            dir.path(),
            &["ec", "-in", "key.pem", "-pubout", "-out", "pub.pem"]
        )
        .expect("openssl")
        .status
        .success()
    );
    let image = &push_images(&addr, "openssl-in", 1)[0];
    let registry = client(&addr);

    // Slipway signs first, then the openssl signature is appended by hand, as another tool would.
    let ours = EcdsaP256Key::generate();
    sign_image(&registry, &ours, image).await.expect("sign");
    let payload = simple_signing_payload(&image.name(), image.digest().expect("pinned"));
    std::fs::write(dir.path().join("payload.json"), &payload).expect("payload");
    let signed = openssl(
        dir.path(),
        &[
            "dgst",
            "-sha256",
            "-sign",
            "key.pem",
            "-out",
            "sig.der",
            "payload.json",
        ],
    )
    .expect("openssl");
    assert!(
        signed.status.success(),
        "{}",
        String::from_utf8_lossy(&signed.stderr)
    );
    let signature = std::fs::read(dir.path().join("sig.der")).expect("sig");
    let tag = image.digest().expect("pinned").cosign_tag("sig");
    let mut artifact = registry
        .get_artifact(image, &tag)
        .await
        .expect("read")
        .expect("ours");
    artifact.layers.push(Layer {
        media_type: SIMPLE_SIGNING_MEDIA_TYPE.into(),
        data: payload,
        annotations: BTreeMap::from([(
            SIGNATURE_ANNOTATION.to_owned(),
            STANDARD.encode(signature),
        )]),
    });
    registry
        .put_artifact(image, &tag, &artifact)
        .await
        .expect("append openssl signature");

    let openssl_pub = EcdsaP256PublicKey::from_pem(
        "pub.pem",
        &std::fs::read_to_string(dir.path().join("pub.pem")).expect("pem"),
    )
    .expect("pub");
    let ours_pub = ours.public();
    let report = verify_image(&registry, &[&ours_pub, &openssl_pub], image)
        .await
        .expect("verify");
    assert_eq!(
        report.verified_keys(),
        [ours.key_id(), openssl_pub.key_id()]
    );
}

#[tokio::test]
async fn slipway_signatures_verify_with_openssl() {
    let Some(addr) = service_registry("slipway_signatures_verify_with_openssl") else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let image = &push_images(&addr, "openssl-out", 1)[0];
    let registry = client(&addr);
    let key = EcdsaP256Key::generate();
    std::fs::write(
        dir.path().join("cosign.pub"),
        key.public().to_pem().expect("pem"),
    )
    .expect("pub");
    let verify = |payload: &[u8], signature: &[u8]| {
        std::fs::write(dir.path().join("payload"), payload).expect("payload");
        std::fs::write(dir.path().join("sig"), signature).expect("sig");
        openssl(
            dir.path(),
            &[
                "dgst",
                "-sha256",
                "-verify",
                "cosign.pub",
                "-signature",
                "sig",
                "payload",
            ],
        )
    };

    sign_image(&registry, &key, image).await.expect("sign");
    let artifact = registry
        .get_artifact(image, &image.digest().expect("pinned").cosign_tag("sig"))
        .await
        .expect("read")
        .expect("signature");
    let layer = &artifact.layers[0];
    let signature = STANDARD
        .decode(&layer.annotations[SIGNATURE_ANNOTATION])
        .expect("base64");
    let Some(output) = verify(&layer.data, &signature) else {
        return;
    };
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        "Verified OK"
    );
    let mut tampered = layer.data.clone();
    tampered.push(b' ');
    assert!(
        !verify(&tampered, &signature)
            .expect("openssl")
            .status
            .success(),
        "openssl refuses a tampered payload"
    );

    // DSSE: the signature is over the PAE, and openssl agrees.
    let info = BuildInfo {
        build_type: "https://slipway.dev/build/container/v1".into(),
        builder_id: "https://ci.example/builder".into(),
        source_repository: "https://git.example/acme/iris".into(),
        source_ref: "refs/heads/main".into(),
        source_commit: "0".repeat(40),
        workflow: "release".into(),
        invocation_id: "run-1".into(),
        started_on: "2026-11-20T10:00:00Z".parse().expect("ts"),
        finished_on: "2026-11-20T10:01:00Z".parse().expect("ts"),
    };
    let attached = attach_provenance(&registry, &key, image, &info)
        .await
        .expect("attest");
    let stored = registry
        .get_artifact(image, &attached.tag)
        .await
        .expect("read")
        .expect("attestation");
    let envelope: Envelope = serde_json::from_slice(&stored.layers[0].data).expect("envelope");
    let signature = STANDARD
        .decode(&envelope.signatures[0].sig)
        .expect("base64");
    let signed_bytes = pae(
        &envelope.payload_type,
        &envelope.payload_bytes().expect("payload"),
    );
    assert!(
        verify(&signed_bytes, &signature)
            .expect("openssl")
            .status
            .success(),
        "openssl verifies the DSSE signature over the PAE"
    );
    assert!(key.public().verify(&signed_bytes, &signature));
}
