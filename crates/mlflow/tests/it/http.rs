//! HTTP behaviour of `MlflowClient` against the scripted server in `fake.rs`: what is retried,
//! what is not, timeouts, auth headers, and the text of errors (MLflow's words in, secrets out).

use std::time::{Duration, Instant};

use slipway_core::{ModelRef, ModelVersion, Secret, Stage};
use slipway_mlflow::{Error, MlflowAuth, MlflowClient, MlflowConfig, ModelRegistry};

use crate::fake::{FakeServer, Reply};

const ALIAS_PRODUCTION: &str = include_str!("../data/get-alias-production.json");
const MODEL_VERSION: &str = include_str!("../data/get-model-version.json");
const RUN: &str = include_str!("../data/get-run.json");
const HISTORY: &str = include_str!("../data/get-metric-history.json");
const SEARCH: &str = include_str!("../data/search-model-versions.json");
const UNKNOWN_ALIAS: &str = include_str!("../data/error-get-alias-unknown.json");
const UNKNOWN_VERSION: &str = include_str!("../data/error-get-unknown-model-version.json");
const BAD_STAGE: &str = include_str!("../data/error-transition-bad-stage.json");
const HOST_REJECTED: &str = include_str!("../data/error-host-header-rejected.json");
const UNAVAILABLE: &str =
    r#"{"error_code": "TEMPORARILY_UNAVAILABLE", "message": "database is locked"}"#;

const MODEL: &str = "iris-random-forest";

/// Fast retries so the suite stays quick; the policy is the same.
fn config(server: &FakeServer) -> MlflowConfig {
    MlflowConfig::new(&server.uri)
        .retries(3, Duration::from_millis(5))
        .timeout(Duration::from_secs(5))
}

fn client(config: MlflowConfig) -> MlflowClient {
    MlflowClient::new(config).expect("client")
}

fn model_ref(text: &str) -> ModelRef {
    ModelRef::parse(text).expect("model ref")
}

fn v(number: u64) -> ModelVersion {
    ModelVersion {
        name: MODEL.to_owned(),
        version: number,
    }
}

#[tokio::test]
async fn retries_503_then_succeeds() {
    let server = FakeServer::start(vec![
        Reply::new(503, UNAVAILABLE),
        Reply::new(200, ALIAS_PRODUCTION),
    ])
    .await;
    let info = client(config(&server))
        .resolve(&model_ref("iris-random-forest@production"))
        .await
        .expect("resolve");
    assert_eq!(info.version, v(1));
    assert_eq!(info.aliases, ["production"]);
    let requests = server.requests();
    assert_eq!(requests.len(), 2, "{requests:#?}");
    for request in &requests {
        assert_eq!(request.method, "GET");
        assert_eq!(
            request.target,
            "/api/2.0/mlflow/registered-models/alias?name=iris-random-forest&alias=production"
        );
        assert_eq!(request.header("authorization"), None);
    }
}

#[tokio::test]
async fn retries_429_honouring_retry_after() {
    let server = FakeServer::start(vec![
        Reply::new(429, "{}").header("retry-after", "0"),
        Reply::new(200, RUN),
    ])
    .await;
    let run = client(config(&server))
        .run_data("699d329d22e04262908ffe0eb1573458")
        .await
        .expect("run");
    assert_eq!(run.metrics.get("accuracy"), Some(&0.93));
    assert_eq!(server.requests().len(), 2);
    assert_eq!(
        server.requests()[1].target,
        "/api/2.0/mlflow/runs/get?run_id=699d329d22e04262908ffe0eb1573458"
    );
}

