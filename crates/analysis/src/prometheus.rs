//! [`PrometheusClient`]: [`MetricsProvider`] over the Prometheus HTTP API v1
//! (`/api/v1/query` and `/api/v1/query_range`).
//!
//! Response parsing is a pure function of the HTTP status and body, unit-tested with Prometheus'
//! documented shapes; the HTTP part is tested against a real Prometheus in `tests/it.rs`.

use std::time::Duration;

use jiff::Timestamp;
use reqwest::Url;
use slipway_core::Secret;

use crate::Error;
use crate::provider::{Labels, MetricsProvider, Sample, Series};

/// How to authenticate to Prometheus (or the proxy in front of it).
#[derive(Debug, Clone, PartialEq)]
pub enum PrometheusAuth {
    /// `Authorization: Bearer <token>`.
    Bearer(Secret),
    /// HTTP basic auth.
    Basic {
        /// User name.
        username: String,
        /// Password.
        password: Secret,
    },
}

/// Where Prometheus is and how to talk to it.
#[derive(Debug, Clone, PartialEq)]
pub struct PrometheusConfig {
    /// Base URL, e.g. `http://prometheus.monitoring:9090` (a path prefix is kept).
    pub url: String,
    /// Credentials, if any. Never put them in `url`: URLs end up in messages.
    pub auth: Option<PrometheusAuth>,
    /// Per-request timeout (connect plus answer).
    pub timeout: Duration,
}

impl PrometheusConfig {
    /// No auth, 10 s timeout.
    pub fn new(url: impl Into<String>) -> PrometheusConfig {
        PrometheusConfig {
            url: url.into(),
            auth: None,
            timeout: Duration::from_secs(10),
        }
    }

    /// Sets the credentials.
    #[must_use]
    pub fn auth(mut self, auth: PrometheusAuth) -> PrometheusConfig {
        self.auth = Some(auth);
        self
    }

    /// Sets the per-request timeout.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> PrometheusConfig {
        self.timeout = timeout;
        self
    }
}

/// A Prometheus HTTP API client. Cheap to clone; share one per Prometheus.
#[derive(Debug, Clone)]
pub struct PrometheusClient {
    http: reqwest::Client,
    base: Url,
    /// `base` as text without a trailing slash, for messages.
    display_url: String,
    config: PrometheusConfig,
}

