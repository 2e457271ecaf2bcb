//! `MlflowClient` against the model that `cargo xtask services start` seeded with MLflow's own
//! Python client (`xtask/seed/mlflow_seed.py`): `SLIPWAY_TEST_MLFLOW` is the server and
//! `SLIPWAY_TEST_MLFLOW_SEEDED` the model's name.
//!
//! The seeded model is read-only here, so tests can run in parallel and in any order: tests that
//! write (aliases, stages, tags) first copy its versions into a uniquely named model, with the
//! same LoggedModel sources and runs the Python client created. Without the variables the tests
//! skip with a note on stderr, except under CI, where a silent skip would hide a broken setup.
//!
//! The failure tests check that an unknown model, an unknown alias, a stopped server and a 500
//! each give their own error and hint, and count the attempts each one cost.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use slipway_core::{ModelRef, ModelVersion, Stage};
use slipway_mlflow::{
    Error, MlflowClient, MlflowConfig, ModelRegistry, VersionInfo, VersionStatus,
};

use crate::fake::{CountingProxy, FakeServer, Reply};

const SERVER_ENV: &str = "SLIPWAY_TEST_MLFLOW";
const SEEDED_ENV: &str = "SLIPWAY_TEST_MLFLOW_SEEDED";

/// `T0_MS` of the seed script: metric timestamps are fixed so histories compare exactly.
const T0_MS: i64 = 1_717_495_200_000;

/// The server and the seeded model's name.
struct Seeded {
    uri: String,
    model: String,
}

/// The seeded server, or `None` (after saying so) when the test should skip.
#[allow(
    clippy::print_stderr,
    reason = "a skipped test must say so; stderr is the test's report"
)]
fn seeded(test: &str) -> Option<Seeded> {
    let var = |name| {
        std::env::var(name)
            .ok()
            .map(|value| value.trim().to_owned())
            .filter(|value| !value.is_empty())
    };
    match (var(SERVER_ENV), var(SEEDED_ENV)) {
        (Some(uri), Some(model)) => Some(Seeded { uri, model }),
        _ if std::env::var_os("CI").is_some() => panic!(
            "{SERVER_ENV} or {SEEDED_ENV} is not set, and CI is: the seeded-MLflow tests must run in CI\n\n\
             hint: run `cargo xtask services` (it starts and seeds MLflow and prints the variables; \
             `source target/services/env` sets them)"
        ),
        _ => {
            eprintln!(
                "skipping {test}: {SERVER_ENV} or {SEEDED_ENV} is not set (run `cargo xtask services start` and `source target/services/env`)"
            );
            None
        }
    }
}

fn client(uri: &str) -> MlflowClient {
    MlflowClient::new(MlflowConfig::new(uri).timeout(Duration::from_secs(10))).expect("client")
}

fn model_ref(text: &str) -> ModelRef {
    ModelRef::parse(text).expect("model ref")
}

fn version(name: &str, number: u64) -> ModelVersion {
    ModelVersion {
        name: name.to_owned(),
        version: number,
    }
}

