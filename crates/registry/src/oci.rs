//! [`OciRegistry`]: the [`Registry`] trait over the OCI distribution API, with `oci-client` doing
//! the HTTP, the token and basic-auth flows and digest checks.
//!
//! What we add around it:
//! - Credentials from [`DockerConfig`], looked up once per registry host and cached.
//! - Plain HTTP only for hosts in [`RegistryConfig::insecure_registries`]; HTTPS otherwise.
//! - Bounded retries with exponential backoff on 429, 5xx, timeouts and connection errors; never
//!   on another 4xx, which would answer the same again.
//! - Resolution: `HEAD` with every manifest media type in `Accept` (oci-client falls back to `GET`
//!   when the registry sends no `Docker-Content-Digest`), then, once per digest for the life of
//!   the client, a `GET` by digest to learn whether it is an index and which platform entry to
//!   deploy. Manifests named by digest never change, so that answer is cached.
//! - Artifacts: blobs first (skipping those already there), manifest last, monolithic uploads.
//!
//! - Requests: resolving a tag is one `GET` of its manifest (digest and kind in one answer; an
//!   index's platform entry is picked from it), and a signature is its manifest and its layers,
//!   so resolving and verifying an image with one signature costs 3 requests. oci-client 0.18
//!   probes `GET /v2/` before every anonymous request (it caches tokens, not the absence of
//!   one); anonymous reads of a registry that serves them without a token go direct instead
//!   (`open.rs`). Registries that ask for basic or bearer auth see the probe once per scope.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::errors::{OciDistributionError, OciErrorCode};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};
use slipway_core::{Digest, ImageRef};

use crate::manifest::{self, ALL_MANIFESTS, DOCKER_MANIFEST, Kind, OCI_MANIFEST, Platform};

mod open;
use crate::{
    Artifact, Credential, DockerConfig, Error, Layer, Manifest, Referrer, Registry, Resolved,
    Subject,
};

/// Largest layer of a signature or attestation artifact we read into memory.
const MAX_ARTIFACT_LAYER: u64 = 4 * 1024 * 1024;
/// Longest wait between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// Page size for tag listing.
const TAGS_PAGE: usize = 1000;

/// Settings of an [`OciRegistry`].
#[derive(Debug, Clone)]
pub struct RegistryConfig {
    /// Hosts (`host[:port]`) reached over plain HTTP. Everything else uses HTTPS.
    pub insecure_registries: Vec<String>,
    /// Per-request timeout for reading an answer.
    pub timeout: Duration,
    /// Timeout for opening a connection.
    pub connect_timeout: Duration,
    /// Retries after the first attempt, for 429, 5xx, timeouts and connection errors.
    pub retries: u32,
    /// Wait before the first retry; it doubles on each further retry, up to 10 s.
    pub backoff: Duration,
    /// The platform picked from multi-platform indexes.
    pub platform: Platform,
}

impl Default for RegistryConfig {
    fn default() -> RegistryConfig {
        RegistryConfig {
            insecure_registries: Vec::new(),
            timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            retries: 3,
            backoff: Duration::from_millis(500),
            platform: Platform {
                os: "linux".to_owned(),
                architecture: "amd64".to_owned(),
                variant: None,
            },
        }
    }
}

impl RegistryConfig {
    /// Allows plain HTTP to `registry` (`host[:port]`).
    #[must_use]
    pub fn insecure(mut self, registry: &str) -> RegistryConfig {
        self.insecure_registries.push(registry.to_owned());
        self
    }

    /// Sets the number of retries and the first backoff.
    #[must_use]
    pub fn retries(mut self, retries: u32, backoff: Duration) -> RegistryConfig {
        self.retries = retries;
        self.backoff = backoff;
        self
    }

    /// Sets the per-request read timeout.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> RegistryConfig {
        self.timeout = timeout;
        self
    }

    /// Wait before retry number `attempt` (1-based).
    fn backoff(&self, attempt: u32) -> Duration {
        self.backoff
            .saturating_mul(2_u32.saturating_pow(attempt.saturating_sub(1)))
            .min(MAX_BACKOFF)
    }
}

