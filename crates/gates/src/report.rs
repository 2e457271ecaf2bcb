//! [`GateReport`]: the list of checks a gate ran, and its verdict.

use serde::Serialize;

/// How one check ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckStatus {
    /// The evidence satisfies the rule.
    Pass,
    /// The evidence breaks the rule.
    Fail,
    /// The rule could not apply (e.g. nothing serves yet, so no regression check); says why.
    Skip,
}

impl CheckStatus {
    /// Lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            CheckStatus::Pass => "pass",
            CheckStatus::Fail => "fail",
            CheckStatus::Skip => "skip",
        }
    }
}

/// One configured rule and how the evidence fared against it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Check {
    /// Which gate (e.g. `model`, `vulnerabilities`).
    pub gate: String,
    /// Which rule (e.g. `accuracy >= 0.85`).
    pub name: String,
    /// Outcome.
    pub status: CheckStatus,
    /// Why, in a sentence with the numbers.
    pub reason: String,
}

/// Every check a gate ran. The gate passes when no check failed.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct GateReport {
    /// The checks, in policy order.
    pub checks: Vec<Check>,
}

impl GateReport {
    /// Adds a check.
    pub fn push(&mut self, gate: &str, name: impl Into<String>, status: CheckStatus, reason: impl Into<String>) {
        self.checks.push(Check { gate: gate.to_owned(), name: name.into(), status, reason: reason.into() });
    }

    /// True when no check failed.
    pub fn passed(&self) -> bool {
        self.checks.iter().all(|check| check.status != CheckStatus::Fail)
    }

    /// The failed checks.
    pub fn failures(&self) -> impl Iterator<Item = &Check> {
        self.checks.iter().filter(|check| check.status == CheckStatus::Fail)
    }

    /// Appends another report's checks.
    pub fn extend(&mut self, other: GateReport) {
        self.checks.extend(other.checks);
    }

    /// One line summary: `3 passed, 1 failed, 0 skipped`.
    pub fn summary(&self) -> String {
        let count = |status| self.checks.iter().filter(|check| check.status == status).count();
        format!(
            "{} passed, {} failed, {} skipped",
            count(CheckStatus::Pass),
            count(CheckStatus::Fail),
            count(CheckStatus::Skip)
        )
    }
}
