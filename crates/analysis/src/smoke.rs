//! Smoke tests: HTTP checks against the canary (status, latency, JSON-path expectations).
//!
//! [`judge_smoke`] is pure: it compares what one request observed ([`SmokeObservation`]) with
//! the check. Sending the request is `crate::endpoint`'s job. A canary that cannot be reached
//! fails its smoke test: unlike a metrics outage, an unreachable canary *is* the canary's
//! problem.

use std::time::Duration;

use crate::compare::short_value;

/// One HTTP check, a `[[smoke]]` entry of an analysis plan.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmokeCheck {
    /// Unique name, used in reports.
    pub name: String,
    /// URL template (`{{release}}`, `{{namespace}}`, `{{track}}` = the canary track).
    pub url: String,
    /// `GET` or `POST`.
    #[serde(default = "default_method")]
    pub method: String,
    /// JSON body (sent with `POST`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<serde_json::Value>,
    /// Expected HTTP status.
    #[serde(default = "default_status")]
    pub status: u16,
    /// Slowest acceptable answer.
    #[serde(
        default = "default_max_latency",
        with = "jiff::fmt::serde::unsigned_duration::friendly::compact::required"
    )]
    pub max_latency: Duration,
    /// Expectations on the JSON answer.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub expect: Vec<JsonExpectation>,
}

fn default_method() -> String {
    "GET".to_owned()
}

fn default_status() -> u16 {
    200
}

fn default_max_latency() -> Duration {
    Duration::from_secs(1)
}

/// An expectation on the value at a JSON path of the answer.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JsonExpectation {
    /// `$.a.b[0]` (a JSONPath of names and indexes) or a JSON Pointer `/a/b/0`.
    pub path: String,
    /// The value it must equal (numbers compare numerically). Without it, the path must exist.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub equals: Option<serde_json::Value>,
}

impl SmokeCheck {
    pub(crate) fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if !matches!(self.method.as_str(), "GET" | "POST") {
            problems.push(format!(
                "smoke check `{}` has method `{}`; use GET or POST",
                self.name, self.method
            ));
        }
        for expectation in &self.expect {
            if let Err(problem) = json_pointer(&expectation.path) {
                problems.push(format!("smoke check `{}`: {problem}", self.name));
            }
        }
        problems
    }
}

/// What one request observed.
#[derive(Debug, Clone, PartialEq)]
pub struct SmokeObservation {
    /// The URL after template expansion.
    pub url: String,
    /// The answer's status, `None` when the request failed.
    pub status: Option<u16>,
    /// Time to the full answer (or to the failure).
    pub latency: Duration,
    /// The answer's body.
    pub body: String,
    /// Why the request failed.
    pub error: Option<String>,
}

/// One smoke check's result.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SmokeResult {
    /// The check's name.
    pub name: String,
    /// The URL requested.
    pub url: String,
    /// Whether every expectation held.
    pub passed: bool,
    /// The answer's status.
    pub status: Option<u16>,
    /// Latency in milliseconds.
    pub latency_ms: f64,
    /// Every expectation that failed, one line each.
    pub failures: Vec<String>,
    /// One sentence.
    pub reason: String,
}

/// Compares an observation with its check. Reports every failed expectation, not just the first.
pub fn judge_smoke(check: &SmokeCheck, observed: &SmokeObservation) -> SmokeResult {
    let mut failures = Vec::new();
    let latency_ms = observed.latency.as_secs_f64() * 1000.0;
    match (&observed.error, observed.status) {
        (Some(error), _) => failures.push(format!("request failed: {error}")),
        (None, Some(status)) if status != check.status => {
            failures.push(format!("status {status}, expected {}", check.status));
        }
        _ => {}
    }
    if observed.error.is_none() && observed.latency > check.max_latency {
        failures.push(format!(
            "answered in {} ms, slower than {} ms",
            short_value(latency_ms),
            short_value(check.max_latency.as_secs_f64() * 1000.0)
        ));
    }
    if observed.error.is_none() && !check.expect.is_empty() {
        match serde_json::from_str::<serde_json::Value>(&observed.body) {
            Err(err) => failures.push(format!("the answer is not JSON ({err})")),
            Ok(body) => {
                for expectation in &check.expect {
                    if let Some(problem) = expectation_problem(expectation, &body) {
                        failures.push(problem);
                    }
                }
            }
        }
    }
    let passed = failures.is_empty();
    let reason = if passed {
        format!(
            "smoke `{}` passed: {} {} in {} ms{}",
            check.name,
            check.method,
            observed.url,
            short_value(latency_ms),
            if check.expect.is_empty() {
                String::new()
            } else {
                format!(", {} JSON expectations held", check.expect.len())
            }
        )
    } else {
        format!(
            "smoke `{}` failed: {} {}: {}",
            check.name,
            check.method,
            observed.url,
            failures.join("; ")
        )
    };
    SmokeResult {
        name: check.name.clone(),
        url: observed.url.clone(),
        passed,
        status: observed.status,
        latency_ms,
        failures,
        reason,
    }
}

