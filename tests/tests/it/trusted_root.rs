//! `slipway-audit trusted-root refresh | show` and the trusted root keyless `verify-image` uses,
//! as separate processes of the real binary.
//!
//! The TUF repositories are made here with tough's editor and P-256 keys generated here; their
//! `trusted_root.json` target is sigstore-conformance's staging root
//! (`crates/attest/tests/data/sigstore/trusted_root.staging-rekor2.json`), so a refreshed root is
//! told apart from the built-in one by its sha256 and by what it verifies. Refreshes run over
//! `file://` and over plain HTTP from a small server on loopback. The keyless verification
//! cases push the public kubewarden bundle to the real registry (skipped locally without it, a
//! failure under CI). Every command gets its own cache directory (`SLIPWAY_CACHE_DIR`), so a
//! refresh a developer ran for real never leaks in.

use std::collections::HashMap;
use std::io::{BufRead as _, BufReader, Write as _};
use std::num::NonZeroU64;
use std::path::{Path, PathBuf};

use tough::editor::RepositoryEditor;
use tough::editor::signed::PathExists;
use tough::key_source::KeySource;
use tough::schema::{Role as _, RoleKeys, RoleType, Root, Signature, Signed};
use tough::sign::Sign;

use crate::support::{Output, REGISTRY_ENV, command, output, service};

const KUBEWARDEN_DIGEST: &str =
    "sha256:c811d58de79c92f03214e63aa339484e488d694ae8a6283b5f3f17a9faf50172";
const KUBEWARDEN_IDENTITY: &str = "https://github.com/kubewarden/kubewarden-controller/.github/workflows/release.yml@refs/tags/v1.34.0";
const GITHUB_ISSUER: &str = "https://token.actions.githubusercontent.com";

use crate::supply_chain::{push_public_bundle, sigstore_data};

/// The target the test repositories publish: distinguishable from the built-in root.
fn staging_root() -> Vec<u8> {
    std::fs::read(sigstore_data().join("trusted_root.staging-rekor2.json")).expect("staging root")
}

fn sha256(content: &[u8]) -> String {
    slipway_attest::trust_root::sha256_hex(content)
}

/// `slipway-audit ARGS` with `SLIPWAY_CACHE_DIR=cache` and no config.
fn audit(cache: &Path, args: &[&str]) -> Output {
    output(
        command("slipway-audit")
            .env("SLIPWAY_CACHE_DIR", cache)
            .args(args),
    )
}

// ---------------------------------------------------------------------------------------------
// TUF repositories made here
// ---------------------------------------------------------------------------------------------

/// A P-256 key as PKCS#8 DER, the form tough's `parse_keypair` reads.
#[derive(Debug, Clone)]
struct TufKey {
    der: Vec<u8>,
}

impl TufKey {
    fn generate() -> TufKey {
        use p256::pkcs8::EncodePrivateKey as _;
        let secret = p256::SecretKey::random(&mut rand_core::OsRng);
        TufKey {
            der: secret.to_pkcs8_der().expect("pkcs8").as_bytes().to_vec(),
        }
    }

    fn pair(&self) -> impl Sign {
        tough::sign::parse_keypair(&self.der).expect("tough reads the key")
    }

    /// ECDSA P-256 over SHA-256, DER: what tough verifies (`ecdsa-sha2-nistp256`).
    fn sign(&self, message: &[u8]) -> Vec<u8> {
        use p256::ecdsa::signature::Signer as _;
        use p256::pkcs8::DecodePrivateKey as _;
        let key = p256::ecdsa::SigningKey::from_pkcs8_der(&self.der).expect("key");
        let signature: p256::ecdsa::Signature = key.sign(message);
        signature.to_der().as_bytes().to_vec()
    }
}

#[derive(Debug)]
struct KeyFile(TufKey);

#[tough::async_trait]
impl KeySource for KeyFile {
    async fn as_sign(
        &self,
    ) -> Result<Box<dyn Sign>, Box<dyn std::error::Error + Send + Sync + 'static>> {
        Ok(Box::new(tough::sign::parse_keypair(&self.0.der)?))
    }

    async fn write(
        &self,
        _value: &str,
        _key_id_hex: &str,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync + 'static>> {
        Ok(())
    }
}