#[tokio::test]
async fn gives_up_after_the_retry_budget() {
    let server = FakeServer::start(vec![Reply::new(503, UNAVAILABLE); 4]).await;
    let err = client(config(&server).retries(2, Duration::from_millis(5)))
        .resolve(&model_ref("iris-random-forest/1"))
        .await
        .expect_err("503s");
    assert_eq!(server.requests().len(), 3, "first attempt and two retries");
    assert!(matches!(err, Error::Unavailable { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "failed to read version 1 of model `iris-random-forest`: the model registry is unavailable: \
         HTTP 503 Service Unavailable after 3 attempts: TEMPORARILY_UNAVAILABLE: database is locked\n\n\
         hint: the tracking server is failing or overloaded; retry later, or raise MLFLOW_HTTP_REQUEST_MAX_RETRIES"
    );
}

#[tokio::test]
async fn does_not_retry_400_and_quotes_mlflow() {
    let server = FakeServer::start(vec![Reply::new(400, BAD_STAGE)]).await;
    let err = client(config(&server))
        .transition_stage(&v(1), Stage::Production, true)
        .await
        .expect_err("400");
    assert_eq!(server.requests().len(), 1, "4xx is final");
    assert!(matches!(err, Error::Rejected { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "failed to move version 1 of model `iris-random-forest` to stage Production: the model registry rejected \
         the request: INVALID_PARAMETER_VALUE: Invalid Model Version stage: Prod. Value must be one of None, \
         Staging, Production, Archived."
    );
    let request = &server.requests()[0];
    assert_eq!(
        (request.method.as_str(), request.target.as_str()),
        ("POST", "/api/2.0/mlflow/model-versions/transition-stage")
    );
    assert_eq!(request.header("content-type"), Some("application/json"));
    assert_eq!(
        request.json(),
        serde_json::json!({"name": MODEL, "version": "1", "stage": "Production", "archive_existing_versions": true})
    );
}

#[tokio::test]
async fn unknown_alias_is_not_found_in_mlflows_words() {
    let server = FakeServer::start(vec![Reply::new(400, UNKNOWN_ALIAS)]).await;
    let err = client(config(&server))
        .resolve(&model_ref("iris-random-forest@nope"))
        .await
        .expect_err("unknown");
    assert_eq!(server.requests().len(), 1);
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "alias `nope` of model `iris-random-forest` not found in the model registry: INVALID_PARAMETER_VALUE: \
         Registered model alias nope not found.\n\n\
         hint: check the alias name, or point it at a version first (MLflow UI: model page, Aliases)"
    );
}

#[tokio::test]
async fn unknown_version_is_not_found() {
    let server = FakeServer::start(vec![Reply::new(404, UNKNOWN_VERSION)]).await;
    let err = client(config(&server))
        .resolve(&model_ref("no-such-model/1"))
        .await
        .expect_err("unknown");
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
    assert!(
        err.to_string().starts_with(
            "version 1 of model `no-such-model` not found in the model registry: RESOURCE_DOES_NOT_EXIST: \
             Model Version (name=no-such-model, version=1) not found\n\nhint: "
        ),
        "{err}"
    );
    assert_eq!(
        server.requests()[0].target,
        "/api/2.0/mlflow/model-versions/get?name=no-such-model&version=1"
    );
}

#[tokio::test]
async fn times_out_without_retrying() {
    let server = FakeServer::start(vec![
        Reply::new(200, MODEL_VERSION).delay(Duration::from_secs(3)),
    ])
    .await;
    let started = Instant::now();
    let err = client(config(&server).timeout(Duration::from_millis(200)))
        .resolve(&model_ref("iris-random-forest/1"))
        .await
        .expect_err("timeout");
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_secs(2), "took {elapsed:?}");
    assert_eq!(
        server.requests().len(),
        1,
        "a timed-out attempt is not retried"
    );
    let text = err.to_string();
    assert!(matches!(err, Error::Unavailable { .. }), "{err:?}");
    assert!(
        text.starts_with(&format!(
            "failed to read version 1 of model `iris-random-forest`: the model registry is unavailable: no answer from {} within 200ms",
            server.uri
        )),
        "{text}"
    );
    assert!(text.ends_with("hint: the server is slow or stuck; raise MLFLOW_HTTP_REQUEST_TIMEOUT (seconds) if it is just slow"), "{text}");
}

#[tokio::test]
async fn connection_refused_is_retried_then_reported() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let uri = format!("http://{}", listener.local_addr().expect("addr"));
    drop(listener);
    let err = client(MlflowConfig::new(&uri).retries(2, Duration::from_millis(5)))
        .run_data("r1")
        .await
        .expect_err("refused");
    let text = err.to_string();
    assert!(
        text.starts_with(&format!(
            "failed to read run `r1`: the model registry is unavailable: cannot connect to {uri}: "
        )),
        "{text}"
    );
    assert!(text.contains("(after 3 attempts)"), "{text}");
    assert!(
        text.ends_with("hint: is the tracking server running? check MLFLOW_TRACKING_URI"),
        "{text}"
    );
}

#[tokio::test]
async fn sends_bearer_and_basic_auth() {
    let server = FakeServer::start(vec![
        Reply::new(200, MODEL_VERSION),
        Reply::new(200, MODEL_VERSION),
    ])
    .await;
    let bearer = client(config(&server).auth(MlflowAuth::Bearer(Secret::new("tok-123"))));
    bearer
        .resolve(&model_ref("iris-random-forest/1"))
        .await
        .expect("bearer");
    let basic = client(config(&server).auth(MlflowAuth::Basic {
        user: "ci".into(),
        password: Secret::new("pw-456"),
    }));
    basic
        .resolve(&model_ref("iris-random-forest/1"))
        .await
        .expect("basic");
    let requests = server.requests();
    assert_eq!(requests[0].header("authorization"), Some("Bearer tok-123"));
    assert_eq!(
        requests[1].header("authorization"),
        Some("Basic Y2k6cHctNDU2"),
        "base64 of ci:pw-456"
    );
    assert!(!format!("{bearer:?}{basic:?}").contains("tok-123"));
    assert!(!format!("{bearer:?}{basic:?}").contains("pw-456"));
}

#[tokio::test]
async fn secrets_never_reach_error_text() {
    // A proxy that echoes the credential back in its error body.
    let echo = r#"{"error_code": "UNAUTHENTICATED", "message": "token tok-secret-123 is expired"}"#;
    let server = FakeServer::start(vec![Reply::new(401, echo)]).await;
    let err = client(config(&server).auth(MlflowAuth::Bearer(Secret::new("tok-secret-123"))))
        .set_alias(&v(2), "production")
        .await
        .expect_err("401");
    let text = format!("{err}\n{err:?}");
    assert!(!text.contains("tok-secret-123"), "{text}");
    assert_eq!(
        err.to_string(),
        "failed to point alias `production` of model `iris-random-forest` at version 2: the model registry rejected \
         the request: UNAUTHENTICATED: token <redacted> is expired\n\n\
         hint: check the credentials in MLFLOW_TRACKING_TOKEN or MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD, \
         and the user's permissions on this model"
    );
}

#[tokio::test]
async fn plain_text_403_from_host_check_gets_a_hint() {
    let server = FakeServer::start(vec![Reply::new(403, HOST_REJECTED)]).await;
    let err = client(config(&server))
        .resolve(&model_ref("iris-random-forest/1"))
        .await
        .expect_err("403");
    let text = err.to_string();
    assert!(
        text.contains("rejected the request: HTTP 403: Invalid Host header - possible DNS rebinding attack detected\n\nhint: the server refused our Host header"),
        "{text}"
    );
}

#[tokio::test]
async fn writes_send_json_bodies_even_on_delete() {
    let server = FakeServer::start(vec![Reply::new(200, "{}"); 4]).await;
    let client = client(config(&server));
    client
        .set_alias(&v(2), "candidate")
        .await
        .expect("set alias");
    client
        .delete_alias(MODEL, "candidate")
        .await
        .expect("delete alias");
    client
        .set_version_tag(&v(2), "slipway.release", "r-1")
        .await
        .expect("set tag");
    client
        .delete_version_tag(&v(2), "slipway.release")
        .await
        .expect("delete tag");
    let seen: Vec<(String, String, Option<String>, serde_json::Value)> = server
        .requests()
        .into_iter()
        .map(|r| {
            (
                r.method.clone(),
                r.target.clone(),
                r.header("content-type").map(str::to_owned),
                r.json(),
            )
        })
        .collect();
    let json = Some("application/json".to_owned());
    assert_eq!(
        seen,
        [
            (
                "POST".into(),
                "/api/2.0/mlflow/registered-models/alias".into(),
                json.clone(),
                serde_json::json!({"name": MODEL, "alias": "candidate", "version": "2"})
            ),
            (
                "DELETE".into(),
                "/api/2.0/mlflow/registered-models/alias".into(),
                json.clone(),
                serde_json::json!({"name": MODEL, "alias": "candidate"})
            ),
            (
                "POST".into(),
                "/api/2.0/mlflow/model-versions/set-tag".into(),
                json.clone(),
                serde_json::json!({"name": MODEL, "version": "2", "key": "slipway.release", "value": "r-1"})
            ),
            (
                "DELETE".into(),
                "/api/2.0/mlflow/model-versions/delete-tag".into(),
                json,
                serde_json::json!({"name": MODEL, "version": "2", "key": "slipway.release"})
            ),
        ]
    );
}

#[tokio::test]
async fn stage_resolves_to_the_latest_version_in_it() {
    // `search-model-versions.json` lists v2 (Production) and v1 (Archived): the same shape as
    // get-latest-versions' answer.
    let server = FakeServer::start(vec![Reply::new(200, SEARCH), Reply::new(200, r#"{}"#)]).await;
    let client = client(config(&server));
    let info = client
        .resolve(&model_ref("iris-random-forest/Production"))
        .await
        .expect("stage");
    assert_eq!((info.version.version, info.stage), (2, Stage::Production));
    let request = &server.requests()[0];
    assert_eq!(
        request.target,
        "/api/2.0/mlflow/registered-models/get-latest-versions"
    );
    assert_eq!(
        request.json(),
        serde_json::json!({"name": MODEL, "stages": ["Production"]})
    );

    let err = client
        .resolve(&model_ref("iris-random-forest/Staging"))
        .await
        .expect_err("none in Staging");
    assert!(
        err.to_string().starts_with("a version of model `iris-random-forest` in stage Staging not found in the model registry\n\nhint: transition a version to Staging first"),
        "{err}"
    );
}

#[tokio::test]
async fn metric_history_follows_pages() {
    let first = r#"{"metrics": [{"key": "loss", "value": 0.9, "timestamp": 10, "step": 0}], "next_page_token": "p2"}"#;
    let server = FakeServer::start(vec![Reply::new(200, first), Reply::new(200, HISTORY)]).await;
    let points = client(config(&server))
        .metric_history("run-1", "loss")
        .await
        .expect("history");
    let values: Vec<(i64, f64)> = points.iter().map(|p| (p.step, p.value)).collect();
    assert_eq!(values, [(0, 0.9), (0, 0.93)]);
    let targets: Vec<String> = server.requests().into_iter().map(|r| r.target).collect();
    assert_eq!(
        targets,
        [
            "/api/2.0/mlflow/metrics/get-history?run_id=run-1&metric_key=loss",
            "/api/2.0/mlflow/metrics/get-history?run_id=run-1&metric_key=loss&page_token=p2",
        ]
    );
}

#[tokio::test]
async fn a_non_mlflow_answer_is_reported_not_parsed_into_nonsense() {
    // A login page from an auth proxy, served with 200.
    let server =
        FakeServer::start(vec![Reply::new(200, "<html><body>Sign in</body></html>")]).await;
    let err = client(config(&server))
        .resolve(&model_ref("iris-random-forest/1"))
        .await
        .expect_err("html");
    assert!(matches!(err, Error::Unavailable { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.starts_with(
            "failed to read version 1 of model `iris-random-forest`: the model registry is unavailable: \
             unexpected response to GET model-versions/get: expected value at line 1 column 1"
        ),
        "{text}"
    );
    assert!(
        text.ends_with("hint: is MLFLOW_TRACKING_URI an MLflow tracking server (2.9 or later)?"),
        "{text}"
    );
}

/// One recorded exchange from `tests/data/`: `NAME.request.txt` (`STATUS METHOD URL [JSON]`) and
/// the response body `NAME.json`.
struct Recording {
    status: u16,
    method: String,
    /// Path and query, as the client should send them.
    target: String,
    /// The JSON request body, if the request had one.
    body: Option<serde_json::Value>,
    response: String,
}

fn recording(name: &str) -> Recording {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    let read = |file: String| {
        std::fs::read_to_string(dir.join(&file)).unwrap_or_else(|err| panic!("{file}: {err}"))
    };
    let request = read(format!("{name}.request.txt"));
    let mut parts = request.splitn(4, ' ');
    let mut next = || parts.next().unwrap_or_default().trim().to_owned();
    let (status, method, url, body) = (next(), next(), next(), next());
    Recording {
        status: status.parse().expect("status"),
        method,
        target: url
            .strip_prefix("http://localhost:5000")
            .expect("recorded URL")
            .to_owned(),
        body: (!body.is_empty()).then(|| serde_json::from_str(&body).expect("request body")),
        response: read(format!("{name}.json")),
    }
}

/// A call of each `ModelRegistry` method `MlflowClient` implements.
#[derive(Debug)]
enum Call {
    Resolve(&'static str),
    RunData(&'static str),
    History(&'static str, &'static str),
    SetAlias(u64, &'static str),
    DeleteAlias(&'static str),
    SetTag(u64, &'static str, &'static str),
    DeleteTag(u64, &'static str),
    Transition(u64, Stage, bool),
}

/// Performs `call` and describes the outcome in one line (an error by its first line).
async fn perform(client: &MlflowClient, call: &Call) -> String {
    let outcome = match call {
        Call::Resolve(reference) => client.resolve(&model_ref(reference)).await.map(|info| {
            format!(
                "{} {} {} aliases={:?} tags={:?} run={}",
                info.version,
                info.status.as_str(),
                info.stage.as_str(),
                info.aliases,
                info.tags,
                info.run_id.unwrap_or_default()
            )
        }),
        Call::RunData(run) => client
            .run_data(run)
            .await
            .map(|data| format!("{:?} {:?}", data.metrics, data.params.len())),
        Call::History(run, key) => client.metric_history(run, key).await.map(|points| {
            points
                .iter()
                .map(|p| format!("{}@{}={}", p.step, p.timestamp_ms, p.value))
                .collect::<Vec<_>>()
                .join(" ")
        }),
        Call::SetAlias(number, alias) => client
            .set_alias(&v(*number), alias)
            .await
            .map(|()| "ok".to_owned()),
        Call::DeleteAlias(alias) => client
            .delete_alias(MODEL, alias)
            .await
            .map(|()| "ok".to_owned()),
        Call::SetTag(number, key, value) => client
            .set_version_tag(&v(*number), key, value)
            .await
            .map(|()| "ok".to_owned()),
        Call::DeleteTag(number, key) => client
            .delete_version_tag(&v(*number), key)
            .await
            .map(|()| "ok".to_owned()),
        Call::Transition(number, stage, archive) => client
            .transition_stage(&v(*number), *stage, *archive)
            .await
            .map(|()| "ok".to_owned()),
    };
    match outcome {
        Ok(text) => text,
        Err(err) => {
            let kind = match err {
                Error::NotFound { .. } => "NotFound",
                Error::Rejected { .. } => "Rejected",
                Error::Unavailable { .. } => "Unavailable",
            };
            let text = err.to_string();
            format!("{kind}: {}", text.lines().next().unwrap_or_default())
        }
    }
}

/// Every endpoint the client uses, each served its real recorded answer: the client must send
/// exactly the recorded request (method, path, query, JSON body) and read the answer as shown.
/// `error-transition-bad-stage` is left out: its request has stage `Prod`, which `Stage` cannot
/// express (it is served in `does_not_retry_400_and_quotes_mlflow`).
#[tokio::test]
async fn every_endpoint_answers_as_recorded() {
    const RUN: &str = "699d329d22e04262908ffe0eb1573458";
    let cases: &[(&str, Call, &str)] = &[
        (
            "get-model-version",
            Call::Resolve("iris-random-forest/1"),
            "iris-random-forest/1 READY Production aliases=[\"production\"] tags={} run=699d329d22e04262908ffe0eb1573458",
        ),
        (
            "get-alias-production",
            Call::Resolve("iris-random-forest@production"),
            "iris-random-forest/1 READY Production aliases=[\"production\"] tags={} run=699d329d22e04262908ffe0eb1573458",
        ),
        (
            "get-alias-production-after-promote",
            Call::Resolve("iris-random-forest@production"),
            "iris-random-forest/2 READY Production aliases=[\"candidate\", \"production\"] tags={} run=699d329d22e04262908ffe0eb1573458",
        ),
        (
            "get-model-version-1-after-archive",
            Call::Resolve("iris-random-forest/1"),
            "iris-random-forest/1 READY Archived aliases=[] tags={} run=699d329d22e04262908ffe0eb1573458",
        ),
        (
            "post-get-latest-versions-production",
            Call::Resolve("iris-random-forest/Production"),
            "iris-random-forest/1 READY Production aliases=[\"production\"] tags={} run=6f70394bd19e4106929da458d6da42d9",
        ),
        (
            "get-run",
            Call::RunData(RUN),
            "{\"accuracy\": 0.93, \"f1\": 0.91} 2",
        ),
        (
            "get-metric-history",
            Call::History(RUN, "accuracy"),
            "0@1795311002679=0.93",
        ),
        (
            "post-set-alias-candidate-v2",
            Call::SetAlias(2, "candidate"),
            "ok",
        ),
        (
            "delete-alias-candidate",
            Call::DeleteAlias("candidate"),
            "ok",
        ),
        (
            "post-set-version-tag",
            Call::SetTag(2, "slipway.release", "r-42"),
            "ok",
        ),
        (
            "delete-version-tag",
            Call::DeleteTag(2, "slipway.release"),
            "ok",
        ),
        (
            "post-transition-stage-v2-production",
            Call::Transition(2, Stage::Production, true),
            "ok",
        ),
        (
            "error-get-alias-unknown",
            Call::Resolve("iris-random-forest@nope"),
            "NotFound: alias `nope` of model `iris-random-forest` not found in the model registry: INVALID_PARAMETER_VALUE: Registered model alias nope not found.",
        ),
        (
            "error-get-alias-unknown-model",
            Call::Resolve("no-such-model@production"),
            "NotFound: model `no-such-model` not found in the model registry: RESOURCE_DOES_NOT_EXIST: Registered Model with name=no-such-model not found",
        ),
        (
            "error-get-unknown-model-version",
            Call::Resolve("no-such-model/1"),
            "NotFound: version 1 of model `no-such-model` not found in the model registry: RESOURCE_DOES_NOT_EXIST: Model Version (name=no-such-model, version=1) not found",
        ),
        (
            "error-get-latest-versions-unknown-model",
            Call::Resolve("no-such-model/Production"),
            "NotFound: model `no-such-model` not found in the model registry: RESOURCE_DOES_NOT_EXIST: Registered Model with name=no-such-model not found",
        ),
        (
            "error-get-run-unknown",
            Call::RunData("0123456789abcdef0123456789abcdef"),
            "NotFound: run `0123456789abcdef0123456789abcdef` not found in the model registry: RESOURCE_DOES_NOT_EXIST: Run with id=0123456789abcdef0123456789abcdef not found",
        ),
        (
            "error-set-alias-unknown-version",
            Call::SetAlias(2, "candidate"),
            "NotFound: version 2 of model `iris-random-forest` not found in the model registry: RESOURCE_DOES_NOT_EXIST: Model Version (name=iris-random-forest, version=2) not found",
        ),
        (
            "error-set-version-tag-unknown-version",
            Call::SetTag(9, "slipway.release", "r-42"),
            "NotFound: version 9 of model `iris-random-forest` not found in the model registry: RESOURCE_DOES_NOT_EXIST: Model Version (name=iris-random-forest, version=9) not found",
        ),
    ];
    for (name, call, want) in cases {
        let recorded = recording(name);
        let server = FakeServer::start(vec![Reply::new(recorded.status, &recorded.response)]).await;
        let got = perform(&client(config(&server)), call).await;
        assert_eq!(got, *want, "{name}: {call:?}");
        let sent = server.requests();
        assert_eq!(sent.len(), 1, "{name}: one request, no retry: {sent:#?}");
        let sent = &sent[0];
        assert_eq!(
            (sent.method.as_str(), sent.target.as_str()),
            (recorded.method.as_str(), recorded.target.as_str()),
            "{name}"
        );
        let body = (!sent.body.is_empty()).then(|| sent.json());
        assert_eq!(body, recorded.body, "{name}: request body");
    }
}

/// With the shipped defaults (3 retries, 0.5 s doubling backoff), a server that keeps failing
/// costs exactly 4 requests and about 3.5 s, not a storm.
#[tokio::test]
async fn default_retry_budget_is_bounded() {
    let internal = r#"{"error_code": "INTERNAL_ERROR", "message": "boom"}"#;
    let failing = FakeServer::start(vec![Reply::new(500, internal); 20]).await;
    let started = Instant::now();
    let err = MlflowClient::new(MlflowConfig::new(&failing.uri))
        .expect("client")
        .run_data("r1")
        .await
        .expect_err("500");
    let took = started.elapsed();
    assert!(matches!(err, Error::Unavailable { .. }), "{err:?}");
    assert_eq!(failing.requests().len(), 4, "1 attempt + 3 retries");
    assert!(err.to_string().contains("after 4 attempts"), "{err}");
    assert!(
        took >= Duration::from_millis(3_500) && took < Duration::from_secs(10),
        "backoff 0.5 + 1 + 2 s: took {took:?}"
    );
}
