//! Where the trail comes from: the JSON Lines file (`audit.path`, `--trail`) or the cluster
//! (`audit.store = "cluster"`: the release's audit ConfigMaps on the configured cluster backend),
//! and the backends that `drift` and the cluster store read.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use clap::Args;
use slipway_audit_log::{
    AuditStore, Damage, Entry, Event, FileAuditStore, Head, MemoryAuditStore, Trail,
};
use slipway_cli::backends::Built;
use slipway_cli::config::{self, AuditStoreKind, ClusterBackend, Settings};
use slipway_cli::demo::DemoArgs;
use slipway_cli::{GlobalArgs, UserError};
use slipway_core::ReleaseId;
use slipway_k8s_rollout::{Cluster, ClusterAuditStore};

/// Flags naming the trail, shared by every command.
#[derive(Debug, Args)]
pub(crate) struct TrailArgs {
    #[command(flatten)]
    pub(crate) global: GlobalArgs,
    /// The trail file [audit.path] (implies `audit.store = "file"`).
    #[arg(long, value_name = "PATH")]
    pub(crate) trail: Option<PathBuf>,
    /// Only this release (`--release` or RELEASE, `namespace/name`); with
    /// `audit.store = "cluster"`, the release whose trail to read [default: release.name].
    #[command(flatten)]
    pub(crate) release: slipway_cli::ReleaseArg,
}

/// A trail as read, and where from.
pub(crate) struct Loaded {
    /// The file path, or the ConfigMaps' label and namespace.
    pub(crate) source: String,
    /// Entries and damage.
    pub(crate) trail: Trail,
}

impl Loaded {
    /// Entries of `--release` (or all).
    pub(crate) fn selected<'a>(&'a self, release: Option<&ReleaseId>) -> Vec<&'a Entry> {
        self.trail
            .entries
            .iter()
            .filter(|entry| release.is_none_or(|release| entry.event.release() == release))
            .collect()
    }
}

/// The configuration with `--trail` merged as `audit.path` (and `audit.store = "file"`).
pub(crate) fn settings(args: &TrailArgs) -> anyhow::Result<Settings> {
    let mut overrides: Vec<(&str, serde_json::Value)> = Vec::new();
    if let Some(path) = &args.trail {
        overrides.push((
            "audit.path",
            serde_json::Value::String(path.display().to_string()),
        ));
        overrides.push(("audit.store", serde_json::Value::String("file".to_owned())));
    }
    Ok(config::load(
        &args.global.with_release(&args.release),
        &overrides,
    )?)
}

/// `--release`, parsed.
pub(crate) fn release_flag(args: &TrailArgs) -> Result<Option<ReleaseId>, UserError> {
    args.global
        .release_name(&args.release)
        .map(String::as_str)
        .map(|text| {
            ReleaseId::parse(text).map_err(|err| UserError {
                message: format!("invalid `--release {text}`: {err}"),
            })
        })
        .transpose()
}

/// Builds the configured backends (the memory scenario world by default). The audit store
/// handed to the world is a throwaway: the world's seeded history must not be appended to the
/// trail being inspected.
pub(crate) async fn backends(
    settings: &Settings,
    global: &GlobalArgs,
    demo: &DemoArgs,
) -> anyhow::Result<Built> {
    let spec = slipway_cli::release::release_spec(settings, None, None)?;
    let env = |key: &str| std::env::var(key).ok();
    slipway_cli::backends::build(
        settings,
        global,
        demo,
        &spec,
        Arc::new(MemoryAuditStore::new()),
        &env,
    )
    .await
}

/// Reads the trail the configuration names.
pub(crate) async fn load(args: &TrailArgs, settings: &Settings) -> anyhow::Result<Loaded> {
    match settings.audit.store {
        AuditStoreKind::File => {
            let Some(path) = settings.audit.path.clone() else {
                return Err(UserError {
                    message: "no audit trail to read\n\nhint: pass `--trail PATH`, set `audit.path` in slipway.toml, or `audit.store = \"cluster\"`".to_owned(),
                }
                .into());
            };
            if !path.is_file() {
                return Err(UserError {
                    message: format!("audit trail `{}` not found\n\nhint: check the path; `slipway-deploy run` writes it when `audit.path` is set", path.display()),
                }
                .into());
            }
            let trail = FileAuditStore::new(&path)
                .read()
                .await
                .with_context(|| format!("reading `{}`", path.display()))?;
            Ok(Loaded {
                source: path.display().to_string(),
                trail,
            })
        }
        AuditStoreKind::Cluster => {
            let release = release_name(args, settings)?;
            // The cluster trail is read from a real cluster: no `--demo` here.
            let built = backends(settings, &args.global, &DemoArgs::default()).await?;
            let store = ClusterAuditStore::new(built.backends.cluster.clone(), release.clone());
            read_cluster(&store, &release).await
        }
    }
}