/// A signed TUF root (version 1, consistent snapshots as sigstore's) naming `key` for every role.
fn root_json(key: &TufKey) -> Vec<u8> {
    let tuf_key = key.pair().tuf_key();
    let key_id = tuf_key.key_id().expect("key id");
    let one = NonZeroU64::new(1).expect("one");
    let role = || RoleKeys {
        keyids: vec![key_id.clone()],
        threshold: one,
        _extra: HashMap::new(),
    };
    let root = Root {
        spec_version: "1.0.0".to_owned(),
        consistent_snapshot: true,
        version: one,
        expires: jiff::Timestamp::now() + jiff::SignedDuration::from_hours(24 * 365),
        keys: HashMap::from([(key_id.clone(), tuf_key)]),
        roles: [
            RoleType::Root,
            RoleType::Snapshot,
            RoleType::Targets,
            RoleType::Timestamp,
        ]
        .into_iter()
        .map(|name| (name, role()))
        .collect(),
        _extra: HashMap::new(),
    };
    let signature = key.sign(&root.canonical_form().expect("canonical"));
    let signed = Signed {
        signed: root,
        signatures: vec![Signature {
            keyid: key_id,
            sig: signature.into(),
        }],
    };
    serde_json::to_vec_pretty(&signed).expect("json")
}

/// How a test repository is made.
struct RepoSpec<'a> {
    /// The root (anchor) the metadata claims to follow.
    root: &'a [u8],
    /// The key that signs targets, snapshot and timestamp.
    signer: &'a TufKey,
    /// The version of targets, snapshot and timestamp.
    version: u64,
    /// When the timestamp expires.
    timestamp_expires: jiff::Timestamp,
    /// The `trusted_root.json` target.
    target: &'a [u8],
}

impl RepoSpec<'_> {
    fn new<'a>(root: &'a [u8], signer: &'a TufKey, target: &'a [u8]) -> RepoSpec<'a> {
        RepoSpec {
            root,
            signer,
            version: 1,
            timestamp_expires: jiff::Timestamp::now() + jiff::SignedDuration::from_hours(24),
            target,
        }
    }
}

/// Writes the repository into `dir` (metadata at `dir/`, targets under `dir/targets/`, as
/// sigstore's mirror lays them out), replacing what was there. Returns its `file://` URL.
async fn write_repo(dir: &Path, spec: &RepoSpec<'_>) -> String {
    let _ = std::fs::remove_dir_all(dir);
    let work = dir.with_extension("work");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(work.join("targets")).expect("mkdir");
    let root_path = work.join("root.json");
    std::fs::write(&root_path, spec.root).expect("root");
    let target = work.join("targets").join("trusted_root.json");
    std::fs::write(&target, spec.target).expect("target");

    let version = NonZeroU64::new(spec.version).expect("version");
    let far = jiff::Timestamp::now() + jiff::SignedDuration::from_hours(24 * 30);
    let mut editor = RepositoryEditor::new(&root_path).await.expect("editor");
    editor
        .targets_version(version)
        .expect("targets version")
        .targets_expires(far)
        .expect("targets expiry")
        .snapshot_version(version)
        .snapshot_expires(far)
        .timestamp_version(version)
        .timestamp_expires(spec.timestamp_expires);
    editor.add_target_path(&target).await.expect("add target");
    let keys: Vec<Box<dyn KeySource>> = vec![Box::new(KeyFile(spec.signer.clone()))];
    let signed = editor.sign(&keys).await.expect("sign");
    signed.write(dir).await.expect("write metadata");
    signed
        .copy_targets(
            work.join("targets"),
            dir.join("targets"),
            PathExists::Replace,
        )
        .await
        .expect("copy targets");
    format!("file://{}", dir.display())
}

/// Serves `dir` over plain HTTP on loopback (GET only, one request per connection) for the
/// rest of the test process. Returns the base URL.
fn serve(dir: PathBuf) -> String {
    serve_with_auth(dir, None)
}