/// A name no other test, or earlier run of this one, has used on this server.
fn unique(test: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_millis();
    format!(
        "slipway-it-{test}-{}-{now}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

async fn rest(http: &reqwest::Client, base: &str, endpoint: &str, body: Value) -> Value {
    let response = http
        .post(format!("{base}/api/2.0/mlflow/{endpoint}"))
        .json(&body)
        .send()
        .await
        .unwrap_or_else(|err| panic!("{endpoint}: {err}"));
    let status = response.status();
    let text = response.text().await.expect("response body");
    assert!(
        status.is_success(),
        "{endpoint} with {body}: {status} {text}"
    );
    serde_json::from_str(&text).expect("JSON answer")
}

/// Registers one more version of `copy` from the seeded `source` version (same LoggedModel and run).
async fn copy_version(http: &reqwest::Client, base: &str, copy: &str, source: &VersionInfo) -> u64 {
    // MLflow 3 needs `model_id` with a `models:/m-<id>` source.
    let model_id = source
        .source
        .strip_prefix("models:/")
        .expect("the Python client registers LoggedModel sources");
    let created = rest(
        http,
        base,
        "model-versions/create",
        json!({
            "name": copy,
            "source": source.source,
            "run_id": source.run_id,
            "model_id": model_id,
        }),
    )
    .await;
    created["model_version"]["version"]
        .as_str()
        .expect("version")
        .parse()
        .expect("number")
}

/// A new model named after `test` with copies of the seeded versions 1 and 2 (no aliases, stage
/// None, no tags): what the writing tests change instead of the fixture.
async fn copy_of_seeded(seeded: &Seeded, test: &str) -> (String, [VersionInfo; 2]) {
    let client = client(&seeded.uri);
    let mut originals = Vec::new();
    for number in [1, 2] {
        let reference = model_ref(&format!("{}/{number}", seeded.model));
        originals.push(client.resolve(&reference).await.expect("seeded version"));
    }
    let http = reqwest::Client::new();
    let copy = unique(test);
    rest(
        &http,
        &seeded.uri,
        "registered-models/create",
        json!({ "name": copy }),
    )
    .await;
    for (expected, original) in [1, 2].into_iter().zip(&originals) {
        assert_eq!(
            copy_version(&http, &seeded.uri, &copy, original).await,
            expected
        );
    }
    let originals: [VersionInfo; 2] = originals.try_into().expect("two versions");
    (copy, originals)
}

fn metrics(pairs: &[(&str, f64)]) -> BTreeMap<String, f64> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect()
}

#[tokio::test]
async fn resolves_aliases_stage_and_numbers_as_the_python_client_wrote_them() {
    let Some(seeded) = seeded("resolves_aliases_stage_and_numbers_as_the_python_client_wrote_them")
    else {
        return;
    };
    let name = seeded.model.as_str();
    let client = client(&seeded.uri);

    let production = client
        .resolve(&model_ref(&format!("{name}@production")))
        .await
        .expect("production alias");
    assert_eq!(production.version, version(name, 1));
    assert_eq!(production.status, VersionStatus::Ready);
    assert_eq!(production.stage, Stage::Production);
    assert_eq!(production.aliases, ["production"]);
    assert!(production.tags.is_empty(), "{:?}", production.tags);
    assert!(
        production.source.starts_with("models:/m-"),
        "MLflow 3 registers the run's LoggedModel: {}",
        production.source
    );
    let run_id = production.run_id.clone().expect("run id");
    assert!(
        run_id.len() == 32 && run_id.chars().all(|c| c.is_ascii_hexdigit()),
        "{run_id}"
    );

    let by_stage = client
        .resolve(&model_ref(&format!("{name}/Production")))
        .await
        .expect("by stage");
    assert_eq!(
        by_stage, production,
        "stage and alias name the same version"
    );
    let by_number = client
        .resolve(&model_ref(&format!("{name}/1")))
        .await
        .expect("by number");
    assert_eq!(by_number, production);

    let candidate = client
        .resolve(&model_ref(&format!("{name}@candidate")))
        .await
        .expect("candidate alias");
    assert_eq!(candidate.version, version(name, 2));
    assert_eq!(
        (candidate.stage, candidate.aliases.as_slice()),
        (Stage::None, ["candidate".to_owned()].as_slice())
    );
    assert_eq!(
        candidate.tags,
        [("validation_status".to_owned(), "approved".to_owned())]
            .into_iter()
            .collect::<BTreeMap<_, _>>()
    );
    assert_ne!(
        candidate.run_id, production.run_id,
        "each version has its run"
    );
    assert_ne!(candidate.source, production.source);

    let staging = client
        .resolve(&model_ref(&format!("{name}/Staging")))
        .await
        .expect_err("nothing in Staging");
    assert!(matches!(staging, Error::NotFound { .. }), "{staging:?}");
}

#[tokio::test]
async fn reads_metrics_params_and_history() {
    let Some(seeded) = seeded("reads_metrics_params_and_history") else {
        return;
    };
    let name = seeded.model.as_str();
    let client = client(&seeded.uri);
    let run_of = |info: VersionInfo| info.run_id.expect("run id");
    let v1_run = run_of(
        client
            .resolve(&model_ref(&format!("{name}@production")))
            .await
            .expect("v1"),
    );
    let v2_run = run_of(
        client
            .resolve(&model_ref(&format!("{name}@candidate")))
            .await
            .expect("v2"),
    );

    let v1 = client.run_data(&v1_run).await.expect("v1 run");
    assert_eq!(
        v1.metrics,
        metrics(&[("accuracy", 0.93), ("f1", 0.91)]),
        "latest accuracy is the one at the highest step"
    );
    let params: Vec<(&str, &str)> = v1
        .params
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        params,
        [
            ("criterion", "gini"),
            ("max_depth", "5"),
            ("n_estimators", "100")
        ]
    );
    let v2 = client.run_data(&v2_run).await.expect("v2 run");
    assert_eq!(v2.metrics, metrics(&[("accuracy", 0.95), ("f1", 0.93)]));
    assert_eq!(
        v2.params.get("n_estimators").map(String::as_str),
        Some("200")
    );

    let history = |run: String, key: &'static str| {
        let client = client.clone();
        async move {
            client
                .metric_history(&run, key)
                .await
                .expect("history")
                .iter()
                .map(|p| (p.timestamp_ms - T0_MS, p.step, p.value))
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        history(v1_run.clone(), "accuracy").await,
        [(0, 0, 0.81), (1000, 1, 0.89), (2000, 2, 0.93)]
    );
    assert_eq!(history(v1_run.clone(), "f1").await, [(2000, 2, 0.91)]);
    assert_eq!(history(v2_run, "accuracy").await, [(0, 0, 0.95)]);
    assert!(history(v1_run, "no-such-metric").await.is_empty());
}

