//! The OCI registry boundary: the [`Registry`] trait and the implementations Slipway ships.
//!
//! Implementations:
//! - [`MemoryRegistry`]: an in-process registry with repositories, tags, manifests and cosign-style
//!   artifact tags (`sha256-<hex>.sig`). The dry run and the pipeline tests use it.
//!
//! Key design decision: the trait speaks in Slipway's own types ([`ImageRef`], [`Digest`],
//! [`Artifact`]), never in `oci-client`'s, so a caller can swap implementations and the vendor
//! crate stays an implementation detail.

mod memory;

use std::collections::BTreeMap;

pub use memory::MemoryRegistry;
use slipway_core::{Digest, ImageRef};

/// What a tag resolved to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// The manifest that runs on the requested platform: this is what gets deployed.
    pub digest: Digest,
    /// The index (manifest list) digest, when the tag points at a multi-platform index.
    pub index_digest: Option<Digest>,
}

/// One layer of a small artifact (a signature, an attestation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layer {
    /// Media type, e.g. `application/vnd.dev.cosign.simplesigning.v1+json`.
    pub media_type: String,
    /// Layer content.
    pub data: Vec<u8>,
    /// Layer annotations (cosign keeps the signature here).
    pub annotations: BTreeMap<String, String>,
}

/// A small artifact stored under a tag: an ordered list of layers.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Artifact {
    /// The layers, in order.
    pub layers: Vec<Layer>,
}

/// Errors talking to a registry. Each names the image and the operation.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The repository, tag or digest does not exist.
    #[error("{operation} `{image}`: not found in the registry\n\nhint: check the repository and tag, and that the image was pushed")]
    NotFound {
        /// What we were doing.
        operation: &'static str,
        /// The image.
        image: String,
    },
    /// The registry refused our credentials.
    #[error("{operation} `{image}`: the registry refused access ({status})\n\nhint: log in with `docker login {registry}` or check the token")]
    Unauthorized {
        /// What we were doing.
        operation: &'static str,
        /// The image.
        image: String,
        /// The registry host.
        registry: String,
        /// HTTP status.
        status: u16,
    },
    /// The registry could not be reached or failed.
    #[error("{operation} `{image}`: {message}")]
    Unavailable {
        /// What we were doing.
        operation: &'static str,
        /// The image.
        image: String,
        /// What went wrong.
        message: String,
    },
    /// The reference lacks a tag or digest the operation needs.
    #[error("{operation} `{image}`: {message}")]
    InvalidInput {
        /// What we were doing.
        operation: &'static str,
        /// The image.
        image: String,
        /// What is missing.
        message: String,
    },
}

/// An OCI registry, as far as Slipway needs one.
#[async_trait::async_trait]
pub trait Registry: Send + Sync {
    /// Resolves the image's tag (or `latest` when it has none) to a digest; an image already
    /// pinned by digest is checked to exist and returned as is.
    async fn resolve(&self, image: &ImageRef) -> Result<Resolved, Error>;
    /// Whether the manifest behind the image's digest (or tag) exists.
    async fn exists(&self, image: &ImageRef) -> Result<bool, Error>;
    /// All tags of the image's repository, sorted.
    async fn list_tags(&self, image: &ImageRef) -> Result<Vec<String>, Error>;
    /// The artifact stored under `tag` in the image's repository, if any.
    async fn get_artifact(&self, image: &ImageRef, tag: &str) -> Result<Option<Artifact>, Error>;
    /// Stores an artifact under `tag` in the image's repository, replacing what the tag pointed
    /// at, and returns the new manifest's digest. Callers that must append (signatures) read first.
    async fn put_artifact(&self, image: &ImageRef, tag: &str, artifact: &Artifact) -> Result<Digest, Error>;
    /// Points `tag` at the manifest the image's digest names (e.g. `release-7`).
    async fn tag(&self, image: &ImageRef, tag: &str) -> Result<(), Error>;
}
