//! `analyze` end to end: plan errors, exit codes against a real Prometheus loaded with known
//! histories (pass 0, fail 1, inconclusive 3, Prometheus down 2), and smoke tests and accuracy
//! against loopback model servers. Exit code, stdout and stderr are snapshotted together.
//!
//! The command module is compiled in directly, as for `check-scan`, so these tests do not depend
//! on how `main.rs` wires subcommands.

#[allow(
    dead_code,
    unreachable_pub,
    reason = "only part of the command is exercised here"
)]
#[path = "../src/analyze.rs"]
mod analyze;

#[allow(
    dead_code,
    unreachable_pub,
    reason = "shared with the analysis crate's tests, which use other parts"
)]
#[path = "../../../crates/analysis/tests/support/history.rs"]
mod history;

#[allow(
    dead_code,
    unreachable_pub,
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "the simulation's `main` and tables are not used here"
)]
#[path = "../../../crates/analysis/examples/simulate.rs"]
mod simulate;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};

use analyze::AnalyzeArgs;
use jiff::Timestamp;
use slipway_cli::config::Settings;
use slipway_cli::{ExitStatus, OutputFormat};

fn args(plan: &Path, prometheus: &str, release: &str) -> AnalyzeArgs {
    AnalyzeArgs {
        plan: Some(plan.to_owned()),
        prometheus: Some(prometheus.to_owned()),
        global: slipway_cli::GlobalArgs {
            no_config: true,
            release: Some(release.to_owned()),
            ..slipway_cli::GlobalArgs::default()
        },
        release: slipway_cli::ReleaseArg::default(),
        track: "canary".to_owned(),
        from: None,
        to: None,
        at: None,
        markdown: None,
        svg: None,
    }
}

/// Runs the command like `main` would: exit code, stdout and stderr in uv's layout.
async fn run(args: &AnalyzeArgs, now: Timestamp) -> String {
    run_configured(args, &Settings::default(), now).await
}

/// [`run`] with a loaded configuration.
async fn run_configured(args: &AnalyzeArgs, settings: &Settings, now: Timestamp) -> String {
    let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
    let code = match analyze::run_with(args, settings, None, now, &mut stdout, &mut stderr).await {
        Ok(ExitStatus::Success) => 0,
        Ok(ExitStatus::No) => 1,
        Ok(ExitStatus::Error) => 2,
        Ok(ExitStatus::Inconclusive) => 3,
        Ok(ExitStatus::Signal(number)) => 128 + i32::from(number),
        Err(err) => {
            stderr.extend(format!("error: {err:#}\n").into_bytes());
            2
        }
    };
    format!(
        "exit_code: {code}\n----- stdout -----\n{}----- stderr -----\n{}",
        String::from_utf8_lossy(&stdout),
        String::from_utf8_lossy(&stderr)
    )
}

fn exit_code(output: &str) -> &str {
    output
        .lines()
        .next()
        .and_then(|line| line.strip_prefix("exit_code: "))
        .unwrap_or("?")
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write file");
    path
}

const PLAN: &str = r#"
interval = "1m"
count = 10
failure_limit = 1

[[metrics]]
name = "error-rate"
query = 'ERROR_RATE'
max = 0.01

[compare]
step = "30s"

[[compare.metrics]]
name = "mean-latency"
query = 'MEAN_LATENCY'
direction = "increase"
critical = true
"#;

fn plan_text() -> String {
    PLAN.replace("ERROR_RATE", history::ERROR_RATE)
        .replace("MEAN_LATENCY", history::MEAN_LATENCY)
}

#[tokio::test]
async fn plan_and_flag_errors_exit_2_naming_the_file_and_key() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let typo = write(
        tmp.path(),
        "typo.toml",
        "interval = \"1m\"\n[[metrics]]\nname = \"e\"\nquery = \"q\"\nmaximum = 1\n",
    );
    let invalid = write(
        tmp.path(),
        "invalid.toml",
        "count = 0\n[[metrics]]\nname = \"e\"\nquery = \"q\"\n",
    );
    let good = write(tmp.path(), "good.toml", &plan_text());
    let now = Timestamp::from_second(1_750_000_000).expect("ts");
    let mut outputs = Vec::new();
    for args in [
        args(
            &tmp.path().join("missing.toml"),
            "http://127.0.0.1:9",
            "ml/fraud-model",
        ),
        args(&typo, "http://127.0.0.1:9", "ml/fraud-model"),
        args(&invalid, "http://127.0.0.1:9", "ml/fraud-model"),
        args(&good, "http://127.0.0.1:9", "fraud-model"),
        AnalyzeArgs {
            at: Some("yesterday".to_owned()),
            ..args(&good, "http://127.0.0.1:9", "ml/fraud-model")
        },
        args(&good, "prometheus:9090", "ml/fraud-model"),
    ] {
        outputs.push(
            run(&args, now)
                .await
                .replace(&tmp.path().display().to_string(), "[TMP]"),
        );
    }
    for output in &outputs {
        assert_eq!(exit_code(output), "2", "{output}");
    }
    insta::assert_snapshot!(outputs.join("\n"));
}

