//! The stages before anything changes: preflight (stable, Service, each canary step's share of
//! the pods, Secrets, deploy window, lock),
//! the model gate, digest resolution, the scan gate, signing with the model link, and
//! verification (signatures with the trusted keys, provenance with the build keys).

use super::*;

impl Ctx<'_> {
    pub(super) async fn preflight(&mut self) -> Result<(), Stop> {
        let release = &self.spec.release;
        self.emit(
            "preflight",
            StageStatus::Start,
            format!("checking release {release} before touching anything"),
        );
        let cluster = self.backends.cluster.clone();
        let stable = rollout::stable(cluster.as_ref(), release)
            .await
            .map_err(|err| failed(chain(&err)))?;
        self.emit(
            "preflight",
            StageStatus::Pass,
            format!(
                "stable Deployment {release} runs {} with {}/{} pods ready",
                stable.spec.image, stable.ready_replicas, stable.spec.replicas
            ),
        );
        let service = cluster
            .service_selector(&release.namespace, &self.spec.service)
            .await
            .map_err(|err| failed(chain(&err)))?;
        if service.is_none() {
            return Err(failed(format!(
                "Service `{}/{}` not found (hint: set `release.service` to the Service in front of the Deployment)",
                release.namespace, self.spec.service
            )));
        }
        self.emit(
            "preflight",
            StageStatus::Pass,
            format!("Service {}/{} found", release.namespace, self.spec.service),
        );
        if cluster
            .deployment(&release.namespace, &rollout::canary_name(release))
            .await
            .map_err(|err| failed(chain(&err)))?
            .is_some()
        {
            self.emit(
                "preflight",
                StageStatus::Info,
                "a canary from an earlier run exists; this run replaces it",
            );
        }
        let stable_replicas = stable.spec.replicas;
        self.stable_before = Some(stable.spec);
        self.check_steps(stable_replicas).await?;
        // Secrets the release will need must exist before anything changes.
        if let Some(reload) = self.spec.reload.clone() {
            self.backends
                .cluster
                .read_secret(&release.namespace, &reload.secret_name, &reload.secret_key)
                .await
                .map_err(|err| {
                    failed(format!(
                        "the model server's admin token is missing: {}",
                        chain(&err)
                    ))
                })?;
            self.emit(
                "preflight",
                StageStatus::Pass,
                format!(
                    "Secret {}/{} has `{}`",
                    release.namespace, reload.secret_name, reload.secret_key
                ),
            );
        }
        let now = self.backends.clock.now();
        let windows = slipway_gates::window::evaluate(
            &self.spec.policy.windows,
            now,
            self.spec.window_override.as_ref(),
        );
        self.gate("deploy-window", windows).await?;
        if self.mode == Mode::Run {
            self.take_lock().await?;
            self.converge().await?;
        }
        Ok(())
    }

    /// Each canary step's share next to stable's `stable_replicas`, before anything changes.
    /// With replica-ratio routing, a step that a single canary pod already exceeds
    /// ([`rollout::ReplicaShare::too_coarse`]) stops the release, or with
    /// `rollout.coarse_steps = "round-up"` is told and recorded. A plan reports every step as
    /// it would run; a run reports each step as it runs (`Ctx::canary`).
    async fn check_steps(&mut self, stable_replicas: u32) -> Result<(), Stop> {
        if self.strategy != Strategy::Canary {
            return Ok(());
        }
        let replica_ratio = self.spec.traffic == TrafficRouting::ReplicaRatio;
        let total = self.spec.steps.len();
        // Exact weights give the baseline the canary's weight through the same canary Ingress
        // (twice the step's weight), which a step above 50% cannot have.
        let too_wide: Vec<String> = self
            .spec
            .steps
            .iter()
            .filter(|step| {
                !replica_ratio && self.wants_baseline() && !rollout::baseline_weight_fits(**step)
            })
            .map(|step| format!("{step}%"))
            .collect();
        if !too_wide.is_empty() {
            let message = format!(
                "canary steps {} leave no room for the baseline's equal weight (compare.baseline = \"deployment\" with exact weights sends the canary and the baseline each the step's share, so at most 50%) (hint: end `rollout.steps` at 50 or lower; promotion then moves the rest)",
                too_wide.join(", ")
            );
            self.emit("preflight", StageStatus::Fail, message.clone());
            return Err(failed(message));
        }
        let shares: Vec<rollout::ReplicaShare> = self
            .spec
            .steps
            .iter()
            .map(|step| rollout::replica_share(stable_replicas, *step))
            .collect();
        let coarse: Vec<(usize, rollout::ReplicaShare)> = shares
            .iter()
            .copied()
            .enumerate()
            .filter(|(_, share)| replica_ratio && share.too_coarse())
            .collect();
        if let Some(smallest) = coarse
            .iter()
            .map(|(_, share)| share.requested_percent)
            .min()
            && self.spec.coarse_steps == CoarseSteps::Refuse
        {
            let listed: Vec<String> = coarse
                .iter()
                .map(|(idx, share)| describe_share(*idx, total, share))
                .collect();
            let message = format!(
                "canary steps would expose more of the pods than asked (rollout.coarse_steps = \"refuse\"): {} (hint: give the Deployment at least {} replicas, route exact weights with `rollout.traffic = \"gateway-api\"` (or `\"nginx\"`), or accept the larger share with `rollout.coarse_steps = \"round-up\"`)",
                listed.join("; "),
                rollout::min_stable_replicas(smallest)
            );
            self.emit("preflight", StageStatus::Fail, message.clone());
            return Err(failed(message));
        }
        for (idx, share) in &coarse {
            let detail = format!(
                "{}: rounded up to one canary pod (rollout.coarse_steps = \"round-up\")",
                describe_share(*idx, total, share)
            );
            self.emit("preflight", StageStatus::Info, detail.clone());
            self.audit("preflight", "rounded-up", &detail).await?;
        }
        if self.mode == Mode::Plan {
            self.report.steps = shares
                .iter()
                .enumerate()
                .map(|(idx, share)| StepShare {
                    step: idx + 1,
                    requested_percent: share.requested_percent,
                    actual_percent: if replica_ratio {
                        two_decimals(share.achievable_percent)
                    } else {
                        f64::from(share.requested_percent)
                    },
                    canary_replicas: share.canary_replicas,
                    stable_replicas,
                    rounded_up: replica_ratio && share.too_coarse(),
                })
                .collect();
        }
        Ok(())
    }

    /// Takes the release's lock (a Lease on a real cluster) for this command and keeps it:
    /// from here on every wait renews it (`crate::lock`), and losing it interrupts the run.
    /// Then finishes what an earlier, killed or failed, command left behind (`converge`).
    pub(super) async fn take_lock(&mut self) -> Result<(), Stop> {
        let release = self.spec.release.clone();
        let holder = format!("{}@{}", self.spec.actor, self.backends.clock.now());
        let ttl = crate::lock::lock_ttl(self.spec.progress_deadline);
        let lock = crate::lock::ReleaseLock::acquire(
            self.backends.cluster.clone(),
            self.raw_clock.clone(),
            self.backends.interrupt.clone(),
            &release,
            &holder,
            ttl,
        )
        .await
        .map_err(|err| failed(chain(&err)))?;
        self.backends.clock = std::sync::Arc::new(crate::interrupt::InterruptibleClock::new(
            lock.clock(),
            self.backends.interrupt.clone(),
        ));
        self.lock = Some(lock);
        self.emit(
            "preflight",
            StageStatus::Pass,
            format!("lock taken for {release} by {holder}"),
        );
        self.preflight_passed = true;
        // Stable as it is now that nobody else can change it: what an unwind restores.
        if let Ok(stable) = rollout::stable(self.backends.cluster.as_ref(), &release).await {
            self.stable_before = Some(stable.spec);
        }
        self.finish_pending_alias().await
    }

    pub(super) async fn model_gate(&mut self) -> Result<ModelVersion, Stop> {
        let models = self.backends.models.clone();
        let (info, evidence) =
            model_evidence(models.as_ref(), &self.spec.model, &self.spec.serving_alias)
                .await
                .map_err(|err| failed(chain(&err)))?;
        let candidate = info.version.clone();
        self.candidate_run = info.run_id.clone();
        self.report.model = Some(candidate.clone());
        self.emit(
            "model-gate",
            StageStatus::Start,
            format!(
                "{} resolves to {candidate} (run {})",
                self.spec.model,
                info.run_id.as_deref().unwrap_or("unknown")
            ),
        );
        self.gate(
            "model-gate",
            slipway_gates::model::evaluate(&self.spec.policy.model, &evidence),
        )
        .await?;
        Ok(candidate)
    }

    pub(super) async fn resolve_digest(&mut self) -> Result<ImageRef, Stop> {
        let resolved = self
            .backends
            .registry
            .resolve(&self.spec.image)
            .await
            .map_err(|err| failed(chain(&err)))?;
        if let Some(index) = &resolved.index_digest {
            self.emit(
                "resolve-digest",
                StageStatus::Info,
                format!("{} is a multi-platform index {index}", self.spec.image),
            );
        }
        if let Some(asked) = self.spec.image.digest()
            && resolved.index_digest.as_ref() != Some(asked)
            && &resolved.digest != asked
        {
            return Err(failed(format!(
                "registry returned {} for {}",
                resolved.digest, self.spec.image
            )));
        }
        let pinned = self.spec.image.with_digest(resolved.digest.clone());
        self.report.digest = Some(resolved.digest);
        self.emit(
            "resolve-digest",
            StageStatus::Pass,
            format!(
                "{} pinned to {}",
                self.spec.image,
                pinned.pinned().unwrap_or_default()
            ),
        );
        Ok(pinned)
    }

    pub(super) async fn scan_gate(&mut self, image: &ImageRef) -> Result<(), Stop> {
        let scan = self
            .backends
            .scanner
            .scan(image)
            .await
            .map_err(|err| failed(chain(&err)))?;
        let today = self
            .backends
            .clock
            .now()
            .to_zoned(jiff::tz::TimeZone::UTC)
            .date();
        let verdict = slipway_gates::vuln::evaluate(
            &self.spec.policy.vulnerabilities,
            &scan,
            &self.spec.vuln_ignores,
            today,
        );
        let findings = match scan.findings.len() {
            1 => "1 finding".to_owned(),
            n => format!("{n} findings"),
        };
        let ignored = verdict.ignored().count();
        self.emit(
            "scan-gate",
            StageStatus::Info,
            format!("{findings}, {ignored} ignored: {}", verdict.counts_line()),
        );
        self.gate("scan-gate", verdict.gate_report()).await
    }

    pub(super) async fn sign_and_verify(
        &mut self,
        image: &ImageRef,
        candidate: &ModelVersion,
    ) -> Result<(), Stop> {
        match (self.backends.signer.clone(), self.spec.sign, self.mode) {
            (Some(signer), true, Mode::Run) => {
                let key_id = slipway_attest::sign_image(
                    self.backends.registry.as_ref(),
                    signer.as_ref(),
                    image,
                )
                .await
                .map_err(|err| failed(chain(&err)))?;
                self.emit(
                    "sign",
                    StageStatus::Pass,
                    format!(
                        "signed {} with key {key_id} (appended to existing signatures)",
                        image.pinned().unwrap_or_default()
                    ),
                );
                self.audit("sign", "pass", &format!("signed with {key_id}"))
                    .await?;
                self.attest(signer.as_ref(), image, candidate).await?;
            }
            (Some(signer), true, Mode::Plan | Mode::Resume) => {
                self.emit(
                    "sign",
                    StageStatus::Info,
                    format!("would sign with key {}", signer.key_id()),
                );
                self.emit(
                    "verify",
                    StageStatus::Skip,
                    "would verify the signature made at `sign` against the trusted keys",
                );
                return Ok(());
            }
            (None, true, _) => {
                return Err(failed(
                    "signing is on (`signing.sign`) but no signing key is configured",
                ));
            }
            (_, false, _) => self.emit(
                "sign",
                StageStatus::Skip,
                "signing is off (`signing.sign = false`)",
            ),
        }
        let trusted = self.backends.trusted_keys.clone();
        let keys: Vec<&dyn Verifier> = trusted.iter().map(AsRef::as_ref).collect();
        let verification = slipway_attest::bundle::verify_image_any_format(
            self.backends.registry.as_ref(),
            image,
            slipway_attest::bundle::Trust::Keys(&keys),
        )
        .await
        .map_err(|err| failed(chain(&err)))?;
        let (policy, signatures) =
            signature_gate_input(&self.spec.policy.signatures, &keys, &verification);
        let (provenance, rejected_provenance) = self.verified_provenance(image).await?;
        let evidence = SignatureEvidence {
            signatures,
            provenance,
            rejected_provenance,
        };
        let mut report = slipway_gates::signature::evaluate(&policy, &evidence);
        report.extend(self.model_link_check(image, &keys, candidate).await?);
        self.gate("verify", report).await
    }

    /// Attaches the signed model link (which model this image serves), appended under the
    /// image's `.att` tag. Never provenance: that is the build's to attach
    /// (`slipway-deploy attest` in the build job), or it would describe the deploy job.
    pub(super) async fn attest(
        &mut self,
        signer: &dyn slipway_attest::Signer,
        image: &ImageRef,
        candidate: &ModelVersion,
    ) -> Result<(), Stop> {
        let registry = self.backends.registry.clone();
        let link = ModelLink {
            model_name: candidate.name.clone(),
            model_version: candidate.version.to_string(),
            run_id: self.candidate_run.clone().unwrap_or_default(),
        };
        slipway_attest::model_link::attach_model_link(registry.as_ref(), signer, image, &link)
            .await
            .map_err(|err| failed(chain(&err)))?;
        self.emit(
            "sign",
            StageStatus::Pass,
            format!(
                "attached the model link: {} (run {})",
                candidate,
                if link.run_id.is_empty() {
                    "unknown"
                } else {
                    &link.run_id
                }
            ),
        );
        Ok(())
    }

    /// Reads and verifies the image's provenance with the build keys
    /// ([`Backends::provenance_keys`]); the gate judges builder, source and ref.
    pub(super) async fn verified_provenance(
        &mut self,
        image: &ImageRef,
    ) -> Result<ProvenanceEvidence, Stop> {
        let evidence = provenance_evidence(&self.backends, image)
            .await
            .map_err(|err| failed(chain(&err)))?;
        for rejected in &evidence.1 {
            self.emit(
                "verify",
                StageStatus::Info,
                format!("provenance {rejected}"),
            );
        }
        Ok(evidence)
    }

    /// The image must carry a verified link to the candidate; links to other models (the same
    /// server image shipped with earlier versions) are ignored.
    pub(super) async fn model_link_check(
        &mut self,
        image: &ImageRef,
        keys: &[&dyn Verifier],
        candidate: &ModelVersion,
    ) -> Result<GateReport, Stop> {
        let report = slipway_attest::model_link::verify_model_link(
            self.backends.registry.as_ref(),
            keys,
            image,
            None,
        )
        .await
        .map_err(|err| failed(chain(&err)))?;
        let linked: Vec<String> = report
            .verified()
            .iter()
            .map(|link| format!("{}/{}", link.model_name, link.model_version))
            .collect();
        let mut gate = GateReport::default();
        let name = "image serves the candidate model";
        let expected = candidate.to_string();
        if linked.is_empty() {
            gate.push(
                "signatures",
                name,
                CheckStatus::Skip,
                "no signed model link on the image",
            );
        } else if !report.links_to(&candidate.name, &candidate.version.to_string()) {
            gate.push(
                "signatures",
                name,
                CheckStatus::Fail,
                format!(
                    "the image's signed model links name {}, not {expected}",
                    linked.join(", ")
                ),
            );
        } else {
            gate.push(
                "signatures",
                name,
                CheckStatus::Pass,
                format!("signed model link: {expected}"),
            );
        }
        Ok(gate)
    }
}

