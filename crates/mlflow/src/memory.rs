//! [`MemoryModelRegistry`]: an MLflow-shaped model registry in memory. See the crate docs.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use slipway_core::{ModelRef, ModelSelector, ModelVersion, Stage};

use crate::{Error, MetricPoint, ModelRegistry, RunData, VersionInfo, VersionStatus};

#[derive(Debug, Default, Clone, serde::Serialize, serde::Deserialize)]
struct State {
    /// Model name → version number → info.
    models: BTreeMap<String, BTreeMap<u64, VersionInfo>>,
    runs: BTreeMap<String, RunData>,
    /// Run id → metric key → every logged value, in logging order.
    histories: BTreeMap<String, BTreeMap<String, Vec<MetricPoint>>>,
}

/// Everything a [`MemoryModelRegistry`] holds (versions, aliases, stages, tags, runs), as a
/// serialisable value, so another process can go on with it (the embedded world of
/// `--demo --state`).
#[derive(Debug, Default, Clone, serde::Serialize, serde::Deserialize)]
pub struct MemoryModelRegistrySnapshot(State);

/// An in-memory model registry. See the crate docs.
#[derive(Debug, Default)]
pub struct MemoryModelRegistry {
    state: Mutex<State>,
}

impl MemoryModelRegistry {
    /// An empty registry.
    pub fn new() -> MemoryModelRegistry {
        MemoryModelRegistry::default()
    }

    /// Everything this registry holds now.
    pub fn snapshot(&self) -> MemoryModelRegistrySnapshot {
        MemoryModelRegistrySnapshot(self.lock().clone())
    }

    /// Replaces everything this registry holds with `snapshot`.
    pub fn restore(&self, snapshot: MemoryModelRegistrySnapshot) {
        *self.lock() = snapshot.0;
    }

    /// Registers the next version of `name`, produced by a run with `metrics`; returns it.
    pub fn register(&self, name: &str, run_id: &str, metrics: &[(&str, f64)]) -> ModelVersion {
        let mut state = self.lock();
        state.runs.insert(
            run_id.to_owned(),
            RunData {
                metrics: metrics
                    .iter()
                    .map(|(key, value)| ((*key).to_owned(), *value))
                    .collect(),
                params: BTreeMap::new(),
            },
        );
        state.histories.insert(
            run_id.to_owned(),
            metrics
                .iter()
                .map(|(key, value)| {
                    (
                        (*key).to_owned(),
                        vec![MetricPoint {
                            timestamp_ms: 0,
                            step: 0,
                            value: *value,
                        }],
                    )
                })
                .collect(),
        );
        let versions = state.models.entry(name.to_owned()).or_default();
        let number = versions.keys().next_back().map_or(1, |last| last + 1);
        let version = ModelVersion {
            name: name.to_owned(),
            version: number,
        };
        versions.insert(
            number,
            VersionInfo {
                version: version.clone(),
                status: VersionStatus::Ready,
                source: format!("runs:/{run_id}/model"),
                run_id: Some(run_id.to_owned()),
                stage: Stage::None,
                aliases: Vec::new(),
                tags: BTreeMap::new(),
            },
        );
        version
    }

    /// Logs one more value of a metric on a run (creating the run if needed). As in MLflow, the
    /// run's latest value is the one with the highest step, then the latest timestamp.
    pub fn log_metric(&self, run_id: &str, key: &str, point: MetricPoint) {
        let mut state = self.lock();
        let history = state
            .histories
            .entry(run_id.to_owned())
            .or_default()
            .entry(key.to_owned())
            .or_default();
        history.push(point);
        let latest = history.iter().copied().reduce(|best, next| {
            if (next.step, next.timestamp_ms) >= (best.step, best.timestamp_ms) {
                next
            } else {
                best
            }
        });
        if let Some(latest) = latest {
            state
                .runs
                .entry(run_id.to_owned())
                .or_default()
                .metrics
                .insert(key.to_owned(), latest.value);
        }
    }

    /// Overrides a version's status (to model a registration that failed or is pending).
    pub fn set_status(&self, version: &ModelVersion, status: VersionStatus) {
        if let Some(info) = self
            .lock()
            .models
            .get_mut(&version.name)
            .and_then(|v| v.get_mut(&version.version))
        {
            info.status = status;
        }
    }