/// [`serve`], answering 401 to a request without the `Authorization` header value `auth`.
fn serve_with_auth(dir: PathBuf, auth: Option<String>) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = listener.local_addr().expect("address");
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let Ok(clone) = stream.try_clone() else {
                continue;
            };
            let mut reader = BufReader::new(clone);
            let mut request = String::new();
            if reader.read_line(&mut request).is_err() {
                continue;
            }
            let mut authorized = auth.is_none();
            loop {
                let mut header = String::new();
                match reader.read_line(&mut header) {
                    Ok(read) if read > 2 => {
                        if let (Some(auth), Some((name, value))) = (&auth, header.split_once(':'))
                            && name.eq_ignore_ascii_case("authorization")
                            && value.trim() == auth
                        {
                            authorized = true;
                        }
                    }
                    _ => break,
                }
            }
            let path = request.split_whitespace().nth(1).unwrap_or("/");
            let file = dir.join(path.trim_start_matches('/'));
            let response = match std::fs::read(&file) {
                _ if !authorized => {
                    b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                        .to_vec()
                }
                Ok(body) if !path.contains("..") => {
                    let mut response = format!(
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        body.len()
                    )
                    .into_bytes();
                    response.extend(body);
                    response
                }
                _ => b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    .to_vec(),
            };
            let _ = stream.write_all(&response);
        }
    });
    format!("http://{address}")
}

// ---------------------------------------------------------------------------------------------
// refresh and show
// ---------------------------------------------------------------------------------------------

/// A refresh over `file://` writes the repository's trusted root into the cache and `show` then
/// names it; over plain HTTP from a server on loopback too, with the JSON document valid against
/// its published schema.
#[tokio::test]
async fn refresh_over_file_and_http_writes_the_verified_root_and_show_names_it() {
    let dir = tempfile::tempdir().expect("dir");
    let key = TufKey::generate();
    let root = root_json(&key);
    let root_file = dir.path().join("root.json");
    std::fs::write(&root_file, &root).expect("root");
    let target = staging_root();
    let mirror = write_repo(
        &dir.path().join("repo"),
        &RepoSpec::new(&root, &key, &target),
    )
    .await;
    let cache = dir.path().join("cache");
    let root_arg = root_file.display().to_string();

    let before = audit(&cache, &["trusted-root", "show", "--no-config"]);
    assert_eq!(before.code, 0, "{before:?}");
    assert!(
        before.stdout.contains("built-in trusted root"),
        "{before:?}"
    );

    let refreshed = audit(
        &cache,
        &[
            "trusted-root",
            "refresh",
            "--mirror",
            &mirror,
            "--root",
            &root_arg,
        ],
    );
    assert_eq!(refreshed.code, 0, "{refreshed:?}");
    let written = cache.join("sigstore/trusted_root.json");
    assert_eq!(
        std::fs::read(&written).expect("written"),
        target,
        "the target, byte for byte"
    );
    for expected in [
        format!("refreshed the Sigstore trusted root from {mirror}"),
        "tuf root       version 1".to_owned(),
        "tuf timestamp  version 1".to_owned(),
        format!(
            "wrote {} (sha256:{}, changed)",
            written.display(),
            sha256(&target)
        ),
        "rekor log".to_owned(),
        "fulcio CA".to_owned(),
    ] {
        assert!(
            refreshed.stdout.contains(&expected),
            "{expected}\n{}",
            refreshed.stdout
        );
    }

    let after = audit(&cache, &["trusted-root", "show", "--no-config"]);
    assert_eq!(after.code, 0, "{after:?}");
    assert!(
        after
            .stdout
            .contains(&format!("refreshed trusted root {}", written.display())),
        "{}",
        after.stdout
    );
    assert!(after.stdout.contains(&sha256(&target)), "{}", after.stdout);

    // A root planted in its place (a valid one, but not what the refresh verified: the TUF
    // targets metadata kept in the cache lists another sha256) is refused, not used.
    let planted = std::fs::read(sigstore_data().join("trusted_root.prod.json")).expect("prod");
    std::fs::write(&written, &planted).expect("plant");
    let refused = audit(&cache, &["trusted-root", "show", "--no-config"]);
    assert_eq!(refused.code, 2, "{refused:?}");
    assert!(
        refused.stderr.contains(&format!(
            "the refreshed trusted root {} (slipway-audit trusted-root refresh) is not what a refresh verified",
            written.display()
        )),
        "{}",
        refused.stderr
    );
    assert!(
        refused.stderr.contains(&sha256(&planted)),
        "{}",
        refused.stderr
    );
    std::fs::write(&written, &target).expect("restore");

    // The same repository over plain HTTP, into another cache.
    let http = serve(dir.path().join("repo"));
    let cache_http = dir.path().join("cache-http");
    let json = audit(
        &cache_http,
        &[
            "trusted-root",
            "refresh",
            "--mirror",
            &http,
            "--root",
            &root_arg,
            "--output",
            "json",
        ],
    );
    assert_eq!(json.code, 0, "{json:?}");
    let document: serde_json::Value = serde_json::from_str(&json.stdout).expect("json");
    assert_eq!(document["mirror"], http.as_str(), "{document}");
    assert_eq!(document["sha256"], sha256(&target).as_str(), "{document}");
    assert_eq!(document["tuf"][1]["role"], "timestamp", "{document}");
    assert_eq!(document["tuf"][1]["version"], 1, "{document}");
    assert_eq!(
        std::fs::read(cache_http.join("sigstore/trusted_root.json")).expect("written"),
        target
    );
    valid_against("trusted-root-refresh", &json.stdout);
    // A second refresh of the same repository is no change, and rollback protection starts
    // from the TUF root kept in the cache (no `--root` needed any more).
    let again = audit(&cache_http, &["trusted-root", "refresh", "--mirror", &http]);
    assert_eq!(again.code, 0, "{again:?}");
    assert!(again.stdout.contains("unchanged"), "{}", again.stdout);
    assert!(
        again.stdout.contains("from the last refresh"),
        "{}",
        again.stdout
    );
}

