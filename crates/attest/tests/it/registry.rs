//! Signing, appending, verification, provenance and model links against the real registry from
//! `cargo xtask services`, with images pushed by skopeo.

use std::collections::BTreeMap;

use slipway_attest::dsse::Envelope;
use slipway_attest::model_link::{ModelLink, attach_model_link, verify_model_link};
use slipway_attest::provenance::{
    BuildInfo, BuilderMatch, ProvenancePolicy, attach_provenance, build_statement,
    verify_provenance,
};
use slipway_attest::{
    EcdsaP256Key, EcdsaP256PublicKey, SignOptions, Signer as _, Verifier, VerifyOptions,
    sign_image, sign_image_with, verify_image, verify_image_with,
};
use slipway_core::Secret;
use slipway_registry::Registry as _;
use slipway_registry::testing::{service_registry, skopeo_digest};

use crate::support::{client, push_images, read};

#[tokio::test]
async fn signatures_append_and_each_is_checked_with_its_reason() {
    let Some(addr) = service_registry("signatures_append_and_each_is_checked_with_its_reason")
    else {
        return;
    };
    let images = push_images(&addr, "sign", 2);
    let registry = client(&addr);
    let (alice, bob, carol) = (
        EcdsaP256Key::generate(),
        EcdsaP256Key::generate(),
        EcdsaP256Key::generate(),
    );
    let (alice_pub, bob_pub, carol_pub) = (alice.public(), bob.public(), carol.public());
    let image = &images[0];

    assert_eq!(
        sign_image(&registry, &alice, image)
            .await
            .expect("alice signs"),
        alice.key_id()
    );
    let prod = BTreeMap::from([("env".to_owned(), "prod".to_owned())]);
    sign_image_with(
        &registry,
        &bob,
        image,
        &SignOptions {
            annotations: prod.clone(),
        },
    )
    .await
    .expect("bob appends");

    let report = verify_image(&registry, &[&alice_pub, &bob_pub], image)
        .await
        .expect("verify");
    assert_eq!(
        report.signatures.len(),
        2,
        "bob's signature was appended, not substituted"
    );
    assert_eq!(report.verified_keys(), [alice.key_id(), bob.key_id()]);
    assert_eq!(
        report.signatures[1].reason,
        format!(
            "signature by {} verified; digest and docker-reference match",
            bob.key_id()
        )
    );

    let wrong_key = verify_image(&registry, &[&carol_pub], image)
        .await
        .expect("verify");
    assert!(wrong_key.verified_keys().is_empty());
    assert!(
        wrong_key
            .signatures
            .iter()
            .all(|check| check.reason
                == "signature does not verify with any of the 1 trusted key(s)"),
        "{wrong_key:?}"
    );

    let constrained = verify_image_with(
        &registry,
        &[&alice_pub, &bob_pub],
        image,
        &VerifyOptions { annotations: prod },
    )
    .await
    .expect("verify");
    assert_eq!(constrained.verified_keys(), [bob.key_id()]);
    assert_eq!(
        constrained.signatures[0].reason,
        "signature lacks the required annotation(s) env=prod"
    );

    // Tamper with alice's payload in the registry: her signature no longer verifies, bob's still does.
    let tag = image.digest().expect("pinned").cosign_tag("sig");
    let mut artifact = registry
        .get_artifact(image, &tag)
        .await
        .expect("read")
        .expect("signatures");
    artifact.layers[0].data = String::from_utf8(artifact.layers[0].data.clone())
        .expect("utf8")
        .replace(
            "cosign container image signature",
            "cosign container image signaturE",
        )
        .into_bytes();
    registry
        .put_artifact(image, &tag, &artifact)
        .await
        .expect("tamper");
    let tampered = verify_image(&registry, &[&alice_pub, &bob_pub], image)
        .await
        .expect("verify");
    assert_eq!(
        tampered.signatures[0].reason,
        "signature does not verify with any of the 2 trusted key(s)"
    );
    assert!(tampered.signatures[1].ok);

    // A signature made for image 0, copied under image 1's tag, is refused for its claims.
    let other = &images[1];
    registry
        .put_artifact(
            other,
            &other.digest().expect("pinned").cosign_tag("sig"),
            &artifact,
        )
        .await
        .expect("copy");
    let copied = verify_image(&registry, &[&bob_pub], other)
        .await
        .expect("verify");
    assert_eq!(
        copied.signatures[1].key_id,
        Some(bob.key_id()),
        "the signature itself is bob's"
    );
    assert_eq!(
        copied.signatures[1].reason,
        format!(
            "signed digest {} is not the image digest {}",
            image.digest().expect("d"),
            other.digest().expect("d")
        )
    );
}

