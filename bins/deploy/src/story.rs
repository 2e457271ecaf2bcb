//! How a run reads on stderr: one line per stage event, plus, on the in-memory backends, what
//! served before and after (the "story" `cargo xtask demo` shows).

use slipway_core::{ModelRef, ModelSelector};
use slipway_k8s_rollout::Cluster as _;
use slipway_mlflow::ModelRegistry as _;
use slipway_pipeline::scenario::World;
use slipway_pipeline::{ReleaseSpec, RunReport};

/// The before/after view of the world.
pub(crate) struct Story<'a> {
    spec: &'a ReleaseSpec,
}

impl<'a> Story<'a> {
    pub(crate) fn new(spec: &'a ReleaseSpec) -> Story<'a> {
        Story { spec }
    }

    async fn serving(&self, world: &World) -> String {
        let release = &self.spec.release;
        let image = match world
            .cluster
            .deployment(&release.namespace, &release.name)
            .await
        {
            Ok(Some(state)) => format!(
                "{} ({}/{} ready)",
                state.spec.image, state.ready_replicas, state.spec.replicas
            ),
            _ => "nothing".to_owned(),
        };
        let alias = ModelRef {
            name: self.spec.model.name.clone(),
            selector: ModelSelector::Alias(self.spec.serving_alias.clone()),
        };
        let model = match world.models.resolve(&alias).await {
            Ok(info) => info.version.to_string(),
            Err(_) => "nothing".to_owned(),
        };
        let canary = match world
            .cluster
            .deployment(&release.namespace, &format!("{}-canary", release.name))
            .await
        {
            Ok(Some(_)) => "a canary is running",
            _ => "no canary",
        };
        format!(
            "stable {release} runs {image}; `{}` → {model}; {canary}",
            self.spec.serving_alias
        )
    }

    #[allow(clippy::print_stderr, reason = "the story is for people, on stderr")]
    pub(crate) async fn before(&mut self, world: &World) {
        eprintln!(
            "slipway: releasing {} with {} on the in-memory backends",
            self.spec.model, self.spec.image
        );
        eprintln!("before:  {}", self.serving(world).await);
    }

    #[allow(clippy::print_stderr, reason = "the story is for people, on stderr")]
    pub(crate) async fn after(&mut self, world: &World, report: &RunReport) {
        eprintln!("after:   {}", self.serving(world).await);
        for note in world.notifier.sent() {
            eprintln!("notified: [{}] {}", note.event, note.summary);
        }
        let _ = report;
    }
}
