//! Test support (feature `test-support`): the real registry from `cargo xtask services`, OCI image
//! layouts written by hand, and `skopeo` to push them. Shared by this crate's and `attest`'s
//! integration tests and by the registry benchmark, so all of them build images the same way.
//!
//! Not part of the product API: nothing outside tests and benchmarks should enable the feature.

// Telling a developer why a test skipped is this module's job, and tests report by panicking.
#![allow(clippy::print_stderr, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;

use slipway_core::Digest;

use crate::manifest::{Descriptor, OCI_CONFIG, OCI_INDEX, OCI_MANIFEST, Platform, sha256};

/// The environment variable `cargo xtask services` sets to the registry's `host:port`.
pub const REGISTRY_ENV: &str = "SLIPWAY_TEST_REGISTRY";
/// Set in CI: a test that needs a service fails instead of skipping.
pub const CI_ENV: &str = "CI";

/// The test registry's `host:port`, or `None` (with a note on stderr) when it is not running.
/// Under CI a missing registry is a failure, not a skip.
pub fn service_registry(test: &str) -> Option<String> {
    match std::env::var(REGISTRY_ENV) {
        Ok(value) if !value.is_empty() => Some(value),
        _ if std::env::var_os(CI_ENV).is_some() => {
            panic!(
                "{test}: {REGISTRY_ENV} is not set\n\nhint: run `cargo xtask services` and `source target/services/env`"
            )
        }
        _ => {
            eprintln!("skipping {test}: {REGISTRY_ENV} is not set (run `cargo xtask services`)");
            None
        }
    }
}

/// `gzip` (mtime 0) of an empty tar archive (1024 zero bytes).
const EMPTY_TAR_GZ: &[u8] = &[
    31, 139, 8, 0, 0, 0, 0, 0, 2, 3, 99, 96, 24, 5, 163, 96, 20, 140, 84, 0, 0, 46, 175, 181, 239,
    0, 4, 0, 0,
];

/// An OCI image layout directory (`oci-layout`, `index.json`, `blobs/sha256/...`).
#[derive(Debug)]
pub struct OciLayout {
    dir: PathBuf,
    refs: Vec<(String, Descriptor)>,
}

/// A manifest written into a layout.
#[derive(Debug, Clone)]
pub struct Written {
    /// Its digest.
    pub digest: Digest,
    /// Its size.
    pub size: u64,
    /// Its media type.
    pub media_type: String,
}

