//! Which Sigstore trusted root keyless verification uses, the built-in one, and its refresh
//! through sigstore's TUF repository.
//!
//! **Which root.** In this order, and always named in the output ([`RootSource`]):
//! 1. `[signing] trusted_root`, a file the operator pins ([`RootSource::Configured`]);
//! 2. the root `slipway-audit trusted-root refresh` wrote in the Slipway cache directory
//!    ([`refreshed_root_path`], [`RootSource::Refreshed`]);
//! 3. the root built into the binary ([`BUILTIN_TRUSTED_ROOT`], [`RootSource::BuiltIn`]): the
//!    public-good instance's, as sigstore-python 4.5.1 ships it (`data/SOURCES.md`).
//!
//! A refreshed root that exists (or may: see [`RootSource::select`]) but cannot be read or
//! parsed, or is not the target the refresh's TUF metadata lists
//! ([`refreshed_root_matches_metadata`]), is an error naming it, never a silent fall back to the
//! built-in one: the refreshed root may hold keys the built-in lacks, or lack a key that was
//! withdrawn, and a verification must not quietly change what it trusts.
//!
//! **Mirror URLs** are parsed and normalised ([`reqwest::Url`]) and their userinfo kept apart:
//! the datastore is keyed, and the mirror named in every output and error, by the URL without
//! userinfo; the credentials go only to the mirror's origin, as HTTP basic auth.
//! This crate takes paths; the cache directory is resolved from the environment by `slipway-cli`.
//!
//! **Refresh** ([`refresh`]): a real TUF client update with `tough` (the crate and version
//! sigstore 0.15's own TUF feature uses), from a mirror (default [`SIGSTORE_TUF_MIRROR`]) and a
//! trust anchor (default the TUF `root.json` of the last refresh from that mirror when there is
//! one, else [`SIGSTORE_TUF_ROOT`]). TUF walks from the anchor to the newest root version, each
//! signed by a threshold of the previous one's keys, so an expired anchor is fine and only the
//! newest root must be unexpired (tough's `load_root`, TUF 5.3). tough's datastore (the last
//! trusted root, timestamp, snapshot and targets) is kept per mirror under the cache directory,
//! so a later refresh refuses older metadata (rollback). The `trusted_root.json` target is read
//! (its length and sha256 checked against the signed targets metadata), parsed with
//! [`TrustedRoot::from_json`], and only then written, by temp file and rename: a refresh that
//! does not verify leaves the previous root as it was.
//!
//! **Never fetched during a release.** Nothing in `verify-image`, `verify-attestation`, `run`
//! or any release command calls [`refresh`]: verification reads files only, so a release's
//! outcome never depends on a TUF mirror being reachable, and what it trusted is on disk to
//! inspect. Refreshing is a step of its own (`trusted-root refresh` in CI before verification).
//!
//! The transport is ours ([`MirrorTransport`]): `file://` through tough's own, `http(s)://`
//! over the workspace's reqwest client, instead of tough's `http` feature (which brings a second
//! TLS verifier stack for the same job).

use std::fmt;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use sha2::Digest as _;

use crate::bundle::TrustedRoot;

/// The public-good Sigstore trusted root built into Slipway (`data/trusted_root.json`).
pub const BUILTIN_TRUSTED_ROOT: &[u8] = include_bytes!("../data/trusted_root.json");
/// The TUF `root.json` (version 15) of sigstore's TUF repository: the trust anchor of
/// [`refresh`] from [`SIGSTORE_TUF_MIRROR`] (`data/sigstore-tuf-root.json`).
pub const SIGSTORE_TUF_ROOT: &[u8] = include_bytes!("../data/sigstore-tuf-root.json");
/// Sigstore's public TUF repository (metadata at the root, targets under `targets/`).
pub const SIGSTORE_TUF_MIRROR: &str = "https://tuf-repo-cdn.sigstore.dev";
/// The TUF target holding the trusted root.
pub const TRUSTED_ROOT_TARGET: &str = "trusted_root.json";
/// Where the built-in root comes from, in words.
pub const BUILTIN_ORIGIN: &str = "sigstore public-good instance, as sigstore-python 4.5.1 ships it";

/// The largest file fetched from a mirror over HTTP (tough applies its own, smaller, limits per
/// role and the signed length of each target on top).
const MAX_FETCH_BYTES: usize = 16 * 1024 * 1024;

/// Where the trusted root in use came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RootSource {
    /// `[signing] trusted_root`.
    Configured(PathBuf),
    /// Written by `slipway-audit trusted-root refresh` in the cache directory.
    Refreshed(PathBuf),
    /// Built into the binary ([`BUILTIN_TRUSTED_ROOT`]).
    BuiltIn,
}

impl RootSource {
    /// The root verification uses: `configured` when set, else the refreshed root in
    /// `cache_dir` unless that file certainly does not exist, else the built-in one. Looks only
    /// at whether the refreshed file exists; [`RootSource::read`] reads it. When existence
    /// cannot be told (a permission error on the directory, a symlink loop), or a dangling
    /// symlink stands in its place, the refreshed root is chosen, so the read fails naming the
    /// file instead of silently trusting the built-in root.
    pub fn select(configured: Option<&Path>, cache_dir: Option<&Path>) -> RootSource {
        if let Some(path) = configured {
            return RootSource::Configured(path.to_path_buf());
        }
        let Some(path) = cache_dir.map(refreshed_root_path) else {
            return RootSource::BuiltIn;
        };
        // `try_exists` follows symlinks: a dangling one is "absent", yet someone put a file
        // there, so `symlink_metadata` decides it.
        match path.try_exists() {
            Ok(false) if std::fs::symlink_metadata(&path).is_err() => RootSource::BuiltIn,
            _ => RootSource::Refreshed(path),
        }
    }