/// A registry reached over the network. See the module docs.
pub struct OciRegistry {
    client: Client,
    config: RegistryConfig,
    credentials: Arc<DockerConfig>,
    auth: Mutex<HashMap<String, Option<Credential>>>,
    /// Manifest digest → the platform digest when it is an index, `None` when it is an image.
    kinds: Mutex<HashMap<Digest, Option<Digest>>>,
    /// Anonymous reads without oci-client's probe.
    open: open::OpenReads,
}

impl std::fmt::Debug for OciRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OciRegistry")
            .field("config", &self.config)
            .field("credentials", &self.credentials.source())
            .finish_non_exhaustive()
    }
}

/// How one failed attempt is handled.
enum Failure {
    NotFound,
    Unauthorized(u16),
    Timeout,
    /// Worth another attempt: 429, 5xx, connection errors.
    Transient(String),
    /// Final: the registry would answer the same again.
    Rejected(String),
}

impl OciRegistry {
    /// A client with `config`, taking credentials from `credentials`.
    pub fn new(config: RegistryConfig, credentials: DockerConfig) -> Result<OciRegistry, Error> {
        let client_config = ClientConfig {
            protocol: ClientProtocol::HttpsExcept(config.insecure_registries.clone()),
            use_monolithic_push: true,
            platform_resolver: None,
            read_timeout: Some(config.timeout),
            connect_timeout: Some(config.connect_timeout),
            user_agent: concat!("slipway/", env!("CARGO_PKG_VERSION")),
            ..ClientConfig::default()
        };
        let client = Client::try_from(client_config).map_err(|err| Error::InvalidInput {
            operation: "configure the registry client for",
            image: "*".to_owned(),
            message: format!("cannot start the HTTP client: {err}"),
        })?;
        let open = open::OpenReads::new(&config).map_err(|err| Error::InvalidInput {
            operation: "configure the registry client for",
            image: "*".to_owned(),
            message: format!("cannot start the HTTP client: {err}"),
        })?;
        Ok(OciRegistry {
            client,
            config,
            credentials: Arc::new(credentials),
            auth: Mutex::default(),
            kinds: Mutex::default(),
            open,
        })
    }

    /// The settings in use.
    pub fn config(&self) -> &RegistryConfig {
        &self.config
    }

