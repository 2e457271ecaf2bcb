//! The supply-chain commands as separate processes: `slipway-deploy sign` and `attest` (the
//! build job), `slipway-audit verify-image` and `verify-attestation` (a gate job or an auditor),
//! `slipway-deploy check-model`, and `run`/`slipway-rollback` with `require_provenance` on the
//! embedded world (`--demo --state`), whose images carry the demo build key's provenance.
//!
//! Registry cases run against the real registry from `cargo xtask services` (skipped locally
//! when it is absent, a failure under CI), model cases against its MLflow. Each command's
//! `--help`, text and JSON output are insta snapshots; digests, key ids, the registry's address
//! and the unique repository are replaced by names.

use std::path::{Path, PathBuf};

use slipway_core::{ImageRef, Secret};
use slipway_registry::testing::{OciLayout, linux_amd64, skopeo_digest, skopeo_push};
use slipway_registry::{OciRegistry, Registry as _, RegistryConfig};

use crate::support::{MLFLOW_ENV, Output, REGISTRY_ENV, command, output, service, unique};

const PASSWORD: &str = "build-and-deploy";
const BUILDER: &str = "https://github.com/acme/iris/.github/workflows/build.yml@refs/heads/main";
const SOURCE: &str = "https://github.com/acme/iris";

/// Key pairs written as `cosign generate-key-pair` writes them.
struct Keys {
    /// The deploy job's key.
    deploy: (PathBuf, PathBuf, String),
    /// The build job's key.
    build: (PathBuf, PathBuf, String),
}

fn key_pair(dir: &Path, name: &str) -> (PathBuf, PathBuf, String) {
    use slipway_attest::Signer as _;
    let (key, private, public) =
        slipway_attest::keyfile::generate_key_pair(&Secret::new(PASSWORD.to_owned()))
            .expect("key pair");
    let private_path = dir.join(format!("{name}.key"));
    let public_path = dir.join(format!("{name}.pub"));
    std::fs::write(&private_path, private).expect("write key");
    std::fs::write(&public_path, public).expect("write pub");
    (private_path, public_path, key.key_id())
}

fn keys(dir: &Path) -> Keys {
    Keys {
        deploy: key_pair(dir, "deploy"),
        build: key_pair(dir, "build"),
    }
}

/// Runs `binary args…` in `dir` with no config and the keys' password.
fn run(binary: &str, dir: &Path, args: &[&str]) -> Output {
    output(
        command(binary)
            .current_dir(dir)
            .env("COSIGN_PASSWORD", PASSWORD)
            .args(args),
    )
}

/// Text for a snapshot: the exit code, stdout and stderr, with every varying value named.
/// `document` validates against the schema `binary schema NAME` publishes.
#[track_caller]
pub(crate) fn valid_against(binary: &str, name: &str, document: &str) {
    let printed = output(command(binary).args(["schema", name]));
    assert_eq!(printed.code, 0, "{}", printed.stderr);
    let schema: serde_json::Value = serde_json::from_str(&printed.stdout).expect("schema");
    let validator = jsonschema::validator_for(&schema).expect("schema compiles");
    let value: serde_json::Value =
        serde_json::from_str(document).unwrap_or_else(|err| panic!("{name}: {err}\n{document}"));
    let errors: Vec<String> = validator
        .iter_errors(&value)
        .map(|e| e.to_string())
        .collect();
    assert!(errors.is_empty(), "{name}: {errors:?}\n{document}");
    // Not vacuous: the same schema refuses a document without its fields.
    assert!(
        !validator.is_valid(&serde_json::json!({ "schema_version": 1 })),
        "{name}: the schema accepts anything"
    );
}

fn shown(out: &Output, names: &[(&str, &str)]) -> String {
    let mut text = format!(
        "exit: {}\n--- stdout\n{}--- stderr\n{}",
        out.code, out.stdout, out.stderr
    );
    for (value, name) in names {
        if !value.is_empty() {
            text = text.replace(value, name);
        }
    }
    // MLflow's run ids (32 hex characters) differ on every seeded server.
    let words: Vec<String> = text
        .split(|c: char| !c.is_ascii_hexdigit())
        .filter(|word| word.len() == 32)
        .map(str::to_owned)
        .collect();
    for word in words {
        text = text.replace(&word, "[RUN-ID]");
    }
    text
}

#[test]
fn help_of_each_supply_chain_command() {
    let dir = tempfile::tempdir().expect("dir");
    for (binary, name) in [
        ("slipway-deploy", "check-model"),
        ("slipway-deploy", "sign"),
        ("slipway-deploy", "attest"),
        ("slipway-audit", "verify-image"),
        ("slipway-audit", "verify-attestation"),
    ] {
        let out = run(binary, dir.path(), &[name, "--help"]);
        assert_eq!(out.code, 0, "{binary} {name} --help: {}", out.stderr);
        insta::assert_snapshot!(format!("help_{}", name.replace('-', "_")), out.stdout);
    }
}