    /// `configured`, `refreshed` or `built-in`.
    pub fn kind(&self) -> &'static str {
        match self {
            RootSource::Configured(_) => "configured",
            RootSource::Refreshed(_) => "refreshed",
            RootSource::BuiltIn => "built-in",
        }
    }

    /// The file, for a configured or refreshed root.
    pub fn path(&self) -> Option<&Path> {
        match self {
            RootSource::Configured(path) | RootSource::Refreshed(path) => Some(path),
            RootSource::BuiltIn => None,
        }
    }

    /// The document's bytes: the file, or the built-in root. A refreshed root must also be the
    /// `trusted_root.json` target of TUF targets metadata a refresh kept beside it
    /// ([`refreshed_root_matches_metadata`]).
    pub fn read(&self) -> Result<Vec<u8>, crate::Error> {
        let Some(path) = self.path() else {
            return Ok(BUILTIN_TRUSTED_ROOT.to_vec());
        };
        let content = std::fs::read(path).map_err(|err| crate::Error::Key {
            key: path.display().to_string(),
            message: format!("cannot read the {self}: {err}\n\nhint: {}", self.hint()),
        })?;
        if let RootSource::Refreshed(path) = self
            && !refreshed_root_matches_metadata(path, &content)
        {
            return Err(crate::Error::Key {
                key: path.display().to_string(),
                message: format!(
                    "the {self} is not what a refresh verified: no TUF targets metadata in {} lists a `{TRUSTED_ROOT_TARGET}` of {} bytes with sha256 {} (written by hand, or changed since)\n\nhint: {}",
                    path.with_file_name("tuf").display(),
                    content.len(),
                    sha256_hex(&content),
                    self.hint()
                ),
            });
        }
        Ok(content)
    }

    /// Reads and parses the root.
    pub fn load(&self) -> Result<TrustedRoot, crate::Error> {
        self.parse(&self.read()?)
    }

    /// Parses `content`, read from this source, naming the source and its hint on an error.
    pub fn parse(&self, content: &[u8]) -> Result<TrustedRoot, crate::Error> {
        let name = match self.path() {
            Some(path) => path.display().to_string(),
            None => "the built-in trusted root".to_owned(),
        };
        TrustedRoot::from_json(&name, content).map_err(|err| match (self, err) {
            (RootSource::Refreshed(_), crate::Error::Key { key, message }) => crate::Error::Key {
                key,
                message: format!(
                    "{}\n\nhint: {}",
                    message.split("\n\nhint: ").next().unwrap_or_default(),
                    self.hint()
                ),
            },
            (_, err) => err,
        })
    }

    fn hint(&self) -> &'static str {
        match self {
            RootSource::Configured(_) => {
                "set `[signing] trusted_root` to a trusted_root.json, or unset it to use the refreshed or built-in root"
            }
            RootSource::Refreshed(_) => {
                "run `slipway-audit trusted-root refresh` again, or delete the file to use the built-in root"
            }
            RootSource::BuiltIn => "this is a bug; report it",
        }
    }
}

impl fmt::Display for RootSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RootSource::Configured(path) => {
                write!(
                    f,
                    "configured trusted root {} ([signing] trusted_root)",
                    path.display()
                )
            }
            RootSource::Refreshed(path) => write!(
                f,
                "refreshed trusted root {} (slipway-audit trusted-root refresh)",
                path.display()
            ),
            RootSource::BuiltIn => write!(f, "built-in trusted root ({BUILTIN_ORIGIN})"),
        }
    }
}

/// Whether the refreshed root at `path` (`CACHE/sigstore/trusted_root.json`) is, byte for byte
/// by length and sha256, the `trusted_root.json` target of the TUF targets metadata one of the
/// cache's datastores (`CACHE/sigstore/tuf/*/targets.json` or a delegated role's, which tough
/// kept after verifying them) lists.
///
/// This catches a file put there without a refresh (by hand, or a cache restored in part) or
/// changed since. It is not a signature check, and does not claim to be: whoever can write the
/// cache directory can write matching metadata too, so the cache must be as trusted as the
/// binary (README, "keyless"). Re-verifying the TUF chain here would need the mirror's expiry
/// rules offline and still trust the same directory.
pub fn refreshed_root_matches_metadata(path: &Path, content: &[u8]) -> bool {
    let Ok(datastores) = std::fs::read_dir(path.with_file_name("tuf")) else {
        return false;
    };
    let sha256 = sha256_hex(content);
    // targets.json, or a delegated role's metadata (tough keeps each under its role's name).
    let files = datastores
        .filter_map(Result::ok)
        .filter_map(|datastore| std::fs::read_dir(datastore.path()).ok())
        .flatten()
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|file| file.extension().is_some_and(|ext| ext == "json"));
    files.into_iter().any(|file| {
        let Ok(targets) = std::fs::read(&file) else {
            return false;
        };
        let Ok(targets) = serde_json::from_slice::<serde_json::Value>(&targets) else {
            return false;
        };
        let Some(target) = targets
            .get("signed")
            .and_then(|signed| signed.get("targets"))
            .and_then(|targets| targets.get(TRUSTED_ROOT_TARGET))
        else {
            return false;
        };
        target.get("length").and_then(serde_json::Value::as_u64) == Some(content.len() as u64)
            && target
                .pointer("/hashes/sha256")
                .and_then(serde_json::Value::as_str)
                .is_some_and(|hash| hash.eq_ignore_ascii_case(&sha256))
    })
}

