//! The vulnerability gate: fail on findings at or above a severity threshold, after applying the
//! team's ignore rules, while still reporting every finding and every decision.
//!
//! Trivy's `--severity` drops findings below the threshold from its output and `--exit-code`
//! counts only those (trivy#1875), so a report cannot both gate on HIGH and show MEDIUM. Here the
//! threshold only decides which findings *block*; [`VulnReport`] keeps all of them.
//!
//! Ignore rules ([`IgnoreRule`], parsed from `.trivyignore` files by `slipway-scanner`) apply
//! while today is before their expiry. An expired rule stops applying, and the report says so
//! next to the finding it used to cover, so a lapsed exception is visible rather than silent.
//!
//! Pure: the caller supplies today's date and the already-parsed rules.

use jiff::civil::Date;
use serde::{Deserialize, Serialize};
pub use slipway_scanner::IgnoreRule;
use slipway_scanner::{Finding, ScanReport, Severity};

use crate::{CheckStatus, GateReport};

const GATE: &str = "vulnerabilities";

/// The vulnerability gate's policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VulnPolicy {
    /// Findings at or above this severity block the release (default `HIGH`: CRITICAL and HIGH).
    pub fail_at: Severity,
    /// Ignore findings with no fixed version (Trivy's `--ignore-unfixed`).
    #[serde(default)]
    pub ignore_unfixed: bool,
    /// Accepted vulnerabilities, applied before rules from ignore files.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ignore: Vec<IgnoreRule>,
}

impl Default for VulnPolicy {
    fn default() -> VulnPolicy {
        VulnPolicy {
            fail_at: Severity::High,
            ignore_unfixed: false,
            ignore: Vec::new(),
        }
    }
}

/// Why a finding does not count.
#[derive(Debug, Clone, PartialEq)]
pub enum IgnoreReason {
    /// An ignore rule covers it.
    Rule(IgnoreRule),
    /// No fix exists and the policy ignores unfixed findings.
    Unfixed,
}

/// What the gate decided about one finding.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// At or above the threshold and not ignored: the release is refused.
    Blocking,
    /// Below the threshold: reported, not blocking.
    BelowThreshold,
    /// Ignored, with the reason.
    Ignored(IgnoreReason),
}

/// One finding and the decision on it.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// The finding.
    pub finding: Finding,
    /// The decision.
    pub verdict: Verdict,
    /// A rule that would have ignored the finding but has expired.
    pub expired_rule: Option<IgnoreRule>,
}

impl Decision {
    /// The decision in one sentence, with the rule origin, expiry and statement when ignored.
    pub fn explain(&self, fail_at: Severity) -> String {
        let finding = &self.finding;
        let mut text = match &self.verdict {
            Verdict::Blocking => format!(
                "{} is at or above the {fail_at} threshold",
                finding.severity
            ),
            Verdict::BelowThreshold => {
                format!("{} is below the {fail_at} threshold", finding.severity)
            }
            Verdict::Ignored(IgnoreReason::Unfixed) => {
                format!(
                    "ignored: no fixed version (status {}) and ignore_unfixed is on",
                    finding.status
                )
            }
            Verdict::Ignored(IgnoreReason::Rule(rule)) => {
                let mut text = format!("ignored by {}", origin(rule));
                match rule.expires {
                    Some(expires) => text.push_str(&format!(" until {expires}")),
                    None => text.push_str(" (no expiry)"),
                }
                if let Some(statement) = &rule.statement {
                    text.push_str(&format!(": {statement}"));
                }
                text
            }
        };
        if let Some(rule) = &self.expired_rule
            && let Some(expires) = rule.expires
        {
            text.push_str(&format!(
                "; the ignore rule in {} expired on {expires} and no longer applies",
                origin(rule)
            ));
        }
        text
    }
}

fn origin(rule: &IgnoreRule) -> &str {
    if rule.origin.is_empty() {
        "policy"
    } else {
        &rule.origin
    }
}