    /// A snapshot of one version, for tests and the demo's story.
    pub fn version(&self, version: &ModelVersion) -> Option<VersionInfo> {
        self.lock()
            .models
            .get(&version.name)
            .and_then(|v| v.get(&version.version))
            .cloned()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn model_not_found(name: &str) -> Error {
    Error::NotFound {
        what: format!("model `{name}`"),
        detail: String::new(),
        hint: "check the registered model name (it is case-sensitive)".to_owned(),
    }
}

fn version_not_found(version: &ModelVersion) -> Error {
    Error::NotFound {
        what: format!("version {} of model `{}`", version.version, version.name),
        detail: String::new(),
        hint: "list the model's versions in the registry UI or API".to_owned(),
    }
}

fn versions_mut<'a>(
    state: &'a mut State,
    name: &str,
) -> Result<&'a mut BTreeMap<u64, VersionInfo>, Error> {
    state
        .models
        .get_mut(name)
        .ok_or_else(|| model_not_found(name))
}

#[async_trait::async_trait]
impl ModelRegistry for MemoryModelRegistry {
    async fn resolve(&self, model: &ModelRef) -> Result<VersionInfo, Error> {
        let state = self.lock();
        let versions = state
            .models
            .get(&model.name)
            .ok_or_else(|| model_not_found(&model.name))?;
        let found = match &model.selector {
            ModelSelector::Version(number) => versions.get(number),
            ModelSelector::Alias(alias) => {
                versions.values().find(|info| info.aliases.contains(alias))
            }
            ModelSelector::Stage(stage) => {
                versions.values().rev().find(|info| info.stage == *stage)
            }
        };
        found.cloned().ok_or_else(|| Error::NotFound {
            what: match &model.selector {
                ModelSelector::Version(number) => {
                    format!("version {number} of model `{}`", model.name)
                }
                ModelSelector::Alias(alias) => format!("alias `{alias}` of model `{}`", model.name),
                ModelSelector::Stage(stage) => {
                    format!(
                        "a version of model `{}` in stage {}",
                        model.name,
                        stage.as_str()
                    )
                }
            },
            detail: String::new(),
            hint: "point the alias (or stage) at a version first, or name a version number"
                .to_owned(),
        })
    }

    async fn run_data(&self, run_id: &str) -> Result<RunData, Error> {
        self.lock()
            .runs
            .get(run_id)
            .cloned()
            .ok_or_else(|| Error::NotFound {
                what: format!("run `{run_id}`"),
                detail: String::new(),
                hint: "the version's run may have been deleted".to_owned(),
            })
    }

    async fn metric_history(&self, run_id: &str, key: &str) -> Result<Vec<MetricPoint>, Error> {
        // Like MLflow, an unknown run has an empty history rather than a not-found error.
        let state = self.lock();
        Ok(state
            .histories
            .get(run_id)
            .and_then(|metrics| metrics.get(key))
            .cloned()
            .unwrap_or_default())
    }

    async fn set_alias(&self, version: &ModelVersion, alias: &str) -> Result<(), Error> {
        let mut state = self.lock();
        let versions = versions_mut(&mut state, &version.name)?;
        if !versions.contains_key(&version.version) {
            return Err(version_not_found(version));
        }
        for info in versions.values_mut() {
            info.aliases.retain(|existing| existing != alias);
            if info.version.version == version.version {
                info.aliases.push(alias.to_owned());
            }
        }
        Ok(())
    }

    async fn delete_alias(&self, name: &str, alias: &str) -> Result<(), Error> {
        let mut state = self.lock();
        for info in versions_mut(&mut state, name)?.values_mut() {
            info.aliases.retain(|existing| existing != alias);
        }
        Ok(())
    }

    async fn set_version_tag(
        &self,
        version: &ModelVersion,
        key: &str,
        value: &str,
    ) -> Result<(), Error> {
        let mut state = self.lock();
        let info = versions_mut(&mut state, &version.name)?
            .get_mut(&version.version)
            .ok_or_else(|| version_not_found(version))?;
        info.tags.insert(key.to_owned(), value.to_owned());
        Ok(())
    }