/// Healthy 0, error-rate breach 1, latency regression 1, missing data 3, Prometheus down 2.
#[tokio::test]
async fn exit_codes_against_real_prometheus() {
    let Some(mut server) = history::start().await else {
        return;
    };
    let tmp = tempfile::tempdir().expect("tempdir");
    let plan = write(tmp.path(), "analysis.toml", &plan_text());
    let (from, to, url) = (
        server.at(5).to_string(),
        server.at(25).as_second().to_string(),
        server.url.clone(),
    );
    let replay = |release: &str| AnalyzeArgs {
        from: Some(from.clone()),
        to: Some(to.clone()),
        ..args(&plan, &url, release)
    };
    let now = server.at(history::MINUTES);
    let mut codes = Vec::new();
    for release in ["ml/healthy", "ml/errors", "ml/slow", "ml/silent"] {
        let output = run(&replay(release), now).await;
        codes.push(format!("{release}: {}", exit_code(&output)));
        if release == "ml/slow" {
            assert!(
                output.contains("critical metric `mean-latency` failed"),
                "{output}"
            );
        }
    }
    assert_eq!(
        codes,
        [
            "ml/healthy: 0",
            "ml/errors: 1",
            "ml/slow: 1",
            "ml/silent: 3"
        ]
    );

    // JSON, Markdown and SVG of the latency regression, with `--at`.
    let markdown = tmp.path().join("record.md");
    let svg = tmp.path().join("record.svg");
    let base = args(&plan, &server.url, "ml/slow");
    let args = AnalyzeArgs {
        at: Some(server.at(25).to_string()),
        global: slipway_cli::GlobalArgs {
            output: OutputFormat::Json,
            ..base.global.clone()
        },
        markdown: Some(markdown.clone()),
        svg: Some(svg.clone()),
        ..base
    };
    let output = run(&args, now).await;
    assert_eq!(exit_code(&output), "1", "{output}");
    let json_start = output.find('{').expect("json");
    let json_end = output.find("----- stderr").expect("stderr");
    let record: serde_json::Value =
        serde_json::from_str(&output[json_start..json_end]).expect("stdout is JSON");
    assert_eq!(record["verdict"]["decision"], "fail");
    // The document validates against the schema `slipway-deploy schema analyze` publishes,
    // and that schema is not vacuous.
    let validator = jsonschema::validator_for(&analyze::schema()).expect("schema compiles");
    let errors: Vec<String> = validator
        .iter_errors(&record)
        .map(|err| err.to_string())
        .collect();
    assert!(errors.is_empty(), "{errors:?}");
    let mut wrong = record.clone();
    wrong["verdict"]["decision"] = serde_json::json!("maybe");
    assert!(
        !validator.is_valid(&wrong),
        "an unknown decision is refused"
    );
    assert_eq!(
        record["comparison"]["result"]["metrics"][0]["classification"],
        "high"
    );
    let markdown = std::fs::read_to_string(&markdown).expect("markdown written");
    assert!(
        markdown.contains("| `mean-latency` (critical) | FAIL |"),
        "{markdown}"
    );
    let svg = std::fs::read_to_string(&svg).expect("svg written");
    assert!(svg.starts_with("<svg ") && svg.contains("mean-latency (FAIL)"));
    assert_eq!(
        svg.matches("<polyline").count(),
        3,
        "canary, stable, error rate"
    );

    server.stop();
    let output = run(&replay("ml/healthy"), now).await;
    assert_eq!(exit_code(&output), "2", "{output}");
    assert!(
        output.contains(&format!("error: replaying `{}` from ", plan.display()))
            && output.contains(&format!("could not query prometheus at `{}`", server.url)),
        "{output}"
    );
}

