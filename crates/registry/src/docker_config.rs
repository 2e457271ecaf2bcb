//! Registry credentials the way docker and cosign users already have them: `config.json` in
//! `$DOCKER_CONFIG` or `~/.docker`, with `auths` entries, per-registry `credHelpers` and a default
//! `credsStore`, both run as `docker-credential-<name> get` programs.
//!
//! The config directory is passed in explicitly ([`DockerConfig::load`]): the binaries compute it
//! with [`default_config_dir`], tests use temp directories. Lookup order follows docker: a
//! `credHelpers` entry for the registry, then an `auths` entry with credentials, then `credsStore`.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use slipway_core::Secret;

use crate::Error;

/// The environment variable docker reads for its config directory.
pub const DOCKER_CONFIG_ENV: &str = "DOCKER_CONFIG";

/// The key docker uses for Docker Hub in `auths` and with credential helpers.
const DOCKER_HUB_KEY: &str = "https://index.docker.io/v1/";

/// Credentials for one registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// Username and password (or a registry-issued token used as a password).
    Basic {
        /// The user.
        username: String,
        /// The password.
        password: Secret,
    },
    /// A bearer token sent as is (`registrytoken` in `config.json`).
    Bearer(Secret),
}

/// The config directory docker would use: `$DOCKER_CONFIG`, else `$HOME/.docker`.
/// The binaries pass `std::env::var_os(DOCKER_CONFIG_ENV)` and the home directory.
pub fn default_config_dir(
    docker_config: Option<OsString>,
    home: Option<PathBuf>,
) -> Option<PathBuf> {
    match docker_config {
        Some(dir) if !dir.is_empty() => Some(PathBuf::from(dir)),
        _ => home.map(|home| home.join(".docker")),
    }
}

#[derive(Debug, Default, serde::Deserialize)]
struct ConfigFile {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
    #[serde(default, rename = "credHelpers")]
    cred_helpers: BTreeMap<String, String>,
    #[serde(default, rename = "credsStore")]
    creds_store: Option<String>,
}

#[derive(Debug, Default, serde::Deserialize)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    identitytoken: Option<String>,
    #[serde(default)]
    registrytoken: Option<String>,
}

#[derive(Debug, serde::Deserialize)]
struct HelperOutput {
    #[serde(rename = "Username", default)]
    username: String,
    #[serde(rename = "Secret", default)]
    secret: String,
}

/// A parsed docker `config.json` (or none: anonymous access everywhere).
#[derive(Debug, Default)]
pub struct DockerConfig {
    path: Option<PathBuf>,
    file: ConfigFile,
    helper_dirs: Option<Vec<PathBuf>>,
}

impl DockerConfig {
    /// No credentials at all.
    pub fn empty() -> DockerConfig {
        DockerConfig::default()
    }

