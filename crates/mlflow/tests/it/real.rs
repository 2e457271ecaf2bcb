//! `MlflowClient` against a real MLflow tracking server at `SLIPWAY_TEST_MLFLOW`.
//!
//! Each test seeds its own experiment, run and uniquely named registered model through MLflow's
//! REST API (the path the notes in shared/notes/real-services.md checked), so tests can run in
//! parallel and against a server that already holds data. Without `SLIPWAY_TEST_MLFLOW` the tests
//! skip with a note on stderr, except under CI, where a silent skip would hide a broken setup.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use slipway_core::{ModelRef, ModelVersion, Stage};
use slipway_mlflow::{Error, MlflowClient, MlflowConfig, ModelRegistry, VersionStatus};

const SERVER_ENV: &str = "SLIPWAY_TEST_MLFLOW";

/// The server's address, or `None` (after saying so) when the test should skip.
#[allow(
    clippy::print_stderr,
    reason = "a skipped test must say so; stderr is the test's report"
)]
fn server(test: &str) -> Option<String> {
    match std::env::var(SERVER_ENV) {
        Ok(uri) if !uri.trim().is_empty() => Some(uri.trim().to_owned()),
        _ if std::env::var_os("CI").is_some() => panic!(
            "{SERVER_ENV} is not set, and CI is: the real-MLflow tests must run in CI\n\n\
             hint: run `cargo xtask services` (it starts MLflow and prints the variables; \
             `eval \"$(cargo xtask services)\"` sets them)"
        ),
        _ => {
            eprintln!(
                "skipping {test}: {SERVER_ENV} is not set (run `eval \"$(cargo xtask services)\"` to test against a real MLflow)"
            );
            None
        }
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_millis() as i64
}

/// A name no other test, or earlier run of this one, has used on this server.
fn unique(test: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    format!(
        "slipway-it-{test}-{}-{}-{}",
        std::process::id(),
        now_ms(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// What [`seed`] created: model `name` with versions 1 and 2 from `run_id`, alias `production`
/// on version 1.
struct Seeded {
    name: String,
    run_id: String,
}

async fn post(http: &reqwest::Client, base: &str, endpoint: &str, body: Value) -> Value {
    let response = http
        .post(format!("{base}/api/2.0/mlflow/{endpoint}"))
        .json(&body)
        .send()
        .await
        .unwrap_or_else(|err| panic!("seeding {endpoint}: {err}"));
    let status = response.status();
    let text = response.text().await.expect("seed response body");
    assert!(
        status.is_success(),
        "seeding {endpoint} with {body}: {status} {text}"
    );
    serde_json::from_str(&text).expect("seed response is JSON")
}

async fn seed(base: &str, test: &str) -> Seeded {
    let http = reqwest::Client::new();
    let name = unique(test);
    let experiment = post(&http, base, "experiments/create", json!({ "name": name })).await;
    let experiment_id = experiment["experiment_id"]
        .as_str()
        .expect("experiment_id")
        .to_owned();
    let start = now_ms();
    let run = post(
        &http,
        base,
        "runs/create",
        json!({ "experiment_id": experiment_id, "start_time": start, "run_name": "rf-train" }),
    )
    .await;
    let run_id = run["run"]["info"]["run_id"]
        .as_str()
        .expect("run_id")
        .to_owned();
    post(
        &http,
        base,
        "runs/log-batch",
        json!({
            "run_id": run_id,
            "metrics": [
                { "key": "accuracy", "value": 0.81, "timestamp": start, "step": 0 },
                { "key": "accuracy", "value": 0.93, "timestamp": start + 1, "step": 1 },
                { "key": "f1", "value": 0.91, "timestamp": start + 1, "step": 1 },
            ],
            "params": [{ "key": "n_estimators", "value": "10" }, { "key": "max_depth", "value": "3" }],
        }),
    )
    .await;
    post(
        &http,
        base,
        "runs/update",
        json!({ "run_id": run_id, "status": "FINISHED", "end_time": now_ms() }),
    )
    .await;
    post(
        &http,
        base,
        "registered-models/create",
        json!({ "name": name }),
    )
    .await;
    for _ in 0..2 {
        post(
            &http,
            base,
            "model-versions/create",
            json!({ "name": name, "source": format!("runs:/{run_id}/model"), "run_id": run_id }),
        )
        .await;
    }
    post(
        &http,
        base,
        "registered-models/alias",
        json!({ "name": name, "alias": "production", "version": "1" }),
    )
    .await;
    Seeded { name, run_id }
}

fn client(uri: &str) -> MlflowClient {
    MlflowClient::new(MlflowConfig::new(uri).timeout(Duration::from_secs(10))).expect("client")
}

fn model_ref(text: &str) -> ModelRef {
    ModelRef::parse(text).expect("model ref")
}

#[tokio::test]
async fn resolves_by_alias_number_and_stage_and_reads_the_run() {
    let Some(uri) = server("resolves_by_alias_number_and_stage_and_reads_the_run") else {
        return;
    };
    let seeded = seed(&uri, "resolve").await;
    let name = &seeded.name;
    let client = client(&uri);

    let by_alias = client
        .resolve(&model_ref(&format!("{name}@production")))
        .await
        .expect("by alias");
    assert_eq!(
        by_alias.version,
        ModelVersion {
            name: name.clone(),
            version: 1
        }
    );
    assert_eq!(by_alias.status, VersionStatus::Ready);
    assert_eq!(by_alias.source, format!("runs:/{}/model", seeded.run_id));
    assert_eq!(by_alias.run_id.as_deref(), Some(seeded.run_id.as_str()));
    assert_eq!(by_alias.aliases, ["production"]);
    assert_eq!(by_alias.stage, Stage::None);

    let by_number = client
        .resolve(&model_ref(&format!("{name}/2")))
        .await
        .expect("by number");
    assert_eq!(by_number.version.version, 2);
    assert!(by_number.aliases.is_empty());

    client
        .transition_stage(&by_number.version, Stage::Staging, false)
        .await
        .expect("to Staging");
    let by_stage = client
        .resolve(&model_ref(&format!("{name}/Staging")))
        .await
        .expect("by stage");
    assert_eq!(
        (by_stage.version.version, by_stage.stage),
        (2, Stage::Staging)
    );

    let run = client.run_data(&seeded.run_id).await.expect("run");
    assert_eq!(
        run.metrics.get("accuracy"),
        Some(&0.93),
        "latest value is the highest step"
    );
    assert_eq!(run.metrics.get("f1"), Some(&0.91));
    assert_eq!(
        run.params.get("n_estimators").map(String::as_str),
        Some("10")
    );

    let history = client
        .metric_history(&seeded.run_id, "accuracy")
        .await
        .expect("history");
    let steps: Vec<(i64, f64)> = history
        .iter()
        .map(|point| (point.step, point.value))
        .collect();
    assert_eq!(steps, [(0, 0.81), (1, 0.93)]);
    assert!(
        client
            .metric_history(&seeded.run_id, "no-such-metric")
            .await
            .expect("empty")
            .is_empty()
    );
}

#[tokio::test]
async fn moves_aliases_stages_and_tags() {
    let Some(uri) = server("moves_aliases_stages_and_tags") else {
        return;
    };
    let seeded = seed(&uri, "write").await;
    let name = &seeded.name;
    let client = client(&uri);
    let v1 = ModelVersion {
        name: name.clone(),
        version: 1,
    };
    let v2 = ModelVersion {
        name: name.clone(),
        version: 2,
    };

    client
        .set_alias(&v2, "production")
        .await
        .expect("move alias");
    let production = client
        .resolve(&model_ref(&format!("{name}@production")))
        .await
        .expect("resolve");
    assert_eq!(production.version, v2);
    assert!(
        client
            .resolve(&model_ref(&format!("{name}/1")))
            .await
            .expect("v1")
            .aliases
            .is_empty(),
        "moved off v1"
    );

    client.set_alias(&v2, "candidate").await.expect("candidate");
    client
        .delete_alias(name, "candidate")
        .await
        .expect("delete alias");
    let gone = client
        .resolve(&model_ref(&format!("{name}@candidate")))
        .await
        .expect_err("deleted alias");
    assert!(matches!(gone, Error::NotFound { .. }), "{gone:?}");
    client
        .delete_alias(name, "candidate")
        .await
        .expect("deleting a missing alias succeeds, as in MLflow");

    client
        .transition_stage(&v1, Stage::Production, false)
        .await
        .expect("v1 to Production");
    client
        .transition_stage(&v2, Stage::Production, true)
        .await
        .expect("v2 to Production, archiving v1");
    assert_eq!(
        client
            .resolve(&model_ref(&format!("{name}/1")))
            .await
            .expect("v1")
            .stage,
        Stage::Archived
    );
    let in_production = client
        .resolve(&model_ref(&format!("{name}/Production")))
        .await
        .expect("stage");
    assert_eq!(in_production.version, v2);

    client
        .set_version_tag(&v2, "slipway.release", "r-42")
        .await
        .expect("set tag");
    let tagged = client
        .resolve(&model_ref(&format!("{name}@production")))
        .await
        .expect("tagged");
    assert_eq!(
        tagged.tags.get("slipway.release").map(String::as_str),
        Some("r-42")
    );
    client
        .delete_version_tag(&v2, "slipway.release")
        .await
        .expect("delete tag");
    assert!(
        client
            .resolve(&model_ref(&format!("{name}/2")))
            .await
            .expect("untagged")
            .tags
            .is_empty()
    );
}

#[tokio::test]
async fn unknown_things_are_not_found() {
    let Some(uri) = server("unknown_things_are_not_found") else {
        return;
    };
    let seeded = seed(&uri, "unknown").await;
    let name = &seeded.name;
    let client = client(&uri);

    let alias = client
        .resolve(&model_ref(&format!("{name}@nope")))
        .await
        .expect_err("unknown alias");
    assert!(matches!(alias, Error::NotFound { .. }), "{alias:?}");
    assert!(
        alias.to_string().starts_with(&format!(
            "alias `nope` of model `{name}` not found in the model registry: INVALID_PARAMETER_VALUE: Registered model alias nope not found"
        )),
        "{alias}"
    );

    let missing_model = unique("missing");
    for reference in [
        format!("{missing_model}@production"),
        format!("{missing_model}/1"),
        format!("{missing_model}/Production"),
    ] {
        let err = client
            .resolve(&model_ref(&reference))
            .await
            .expect_err("unknown model");
        assert!(
            matches!(err, Error::NotFound { .. }),
            "{reference}: {err:?}"
        );
        assert!(err.to_string().contains("RESOURCE_DOES_NOT_EXIST"), "{err}");
    }
    let version = client
        .resolve(&model_ref(&format!("{name}/9")))
        .await
        .expect_err("unknown version");
    assert!(
        version
            .to_string()
            .starts_with(&format!("version 9 of model `{name}` not found")),
        "{version}"
    );
    let stage = client
        .resolve(&model_ref(&format!("{name}/Production")))
        .await
        .expect_err("nothing in Production");
    assert!(
        stage.to_string().starts_with(&format!(
            "a version of model `{name}` in stage Production not found"
        )),
        "{stage}"
    );

    let set = client
        .set_alias(
            &ModelVersion {
                name: name.clone(),
                version: 9,
            },
            "x",
        )
        .await
        .expect_err("unknown version");
    assert!(matches!(set, Error::NotFound { .. }), "{set:?}");
    let run = client
        .run_data("0123456789abcdef0123456789abcdef")
        .await
        .expect_err("unknown run");
    assert!(matches!(run, Error::NotFound { .. }), "{run:?}");
}

/// Not an assertion on speed (shared CI machines vary): it reports per-request latency on
/// stderr (`cargo test -- --nocapture`) so regressions are visible.
#[tokio::test]
async fn reports_latency() {
    let Some(uri) = server("reports_latency") else {
        return;
    };
    let seeded = seed(&uri, "latency").await;
    let client = client(&uri);
    let reference = model_ref(&format!("{}@production", seeded.name));
    let mut resolve = Vec::new();
    let mut run = Vec::new();
    for _ in 0..50 {
        let started = Instant::now();
        client.resolve(&reference).await.expect("resolve");
        resolve.push(started.elapsed());
        let started = Instant::now();
        client.run_data(&seeded.run_id).await.expect("run");
        run.push(started.elapsed());
    }
    for (what, samples) in [("resolve by alias", &mut resolve), ("runs/get", &mut run)] {
        samples.sort();
        eprintln!(
            "{what}: p50 {:?}, p95 {:?}, max {:?} over {} requests",
            samples[24],
            samples[47],
            samples[49],
            samples.len()
        );
    }
}
