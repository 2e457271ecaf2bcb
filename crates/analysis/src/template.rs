//! Query templates: `{{release}}`, `{{namespace}}`, `{{track}}` and `{{interval}}` placeholders.
//!
//! Values are spliced into PromQL text, usually inside a label matcher's double quotes, so a value
//! containing a quote, backslash, brace or control character is refused rather than escaped:
//! release, namespace and track names never legitimately contain them, and refusing keeps a
//! hostile name from rewriting the query.

use std::time::Duration;

use crate::Error;

/// The values a query template can refer to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateVars {
    /// `{{release}}`: the release (application) name.
    pub release: String,
    /// `{{namespace}}`: the Kubernetes namespace.
    pub namespace: String,
    /// `{{track}}`: which pods, e.g. `canary` or `stable`.
    pub track: String,
    /// `{{interval}}`: the rate window, printed as a PromQL duration (`1m`, `30s`). `None` lets
    /// [`crate::run`] use the plan's measurement interval; [`render`] with `None` fails if the
    /// template uses `{{interval}}`.
    pub interval: Option<Duration>,
}

impl TemplateVars {
    /// Vars for one track of a release; `interval` is left to the plan.
    pub fn new(
        release: impl Into<String>,
        namespace: impl Into<String>,
        track: impl Into<String>,
    ) -> TemplateVars {
        TemplateVars {
            release: release.into(),
            namespace: namespace.into(),
            track: track.into(),
            interval: None,
        }
    }
}

/// The placeholders [`render`] knows, for error messages.
const KNOWN: &str = "{{release}}, {{namespace}}, {{track}}, {{interval}}";