    async fn auth(&self, image: &ImageRef) -> Result<(RegistryAuth, bool), Error> {
        let registry = image.registry().to_owned();
        let cached = self
            .auth
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&registry)
            .cloned();
        let credential = match cached {
            Some(credential) => credential,
            None => {
                // Credential helpers are programs: run them off the async workers.
                let credentials = Arc::clone(&self.credentials);
                let host = registry.clone();
                let credential =
                    tokio::task::spawn_blocking(move || credentials.credentials(&host))
                        .await
                        .map_err(|err| Error::Credentials {
                            registry: registry.clone(),
                            message: format!("the credential lookup did not finish: {err}"),
                        })??;
                self.auth
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .insert(registry, credential.clone());
                credential
            }
        };
        Ok(match credential {
            None => (RegistryAuth::Anonymous, false),
            Some(Credential::Basic { username, password }) => (
                RegistryAuth::Basic(username, password.expose().to_owned()),
                true,
            ),
            Some(Credential::Bearer(token)) => {
                (RegistryAuth::Bearer(token.expose().to_owned()), true)
            }
        })
    }

    /// Runs `attempt` with the retry policy of the module docs and turns the last failure into an
    /// [`Error`] naming `operation` and `image`.
    async fn call<T, F, Fut>(
        &self,
        operation: &'static str,
        image: &ImageRef,
        had_credentials: bool,
        mut attempt: F,
    ) -> Result<T, Error>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, OciDistributionError>>,
    {
        self.retry(operation, image, had_credentials, || {
            let pending = attempt();
            async move { pending.await.map_err(|err| classify(&err)) }
        })
        .await
    }

    /// [`OciRegistry::call`] for attempts that classify their own failures.
    async fn retry<T, F, Fut>(
        &self,
        operation: &'static str,
        image: &ImageRef,
        had_credentials: bool,
        mut attempt: F,
    ) -> Result<T, Error>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, Failure>>,
    {
        let mut attempts = 0;
        loop {
            attempts += 1;
            let failure = match attempt().await {
                Ok(value) => {
                    tracing::debug!(operation, image = %image, attempts, "registry request");
                    return Ok(value);
                }
                Err(failure) => failure,
            };
            if matches!(failure, Failure::Transient(_) | Failure::Timeout)
                && attempts <= self.config.retries
            {
                tracing::debug!(operation, image = %image, attempts, "registry request failed; retrying");
                tokio::time::sleep(self.config.backoff(attempts)).await;
                continue;
            }
            let image_text = image.to_string();
            return Err(match failure {
                Failure::NotFound => Error::NotFound {
                    operation,
                    image: image_text,
                },
                Failure::Unauthorized(status) => Error::Unauthorized {
                    operation,
                    image: image_text,
                    registry: image.registry().to_owned(),
                    status,
                    had_credentials,
                },
                Failure::Timeout => Error::Timeout {
                    operation,
                    image: image_text,
                    timeout: self.config.timeout,
                    attempts,
                },
                Failure::Transient(message) => Error::Unavailable {
                    operation,
                    image: image_text,
                    message: format!("{message} (gave up after {attempts} attempt(s))"),
                },
                Failure::Rejected(message) => Error::Rejected {
                    operation,
                    image: image_text,
                    message,
                },
            });
        }
    }

    async fn fetch_manifest(
        &self,
        operation: &'static str,
        image: &ImageRef,
        reference: &Reference,
        accept: &[&str],
    ) -> Result<Manifest, Error> {
        let (auth, had_credentials) = self.auth(image).await?;
        let direct = if had_credentials || !self.open.usable(image.registry()) {
            None
        } else {
            let wanted = reference
                .digest()
                .or_else(|| reference.tag())
                .unwrap_or("latest");
            match self
                .retry(operation, image, false, || {
                    self.open.manifest(image, wanted, accept)
                })
                .await?
            {
                open::Read::Found(found) => Some(found),
                open::Read::NeedsToken => None,
            }
        };
        let (content, digest) = match direct {
            Some((content, digest)) => (content, digest),
            None => {
                let (content, digest) = self
                    .call(operation, image, had_credentials, || {
                        self.client.pull_manifest_raw(reference, &auth, accept)
                    })
                    .await?;
                (content.to_vec(), parse_digest(operation, image, &digest)?)
            }
        };
        let (media_type, _) = manifest::parse(&content).map_err(|message| Error::Rejected {
            operation,
            image: image.to_string(),
            message,
        })?;
        Ok(Manifest {
            digest,
            media_type,
            content,
        })
    }

    /// What `digest` names: `Some(platform digest)` for an index, `None` for an image.
    async fn kind(&self, image: &ImageRef, digest: &Digest) -> Result<Option<Digest>, Error> {
        if let Some(kind) = self
            .kinds
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(digest)
        {
            return Ok(kind.clone());
        }
        let pinned = image.with_digest(digest.clone());
        let fetched = self
            .fetch_manifest("resolve", &pinned, &reference(&pinned), &ALL_MANIFESTS)
            .await?;
        self.learn_kind(image, &fetched)
    }

    /// Reads what `fetched` is (see [`OciRegistry::kind`]) and caches it under its digest.
    fn learn_kind(&self, image: &ImageRef, fetched: &Manifest) -> Result<Option<Digest>, Error> {
        let digest = &fetched.digest;
        let (_, kind) = manifest::parse(&fetched.content).map_err(|message| Error::Rejected {
            operation: "resolve",
            image: image.to_string(),
            message,
        })?;
        let platform_digest = match kind {
            Kind::Image(_) => None,
            Kind::Index(entries) => {
                let Some(entry) = manifest::select_platform(&entries, &self.config.platform) else {
                    let available: Vec<String> = entries
                        .iter()
                        .filter_map(|entry| entry.platform.as_ref().map(ToString::to_string))
                        .collect();
                    return Err(Error::NoMatchingPlatform {
                        operation: "resolve",
                        image: image.to_string(),
                        platform: self.config.platform.to_string(),
                        available: if available.is_empty() {
                            "no platforms".to_owned()
                        } else {
                            available.join(", ")
                        },
                    });
                };
                Some(parse_digest("resolve", image, &entry.digest)?)
            }
        };
        self.kinds
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(digest.clone(), platform_digest.clone());
        Ok(platform_digest)
    }

    async fn head_digest(
        &self,
        operation: &'static str,
        image: &ImageRef,
    ) -> Result<Digest, Error> {
        let (auth, had_credentials) = self.auth(image).await?;
        let reference = reference(image);
        let digest = self
            .call(operation, image, had_credentials, || {
                self.client.fetch_manifest_digest(&reference, &auth)
            })
            .await?;
        parse_digest(operation, image, &digest)
    }

    async fn push_blob_if_missing(
        &self,
        image: &ImageRef,
        auth: &RegistryAuth,
        had_credentials: bool,
        digest: &Digest,
        data: &[u8],
    ) -> Result<(), Error> {
        let operation = "push artifact to";
        let reference = reference(image);
        let digest_text = digest.to_string();
        self.client
            .store_auth_if_needed(reference.resolve_registry(), auth)
            .await;
        let exists = self
            .call(operation, image, had_credentials, || {
                self.client.blob_exists(&reference, &digest_text)
            })
            .await?;
        if !exists {
            self.call(operation, image, had_credentials, || {
                self.client
                    .push_blob(&reference, data.to_vec(), &digest_text)
            })
            .await?;
        }
        Ok(())
    }
}

