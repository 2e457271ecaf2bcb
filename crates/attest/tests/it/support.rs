//! Helpers shared by the attest integration tests: fixture paths, and images pushed to the real
//! registry with skopeo.

use std::path::PathBuf;
use std::time::Duration;

use slipway_core::ImageRef;
use slipway_registry::testing::{OciLayout, linux_amd64, skopeo_push, unique_repository};
use slipway_registry::{DockerConfig, OciRegistry, RegistryConfig};

pub(crate) fn data(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(path)
}

pub(crate) fn read(path: &str) -> String {
    std::fs::read_to_string(data(path)).unwrap_or_else(|err| panic!("read {path}: {err}"))
}

pub(crate) fn client(addr: &str) -> OciRegistry {
    OciRegistry::new(
        RegistryConfig::default()
            .insecure(addr)
            .retries(2, Duration::from_millis(50)),
        DockerConfig::empty(),
    )
    .expect("client")
}

/// Pushes `count` distinct single-platform images to a fresh repository and returns them pinned
/// by digest.
pub(crate) fn push_images(addr: &str, prefix: &str, count: usize) -> Vec<ImageRef> {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut layout = OciLayout::create(dir.path()).expect("layout");
    let repository = unique_repository(prefix);
    (0..count)
        .map(|idx| {
            let tag = format!("v{idx}");
            let written = layout
                .image(&format!("{repository}-{idx}"), &linux_amd64())
                .expect("image");
            layout.tag(&tag, &written).expect("tag");
            skopeo_push(&layout, &tag, addr, &format!("{repository}:{tag}")).expect("push");
            ImageRef::parse(&format!("{addr}/{repository}:{tag}"))
                .expect("ref")
                .with_digest(written.digest)
        })
        .collect()
}
