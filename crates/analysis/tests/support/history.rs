//! Known canary histories for a real Prometheus, shared by the analysis crate's integration tests
//! and `slipway-deploy analyze`'s: OpenMetrics text with timestamps, turned into TSDB blocks by
//! `promtool tsdb create-blocks-from openmetrics`, served by a `prometheus` started on a free
//! loopback port and killed on drop.
//!
//! One release per scenario, each with a `stable` and a `canary` track, 60 minutes at 15 s:
//!
//! | release   | canary                                                              |
//! |-----------|---------------------------------------------------------------------|
//! | `healthy` | same traffic, errors (0.25 %) and latency (mean 200 ms) as stable    |
//! | `errors`  | 3 % errors after minute `INCIDENT_MINUTE`                            |
//! | `slow`    | mean latency +30 % throughout, still far below the 2 s threshold     |
//! | `silent`  | no series at all (missing data)                                      |
//!
//! Latency is a `_sum`/`_count` pair whose per-step mean wobbles ±10 % by a fixed
//! pseudo-random sequence, different per track, so the statistical judge sees realistic noise.

use std::fmt::Write as _;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use jiff::Timestamp;

/// Set by CI systems; when set, a missing Prometheus is a failure, not a skip.
pub const CI: &str = "CI";
/// Seconds between samples.
pub const STEP: i64 = 15;
/// Minutes of history.
pub const MINUTES: i64 = 60;
/// The `errors` canary goes bad after this minute.
pub const INCIDENT_MINUTE: i64 = 12;
/// Requests per 15 s per track.
const REQUESTS: u64 = 400;

/// The error ratio query of the plans used with this history.
pub const ERROR_RATE: &str = r#"sum(rate(model_requests_total{namespace="{{namespace}}",release="{{release}}",track="{{track}}",code=~"5.."}[{{interval}}])) / sum(rate(model_requests_total{namespace="{{namespace}}",release="{{release}}",track="{{track}}"}[{{interval}}]))"#;
/// The mean latency query of the plans used with this history.
pub const MEAN_LATENCY: &str = r#"sum(rate(model_request_duration_seconds_sum{namespace="{{namespace}}",release="{{release}}",track="{{track}}"}[1m])) / sum(rate(model_request_duration_seconds_count{namespace="{{namespace}}",release="{{release}}",track="{{track}}"}[1m]))"#;

/// A running Prometheus; killed on drop.
pub struct Prometheus {
    pub child: Child,
    pub url: String,
    pub log: PathBuf,
    /// The history starts here (a whole minute, about 75 min ago, inside the retention).
    pub base: i64,
    pub _dir: tempfile::TempDir,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Prometheus {
    /// The instant `minute` minutes into the history.
    pub fn at(&self, minute: i64) -> Timestamp {
        Timestamp::from_second(self.base + minute * 60).expect("valid timestamp")
    }

    /// Stops the server (the test then sees a refused connection).
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

fn on_path(binary: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(binary))
        .find(|path| path.is_file())
}

/// A fixed pseudo-random wobble in [-0.1, 0.1] for step `idx` of `seed`'s sequence.
fn wobble(seed: u64, idx: i64) -> f64 {
    let mut state = seed
        .wrapping_mul(0x9e37_79b9_7f4a_7c15)
        .wrapping_add(idx as u64 + 1);
    for _ in 0..3 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
    }
    ((state % 2001) as f64 - 1000.0) / 10_000.0
}