/// `--release`, or `release.name`.
pub(crate) fn release_name(args: &TrailArgs, settings: &Settings) -> anyhow::Result<ReleaseId> {
    Ok(match release_flag(args)? {
        Some(release) => release,
        None => ReleaseId::parse(&settings.release.name).map_err(|err| UserError {
            message: format!("invalid configuration: key `release.name`: {err}"),
        })?,
    })
}

/// The cluster whose release history `verify` reads trail heads from: the configured one when
/// the trail lives there or a real cluster is configured, the embedded world's with `--demo`;
/// `None` for a file trail with no cluster configured.
pub(crate) async fn history_cluster(
    args: &TrailArgs,
    settings: &Settings,
    demo: &DemoArgs,
) -> anyhow::Result<Option<Arc<dyn Cluster>>> {
    let consult = settings.audit.store == AuditStoreKind::Cluster
        || demo.demo.is_some()
        || settings.backend.cluster == ClusterBackend::Kubernetes;
    if !consult {
        return Ok(None);
    }
    let built = backends(settings, &args.global, demo).await?;
    Ok(Some(built.backends.cluster.clone()))
}

/// The newest trail head in a release history, and the revision that carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HistoryHead {
    pub(crate) head: Head,
    /// The record carrying it.
    pub(crate) record: slipway_core::ReleaseRecord,
}

/// Reads `release`'s history and returns the newest record's trail head: the trail must still
/// reach it, or entries were cut off its end.
pub(crate) async fn history_head(
    cluster: &dyn Cluster,
    release: &ReleaseId,
) -> anyhow::Result<Option<HistoryHead>> {
    let history = cluster
        .release_history(release)
        .await
        .with_context(|| format!("reading the release history of `{release}`"))?;
    Ok(history.iter().rev().find_map(|record| {
        record.trail_head.clone().map(|head| HistoryHead {
            head,
            record: record.clone(),
        })
    }))
}

/// Hands every readable entry of the configured trail to `on_entry`, oldest first, and returns
/// where it was read from and the damage found. A file trail is streamed line by line (a
/// million entries in a few megabytes); a cluster trail is listed whole, as the API returns it.
pub(crate) async fn stream(
    args: &TrailArgs,
    settings: &Settings,
    mut on_entry: impl FnMut(Entry),
) -> anyhow::Result<(String, Vec<Damage>)> {
    if let (AuditStoreKind::File, Some(path)) = (&settings.audit.store, &settings.audit.path)
        && path.is_file()
    {
        let damage = FileAuditStore::new(path)
            .read_each(on_entry)
            .with_context(|| format!("reading `{}`", path.display()))?;
        return Ok((path.display().to_string(), damage));
    }
    let loaded = load(args, settings).await?;
    for entry in loaded.trail.entries {
        on_entry(entry);
    }
    Ok((loaded.source, loaded.trail.damage))
}

/// Reads a cluster trail.
pub(crate) async fn read_cluster(
    store: &ClusterAuditStore,
    release: &ReleaseId,
) -> anyhow::Result<Loaded> {
    let trail = store
        .read()
        .await
        .with_context(|| format!("reading the audit trail of `{release}` from the cluster"))?;
    Ok(Loaded {
        source: format!(
            "ConfigMaps `{}={}` in namespace `{}`",
            slipway_k8s_rollout::AUDIT_LABEL,
            release.name,
            release.namespace
        ),
        trail,
    })
}

/// The release records of the entries, oldest first.
pub(crate) fn releases<'a>(
    entries: impl IntoIterator<Item = &'a Entry>,
) -> Vec<&'a slipway_core::ReleaseRecord> {
    entries
        .into_iter()
        .filter_map(|entry| match &entry.event {
            Event::Release(record) => Some(record),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use slipway_audit_log::AuditStore as _;
    use slipway_core::SimClock;
    use slipway_k8s_rollout::MemoryCluster;

    use super::*;

    #[tokio::test]
    async fn a_cluster_trail_is_read_with_its_location() {
        let start = "2026-11-22T10:00:00Z".parse().expect("timestamp");
        let cluster = Arc::new(MemoryCluster::new(Arc::new(SimClock::starting_at(start))));
        let release = ReleaseId::parse("ml/iris").expect("release");
        let store = ClusterAuditStore::new(cluster, release.clone());
        for verdict in ["pass", "fail"] {
            let event = Event::Decision {
                release: release.clone(),
                stage: "analysis".into(),
                verdict: verdict.into(),
                detail: "error rate".into(),
            };
            store.append(start, event).await.expect("append");
        }
        let loaded = read_cluster(&store, &release).await.expect("read");
        assert_eq!(
            loaded.source,
            "ConfigMaps `slipway.dev/audit=iris` in namespace `ml`"
        );
        assert_eq!(loaded.selected(Some(&release)).len(), 2);
        let other = ReleaseId::parse("ml/wine").expect("release");
        assert!(loaded.selected(Some(&other)).is_empty());
    }
}
