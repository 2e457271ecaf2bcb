//! [`Policy`]: every gate's settings, as read from `[policy]` in `slipway.toml`, its validation,
//! and [`Policy::evaluate`], which runs every gate over one [`Evidence`].
//!
//! Validation is separate from deserialising on purpose: serde knows shapes (a string, a list),
//! while "this string is a cron schedule" and "min is not above max" need our own words. The
//! config loader calls [`Policy::validate`] right after extracting, so an invalid policy is an
//! error at load time naming the key (`policy.windows.deny[0].schedule`) instead of a failed
//! gate in the middle of a release. Every problem is reported, not only the first.

use std::fmt;

use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};
use slipway_scanner::{IgnoreRule, ScanReport};

use crate::GateReport;
use crate::approval::{self, ApprovalEvidence, ApprovalPolicy};
use crate::model::{self, ModelEvidence, ModelPolicy};
use crate::signature::{self, SignatureEvidence, SignaturePolicy};
use crate::vuln::{self, VulnPolicy};
use crate::window::{self, ParsedWindow, WindowOverride, WindowPolicy};

/// Every gate's policy: the `[policy]` table of `slipway.toml`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Policy {
    /// `[policy.model]`.
    pub model: ModelPolicy,
    /// `[policy.vulnerabilities]`.
    pub vulnerabilities: VulnPolicy,
    /// `[policy.signatures]`.
    pub signatures: SignaturePolicy,
    /// `[policy.windows]`.
    pub windows: WindowPolicy,
    /// `[policy.approvals]`.
    pub approvals: ApprovalPolicy,
    /// `[policy.provenance]`: the build keys whose provenance counts.
    pub provenance: signature::ProvenanceKeys,
}

/// Everything the gates judge, collected by the pipeline before it calls [`Policy::evaluate`].
#[derive(Debug, Clone, PartialEq)]
pub struct Evidence {
    /// From the model registry.
    pub model: ModelEvidence,
    /// The image's vulnerability scan.
    pub scan: ScanReport,
    /// Ignore rules read from the team's ignore files (`.trivyignore`), applied after the
    /// policy's own.
    pub ignores: Vec<IgnoreRule>,
    /// From signature and provenance verification.
    pub signatures: SignatureEvidence,
    /// The time the release is judged at (from the pipeline's clock).
    pub now: Timestamp,
    /// An explicit deploy-window override, if someone gave one.
    pub window_override: Option<WindowOverride>,
    /// The actor, the release's digest and model, and the approvals recorded.
    pub approvals: ApprovalEvidence,
}

impl Policy {
    /// Runs every gate and returns one report with every check, in the order model,
    /// vulnerabilities, signatures, windows, approvals.
    ///
    /// Ignore-rule expiry is judged on the UTC date of `evidence.now`. Callers who want the
    /// per-finding [`vuln::VulnReport`] as well call [`vuln::evaluate`] themselves.
    pub fn evaluate(&self, evidence: &Evidence) -> GateReport {
        let mut report = model::evaluate(&self.model, &evidence.model);
        let today = evidence.now.to_zoned(TimeZone::UTC).date();
        report.extend(
            vuln::evaluate(
                &self.vulnerabilities,
                &evidence.scan,
                &evidence.ignores,
                today,
            )
            .gate_report(),
        );
        report.extend(signature::evaluate(&self.signatures, &evidence.signatures));
        report.extend(window::evaluate(
            &self.windows,
            evidence.now,
            evidence.window_override.as_ref(),
        ));
        report.extend(approval::evaluate(&self.approvals, &evidence.approvals));
        report
    }

    /// Checks what serde cannot: cron schedules, durations and time zones parse, bounds are
    /// finite and ordered, tolerances are not negative, names are not empty, and enough
    /// approvers are listed. Returns every problem found.
    pub fn validate(&self) -> Result<(), PolicyError> {
        let mut problems = Vec::new();
        validate_model(&self.model, &mut problems);
        validate_vulnerabilities(&self.vulnerabilities, &mut problems);
        validate_signatures(&self.signatures, &mut problems);
        validate_windows(&self.windows, &mut problems);
        validate_approvals(&self.approvals, &mut problems);
        if problems.is_empty() {
            Ok(())
        } else {
            Err(PolicyError { problems })
        }
    }
}

/// One thing wrong with a policy, at one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyProblem {
    /// The key path, e.g. `policy.windows.deny[0].schedule`.
    pub key: String,
    /// What is wrong, naming the value.
    pub problem: String,
    /// How to fix it.
    pub hint: String,
}