impl OciLayout {
    /// Creates the layout in `dir` (which must exist).
    pub fn create(dir: &Path) -> std::io::Result<OciLayout> {
        std::fs::create_dir_all(dir.join("blobs/sha256"))?;
        std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#)?;
        Ok(OciLayout {
            dir: dir.to_owned(),
            refs: Vec::new(),
        })
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Writes a blob and returns its digest.
    pub fn blob(&self, bytes: &[u8]) -> std::io::Result<Digest> {
        let digest = sha256(bytes);
        std::fs::write(self.dir.join("blobs/sha256").join(digest.hex()), bytes)?;
        Ok(digest)
    }

    /// Writes a single-platform image whose config carries `seed`, so different seeds give
    /// different digests. Its one layer is an empty tar, gzipped (skopeo would compress an
    /// uncompressed layer on push and change the digests).
    pub fn image(&self, seed: &str, platform: &Platform) -> std::io::Result<Written> {
        let layer = EMPTY_TAR_GZ;
        let layer_digest = self.blob(layer)?;
        let diff_id = sha256(&[0_u8; 1024]);
        let config = serde_json::json!({
            "architecture": platform.architecture,
            "os": platform.os,
            "config": {"Labels": {"dev.slipway.test.seed": seed}},
            "rootfs": {"type": "layers", "diff_ids": [diff_id.to_string()]},
        })
        .to_string();
        let config_digest = self.blob(config.as_bytes())?;
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": config_digest.to_string(), "size": config.len()},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": layer_digest.to_string(), "size": layer.len()}],
        })
        .to_string();
        Ok(Written {
            digest: self.blob(manifest.as_bytes())?,
            size: manifest.len() as u64,
            media_type: OCI_MANIFEST.to_owned(),
        })
    }

    /// Writes an index over `entries` (manifests already written, with their platforms).
    pub fn index(&self, entries: &[(Written, Platform)]) -> std::io::Result<Written> {
        let manifests: Vec<Descriptor> = entries
            .iter()
            .map(|(written, platform)| Descriptor {
                media_type: written.media_type.clone(),
                digest: written.digest.to_string(),
                size: written.size,
                annotations: None,
                platform: Some(platform.clone()),
            })
            .collect();
        let index =
            serde_json::json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests})
                .to_string();
        Ok(Written {
            digest: self.blob(index.as_bytes())?,
            size: index.len() as u64,
            media_type: OCI_INDEX.to_owned(),
        })
    }

    /// Names `written` as `tag` in the layout's `index.json` (written at once).
    pub fn tag(&mut self, tag: &str, written: &Written) -> std::io::Result<()> {
        let mut annotations = std::collections::BTreeMap::new();
        annotations.insert(
            "org.opencontainers.image.ref.name".to_owned(),
            tag.to_owned(),
        );
        self.refs.retain(|(existing, _)| existing != tag);
        self.refs.push((
            tag.to_owned(),
            Descriptor {
                media_type: written.media_type.clone(),
                digest: written.digest.to_string(),
                size: written.size,
                annotations: Some(annotations),
                platform: None,
            },
        ));
        let manifests: Vec<&Descriptor> =
            self.refs.iter().map(|(_, descriptor)| descriptor).collect();
        let index = serde_json::json!({"schemaVersion": 2, "manifests": manifests}).to_string();
        std::fs::write(self.dir.join("index.json"), index)
    }
}

/// `linux/amd64`, the platform Slipway deploys by default.
pub fn linux_amd64() -> Platform {
    Platform {
        os: "linux".to_owned(),
        architecture: "amd64".to_owned(),
        variant: None,
    }
}

/// `linux/arm64/v8`.
pub fn linux_arm64() -> Platform {
    Platform {
        os: "linux".to_owned(),
        architecture: "arm64".to_owned(),
        variant: Some("v8".to_owned()),
    }
}

/// Pushes `layout:tag` to `docker://registry/destination` with skopeo (`--all`, so an index
/// keeps all its platforms; plain HTTP, as the test registry is).
pub fn skopeo_push(
    layout: &OciLayout,
    tag: &str,
    registry: &str,
    destination: &str,
) -> Result<(), String> {
    let source = format!("oci:{}:{tag}", layout.dir().display());
    let target = format!("docker://{registry}/{destination}");
    let output = Command::new("skopeo")
        .args([
            "copy",
            "--all",
            "--quiet",
            "--preserve-digests",
            "--dest-tls-verify=false",
            &source,
            &target,
        ])
        .output()
        .map_err(|err| {
            format!("cannot run skopeo ({err})\n\nhint: `cargo xtask services` installs it")
        })?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "skopeo copy {source} {target} failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

/// The digest `skopeo inspect` reports for `docker://registry/image` (the independent reading).
pub fn skopeo_digest(registry: &str, image: &str) -> Result<String, String> {
    let output = Command::new("skopeo")
        .args([
            "inspect",
            "--raw",
            "--tls-verify=false",
            &format!("docker://{registry}/{image}"),
        ])
        .output()
        .map_err(|err| format!("cannot run skopeo ({err})"))?;
    if !output.status.success() {
        return Err(format!(
            "skopeo inspect failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    Ok(sha256(&output.stdout).to_string())
}

/// A repository name unique to this process and call, so tests never see each other's tags.
pub fn unique_repository(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.subsec_nanos())
        .unwrap_or(0);
    format!(
        "slipway-test/{prefix}-{}-{nanos}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}