#[tokio::test]
async fn the_sigstore_test_key_signs_on_the_registry() {
    let Some(addr) = service_registry("the_sigstore_test_key_signs_on_the_registry") else {
        return;
    };
    let image = &push_images(&addr, "fixture-key", 1)[0];
    let registry = client(&addr);
    let key = EcdsaP256Key::from_cosign_pem(
        "ecdsa_encrypted_private.key",
        &read("cosign/ecdsa_encrypted_private.key"),
        &Secret::new("123"),
    )
    .expect("load");
    sign_image(&registry, &key, image).await.expect("sign");
    let public = EcdsaP256PublicKey::from_pem(
        "derived",
        &read("cosign/ecdsa_encrypted_private.pub.derived.pem"),
    )
    .expect("pub");
    assert_eq!(
        verify_image(&registry, &[&public], image)
            .await
            .expect("verify")
            .verified_keys(),
        [public.key_id()]
    );
}

fn build_info() -> BuildInfo {
    BuildInfo {
        build_type: "https://slipway.dev/build/container/v1".into(),
        builder_id: "https://github.com/acme/ci/.github/workflows/build.yml@refs/tags/v3".into(),
        source_repository: "https://github.com/acme/iris".into(),
        source_ref: "refs/heads/main".into(),
        source_commit: "4d329c75e7ec1725f7c9ce917a8799d408d06be3".into(),
        workflow: ".github/workflows/release.yml".into(),
        invocation_id: "https://github.com/acme/iris/actions/runs/42/attempts/1".into(),
        started_on: "2026-11-20T10:00:00Z".parse().expect("ts"),
        finished_on: "2026-11-20T10:07:30Z".parse().expect("ts"),
    }
}

fn policy() -> ProvenancePolicy {
    ProvenancePolicy {
        builder: BuilderMatch::Exact(
            "https://github.com/acme/ci/.github/workflows/build.yml@refs/tags/v3".into(),
        ),
        source_repository: Some("https://github.com/acme/iris".into()),
        source_ref: Some("refs/heads/main".into()),
    }
}

#[tokio::test]
async fn provenance_and_model_link_round_trip_and_say_why_they_fail() {
    let Some(addr) = service_registry("provenance_and_model_link_round_trip_and_say_why_they_fail")
    else {
        return;
    };
    let image = &push_images(&addr, "provenance", 1)[0];
    let registry = client(&addr);
    let key = EcdsaP256Key::generate();
    let public = key.public();
    let keys: [&dyn Verifier; 1] = [&public];

    let attached = attach_provenance(&registry, &key, image, &build_info())
        .await
        .expect("attach provenance");
    assert_eq!((attached.count, attached.key_id.clone()), (1, key.key_id()));
    let link = ModelLink {
        model_name: "iris".into(),
        model_version: "7".into(),
        run_id: "0a1b2c3d".into(),
    };
    let linked = attach_model_link(&registry, &key, image, &link)
        .await
        .expect("attach model link");
    assert_eq!(linked.count, 2, "appended next to the provenance");
    assert_eq!(
        skopeo_digest(&addr, &format!("{}:{}", image.repository(), linked.tag)).expect("skopeo"),
        linked.manifest_digest.to_string()
    );

    // Round trip: the stored envelope's payload is exactly the statement we built.
    let stored = registry
        .get_artifact(image, &linked.tag)
        .await
        .expect("read")
        .expect("attestations");
    assert_eq!(
        stored.layers[0]
            .annotations
            .get("predicateType")
            .map(String::as_str),
        Some("https://slsa.dev/provenance/v1")
    );
    let envelope: Envelope = serde_json::from_slice(&stored.layers[0].data).expect("envelope");
    let statement: serde_json::Value =
        serde_json::from_slice(&envelope.payload_bytes().expect("payload")).expect("json");
    assert_eq!(
        statement,
        build_statement(image, &build_info()).expect("statement")
    );

    let report = verify_provenance(&registry, &keys, image, &policy())
        .await
        .expect("verify");
    assert_eq!(
        report.attestations.len(),
        1,
        "the model link is not provenance"
    );
    let summary = report.verified().expect("trusted provenance");
    assert_eq!(
        (
            summary.builder_id.as_str(),
            summary.source_repository.as_str(),
            summary.source_ref.as_deref(),
            summary.source_commit.as_deref()
        ),
        (
            build_info().builder_id.as_str(),
            "https://github.com/acme/iris",
            Some("refs/heads/main"),
            Some("4d329c75e7ec1725f7c9ce917a8799d408d06be3")
        )
    );
    assert_eq!(report.verified_keys(), [key.key_id()]);

    let prefix = ProvenancePolicy {
        builder: BuilderMatch::Prefix(
            "https://github.com/acme/ci/.github/workflows/build.yml@".into(),
        ),
        ..policy()
    };
    assert!(
        verify_provenance(&registry, &keys, image, &prefix)
            .await
            .expect("verify")
            .verified()
            .is_some()
    );
    let reasons = |report: slipway_attest::provenance::ProvenanceReport| {
        report.attestations[0].reasons.clone()
    };
    let wrong_builder = ProvenancePolicy {
        builder: BuilderMatch::Prefix("https://github.com/evil/".into()),
        ..policy()
    };
    assert_eq!(
        reasons(
            verify_provenance(&registry, &keys, image, &wrong_builder)
                .await
                .expect("verify")
        ),
        [
            "builder `https://github.com/acme/ci/.github/workflows/build.yml@refs/tags/v3` does not start with the expected `https://github.com/evil/`"
        ]
    );
    let wrong_source = ProvenancePolicy {
        source_repository: Some("https://github.com/acme/fork".into()),
        source_ref: Some("refs/heads/dev".into()),
        ..policy()
    };
    assert_eq!(
        reasons(
            verify_provenance(&registry, &keys, image, &wrong_source)
                .await
                .expect("verify")
        ),
        [
            "source repository `https://github.com/acme/iris` is not the expected `https://github.com/acme/fork`",
            "source ref `refs/heads/main` is not the expected `refs/heads/dev`"
        ]
    );
    let stranger = EcdsaP256Key::generate().public();
    assert_eq!(
        reasons(
            verify_provenance(&registry, &[&stranger], image, &policy())
                .await
                .expect("verify")
        ),
        ["none of the envelope's 1 signature(s) verifies with any of the 1 trusted key(s)"]
    );

    let links = verify_model_link(&registry, &keys, image, Some(&link))
        .await
        .expect("verify link");
    assert_eq!(links.verified(), [&link]);
    assert_eq!(
        links.links[0].reason,
        format!(
            "signed by {}: this digest serves model iris v7 (run 0a1b2c3d)",
            key.key_id()
        )
    );
    let other_model = ModelLink {
        model_version: "8".into(),
        ..link.clone()
    };
    let mismatch = verify_model_link(&registry, &keys, image, Some(&other_model))
        .await
        .expect("verify link");
    assert!(mismatch.verified().is_empty());
    assert_eq!(
        mismatch.links[0].reason,
        "links model iris v7 (run 0a1b2c3d), not the expected iris v8 (run 0a1b2c3d)"
    );
}