/// `step 1/3: 10% requested, 20% achievable (1 canary pod next to 4 stable)`.
fn describe_share(idx: usize, total: usize, share: &rollout::ReplicaShare) -> String {
    format!(
        "step {}/{total}: {}% requested, {} achievable ({} canary pod(s) next to {} stable)",
        idx + 1,
        share.requested_percent,
        percent(share.achievable_percent),
        share.canary_replicas,
        share.stable_replicas
    )
}

/// `20%`, `33.3%`: whole percentages without decimals.
pub(super) fn percent(value: f64) -> String {
    let tenths = (value * 10.0).round() / 10.0;
    if tenths.fract() == 0.0 {
        format!("{tenths:.0}%")
    } else {
        format!("{tenths:.1}%")
    }
}

/// A share for the report: two decimals are enough to tell 33.33% from 33%.
pub(super) fn two_decimals(value: f64) -> f64 {
    (value * 100.0).round() / 100.0
}

/// Verified provenance and why each other provenance attestation was rejected.
pub(crate) type ProvenanceEvidence = (Option<ProvenanceSummary>, Vec<String>);

/// The image's provenance, verified with the build keys only ([`Backends::provenance_keys`]):
/// signature, subject digest and predicate type here; builder, source and ref in the gate.
/// Shared by `run`, rollback and watch, so every path trusts provenance the same way.
pub(crate) async fn provenance_evidence(
    backends: &Backends,
    image: &ImageRef,
) -> Result<ProvenanceEvidence, slipway_attest::Error> {
    let keys: Vec<&dyn Verifier> = backends.provenance_keys.iter().map(AsRef::as_ref).collect();
    let any_builder = slipway_attest::provenance::ProvenancePolicy {
        builder: slipway_attest::provenance::BuilderMatch::Prefix(String::new()),
        source_repository: None,
        source_ref: None,
    };
    let report = slipway_attest::provenance::verify_provenance(
        backends.registry.as_ref(),
        &keys,
        image,
        &any_builder,
    )
    .await?;
    let mut rejected: Vec<String> = report
        .attestations
        .iter()
        .filter(|check| !check.ok)
        .map(|check| {
            let why = check.reasons.join("; ");
            if keys.is_empty() {
                format!("#{} rejected: {why} (no provenance keys are configured: set `policy.provenance.keys` to the build's public keys)", check.layer)
            } else {
                format!("#{} rejected: {why}", check.layer)
            }
        })
        .collect();
    if report.attestations.is_empty() && keys.is_empty() {
        rejected.push(
            "none attached, and no provenance keys are configured (`policy.provenance.keys`)"
                .to_owned(),
        );
    }
    let verified = report.verified().map(|summary| ProvenanceSummary {
        builder_id: summary.builder_id.clone(),
        source_repository: summary.source_repository.clone(),
        source_ref: summary.source_ref.clone(),
    });
    if verified.is_some() {
        rejected.clear();
    }
    Ok((verified, rejected))
}

