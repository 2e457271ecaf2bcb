//! Slipway's own container image (`cargo xtask image`): built from the binaries this test run
//! has (debug, to stay in the test budget; `--release` makes the real one), pushed to the real
//! registry, checked for what a user of the image relies on (the binaries run inside it with
//! only the libraries it carries, non-root user, CA bundle, OCI labels), then signed by Slipway
//! (`slipway-deploy sign`) and Slipway's own signature verified on it (`slipway-audit
//! verify-image`).
//!
//! Gated like the other real-service tests on `SLIPWAY_TEST_REGISTRY`; without buildah it skips
//! outside CI and fails in CI (`cargo xtask services` installs it).

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use slipway_attest::keyfile::generate_key_pair;
use slipway_core::Secret;

use crate::support::{CI, REGISTRY_ENV, binary, command, output, service, unique, workspace_root};

/// The `xtask` binary: the one `cargo xtask` built next to the binaries, else built now into a
/// target directory of its own (the running `cargo test` holds the lock on the main one; xtask
/// has no dependencies, so this takes seconds).
fn xtask() -> PathBuf {
    let path = binary("slipway-deploy").with_file_name("xtask");
    if path.is_file() {
        return path;
    }
    let target_dir = workspace_root().join("target/xtask-for-tests");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .current_dir(workspace_root())
        .args(["build", "--quiet", "-p", "xtask", "--target-dir"])
        .arg(&target_dir)
        .status()
        .expect("run cargo build -p xtask");
    assert!(status.success(), "cargo build -p xtask failed");
    target_dir.join("debug/xtask")
}

/// Whether buildah can run here; `false` after saying why the test skips (a failure in CI).
#[allow(clippy::print_stderr, reason = "a skipped test must say why")]
fn buildah_available(test: &str) -> bool {
    let found = Command::new("buildah")
        .arg("--version")
        .output()
        .is_ok_and(|out| out.status.success());
    if !found {
        assert!(
            std::env::var_os(CI).is_none(),
            "{test}: buildah is not installed, and CI is set\n\nhint: `cargo xtask services` installs it (apt-get install buildah)"
        );
        eprintln!("skipping {test}: buildah is not installed (run `cargo xtask services`)");
    }
    found
}

/// `buildah` over the test's own storage.
fn buildah(storage: &Path) -> Command {
    let mut command = Command::new("buildah");
    command
        .arg("--root")
        .arg(storage.join("root"))
        .arg("--runroot")
        .arg(storage.join("runroot"))
        .args(["--storage-driver", "vfs"]);
    command
}

/// GET a registry document as JSON (plain HTTP: the test registry is on loopback).
async fn registry_json(client: &reqwest::Client, url: &str) -> Value {
    let response = client
        .get(url)
        .header(
            "Accept",
            "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json",
        )
        .send()
        .await
        .unwrap_or_else(|err| panic!("GET {url}: {err}"));
    assert!(
        response.status().is_success(),
        "GET {url}: {}",
        response.status()
    );
    response.json().await.expect("JSON")
}