/// A repository that does not verify is refused (exit 1), the reason and the mirror named, and
/// the trusted root refreshed before stays byte for byte: a target changed after signing, a
/// signed target that is no trusted root, an expired timestamp, metadata signed by a key the
/// root does not name, and a rollback of the metadata versions. Bad input (an unreadable `--root`, one that is no TUF root, a bad URL) and
/// an unreachable mirror exit 2.
#[tokio::test]
async fn a_repository_that_does_not_verify_changes_nothing() {
    let dir = tempfile::tempdir().expect("dir");
    let key = TufKey::generate();
    let root = root_json(&key);
    let root_file = dir.path().join("root.json");
    std::fs::write(&root_file, &root).expect("root");
    let root_arg = root_file.display().to_string();
    let cache = dir.path().join("cache");
    let target = staging_root();
    let good = write_repo(
        &dir.path().join("good"),
        &RepoSpec::new(&root, &key, &target),
    )
    .await;
    let refresh = |mirror: &str| {
        audit(
            &cache,
            &[
                "trusted-root",
                "refresh",
                "--mirror",
                mirror,
                "--root",
                &root_arg,
            ],
        )
    };
    let first = refresh(&good);
    assert_eq!(first.code, 0, "{first:?}");
    let written = cache.join("sigstore/trusted_root.json");
    let kept = std::fs::read(&written).expect("refreshed root");
    let other_target = std::fs::read(sigstore_data().join("trusted_root.prod.json")).expect("prod");

    // The target replaced after the metadata was signed.
    let tampered_dir = dir.path().join("tampered");
    let tampered = write_repo(&tampered_dir, &RepoSpec::new(&root, &key, &target)).await;
    let target_file = std::fs::read_dir(tampered_dir.join("targets"))
        .expect("targets")
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .find(|path| path.to_string_lossy().ends_with(".trusted_root.json"))
        .expect("the consistent-snapshot target");
    std::fs::write(&target_file, &other_target).expect("tamper");

    // The timestamp expired an hour ago.
    let mut expired_spec = RepoSpec::new(&root, &key, &target);
    expired_spec.timestamp_expires = jiff::Timestamp::now() - jiff::SignedDuration::from_hours(1);
    let expired = write_repo(&dir.path().join("expired"), &expired_spec).await;

    // Signed by another key than the root names (a repository of its own root, read from
    // ours).
    let stranger = TufKey::generate();
    let stranger_root = root_json(&stranger);
    let unknown = write_repo(
        &dir.path().join("unknown"),
        &RepoSpec::new(&stranger_root, &stranger, &target),
    )
    .await;

    // Properly signed, but the target is no trusted root.
    let wrong_target = write_repo(
        &dir.path().join("wrong-target"),
        &RepoSpec::new(&root, &key, br#"{"mediaType": "not a trusted root"}"#),
    )
    .await;

    for (mirror, problem) in [
        (&tampered, "target hash mismatch"),
        (&wrong_target, "invalid trusted root"),
        (&expired, "expired timestamp metadata"),
        (
            &unknown,
            "timestamp metadata: bad signature or signature threshold not met",
        ),
    ] {
        let refused = refresh(mirror);
        assert_eq!(refused.code, 1, "{problem}: {refused:?}");
        assert!(
            refused.stderr.contains(&format!(
                "the TUF repository at {mirror} does not verify: {problem}"
            )),
            "{problem}: {}",
            refused.stderr
        );
        assert!(refused.stdout.is_empty(), "{problem}: {}", refused.stdout);
        assert_eq!(
            std::fs::read(&written).expect("still there"),
            kept,
            "{problem}: the refreshed root is untouched"
        );
    }

    // Rollback: version 2 verified, then the mirror serves version 1 again.
    let rollback_dir = dir.path().join("rollback");
    let mut newer = RepoSpec::new(&root, &key, &target);
    newer.version = 2;
    let rollback = write_repo(&rollback_dir, &newer).await;
    let accepted = refresh(&rollback);
    assert_eq!(accepted.code, 0, "{accepted:?}");
    let kept = std::fs::read(&written).expect("refreshed root");
    write_repo(&rollback_dir, &RepoSpec::new(&root, &key, &other_target)).await;
    let refused = refresh(&rollback);
    assert_eq!(refused.code, 1, "{refused:?}");
    assert!(
        refused.stderr.contains("rollback of timestamp metadata"),
        "{}",
        refused.stderr
    );
    assert_eq!(std::fs::read(&written).expect("still there"), kept);

    // Exit 2: bad input and an unreachable mirror, each with a hint.
    let not_a_root = dir.path().join("not-a-root.json");
    std::fs::write(&not_a_root, b"{\"tlogs\": []}").expect("write");
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        format!("http://{}", listener.local_addr().expect("address"))
    };
    for (args, expected) in [
        (
            vec![
                "--root",
                "/nonexistent/root.json",
                "--mirror",
                good.as_str(),
            ],
            "cannot read `--root /nonexistent/root.json`",
        ),
        (
            vec![
                "--root",
                not_a_root.to_str().expect("utf-8"),
                "--mirror",
                good.as_str(),
            ],
            "is not TUF root metadata",
        ),
        (
            vec!["--mirror", "ftp://mirror.example.com"],
            "has the scheme `ftp`",
        ),
        (
            vec!["--root", root_arg.as_str(), "--mirror", closed.as_str()],
            "cannot read the TUF repository at",
        ),
    ] {
        let failed = audit(
            &cache,
            &[&["trusted-root", "refresh"][..], &args[..]].concat(),
        );
        assert_eq!(failed.code, 2, "{args:?}: {failed:?}");
        assert!(
            failed.stderr.contains(expected),
            "{args:?}: {}",
            failed.stderr
        );
        assert!(
            failed.stderr.contains("hint: "),
            "{args:?}: {}",
            failed.stderr
        );
        assert_eq!(std::fs::read(&written).expect("still there"), kept);
    }
}