/// Why a policy is invalid: every problem found, each with its key and a hint.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct PolicyError {
    /// The problems, in key order within each gate.
    pub problems: Vec<PolicyProblem>,
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (idx, problem) in self.problems.iter().enumerate() {
            if idx > 0 {
                f.write_str("\n\n")?;
            }
            write!(
                f,
                "invalid `{}`: {}\n\nhint: {}",
                problem.key, problem.problem, problem.hint
            )?;
        }
        Ok(())
    }
}

fn push(problems: &mut Vec<PolicyProblem>, key: String, problem: String, hint: &str) {
    problems.push(PolicyProblem {
        key,
        problem,
        hint: hint.to_owned(),
    });
}

/// A TOML key segment: bare when it can be, quoted otherwise (`"val.loss"`).
fn key_segment(name: &str) -> String {
    let bare = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if bare {
        name.to_owned()
    } else {
        format!("{name:?}")
    }
}

fn validate_model(policy: &ModelPolicy, problems: &mut Vec<PolicyProblem>) {
    for (metric, rule) in &policy.metrics {
        let base = format!("policy.model.metrics.{}", key_segment(metric));
        if metric.trim().is_empty() {
            push(
                problems,
                base.clone(),
                "metric name is empty".to_owned(),
                "name the metric as the training run logs it, e.g. `accuracy`",
            );
        }
        for (field, value) in [
            ("min", rule.min),
            ("max", rule.max),
            ("max_regression", rule.max_regression),
        ] {
            if let Some(value) = value
                && !value.is_finite()
            {
                push(
                    problems,
                    format!("{base}.{field}"),
                    format!("{value} is not a finite number"),
                    "write a plain number such as 0.85, or remove the key",
                );
            }
        }
        if let Some(tolerance) = rule.max_regression
            && tolerance < 0.0
        {
            push(
                problems,
                format!("{base}.max_regression"),
                format!("tolerance {tolerance} is negative"),
                "the tolerance is how far the metric may drop; use 0 to forbid any drop",
            );
        }
        if let (Some(min), Some(max)) = (rule.min, rule.max)
            && min > max
        {
            push(
                problems,
                format!("{base}.min"),
                format!("min {min} is above max {max}, so no value can pass"),
                "swap the bounds or remove one",
            );
        }
    }
}

fn validate_vulnerabilities(policy: &VulnPolicy, problems: &mut Vec<PolicyProblem>) {
    for (idx, rule) in policy.ignore.iter().enumerate() {
        if rule.id.trim().is_empty() {
            push(
                problems,
                format!("policy.vulnerabilities.ignore[{idx}].id"),
                "vulnerability id is empty".to_owned(),
                "write the id the scanner reports, e.g. `CVE-2024-3094` or `GHSA-…`",
            );
        }
    }
}

fn validate_signatures(policy: &SignaturePolicy, problems: &mut Vec<PolicyProblem>) {
    let lists: [(&str, Vec<&str>, &str); 4] = [
        (
            "trusted_keys",
            policy.trusted_keys.iter().map(String::as_str).collect(),
            "write the key id or fingerprint, or remove the entry",
        ),
        (
            "trusted_builders",
            policy.trusted_builders.iter().map(|b| b.text()).collect(),
            "write the builder id (or its prefix), or remove the entry",
        ),
        (
            "source_repositories",
            policy
                .source_repositories
                .iter()
                .map(String::as_str)
                .collect(),
            "write the repository URI, e.g. `https://github.com/acme/iris`, or remove the entry",
        ),
        (
            "source_refs",
            policy.source_refs.iter().map(String::as_str).collect(),
            "write a full ref, e.g. `refs/heads/main` or `refs/tags/v*`, or remove the entry",
        ),
    ];
    for (field, items, hint) in lists {
        for (idx, item) in items.iter().enumerate() {
            if item.trim().is_empty() {
                push(
                    problems,
                    format!("policy.signatures.{field}[{idx}]"),
                    "entry is empty".to_owned(),
                    hint,
                );
            }
        }
    }
}

fn validate_windows(policy: &WindowPolicy, problems: &mut Vec<PolicyProblem>) {
    for (kind, windows) in [("allow", &policy.allow), ("deny", &policy.deny)] {
        for (idx, window) in windows.iter().enumerate() {
            if let Err(found) = ParsedWindow::parse(window) {
                for problem in found {
                    push(
                        problems,
                        format!("policy.windows.{kind}[{idx}].{}", problem.field),
                        problem.problem,
                        problem.hint,
                    );
                }
            }
        }
    }
}