#[tokio::test]
async fn sets_and_moves_aliases_on_a_copy() {
    let Some(seeded) = seeded("sets_and_moves_aliases_on_a_copy") else {
        return;
    };
    let (copy, originals) = copy_of_seeded(&seeded, "alias").await;
    let client = client(&seeded.uri);
    let (v1, v2) = (version(&copy, 1), version(&copy, 2));
    let resolve = |reference: String| {
        let client = client.clone();
        async move { client.resolve(&model_ref(&reference)).await }
    };

    // The copies point at the Python client's runs, so they read the same metrics.
    let copied = resolve(format!("{copy}/1")).await.expect("copy v1");
    assert_eq!(copied.run_id, originals[0].run_id);
    assert_eq!(copied.source, originals[0].source);
    assert!(copied.aliases.is_empty() && copied.stage == Stage::None);

    client.set_alias(&v1, "production").await.expect("set");
    let set = resolve(format!("{copy}@production"))
        .await
        .expect("set alias");
    assert_eq!(
        (set.version, set.aliases),
        (v1.clone(), vec!["production".to_owned()])
    );

    client.set_alias(&v2, "production").await.expect("move");
    let moved = resolve(format!("{copy}@production"))
        .await
        .expect("moved alias");
    assert_eq!(moved.version, v2);
    assert_eq!(moved.run_id, originals[1].run_id);
    assert!(
        resolve(format!("{copy}/1"))
            .await
            .expect("v1")
            .aliases
            .is_empty(),
        "the alias left v1"
    );

    client
        .set_alias(&v2, "candidate")
        .await
        .expect("second alias");
    assert_eq!(
        resolve(format!("{copy}/2")).await.expect("v2").aliases,
        ["candidate", "production"]
    );
    client
        .delete_alias(&copy, "candidate")
        .await
        .expect("delete");
    let gone = resolve(format!("{copy}@candidate"))
        .await
        .expect_err("deleted alias");
    assert!(matches!(gone, Error::NotFound { .. }), "{gone:?}");
    client
        .delete_alias(&copy, "candidate")
        .await
        .expect("deleting a missing alias succeeds, as in MLflow");

    // The fixture itself is untouched.
    let fixture = resolve(format!("{}@production", seeded.model))
        .await
        .expect("fixture");
    assert_eq!(fixture.version, version(&seeded.model, 1));
}