/// A loopback model server: `/healthz` answers JSON, `/predict` answers `{"prediction": x}`
/// where x is the input's `x`, except that `wrong_every`-th inputs get the wrong class.
fn model_server(wrong_every: u64) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let (head, body) = read_request(&mut stream);
            let answer = if head.starts_with("GET /healthz") {
                r#"{"status": "ok", "model": {"version": 7}}"#.to_owned()
            } else {
                let input: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
                let id = input["id"].as_u64().unwrap_or(0);
                let class = input["x"].as_u64().unwrap_or(0);
                let class = if wrong_every > 0 && id.is_multiple_of(wrong_every) {
                    1 - class
                } else {
                    class
                };
                format!(r#"{{"prediction": {class}}}"#)
            };
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{answer}",
                answer.len()
            );
        }
    });
    url
}

fn read_request(stream: &mut TcpStream) -> (String, String) {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).is_ok_and(|n| n == 1) {
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let length = head
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse::<usize>().ok())?
        })
        .unwrap_or(0);
    let mut body = vec![0u8; length];
    let _ = stream.read_exact(&mut body);
    (head, String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test]
async fn smoke_tests_and_accuracy_against_loopback_endpoints() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dataset: String = (1..=50)
        .map(|id| {
            format!(
                "{{\"input\": {{\"id\": {id}, \"x\": {}}}, \"label\": {}}}\n",
                id % 2,
                id % 2
            )
        })
        .collect();
    write(tmp.path(), "eval.jsonl", &dataset);
    let plan = |url: &str, version: u64| {
        // `metrics = []`: an unset key keeps the default plan's value, here its two thresholds.
        format!(
            r#"
metrics = []

[[smoke]]
name = "health"
url = "{url}/healthz"
max_latency = "2s"
expect = [{{ path = "$.status", equals = "ok" }}, {{ path = "$.model.version", equals = {version} }}]

[quality.accuracy]
url = "{url}/predict"
dataset = "eval.jsonl"
"#
        )
    };
    // Every 5th answer wrong: accuracy 0.8, above 0.70; version 7 as expected.
    let good = model_server(5);
    let path = write(tmp.path(), "good.toml", &plan(&good, 7));
    // Prometheus is never asked: the plan has no metric checks.
    let now = Timestamp::from_second(1_750_000_000).expect("ts");
    let output = run(&args(&path, "http://127.0.0.1:9", "ml/fraud-model"), now).await;
    assert_eq!(exit_code(&output), "0", "{output}");
    assert!(
        output.contains("`accuracy` passed: 40 of 50 correct = 0.8 (min 0.7)"),
        "{output}"
    );
    assert!(output.contains("smoke `health` passed: GET "), "{output}");

    // Every 2nd answer wrong (accuracy 0.5) and an unexpected model version: both reported.
    let bad = model_server(2);
    let path = write(tmp.path(), "bad.toml", &plan(&bad, 8));
    let output = run(&args(&path, "http://127.0.0.1:9", "ml/fraud-model"), now).await;
    assert_eq!(exit_code(&output), "1", "{output}");
    assert!(
        output.contains("`accuracy` failed: 25 of 50 correct = 0.5 (min 0.7)"),
        "{output}"
    );
    assert!(
        output.contains("`$.model.version` is 7, expected 8"),
        "{output}"
    );

    // Replaying a past window skips the endpoints and says so.
    let past = AnalyzeArgs {
        at: Some("2025-06-01T00:00:00Z".to_owned()),
        ..args(&path, "http://127.0.0.1:9", "ml/fraud-model")
    };
    let output = run(&past, now).await;
    assert!(
        output.contains("smoke tests and endpoint checks skipped: the window is in the past"),
        "{output}"
    );
    assert_eq!(exit_code(&output), "3", "nothing was judged: {output}");
}

