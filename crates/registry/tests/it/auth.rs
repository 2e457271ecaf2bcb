//! A real registry with htpasswd (basic) auth, started by the test from the `docker-registry`
//! binary on a free port and killed by a drop guard. Credentials come from a docker config in a
//! temp directory, directly or through a `docker-credential-*` helper.

use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use slipway_core::ImageRef;
use slipway_registry::testing::{CI_ENV, OciLayout, linux_amd64, skopeo_push};
use slipway_registry::{
    Artifact, DockerConfig, Error, Layer, OciRegistry, Registry, RegistryConfig,
};

const USER: &str = "slipway";
/// The password whose bcrypt hash is in tests/data/htpasswd.
const PASSWORD: &str = "s3cret-test";

/// A `docker-registry` child process; killed on drop.
struct AuthRegistry {
    child: Child,
    addr: String,
    _dir: tempfile::TempDir,
}

impl Drop for AuthRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl AuthRegistry {
    // A skipped test says why on stderr, as the services helpers do.
    #[allow(clippy::print_stderr)]
    fn start(test: &str) -> Option<AuthRegistry> {
        let Ok(binary) = which("docker-registry") else {
            assert!(
                std::env::var_os(CI_ENV).is_none(),
                "{test}: `docker-registry` is not installed\n\nhint: run `cargo xtask services`"
            );
            eprintln!(
                "skipping {test}: `docker-registry` is not installed (run `cargo xtask services`)"
            );
            return None;
        };
        let dir = tempfile::tempdir().expect("tempdir");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .expect("bind")
            .local_addr()
            .expect("addr")
            .port();
        let htpasswd = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/htpasswd");
        let config = format!(
            "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\nauth:\n  htpasswd:\n    realm: slipway-test\n    path: {}\n",
            dir.path().join("data").display(),
            htpasswd.display()
        );
        std::fs::write(dir.path().join("config.yml"), config).expect("config");
        let child = Command::new(binary)
            .arg("serve")
            .arg(dir.path().join("config.yml"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn docker-registry");
        let registry = AuthRegistry {
            child,
            addr: format!("127.0.0.1:{port}"),
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(&registry.addr).is_err() {
            assert!(
                Instant::now() < deadline,
                "docker-registry did not start on {}",
                registry.addr
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(registry)
    }
}

fn which(program: &str) -> Result<std::path::PathBuf, ()> {
    let path = std::env::var_os("PATH").ok_or(())?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
        .ok_or(())
}

fn docker_config(json: &str) -> (tempfile::TempDir, DockerConfig) {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("config.json"), json).expect("write");
    let config = DockerConfig::load(dir.path()).expect("load");
    (dir, config)
}

fn client(addr: &str, credentials: DockerConfig) -> OciRegistry {
    OciRegistry::new(
        RegistryConfig::default()
            .insecure(addr)
            .retries(1, Duration::from_millis(10)),
        credentials,
    )
    .expect("client")
}

/// Pushes one image with skopeo (with credentials) and returns its reference.
fn push_image(registry: &AuthRegistry) -> (ImageRef, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut layout = OciLayout::create(dir.path()).expect("layout");
    let written = layout.image("auth", &linux_amd64()).expect("image");
    layout.tag("v1", &written).expect("tag");
    let status = Command::new("skopeo")
        .args([
            "copy",
            "--quiet",
            "--dest-tls-verify=false",
            "--dest-creds",
            &format!("{USER}:{PASSWORD}"),
        ])
        .arg(format!("oci:{}:v1", dir.path().display()))
        .arg(format!("docker://{}/app:v1", registry.addr))
        .status()
        .expect("skopeo");
    assert!(status.success(), "skopeo push with credentials");
    // The same push without credentials is refused, so the registry really enforces auth.
    assert!(skopeo_push(&layout, "v1", &registry.addr, "app:anonymous").is_err());
    (
        ImageRef::parse(&format!("{}/app:v1", registry.addr)).expect("ref"),
        dir,
    )
}

#[tokio::test]
async fn basic_auth_with_docker_config_credentials() {
    let Some(registry) = AuthRegistry::start("basic_auth_with_docker_config_credentials") else {
        return;
    };
    let (image, _layout) = push_image(&registry);

    let err = client(&registry.addr, DockerConfig::empty())
        .resolve(&image)
        .await
        .expect_err("anonymous");
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
        err.to_string().starts_with(&format!(
            "resolve `{image}`: the registry refused access (401)"
        )),
        "{err}"
    );
    assert!(err.to_string().contains("hint: no credentials"), "{err}");

    let (_dir, wrong) = docker_config(&format!(
        r#"{{"auths":{{"{}":{{"username":"{USER}","password":"wrong"}}}}}}"#,
        registry.addr
    ));
    let err = client(&registry.addr, wrong)
        .resolve(&image)
        .await
        .expect_err("wrong password");
    assert!(
        matches!(
            err,
            Error::Unauthorized {
                had_credentials: true,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("were refused"), "{err}");
    assert!(
        !format!("{err:?}{err}").contains("wrong"),
        "the password never shows: {err:?}"
    );

    let (_dir, right) = docker_config(&format!(
        r#"{{"auths":{{"http://{}":{{"username":"{USER}","password":"{PASSWORD}"}}}}}}"#,
        registry.addr
    ));
    let authed = client(&registry.addr, right);
    let resolved = authed
        .resolve(&image)
        .await
        .expect("resolve with credentials");
    // Writing needs the push scope too.
    let pinned = image.with_digest(resolved.digest.clone());
    let artifact = Artifact {
        layers: vec![Layer {
            media_type: "text/plain".into(),
            data: b"hello".to_vec(),
            annotations: Default::default(),
        }],
    };
    authed
        .put_artifact(&pinned, &resolved.digest.cosign_tag("att"), &artifact)
        .await
        .expect("push with credentials");
    assert_eq!(
        authed
            .get_artifact(&pinned, &resolved.digest.cosign_tag("att"))
            .await
            .expect("read"),
        Some(artifact)
    );
}

#[tokio::test]
async fn credentials_from_a_credential_helper() {
    use std::os::unix::fs::PermissionsExt as _;
    let Some(registry) = AuthRegistry::start("credentials_from_a_credential_helper") else {
        return;
    };
    let (image, _layout) = push_image(&registry);
    let bin = tempfile::tempdir().expect("tempdir");
    let helper = bin.path().join("docker-credential-slipwaytest");
    std::fs::write(&helper, format!("#!/bin/sh\nread url\necho '{{\"ServerURL\":\"'$url'\",\"Username\":\"{USER}\",\"Secret\":\"{PASSWORD}\"}}'\n")).expect("helper");
    std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let (_dir, config) = docker_config(&format!(
        r#"{{"credHelpers":{{"{}":"slipwaytest"}}}}"#,
        registry.addr
    ));
    let resolved = client(
        &registry.addr,
        config.helper_dirs(vec![bin.path().to_owned()]),
    )
    .resolve(&image)
    .await
    .expect("resolve via helper");
    assert_eq!(resolved.index_digest, None);
}
