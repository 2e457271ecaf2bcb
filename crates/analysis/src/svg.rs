//! A small SVG line chart, written as a string: canary against baseline over time.
//!
//! Hand-written rather than a charting crate: the record needs one kind of chart (lines over
//! time, an optional threshold), and the output must be byte-stable for snapshot tests and
//! viewable anywhere an `<img>` is (pull requests, release notes), with no scripts or fonts.

use std::fmt::Write as _;

use jiff::Timestamp;

use crate::compare::short_value;

/// One line of a panel.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    /// Legend text.
    pub label: String,
    /// Stroke colour, e.g. `#d62728`.
    pub color: String,
    /// Points in time order.
    pub points: Vec<(Timestamp, f64)>,
}

/// One chart panel: a title, lines and an optional horizontal threshold.
#[derive(Debug, Clone, PartialEq)]
pub struct Panel {
    /// Shown above the plot.
    pub title: String,
    /// The lines.
    pub lines: Vec<Line>,
    /// A dashed horizontal line with its label.
    pub threshold: Option<(String, f64)>,
}

const WIDTH: f64 = 720.0;
const PANEL_HEIGHT: f64 = 220.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 46.0;
const BOTTOM: f64 = 34.0;

/// Canary colour.
pub const CANARY: &str = "#d62728";
/// Baseline colour.
pub const BASELINE: &str = "#1f77b4";

/// Renders panels stacked vertically under `title`. Non-finite points are skipped; a panel
/// without points says "no data".
pub fn chart(title: &str, panels: &[Panel]) -> String {
    let height = 30.0 + PANEL_HEIGHT * panels.len().max(1) as f64;
    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="11">"#
    );
    let _ = writeln!(
        out,
        r#"<rect width="{WIDTH}" height="{height}" fill="white"/>"#
    );
    let _ = writeln!(
        out,
        r#"<text x="{}" y="20" font-size="14" font-weight="bold">{}</text>"#,
        LEFT,
        escape(title)
    );
    for (idx, panel) in panels.iter().enumerate() {
        render_panel(&mut out, panel, 30.0 + PANEL_HEIGHT * idx as f64);
    }
    out.push_str("</svg>\n");
    out
}