/// What the model gate judges, read from the model registry: `model` resolved to a version,
/// its run's metrics, its status, and the version serving under `serving_alias` (if any) with
/// its metrics. `run`'s model gate and `slipway-deploy check-model` both call this, then
/// `slipway_gates::model::evaluate`: one gate, two entry points.
pub async fn model_evidence(
    models: &dyn slipway_mlflow::ModelRegistry,
    model: &ModelRef,
    serving_alias: &str,
) -> Result<(slipway_mlflow::VersionInfo, ModelEvidence), slipway_mlflow::Error> {
    let info = models.resolve(model).await?;
    let candidate = info.version.clone();
    let metrics = match info.run_id.as_deref() {
        Some(run_id) => models.run_data(run_id).await?.metrics,
        None => Default::default(),
    };
    let serving_ref = ModelRef {
        name: candidate.name.clone(),
        selector: ModelSelector::Alias(serving_alias.to_owned()),
    };
    let serving = match models.resolve(&serving_ref).await {
        Ok(serving) => {
            let metrics = match serving.run_id.as_deref() {
                Some(run_id) => models.run_data(run_id).await?.metrics,
                None => Default::default(),
            };
            Some(ServingModel {
                version: serving.version,
                metrics,
            })
        }
        Err(slipway_mlflow::Error::NotFound { .. }) => None,
        Err(err) => return Err(err),
    };
    let evidence = ModelEvidence {
        candidate,
        status: if info.status == VersionStatus::Ready {
            "READY".to_owned()
        } else {
            info.status.as_str().to_owned()
        },
        metrics,
        serving,
    };
    Ok((info, evidence))
}
