//! Sigstore bundles: keyless verification of public cosign v3 / conformance bundles offline
//! against the production trusted root (through the `sigstore` crate), tampering, and both
//! signature formats on the real registry (referrers tag schema: docker-registry 2.8 has no
//! referrers API).

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use slipway_attest::bundle::{
    BUNDLE_MEDIA_TYPE, KeylessPolicy, Matcher, SignatureFormat, Trust, TrustedRoot, find_bundles,
    sign_image_bundle, verify_image_any_format, verify_keyless_bundle,
};
use slipway_attest::{EcdsaP256Key, Signer as _, Verifier, sign_image};
use slipway_core::{Digest, ImageRef};
use slipway_registry::manifest::{OCI_INDEX, referrers_tag};
use slipway_registry::testing::{service_registry, unique_repository};
use slipway_registry::{Layer, Registry as _, Subject};

use crate::support::{client, data, push_images};

/// The kubewarden-controller v1.34.0 image signed by cosign v3 in GitHub Actions (see
/// tests/data/README.md).
const KUBEWARDEN_DIGEST: &str =
    "sha256:c811d58de79c92f03214e63aa339484e488d694ae8a6283b5f3f17a9faf50172";
const KUBEWARDEN_IDENTITY: &str = "https://github.com/kubewarden/kubewarden-controller/.github/workflows/release.yml@refs/tags/v1.34.0";
const GITHUB_ISSUER: &str = "https://token.actions.githubusercontent.com";
const CONFORMANCE_IDENTITY: &str = "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/.github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main";

fn prod_root() -> TrustedRoot {
    TrustedRoot::from_file(&data("sigstore/trusted_root.prod.json")).expect("trusted root")
}

fn kubewarden() -> Vec<u8> {
    std::fs::read(data(
        "sigstore/kubewarden-controller-v1.34.0.bundle_v03.json",
    ))
    .expect("read")
}

fn exact(identity: &str, issuer: &str) -> KeylessPolicy {
    KeylessPolicy {
        identity: Matcher::Exact(identity.to_owned()),
        issuer: Matcher::Exact(issuer.to_owned()),
    }
}

fn digest(text: &str) -> Digest {
    Digest::parse(text).expect("digest")
}

/// The bundle with `edit` applied to its first tlog entry.
fn tampered(edit: impl FnOnce(&mut serde_json::Value)) -> Vec<u8> {
    let mut bundle: serde_json::Value = serde_json::from_slice(&kubewarden()).expect("json");
    edit(&mut bundle["verificationMaterial"]["tlogEntries"][0]);
    serde_json::to_vec(&bundle).expect("json")
}

#[tokio::test]
async fn cosign_v3_keyless_bundle_verifies_for_its_identity_and_issuer() {
    let root = prod_root();
    let signer = verify_keyless_bundle(
        &kubewarden(),
        &digest(KUBEWARDEN_DIGEST),
        &root,
        &exact(KUBEWARDEN_IDENTITY, GITHUB_ISSUER),
    )
    .await
    .expect("the public cosign v3 bundle verifies");
    assert_eq!(signer.signer, KUBEWARDEN_IDENTITY);
    assert_eq!(signer.issuer.as_deref(), Some(GITHUB_ISSUER));
    assert_eq!(signer.log_index, Some(1_261_105_807));
    assert_eq!(
        signer.predicate_type.as_deref(),
        Some("https://sigstore.dev/cosign/sign/v1")
    );

    // The regexp forms, as a GitHub Actions policy writes them.
    let regexp = KeylessPolicy {
        identity: Matcher::regexp(
            "--certificate-identity-regexp",
            r"^https://github\.com/kubewarden/.*/release\.yml@refs/tags/v",
        )
        .expect("regexp"),
        issuer: Matcher::regexp(
            "--certificate-oidc-issuer-regexp",
            r"githubusercontent\.com$",
        )
        .expect("regexp"),
    };
    verify_keyless_bundle(&kubewarden(), &digest(KUBEWARDEN_DIGEST), &root, &regexp)
        .await
        .expect("regexp identity and issuer match");
}