#[test]
fn bad_input_exits_2_with_a_hint() {
    let dir = tempfile::tempdir().expect("dir");
    std::fs::write(dir.path().join("not-a-key.pub"), "hello").expect("write");
    let cases: &[(&str, &str, &[&str])] = &[
        (
            "sign_without_key",
            "slipway-deploy",
            &["sign", "--no-config", "localhost:5000/acme/iris:1"],
        ),
        (
            "sign_bad_image",
            "slipway-deploy",
            &[
                "sign",
                "--no-config",
                "--key",
                "missing.key",
                "Not An Image",
            ],
        ),
        (
            "sign_missing_key",
            "slipway-deploy",
            &[
                "sign",
                "--no-config",
                "--key",
                "missing.key",
                "localhost:5000/acme/iris:1",
            ],
        ),
        (
            "attest_vuln_without_predicate",
            "slipway-deploy",
            &[
                "attest",
                "--no-config",
                "--type",
                "vuln",
                "localhost:5000/acme/iris:1",
            ],
        ),
        (
            "attest_facts_with_custom_type",
            "slipway-deploy",
            &[
                "attest",
                "--no-config",
                "--type",
                "custom",
                "--builder-id",
                BUILDER,
                "localhost:5000/acme/iris:1",
            ],
        ),
        (
            "attest_unknown_type",
            "slipway-deploy",
            &[
                "attest",
                "--no-config",
                "--type",
                "sbom-ish",
                "localhost:5000/acme/iris:1",
            ],
        ),
        (
            "check_model_bad_ref",
            "slipway-deploy",
            &["check-model", "--no-config", "iris@"],
        ),
        (
            "check_model_bad_bound",
            "slipway-deploy",
            &[
                "check-model",
                "--no-config",
                "--min",
                "accuracy",
                "iris@candidate",
            ],
        ),
        (
            "verify_image_missing_key",
            "slipway-audit",
            &[
                "verify-image",
                "--no-config",
                "--key",
                "missing.pub",
                "localhost:5000/acme/iris:1",
            ],
        ),
        (
            "verify_image_not_a_key",
            "slipway-audit",
            &[
                "verify-image",
                "--no-config",
                "--key",
                "not-a-key.pub",
                "localhost:5000/acme/iris:1",
            ],
        ),
        (
            "verify_attestation_constraints_need_provenance",
            "slipway-audit",
            &[
                "verify-attestation",
                "--no-config",
                "--key",
                "not-a-key.pub",
                "--type",
                "vuln",
                "--source-ref",
                "refs/heads/main",
                "localhost:5000/acme/iris:1",
            ],
        ),
    ];
    for (name, binary, args) in cases {
        let out = run(binary, dir.path(), args);
        assert_eq!(out.code, 2, "{name}: {out:?}");
        // clap's own usage errors point to `--help`; ours carry `hint:`.
        assert!(
            out.stderr.contains("hint:") || out.stderr.contains("try '--help'"),
            "{name}: {}",
            out.stderr
        );
        insta::assert_snapshot!(format!("bad_input_{name}"), shown(&out, &[]));
    }
}

/// Pushes `repository:tag` with a fresh image; returns its digest.
fn push(registry: &str, repository: &str, tag: &str, dir: &Path) -> String {
    let mut layout = OciLayout::create(&dir.join(format!("layout-{tag}"))).expect("layout");
    let written = layout
        .image(&format!("{repository}-{tag}"), &linux_amd64())
        .expect("image");
    layout.tag(tag, &written).expect("tag");
    skopeo_push(&layout, tag, registry, &format!("{repository}:{tag}")).expect("push");
    skopeo_digest(registry, &format!("{repository}:{tag}"))
        .expect("digest")
        .to_string()
}

