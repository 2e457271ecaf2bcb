//! `slipway-audit drift`: is what runs what the trail says was released, signed and built?
//!
//! For each release, every workload Slipway knows of is read from the cluster backend: the stable
//! Deployment, the canary, and the blue and green colours. The *serving* workload (stable, or the
//! active colour after a blue-green release) must run, pinned by digest, the digest of the
//! release's last `promoted` or `rolled-back` record. Every workload's image must carry a
//! signature by a trusted key, its SLSA provenance (when attached) must verify, and a verified
//! model link must name the recorded model. Each failed check is drift; a missing record is not
//! (there is nothing to compare), but is said.
//!
//! All checks are gathered before answering (every failure, not the first), and the registry
//! and cluster are only read.

use std::collections::BTreeSet;

use serde::Serialize;
use slipway_attest::provenance::{BuilderMatch, ProvenancePolicy};
use slipway_attest::{Verifier, attestation, model_link, provenance};
use slipway_audit_log::{Entry, Event};
use slipway_core::{ImageRef, Outcome, ReleaseId, ReleaseRecord, Strategy};
use slipway_k8s_rollout::bluegreen::{self, BlueGreenConfig, Colour};
use slipway_k8s_rollout::rollout;
use slipway_pipeline::Backends;

/// The record a serving workload must match.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub(crate) struct Expected {
    pub(crate) revision: u64,
    pub(crate) outcome: String,
    pub(crate) digest: String,
    pub(crate) model: String,
    pub(crate) at: jiff::Timestamp,
}

/// One check of one workload.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub(crate) struct Check {
    pub(crate) check: &'static str,
    pub(crate) ok: bool,
    pub(crate) detail: String,
}

/// One workload and its checks.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub(crate) struct WorkloadCheck {
    pub(crate) release: String,
    pub(crate) deployment: String,
    /// `stable`, `canary`, `blue` or `green`.
    pub(crate) role: &'static str,
    /// The workload the trail's record describes.
    pub(crate) serving: bool,
    /// The running image; `None` when the Deployment is missing.
    pub(crate) image: Option<String>,
    pub(crate) expected: Option<Expected>,
    pub(crate) checks: Vec<Check>,
    pub(crate) drift: bool,
}

/// Every workload checked.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub(crate) struct DriftReport {
    pub(crate) releases: Vec<String>,
    pub(crate) workloads: Vec<WorkloadCheck>,
}

impl DriftReport {
    /// True when any workload drifted.
    pub(crate) fn drift(&self) -> bool {
        self.workloads.iter().any(|workload| workload.drift)
    }

    /// One block per workload, then a verdict line.
    pub(crate) fn to_text(&self) -> String {
        let mut out = String::new();
        for workload in &self.workloads {
            out.push_str(&format!(
                "{} {} `{}`{}: {}\n",
                workload.release,
                workload.role,
                workload.deployment,
                if workload.serving { " (serving)" } else { "" },
                if workload.drift { "DRIFT" } else { "ok" }
            ));
            if let Some(image) = &workload.image {
                out.push_str(&format!("  image: {image}\n"));
            }
            for check in &workload.checks {
                out.push_str(&format!(
                    "  {:<5} {}: {}\n",
                    if check.ok { "ok" } else { "FAIL" },
                    check.check,
                    check.detail
                ));
            }
        }
        let drifted = self.workloads.iter().filter(|w| w.drift).count();
        out.push_str(&if drifted == 0 {
            format!(
                "no drift: {} workload(s) of {} release(s) run what the trail recorded\n",
                self.workloads.len(),
                self.releases.len()
            )
        } else {
            format!(
                "DRIFT: {drifted} of {} workload(s) of {} release(s)\n",
                self.workloads.len(),
                self.releases.len()
            )
        });
        out
    }
}

/// Releases with at least one release record, in order of first appearance.
pub(crate) fn releases_in(entries: &[Entry]) -> Vec<ReleaseId> {
    let mut seen = BTreeSet::new();
    entries
        .iter()
        .filter_map(|entry| match &entry.event {
            Event::Release(record) if seen.insert(record.release.to_string()) => {
                Some(record.release.clone())
            }
            _ => None,
        })
        .collect()
}