/// Expands every `{{name}}` in `template`. Whitespace inside the braces is allowed (`{{ track }}`).
///
/// Fails, naming the placeholder, on an unknown or unterminated placeholder, on `{{interval}}`
/// without an interval, and on a value that is unsafe inside PromQL quotes.
pub fn render(template: &str, vars: &TemplateVars) -> Result<String, Error> {
    let fail = |problem: String, hint: String| Error::Template {
        template: template.to_owned(),
        problem,
        hint,
    };
    let mut out = String::with_capacity(template.len() + 32);
    let mut rest = template;
    while let Some(open) = rest.find("{{") {
        out.push_str(&rest[..open]);
        let after = &rest[open + 2..];
        let Some(close) = after.find("}}") else {
            return Err(fail(
                format!("unterminated placeholder at `{}`", &rest[open..]),
                format!("close it with `}}}}`; known placeholders: {KNOWN}"),
            ));
        };
        let name = after[..close].trim();
        let value = match name {
            "release" => checked_value(name, &vars.release),
            "namespace" => checked_value(name, &vars.namespace),
            "track" => checked_value(name, &vars.track),
            "interval" => match vars.interval {
                Some(interval) => promql_duration(interval).ok_or_else(|| {
                    (
                        format!("interval {interval:?} is not a whole number of milliseconds"),
                        "use an interval such as `30s` or `1m`".to_owned(),
                    )
                }),
                None => Err((
                    "`{{interval}}` has no value".to_owned(),
                    "set `interval` in the template vars, or render through `run`, which uses the plan's interval".to_owned(),
                )),
            },
            _ => Err((
                format!("unknown placeholder `{{{{{name}}}}}`"),
                format!("known placeholders: {KNOWN}"),
            )),
        };
        match value {
            Ok(value) => out.push_str(&value),
            Err((problem, hint)) => return Err(fail(problem, hint)),
        }
        rest = &after[close + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Returns `value` if it is safe inside a PromQL string literal.
fn checked_value(name: &str, value: &str) -> Result<String, (String, String)> {
    if value.is_empty() {
        return Err((
            format!("`{{{{{name}}}}}` is empty"),
            format!("give the {name} a value"),
        ));
    }
    if let Some(bad) = value
        .chars()
        .find(|c| matches!(c, '"' | '\\' | '\'' | '`' | '{' | '}') || c.is_control())
    {
        return Err((
            format!("`{{{{{name}}}}}` value `{}` contains {bad:?}", value.escape_debug()),
            "release, namespace and track names may not contain quotes, backslashes, braces or control characters".to_owned(),
        ));
    }
    Ok(value.to_owned())
}

/// Formats a duration the way PromQL writes it, in the largest unit that divides it exactly.
pub(crate) fn promql_duration(duration: Duration) -> Option<String> {
    let millis = duration.as_millis();
    if millis == 0 || !duration.subsec_nanos().is_multiple_of(1_000_000) {
        return None;
    }
    const UNITS: [(u128, &str); 5] = [
        (86_400_000, "d"),
        (3_600_000, "h"),
        (60_000, "m"),
        (1_000, "s"),
        (1, "ms"),
    ];
    UNITS
        .iter()
        .find(|(size, _)| millis.is_multiple_of(*size))
        .map(|(size, unit)| format!("{}{unit}", millis / size))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> TemplateVars {
        TemplateVars {
            interval: Some(Duration::from_secs(60)),
            ..TemplateVars::new("fraud-model", "ml", "canary")
        }
    }

    #[track_caller]
    fn check(template: &str, vars: &TemplateVars, expected: &str) {
        let actual = match render(template, vars) {
            Ok(text) => text,
            Err(err) => format!("error: {err}"),
        };
        assert_eq!(actual, expected, "template: {template}");
    }

    #[test]
    fn renders() {
        let cases = [
            ("up", "up"),
            (
                r#"x{release="{{release}}",namespace="{{namespace}}",track="{{track}}"}[{{interval}}]"#,
                r#"x{release="fraud-model",namespace="ml",track="canary"}[1m]"#,
            ),
            ("{{ track }}-{{track}}", "canary-canary"),
            ("{{release}}", "fraud-model"),
            ("a { b } c", "a { b } c"),
        ];
        for (template, expected) in cases {
            check(template, &vars(), expected);
        }
    }

    #[test]
    fn errors_name_the_placeholder() {
        let mut no_interval = vars();
        no_interval.interval = None;
        let mut hostile = vars();
        hostile.track = r#"canary"} or vector(1) #"#.to_owned();
        let mut empty = vars();
        empty.namespace = String::new();
        let cases = [
            (
                "rate(x[{{window}}])",
                vars(),
                "error: failed to render query template `rate(x[{{window}}])`: unknown placeholder `{{window}}`\n\nhint: known placeholders: {{release}}, {{namespace}}, {{track}}, {{interval}}",
            ),
            (
                "x{track=\"{{track\"}",
                vars(),
                "error: failed to render query template `x{track=\"{{track\"}`: unterminated placeholder at `{{track\"}`\n\nhint: close it with `}}`; known placeholders: {{release}}, {{namespace}}, {{track}}, {{interval}}",
            ),
            (
                "rate(x[{{interval}}])",
                no_interval,
                "error: failed to render query template `rate(x[{{interval}}])`: `{{interval}}` has no value\n\nhint: set `interval` in the template vars, or render through `run`, which uses the plan's interval",
            ),
            (
                "x{track=\"{{track}}\"}",
                hostile,
                "error: failed to render query template `x{track=\"{{track}}\"}`: `{{track}}` value `canary\\\"} or vector(1) #` contains '\"'\n\nhint: release, namespace and track names may not contain quotes, backslashes, braces or control characters",
            ),
            (
                "{{namespace}}",
                empty,
                "error: failed to render query template `{{namespace}}`: `{{namespace}}` is empty\n\nhint: give the namespace a value",
            ),
        ];
        for (template, vars, expected) in cases {
            check(template, &vars, expected);
        }
    }

    #[test]
    fn promql_durations() {
        let cases = [
            (Duration::from_secs(60), Some("1m")),
            (Duration::from_secs(90), Some("90s")),
            (Duration::from_secs(7200), Some("2h")),
            (Duration::from_secs(86_400), Some("1d")),
            (Duration::from_millis(1500), Some("1500ms")),
            (Duration::ZERO, None),
            (Duration::from_nanos(1), None),
        ];
        for (duration, expected) in cases {
            assert_eq!(
                promql_duration(duration).as_deref(),
                expected,
                "{duration:?}"
            );
        }
    }
}