/// The refreshed trusted root under a cache directory: `CACHE/sigstore/trusted_root.json`.
pub fn refreshed_root_path(cache_dir: &Path) -> PathBuf {
    cache_dir.join("sigstore").join(TRUSTED_ROOT_TARGET)
}

/// tough's datastore for one mirror: `CACHE/sigstore/tuf/<the mirror URL, percent-encoded>`,
/// as sigstore-python names its per-mirror folders.
pub fn tuf_datastore(cache_dir: &Path, mirror: &str) -> PathBuf {
    let mut name = String::new();
    for byte in mirror.trim_end_matches('/').bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' => name.push(byte as char),
            _ => name.push_str(&format!("%{byte:02X}")),
        }
    }
    cache_dir.join("sigstore").join("tuf").join(name)
}

/// Hex SHA-256 of a document.
pub fn sha256_hex(content: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(content))
}

// ---------------------------------------------------------------------------------------------
// What a trusted root lists
// ---------------------------------------------------------------------------------------------

/// A certificate or timestamp authority a trusted root lists.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Authority {
    /// `organization/commonName` of its subject.
    pub subject: String,
    /// Its URL.
    pub uri: Option<String>,
    /// `validFor.start` (RFC 3339).
    pub valid_from: Option<String>,
    /// `validFor.end` (RFC 3339); `None`: still valid.
    pub valid_until: Option<String>,
}

/// A transparency log (Rekor) or certificate-transparency log a trusted root lists.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Log {
    /// Its base URL.
    pub base_url: String,
    /// The log id (hex SHA-256 of its key).
    pub log_id: String,
    /// The key's `validFor.start`.
    pub valid_from: Option<String>,
    /// The key's `validFor.end`; `None`: still valid.
    pub valid_until: Option<String>,
}

/// What a trusted root lists, for people.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RootSummary {
    /// Fulcio certificate authorities.
    pub certificate_authorities: Vec<Authority>,
    /// Rekor transparency logs.
    pub tlogs: Vec<Log>,
    /// Certificate-transparency logs.
    pub ctlogs: Vec<Log>,
    /// RFC 3161 timestamp authorities.
    pub timestamp_authorities: Vec<Authority>,
}

impl RootSummary {
    /// Reads the lists of a trusted-root document (already accepted by
    /// [`TrustedRoot::from_json`]; fields it cannot read are left out).
    pub fn of(content: &[u8]) -> RootSummary {
        let value: serde_json::Value = serde_json::from_slice(content).unwrap_or_default();
        let text = |value: &serde_json::Value, pointer: &str| {
            value
                .pointer(pointer)
                .and_then(|v| v.as_str())
                .map(str::to_owned)
        };
        let list = |key: &str| {
            value
                .get(key)
                .and_then(|v| v.as_array())
                .cloned()
                .unwrap_or_default()
        };
        let authorities = |key: &str| {
            list(key)
                .iter()
                .map(|ca| Authority {
                    subject: [
                        text(ca, "/subject/organization"),
                        text(ca, "/subject/commonName"),
                    ]
                    .into_iter()
                    .flatten()
                    .collect::<Vec<_>>()
                    .join("/"),
                    uri: text(ca, "/uri"),
                    valid_from: text(ca, "/validFor/start"),
                    valid_until: text(ca, "/validFor/end"),
                })
                .collect()
        };
        let logs = |key: &str| {
            list(key)
                .iter()
                .map(|log| Log {
                    base_url: text(log, "/baseUrl").unwrap_or_default(),
                    log_id: text(log, "/logId/keyId")
                        .and_then(|id| {
                            base64::Engine::decode(&base64::engine::general_purpose::STANDARD, id)
                                .ok()
                        })
                        .map(hex::encode)
                        .unwrap_or_default(),
                    valid_from: text(log, "/publicKey/validFor/start"),
                    valid_until: text(log, "/publicKey/validFor/end"),
                })
                .collect()
        };
        RootSummary {
            certificate_authorities: authorities("certificateAuthorities"),
            tlogs: logs("tlogs"),
            ctlogs: logs("ctlogs"),
            timestamp_authorities: authorities("timestampAuthorities"),
        }
    }

    /// One line per authority and log, with its validity.
    pub fn lines(&self) -> Vec<String> {
        fn validity(from: &Option<String>, until: &Option<String>) -> String {
            match (from, until) {
                (Some(from), Some(until)) => format!("valid {from} to {until}"),
                (Some(from), None) => format!("valid from {from}"),
                (None, Some(until)) => format!("valid until {until}"),
                (None, None) => "validity not stated".to_owned(),
            }
        }
        let mut lines = Vec::new();
        for (kind, list) in [
            ("fulcio CA", &self.certificate_authorities),
            ("timestamp authority", &self.timestamp_authorities),
        ] {
            for ca in list {
                lines.push(format!(
                    "{kind:<20} {} {} ({})",
                    ca.subject,
                    ca.uri.as_deref().unwrap_or("-"),
                    validity(&ca.valid_from, &ca.valid_until)
                ));
            }
        }
        for (kind, list) in [("rekor log", &self.tlogs), ("ct log", &self.ctlogs)] {
            for log in list {
                lines.push(format!(
                    "{kind:<20} {} {} ({})",
                    log.base_url,
                    log.log_id,
                    validity(&log.valid_from, &log.valid_until)
                ));
            }
        }
        lines
    }
}

// ---------------------------------------------------------------------------------------------
// Refresh
// ---------------------------------------------------------------------------------------------

