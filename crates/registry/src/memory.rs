//! [`MemoryRegistry`]: repositories of tags and manifests held in memory, with the same
//! semantics the real registry has for what Slipway does (tags move, digests do not, a missing
//! tag is `NotFound`, artifacts live under cosign's `sha256-<hex>.<suffix>` tags).

use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};

use sha2::{Digest as _, Sha256};
use slipway_core::{Digest, ImageRef};

use crate::manifest::{OCI_INDEX, OCI_MANIFEST};
use crate::{Artifact, Error, Manifest, Registry, Resolved};

#[derive(Debug, Default, Clone, serde::Serialize, serde::Deserialize)]
struct Repository {
    tags: BTreeMap<String, Digest>,
    /// Index digest → platform digest, for tags that point at a multi-platform index.
    indexes: BTreeMap<Digest, Digest>,
    /// Manifest bytes of images and indexes.
    images: BTreeMap<Digest, Vec<u8>>,
    artifacts: BTreeMap<Digest, Artifact>,
    blobs: BTreeMap<Digest, Vec<u8>>,
    /// Subject digest → its OCI 1.1 referrers (this registry behaves as one with the referrers
    /// API; the manifests themselves are in `images`).
    #[serde(default)]
    referrers: BTreeMap<Digest, Vec<crate::Referrer>>,
}

/// Every repository a [`MemoryRegistry`] holds, as a serialisable value, so another process can
/// go on with the same tags and signatures (the embedded world of `--demo --state`).
#[derive(Debug, Default, Clone, serde::Serialize, serde::Deserialize)]
pub struct MemoryRegistrySnapshot(BTreeMap<String, Repository>);

/// An in-memory OCI registry. See the module docs.
#[derive(Debug, Default)]
pub struct MemoryRegistry {
    repositories: Mutex<BTreeMap<String, Repository>>,
}

impl MemoryRegistry {
    /// An empty registry.
    pub fn new() -> MemoryRegistry {
        MemoryRegistry::default()
    }

    /// Everything this registry holds now.
    pub fn snapshot(&self) -> MemoryRegistrySnapshot {
        MemoryRegistrySnapshot(self.lock().clone())
    }

    /// Replaces everything this registry holds with `snapshot`.
    pub fn restore(&self, snapshot: MemoryRegistrySnapshot) {
        *self.lock() = snapshot.0;
    }

    /// Pushes an image manifest under `image`'s tag, returning its digest (derived from `content`,
    /// so the same content always gets the same digest, as in a real registry).
    pub fn push_image(&self, image: &ImageRef, content: &str) -> Digest {
        let digest = sha256(content.as_bytes());
        let mut repositories = self.lock();
        let repository = repositories.entry(image.name()).or_default();
        repository
            .images
            .insert(digest.clone(), content.as_bytes().to_vec());
        if let Some(tag) = image.tag() {
            repository.tags.insert(tag.to_owned(), digest.clone());
        }
        digest
    }

    /// Pushes a multi-platform index under `image`'s tag whose platform manifest is `content`.
    /// Returns (index digest, platform digest).
    pub fn push_index(&self, image: &ImageRef, content: &str) -> (Digest, Digest) {
        let platform = self.push_image(&without_tag(image), content);
        let index_content = format!("index:{content}");
        let index = sha256(index_content.as_bytes());
        let mut repositories = self.lock();
        let repository = repositories.entry(image.name()).or_default();
        repository.indexes.insert(index.clone(), platform.clone());
        repository
            .images
            .insert(index.clone(), index_content.into_bytes());
        if let Some(tag) = image.tag() {
            repository.tags.insert(tag.to_owned(), index.clone());
        }
        (index, platform)
    }

