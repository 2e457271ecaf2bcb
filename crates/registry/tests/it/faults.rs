//! Registry faults a real registry cannot be made to produce, against the scripted server: 5xx
//! then success, 5xx forever, answers that never come, final 4xx, the bearer-token flow, and a
//! push that fails half way.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use slipway_core::ImageRef;
use slipway_registry::manifest::{OCI_MANIFEST, artifact_upload, sha256};
use slipway_registry::{
    Artifact, DockerConfig, Error, Layer, OciRegistry, Registry, RegistryConfig,
};

use crate::scripted::{Reply, Request, Server};

fn client(server: &Server, retries: u32) -> OciRegistry {
    let config = RegistryConfig::default()
        .insecure(&server.addr)
        .retries(retries, Duration::from_millis(10))
        .timeout(Duration::from_millis(300));
    OciRegistry::new(config, DockerConfig::empty()).expect("client")
}

fn image(server: &Server) -> ImageRef {
    ImageRef::parse(&format!("{}/app:v1", server.addr)).expect("ref")
}

/// A valid (empty) image manifest and its digest.
fn manifest() -> (Vec<u8>, String) {
    let upload = artifact_upload(&[]);
    (upload.manifest, upload.digest.to_string())
}

fn manifest_reply(body: &[u8], digest: &str) -> Reply {
    Reply::with(
        200,
        &[
            ("Content-Type", OCI_MANIFEST),
            ("Docker-Content-Digest", digest),
        ],
        body,
    )
}

#[tokio::test]
async fn server_errors_are_retried_then_succeed() {
    let (body, digest) = manifest();
    let failures = Arc::new(AtomicUsize::new(3));
    let left = Arc::clone(&failures);
    let answer = (body.clone(), digest.clone());
    let server = Server::start(move |request: &Request| {
        if request.path == "/v2/" {
            return Reply::status(200);
        }
        if request.path == "/v2/app/manifests/v1"
            && left
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok()
        {
            return Reply::error(503, "UNAVAILABLE");
        }
        manifest_reply(&answer.0, &answer.1)
    })
    .await;
    let resolved = client(&server, 3)
        .resolve(&image(&server))
        .await
        .expect("resolves after the 503s");
    assert_eq!(resolved.digest.to_string(), digest);
    assert_eq!(resolved.index_digest, None);
    assert_eq!(
        failures.load(Ordering::SeqCst),
        0,
        "all three 503s were served"
    );
    // Three GETs answered 503, the fourth the manifest: its digest and kind in one answer, so
    // no GET by digest, no HEAD, and no `/v2/` probe on an open registry.
    assert_eq!(server.count("GET", "/v2/app/manifests/v1"), 4);
    assert_eq!(
        server.count("GET", &format!("/v2/app/manifests/{digest}")),
        0
    );
    assert_eq!(server.requests().len(), 4, "{:?}", server.requests());
}