    async fn delete_version_tag(&self, version: &ModelVersion, key: &str) -> Result<(), Error> {
        let mut state = self.lock();
        let info = versions_mut(&mut state, &version.name)?
            .get_mut(&version.version)
            .ok_or_else(|| version_not_found(version))?;
        info.tags.remove(key);
        Ok(())
    }

    async fn transition_stage(
        &self,
        version: &ModelVersion,
        stage: Stage,
        archive_existing: bool,
    ) -> Result<(), Error> {
        let mut state = self.lock();
        let versions = versions_mut(&mut state, &version.name)?;
        if !versions.contains_key(&version.version) {
            return Err(version_not_found(version));
        }
        for info in versions.values_mut() {
            if info.version.version == version.version {
                info.stage = stage;
            } else if archive_existing && info.stage == stage && stage != Stage::None {
                info.stage = Stage::Archived;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn aliases_stages_and_metrics_behave_like_mlflow() {
        let registry = MemoryModelRegistry::new();
        let v1 = registry.register("iris", "run-1", &[("accuracy", 0.93)]);
        let v2 = registry.register("iris", "run-2", &[("accuracy", 0.95)]);
        assert_eq!(v2.version, 2);
        registry.set_alias(&v1, "production").await.expect("alias");
        registry
            .set_alias(&v2, "production")
            .await
            .expect("move alias");
        let resolved = registry
            .resolve(&ModelRef::parse("iris@production").expect("ref"))
            .await
            .expect("resolve");
        assert_eq!(resolved.version, v2);
        assert!(
            registry.version(&v1).expect("v1").aliases.is_empty(),
            "alias moved off v1"
        );

        registry
            .transition_stage(&v1, Stage::Production, false)
            .await
            .expect("stage");
        registry
            .transition_stage(&v2, Stage::Production, true)
            .await
            .expect("stage");
        assert_eq!(registry.version(&v1).expect("v1").stage, Stage::Archived);
        let staged = registry
            .resolve(&ModelRef::parse("iris/Production").expect("ref"))
            .await
            .expect("stage");
        assert_eq!(staged.version, v2);

        let run = registry
            .run_data(resolved.run_id.as_deref().expect("run"))
            .await
            .expect("run");
        assert_eq!(run.metrics.get("accuracy"), Some(&0.95));

        let unknown = registry
            .resolve(&ModelRef::parse("iris@champion").expect("ref"))
            .await;
        let text = unknown.expect_err("unknown alias").to_string();
        assert!(
            text.contains("alias `champion` of model `iris` not found"),
            "{text}"
        );
        let missing = registry
            .set_alias(
                &ModelVersion {
                    name: "iris".into(),
                    version: 9,
                },
                "x",
            )
            .await;
        assert!(missing.is_err());
    }

    #[tokio::test]
    async fn metric_history_and_tags() {
        let registry = MemoryModelRegistry::new();
        let v1 = registry.register("iris", "run-1", &[("accuracy", 0.90)]);
        registry.log_metric(
            "run-1",
            "accuracy",
            MetricPoint {
                timestamp_ms: 20,
                step: 2,
                value: 0.95,
            },
        );
        registry.log_metric(
            "run-1",
            "accuracy",
            MetricPoint {
                timestamp_ms: 30,
                step: 1,
                value: 0.50,
            },
        );
        let history = registry
            .metric_history("run-1", "accuracy")
            .await
            .expect("history");
        let values: Vec<f64> = history.iter().map(|point| point.value).collect();
        assert_eq!(values, [0.90, 0.95, 0.50]);
        let latest = registry.run_data("run-1").await.expect("run").metrics;
        assert_eq!(
            latest.get("accuracy"),
            Some(&0.95),
            "highest step wins, as in MLflow"
        );
        assert!(
            registry
                .metric_history("run-1", "f1")
                .await
                .expect("no such metric")
                .is_empty()
        );
        assert!(
            registry
                .metric_history("run-9", "accuracy")
                .await
                .expect("unknown run")
                .is_empty()
        );

        registry
            .set_version_tag(&v1, "slipway.release", "r1")
            .await
            .expect("tag");
        assert_eq!(registry.version(&v1).expect("v1").tags.len(), 1);
        registry
            .delete_version_tag(&v1, "slipway.release")
            .await
            .expect("untag");
        assert!(registry.version(&v1).expect("v1").tags.is_empty());
    }
}
