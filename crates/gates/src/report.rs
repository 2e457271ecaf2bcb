//! [`GateReport`]: the list of checks a gate ran, and its verdict, rendered as text (terminal),
//! Markdown (a GitHub step summary) or JSON (through `serde`).
//!
//! Rendering lives here rather than in `cli` because the three forms must say the same thing
//! and are snapshot-tested together; the JSON form is `GateReport`'s own `Serialize`.

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
    pub fn push(
        &mut self,
        gate: &str,
        name: impl Into<String>,
        status: CheckStatus,
        reason: impl Into<String>,
    ) {
        self.checks.push(Check {
            gate: gate.to_owned(),
            name: name.into(),
            status,
            reason: reason.into(),
        });
    }

    /// True when no check failed.
    pub fn passed(&self) -> bool {
        self.checks
            .iter()
            .all(|check| check.status != CheckStatus::Fail)
    }

    /// The failed checks.
    pub fn failures(&self) -> impl Iterator<Item = &Check> {
        self.checks
            .iter()
            .filter(|check| check.status == CheckStatus::Fail)
    }

    /// Appends another report's checks.
    pub fn extend(&mut self, other: GateReport) {
        self.checks.extend(other.checks);
    }

    /// The verdict as a word: `passed` or `failed`.
    pub fn verdict(&self) -> &'static str {
        if self.passed() { "passed" } else { "failed" }
    }

    /// Plain text for a terminal: one line per check, then the verdict and the counts.
    ///
    /// Status words are spelled out (no colour), so the text reads the same piped or with
    /// `NO_COLOR`.
    pub fn render_text(&self) -> String {
        let mut out = String::new();
        let gate_width = self
            .checks
            .iter()
            .map(|check| check.gate.len())
            .max()
            .unwrap_or(0);
        for check in &self.checks {
            out.push_str(&format!(
                "{:<4}  {:<gate_width$}  {}: {}\n",
                check.status.as_str(),
                check.gate,
                check.name,
                one_line(&check.reason),
            ));
        }
        if self.checks.is_empty() {
            out.push_str("no checks ran\n");
        }
        out.push_str(&format!("gates {}: {}\n", self.verdict(), self.summary()));
        out
    }

    /// Markdown for a GitHub step summary: a heading with the verdict, the counts, and a table
    /// `gate | check | result | reason`. Cell text has `|` escaped and line breaks turned into
    /// `<br>`, so a reason can never break the table.
    pub fn render_markdown(&self) -> String {
        let mut out = format!(
            "### Release gates: {}\n\n{}\n",
            self.verdict(),
            self.summary()
        );
        if self.checks.is_empty() {
            out.push_str("\nNo checks ran.\n");
            return out;
        }
        out.push_str("\n| gate | check | result | reason |\n| --- | --- | --- | --- |\n");
        for check in &self.checks {
            let result = match check.status {
                CheckStatus::Pass => "✅ pass",
                CheckStatus::Fail => "❌ fail",
                CheckStatus::Skip => "➖ skip",
            };
            out.push_str(&format!(
                "| {} | {} | {} | {} |\n",
                markdown_cell(&check.gate),
                markdown_cell(&check.name),
                result,
                markdown_cell(&check.reason),
            ));
        }
        out
    }

    /// One line summary: `3 passed, 1 failed, 0 skipped`.
    pub fn summary(&self) -> String {
        let count = |status| {
            self.checks
                .iter()
                .filter(|check| check.status == status)
                .count()
        };
        format!(
            "{} passed, {} failed, {} skipped",
            count(CheckStatus::Pass),
            count(CheckStatus::Fail),
            count(CheckStatus::Skip)
        )
    }
}

/// Keeps a text line a single line.
fn one_line(text: &str) -> String {
    text.replace("\r\n", " ").replace(['\n', '\r'], " ")
}

/// Escapes text for a Markdown table cell: `|` would end the cell, a line break the row, and `<`
/// could open an HTML tag.
fn markdown_cell(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('|', "\\|")
        .replace('<', "&lt;")
        .replace("\r\n", "<br>")
        .replace(['\n', '\r'], "<br>")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pass, fail and skip, with a reason holding `|` and a line break.
    fn report() -> GateReport {
        let mut report = GateReport::default();
        report.push(
            "model",
            "status is READY",
            CheckStatus::Pass,
            "iris/2 is READY",
        );
        report.push(
            "model",
            "accuracy >= 0.85",
            CheckStatus::Fail,
            "accuracy is 0.81",
        );
        report.push(
            "model",
            "accuracy no regression (tolerance 0.01)",
            CheckStatus::Skip,
            "nothing serves yet",
        );
        report.push(
            "signatures",
            "signed by a trusted key",
            CheckStatus::Pass,
            "verified by `release|ci` (untrusted: `old`)\nsecond line",
        );
        report
    }

    #[test]
    fn text() {
        insta::assert_snapshot!(report().render_text());
    }

    #[test]
    fn markdown() {
        insta::assert_snapshot!(report().render_markdown());
    }

    #[test]
    fn json() {
        insta::assert_json_snapshot!(report());
    }

    #[test]
    fn empty_report_passes_and_says_so() {
        let empty = GateReport::default();
        assert!(empty.passed());
        assert_eq!(
            empty.render_text(),
            "no checks ran\ngates passed: 0 passed, 0 failed, 0 skipped\n"
        );
        assert!(empty.render_markdown().ends_with("No checks ran.\n"));
    }

    #[test]
    fn markdown_cells_cannot_break_the_table() {
        for (input, want) in [
            ("a|b", "a\\|b"),
            ("a\\|b", "a\\\\\\|b"),
            ("one\ntwo", "one<br>two"),
            ("one\r\ntwo", "one<br>two"),
            ("plain `code`", "plain `code`"),
            ("<who>", "&lt;who>"),
        ] {
            assert_eq!(markdown_cell(input), want, "input {input:?}");
        }
    }
}
