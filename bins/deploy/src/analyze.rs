//! `slipway-deploy analyze`: run an analysis plan against a real Prometheus without deploying
//! anything, over a past range (`--from/--to`), the window ending at an instant (`--at`), or the
//! window ending now.
//!
//! Exit codes: 0 pass, 1 fail, 3 inconclusive, 2 error (unreadable plan, Prometheus down or
//! refusing a query). The decision record goes to stdout (`--output text|json`); `--markdown`
//! and `--svg` also write it as Markdown and as a chart of canary against baseline.
//!
//! Smoke tests and endpoint checks (accuracy, endpoint prediction drift) only run when the
//! window ends now: the endpoints of a past range are gone, and the record says they were
//! skipped.
//!
//! Without `--plan` the plan is the config's `[analysis]`, and without `--prometheus` the URL is
//! `prometheus.url`: the same slipway.toml (and `SLIPWAY_*__*` variables) as `run`. The token is
//! `prometheus.token`, i.e. `SLIPWAY_PROMETHEUS__TOKEN` as for every other command;
//! `SLIPWAY_PROMETHEUS_TOKEN` is still read, with a deprecation warning.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use jiff::{SignedDuration, Timestamp};
use slipway_analysis::{
    AnalysisPlan, Decision, PrometheusAuth, PrometheusClient, PrometheusConfig, TemplateVars,
    check_endpoints, replay, report,
};
use slipway_cli::config::{self, Settings};
use slipway_cli::{ExitStatus, GlobalArgs, OutputFormat, UserError};
use slipway_core::Secret;

/// Bearer token for Prometheus (or the proxy in front of it): the config key `prometheus.token`
/// through the environment, as every command reads it.
pub(crate) const PROMETHEUS_TOKEN_ENV: &str = "SLIPWAY_PROMETHEUS__TOKEN";
/// The name `analyze` used to read; still accepted, with a warning.
pub(crate) const DEPRECATED_PROMETHEUS_TOKEN_ENV: &str = "SLIPWAY_PROMETHEUS_TOKEN";

/// The shape of `analyze --output json`, for its JSON Schema (`slipway-deploy schema analyze`):
/// the decision record of `slipway_analysis::AnalysisRun` with its `schema_version`. The
/// plan, the measurements and the verdict's details are open objects here, as the run report's
/// analysis details are; the fields a CI job reads (release, track, window, verdict) are typed.
#[derive(schemars::JsonSchema)]
#[allow(
    dead_code,
    reason = "only its schema is used; the record itself is serialised"
)]
pub(crate) struct AnalyzeDocument {
    /// `{{release}}`.
    release: String,
    /// `{{namespace}}`.
    namespace: String,
    /// `{{track}}`.
    track: String,
    /// The plan it followed.
    plan: serde_json::Value,
    /// Each metric's rendered query, in plan order.
    queries: Vec<serde_json::Value>,
    /// Time of the first measurement (RFC 3339).
    started: String,
    /// Time after the last measurement (RFC 3339).
    finished: String,
    /// Every measurement, in the order taken.
    measurements: Vec<serde_json::Value>,
    /// The decision.
    verdict: AnalyzeVerdict,
    /// The statistical comparison with the baseline, when the plan has `[compare]`.
    comparison: Option<serde_json::Value>,
    /// Model quality, when the plan has `[quality]`.
    quality: Option<serde_json::Value>,
    /// Smoke test results, in plan order.
    smoke: Option<Vec<serde_json::Value>>,
}

/// The verdict of [`AnalyzeDocument`]: its decision typed, the rest open.
#[derive(schemars::JsonSchema)]
#[allow(dead_code, reason = "only its schema is used")]
pub(crate) struct AnalyzeVerdict {
    /// `pass`, `fail` or `inconclusive`.
    decision: AnalyzeDecision,
}