#[tokio::test]
async fn sign_verify_attest_and_verify_the_attestation_on_the_real_registry() {
    let test = "sign_verify_attest_and_verify_the_attestation_on_the_real_registry";
    let Some(registry) = service(REGISTRY_ENV, test) else {
        return;
    };
    let dir = tempfile::tempdir().expect("dir");
    let keys = keys(dir.path());
    let repository = format!("slipway-test/{}", unique("supply-chain"));
    let digest = push(&registry, &repository, "1.5.0", dir.path());
    let other = push(&registry, &repository, "1.6.0", dir.path());
    let image = format!("{registry}/{repository}:1.5.0");
    let other_image = format!("{registry}/{repository}:1.6.0");
    let names = [
        (keys.deploy.2.as_str(), "[DEPLOY-KEY]"),
        (keys.build.2.as_str(), "[BUILD-KEY]"),
        (&digest[7..], "[DIGEST]"),
        (&other[7..], "[OTHER-DIGEST]"),
        (repository.as_str(), "[REPO]"),
        (registry.as_str(), "[REGISTRY]"),
    ];
    let path = |path: &PathBuf| path.display().to_string();
    let insecure = ["--allow-insecure-registry", registry.as_str()];
    let with = |args: &[&str]| -> Vec<String> {
        args.iter()
            .chain(&insecure)
            .map(|arg| (*arg).to_owned())
            .collect()
    };
    let go = |binary: &str, args: Vec<String>| {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        run(binary, dir.path(), &args)
    };

    // Plain HTTP is refused unless the host is allowed.
    let refused = run(
        "slipway-deploy",
        dir.path(),
        &[
            "sign",
            "--no-config",
            "--key",
            &path(&keys.deploy.0),
            &image,
        ],
    );
    assert_eq!(refused.code, 2, "{refused:?}");

    // sign: tag resolved to the digest; a second signature is appended.
    let signed = go(
        "slipway-deploy",
        with(&[
            "sign",
            "--no-config",
            "--key",
            &path(&keys.deploy.0),
            &image,
        ]),
    );
    assert_eq!(signed.code, 0, "{signed:?}");
    insta::assert_snapshot!("sign_text", shown(&signed, &names));
    let again = go(
        "slipway-deploy",
        with(&[
            "sign",
            "--no-config",
            "--output",
            "json",
            "--key",
            &path(&keys.build.0),
            &image,
        ]),
    );
    assert_eq!(again.code, 0, "{again:?}");
    insta::assert_snapshot!("sign_json", shown(&again, &names));
    valid_against("slipway-deploy", "sign", &again.stdout);

    // verify-image: the right key passes; the tag and the digest give the same answer.
    let verified = go(
        "slipway-audit",
        with(&[
            "verify-image",
            "--no-config",
            "--key",
            &path(&keys.deploy.1),
            &image,
        ]),
    );
    assert_eq!(verified.code, 0, "{verified:?}");
    insta::assert_snapshot!("verify_image_text", shown(&verified, &names));
    let by_digest = format!("{registry}/{repository}@{digest}");
    let verified_json = go(
        "slipway-audit",
        with(&[
            "verify-image",
            "--no-config",
            "--output",
            "json",
            "--key",
            &path(&keys.deploy.1),
            &by_digest,
        ]),
    );
    assert_eq!(verified_json.code, 0, "{verified_json:?}");
    insta::assert_snapshot!("verify_image_json", shown(&verified_json, &names));
    valid_against("slipway-audit", "verify-image", &verified_json.stdout);

    // A key that signed nothing: exit 1, each signature named with why.
    let stranger = key_pair(dir.path(), "stranger");
    let wrong_key = go(
        "slipway-audit",
        with(&[
            "verify-image",
            "--no-config",
            "--key",
            &path(&stranger.1),
            &image,
        ]),
    );
    assert_eq!(wrong_key.code, 1, "{wrong_key:?}");
    let mut stranger_names = names.to_vec();
    stranger_names.insert(0, (stranger.2.as_str(), "[STRANGER-KEY]"));
    insta::assert_snapshot!("verify_image_wrong_key", shown(&wrong_key, &stranger_names));

    // Another digest: unsigned, then carrying a copy of the first image's signatures.
    let unsigned = go(
        "slipway-audit",
        with(&[
            "verify-image",
            "--no-config",
            "--key",
            &path(&keys.deploy.1),
            &other_image,
        ]),
    );
    assert_eq!(unsigned.code, 1, "{unsigned:?}");
    assert!(
        unsigned.stdout.contains("no signatures under"),
        "{unsigned:?}"
    );
    let client = OciRegistry::new(
        RegistryConfig::default().insecure(&registry),
        slipway_registry::DockerConfig::empty(),
    )
    .expect("client");
    let first = ImageRef::parse(&by_digest).expect("ref");
    let second = ImageRef::parse(&format!("{registry}/{repository}@{other}")).expect("ref");
    let copy = |suffix: &'static str| {
        let (client, first, second) = (&client, &first, &second);
        async move {
            let artifact = client
                .get_artifact(first, &first.digest().expect("d").cosign_tag(suffix))
                .await
                .expect("read")
                .expect("present");
            client
                .put_artifact(
                    second,
                    &second.digest().expect("d").cosign_tag(suffix),
                    &artifact,
                )
                .await
                .expect("copy");
        }
    };
    copy("sig").await;
    let copied = go(
        "slipway-audit",
        with(&[
            "verify-image",
            "--no-config",
            "--key",
            &path(&keys.deploy.1),
            &other_image,
        ]),
    );
    assert_eq!(copied.code, 1, "{copied:?}");
    insta::assert_snapshot!("verify_image_other_digest", shown(&copied, &names));

    // attest: SLSA v1 provenance from the build's facts, with the build key.
    let attested = go(
        "slipway-deploy",
        with(&[
            "attest",
            "--no-config",
            "--key",
            &path(&keys.build.0),
            "--type",
            "slsaprovenance",
            "--builder-id",
            BUILDER,
            "--source-repo",
            SOURCE,
            "--source-ref",
            "refs/heads/main",
            "--source-commit",
            "4d329c75e7ec1725f7c9ce917a8799d408d06be3",
            &image,
        ]),
    );
    assert_eq!(attested.code, 0, "{attested:?}");
    insta::assert_snapshot!("attest_text", shown(&attested, &names));
    let predicate = dir.path().join("predicate.json");
    std::fs::write(&predicate, r#"{"reviewed":"model card v3"}"#).expect("predicate");
    let custom = go(
        "slipway-deploy",
        with(&[
            "attest",
            "--no-config",
            "--output",
            "json",
            "--key",
            &path(&keys.build.0),
            "--type",
            "custom",
            "--predicate",
            &path(&predicate),
            &image,
        ]),
    );
    assert_eq!(custom.code, 0, "{custom:?}");
    insta::assert_snapshot!("attest_json", shown(&custom, &names));
    valid_against("slipway-deploy", "attest", &custom.stdout);

    // verify-attestation: the build's key, builder, source and ref hold.
    let provenance_args = |key: &PathBuf, builder: &str, source_ref: &str, target: &str| {
        with(&[
            "verify-attestation",
            "--no-config",
            "--key",
            &path(key),
            "--type",
            "slsaprovenance",
            "--builder-id",
            builder,
            "--source-repo",
            SOURCE,
            "--source-ref",
            source_ref,
            target,
        ])
    };
    let holds = go(
        "slipway-audit",
        provenance_args(&keys.build.1, BUILDER, "refs/heads/main", &image),
    );
    assert_eq!(holds.code, 0, "{holds:?}");
    insta::assert_snapshot!("verify_attestation_text", shown(&holds, &names));
    let mut json_args = provenance_args(&keys.build.1, BUILDER, "refs/heads/main", &image);
    json_args.splice(1..1, ["--output".to_owned(), "json".to_owned()]);
    let holds_json = go("slipway-audit", json_args);
    assert_eq!(holds_json.code, 0, "{holds_json:?}");
    insta::assert_snapshot!("verify_attestation_json", shown(&holds_json, &names));
    valid_against("slipway-audit", "verify-attestation", &holds_json.stdout);
    let custom_holds = go(
        "slipway-audit",
        with(&[
            "verify-attestation",
            "--no-config",
            "--key",
            &path(&keys.build.1),
            "--type",
            "custom",
            &image,
        ]),
    );
    assert_eq!(custom_holds.code, 0, "{custom_holds:?}");

    // Each failing case exits 1 and names its reason.
    let failing: [(&str, Vec<String>, &str); 4] = [
        (
            "wrong builder",
            provenance_args(
                &keys.build.1,
                "https://github.com/evil/ci/.github/workflows/build.yml@refs/heads/main",
                "refs/heads/main",
                &image,
            ),
            "builder `https://github.com/acme/iris/.github/workflows/build.yml@refs/heads/main` is not the expected `https://github.com/evil/ci/.github/workflows/build.yml@refs/heads/main`",
        ),
        (
            "wrong source ref",
            provenance_args(&keys.build.1, BUILDER, "refs/heads/dev", &image),
            "source ref `refs/heads/main` is not the expected `refs/heads/dev`",
        ),
        (
            "the deploy key did not attest",
            provenance_args(&keys.deploy.1, BUILDER, "refs/heads/main", &image),
            "none of the envelope's 1 signature(s) verifies with any of the 1 trusted key(s)",
        ),
        (
            "another digest",
            provenance_args(&keys.build.1, BUILDER, "refs/heads/main", &other_image),
            "no `https://slsa.dev/provenance/v1` attestation under",
        ),
    ];
    for (case, args, reason) in failing {
        let out = go("slipway-audit", args);
        assert_eq!(out.code, 1, "{case}: {out:?}");
        assert!(
            out.stdout.contains(reason),
            "{case}: `{reason}` in {}",
            out.stdout
        );
    }
    // The first image's attestations copied onto another digest: about the wrong subject.
    copy("att").await;
    let out = go(
        "slipway-audit",
        provenance_args(&keys.build.1, BUILDER, "refs/heads/main", &other_image),
    );
    assert_eq!(out.code, 1, "{out:?}");
    insta::assert_snapshot!("verify_attestation_other_digest", shown(&out, &names));
}

