//! The OCI registry boundary: the [`Registry`] trait and the implementations Slipway ships.
//!
//! Implementations:
//! - [`OciRegistry`]: a real registry over the OCI distribution API, through `oci-client`, with
//!   docker/cosign-compatible credentials ([`DockerConfig`]), bounded retries and plain HTTP only
//!   for registries listed as insecure.
//! - [`MemoryRegistry`]: an in-process registry with repositories, tags, manifests and cosign-style
//!   artifact tags (`sha256-<hex>.sig`). The dry run and the pipeline tests use it.
//!
//! Key design decision: the trait speaks in Slipway's own types ([`ImageRef`], [`Digest`],
//! [`Artifact`], [`Manifest`]), never in `oci-client`'s, so a caller can swap implementations and
//! the vendor crate stays an implementation detail. Artifacts are pushed blobs first and manifest
//! last: a failed push leaves at worst unreferenced blobs (garbage the registry collects), never a
//! tag pointing at a manifest whose blobs are missing.

mod docker_config;
mod error;
pub mod manifest;
mod memory;
mod oci;
#[cfg(feature = "test-support")]
pub mod testing;

use std::collections::BTreeMap;

pub use docker_config::{Credential, DOCKER_CONFIG_ENV, DockerConfig, default_config_dir};
pub use error::Error;
pub use manifest::{Platform, Referrer, Subject};
pub use memory::{MemoryRegistry, MemoryRegistrySnapshot};
pub use oci::{OciRegistry, RegistryConfig};
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
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Layer {
    /// Media type, e.g. `application/vnd.dev.cosign.simplesigning.v1+json`.
    pub media_type: String,
    /// Layer content.
    pub data: Vec<u8>,
    /// Layer annotations (cosign keeps the signature here).
    pub annotations: BTreeMap<String, String>,
}

/// A small artifact stored under a tag: an ordered list of layers.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct Artifact {
    /// The layers, in order.
    pub layers: Vec<Layer>,
}

/// A manifest as the registry stores it: exact bytes, so its digest can be recomputed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// The digest of `content`.
    pub digest: Digest,
    /// Its media type (OCI or Docker manifest, index or manifest list).
    pub media_type: String,
    /// The manifest bytes.
    pub content: Vec<u8>,
}

/// An OCI registry, as far as Slipway needs one.
///
/// `async_trait` rather than native async: the pipeline picks the implementation at runtime and
/// holds it as `Arc<dyn Registry>`.
#[async_trait::async_trait]
pub trait Registry: Send + Sync {
    /// Resolves the image's tag (or `latest` when it has none) to a digest; an image already
    /// pinned by digest is checked to exist and returned as is. A multi-platform index resolves
    /// to the manifest of the configured platform, and the index digest is reported too.
    async fn resolve(&self, image: &ImageRef) -> Result<Resolved, Error>;
    /// Whether the manifest behind the image's digest (or tag) exists.
    async fn exists(&self, image: &ImageRef) -> Result<bool, Error>;
    /// All tags of the image's repository, sorted.
    async fn list_tags(&self, image: &ImageRef) -> Result<Vec<String>, Error>;
    /// The manifest behind the image's digest (or tag, or `latest`), as stored.
    async fn get_manifest(&self, image: &ImageRef) -> Result<Manifest, Error>;
    /// A blob of the image's repository, checked against its digest.
    async fn get_blob(&self, image: &ImageRef, digest: &Digest) -> Result<Vec<u8>, Error>;
    /// The artifact stored under `tag` in the image's repository, if any.
    async fn get_artifact(&self, image: &ImageRef, tag: &str) -> Result<Option<Artifact>, Error>;
    /// Stores an artifact under `tag` in the image's repository, replacing what the tag pointed
    /// at, and returns the new manifest's digest. Callers that must append (signatures) read first.
    async fn put_artifact(
        &self,
        image: &ImageRef,
        tag: &str,
        artifact: &Artifact,
    ) -> Result<Digest, Error>;
    /// Points `tag` at the manifest the image's digest names (e.g. `release-7`).
    async fn tag(&self, image: &ImageRef, tag: &str) -> Result<(), Error>;
    /// The OCI 1.1 referrers of `subject` in the image's repository: the referrers API
    /// (`GET /v2/<name>/referrers/<digest>`), falling back to the referrers tag schema (the index
    /// tagged `sha256-<hex>`) when the registry answers 404. None is an empty list.
    ///
    /// The default answers "none": implementations that cannot hold referrers (test doubles, the
    /// demo's persisted registry) then simply have no Sigstore bundles, only `.sig`/`.att` tags.
    async fn referrers(&self, image: &ImageRef, subject: &Digest) -> Result<Vec<Referrer>, Error> {
        let _ = (image, subject);
        Ok(Vec::new())
    }
    /// Pushes `layers` as an OCI 1.1 artifact of `artifact_type` whose `subject` is `subject`
    /// (blobs first, manifest by digest), and, when the registry has no referrers API, adds it
    /// to the referrers tag schema's index. Returns the artifact manifest's digest. Appends:
    /// referrers already there stay.
    async fn put_referrer(
        &self,
        image: &ImageRef,
        subject: &Subject,
        artifact_type: &str,
        layers: &[Layer],
        annotations: &BTreeMap<String, String>,
    ) -> Result<Digest, Error> {
        let _ = (subject, artifact_type, layers, annotations);
        Err(Error::Rejected {
            operation: "push referrer to",
            image: image.to_string(),
            message: "this registry implementation cannot store OCI referrers".to_owned(),
        })
    }
}