fn validate_approvals(policy: &ApprovalPolicy, problems: &mut Vec<PolicyProblem>) {
    let mut distinct: Vec<String> = Vec::new();
    for (idx, approver) in policy.approvers.iter().enumerate() {
        let name = approver.trim();
        if name.is_empty() {
            push(
                problems,
                format!("policy.approvals.approvers[{idx}]"),
                "approver name is empty".to_owned(),
                "write the approver's login, or remove the entry",
            );
        } else if !distinct.iter().any(|d| d.eq_ignore_ascii_case(name)) {
            distinct.push(name.to_owned());
        }
    }
    let required = usize::try_from(policy.required).unwrap_or(usize::MAX);
    if policy.required > 0 && !policy.approvers.is_empty() && distinct.len() < required {
        push(
            problems,
            "policy.approvals.approvers".to_owned(),
            format!(
                "lists {} distinct approver(s) but {} approval(s) are required, so no release could pass",
                distinct.len(),
                policy.required
            ),
            "add approvers, lower `policy.approvals.required`, or empty the list to let anyone approve",
        );
    }
    for name in policy.keys.keys() {
        if name.trim().is_empty() {
            push(
                problems,
                "policy.approvals.keys".to_owned(),
                "an approver key has an empty name".to_owned(),
                "name each key after its owner: `keys = { \"maria.chen\" = \"keys/maria.pub\" }`",
            );
        }
    }
    if policy.environment.trim().is_empty() {
        push(
            problems,
            "policy.approvals.environment".to_owned(),
            "the GitHub environment name is empty".to_owned(),
            "name the environment the approve job runs in, e.g. `production`",
        );
    }
    if let Err(message) = crate::window::parse_duration(&policy.valid_for) {
        push(
            problems,
            "policy.approvals.valid_for".to_owned(),
            message,
            "write a duration such as `24h` or `2d`",
        );
    }
}

#[cfg(test)]
mod tests {
    use slipway_core::{Digest, ModelVersion};

    use super::*;
    use crate::CheckStatus;
    use crate::approval::Approval;
    use crate::model::ServingModel;
    use crate::signature::{BuilderMatch, ProvenanceSummary, SignatureFormat, VerifiedSignature};
    use crate::window::Window;

    fn parse(text: &str) -> Policy {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct File {
            policy: Policy,
        }
        toml::from_str::<File>(text).expect("policy parses").policy
    }

    #[test]
    fn defaults_are_valid_and_match_the_seeds() {
        let policy = Policy::default();
        assert_eq!(policy.validate(), Ok(()));
        assert_eq!(parse("[policy]\n"), policy);
        assert_eq!(policy.model.metrics["accuracy"].min, Some(0.85));
        assert_eq!(policy.model.metrics["accuracy"].max_regression, Some(0.01));
        assert_eq!(policy.model.metrics["f1"].min, Some(0.80));
        assert!(policy.model.require_ready);
        assert!(policy.signatures.require_signature && policy.signatures.require_provenance);
        assert_eq!(policy.approvals.required, 1);
        assert!(policy.approvals.forbid_self_approval);
        assert!(policy.windows.allow.is_empty() && policy.windows.allow_override);
    }

    #[test]
    fn full_policy_from_toml() {
        let policy = parse(
            r#"
[policy.model]
require_ready = true
metrics.accuracy = { min = 0.9, max_regression = 0.005 }

[policy.signatures]
trusted_keys = ["SHA256:abc"]
trusted_builders = [{ prefix = "https://github.com/slsa-framework/" }, { exact = "https://cloudbuild.googleapis.com/GoogleHostedWorker" }]
source_repositories = ["https://github.com/acme/iris"]

[[policy.windows.allow]]
schedule = "0 8 * * MON-FRI"
duration = "10h"
time_zone = "Europe/Berlin"

[[policy.windows.deny]]
schedule = "0 16 * * FRI"
duration = "64h"

[policy.approvals]
required = 2
approvers = ["alice", "bob"]
"#,
        );
        assert_eq!(policy.validate(), Ok(()));
        assert_eq!(
            policy.model.metrics.keys().collect::<Vec<_>>(),
            ["accuracy"]
        );
        assert_eq!(
            policy.signatures.trusted_builders[1],
            BuilderMatch::Exact("https://cloudbuild.googleapis.com/GoogleHostedWorker".to_owned())
        );
        assert_eq!(policy.windows.deny[0].time_zone, "UTC");
        assert!(!policy.windows.allow.is_empty());
        assert_eq!(policy.approvals.required, 2);
        assert!(policy.approvals.forbid_self_approval);
    }

    #[test]
    fn unknown_keys_are_refused() {
        let text = "[policy.approvals]\nrequire = 2\n";
        #[derive(Debug, Deserialize)]
        #[allow(dead_code)]
        struct File {
            policy: Policy,
        }
        let err = toml::from_str::<File>(text).expect_err("typo must not pass");
        assert!(err.to_string().contains("unknown field `require`"), "{err}");
    }