    /// Reads `dir/config.json`. A missing file means no credentials, as for docker.
    pub fn load(dir: &Path) -> Result<DockerConfig, Error> {
        let path = dir.join("config.json");
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                return Ok(DockerConfig {
                    path: Some(path),
                    ..DockerConfig::default()
                });
            }
            Err(err) => {
                return Err(Error::Credentials {
                    registry: "*".to_owned(),
                    message: format!("cannot read `{}`: {err}", path.display()),
                });
            }
        };
        let file: ConfigFile = serde_json::from_str(&text).map_err(|err| Error::Credentials {
            registry: "*".to_owned(),
            message: format!("`{}` is not a docker config file: {err}\n\nhint: it should be the JSON file `docker login` writes", path.display()),
        })?;
        Ok(DockerConfig {
            path: Some(path),
            file,
            helper_dirs: None,
        })
    }

    /// Looks credential helpers (`docker-credential-<name>`) up in these directories instead of
    /// `PATH`.
    #[must_use]
    pub fn helper_dirs(mut self, dirs: Vec<PathBuf>) -> DockerConfig {
        self.helper_dirs = Some(dirs);
        self
    }

    /// Where the credentials came from, for messages: the config file path.
    pub fn source(&self) -> String {
        self.path.as_ref().map_or_else(
            || "no docker config".to_owned(),
            |path| path.display().to_string(),
        )
    }

    /// The credentials for `registry` (`host[:port]`), or `None` for anonymous access.
    pub fn credentials(&self, registry: &str) -> Result<Option<Credential>, Error> {
        let key = normalise(registry);
        if let Some(helper) = self
            .file
            .cred_helpers
            .iter()
            .find(|(name, _)| normalise(name) == key)
            .map(|(_, helper)| helper)
        {
            return self.run_helper(helper, registry);
        }
        let entry = self
            .file
            .auths
            .iter()
            .find(|(name, _)| normalise(name) == key)
            .map(|(_, entry)| entry);
        if let Some(credential) = entry
            .map(|entry| from_entry(registry, entry))
            .transpose()?
            .flatten()
        {
            return Ok(Some(credential));
        }
        match &self.file.creds_store {
            Some(store) if !store.is_empty() => self.run_helper(store, registry),
            _ => Ok(None),
        }
    }

    fn run_helper(&self, helper: &str, registry: &str) -> Result<Option<Credential>, Error> {
        let program = format!("docker-credential-{helper}");
        let fail = |message: String| Error::Credentials {
            registry: registry.to_owned(),
            message,
        };
        let path = match &self.helper_dirs {
            Some(dirs) => dirs
                .iter()
                .map(|dir| dir.join(&program))
                .find(|path| path.is_file())
                .unwrap_or_else(|| PathBuf::from(&program)),
            None => PathBuf::from(&program),
        };
        let server_url = if normalise(registry) == normalise(DOCKER_HUB_KEY) {
            DOCKER_HUB_KEY.to_owned()
        } else {
            registry.to_owned()
        };
        let mut child = Command::new(&path)
            .arg("get")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|err| fail(format!("cannot run credential helper `{program}` ({err})\n\nhint: install it, or remove `{helper}` from {}", self.source())))?;
        if let Some(mut stdin) = child.stdin.take() {
            // A helper that exits before reading its input closes the pipe; its exit status
            // and output below say why, so a broken pipe is not the error to report.
            match stdin.write_all(server_url.as_bytes()) {
                Err(err) if err.kind() != std::io::ErrorKind::BrokenPipe => {
                    return Err(fail(format!("cannot talk to `{program}`: {err}")));
                }
                _ => {}
            }
        }
        let output = child
            .wait_with_output()
            .map_err(|err| fail(format!("`{program}` failed: {err}")))?;
        if !output.status.success() {
            let said = String::from_utf8_lossy(&output.stdout);
            // The helper protocol's "no credentials" answer: anonymous access, not an error.
            if said.contains("credentials not found") {
                return Ok(None);
            }
            let stderr = String::from_utf8_lossy(&output.stderr);
            return Err(fail(format!(
                "`{program} get` failed ({}): {}",
                output.status,
                first_line(&stderr).unwrap_or_else(|| first_line(&said).unwrap_or_default())
            )));
        }
        let answer: HelperOutput = serde_json::from_slice(&output.stdout).map_err(|err| {
            fail(format!(
                "`{program} get` did not answer with credentials JSON ({err})"
            ))
        })?;
        if answer.username == "<token>" {
            return Err(fail(format!(
                "`{program}` returned an identity token, which Slipway does not support\n\nhint: use a username and password or a registry token"
            )));
        }
        if answer.username.is_empty() && answer.secret.is_empty() {
            return Ok(None);
        }
        Ok(Some(Credential::Basic {
            username: answer.username,
            password: Secret::new(answer.secret),
        }))
    }
}

fn first_line(text: &str) -> Option<String> {
    text.lines()
        .map(str::trim)
        .find(|line| !line.is_empty())
        .map(str::to_owned)
}

fn from_entry(registry: &str, entry: &AuthEntry) -> Result<Option<Credential>, Error> {
    let fail = |message: String| Error::Credentials {
        registry: registry.to_owned(),
        message,
    };
    if let Some(token) = entry
        .registrytoken
        .as_deref()
        .filter(|token| !token.is_empty())
    {
        return Ok(Some(Credential::Bearer(Secret::new(token))));
    }
    if entry
        .identitytoken
        .as_deref()
        .is_some_and(|token| !token.is_empty())
    {
        return Err(fail("the docker config holds an identity token, which Slipway does not support\n\nhint: log in with a username and password or a registry token".to_owned()));
    }
    if let Some(auth) = entry.auth.as_deref().filter(|auth| !auth.is_empty()) {
        let decoded = STANDARD
            .decode(auth.trim())
            .map_err(|_| fail("the `auth` field is not base64".to_owned()))?;
        let decoded = String::from_utf8(decoded)
            .map_err(|_| fail("the `auth` field is not UTF-8".to_owned()))?;
        let Some((username, password)) = decoded.split_once(':') else {
            return Err(fail(
                "the `auth` field is not base64 of `user:password`".to_owned(),
            ));
        };
        return Ok(Some(Credential::Basic {
            username: username.to_owned(),
            password: Secret::new(password),
        }));
    }
    match (&entry.username, &entry.password) {
        (Some(username), Some(password)) if !username.is_empty() => Ok(Some(Credential::Basic {
            username: username.clone(),
            password: Secret::new(password.clone()),
        })),
        _ => Ok(None),
    }
}