/// The mirror is one mirror however its URL is spelled (scheme and host case, default port, a
/// trailing `/.`): a refresh through another spelling finds the TUF metadata of the last one
/// (rollback protection continues). Credentials in the URL are sent (the server demands them)
/// but appear nowhere: not in text or JSON output, not in errors, not in the cache's names.
#[tokio::test]
async fn the_mirror_url_is_normalised_and_its_credentials_never_shown() {
    let dir = tempfile::tempdir().expect("dir");
    let key = TufKey::generate();
    let root = root_json(&key);
    let root_file = dir.path().join("root.json");
    std::fs::write(&root_file, &root).expect("root");
    let target = staging_root();
    write_repo(
        &dir.path().join("repo"),
        &RepoSpec::new(&root, &key, &target),
    )
    .await;
    let password = "s3cret-pa55";
    let basic = format!(
        "Basic {}",
        base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            format!("mirror-user:{password}")
        )
    );
    let http = serve_with_auth(dir.path().join("repo"), Some(basic));
    let address = http.trim_start_matches("http://");
    let cache = dir.path().join("cache");
    let root_arg = root_file.display().to_string();

    // Without the credentials the server refuses: they are needed, so they must be sent.
    let anonymous = audit(
        &cache,
        &[
            "trusted-root",
            "refresh",
            "--mirror",
            &http,
            "--root",
            &root_arg,
        ],
    );
    assert_eq!(anonymous.code, 2, "{anonymous:?}");

    let with_credentials = format!("http://mirror-user:{password}@{address}");
    let first = audit(
        &cache,
        &[
            "trusted-root",
            "refresh",
            "--mirror",
            &with_credentials,
            "--root",
            &root_arg,
        ],
    );
    assert_eq!(first.code, 0, "{first:?}");
    assert!(
        first.stdout.contains(&format!(
            "refreshed the Sigstore trusted root from {http}\n"
        )),
        "{}",
        first.stdout
    );
    let json = audit(
        &cache,
        &[
            "trusted-root",
            "refresh",
            "--mirror",
            &with_credentials,
            "--output",
            "json",
        ],
    );
    assert_eq!(json.code, 0, "{json:?}");
    let document: serde_json::Value = serde_json::from_str(&json.stdout).expect("json");
    assert_eq!(document["mirror"], http.as_str(), "{document}");

    // Another spelling of the same mirror: the TUF root of the last refresh is the anchor.
    let respelled = format!("HTTP://mirror-user:{password}@{address}/.");
    let again = audit(&cache, &["trusted-root", "refresh", "--mirror", &respelled]);
    assert_eq!(again.code, 0, "{again:?}");
    assert!(
        again.stdout.contains("from the last refresh"),
        "{}",
        again.stdout
    );
    let datastores: Vec<String> = std::fs::read_dir(cache.join("sigstore/tuf"))
        .expect("datastores")
        .map(|entry| {
            entry
                .expect("entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    assert_eq!(
        datastores.len(),
        1,
        "one mirror, one datastore: {datastores:?}"
    );

    // Errors: a mirror that does not answer, one that does not parse, one of another scheme.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("address").to_string()
    };
    let unreachable = format!("https://mirror-user:{password}@{closed}/repo");
    let unparsable = format!("https://mirror-user:{password}@[bad/repo");
    let ftp = format!("ftp://mirror-user:{password}@{closed}/repo");
    let mut printed = vec![first, json, again];
    for mirror in [&unreachable, &unparsable, &ftp] {
        let failed = audit(
            &cache,
            &[
                "trusted-root",
                "refresh",
                "--mirror",
                mirror,
                "--root",
                &root_arg,
            ],
        );
        assert_eq!(failed.code, 2, "{mirror}: {failed:?}");
        printed.push(failed);
    }
    for output in &printed {
        for text in [&output.stdout, &output.stderr] {
            assert!(!text.contains(password), "{text}");
            assert!(!text.contains("mirror-user"), "{text}");
        }
    }
    for entry in walk(&cache) {
        let name = entry.display().to_string();
        assert!(
            !name.contains(password) && !name.contains("mirror-user"),
            "{name}"
        );
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read_dir") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            found.extend(walk(&path));
        }
        found.push(path);
    }
    found
}