/// Every finding with its decision, plus the rules that expired.
#[derive(Debug, Clone, PartialEq)]
pub struct VulnReport {
    /// What the scanner says it scanned.
    pub artifact: String,
    /// The threshold applied.
    pub fail_at: Severity,
    /// The date expiries were judged against.
    pub today: Date,
    /// One decision per finding, in report order.
    pub decisions: Vec<Decision>,
    /// Rules (policy and files) that have expired, whether or not they matched a finding.
    pub expired_rules: Vec<IgnoreRule>,
}

impl VulnReport {
    /// True when no finding blocks.
    pub fn passed(&self) -> bool {
        self.blocking().next().is_none()
    }

    /// The findings that block the release.
    pub fn blocking(&self) -> impl Iterator<Item = &Decision> {
        self.decisions
            .iter()
            .filter(|decision| decision.verdict == Verdict::Blocking)
    }

    /// The ignored findings.
    pub fn ignored(&self) -> impl Iterator<Item = &Decision> {
        self.decisions
            .iter()
            .filter(|decision| matches!(decision.verdict, Verdict::Ignored(_)))
    }

    /// Number of findings per severity, most severe first, ignored ones included (all five
    /// severities are listed, zeros too).
    pub fn counts(&self) -> Vec<(Severity, usize)> {
        Severity::ALL_DESCENDING
            .into_iter()
            .map(|severity| {
                (
                    severity,
                    self.decisions
                        .iter()
                        .filter(|decision| decision.finding.severity == severity)
                        .count(),
                )
            })
            .collect()
    }