/// The three decisions `analyze` exits on (0, 1, 3).
#[derive(schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code, reason = "only its schema is used")]
pub(crate) enum AnalyzeDecision {
    /// Exit 0.
    Pass,
    /// Exit 1.
    Fail,
    /// Exit 3.
    Inconclusive,
}

/// The JSON Schema of `analyze --output json`.
pub(crate) fn schema() -> serde_json::Value {
    schemars::schema_for!(slipway_cli::output::Versioned<AnalyzeDocument>).to_value()
}

/// Arguments of `analyze`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct AnalyzeArgs {
    /// Analysis plan (TOML: `interval`, `count`, `[[metrics]]`, `[compare]`, `[quality]`,
    /// `[[smoke]]`) [default: the config's `[analysis]`].
    #[arg(long, value_name = "FILE")]
    pub(crate) plan: Option<PathBuf>,
    /// Prometheus base URL [prometheus.url]; a bearer token is read from
    /// SLIPWAY_PROMETHEUS__TOKEN [prometheus.token].
    #[arg(long, value_name = "URL")]
    pub(crate) prometheus: Option<String>,
    /// The shared flags; `--release` (or RELEASE) names the release to judge.
    #[command(flatten)]
    pub(crate) global: GlobalArgs,
    #[command(flatten)]
    pub(crate) release: slipway_cli::ReleaseArg,
    /// The canary's track label.
    #[arg(long, default_value = "canary")]
    pub(crate) track: String,
    /// Start of the range to replay (RFC 3339 or Unix seconds).
    #[arg(long, value_name = "TIME", requires = "to", conflicts_with = "at")]
    pub(crate) from: Option<String>,
    /// End of the range to replay.
    #[arg(long, value_name = "TIME", requires = "from", conflicts_with = "at")]
    pub(crate) to: Option<String>,
    /// Replay the window a live analysis would have covered, ending at TIME.
    #[arg(long, value_name = "TIME")]
    pub(crate) at: Option<String>,
    /// Also write the decision record as Markdown to this file.
    #[arg(long, value_name = "FILE")]
    pub(crate) markdown: Option<PathBuf>,
    /// Also write a chart of canary against baseline as SVG to this file.
    #[arg(long, value_name = "FILE")]
    pub(crate) svg: Option<PathBuf>,
}

/// Runs `analyze` with the process's stdout and stderr.
pub(crate) async fn run(args: &AnalyzeArgs) -> anyhow::Result<ExitStatus> {
    let settings = config::load(&args.global.with_release(&args.release), &[])?;
    let mut stderr = std::io::stderr().lock();
    let deprecated = std::env::var(DEPRECATED_PROMETHEUS_TOKEN_ENV)
        .ok()
        .filter(|t| !t.is_empty());
    let token = resolve_token(&settings, deprecated, &mut stderr)?;
    run_with(
        args,
        &settings,
        token,
        Timestamp::now(),
        &mut std::io::stdout().lock(),
        &mut stderr,
    )
    .await
}

/// The token: `prometheus.token` (config or `SLIPWAY_PROMETHEUS__TOKEN`), else the deprecated
/// variable's value with a warning naming the new one.
pub(crate) fn resolve_token(
    settings: &Settings,
    deprecated: Option<String>,
    stderr: &mut dyn Write,
) -> anyhow::Result<Option<String>> {
    if let Some(token) = &settings.prometheus.token {
        return Ok(Some(token.expose().to_owned()));
    }
    if deprecated.is_some() {
        writeln!(
            stderr,
            "warning: {DEPRECATED_PROMETHEUS_TOKEN_ENV} is deprecated; set {PROMETHEUS_TOKEN_ENV} (the `prometheus.token` key) instead"
        )?;
    }
    Ok(deprecated)
}