/// What [`refresh`] needs.
#[derive(Debug, Clone)]
pub struct RefreshConfig {
    /// The TUF repository: metadata at `MIRROR/`, targets under `MIRROR/targets/`
    /// (`http://`, `https://` or `file://`); userinfo in it is sent as HTTP basic auth to that
    /// origin and shown nowhere.
    pub mirror: String,
    /// The trust anchor (a TUF `root.json`) and its name for messages; `None`: the root of the
    /// last refresh from this mirror if there is one, else [`SIGSTORE_TUF_ROOT`].
    pub root: Option<(String, Vec<u8>)>,
    /// The Slipway cache directory.
    pub cache_dir: PathBuf,
}

/// One TUF role's metadata after the update.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RoleVersion {
    /// `root`, `timestamp`, `snapshot` or `targets`.
    pub role: String,
    /// Its version.
    pub version: u64,
    /// When it expires (RFC 3339).
    pub expires: String,
}

/// A refresh that verified and was written.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Refreshed {
    /// The mirror.
    pub mirror: String,
    /// The trust anchor the update started from.
    pub anchor: String,
    /// root, timestamp, snapshot, targets.
    pub roles: Vec<RoleVersion>,
    /// The trusted root written.
    pub path: PathBuf,
    /// Its sha256.
    pub sha256: String,
    /// Whether it differs from the one there before (or none was).
    pub changed: bool,
    /// What it lists.
    pub summary: RootSummary,
}

/// Why a refresh did not happen.
#[derive(Debug, thiserror::Error)]
pub enum RefreshError {
    /// Bad input: the mirror URL or the trust anchor.
    #[error("{message}\n\nhint: {hint}")]
    Input {
        /// What is wrong, naming the input.
        message: String,
        /// What to do.
        hint: String,
    },
    /// The mirror could not be read.
    #[error(
        "cannot read the TUF repository at {mirror}: {message}\n\nhint: check the URL (`--mirror`) and the network; the cached trusted root is unchanged"
    )]
    Unreachable {
        /// The mirror.
        mirror: String,
        /// What failed.
        message: String,
    },
    /// The repository does not verify: nothing was written.
    #[error(
        "the TUF repository at {mirror} does not verify: {problem}: {message}\n\nhint: the cached trusted root is unchanged; if the mirror is the right one, report it to its operators"
    )]
    Refused {
        /// The mirror.
        mirror: String,
        /// Which check failed: bad signature or threshold, expired metadata, rollback, target
        /// hash mismatch, invalid trusted root, ….
        problem: String,
        /// tough's or Slipway's message.
        message: String,
    },
    /// The cache directory could not be written.
    #[error(
        "cannot write the cache `{path}`: {message}\n\nhint: set SLIPWAY_CACHE_DIR to a writable directory (verification reads the refreshed root from there too)"
    )]
    Cache {
        /// The file or directory.
        path: PathBuf,
        /// What failed.
        message: String,
    },
}

/// Updates from the TUF repository at `config.mirror`, verifies the `trusted_root.json` target
/// and writes it to [`refreshed_root_path`] by temp file and rename. Nothing is written when the
/// repository does not verify ([`RefreshError::Refused`]) or cannot be read.
pub async fn refresh(config: &RefreshConfig) -> Result<Refreshed, RefreshError> {
    let MirrorUrl {
        base: mirror,
        credentials,
    } = mirror_url(&config.mirror)?;
    // The mirror as it is named everywhere (output, errors, the datastore's name): parsed and
    // normalised, without userinfo, so `HTTPS://host:443/.` is the same mirror as
    // `https://host` and a password never reaches a terminal, a log or a directory name.
    let mirror_text = mirror.as_str().trim_end_matches('/').to_owned();
    let datastore = tuf_datastore(&config.cache_dir, &mirror_text);
    let (anchor, root) = anchor(config, &datastore)?;
    let transport = MirrorTransport::new()?.with_credentials(&mirror, credentials);
    // Reachability first: with an expired anchor, tough reports an unreachable mirror as expired
    // root metadata (it cannot tell "no newer root" from "no answer"), which is not a refusal.
    let probe = mirror
        .join("timestamp.json")
        .map_err(|err| RefreshError::Input {
            message: format!("`--mirror {mirror_text}`: {err}"),
            hint: "give the TUF repository's base URL".to_owned(),
        })?;
    let reached = match tough::Transport::fetch(&transport, probe).await {
        Ok(stream) => tough::IntoVec::into_vec(stream).await.map(drop),
        Err(err) => Err(err),
    };
    if let Err(err) = reached {
        return Err(RefreshError::Unreachable {
            mirror: mirror_text,
            // tough's transport error names the URL and its cause already.
            message: err.to_string(),
        });
    }
    std::fs::create_dir_all(&datastore).map_err(|err| RefreshError::Cache {
        path: datastore.clone(),
        message: err.to_string(),
    })?;
    let targets_url = mirror.join("targets/").map_err(|err| RefreshError::Input {
        message: format!("`--mirror {mirror_text}`: {err}"),
        hint: "give the TUF repository's base URL".to_owned(),
    })?;
    let refused = |err: &tough::error::Error| classify(&mirror_text, &anchor, &datastore, err);
    let repository = tough::RepositoryLoader::new(&root, mirror.clone(), targets_url)
        .transport(transport)
        .datastore(&datastore)
        .load()
        .await
        .map_err(|err| refused(&err))?;
    let name = tough::TargetName::new(TRUSTED_ROOT_TARGET).map_err(|err| refused(&err))?;
    let stream = repository
        .read_target(&name)
        .await
        .map_err(|err| refused(&err))?
        .ok_or_else(|| RefreshError::Refused {
            mirror: mirror_text.clone(),
            problem: "no trusted root".to_owned(),
            message: format!("its targets list no `{TRUSTED_ROOT_TARGET}`"),
        })?;
    let content = tough::IntoVec::into_vec(stream)
        .await
        .map_err(|err| refused(&err))?;
    TrustedRoot::from_json(TRUSTED_ROOT_TARGET, &content).map_err(|err| RefreshError::Refused {
        mirror: mirror_text.clone(),
        problem: "invalid trusted root".to_owned(),
        message: err
            .to_string()
            .split("\n\nhint: ")
            .next()
            .unwrap_or_default()
            .to_owned(),
    })?;

    let path = refreshed_root_path(&config.cache_dir);
    let previous = std::fs::read(&path).ok();
    write_atomically(&path, &content)?;
    let role = |role: &str, version: std::num::NonZeroU64, expires: jiff::Timestamp| RoleVersion {
        role: role.to_owned(),
        version: version.get(),
        expires: expires.to_string(),
    };
    Ok(Refreshed {
        mirror: mirror_text,
        anchor,
        roles: vec![
            role(
                "root",
                repository.root().signed.version,
                repository.root().signed.expires,
            ),
            role(
                "timestamp",
                repository.timestamp().signed.version,
                repository.timestamp().signed.expires,
            ),
            role(
                "snapshot",
                repository.snapshot().signed.version,
                repository.snapshot().signed.expires,
            ),
            role(
                "targets",
                repository.targets().signed.version,
                repository.targets().signed.expires,
            ),
        ],
        path,
        sha256: sha256_hex(&content),
        changed: previous.as_deref() != Some(content.as_slice()),
        summary: RootSummary::of(&content),
    })
}