/// A refreshed root that cannot be read or parsed is an error naming it, for `show` as for
/// `verify-image` (exit 2 both): never the built-in root in its place, nor a `show` that lists
/// a root verification refuses. A dangling symlink in its place counts as a refreshed root.
#[test]
fn a_broken_refreshed_root_fails_show_and_verification_alike() {
    let dir = tempfile::tempdir().expect("dir");
    let cache = dir.path().join("cache");
    let refreshed = cache.join("sigstore/trusted_root.json");
    std::fs::create_dir_all(refreshed.parent().expect("parent")).expect("mkdir");
    let verify = || {
        audit(
            &cache,
            &[
                "verify-image",
                "--no-config",
                "--certificate-identity",
                KUBEWARDEN_IDENTITY,
                "--certificate-oidc-issuer",
                GITHUB_ISSUER,
                &format!("registry.invalid/kubewarden@{KUBEWARDEN_DIGEST}"),
            ],
        )
    };

    std::fs::write(&refreshed, b"{\"tlogs\": \"not a list\"}").expect("write");
    let shown = audit(&cache, &["trusted-root", "show", "--no-config"]);
    assert_eq!(shown.code, 2, "{shown:?}");
    assert!(shown.stdout.is_empty(), "{shown:?}");
    let verified = verify();
    assert_eq!(verified.code, 2, "{verified:?}");
    for failed in [&shown, &verified] {
        assert!(
            failed.stderr.contains(&refreshed.display().to_string()),
            "{}",
            failed.stderr
        );
        assert!(
            failed
                .stderr
                .contains("hint: run `slipway-audit trusted-root refresh` again"),
            "{}",
            failed.stderr
        );
    }

    std::fs::remove_file(&refreshed).expect("rm");
    std::os::unix::fs::symlink(dir.path().join("gone.json"), &refreshed).expect("ln");
    for failed in [
        audit(&cache, &["trusted-root", "show", "--no-config"]),
        verify(),
    ] {
        assert_eq!(failed.code, 2, "{failed:?}");
        assert!(
            failed.stderr.contains(&format!(
                "cannot read the refreshed trusted root {}",
                refreshed.display()
            )),
            "{}",
            failed.stderr
        );
    }
}

