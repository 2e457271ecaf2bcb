//! A Prometheus of the test's own over a known history, the analysis crate's approach
//! (crates/analysis/tests/it.rs): OpenMetrics text with timestamps, turned into TSDB blocks by
//! `promtool tsdb create-blocks-from openmetrics`, served on a free loopback port, killed on drop.
//!
//! The history holds release `ml/iris`'s `stable` and `canary` tracks for [`MINUTES`] minutes at
//! 15 s, ending about ten minutes ago (recent, so inside the default retention). The stories run
//! on a `SimClock` that starts [`START_MINUTE`] minutes into it, so every analysis query lands on
//! known data. A canary that [`Canary::Breach`]es answers 5 % of requests with a 500 and has a
//! p99 latency above 2.5 s: both default checks fail at the first measurement.
//!
//! [`start_with`] serves another release over a longer [`History`]: the example workflows'
//! test (`workflows.rs`) needs hours of `ml-serving/iris-classifier`, enough for every canary
//! analysis of its three releases and two rollbacks on the saved world's simulated clock.

use std::fmt::Write as _;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use jiff::Timestamp;

use crate::support::{PROMETHEUS_ENV, service};

/// Seconds between samples.
const STEP: i64 = 15;
/// Minutes of history.
pub(crate) const MINUTES: i64 = 60;
/// Where the simulated clock starts, in minutes from the start of the history.
pub(crate) const START_MINUTE: i64 = 5;
/// Histogram bucket bounds.
const BUCKETS: [&str; 7] = ["0.1", "0.25", "0.5", "1", "2.5", "5", "+Inf"];
/// Per-15 s cumulative bucket increments: healthy (p99 about 0.25 s) and slow (p99 about 4.5 s).
const HEALTHY_BUCKETS: [u64; 7] = [200, 400, 400, 400, 400, 400, 400];
const SLOW_BUCKETS: [u64; 7] = [100, 200, 250, 300, 350, 398, 400];
/// Per-15 s increments of (code 200, code 500): 0.25 % and 5 % errors.
const HEALTHY_CODES: (u64, u64) = (399, 1);
const BAD_CODES: (u64, u64) = (380, 20);

/// Which release's series the history holds, and for how long.
#[derive(Debug, Clone)]
pub(crate) struct History {
    /// The `namespace` label.
    pub(crate) namespace: &'static str,
    /// The `release` label (the release's name).
    pub(crate) release: &'static str,
    /// Minutes of history, ending about ten minutes ago.
    pub(crate) minutes: i64,
}

/// The e2e stories' history: release `ml/iris` for [`MINUTES`] minutes.
const STORIES: History = History {
    namespace: "ml",
    release: "iris",
    minutes: MINUTES,
};

/// How the canary track behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Canary {
    /// Like stable: 0.25 % errors, p99 well under 2 s.
    Healthy,
    /// 5 % errors and p99 above 2.5 s throughout.
    Breach,
}