#[tokio::test]
async fn a_wrong_identity_or_issuer_is_refused_and_named() {
    let root = prod_root();
    let bundle = kubewarden();
    let image = digest(KUBEWARDEN_DIGEST);
    let wrong_identity =
        "https://github.com/attacker/repo/.github/workflows/release.yml@refs/tags/v1.34.0";
    let err = verify_keyless_bundle(
        &bundle,
        &image,
        &root,
        &exact(wrong_identity, GITHUB_ISSUER),
    )
    .await
    .expect_err("another identity must not verify");
    assert!(err.contains(wrong_identity), "{err}");
    assert!(
        err.contains(KUBEWARDEN_IDENTITY),
        "names what the certificate says: {err}"
    );

    let err = verify_keyless_bundle(
        &bundle,
        &image,
        &root,
        &exact(KUBEWARDEN_IDENTITY, "https://accounts.google.com"),
    )
    .await
    .expect_err("another issuer must not verify");
    assert!(err.contains("OIDC issuer"), "{err}");
    assert!(err.contains("https://accounts.google.com"), "{err}");
    assert!(err.contains(GITHUB_ISSUER), "{err}");

    let regexp = KeylessPolicy {
        identity: Matcher::regexp(
            "--certificate-identity-regexp",
            "^https://github.com/sigstore/",
        )
        .expect("regexp"),
        issuer: Matcher::Exact(GITHUB_ISSUER.to_owned()),
    };
    let err = verify_keyless_bundle(&bundle, &image, &root, &regexp)
        .await
        .expect_err("a regexp that does not match must not verify");
    assert!(
        err.contains("the regexp `^https://github.com/sigstore/`"),
        "{err}"
    );
}

#[tokio::test]
async fn a_bundle_for_another_digest_or_another_root_is_refused() {
    let err = verify_keyless_bundle(
        &kubewarden(),
        &digest("sha256:0000000000000000000000000000000000000000000000000000000000000000"),
        &prod_root(),
        &exact(KUBEWARDEN_IDENTITY, GITHUB_ISSUER),
    )
    .await
    .expect_err("the statement's subject is another image");
    assert!(err.to_lowercase().contains("digest"), "{err}");

    // The staging root has neither this Fulcio CA nor this Rekor log.
    let staging = TrustedRoot::from_file(&data("sigstore/trusted_root.staging-rekor2.json"))
        .expect("staging root");
    let err = verify_keyless_bundle(
        &kubewarden(),
        &digest(KUBEWARDEN_DIGEST),
        &staging,
        &exact(KUBEWARDEN_IDENTITY, GITHUB_ISSUER),
    )
    .await
    .expect_err("an untrusted root must not verify");
    assert!(err.contains("not in the trusted root"), "{err}");
}

#[tokio::test]
async fn a_tampered_rekor_entry_is_refused() {
    let root = prod_root();
    let policy = exact(KUBEWARDEN_IDENTITY, GITHUB_ISSUER);
    let image = digest(KUBEWARDEN_DIGEST);

    // A different integrated time: the signed entry timestamp no longer covers it.
    let moved = tampered(|entry| entry["integratedTime"] = "1775719410".into());
    let err = verify_keyless_bundle(&moved, &image, &root, &policy)
        .await
        .expect_err("a moved integrated time must fail");
    assert!(err.contains("signed entry timestamp"), "{err}");

    // With a valid SET, a forged inclusion proof path is still caught.
    let forged = tampered(|entry| {
        let hashes = entry["inclusionProof"]["hashes"]
            .as_array_mut()
            .expect("hashes");
        hashes[0] = STANDARD.encode([7u8; 32]).into();
    });
    let err = verify_keyless_bundle(&forged, &image, &root, &policy)
        .await
        .expect_err("a forged inclusion proof must fail");
    assert!(err.contains("inclusion proof"), "{err}");

    // The proof alone, untouched, is not enough: it does not sign the integrated time, so the
    // time could be moved into a retired CA's window (or the certificate's) unnoticed.
    let proof_only = tampered(|entry| {
        entry
            .as_object_mut()
            .expect("entry")
            .remove("inclusionPromise");
    });
    let err = verify_keyless_bundle(&proof_only, &image, &root, &policy)
        .await
        .expect_err("no signed time without the SET");
    assert!(err.contains("no signed entry timestamp"), "{err}");

    // A different logged body (another entry's): the SET does not cover it.
    let swapped = tampered(|entry| {
        let body = STANDARD
            .decode(entry["canonicalizedBody"].as_str().expect("body"))
            .expect("base64");
        let mut body: serde_json::Value = serde_json::from_slice(&body).expect("json");
        body["spec"]["payloadHash"]["value"] = "00".repeat(32).into();
        entry["canonicalizedBody"] = STANDARD.encode(body.to_string()).into();
    });
    verify_keyless_bundle(&swapped, &image, &root, &policy)
        .await
        .expect_err("a rewritten Rekor body must fail");
}