/// Provenance attached as cosign v3 attaches it (a key-signed Sigstore bundle among the image's
/// referrers, `attest --bundle`) counts where provenance is read (the pipeline's provenance
/// gate, rollback and watch go through `verify_provenance`), next to an image-signature bundle
/// that is not provenance; another key is refused with its reason.
#[tokio::test]
async fn provenance_in_a_sigstore_bundle_counts_like_an_att_layer() {
    use slipway_attest::bundle::{attach_statement_bundle, sign_image_bundle};
    let Some(addr) = service_registry("provenance_in_a_sigstore_bundle_counts_like_an_att_layer")
    else {
        return;
    };
    let images = push_images(&addr, "bundle-provenance", 1);
    let registry = client(&addr);
    let image = &images[0];
    let (build, deploy) = (EcdsaP256Key::generate(), EcdsaP256Key::generate());
    sign_image_bundle(&registry, &deploy, image)
        .await
        .expect("signature bundle");
    let statement = build_statement(image, &build_info()).expect("statement");
    let referrer = attach_statement_bundle(
        &registry,
        &build,
        image,
        &serde_json::to_vec(&statement).expect("json"),
        "https://slsa.dev/provenance/v1",
    )
    .await
    .expect("provenance bundle");
    assert!(
        registry
            .get_artifact(image, &image.digest().expect("pinned").cosign_tag("att"))
            .await
            .expect("read")
            .is_none(),
        "nothing under the legacy .att tag"
    );

    let build_pub = build.public();
    let report = verify_provenance(&registry, &[&build_pub], image, &policy())
        .await
        .expect("verify");
    assert_eq!(report.attestations.len(), 1, "{report:?}");
    let check = &report.attestations[0];
    assert!(check.ok, "{:?}", check.reasons);
    assert_eq!(check.source, format!("Sigstore bundle {referrer}"));
    assert_eq!(report.verified_keys(), [build.key_id()]);

    let deploy_pub = deploy.public();
    let refused = verify_provenance(&registry, &[&deploy_pub], image, &policy())
        .await
        .expect("verify");
    assert!(refused.verified().is_none());
    assert_eq!(
        refused.attestations[0].reasons,
        ["the bundle's signature does not verify with any of the 1 trusted key(s)"]
    );
}
