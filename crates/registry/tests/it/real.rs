//! Against the real registry from `cargo xtask services`: images built here as OCI layouts and
//! pushed with skopeo, then read back by [`OciRegistry`] and compared with what skopeo reports.

use std::time::Duration;

use slipway_core::{Digest, ImageRef};
use slipway_registry::testing::{
    OciLayout, Written, linux_amd64, linux_arm64, service_registry, skopeo_digest, skopeo_push,
    unique_repository,
};
use slipway_registry::{
    Artifact, DockerConfig, Error, Layer, OciRegistry, Platform, Registry, RegistryConfig,
};

fn client(addr: &str, platform: Platform) -> OciRegistry {
    let mut config = RegistryConfig::default()
        .insecure(addr)
        .retries(2, Duration::from_millis(50));
    config.platform = platform;
    OciRegistry::new(config, DockerConfig::empty()).expect("client")
}

fn image(addr: &str, repository: &str, tag: &str) -> ImageRef {
    ImageRef::parse(&format!("{addr}/{repository}:{tag}")).expect("ref")
}

struct Pushed {
    repository: String,
    single: Written,
    amd64: Written,
    arm64: Written,
    index: Written,
    _dir: tempfile::TempDir,
}

/// One single-platform image (`:single`) and a two-platform index (`:multi`).
fn push_images(addr: &str, prefix: &str) -> Pushed {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut layout = OciLayout::create(dir.path()).expect("layout");
    let single = layout
        .image(&format!("{prefix}-single"), &linux_amd64())
        .expect("image");
    let amd64 = layout
        .image(&format!("{prefix}-amd64"), &linux_amd64())
        .expect("image");
    let arm64 = layout
        .image(&format!("{prefix}-arm64"), &linux_arm64())
        .expect("image");
    let index = layout
        .index(&[
            (amd64.clone(), linux_amd64()),
            (arm64.clone(), linux_arm64()),
        ])
        .expect("index");
    layout.tag("single", &single).expect("tag");
    layout.tag("multi", &index).expect("tag");
    let repository = unique_repository(prefix);
    skopeo_push(&layout, "single", addr, &format!("{repository}:single")).expect("push single");
    skopeo_push(&layout, "multi", addr, &format!("{repository}:multi")).expect("push index");
    Pushed {
        repository,
        single,
        amd64,
        arm64,
        index,
        _dir: dir,
    }
}

