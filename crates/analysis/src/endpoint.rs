//! The HTTP edge for checks that talk to the model's endpoints: smoke tests, accuracy on a
//! labelled evaluation set, and prediction distributions read from endpoints.
//!
//! Requests go one at a time: evaluation sets are hundreds of examples, and a canary under
//! analysis should not be load-tested by its own judge. Every failure is recorded in the result
//! (a failed smoke test, an unanswered example); only an unreadable data set or a bad template is
//! an [`Error`].

use std::path::Path;
use std::time::{Duration, Instant};

use crate::Error;
use crate::plan::AnalysisPlan;
use crate::quality::{self, Quality, Scored};
use crate::smoke::{self, SmokeObservation, SmokeResult, json_equal, json_pointer};
use crate::template::{TemplateVars, render};

/// Per-request timeout for endpoint checks.
const TIMEOUT: Duration = Duration::from_secs(10);

/// One labelled example of an evaluation set.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Example {
    /// Sent to the endpoint as the JSON request body.
    pub input: serde_json::Value,
    /// The correct prediction.
    pub label: serde_json::Value,
}

/// Reads a JSON Lines evaluation set (`{"input": …, "label": …}` per line; blank lines are
/// skipped). Errors name the file and line.
pub fn load_dataset(path: &Path) -> Result<Vec<Example>, Error> {
    let fail = |problem: String| Error::Dataset {
        path: path.display().to_string(),
        problem,
    };
    let text =
        std::fs::read_to_string(path).map_err(|err| fail(format!("cannot read it: {err}")))?;
    let mut examples = Vec::new();
    for (idx, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let example: Example =
            serde_json::from_str(line).map_err(|err| fail(format!("line {}: {err}", idx + 1)))?;
        examples.push(example);
    }
    if examples.is_empty() {
        return Err(fail("it holds no examples".to_owned()));
    }
    Ok(examples)
}

/// What the endpoint checks found.
#[derive(Debug, Clone, PartialEq)]
pub struct EndpointResults {
    /// One per `[[smoke]]` check, in plan order.
    pub smoke: Vec<SmokeResult>,
    /// Accuracy and endpoint-based distributions, when the plan has them.
    pub quality: Option<Quality>,
}

/// Runs the plan's smoke tests, accuracy check and endpoint-based distributions against the
/// endpoints named by their URL templates (`{{track}}` = `vars.track`, or the quality
/// baseline for baseline requests). Metric-based distributions are not touched here.
pub async fn check_endpoints(
    plan: &AnalysisPlan,
    vars: &TemplateVars,
) -> Result<EndpointResults, Error> {
    let http = reqwest::Client::builder()
        .timeout(TIMEOUT)
        .user_agent(concat!("slipway-analysis/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|err| Error::Config {
            url: "endpoint checks".to_owned(),
            problem: err.to_string(),
            hint: "check the TLS setup of this machine".to_owned(),
        })?;
    let mut smoke_results = Vec::new();
    for check in &plan.smoke {
        let url = render(&check.url, vars)?;
        let observed = request(&http, &check.method, &url, check.body.as_ref()).await;
        smoke_results.push(smoke::judge_smoke(check, &observed));
    }

    let Some(quality_plan) = &plan.quality else {
        return Ok(EndpointResults {
            smoke: smoke_results,
            quality: None,
        });
    };
    let baseline_vars = TemplateVars {
        track: quality_plan.baseline.clone(),
        ..vars.clone()
    };
    let mut distributions = Vec::new();
    let mut accuracy = None;
    if let Some(check) = &quality_plan.accuracy {
        let examples = load_dataset(&check.dataset)?;
        let label_pointer = pointer(&check.prediction)?;
        let canary_url = render(&check.url, vars)?;
        let canary = predictions(&http, &canary_url, &examples, &label_pointer).await;
        let baseline = if check.max_drop.is_some() {
            let url = render(&check.url, &baseline_vars)?;
            Some(predictions(&http, &url, &examples, &label_pointer).await)
        } else {
            None
        };
        accuracy = Some(quality::judge_accuracy(
            check,
            quality_plan.confidence,
            &quality_plan.baseline,
            score(&canary, &examples),
            baseline.as_ref().map(|b| score(b, &examples)),
        ));
        for distribution in &quality_plan.distributions {
            let Some(url) = &distribution.url else {
                continue;
            };
            let score_pointer = pointer(&distribution.prediction)?;
            let canary = predictions(&http, &render(url, vars)?, &examples, &score_pointer).await;
            let baseline = predictions(
                &http,
                &render(url, &baseline_vars)?,
                &examples,
                &score_pointer,
            )
            .await;
            distributions.push(quality::judge_distribution(
                quality_plan,
                &distribution.name,
                &numbers(&canary),
                &numbers(&baseline),
            ));
        }
    }
    Ok(EndpointResults {
        smoke: smoke_results,
        quality: Some(Quality::new(distributions, accuracy, Vec::new())),
    })
}