/// A `--mirror` parsed: the metadata base URL, normalised by the url crate (scheme and host
/// lowercased, default port and `.`/`..` segments removed, a trailing slash so `join` appends)
/// and without userinfo, and the userinfo apart (sent as HTTP basic auth to that origin only).
#[derive(Debug)]
struct MirrorUrl {
    base: reqwest::Url,
    credentials: Option<Credentials>,
}

/// The mirror's `user:password`, percent-encoded as in the URL.
#[derive(Debug, Clone)]
struct Credentials {
    username: String,
    password: Option<slipway_core::Secret>,
}

fn mirror_url(text: &str) -> Result<MirrorUrl, RefreshError> {
    let bad = |message: String| RefreshError::Input {
        message: format!("`--mirror {}` {message}", redact_userinfo(text)),
        hint: format!(
            "give the TUF repository's base URL, e.g. {SIGSTORE_TUF_MIRROR} or file:///path/to/repository"
        ),
    };
    let mut url = reqwest::Url::parse(&format!("{}/", text.trim_end_matches('/')))
        .map_err(|err| bad(format!("is not a URL: {err}")))?;
    match url.scheme() {
        "http" | "https" | "file" => {}
        other => {
            return Err(bad(format!(
                "has the scheme `{other}`; only http, https and file are read"
            )));
        }
    }
    let credentials =
        (!url.username().is_empty() || url.password().is_some()).then(|| Credentials {
            username: url.username().to_owned(),
            password: url.password().map(slipway_core::Secret::new),
        });
    // http(s) URLs always have a host, so userinfo can be removed; file URLs cannot hold any.
    let _ = url.set_username("");
    let _ = url.set_password(None);
    url.set_query(None);
    url.set_fragment(None);
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    Ok(MirrorUrl {
        base: url,
        credentials,
    })
}

/// `text` with the userinfo of a `scheme://user:pass@host…` URL replaced by `***`, for
/// messages about a mirror that did not parse.
fn redact_userinfo(text: &str) -> String {
    let Some((scheme, rest)) = text.split_once("://") else {
        return text.to_owned();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}://***@{}", &rest[at + 1..]),
        None => text.to_owned(),
    }
}

/// The trust anchor: `--root`, else the datastore's root of the last refresh from this mirror
/// (verified then, and kept per mirror, so it belongs to this repository; TUF walks on from it),
/// else the built-in TUF root. Checked to parse as TUF root metadata, so a bad `--root` is bad input, not a refusal.
fn anchor(config: &RefreshConfig, datastore: &Path) -> Result<(String, Vec<u8>), RefreshError> {
    let version = |content: &[u8]| {
        serde_json::from_slice::<tough::schema::Signed<tough::schema::Root>>(content)
            .map(|root| root.signed.version.get())
    };
    let (name, content) = match &config.root {
        Some((name, content)) => {
            let parsed = version(content).map_err(|err| RefreshError::Input {
                message: format!("`--root {name}` is not TUF root metadata: {err}"),
                hint:
                    "pass the repository's trusted `root.json` (for sigstore's, leave `--root` out)"
                        .to_owned(),
            })?;
            (format!("{name} (version {parsed})"), content.clone())
        }
        None => {
            let cached = datastore.join("root.json");
            match std::fs::read(&cached)
                .ok()
                .and_then(|content| version(&content).ok().map(|v| (v, content)))
            {
                Some((cached_version, content)) => (
                    format!(
                        "{} (version {cached_version}, from the last refresh)",
                        cached.display()
                    ),
                    content,
                ),
                None => (
                    format!(
                        "the built-in sigstore TUF root (version {})",
                        version(SIGSTORE_TUF_ROOT).unwrap_or(0)
                    ),
                    SIGSTORE_TUF_ROOT.to_vec(),
                ),
            }
        }
    };
    Ok((name, content))
}