/// The production root with `edit` applied to its JSON, parsed.
fn prod_root_edited(edit: impl FnOnce(&mut serde_json::Value)) -> TrustedRoot {
    let mut root: serde_json::Value = serde_json::from_slice(
        &std::fs::read(data("sigstore/trusted_root.prod.json")).expect("read"),
    )
    .expect("json");
    edit(&mut root);
    TrustedRoot::from_json("edited root", &serde_json::to_vec(&root).expect("json"))
        .expect("the edited root parses")
}

/// The trusted root's `validFor` windows count at the Rekor integrated time (kubewarden:
/// 2026-04-09): the current Fulcio CA retired before then, or the Rekor log retired before then,
/// refuses the bundle and says why; the unmodified root verifies it, and the 2024 conformance
/// bundles still verify (their CA and log were valid then).
#[tokio::test]
async fn a_ca_or_log_retired_before_the_integrated_time_does_not_vouch() {
    let policy = exact(KUBEWARDEN_IDENTITY, GITHUB_ISSUER);
    let image = digest(KUBEWARDEN_DIGEST);
    let retired = "2026-01-01T00:00:00Z";

    // The current CA (the one without an end) retired on 2026-01-01.
    let ca_retired = prod_root_edited(|root| {
        for ca in root["certificateAuthorities"].as_array_mut().expect("CAs") {
            if ca["validFor"].get("end").is_none() {
                ca["validFor"]["end"] = retired.into();
            }
        }
    });
    let err = verify_keyless_bundle(&kubewarden(), &image, &ca_retired, &policy)
        .await
        .expect_err("no CA was valid when the bundle was logged");
    assert!(
        err.contains("no Fulcio CA of the trusted root was valid at 2026-04-09T07:23:29Z"),
        "{err}"
    );

    // The 2021 CA's window stretched to now does not make the current CA's certificate
    // verify: the chain must lead to a CA valid then.
    let only_old_ca = prod_root_edited(|root| {
        let cas = root["certificateAuthorities"].as_array_mut().expect("CAs");
        cas.retain(|ca| ca["validFor"].get("end").is_some());
        cas[0]["validFor"]
            .as_object_mut()
            .expect("validFor")
            .remove("end");
    });
    verify_keyless_bundle(&kubewarden(), &image, &only_old_ca, &policy)
        .await
        .expect_err("the 2021 CA did not issue this certificate");

    // The Rekor log that logged it retired on 2026-01-01.
    let log_retired = prod_root_edited(|root| {
        for log in root["tlogs"].as_array_mut().expect("tlogs") {
            if log["baseUrl"] == "https://rekor.sigstore.dev" {
                log["publicKey"]["validFor"]["end"] = retired.into();
            }
        }
    });
    let err = verify_keyless_bundle(&kubewarden(), &image, &log_retired, &policy)
        .await
        .expect_err("the log was not valid when it logged the bundle");
    assert!(
        err.contains("the Rekor log c0d23d6ad406973f9559f3ba2d1ca01f84147d8ffc5b8445c224f98b9591801d of the trusted root was not valid at 2026-04-09T07:23:29Z"),
        "{err}"
    );

    // The CT log that signed the certificate's SCT retired on 2026-01-01.
    let ct_retired = prod_root_edited(|root| {
        for log in root["ctlogs"].as_array_mut().expect("ctlogs") {
            if log["publicKey"]["validFor"].get("end").is_none() {
                log["publicKey"]["validFor"]["end"] = retired.into();
            }
        }
    });
    let err = verify_keyless_bundle(&kubewarden(), &image, &ct_retired, &policy)
        .await
        .expect_err("the CT log was not valid then");
    assert!(err.contains("left out"), "{err}");

    // The unmodified root, and a retirement after the integrated time, verify.
    verify_keyless_bundle(&kubewarden(), &image, &prod_root(), &policy)
        .await
        .expect("the unmodified root verifies");
    let later = prod_root_edited(|root| {
        for ca in root["certificateAuthorities"].as_array_mut().expect("CAs") {
            if ca["validFor"].get("end").is_none() {
                ca["validFor"]["end"] = "2026-04-09T07:23:29Z".into();
            }
        }
    });
    verify_keyless_bundle(&kubewarden(), &image, &later, &policy)
        .await
        .expect("the window includes its end");

    // A retired window in the root is bad input when it is not a time.
    let mut bad: serde_json::Value = serde_json::from_slice(
        &std::fs::read(data("sigstore/trusted_root.prod.json")).expect("read"),
    )
    .expect("json");
    bad["certificateAuthorities"][0]["validFor"]["end"] = "last year".into();
    let err = TrustedRoot::from_json("bad.json", &serde_json::to_vec(&bad).expect("json"))
        .expect_err("not a time");
    assert!(err.to_string().contains("`last year`"), "{err}");
    assert!(err.to_string().contains("bad.json"), "{err}");
}