fn reference(image: &ImageRef) -> Reference {
    let (registry, repository) = (image.registry().to_owned(), image.repository().to_owned());
    match image.digest() {
        Some(digest) => Reference::with_digest(registry, repository, digest.to_string()),
        None => Reference::with_tag(
            registry,
            repository,
            image.tag().unwrap_or("latest").to_owned(),
        ),
    }
}

fn tag_reference(image: &ImageRef, tag: &str) -> Reference {
    Reference::with_tag(
        image.registry().to_owned(),
        image.repository().to_owned(),
        tag.to_owned(),
    )
}

fn parse_digest(operation: &'static str, image: &ImageRef, digest: &str) -> Result<Digest, Error> {
    Digest::parse(digest).map_err(|err| Error::Rejected {
        operation,
        image: image.to_string(),
        message: format!("the registry sent an invalid digest `{digest}` ({err})"),
    })
}

fn classify(err: &OciDistributionError) -> Failure {
    match err {
        OciDistributionError::RequestError(err) => classify_request(err),
        OciDistributionError::ServerError { code, message, .. } => classify_status(*code, message),
        OciDistributionError::RegistryError { envelope, .. } => {
            let codes: Vec<&OciErrorCode> =
                envelope.errors.iter().map(|error| &error.code).collect();
            let messages: Vec<&str> = envelope
                .errors
                .iter()
                .map(|error| error.message.as_str())
                .collect();
            if codes.iter().any(|code| {
                matches!(
                    code,
                    OciErrorCode::ManifestUnknown
                        | OciErrorCode::BlobUnknown
                        | OciErrorCode::NameUnknown
                        | OciErrorCode::NotFound
                )
            }) {
                Failure::NotFound
            } else if codes
                .iter()
                .any(|code| matches!(code, OciErrorCode::Unauthorized))
            {
                Failure::Unauthorized(401)
            } else if codes
                .iter()
                .any(|code| matches!(code, OciErrorCode::Denied))
            {
                Failure::Unauthorized(403)
            } else if codes
                .iter()
                .any(|code| matches!(code, OciErrorCode::Toomanyrequests))
            {
                Failure::Transient(format!(
                    "the registry is rate limiting us ({})",
                    messages.join("; ")
                ))
            } else {
                Failure::Rejected(format!(
                    "the registry refused the request: {}",
                    messages.join("; ")
                ))
            }
        }
        OciDistributionError::UnauthorizedError { .. } => Failure::Unauthorized(401),
        OciDistributionError::AuthenticationFailure(reason) => {
            tracing::debug!(reason, "token request refused");
            Failure::Unauthorized(401)
        }
        OciDistributionError::DigestError(err) => {
            Failure::Rejected(format!("the content does not match its digest ({err})"))
        }
        other => Failure::Rejected(other.to_string()),
    }
}

fn classify_request(err: &reqwest::Error) -> Failure {
    if err.is_timeout() {
        return Failure::Timeout;
    }
    if let Some(status) = err.status() {
        return classify_status(status.as_u16(), "");
    }
    // The source chain says why ("connection refused"); reqwest's own text only says which URL.
    let mut message = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        message = format!("{message}: {cause}");
        source = cause.source();
    }
    Failure::Transient(format!("cannot reach the registry ({message})"))
}