/// The last record that put an image into service.
fn last_serving_record<'a>(entries: &'a [Entry], release: &ReleaseId) -> Option<&'a ReleaseRecord> {
    entries.iter().rev().find_map(|entry| match &entry.event {
        Event::Release(record)
            if &record.release == release
                && matches!(record.outcome, Outcome::Promoted | Outcome::RolledBack) =>
        {
            Some(record)
        }
        _ => None,
    })
}

/// Checks every release's workloads. `service_of` names the Service in front of a release (for
/// the active blue-green colour).
pub(crate) async fn check(
    entries: &[Entry],
    releases: &[ReleaseId],
    service_of: &dyn Fn(&ReleaseId) -> String,
    backends: &Backends,
) -> DriftReport {
    let mut workloads = Vec::new();
    for release in releases {
        let record = last_serving_record(entries, release);
        let expected = record.map(|record| Expected {
            revision: record.revision,
            outcome: record.outcome.to_string(),
            digest: record.digest.to_string(),
            model: record.model.to_string(),
            at: record.at,
        });
        // Blue-green serves from the active colour; the user's Deployment keeps its old image.
        let active = match record.map(|record| record.strategy) {
            Some(Strategy::BlueGreen) => bluegreen::active(
                backends.cluster.as_ref(),
                release,
                &BlueGreenConfig::new(service_of(release)),
            )
            .await
            .ok()
            .flatten(),
            _ => None,
        };
        let candidates = [
            ("stable", release.name.clone(), active.is_none()),
            ("canary", rollout::canary_name(release), false),
            (
                "blue",
                bluegreen::colour_name(release, Colour::Blue),
                active == Some(Colour::Blue),
            ),
            (
                "green",
                bluegreen::colour_name(release, Colour::Green),
                active == Some(Colour::Green),
            ),
        ];
        for (role, deployment, serving) in candidates {
            let state = backends
                .cluster
                .deployment(&release.namespace, &deployment)
                .await;
            let mut workload = WorkloadCheck {
                release: release.to_string(),
                deployment: deployment.clone(),
                role,
                serving,
                image: None,
                expected: if serving { expected.clone() } else { None },
                checks: Vec::new(),
                drift: false,
            };
            match state {
                Err(err) => workload.checks.push(Check {
                    check: "present",
                    ok: false,
                    detail: format!(
                        "cannot read the Deployment: {}",
                        first_line(&err.to_string())
                    ),
                }),
                // Only the serving workload must exist; canary and colours come and go.
                Ok(None) if serving => workload.checks.push(Check {
                    check: "present",
                    ok: false,
                    detail: format!("Deployment `{}/{deployment}` not found", release.namespace),
                }),
                Ok(None) => continue,
                Ok(Some(state)) => {
                    workload.image = Some(state.spec.image.clone());
                    workload.checks = image_checks(
                        &state.spec.image,
                        serving.then_some(record).flatten(),
                        backends,
                    )
                    .await;
                    if serving && record.is_none() {
                        workload.checks.insert(
                            0,
                            Check {
                                check: "recorded",
                                ok: true,
                                detail: "no promoted or rolled-back revision of this release in the trail: nothing to compare".to_owned(),
                            },
                        );
                    }
                }
            }
            workload.drift = workload.checks.iter().any(|check| !check.ok);
            workloads.push(workload);
        }
    }
    DriftReport {
        releases: releases.iter().map(ToString::to_string).collect(),
        workloads,
    }
}

fn first_line(text: &str) -> &str {
    text.split("\n\n").next().unwrap_or(text)
}

