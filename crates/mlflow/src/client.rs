//! [`MlflowClient`]: the [`ModelRegistry`] trait over MLflow's REST API (`/api/2.0/mlflow/…`).
//!
//! Every call goes through one function, [`MlflowClient::call`], which owns the policy:
//! - one attempt is bounded by [`MlflowConfig::timeout`];
//! - connection errors, 429 and 5xx are retried up to [`MlflowConfig::retries`] times with
//!   exponential backoff (honouring a `Retry-After` in seconds), capped at 10 s; other
//!   4xx are final. Our writes (set alias, set tag, transition) are idempotent, so retrying a POST
//!   whose answer was lost is safe, as MLflow's own client also does. A *timed-out* attempt is
//!   not retried: it already waited the whole budget and may have been applied;
//! - MLflow's `error_code` and `message` are carried into our [`Error`], and any secret the server
//!   might echo back is blanked out before it can reach an error.
//!
//! MLflow quirks handled here (see tests/data/README.md): an unknown alias is a 400
//! `INVALID_PARAMETER_VALUE`, not a 404; versions travel as strings; DELETE takes a JSON body.

use std::time::Duration;

use reqwest::{Method, StatusCode, Url};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use slipway_core::{ModelRef, ModelSelector, ModelVersion, Stage};

use crate::config::{ConfigError, MAX_BACKOFF, MlflowAuth, MlflowConfig};
use crate::wire::{
    ErrorBody, MetricHistoryResponse, ModelVersionResponse, ModelVersionsResponse, RunResponse,
    WireModelVersion,
};
use crate::{Error, MetricPoint, ModelRegistry, RunData, VersionInfo};

/// A model registry client for an MLflow tracking server. Cheap to clone (the connection pool is
/// shared), `Send + Sync`, and its `Debug` output never shows a credential.
#[derive(Debug, Clone)]
pub struct MlflowClient {
    http: reqwest::Client,
    config: MlflowConfig,
}

/// Longest server text quoted in an error.
const MAX_QUOTED: usize = 500;
/// Guard against a server that keeps returning a page token.
const MAX_PAGES: usize = 10_000;

/// Why one call failed, before we know which model or version it was about.
#[derive(Debug)]
enum Failure {
    /// The server answered with an error status.
    Status {
        status: StatusCode,
        error_code: String,
        message: String,
        attempts: u32,
    },
    /// No answer: connection refused, reset, timed out.
    Transport {
        message: String,
        timed_out: bool,
        attempts: u32,
    },
    /// An answer we could not read.
    Malformed(String),
}

/// What a `NotFound` from this call means to the caller.
struct Subject {
    what: String,
    hint: &'static str,
}

impl MlflowClient {
    /// A client for `config`. Fails only if the TLS backend cannot start.
    pub fn new(config: MlflowConfig) -> Result<MlflowClient, ConfigError> {
        let http = reqwest::Client::builder()
            .user_agent(concat!("slipway/", env!("CARGO_PKG_VERSION")))
            .timeout(config.timeout)
            .connect_timeout(config.timeout.min(Duration::from_secs(10)))
            .tls_danger_accept_invalid_certs(config.insecure_tls)
            .build()
            .map_err(|source| ConfigError::Client {
                uri: config.uri.clone(),
                source,
            })?;
        Ok(MlflowClient { http, config })
    }