#[tokio::test]
async fn a_conformance_message_signature_verifies_for_its_file() {
    let bundle =
        std::fs::read(data("sigstore/conformance-happy-path-v0.3.bundle.json")).expect("read");
    let file_digest =
        digest("sha256:a0cfc71271d6e278e57cd332ff957c3f7043fdda354c4cbb190a30d56efa01bf");
    let signer = verify_keyless_bundle(
        &bundle,
        &file_digest,
        &prod_root(),
        &exact(CONFORMANCE_IDENTITY, GITHUB_ISSUER),
    )
    .await
    .expect("the conformance bundle verifies");
    assert_eq!(signer.signer, CONFORMANCE_IDENTITY);
    assert_eq!(
        signer.predicate_type, None,
        "a message signature has no statement"
    );
}

#[tokio::test]
async fn a_rekor_v2_bundle_is_refused_not_trusted() {
    // sigstore 0.15 verifies neither hashedrekord 0.0.2 entries nor RFC 3161 timestamps offline.
    let bundle = std::fs::read(data("sigstore/conformance-rekor2.bundle.json")).expect("read");
    let root =
        TrustedRoot::from_file(&data("sigstore/trusted_root.staging-rekor2.json")).expect("root");
    let file_digest =
        digest("sha256:a0cfc71271d6e278e57cd332ff957c3f7043fdda354c4cbb190a30d56efa01bf");
    verify_keyless_bundle(
        &bundle,
        &file_digest,
        &root,
        &exact(CONFORMANCE_IDENTITY, GITHUB_ISSUER),
    )
    .await
    .expect_err("Rekor v2 is not supported offline by sigstore 0.15");
}

#[tokio::test]
async fn a_public_cosign_v3_bundle_in_the_referrers_tag_schema_verifies() {
    let Some(addr) =
        service_registry("a_public_cosign_v3_bundle_in_the_referrers_tag_schema_verifies")
    else {
        return;
    };
    let registry = client(&addr);
    let repository = unique_repository("sigstore-kubewarden");
    // The signed image itself (a multi-platform index from ghcr.io) is not in this registry; its
    // digest is what the bundle binds, and finding and verifying bundles needs nothing else.
    let image = ImageRef::parse(&format!("{addr}/{repository}@{KUBEWARDEN_DIGEST}")).expect("ref");
    let subject = Subject {
        digest: digest(KUBEWARDEN_DIGEST),
        media_type: OCI_INDEX.to_owned(),
        size: 0,
    };
    registry
        .put_referrer(
            &image,
            &subject,
            BUNDLE_MEDIA_TYPE,
            &[Layer {
                media_type: BUNDLE_MEDIA_TYPE.to_owned(),
                data: kubewarden(),
                annotations: BTreeMap::new(),
            }],
            &BTreeMap::from([(
                "dev.sigstore.bundle.content".to_owned(),
                "dsse-envelope".to_owned(),
            )]),
        )
        .await
        .expect("push the bundle as a referrer");
    // docker-registry 2.8 has no referrers API: the bundle is listed by the tag schema's index.
    let tags = registry.list_tags(&image).await.expect("tags");
    assert_eq!(tags, [referrers_tag(&subject.digest)]);

    let root = prod_root();
    let policy = exact(KUBEWARDEN_IDENTITY, GITHUB_ISSUER);
    let verification = verify_image_any_format(
        &registry,
        &image,
        Trust::Keyless {
            root: &root,
            policy: &policy,
        },
    )
    .await
    .expect("verify");
    let verified = verification.verified().expect("the bundle verifies");
    assert_eq!(verified.format, SignatureFormat::SigstoreBundle);
    assert_eq!(
        verified.signer.as_ref().map(|s| s.signer.as_str()),
        Some(KUBEWARDEN_IDENTITY)
    );

    let wrong = exact(
        "https://github.com/someone/else/.github/workflows/x.yml@refs/heads/main",
        GITHUB_ISSUER,
    );
    let refused = verify_image_any_format(
        &registry,
        &image,
        Trust::Keyless {
            root: &root,
            policy: &wrong,
        },
    )
    .await
    .expect("verify");
    assert!(refused.verified().is_none());
    let reasons = refused.reasons().join("\n");
    assert!(reasons.contains("someone/else"), "{reasons}");
}