/// `document` validates against the schema `slipway-audit schema NAME` publishes.
#[track_caller]
fn valid_against(name: &str, document: &str) {
    crate::supply_chain::valid_against("slipway-audit", name, document);
}

fn snapshot_text(output: &Output, dir: &Path) -> String {
    format!(
        "exit code: {}\n----- stdout -----\n{}----- stderr -----\n{}",
        output.code, output.stdout, output.stderr
    )
    .replace(&dir.display().to_string(), "[dir]")
}

#[test]
fn help_and_show_of_the_built_in_root() {
    let dir = tempfile::tempdir().expect("dir");
    let cache = dir.path().join("cache");
    for (name, args) in [
        ("help_trusted_root", vec!["trusted-root", "--help"]),
        (
            "help_trusted_root_refresh",
            vec!["trusted-root", "refresh", "--help"],
        ),
        (
            "help_trusted_root_show",
            vec!["trusted-root", "show", "--help"],
        ),
        (
            "show_built_in_text",
            vec!["trusted-root", "show", "--no-config"],
        ),
        (
            "show_built_in_json",
            vec!["trusted-root", "show", "--no-config", "--output", "json"],
        ),
    ] {
        let printed = audit(&cache, &args);
        assert_eq!(printed.code, 0, "{name}: {printed:?}");
        insta::assert_snapshot!(name, snapshot_text(&printed, dir.path()));
        if name == "show_built_in_json" {
            valid_against("trusted-root-show", &printed.stdout);
        }
    }
    // A configured root wins over everything and is named.
    let configured = sigstore_data().join("trusted_root.staging-rekor2.json");
    let shown = output(
        command("slipway-audit")
            .env("SLIPWAY_CACHE_DIR", &cache)
            .env("SLIPWAY_SIGNING__TRUSTED_ROOT", &configured)
            .args(["trusted-root", "show", "--no-config", "--output", "json"]),
    );
    assert_eq!(shown.code, 0, "{shown:?}");
    let document: serde_json::Value = serde_json::from_str(&shown.stdout).expect("json");
    assert_eq!(document["source"], "configured", "{document}");
    assert_eq!(document["sha256"], sha256(&staging_root()).as_str());
}

// ---------------------------------------------------------------------------------------------
// Which root keyless verify-image uses
// ---------------------------------------------------------------------------------------------