/// tough's error as a refusal (exit 1), bad input or an unreachable mirror (exit 2).
fn classify(
    mirror: &str,
    anchor: &str,
    datastore: &Path,
    err: &tough::error::Error,
) -> RefreshError {
    use tough::error::Error as E;
    let message = err.to_string();
    let refused = |problem: &str| RefreshError::Refused {
        mirror: mirror.to_owned(),
        problem: problem.to_owned(),
        message: message.clone(),
    };
    match err {
        E::Transport { .. } => {
            // A target's hash or size is checked while it streams, and reported through the
            // transport: find tough's own error in the chain.
            let mut source = std::error::Error::source(err);
            while let Some(inner) = source {
                if let Some(inner) = inner.downcast_ref::<tough::error::Error>()
                    && !matches!(inner, E::Transport { .. })
                {
                    return classify(mirror, anchor, datastore, inner);
                }
                source = inner.source();
            }
            RefreshError::Unreachable {
                mirror: mirror.to_owned(),
                message,
            }
        }
        E::ParseTrustedMetadata { .. } | E::VerifyTrustedMetadata { .. } => RefreshError::Input {
            message: format!("the trust anchor {anchor} is not usable: {message}"),
            hint: "pass the repository's trusted `root.json` with `--root`".to_owned(),
        },
        E::DatastoreInit { .. }
        | E::DatastoreCreate { .. }
        | E::DatastoreOpen { .. }
        | E::DatastoreRemove { .. }
        | E::DatastoreSerialize { .. }
        | E::DirCreate { .. } => RefreshError::Cache {
            path: datastore.to_path_buf(),
            message,
        },
        E::ExpiredMetadata { role, .. } => refused(&format!("expired {role} metadata")),
        E::VerifyMetadata { role, .. } => refused(&format!(
            "{role} metadata: bad signature or signature threshold not met"
        )),
        E::VerifyRoleMetadata { .. } => {
            refused("delegated metadata: bad signature or signature threshold not met")
        }
        E::OlderMetadata { role, .. } => refused(&format!("rollback of {role} metadata")),
        E::OlderSnapshotInTimestamp { .. } | E::SnapshotRoleRollback { .. } => {
            refused("rollback of snapshot metadata")
        }
        E::HashMismatch { .. } => refused("target hash mismatch"),
        E::MaxSizeExceeded { .. } => refused("file larger than allowed"),
        E::SystemTimeSteppedBackward { .. } => refused("the system clock stepped backward"),
        _ => refused("invalid metadata"),
    }
}

/// Writes `content` to `path` by a temp file in the same directory and a rename, so a reader
/// sees the old file or the new one, never part of one.
fn write_atomically(path: &Path, content: &[u8]) -> Result<(), RefreshError> {
    let cache = |path: &Path, err: &dyn fmt::Display| RefreshError::Cache {
        path: path.to_path_buf(),
        message: err.to_string(),
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|err| cache(dir, &err))?;
    let mut file = tempfile::NamedTempFile::new_in(dir).map_err(|err| cache(dir, &err))?;
    file.write_all(content)
        .and_then(|()| file.as_file().sync_all())
        .map_err(|err| cache(file.path(), &err))?;
    file.persist(path).map_err(|err| cache(path, &err.error))?;
    Ok(())
}

/// tough's transport: `file://` through tough's own, `http(s)://` over reqwest (30 s per
/// request, 10 s to connect; 403, 404 and 410 mean "no such file", which TUF's root walk
/// needs to know).
#[derive(Debug, Clone)]
pub struct MirrorTransport {
    http: reqwest::Client,
    /// Basic-auth credentials for one origin (the mirror's), kept out of the URLs tough sees
    /// and names in its errors.
    credentials: Option<(String, Credentials)>,
}

impl MirrorTransport {
    /// A transport with its own HTTP client.
    pub fn new() -> Result<MirrorTransport, RefreshError> {
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(30))
            .connect_timeout(std::time::Duration::from_secs(10))
            .user_agent(concat!("slipway/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|err| RefreshError::Input {
                message: format!("cannot build the HTTP client: {err}"),
                hint: "this is a bug; report it".to_owned(),
            })?;
        Ok(MirrorTransport {
            http,
            credentials: None,
        })
    }

    /// Sends `credentials` (the mirror URL's userinfo) to `mirror`'s origin only.
    fn with_credentials(
        mut self,
        mirror: &reqwest::Url,
        credentials: Option<Credentials>,
    ) -> MirrorTransport {
        self.credentials =
            credentials.map(|credentials| (mirror.origin().ascii_serialization(), credentials));
        self
    }

    async fn fetch_http(&self, url: reqwest::Url) -> Result<Vec<u8>, tough::TransportError> {
        use tough::{TransportError, TransportErrorKind};
        let failed = |kind, err: String| TransportError::new_with_cause(kind, url.as_str(), err);
        let mut request_url = url.clone();
        if let Some((origin, credentials)) = &self.credentials
            && url.origin().ascii_serialization() == *origin
        {
            // reqwest turns URL userinfo into an Authorization header and strips it from the
            // URL; errors below are built from `url`, which never held it.
            let _ = request_url.set_username(&credentials.username);
            let _ = request_url.set_password(
                credentials
                    .password
                    .as_ref()
                    .map(slipway_core::Secret::expose),
            );
        }
        let mut response =
            self.http.get(request_url).send().await.map_err(|err| {
                failed(TransportErrorKind::Other, error_chain(&err.without_url()))
            })?;
        let status = response.status();
        if matches!(status.as_u16(), 403 | 404 | 410) {
            return Err(failed(
                TransportErrorKind::FileNotFound,
                format!("HTTP {status}"),
            ));
        }
        if !status.is_success() {
            return Err(failed(TransportErrorKind::Other, format!("HTTP {status}")));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|err| failed(TransportErrorKind::Other, error_chain(&err.without_url())))?
        {
            body.extend_from_slice(&chunk);
            if body.len() > MAX_FETCH_BYTES {
                return Err(failed(
                    TransportErrorKind::Other,
                    format!("larger than {MAX_FETCH_BYTES} bytes"),
                ));
            }
        }
        Ok(body)
    }
}

fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(inner) = source {
        text.push_str(&format!(": {inner}"));
        source = inner.source();
    }
    text
}

#[tough::async_trait]
impl tough::Transport for MirrorTransport {
    async fn fetch(
        &self,
        url: reqwest::Url,
    ) -> Result<tough::TransportStream, tough::TransportError> {
        match url.scheme() {
            "file" => tough::FilesystemTransport.fetch(url).await,
            "http" | "https" => {
                let body = self.fetch_http(url).await?;
                Ok(Box::pin(futures::stream::iter([Ok(tough::Bytes::from(
                    body,
                ))])))
            }
            _ => Err(tough::TransportError::new(
                tough::TransportErrorKind::UnsupportedUrlScheme,
                url.as_str(),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_builtin_root_parses_and_lists_the_public_good_instance() {
        let root = TrustedRoot::from_json("built-in", BUILTIN_TRUSTED_ROOT).expect("parses");
        assert_eq!(root.certificate_authorities.len(), 2, "two CA chains");
        assert_eq!(root.rekor_keys.len(), 2);
        // The 2021 CA and the `ctfe.sigstore.dev/test` log are retired: left out after their
        // windows, kept before (for the old signatures they made).
        let at = |time: &str| root.at(time.parse().expect("time")).expect("valid then");
        let now = at("2026-04-09T00:00:00Z");
        assert_eq!(now.certificate_authorities.len(), 1);
        assert_eq!((now.rekor_keys.len(), now.ctfe_keys.len()), (2, 1));
        let then = at("2022-06-01T00:00:00Z");
        assert_eq!(then.certificate_authorities.len(), 2);
        assert_eq!((then.rekor_keys.len(), then.ctfe_keys.len()), (1, 1));
        let err = root
            .at("2020-01-01T00:00:00Z".parse().expect("time"))
            .expect_err("nothing was valid in 2020");
        assert!(
            err.contains("no Fulcio CA of the trusted root was valid at 2020-01-01T00:00:00Z"),
            "{err}"
        );
        assert_eq!(root.sha256, sha256_hex(BUILTIN_TRUSTED_ROOT));
        let summary = RootSummary::of(BUILTIN_TRUSTED_ROOT);
        assert!(
            summary
                .tlogs
                .iter()
                .any(|log| log.base_url == "https://rekor.sigstore.dev"),
            "{summary:?}"
        );
        assert!(
            summary
                .certificate_authorities
                .iter()
                .all(|ca| ca.uri.as_deref() == Some("https://fulcio.sigstore.dev")),
            "{summary:?}"
        );
    }

    #[test]
    fn the_builtin_tuf_root_is_sigstores_version_15_and_verifies_itself() {
        let root: tough::schema::Signed<tough::schema::Root> =
            serde_json::from_slice(SIGSTORE_TUF_ROOT).expect("TUF root metadata");
        assert_eq!(root.signed.version.get(), 15);
        root.signed
            .verify_role(&root)
            .expect("signed by a threshold of its own root keys");
    }

    /// `data/SOURCES.md` names each embedded file with its sha256: changing a file without the
    /// list fails here.
    #[test]
    fn sources_name_the_embedded_files() {
        let sources = include_str!("../data/SOURCES.md");
        for (file, content) in [
            ("trusted_root.json", BUILTIN_TRUSTED_ROOT),
            ("sigstore-tuf-root.json", SIGSTORE_TUF_ROOT),
        ] {
            let line = sources
                .lines()
                .find(|line| line.starts_with(&format!("| `{file}` |")))
                .unwrap_or_else(|| panic!("SOURCES.md has no row for {file}"));
            assert!(
                line.contains(&sha256_hex(content)),
                "SOURCES.md's row for {file} does not name its sha256 {}",
                sha256_hex(content)
            );
        }
    }

    #[test]
    fn the_source_is_configured_then_refreshed_then_built_in() {
        let dir = tempfile::tempdir().expect("dir");
        let configured = dir.path().join("pinned.json");
        assert_eq!(
            RootSource::select(Some(&configured), Some(dir.path())),
            RootSource::Configured(configured.clone())
        );
        assert_eq!(
            RootSource::select(None, Some(dir.path())),
            RootSource::BuiltIn
        );
        assert_eq!(RootSource::select(None, None), RootSource::BuiltIn);
        let refreshed = refreshed_root_path(dir.path());
        std::fs::create_dir_all(refreshed.parent().expect("parent")).expect("mkdir");
        std::fs::write(&refreshed, BUILTIN_TRUSTED_ROOT).expect("write");
        assert_eq!(
            RootSource::select(None, Some(dir.path())),
            RootSource::Refreshed(refreshed.clone())
        );
        assert_eq!(
            RootSource::select(Some(&configured), Some(dir.path())),
            RootSource::Configured(configured)
        );

        // A root put there without a refresh is refused; with the targets metadata a refresh
        // keeps (length and sha256 of the target) it loads.
        let err = RootSource::Refreshed(refreshed.clone())
            .load()
            .expect_err("no metadata");
        assert!(
            err.to_string().contains("is not what a refresh verified"),
            "{err}"
        );
        let datastore = tuf_datastore(dir.path(), "https://mirror.example.com");
        std::fs::create_dir_all(&datastore).expect("mkdir");
        let targets = |length: usize, sha256: &str| {
            serde_json::json!({"signed": {"targets": {TRUSTED_ROOT_TARGET: {
                "length": length, "hashes": {"sha256": sha256}
            }}}})
            .to_string()
        };
        let builtin_sha = sha256_hex(BUILTIN_TRUSTED_ROOT);
        std::fs::write(
            datastore.join("targets.json"),
            targets(BUILTIN_TRUSTED_ROOT.len() + 1, &builtin_sha),
        )
        .expect("write");
        RootSource::Refreshed(refreshed.clone())
            .load()
            .expect_err("another length");
        std::fs::write(
            datastore.join("targets.json"),
            targets(BUILTIN_TRUSTED_ROOT.len(), &"0".repeat(64)),
        )
        .expect("write");
        RootSource::Refreshed(refreshed.clone())
            .load()
            .expect_err("another hash");
        std::fs::write(
            datastore.join("targets.json"),
            targets(BUILTIN_TRUSTED_ROOT.len(), &builtin_sha),
        )
        .expect("write");
        RootSource::Refreshed(refreshed.clone())
            .load()
            .expect("what the metadata lists");

        // A dangling symlink, or a directory that cannot be searched, is the refreshed root:
        // reading it then fails naming the file, instead of falling back to the built-in root.
        std::fs::remove_file(&refreshed).expect("rm");
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(dir.path().join("gone.json"), &refreshed).expect("ln");
            let source = RootSource::select(None, Some(dir.path()));
            assert_eq!(source, RootSource::Refreshed(refreshed.clone()));
            let err = source.load().expect_err("dangling");
            assert!(
                err.to_string().contains(&refreshed.display().to_string()),
                "{err}"
            );
            std::fs::remove_file(&refreshed).expect("rm");

            use std::os::unix::fs::PermissionsExt as _;
            let sigstore = refreshed.parent().expect("parent");
            std::fs::write(&refreshed, BUILTIN_TRUSTED_ROOT).expect("write");
            std::fs::set_permissions(sigstore, std::fs::Permissions::from_mode(0o000))
                .expect("chmod");
            let searchable = std::fs::metadata(&refreshed).is_ok();
            let source = RootSource::select(None, Some(dir.path()));
            std::fs::set_permissions(sigstore, std::fs::Permissions::from_mode(0o755))
                .expect("chmod");
            // Root reads through any permission; the case only means something for others.
            if !searchable {
                assert_eq!(source, RootSource::Refreshed(refreshed.clone()));
            }
        }

        // A refreshed root that does not parse (even one the metadata lists) is an error naming
        // it, not the built-in root.
        std::fs::write(&refreshed, b"{}").expect("write");
        std::fs::write(
            datastore.join("targets.json"),
            targets(2, &sha256_hex(b"{}")),
        )
        .expect("write");
        let err = RootSource::Refreshed(refreshed.clone())
            .load()
            .expect_err("broken");
        let text = err.to_string();
        assert!(
            text.contains("lists no Fulcio certificate authority"),
            "{text}"
        );
        assert!(text.contains(&refreshed.display().to_string()), "{text}");
        assert!(text.contains("trusted-root refresh"), "{text}");
    }

    #[test]
    fn mirrors_are_http_https_or_file_urls() {
        for good in [
            "https://tuf-repo-cdn.sigstore.dev",
            "http://127.0.0.1:8080/repo/",
            "file:///tmp/repo",
        ] {
            let url = mirror_url(good).expect(good).base;
            assert!(url.as_str().ends_with('/'), "{url}");
        }
        // One mirror however it is spelled, and never with its userinfo: the datastore (and so
        // the rollback history) is keyed on the normalised URL.
        for spelling in [
            "https://tuf-repo-cdn.sigstore.dev",
            "HTTPS://TUF-repo-cdn.sigstore.dev:443/",
            "https://tuf-repo-cdn.sigstore.dev/.",
            "https://tuf-repo-cdn.sigstore.dev/./",
            "https://user:s3cret@tuf-repo-cdn.sigstore.dev",
            "https://tuf-repo-cdn.sigstore.dev/?x=1#y",
        ] {
            let parsed = mirror_url(spelling).expect(spelling);
            assert_eq!(
                parsed.base.as_str(),
                "https://tuf-repo-cdn.sigstore.dev/",
                "{spelling}"
            );
        }
        let parsed = mirror_url("https://user:s3cret@mirror.example.com/repo").expect("parses");
        let credentials = parsed.credentials.expect("kept apart");
        assert_eq!(credentials.username, "user");
        assert_eq!(
            credentials
                .password
                .as_ref()
                .map(slipway_core::Secret::expose),
            Some("s3cret")
        );
        assert!(!format!("{credentials:?}").contains("s3cret"));
        for unparsable in [
            "https://user:s3cret@[bad/repo",
            "ftp://user:s3cret@host/repo",
        ] {
            let err = mirror_url(unparsable).expect_err(unparsable).to_string();
            assert!(!err.contains("s3cret"), "{err}");
            assert!(err.contains("***@"), "{err}");
        }
        for bad in ["ftp://example.com/repo", "not a url", "/tmp/repo"] {
            let err = mirror_url(bad).expect_err(bad);
            assert!(err.to_string().contains(bad), "{err}");
        }
        assert_eq!(
            tuf_datastore(Path::new("/c"), "https://tuf-repo-cdn.sigstore.dev/"),
            Path::new("/c/sigstore/tuf/https%3A%2F%2Ftuf-repo-cdn.sigstore.dev")
        );
    }
}
