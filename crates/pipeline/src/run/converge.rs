//! Crashes converge: what a run writes before its first change, and what the next command does
//! with a release that an earlier command left half-way (killed, or failed after stable already
//! served the candidate).
//!
//! The rules:
//! - Before its first change to the cluster a run records its revision as `in-progress`,
//!   naming the objects it is about to create; the record that ends the revision replaces it.
//! - A record left `in-progress` (or `paused`) is judged by what serves: when stable (or the
//!   Service's colour) already runs its candidate, the revision is recorded as `promoted` with
//!   the serving alias pending, and the alias is moved; otherwise every Slipway object of the
//!   release is removed and the revision recorded as `failed` (killed) or `aborted` (paused,
//!   superseded), stable untouched.
//! - A `promoted` (or `rolled-back`) record with an alias pending has its alias moved by the
//!   next command.
//!
//! So history and cluster agree after any single failure, and `slipway-rollback` chooses its
//! target from what really serves.

use super::*;

impl Ctx<'_> {
    pub(super) async fn history(&mut self) -> Result<Vec<ReleaseRecord>, Stop> {
        self.backends
            .cluster
            .release_history(&self.spec.release)
            .await
            .map_err(|err| failed(chain(&err)))
    }

    /// What serves the release now, pinned: the active colour's image once a blue-green release
    /// switched the Service, else stable's.
    pub(super) async fn serving_image(&mut self) -> Result<String, Stop> {
        slipway_k8s_rollout::bluegreen::serving(
            self.backends.cluster.as_ref(),
            &self.spec.release,
            &self.spec.service,
        )
        .await
        .map(|state| state.spec.image)
        .map_err(|err| failed(chain(&err)))
    }

    /// The Slipway objects this run will create, for the in-progress record.
    pub(super) async fn objects_to_create(&mut self) -> Result<Vec<String>, Stop> {
        let release = &self.spec.release;
        let ns = &release.namespace;
        Ok(match self.strategy {
            Strategy::Canary => {
                let mut objects: Vec<String> = slipway_k8s_rollout::cleanup::canary_objects(
                    release,
                    &self.spec.service,
                    &self.spec.traffic,
                )
                .iter()
                .map(ToString::to_string)
                .collect();
                if self.wants_baseline() {
                    objects.push(format!(
                        "Deployment/{ns}/{}",
                        rollout::baseline_name(release)
                    ));
                }
                objects
            }
            Strategy::BlueGreen => {
                let config = BlueGreenConfig::new(self.spec.service.clone());
                let active = bluegreen::active(self.backends.cluster.as_ref(), release, &config)
                    .await
                    .map_err(|err| failed(chain(&err)))?;
                let standby = active.map_or(bluegreen::Colour::Green, bluegreen::Colour::other);
                vec![
                    format!(
                        "Deployment/{ns}/{}",
                        bluegreen::colour_name(release, standby)
                    ),
                    format!(
                        "Service/{ns}/{}",
                        bluegreen::preview_name(&self.spec.service)
                    ),
                ]
            }
            // Rolling patches the user's Deployment and creates nothing.
            Strategy::Rolling => Vec::new(),
        })
    }

    /// Records the revision as in progress, then allows changes.
    pub(super) async fn begin(
        &mut self,
        image: &ImageRef,
        candidate: &ModelVersion,
        revision: u64,
        creates: Vec<String>,
    ) -> Result<(), Stop> {
        self.creates = creates;
        self.changing = Some((image.clone(), candidate.clone(), revision));
        let reason = if self.creates.is_empty() {
            format!("started by {}", self.spec.actor)
        } else {
            format!(
                "started by {}; creates {}",
                self.spec.actor,
                self.creates.join(", ")
            )
        };
        // Writing the record moves the phase to `Changing` (`Ctx::record`).
        self.record(image, candidate, revision, Outcome::InProgress, &reason)
            .await
    }

    /// `run`, with the lock held: finish what the last command left (see the module docs).
    pub(super) async fn converge(&mut self) -> Result<(), Stop> {
        let history = self.history().await?;
        let Some(last) = history.last().cloned() else {
            return Ok(());
        };
        match last.outcome {
            Outcome::InProgress | Outcome::Paused => {
                let pinned = last.image.with_digest(last.digest.clone());
                let pinned = pinned.pinned().unwrap_or_default();
                if self.serving_image().await? == pinned {
                    return self.converge_served(&last).await.map(|_| ());
                }
                let removed = self.remove_managed().await?;
                let (outcome, revision, why) = if last.outcome == Outcome::InProgress {
                    (
                        Outcome::Failed,
                        last.revision,
                        "its run stopped before it finished",
                    )
                } else {
                    (
                        Outcome::Aborted,
                        last.revision + 1,
                        "superseded by a new run while paused",
                    )
                };
                let reason = if removed.is_empty() {
                    format!("revision {}: {why}; stable untouched", last.revision)
                } else {
                    format!(
                        "revision {}: {why}; removed {}; stable untouched",
                        last.revision,
                        removed.join(", ")
                    )
                };
                self.emit("preflight", StageStatus::Info, reason.clone());
                self.record_end_of(&last, revision, outcome, &reason, None)
                    .await
            }
            _ => {
                // Objects with no record naming them (a record that failed to be written).
                let removed = self.remove_managed().await?;
                if !removed.is_empty() {
                    let text = format!("removed orphaned {}", removed.join(", "));
                    self.emit("preflight", StageStatus::Info, text.clone());
                    self.audit("preflight", "cleaned", &text).await?;
                }
                Ok(())
            }
        }
    }

    /// The last record's candidate already serves: record it as promoted (alias pending)
    /// when the record does not say so yet, then move the alias and remove leftovers.
    ///
    /// Except a rolling release killed before its analysis ended: stable runs the candidate
    /// because a rolling update changes stable first, not because anything approved it. Then
    /// stable goes back to the newest good revision's image and the revision is recorded
    /// `failed`. Returns whether the candidate was recorded as promoted.
    pub(super) async fn converge_served(&mut self, last: &ReleaseRecord) -> Result<bool, Stop> {
        let revision = if last.outcome == Outcome::InProgress {
            last.revision
        } else {
            last.revision + 1
        };
        if last.strategy == Strategy::Rolling && last.outcome == Outcome::InProgress {
            let history = self.history().await?;
            if let Some(good) = history
                .iter()
                .rev()
                .find(|record| matches!(record.outcome, Outcome::Promoted | Outcome::RolledBack))
                .cloned()
            {
                let back = good.image.with_digest(good.digest.clone());
                let back = back.pinned().unwrap_or_default();
                let mut stable =
                    rollout::stable(self.backends.cluster.as_ref(), &self.spec.release)
                        .await
                        .map_err(|err| failed(chain(&err)))?
                        .spec;
                stable.image = back.clone();
                self.backends
                    .cluster
                    .apply_deployment(&stable)
                    .await
                    .map_err(|err| failed(chain(&err)))?;
                let reason = format!(
                    "revision {}: its rolling update was stopped before the analysis of {} ended; stable set back to revision {} ({back})",
                    last.revision, last.model, good.revision
                );
                self.emit("preflight", StageStatus::Info, reason.clone());
                self.record_end_of(last, revision, Outcome::Failed, &reason, None)
                    .await?;
                return Ok(false);
            }
        }
        let reason = format!(
            "revision {}: stable already serves {} at {}; the command that promoted it stopped before recording it",
            last.revision,
            last.model,
            last.digest.short()
        );
        self.emit("preflight", StageStatus::Info, reason.clone());
        let alias = Some(self.spec.serving_alias.clone());
        self.record_end_of(last, revision, Outcome::Promoted, &reason, alias)
            .await?;
        let removed = self.remove_managed().await?;
        if !removed.is_empty() {
            self.emit(
                "preflight",
                StageStatus::Info,
                format!("removed leftovers {}", removed.join(", ")),
            );
        }
        let mut recorded = last.clone();
        recorded.alias_pending = Some(self.spec.serving_alias.clone());
        self.finish_alias(&recorded).await;
        Ok(true)
    }

    /// Every command that holds the lock: the newest promoted or rolled-back revision (the one
    /// that serves) may have left its serving alias pending; move it now.
    pub(super) async fn finish_pending_alias(&mut self) -> Result<(), Stop> {
        let history = self.history().await?;
        if let Some(serving) = history
            .iter()
            .rev()
            .find(|record| matches!(record.outcome, Outcome::Promoted | Outcome::RolledBack))
            .filter(|record| record.alias_pending.is_some())
            .cloned()
        {
            self.finish_alias(&serving).await;
        }
        Ok(())
    }

    /// Moves the serving alias of a promoted record that left it pending, unless it already
    /// points there. A failure is told and left for the next command.
    pub(super) async fn finish_alias(&mut self, record: &ReleaseRecord) {
        let Some(alias) = record.alias_pending.clone() else {
            return;
        };
        let models = self.backends.models.clone();
        let wanted = ModelRef {
            name: record.model.name.clone(),
            selector: ModelSelector::Alias(alias.clone()),
        };
        let already = models
            .resolve(&wanted)
            .await
            .is_ok_and(|info| info.version == record.model);
        let result = if already {
            Ok(())
        } else {
            models.set_alias(&record.model, &alias).await
        };
        let (verdict, text) = match result {
            Ok(()) => (
                "moved",
                format!(
                    "alias `{alias}` points at {} (revision {})",
                    record.model, record.revision
                ),
            ),
            Err(err) => (
                "fail",
                format!(
                    "alias `{alias}` still pending for {} (revision {}): {}",
                    record.model,
                    record.revision,
                    chain(&err)
                ),
            ),
        };
        self.emit("preflight", StageStatus::Info, text.clone());
        if let Err(stop) = self.audit("alias", verdict, &text).await {
            self.emit("record", StageStatus::Fail, stop.reason);
        }
    }

    /// Removes every Slipway object of the release that exists now: the canary with its
    /// routing, a blue-green standby colour with pods and the preview Service. Never the user's
    /// objects nor the serving colour (`slipway_k8s_rollout::cleanup`). Returns what it removed.
    pub(super) async fn remove_managed(&mut self) -> Result<Vec<String>, Stop> {
        let config = BlueGreenConfig::new(self.spec.service.clone());
        let removed = slipway_k8s_rollout::cleanup::remove_managed(
            self.backends.cluster.as_ref(),
            &self.spec.release,
            &self.spec.service,
            &self.spec.traffic,
            Some(&config),
        )
        .await
        .map(|removed| {
            removed
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<String>>()
        })
        .map_err(|err| failed(chain(&err)))?;
        // The baseline goes with the canary (`baseline.rs`).
        let mut removed = removed;
        removed.extend(self.remove_baseline().await?);
        Ok(removed)
    }
}