fn render_panel(out: &mut String, panel: &Panel, top: f64) {
    let plot_top = top + TOP;
    let plot_bottom = top + PANEL_HEIGHT - BOTTOM;
    let plot_right = WIDTH - RIGHT;
    let _ = writeln!(
        out,
        r#"<text x="{LEFT}" y="{}" font-size="12" font-weight="bold">{}</text>"#,
        fmt(top + 16.0),
        escape(&panel.title)
    );
    // Legend.
    let mut legend_x = LEFT;
    for line in &panel.lines {
        let _ = writeln!(
            out,
            r#"<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="{}" stroke-width="2"/><text x="{}" y="{}">{}</text>"#,
            fmt(legend_x),
            fmt(top + 30.0),
            fmt(legend_x + 16.0),
            fmt(top + 30.0),
            escape(&line.color),
            fmt(legend_x + 20.0),
            fmt(top + 34.0),
            escape(&line.label)
        );
        legend_x += 28.0 + 7.0 * line.label.chars().count() as f64;
    }
    let finite: Vec<(i64, f64)> = panel
        .lines
        .iter()
        .flat_map(|l| l.points.iter())
        .filter(|(_, v)| v.is_finite())
        .map(|(t, v)| (t.as_millisecond(), *v))
        .collect();
    let _ = writeln!(
        out,
        r##"<rect x="{LEFT}" y="{}" width="{}" height="{}" fill="none" stroke="#999"/>"##,
        fmt(plot_top),
        fmt(plot_right - LEFT),
        fmt(plot_bottom - plot_top)
    );
    if finite.is_empty() {
        let _ = writeln!(
            out,
            r##"<text x="{}" y="{}" text-anchor="middle" fill="#666">no data</text>"##,
            fmt((LEFT + plot_right) / 2.0),
            fmt((plot_top + plot_bottom) / 2.0)
        );
        return;
    }
    let (mut t_min, mut t_max) = (i64::MAX, i64::MIN);
    let (mut v_min, mut v_max) = (f64::INFINITY, f64::NEG_INFINITY);
    for (t, v) in &finite {
        t_min = t_min.min(*t);
        t_max = t_max.max(*t);
        v_min = v_min.min(*v);
        v_max = v_max.max(*v);
    }
    if let Some((_, threshold)) = panel.threshold.as_ref().filter(|(_, v)| v.is_finite()) {
        v_min = v_min.min(*threshold);
        v_max = v_max.max(*threshold);
    }
    if v_max - v_min < f64::EPSILON * v_max.abs().max(1.0) {
        v_min -= 0.5 * v_min.abs().max(1e-9);
        v_max += 0.5 * v_max.abs().max(1e-9);
    }
    let pad = (v_max - v_min) * 0.05;
    let (v_min, v_max) = (v_min - pad, v_max + pad);
    let t_span = (t_max - t_min).max(1) as f64;
    let x = |t: i64| LEFT + (t - t_min) as f64 / t_span * (plot_right - LEFT);
    let y = |v: f64| plot_bottom - (v - v_min) / (v_max - v_min) * (plot_bottom - plot_top);

    // Y ticks.
    for tick in 0..=4 {
        let value = v_min + (v_max - v_min) * tick as f64 / 4.0;
        let _ = writeln!(
            out,
            r##"<line x1="{LEFT}" y1="{y}" x2="{}" y2="{y}" stroke="#eee"/><text x="{}" y="{}" text-anchor="end">{}</text>"##,
            fmt(plot_right),
            fmt(LEFT - 4.0),
            fmt(y(value) + 4.0),
            escape(&short_value(value)),
            y = fmt(y(value)),
        );
    }
    // X ticks: start, middle, end (UTC time of day).
    for (anchor, t) in [
        ("start", t_min),
        ("middle", t_min + (t_max - t_min) / 2),
        ("end", t_max),
    ] {
        let label = Timestamp::from_millisecond(t)
            .map(|ts| ts.strftime("%H:%M:%S").to_string())
            .unwrap_or_default();
        let _ = writeln!(
            out,
            r#"<text x="{}" y="{}" text-anchor="{anchor}">{label}</text>"#,
            fmt(x(t)),
            fmt(plot_bottom + 14.0)
        );
    }
    if let Some((label, threshold)) = &panel.threshold
        && threshold.is_finite()
    {
        {
            let _ = writeln!(
                out,
                r##"<line x1="{LEFT}" y1="{y}" x2="{}" y2="{y}" stroke="#555" stroke-dasharray="4 3"/><text x="{}" y="{}" text-anchor="end" fill="#555">{}</text>"##,
                fmt(plot_right),
                fmt(plot_right - 2.0),
                fmt(y(*threshold) - 3.0),
                escape(label),
                y = fmt(y(*threshold)),
            );
        }
    }
    for line in &panel.lines {
        let points: Vec<String> = line
            .points
            .iter()
            .filter(|(_, v)| v.is_finite())
            .map(|(t, v)| format!("{},{}", fmt(x(t.as_millisecond())), fmt(y(*v))))
            .collect();
        if points.is_empty() {
            continue;
        }
        let _ = writeln!(
            out,
            r#"<polyline fill="none" stroke="{}" stroke-width="1.5" points="{}"/>"#,
            escape(&line.color),
            points.join(" ")
        );
    }
}

/// Coordinates with one decimal: stable text, and plenty for a 720-pixel chart.
fn fmt(value: f64) -> String {
    let rounded = (value * 10.0).round() / 10.0;
    if rounded == rounded.trunc() {
        format!("{}", rounded as i64)
    } else {
        format!("{rounded:.1}")
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(second: i64) -> Timestamp {
        Timestamp::from_second(1_735_689_600 + second).expect("valid")
    }

    #[test]
    fn renders_lines_threshold_and_empty_panels() {
        let panels = [
            Panel {
                title: "p99 latency <s>".to_owned(),
                lines: vec![
                    Line {
                        label: "canary".to_owned(),
                        color: CANARY.to_owned(),
                        points: vec![(t(0), 0.5), (t(60), 0.7), (t(120), f64::NAN), (t(180), 0.9)],
                    },
                    Line {
                        label: "stable".to_owned(),
                        color: BASELINE.to_owned(),
                        points: vec![(t(0), 0.5), (t(60), 0.5), (t(120), 0.5), (t(180), 0.5)],
                    },
                ],
                threshold: Some(("max 1".to_owned(), 1.0)),
            },
            Panel {
                title: "error rate".to_owned(),
                lines: vec![],
                threshold: None,
            },
        ];
        let svg = chart("fraud-model & friends", &panels);
        assert!(svg.contains("fraud-model &amp; friends"));
        assert!(svg.contains("p99 latency &lt;s&gt;"));
        insta::assert_snapshot!(svg);
    }
}
