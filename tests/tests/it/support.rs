//! Shared plumbing: the services from `cargo xtask services`, the built binaries, unique names.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

/// Set by CI systems: a missing service is then a failure, not a skip.
pub(crate) const CI: &str = "CI";
/// The registry's `host:port`.
pub(crate) const REGISTRY_ENV: &str = "SLIPWAY_TEST_REGISTRY";
/// MLflow's base URL.
pub(crate) const MLFLOW_ENV: &str = "SLIPWAY_TEST_MLFLOW";
/// The services' Prometheus. The stories start their own over a known history instead (see
/// `prometheus.rs`), but need the same binaries, which `cargo xtask services` installs.
pub(crate) const PROMETHEUS_ENV: &str = "SLIPWAY_TEST_PROMETHEUS";

/// The value of a service variable, or `None` after saying why the test skips. Under CI a
/// missing service fails the test: a silent skip would hide a broken setup.
#[allow(clippy::print_stderr, reason = "a skipped test must say why")]
pub(crate) fn service(var: &str, test: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(value) if !value.trim().is_empty() => Some(value.trim().to_owned()),
        _ if std::env::var_os(CI).is_some() => panic!(
            "{test}: {var} is not set, and CI is\n\nhint: run `cargo xtask services` and `source target/services/env`"
        ),
        _ => {
            eprintln!("skipping {test}: {var} is not set (run `cargo xtask services`)");
            None
        }
    }
}

/// A name unique to this process and call.
pub(crate) fn unique(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_millis())
        .unwrap_or(0);
    format!(
        "{prefix}-{}-{nanos}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// Path of a workspace binary (`slipway-deploy`, …) built next to this test executable:
/// `target/<profile>/deps/it-<hash>` → `target/<profile>/<name>`.
pub(crate) fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test executable's path");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("the test executable lives in target/<profile>/deps");
    let path = profile_dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.is_file(),
        "`{}` is not built\n\nhint: run `cargo test --workspace` (it builds the binaries first), or `cargo build -p {name}` before `cargo test -p slipway-tests`",
        path.display()
    );
    path
}

/// The workspace root (the `tests` package sits one level below it).
pub(crate) fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_owned()
}

/// What a binary printed.
#[derive(Debug)]
pub(crate) struct Output {
    pub(crate) code: i32,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

/// A command for `name` with none of the caller's `SLIPWAY_*`, `MLFLOW_*`, `GITHUB_*` or
/// `DOCKER_CONFIG` variables, so a test sees only what it sets.
pub(crate) fn command(name: &str) -> Command {
    let mut command = Command::new(binary(name));
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy().into_owned();
        if key.starts_with("SLIPWAY_")
            || key.starts_with("MLFLOW_")
            || key.starts_with("GITHUB_")
            || key == "DOCKER_CONFIG"
            || key == "COSIGN_PASSWORD"
        {
            command.env_remove(key);
        }
    }
    command.env("USER", "release-bot");
    command
}

/// Runs a command to completion.
pub(crate) fn output(command: &mut Command) -> Output {
    let output = command
        .output()
        .unwrap_or_else(|err| panic!("cannot run {command:?}: {err}"));
    Output {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Pushes a candidate image `REGISTRY/REPOSITORY:1.5.0` to the real registry and writes a clean
/// Trivy report about its digest to `dir/trivy.json`. Returns the digest.
pub(crate) fn candidate_image(registry: &str, repository: &str, dir: &Path) -> String {
    use slipway_registry::testing::{OciLayout, linux_amd64, skopeo_digest, skopeo_push};
    let mut layout = OciLayout::create(&dir.join("layout")).expect("layout");
    let written = layout
        .image(&format!("{repository}-candidate"), &linux_amd64())
        .expect("image");
    layout.tag("1.5.0", &written).expect("tag");
    skopeo_push(&layout, "1.5.0", registry, &format!("{repository}:1.5.0")).expect("push");
    let digest = skopeo_digest(registry, &format!("{repository}:1.5.0")).expect("digest");
    let report = serde_json::json!({
        "SchemaVersion": 2,
        "ArtifactName": format!("{registry}/{repository}@{digest}"),
        "ArtifactType": "container_image",
        "Metadata": {"RepoDigests": [format!("{registry}/{repository}@{digest}")]},
        "Results": [{"Target": "iris-server (alpine 3.20)", "Class": "os-pkgs", "Vulnerabilities": []}],
    });
    std::fs::write(dir.join("trivy.json"), report.to_string()).expect("trivy report");
    digest.to_string()
}