#[tokio::test]
async fn transitions_a_fresh_version_and_archives_the_old_one() {
    let Some(seeded) = seeded("transitions_a_fresh_version_and_archives_the_old_one") else {
        return;
    };
    let (copy, originals) = copy_of_seeded(&seeded, "stage").await;
    let client = client(&seeded.uri);
    let resolve = |reference: String| {
        let client = client.clone();
        async move { client.resolve(&model_ref(&reference)).await }
    };
    let v1 = version(&copy, 1);
    client
        .transition_stage(&v1, Stage::Production, false)
        .await
        .expect("v1 to Production");
    assert_eq!(
        resolve(format!("{copy}/Production"))
            .await
            .expect("stage")
            .version,
        v1
    );

    // A version created now, from the seeded candidate's LoggedModel.
    let fresh = copy_version(&reqwest::Client::new(), &seeded.uri, &copy, &originals[1]).await;
    assert_eq!(fresh, 3);
    let v3 = version(&copy, fresh);
    client
        .transition_stage(&v3, Stage::Staging, false)
        .await
        .expect("v3 to Staging");
    let staged = resolve(format!("{copy}/Staging")).await.expect("staging");
    assert_eq!(
        (staged.version.clone(), staged.stage),
        (v3.clone(), Stage::Staging)
    );

    client
        .transition_stage(&v3, Stage::Production, true)
        .await
        .expect("v3 to Production, archiving v1");
    let live = resolve(format!("{copy}/Production"))
        .await
        .expect("production");
    assert_eq!((live.version, live.stage), (v3, Stage::Production));
    assert_eq!(
        resolve(format!("{copy}/1")).await.expect("v1").stage,
        Stage::Archived
    );
    assert!(
        resolve(format!("{copy}/Staging")).await.is_err(),
        "v3 left Staging"
    );
}

#[tokio::test]
async fn sets_and_deletes_version_tags_on_a_copy() {
    let Some(seeded) = seeded("sets_and_deletes_version_tags_on_a_copy") else {
        return;
    };
    let (copy, _) = copy_of_seeded(&seeded, "tags").await;
    let client = client(&seeded.uri);
    let v2 = version(&copy, 2);
    let tags = || {
        let client = client.clone();
        let reference = model_ref(&format!("{copy}/2"));
        async move { client.resolve(&reference).await.expect("v2").tags }
    };
    assert!(tags().await.is_empty(), "tags are not copied");

    client
        .set_version_tag(&v2, "slipway.release", "r-42")
        .await
        .expect("set");
    client
        .set_version_tag(&v2, "validation_status", "approved")
        .await
        .expect("set second");
    client
        .set_version_tag(&v2, "slipway.release", "r-43")
        .await
        .expect("overwrite");
    assert_eq!(
        tags().await,
        [
            ("slipway.release".to_owned(), "r-43".to_owned()),
            ("validation_status".to_owned(), "approved".to_owned())
        ]
        .into_iter()
        .collect::<BTreeMap<_, _>>()
    );
    client
        .delete_version_tag(&v2, "slipway.release")
        .await
        .expect("delete");
    client
        .delete_version_tag(&v2, "slipway.release")
        .await
        .expect("deleting a missing tag succeeds, as in MLflow");
    assert_eq!(
        tags().await.keys().collect::<Vec<_>>(),
        ["validation_status"]
    );

    let unknown = client
        .set_version_tag(&version(&copy, 9), "k", "v")
        .await
        .expect_err("unknown version");
    assert!(matches!(unknown, Error::NotFound { .. }), "{unknown:?}");
}

/// The hint of an error text (after `\n\nhint: `).
fn hint(text: &str) -> &str {
    text.split_once("\n\nhint: ").map_or("", |(_, hint)| hint)
}