    /// Reads [`MlflowConfig::from_env_map`] and builds a client: what the binaries call with
    /// `|name| std::env::var(name).ok()`.
    pub fn from_env_map(
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<MlflowClient, ConfigError> {
        MlflowClient::new(MlflowConfig::from_env_map(lookup)?)
    }

    /// The settings in use.
    pub fn config(&self) -> &MlflowConfig {
        &self.config
    }

    /// One REST call with the retry policy of the module docs; `body` makes it a JSON request.
    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        endpoint: &str,
        query: &[(&str, &str)],
        body: Option<Value>,
    ) -> Result<T, Failure> {
        let mut url = Url::parse(&format!("{}/api/2.0/mlflow/{endpoint}", self.config.uri))
            .map_err(|err| {
                Failure::Malformed(format!(
                    "cannot build a URL from `{}`: {err}",
                    self.config.uri
                ))
            })?;
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        let mut attempts = 0;
        loop {
            attempts += 1;
            let may_retry = attempts <= self.config.retries;
            let mut request = self.http.request(method.clone(), url.clone());
            request = match &self.config.auth {
                MlflowAuth::None => request,
                MlflowAuth::Bearer(token) => request.bearer_auth(token.expose()),
                MlflowAuth::Basic { user, password } => {
                    request.basic_auth(user, Some(password.expose()))
                }
            };
            if let Some(body) = &body {
                // `.json` also sets `Content-Type: application/json`, which MLflow requires.
                request = request.json(body);
            }
            let response = match request.send().await {
                Ok(response) => response,
                Err(err) if err.is_connect() && may_retry => {
                    tokio::time::sleep(self.backoff(attempts, None)).await;
                    continue;
                }
                Err(err) => return Err(self.transport(err, attempts)),
            };
            let status = response.status();
            // Request-level log (`-v`): method, endpoint and status; never the URL's user
            // information or a header (the token travels in `Authorization`).
            tracing::debug!(
                method = %method,
                host = url.host_str().unwrap_or_default(),
                path = url.path(),
                status = status.as_u16(),
                attempts,
                "mlflow request"
            );
            if (status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error()) && may_retry {
                let retry_after = response
                    .headers()
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|value| value.to_str().ok())
                    .and_then(|value| value.trim().parse::<u64>().ok())
                    .map(Duration::from_secs);
                tokio::time::sleep(self.backoff(attempts, retry_after)).await;
                continue;
            }
            let text = response
                .text()
                .await
                .map_err(|err| self.transport(err, attempts))?;
            if status.is_success() {
                let text = if text.trim().is_empty() {
                    "{}"
                } else {
                    text.as_str()
                };
                return serde_json::from_str(text).map_err(|err| {
                    Failure::Malformed(format!("unexpected response to {method} {endpoint}: {err}"))
                });
            }
            let (error_code, message) = match serde_json::from_str::<ErrorBody>(&text) {
                Ok(body) => (body.error_code, body.message),
                Err(_) => (format!("HTTP {}", status.as_u16()), quote(&text)),
            };
            return Err(Failure::Status {
                status,
                error_code: self.scrub(&error_code),
                message: self.scrub(&message),
                attempts,
            });
        }
    }

    /// Wait before retry number `attempt` (1-based).
    fn backoff(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        let exponential = self
            .config
            .backoff
            .saturating_mul(1 << attempt.saturating_sub(1).min(16));
        retry_after.unwrap_or(exponential).min(MAX_BACKOFF)
    }

    fn transport(&self, err: reqwest::Error, attempts: u32) -> Failure {
        let timed_out = err.is_timeout();
        // The URL is dropped from reqwest's text: we name the server ourselves, without a query.
        let err = err.without_url();
        let mut chain = Vec::new();
        let mut source: Option<&dyn std::error::Error> = std::error::Error::source(&err);
        while let Some(cause) = source {
            chain.push(cause.to_string());
            source = cause.source();
        }
        let what = if timed_out {
            format!(
                "no answer from {} within {:?}",
                self.config.uri, self.config.timeout
            )
        } else if err.is_connect() {
            format!("cannot connect to {}", self.config.uri)
        } else {
            format!("request to {} failed", self.config.uri)
        };
        let detail = if chain.is_empty() {
            err.to_string()
        } else {
            chain.join(": ")
        };
        Failure::Transport {
            message: self.scrub(&format!("{what}: {detail}")),
            timed_out,
            attempts,
        }
    }

    /// Blanks out our own credentials wherever a server (or proxy) echoed them back.
    fn scrub(&self, text: &str) -> String {
        let secrets: Vec<&str> = match &self.config.auth {
            MlflowAuth::None => Vec::new(),
            MlflowAuth::Bearer(token) => vec![token.expose()],
            MlflowAuth::Basic { password, .. } => vec![password.expose()],
        };
        secrets
            .into_iter()
            .filter(|secret| !secret.is_empty())
            .fold(text.to_owned(), |text, secret| {
                text.replace(secret, "<redacted>")
            })
    }

    /// Turns a failure into our error, naming what the call was about.
    fn error(&self, failure: Failure, operation: String, subject: Option<&Subject>) -> Error {
        match failure {
            Failure::Status { status, error_code, message, .. }
                if status == StatusCode::NOT_FOUND || error_code == "RESOURCE_DOES_NOT_EXIST" =>
            {
                match subject {
                    Some(subject) => Error::NotFound {
                        what: subject.what.clone(),
                        detail: format!(": {error_code}: {message}"),
                        hint: subject.hint.to_owned(),
                    },
                    None => Error::Rejected { operation, error_code, message, hint: String::new() },
                }
            }
            Failure::Status { status, error_code, message, .. }
                if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN =>
            {
                let hint = if message.contains("DNS rebinding") {
                    format!(
                        "the server refused our Host header: connect through an address it serves \
                         (see `mlflow server --allowed-hosts`), not a proxy name; MLFLOW_TRACKING_URI is {}",
                        self.config.uri
                    )
                } else {
                    match &self.config.auth {
                        MlflowAuth::None => "the server needs credentials: set MLFLOW_TRACKING_TOKEN, or MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD".to_owned(),
                        _ => "check the credentials in MLFLOW_TRACKING_TOKEN or MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD, and the user's permissions on this model".to_owned(),
                    }
                };
                Error::Rejected { operation, error_code, message, hint: format!("\n\nhint: {hint}") }
            }
            Failure::Status { status, error_code, message, attempts }
                if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() =>
            {
                Error::Unavailable {
                    operation,
                    message: format!("{} {}: {error_code}: {message}", status_text(status), attempts_text(attempts)),
                    hint: "\n\nhint: the tracking server is failing or overloaded; retry later, or raise MLFLOW_HTTP_REQUEST_MAX_RETRIES".to_owned(),
                }
            }
            Failure::Status { error_code, message, .. } => {
                Error::Rejected { operation, error_code, message, hint: String::new() }
            }
            Failure::Transport { message, timed_out, attempts } => Error::Unavailable {
                operation,
                message: if attempts > 1 { format!("{message} ({})", attempts_text(attempts)) } else { message },
                hint: if timed_out {
                    "\n\nhint: the server is slow or stuck; raise MLFLOW_HTTP_REQUEST_TIMEOUT (seconds) if it is just slow".to_owned()
                } else {
                    "\n\nhint: is the tracking server running? check MLFLOW_TRACKING_URI".to_owned()
                },
            },
            Failure::Malformed(message) => Error::Unavailable {
                operation,
                message,
                hint: "\n\nhint: is MLFLOW_TRACKING_URI an MLflow tracking server (2.9 or later)?".to_owned(),
            },
        }
    }

    async fn get_version(&self, name: &str, number: u64) -> Result<VersionInfo, Error> {
        let version = number.to_string();
        let operation = || format!("failed to read version {number} of model `{name}`");
        let response: ModelVersionResponse = self
            .call(
                Method::GET,
                "model-versions/get",
                &[("name", name), ("version", &version)],
                None,
            )
            .await
            .map_err(|failure| {
                self.error(failure, operation(), Some(&version_subject(name, number)))
            })?;
        self.convert(response.model_version, operation())
    }

    fn convert(&self, version: WireModelVersion, operation: String) -> Result<VersionInfo, Error> {
        version
            .into_info()
            .map_err(|malformed| self.error(Failure::Malformed(malformed.0), operation, None))
    }

    /// POST/DELETE whose answer we do not need.
    async fn write(
        &self,
        method: Method,
        endpoint: &str,
        body: Value,
        operation: String,
        subject: &Subject,
    ) -> Result<(), Error> {
        self.call::<Value>(method, endpoint, &[], Some(body))
            .await
            .map(drop)
            .map_err(|failure| self.error(failure, operation, Some(subject)))
    }
}

