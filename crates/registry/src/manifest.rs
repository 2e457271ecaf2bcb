//! OCI and Docker manifest formats, as pure functions over bytes: what kind a manifest is, which
//! platform entry of an index to deploy, and the manifest cosign writes for a signature or
//! attestation artifact.

use std::collections::BTreeMap;

use sha2::{Digest as _, Sha256};
use slipway_core::Digest;

use crate::Layer;

/// OCI image manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// Docker image manifest, schema 2.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker manifest list.
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// OCI image config, the config media type cosign uses for `.sig` and `.att` manifests.
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// Every manifest media type we accept, for `Accept` headers.
pub const ALL_MANIFESTS: [&str; 4] = [
    OCI_MANIFEST,
    OCI_INDEX,
    DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST,
];

/// A descriptor (`mediaType`, `digest`, `size`, optional `annotations` and `platform`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    /// Media type of the content.
    pub media_type: String,
    /// `sha256:<hex>`.
    pub digest: String,
    /// Byte length.
    pub size: u64,
    /// Annotations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    /// Platform (index entries only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
}

/// The `platform` of an index entry.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Platform {
    /// e.g. `amd64`.
    pub architecture: String,
    /// e.g. `linux`.
    pub os: String,
    /// e.g. `v8`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        match &self.variant {
            Some(variant) => write!(f, "/{variant}"),
            None => Ok(()),
        }
    }
}

/// An image manifest (OCI or Docker schema 2).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageManifest {
    /// Always 2.
    pub schema_version: u32,
    /// The manifest's own media type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// The config blob.
    pub config: Descriptor,
    /// The layers.
    pub layers: Vec<Descriptor>,
    /// Manifest annotations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

/// What a manifest is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// A single-platform image (or artifact) manifest.
    Image(Box<ImageManifest>),
    /// A multi-platform index or manifest list, with its entries.
    Index(Vec<Descriptor>),
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct Probe {
    #[serde(default)]
    media_type: Option<String>,
    #[serde(default)]
    manifests: Option<Vec<Descriptor>>,
}

/// Reads a manifest: its media type (from the JSON, else from its shape) and its kind.
pub fn parse(content: &[u8]) -> Result<(String, Kind), String> {
    let probe: Probe = serde_json::from_slice(content)
        .map_err(|err| format!("the manifest is not JSON ({err})"))?;
    let is_index = match probe.media_type.as_deref() {
        Some(OCI_INDEX | DOCKER_MANIFEST_LIST) => true,
        Some(OCI_MANIFEST | DOCKER_MANIFEST) => false,
        Some(other) => return Err(format!("unsupported manifest media type `{other}`")),
        None => probe.manifests.is_some(),
    };
    if is_index {
        let media_type = probe.media_type.unwrap_or_else(|| OCI_INDEX.to_owned());
        return Ok((media_type, Kind::Index(probe.manifests.unwrap_or_default())));
    }
    let manifest: ImageManifest = serde_json::from_slice(content)
        .map_err(|err| format!("the manifest is not a valid image manifest ({err})"))?;
    let media_type = manifest
        .media_type
        .clone()
        .unwrap_or_else(|| OCI_MANIFEST.to_owned());
    Ok((media_type, Kind::Image(Box::new(manifest))))
}

/// The index entry for `platform`: same OS and architecture, and the same variant when `platform`
/// names one. Attestation entries (`unknown/unknown`) never match.
pub fn select_platform<'a>(
    entries: &'a [Descriptor],
    platform: &Platform,
) -> Option<&'a Descriptor> {
    entries.iter().find(|entry| {
        entry.platform.as_ref().is_some_and(|candidate| {
            candidate.os == platform.os
                && candidate.architecture == platform.architecture
                && (platform.variant.is_none() || candidate.variant == platform.variant)
        })
    })
}

/// `sha256` of `bytes` as a [`Digest`].
pub fn sha256(bytes: &[u8]) -> Digest {
    Digest::sha256_from_bytes(&Sha256::digest(bytes).into())
}

