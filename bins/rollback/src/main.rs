//! `slipway-rollback`: put a release back on an earlier good revision.
//!
//! `slipway-rollback --reason "p99 regression" [--to REVISION|DIGEST] [--emergency]`
//! finds the target in the release history, checks the image still exists and its signature
//! still verifies, needs an approval for the target unless `--emergency`, removes any canary,
//! rolls stable back, health-checks it, moves the serving alias back and records the reason.
//! Exit 0 rolled back, 1 a check said no, 2 error.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use clap::Parser;
use slipway_audit_log::{AuditStore, FileAuditStore, MemoryAuditStore};
use slipway_cli::release::release_spec;
use slipway_cli::{ExitStatus, Failure, GlobalArgs, OutputFormat, UserError, config};
use slipway_core::Digest;
use slipway_pipeline::scenario;
use slipway_pipeline::{RollbackSpec, RollbackTarget, RunOutcome, StageEvent};

/// Roll a release back to an earlier good revision.
#[derive(Debug, Parser)]
#[command(name = "slipway-rollback", version, about)]
struct Cli {
    #[command(flatten)]
    global: GlobalArgs,
    /// `namespace/deployment` [release.name].
    #[arg(long)]
    release: Option<String>,
    /// Target revision number or image digest (default: the previous successful revision).
    #[arg(long, value_name = "REVISION|DIGEST")]
    to: Option<String>,
    /// Why: recorded in the history and the audit trail.
    #[arg(long)]
    reason: String,
    /// Skip the approval gate (the signature is still verified).
    #[arg(long)]
    emergency: bool,
    /// In-memory world to run in [backend.scenario].
    #[arg(long)]
    scenario: Option<String>,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(status) => status.into(),
        Err(err) => Failure::report(&err),
    }
}

fn target(text: Option<&str>) -> Result<RollbackTarget, UserError> {
    match text {
        None => Ok(RollbackTarget::Previous),
        Some(text) if text.contains(':') => Digest::parse(text).map(RollbackTarget::Digest).map_err(|err| UserError {
            message: format!("invalid `--to {text}`: {err}\n\nhint: give a revision number or a full digest `sha256:<64 hex>`"),
        }),
        Some(text) => text.parse().map(RollbackTarget::Revision).map_err(|_| UserError {
            message: format!("invalid `--to {text}`: neither a revision number nor a digest\n\nhint: `--to 4` or `--to sha256:…`"),
        }),
    }
}

#[allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "a binary: data on stdout, the story on stderr"
)]
async fn run(cli: Cli) -> anyhow::Result<ExitStatus> {
    let mut overrides = Vec::new();
    if let Some(release) = &cli.release {
        overrides.push(("release.name", serde_json::Value::String(release.clone())));
    }
    if let Some(name) = &cli.scenario {
        overrides.push(("backend.scenario", serde_json::Value::String(name.clone())));
    }
    let settings = config::load(&cli.global, &overrides)?;
    if cli.global.print_config {
        print!("{}", config::render(&settings)?);
        return Ok(ExitStatus::Success);
    }
    let target = target(cli.to.as_deref())?;
    if cli.reason.trim().is_empty() {
        return Err(UserError { message: "`--reason` is empty\n\nhint: say why, e.g. `--reason \"p99 latency doubled after revision 7\"`".to_owned() }.into());
    }
    let release = release_spec(&settings, None, None)?;
    let spec = RollbackSpec {
        release: release.release.clone(),
        target,
        reason: cli.reason.clone(),
        emergency: cli.emergency,
        actor: release.actor.clone(),
        serving_alias: release.serving_alias.clone(),
        progress_deadline: release.progress_deadline,
        history_limit: release.history_limit,
        policy: release.policy.clone(),
    };
    let audit: Arc<dyn AuditStore> = match &settings.audit.path {
        Some(path) => Arc::new(FileAuditStore::new(path)),
        None => Arc::new(MemoryAuditStore::new()),
    };
    let world = scenario::build_with_audit(&settings.backend.scenario, &release, audit)
        .await
        .context("building the in-memory backends")?;
    eprintln!(
        "slipway: rolling back {} on the in-memory backends",
        spec.release
    );
    let mut observer = |event: &StageEvent| slipway_cli::story::print_event(event);
    let report = slipway_pipeline::rollback(&spec, &world.backends, &mut observer).await;
    match cli.global.output {
        OutputFormat::Json => println!(
            "{}",
            serde_json::to_string_pretty(&report).context("encoding the report")?
        ),
        OutputFormat::Text => {
            let outcome = match report.outcome {
                RunOutcome::Promoted => "rolled-back",
                RunOutcome::Rejected => "refused",
                RunOutcome::Failed | RunOutcome::WouldProceed | RunOutcome::Paused => "failed",
            };
            println!(
                "release: {}\noutcome: {outcome}\nreason: {}",
                report.release, report.reason
            );
            if let Some(revision) = report.revision {
                println!("revision: {revision}");
            }
        }
    }
    Ok(match report.outcome {
        RunOutcome::Promoted | RunOutcome::WouldProceed => ExitStatus::Success,
        RunOutcome::Rejected => ExitStatus::No,
        RunOutcome::Failed | RunOutcome::Paused => ExitStatus::Error,
    })
}
