//! The report's two charts as hand-written inline SVG: deployments per week (stacked by outcome)
//! and outcomes overall. Inline in HTML5, the `<svg>` elements need no `xmlns`, which would be
//! the page's only URL. No chart crate: two bar charts are a few dozen lines, and the page must
//! carry no external assets. Every bar has a `<title>` and a printed count, so colour is never
//! the only carrier of meaning.

use std::fmt::Write as _;

/// One week's revisions by outcome.
pub(crate) struct WeekBars<'a> {
    /// Label under the bar (the week's Monday, `MM-DD`).
    pub(crate) label: String,
    /// `(outcome, count)` in stacking order, bottom first.
    pub(crate) counts: Vec<(&'a str, usize)>,
}

/// Colour of an outcome's bars.
fn colour(outcome: &str) -> &'static str {
    match outcome {
        "promoted" => "#2e7d32",
        "rolled-back" => "#ef6c00",
        "aborted" => "#757575",
        "failed" => "#c62828",
        "paused" => "#1565c0",
        _ => "#6a1b9a",
    }
}

/// Escapes text for HTML and SVG content and attribute values.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(ch),
        }
    }
    out
}

/// Horizontal space one legend item takes.
fn legend_item_width(outcome: &str) -> u32 {
    24 + 7 * u32::try_from(outcome.len()).unwrap_or(10)
}

/// A legend row for `outcomes`, starting at x = 40.
fn legend(svg: &mut String, outcomes: &[&str], y: u32) {
    let mut x = 40;
    for outcome in outcomes {
        let _ = write!(
            svg,
            r#"<rect x="{x}" y="{}" width="10" height="10" fill="{}"/><text x="{}" y="{y}" font-size="11">{}</text>"#,
            y - 9,
            colour(outcome),
            x + 14,
            escape(outcome)
        );
        x += legend_item_width(outcome);
    }
}

/// Deployments per week: one stacked bar per week, its total printed above it.
pub(crate) fn weekly(weeks: &[WeekBars<'_>], outcomes: &[&str]) -> String {
    let bar = 28;
    let gap = 12;
    let plot_height = 160;
    let width = 60 + u32::try_from(weeks.len()).unwrap_or(0) * (bar + gap) + 20;
    let legend_width = 40 + outcomes.iter().map(|o| legend_item_width(o)).sum::<u32>() + 10;
    let width = width.max(legend_width).max(360);
    let max = weeks
        .iter()
        .map(|week| week.counts.iter().map(|(_, n)| n).sum::<usize>())
        .max()
        .unwrap_or(0)
        .max(1);
    let scale =
        |count: usize| u32::try_from(count * plot_height as usize / max).unwrap_or(plot_height);
    let base = 30 + plot_height;
    let mut svg = format!(
        r#"<svg role="img" aria-labelledby="weekly-title" width="{width}" height="{}" viewBox="0 0 {width} {}" font-family="sans-serif"><title id="weekly-title">Revisions per week by outcome</title>"#,
        base + 50,
        base + 50
    );
    let _ = write!(
        svg,
        r##"<line x1="40" y1="{base}" x2="{}" y2="{base}" stroke="#333"/><text x="36" y="{}" font-size="10" text-anchor="end">{max}</text><text x="36" y="{base}" font-size="10" text-anchor="end">0</text>"##,
        width - 10,
        base - plot_height + 4
    );
    for (idx, week) in weeks.iter().enumerate() {
        let x = 50 + u32::try_from(idx).unwrap_or(0) * (bar + gap);
        let mut top = base;
        let mut total = 0;
        for (outcome, count) in week.counts.iter().filter(|(_, n)| *n > 0) {
            let height = scale(*count).max(1);
            top -= height;
            total += count;
            let _ = write!(
                svg,
                r#"<rect x="{x}" y="{top}" width="{bar}" height="{height}" fill="{}"><title>week of {}: {count} {}</title></rect>"#,
                colour(outcome),
                escape(&week.label),
                escape(outcome)
            );
        }
        let _ = write!(
            svg,
            r#"<text x="{}" y="{}" font-size="11" text-anchor="middle">{total}</text><text x="{}" y="{}" font-size="10" text-anchor="middle">{}</text>"#,
            x + bar / 2,
            top - 4,
            x + bar / 2,
            base + 14,
            escape(&week.label)
        );
    }
    legend(&mut svg, outcomes, base + 40);
    svg.push_str("</svg>");
    svg
}

/// Outcomes overall: one horizontal bar per outcome with its count.
pub(crate) fn outcomes(counts: &[(&str, usize)]) -> String {
    let row = 24;
    let width = 420;
    let label_width = 100;
    let max = counts.iter().map(|(_, n)| *n).max().unwrap_or(0).max(1);
    let height = 20 + u32::try_from(counts.len()).unwrap_or(0) * row;
    let mut svg = format!(
        r#"<svg role="img" aria-labelledby="outcomes-title" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif"><title id="outcomes-title">Revisions by outcome</title>"#
    );
    for (idx, (outcome, count)) in counts.iter().enumerate() {
        let y = 10 + u32::try_from(idx).unwrap_or(0) * row;
        let length = u32::try_from(count * 260 / max).unwrap_or(260);
        let _ = write!(
            svg,
            r#"<text x="{}" y="{}" font-size="12" text-anchor="end">{}</text><rect x="{label_width}" y="{y}" width="{length}" height="16" fill="{}"><title>{count} {}</title></rect><text x="{}" y="{}" font-size="12">{count}</text>"#,
            label_width - 6,
            y + 12,
            escape(outcome),
            colour(outcome),
            escape(outcome),
            label_width + length + 6,
            y + 12
        );
    }
    svg.push_str("</svg>");
    svg
}