fn expectation_problem(expectation: &JsonExpectation, body: &serde_json::Value) -> Option<String> {
    let pointer = match json_pointer(&expectation.path) {
        Ok(pointer) => pointer,
        Err(problem) => return Some(problem),
    };
    let path = &expectation.path;
    match (body.pointer(&pointer), &expectation.equals) {
        (None, _) => Some(format!("`{path}` is missing")),
        (Some(_), None) => None,
        (Some(actual), Some(expected)) if json_equal(actual, expected) => None,
        (Some(actual), Some(expected)) => {
            Some(format!("`{path}` is {actual}, expected {expected}"))
        }
    }
}

/// JSON equality with numbers compared as numbers (`1` equals `1.0`).
pub(crate) fn json_equal(a: &serde_json::Value, b: &serde_json::Value) -> bool {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) if a.is_number() && b.is_number() => x == y,
        _ => a == b,
    }
}

/// Turns `$.a.b[0]` (or `$['a']`-free dotted JSONPath) into the JSON Pointer `/a/b/0`; a path
/// that already starts with `/` is a pointer and is returned as is.
pub(crate) fn json_pointer(path: &str) -> Result<String, String> {
    if path.starts_with('/') || path.is_empty() {
        return Ok(path.to_owned());
    }
    let Some(rest) = path.strip_prefix('$') else {
        return Err(format!(
            "JSON path `{path}` must start with `$` (JSONPath) or `/` (JSON Pointer)"
        ));
    };
    let mut pointer = String::new();
    let mut chars = rest.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '.' => {
                let mut name = String::new();
                while let Some(&next) = chars.peek() {
                    if next == '.' || next == '[' {
                        break;
                    }
                    name.push(next);
                    chars.next();
                }
                if name.is_empty() {
                    return Err(format!("JSON path `{path}` has an empty name"));
                }
                pointer.push('/');
                pointer.push_str(&name.replace('~', "~0").replace('/', "~1"));
            }
            '[' => {
                let mut index = String::new();
                for next in chars.by_ref() {
                    if next == ']' {
                        break;
                    }
                    index.push(next);
                }
                if index.is_empty() || !index.chars().all(|c| c.is_ascii_digit()) {
                    return Err(format!(
                        "JSON path `{path}` has index `[{index}]`; only whole numbers are supported"
                    ));
                }
                pointer.push('/');
                pointer.push_str(&index);
            }
            other => {
                return Err(format!(
                    "JSON path `{path}` has `{other}` where `.` or `[` was expected"
                ));
            }
        }
    }
    Ok(pointer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_paths() {
        let cases = [
            ("$.status", Ok("/status")),
            ("$.data.items[0].name", Ok("/data/items/0/name")),
            ("$", Ok("")),
            ("/already/pointer", Ok("/already/pointer")),
            ("$.a/b", Ok("/a~1b")),
            (
                "status",
                Err("JSON path `status` must start with `$` (JSONPath) or `/` (JSON Pointer)"),
            ),
            (
                "$.items[*]",
                Err("JSON path `$.items[*]` has index `[*]`; only whole numbers are supported"),
            ),
            ("$..a", Err("JSON path `$..a` has an empty name")),
        ];
        for (path, expected) in cases {
            assert_eq!(
                json_pointer(path),
                expected.map(str::to_owned).map_err(str::to_owned),
                "{path}"
            );
        }
    }

    #[test]
    fn judges_every_expectation() {
        let check = SmokeCheck {
            name: "predict".to_owned(),
            url: "u".to_owned(),
            method: "POST".to_owned(),
            body: None,
            status: 200,
            max_latency: Duration::from_millis(100),
            expect: vec![
                JsonExpectation {
                    path: "$.model.version".to_owned(),
                    equals: Some(serde_json::json!(7)),
                },
                JsonExpectation {
                    path: "$.scores[1]".to_owned(),
                    equals: None,
                },
                JsonExpectation {
                    path: "$.status".to_owned(),
                    equals: Some(serde_json::json!("ok")),
                },
            ],
        };
        let observed =
            |status: Option<u16>, millis: u64, body: &str, error: Option<&str>| SmokeObservation {
                url: "http://canary/predict".to_owned(),
                status,
                latency: Duration::from_millis(millis),
                body: body.to_owned(),
                error: error.map(str::to_owned),
            };
        let good = r#"{"model": {"version": 7.0}, "scores": [0.1, 0.9], "status": "ok"}"#;
        let cases = [
            (
                observed(Some(200), 20, good, None),
                "smoke `predict` passed: POST http://canary/predict in 20 ms, 3 JSON expectations held",
            ),
            (
                observed(
                    Some(503),
                    250,
                    r#"{"model": {"version": 6}, "status": "degraded"}"#,
                    None,
                ),
                "smoke `predict` failed: POST http://canary/predict: status 503, expected 200; answered in 250 ms, slower than 100 ms; `$.model.version` is 6, expected 7; `$.scores[1]` is missing; `$.status` is \"degraded\", expected \"ok\"",
            ),
            (
                observed(Some(200), 5, "<html>", None),
                "smoke `predict` failed: POST http://canary/predict: the answer is not JSON (expected value at line 1 column 1)",
            ),
            (
                observed(None, 5, "", Some("connection refused")),
                "smoke `predict` failed: POST http://canary/predict: request failed: connection refused",
            ),
        ];
        for (observation, expected) in cases {
            let result = judge_smoke(&check, &observation);
            assert_eq!(result.reason, expected);
            assert_eq!(result.passed, result.failures.is_empty());
        }
    }
}