    #[track_caller]
    fn check(policy: Policy, want: &[(&str, &str)]) {
        let got: Vec<(String, String)> = match policy.validate() {
            Ok(()) => Vec::new(),
            Err(err) => err
                .problems
                .into_iter()
                .map(|p| (p.key, p.problem))
                .collect(),
        };
        let want: Vec<(String, String)> = want
            .iter()
            .map(|(k, p)| ((*k).to_owned(), (*p).to_owned()))
            .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn validation() {
        let metric = |toml: &str| parse(&format!("[policy.model.metrics]\n{toml}\n"));
        check(
            metric("accuracy = { min = 0.9, max = 0.8 }"),
            &[(
                "policy.model.metrics.accuracy.min",
                "min 0.9 is above max 0.8, so no value can pass",
            )],
        );
        check(
            metric("accuracy = { max_regression = -0.01 }"),
            &[(
                "policy.model.metrics.accuracy.max_regression",
                "tolerance -0.01 is negative",
            )],
        );
        check(
            metric("\"val.loss\" = { max = nan }"),
            &[(
                "policy.model.metrics.\"val.loss\".max",
                "NaN is not a finite number",
            )],
        );
        check(
            metric("accuracy = { min = inf }"),
            &[(
                "policy.model.metrics.accuracy.min",
                "inf is not a finite number",
            )],
        );
        check(
            parse(
                "[[policy.windows.allow]]\nschedule = \"0 9 * * *\"\nduration = \"1h\"\n\
                 [[policy.windows.deny]]\nschedule = \"0 25 * * *\"\nduration = \"0m\"\ntime_zone = \"Europe/Berln\"\n",
            ),
            &[
                (
                    "policy.windows.deny[0].schedule",
                    "`0 25 * * *` is not a cron schedule: component error: number out of bounds",
                ),
                (
                    "policy.windows.deny[0].duration",
                    "duration `0m` must be longer than zero",
                ),
                (
                    "policy.windows.deny[0].time_zone",
                    "`Europe/Berln` is not a known IANA time zone",
                ),
            ],
        );
        check(
            parse(
                "[policy.approvals]\nrequired = 3\napprovers = [\"alice\", \"Alice\", \"bob\"]\n",
            ),
            &[(
                "policy.approvals.approvers",
                "lists 2 distinct approver(s) but 3 approval(s) are required, so no release could pass",
            )],
        );
        check(
            parse(
                "[policy.vulnerabilities]\nfail_at = \"CRITICAL\"\n[[policy.vulnerabilities.ignore]]\nid = \" \"\n",
            ),
            &[(
                "policy.vulnerabilities.ignore[0].id",
                "vulnerability id is empty",
            )],
        );
        check(
            parse("[policy.approvals]\nrequired = 2\napprovers = []\n"),
            &[],
        );
        check(
            parse("[policy.approvals]\napprovers = [\"alice\", \" \"]\n"),
            &[("policy.approvals.approvers[1]", "approver name is empty")],
        );
        check(
            parse(
                "[policy.signatures]\ntrusted_keys = [\"k\", \"\"]\ntrusted_builders = [{ prefix = \"\" }]\nsource_repositories = [\" \"]\n",
            ),
            &[
                ("policy.signatures.trusted_keys[1]", "entry is empty"),
                ("policy.signatures.trusted_builders[0]", "entry is empty"),
                ("policy.signatures.source_repositories[0]", "entry is empty"),
            ],
        );
    }

    #[test]
    fn error_text_names_the_key_and_hints() {
        let policy = Policy {
            windows: WindowPolicy {
                deny: vec![Window {
                    schedule: "every friday".to_owned(),
                    duration: "1h".to_owned(),
                    time_zone: "UTC".to_owned(),
                }],
                ..WindowPolicy::default()
            },
            ..Policy::default()
        };
        let err = policy.validate().expect_err("bad cron");
        insta::assert_snapshot!(err.to_string());
    }

    #[test]
    fn evaluate_runs_every_gate_in_order() {
        let digest = Digest::parse(
            "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        )
        .expect("digest");
        let version = |version| ModelVersion {
            name: "iris".to_owned(),
            version,
        };
        let policy = Policy {
            signatures: SignaturePolicy {
                trusted_keys: vec!["release".to_owned()],
                ..SignaturePolicy::default()
            },
            ..Policy::default()
        };
        let evidence = Evidence {
            model: ModelEvidence {
                candidate: version(2),
                status: "READY".to_owned(),
                metrics: [("accuracy".to_owned(), 0.93), ("f1".to_owned(), 0.9)]
                    .into_iter()
                    .collect(),
                serving: Some(ServingModel {
                    version: version(1),
                    metrics: [("accuracy".to_owned(), 0.95)].into_iter().collect(),
                }),
            },
            scan: ScanReport {
                artifact: "ghcr.io/acme/iris".to_owned(),
                digests: vec![digest.clone()],
                findings: Vec::new(),
            },
            ignores: Vec::new(),
            signatures: SignatureEvidence {
                signatures: vec![VerifiedSignature {
                    key_id: "release".to_owned(),
                    result: Ok(()),
                    format: SignatureFormat::LegacyTag,
                }],
                provenance: Some(ProvenanceSummary {
                    builder_id: "https://github.com/slsa-framework/slsa-github-generator/.github/workflows/generator_container_slsa3.yml@refs/tags/v2.1.0".to_owned(),
                    source_repository: "git+https://github.com/acme/iris".to_owned(),
                    source_ref: Some("refs/heads/main".to_owned()),
                }),
                rejected_provenance: Vec::new(),
            },
            now: "2024-06-04T10:00:00Z".parse().expect("timestamp"),
            window_override: None,
            approvals: ApprovalEvidence {
                actor: "deployer".to_owned(),
                digest: digest.clone(),
                model: version(2),
                revision: None,
                now: "2024-06-04T10:00:00Z".parse().expect("timestamp"),
                approvals: vec![Approval {
                    approver: "alice".to_owned(),
                    at: "2024-06-04T09:00:00Z".parse().expect("timestamp"),
                    reason: "reviewed the eval report".to_owned(),
                    digest,
                    model: version(2),
                    revision: None,
                    expires: None,
                    authenticated: Ok(crate::approval::Authentication::Demo),
                }],
            },
        };
        let report = policy.evaluate(&evidence);
        let gates: Vec<(&str, CheckStatus)> = report
            .checks
            .iter()
            .map(|c| (c.gate.as_str(), c.status))
            .collect();
        assert_eq!(
            gates,
            [
                ("model", CheckStatus::Pass),
                ("model", CheckStatus::Pass),
                ("model", CheckStatus::Fail),
                ("model", CheckStatus::Pass),
                ("vulnerabilities", CheckStatus::Pass),
                ("signatures", CheckStatus::Pass),
                ("signatures", CheckStatus::Pass),
                ("signatures", CheckStatus::Skip),
                ("signatures", CheckStatus::Skip),
                ("signatures", CheckStatus::Skip),
                ("windows", CheckStatus::Skip),
                ("windows", CheckStatus::Skip),
                ("approvals", CheckStatus::Pass),
            ]
        );
        assert!(!report.passed());
        assert_eq!(
            report
                .failures()
                .map(|c| c.name.as_str())
                .collect::<Vec<_>>(),
            ["accuracy no regression (tolerance 0.01)"]
        );
    }

    /// A release judged by every gate at once: a failing regression, a Friday-night freeze that
    /// crosses midnight, no provenance, an approval of an older build. Rendered in all three forms.
    fn judged_release() -> GateReport {
        let released = Digest::parse(
            "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        )
        .expect("digest");
        let older = Digest::parse(
            "sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae",
        )
        .expect("digest");
        let version = |version| ModelVersion {
            name: "iris-random-forest".to_owned(),
            version,
        };
        let policy = parse(
            r#"
[policy.model]
metrics.accuracy = { min = 0.9, max_regression = 0.01 }
metrics.f1 = { min = 0.85, max = 0.99 }

[policy.signatures]
trusted_keys = ["release"]
trusted_builders = [{ prefix = "https://github.com/slsa-framework/" }]

[[policy.windows.allow]]
schedule = "0 8 * * MON-FRI"
duration = "17h"
time_zone = "Europe/Berlin"

[[policy.windows.deny]]
schedule = "0 23 * * FRI"
duration = "3h"
time_zone = "Europe/Berlin"

[policy.approvals]
required = 2
approvers = ["alice", "bob", "carol"]
"#,
        );
        assert_eq!(policy.validate(), Ok(()));
        let approval = |who: &str, digest: &Digest| Approval {
            approver: who.to_owned(),
            at: "2024-06-07T18:00:00Z".parse().expect("timestamp"),
            reason: "eval report reviewed".to_owned(),
            digest: digest.clone(),
            model: version(2),
            revision: None,
            expires: None,
            authenticated: Ok(crate::approval::Authentication::Demo),
        };
        let evidence = Evidence {
            model: ModelEvidence {
                candidate: version(2),
                status: "READY".to_owned(),
                metrics: [("accuracy".to_owned(), 0.93), ("f1".to_owned(), 0.99)]
                    .into_iter()
                    .collect(),
                serving: Some(ServingModel {
                    version: version(1),
                    metrics: [("accuracy".to_owned(), 0.95)].into_iter().collect(),
                }),
            },
            scan: ScanReport {
                artifact: "ghcr.io/acme/iris".to_owned(),
                digests: vec![released.clone()],
                findings: Vec::new(),
            },
            ignores: Vec::new(),
            signatures: SignatureEvidence {
                signatures: vec![
                    VerifiedSignature {
                        key_id: "release".to_owned(),
                        result: Ok(()),
                        format: SignatureFormat::LegacyTag,
                    },
                    VerifiedSignature {
                        key_id: "laptop".to_owned(),
                        result: Ok(()),
                        format: SignatureFormat::LegacyTag,
                    },
                ],
                provenance: None,
                rejected_provenance: Vec::new(),
            },
            // Saturday 00:30 in Berlin: inside Friday's freeze and inside Friday's allow window (08:00
            // for 17h), both crossing midnight: deny wins.
            now: "2024-06-07T22:30:00Z".parse().expect("timestamp"),
            window_override: None,
            approvals: ApprovalEvidence {
                actor: "deployer".to_owned(),
                digest: released.clone(),
                model: version(2),
                revision: None,
                now: "2024-06-07T22:30:00Z".parse().expect("timestamp"),
                approvals: vec![approval("alice", &released), approval("bob", &older)],
            },
        };
        policy.evaluate(&evidence)
    }

    #[test]
    fn evaluated_report_text() {
        insta::assert_snapshot!(judged_release().render_text());
    }

    #[test]
    fn evaluated_report_markdown() {
        insta::assert_snapshot!(judged_release().render_markdown());
    }

    #[test]
    fn evaluated_report_json() {
        insta::assert_json_snapshot!(judged_release());
    }

    /// The property: whatever the policy and the evidence, every configured check appears in
    /// [`Policy::evaluate`]'s report exactly once, nothing else appears, and the gates come in
    /// their fixed order. Each configured check is derived here from the policy alone.
    mod every_check_once {
        use std::collections::BTreeMap;

        use proptest::prelude::*;
        use slipway_core::{Digest, ModelVersion};
        use slipway_scanner::{ScanReport, Severity};

        use crate::approval::{Approval, ApprovalEvidence, ApprovalPolicy};
        use crate::model::{MetricRule, ModelEvidence, ModelPolicy, ServingModel};
        use crate::signature::{
            BuilderMatch, ProvenanceSummary, SignatureEvidence, SignatureFormat, SignaturePolicy,
            VerifiedSignature,
        };
        use crate::vuln::VulnPolicy;
        use crate::window::{Window, WindowOverride, WindowPolicy};
        use crate::{Evidence, Policy};

        const SCHEDULES: [&str; 7] = [
            "0 22 * * *",
            "0 9 * * MON-FRI",
            "*/15 * * * *",
            "0 23 * * FRI",
            "30 2 * * *",
            "0 0 1 * *",
            "@daily",
        ];
        const DURATIONS: [&str; 5] = ["5m", "1h", "4h", "1h30m", "2d"];
        const ZONES: [&str; 4] = ["UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata"];
        const METRICS: [&str; 4] = ["accuracy", "f1", "precision", "val_loss"];
        const PEOPLE: [&str; 5] = ["alice", "bob", "Alice", "deployer", " "];
        const RELEASED: &str =
            "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
        const OLDER: &str =
            "sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae";

        fn bound() -> impl Strategy<Value = Option<f64>> {
            prop::option::of((0u32..=100).prop_map(|n| f64::from(n) / 100.0))
        }

        fn metric_rules() -> impl Strategy<Value = BTreeMap<String, MetricRule>> {
            let rule =
                (bound(), bound(), bound()).prop_map(|(min, max, max_regression)| MetricRule {
                    min,
                    max,
                    max_regression,
                });
            prop::collection::btree_map(prop::sample::select(METRICS.to_vec()), rule, 0..=4)
                .prop_map(|rules| {
                    rules
                        .into_iter()
                        .map(|(name, rule)| (name.to_owned(), rule))
                        .collect()
                })
        }

        fn window() -> impl Strategy<Value = Window> {
            (
                prop::sample::select(SCHEDULES.to_vec()),
                prop::sample::select(DURATIONS.to_vec()),
                prop::sample::select(ZONES.to_vec()),
            )
                .prop_map(|(schedule, duration, time_zone)| Window {
                    schedule: schedule.to_owned(),
                    duration: duration.to_owned(),
                    time_zone: time_zone.to_owned(),
                })
        }

        fn people(max: usize) -> impl Strategy<Value = Vec<String>> {
            prop::collection::vec(prop::sample::select(PEOPLE.to_vec()), 0..=max)
                .prop_map(|names| names.into_iter().map(str::to_owned).collect())
        }

        fn policy() -> impl Strategy<Value = Policy> {
            let model =
                (metric_rules(), any::<bool>()).prop_map(|(metrics, require_ready)| ModelPolicy {
                    metrics,
                    require_ready,
                });
            let vulnerabilities = prop::sample::select(vec![
                Severity::Unknown,
                Severity::Low,
                Severity::Medium,
                Severity::High,
                Severity::Critical,
            ])
            .prop_map(|fail_at| VulnPolicy {
                fail_at,
                ..VulnPolicy::default()
            });
            let signatures = (
                any::<bool>(),
                any::<bool>(),
                0usize..=2,
                any::<bool>(),
                any::<bool>(),
            )
                .prop_map(
                    |(require_signature, require_provenance, keys, builders, sources)| {
                        SignaturePolicy {
                            require_signature,
                            trusted_keys: ["release", "ci"][..keys]
                                .iter()
                                .map(|k| (*k).to_owned())
                                .collect(),
                            require_provenance,
                            trusted_builders: if builders {
                                vec![BuilderMatch::Prefix(
                                    "https://github.com/slsa-framework/".to_owned(),
                                )]
                            } else {
                                Vec::new()
                            },
                            source_repositories: if sources {
                                vec!["https://github.com/acme/iris".to_owned()]
                            } else {
                                Vec::new()
                            },
                            source_refs: if sources {
                                vec!["refs/heads/main".to_owned()]
                            } else {
                                Vec::new()
                            },
                        }
                    },
                );
            let windows = (
                prop::collection::vec(window(), 0..=3),
                prop::collection::vec(window(), 0..=3),
                any::<bool>(),
            )
                .prop_map(|(allow, deny, allow_override)| WindowPolicy {
                    allow,
                    deny,
                    allow_override,
                });
            let approvals = (0u32..=4, people(3), any::<bool>()).prop_map(
                |(required, approvers, forbid_self_approval)| ApprovalPolicy {
                    required,
                    approvers,
                    forbid_self_approval,
                    ..ApprovalPolicy::default()
                },
            );
            (model, vulnerabilities, signatures, windows, approvals).prop_map(
                |(model, vulnerabilities, signatures, windows, approvals)| Policy {
                    model,
                    vulnerabilities,
                    signatures,
                    windows,
                    approvals,
                    provenance: Default::default(),
                },
            )
        }

        fn evidence() -> impl Strategy<Value = Evidence> {
            let value = prop_oneof![
                8 => (0u32..=100).prop_map(|n| f64::from(n) / 100.0),
                1 => Just(f64::NAN),
                1 => Just(f64::INFINITY),
            ];
            let metrics = prop::collection::btree_map(
                prop::sample::select(METRICS.to_vec()).prop_map(str::to_owned),
                value,
                0..=4,
            );
            let version = |number| ModelVersion {
                name: "iris".to_owned(),
                version: number,
            };
            let model = (
                metrics.clone(),
                prop::sample::select(vec!["READY", "PENDING_REGISTRATION"]),
                prop::option::of((1u64..=2, metrics)),
            )
                .prop_map(move |(metrics, status, serving)| ModelEvidence {
                    candidate: version(2),
                    status: status.to_owned(),
                    metrics,
                    serving: serving.map(|(number, metrics)| ServingModel {
                        version: version(number),
                        metrics,
                    }),
                });
            let signatures = (
                prop::collection::vec(
                    (
                        prop::sample::select(vec!["release", "ci", "laptop"]),
                        any::<bool>(),
                    ),
                    0..=3,
                ),
                prop::option::of(any::<bool>()),
            )
                .prop_map(|(signatures, provenance)| SignatureEvidence {
                    signatures: signatures
                        .into_iter()
                        .map(|(key, ok)| VerifiedSignature {
                            key_id: key.to_owned(),
                            result: if ok {
                                Ok(())
                            } else {
                                Err("mismatch".to_owned())
                            },
                            format: SignatureFormat::LegacyTag,
                        })
                        .collect(),
                    provenance: provenance.map(|trusted| ProvenanceSummary {
                        builder_id: if trusted {
                            "https://github.com/slsa-framework/slsa-github-generator".to_owned()
                        } else {
                            "https://example.com/builder".to_owned()
                        },
                        source_repository: "git+https://github.com/acme/iris".to_owned(),
                        source_ref: None,
                    }),
                    rejected_provenance: Vec::new(),
                });
            // 2024-01-01 to 2026-01-01: two springs and two autumns of DST changes.
            let now = (1_704_067_200i64..1_767_225_600)
                .prop_map(|second| jiff::Timestamp::from_second(second).expect("in range"));
            let window_override = prop::option::of(
                (
                    prop::sample::select(PEOPLE.to_vec()),
                    prop::sample::select(vec!["", "INC-42"]),
                )
                    .prop_map(|(by, reason)| WindowOverride {
                        by: by.to_owned(),
                        reason: reason.to_owned(),
                    }),
            );
            let approvals = prop::collection::vec(
                (
                    prop::sample::select(PEOPLE.to_vec()),
                    any::<bool>(),
                    1u64..=2,
                ),
                0..=5,
            )
            .prop_map(move |approvals| {
                let digest = |text| Digest::parse(text).expect("digest");
                ApprovalEvidence {
                    actor: "deployer".to_owned(),
                    digest: digest(RELEASED),
                    model: version(2),
                    revision: None,
                    now: jiff::Timestamp::UNIX_EPOCH,
                    approvals: approvals
                        .into_iter()
                        .map(|(who, bound, number)| Approval {
                            approver: who.to_owned(),
                            at: jiff::Timestamp::UNIX_EPOCH,
                            reason: "ok".to_owned(),
                            digest: digest(if bound { RELEASED } else { OLDER }),
                            model: version(number),
                            revision: None,
                            expires: None,
                            authenticated: Ok(crate::approval::Authentication::Demo),
                        })
                        .collect(),
                }
            });
            (model, signatures, now, window_override, approvals).prop_map(
                |(model, signatures, now, window_override, approvals)| Evidence {
                    model,
                    scan: ScanReport {
                        artifact: "ghcr.io/acme/iris".to_owned(),
                        digests: vec![Digest::parse(RELEASED).expect("digest")],
                        findings: Vec::new(),
                    },
                    ignores: Vec::new(),
                    signatures,
                    now,
                    window_override,
                    approvals,
                },
            )
        }

        /// The checks `policy` configures, in report order, derived from the policy's fields (and
        /// whether provenance and an override were given, which add informational checks).
        fn configured(
            policy: &Policy,
            has_provenance: bool,
            overridden: bool,
        ) -> Vec<(String, String)> {
            let mut checks: Vec<(&str, String)> = Vec::new();
            if policy.model.require_ready {
                checks.push(("model", "status is READY".to_owned()));
            }
            for (metric, rule) in &policy.model.metrics {
                if let Some(min) = rule.min {
                    checks.push(("model", format!("{metric} >= {min}")));
                }
                if let Some(max) = rule.max {
                    checks.push(("model", format!("{metric} <= {max}")));
                }
                if let Some(tolerance) = rule.max_regression {
                    checks.push((
                        "model",
                        format!("{metric} no regression (tolerance {tolerance})"),
                    ));
                }
            }
            checks.push((
                "vulnerabilities",
                format!(
                    "no unignored findings at or above {}",
                    policy.vulnerabilities.fail_at
                ),
            ));
            // Without provenance, an unconfigured builder or source rule has nothing to report;
            // with provenance, it reports that any builder or source is accepted.
            let signatures = &policy.signatures;
            checks.push(("signatures", "signed by a trusted key".to_owned()));
            checks.push(("signatures", "provenance verified".to_owned()));
            if has_provenance || !signatures.trusted_builders.is_empty() {
                checks.push(("signatures", "builder is trusted".to_owned()));
            }
            if has_provenance || !signatures.source_repositories.is_empty() {
                checks.push(("signatures", "source repository allowed".to_owned()));
            }
            if has_provenance || !signatures.source_refs.is_empty() {
                checks.push(("signatures", "source ref allowed".to_owned()));
            }
            checks.push(("windows", "not in a deny window".to_owned()));
            checks.push(("windows", "inside an allow window".to_owned()));
            if overridden {
                checks.push(("windows", "override".to_owned()));
            }
            checks.push((
                "approvals",
                format!("{} distinct approval(s)", policy.approvals.required),
            ));
            checks
                .into_iter()
                .map(|(gate, name)| (gate.to_owned(), name))
                .collect()
        }

        proptest! {
            #[test]
            fn every_configured_check_appears_exactly_once(
                policy in policy(),
                evidence in evidence(),
            ) {
                let report = policy.evaluate(&evidence);
                let mut counts: BTreeMap<(String, String), usize> = BTreeMap::new();
                for check in &report.checks {
                    *counts.entry((check.gate.clone(), check.name.clone())).or_default() += 1;
                }
                let expected = configured(
                    &policy,
                    evidence.signatures.provenance.is_some(),
                    evidence.window_override.is_some(),
                );
                for key in &expected {
                    prop_assert_eq!(counts.get(key).copied(), Some(1), "{:?} in {:#?}", key, report.checks);
                }
                prop_assert_eq!(counts.len(), expected.len(), "unexpected checks: {:#?}", report.checks);
                let order = ["model", "vulnerabilities", "signatures", "windows", "approvals"];
                let ranks: Vec<usize> = report
                    .checks
                    .iter()
                    .map(|c| order.iter().position(|g| *g == c.gate).unwrap_or(usize::MAX))
                    .collect();
                prop_assert!(ranks.windows(2).all(|pair| pair[0] <= pair[1]), "gate order: {:?}", ranks);
            }
        }
    }
}