#[test]
fn check_model_prints_the_model_gate_on_the_real_mlflow() {
    let test = "check_model_prints_the_model_gate_on_the_real_mlflow";
    let Some(mlflow) = service(MLFLOW_ENV, test) else {
        return;
    };
    let dir = tempfile::tempdir().expect("dir");
    let model = std::env::var("SLIPWAY_TEST_MLFLOW_SEEDED")
        .unwrap_or_else(|_| "iris-random-forest".to_owned());
    let names = [(mlflow.as_str(), "[MLFLOW]")];
    // The seeded candidate (version 2: accuracy 0.95, f1 0.93) passes the default policy.
    let passed = run(
        "slipway-deploy",
        dir.path(),
        &[
            "check-model",
            "--no-config",
            "--mlflow-uri",
            &mlflow,
            &format!("{model}@candidate"),
        ],
    );
    assert_eq!(passed.code, 0, "{passed:?}");
    insta::assert_snapshot!("check_model_text", shown(&passed, &names));
    // `--min` and `--max` join the policy: both fail, each named; MLflow's own variable works.
    let failed = output(
        command("slipway-deploy")
            .current_dir(dir.path())
            .env("MLFLOW_TRACKING_URI", &mlflow)
            .args([
                "check-model",
                "--no-config",
                "--output",
                "json",
                "--min",
                "accuracy=0.99",
                "--max",
                "f1=0.5",
                &format!("{model}/2"),
            ]),
    );
    assert_eq!(failed.code, 1, "{failed:?}");
    insta::assert_snapshot!("check_model_json", shown(&failed, &names));
    valid_against("slipway-deploy", "check-model", &failed.stdout);
    let no_server = run(
        "slipway-deploy",
        dir.path(),
        &["check-model", "--no-config", &format!("{model}@candidate")],
    );
    assert_eq!(no_server.code, 2, "{no_server:?}");
    assert!(
        no_server.stderr.contains("hint: pass `--mlflow-uri URL`"),
        "{no_server:?}"
    );
}