/// The blobs and manifest of an artifact, ready to push: what cosign writes for `.sig`/`.att`.
#[derive(Debug, Clone)]
pub struct ArtifactUpload {
    /// Config blob first, then the layers: `(digest, bytes)`.
    pub blobs: Vec<(Digest, Vec<u8>)>,
    /// The manifest bytes.
    pub manifest: Vec<u8>,
    /// Digest of `manifest`.
    pub digest: Digest,
}

/// Builds the OCI manifest for `layers`, with a config like cosign's (an empty image config whose
/// `rootfs.diff_ids` are the layer digests).
pub fn artifact_upload(layers: &[Layer]) -> ArtifactUpload {
    let layer_digests: Vec<Digest> = layers.iter().map(|layer| sha256(&layer.data)).collect();
    let config = serde_json::json!({
        "architecture": "",
        "config": {},
        "created": "0001-01-01T00:00:00Z",
        "history": [{"created": "0001-01-01T00:00:00Z"}],
        "os": "",
        "rootfs": {"type": "layers", "diff_ids": layer_digests.iter().map(ToString::to_string).collect::<Vec<_>>()},
    })
    .to_string()
    .into_bytes();
    let config_digest = sha256(&config);
    let manifest = ImageManifest {
        schema_version: 2,
        media_type: Some(OCI_MANIFEST.to_owned()),
        config: Descriptor {
            media_type: OCI_CONFIG.to_owned(),
            digest: config_digest.to_string(),
            size: config.len() as u64,
            annotations: None,
            platform: None,
        },
        layers: layers
            .iter()
            .zip(&layer_digests)
            .map(|(layer, digest)| Descriptor {
                media_type: layer.media_type.clone(),
                digest: digest.to_string(),
                size: layer.data.len() as u64,
                annotations: (!layer.annotations.is_empty()).then(|| layer.annotations.clone()),
                platform: None,
            })
            .collect(),
        annotations: None,
    };
    // Serialising our own struct cannot fail; an empty manifest would be rejected by the registry.
    let manifest = serde_json::to_vec(&manifest).unwrap_or_default();
    let mut blobs = vec![(config_digest, config)];
    blobs.extend(
        layer_digests
            .into_iter()
            .zip(layers.iter().map(|layer| layer.data.clone())),
    );
    ArtifactUpload {
        digest: sha256(&manifest),
        manifest,
        blobs,
    }
}

/// The OCI empty descriptor's media type: the config of an artifact that needs none (OCI 1.1).
pub const OCI_EMPTY: &str = "application/vnd.oci.empty.v1+json";
/// The content of the OCI empty blob, `{}`.
pub const OCI_EMPTY_CONTENT: &[u8] = b"{}";

/// The subject of a referrer: the manifest it refers to, as a descriptor needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    /// The subject manifest's digest.
    pub digest: Digest,
    /// Its media type.
    pub media_type: String,
    /// Its size in bytes.
    pub size: u64,
}

/// The tag under which the referrers tag schema (OCI distribution 1.1) keeps the referrers index
/// of `subject` on registries without the referrers API: `sha256-<hex>`.
pub fn referrers_tag(subject: &Digest) -> String {
    subject.to_string().replace(':', "-")
}

/// Builds an OCI 1.1 artifact manifest that refers to `subject`: `artifactType`, the empty config
/// (as cosign v3 writes it, carrying the artifact type too), one layer per `layers` and the
/// `subject` descriptor. This is the layout of cosign's bundle specification (`BUNDLE_SPEC.md`).
pub fn referrer_upload(
    subject: &Subject,
    artifact_type: &str,
    layers: &[Layer],
    annotations: &BTreeMap<String, String>,
) -> ArtifactUpload {
    let config_digest = sha256(OCI_EMPTY_CONTENT);
    let layer_digests: Vec<Digest> = layers.iter().map(|layer| sha256(&layer.data)).collect();
    let mut manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": artifact_type,
        "config": {
            "mediaType": OCI_EMPTY,
            "artifactType": artifact_type,
            "digest": config_digest.to_string(),
            "size": OCI_EMPTY_CONTENT.len(),
        },
        "layers": layers.iter().zip(&layer_digests).map(|(layer, digest)| {
            let mut descriptor = serde_json::json!({
                "mediaType": layer.media_type,
                "digest": digest.to_string(),
                "size": layer.data.len(),
            });
            if !layer.annotations.is_empty() {
                descriptor["annotations"] = serde_json::json!(layer.annotations);
            }
            descriptor
        }).collect::<Vec<_>>(),
        "subject": {
            "mediaType": subject.media_type,
            "digest": subject.digest.to_string(),
            "size": subject.size,
        },
    });
    if !annotations.is_empty() {
        manifest["annotations"] = serde_json::json!(annotations);
    }
    let manifest = manifest.to_string().into_bytes();
    let mut blobs = vec![(config_digest, OCI_EMPTY_CONTENT.to_vec())];
    blobs.extend(
        layer_digests
            .into_iter()
            .zip(layers.iter().map(|layer| layer.data.clone())),
    );
    ArtifactUpload {
        digest: sha256(&manifest),
        manifest,
        blobs,
    }
}

