//! `status`, `history`, `schema` and the hidden `man`: the commands that read a release or
//! describe Slipway's own formats, kept apart from the release commands of `main.rs`.

use std::time::Duration;

use clap::Args;
use slipway_audit_log::Entry;
use slipway_cli::config::Settings;
use slipway_cli::output::Versioned;
use slipway_cli::{ExitStatus, GlobalArgs, UserError};
use slipway_core::ReleaseRecord;
use slipway_pipeline::{ReleaseStatus, RunReport, State};

use crate::{Prepared, ReleaseArgs, prepare};

/// Flags of `status`.
#[derive(Debug, Args)]
pub(crate) struct StatusArgs {
    #[command(flatten)]
    pub(crate) release: ReleaseArgs,
    /// Re-read until the release reaches a final state (promoted, healthy, aborted, degraded)
    /// or `--timeout` ends, as `kubectl argo rollouts status --watch`.
    #[arg(long, short = 'w')]
    watch: bool,
    /// How long `--watch` waits (`30s`, `10m`); paused or in progress when it ends: exit 3.
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = parse_duration)]
    timeout: Duration,
}

/// Flags of `history`.
#[derive(Debug, Args)]
pub(crate) struct HistoryArgs {
    #[command(flatten)]
    pub(crate) release: ReleaseArgs,
    /// Only the newest N revisions (default: every one the cluster keeps).
    #[arg(long, value_name = "N")]
    max: Option<usize>,
}

/// The documents `schema` describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum SchemaName {
    /// The run report (`run`, `plan`, `promote`, `abort`, `slipway-rollback` with `--output json`).
    Report,
    /// `slipway.toml`.
    Config,
    /// One audit trail entry (`audit.jsonl` lines, `slipway-audit log --output json` entries).
    AuditEntry,
    /// `status --output json`.
    Status,
    /// `history --output json`.
    History,
    /// `approve --output json`.
    Approval,
    /// `check-scan --output json`.
    CheckScan,
    /// `analyze --output json`.
    Analyze,
    /// `check-model --output json`.
    CheckModel,
    /// `sign --output json`.
    Sign,
    /// `attest --output json`.
    Attest,
    /// `unlock --output json`.
    Unlock,
}

/// Flags of `schema`.
#[derive(Debug, Args)]
pub(crate) struct SchemaArgs {
    #[command(flatten)]
    pub(crate) global: GlobalArgs,
    /// Which document.
    #[arg(value_enum)]
    name: SchemaName,
}

/// `history --output json`: the release and its revisions, oldest first.
#[derive(Debug, serde::Serialize, schemars::JsonSchema)]
pub(crate) struct History {
    /// `namespace/name`.
    release: String,
    /// Every revision kept (or the newest `--max`), oldest first.
    revisions: Vec<ReleaseRecord>,
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    let parsed: jiff::SignedDuration = text
        .parse()
        .map_err(|err| format!("`{text}` is not a duration ({err}); e.g. `30s`, `10m`"))?;
    Duration::try_from(parsed).map_err(|_| format!("`{text}` is negative"))
}

/// `status`: exit 0 promoted or healthy, 1 aborted or degraded, 3 paused or in progress (when
/// `--watch` ends, or at once without it).
#[allow(
    clippy::print_stderr,
    reason = "where it runs and what changed is the story"
)]
pub(crate) async fn status(args: &StatusArgs) -> anyhow::Result<ExitStatus> {
    let Some(Prepared { spec, built }) = prepare(&args.release).await? else {
        return Ok(ExitStatus::Success);
    };
    let global = args.release.global();
    if !global.quiet {
        eprintln!("slipway: status of {} {}", spec.release, built.banner());
    }
    let deadline = tokio::time::Instant::now() + args.timeout;
    let mut seen = None;
    let status = loop {
        let status = slipway_pipeline::status(&spec, &built.backends)
            .await
            .map_err(|message| anyhow::anyhow!(message))?;
        if !args.watch || status.state.is_final() || tokio::time::Instant::now() >= deadline {
            break status;
        }
        if seen != Some(status.state) && !global.quiet {
            eprintln!(
                "slipway: {} {}; waiting up to {:?}",
                spec.release,
                state_name(status.state),
                deadline.saturating_duration_since(tokio::time::Instant::now())
            );
        }
        seen = Some(status.state);
        let pause = deadline
            .saturating_duration_since(tokio::time::Instant::now())
            .min(Duration::from_secs(2));
        tokio::time::sleep(pause).await;
    };
    slipway_cli::output::print(global.output, &status, || status.to_text())?;
    Ok(exit_of(status.state))
}

