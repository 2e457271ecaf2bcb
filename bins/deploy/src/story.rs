//! How a run reads on stderr, around the stage events: which backends are real, and what served
//! before and after (the "story" `cargo xtask demo` shows).

use slipway_cli::backends::Built;
use slipway_core::{ModelRef, ModelSelector};
use slipway_pipeline::ReleaseSpec;

/// The before/after view of the release, read through the backends' traits.
pub(crate) struct Story<'a> {
    spec: &'a ReleaseSpec,
}

impl<'a> Story<'a> {
    pub(crate) fn new(spec: &'a ReleaseSpec) -> Story<'a> {
        Story { spec }
    }

    async fn serving(&self, built: &Built) -> String {
        let release = &self.spec.release;
        let cluster = &built.backends.cluster;
        let image = match cluster.deployment(&release.namespace, &release.name).await {
            Ok(Some(state)) => format!(
                "{} ({}/{} ready)",
                state.spec.image, state.ready_replicas, state.spec.replicas
            ),
            Ok(None) => "nothing".to_owned(),
            Err(err) => format!(
                "unknown ({})",
                err.to_string().lines().next().unwrap_or_default()
            ),
        };
        let alias = ModelRef {
            name: self.spec.model.name.clone(),
            selector: ModelSelector::Alias(self.spec.serving_alias.clone()),
        };
        let model = match built.backends.models.resolve(&alias).await {
            Ok(info) => info.version.to_string(),
            Err(_) => "nothing".to_owned(),
        };
        let canary = match cluster
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
    pub(crate) async fn before(&mut self, built: &Built) {
        eprintln!(
            "slipway: releasing {} with {} {}",
            self.spec.model,
            self.spec.image,
            built.banner()
        );
        eprintln!("before:  {}", self.serving(built).await);
    }

    #[allow(clippy::print_stderr, reason = "the story is for people, on stderr")]
    pub(crate) async fn after(&mut self, built: &Built) {
        match built.simulated_note() {
            Some(note) => eprintln!("after:   {} [{note}]", self.serving(built).await),
            None => eprintln!("after:   {}", self.serving(built).await),
        }
        for note in built.world.notifier.sent() {
            eprintln!("notified: [{}] {}", note.event, note.summary);
        }
    }
}