fn pointer(path: &str) -> Result<String, Error> {
    json_pointer(path).map_err(|problem| Error::InvalidPlan {
        problems: vec![problem],
    })
}

/// Sends one request and times it.
async fn request(
    http: &reqwest::Client,
    method: &str,
    url: &str,
    body: Option<&serde_json::Value>,
) -> SmokeObservation {
    let started = Instant::now();
    let mut builder = if method == "POST" {
        http.post(url)
    } else {
        http.get(url)
    };
    if let Some(body) = body {
        builder = builder.json(body);
    }
    let outcome = match builder.send().await {
        Ok(response) => {
            let status = response.status().as_u16();
            response
                .text()
                .await
                .map(|body| (status, body))
                .map_err(|err| error_chain(&err))
        }
        Err(err) => Err(error_chain(&err)),
    };
    let latency = started.elapsed();
    match outcome {
        Ok((status, body)) => SmokeObservation {
            url: url.to_owned(),
            status: Some(status),
            latency,
            body,
            error: None,
        },
        Err(error) => SmokeObservation {
            url: url.to_owned(),
            status: None,
            latency,
            body: String::new(),
            error: Some(error),
        },
    }
}

/// POSTs each example's input and reads the prediction at `pointer`; `None` for a failed request,
/// a non-2xx answer or a missing prediction.
async fn predictions(
    http: &reqwest::Client,
    url: &str,
    examples: &[Example],
    pointer: &str,
) -> Vec<Option<serde_json::Value>> {
    let mut out = Vec::with_capacity(examples.len());
    for example in examples {
        let observed = request(http, "POST", url, Some(&example.input)).await;
        let prediction = match observed.status {
            Some(status) if (200..300).contains(&status) => {
                serde_json::from_str::<serde_json::Value>(&observed.body)
                    .ok()
                    .and_then(|body| body.pointer(pointer).cloned())
            }
            _ => None,
        };
        out.push(prediction);
    }
    out
}

fn score(predictions: &[Option<serde_json::Value>], examples: &[Example]) -> Scored {
    let mut scored = Scored {
        answered: 0,
        correct: 0,
        errors: 0,
    };
    for (prediction, example) in predictions.iter().zip(examples) {
        match prediction {
            None => scored.errors += 1,
            Some(value) => {
                scored.answered += 1;
                if json_equal(value, &example.label) {
                    scored.correct += 1;
                }
            }
        }
    }
    scored
}

fn numbers(predictions: &[Option<serde_json::Value>]) -> Vec<f64> {
    predictions
        .iter()
        .filter_map(|p| p.as_ref().and_then(serde_json::Value::as_f64))
        .collect()
}

fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(inner) = source {
        let inner_text = inner.to_string();
        if !text.contains(&inner_text) {
            text.push_str(": ");
            text.push_str(&inner_text);
        }
        source = inner.source();
    }
    text
}