/// Without `--plan` and `--prometheus`, `analyze` uses the config's `[analysis]` and
/// `prometheus.url`; without either URL it says which key to set. The token is
/// `prometheus.token` (`SLIPWAY_PROMETHEUS__TOKEN`), and the old variable still works with a
/// warning naming the new one.
#[tokio::test]
async fn falls_back_to_the_config_and_names_one_token_variable() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let plan = write(tmp.path(), "plan.toml", "count = 1\n");
    let mut settings = Settings::default();
    settings.analysis.inconclusive_limit = 5;
    let no_flags = AnalyzeArgs {
        plan: None,
        prometheus: None,
        ..args(&plan, "http://127.0.0.1:9", "ml/fraud-model")
    };
    let now = Timestamp::from_second(1_750_000_000).expect("time");
    // The config's plan is used, and validated: this one could pass with no data.
    let output = run_configured(&no_flags, &settings, now).await;
    assert_eq!(exit_code(&output), "2", "{output}");
    assert!(
        output.contains("the config's `analysis` section: invalid analysis plan")
            && output.contains("`inconclusive_limit` 5 is not below `count` 5"),
        "{output}"
    );
    // A valid config plan without a URL anywhere: the error names the flag and the key.
    settings.analysis.inconclusive_limit = 0;
    let output = run_configured(&no_flags, &settings, now).await;
    assert_eq!(exit_code(&output), "2", "{output}");
    assert!(
        output.contains("`--prometheus` is not given and `prometheus.url` is not set"),
        "{output}"
    );
    // With `prometheus.url` it queries that URL (nothing listens there: exit 2 naming it).
    settings.prometheus.url = Some("http://127.0.0.1:9".to_owned());
    let output = run_configured(&no_flags, &settings, now).await;
    assert_eq!(exit_code(&output), "2", "{output}");
    assert!(output.contains("http://127.0.0.1:9"), "{output}");

    let mut stderr = Vec::new();
    let token =
        analyze::resolve_token(&settings, Some("old".to_owned()), &mut stderr).expect("resolved");
    assert_eq!(token.as_deref(), Some("old"));
    assert_eq!(
        String::from_utf8_lossy(&stderr),
        "warning: SLIPWAY_PROMETHEUS_TOKEN is deprecated; set SLIPWAY_PROMETHEUS__TOKEN (the `prometheus.token` key) instead\n"
    );
    settings.prometheus.token = Some(slipway_core::Secret::new("new".to_owned()));
    let mut stderr = Vec::new();
    let token =
        analyze::resolve_token(&settings, Some("old".to_owned()), &mut stderr).expect("resolved");
    assert_eq!(token.as_deref(), Some("new"), "the config's name wins");
    assert!(stderr.is_empty());
}

/// The simulation's scenarios replayed by `analyze` from a real Prometheus: a healthy canary at
/// a 10 % and a 25 % share passes its `[compare]` (exit 0), a canary with 3 % errors at 10 %
/// fails it (exit 1), each as the in-memory judge decides on the same steps.
#[tokio::test]
async fn simulated_canaries_are_judged_by_analyze_as_in_memory() {
    use simulate::Truth;
    let steps = 2 * simulate::example_plan().count as usize;
    let mut scenarios = Vec::new();
    for (seed, (name, share)) in [
        ("healthy-10", 0.10),
        ("healthy-25", 0.25),
        ("broken-10", 0.10),
    ]
    .into_iter()
    .enumerate()
    {
        let mut rng = simulate::Rng::new(200 + seed as u64);
        let (stable, mut canary) = simulate::generate(steps, share, Truth::Healthy, &mut rng);
        if name == "broken-10" {
            canary.errors = canary.requests.iter().map(|n| (n * 0.03).round()).collect();
        }
        scenarios.push((name.to_owned(), stable, canary));
    }
    let minutes = (steps as f64 * simulate::STEP / 60.0).ceil() as i64;
    let Some(server) =
        history::start_with(minutes, |base| simulate::openmetrics(base, &scenarios)).await
    else {
        return;
    };
    let plan = simulate::replay_plan();
    let compare_plan = plan.compare.clone().expect("compare");
    let tmp = tempfile::tempdir().expect("tempdir");
    let plan_file = write(
        tmp.path(),
        "analysis.toml",
        &toml::to_string(&plan).expect("plan as TOML"),
    );
    let step = simulate::STEP as i64;
    let (from, to) = (
        (server.base + step).to_string(),
        (server.base + steps as i64 * step).to_string(),
    );
    let now = Timestamp::from_second(server.base + (minutes + 10) * 60).expect("time");
    let mut codes = Vec::new();
    for (name, stable, canary) in &scenarios {
        let args = AnalyzeArgs {
            from: Some(from.clone()),
            to: Some(to.clone()),
            ..args(&plan_file, &server.url, &format!("ml/{name}"))
        };
        let output = run(&args, now).await;
        let memory =
            slipway_analysis::compare(&compare_plan, &simulate::compare_samples(stable, canary));
        let expected = match memory.decision {
            slipway_analysis::Decision::Pass => "0",
            slipway_analysis::Decision::Fail => "1",
            slipway_analysis::Decision::Inconclusive => "3",
        };
        assert_eq!(
            exit_code(&output),
            expected,
            "{name}: {output}\nmemory: {:?}",
            memory.reasons
        );
        codes.push(format!("{name}: {}", exit_code(&output)));
    }
    assert_eq!(codes, ["healthy-10: 0", "healthy-25: 0", "broken-10: 1"]);
}