#[tokio::test]
async fn the_image_runs_its_binaries_as_non_root_and_carries_slipways_own_signature() {
    const TEST: &str = "the_image_runs_its_binaries_as_non_root_and_carries_slipways_own_signature";
    let Some(registry) = service(REGISTRY_ENV, TEST) else {
        return;
    };
    if !buildah_available(TEST) {
        return;
    }
    let storage = tempfile::tempdir().expect("tempdir");
    let repository = unique("slipway-image");
    let target = format!("{registry}/{repository}:test");
    let bin_dir = binary("slipway-deploy")
        .parent()
        .expect("binaries directory")
        .to_owned();
    let built = output(
        Command::new(xtask())
            .arg("image")
            .arg("--bin-dir")
            .arg(&bin_dir)
            .arg("--storage")
            .arg(storage.path())
            .args(["--tag", &format!("localhost/{repository}:test")])
            .args(["--push", &target]),
    );
    assert_eq!(built.code, 0, "cargo xtask image failed:\n{}", built.stderr);
    let pinned = built.stdout.trim().to_owned();
    assert!(
        pinned.starts_with(&format!("{registry}/{repository}@sha256:")),
        "stdout is the pushed reference: {pinned}"
    );

    // Each binary runs inside the image with nothing but what the image carries (chroot into
    // its root filesystem), as the image's user.
    let container = output(buildah(storage.path()).args([
        "from",
        "--quiet",
        &format!("localhost/{repository}:test"),
    ]));
    assert_eq!(container.code, 0, "{}", container.stderr);
    let container = container.stdout.trim().to_owned();
    for name in ["slipway-deploy", "slipway-rollback", "slipway-audit"] {
        let ran = output(buildah(storage.path()).args([
            "run",
            "--isolation",
            "chroot",
            &container,
            "--",
            &format!("/usr/local/bin/{name}"),
            "--version",
        ]));
        assert_eq!(ran.code, 0, "{name} inside the image: {}", ran.stderr);
        assert!(
            ran.stdout.starts_with(&format!("{name} ")),
            "{name} --version: {}",
            ran.stdout
        );
    }

    // What the registry holds: the image config says who runs it and what it is.
    let client = reqwest::Client::new();
    let digest = pinned.rsplit_once('@').expect("pinned").1;
    let manifest = registry_json(
        &client,
        &format!("http://{registry}/v2/{repository}/manifests/{digest}"),
    )
    .await;
    let config_digest = manifest["config"]["digest"]
        .as_str()
        .expect("config digest");
    let config = registry_json(
        &client,
        &format!("http://{registry}/v2/{repository}/blobs/{config_digest}"),
    )
    .await;
    let image_config = &config["config"];
    assert_eq!(image_config["User"], "65532:65532", "{config:#}");
    let env: Vec<&str> = image_config["Env"]
        .as_array()
        .expect("Env")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        env.contains(&"SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt"),
        "{env:?}"
    );
    let labels = &image_config["Labels"];
    let cargo_toml = std::fs::read_to_string(workspace_root().join("Cargo.toml")).expect("read");
    for (label, field) in [
        ("org.opencontainers.image.licenses", "license"),
        ("org.opencontainers.image.version", "version"),
        ("org.opencontainers.image.source", "repository"),
    ] {
        let value = labels[label]
            .as_str()
            .unwrap_or_else(|| panic!("label {label} missing: {labels}"));
        assert!(
            cargo_toml.contains(&format!("{field} = \"{value}\"")),
            "label {label}={value} is not Cargo.toml's {field}"
        );
    }
    let listed = output(buildah(storage.path()).args([
        "run",
        "--isolation",
        "chroot",
        &container,
        "--",
        "/usr/local/bin/slipway-deploy",
        "--help",
    ]));
    assert_eq!(listed.code, 0, "{}", listed.stderr);

    // Slipway signs its own image (`slipway-deploy sign`, as the release workflow does), and
    // `slipway-audit verify-image` finds Slipway's signature with the release key and refuses
    // the image to any other key.
    let keys = tempfile::tempdir().expect("tempdir");
    let password = "image-test-password";
    let write_pair = |name: &str| {
        let (_key, private_pem, public_pem) =
            generate_key_pair(&Secret::new(password.to_owned())).expect("key pair");
        let private = keys.path().join(format!("{name}.key"));
        let public = keys.path().join(format!("{name}.pub"));
        std::fs::write(&private, private_pem).expect("write key");
        std::fs::write(&public, public_pem).expect("write pub");
        (private, public)
    };
    let (release_key, release_pub) = write_pair("slipway");
    let (_, stranger_pub) = write_pair("stranger");
    let slipway = |binary: &str, args: &[&str], key: &Path| {
        output(
            command(binary)
                .env("COSIGN_PASSWORD", password)
                .args(args)
                .args([
                    "--no-config",
                    "--allow-insecure-registry",
                    registry.as_str(),
                ])
                .arg("--key")
                .arg(key)
                .arg(&pinned),
        )
    };
    let signed = slipway("slipway-deploy", &["sign"], &release_key);
    assert_eq!(signed.code, 0, "slipway-deploy sign: {}", signed.stderr);
    let verified = slipway("slipway-audit", &["verify-image"], &release_pub);
    assert_eq!(
        verified.code, 0,
        "verify-image: {}{}",
        verified.stdout, verified.stderr
    );
    let refused = slipway("slipway-audit", &["verify-image"], &stranger_pub);
    assert_eq!(
        refused.code, 1,
        "verify-image with another key: {}{}",
        refused.stdout, refused.stderr
    );
}