fn version_subject(name: &str, number: u64) -> Subject {
    Subject {
        what: format!("version {number} of model `{name}`"),
        hint: "check the model name (case-sensitive) and list its versions in the MLflow UI",
    }
}

fn status_text(status: StatusCode) -> String {
    match status.canonical_reason() {
        Some(reason) => format!("HTTP {} {reason}", status.as_u16()),
        None => format!("HTTP {}", status.as_u16()),
    }
}

fn attempts_text(attempts: u32) -> String {
    if attempts == 1 {
        "after 1 attempt".to_owned()
    } else {
        format!("after {attempts} attempts")
    }
}

fn quote(text: &str) -> String {
    let text = text.trim();
    match text.char_indices().nth(MAX_QUOTED) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

#[async_trait::async_trait]
impl ModelRegistry for MlflowClient {
    async fn resolve(&self, model: &ModelRef) -> Result<VersionInfo, Error> {
        let name = model.name.as_str();
        match &model.selector {
            ModelSelector::Version(number) => self.get_version(name, *number).await,
            ModelSelector::Alias(alias) => {
                let operation = || format!("failed to resolve alias `{alias}` of model `{name}`");
                let subject = Subject {
                    what: format!("alias `{alias}` of model `{name}`"),
                    hint: "check the alias name, or point it at a version first (MLflow UI: model page, Aliases)",
                };
                let response: ModelVersionResponse = self
                    .call(
                        Method::GET,
                        "registered-models/alias",
                        &[("name", name), ("alias", alias)],
                        None,
                    )
                    .await
                    .map_err(|failure| match failure {
                        // MLflow answers an unknown alias with 400, not 404.
                        Failure::Status {
                            error_code,
                            message,
                            ..
                        } if error_code == "INVALID_PARAMETER_VALUE"
                            && message.contains("not found") =>
                        {
                            Error::NotFound {
                                what: subject.what.clone(),
                                detail: format!(": {error_code}: {message}"),
                                hint: subject.hint.to_owned(),
                            }
                        }
                        // A 404 here is about the *model* ("Registered Model with name=… not
                        // found"): naming the alias and hinting at aliases would send the reader
                        // to the wrong fix.
                        other => self.error(
                            other,
                            operation(),
                            Some(&Subject {
                                what: format!("model `{name}`"),
                                hint: "check the registered model name (it is case-sensitive)",
                            }),
                        ),
                    })?;
                self.convert(response.model_version, operation())
            }
            ModelSelector::Stage(stage) => {
                let operation = || {
                    format!(
                        "failed to find the latest version of model `{name}` in stage {}",
                        stage.as_str()
                    )
                };
                let model_subject = Subject {
                    what: format!("model `{name}`"),
                    hint: "check the registered model name (it is case-sensitive)",
                };
                // Deprecated since MLflow 2.9 but still served, and it is exactly "latest in stage";
                // `model-versions/search` cannot filter on stage.
                let response: ModelVersionsResponse = self
                    .call(
                        Method::POST,
                        "registered-models/get-latest-versions",
                        &[],
                        Some(json!({ "name": name, "stages": [stage.as_str()] })),
                    )
                    .await
                    .map_err(|failure| self.error(failure, operation(), Some(&model_subject)))?;
                let mut latest: Option<VersionInfo> = None;
                for version in response.model_versions {
                    let info = self.convert(version, operation())?;
                    if info.stage == *stage
                        && latest
                            .as_ref()
                            .is_none_or(|best| info.version.version > best.version.version)
                    {
                        latest = Some(info);
                    }
                }
                let Some(latest) = latest else {
                    return Err(Error::NotFound {
                        what: format!("a version of model `{name}` in stage {}", stage.as_str()),
                        detail: String::new(),
                        hint: format!(
                            "transition a version to {} first, or resolve by alias (`{name}@<alias>`): stages are deprecated since MLflow 2.9",
                            stage.as_str()
                        ),
                    });
                };
                // The latest-versions answer carries aliases and tags too (checked on MLflow 3.17),
                // so no second request is needed.
                Ok(latest)
            }
        }
    }

    async fn run_data(&self, run_id: &str) -> Result<RunData, Error> {
        let subject = Subject {
            what: format!("run `{run_id}`"),
            hint: "the version's run may have been deleted, or belongs to another tracking server",
        };
        let response: RunResponse = self
            .call(Method::GET, "runs/get", &[("run_id", run_id)], None)
            .await
            .map_err(|failure| {
                self.error(
                    failure,
                    format!("failed to read run `{run_id}`"),
                    Some(&subject),
                )
            })?;
        Ok(response.run.data.into_run_data())
    }

    async fn metric_history(&self, run_id: &str, key: &str) -> Result<Vec<MetricPoint>, Error> {
        let operation =
            || format!("failed to read the history of metric `{key}` of run `{run_id}`");
        let subject = Subject {
            what: format!("run `{run_id}`"),
            hint: "the version's run may have been deleted, or belongs to another tracking server",
        };
        let mut points = Vec::new();
        let mut page_token: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let mut query = vec![("run_id", run_id), ("metric_key", key)];
            if let Some(token) = &page_token {
                query.push(("page_token", token.as_str()));
            }
            let page: MetricHistoryResponse = self
                .call(Method::GET, "metrics/get-history", &query, None)
                .await
                .map_err(|failure| self.error(failure, operation(), Some(&subject)))?;
            points.extend(page.metrics.into_iter().map(MetricPoint::from));
            match page.next_page_token.filter(|token| !token.is_empty()) {
                Some(token) => page_token = Some(token),
                None => return Ok(points),
            }
        }
        Err(self.error(
            Failure::Malformed(format!("the server kept paging after {MAX_PAGES} pages")),
            operation(),
            None,
        ))
    }

    async fn set_alias(&self, version: &ModelVersion, alias: &str) -> Result<(), Error> {
        let ModelVersion {
            name,
            version: number,
        } = version;
        self.write(
            Method::POST,
            "registered-models/alias",
            json!({ "name": name, "alias": alias, "version": number.to_string() }),
            format!("failed to point alias `{alias}` of model `{name}` at version {number}"),
            &version_subject(name, *number),
        )
        .await
    }

    async fn delete_alias(&self, name: &str, alias: &str) -> Result<(), Error> {
        // MLflow reads DELETE parameters from a JSON body; a query string is a 400.
        self.write(
            Method::DELETE,
            "registered-models/alias",
            json!({ "name": name, "alias": alias }),
            format!("failed to delete alias `{alias}` of model `{name}`"),
            // Deleting an alias that does not exist succeeds; only an unknown model is a 404.
            &Subject {
                what: format!("model `{name}`"),
                hint: "check the registered model name (it is case-sensitive)",
            },
        )
        .await
    }

    async fn set_version_tag(
        &self,
        version: &ModelVersion,
        key: &str,
        value: &str,
    ) -> Result<(), Error> {
        let ModelVersion {
            name,
            version: number,
        } = version;
        self.write(
            Method::POST,
            "model-versions/set-tag",
            json!({ "name": name, "version": number.to_string(), "key": key, "value": value }),
            format!("failed to set tag `{key}` on version {number} of model `{name}`"),
            &version_subject(name, *number),
        )
        .await
    }

    async fn delete_version_tag(&self, version: &ModelVersion, key: &str) -> Result<(), Error> {
        let ModelVersion {
            name,
            version: number,
        } = version;
        self.write(
            Method::DELETE,
            "model-versions/delete-tag",
            json!({ "name": name, "version": number.to_string(), "key": key }),
            format!("failed to delete tag `{key}` from version {number} of model `{name}`"),
            // Deleting a tag that does not exist succeeds; only an unknown version is a 404.
            &version_subject(name, *number),
        )
        .await
    }

    async fn transition_stage(
        &self,
        version: &ModelVersion,
        stage: Stage,
        archive_existing: bool,
    ) -> Result<(), Error> {
        let ModelVersion {
            name,
            version: number,
        } = version;
        self.write(
            Method::POST,
            "model-versions/transition-stage",
            json!({
                "name": name,
                "version": number.to_string(),
                "stage": stage.as_str(),
                "archive_existing_versions": archive_existing,
            }),
            format!(
                "failed to move version {number} of model `{name}` to stage {}",
                stage.as_str()
            ),
            &version_subject(name, *number),
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use slipway_core::Secret;

    fn client(auth: MlflowAuth) -> MlflowClient {
        MlflowClient::new(MlflowConfig::new("http://127.0.0.1:9").auth(auth)).expect("client")
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        let client = client(MlflowAuth::None);
        let waits: Vec<u64> = (1..=7)
            .map(|n| client.backoff(n, None).as_millis() as u64)
            .collect();
        assert_eq!(waits, [500, 1000, 2000, 4000, 8000, 10_000, 10_000]);
        assert_eq!(
            client.backoff(1, Some(Duration::from_secs(3))),
            Duration::from_secs(3)
        );
        assert_eq!(
            client.backoff(1, Some(Duration::from_secs(3600))),
            MAX_BACKOFF
        );
    }

    #[test]
    fn debug_and_scrub_hide_secrets() {
        let client = client(MlflowAuth::Basic {
            user: "ci".into(),
            password: Secret::new("pw-secret"),
        });
        assert!(!format!("{client:?}").contains("pw-secret"));
        assert_eq!(
            client.scrub("bad password pw-secret"),
            "bad password <redacted>"
        );
    }

    #[test]
    fn long_server_text_is_cut() {
        let quoted = quote(&"x".repeat(2 * MAX_QUOTED));
        assert_eq!(quoted.chars().count(), MAX_QUOTED + 1);
    }
}
