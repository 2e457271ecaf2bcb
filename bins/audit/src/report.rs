//! `slipway-audit report`: one [`Report`] built from the trail, rendered as text (stdout),
//! Markdown, JSON and a self-contained HTML page with inline SVG charts.
//!
//! The renderers are plain `write!` over the same structure: no template engine, since four
//! short formats do not earn one's build time, and every value that came from the trail is
//! escaped in HTML (a reason or an approver's name may contain markup).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use serde::Serialize;
use slipway_audit_log::Event;
use slipway_core::ReleaseId;

use crate::svg::{self, escape};
use crate::trail::{self, Loaded};
use crate::{ChainVerdict, dora};

/// Outcomes in the order the report lists them.
const OUTCOMES: &[&str] = &["promoted", "rolled-back", "aborted", "failed", "paused"];

/// The period the figures cover.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub(crate) struct Period {
    pub(crate) since: Timestamp,
    pub(crate) until: Timestamp,
}

/// One revision.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub(crate) struct ReleaseRow {
    pub(crate) seq: u64,
    pub(crate) release: String,
    pub(crate) revision: u64,
    pub(crate) outcome: String,
    pub(crate) strategy: String,
    pub(crate) model: String,
    pub(crate) digest: String,
    pub(crate) actor: String,
    pub(crate) at: Timestamp,
    pub(crate) reason: Option<String>,
}

/// One approval.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub(crate) struct ApprovalRow {
    pub(crate) seq: u64,
    pub(crate) release: String,
    pub(crate) approver: String,
    pub(crate) model: String,
    pub(crate) digest: String,
    pub(crate) at: Timestamp,
    pub(crate) reason: String,
}

/// Revisions of one week (Monday 00:00 UTC onwards), by outcome.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub(crate) struct Week {
    pub(crate) week_of: Date,
    pub(crate) outcomes: BTreeMap<String, usize>,
}

/// How many revisions ended one way.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub(crate) struct OutcomeCount {
    pub(crate) outcome: String,
    pub(crate) revisions: usize,
}

/// Everything the report says.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub(crate) struct Report {
    /// Only this release, when `--release` was given.
    pub(crate) release: Option<String>,
    pub(crate) period: Period,
    pub(crate) chain: ChainVerdict,
    pub(crate) dora: dora::Dora,
    /// Revisions per outcome, in [`OUTCOMES`] order, zeros included.
    pub(crate) outcomes: Vec<OutcomeCount>,
    /// Every week of the period, empty ones included.
    pub(crate) weeks: Vec<Week>,
    pub(crate) releases: Vec<ReleaseRow>,
    pub(crate) approvals: Vec<ApprovalRow>,
    /// Pipeline decisions recorded (gates, analysis, overrides).
    pub(crate) decisions: usize,
}

fn monday_of(at: Timestamp) -> Date {
    let date = at.to_zoned(TimeZone::UTC).date();
    let back = i64::from(date.weekday().to_monday_zero_offset());
    date.checked_sub(jiff::Span::new().days(back))
        .unwrap_or(date)
}

