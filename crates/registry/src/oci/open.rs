//! Anonymous reads without a probe: the `GET`s a verification needs, sent straight to a
//! registry that serves them without a token.
//!
//! oci-client answers every anonymous request by first asking `GET /v2/` whether the registry
//! wants a token, and caches tokens but not the absence of one, so an open registry sees every
//! read twice. For a host Slipway has no credentials for, [`OpenReads`] sends the manifest and
//! blob `GET`s itself (same timeouts, user agent and plain-HTTP rule) and checks each answer
//! against its digest. The first `401` marks the host as one that wants a token, and from then
//! on the caller uses oci-client's token flow for it; Docker Hub always wants one, so it goes
//! there at once. Hosts with credentials never come here.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use slipway_core::{Digest, ImageRef};

use super::{Failure, RegistryConfig, classify_request, classify_status};
use crate::manifest;

/// Largest manifest read (an image index of many platforms is well under it).
const MAX_MANIFEST: u64 = 4 * 1024 * 1024;

/// Hosts that always ask anonymous clients for a token.
const TOKEN_ONLY: &[&str] = &["docker.io", "index.docker.io", "registry-1.docker.io"];

/// What one direct read found.
pub(super) enum Read<T> {
    /// The registry answered.
    Found(T),
    /// The registry wants a token: use the authenticating client.
    NeedsToken,
}

/// Direct anonymous reads (see the module docs).
pub(super) struct OpenReads {
    http: reqwest::Client,
    insecure: Vec<String>,
    /// Hosts known to want a token for anonymous reads.
    closed: Mutex<HashMap<String, ()>>,
}

impl OpenReads {
    pub(super) fn new(config: &RegistryConfig) -> Result<OpenReads, reqwest::Error> {
        let http = reqwest::Client::builder()
            .user_agent(concat!("slipway/", env!("CARGO_PKG_VERSION")))
            .timeout(config.timeout)
            .connect_timeout(config.connect_timeout)
            .build()?;
        Ok(OpenReads {
            http,
            insecure: config.insecure_registries.clone(),
            closed: Mutex::default(),
        })
    }

    /// Whether anonymous reads of `host` may go direct.
    pub(super) fn usable(&self, host: &str) -> bool {
        !TOKEN_ONLY.contains(&host)
            && !self
                .closed
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .contains_key(host)
    }

    fn close(&self, host: &str) {
        tracing::debug!(host, "registry wants a token for anonymous reads");
        self.closed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(host.to_owned(), ());
    }

    fn url(&self, image: &ImageRef, kind: &str, reference: &str) -> String {
        let host = image.registry();
        let scheme = if self.insecure.iter().any(|insecure| insecure == host) {
            "http"
        } else {
            "https"
        };
        format!(
            "{scheme}://{host}/v2/{}/{kind}/{reference}",
            image.repository()
        )
    }

    /// `GET` of a manifest by tag or digest (`reference`), accepting `accept`: the content and
    /// its digest, checked against the `Docker-Content-Digest` header and a requested digest.
    pub(super) async fn manifest(
        &self,
        image: &ImageRef,
        reference: &str,
        accept: &[&str],
    ) -> Result<Read<(Vec<u8>, Digest)>, Failure> {
        let url = self.url(image, "manifests", reference);
        tracing::debug!(%url, "GET manifest");
        let response = self
            .http
            .get(&url)
            .header(reqwest::header::ACCEPT, accept.join(", "))
            .send()
            .await
            .map_err(|err| classify_request(&err))?;
        let Some(response) = self.answered(image, response).await? else {
            return Ok(Read::NeedsToken);
        };
        if response
            .content_length()
            .is_some_and(|length| length > MAX_MANIFEST)
        {
            return Err(Failure::Rejected(format!(
                "the manifest is larger than {MAX_MANIFEST} bytes, more than any image or signature manifest"
            )));
        }
        let said = response
            .headers()
            .get("docker-content-digest")
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned);
        let content = response
            .bytes()
            .await
            .map_err(|err| classify_request(&err))?
            .to_vec();
        let digest = manifest::sha256(&content);
        let claimed = [
            said.as_deref(),
            reference.strip_prefix("sha256:").map(|_| reference),
        ];
        if let Some(other) = claimed
            .into_iter()
            .flatten()
            .find(|claimed| claimed.starts_with("sha256:") && *claimed != digest.to_string())
        {
            return Err(Failure::Rejected(format!(
                "the manifest does not match its digest (expected {other}, got {digest})"
            )));
        }
        Ok(Read::Found((content, digest)))
    }

    /// `GET` of a blob, checked against `digest`.
    pub(super) async fn blob(
        &self,
        image: &ImageRef,
        digest: &Digest,
    ) -> Result<Read<Vec<u8>>, Failure> {
        let url = self.url(image, "blobs", &digest.to_string());
        tracing::debug!(%url, "GET blob");
        let response = self
            .http
            .get(&url)
            .send()
            .await
            .map_err(|err| classify_request(&err))?;
        let Some(response) = self.answered(image, response).await? else {
            return Ok(Read::NeedsToken);
        };
        let data = response
            .bytes()
            .await
            .map_err(|err| classify_request(&err))?
            .to_vec();
        let got = manifest::sha256(&data);
        if got != *digest {
            return Err(Failure::Rejected(format!(
                "the blob does not match its digest (expected {digest}, got {got})"
            )));
        }
        Ok(Read::Found(data))
    }

    /// The response when it is a success; `None` when the registry wants a token; the failure
    /// otherwise (404 is [`Failure::NotFound`]).
    async fn answered(
        &self,
        image: &ImageRef,
        response: reqwest::Response,
    ) -> Result<Option<reqwest::Response>, Failure> {
        let status = response.status().as_u16();
        if response.status().is_success() {
            return Ok(Some(response));
        }
        if status == 401 {
            self.close(image.registry());
            return Ok(None);
        }
        let body = response.text().await.unwrap_or_default();
        Err(classify_status(status, &body))
    }
}