/// `run` and `slipway-rollback` with `require_provenance = true` on the persisted embedded
/// world, whose images the demo build key attested: the release and the rollback pass; a
/// policy that trusts another build key, or only tags, refuses with exit 1 and the reason.
#[test]
fn run_and_rollback_require_provenance_from_the_build() {
    let dir = tempfile::tempdir().expect("dir");
    let stranger = key_pair(dir.path(), "stranger");
    let write = |name: &str, extra: &str| {
        std::fs::write(
            dir.path().join(name),
            format!("[policy.signatures]\nrequire_provenance = true\nsource_refs = [\"refs/heads/main\"]\n{extra}"),
        )
        .expect("config");
    };
    write("built.toml", "");
    write(
        "other-key.toml",
        &format!(
            "[policy.provenance]\nkeys = [\"{}\"]\n",
            stranger.1.display()
        ),
    );
    std::fs::write(
        dir.path().join("tags-only.toml"),
        "[policy.signatures]\nrequire_provenance = true\nsource_refs = [\"refs/tags/v*\"]\n",
    )
    .expect("config");

    let other_key = run(
        "slipway-deploy",
        dir.path(),
        &["run", "--demo", "happy", "--config", "other-key.toml"],
    );
    assert_eq!(other_key.code, 1, "{other_key:?}");
    let all = format!("{}{}", other_key.stdout, other_key.stderr);
    assert!(
        all.contains("no verified provenance for the image (rejected: #0 rejected: none of the envelope's 1 signature(s) verifies"),
        "{all}"
    );
    let tags_only = run(
        "slipway-deploy",
        dir.path(),
        &["run", "--demo", "happy", "--config", "tags-only.toml"],
    );
    assert_eq!(tags_only.code, 1, "{tags_only:?}");
    let all = format!("{}{}", tags_only.stdout, tags_only.stderr);
    assert!(
        all.contains("source ref `refs/heads/main` is not one of `refs/tags/v*`"),
        "{all}"
    );

    let released = run(
        "slipway-deploy",
        dir.path(),
        &[
            "run",
            "--demo",
            "happy",
            "--state",
            "state",
            "--config",
            "built.toml",
        ],
    );
    assert_eq!(released.code, 0, "{released:?}");
    let rolled = run(
        "slipway-rollback",
        dir.path(),
        &[
            "--demo",
            "happy",
            "--state",
            "state",
            "--config",
            "built.toml",
            "--emergency",
            "--reason",
            "provenance test",
        ],
    );
    assert_eq!(rolled.code, 0, "{rolled:?}");
    assert!(
        rolled.stderr.contains("provenance verified")
            || rolled.stdout.contains("provenance verified"),
        "{rolled:?}"
    );
}