    /// `CRITICAL 1, HIGH 2, MEDIUM 0, LOW 0, UNKNOWN 0`.
    pub fn counts_line(&self) -> String {
        self.counts()
            .iter()
            .map(|(severity, n)| format!("{severity} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The gate's checks: one for the threshold, one (skipped) per ignored finding and per expired
    /// rule, so the pipeline's report lists every exception taken.
    pub fn gate_report(&self) -> GateReport {
        let mut report = GateReport::default();
        let name = format!("no unignored findings at or above {}", self.fail_at);
        let blocking: Vec<String> = self
            .blocking()
            .map(|d| {
                format!(
                    "{} in {} ({})",
                    d.finding.id, d.finding.package, d.finding.severity
                )
            })
            .collect();
        if blocking.is_empty() {
            report.push(
                GATE,
                name,
                CheckStatus::Pass,
                format!(
                    "none block ({} findings: {})",
                    self.decisions.len(),
                    self.counts_line()
                ),
            );
        } else {
            report.push(
                GATE,
                name,
                CheckStatus::Fail,
                format!(
                    "{} block: {} ({} findings: {})",
                    blocking.len(),
                    blocking.join(", "),
                    self.decisions.len(),
                    self.counts_line()
                ),
            );
        }
        for decision in self.ignored() {
            report.push(
                GATE,
                format!(
                    "ignore {} in {}",
                    decision.finding.id, decision.finding.package
                ),
                CheckStatus::Skip,
                decision.explain(self.fail_at),
            );
        }
        for rule in &self.expired_rules {
            let expires = rule
                .expires
                .map(|date| date.to_string())
                .unwrap_or_default();
            report.push(
                GATE,
                format!("ignore {}", rule.id),
                CheckStatus::Skip,
                format!(
                    "rule in {} expired on {expires} and no longer applies",
                    origin(rule)
                ),
            );
        }
        report
    }
}

/// Judges every finding of `report`: policy rules first, then `ignores` (from ignore files), then
/// ignore-unfixed, then the threshold. Expiry is judged against `today`.
pub fn evaluate(
    policy: &VulnPolicy,
    report: &ScanReport,
    ignores: &[IgnoreRule],
    today: Date,
) -> VulnReport {
    let rules: Vec<&IgnoreRule> = policy.ignore.iter().chain(ignores).collect();
    let decisions = report
        .findings
        .iter()
        .map(|finding| {
            let matching = || rules.iter().copied().filter(|rule| rule.matches(finding));
            let active = matching().find(|rule| !rule.is_expired(today));
            let expired_rule = matching().find(|rule| rule.is_expired(today)).cloned();
            let verdict = match active {
                Some(rule) => Verdict::Ignored(IgnoreReason::Rule(rule.clone())),
                None if policy.ignore_unfixed && !finding.has_fix() => {
                    Verdict::Ignored(IgnoreReason::Unfixed)
                }
                None if finding.severity >= policy.fail_at => Verdict::Blocking,
                None => Verdict::BelowThreshold,
            };
            // The expired rule only matters when it is not shadowed by an active one.
            let expired_rule = if active.is_some() { None } else { expired_rule };
            Decision {
                finding: finding.clone(),
                verdict,
                expired_rule,
            }
        })
        .collect();
    let expired_rules = rules
        .iter()
        .filter(|rule| rule.is_expired(today))
        .map(|rule| (*rule).clone())
        .collect();
    VulnReport {
        artifact: report.artifact.clone(),
        fail_at: policy.fail_at,
        today,
        decisions,
        expired_rules,
    }
}

/// The SARIF `level` for a decision: blocking findings are errors, the rest warnings (ignored
/// ones additionally carry a suppression).
fn sarif_level(verdict: &Verdict) -> &'static str {
    match verdict {
        Verdict::Blocking => "error",
        Verdict::BelowThreshold | Verdict::Ignored(_) => "warning",
    }
}

/// GitHub's `security-severity`: the highest CVSS v3 score, else Trivy's stand-in per severity.
fn security_severity(finding: &Finding) -> String {
    let score = finding
        .max_cvss_v3()
        .map(|(_, score)| score)
        .unwrap_or(match finding.severity {
            Severity::Critical => 9.5,
            Severity::High => 8.0,
            Severity::Medium => 5.5,
            Severity::Low => 2.0,
            Severity::Unknown => 0.0,
        });
    format!("{score:.1}")
}

/// The report as SARIF 2.1.0 for GitHub code scanning: one rule per vulnerability id, one result
/// per finding, `level` from the decision (`error` blocks), and ignored findings as results with
/// an `accepted` suppression carrying the reason, so code scanning shows them as dismissed rather
/// than dropping them. Layout follows Trivy's own `--format sarif` so dashboards keep working.
pub fn sarif(report: &VulnReport, tool_version: &str) -> serde_json::Value {
    use serde_json::json;
    let mut rule_ids: Vec<&str> = Vec::new();
    let mut rules = Vec::new();
    let mut results = Vec::new();
    for decision in &report.decisions {
        let finding = &decision.finding;
        let rule_idx = match rule_ids.iter().position(|id| *id == finding.id) {
            Some(idx) => idx,
            None => {
                rule_ids.push(&finding.id);
                let title = finding.title.clone().unwrap_or_else(|| finding.id.clone());
                let url = finding.primary_url.clone().unwrap_or_default();
                let name = match finding.class {
                    slipway_scanner::PackageClass::Language => {
                        "LanguageSpecificPackageVulnerability"
                    }
                    _ => "OsPackageVulnerability",
                };
                let mut rule = json!({
                    "id": finding.id,
                    "name": name,
                    "shortDescription": { "text": title },
                    "fullDescription": { "text": title },
                    "defaultConfiguration": { "level": sarif_level(&decision.verdict) },
                    "help": {
                        "text": format!("Vulnerability {}\nSeverity: {}\nPackage: {}\nFixed Version: {}\nLink: {url}",
                            finding.id, finding.severity, finding.package, finding.fixed_version.as_deref().unwrap_or("none")),
                        "markdown": format!("**Vulnerability {}**\n| Severity | Package | Fixed Version | Link |\n| --- | --- | --- | --- |\n|{}|{}|{}|{}|",
                            finding.id, finding.severity, md_cell(&finding.package), md_cell(finding.fixed_version.as_deref().unwrap_or("none")), md_link(&finding.id, &url)),
                    },
                    "properties": {
                        "precision": "very-high",
                        "security-severity": security_severity(finding),
                        "tags": ["vulnerability", "security", finding.severity.as_str()],
                    },
                });
                if !url.is_empty() {
                    rule["helpUri"] = json!(url);
                }
                rules.push(rule);
                rule_ids.len() - 1
            }
        };
        let uri = finding
            .package_path
            .clone()
            .unwrap_or_else(|| report.artifact.clone());
        let mut result = json!({
            "ruleId": finding.id,
            "ruleIndex": rule_idx,
            "level": sarif_level(&decision.verdict),
            "message": { "text": format!(
                "Package: {}\nInstalled Version: {}\nVulnerability {}\nSeverity: {}\nFixed Version: {}\nStatus: {}\nLink: {}\nDecision: {}",
                finding.package, finding.installed_version, finding.id, finding.severity,
                finding.fixed_version.as_deref().unwrap_or("none"), finding.status,
                md_link(&finding.id, finding.primary_url.as_deref().unwrap_or_default()),
                decision.explain(report.fail_at)) },
            "locations": [{
                "physicalLocation": {
                    "artifactLocation": { "uri": uri, "uriBaseId": "ROOTPATH" },
                    "region": { "startLine": 1, "startColumn": 1, "endLine": 1, "endColumn": 1 },
                },
                "message": { "text": format!("{}: {}@{}", finding.target, finding.package, finding.installed_version) },
            }],
        });
        if matches!(decision.verdict, Verdict::Ignored(_)) {
            result["suppressions"] = json!([{ "kind": "external", "status": "accepted", "justification": decision.explain(report.fail_at) }]);
        }
        results.push(result);
    }
    json!({
        "version": "2.1.0",
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "runs": [{
            "tool": { "driver": {
                "name": "Slipway",
                "fullName": "Slipway vulnerability gate",
                "informationUri": "https://github.com/slipway-dev/slipway",
                "version": tool_version,
                "rules": rules,
            } },
            "results": results,
            "columnKind": "utf16CodeUnits",
            "originalUriBaseIds": { "ROOTPATH": { "uri": "file:///" } },
            "properties": { "artifact": report.artifact, "failAt": report.fail_at.as_str(), "passed": report.passed() },
        }],
    })
}

/// Escapes a Markdown table cell.
fn md_cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

fn md_link(text: &str, url: &str) -> String {
    if url.is_empty() {
        md_cell(text)
    } else {
        format!("[{}]({url})", md_cell(text))
    }
}

/// A Markdown summary for a pull-request comment or job summary: verdict, counts per severity,
/// a table of every finding with its decision, the ignored findings with reason and expiry, and
/// the expired rules.
pub fn markdown(report: &VulnReport) -> String {
    let n_blocking = report.blocking().count();
    let verdict = if report.passed() { "PASS" } else { "FAIL" };
    let mut out = format!(
        "### Vulnerability gate: {verdict} ({n_blocking} blocking at or above {})\n\n`{}`: {} findings\n\n",
        report.fail_at,
        md_cell(&report.artifact),
        report.decisions.len()
    );
    out.push_str("| Severity | Findings | Blocking | Ignored |\n| --- | ---: | ---: | ---: |\n");
    for (severity, n) in report.counts() {
        let count = |pred: &dyn Fn(&Verdict) -> bool| {
            report
                .decisions
                .iter()
                .filter(|d| d.finding.severity == severity && pred(&d.verdict))
                .count()
        };
        out.push_str(&format!(
            "| {severity} | {n} | {} | {} |\n",
            count(&|v| *v == Verdict::Blocking),
            count(&|v| matches!(v, Verdict::Ignored(_)))
        ));
    }
    if !report.decisions.is_empty() {
        out.push_str(
            "\n| Decision | Severity | ID | Package | Installed | Fixed | Status | Target |\n",
        );
        out.push_str("| --- | --- | --- | --- | --- | --- | --- | --- |\n");
        for decision in &report.decisions {
            let finding = &decision.finding;
            let label = match decision.verdict {
                Verdict::Blocking => "**blocking**",
                Verdict::BelowThreshold => "allowed",
                Verdict::Ignored(_) => "ignored",
            };
            out.push_str(&format!(
                "| {label} | {} | {} | {} | {} | {} | {} | {} |\n",
                finding.severity,
                md_link(
                    &finding.id,
                    finding.primary_url.as_deref().unwrap_or_default()
                ),
                md_cell(&finding.package),
                md_cell(&finding.installed_version),
                md_cell(finding.fixed_version.as_deref().unwrap_or("")),
                finding.status,
                md_cell(&finding.target),
            ));
        }
    }
    let ignored: Vec<&Decision> = report.ignored().collect();
    if !ignored.is_empty() {
        out.push_str(
            "\n**Ignored**\n\n| ID | Package | Reason | Expires |\n| --- | --- | --- | --- |\n",
        );
        for decision in ignored {
            let expires = match &decision.verdict {
                Verdict::Ignored(IgnoreReason::Rule(rule)) => rule
                    .expires
                    .map_or_else(|| "never".to_owned(), |date| date.to_string()),
                _ => "n/a".to_owned(),
            };
            out.push_str(&format!(
                "| {} | {} | {} | {expires} |\n",
                md_cell(&decision.finding.id),
                md_cell(&decision.finding.package),
                md_cell(&decision.explain(report.fail_at))
            ));
        }
    }
    if !report.expired_rules.is_empty() {
        out.push_str("\n**Expired ignore rules (no longer applied)**\n\n| ID | Expired | Rule |\n| --- | --- | --- |\n");
        for rule in &report.expired_rules {
            let expires = rule
                .expires
                .map(|date| date.to_string())
                .unwrap_or_default();
            out.push_str(&format!(
                "| {} | {expires} | {} |\n",
                md_cell(&rule.id),
                md_cell(origin(rule))
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use jiff::civil::date;
    use slipway_scanner::{Finding, ScanReport, Severity};

    use super::*;

    fn report(findings: Vec<Finding>) -> ScanReport {
        ScanReport {
            artifact: "app".to_owned(),
            digests: Vec::new(),
            findings,
        }
    }

    fn rule(id: &str, expires: Option<Date>) -> IgnoreRule {
        IgnoreRule {
            expires,
            origin: ".trivyignore:1".to_owned(),
            ..IgnoreRule::new(id)
        }
    }

    /// Evaluates and renders each decision as `id: verdict-sentence`, plus the pass flag.
    #[track_caller]
    fn check(
        policy: &VulnPolicy,
        ignores: &[IgnoreRule],
        findings: Vec<Finding>,
        expect: &[&str],
        passed: bool,
    ) {
        let result = evaluate(policy, &report(findings), ignores, date(2025, 6, 1));
        let got: Vec<String> = result
            .decisions
            .iter()
            .map(|d| format!("{}: {}", d.finding.id, d.explain(result.fail_at)))
            .collect();
        assert_eq!(got, expect);
        assert_eq!(result.passed(), passed);
    }

    fn finding(id: &str, severity: Severity, fixed: Option<&str>) -> Finding {
        Finding::new(id, "openssl", "1.0", fixed.map(str::to_owned), severity)
    }

    #[test]
    fn threshold_blocks_at_or_above_and_reports_all() {
        check(
            &VulnPolicy::default(),
            &[],
            vec![
                finding("CVE-1", Severity::Critical, Some("1.1")),
                finding("CVE-2", Severity::High, None),
                finding("CVE-3", Severity::Medium, Some("1.1")),
            ],
            &[
                "CVE-1: CRITICAL is at or above the HIGH threshold",
                "CVE-2: HIGH is at or above the HIGH threshold",
                "CVE-3: MEDIUM is below the HIGH threshold",
            ],
            false,
        );
    }

    #[test]
    fn ignore_rules_with_future_and_past_expiry() {
        check(
            &VulnPolicy::default(),
            &[
                rule("CVE-1", Some(date(2030, 1, 1))),
                rule("CVE-2", Some(date(2025, 6, 1))),
                rule("CVE-3", None),
            ],
            vec![
                finding("CVE-1", Severity::Critical, Some("1.1")),
                finding("CVE-2", Severity::High, Some("1.1")),
                finding("CVE-3", Severity::High, Some("1.1")),
            ],
            &[
                "CVE-1: ignored by .trivyignore:1 until 2030-01-01",
                "CVE-2: HIGH is at or above the HIGH threshold; the ignore rule in .trivyignore:1 expired on 2025-06-01 and no longer applies",
                "CVE-3: ignored by .trivyignore:1 (no expiry)",
            ],
            false,
        );
    }

    #[test]
    fn ignore_unfixed_and_policy_rules() {
        let policy = VulnPolicy {
            ignore_unfixed: true,
            ignore: vec![IgnoreRule {
                statement: Some("not reachable".to_owned()),
                ..IgnoreRule::new("CVE-1")
            }],
            ..VulnPolicy::default()
        };
        check(
            &policy,
            &[],
            vec![
                finding("CVE-1", Severity::Critical, Some("1.1")),
                finding("CVE-2", Severity::Critical, None),
            ],
            &[
                "CVE-1: ignored by policy (no expiry): not reachable",
                "CVE-2: ignored: no fixed version (status affected) and ignore_unfixed is on",
            ],
            true,
        );
    }

    #[test]
    fn gate_report_lists_exceptions_and_expired_rules() {
        let ignores = [
            rule("CVE-1", Some(date(2030, 1, 1))),
            rule("CVE-9", Some(date(2020, 1, 1))),
        ];
        let result = evaluate(
            &VulnPolicy::default(),
            &report(vec![
                finding("CVE-1", Severity::Critical, None),
                finding("CVE-2", Severity::Low, None),
            ]),
            &ignores,
            date(2025, 6, 1),
        );
        let gate = result.gate_report();
        assert!(gate.passed());
        let lines: Vec<String> = gate
            .checks
            .iter()
            .map(|c| format!("{} | {} | {}", c.status.as_str(), c.name, c.reason))
            .collect();
        assert_eq!(
            lines,
            [
                "pass | no unignored findings at or above HIGH | none block (2 findings: CRITICAL 1, HIGH 0, MEDIUM 0, LOW 1, UNKNOWN 0)",
                "skip | ignore CVE-1 in openssl | ignored by .trivyignore:1 until 2030-01-01",
                "skip | ignore CVE-9 | rule in .trivyignore:1 expired on 2020-01-01 and no longer applies",
            ]
        );
    }

    #[test]
    fn policy_round_trips_and_rejects_unknown_fields() {
        let policy: VulnPolicy = serde_json::from_str(
            r#"{"fail_at":"CRITICAL","ignore_unfixed":true,"ignore":[{"id":"CVE-1","expires":"2030-01-01"}]}"#,
        )
        .expect("valid policy");
        assert_eq!(policy.fail_at, Severity::Critical);
        assert_eq!(policy.ignore[0].expires, Some(date(2030, 1, 1)));
        let err = serde_json::from_str::<VulnPolicy>(r#"{"fail_at":"HIGH","fail_on":"LOW"}"#)
            .expect_err("unknown field");
        assert!(err.to_string().contains("unknown field `fail_on`"), "{err}");
    }
}