fn classify_status(code: u16, message: &str) -> Failure {
    let said = if message.trim().is_empty() {
        String::new()
    } else {
        format!(": {}", message.trim())
    };
    match code {
        404 => Failure::NotFound,
        401 | 403 => Failure::Unauthorized(code),
        429 => Failure::Transient(format!("the registry is rate limiting us (429){said}")),
        500..=599 => Failure::Transient(format!("the registry failed ({code}){said}")),
        _ => Failure::Rejected(format!("the registry answered {code}{said}")),
    }
}

#[async_trait::async_trait]
impl Registry for OciRegistry {
    async fn resolve(&self, image: &ImageRef) -> Result<Resolved, Error> {
        let digest = match image.digest() {
            // Pinned: the digest is the answer; HEAD checks the manifest exists, unless we
            // fetched it already (then `kind` answers from the cache).
            Some(digest) => {
                let known = self
                    .kinds
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .contains_key(digest);
                if known {
                    self.head_digest("resolve", image).await?;
                }
                digest.clone()
            }
            // A tag: one GET answers both its digest and what it is.
            None => {
                let fetched = self
                    .fetch_manifest("resolve", image, &reference(image), &ALL_MANIFESTS)
                    .await?;
                let platform = self.learn_kind(image, &fetched)?;
                return Ok(match platform {
                    Some(platform) => Resolved {
                        digest: platform,
                        index_digest: Some(fetched.digest),
                    },
                    None => Resolved {
                        digest: fetched.digest,
                        index_digest: None,
                    },
                });
            }
        };
        Ok(match self.kind(image, &digest).await? {
            Some(platform) => Resolved {
                digest: platform,
                index_digest: Some(digest),
            },
            None => Resolved {
                digest,
                index_digest: None,
            },
        })
    }

    async fn exists(&self, image: &ImageRef) -> Result<bool, Error> {
        match self.head_digest("check", image).await {
            Ok(_) => Ok(true),
            Err(Error::NotFound { .. }) => Ok(false),
            Err(err) => Err(err),
        }
    }

    async fn list_tags(&self, image: &ImageRef) -> Result<Vec<String>, Error> {
        let (auth, had_credentials) = self.auth(image).await?;
        let reference = reference(image);
        let mut tags: Vec<String> = Vec::new();
        loop {
            let last = tags.last().cloned();
            let page = self
                .call("list tags of", image, had_credentials, || {
                    self.client
                        .list_tags(&reference, &auth, Some(TAGS_PAGE), last.as_deref())
                })
                .await?;
            let full = page.tags.len() >= TAGS_PAGE;
            tags.extend(page.tags);
            if !full {
                break;
            }
        }
        tags.sort();
        tags.dedup();
        Ok(tags)
    }

    async fn get_manifest(&self, image: &ImageRef) -> Result<Manifest, Error> {
        self.fetch_manifest("read manifest of", image, &reference(image), &ALL_MANIFESTS)
            .await
    }

    async fn get_blob(&self, image: &ImageRef, digest: &Digest) -> Result<Vec<u8>, Error> {
        let (auth, had_credentials) = self.auth(image).await?;
        if !had_credentials && self.open.usable(image.registry()) {
            let read = self
                .retry("read blob of", image, false, || {
                    self.open.blob(image, digest)
                })
                .await?;
            if let open::Read::Found(data) = read {
                return Ok(data);
            }
        }
        let reference = reference(image);
        self.client
            .store_auth_if_needed(reference.resolve_registry(), &auth)
            .await;
        let digest_text = digest.to_string();
        self.call("read blob of", image, had_credentials, || async {
            let mut data = Vec::new();
            self.client
                .pull_blob(&reference, digest_text.as_str(), &mut data)
                .await?;
            Ok(data)
        })
        .await
    }