#[tokio::test]
async fn slipway_key_bundles_and_sig_tags_are_both_found_and_reported() {
    let Some(addr) =
        service_registry("slipway_key_bundles_and_sig_tags_are_both_found_and_reported")
    else {
        return;
    };
    let images = push_images(&addr, "sigstore-formats", 2);
    let registry = client(&addr);
    let (alice, bob) = (EcdsaP256Key::generate(), EcdsaP256Key::generate());
    let (alice_pub, bob_pub) = (alice.public(), bob.public());
    let image = &images[0];

    // Bundle only: found through the tag schema and reported as a bundle.
    sign_image_bundle(&registry, &alice, image)
        .await
        .expect("sign with a bundle");
    let keys: [&dyn Verifier; 1] = [&alice_pub];
    let report = verify_image_any_format(&registry, image, Trust::Keys(&keys))
        .await
        .expect("verify");
    let verified = report.verified().expect("the bundle verifies");
    assert_eq!(verified.format, SignatureFormat::SigstoreBundle);
    assert_eq!(
        verified.signer.as_ref().map(|s| s.signer.clone()),
        Some(alice.key_id())
    );

    // A second bundle and a legacy signature are appended, not substituted.
    sign_image_bundle(&registry, &bob, image)
        .await
        .expect("bob signs with a bundle");
    sign_image(&registry, &bob, image)
        .await
        .expect("bob signs .sig");
    assert_eq!(find_bundles(&registry, image).await.expect("find").len(), 2);
    let bob_keys: [&dyn Verifier; 1] = [&bob_pub];
    let report = verify_image_any_format(&registry, image, Trust::Keys(&bob_keys))
        .await
        .expect("verify");
    let formats =
        |report: &slipway_attest::bundle::ImageVerification| -> Vec<(SignatureFormat, bool)> {
            report
                .checks
                .iter()
                .map(|check| (check.format, check.signer.is_some()))
                .collect()
        };
    assert_eq!(
        formats(&report),
        [(SignatureFormat::LegacyTag, true)],
        "a verified .sig signature spares the referrers requests: {report:?}"
    );
    // Alice signed only a bundle: the .sig layer fails for her key, then the bundles are read.
    let report = verify_image_any_format(&registry, image, Trust::Keys(&keys))
        .await
        .expect("verify");
    assert_eq!(
        formats(&report),
        [
            (SignatureFormat::LegacyTag, false),
            (SignatureFormat::SigstoreBundle, true),
            (SignatureFormat::SigstoreBundle, false),
        ],
        "{report:?}"
    );

    // A key that signed nothing: every signature is listed with its reason.
    let carol = EcdsaP256Key::generate().public();
    let carol_keys: [&dyn Verifier; 1] = [&carol];
    let refused = verify_image_any_format(&registry, image, Trust::Keys(&carol_keys))
        .await
        .expect("verify");
    assert!(refused.verified().is_none());
    assert_eq!(refused.reasons().len(), 3, "{:?}", refused.reasons());

    // A bundle made for one image does not verify another.
    let other = &images[1];
    let nothing = verify_image_any_format(&registry, other, Trust::Keys(&keys))
        .await
        .expect("verify");
    assert_eq!(
        nothing.reasons(),
        ["no signature found: neither a `.sig` tag nor a Sigstore bundle among the referrers"]
    );
}