/// Runs `analyze` with an explicit token, clock reading and output streams (for tests).
pub(crate) async fn run_with(
    args: &AnalyzeArgs,
    settings: &Settings,
    token: Option<String>,
    now: Timestamp,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
) -> anyhow::Result<ExitStatus> {
    let (plan, plan_name) = match &args.plan {
        Some(path) => (load_plan(path)?, format!("`{}`", path.display())),
        None => {
            settings.analysis.validate().map_err(|err| UserError {
                message: format!("the config's `analysis` section: {err}"),
            })?;
            (
                settings.analysis.clone(),
                "the config's `[analysis]`".to_owned(),
            )
        }
    };
    for warning in plan.warnings() {
        writeln!(stderr, "warning: {warning}")?;
    }
    let prometheus = match (&args.prometheus, &settings.prometheus.url) {
        (Some(url), _) | (None, Some(url)) => url.clone(),
        (None, None) => {
            return Err(UserError {
                message: "no Prometheus to query: `--prometheus` is not given and `prometheus.url` is not set\n\nhint: pass `--prometheus URL` or set `url` under `[prometheus]` in slipway.toml (or SLIPWAY_PROMETHEUS__URL)".to_owned(),
            }
            .into());
        }
    };
    let release = args
        .global
        .release_name(&args.release)
        .ok_or_else(|| UserError {
            message: "`analyze` needs the release to judge\n\nhint: `--release namespace/name` (or as the first argument), e.g. `--release ml/fraud-model`".to_owned(),
        })?;
    let (namespace, name) = parse_release(release)?;
    let namespace = args.global.namespace.clone().unwrap_or(namespace);
    let vars = TemplateVars::new(name, namespace, args.track.clone());
    let (from, to, live) = window(args, &plan, now)?;

    let mut config = PrometheusConfig::new(&prometheus);
    if let Some(token) = token {
        config = config.auth(PrometheusAuth::Bearer(Secret::new(token)));
    }
    let client = PrometheusClient::new(config).map_err(user_error)?;
    let mut record = replay(&plan, &client, &vars, from, to)
        .await
        .with_context(|| format!("replaying {plan_name} from {from} to {to}"))?;
    let has_endpoints =
        !plan.smoke.is_empty() || plan.quality.as_ref().is_some_and(|q| q.accuracy.is_some());
    if has_endpoints && live {
        let results = check_endpoints(&plan, &vars)
            .await
            .context("running smoke tests and endpoint checks")?;
        record.add_endpoint_results(results);
    } else if has_endpoints {
        record.add_skipped(
            "smoke tests and endpoint checks skipped: the window is in the past, and only the endpoints of now could answer",
        );
    }

    match args.global.output {
        OutputFormat::Text => write!(stdout, "{}", report::text(&record)),
        format => {
            let document: serde_json::Value = serde_json::from_str(&report::json(&record))
                .context("encoding the decision record")?;
            let rendered = slipway_cli::output::render(format, &document)?.unwrap_or_default();
            write!(stdout, "{rendered}")
        }
    }
    .context("writing the decision record to stdout")?;
    if let Some(path) = &args.markdown {
        std::fs::write(path, report::markdown(&record))
            .with_context(|| format!("failed to write `{}`", path.display()))?;
        writeln!(
            stderr,
            "wrote Markdown decision record to {}",
            path.display()
        )?;
    }
    if let Some(path) = &args.svg {
        std::fs::write(path, report::svg(&record))
            .with_context(|| format!("failed to write `{}`", path.display()))?;
        writeln!(stderr, "wrote SVG chart to {}", path.display())?;
    }
    Ok(match record.decision() {
        Decision::Pass => ExitStatus::Success,
        Decision::Fail => ExitStatus::No,
        Decision::Inconclusive => ExitStatus::Inconclusive,
    })
}