/// `sign --bundle` writes cosign v3's Sigstore bundle (a referrer, in the tag schema on this
/// registry) and `verify-image` reads it with the key and reports the format; keyless
/// `verify-image` needs an identity and issuer (exit 2 otherwise), uses the built-in trusted root
/// when none is configured or refreshed, and
/// a key-signed bundle is no keyless signature (exit 1, the reason named). A keyless bundle that
/// verifies through the registry is `slipway-attest`'s test with cosign v3's public kubewarden
/// bundle (the image it signed cannot be pushed here, and `verify-image` first checks the image
/// exists).
#[tokio::test]
async fn sign_bundle_and_verify_it_with_a_key_or_keyless() {
    let test = "sign_bundle_and_verify_it_with_a_key_or_keyless";
    let Some(registry) = service(REGISTRY_ENV, test) else {
        return;
    };
    let dir = tempfile::tempdir().expect("dir");
    let keys = keys(dir.path());
    let repository = format!("slipway-test/{}", unique("bundle"));
    let digest = push(&registry, &repository, "2.0.0", dir.path());
    let image = format!("{registry}/{repository}:2.0.0");
    let path = |path: &PathBuf| path.display().to_string();
    let go = |binary: &str, extra: &[(&str, &str)], args: &[&str]| {
        let mut cmd = command(binary);
        cmd.current_dir(dir.path()).env("COSIGN_PASSWORD", PASSWORD);
        for (name, value) in extra {
            cmd.env(name, value);
        }
        output(
            cmd.args(args)
                .args(["--allow-insecure-registry", registry.as_str()]),
        )
    };

    let signed = go(
        "slipway-deploy",
        &[],
        &[
            "sign",
            "--no-config",
            "--bundle",
            "--key",
            &path(&keys.deploy.0),
            &image,
        ],
    );
    assert_eq!(signed.code, 0, "{signed:?}");
    assert!(
        signed
            .stdout
            .contains("stored as a Sigstore bundle in referrer sha256:"),
        "{}",
        signed.stdout
    );
    let client = OciRegistry::new(
        RegistryConfig::default().insecure(&registry),
        slipway_registry::DockerConfig::empty(),
    )
    .expect("client");
    let pinned = ImageRef::parse(&format!("{registry}/{repository}@{digest}")).expect("ref");
    let tags = client.list_tags(&pinned).await.expect("tags");
    assert!(
        tags.contains(&format!("sha256-{}", &digest[7..])),
        "the referrers tag schema lists the bundle: {tags:?}"
    );

    let verified = go(
        "slipway-audit",
        &[],
        &[
            "verify-image",
            "--no-config",
            "--key",
            &path(&keys.deploy.1),
            &image,
        ],
    );
    assert_eq!(verified.code, 0, "{verified:?}");
    assert!(
        verified
            .stdout
            .contains("pass  #0 (Sigstore bundle sha256:"),
        "{}",
        verified.stdout
    );
    let wrong = go(
        "slipway-audit",
        &[],
        &[
            "verify-image",
            "--no-config",
            "--key",
            &path(&keys.build.1),
            &image,
        ],
    );
    assert_eq!(wrong.code, 1, "{wrong:?}");
    assert!(
        wrong
            .stdout
            .contains("does not verify with any of the 1 trusted key"),
        "{}",
        wrong.stdout
    );

    // Keyless: without `signing.trusted_root` (and nothing refreshed) the built-in root, named.
    let identity = ["--certificate-identity", BUILDER];
    let issuer = [
        "--certificate-oidc-issuer",
        "https://token.actions.githubusercontent.com",
    ];
    let empty_cache = dir.path().join("empty-cache");
    let empty_cache = empty_cache.display().to_string();
    let no_root = go(
        "slipway-audit",
        &[("SLIPWAY_CACHE_DIR", empty_cache.as_str())],
        &[
            "verify-image",
            "--no-config",
            identity[0],
            identity[1],
            issuer[0],
            issuer[1],
            &image,
        ],
    );
    assert_eq!(no_root.code, 1, "{no_root:?}");
    assert!(
        no_root
            .stdout
            .contains("trusted root: built-in trusted root"),
        "{}",
        no_root.stdout
    );
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../crates/attest/tests/data/sigstore/trusted_root.prod.json")
        .display()
        .to_string();
    let with_root = [("SLIPWAY_SIGNING__TRUSTED_ROOT", root.as_str())];
    let no_issuer = go(
        "slipway-audit",
        &with_root,
        &[
            "verify-image",
            "--no-config",
            identity[0],
            identity[1],
            &image,
        ],
    );
    assert_eq!(no_issuer.code, 2, "{no_issuer:?}");
    assert!(
        no_issuer.stderr.contains("--certificate-oidc-issuer"),
        "{}",
        no_issuer.stderr
    );
    let keyless = go(
        "slipway-audit",
        &with_root,
        &[
            "verify-image",
            "--no-config",
            identity[0],
            identity[1],
            issuer[0],
            issuer[1],
            &image,
        ],
    );
    assert_eq!(keyless.code, 1, "{keyless:?}");
    assert!(
        keyless
            .stdout
            .contains("holds a public key, not a Fulcio certificate"),
        "{}",
        keyless.stdout
    );
}

/// A public cosign v3 keyless bundle (kubewarden-controller v1.34.0, signed by its release
/// workflow through Fulcio and Rekor; from sigstore-rs's test data, see
/// crates/attest/tests/data/README.md) stored in the referrers tag schema on the real registry
/// verifies with `slipway-audit verify-image` for its identity and issuer, offline from the
/// production trusted root, and fails naming the mismatch for another identity.
#[tokio::test]
async fn a_public_keyless_bundle_verifies_with_verify_image() {
    const DIGEST: &str = "sha256:c811d58de79c92f03214e63aa339484e488d694ae8a6283b5f3f17a9faf50172";
    const IDENTITY: &str = "https://github.com/kubewarden/kubewarden-controller/.github/workflows/release.yml@refs/tags/v1.34.0";
    const ISSUER: &str = "https://token.actions.githubusercontent.com";
    let test = "a_public_keyless_bundle_verifies_with_verify_image";
    let Some(registry) = service(REGISTRY_ENV, test) else {
        return;
    };
    let data = sigstore_data();
    let image = push_public_bundle(
        &registry,
        "kubewarden",
        DIGEST,
        "kubewarden-controller-v1.34.0.bundle_v03.json",
    )
    .await;
    let root = data.join("trusted_root.prod.json").display().to_string();
    let verify = |identity: &str| {
        output(
            command("slipway-audit")
                .env("SLIPWAY_SIGNING__TRUSTED_ROOT", &root)
                .args([
                    "verify-image",
                    "--no-config",
                    "--certificate-identity",
                    identity,
                    "--certificate-oidc-issuer",
                    ISSUER,
                    "--allow-insecure-registry",
                    registry.as_str(),
                    &image,
                ]),
        )
    };
    let verified = verify(IDENTITY);
    assert_eq!(verified.code, 0, "{verified:?}");
    assert!(
        verified.stdout.contains("Sigstore bundle"),
        "{}",
        verified.stdout
    );
    let other = "https://github.com/someone/else/.github/workflows/x.yml@refs/heads/main";
    let refused = verify(other);
    assert_eq!(refused.code, 1, "{refused:?}");
    assert!(
        refused.stdout.contains(IDENTITY) || refused.stdout.contains(other),
        "the mismatch is named: {}",
        refused.stdout
    );
}