/// Digest against the record (serving workloads), signature, provenance and model link.
async fn image_checks(
    running: &str,
    record: Option<&ReleaseRecord>,
    backends: &Backends,
) -> Vec<Check> {
    let mut checks = Vec::new();
    let image = match ImageRef::parse(running) {
        Ok(image) if image.digest().is_some() => image,
        Ok(_) => {
            checks.push(Check {
                check: "pinned",
                ok: false,
                detail: format!("runs `{running}` by tag, not by digest: what runs cannot be tied to a record or a signature"),
            });
            return checks;
        }
        Err(err) => {
            checks.push(Check {
                check: "pinned",
                ok: false,
                detail: format!("the image `{running}` does not parse: {err}"),
            });
            return checks;
        }
    };
    let digest = image.digest().map(ToString::to_string).unwrap_or_default();
    if let Some(record) = record {
        let matches = record.digest.to_string() == digest;
        checks.push(Check {
            check: "recorded",
            ok: matches,
            detail: if matches {
                format!(
                    "runs {} as revision {} ({}, {}) recorded",
                    short(&digest),
                    record.revision,
                    record.outcome,
                    record.at
                )
            } else {
                format!(
                    "runs {} but revision {} ({}, {}) recorded {}: changed outside Slipway",
                    short(&digest),
                    record.revision,
                    record.outcome,
                    record.at,
                    short(&record.digest.to_string())
                )
            },
        });
    }

    let keys: Vec<&dyn Verifier> = backends
        .trusted_keys
        .iter()
        .map(|key| key.as_ref())
        .collect();
    if keys.is_empty() {
        checks.push(Check {
            check: "signature",
            ok: false,
            detail: "no trusted keys configured, so no signature can be checked\n\nhint: set `signing.trusted_keys`".to_owned(),
        });
        return checks;
    }
    let registry = backends.registry.as_ref();
    checks.push(
        match slipway_attest::verify_image(registry, &keys, &image).await {
            Ok(report) => {
                let verified = report.verified_keys();
                match verified.first() {
                    Some(key) => Check {
                        check: "signature",
                        ok: true,
                        detail: format!("signed by trusted key {key}"),
                    },
                    None => Check {
                        check: "signature",
                        ok: false,
                        detail: if report.signatures.is_empty() {
                            "no signature".to_owned()
                        } else {
                            format!(
                                "no valid signature by a trusted key: {}",
                                report
                                    .signatures
                                    .iter()
                                    .map(|check| check.reason.clone())
                                    .collect::<Vec<_>>()
                                    .join("; ")
                            )
                        },
                    },
                }
            }
            Err(err) => Check {
                check: "signature",
                ok: false,
                detail: format!("cannot read signatures: {}", first_line(&err.to_string())),
            },
        },
    );

    let statements = match attestation::read_statements(registry, &keys, &image).await {
        Ok(statements) => statements,
        Err(err) => {
            checks.push(Check {
                check: "provenance",
                ok: false,
                detail: format!("cannot read attestations: {}", first_line(&err.to_string())),
            });
            return checks;
        }
    };
    // Any builder: drift asks whether the provenance is genuine; which builders are allowed is
    // the deploy gate's policy, checked when the image was released.
    let any_builder = ProvenancePolicy {
        builder: BuilderMatch::Prefix(String::new()),
        source_repository: None,
        source_ref: None,
    };
    // Provenance is the build's word: only the build keys (`[policy.provenance] keys`) count,
    // as in the deploy gate; the deploy keys above vouch for signatures and model links.
    let provenance_keys: Vec<&dyn Verifier> =
        backends.provenance_keys.iter().map(AsRef::as_ref).collect();
    let provenance_statements =
        match attestation::read_statements(registry, &provenance_keys, &image).await {
            Ok(statements) => statements,
            Err(err) => {
                checks.push(Check {
                    check: "provenance",
                    ok: false,
                    detail: format!("cannot read attestations: {}", first_line(&err.to_string())),
                });
                return checks;
            }
        };
    let provenance = provenance::evaluate(&provenance_statements, &any_builder);
    checks.push(if provenance.attestations.is_empty() {
        Check {
            check: "provenance",
            ok: true,
            detail: "none attached".to_owned(),
        }
    } else if let Some(summary) = provenance.verified() {
        Check {
            check: "provenance",
            ok: true,
            detail: format!(
                "SLSA provenance verified: built by {} from {}",
                summary.builder_id, summary.source_repository
            ),
        }
    } else {
        Check {
            check: "provenance",
            ok: false,
            detail: format!(
                "provenance attached but none verifies: {}",
                provenance
                    .attestations
                    .iter()
                    .flat_map(|check| check.reasons.clone())
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
        }
    });

    if let Some(record) = record {
        let links = model_link::evaluate(&statements, None);
        let verified = links.verified();
        let names_recorded = |link: &&model_link::ModelLink| {
            link.model_name == record.model.name
                && link.model_version == record.model.version.to_string()
        };
        if !verified.is_empty() {
            let ok = verified.iter().any(names_recorded);
            checks.push(Check {
                check: "model-link",
                ok,
                detail: if ok {
                    format!("signed model link names {}", record.model)
                } else {
                    format!(
                        "signed model link names {} but the record says {}",
                        verified
                            .iter()
                            .map(|link| format!("{}/{}", link.model_name, link.model_version))
                            .collect::<Vec<_>>()
                            .join(", "),
                        record.model
                    )
                },
            });
        }
    }
    checks
}

/// `sha256:` and the first 12 hex digits.
fn short(digest: &str) -> String {
    digest.chars().take(7 + 12).collect()
}

#[cfg(test)]
mod tests {
    use slipway_cli::config::Settings;
    use slipway_demo::scenario;
    use slipway_k8s_rollout::Cluster as _;

    use super::*;

    fn service(release: &ReleaseId) -> String {
        release.name.clone()
    }

    #[tokio::test]
    async fn no_drift_after_the_scenario_and_drift_after_a_change_behind_slipways_back() {
        let spec =
            slipway_cli::release::release_spec(&Settings::default(), None, None).expect("spec");
        let world = scenario::build("happy", &spec).await.expect("world");
        let report = slipway_pipeline::run(&spec, &world.backends, &mut |_: &_| {}).await;
        assert_eq!(
            report.outcome,
            slipway_pipeline::RunOutcome::Promoted,
            "{}",
            report.reason
        );
        let entries = world.backends.audit.entries().await.expect("trail");
        let releases = releases_in(&entries);
        assert_eq!(releases, std::slice::from_ref(&spec.release));

        let clean = check(&entries, &releases, &service, &world.backends).await;
        assert!(!clean.drift(), "{}", clean.to_text());
        let stable = &clean.workloads[0];
        assert!(stable.serving && stable.role == "stable");
        assert_eq!(
            stable.expected.as_ref().map(|e| e.revision),
            Some(3),
            "the promotion this run recorded"
        );
        let names: Vec<&str> = stable.checks.iter().map(|c| c.check).collect();
        assert!(
            names.starts_with(&["recorded", "signature", "provenance"]),
            "{names:?}"
        );

        // Someone sets stable back to the previous (signed) image with kubectl.
        let state = world
            .cluster
            .deployment(&spec.release.namespace, &spec.release.name)
            .await
            .expect("read")
            .expect("stable");
        let previous = entries
            .iter()
            .find_map(|entry| match &entry.event {
                Event::Release(record) if record.revision == 2 => Some(record.image.clone()),
                _ => None,
            })
            .expect("revision 2");
        let mut changed = state.spec.clone();
        changed.image = previous.pinned().expect("pinned");
        world
            .cluster
            .apply_deployment(&changed)
            .await
            .expect("kubectl set image");
        let drifted = check(&entries, &releases, &service, &world.backends).await;
        assert!(drifted.drift(), "{}", drifted.to_text());
        let failed: Vec<(&str, bool)> = drifted.workloads[0]
            .checks
            .iter()
            .map(|c| (c.check, c.ok))
            .collect();
        assert_eq!(
            &failed[..2],
            [("recorded", false), ("signature", true)],
            "only the digest drifted: the old image is still signed"
        );
        assert!(drifted.to_text().contains("changed outside Slipway"));

        // And by tag: nothing can be checked.
        changed.image = "registry.example/iris:latest".to_owned();
        world
            .cluster
            .apply_deployment(&changed)
            .await
            .expect("kubectl set image");
        let by_tag = check(&entries, &releases, &service, &world.backends).await;
        assert_eq!(by_tag.workloads[0].checks[0].check, "pinned");
        assert!(by_tag.drift());
    }
}