/// Reads, parses and validates the plan; a relative data set path is relative to the plan file.
fn load_plan(path: &Path) -> anyhow::Result<AnalysisPlan> {
    let text = std::fs::read_to_string(path).map_err(|err| UserError {
        message: format!(
            "failed to read analysis plan `{}`: {err}\n\nhint: pass the plan's path with `--plan FILE`",
            path.display()
        ),
    })?;
    let mut plan: AnalysisPlan = toml::from_str(&text).map_err(|err| UserError {
        message: format!(
            "invalid analysis plan `{}`: {}\n\nhint: crates/analysis/analysis.example.toml shows every key",
            path.display(),
            err.to_string().trim_end()
        ),
    })?;
    plan.validate().map_err(|err| UserError {
        message: format!("analysis plan `{}`: {err}", path.display()),
    })?;
    if let Some(accuracy) = plan.quality.as_mut().and_then(|q| q.accuracy.as_mut())
        && accuracy.dataset.is_relative()
    {
        let dir = path.parent().unwrap_or(Path::new("."));
        accuracy.dataset = dir.join(&accuracy.dataset);
    }
    Ok(plan)
}

fn parse_release(release: &str) -> anyhow::Result<(String, String)> {
    match release.split_once('/') {
        Some((namespace, name))
            if !namespace.is_empty() && !name.is_empty() && !name.contains('/') =>
        {
            Ok((namespace.to_owned(), name.to_owned()))
        }
        _ => Err(UserError {
            message: format!(
                "invalid `--release` `{release}`: expected `namespace/name`\n\nhint: e.g. `--release ml/fraud-model`"
            ),
        }
        .into()),
    }
}

fn parse_time(flag: &str, text: &str) -> anyhow::Result<Timestamp> {
    if let Ok(at) = text.parse::<Timestamp>() {
        return Ok(at);
    }
    if let Ok(seconds) = text.parse::<f64>()
        && let Ok(at) = Timestamp::from_millisecond((seconds * 1000.0).round() as i64)
    {
        return Ok(at);
    }
    Err(UserError {
        message: format!(
            "invalid `{flag}` `{text}`: not an RFC 3339 time or Unix seconds\n\nhint: e.g. `{flag} 2025-06-01T12:00:00Z` or `{flag} 1748779200`"
        ),
    }
    .into())
}

/// The window to replay, and whether it ends now (so endpoint checks can run).
///
/// `--at T` (and the default, now) covers what a live run ending at `T` would have seen:
/// `count` rounds `interval` apart, widened when needed so the comparison and quality checks
/// can reach their minimum sample counts.
fn window(
    args: &AnalyzeArgs,
    plan: &AnalysisPlan,
    now: Timestamp,
) -> anyhow::Result<(Timestamp, Timestamp, bool)> {
    if let (Some(from), Some(to)) = (&args.from, &args.to) {
        let (from, to) = (parse_time("--from", from)?, parse_time("--to", to)?);
        if to < from {
            return Err(UserError {
                message: format!(
                    "invalid range: `--to` {to} is before `--from` {from}\n\nhint: swap them"
                ),
            }
            .into());
        }
        return Ok((from, to, false));
    }
    let (end, live) = match &args.at {
        Some(at) => (parse_time("--at", at)?, false),
        None => (now, true),
    };
    let rounds = plan.interval * plan.count.saturating_sub(1);
    let compare = plan
        .compare
        .as_ref()
        .map(|c| c.step * (c.min_samples as u32).saturating_sub(1))
        .unwrap_or(Duration::ZERO);
    let quality = plan
        .quality
        .as_ref()
        .filter(|q| q.distributions.iter().any(|d| d.query.is_some()))
        .map(|q| q.step * (q.min_samples as u32).saturating_sub(1))
        .unwrap_or(Duration::ZERO);
    let span = rounds.max(compare).max(quality);
    let span = SignedDuration::try_from(span).unwrap_or(SignedDuration::MAX);
    let start = end
        .checked_sub(span)
        .context("the analysis window starts before year -9999")?;
    Ok((start, end, live))
}

fn user_error(err: slipway_analysis::Error) -> anyhow::Error {
    UserError {
        message: err.to_string(),
    }
    .into()
}