pub(crate) fn sigstore_data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../crates/attest/tests/data/sigstore")
}

/// Stores the public bundle `file` as an OCI 1.1 referrer of `digest` in a new repository on the
/// real registry (the referrers tag schema, as cosign v3 falls back to), and returns the image
/// by digest. The image itself is not there: the commands take a digest as given, as cosign does.
pub(crate) async fn push_public_bundle(
    registry: &str,
    name: &str,
    digest: &str,
    file: &str,
) -> String {
    use slipway_attest::bundle::BUNDLE_MEDIA_TYPE;
    use slipway_registry::Layer;
    use slipway_registry::manifest::{OCI_INDEX, Subject};

    let repository = format!("slipway-test/{}", unique(name));
    let image = format!("{registry}/{repository}@{digest}");
    let client = OciRegistry::new(
        RegistryConfig::default().insecure(registry),
        slipway_registry::DockerConfig::empty(),
    )
    .expect("client");
    let pinned = ImageRef::parse(&image).expect("ref");
    client
        .put_referrer(
            &pinned,
            &Subject {
                digest: pinned.digest().cloned().expect("digest"),
                media_type: OCI_INDEX.to_owned(),
                size: 0,
            },
            BUNDLE_MEDIA_TYPE,
            &[Layer {
                media_type: BUNDLE_MEDIA_TYPE.to_owned(),
                data: std::fs::read(sigstore_data().join(file)).expect("bundle"),
                annotations: std::collections::BTreeMap::new(),
            }],
            &std::collections::BTreeMap::new(),
        )
        .await
        .expect("push the bundle as a referrer");
    image
}

/// A public keyless SLSA v1 attestation (sigstore-conformance's in-toto-in-DSSE bundle: GitHub
/// artifact attestations' provenance, signed through Fulcio and logged in Rekor) stored as a
/// referrer on the real registry holds for `slipway-audit verify-attestation` keyless with its
/// identity, issuer, builder, source repository and ref; a wrong identity, issuer or ref exits 1
/// naming what did not match; with a key nothing verifies.
#[tokio::test]
async fn a_public_keyless_attestation_verifies_with_verify_attestation() {
    const DIGEST: &str = "sha256:a0cfc71271d6e278e57cd332ff957c3f7043fdda354c4cbb190a30d56efa01bf";
    const IDENTITY: &str = "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/.github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main";
    const ISSUER: &str = "https://token.actions.githubusercontent.com";
    const BUILDER_ID: &str =
        "https://github.com/loosebazooka/aa-test/.github/workflows/provenance.yaml@refs/heads/main";
    let test = "a_public_keyless_attestation_verifies_with_verify_attestation";
    let Some(registry) = service(REGISTRY_ENV, test) else {
        return;
    };
    let image = push_public_bundle(
        &registry,
        "conformance-dsse",
        DIGEST,
        "conformance-intoto-in-dsse-v3.bundle.json",
    )
    .await;
    let root = sigstore_data()
        .join("trusted_root.prod.json")
        .display()
        .to_string();
    let verify = |trust: &[&str], source_ref: &str, format: &str| {
        output(
            command("slipway-audit")
                .env("SLIPWAY_SIGNING__TRUSTED_ROOT", &root)
                .args(["verify-attestation", "--no-config", "--output", format])
                .args(trust)
                .args([
                    "--type",
                    "slsaprovenance",
                    "--builder-id",
                    BUILDER_ID,
                    "--source-repo",
                    "https://github.com/loosebazooka/aa-test",
                    "--source-ref",
                    source_ref,
                    "--allow-insecure-registry",
                    registry.as_str(),
                    &image,
                ]),
        )
    };
    let keyless = [
        "--certificate-identity",
        IDENTITY,
        "--certificate-oidc-issuer",
        ISSUER,
    ];
    let holds = verify(&keyless, "refs/heads/main", "text");
    assert_eq!(holds.code, 0, "{holds:?}");
    assert!(
        holds.stdout.contains("pass  #0 (Sigstore bundle sha256:")
            && holds.stdout.contains(&format!(
                "provenance signed by {IDENTITY} (issuer {ISSUER})"
            )),
        "{}",
        holds.stdout
    );
    let json = verify(&keyless, "refs/heads/main", "json");
    assert_eq!(json.code, 0, "{json:?}");
    valid_against("slipway-audit", "verify-attestation", &json.stdout);
    let document: serde_json::Value = serde_json::from_str(&json.stdout).expect("json");
    assert_eq!(document["keyless"]["certificate_identity"], IDENTITY);
    assert_eq!(
        document["attestations"][0]["provenance"]["source_ref"],
        "refs/heads/main"
    );

    let regexp = verify(
        &[
            "--certificate-identity-regexp",
            "^https://github.com/sigstore-conformance/",
            "--certificate-oidc-issuer-regexp",
            "^https://token\\.actions\\.githubusercontent\\.com$",
        ],
        "refs/heads/main",
        "text",
    );
    assert_eq!(regexp.code, 0, "{regexp:?}");

    let stranger = "https://github.com/acme/iris/.github/workflows/build.yml@refs/heads/main";
    let failing: [(&str, Vec<&str>, &str, &str); 3] = [
        (
            "another identity",
            vec![
                "--certificate-identity",
                stranger,
                "--certificate-oidc-issuer",
                ISSUER,
            ],
            "refs/heads/main",
            stranger,
        ),
        (
            "another issuer",
            vec![
                "--certificate-identity",
                IDENTITY,
                "--certificate-oidc-issuer",
                "https://accounts.google.com",
            ],
            "refs/heads/main",
            "https://accounts.google.com",
        ),
        (
            "another source ref",
            keyless.to_vec(),
            "refs/heads/release",
            "source ref `refs/heads/main` is not the expected `refs/heads/release`",
        ),
    ];
    for (case, trust, source_ref, named) in failing {
        let out = verify(&trust, source_ref, "text");
        assert_eq!(out.code, 1, "{case}: {out:?}");
        assert!(
            out.stdout.contains("fail  #0 (Sigstore bundle") && out.stdout.contains(named),
            "{case}: `{named}` in {}",
            out.stdout
        );
    }
}