    async fn get_artifact(&self, image: &ImageRef, tag: &str) -> Result<Option<Artifact>, Error> {
        let operation = "read artifact of";
        let reference = tag_reference(image, tag);
        let fetched = match self
            .fetch_manifest(
                operation,
                image,
                &reference,
                &[OCI_MANIFEST, DOCKER_MANIFEST],
            )
            .await
        {
            Ok(fetched) => fetched,
            Err(Error::NotFound { .. }) => return Ok(None),
            Err(err) => return Err(err),
        };
        let (_, kind) = manifest::parse(&fetched.content).map_err(|message| Error::Rejected {
            operation,
            image: image.to_string(),
            message,
        })?;
        let Kind::Image(artifact_manifest) = kind else {
            return Err(Error::Rejected {
                operation,
                image: image.to_string(),
                message: format!("tag `{tag}` names an index, not an artifact manifest"),
            });
        };
        let mut layers = Vec::with_capacity(artifact_manifest.layers.len());
        for descriptor in artifact_manifest.layers {
            if descriptor.size > MAX_ARTIFACT_LAYER {
                return Err(Error::Rejected {
                    operation,
                    image: image.to_string(),
                    message: format!(
                        "layer {} of `{tag}` is {} bytes, more than a signature or attestation can be",
                        descriptor.digest, descriptor.size
                    ),
                });
            }
            let digest = parse_digest(operation, image, &descriptor.digest)?;
            let data = self.get_blob(image, &digest).await?;
            layers.push(Layer {
                media_type: descriptor.media_type,
                data,
                annotations: descriptor.annotations.unwrap_or_default(),
            });
        }
        Ok(Some(Artifact { layers }))
    }

    async fn put_artifact(
        &self,
        image: &ImageRef,
        tag: &str,
        artifact: &Artifact,
    ) -> Result<Digest, Error> {
        let (auth, had_credentials) = self.auth(image).await?;
        let upload = manifest::artifact_upload(&artifact.layers);
        // Blobs first, manifest last: if anything fails before the manifest is in, the tag still
        // names the previous manifest, whose blobs are all still there.
        for (digest, data) in &upload.blobs {
            self.push_blob_if_missing(image, &auth, had_credentials, digest, data)
                .await?;
        }
        let reference = tag_reference(image, tag);
        let content_type = reqwest::header::HeaderValue::from_static(OCI_MANIFEST);
        self.call("push artifact to", image, had_credentials, || {
            self.client
                .push_manifest_raw(&reference, upload.manifest.clone(), content_type.clone())
        })
        .await?;
        Ok(upload.digest)
    }

    async fn tag(&self, image: &ImageRef, tag: &str) -> Result<(), Error> {
        if image.digest().is_none() {
            return Err(Error::InvalidInput {
                operation: "tag",
                image: image.to_string(),
                message: "the image must be pinned by digest to be tagged".to_owned(),
            });
        }
        let existing = self
            .fetch_manifest("tag", image, &reference(image), &ALL_MANIFESTS)
            .await?;
        let (_, had_credentials) = self.auth(image).await?;
        let content_type =
            reqwest::header::HeaderValue::from_str(&existing.media_type).map_err(|_| {
                Error::Rejected {
                    operation: "tag",
                    image: image.to_string(),
                    message: format!("media type `{}` is not a valid header", existing.media_type),
                }
            })?;
        let reference = tag_reference(image, tag);
        self.call("tag", image, had_credentials, || {
            self.client.push_manifest_raw(
                &reference,
                existing.content.clone(),
                content_type.clone(),
            )
        })
        .await?;
        Ok(())
    }

    async fn referrers(&self, image: &ImageRef, subject: &Digest) -> Result<Vec<Referrer>, Error> {
        let (auth, had_credentials) = self.auth(image).await?;
        let reference = Reference::with_digest(
            image.registry().to_owned(),
            image.repository().to_owned(),
            subject.to_string(),
        );
        // oci-client asks the referrers API and, on 404, reads the tag schema's index itself.
        self.client
            .store_auth_if_needed(reference.resolve_registry(), &auth)
            .await;
        let index = self
            .call("list referrers of", image, had_credentials, || {
                self.client.pull_referrers(&reference, None)
            })
            .await?;
        Ok(index
            .manifests
            .into_iter()
            .map(|entry| Referrer {
                media_type: entry.media_type,
                digest: entry.digest,
                size: entry.size.try_into().unwrap_or_default(),
                artifact_type: entry.artifact_type,
                annotations: entry.annotations,
            })
            .collect())
    }