fn state_name(state: State) -> String {
    serde_json::to_value(state)
        .ok()
        .and_then(|value| value.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// The exit code of a state (see [`status`]).
pub(crate) fn exit_of(state: State) -> ExitStatus {
    match state {
        State::Promoted | State::Healthy => ExitStatus::Success,
        State::Aborted | State::Degraded => ExitStatus::No,
        State::Paused | State::InProgress => ExitStatus::Inconclusive,
    }
}

/// `history`: every revision, oldest first, as `helm history` lists them.
pub(crate) async fn history(args: &HistoryArgs) -> anyhow::Result<ExitStatus> {
    let Some(Prepared { spec, built }) = prepare(&args.release).await? else {
        return Ok(ExitStatus::Success);
    };
    let mut revisions = slipway_pipeline::history(&spec, &built.backends)
        .await
        .map_err(|message| anyhow::anyhow!(message))?;
    if let Some(max) = args.max {
        revisions.drain(..revisions.len().saturating_sub(max));
    }
    let history = History {
        release: spec.release.to_string(),
        revisions,
    };
    slipway_cli::output::print(args.release.global().output, &history, || {
        history_text(&history)
    })?;
    Ok(ExitStatus::Success)
}

fn history_text(history: &History) -> String {
    let mut text = format!(
        "{:>8}  {:<11}  {:<10}  {:<25}  {:<20}  {:<12}  {:<19}  {}\n",
        "REVISION", "OUTCOME", "STRATEGY", "MODEL", "DIGEST", "ACTOR", "TIME", "REASON"
    );
    for record in &history.revisions {
        let time = record.at.strftime("%Y-%m-%dT%H:%M:%S").to_string();
        text.push_str(&format!(
            "{:>8}  {:<11}  {:<10}  {:<25}  {:<20}  {:<12}  {:<19}  {}\n",
            record.revision,
            record.outcome.to_string(),
            serde_json::to_value(record.strategy)
                .ok()
                .and_then(|value| value.as_str().map(str::to_owned))
                .unwrap_or_default(),
            record.model.to_string(),
            record.digest.short(),
            record.actor,
            time,
            record.reason.as_deref().unwrap_or("")
        ));
    }
    if history.revisions.is_empty() {
        text.push_str("(no revisions)\n");
    }
    text
}

/// `approve --output json`: the approvals `approve` recorded, one per authenticated approver
/// (a GitHub run's environment may have several reviewers).
#[derive(Debug, serde::Serialize, schemars::JsonSchema)]
pub(crate) struct ApprovedDocument<'a> {
    /// The recorded approvals.
    pub(crate) approvals: &'a [slipway_audit_log::ApprovalRecord],
}

/// The JSON Schema of `name`, generated from the types the commands serialise.
pub(crate) fn schema_of(name: SchemaName) -> serde_json::Value {
    let schema = match name {
        SchemaName::Report => schemars::schema_for!(Versioned<RunReport>),
        SchemaName::Config => schemars::schema_for!(Settings),
        SchemaName::AuditEntry => schemars::schema_for!(Entry),
        SchemaName::Status => schemars::schema_for!(Versioned<ReleaseStatus>),
        SchemaName::History => schemars::schema_for!(Versioned<History>),
        SchemaName::Approval => schemars::schema_for!(Versioned<ApprovedDocument<'static>>),
        SchemaName::CheckScan => return crate::check_scan::schema(),
        SchemaName::Analyze => return crate::analyze::schema(),
        SchemaName::CheckModel => {
            schemars::schema_for!(Versioned<crate::supply_chain::CheckedModel>)
        }
        SchemaName::Sign => schemars::schema_for!(Versioned<crate::supply_chain::Signed>),
        SchemaName::Attest => schemars::schema_for!(Versioned<crate::supply_chain::Attested>),
        SchemaName::Unlock => schemars::schema_for!(Versioned<slipway_pipeline::lock::Unlocked>),
    };
    schema.to_value()
}

/// `schema NAME`: the schema on stdout (JSON; YAML with `--output yaml`).
pub(crate) fn schema(args: &SchemaArgs) -> anyhow::Result<ExitStatus> {
    slipway_cli::output::print_raw(args.global.output, &schema_of(args.name))?;
    Ok(ExitStatus::Success)
}

/// The hidden `man DIR`.
#[allow(clippy::print_stderr, reason = "which files were written is the story")]
pub(crate) fn man<C: clap::CommandFactory>(
    args: &slipway_cli::meta::ManArgs,
) -> anyhow::Result<ExitStatus> {
    let written = slipway_cli::meta::man::<C>(&args.dir).map_err(|err| UserError {
        message: format!("{err:#}\n\nhint: give a directory that can be written"),
    })?;
    eprintln!(
        "wrote {} man pages to {}",
        written.len(),
        args.dir.display()
    );
    Ok(ExitStatus::Success)
}