#[tokio::test]
async fn resolves_tags_and_indexes_as_skopeo_sees_them() {
    let Some(addr) = service_registry("resolves_tags_and_indexes_as_skopeo_sees_them") else {
        return;
    };
    let pushed = push_images(&addr, "resolve");
    let registry = client(&addr, linux_amd64());

    let single = registry
        .resolve(&image(&addr, &pushed.repository, "single"))
        .await
        .expect("resolve single");
    assert_eq!(single.digest, pushed.single.digest);
    assert_eq!(single.index_digest, None);
    assert_eq!(
        skopeo_digest(&addr, &format!("{}:single", pushed.repository)).expect("skopeo"),
        single.digest.to_string()
    );

    let multi = registry
        .resolve(&image(&addr, &pushed.repository, "multi"))
        .await
        .expect("resolve index");
    assert_eq!(multi.digest, pushed.amd64.digest, "the linux/amd64 entry");
    assert_eq!(multi.index_digest.as_ref(), Some(&pushed.index.digest));
    assert_eq!(
        skopeo_digest(&addr, &format!("{}:multi", pushed.repository)).expect("skopeo"),
        pushed.index.digest.to_string()
    );

    // Pinned by the index digest: same answer, through the digest cache this time.
    let by_digest =
        image(&addr, &pushed.repository, "multi").with_digest(pushed.index.digest.clone());
    assert_eq!(registry.resolve(&by_digest).await.expect("pinned"), multi);

    let arm = client(&addr, linux_arm64())
        .resolve(&image(&addr, &pushed.repository, "multi"))
        .await
        .expect("arm64");
    assert_eq!(arm.digest, pushed.arm64.digest);

    let windows = Platform {
        os: "windows".into(),
        architecture: "amd64".into(),
        variant: None,
    };
    let err = client(&addr, windows)
        .resolve(&image(&addr, &pushed.repository, "multi"))
        .await
        .expect_err("no windows entry");
    assert!(matches!(err, Error::NoMatchingPlatform { .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains("has no manifest for windows/amd64 (it has: linux/amd64, linux/arm64/v8)"),
        "{err}"
    );
}

#[tokio::test]
async fn unknown_tags_and_digests_are_not_found() {
    let Some(addr) = service_registry("unknown_tags_and_digests_are_not_found") else {
        return;
    };
    let pushed = push_images(&addr, "missing");
    let registry = client(&addr, linux_amd64());
    let missing = image(&addr, &pushed.repository, "nope");
    let err = registry.resolve(&missing).await.expect_err("unknown tag");
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
    assert!(
        err.to_string()
            .starts_with(&format!("resolve `{missing}`: not found in the registry")),
        "{err}"
    );
    assert!(!registry.exists(&missing).await.expect("exists"));
    assert!(
        registry
            .exists(&image(&addr, &pushed.repository, "single"))
            .await
            .expect("exists")
    );
    let unknown_digest =
        missing.with_digest(Digest::parse(&format!("sha256:{}", "0".repeat(64))).expect("digest"));
    assert!(matches!(
        registry.resolve(&unknown_digest).await,
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        registry
            .get_blob(&missing, unknown_digest.digest().expect("d"))
            .await,
        Err(Error::NotFound {
            operation: "read blob of",
            ..
        })
    ));
    let other_repository = image(&addr, &unique_repository("never-pushed"), "v1");
    assert!(matches!(
        registry.list_tags(&other_repository).await,
        Err(Error::NotFound { .. })
    ));
}

#[tokio::test]
async fn artifacts_round_trip_and_tags_point_at_digests() {
    let Some(addr) = service_registry("artifacts_round_trip_and_tags_point_at_digests") else {
        return;
    };
    let pushed = push_images(&addr, "artifact");
    let registry = client(&addr, linux_amd64());
    let pinned =
        image(&addr, &pushed.repository, "single").with_digest(pushed.single.digest.clone());
    let tag = pushed.single.digest.cosign_tag("sig");
    assert_eq!(
        registry
            .get_artifact(&pinned, &tag)
            .await
            .expect("no artifact yet"),
        None
    );

    let layer = |data: &str, annotation: &str| Layer {
        media_type: "application/vnd.dev.cosign.simplesigning.v1+json".into(),
        data: data.as_bytes().to_vec(),
        annotations: [(
            "dev.cosignproject.cosign/signature".to_owned(),
            annotation.to_owned(),
        )]
        .into(),
    };
    let artifact = Artifact {
        layers: vec![
            layer("{\"a\":1}", "c2lnMQ=="),
            layer("{\"b\":2}", "c2lnMg=="),
        ],
    };
    let digest = registry
        .put_artifact(&pinned, &tag, &artifact)
        .await
        .expect("push artifact");
    assert_eq!(
        registry
            .get_artifact(&pinned, &tag)
            .await
            .expect("read back"),
        Some(artifact.clone())
    );
    assert_eq!(
        skopeo_digest(&addr, &format!("{}:{tag}", pushed.repository)).expect("skopeo"),
        digest.to_string(),
        "skopeo reads the same manifest"
    );

    let manifest = registry
        .get_manifest(&image(&addr, &pushed.repository, &tag))
        .await
        .expect("manifest");
    assert_eq!(manifest.digest, digest);
    assert_eq!(
        manifest.media_type,
        "application/vnd.oci.image.manifest.v1+json"
    );
    let first_layer = slipway_registry::manifest::sha256(b"{\"a\":1}");
    assert_eq!(
        registry
            .get_blob(&pinned, &first_layer)
            .await
            .expect("blob"),
        b"{\"a\":1}"
    );

    // Pushing the same content again is idempotent: same digest, blobs not uploaded twice.
    assert_eq!(
        registry
            .put_artifact(&pinned, &tag, &artifact)
            .await
            .expect("again"),
        digest
    );

    registry.tag(&pinned, "release-7").await.expect("tag");
    assert_eq!(
        registry
            .resolve(&image(&addr, &pushed.repository, "release-7"))
            .await
            .expect("release tag")
            .digest,
        pushed.single.digest
    );
    let index_pinned =
        image(&addr, &pushed.repository, "multi").with_digest(pushed.index.digest.clone());
    registry
        .tag(&index_pinned, "release-8")
        .await
        .expect("tag an index");
    assert_eq!(
        skopeo_digest(&addr, &format!("{}:release-8", pushed.repository)).expect("skopeo"),
        pushed.index.digest.to_string()
    );
    let unpinned = registry
        .tag(&image(&addr, &pushed.repository, "single"), "x")
        .await
        .expect_err("unpinned");
    assert!(matches!(unpinned, Error::InvalidInput { .. }));

    let tags = registry.list_tags(&pinned).await.expect("tags");
    assert_eq!(tags, {
        let mut expected = vec![
            "multi".to_owned(),
            "release-7".into(),
            "release-8".into(),
            "single".into(),
            tag.clone(),
        ];
        expected.sort();
        expected
    });
}
