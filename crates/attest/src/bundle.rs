//! Sigstore bundles (v0.3) for images, as cosign v3 writes and reads them, with a key or keyless.
//!
//! Format (cosign's `specs/BUNDLE_SPEC.md`): the bundle is one layer of media type
//! [`BUNDLE_MEDIA_TYPE`] in an OCI 1.1 artifact manifest whose `artifactType` is the same media
//! type and whose `subject` is the image; registries list it through the referrers API or, without
//! one, the referrers tag schema (`sha256-<hex>` index): `slipway_registry::Registry::referrers`.
//! An image signature is a DSSE envelope over an in-toto Statement v1 whose subject is the image
//! manifest digest and whose predicateType is [`COSIGN_SIGN_PREDICATE`] (empty predicate).
//!
//! - With a key ([`sign_image_bundle`], [`verify_key_bundle`]): the bundle's verification
//!   material is a `publicKey` hint (the key id) and holds no transparency-log entry, as cosign
//!   v3 writes with `--key --tlog-upload=false`; cosign verifies it with `--insecure-ignore-tlog`.
//! - Keyless ([`verify_keyless_bundle`]): through the `sigstore` crate's bundle verifier, offline,
//!   against a [`TrustedRoot`] file. sigstore 0.15's `bundle::verify::Verifier` checks the Fulcio
//!   chain (at the certificate's issue time), the embedded SCT against the CT log keys, the
//!   identity policy, the signature (DSSE PAE and subject digest, or message digest) and that the
//!   Rekor entry's body matches the bundle; it does NOT check the Rekor signed entry timestamp or
//!   the inclusion proof (its source says `TODO ... sigstore-rs#285`). So [`verify_keyless_bundle`]
//!   checks both itself with sigstore's own public pieces ([`CosignVerificationKey`] for the SET,
//!   `rekor::models::InclusionProof::verify` for the Merkle path and the signed checkpoint),
//!   against the trusted root's Rekor keys, and verifies against only the CAs and logs whose
//!   `validFor` window contains the SET-signed integrated time ([`TrustedRoot::at`]). What sigstore 0.15 cannot do offline, and so Slipway
//!   does not: Rekor v2 entries (`hashedrekord`/`dsse` 0.0.2, no integrated time) and RFC 3161
//!   timestamps are refused, not verified.
//!
//! Why not `sigstore::cosign::Client::trusted_signature_layers`, which reads bundles from
//! referrers and checks SET and proof? It does its own registry I/O through its own `oci-client`
//! (a second connection pool and credentials outside `DockerConfig`), cannot be given Slipway's
//! registry, needs the image manifest itself in the registry, and accepts only certificate
//! bundles. The interop tests use it as the independent verifier (`tests/it/sigstore_interop.rs`).

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use sigstore::bundle::verify::policy::{PolicyError, PolicyResult, VerificationPolicy};
use sigstore::crypto::{CosignVerificationKey, Signature};
use slipway_core::{Digest, ImageRef};
use slipway_registry::{Layer, Registry, Subject};

use crate::dsse::{self, IN_TOTO_PAYLOAD_TYPE};
use crate::{Error, Signer, Verifier};

/// Media type of a Sigstore bundle v0.3, as cosign v3 writes it (layer and `artifactType`).
pub const BUNDLE_MEDIA_TYPE: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";
/// The older spelling of the same media type, still accepted when reading.
pub const BUNDLE_MEDIA_TYPE_OLD: &str = "application/vnd.dev.sigstore.bundle+json;version=0.3";
/// predicateType of cosign v3's image signature statement.
pub const COSIGN_SIGN_PREDICATE: &str = "https://sigstore.dev/cosign/sign/v1";
/// Manifest annotation: what the bundle holds (`dsse-envelope` or `message-signature`).
pub const CONTENT_ANNOTATION: &str = "dev.sigstore.bundle.content";
/// Manifest annotation: the statement's predicateType.
pub const PREDICATE_TYPE_ANNOTATION: &str = "dev.sigstore.bundle.predicateType";
/// OID of Fulcio's OIDC issuer extension (v1: the raw string).
const OIDC_ISSUER_V1: &str = "1.3.6.1.4.1.57264.1.1";
/// OID of Fulcio's OIDC issuer extension (v2: a DER UTF8String).
const OIDC_ISSUER_V2: &str = "1.3.6.1.4.1.57264.1.8";

// ---------------------------------------------------------------------------------------------
// Trusted root
// ---------------------------------------------------------------------------------------------

/// The trust material for keyless verification: Fulcio CA certificates, Rekor and CT log keys,
/// each with the window (`validFor`) in which the root says it may be trusted.
///
/// Read from a `trusted_root.json` (`application/vnd.dev.sigstore.trustedroot+json;version=0.1`,
/// the file sigstore's TUF repository publishes and `cosign trusted-root create` writes). Which
/// one is [`crate::trust_root::RootSource`]'s choice: `[signing] trusted_root`, else the root
/// `slipway-audit trusted-root refresh` wrote, else the built-in one. Nothing is fetched during
/// verification: refreshing is a command of its own ([`crate::trust_root::refresh`]).
///
/// **Validity windows.** A root keeps retired authorities (the 2021 Fulcio CA, the
/// `ctfe.sigstore.dev/test` log) so that old signatures still verify; they must not vouch for a
/// signature made after their window. [`verify_keyless_bundle`] therefore verifies against
/// [`TrustedRoot::at`] the Rekor entry's integrated time, the time the log signed (SET). As in
/// sigstore-python and sigstore-go, a missing `validFor` or `start` is no lower bound and a
/// missing `end` means still valid; the bounds are inclusive.
#[derive(Debug, Clone, Default)]
pub struct TrustedRoot {
    /// Hex SHA-256 of the document it was read from (which root, in reports).
    pub sha256: String,
    /// Fulcio certificate authorities: each chain (DER, roots and intermediates) and its window.
    pub certificate_authorities: Vec<CertificateAuthority>,
    /// Rekor logs: key (DER SubjectPublicKeyInfo) and window by hex log id.
    pub rekor_keys: BTreeMap<String, LogKey>,
    /// Certificate-transparency logs: key (DER) and window by hex log id.
    pub ctfe_keys: BTreeMap<String, LogKey>,
}