/// With no configuration at all the built-in root verifies the public cosign v3 keyless bundle
/// and is named; after a refresh the refreshed root is used (the staging root it holds does not
/// verify a production signature: exit 1, the refreshed root named); `[signing] trusted_root`
/// wins over the refreshed root. `verify-attestation` keyless names its root the same way.
#[tokio::test]
async fn keyless_verify_image_uses_and_names_the_configured_refreshed_or_built_in_root() {
    let test = "keyless_verify_image_uses_and_names_the_configured_refreshed_or_built_in_root";
    let Some(registry) = service(REGISTRY_ENV, test) else {
        return;
    };
    let image = push_public_bundle(
        &registry,
        "trusted-root",
        KUBEWARDEN_DIGEST,
        "kubewarden-controller-v1.34.0.bundle_v03.json",
    )
    .await;
    let dir = tempfile::tempdir().expect("dir");
    let cache = dir.path().join("cache");
    let verify = |env: &[(&str, &Path)], format: &str| {
        let mut cmd = command("slipway-audit");
        cmd.env("SLIPWAY_CACHE_DIR", &cache);
        for (name, value) in env {
            cmd.env(name, value);
        }
        output(cmd.args([
            "verify-image",
            "--no-config",
            "--output",
            format,
            "--certificate-identity",
            KUBEWARDEN_IDENTITY,
            "--certificate-oidc-issuer",
            GITHUB_ISSUER,
            "--allow-insecure-registry",
            registry.as_str(),
            &image,
        ]))
    };
    let builtin_sha = sha256(slipway_attest::trust_root::BUILTIN_TRUSTED_ROOT);

    // Nothing configured, nothing refreshed: the built-in root.
    let builtin = verify(&[], "text");
    assert_eq!(builtin.code, 0, "{builtin:?}");
    assert!(
        builtin.stdout.contains(&format!(
            "trusted root: built-in trusted root (sigstore public-good instance, as sigstore-python 4.5.1 ships it), sha256:{builtin_sha}"
        )),
        "{}",
        builtin.stdout
    );
    let json = verify(&[], "json");
    assert_eq!(json.code, 0, "{json:?}");
    let document: serde_json::Value = serde_json::from_str(&json.stdout).expect("json");
    assert_eq!(document["trusted_root"]["source"], "built-in", "{document}");
    assert_eq!(document["trusted_root"]["sha256"], builtin_sha.as_str());
    valid_against("verify-image", &json.stdout);

    // verify-attestation keyless: sigstore-conformance's public provenance bundle, built-in root.
    let attested = push_public_bundle(
        &registry,
        "trusted-root",
        "sha256:a0cfc71271d6e278e57cd332ff957c3f7043fdda354c4cbb190a30d56efa01bf",
        "conformance-intoto-in-dsse-v3.bundle.json",
    )
    .await;
    let attestation = |format: &str| {
        output(
            command("slipway-audit")
                .env("SLIPWAY_CACHE_DIR", &cache)
                .args([
                    "verify-attestation",
                    "--no-config",
                    "--output",
                    format,
                    "--type",
                    "slsaprovenance",
                    "--certificate-identity-regexp",
                    "^https://github.com/sigstore-conformance/",
                    "--certificate-oidc-issuer",
                    GITHUB_ISSUER,
                    "--allow-insecure-registry",
                    registry.as_str(),
                    &attested,
                ]),
        )
    };
    let text = attestation("text");
    assert_eq!(text.code, 0, "{text:?}");
    assert!(
        text.stdout.contains(&format!(
            "trusted root: built-in trusted root (sigstore public-good instance, as sigstore-python 4.5.1 ships it), sha256:{builtin_sha}"
        )),
        "{}",
        text.stdout
    );
    let json = attestation("json");
    assert_eq!(json.code, 0, "{json:?}");
    let document: serde_json::Value = serde_json::from_str(&json.stdout).expect("json");
    assert_eq!(document["trusted_root"]["source"], "built-in", "{document}");
    valid_against("verify-attestation", &json.stdout);

    // Refreshed: the staging root from a TUF repository made here.
    let key = TufKey::generate();
    let root = root_json(&key);
    let root_file = dir.path().join("root.json");
    std::fs::write(&root_file, &root).expect("root");
    let target = staging_root();
    let mirror = write_repo(
        &dir.path().join("repo"),
        &RepoSpec::new(&root, &key, &target),
    )
    .await;
    let refreshed = audit(
        &cache,
        &[
            "trusted-root",
            "refresh",
            "--mirror",
            &mirror,
            "--root",
            root_file.to_str().expect("utf-8"),
        ],
    );
    assert_eq!(refreshed.code, 0, "{refreshed:?}");
    let written = cache.join("sigstore/trusted_root.json");
    let with_refreshed = verify(&[], "text");
    assert_eq!(with_refreshed.code, 1, "{with_refreshed:?}");
    assert!(
        with_refreshed.stdout.contains(&format!(
            "trusted root: refreshed trusted root {} (slipway-audit trusted-root refresh), sha256:{}",
            written.display(),
            sha256(&target)
        )),
        "{}",
        with_refreshed.stdout
    );
    let json = verify(&[], "json");
    let document: serde_json::Value = serde_json::from_str(&json.stdout).expect("json");
    assert_eq!(
        document["trusted_root"]["source"], "refreshed",
        "{document}"
    );
    assert_eq!(
        document["trusted_root"]["path"],
        written.display().to_string().as_str()
    );

    // Configured: wins over the refreshed root.
    let prod = sigstore_data().join("trusted_root.prod.json");
    let configured = verify(&[("SLIPWAY_SIGNING__TRUSTED_ROOT", &prod)], "text");
    assert_eq!(configured.code, 0, "{configured:?}");
    assert!(
        configured.stdout.contains(&format!(
            "trusted root: configured trusted root {} ([signing] trusted_root)",
            prod.display()
        )),
        "{}",
        configured.stdout
    );
}