    async fn put_referrer(
        &self,
        image: &ImageRef,
        subject: &Subject,
        artifact_type: &str,
        layers: &[Layer],
        annotations: &std::collections::BTreeMap<String, String>,
    ) -> Result<Digest, Error> {
        let (auth, had_credentials) = self.auth(image).await?;
        let upload = manifest::referrer_upload(subject, artifact_type, layers, annotations);
        for (digest, data) in &upload.blobs {
            self.push_blob_if_missing(image, &auth, had_credentials, digest, data)
                .await?;
        }
        let by_digest = Reference::with_digest(
            image.registry().to_owned(),
            image.repository().to_owned(),
            upload.digest.to_string(),
        );
        let content_type = reqwest::header::HeaderValue::from_static(OCI_MANIFEST);
        self.call("push referrer to", image, had_credentials, || {
            self.client
                .push_manifest_raw(&by_digest, upload.manifest.clone(), content_type.clone())
        })
        .await?;
        // A registry with the referrers API lists the new manifest now; one without it answers
        // from the tag schema, which we extend (read, add, write: concurrent writers can race,
        // as with every tag-schema client).
        let listed = self.referrers(image, &subject.digest).await?;
        if listed
            .iter()
            .any(|entry| entry.digest == upload.digest.to_string())
        {
            return Ok(upload.digest);
        }
        let tag = manifest::referrers_tag(&subject.digest);
        let existing = match self
            .fetch_manifest(
                "read referrers index of",
                image,
                &tag_reference(image, &tag),
                &[manifest::OCI_INDEX],
            )
            .await
        {
            Ok(found) => Some(found.content),
            Err(Error::NotFound { .. }) => None,
            Err(err) => return Err(err),
        };
        let entry = Referrer {
            media_type: OCI_MANIFEST.to_owned(),
            digest: upload.digest.to_string(),
            size: upload.manifest.len() as u64,
            artifact_type: Some(artifact_type.to_owned()),
            annotations: (!annotations.is_empty()).then(|| annotations.clone()),
        };
        let index = manifest::add_referrer(existing.as_deref(), &entry).map_err(|message| {
            Error::Rejected {
                operation: "update referrers index of",
                image: image.to_string(),
                message,
            }
        })?;
        let index_type = reqwest::header::HeaderValue::from_static(manifest::OCI_INDEX);
        let tag_ref = tag_reference(image, &tag);
        self.call("update referrers index of", image, had_credentials, || {
            self.client
                .push_manifest_raw(&tag_ref, index.clone(), index_type.clone())
        })
        .await?;
        Ok(upload.digest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        let config = RegistryConfig::default().retries(5, Duration::from_millis(300));
        let waits: Vec<u128> = (1..=7)
            .map(|attempt| config.backoff(attempt).as_millis())
            .collect();
        assert_eq!(waits, [300, 600, 1200, 2400, 4800, 9600, 10_000]);
    }

    #[test]
    fn statuses_are_classified() {
        let kind = |code| match classify_status(code, "body") {
            Failure::NotFound => "not found".to_owned(),
            Failure::Unauthorized(status) => format!("unauthorized {status}"),
            Failure::Timeout => "timeout".to_owned(),
            Failure::Transient(message) => format!("retry: {message}"),
            Failure::Rejected(message) => format!("final: {message}"),
        };
        assert_eq!(kind(404), "not found");
        assert_eq!(kind(403), "unauthorized 403");
        assert_eq!(
            kind(429),
            "retry: the registry is rate limiting us (429): body"
        );
        assert_eq!(kind(503), "retry: the registry failed (503): body");
        assert_eq!(kind(400), "final: the registry answered 400: body");
        assert_eq!(kind(409), "final: the registry answered 409: body");
    }

    #[test]
    fn references_default_to_latest_and_prefer_digests() {
        let image = ImageRef::parse("127.0.0.1:5000/acme/app").expect("ref");
        assert_eq!(reference(&image).whole(), "127.0.0.1:5000/acme/app:latest");
        let digest = manifest::sha256(b"x");
        let pinned = ImageRef::parse("127.0.0.1:5000/acme/app:1")
            .expect("ref")
            .with_digest(digest.clone());
        assert_eq!(
            reference(&pinned).digest(),
            Some(digest.to_string().as_str())
        );
    }
}