    /// Deletes a manifest by digest, as `DELETE /v2/<name>/manifests/<digest>` does; tags that
    /// pointed at it disappear with it.
    pub fn delete(&self, image: &ImageRef, digest: &Digest) {
        let mut repositories = self.lock();
        if let Some(repository) = repositories.get_mut(&image.name()) {
            repository.images.remove(digest);
            repository.artifacts.remove(digest);
            repository.indexes.remove(digest);
            repository.tags.retain(|_, target| target != digest);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Repository>> {
        self.repositories
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

fn without_tag(image: &ImageRef) -> ImageRef {
    ImageRef::parse(&image.name()).unwrap_or_else(|_| image.clone())
}

fn sha256(bytes: &[u8]) -> Digest {
    Digest::sha256_from_bytes(&Sha256::digest(bytes).into())
}

#[async_trait::async_trait]
impl Registry for MemoryRegistry {
    async fn resolve(&self, image: &ImageRef) -> Result<Resolved, Error> {
        let repositories = self.lock();
        let not_found = || Error::NotFound {
            operation: "resolve",
            image: image.to_string(),
        };
        let repository = repositories.get(&image.name()).ok_or_else(not_found)?;
        let target = match (image.digest(), image.tag()) {
            (Some(digest), _) => digest.clone(),
            (None, tag) => repository
                .tags
                .get(tag.unwrap_or("latest"))
                .cloned()
                .ok_or_else(not_found)?,
        };
        if let Some(platform) = repository.indexes.get(&target) {
            return Ok(Resolved {
                digest: platform.clone(),
                index_digest: Some(target),
            });
        }
        if repository.images.contains_key(&target) || repository.artifacts.contains_key(&target) {
            Ok(Resolved {
                digest: target,
                index_digest: None,
            })
        } else {
            Err(not_found())
        }
    }

    async fn exists(&self, image: &ImageRef) -> Result<bool, Error> {
        match self.resolve(image).await {
            Ok(_) => Ok(true),
            Err(Error::NotFound { .. }) => Ok(false),
            Err(err) => Err(err),
        }
    }

    async fn list_tags(&self, image: &ImageRef) -> Result<Vec<String>, Error> {
        let repositories = self.lock();
        let repository = repositories
            .get(&image.name())
            .ok_or_else(|| Error::NotFound {
                operation: "list tags of",
                image: image.name(),
            })?;
        Ok(repository.tags.keys().cloned().collect())
    }

    async fn get_manifest(&self, image: &ImageRef) -> Result<Manifest, Error> {
        let repositories = self.lock();
        let not_found = || Error::NotFound {
            operation: "read manifest of",
            image: image.to_string(),
        };
        let repository = repositories.get(&image.name()).ok_or_else(not_found)?;
        let digest = match image.digest() {
            Some(digest) => digest.clone(),
            None => repository
                .tags
                .get(image.tag().unwrap_or("latest"))
                .cloned()
                .ok_or_else(not_found)?,
        };
        if let Some(content) = repository.images.get(&digest) {
            let media_type = if repository.indexes.contains_key(&digest) {
                OCI_INDEX
            } else {
                OCI_MANIFEST
            };
            return Ok(Manifest {
                digest,
                media_type: media_type.to_owned(),
                content: content.clone(),
            });
        }
        let artifact = repository.artifacts.get(&digest).ok_or_else(not_found)?;
        let upload = crate::manifest::artifact_upload(&artifact.layers);
        Ok(Manifest {
            digest,
            media_type: OCI_MANIFEST.to_owned(),
            content: upload.manifest,
        })
    }

    async fn get_blob(&self, image: &ImageRef, digest: &Digest) -> Result<Vec<u8>, Error> {
        let repositories = self.lock();
        repositories
            .get(&image.name())
            .and_then(|repository| repository.blobs.get(digest))
            .cloned()
            .ok_or_else(|| Error::NotFound {
                operation: "read blob of",
                image: format!("{}@{digest}", image.name()),
            })
    }

    async fn get_artifact(&self, image: &ImageRef, tag: &str) -> Result<Option<Artifact>, Error> {
        let repositories = self.lock();
        let Some(repository) = repositories.get(&image.name()) else {
            return Ok(None);
        };
        Ok(repository
            .tags
            .get(tag)
            .and_then(|digest| repository.artifacts.get(digest))
            .cloned())
    }

    async fn put_artifact(
        &self,
        image: &ImageRef,
        tag: &str,
        artifact: &Artifact,
    ) -> Result<Digest, Error> {
        let mut content = Vec::new();
        for layer in &artifact.layers {
            content.extend_from_slice(layer.media_type.as_bytes());
            content.extend_from_slice(&layer.data);
            for (key, value) in &layer.annotations {
                content.extend_from_slice(key.as_bytes());
                content.extend_from_slice(value.as_bytes());
            }
        }
        let digest = sha256(&content);
        let mut repositories = self.lock();
        let repository = repositories.entry(image.name()).or_default();
        for layer in &artifact.layers {
            repository
                .blobs
                .insert(sha256(&layer.data), layer.data.clone());
        }
        repository
            .artifacts
            .insert(digest.clone(), artifact.clone());
        repository.tags.insert(tag.to_owned(), digest.clone());
        Ok(digest)
    }

    async fn tag(&self, image: &ImageRef, tag: &str) -> Result<(), Error> {
        let Some(digest) = image.digest() else {
            return Err(Error::InvalidInput {
                operation: "tag",
                image: image.to_string(),
                message: "the image must be pinned by digest to be tagged".to_owned(),
            });
        };
        let mut repositories = self.lock();
        let known = repositories.get(&image.name()).is_some_and(|repository| {
            repository.images.contains_key(digest) || repository.indexes.contains_key(digest)
        });
        if !known {
            return Err(Error::NotFound {
                operation: "tag",
                image: image.to_string(),
            });
        }
        if let Some(repository) = repositories.get_mut(&image.name()) {
            repository.tags.insert(tag.to_owned(), digest.clone());
        }
        Ok(())
    }

    async fn referrers(
        &self,
        image: &ImageRef,
        subject: &Digest,
    ) -> Result<Vec<crate::Referrer>, Error> {
        Ok(self
            .lock()
            .get(&image.name())
            .and_then(|repository| repository.referrers.get(subject))
            .cloned()
            .unwrap_or_default())
    }

    async fn put_referrer(
        &self,
        image: &ImageRef,
        subject: &crate::Subject,
        artifact_type: &str,
        layers: &[crate::Layer],
        annotations: &BTreeMap<String, String>,
    ) -> Result<Digest, Error> {
        let upload = crate::manifest::referrer_upload(subject, artifact_type, layers, annotations);
        let mut repositories = self.lock();
        let repository = repositories.entry(image.name()).or_default();
        for (digest, data) in upload.blobs {
            repository.blobs.insert(digest, data);
        }
        repository
            .images
            .insert(upload.digest.clone(), upload.manifest.clone());
        let listed = repository
            .referrers
            .entry(subject.digest.clone())
            .or_default();
        if !listed.iter().any(|r| r.digest == upload.digest.to_string()) {
            listed.push(crate::Referrer {
                media_type: OCI_MANIFEST.to_owned(),
                digest: upload.digest.to_string(),
                size: upload.manifest.len() as u64,
                artifact_type: Some(artifact_type.to_owned()),
                annotations: (!annotations.is_empty()).then(|| annotations.clone()),
            });
        }
        Ok(upload.digest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(text: &str) -> ImageRef {
        ImageRef::parse(text).expect("valid reference")
    }

    #[tokio::test]
    async fn tags_move_digests_do_not() {
        let registry = MemoryRegistry::new();
        let v1 = registry.push_image(&image("ghcr.io/acme/iris:1.0"), "v1");
        let v2 = registry.push_image(&image("ghcr.io/acme/iris:latest"), "v2");
        assert_ne!(v1, v2);
        let resolved = registry
            .resolve(&image("ghcr.io/acme/iris"))
            .await
            .expect("latest");
        assert_eq!(resolved.digest, v2);
        registry.push_image(&image("ghcr.io/acme/iris:1.0"), "v3");
        let pinned = image("ghcr.io/acme/iris").with_digest(v1.clone());
        assert_eq!(
            registry.resolve(&pinned).await.expect("by digest").digest,
            v1
        );
        let missing = registry.resolve(&image("ghcr.io/acme/iris:nope")).await;
        assert!(
            matches!(missing, Err(Error::NotFound { .. })),
            "{missing:?}"
        );
        registry.delete(&pinned, &v1);
        assert!(!registry.exists(&pinned).await.expect("exists"));
    }

    #[tokio::test]
    async fn index_resolves_to_platform_and_reports_index() {
        let registry = MemoryRegistry::new();
        let (index, platform) = registry.push_index(&image("ghcr.io/acme/iris:2.0"), "multi");
        let resolved = registry
            .resolve(&image("ghcr.io/acme/iris:2.0"))
            .await
            .expect("resolve");
        assert_eq!(
            resolved,
            Resolved {
                digest: platform,
                index_digest: Some(index)
            }
        );
    }

    #[tokio::test]
    async fn artifacts_are_stored_under_tags() {
        let registry = MemoryRegistry::new();
        let digest = registry.push_image(&image("ghcr.io/acme/iris:1.0"), "v1");
        let tag = digest.cosign_tag("sig");
        let base = image("ghcr.io/acme/iris");
        assert_eq!(registry.get_artifact(&base, &tag).await.expect("get"), None);
        let artifact = Artifact {
            layers: vec![crate::Layer {
                media_type: "m".into(),
                data: b"x".to_vec(),
                annotations: BTreeMap::new(),
            }],
        };
        registry
            .put_artifact(&base, &tag, &artifact)
            .await
            .expect("put");
        assert_eq!(
            registry.get_artifact(&base, &tag).await.expect("get"),
            Some(artifact)
        );
        assert!(
            registry
                .list_tags(&base)
                .await
                .expect("tags")
                .contains(&tag)
        );
        assert_eq!(
            registry.get_blob(&base, &sha256(b"x")).await.expect("blob"),
            b"x"
        );
        assert!(matches!(
            registry.get_blob(&base, &sha256(b"y")).await,
            Err(Error::NotFound { .. })
        ));
        let manifest = registry
            .get_manifest(&image("ghcr.io/acme/iris:1.0"))
            .await
            .expect("manifest");
        assert_eq!(
            (manifest.digest, manifest.content),
            (digest.clone(), b"v1".to_vec())
        );
        let tagging_unpinned = registry.tag(&base, "release-1").await;
        assert!(matches!(tagging_unpinned, Err(Error::InvalidInput { .. })));
        registry
            .tag(&base.with_digest(digest.clone()), "release-1")
            .await
            .expect("tag");
        assert_eq!(
            registry
                .resolve(&image("ghcr.io/acme/iris:release-1"))
                .await
                .expect("r")
                .digest,
            digest
        );
    }

    #[tokio::test]
    async fn referrers_are_listed_by_subject_and_appended() {
        let registry = MemoryRegistry::new();
        let digest = registry.push_image(&image("ghcr.io/acme/iris:1.0"), "v1");
        let pinned = image("ghcr.io/acme/iris").with_digest(digest.clone());
        assert!(
            registry
                .referrers(&pinned, &digest)
                .await
                .expect("list")
                .is_empty()
        );
        let subject = crate::Subject {
            digest: digest.clone(),
            media_type: OCI_MANIFEST.to_owned(),
            size: 2,
        };
        let layer = |data: &[u8]| crate::Layer {
            media_type: "application/x".into(),
            data: data.to_vec(),
            annotations: BTreeMap::new(),
        };
        let first = registry
            .put_referrer(
                &pinned,
                &subject,
                "application/x",
                &[layer(b"a")],
                &BTreeMap::new(),
            )
            .await
            .expect("put");
        let second = registry
            .put_referrer(
                &pinned,
                &subject,
                "application/x",
                &[layer(b"b")],
                &BTreeMap::new(),
            )
            .await
            .expect("put");
        let listed = registry.referrers(&pinned, &digest).await.expect("list");
        assert_eq!(
            listed.iter().map(|r| r.digest.clone()).collect::<Vec<_>>(),
            [first.to_string(), second.to_string()]
        );
        let manifest = registry
            .get_manifest(&pinned.with_digest(first))
            .await
            .expect("the referrer manifest is readable by digest");
        let parsed: serde_json::Value = serde_json::from_slice(&manifest.content).expect("json");
        assert_eq!(parsed["subject"]["digest"], digest.to_string());
        assert_eq!(
            registry
                .get_blob(&pinned, &sha256(b"a"))
                .await
                .expect("blob"),
            b"a"
        );
    }
}