/// A running Prometheus; killed on drop.
pub(crate) struct Prometheus {
    child: Child,
    pub(crate) url: String,
    log: PathBuf,
    /// Unix seconds of the history's first sample.
    base: i64,
    _dir: tempfile::TempDir,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Prometheus {
    /// The instant `minute` minutes into the history.
    pub(crate) fn at(&self, minute: i64) -> Timestamp {
        Timestamp::from_second(self.base + minute * 60).expect("valid timestamp")
    }

    /// How many queries (`/api/v1/query` and `/api/v1/query_range`) this Prometheus has
    /// answered, from its own `/metrics`.
    pub(crate) async fn queries(&self) -> u64 {
        let text = reqwest::get(format!("{}/metrics", self.url))
            .await
            .expect("GET /metrics")
            .text()
            .await
            .expect("read /metrics");
        text.lines()
            .filter(|line| {
                line.starts_with("prometheus_http_requests_total{")
                    && line.contains(r#"handler="/api/v1/query"#)
            })
            .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>() as u64
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

fn openmetrics(base: i64, canary: Canary, history: &History) -> String {
    let labels = |track: &str| {
        format!(
            r#"namespace="{}",release="{}",track="{track}""#,
            history.namespace, history.release
        )
    };
    let points = history.minutes * 60 / STEP;
    let bad = |track: &str| track == "canary" && canary == Canary::Breach;
    let mut out = String::new();
    out.push_str("# TYPE model_requests counter\n");
    for track in ["stable", "canary"] {
        let (ok, err) = if bad(track) { BAD_CODES } else { HEALTHY_CODES };
        for (code, increment) in [("200", ok), ("500", err)] {
            for idx in 0..=points {
                let _ = writeln!(
                    out,
                    r#"model_requests_total{{{},code="{code}"}} {} {}"#,
                    labels(track),
                    idx as u64 * increment,
                    base + idx * STEP
                );
            }
        }
    }
    out.push_str("# TYPE model_request_duration_seconds_bucket unknown\n");
    for track in ["stable", "canary"] {
        let increments = if bad(track) {
            SLOW_BUCKETS
        } else {
            HEALTHY_BUCKETS
        };
        for (bucket, le) in BUCKETS.iter().enumerate() {
            for idx in 0..=points {
                let _ = writeln!(
                    out,
                    r#"model_request_duration_seconds_bucket{{{},le="{le}"}} {} {}"#,
                    labels(track),
                    idx as u64 * increments[bucket],
                    base + idx * STEP
                );
            }
        }
    }
    out.push_str("# EOF\n");
    out
}

fn on_path(binary: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(binary))
        .find(|path| path.is_file())
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

/// Creates the blocks and starts Prometheus on them; `None` when the test skips (no services
/// outside CI).
pub(crate) async fn start(test: &str, canary: Canary) -> Option<Prometheus> {
    start_with(test, canary, &STORIES).await
}

/// [`start`] over `history`.
pub(crate) async fn start_with(
    test: &str,
    canary: Canary,
    history: &History,
) -> Option<Prometheus> {
    // The services' Prometheus stands for "the Prometheus binaries are installed".
    service(PROMETHEUS_ENV, test)?;
    let (Some(prometheus), Some(promtool)) = (on_path("prometheus"), on_path("promtool")) else {
        panic!(
            "{test}: `prometheus` and `promtool` are not on PATH\n\nhint: run `cargo xtask services`"
        );
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let now = Timestamp::now().as_second();
    let base = now - now.rem_euclid(60) - (history.minutes + 10) * 60;
    let data = dir.path().join("data");
    let history_file = dir.path().join("history.om");
    std::fs::write(&history_file, openmetrics(base, canary, history)).expect("write history");
    let created = Command::new(&promtool)
        .args(["tsdb", "create-blocks-from", "openmetrics"])
        .arg(&history_file)
        .arg(&data)
        .output()
        .expect("run promtool");
    assert!(
        created.status.success(),
        "promtool tsdb create-blocks-from openmetrics failed: {}",
        String::from_utf8_lossy(&created.stderr)
    );
    let config = dir.path().join("prometheus.yml");
    std::fs::write(&config, "global:\n  scrape_interval: 15s\n").expect("write config");
    let log = dir.path().join("prometheus.log");
    let port = free_port();
    let child = Command::new(&prometheus)
        .arg(format!("--config.file={}", config.display()))
        .arg(format!("--storage.tsdb.path={}", data.display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log file"))
        .spawn()
        .expect("start prometheus");
    let mut server = Prometheus {
        child,
        url: format!("http://127.0.0.1:{port}"),
        log,
        base,
        _dir: dir,
    };
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = server.child.try_wait().expect("poll child") {
            panic!("prometheus exited with {status}:\n{}", server.log_text());
        }
        let ready = http
            .get(format!("{}/-/ready", server.url))
            .send()
            .await
            .is_ok_and(|response| response.status().is_success());
        if ready {
            return Some(server);
        }
        assert!(
            Instant::now() < deadline,
            "prometheus not ready after 30 s:\n{}",
            server.log_text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
