//! `slipway-rollback watch`: guard the release serving now and roll it back on a sustained breach.
//!
//! Flags override the `[watch]` keys named in their help; the decision and the rollback are
//! `slipway_pipeline::watch::watch`. Exit 0 guarded with no breach, 1 breached and rolled back
//! (a "no" for the release), 2 the watch could not guard or the rollback did not finish.

use clap::Args;
use slipway_cli::demo::DemoArgs;
use slipway_cli::{ExitStatus, GlobalArgs, UserError};
use slipway_pipeline::watch::WatchSpec;
use slipway_pipeline::{RunOutcome, RunReport, StageEvent};

use crate::{Setup, setup, where_};

/// Flags of `watch`.
#[derive(Debug, Args)]
pub(crate) struct WatchArgs {
    #[command(flatten)]
    pub(crate) global: GlobalArgs,
    #[command(flatten)]
    release: slipway_cli::ReleaseArg,
    /// How long to guard, e.g. `30m`, `1h` [watch.duration].
    #[arg(long, value_name = "DURATION")]
    duration: Option<String>,
    /// Time between checks, e.g. `30s` [watch.interval].
    #[arg(long, value_name = "DURATION")]
    interval: Option<String>,
    /// How long a metric breach must hold before rolling back, e.g. `5m` [watch.sustain].
    #[arg(long, value_name = "DURATION")]
    sustain: Option<String>,
    /// Highest tolerated error ratio on stable, e.g. `0.01` [watch.error_rate_max].
    #[arg(long, value_name = "RATIO")]
    error_rate_max: Option<f64>,
    /// Highest tolerated p99 latency on stable, in seconds [watch.latency_p99_max].
    #[arg(long, value_name = "SECONDS")]
    latency_p99_max: Option<f64>,
    #[command(flatten)]
    demo: DemoArgs,
}

impl WatchArgs {
    fn overrides(&self) -> Vec<(&'static str, serde_json::Value)> {
        let mut overrides = Vec::new();
        let strings = [
            ("watch.duration", &self.duration),
            ("watch.interval", &self.interval),
            ("watch.sustain", &self.sustain),
        ];
        for (key, value) in strings {
            if let Some(value) = value {
                overrides.push((key, serde_json::Value::String(value.clone())));
            }
        }
        for (key, value) in [
            ("watch.error_rate_max", self.error_rate_max),
            ("watch.latency_p99_max", self.latency_p99_max),
        ] {
            if let Some(number) = value.and_then(serde_json::Number::from_f64) {
                overrides.push((key, serde_json::Value::Number(number)));
            }
        }
        overrides
    }
}

#[allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "a binary: data on stdout, the story on stderr"
)]
pub(crate) async fn run(args: &WatchArgs) -> anyhow::Result<ExitStatus> {
    for (flag, value) in [
        ("--error-rate-max", args.error_rate_max),
        ("--latency-p99-max", args.latency_p99_max),
    ] {
        if value.is_some_and(|value| !value.is_finite()) {
            return Err(UserError {
                message: format!(
                    "invalid `{flag}`: not a finite number\n\nhint: e.g. `--error-rate-max 0.01` or `--latency-p99-max 2`"
                ),
            }
            .into());
        }
    }
    let Some(Setup {
        settings,
        release,
        built,
    }) = setup(
        &args.global.with_release(&args.release),
        &args.demo,
        &args.overrides(),
    )
    .await?
    else {
        return Ok(ExitStatus::Success);
    };
    let spec = WatchSpec::new(&release, &settings.watch).map_err(|err| UserError {
        message: err.to_string(),
    })?;
    slipway_cli::signals::install(built.backends.interrupt.clone());
    eprintln!("slipway: guarding {} {}", spec.release, where_(&built));
    let mut observer = |event: &StageEvent| slipway_cli::story::print_event(event);
    let mut report = slipway_pipeline::watch::watch(&spec, &built.backends, &mut observer).await;
    slipway_cli::story::finish();
    report.backends = built.systems.clone();
    if let Some(note) = built.simulated_note() {
        eprintln!("slipway: {note}");
    }
    for note in built.world.notifier.sent() {
        eprintln!("notified: [{}] {}", note.event, note.summary);
    }
    slipway_cli::output::print(args.global.output, &report, || summary(&report))?;
    slipway_cli::github::publish_from_env(&report)?;
    Ok(match report.outcome {
        RunOutcome::Promoted => ExitStatus::Success,
        RunOutcome::Rejected => ExitStatus::No,
        RunOutcome::Cancelled => ExitStatus::from(&report),
        RunOutcome::Failed
        | RunOutcome::RolledBack
        | RunOutcome::WouldProceed
        | RunOutcome::Paused
        | RunOutcome::Unchanged
        | RunOutcome::Aborted => ExitStatus::Error,
    })
}

/// The text result on stdout: `key: value` lines a script can grep.
fn summary(report: &RunReport) -> String {
    let outcome = match report.outcome {
        RunOutcome::Promoted => "guarded",
        RunOutcome::Rejected => "rolled-back",
        RunOutcome::Cancelled => "cancelled",
        RunOutcome::Failed
        | RunOutcome::RolledBack
        | RunOutcome::WouldProceed
        | RunOutcome::Paused
        | RunOutcome::Unchanged
        | RunOutcome::Aborted => "failed",
    };
    let mut text = format!(
        "release: {}\noutcome: {outcome}\nreason: {}\n",
        report.release, report.reason
    );
    if let Some(revision) = report.revision {
        text.push_str(&format!("guarded revision: {revision}\n"));
    }
    if let Some(model) = &report.model {
        text.push_str(&format!("model: {model}\n"));
    }
    text
}