/// The OpenMetrics history for all scenarios.
pub fn openmetrics(base: i64) -> String {
    let points = MINUTES * 60 / STEP;
    let labels = |release: &str, track: &str| {
        format!(r#"namespace="ml",release="{release}",track="{track}""#)
    };
    let tracks: [(&str, &str, u64); 6] = [
        ("healthy", "stable", 1),
        ("healthy", "canary", 2),
        ("errors", "stable", 3),
        ("errors", "canary", 4),
        ("slow", "stable", 5),
        ("slow", "canary", 6),
    ];
    let errors_per_step = |release: &str, track: &str, idx: i64| -> u64 {
        if release == "errors" && track == "canary" && idx * STEP > INCIDENT_MINUTE * 60 {
            12
        } else {
            1
        }
    };
    let mean_latency = |release: &str, track: &str, seed: u64, idx: i64| -> f64 {
        let base = if release == "slow" && track == "canary" {
            0.26
        } else {
            0.20
        };
        base * (1.0 + wobble(seed, idx))
    };
    let mut out = String::new();
    out.push_str("# TYPE model_requests counter\n");
    for (release, track, _) in tracks {
        for code in ["200", "500"] {
            let mut total = 0;
            for idx in 0..=points {
                if idx > 0 {
                    let errors = errors_per_step(release, track, idx);
                    total += if code == "500" {
                        errors
                    } else {
                        REQUESTS - errors
                    };
                }
                let _ = writeln!(
                    out,
                    r#"model_requests_total{{{},code="{code}"}} {total} {}"#,
                    labels(release, track),
                    base + idx * STEP
                );
            }
        }
    }
    out.push_str("# TYPE model_request_duration_seconds summary\n");
    for (release, track, seed) in tracks {
        let (mut count, mut sum) = (0u64, 0.0f64);
        for idx in 0..=points {
            if idx > 0 {
                count += REQUESTS;
                sum += REQUESTS as f64 * mean_latency(release, track, seed, idx);
            }
            let _ = writeln!(
                out,
                "model_request_duration_seconds_count{{{}}} {count} {}",
                labels(release, track),
                base + idx * STEP
            );
            let _ = writeln!(
                out,
                "model_request_duration_seconds_sum{{{}}} {sum} {}",
                labels(release, track),
                base + idx * STEP
            );
        }
    }
    out.push_str("# EOF\n");
    out
}

/// `GET /-/ready` answered 200, over plain std networking so both test crates can use it.
fn ready(port: u16) -> bool {
    use std::io::{Read as _, Write as _};
    let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let request = "GET /-/ready HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n\r\n";
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer.starts_with("HTTP/1.1 200")
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

/// Creates the blocks and starts Prometheus on them; `None` when skipping (no binaries and no
/// `CI`), a panic under `CI`.
#[allow(clippy::print_stderr, reason = "a skipped test must say why")]
pub async fn start() -> Option<Prometheus> {
    start_with(MINUTES, openmetrics).await
}

/// Like [`start`], with another history: `history(base)` is the OpenMetrics text for
/// `minutes` of samples from `base`.
#[allow(clippy::print_stderr, reason = "a skipped test must say why")]
pub async fn start_with(minutes: i64, history_text: impl Fn(i64) -> String) -> Option<Prometheus> {
    let (prometheus, promtool) = match (on_path("prometheus"), on_path("promtool")) {
        (Some(prometheus), Some(promtool)) => (prometheus, promtool),
        _ if std::env::var_os(CI).is_some() => panic!(
            "`prometheus` and `promtool` are not on PATH\n\nhint: run `cargo xtask services`"
        ),
        _ => {
            eprintln!(
                "skipping: `prometheus` and `promtool` are not on PATH (hint: run `cargo xtask services`)"
            );
            return None;
        }
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let now = Timestamp::now().as_second();
    let base = now - now.rem_euclid(60) - (minutes + 15) * 60;
    let data = dir.path().join("data");
    let history = dir.path().join("history.om");
    std::fs::write(&history, history_text(base)).expect("write history");
    let output = Command::new(&promtool)
        .args(["tsdb", "create-blocks-from", "openmetrics"])
        .arg(&history)
        .arg(&data)
        .output()
        .expect("run promtool");
    assert!(
        output.status.success(),
        "promtool failed: {}",
        String::from_utf8_lossy(&output.stderr)
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
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = server.child.try_wait().expect("poll child") {
            panic!("prometheus exited with {status}:\n{}", server.log_text());
        }
        if ready(port) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "prometheus not ready after 30 s:\n{}",
            server.log_text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Some(server)
}