/// `attest --bundle` writes the attestation as cosign v3 does (a key-signed bundle among the
/// image's referrers, next to a `sign --bundle` signature); `verify-attestation --key` finds it
/// there, the image signature is not taken for an attestation, and another key fails.
#[test]
fn attest_bundle_is_verified_from_the_referrers() {
    let test = "attest_bundle_is_verified_from_the_referrers";
    let Some(registry) = service(REGISTRY_ENV, test) else {
        return;
    };
    let dir = tempfile::tempdir().expect("dir");
    let keys = keys(dir.path());
    let repository = format!("slipway-test/{}", unique("attest-bundle"));
    push(&registry, &repository, "3.0.0", dir.path());
    let image = format!("{registry}/{repository}:3.0.0");
    let path = |path: &PathBuf| path.display().to_string();
    let go = |binary: &str, args: &[&str]| {
        run(
            binary,
            dir.path(),
            &[args, &["--allow-insecure-registry", registry.as_str()]].concat(),
        )
    };
    let signed = go(
        "slipway-deploy",
        &[
            "sign",
            "--no-config",
            "--bundle",
            "--key",
            &path(&keys.deploy.0),
            &image,
        ],
    );
    assert_eq!(signed.code, 0, "{signed:?}");
    let attested = go(
        "slipway-deploy",
        &[
            "attest",
            "--no-config",
            "--output",
            "json",
            "--bundle",
            "--key",
            &path(&keys.build.0),
            "--type",
            "slsaprovenance",
            "--builder-id",
            BUILDER,
            "--source-repo",
            SOURCE,
            "--source-ref",
            "refs/heads/main",
            "--source-commit",
            "0123456789abcdef0123456789abcdef01234567",
            &image,
        ],
    );
    assert_eq!(attested.code, 0, "{attested:?}");
    valid_against("slipway-deploy", "attest", &attested.stdout);
    let document: serde_json::Value = serde_json::from_str(&attested.stdout).expect("json");
    assert_eq!(
        document["attestations"], 2,
        "the signature and the attestation"
    );
    assert!(
        document["bundle"]
            .as_str()
            .is_some_and(|d| d.starts_with("sha256:")),
        "{document}"
    );

    let verify = |key: &PathBuf| {
        go(
            "slipway-audit",
            &[
                "verify-attestation",
                "--no-config",
                "--key",
                &path(key),
                "--type",
                "slsaprovenance",
                "--builder-id",
                BUILDER,
                "--source-repo",
                SOURCE,
                "--source-ref",
                "refs/heads/main",
                &image,
            ],
        )
    };
    let holds = verify(&keys.build.1);
    assert_eq!(holds.code, 0, "{holds:?}");
    // One row: the signature bundle is not an attestation.
    assert_eq!(
        holds.stdout.matches("Sigstore bundle").count(),
        1,
        "{}",
        holds.stdout
    );
    assert!(holds.stdout.contains("pass  #"), "{}", holds.stdout);
    let wrong = verify(&keys.deploy.1);
    assert_eq!(wrong.code, 1, "{wrong:?}");
    assert!(
        wrong
            .stdout
            .contains("does not verify with any of the 1 trusted key"),
        "{}",
        wrong.stdout
    );
}