#[tokio::test]
async fn server_errors_give_up_after_the_retry_budget() {
    let server = Server::start(|request: &Request| {
        if request.path == "/v2/" {
            Reply::status(200)
        } else {
            Reply::error(503, "UNAVAILABLE")
        }
    })
    .await;
    let err = client(&server, 2)
        .resolve(&image(&server))
        .await
        .expect_err("503 forever");
    assert!(
        matches!(
            err,
            Error::Unavailable {
                operation: "resolve",
                ..
            }
        ),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(
        text.starts_with(&format!(
            "resolve `{}/app:v1`: the registry failed (503)",
            server.addr
        )),
        "{text}"
    );
    assert!(
        text.contains("gave up after 3 attempt(s)") && text.contains("hint: "),
        "{text}"
    );
    // Three attempts of one GET each, and not one more.
    assert_eq!(
        server.count("HEAD", "/v2/app/manifests/") + server.count("GET", "/v2/app/manifests/"),
        3
    );
}

#[tokio::test]
async fn timeouts_are_retried_and_reported() {
    let server = Server::start(|_: &Request| Reply::Hang).await;
    let started = std::time::Instant::now();
    let err = client(&server, 1)
        .resolve(&image(&server))
        .await
        .expect_err("no answer");
    assert!(matches!(err, Error::Timeout { attempts: 2, .. }), "{err:?}");
    assert_eq!(
        err.to_string().lines().next(),
        Some(
            format!(
                "resolve `{}/app:v1`: no answer within 0.3s on each of 2 attempt(s)",
                server.addr
            )
            .as_str()
        )
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "bounded: {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn unknown_manifest_is_not_found_and_not_retried() {
    let server = Server::start(|request: &Request| {
        if request.path == "/v2/" {
            Reply::status(200)
        } else {
            Reply::error(404, "MANIFEST_UNKNOWN")
        }
    })
    .await;
    let registry = client(&server, 3);
    let err = registry
        .resolve(&image(&server))
        .await
        .expect_err("unknown");
    assert!(
        matches!(
            err,
            Error::NotFound {
                operation: "resolve",
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        server.count("HEAD", "/v2/app/manifests/v1") + server.count("GET", "/v2/app/manifests/v1"),
        1,
        "one GET, no retry"
    );
    assert!(
        !registry
            .exists(&image(&server))
            .await
            .expect("exists answers")
    );
    assert_eq!(
        registry
            .get_artifact(&image(&server), "sha256-00.sig")
            .await
            .expect("absent artifact"),
        None
    );
}

#[tokio::test]
async fn plain_http_is_only_for_insecure_registries() {
    let server = Server::start(|_: &Request| Reply::status(200)).await;
    let config = RegistryConfig::default()
        .retries(0, Duration::from_millis(10))
        .timeout(Duration::from_millis(300));
    let registry = OciRegistry::new(config, DockerConfig::empty()).expect("client");
    let err = registry
        .resolve(&image(&server))
        .await
        .expect_err("TLS to a plain HTTP server");
    assert!(
        matches!(err, Error::Unavailable { .. } | Error::Timeout { .. }),
        "{err:?}"
    );
    assert!(
        server.requests().is_empty(),
        "no plain HTTP request was sent: {:?}",
        server.requests()
    );
}

#[tokio::test]
async fn bearer_token_flow_uses_docker_config_credentials() {
    let (body, digest) = manifest();
    let realm: Arc<Mutex<String>> = Arc::default();
    let realm_for_handler = Arc::clone(&realm);
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("alice:pw")
    );
    let server = Server::start(move |request: &Request| {
        let challenge = format!(
            r#"Bearer realm="{}",service="scripted""#,
            realm_for_handler.lock().expect("lock")
        );
        let unauthorized = Reply::with(
            401,
            &[
                ("WWW-Authenticate", challenge.as_str()),
                ("Content-Type", "application/json"),
            ],
            br#"{"errors":[{"code":"UNAUTHORIZED","message":"x"}]}"#,
        );
        if request.path.starts_with("/token") {
            return if request.header("authorization") == Some(basic.as_str()) {
                Reply::with(200, &[], br#"{"token":"tok-1"}"#)
            } else {
                Reply::status(401)
            };
        }
        if request.header("authorization") == Some("Bearer tok-1")
            && request.path.starts_with("/v2/app/manifests/")
        {
            return manifest_reply(&body, &digest);
        }
        unauthorized
    })
    .await;
    *realm.lock().expect("lock") = format!("http://{}/token", server.addr);
    let config_dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        config_dir.path().join("config.json"),
        format!(
            r#"{{"auths":{{"{}":{{"username":"alice","password":"pw"}}}}}}"#,
            server.addr
        ),
    )
    .expect("write");
    let config = RegistryConfig::default()
        .insecure(&server.addr)
        .retries(0, Duration::from_millis(10));
    let registry = OciRegistry::new(config, DockerConfig::load(config_dir.path()).expect("load"))
        .expect("client");
    let resolved = registry
        .resolve(&image(&server))
        .await
        .expect("resolve with a token");
    assert_eq!(resolved.digest, sha256(&manifest().0));
    let token_requests: Vec<Request> = server
        .requests()
        .into_iter()
        .filter(|request| request.path.starts_with("/token"))
        .collect();
    assert!(!token_requests.is_empty());
    assert!(
        token_requests.iter().all(
            |request| request.path.contains("scope=repository%3Aapp%3Apull")
                && request.path.contains("service=scripted")
        ),
        "{token_requests:?}"
    );

    // Without credentials the same registry is a clear "log in" error, not a retry loop.
    let anonymous = OciRegistry::new(
        RegistryConfig::default()
            .insecure(&server.addr)
            .retries(3, Duration::from_millis(10)),
        DockerConfig::empty(),
    )
    .expect("client");
    let err = anonymous
        .resolve(&image(&server))
        .await
        .expect_err("no credentials");
    assert!(
        matches!(
            err,
            Error::Unauthorized {
                had_credentials: false,
                status: 401,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(
        err.to_string().contains(&format!(
            "hint: no credentials for `{}` were found",
            server.addr
        )),
        "{err}"
    );
}

fn signature_artifact() -> Artifact {
    Artifact {
        layers: vec![Layer {
            media_type: "application/vnd.dev.cosign.simplesigning.v1+json".into(),
            data: b"payload".to_vec(),
            annotations: Default::default(),
        }],
    }
}

#[tokio::test]
async fn a_failed_blob_upload_never_pushes_the_manifest() {
    let server =
        Server::start(
            |request: &Request| match (request.method.as_str(), request.path.as_str()) {
                (_, "/v2/") => Reply::status(200),
                ("HEAD", path) if path.starts_with("/v2/app/blobs/") => {
                    Reply::error(404, "BLOB_UNKNOWN")
                }
                ("POST", "/v2/app/blobs/uploads/") => {
                    Reply::with(202, &[("Location", "/v2/app/blobs/uploads/u1")], b"")
                }
                ("PUT", path) if path.starts_with("/v2/app/blobs/uploads/u1") => {
                    Reply::error(500, "UNKNOWN")
                }
                _ => Reply::status(201),
            },
        )
        .await;
    let err = client(&server, 1)
        .put_artifact(&image(&server), "sha256-ab.sig", &signature_artifact())
        .await
        .expect_err("blob upload fails");
    assert!(
        matches!(
            err,
            Error::Unavailable {
                operation: "push artifact to",
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        server.count("PUT", "/v2/app/blobs/uploads/u1"),
        2,
        "retried once"
    );
    assert_eq!(
        server.count("PUT", "/v2/app/manifests/"),
        0,
        "the tag was never moved"
    );
}

#[tokio::test]
async fn a_rejected_manifest_is_final() {
    let server =
        Server::start(
            |request: &Request| match (request.method.as_str(), request.path.as_str()) {
                (_, "/v2/") => Reply::status(200),
                ("HEAD", path) if path.starts_with("/v2/app/blobs/") => Reply::status(200),
                ("PUT", path) if path.starts_with("/v2/app/manifests/") => {
                    Reply::error(400, "MANIFEST_INVALID")
                }
                _ => Reply::status(404),
            },
        )
        .await;
    let err = client(&server, 3)
        .put_artifact(&image(&server), "sha256-ab.sig", &signature_artifact())
        .await
        .expect_err("400");
    assert!(
        matches!(
            err,
            Error::Rejected {
                operation: "push artifact to",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("the registry answered 400"),
        "{err}"
    );
    assert_eq!(
        server.count("PUT", "/v2/app/manifests/"),
        1,
        "a 4xx is not retried"
    );
    assert_eq!(
        server.count("POST", "/v2/app/blobs/uploads/"),
        0,
        "existing blobs are not uploaded again"
    );
}

/// A registry that wants a token even for anonymous pulls (as ghcr.io and Docker Hub do): the
/// first direct read is answered 401, the token flow takes over, and later reads of that host
/// go through the token flow at once (one unauthenticated manifest GET in all).
#[tokio::test]
async fn anonymous_reads_fall_back_to_the_token_flow_once() {
    let (body, digest) = manifest();
    let realm: Arc<Mutex<String>> = Arc::default();
    let realm_for_handler = Arc::clone(&realm);
    let server = Server::start(move |request: &Request| {
        if request.path.starts_with("/token") {
            return Reply::with(200, &[], br#"{"token":"anon-1"}"#);
        }
        if request.header("authorization") == Some("Bearer anon-1")
            && request.path.starts_with("/v2/app/manifests/")
        {
            return manifest_reply(&body, &digest);
        }
        let challenge = format!(
            r#"Bearer realm="{}",service="scripted""#,
            realm_for_handler.lock().expect("lock")
        );
        Reply::with(401, &[("WWW-Authenticate", challenge.as_str())], b"{}")
    })
    .await;
    *realm.lock().expect("lock") = format!("http://{}/token", server.addr);
    let registry = client(&server, 0);
    for tag in ["v1", "v2"] {
        let image = ImageRef::parse(&format!("{}/app:{tag}", server.addr)).expect("ref");
        let resolved = registry.resolve(&image).await.expect("resolve");
        assert_eq!(resolved.digest, sha256(&manifest().0));
    }
    let unauthenticated_reads = server
        .requests()
        .iter()
        .filter(|request| {
            request.path.starts_with("/v2/app/manifests/")
                && request.header("authorization").is_none()
        })
        .count();
    assert_eq!(unauthenticated_reads, 1, "{:?}", server.requests());
}

/// A direct read checks what it got against the digest the registry claims.
#[tokio::test]
async fn a_manifest_that_does_not_match_its_digest_is_refused() {
    let (body, _) = manifest();
    let wrong = sha256(b"something else").to_string();
    let server = Server::start(move |_: &Request| manifest_reply(&body, &wrong)).await;
    let err = client(&server, 0)
        .resolve(&image(&server))
        .await
        .expect_err("mismatch");
    assert!(
        err.to_string().contains("does not match its digest"),
        "{err}"
    );
}

/// What resolving and verifying an image costs on an open registry: one GET of the tag's
/// manifest (digest and kind), then the signature's manifest and its one layer: 3 requests,
/// no probe (`cargo xtask bench registry` measures the same on a real registry).
#[tokio::test]
async fn resolving_and_reading_a_signature_costs_three_requests() {
    let (body, digest) = manifest();
    let signature = signature_artifact();
    let upload = artifact_upload(&signature.layers);
    let sig_tag = format!("{}.sig", digest.replace(':', "-"));
    let (sig_manifest, sig_digest) = (upload.manifest.clone(), upload.digest.to_string());
    let blobs: Vec<(String, Vec<u8>)> = upload
        .blobs
        .iter()
        .map(|(digest, data)| (digest.to_string(), data.clone()))
        .collect();
    let server = Server::start(move |request: &Request| {
        if request.path == "/v2/app/manifests/v1" {
            return manifest_reply(&body, &digest);
        }
        if request.path == format!("/v2/app/manifests/{sig_tag}") {
            return manifest_reply(&sig_manifest, &sig_digest);
        }
        for (digest, data) in &blobs {
            if request.path == format!("/v2/app/blobs/{digest}") {
                return Reply::with(200, &[], data);
            }
        }
        Reply::error(404, "UNKNOWN")
    })
    .await;
    let registry = client(&server, 0);
    let resolved = registry.resolve(&image(&server)).await.expect("resolve");
    let tag = format!("{}.sig", resolved.digest.to_string().replace(':', "-"));
    let artifact = registry
        .get_artifact(&image(&server), &tag)
        .await
        .expect("read")
        .expect("signed");
    assert_eq!(artifact.layers[0].data, signature.layers[0].data);
    assert_eq!(server.requests().len(), 3, "{:?}", server.requests());
}
