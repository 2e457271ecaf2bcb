//! The stages that change the cluster: the canary, blue-green and rolling strategies with their
//! analysis, the approval gate (and pausing at it, and resuming), promotion, the model server's
//! reload, and the abort that leaves stable as it was.

use super::*;

impl Ctx<'_> {
    /// Leaves the healthy canary (or blue-green's standby colour; a rolling release has changed
    /// nothing yet) running and records the release as paused at the approval gate. The phase
    /// changes only once the record is written: a failed write still removes what runs, so
    /// nothing is left running that the history does not name.
    pub(super) async fn pause(
        &mut self,
        image: &ImageRef,
        candidate: &ModelVersion,
        revision: u64,
    ) -> Result<(RunOutcome, String), Stop> {
        let waiting = match self.strategy {
            Strategy::Canary => format!(
                "canary {} healthy",
                rollout::canary_name(&self.spec.release)
            ),
            Strategy::BlueGreen => format!(
                "standby colour healthy behind {}",
                bluegreen::preview_name(&self.spec.service)
            ),
            Strategy::Rolling => format!("stable {} not yet changed", self.spec.release),
        };
        let reason = format!(
            "{waiting}; waiting for {} approval(s) of {candidate} at {}",
            self.spec.policy.approvals.required,
            image
                .digest()
                .map(|digest| digest.short())
                .unwrap_or_default()
        );
        // Writing the record moves the phase back to `Before` (`Ctx::record`): the canary stays.
        self.record(image, candidate, revision, Outcome::Paused, &reason)
            .await?;
        self.emit("approval", StageStatus::Info, format!("paused: {reason}; run `slipway-deploy approve` then `slipway-deploy promote` (or `abort`)"));
        self.notify("paused", &reason).await;
        Ok((RunOutcome::Paused, reason))
    }

    /// Promotes or aborts what the last history record left: a paused canary, or a run that
    /// was killed (`in-progress`). `abort` removes every Slipway object of the release whatever
    /// the record says, and refuses when stable already serves the candidate (only a rollback
    /// can undo a promotion).
    pub(super) async fn resume(&mut self, action: Resume) -> Result<(RunOutcome, String), Stop> {
        let release = self.spec.release.clone();
        let history = self.history().await?;
        let last = history.last().cloned();
        let unfinished = last
            .clone()
            .filter(|record| matches!(record.outcome, Outcome::Paused | Outcome::InProgress));
        if let Some(record) = &unfinished {
            self.report.model = Some(record.model.clone());
            self.report.digest = Some(record.digest.clone());
            let pinned = record.image.with_digest(record.digest.clone());
            let pinned = pinned.pinned().unwrap_or_default();
            if self.serving_image().await? == pinned {
                // Stable already serves the candidate: the release was promoted in the cluster
                // by a command that did not live to record it. Say so, then finish it.
                if !self.converge_served(record).await? {
                    return Err(rejected(format!(
                        "revision {}'s rolling update was stopped before its analysis ended: stable set back to the last good revision",
                        record.revision
                    )));
                }
                return match action {
                    Resume::Promote => Ok((
                        RunOutcome::Promoted,
                        format!(
                            "{} already serves from {pinned}; recorded as revision {}",
                            record.model, record.revision
                        ),
                    )),
                    Resume::Abort(_) => Err(rejected(format!(
                        "cannot abort: stable {release} already serves revision {}'s candidate {} at {} (hint: undo a promotion with `slipway-rollback --reason \"…\"`)",
                        record.revision,
                        record.model,
                        record.digest.short()
                    ))),
                };
            }
        }
        match action {
            Resume::Abort(reason) => {
                let reason = format!("aborted by {}: {reason}", self.spec.actor);
                let removed = self.remove_managed().await?;
                let Some(record) = unfinished else {
                    if removed.is_empty() {
                        return Ok((
                            RunOutcome::Unchanged,
                            format!(
                                "nothing to abort: {} and no Slipway object of {release} exists",
                                last.map_or_else(
                                    || "the release has no history".to_owned(),
                                    |record| format!(
                                        "the last revision ({}) ended {}",
                                        record.revision, record.outcome
                                    )
                                )
                            ),
                        ));
                    }
                    // Nothing was aborted: a finished revision's leftovers (a killed command's
                    // canary or standby colour) were cleaned up.
                    let text = format!(
                        "nothing to abort: {}; removed leftovers {}",
                        last.map_or_else(
                            || "the release has no history".to_owned(),
                            |record| format!(
                                "the last revision ({}) ended {}",
                                record.revision, record.outcome
                            )
                        ),
                        join(&removed)
                    );
                    self.emit("abort", StageStatus::Pass, text.clone());
                    self.audit("abort", "cleaned", &text).await?;
                    return Ok((RunOutcome::Unchanged, text));
                };
                let revision = if record.outcome == Outcome::InProgress {
                    record.revision
                } else {
                    record.revision + 1
                };
                self.report.revision = Some(revision);
                let text = if removed.is_empty() {
                    format!("{reason}; nothing of it was running")
                } else {
                    format!("{reason}; removed {}", join(&removed))
                };
                self.emit(
                    "abort",
                    StageStatus::Pass,
                    if removed.is_empty() {
                        format!(
                            "revision {}: nothing of it was running; stable {release} untouched",
                            record.revision
                        )
                    } else {
                        format!(
                            "revision {}: removed {}; stable {release} untouched",
                            record.revision,
                            join(&removed)
                        )
                    },
                );
                self.record_end_of(&record, revision, Outcome::Aborted, &text, None)
                    .await?;
                self.k8s_event("Aborted", &text).await;
                Ok((RunOutcome::Aborted, text))
            }
            Resume::Promote => {
                let paused = paused_record(&history).map_err(failed)?;
                let revision = paused.revision + 1;
                self.report.revision = Some(revision);
                let image = paused.image.with_digest(paused.digest.clone());
                let pinned = image.pinned().unwrap_or_default();
                // What the pause left running must still run the candidate: the canary, or
                // blue-green's standby colour (a rolling release changed nothing before it).
                self.strategy = paused.strategy;
                let config = self.blue_green_config();
                let (what, running, standby) = match paused.strategy {
                    Strategy::Canary => {
                        let canary = self
                            .backends
                            .cluster
                            .deployment(&release.namespace, &rollout::canary_name(&release))
                            .await
                            .map_err(|err| failed(chain(&err)))?;
                        (
                            "canary",
                            canary.is_some_and(|state| state.spec.image == pinned),
                            None,
                        )
                    }
                    Strategy::BlueGreen => {
                        let standby =
                            bluegreen::active(self.backends.cluster.as_ref(), &release, &config)
                                .await
                                .map_err(|err| failed(chain(&err)))?
                                .map(bluegreen::Colour::other);
                        let state = match standby {
                            Some(colour) => self
                                .backends
                                .cluster
                                .deployment(
                                    &release.namespace,
                                    &bluegreen::colour_name(&release, colour),
                                )
                                .await
                                .map_err(|err| failed(chain(&err)))?,
                            None => None,
                        };
                        let running = state
                            .is_some_and(|state| state.spec.image == pinned && state.rolled_out());
                        ("standby colour", running, standby.filter(|_| running))
                    }
                    Strategy::Rolling => ("stable (unchanged)", true, None),
                };
                self.emit(
                    "resume",
                    StageStatus::Info,
                    format!(
                        "revision {} of {release} paused at approval: {} at {}; its {what} {}",
                        paused.revision,
                        paused.model,
                        paused.digest.short(),
                        if running { "is running" } else { "is gone" }
                    ),
                );
                if !running {
                    return Err(failed(format!(
                        "the {what} of paused revision {} is not running {pinned} (hint: `slipway-deploy abort` records its end; start a new release with `slipway-deploy run`)",
                        paused.revision
                    )));
                }
                // The gate judges self-approval against who started the release, not who
                // promotes. Too few approvals leave the release paused, canary running.
                let promoter = self.spec_actor_override.replace(paused.actor.clone());
                let gate = self.approval(&image, &paused.model, paused.revision).await;
                self.spec_actor_override = promoter;
                if let Err(stop) = gate {
                    self.report.revision = Some(paused.revision);
                    return Err(rejected(format!(
                        "{}; revision {} stays paused",
                        stop.reason, paused.revision
                    )));
                }
                // Promotion changes what serves (for a rolling release, all of the change
                // happens now), possibly days after `run` passed its window: the deploy windows
                // are judged again at this moment, and a closed one leaves the release paused.
                let windows = slipway_gates::window::evaluate(
                    &self.spec.policy.windows,
                    self.backends.clock.now(),
                    self.spec.window_override.as_ref(),
                );
                if let Err(stop) = self.gate("deploy-window", windows).await {
                    self.report.revision = Some(paused.revision);
                    return Err(rejected(format!(
                        "{}; revision {} stays paused",
                        stop.reason, paused.revision
                    )));
                }
                // What a stop during the promotion puts back (`unwind`): stable as it is now.
                let stable = rollout::stable(self.backends.cluster.as_ref(), &release)
                    .await
                    .map_err(|err| failed(chain(&err)))?;
                self.stable_before = Some(stable.spec);
                self.begin(&image, &paused.model, revision, Vec::new())
                    .await?;
                match (paused.strategy, standby) {
                    (Strategy::BlueGreen, Some(standby)) => {
                        self.blue_green_switch(&image, &paused.model, revision, standby, &config)
                            .await?;
                    }
                    (Strategy::Rolling, _) => {
                        self.rolling_change(&image, &paused.model, revision).await?;
                    }
                    _ => self.promote(&image, &paused.model, revision).await?,
                }
                Ok((
                    RunOutcome::Promoted,
                    format!(
                        "{} serves from {pinned} as revision {revision}",
                        paused.model
                    ),
                ))
            }
        }
    }

    /// The blue-green settings of this release.
    fn blue_green_config(&self) -> BlueGreenConfig {
        let mut config = BlueGreenConfig::new(self.spec.service.clone());
        config.deadline = self.spec.progress_deadline;
        config
    }

    /// Blue-green: the candidate goes to the standby colour (a preview Service fronts it), is
    /// analysed on its own track, needs its approvals, then the Service switches. Missing
    /// approvals pause the release as a canary's do (`rollout.on_missing_approval = "pause"`):
    /// the standby keeps running behind the preview Service until `promote` switches to it or
    /// `abort` removes it (returned as `Some`). The old colour stays scaled for
    /// `scale_down_delay` so switching back is instant, then is scaled down.
    pub(super) async fn blue_green(
        &mut self,
        image: &ImageRef,
        candidate: &ModelVersion,
        revision: u64,
    ) -> Result<Option<(RunOutcome, String)>, Stop> {
        let release = self.spec.release.clone();
        let pinned = image.pinned().unwrap_or_default();
        let cluster = self.backends.cluster.clone();
        let clock = self.backends.clock.clone();
        let config = self.blue_green_config();
        self.emit(
            "blue-green",
            StageStatus::Start,
            format!("deploying {pinned} to the standby colour"),
        );
        let standby =
            bluegreen::deploy(cluster.as_ref(), clock.as_ref(), &release, &config, &pinned)
                .await
                .map_err(|err| match err {
                    slipway_k8s_rollout::Error::NotReady { .. } => {
                        rejected(format!("standby colour unhealthy: {}", chain(&err)))
                    }
                    other => failed(chain(&other)),
                });
        let standby = standby?;
        self.emit(
            "blue-green",
            StageStatus::Pass,
            format!(
                "{} ready behind {}",
                bluegreen::colour_name(&release, standby),
                bluegreen::preview_name(&config.service)
            ),
        );
        self.analysis_on(0, standby.as_str()).await?;
        if let Err(stop) = self.approval(image, candidate, revision).await {
            if self.spec.pause_for_approval && stop.outcome == RunOutcome::Rejected {
                return self.pause(image, candidate, revision).await.map(Some);
            }
            return Err(stop);
        }
        self.blue_green_switch(image, candidate, revision, standby, &config)
            .await?;
        Ok(None)
    }

    /// Blue-green's promotion: the Service switches to `standby`, the revision is recorded
    /// promoted, and the old colour is scaled down after its delay.
    pub(super) async fn blue_green_switch(
        &mut self,
        image: &ImageRef,
        candidate: &ModelVersion,
        revision: u64,
        standby: bluegreen::Colour,
        config: &BlueGreenConfig,
    ) -> Result<(), Stop> {
        let release = self.spec.release.clone();
        let cluster = self.backends.cluster.clone();
        let clock = self.backends.clock.clone();
        // From the switch on, a stop switches the Service back (`unwind`).
        self.phase = Phase::Serving;
        bluegreen::switch(cluster.as_ref(), &release, config, standby)
            .await
            .map_err(|err| failed(chain(&err)))?;
        self.emit(
            "blue-green",
            StageStatus::Pass,
            format!("Service {} now selects {standby}", config.service),
        );
        self.k8s_event(
            "Switched",
            &format!("revision {revision}: {candidate} on {standby}"),
        )
        .await;
        // The candidate serves: record it before the housekeeping, so a failure there never
        // leaves the history saying otherwise.
        self.promoted(image, candidate, revision).await?;
        match bluegreen::finish(cluster.as_ref(), clock.as_ref(), &release, config).await {
            Ok(()) => self.emit(
                "blue-green",
                StageStatus::Pass,
                format!("old colour scaled down after {:?}", config.scale_down_delay),
            ),
            Err(err) => self.emit(
                "blue-green",
                StageStatus::Info,
                format!(
                    "could not scale the old colour down: {} (it keeps running; the next release or `slipway-deploy abort` removes it)",
                    chain(&err)
                ),
            ),
        }
        Ok(())
    }

    /// Rolling: approvals first (nothing to look at before the change; missing ones pause the
    /// release before anything changed, as `rollout.on_missing_approval = "pause"` says, and
    /// `promote` then rolls: returned as `Some`), then [`Ctx::rolling_change`].
    pub(super) async fn rolling(
        &mut self,
        image: &ImageRef,
        candidate: &ModelVersion,
        revision: u64,
    ) -> Result<Option<(RunOutcome, String)>, Stop> {
        if let Err(stop) = self.approval(image, candidate, revision).await {
            if self.spec.pause_for_approval && stop.outcome == RunOutcome::Rejected {
                return self.pause(image, candidate, revision).await.map(Some);
            }
            return Err(stop);
        }
        self.rolling_change(image, candidate, revision).await?;
        Ok(None)
    }

    /// Kubernetes replaces stable's pods, then the whole release is analysed; a failed analysis
    /// rolls stable back.
    pub(super) async fn rolling_change(
        &mut self,
        image: &ImageRef,
        candidate: &ModelVersion,
        revision: u64,
    ) -> Result<(), Stop> {
        let release = self.spec.release.clone();
        let pinned = image.pinned().unwrap_or_default();
        let cluster = self.backends.cluster.clone();
        let clock = self.backends.clock.clone();
        self.emit(
            "rolling",
            StageStatus::Start,
            format!("rolling stable {release} to {pinned}"),
        );
        let params = RollingParams::default();
        self.phase = Phase::Serving;
        rolling::run(
            cluster.as_ref(),
            clock.as_ref(),
            &release,
            &pinned,
            &params,
            self.spec.progress_deadline,
        )
        .await
        .map_err(|err| match err {
            slipway_k8s_rollout::Error::NotReady { .. } => rejected(format!(
                "rolling update unhealthy, previous image restored: {}",
                chain(&err)
            )),
            other => failed(chain(&other)),
        })?;
        self.emit(
            "rolling",
            StageStatus::Pass,
            format!("stable {release} runs {pinned}"),
        );
        if let Err(stop) = self.analysis_on(0, "stable").await {
            if let Some(before) = self.stable_before.clone() {
                let restored = match cluster.apply_deployment(&before).await {
                    Ok(()) => {
                        rollout::wait_ready(
                            cluster.as_ref(),
                            clock.as_ref(),
                            &release.namespace,
                            &release.name,
                            self.spec.progress_deadline,
                        )
                        .await
                    }
                    Err(err) => Err(err),
                };
                match restored {
                    Ok(()) => self.emit(
                        "abort",
                        StageStatus::Pass,
                        format!("stable {release} restored to {}", before.image),
                    ),
                    Err(err) => self.emit(
                        "abort",
                        StageStatus::Fail,
                        format!("could not restore stable: {}", chain(&err)),
                    ),
                }
            }
            return Err(stop);
        }
        self.promoted(image, candidate, revision).await
    }

    pub(super) async fn next_revision(&mut self) -> Result<u64, Stop> {
        let history = self
            .backends
            .cluster
            .release_history(&self.spec.release)
            .await
            .map_err(|err| failed(chain(&err)))?;
        Ok(history.last().map_or(1, |record| record.revision + 1))
    }

    pub(super) async fn canary(&mut self, image: &ImageRef) -> Result<(), Stop> {
        let release = self.spec.release.clone();
        let pinned = image.pinned().unwrap_or_default();
        let cluster = self.backends.cluster.clone();
        let clock = self.backends.clock.clone();
        for (idx, step) in self.spec.steps.iter().copied().enumerate() {
            let traffic = &self.spec.traffic;
            let share = match traffic {
                TrafficRouting::ReplicaRatio => "of pods",
                TrafficRouting::NginxIngress { .. } | TrafficRouting::GatewayApi { .. } => {
                    "of requests"
                }
            };
            self.emit(
                "canary",
                StageStatus::Start,
                format!(
                    "step {}/{}: {step}% {share} on {}",
                    idx + 1,
                    self.spec.steps.len(),
                    rollout::canary_name(&release)
                ),
            );
            // With exact weights the canary pods stay out of the user's Service; the replicas
            // still follow the pod ratio (at least 1) so capacity follows the traffic.
            let replicas = rollout::set_canary(
                cluster.as_ref(),
                clock.as_ref(),
                &release,
                &pinned,
                step,
                self.spec.progress_deadline,
                traffic
                    .isolates_canary()
                    .then_some(self.spec.service.as_str()),
            )
            .await
            .map_err(|err| match err {
                slipway_k8s_rollout::Error::NotReady { .. } => {
                    rejected(format!("canary unhealthy: {}", chain(&err)))
                }
                other => failed(chain(&other)),
            })?;
            self.start_baseline(replicas).await?;
            // The weight is set only once the canary is ready, so it never points at pods that
            // cannot serve.
            rollout::set_traffic_weight(
                cluster.as_ref(),
                &release,
                &self.spec.service,
                &self.spec.traffic,
                step,
                self.wants_baseline(),
            )
            .await
            .map_err(|err| failed(chain(&err)))?;
            let stable_replicas = self.stable_before.as_ref().map_or(0, |spec| spec.replicas);
            let replica_ratio = self.spec.traffic == TrafficRouting::ReplicaRatio;
            self.report.steps.push(StepShare {
                step: idx + 1,
                requested_percent: step,
                actual_percent: if replica_ratio {
                    gates::two_decimals(rollout::canary_share(stable_replicas, replicas))
                } else {
                    f64::from(step)
                },
                canary_replicas: replicas,
                stable_replicas,
                // Preflight refused such a step unless `rollout.coarse_steps = "round-up"`.
                rounded_up: replica_ratio
                    && rollout::replica_share(stable_replicas, step).too_coarse(),
            });
            let message = match &self.spec.traffic {
                TrafficRouting::ReplicaRatio => {
                    let share = rollout::canary_share(stable_replicas, replicas);
                    format!(
                        "{replicas} canary pod(s) ready next to {stable_replicas} stable: {share:.0}% of pods"
                    )
                }
                TrafficRouting::NginxIngress { ingress } if self.wants_baseline() => format!(
                    "{replicas} canary pod(s) and {replicas} baseline pod(s) ready next to {stable_replicas} stable: Ingress {} sends exactly {}% of the requests of {ingress} to Service {}, {step}% to each",
                    rollout::canary_ingress_name(ingress),
                    u16::from(step) * 2,
                    rollout::canary_service_name(&self.spec.service)
                ),
                TrafficRouting::NginxIngress { ingress } => format!(
                    "{replicas} canary pod(s) ready next to {stable_replicas} stable: Ingress {} sends exactly {step}% of the requests of {ingress} to Service {}",
                    rollout::canary_ingress_name(ingress),
                    rollout::canary_service_name(&self.spec.service)
                ),
                TrafficRouting::GatewayApi { route } if self.wants_baseline() => format!(
                    "{replicas} canary pod(s) and {replicas} baseline pod(s) ready next to {stable_replicas} stable: HTTPRoute {route} sends exactly {step}% of its requests to Service {} and {step}% to Service {}",
                    rollout::canary_service_name(&self.spec.service),
                    rollout::baseline_service_name(&self.spec.service)
                ),
                TrafficRouting::GatewayApi { route } => format!(
                    "{replicas} canary pod(s) ready next to {stable_replicas} stable: HTTPRoute {route} sends exactly {step}% of its requests to Service {}",
                    rollout::canary_service_name(&self.spec.service)
                ),
            };
            self.emit("canary", StageStatus::Pass, message.clone());
            self.k8s_event("CanaryStep", &message).await;
            if !self.spec.pause.is_zero() {
                self.emit(
                    "canary",
                    StageStatus::Info,
                    format!("pausing {:?} before analysis", self.spec.pause),
                );
                clock.sleep(self.spec.pause).await;
            }
            self.analysis(idx).await?;
        }
        Ok(())
    }

    pub(super) async fn analysis(&mut self, step_idx: usize) -> Result<(), Stop> {
        self.analysis_on(step_idx, "canary").await
    }

    /// Analyses the pods of `track` (the `{{track}}` of the queries).
    pub(super) async fn analysis_on(&mut self, step_idx: usize, track: &str) -> Result<(), Stop> {
        let release = &self.spec.release;
        let vars = TemplateVars::new(release.name.clone(), release.namespace.clone(), track);
        let clock = self.backends.clock.clone();
        let metrics = self.backends.metrics.clone();
        let plan = &self.spec.analysis;
        let observer = &mut self.observer;
        let stages = &mut self.report.stages;
        let limits: std::collections::BTreeMap<&str, String> = plan
            .metrics
            .iter()
            .map(|check| {
                let bounds = [
                    check.min.map(|min| format!("min {min}")),
                    check.max.map(|max| format!("max {max}")),
                ];
                (
                    check.name.as_str(),
                    bounds.into_iter().flatten().collect::<Vec<_>>().join(", "),
                )
            })
            .collect();
        let mut on_measurement = |measurement: &slipway_analysis::Measurement| {
            let limit = limits
                .get(measurement.metric.as_str())
                .cloned()
                .unwrap_or_default();
            let message = match &measurement.outcome {
                slipway_analysis::Outcome::Value(value) => {
                    format!("{} = {value:.4} ({limit})", measurement.metric)
                }
                slipway_analysis::Outcome::NoData => {
                    format!("{}: no data ({limit})", measurement.metric)
                }
                slipway_analysis::Outcome::Error(err) => {
                    format!(
                        "{}: measurement error: {}",
                        measurement.metric,
                        err.split("\n\nhint:").next().unwrap_or(err)
                    )
                }
            };
            let event = StageEvent {
                stage: "analysis",
                status: StageStatus::Info,
                at: measurement.at,
                message,
            };
            observer.event(&event);
            stages.push(event);
        };
        // `run` also runs the plan's smoke tests and endpoint checks against the judged pods.
        let run = slipway_analysis::run(
            plan,
            metrics.as_ref(),
            clock.as_ref(),
            &vars,
            &mut on_measurement,
        )
        .await
        .map_err(|err| failed(chain(&err)))?;
        let decision = run.decision();
        let reasons = run.verdict.reasons.join("; ");
        self.report.analysis.push(run);
        let verdict = match decision {
            Decision::Pass => "pass",
            Decision::Fail => "fail",
            Decision::Inconclusive => "inconclusive",
        };
        self.audit(
            "analysis",
            verdict,
            &format!("step {}: {reasons}", step_idx + 1),
        )
        .await?;
        match decision {
            Decision::Pass => {
                self.emit(
                    "analysis",
                    StageStatus::Pass,
                    format!("step {} healthy: {reasons}", step_idx + 1),
                );
                Ok(())
            }
            Decision::Fail => {
                self.emit(
                    "analysis",
                    StageStatus::Fail,
                    format!("step {} unhealthy: {reasons}", step_idx + 1),
                );
                Err(rejected(format!("canary analysis failed: {reasons}")))
            }
            Decision::Inconclusive => {
                self.emit(
                    "analysis",
                    StageStatus::Fail,
                    format!("step {} inconclusive: {reasons}", step_idx + 1),
                );
                Err(rejected(format!(
                    "canary analysis inconclusive, a person must decide: {reasons}"
                )))
            }
        }
    }

    /// The approval gate for `revision`: approvals read from the verified trail
    /// (`crate::approvals::recorded_approvals`), judged by `slipway_gates::approval`.
    pub(super) async fn approval(
        &mut self,
        image: &ImageRef,
        candidate: &ModelVersion,
        revision: u64,
    ) -> Result<(), Stop> {
        let digest = image
            .digest()
            .cloned()
            .ok_or_else(|| failed("image lost its digest"))?;
        if let Some(given) = self.spec.approval.clone() {
            let record = ApprovalRecord {
                release: self.spec.release.clone(),
                approver: given.approver.clone(),
                at: self.backends.clock.now(),
                reason: given.reason.clone(),
                digest: digest.clone(),
                model: candidate.clone(),
                revision: Some(revision),
                expires: None,
                source: slipway_audit_log::ApprovalSource::Named,
            };
            self.backends
                .audit
                .append(record.at, Event::Approval(record))
                .await
                .map_err(|err| failed(chain(&err)))?;
            self.emit(
                "approval",
                StageStatus::Info,
                format!("approval by {} recorded: {}", given.approver, given.reason),
            );
        }
        let approvals = crate::approvals::recorded_approvals(&self.backends, &self.spec.release)
            .await
            .map_err(failed)?;
        let evidence = ApprovalEvidence {
            revision: Some(revision),
            now: self.backends.clock.now(),
            actor: self
                .spec_actor_override
                .clone()
                .unwrap_or_else(|| self.spec.actor.clone()),
            digest,
            model: candidate.clone(),
            approvals,
        };
        self.gate(
            "approval",
            slipway_gates::approval::evaluate(&self.spec.policy.approvals, &evidence),
        )
        .await
    }

    pub(super) async fn promote(
        &mut self,
        image: &ImageRef,
        candidate: &ModelVersion,
        revision: u64,
    ) -> Result<(), Stop> {
        let release = self.spec.release.clone();
        let pinned = image.pinned().unwrap_or_default();
        self.emit(
            "promote",
            StageStatus::Start,
            format!("setting stable {release} to {pinned}"),
        );
        let cluster = self.backends.cluster.clone();
        // From here a stop puts stable back as it was (`unwind`).
        self.phase = Phase::Serving;
        if let Err(err) = rollout::promote_routed(
            cluster.as_ref(),
            self.backends.clock.as_ref(),
            &release,
            (&self.spec.service, &self.spec.traffic),
            &pinned,
            self.spec.progress_deadline,
        )
        .await
        {
            return Err(failed(format!("promotion failed: {}", chain(&err))));
        }
        self.remove_baseline().await?;
        self.emit(
            "promote",
            StageStatus::Pass,
            format!("stable {release} runs {pinned}; canary removed"),
        );
        self.k8s_event(
            "Promoted",
            &format!("revision {revision}: {candidate} at {pinned}"),
        )
        .await;
        self.promoted(image, candidate, revision).await
    }

    /// After the cluster serves the candidate, whatever the strategy: move the serving alias,
    /// record the revision as promoted (with the alias still pending when moving it failed:
    /// the next command that holds the lock finishes it), tag the model version and the image,
    /// reload the model server.
    pub(super) async fn promoted(
        &mut self,
        image: &ImageRef,
        candidate: &ModelVersion,
        revision: u64,
    ) -> Result<(), Stop> {
        let release = self.spec.release.clone();
        let models = self.backends.models.clone();
        let alias = self.spec.serving_alias.clone();
        let serving_alias = ModelRef {
            name: candidate.name.clone(),
            selector: ModelSelector::Alias(alias.clone()),
        };
        let before = models
            .resolve(&serving_alias)
            .await
            .ok()
            .map(|info| info.version);
        // Noted before the move: an interrupt can drop this call after MLflow applied it, and
        // moving the alias back where it was is harmless when the move never landed.
        self.alias_before = before;
        let alias_failed = models.set_alias(candidate, &alias).await.err();
        if alias_failed.is_some() {
            self.alias_before = None;
        }
        match &alias_failed {
            None => self.emit(
                "promote",
                StageStatus::Pass,
                format!("alias `{alias}` now points at {candidate}"),
            ),
            Some(err) => self.emit(
                "promote",
                StageStatus::Fail,
                format!(
                    "moving alias `{alias}` to {candidate} failed: {}; recorded as pending",
                    chain(err)
                ),
            ),
        }
        self.alias_pending = alias_failed.is_some().then(|| alias.clone());
        let recorded = self
            .record(
                image,
                candidate,
                revision,
                Outcome::Promoted,
                "promoted after analysis and approval",
            )
            .await;
        // Once the cluster holds the promoted record (phase `Recorded`), a trail that failed to
        // take its entry must not keep the model server on the old model: finish the promotion,
        // then report the trail's failure.
        let trail_failed = match recorded {
            Ok(()) => None,
            Err(stop) if self.phase == Phase::Recorded => Some(stop),
            Err(stop) => return Err(stop),
        };
        if let Some(err) = alias_failed {
            return Err(failed(format!(
                "promoted in the cluster and recorded as revision {revision}, but moving alias `{alias}` failed: {} (hint: the next `slipway-deploy run`, `promote` or `abort` for {release} moves it)",
                chain(&err)
            )));
        }
        let tag_value = format!("{release} revision {revision}");
        if let Err(err) = models
            .set_version_tag(candidate, "slipway.release", &tag_value)
            .await
        {
            self.emit(
                "promote",
                StageStatus::Info,
                format!("could not tag the model version: {}", chain(&err)),
            );
        }
        match self
            .backends
            .registry
            .tag(image, &format!("release-{revision}"))
            .await
        {
            Ok(()) => self.emit(
                "promote",
                StageStatus::Pass,
                format!("image tagged release-{revision}"),
            ),
            Err(err) => self.emit(
                "promote",
                StageStatus::Info,
                format!("could not tag the image: {}", chain(&err)),
            ),
        }
        self.reload(candidate).await?;
        match trail_failed {
            Some(stop) => Err(failed(format!(
                "promoted and recorded in the cluster as revision {revision}, but the audit trail did not take the record: {}",
                stop.reason
            ))),
            None => Ok(()),
        }
    }

    /// Tells the model server to load the promoted version, with the admin token from its Secret.
    /// A failure is recorded as a failed release: the cluster runs the new image, but the server
    /// may still serve the old model, and somebody has to look.
    pub(super) async fn reload(&mut self, candidate: &ModelVersion) -> Result<(), Stop> {
        let Some(reload) = self.spec.reload.clone() else {
            self.emit(
                "reload",
                StageStatus::Skip,
                "no reload endpoint configured (`[server] reload_url`)",
            );
            return Ok(());
        };
        let namespace = self.spec.release.namespace.clone();
        let token = self
            .backends
            .cluster
            .read_secret(&namespace, &reload.secret_name, &reload.secret_key)
            .await
            .map_err(|err| {
                failed(format!(
                    "promoted, but the admin token could not be read: {}",
                    chain(&err)
                ))
            })?;
        match crate::reload::reload(&reload, &token, candidate).await {
            Ok(()) => {
                self.emit(
                    "reload",
                    StageStatus::Pass,
                    format!("model server reloaded {candidate}"),
                );
                Ok(())
            }
            Err(err) => {
                let _ = self.audit("reload", "fail", &err).await;
                Err(failed(format!(
                    "promoted, but reloading the model server failed: {err}"
                )))
            }
        }
    }

    /// After a stop: undoes what the run changed, by how far it got (`Phase`), and records how
    /// the revision ended. A stop while stable already served the candidate (a failed or
    /// interrupted promotion, a blue-green switch) puts stable back first; then every Slipway
    /// object of the release goes. After a lost lock, objects that no longer run this run's
    /// image belong to the new holder and are left alone.
    pub(super) async fn unwind(&mut self, stop: &Stop) {
        // Clean up on the caller's clock: the lock's never wakes once the lock is lost, and a
        // cleanup must not wait on renewals.
        self.backends.clock = self.raw_clock.clone();
        if let Some(why) = &stop.interruption {
            self.report.interruption = Some(why.clone());
            self.emit(
                "cancel",
                StageStatus::Info,
                format!("{why}: removing what this run started"),
            );
        }
        let Some((image, candidate, revision)) = self.changing.clone() else {
            return;
        };
        // An interrupt drops the stage where it awaited, possibly after a write landed whose
        // answer never came back: the history says how far the run really got.
        self.phase = self.phase_from_history(revision, self.phase).await;
        let lock_lost = matches!(stop.interruption, Some(Interruption::LockLost { .. }));
        match self.phase {
            Phase::Before | Phase::Recorded => return,
            // Without the lock, stable may already be the new holder's: never put it back.
            Phase::Serving if lock_lost => {
                self.emit(
                    "abort",
                    StageStatus::Info,
                    "the lock is lost after stable began serving the candidate: stable and the history are left to the lock's new holder (its next command settles revision by what serves)",
                );
                return;
            }
            Phase::Serving => {
                if !self.restore_stable(&image).await {
                    // Removing the old colour or recording "stable untouched" now would make
                    // the candidate the only thing serving under a record that says otherwise.
                    // The in-progress record stays; the next command settles it by what serves.
                    self.emit(
                        "abort",
                        StageStatus::Fail,
                        format!(
                            "revision {revision} stays in progress: stable could not be put back (hint: `slipway-deploy status` shows it; the next `run` or `abort` settles it)"
                        ),
                    );
                    return;
                }
                self.restore_alias().await;
            }
            Phase::Changing => {}
        }
        let pinned = image.pinned().unwrap_or_default();
        if lock_lost && !self.still_ours(&pinned).await {
            self.emit(
                "abort",
                StageStatus::Info,
                "no canary or standby colour runs this run's image any more: what exists belongs to the lock's new holder and is left alone",
            );
            return;
        }
        let removed = match self.remove_managed().await {
            Ok(removed) => removed,
            Err(stop) => {
                self.emit(
                    "abort",
                    StageStatus::Fail,
                    format!(
                        "could not remove what the run started: {} (hint: `slipway-deploy abort` removes it)",
                        stop.reason
                    ),
                );
                return;
            }
        };
        self.emit(
            "abort",
            StageStatus::Pass,
            if removed.is_empty() {
                format!(
                    "nothing left to remove; stable {} untouched",
                    self.spec.release
                )
            } else {
                format!(
                    "removed {}; stable {} untouched",
                    join(&removed),
                    self.spec.release
                )
            },
        );
        let outcome = match stop.outcome {
            RunOutcome::Failed => Outcome::Failed,
            RunOutcome::Cancelled => Outcome::Cancelled,
            _ => Outcome::Aborted,
        };
        let reason = if removed.is_empty() {
            format!("{}; stable untouched", stop.reason)
        } else {
            format!(
                "{}; removed {}; stable untouched",
                stop.reason,
                join(&removed)
            )
        };
        if let Err(err) = self
            .record(&image, &candidate, revision, outcome, &reason)
            .await
        {
            self.emit(
                "record",
                StageStatus::Fail,
                format!(
                    "could not record the end of revision {revision}: {}",
                    err.reason
                ),
            );
        }
        let event = if outcome == Outcome::Cancelled {
            "Cancelled"
        } else {
            "Aborted"
        };
        self.k8s_event(event, &reason).await;
    }

    /// How far the run got by the history's last record of `revision`: an interrupt may have
    /// dropped a write after it landed (`promoted` or `paused` recorded, answer lost).
    async fn phase_from_history(&mut self, revision: u64, tracked: Phase) -> Phase {
        let history = self
            .backends
            .cluster
            .release_history(&self.spec.release)
            .await;
        match history.ok().as_ref().and_then(|records| records.last()) {
            Some(last) if last.revision == revision => match last.outcome {
                Outcome::Promoted => Phase::Recorded,
                Outcome::Paused => Phase::Before,
                Outcome::InProgress => tracked,
                // Already ended (by this run or another command): nothing to redo.
                _ => Phase::Recorded,
            },
            // The in-progress record never landed, so nothing was changed for it.
            Some(last) if last.revision < revision => Phase::Before,
            None => Phase::Before,
            _ => tracked,
        }
    }

    /// Whether the canary, or a blue-green colour the Service does not select, still runs this
    /// run's image: only then is what exists ours to remove after the lock was lost.
    async fn still_ours(&mut self, pinned: &str) -> bool {
        let cluster = self.backends.cluster.clone();
        let release = self.spec.release.clone();
        let config = BlueGreenConfig::new(self.spec.service.clone());
        let active = bluegreen::active(cluster.as_ref(), &release, &config)
            .await
            .ok()
            .flatten();
        let mut names = vec![rollout::canary_name(&release)];
        for colour in [bluegreen::Colour::Blue, bluegreen::Colour::Green] {
            if Some(colour) != active {
                names.push(bluegreen::colour_name(&release, colour));
            }
        }
        for name in names {
            if let Ok(Some(state)) = cluster.deployment(&release.namespace, &name).await
                && state.spec.image == pinned
                && state.spec.replicas > 0
            {
                return true;
            }
        }
        false
    }

    /// Puts stable back the way it was before this run: the Service back on the old colour
    /// after a blue-green switch to the candidate's (`image`), else stable's Deployment as
    /// preflight read it.
    async fn restore_stable(&mut self, image: &ImageRef) -> bool {
        let release = self.spec.release.clone();
        let cluster = self.backends.cluster.clone();
        let pinned = image.pinned().unwrap_or_default();
        let switched = self.strategy == Strategy::BlueGreen
            && self.serving_image().await.ok().as_ref() == Some(&pinned);
        let result = match self.strategy {
            // A switch that failed left the Service on the old colour: switching "back" would
            // switch it to the candidate's.
            Strategy::BlueGreen if !switched => Ok(format!(
                "Service {} never switched to {pinned}; nothing to switch back",
                self.spec.service
            )),
            Strategy::BlueGreen => {
                let config = BlueGreenConfig::new(self.spec.service.clone());
                bluegreen::switch_back(
                    cluster.as_ref(),
                    self.backends.clock.as_ref(),
                    &release,
                    &config,
                )
                .await
                .map(|colour| format!("Service {} selects {colour} again", self.spec.service))
            }
            Strategy::Canary | Strategy::Rolling => match self.stable_before.clone() {
                Some(before) => cluster
                    .apply_deployment(&before)
                    .await
                    .map(|()| format!("stable {release} restored to {}", before.image)),
                None => Ok("stable was never read; nothing to restore".to_owned()),
            },
        };
        match result {
            Ok(message) => {
                self.emit("abort", StageStatus::Pass, message);
                true
            }
            Err(err) => {
                self.emit(
                    "abort",
                    StageStatus::Fail,
                    format!("could not restore stable: {}", chain(&err)),
                );
                false
            }
        }
    }
}

impl Ctx<'_> {
    /// Moves the serving alias back where it pointed before this run moved it: a stop after the
    /// move but before the promoted record puts stable back, and the alias with it.
    async fn restore_alias(&mut self) {
        let Some(before) = self.alias_before.take() else {
            return;
        };
        let alias = self.spec.serving_alias.clone();
        match self.backends.models.set_alias(&before, &alias).await {
            Ok(()) => self.emit(
                "abort",
                StageStatus::Pass,
                format!("alias `{alias}` points at {before} again"),
            ),
            Err(err) => self.emit(
                "abort",
                StageStatus::Fail,
                format!(
                    "could not move alias `{alias}` back to {before}: {} (hint: `slipway-rollback` moves it with stable)",
                    chain(&err)
                ),
            ),
        }
    }
}

fn join(items: &[String]) -> String {
    items.join(", ")
}