/// A registry key as docker matches it: no scheme, no path, Docker Hub's aliases folded.
fn normalise(key: &str) -> String {
    let host = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    let host = host.split('/').next().unwrap_or(host).to_ascii_lowercase();
    match host.as_str() {
        "docker.io" | "index.docker.io" | "registry-1.docker.io" => "index.docker.io".to_owned(),
        _ => host,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(json: &str) -> (tempfile::TempDir, DockerConfig) {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("config.json"), json).expect("write");
        let config = DockerConfig::load(dir.path()).expect("load");
        (dir, config)
    }

    fn basic(user: &str, password: &str) -> Option<Credential> {
        Some(Credential::Basic {
            username: user.to_owned(),
            password: Secret::new(password),
        })
    }

    #[test]
    fn auths_entries_match_docker_keys() {
        let alice = STANDARD.encode("alice:pa:ss");
        let (_dir, config) = config(&format!(
            r#"{{"auths": {{
                "https://index.docker.io/v1/": {{"auth": "{alice}"}},
                "http://127.0.0.1:5000/v2/": {{"username": "bob", "password": "pw"}},
                "ghcr.io": {{"registrytoken": "tok"}},
                "quay.io": {{}}
            }}}}"#
        ));
        let cases = [
            ("docker.io", basic("alice", "pa:ss")),
            ("registry-1.docker.io", basic("alice", "pa:ss")),
            ("127.0.0.1:5000", basic("bob", "pw")),
            ("127.0.0.1:5001", None),
            ("ghcr.io", Some(Credential::Bearer(Secret::new("tok")))),
            ("quay.io", None),
        ];
        for (registry, expected) in cases {
            assert_eq!(
                config.credentials(registry).expect(registry),
                expected,
                "{registry}"
            );
        }
    }

    #[test]
    fn missing_file_is_anonymous_and_garbage_is_an_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(
            DockerConfig::load(dir.path())
                .expect("load")
                .credentials("ghcr.io")
                .expect("lookup"),
            None
        );
        std::fs::write(dir.path().join("config.json"), "{not json").expect("write");
        let err = DockerConfig::load(dir.path()).expect_err("garbage");
        assert!(
            err.to_string().contains("is not a docker config file"),
            "{err}"
        );
        let (_dir, bad) = config(r#"{"auths": {"ghcr.io": {"auth": "%%%"}}}"#);
        assert!(
            bad.credentials("ghcr.io")
                .expect_err("bad")
                .to_string()
                .contains("not base64")
        );
        let (_dir, identity) = config(r#"{"auths": {"ghcr.io": {"identitytoken": "x"}}}"#);
        assert!(
            identity
                .credentials("ghcr.io")
                .expect_err("identity")
                .to_string()
                .contains("identity token")
        );
    }

    fn helper(dir: &Path, name: &str, script: &str) {
        use std::os::unix::fs::PermissionsExt as _;
        let path = dir.join(format!("docker-credential-{name}"));
        std::fs::write(&path, format!("#!/bin/sh\n{script}\n")).expect("write helper");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }

    #[test]
    fn cred_helpers_win_over_auths_and_creds_store_is_the_fallback() {
        let bin = tempfile::tempdir().expect("tempdir");
        // The helper echoes the server URL it was asked about, so the test sees what it received.
        helper(
            bin.path(),
            "per",
            r#"read url; echo "{\"ServerURL\":\"$url\",\"Username\":\"per-$url\",\"Secret\":\"s1\"}""#,
        );
        helper(
            bin.path(),
            "store",
            r#"read url; if [ "$url" = "none.io" ]; then echo "credentials not found in native keychain"; exit 1; fi; echo "{\"Username\":\"store-$url\",\"Secret\":\"s2\"}""#,
        );
        helper(bin.path(), "broken", "echo 'boom' >&2; exit 3");
        let (_dir, config) = config(
            r#"{"auths": {"ghcr.io": {"username": "file", "password": "x"}},
                "credHelpers": {"ghcr.io": "per", "docker.io": "per", "bad.io": "broken", "gone.io": "absent"},
                "credsStore": "store"}"#,
        );
        let config = config.helper_dirs(vec![bin.path().to_owned()]);
        assert_eq!(
            config.credentials("ghcr.io").expect("helper"),
            basic("per-ghcr.io", "s1")
        );
        assert_eq!(
            config.credentials("docker.io").expect("hub"),
            basic("per-https://index.docker.io/v1/", "s1")
        );
        assert_eq!(
            config.credentials("quay.io").expect("store"),
            basic("store-quay.io", "s2")
        );
        assert_eq!(config.credentials("none.io").expect("not found"), None);
        let broken = config
            .credentials("bad.io")
            .expect_err("broken")
            .to_string();
        assert!(
            broken.contains("docker-credential-broken get` failed") && broken.contains("boom"),
            "{broken}"
        );
        let absent = config
            .credentials("gone.io")
            .expect_err("absent")
            .to_string();
        assert!(
            absent.contains("cannot run credential helper `docker-credential-absent`"),
            "{absent}"
        );
    }

    #[test]
    fn default_dir_prefers_docker_config() {
        assert_eq!(
            default_config_dir(Some("/cfg".into()), Some("/home/u".into())),
            Some(PathBuf::from("/cfg"))
        );
        assert_eq!(
            default_config_dir(Some("".into()), Some("/home/u".into())),
            Some(PathBuf::from("/home/u/.docker"))
        );
        assert_eq!(default_config_dir(None, None), None);
    }

    #[test]
    fn secrets_stay_out_of_debug() {
        let text = format!("{:?}", basic("u", "hunter2"));
        assert!(!text.contains("hunter2"), "{text}");
    }
}