impl PrometheusClient {
    /// Checks the URL and builds the HTTP client.
    pub fn new(config: PrometheusConfig) -> Result<PrometheusClient, Error> {
        let fail = |problem: String, hint: &str| Error::Config {
            url: config.url.clone(),
            problem,
            hint: hint.to_owned(),
        };
        let base = Url::parse(&config.url).map_err(|err| {
            fail(
                err.to_string(),
                "give the full base URL, e.g. `http://prometheus.monitoring:9090`",
            )
        })?;
        if !matches!(base.scheme(), "http" | "https") {
            return Err(fail(
                format!("scheme `{}` is not http or https", base.scheme()),
                "give the full base URL, e.g. `http://prometheus.monitoring:9090`",
            ));
        }
        if !base.username().is_empty() || base.password().is_some() {
            // Rejected rather than used: the URL appears in every error message and report.
            return Err(Error::Config {
                url: "<url with credentials>".to_owned(),
                problem: "the URL contains credentials".to_owned(),
                hint: "remove them from the URL and set `auth` instead, so they stay out of logs"
                    .to_owned(),
            });
        }
        if config.timeout.is_zero() {
            return Err(fail("timeout is 0".to_owned(), "set a timeout such as 10s"));
        }
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .user_agent(concat!("slipway-analysis/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|err| fail(error_chain(&err), "check the TLS setup of this machine"))?;
        let display_url = base.as_str().trim_end_matches('/').to_owned();
        Ok(PrometheusClient {
            http,
            base,
            display_url,
            config,
        })
    }

    /// The base URL, as shown in messages.
    pub fn url(&self) -> &str {
        &self.display_url
    }

    fn endpoint(&self, api: &str, params: &[(&str, String)]) -> Url {
        let mut url = self.base.clone();
        let path = format!("{}/api/v1/{api}", self.base.path().trim_end_matches('/'));
        url.set_path(&path);
        url.query_pairs_mut().clear().extend_pairs(params);
        url
    }

    async fn get(&self, query: &str, url: Url) -> Result<ResultData, Error> {
        let mut request = self.http.get(url);
        request = match &self.config.auth {
            None => request,
            Some(PrometheusAuth::Bearer(token)) => request.bearer_auth(token.expose()),
            Some(PrometheusAuth::Basic { username, password }) => {
                request.basic_auth(username, Some(password.expose()))
            }
        };
        let unavailable = |err: reqwest::Error| {
            let (reason, hint) = if err.is_timeout() {
                (
                    format!("no answer within {:?}", self.config.timeout),
                    "check that Prometheus is healthy, or raise the timeout for expensive queries"
                        .to_owned(),
                )
            } else {
                (
                    error_chain(&err),
                    format!(
                        "check that Prometheus is running and reachable at {}",
                        self.display_url
                    ),
                )
            };
            Error::Unavailable {
                backend: format!("prometheus at `{}`", self.display_url),
                query: query.to_owned(),
                reason,
                hint,
            }
        };
        let response = request.send().await.map_err(unavailable)?;
        let status = response.status().as_u16();
        let body = response.bytes().await.map_err(unavailable)?;
        parse_response(&self.display_url, query, status, &body)
    }
}

#[async_trait::async_trait]
impl MetricsProvider for PrometheusClient {
    async fn instant(&self, query: &str, at: Timestamp) -> Result<Vec<Sample>, Error> {
        let url = self.endpoint(
            "query",
            &[("query", query.to_owned()), ("time", unix_seconds(at))],
        );
        let data = self.get(query, url).await?;
        instant_samples(&self.display_url, query, data)
    }

    async fn range(
        &self,
        query: &str,
        start: Timestamp,
        end: Timestamp,
        step: Duration,
    ) -> Result<Vec<Series>, Error> {
        let url = self.endpoint(
            "query_range",
            &[
                ("query", query.to_owned()),
                ("start", unix_seconds(start)),
                ("end", unix_seconds(end)),
                ("step", format!("{}", step.as_secs_f64())),
            ],
        );
        let data = self.get(query, url).await?;
        range_series(&self.display_url, query, data)
    }
}

/// A timestamp as Prometheus' `time=` parameter: Unix seconds with millisecond precision.
fn unix_seconds(at: Timestamp) -> String {
    let millis = at.as_millisecond();
    let sign = if millis < 0 { "-" } else { "" };
    let abs = millis.unsigned_abs();
    format!("{sign}{}.{:03}", abs / 1000, abs % 1000)
}

/// The whole `source()` chain of an error, joined with ": ".
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

/// Parses a Prometheus sample value: a decimal string, or `NaN`, `+Inf`, `-Inf`.
pub(crate) fn parse_float(text: &str) -> Option<f64> {
    match text {
        "NaN" => Some(f64::NAN),
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        _ => text.parse().ok(),
    }
}

/// The API envelope: `{"status": "success"|"error", "data": …, "errorType": …, "error": …}`.
#[derive(Debug, serde::Deserialize)]
struct Envelope {
    status: String,
    data: Option<ResultData>,
    #[serde(rename = "errorType")]
    error_type: Option<String>,
    error: Option<String>,
}

/// `data` of a query answer.
#[derive(Debug, serde::Deserialize)]
#[serde(tag = "resultType", content = "result", rename_all = "lowercase")]
enum ResultData {
    Vector(Vec<VectorItem>),
    Matrix(Vec<MatrixItem>),
    Scalar(RawPoint),
    String(RawPoint),
}

/// `[<unix seconds>, "<value>"]`.
type RawPoint = (f64, String);

#[derive(Debug, serde::Deserialize)]
struct VectorItem {
    metric: Labels,
    /// Absent for native histograms, which a threshold cannot use.
    value: Option<RawPoint>,
}

#[derive(Debug, serde::Deserialize)]
struct MatrixItem {
    metric: Labels,
    #[serde(default)]
    values: Vec<RawPoint>,
}

/// Interprets an HTTP answer from the query API.
fn parse_response(url: &str, query: &str, status: u16, body: &[u8]) -> Result<ResultData, Error> {
    let bad = |problem: String, hint: &str| Error::BadResponse {
        backend: format!("prometheus at `{url}`"),
        query: query.to_owned(),
        problem,
        hint: hint.to_owned(),
    };
    let envelope: Envelope = match serde_json::from_slice(body) {
        Ok(envelope) => envelope,
        Err(err) => {
            let snippet: String = String::from_utf8_lossy(body).chars().take(200).collect();
            let snippet = snippet.trim();
            return Err(match status {
                401 | 403 => bad(
                    format!("HTTP {status}: {snippet}"),
                    "check the `auth` credentials for Prometheus",
                ),
                500..=599 => Error::Unavailable {
                    backend: format!("prometheus at `{url}`"),
                    query: query.to_owned(),
                    reason: format!("HTTP {status}: {snippet}"),
                    hint: "Prometheus or a proxy in front of it is failing; retry later".to_owned(),
                },
                _ => bad(
                    format!("HTTP {status}, not a Prometheus API answer ({err}): {snippet}"),
                    "check that the URL points at Prometheus itself, not its UI or another service",
                ),
            });
        }
    };
    if envelope.status == "error" {
        let error_type = envelope.error_type.unwrap_or_else(|| "unknown".to_owned());
        let message = envelope.error.unwrap_or_default();
        // Prometheus answers 503 `unavailable` and 500 `internal` when it is itself in trouble:
        // that is an outage, not a bad query.
        if matches!(
            error_type.as_str(),
            "unavailable" | "timeout" | "canceled" | "internal"
        ) {
            return Err(Error::Unavailable {
                backend: format!("prometheus at `{url}`"),
                query: query.to_owned(),
                reason: format!("{error_type}: {message}"),
                hint: "Prometheus is overloaded or shutting down; retry later".to_owned(),
            });
        }
        return Err(Error::Rejected {
            url: url.to_owned(),
            query: query.to_owned(),
            error_type,
            message,
        });
    }
    envelope.data.ok_or_else(|| {
        bad(
            format!("HTTP {status}, status `{}` but no `data`", envelope.status),
            "check that the URL points at Prometheus itself",
        )
    })
}

fn timestamp(url: &str, query: &str, seconds: f64) -> Result<Timestamp, Error> {
    Timestamp::from_millisecond((seconds * 1000.0).round() as i64).map_err(|err| {
        Error::BadResponse {
            backend: format!("prometheus at `{url}`"),
            query: query.to_owned(),
            problem: format!("timestamp {seconds} is out of range: {err}"),
            hint: "this is a bug in Prometheus or a proxy; report it".to_owned(),
        }
    })
}

fn value(url: &str, query: &str, text: &str) -> Result<f64, Error> {
    parse_float(text).ok_or_else(|| Error::BadResponse {
        backend: format!("prometheus at `{url}`"),
        query: query.to_owned(),
        problem: format!("sample value `{text}` is not a number"),
        hint: "this is a bug in Prometheus or a proxy; report it".to_owned(),
    })
}

fn instant_samples(url: &str, query: &str, data: ResultData) -> Result<Vec<Sample>, Error> {
    let bad = |problem: &str, hint: &str| Error::BadResponse {
        backend: format!("prometheus at `{url}`"),
        query: query.to_owned(),
        problem: problem.to_owned(),
        hint: hint.to_owned(),
    };
    match data {
        ResultData::Vector(items) => items
            .into_iter()
            .map(|item| match item.value {
                Some((_, text)) => Ok(Sample {
                    labels: item.metric,
                    value: value(url, query, &text)?,
                }),
                None => Err(bad(
                    "a series is a native histogram, not a number",
                    "wrap it in histogram_quantile(...) or histogram_count(...)",
                )),
            })
            .collect(),
        ResultData::Scalar((_, text)) => Ok(vec![Sample {
            labels: Labels::new(),
            value: value(url, query, &text)?,
        }]),
        ResultData::Matrix(_) => Err(bad(
            "the result is a range vector, but a measurement needs an instant vector",
            "wrap the range selector in a function such as rate(...) or avg_over_time(...)",
        )),
        ResultData::String((_, text)) => Err(bad(
            &format!("the result is the string `{text}`, but a measurement needs a number"),
            "make the query return an instant vector or scalar",
        )),
    }
}

fn range_series(url: &str, query: &str, data: ResultData) -> Result<Vec<Series>, Error> {
    match data {
        ResultData::Matrix(items) => items
            .into_iter()
            .map(|item| {
                let points = item
                    .values
                    .iter()
                    .map(|(at, text)| Ok((timestamp(url, query, *at)?, value(url, query, text)?)))
                    .collect::<Result<_, Error>>()?;
                Ok(Series {
                    labels: item.metric,
                    points,
                })
            })
            .collect(),
        other => Err(Error::BadResponse {
            backend: format!("prometheus at `{url}`"),
            query: query.to_owned(),
            problem: format!(
                "a range query returned a {}, not a matrix",
                match other {
                    ResultData::Vector(_) => "vector",
                    ResultData::Scalar(_) => "scalar",
                    ResultData::String(_) => "string",
                    ResultData::Matrix(_) => "matrix",
                }
            ),
            hint: "this is a bug in Prometheus or a proxy; report it".to_owned(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const URL: &str = "http://127.0.0.1:9090";
    const Q: &str = "sum(rate(x[1m]))";

    fn instant(status: u16, body: &str) -> Result<Vec<Sample>, Error> {
        parse_response(URL, Q, status, body.as_bytes()).and_then(|d| instant_samples(URL, Q, d))
    }

    fn range(status: u16, body: &str) -> Result<Vec<Series>, Error> {
        parse_response(URL, Q, status, body.as_bytes()).and_then(|d| range_series(URL, Q, d))
    }

    fn render<T: std::fmt::Debug>(result: Result<T, Error>) -> String {
        match result {
            Ok(value) => format!("{value:?}"),
            Err(err) => format!("error: {err}"),
        }
    }

    #[test]
    fn parses_vectors_and_scalars() {
        let cases = [
            (
                r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"track":"canary"},"value":[1700000000.5,"0.25"]},{"metric":{},"value":[1700000000.5,"NaN"]},{"metric":{"le":"+Inf"},"value":[1,"+Inf"]},{"metric":{},"value":[1,"-Inf"]}]}}"#,
                r#"[Sample { labels: {"track": "canary"}, value: 0.25 }, Sample { labels: {}, value: NaN }, Sample { labels: {"le": "+Inf"}, value: inf }, Sample { labels: {}, value: -inf }]"#,
            ),
            (
                r#"{"status":"success","data":{"resultType":"vector","result":[]}}"#,
                "[]",
            ),
            (
                r#"{"status":"success","data":{"resultType":"scalar","result":[1700000000,"1e-3"]},"warnings":["x"]}"#,
                "[Sample { labels: {}, value: 0.001 }]",
            ),
        ];
        for (body, expected) in cases {
            assert_eq!(render(instant(200, body)), expected, "{body}");
        }
    }

    #[test]
    fn parses_matrices() {
        let body = r#"{"status":"success","data":{"resultType":"matrix","result":[{"metric":{"track":"canary"},"values":[[1700000000,"1"],[1700000060.25,"NaN"]]}]}}"#;
        let series = range(200, body).expect("matrix");
        assert_eq!(series.len(), 1);
        assert_eq!(series[0].labels["track"], "canary");
        assert_eq!(
            series[0].points[0],
            (Timestamp::from_second(1_700_000_000).expect("ts"), 1.0)
        );
        assert_eq!(series[0].points[1].0.as_millisecond(), 1_700_000_060_250);
        assert!(series[0].points[1].1.is_nan());
    }

    #[test]
    fn errors_name_query_url_and_prometheus_error() {
        let cases = [
            (
                400,
                r#"{"status":"error","errorType":"bad_data","error":"invalid parameter \"query\": 1:6: parse error: unexpected right parenthesis ')'"}"#,
            ),
            (
                503,
                r#"{"status":"error","errorType":"unavailable","error":"TSDB not ready"}"#,
            ),
            (502, "<html><body>Bad Gateway</body></html>"),
            (401, "Unauthorized\n"),
            (
                200,
                "<!doctype html><title>Prometheus Time Series Collection and Processing Server</title>",
            ),
            (
                200,
                r#"{"status":"success","data":{"resultType":"matrix","result":[]}}"#,
            ),
            (
                200,
                r#"{"status":"success","data":{"resultType":"string","result":[1,"hello"]}}"#,
            ),
            (
                200,
                r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"abc"]}]}}"#,
            ),
            (
                200,
                r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"histogram":[1,{}]}]}}"#,
            ),
        ];
        let rendered: Vec<String> = cases
            .iter()
            .map(|(status, body)| {
                format!(
                    "HTTP {status} {body}\n=> {}",
                    render(instant(*status, body))
                )
            })
            .collect();
        insta::assert_snapshot!(rendered.join("\n\n"));
        assert_eq!(
            render(range(
                200,
                r#"{"status":"success","data":{"resultType":"vector","result":[]}}"#
            )),
            "error: unusable answer from prometheus at `http://127.0.0.1:9090` for `sum(rate(x[1m]))`: a range query returned a vector, not a matrix\n\nhint: this is a bug in Prometheus or a proxy; report it"
        );
    }

    #[test]
    fn config_checks() {
        let err = |url: &str| {
            PrometheusClient::new(PrometheusConfig::new(url))
                .expect_err("invalid")
                .to_string()
        };
        insta::assert_snapshot!(
            [err("prometheus:9090"), err("ftp://x"), err("http://admin:hunter2@prom:9090")].join("\n\n"),
            @r"
        invalid prometheus configuration for `prometheus:9090`: scheme `prometheus` is not http or https

        hint: give the full base URL, e.g. `http://prometheus.monitoring:9090`

        invalid prometheus configuration for `ftp://x`: scheme `ftp` is not http or https

        hint: give the full base URL, e.g. `http://prometheus.monitoring:9090`

        invalid prometheus configuration for `<url with credentials>`: the URL contains credentials

        hint: remove them from the URL and set `auth` instead, so they stay out of logs
        "
        );
        let client =
            PrometheusClient::new(PrometheusConfig::new("http://prom/prefix/")).expect("valid");
        let url = client.endpoint(
            "query",
            &[
                ("query", "up{a=\"b\"}".to_owned()),
                (
                    "time",
                    unix_seconds(Timestamp::from_millisecond(1_700_000_000_250).expect("ts")),
                ),
            ],
        );
        assert_eq!(
            url.as_str(),
            "http://prom/prefix/api/v1/query?query=up%7Ba%3D%22b%22%7D&time=1700000000.250"
        );
        assert_eq!(client.url(), "http://prom/prefix");
        assert_eq!(
            unix_seconds(Timestamp::from_millisecond(-1500).expect("ts")),
            "-1.500"
        );
    }
}
