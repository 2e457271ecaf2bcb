//! The demo story, told in one world: v1 serves; canary v2 passes and is promoted; canary v3
//! (a worse model) is aborted; v2 degrades after promotion and [`slipway_pipeline::watch::watch`] rolls it
//! back to v1.
//!
//! Key design decision: the story is a library function over one [`StoryWorld`], because the
//! in-memory world lives in one process: separate `slipway-deploy`/`slipway-rollback`
//! invocations would each start from a fresh world. Each chapter calls the same pipeline
//! functions the binaries call ([`slipway_pipeline::run`], [`slipway_pipeline::watch::watch`]), on the same backends;
//! the story only sets the stage (which version's pods a metrics track shows from when) and
//! checks that each chapter ended as written. The audit trail goes to the store the caller
//! gives (a file for `slipway-audit` to read afterwards).

use std::sync::Arc;

use slipway_audit_log::AuditStore;
use slipway_core::{Clock, ModelRef, ModelSelector, Outcome, SimClock};

use crate::scenario::{START, StoryWorld, build_story};

use slipway_pipeline::watch::{InvalidWatch, WatchConfig, WatchSpec};
use slipway_pipeline::{Observer, ReleaseSpec, RunOutcome, RunReport, StageEvent, StageStatus};

/// One chapter as it happened.
#[derive(Debug, Clone, PartialEq)]
pub struct Chapter {
    /// The heading.
    pub title: String,
    /// What the script says happens.
    pub expected: String,
    /// The pipeline's report, when the chapter ran one.
    pub report: Option<RunReport>,
    /// Every expectation that did not hold; empty when the chapter went as written.
    pub deviations: Vec<String>,
}

/// The whole story.
#[derive(Debug, Clone, PartialEq)]
pub struct StoryReport {
    /// Chapters in order.
    pub chapters: Vec<Chapter>,
}

impl StoryReport {
    /// True when every chapter ended as written.
    pub fn as_written(&self) -> bool {
        self.chapters
            .iter()
            .all(|chapter| chapter.deviations.is_empty())
    }
}

/// What serves now, read through the backends' traits.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Serving {
    stable_image: String,
    alias: Option<u64>,
    canary: bool,
}

struct Teller<'a> {
    story: &'a StoryWorld,
    observer: &'a mut dyn Observer,
    chapters: Vec<Chapter>,
    total: usize,
}

/// Tells the story on simulated time from [`START`], around `base` (release, service, analysis
/// plan, policy from configuration; model versions and images come from the story world) and
/// the `[watch]` configuration. Stage events, with a `story` event heading each chapter, go to
/// `observer`; the audit trail goes to `audit`, which should start empty.
pub async fn tell(
    base: &ReleaseSpec,
    watch: &WatchConfig,
    audit: Arc<dyn AuditStore>,
    observer: &mut dyn Observer,
) -> Result<StoryReport, InvalidWatch> {
    let watch_spec = WatchSpec::new(base, watch)?;
    let start = START.parse().unwrap_or(jiff::Timestamp::UNIX_EPOCH);
    let clock: Arc<dyn Clock> = Arc::new(SimClock::starting_at(start));
    let story = build_story(base, audit, clock).await;
    Ok(tell_in(&story, &watch_spec, observer).await)
}

/// Tells the story in a world built by [`build_story`] (tests inspect it afterwards).
pub async fn tell_in(
    story: &StoryWorld,
    watch: &WatchSpec,
    observer: &mut dyn Observer,
) -> StoryReport {
    let mut teller = Teller {
        story,
        observer,
        chapters: Vec::new(),
        total: 4,
    };
    teller.v1_serves().await;
    teller.release_v2().await;
    teller.release_v3().await;
    teller.watch_v2(watch).await;
    StoryReport {
        chapters: teller.chapters,
    }
}