/// One entry of a referrers index (the referrers API's answer or the tag schema's index).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Referrer {
    /// Media type of the referrer manifest.
    pub media_type: String,
    /// Its digest, `sha256:<hex>`.
    pub digest: String,
    /// Its size.
    #[serde(default)]
    pub size: u64,
    /// Its `artifactType` (absent on some registries' entries).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    /// Its annotations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

#[derive(serde::Deserialize)]
struct ReferrersIndex {
    #[serde(default)]
    manifests: Vec<Referrer>,
}

/// The entries of a referrers index.
pub fn parse_referrers(content: &[u8]) -> Result<Vec<Referrer>, String> {
    let index: ReferrersIndex = serde_json::from_slice(content)
        .map_err(|err| format!("the referrers index is not valid JSON ({err})"))?;
    Ok(index.manifests)
}

/// The referrers index with `entry` added (the tag schema's index is read, extended and written
/// back; an entry already listed is not listed twice). Other fields of `existing` are kept.
pub fn add_referrer(existing: Option<&[u8]>, entry: &Referrer) -> Result<Vec<u8>, String> {
    let mut index = match existing {
        Some(content) => serde_json::from_slice::<serde_json::Value>(content)
            .map_err(|err| format!("the referrers index is not valid JSON ({err})"))?,
        None => serde_json::json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}),
    };
    let entry_json = serde_json::to_value(entry).map_err(|err| err.to_string())?;
    let manifests = index
        .as_object_mut()
        .ok_or("the referrers index is not a JSON object")?
        .entry("manifests")
        .or_insert_with(|| serde_json::json!([]));
    let list = manifests
        .as_array_mut()
        .ok_or("the referrers index's `manifests` is not a list")?;
    if !list
        .iter()
        .any(|known| known.get("digest").and_then(|d| d.as_str()) == Some(entry.digest.as_str()))
    {
        list.push(entry_json);
    }
    Ok(index.to_string().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn platform(os: &str, arch: &str, variant: Option<&str>) -> Platform {
        Platform {
            os: os.into(),
            architecture: arch.into(),
            variant: variant.map(Into::into),
        }
    }

    fn entry(digest: char, platform: Option<Platform>) -> Descriptor {
        Descriptor {
            media_type: OCI_MANIFEST.into(),
            digest: format!("sha256:{}", digest.to_string().repeat(64)),
            size: 1,
            annotations: None,
            platform,
        }
    }

    #[test]
    fn platform_selection() {
        let entries = vec![
            entry('a', Some(platform("unknown", "unknown", None))),
            entry('b', Some(platform("linux", "arm64", Some("v8")))),
            entry('c', Some(platform("linux", "amd64", None))),
            entry('d', None),
        ];
        let pick = |p: Platform| {
            select_platform(&entries, &p).map(|entry| entry.digest.chars().last().unwrap_or(' '))
        };
        assert_eq!(pick(platform("linux", "amd64", None)), Some('c'));
        assert_eq!(pick(platform("linux", "arm64", None)), Some('b'));
        assert_eq!(pick(platform("linux", "arm64", Some("v8"))), Some('b'));
        assert_eq!(pick(platform("linux", "arm64", Some("v7"))), None);
        assert_eq!(pick(platform("windows", "amd64", None)), None);
    }

    #[test]
    fn parse_recognises_kinds() {
        let index = br#"{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.list.v2+json","manifests":[]}"#;
        assert_eq!(
            parse(index).expect("list"),
            (DOCKER_MANIFEST_LIST.to_owned(), Kind::Index(vec![]))
        );
        let bare_index = br#"{"schemaVersion":2,"manifests":[]}"#;
        assert_eq!(parse(bare_index).expect("index").0, OCI_INDEX);
        let upload = artifact_upload(&[Layer {
            media_type: "m".into(),
            data: b"x".to_vec(),
            annotations: BTreeMap::from([("k".into(), "v".into())]),
        }]);
        let (media_type, kind) = parse(&upload.manifest).expect("image");
        assert_eq!(media_type, OCI_MANIFEST);
        let Kind::Image(manifest) = kind else {
            panic!("not an image: {kind:?}")
        };
        assert_eq!(manifest.layers[0].digest, sha256(b"x").to_string());
        assert_eq!(manifest.config.digest, upload.blobs[0].0.to_string());
        assert_eq!(upload.digest, sha256(&upload.manifest));
        assert!(parse(b"[]").is_err());
        assert!(
            parse(br#"{"mediaType":"text/plain"}"#)
                .expect_err("type")
                .contains("unsupported manifest media type")
        );
    }

    #[test]
    fn a_referrer_manifest_has_the_cosign_bundle_layout() {
        let subject = Subject {
            digest: sha256(b"image"),
            media_type: OCI_MANIFEST.to_owned(),
            size: 5,
        };
        let layer = Layer {
            media_type: "application/vnd.dev.sigstore.bundle.v0.3+json".to_owned(),
            data: b"{}".to_vec(),
            annotations: BTreeMap::new(),
        };
        let annotations = BTreeMap::from([(
            "dev.sigstore.bundle.content".to_owned(),
            "dsse-envelope".to_owned(),
        )]);
        let upload = referrer_upload(
            &subject,
            &layer.media_type,
            std::slice::from_ref(&layer),
            &annotations,
        );
        let manifest: serde_json::Value = serde_json::from_slice(&upload.manifest).expect("json");
        assert_eq!(manifest["artifactType"], layer.media_type);
        assert_eq!(manifest["config"]["mediaType"], OCI_EMPTY);
        assert_eq!(
            manifest["config"]["digest"],
            "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a",
            "the empty descriptor's digest is that of `{{}}`"
        );
        assert_eq!(manifest["subject"]["digest"], subject.digest.to_string());
        assert_eq!(manifest["subject"]["size"], 5);
        assert_eq!(manifest["layers"][0]["mediaType"], layer.media_type);
        assert_eq!(
            manifest["annotations"]["dev.sigstore.bundle.content"],
            "dsse-envelope"
        );
        assert_eq!(upload.digest, sha256(&upload.manifest));
        assert_eq!(
            referrers_tag(&subject.digest),
            format!("sha256-{}", subject.digest.hex())
        );
    }

    #[test]
    fn the_tag_schema_index_is_extended_once_and_keeps_what_it_had() {
        let entry = |digest: &str| Referrer {
            media_type: OCI_MANIFEST.to_owned(),
            digest: digest.to_owned(),
            size: 10,
            artifact_type: Some("application/x".to_owned()),
            annotations: None,
        };
        let first = add_referrer(None, &entry("sha256:aa")).expect("new");
        let second = add_referrer(Some(&first), &entry("sha256:bb")).expect("add");
        let again = add_referrer(Some(&second), &entry("sha256:aa")).expect("same");
        let listed = parse_referrers(&again).expect("parse");
        assert_eq!(
            listed.iter().map(|r| r.digest.as_str()).collect::<Vec<_>>(),
            ["sha256:aa", "sha256:bb"]
        );
        let index: serde_json::Value = serde_json::from_slice(&again).expect("json");
        assert_eq!(index["mediaType"], OCI_INDEX);
        let foreign = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","annotations":{"k":"v"},"manifests":[]}"#;
        let kept: serde_json::Value =
            serde_json::from_slice(&add_referrer(Some(foreign), &entry("sha256:cc")).expect("add"))
                .expect("json");
        assert_eq!(kept["annotations"]["k"], "v");
    }
}