/// Builds the report over `since..until` (default: the trail's first entry to just after its
/// last, so the same trail always gives the same report).
pub(crate) fn build(
    loaded: &Loaded,
    release: Option<&ReleaseId>,
    chain: ChainVerdict,
    since: Option<Timestamp>,
    until: Option<Timestamp>,
) -> Report {
    let selected = loaded.selected(release);
    let first = selected
        .first()
        .map_or(Timestamp::UNIX_EPOCH, |entry| entry.at);
    let last = selected.iter().map(|entry| entry.at).max().unwrap_or(first);
    let since = since.unwrap_or(first);
    let until = until.unwrap_or(last + SignedDuration::from_secs(1));
    let in_period = |at: Timestamp| at >= since && at < until;

    let records: Vec<slipway_core::ReleaseRecord> = trail::releases(selected.iter().copied())
        .into_iter()
        .cloned()
        .collect();
    let dora = dora::compute(&records, since, until);

    let mut releases = Vec::new();
    let mut approvals = Vec::new();
    let mut decisions = 0;
    for entry in selected.iter().filter(|entry| in_period(entry.at)) {
        match &entry.event {
            Event::Release(record) => releases.push(ReleaseRow {
                seq: entry.seq,
                release: record.release.to_string(),
                revision: record.revision,
                outcome: record.outcome.to_string(),
                strategy: record.strategy.to_string(),
                model: record.model.to_string(),
                digest: record.digest.to_string(),
                actor: record.actor.clone(),
                at: record.at,
                reason: record.reason.clone(),
            }),
            Event::Approval(approval) => approvals.push(ApprovalRow {
                seq: entry.seq,
                release: approval.release.to_string(),
                approver: approval.approver.clone(),
                model: approval.model.to_string(),
                digest: approval.digest.to_string(),
                at: approval.at,
                reason: approval.reason.clone(),
            }),
            Event::Decision { .. } => decisions += 1,
        }
    }

    let mut outcomes: Vec<OutcomeCount> = OUTCOMES
        .iter()
        .map(|outcome| OutcomeCount {
            outcome: (*outcome).to_owned(),
            revisions: 0,
        })
        .collect();
    let mut by_week: BTreeMap<Date, BTreeMap<String, usize>> = BTreeMap::new();
    let mut week = monday_of(since);
    let last_week = monday_of(until - SignedDuration::from_secs(1));
    while week <= last_week && by_week.len() < 520 {
        by_week.insert(week, BTreeMap::new());
        week = week
            .checked_add(jiff::Span::new().days(7))
            .unwrap_or(Date::MAX);
    }
    for row in &releases {
        match outcomes
            .iter_mut()
            .find(|count| count.outcome == row.outcome)
        {
            Some(count) => count.revisions += 1,
            None => outcomes.push(OutcomeCount {
                outcome: row.outcome.clone(),
                revisions: 1,
            }),
        }
        *by_week
            .entry(monday_of(row.at))
            .or_default()
            .entry(row.outcome.clone())
            .or_default() += 1;
    }
    Report {
        release: release.map(ToString::to_string),
        period: Period { since, until },
        chain,
        dora,
        outcomes,
        weeks: by_week
            .into_iter()
            .map(|(week_of, outcomes)| Week { week_of, outcomes })
            .collect(),
        releases,
        approvals,
        decisions,
    }
}

fn percent(value: Option<f64>) -> String {
    value.map_or_else(|| "n/a".to_owned(), |v| format!("{:.1}%", v * 100.0))
}

fn minutes(value: Option<f64>) -> String {
    value.map_or_else(|| "n/a".to_owned(), |v| format!("{v:.1} min"))
}

/// `(label, value)` rows of the DORA figures.
fn dora_rows(dora: &dora::Dora) -> Vec<(&'static str, String)> {
    vec![
        (
            "Deployments",
            format!(
                "{} ({:.2} per week)",
                dora.deployments, dora.deployments_per_week
            ),
        ),
        (
            "Change failure rate",
            format!(
                "{} ({} failed)",
                percent(dora.change_failure_rate),
                dora.failed_changes
            ),
        ),
        (
            "Mean time to restore",
            minutes(dora.mean_time_to_restore_minutes),
        ),
        ("Lead time for changes", crate::dora::lead_time_text(dora)),
    ]
}

fn chain_line(chain: &ChainVerdict) -> String {
    let signatures = if chain.trusted_keys.is_empty() {
        format!(
            "{} of {} entries signed, not checked",
            chain.signed_entries, chain.entries
        )
    } else {
        format!(
            "{} of {} entries signed, {} signature problem(s)",
            chain.signed_entries,
            chain.entries,
            chain.signature_problems.len()
        )
    };
    format!(
        "{}: {} entries, {} chain problem(s), {} damaged part(s); {signatures}",
        if chain.ok { "intact" } else { "BROKEN" },
        chain.entries,
        chain.problems.len(),
        chain.damage.len()
    )
}

fn chain_details(chain: &ChainVerdict) -> Vec<String> {
    chain
        .problems
        .iter()
        .chain(&chain.signature_problems)
        .map(|problem| format!("entry {}: {}", problem.seq, problem.problem))
        .chain(
            chain
                .damage
                .iter()
                .map(|damage| format!("{}: {}", damage.location, damage.detail)),
        )
        .collect()
}

fn scope(report: &Report) -> String {
    report.release.as_ref().map_or_else(
        || "all releases".to_owned(),
        |release| format!("release {release}"),
    )
}