impl Teller<'_> {
    fn emit(&mut self, status: StageStatus, message: String) {
        let event = StageEvent {
            stage: "story",
            status,
            at: self.story.world.backends.clock.now(),
            message,
        };
        self.observer.event(&event);
    }

    fn heading(&mut self, title: &str, expected: &str) {
        let number = self.chapters.len() + 1;
        self.emit(
            StageStatus::Start,
            format!("chapter {number}/{}: {title}", self.total),
        );
        self.emit(StageStatus::Info, format!("the script: {expected}"));
    }

    async fn serving(&self) -> Serving {
        let backends = &self.story.world.backends;
        let release = &self.story.world_release();
        let stable_image = match backends
            .cluster
            .deployment(&release.namespace, &release.name)
            .await
        {
            Ok(Some(state)) => state.spec.image,
            _ => String::new(),
        };
        let canary = matches!(
            backends
                .cluster
                .deployment(&release.namespace, &format!("{}-canary", release.name))
                .await,
            Ok(Some(_))
        );
        let base = self.story.release_spec(0);
        let alias = ModelRef {
            name: base.model.name.clone(),
            selector: ModelSelector::Alias(base.serving_alias.clone()),
        };
        let alias = backends
            .models
            .resolve(&alias)
            .await
            .ok()
            .map(|info| info.version.version);
        Serving {
            stable_image,
            alias,
            canary,
        }
    }

    /// Which story version an image string is, for the narration.
    fn label(&self, image: &str) -> String {
        self.story
            .versions
            .iter()
            .find(|version| image.ends_with(&version.digest.to_string()))
            .map_or_else(|| image.to_owned(), |version| version.label.to_owned())
    }

    /// Checks the state against (stable version, alias version, canary present).
    async fn expect_state(&mut self, stable: usize, alias: usize, deviations: &mut Vec<String>) {
        let now = self.serving().await;
        let want_stable = &self.story.versions[stable];
        let want_alias = &self.story.versions[alias];
        if !now.stable_image.ends_with(&want_stable.digest.to_string()) {
            deviations.push(format!(
                "stable runs {} ({}), not {}",
                self.label(&now.stable_image),
                now.stable_image,
                want_stable.label
            ));
        }
        if now.alias != Some(want_alias.model.version) {
            deviations.push(format!(
                "the serving alias points at version {:?}, not {} ({})",
                now.alias, want_alias.model, want_alias.label
            ));
        }
        if now.canary {
            deviations.push("a canary is left running".to_owned());
        }
        let serving = format!(
            "now: stable runs {} ({}), the serving alias → version {}{}",
            self.label(&now.stable_image),
            now.stable_image,
            now.alias
                .map_or_else(|| "none".to_owned(), |v| v.to_string()),
            if now.canary { ", a canary runs" } else { "" }
        );
        self.emit(StageStatus::Info, serving);
    }

    fn close(
        &mut self,
        title: &str,
        expected: &str,
        report: Option<RunReport>,
        deviations: Vec<String>,
    ) {
        if deviations.is_empty() {
            self.emit(StageStatus::Pass, format!("as written: {expected}"));
        } else {
            self.emit(
                StageStatus::Fail,
                format!("NOT as written: {}", deviations.join("; ")),
            );
        }
        self.chapters.push(Chapter {
            title: title.to_owned(),
            expected: expected.to_owned(),
            report,
            deviations,
        });
    }

    fn expect_outcome(report: &RunReport, want: RunOutcome, deviations: &mut Vec<String>) {
        if report.outcome != want {
            deviations.push(format!(
                "ended {:?}, not {want:?}: {}",
                report.outcome, report.reason
            ));
        }
    }

    async fn v1_serves(&mut self) {
        let v1 = self.story.versions[0].clone();
        let title = format!("{} serves ({} in {})", v1.label, v1.model, v1.image);
        let expected = "v1 is deployed and recorded as revision 1; the serving alias points at it";
        self.heading(&title, expected);
        let mut deviations = Vec::new();
        let release = self.story.world_release();
        match self
            .story
            .world
            .backends
            .cluster
            .release_history(&release)
            .await
        {
            Ok(history) if history.len() == 1 && history[0].model == v1.model => {}
            Ok(history) => {
                deviations.push(format!("{} revisions in the history, not 1", history.len()))
            }
            Err(err) => deviations.push(err.to_string()),
        }
        self.expect_state(0, 0, &mut deviations).await;
        self.close(&title, expected, None, deviations);
    }

    async fn release_v2(&mut self) {
        let v2 = self.story.versions[1].clone();
        let title = format!(
            "canary {} ({} in {}, accuracy {})",
            v2.label, v2.model, v2.image, v2.accuracy
        );
        let expected =
            "every gate passes, each canary step is healthy, the approval is there: v2 is promoted";
        self.heading(&title, expected);
        let clock = self.story.world.backends.clock.clone();
        self.story.track_runs("canary", 1, clock.now());
        let spec = self.story.release_spec(1);
        let report =
            slipway_pipeline::run(&spec, &self.story.world.backends, &mut *self.observer).await;
        // From promotion on, stable's pods are v2's: their metrics follow v2's behaviour.
        self.story.track_runs("stable", 1, clock.now());
        let mut deviations = Vec::new();
        Self::expect_outcome(&report, RunOutcome::Promoted, &mut deviations);
        self.expect_state(1, 1, &mut deviations).await;
        self.close(&title, expected, Some(report), deviations);
    }

    async fn release_v3(&mut self) {
        let v3 = self.story.versions[2].clone();
        let title = format!(
            "canary {} ({} in {}, accuracy {}: a worse model)",
            v3.label, v3.model, v3.image, v3.accuracy
        );
        let expected = "within the model gate's tolerance offline, but its canary breaches the analysis: aborted, stable untouched on v2";
        self.heading(&title, expected);
        let clock = self.story.world.backends.clock.clone();
        self.story.track_runs("canary", 2, clock.now());
        let spec = self.story.release_spec(2);
        let report =
            slipway_pipeline::run(&spec, &self.story.world.backends, &mut *self.observer).await;
        let mut deviations = Vec::new();
        Self::expect_outcome(&report, RunOutcome::Rejected, &mut deviations);
        if report.revision.is_none() {
            deviations.push("stopped before the canary started (no revision)".to_owned());
        }
        self.expect_state(1, 1, &mut deviations).await;
        self.close(&title, expected, Some(report), deviations);
    }

    async fn watch_v2(&mut self, spec: &WatchSpec) {
        let v2 = self.story.versions[1].clone();
        let title = format!("{} degrades after promotion; the watch guards it", v2.label);
        let expected = "the error rate stays above its limit for the sustain period: the watch rolls back to v1 and moves the alias back";
        self.heading(&title, expected);
        let report =
            slipway_pipeline::watch::watch(spec, &self.story.world.backends, &mut *self.observer)
                .await;
        let clock = self.story.world.backends.clock.clone();
        // v1's pods serve stable again.
        self.story.track_runs("stable", 0, clock.now());
        let mut deviations = Vec::new();
        Self::expect_outcome(&report, RunOutcome::Rejected, &mut deviations);
        self.expect_state(0, 0, &mut deviations).await;
        let release = self.story.world_release();
        match self
            .story
            .world
            .backends
            .cluster
            .release_history(&release)
            .await
        {
            Ok(history) => {
                let outcomes: Vec<Outcome> = history.iter().map(|record| record.outcome).collect();
                let want = [
                    Outcome::Promoted,
                    Outcome::Promoted,
                    Outcome::Aborted,
                    Outcome::RolledBack,
                ];
                if outcomes != want {
                    deviations.push(format!("history outcomes {outcomes:?}, not {want:?}"));
                }
            }
            Err(err) => deviations.push(err.to_string()),
        }
        self.close(&title, expected, Some(report), deviations);
    }
}

impl StoryWorld {
    fn world_release(&self) -> slipway_core::ReleaseId {
        self.release_spec(0).release
    }
}