/// An unknown model, an unknown alias, a stopped server and a 500: four errors a release engineer
/// must tell apart at a glance, each with its own hint, and none of them a retry storm.
#[tokio::test]
async fn failures_are_distinct_clear_and_bounded() {
    let Some(seeded) = seeded("failures_are_distinct_clear_and_bounded") else {
        return;
    };
    let fast = |uri: &str| MlflowConfig::new(uri).retries(2, Duration::from_millis(10));

    // Against the real server, through a proxy that counts what reaches it.
    let proxy = CountingProxy::start(&seeded.uri).await;
    let real = MlflowClient::new(fast(&proxy.uri)).expect("client");
    let missing = unique("missing");
    let unknown_model = real
        .resolve(&model_ref(&format!("{missing}@production")))
        .await
        .expect_err("unknown model");
    assert_eq!(proxy.requests().len(), 1, "a 404 is final");
    let unknown_alias = real
        .resolve(&model_ref(&format!("{}@no-such-alias", seeded.model)))
        .await
        .expect_err("unknown alias");
    assert_eq!(proxy.requests().len(), 2, "an unknown alias is final");

    // Nothing listens on this port.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let stopped_uri = format!("http://{}", listener.local_addr().expect("addr"));
    drop(listener);
    let started = Instant::now();
    let stopped = MlflowClient::new(fast(&stopped_uri))
        .expect("client")
        .resolve(&model_ref(&format!("{}@production", seeded.model)))
        .await
        .expect_err("stopped server");
    let stopped_took = started.elapsed();

    // MLflow's own 500 body shape; a real server cannot be made to fail on demand.
    let internal = r#"{"error_code": "INTERNAL_ERROR", "message": "(sqlite3.OperationalError) disk I/O error"}"#;
    let failing = FakeServer::start(vec![Reply::new(500, internal); 10]).await;
    let server_error = MlflowClient::new(fast(&failing.uri))
        .expect("client")
        .resolve(&model_ref(&format!("{}@production", seeded.model)))
        .await
        .expect_err("500");
    assert_eq!(
        failing.requests().len(),
        3,
        "first attempt and 2 retries, then stop"
    );

    let texts: Vec<String> = [&unknown_model, &unknown_alias, &stopped, &server_error]
        .iter()
        .map(|err| err.to_string())
        .collect();
    assert_eq!(
        texts[0],
        format!(
            "model `{missing}` not found in the model registry: RESOURCE_DOES_NOT_EXIST: \
             Registered Model with name={missing} not found\n\n\
             hint: check the registered model name (it is case-sensitive)"
        )
    );
    assert_eq!(
        texts[1],
        format!(
            "alias `no-such-alias` of model `{}` not found in the model registry: INVALID_PARAMETER_VALUE: \
             Registered model alias no-such-alias not found.\n\n\
             hint: check the alias name, or point it at a version first (MLflow UI: model page, Aliases)",
            seeded.model
        )
    );
    assert!(
        texts[2].starts_with(&format!(
            "failed to resolve alias `production` of model `{}`: the model registry is unavailable: \
             cannot connect to {stopped_uri}: ",
            seeded.model
        )),
        "{}",
        texts[2]
    );
    assert!(texts[2].contains("(after 3 attempts)"), "{}", texts[2]);
    assert_eq!(
        hint(&texts[2]),
        "is the tracking server running? check MLFLOW_TRACKING_URI"
    );
    assert_eq!(
        texts[3],
        format!(
            "failed to resolve alias `production` of model `{}`: the model registry is unavailable: \
             HTTP 500 Internal Server Error after 3 attempts: INTERNAL_ERROR: (sqlite3.OperationalError) disk I/O error\n\n\
             hint: the tracking server is failing or overloaded; retry later, or raise MLFLOW_HTTP_REQUEST_MAX_RETRIES",
            seeded.model
        )
    );
    let kinds: Vec<&str> = [&unknown_model, &unknown_alias, &stopped, &server_error]
        .iter()
        .map(|err| match err {
            Error::NotFound { .. } => "not found",
            Error::Rejected { .. } => "rejected",
            Error::Unavailable { .. } => "unavailable",
        })
        .collect();
    assert_eq!(
        kinds,
        ["not found", "not found", "unavailable", "unavailable"]
    );
    let mut hints: Vec<&str> = texts.iter().map(|text| hint(text)).collect();
    hints.sort_unstable();
    hints.dedup();
    assert_eq!(hints.len(), 4, "each failure has its own hint: {hints:#?}");
    // Backoff 10 ms then 20 ms: a refused connection fails fast; generous for a loaded machine.
    assert!(
        stopped_took < Duration::from_secs(5),
        "took {stopped_took:?}"
    );
}