/// The report as text for stdout.
pub(crate) fn text(report: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "audit report: {}, {} .. {}",
        scope(report),
        report.period.since,
        report.period.until
    );
    let _ = writeln!(out, "\nchain: {}", chain_line(&report.chain));
    for detail in chain_details(&report.chain) {
        let _ = writeln!(out, "  {detail}");
    }
    let _ = writeln!(out, "\nDORA");
    for (label, value) in dora_rows(&report.dora) {
        let _ = writeln!(out, "  {label:<22} {value}");
    }
    let _ = writeln!(out, "\noutcomes");
    for count in &report.outcomes {
        let _ = writeln!(
            out,
            "  {:<12} {:>3}  {}",
            count.outcome,
            count.revisions,
            "#".repeat(count.revisions)
        );
    }
    let _ = writeln!(out, "\nrevisions per week");
    for week in &report.weeks {
        let total: usize = week.outcomes.values().sum();
        let _ = writeln!(
            out,
            "  {}  {total:>3}  {}",
            week.week_of,
            week.outcomes
                .iter()
                .map(|(outcome, n)| format!("{n} {outcome}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let _ = writeln!(out, "\nreleases ({})", report.releases.len());
    for row in &report.releases {
        let _ = writeln!(
            out,
            "  {:>4}  {}  {} r{} {:<11} {} {} by {}{}",
            row.seq,
            row.at,
            row.release,
            row.revision,
            row.outcome,
            row.model,
            short(&row.digest),
            row.actor,
            row.reason
                .as_deref()
                .map(|reason| format!(": {reason}"))
                .unwrap_or_default()
        );
    }
    let _ = writeln!(out, "\napprovals ({})", report.approvals.len());
    for row in &report.approvals {
        let _ = writeln!(
            out,
            "  {:>4}  {}  {} {} approved {} {}: {}",
            row.seq,
            row.at,
            row.release,
            row.approver,
            row.model,
            short(&row.digest),
            row.reason
        );
    }
    let _ = writeln!(out, "\ndecisions recorded: {}", report.decisions);
    out.lines()
        .map(str::trim_end)
        .fold(String::new(), |mut text, line| {
            text.push_str(line);
            text.push('\n');
            text
        })
}

/// `sha256:` and the first 12 hex digits.
fn short(digest: &str) -> String {
    digest.chars().take(7 + 12).collect()
}

/// Escapes text from the trail for a Markdown table cell or list item: pipes, line breaks, and
/// HTML (GitHub renders some tags in step summaries).
fn cell(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('|', "\\|")
        .replace('\n', " ")
}

/// The report as Markdown.
pub(crate) fn markdown(report: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# Slipway audit report\n");
    let _ = writeln!(
        out,
        "{}, {} .. {}\n",
        scope(report),
        report.period.since,
        report.period.until
    );
    let _ = writeln!(out, "## Audit chain\n");
    let _ = writeln!(out, "**{}**\n", chain_line(&report.chain));
    let details = chain_details(&report.chain);
    for detail in &details {
        let _ = writeln!(out, "- {}", cell(detail));
    }
    if !details.is_empty() {
        out.push('\n');
    }
    if let Some(head) = &report.chain.head {
        let _ = writeln!(out, "Head: `{}:{}`\n", head.seq, head.hash);
    }
    let _ = writeln!(out, "## DORA\n\n| Metric | Value |\n|---|---|");
    for (label, value) in dora_rows(&report.dora) {
        let _ = writeln!(out, "| {label} | {value} |");
    }
    let _ = writeln!(out, "\n## Outcomes\n\n| Outcome | Revisions |\n|---|---:|");
    for count in &report.outcomes {
        let _ = writeln!(out, "| {} | {} |", count.outcome, count.revisions);
    }
    let _ = writeln!(
        out,
        "\n## Revisions per week\n\n| Week of | Revisions | By outcome |\n|---|---:|---|"
    );
    for week in &report.weeks {
        let total: usize = week.outcomes.values().sum();
        let by: Vec<String> = week
            .outcomes
            .iter()
            .map(|(outcome, n)| format!("{n} {outcome}"))
            .collect();
        let _ = writeln!(out, "| {} | {total} | {} |", week.week_of, by.join(", "));
    }
    let _ = writeln!(
        out,
        "\n## Releases\n\n| # | When | Release | Revision | Outcome | Strategy | Model | Digest | Actor | Reason |\n|---:|---|---|---:|---|---|---|---|---|---|"
    );
    for row in &report.releases {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | `{}` | {} | {} |",
            row.seq,
            row.at,
            cell(&row.release),
            row.revision,
            row.outcome,
            row.strategy,
            cell(&row.model),
            short(&row.digest),
            cell(&row.actor),
            cell(row.reason.as_deref().unwrap_or(""))
        );
    }
    let _ = writeln!(
        out,
        "\n## Approvals\n\n| # | When | Release | Approver | Model | Digest | Reason |\n|---:|---|---|---|---|---|---|"
    );
    for row in &report.approvals {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | `{}` | {} |",
            row.seq,
            row.at,
            cell(&row.release),
            cell(&row.approver),
            cell(&row.model),
            short(&row.digest),
            cell(&row.reason)
        );
    }
    let _ = writeln!(out, "\nDecisions recorded: {}", report.decisions);
    out
}

const STYLE: &str = "body{font-family:sans-serif;margin:2rem auto;max-width:72rem;color:#222}\
table{border-collapse:collapse;margin:0.5rem 0 1.5rem}th,td{border:1px solid #ccc;padding:0.25rem 0.5rem;text-align:left;font-size:0.9rem}\
th{background:#f3f3f3}code{font-size:0.85rem}.ok{color:#2e7d32}.broken{color:#c62828}\
.charts{display:flex;flex-wrap:wrap;gap:2rem}";

/// The report as one self-contained HTML page: inline CSS and SVG, no script, no URL.
pub(crate) fn html(report: &Report) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>Slipway audit report</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<h1>Slipway audit report</h1>\n<p>{}, {} .. {}</p>\n",
        escape(&scope(report)),
        report.period.since,
        report.period.until
    );
    let class = if report.chain.ok { "ok" } else { "broken" };
    let _ = write!(
        out,
        "<h2>Audit chain</h2>\n<p class=\"{class}\"><strong>{}</strong></p>\n",
        escape(&chain_line(&report.chain))
    );
    let details = chain_details(&report.chain);
    if !details.is_empty() {
        out.push_str("<ul>\n");
        for detail in details {
            let _ = writeln!(out, "<li>{}</li>", escape(&detail));
        }
        out.push_str("</ul>\n");
    }
    if let Some(head) = &report.chain.head {
        let _ = writeln!(
            out,
            "<p>Head: <code>{}:{}</code></p>",
            head.seq,
            escape(&head.hash)
        );
    }
    out.push_str("<h2>DORA</h2>\n<table>\n<tr><th>Metric</th><th>Value</th></tr>\n");
    for (label, value) in dora_rows(&report.dora) {
        let _ = writeln!(out, "<tr><td>{label}</td><td>{}</td></tr>", escape(&value));
    }
    out.push_str("</table>\n<h2>Charts</h2>\n<div class=\"charts\">\n<figure>\n");
    let weeks: Vec<svg::WeekBars<'_>> = report
        .weeks
        .iter()
        .map(|week| svg::WeekBars {
            label: week.week_of.strftime("%m-%d").to_string(),
            counts: OUTCOMES
                .iter()
                .map(|outcome| (*outcome, week.outcomes.get(*outcome).copied().unwrap_or(0)))
                .collect(),
        })
        .collect();
    out.push_str(&svg::weekly(&weeks, OUTCOMES));
    out.push_str("\n<figcaption>Revisions per week, by outcome (promoted revisions are deployments)</figcaption>\n</figure>\n<figure>\n");
    let counts: Vec<(&str, usize)> = report
        .outcomes
        .iter()
        .map(|count| (count.outcome.as_str(), count.revisions))
        .collect();
    out.push_str(&svg::outcomes(&counts));
    out.push_str("\n<figcaption>Revisions by outcome</figcaption>\n</figure>\n</div>\n");
    let _ = write!(
        out,
        "<h2>Releases ({})</h2>\n<table>\n<tr><th>#</th><th>When</th><th>Release</th><th>Revision</th><th>Outcome</th><th>Strategy</th><th>Model</th><th>Digest</th><th>Actor</th><th>Reason</th></tr>\n",
        report.releases.len()
    );
    for row in &report.releases {
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td><code title=\"{}\">{}</code></td><td>{}</td><td>{}</td></tr>",
            row.seq,
            row.at,
            escape(&row.release),
            row.revision,
            escape(&row.outcome),
            escape(&row.strategy),
            escape(&row.model),
            escape(&row.digest),
            escape(&short(&row.digest)),
            escape(&row.actor),
            escape(row.reason.as_deref().unwrap_or(""))
        );
    }
    let _ = write!(
        out,
        "</table>\n<h2>Approvals ({})</h2>\n<table>\n<tr><th>#</th><th>When</th><th>Release</th><th>Approver</th><th>Model</th><th>Digest</th><th>Reason</th></tr>\n",
        report.approvals.len()
    );
    for row in &report.approvals {
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td><code title=\"{}\">{}</code></td><td>{}</td></tr>",
            row.seq,
            row.at,
            escape(&row.release),
            escape(&row.approver),
            escape(&row.model),
            escape(&row.digest),
            escape(&short(&row.digest)),
            escape(&row.reason)
        );
    }
    let _ = write!(
        out,
        "</table>\n<p>Decisions recorded: {}</p>\n</body>\n</html>\n",
        report.decisions
    );
    out
}