/// When a trusted root says an authority or log key may be trusted (`validFor`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Validity {
    /// `validFor.start`; `None`: no lower bound.
    pub start: Option<jiff::Timestamp>,
    /// `validFor.end`; `None`: still valid.
    pub end: Option<jiff::Timestamp>,
}

impl Validity {
    /// Whether `time` lies in the window (bounds included).
    pub fn contains(&self, time: jiff::Timestamp) -> bool {
        self.start.is_none_or(|start| start <= time) && self.end.is_none_or(|end| time <= end)
    }
}

impl std::fmt::Display for Validity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.start, self.end) {
            (Some(start), Some(end)) => write!(f, "valid {start} to {end}"),
            (Some(start), None) => write!(f, "valid from {start}"),
            (None, Some(end)) => write!(f, "valid until {end}"),
            (None, None) => f.write_str("always valid"),
        }
    }
}

/// One Fulcio CA of a trusted root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateAuthority {
    /// Its chain, DER (roots and intermediates).
    pub certs: Vec<Vec<u8>>,
    /// Its `validFor`.
    pub valid: Validity,
}

/// One transparency or certificate-transparency log key of a trusted root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogKey {
    /// The key, DER SubjectPublicKeyInfo.
    pub der: Vec<u8>,
    /// Its `publicKey.validFor`.
    pub valid: Validity,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct RootFile {
    #[serde(default)]
    tlogs: Vec<LogFile>,
    #[serde(default)]
    ctlogs: Vec<LogFile>,
    #[serde(default)]
    certificate_authorities: Vec<AuthorityFile>,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct LogFile {
    public_key: PublicKeyFile,
    log_id: KeyId,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct PublicKeyFile {
    #[serde(default)]
    raw_bytes: Option<String>,
    #[serde(default)]
    valid_for: Option<TimeRange>,
}

#[derive(serde::Deserialize)]
struct TimeRange {
    #[serde(default)]
    start: Option<String>,
    #[serde(default)]
    end: Option<String>,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct KeyId {
    key_id: String,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawBytes {
    #[serde(default)]
    raw_bytes: Option<String>,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct AuthorityFile {
    cert_chain: CertChain,
    #[serde(default)]
    valid_for: Option<TimeRange>,
}

#[derive(serde::Deserialize)]
struct CertChain {
    certificates: Vec<RawBytes>,
}

impl TrustedRoot {
    /// Parses a trusted-root JSON document; `name` (a path) appears in errors.
    pub fn from_json(name: &str, content: &[u8]) -> Result<TrustedRoot, Error> {
        let bad = |message: String| Error::Key {
            key: name.to_owned(),
            message: format!(
                "{message}\n\nhint: give a Sigstore trusted root (trusted_root.json, as `cosign trusted-root create` writes it)"
            ),
        };
        let file: RootFile = serde_json::from_slice(content)
            .map_err(|err| bad(format!("not a trusted root: {err}")))?;
        let decode = |text: &str, what: &str| {
            STANDARD
                .decode(text)
                .map_err(|_| bad(format!("{what} is not base64")))
        };
        let time = |text: &Option<String>, what: &str| {
            text.as_deref()
                .map(|text| {
                    text.parse::<jiff::Timestamp>().map_err(|err| {
                        bad(format!("{what} `{text}` is not an RFC 3339 time: {err}"))
                    })
                })
                .transpose()
        };
        let validity = |range: &Option<TimeRange>, what: &str| match range {
            None => Ok(Validity::default()),
            Some(range) => Ok(Validity {
                start: time(&range.start, &format!("{what} validFor.start"))?,
                end: time(&range.end, &format!("{what} validFor.end"))?,
            }),
        };
        let mut root = TrustedRoot {
            sha256: crate::trust_root::sha256_hex(content),
            ..TrustedRoot::default()
        };
        for authority in &file.certificate_authorities {
            let mut certs = Vec::new();
            for cert in &authority.cert_chain.certificates {
                if let Some(raw) = &cert.raw_bytes {
                    certs.push(decode(raw, "a certificate")?);
                }
            }
            if !certs.is_empty() {
                root.certificate_authorities.push(CertificateAuthority {
                    certs,
                    valid: validity(&authority.valid_for, "a certificate authority's")?,
                });
            }
        }
        for (logs, keys) in [
            (&file.tlogs, &mut root.rekor_keys),
            (&file.ctlogs, &mut root.ctfe_keys),
        ] {
            for log in logs {
                let Some(raw) = &log.public_key.raw_bytes else {
                    continue;
                };
                let id = hex::encode(decode(&log.log_id.key_id, "a log id")?);
                let valid = validity(&log.public_key.valid_for, &format!("log {id}'s key"))?;
                keys.insert(
                    id,
                    LogKey {
                        der: decode(raw, "a log key")?,
                        valid,
                    },
                );
            }
        }
        if root.certificate_authorities.is_empty() || root.rekor_keys.is_empty() {
            return Err(bad(
                "it lists no Fulcio certificate authority or no Rekor log".to_owned(),
            ));
        }
        Ok(root)
    }

    /// Reads and parses the trusted-root file at `path`.
    pub fn from_file(path: &std::path::Path) -> Result<TrustedRoot, Error> {
        let name = path.display().to_string();
        let content = std::fs::read(path).map_err(|err| Error::Key {
            key: name.clone(),
            message: format!(
                "cannot read the trusted root: {err}\n\nhint: set `[signing] trusted_root` to a trusted_root.json"
            ),
        })?;
        TrustedRoot::from_json(&name, &content)
    }

    /// The root restricted to the Fulcio CAs, Rekor logs and CT logs whose window contains
    /// `time`. An error names what is left with nothing: no Fulcio CA or no Rekor log valid then.
    pub fn at(&self, time: jiff::Timestamp) -> Result<TrustedRoot, String> {
        let keys = |keys: &BTreeMap<String, LogKey>| {
            keys.iter()
                .filter(|(_, key)| key.valid.contains(time))
                .map(|(id, key)| (id.clone(), key.clone()))
                .collect::<BTreeMap<_, _>>()
        };
        let root = TrustedRoot {
            sha256: self.sha256.clone(),
            certificate_authorities: self
                .certificate_authorities
                .iter()
                .filter(|ca| ca.valid.contains(time))
                .cloned()
                .collect(),
            rekor_keys: keys(&self.rekor_keys),
            ctfe_keys: keys(&self.ctfe_keys),
        };
        if root.certificate_authorities.is_empty() {
            return Err(format!(
                "no Fulcio CA of the trusted root was valid at {time} (the Rekor integrated time); the root lists {}",
                self.certificate_authorities
                    .iter()
                    .map(|ca| ca.valid.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        if root.rekor_keys.is_empty() {
            return Err(format!(
                "no Rekor log of the trusted root was valid at {time} (the Rekor integrated time)"
            ));
        }
        Ok(root)
    }

    fn manual(&self) -> sigstore::trust::ManualTrustRoot<'_> {
        let der = |keys: &BTreeMap<String, LogKey>| {
            keys.iter()
                .map(|(id, key)| (id.clone(), key.der.clone()))
                .collect()
        };
        sigstore::trust::ManualTrustRoot {
            fulcio_certs: self
                .certificate_authorities
                .iter()
                .flat_map(|ca| &ca.certs)
                .map(|der| rustls_pki_types::CertificateDer::from(der.as_slice()))
                .collect(),
            rekor_keys: der(&self.rekor_keys),
            ctfe_keys: der(&self.ctfe_keys),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Identity policy
// ---------------------------------------------------------------------------------------------

/// How an identity or issuer must match: cosign's `--certificate-identity` (exact) or
/// `--certificate-identity-regexp` (a regular expression, searched unanchored as Go's
/// `regexp.MatchString` does; anchor it with `^…$` to match the whole value).
#[derive(Debug, Clone)]
pub enum Matcher {
    /// Equal to this text.
    Exact(String),
    /// Matches this regular expression.
    Regexp(regex::Regex),
}

impl Matcher {
    /// A regexp matcher; `flag` names the option in the error.
    pub fn regexp(flag: &str, pattern: &str) -> Result<Matcher, Error> {
        regex::Regex::new(pattern)
            .map(Matcher::Regexp)
            .map_err(|err| {
                // The regex crate's message spans lines (the pattern, a caret, `error: …`):
                // keep its last line, the reason, so the error reads as one.
                let text = err.to_string();
                let reason = text
                    .lines()
                    .last()
                    .unwrap_or_default()
                    .trim_start_matches("error: ")
                    .to_owned();
                Error::Flag {
                    flag: flag.to_owned(),
                    message: format!(
                        "`{pattern}` is not a regular expression ({reason})\n\nhint: use Rust/Go regexp syntax, e.g. `^https://github.com/org/repo/`"
                    ),
                }
            })
    }

    /// Whether `value` matches.
    pub fn matches(&self, value: &str) -> bool {
        match self {
            Matcher::Exact(text) => value == text,
            Matcher::Regexp(re) => re.is_match(value),
        }
    }

    fn describe(&self) -> String {
        match self {
            Matcher::Exact(text) => format!("`{text}`"),
            Matcher::Regexp(re) => format!("the regexp `{}`", re.as_str()),
        }
    }
}

/// Who must have signed: the certificate's identity (SAN: email, URI or Sigstore other-name)
/// and the OIDC issuer that authenticated it. Both are required, as in cosign.
#[derive(Debug, Clone)]
pub struct KeylessPolicy {
    /// `--certificate-identity[-regexp]`.
    pub identity: Matcher,
    /// `--certificate-oidc-issuer[-regexp]`.
    pub issuer: Matcher,
}

impl KeylessPolicy {
    /// The policy from cosign's flags: exactly one of `--certificate-identity` and
    /// `--certificate-identity-regexp`, and exactly one of `--certificate-oidc-issuer` and
    /// `--certificate-oidc-issuer-regexp` (cosign requires both an identity and an issuer too).
    pub fn from_flags(
        identity: Option<&str>,
        identity_regexp: Option<&str>,
        issuer: Option<&str>,
        issuer_regexp: Option<&str>,
    ) -> Result<KeylessPolicy, Error> {
        fn one(
            exact: Option<&str>,
            regexp: Option<&str>,
            flag: &str,
            example: &str,
        ) -> Result<Matcher, Error> {
            match (exact, regexp) {
                (Some(text), None) => Ok(Matcher::Exact(text.to_owned())),
                (None, Some(pattern)) => Matcher::regexp(&format!("{flag}-regexp"), pattern),
                (Some(_), Some(_)) => Err(Error::Flag {
                    flag: flag.to_owned(),
                    message: format!(
                        "give `{flag}` or `{flag}-regexp`, not both\n\nhint: keep the exact form unless you mean a pattern"
                    ),
                }),
                (None, None) => Err(Error::Flag {
                    flag: flag.to_owned(),
                    message: format!(
                        "keyless verification needs `{flag}` (or `{flag}-regexp`)\n\nhint: e.g. `{flag} {example}`"
                    ),
                }),
            }
        }
        Ok(KeylessPolicy {
            identity: one(
                identity,
                identity_regexp,
                "--certificate-identity",
                "https://github.com/org/repo/.github/workflows/release.yml@refs/heads/main",
            )?,
            issuer: one(
                issuer,
                issuer_regexp,
                "--certificate-oidc-issuer",
                "https://token.actions.githubusercontent.com",
            )?,
        })
    }
}

/// The identity and issuer a Fulcio certificate names.
fn certificate_identity(cert: &x509_cert::Certificate) -> (Vec<String>, Option<String>) {
    use x509_cert::ext::pkix::SubjectAltName;
    use x509_cert::ext::pkix::name::GeneralName;
    let names = match cert.tbs_certificate().get_extension::<SubjectAltName>() {
        Ok(Some((_, san))) => san
            .0
            .iter()
            .filter_map(|name| match name {
                GeneralName::Rfc822Name(name) => Some(name.as_str().to_owned()),
                GeneralName::UniformResourceIdentifier(name) => Some(name.as_str().to_owned()),
                GeneralName::OtherName(name) => std::str::from_utf8(name.value.value())
                    .ok()
                    .map(str::to_owned),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    let extensions = cert
        .tbs_certificate()
        .extensions()
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    let extension = |oid: &str| {
        extensions
            .iter()
            .find(|ext| ext.extn_id.to_string() == oid)
            .map(|ext| ext.extn_value.as_bytes().to_vec())
    };
    let issuer = extension(OIDC_ISSUER_V1)
        .and_then(|raw| String::from_utf8(raw).ok())
        .or_else(|| {
            // v2: DER UTF8String (tag 0x0c, short or one-byte long length).
            extension(OIDC_ISSUER_V2).and_then(|raw| {
                let body = match raw.get(1)? {
                    len if *len < 0x80 => raw.get(2..)?,
                    0x81 => raw.get(3..)?,
                    _ => return None,
                };
                String::from_utf8(body.to_vec()).ok()
            })
        });
    (names, issuer)
}

impl VerificationPolicy for KeylessPolicy {
    fn verify(&self, cert: &x509_cert::Certificate) -> PolicyResult {
        let (names, issuer) = certificate_identity(cert);
        let issuer = issuer.ok_or(PolicyError::ExtensionNotFound)?;
        if !self.issuer.matches(&issuer) {
            return Err(PolicyError::ExtensionCheckFailed {
                extension: "OIDC issuer".to_owned(),
                expected: self.issuer.describe(),
                actual: format!("`{issuer}`"),
            });
        }
        if !names.iter().any(|name| self.identity.matches(name)) {
            return Err(PolicyError::ExtensionCheckFailed {
                extension: "identity (SubjectAltName)".to_owned(),
                expected: self.identity.describe(),
                actual: names
                    .iter()
                    .map(|n| format!("`{n}`"))
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Verification of one bundle
// ---------------------------------------------------------------------------------------------

/// Who signed a bundle that verified.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BundleSigner {
    /// Keyless: the certificate identity; with a key: the key id.
    pub signer: String,
    /// Keyless: the OIDC issuer.
    pub issuer: Option<String>,
    /// Keyless: the Rekor log index.
    pub log_index: Option<i64>,
    /// The statement's predicateType (`https://sigstore.dev/cosign/sign/v1` for a signature).
    pub predicate_type: Option<String>,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct BundleJson {
    media_type: String,
    #[serde(default)]
    dsse_envelope: Option<dsse::Envelope>,
}

fn statement_predicate(bundle: &BundleJson) -> Option<String> {
    let envelope = bundle.dsse_envelope.as_ref()?;
    let payload = STANDARD.decode(&envelope.payload).ok()?;
    let statement: serde_json::Value = serde_json::from_slice(&payload).ok()?;
    statement
        .get("predicateType")
        .and_then(|v| v.as_str())
        .map(str::to_owned)
}

fn parse_bundle(content: &[u8]) -> Result<BundleJson, String> {
    let bundle: BundleJson =
        serde_json::from_slice(content).map_err(|err| format!("not a Sigstore bundle: {err}"))?;
    if bundle.media_type != BUNDLE_MEDIA_TYPE && bundle.media_type != BUNDLE_MEDIA_TYPE_OLD {
        return Err(format!(
            "bundle media type `{}` is not a v0.3 bundle",
            bundle.media_type
        ));
    }
    Ok(bundle)
}

/// Verifies a keyless bundle for the artifact `digest` (an image manifest digest, or a file's
/// sha256 for a message signature): Fulcio chain, SCT, `policy`, signature and subject, and the
/// Rekor entry (SET required, inclusion proof checked when present). The chain, SCT and Rekor
/// key are checked against [`TrustedRoot::at`] the entry's integrated time: an authority the
/// root lists as retired before then does not count. Offline. The error says what failed, naming the identity or issuer on a mismatch.
pub async fn verify_keyless_bundle(
    content: &[u8],
    digest: &Digest,
    root: &TrustedRoot,
    policy: &KeylessPolicy,
) -> Result<BundleSigner, String> {
    let parsed = parse_bundle(content)?;
    let bundle: sigstore::bundle::Bundle =
        serde_json::from_slice(content).map_err(|err| format!("not a Sigstore bundle: {err}"))?;
    let material = bundle
        .verification_material
        .as_ref()
        .ok_or("the bundle has no verification material")?;
    let cert_der =
        match &material.content {
            Some(sigstore_content::Certificate(cert)) => cert.raw_bytes.clone(),
            Some(sigstore_content::X509CertificateChain(chain)) => chain
                .certificates
                .first()
                .map(|c| c.raw_bytes.clone())
                .ok_or("the bundle's certificate chain is empty")?,
            _ => return Err(
                "the bundle holds a public key, not a Fulcio certificate: verify it with the key"
                    .to_owned(),
            ),
        };
    let [entry] = material.tlog_entries.as_slice() else {
        return Err(format!(
            "a keyless bundle needs exactly one Rekor entry, this one has {}",
            material.tlog_entries.len()
        ));
    };
    let entry = entry.clone();
    let hash: [u8; 32] = hex::decode(digest.hex())
        .ok()
        .and_then(|bytes| bytes.try_into().ok())
        .ok_or_else(|| format!("{digest} is not a sha256 digest"))?;

    // The integrated time is trusted only once the log's signature over it (the SET) verified;
    // from then on, only what the root says was valid at that time may vouch for the bundle.
    let integrated = verify_rekor_entry(&entry, root)?;
    let root_then = root.at(integrated)?;

    let verifier = sigstore::bundle::verify::Verifier::new(
        sigstore::rekor::apis::configuration::Configuration::default(),
        root_then.manual(),
    )
    .map_err(|err| format!("the trusted root is not usable: {err}"))?;
    verifier
        .verify_digest_with(hash.into(), bundle, policy, true)
        .await
        .map_err(|err| {
            let left_out = root.certificate_authorities.len()
                - root_then.certificate_authorities.len()
                + root.ctfe_keys.len()
                - root_then.ctfe_keys.len();
            if left_out == 0 {
                err.to_string()
            } else {
                format!(
                    "{err} (against the trusted root at {integrated}, the Rekor integrated time: {left_out} Fulcio CA(s) or CT log(s) not valid then were left out)"
                )
            }
        })?;

    let cert = <x509_cert::Certificate as x509_cert::der::Decode>::from_der(&cert_der)
        .map_err(|err| format!("the certificate does not parse: {err}"))?;
    let (names, issuer) = certificate_identity(&cert);
    let signer = names
        .into_iter()
        .find(|name| policy.identity.matches(name))
        .unwrap_or_default();
    Ok(BundleSigner {
        signer,
        issuer,
        log_index: Some(entry.log_index),
        predicate_type: statement_predicate(&parsed),
    })
}

use sigstore_protobuf_specs::dev::sigstore::bundle::v1::verification_material::Content as sigstore_content;

/// The Rekor entry's signed entry timestamp and inclusion proof, against the trusted root's
/// Rekor keys (what sigstore 0.15's bundle verifier leaves undone). Returns the integrated time,
/// once the SET over it verified and the log's key was valid then.
///
/// The SET is required, the inclusion proof checked when present: the proof shows the entry is
/// in the log but does not sign its integrated time, and without a signed time neither the
/// certificate's 10-minute validity nor the trusted root's windows can be checked (a bundle
/// whose time was edited would slip through). sigstore-go likewise uses the integrated time only
/// from an entry with a verified SET, and cosign refuses a bundle without a verified time.
fn verify_rekor_entry(
    entry: &sigstore_protobuf_specs::dev::sigstore::rekor::v1::TransparencyLogEntry,
    root: &TrustedRoot,
) -> Result<jiff::Timestamp, String> {
    let log_id = entry
        .log_id
        .as_ref()
        .map(|id| hex::encode(&id.key_id))
        .ok_or("the Rekor entry names no log")?;
    let key_der = root
        .rekor_keys
        .get(&log_id)
        .ok_or_else(|| format!("the Rekor log {log_id} is not in the trusted root"))?;
    let key = CosignVerificationKey::try_from_der(&key_der.der)
        .map_err(|err| format!("the trusted root's Rekor key {log_id} is unusable: {err}"))?;
    let Some(promise) = &entry.inclusion_promise else {
        return Err(format!(
            "the Rekor entry (log index {}) has no signed entry timestamp: its integrated time is not signed, so when the certificate and the trusted root's authorities were valid cannot be checked",
            entry.log_index
        ));
    };
    {
        // The SET signs the canonical JSON (keys sorted, no spaces) of the entry's facts.
        let payload = format!(
            r#"{{"body":"{}","integratedTime":{},"logID":"{}","logIndex":{}}}"#,
            STANDARD.encode(&entry.canonicalized_body),
            entry.integrated_time,
            log_id,
            entry.log_index
        );
        key.verify_signature(
            Signature::Raw(&promise.signed_entry_timestamp),
            payload.as_bytes(),
        )
        .map_err(|_| {
            format!(
                "the Rekor signed entry timestamp does not verify (log index {}): the entry was altered or not logged by {log_id}",
                entry.log_index
            )
        })?;
    }
    if let Some(proof) = &entry.inclusion_proof {
        let checkpoint = proof
            .checkpoint
            .as_ref()
            .ok_or("the inclusion proof has no checkpoint")?;
        let checkpoint: sigstore::rekor::models::checkpoint::SignedCheckpoint =
            serde_json::from_value(serde_json::Value::String(checkpoint.envelope.clone()))
                .map_err(|err| format!("the inclusion proof's checkpoint does not parse: {err}"))?;
        let root_hash: [u8; 32] = proof
            .root_hash
            .as_slice()
            .try_into()
            .map_err(|_| "the inclusion proof's root hash is not 32 bytes")?;
        let hashes = proof
            .hashes
            .iter()
            .map(|h| <[u8; 32]>::try_from(h.as_slice()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| "an inclusion proof hash is not 32 bytes")?;
        let tree_size = u64::try_from(proof.tree_size).map_err(|_| "negative tree size")?;
        sigstore::rekor::models::inclusion_proof::InclusionProof::new(
            proof.log_index,
            root_hash,
            tree_size,
            hashes,
            Some(checkpoint),
        )
        .verify(&entry.canonicalized_body, &key)
        .map_err(|err| format!("the Rekor inclusion proof does not verify: {err}"))?;
    }
    let integrated = jiff::Timestamp::from_second(entry.integrated_time).map_err(|err| {
        format!(
            "the Rekor integrated time {} is out of range: {err}",
            entry.integrated_time
        )
    })?;
    if !key_der.valid.contains(integrated) {
        return Err(format!(
            "the Rekor log {log_id} of the trusted root was not valid at {integrated}, the entry's integrated time ({})",
            key_der.valid
        ));
    }
    Ok(integrated)
}

/// The in-toto statement cosign v3 signs for an image.
pub fn cosign_sign_statement(digest: &Digest) -> Vec<u8> {
    serde_json::json!({
        "_type": crate::attestation::IN_TOTO_STATEMENT_V1,
        "subject": [{"digest": {digest.algorithm().as_str(): digest.hex()}, "annotations": {}}],
        "predicateType": COSIGN_SIGN_PREDICATE,
    })
    .to_string()
    .into_bytes()
}

/// A key-signed bundle over `statement` (a DSSE envelope, `publicKey` hint, no tlog entry).
pub fn key_bundle(signer: &dyn Signer, statement: &[u8]) -> Result<Vec<u8>, Error> {
    let signature = signer.sign(&dsse::pae(IN_TOTO_PAYLOAD_TYPE, statement))?;
    Ok(serde_json::json!({
        "mediaType": BUNDLE_MEDIA_TYPE,
        "verificationMaterial": {
            "publicKey": {"hint": signer.key_id()},
            "tlogEntries": [],
        },
        "dsseEnvelope": {
            "payload": STANDARD.encode(statement),
            "payloadType": IN_TOTO_PAYLOAD_TYPE,
            "signatures": [{"sig": STANDARD.encode(signature), "keyid": ""}],
        },
    })
    .to_string()
    .into_bytes())
}

/// Verifies a bundle with trusted keys: the DSSE signature verifies with one of `keys` and the
/// statement's subject is `digest`. A keyless (certificate) bundle is judged by its signature
/// alone here: it verifies only if its certificate's key is one of `keys`, which it never is for a
/// Fulcio certificate (a fresh key per signature), so keyless bundles need [`Trust::Keyless`].
pub fn verify_key_bundle(
    content: &[u8],
    digest: &Digest,
    keys: &[&dyn Verifier],
) -> Result<BundleSigner, String> {
    let bundle = parse_bundle(content)?;
    let envelope = bundle
        .dsse_envelope
        .as_ref()
        .ok_or("the bundle holds a message signature, not a DSSE envelope")?;
    if envelope.payload_type != IN_TOTO_PAYLOAD_TYPE {
        return Err(format!(
            "payload type `{}` is not in-toto",
            envelope.payload_type
        ));
    }
    let payload = STANDARD
        .decode(&envelope.payload)
        .map_err(|_| "the DSSE payload is not base64")?;
    let pae = dsse::pae(&envelope.payload_type, &payload);
    let key = envelope
        .signatures
        .iter()
        .filter_map(|s| STANDARD.decode(&s.sig).ok())
        .find_map(|sig| keys.iter().find(|key| key.verify(&pae, &sig)))
        .ok_or_else(|| {
            format!(
                "the bundle's signature does not verify with any of the {} trusted key(s)",
                keys.len()
            )
        })?;
    let statement: serde_json::Value =
        serde_json::from_slice(&payload).map_err(|err| format!("statement is not JSON: {err}"))?;
    let covers = statement
        .get("subject")
        .and_then(|s| s.as_array())
        .is_some_and(|subjects| {
            subjects.iter().any(|subject| {
                subject
                    .pointer(&format!("/digest/{}", digest.algorithm().as_str()))
                    .and_then(|v| v.as_str())
                    == Some(digest.hex())
            })
        });
    if !covers {
        return Err(format!(
            "the signed statement's subject is not the image digest {digest}"
        ));
    }
    Ok(BundleSigner {
        signer: key.key_id(),
        issuer: None,
        log_index: None,
        predicate_type: statement_predicate(&bundle),
    })
}

// ---------------------------------------------------------------------------------------------
// Images: sign, find, verify (both formats)
// ---------------------------------------------------------------------------------------------

/// Signs the pinned image as cosign v3 does with `--key` (and `--tlog-upload=false`): a bundle
/// pushed as an OCI 1.1 referrer of the image (tag-schema index where the registry has no
/// referrers API). Appends: other referrers stay. Returns the referrer manifest's digest.
pub async fn sign_image_bundle(
    registry: &dyn Registry,
    signer: &dyn Signer,
    image: &ImageRef,
) -> Result<Digest, Error> {
    let digest = crate::attestation::pinned(image)?;
    attach_statement_bundle(
        registry,
        signer,
        image,
        &cosign_sign_statement(digest),
        COSIGN_SIGN_PREDICATE,
    )
    .await
}

/// Attaches an in-toto `statement` (whose predicateType is `predicate_type`) to the pinned
/// image as cosign v3's `attest --key` does: a key-signed bundle in an OCI 1.1 referrer,
/// annotated with its content and predicate type. Appends. Returns the referrer's digest.
pub async fn attach_statement_bundle(
    registry: &dyn Registry,
    signer: &dyn Signer,
    image: &ImageRef,
    statement: &[u8],
    predicate_type: &str,
) -> Result<Digest, Error> {
    let digest = crate::attestation::pinned(image)?;
    let registry_error = |source| Error::Registry {
        image: image.to_string(),
        source,
    };
    let manifest = registry.get_manifest(image).await.map_err(registry_error)?;
    let bundle = key_bundle(signer, statement)?;
    let annotations = BTreeMap::from([
        (CONTENT_ANNOTATION.to_owned(), "dsse-envelope".to_owned()),
        (
            PREDICATE_TYPE_ANNOTATION.to_owned(),
            predicate_type.to_owned(),
        ),
        (
            "org.opencontainers.image.created".to_owned(),
            jiff::Timestamp::now()
                .strftime("%Y-%m-%dT%H:%M:%SZ")
                .to_string(),
        ),
    ]);
    let subject = Subject {
        digest: digest.clone(),
        media_type: manifest.media_type,
        size: manifest.content.len() as u64,
    };
    registry
        .put_referrer(
            image,
            &subject,
            BUNDLE_MEDIA_TYPE,
            &[Layer {
                media_type: BUNDLE_MEDIA_TYPE.to_owned(),
                data: bundle,
                annotations: BTreeMap::new(),
            }],
            &annotations,
        )
        .await
        .map_err(registry_error)
}

/// The attestation in one bundle found among the image's referrers, checked as
/// [`crate::attestation::check_layer`] checks a `.att` layer: signature (with the keys, or
/// keyless against the trusted root and identity policy), in-toto statement, subject. `None`
/// for an image-signature bundle (predicateType [`COSIGN_SIGN_PREDICATE`]): that is for
/// `verify-image`, not an attestation. `index` is the bundle's place among the image's bundles.
pub async fn check_attestation_bundle(
    index: usize,
    found: &FoundBundle,
    digest: &Digest,
    trust: Trust<'_>,
) -> Option<crate::attestation::StatementCheck> {
    let parsed = parse_bundle(&found.content);
    let claimed = parsed.as_ref().ok().and_then(statement_predicate);
    if claimed.as_deref() == Some(COSIGN_SIGN_PREDICATE) {
        return None;
    }
    let mut check = crate::attestation::StatementCheck {
        layer: index,
        source: format!("{BUNDLE_SIGNATURE_SOURCE} {}", found.manifest),
        key_id: None,
        annotated_type: claimed,
        statement: None,
        failure: None,
    };
    let verified = match parsed {
        Err(reason) => Err(reason),
        Ok(parsed) if parsed.dsse_envelope.is_none() => Err(
            "the bundle holds a message signature, not an in-toto statement in a DSSE envelope"
                .to_owned(),
        ),
        Ok(parsed) => match trust {
            Trust::Keys(keys) => verify_key_bundle(&found.content, digest, keys),
            Trust::Keyless { root, policy } => {
                verify_keyless_bundle(&found.content, digest, root, policy).await
            }
        }
        .and_then(|signer| {
            let payload = parsed
                .dsse_envelope
                .as_ref()
                .map(|envelope| STANDARD.decode(&envelope.payload))
                .transpose()
                .map_err(|_| "the envelope's payload is not base64".to_owned())?
                .unwrap_or_default();
            let statement = crate::attestation::about_image(&payload, digest)?;
            Ok((signer, statement))
        }),
    };
    match verified {
        Ok((signer, statement)) => {
            check.key_id = Some(match signer.issuer {
                Some(issuer) => format!("{} (issuer {issuer})", signer.signer),
                None => signer.signer,
            });
            check.statement = Some(statement);
        }
        Err(reason) => check.failure = Some(reason),
    }
    Some(check)
}

/// A Sigstore bundle found among the image's referrers.
#[derive(Debug, Clone)]
pub struct FoundBundle {
    /// The referrer manifest's digest.
    pub manifest: String,
    /// The bundle JSON.
    pub content: Vec<u8>,
}

/// The Sigstore bundles attached to the pinned image: referrers whose manifest has a bundle
/// layer (filtered on the layer's media type, not on the index entry's `artifactType`, which
/// some registries report as the empty type).
pub async fn find_bundles(
    registry: &dyn Registry,
    image: &ImageRef,
) -> Result<Vec<FoundBundle>, Error> {
    let digest = crate::attestation::pinned(image)?;
    let registry_error = |source| Error::Registry {
        image: image.to_string(),
        source,
    };
    let referrers = registry
        .referrers(image, digest)
        .await
        .map_err(registry_error)?;
    let mut found = Vec::new();
    for referrer in referrers {
        if referrer.artifact_type.as_deref().is_some_and(|t| {
            !t.starts_with("application/vnd.dev.sigstore.bundle")
                && t != slipway_registry::manifest::OCI_EMPTY
        }) {
            continue;
        }
        let Ok(manifest_digest) = Digest::parse(&referrer.digest) else {
            continue;
        };
        let manifest = registry
            .get_manifest(&image.with_digest(manifest_digest))
            .await
            .map_err(registry_error)?;
        let Ok((_, slipway_registry::manifest::Kind::Image(parsed))) =
            slipway_registry::manifest::parse(&manifest.content)
        else {
            continue;
        };
        for layer in parsed.layers {
            if layer.media_type != BUNDLE_MEDIA_TYPE && layer.media_type != BUNDLE_MEDIA_TYPE_OLD {
                continue;
            }
            let Ok(layer_digest) = Digest::parse(&layer.digest) else {
                continue;
            };
            let content = registry
                .get_blob(image, &layer_digest)
                .await
                .map_err(registry_error)?;
            found.push(FoundBundle {
                manifest: referrer.digest.clone(),
                content,
            });
        }
    }
    Ok(found)
}

/// The two places a cosign signature can be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SignatureFormat {
    /// cosign's simple-signing layer under the `sha256-<hex>.sig` tag (cosign v2 and earlier).
    LegacyTag,
    /// A Sigstore bundle v0.3 attached as an OCI 1.1 referrer (cosign v3's default).
    SigstoreBundle,
}

impl std::fmt::Display for SignatureFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SignatureFormat::LegacyTag => "cosign .sig tag",
            SignatureFormat::SigstoreBundle => "Sigstore bundle (OCI referrer)",
        })
    }
}

/// What to trust.
#[derive(Clone, Copy)]
pub enum Trust<'a> {
    /// Public keys (`--key`).
    Keys(&'a [&'a dyn Verifier]),
    /// Keyless: certificates from the trusted root's Fulcio, for this identity and issuer.
    Keyless {
        /// The trust material.
        root: &'a TrustedRoot,
        /// Who must have signed.
        policy: &'a KeylessPolicy,
    },
}

/// One signature found, in either format, and its verdict.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FormatCheck {
    /// Where it was found.
    pub format: SignatureFormat,
    /// The `.sig` layer (`layer #N`) or the referrer manifest digest.
    pub source: String,
    /// The key that verified the signature bytes, even when a claim then failed (`.sig` only).
    pub key_id: Option<String>,
    /// Who signed, when it verified.
    pub signer: Option<BundleSigner>,
    /// Why not, when it did not.
    pub failure: Option<String>,
}

/// Every signature of an image in both formats. The image is verified when any one verified.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize)]
pub struct ImageVerification {
    /// One entry per signature found.
    pub checks: Vec<FormatCheck>,
}

impl ImageVerification {
    /// The first signature that verified.
    pub fn verified(&self) -> Option<&FormatCheck> {
        self.checks.iter().find(|check| check.signer.is_some())
    }

    /// Why nothing verified, one reason per signature (or that none was found).
    pub fn reasons(&self) -> Vec<String> {
        if self.checks.is_empty() {
            return vec![
                "no signature found: neither a `.sig` tag nor a Sigstore bundle among the referrers"
                    .to_owned(),
            ];
        }
        self.checks
            .iter()
            .filter_map(|check| {
                check
                    .failure
                    .as_ref()
                    .map(|why| format!("{} {}: {why}", check.format, check.source))
            })
            .collect()
    }
}

/// Verifies the pinned image's signatures in both formats: the legacy `.sig` tag (keys only:
/// Slipway reads no keyless `.sig` layers) and the Sigstore bundles among its referrers. Only
/// signature bundles (predicateType `https://sigstore.dev/cosign/sign/v1`) count; attestation
/// bundles are for `verify-attestation`.
///
/// With keys, the referrers are read only when no `.sig` signature verified: an image signed in
/// the legacy format costs no extra request (the referrers API, and the tag-schema fallback
/// behind a 404, are one or two more), and when nothing verifies every signature of both formats
/// is listed with its reason.
pub async fn verify_image_any_format(
    registry: &dyn Registry,
    image: &ImageRef,
    trust: Trust<'_>,
) -> Result<ImageVerification, Error> {
    let digest = crate::attestation::pinned(image)?.clone();
    let mut checks = Vec::new();
    if let Trust::Keys(keys) = trust {
        let report = crate::verify_image(registry, keys, image).await?;
        for check in report.signatures {
            checks.push(FormatCheck {
                format: SignatureFormat::LegacyTag,
                source: format!("layer #{}", check.layer),
                key_id: check.key_id.clone(),
                signer: check.ok.then(|| BundleSigner {
                    signer: check.key_id.clone().unwrap_or_default(),
                    issuer: None,
                    log_index: None,
                    predicate_type: None,
                }),
                failure: (!check.ok).then(|| check.reason.clone()),
            });
        }
    }
    if checks.iter().any(|check| check.signer.is_some()) {
        return Ok(ImageVerification { checks });
    }
    for found in find_bundles(registry, image).await? {
        let result = match trust {
            Trust::Keys(keys) => verify_key_bundle(&found.content, &digest, keys),
            Trust::Keyless { root, policy } => {
                verify_keyless_bundle(&found.content, &digest, root, policy).await
            }
        };
        let result = result.and_then(|signer| match signer.predicate_type.as_deref() {
            Some(COSIGN_SIGN_PREDICATE) => Ok(signer),
            other => Err(format!(
                "an attestation (predicateType `{}`), not a signature",
                other.unwrap_or("none")
            )),
        });
        checks.push(FormatCheck {
            format: SignatureFormat::SigstoreBundle,
            source: found.manifest,
            key_id: result.as_ref().ok().map(|signer| signer.signer.clone()),
            failure: result.as_ref().err().cloned(),
            signer: result.ok(),
        });
    }
    Ok(ImageVerification { checks })
}

/// [`SignatureCheck::source`](crate::SignatureCheck) of a signature read from a Sigstore bundle
/// among the image's OCI referrers (followed by the referrer manifest's digest).
pub const BUNDLE_SIGNATURE_SOURCE: &str = "Sigstore bundle";

/// [`verify_image_any_format`] as a [`VerificationReport`](crate::VerificationReport): one
/// [`SignatureCheck`](crate::SignatureCheck) per signature found, the legacy `.sig` layers first
/// (keys only), then each bundle with `source` = `Sigstore bundle sha256:…` and its `layer` the
/// bundle's index. What `verify-image` prints; keyless rows name the certificate identity as
/// `key_id`.
pub async fn verify_image_report(
    registry: &dyn Registry,
    image: &ImageRef,
    trust: Trust<'_>,
) -> Result<crate::VerificationReport, Error> {
    let digest = crate::attestation::pinned(image)?.clone();
    let mut report = match trust {
        Trust::Keys(keys) => crate::verify_image(registry, keys, image).await?,
        Trust::Keyless { .. } => crate::VerificationReport::default(),
    };
    if report.signatures.iter().any(|check| check.ok) {
        return Ok(report);
    }
    for (idx, found) in find_bundles(registry, image).await?.into_iter().enumerate() {
        let result = match trust {
            Trust::Keys(keys) => verify_key_bundle(&found.content, &digest, keys),
            Trust::Keyless { root, policy } => {
                verify_keyless_bundle(&found.content, &digest, root, policy).await
            }
        }
        .and_then(|signer| match signer.predicate_type.as_deref() {
            Some(COSIGN_SIGN_PREDICATE) => Ok(signer),
            other => Err(format!(
                "an attestation (predicateType `{}`), not a signature",
                other.unwrap_or("none")
            )),
        });
        let source = format!("{BUNDLE_SIGNATURE_SOURCE} {}", found.manifest);
        report.signatures.push(match result {
            Ok(signer) => crate::SignatureCheck {
                layer: idx,
                source,
                reason: match (&signer.issuer, signer.log_index) {
                    (Some(issuer), Some(index)) => format!(
                        "signature by {} (issuer {issuer}) verified against the trusted root; Rekor log index {index}; the statement's subject is the image digest",
                        signer.signer
                    ),
                    _ => format!(
                        "signature by {} verified; the statement's subject is the image digest",
                        signer.signer
                    ),
                },
                key_id: Some(signer.signer),
                ok: true,
                reference_mismatch: None,
            },
            Err(reason) => crate::SignatureCheck {
                layer: idx,
                source,
                key_id: None,
                ok: false,
                reason,
                reference_mismatch: None,
            },
        });
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_need_one_identity_and_one_issuer() {
        let policy =
            KeylessPolicy::from_flags(Some("me@example.com"), None, None, Some("^https://"))
                .expect("policy");
        assert!(policy.identity.matches("me@example.com"));
        assert!(!policy.identity.matches("me@example.com.evil"));
        assert!(policy.issuer.matches("https://accounts.google.com"));

        let err = KeylessPolicy::from_flags(None, None, Some("https://x"), None)
            .expect_err("no identity");
        assert!(err.to_string().contains("--certificate-identity"), "{err}");
        let err = KeylessPolicy::from_flags(Some("a"), Some("b"), Some("https://x"), None)
            .expect_err("both forms");
        assert!(err.to_string().contains("not both"), "{err}");
        let err = KeylessPolicy::from_flags(Some("a"), None, None, None).expect_err("no issuer");
        assert!(
            err.to_string().contains("--certificate-oidc-issuer"),
            "{err}"
        );
        let err = KeylessPolicy::from_flags(None, Some("("), Some("https://x"), None)
            .expect_err("bad regexp");
        assert!(
            err.to_string().contains("--certificate-identity-regexp"),
            "{err}"
        );
    }

    #[test]
    fn a_trusted_root_without_fulcio_or_rekor_is_refused() {
        let err =
            TrustedRoot::from_json("root.json", br#"{"tlogs":[],"certificateAuthorities":[]}"#)
                .expect_err("empty");
        assert!(err.to_string().contains("root.json"), "{err}");
        let err = TrustedRoot::from_json("root.json", b"not json").expect_err("not json");
        assert!(err.to_string().contains("not a trusted root"), "{err}");
    }
}
