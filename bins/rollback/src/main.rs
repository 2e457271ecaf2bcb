//! `slipway-rollback`: put a release back on an earlier good revision, now or when it breaks.
//!
//! - `slipway-rollback [to] --reason "p99 regression" [--to REVISION|DIGEST] [--emergency]`
//!   finds the target in the release history, checks the image still exists and its signature
//!   still verifies, needs an approval for the target unless `--emergency`, removes any canary,
//!   rolls stable back, health-checks it, moves the serving alias back and records the reason.
//!   `to` is the default command, so the flags work without it.
//!   Exit 0 rolled back, 1 a check said no, 2 error.
//! - `slipway-rollback watch [RELEASE]` guards the release serving now for `watch.duration` and
//!   rolls it back by itself (an emergency rollback naming the breach) when stable turns
//!   unhealthy or its error rate or p99 latency stays above the limit for `watch.sustain`.
//!   Exit 0 guarded with no breach, 1 breached and rolled back, 2 error.
//!
//! Both build their backends from configuration exactly as `slipway-deploy` does.

mod watch;

use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Parser, Subcommand};
use slipway_audit_log::{AuditStore, FileAuditStore, MemoryAuditStore};
use slipway_cli::config::Settings;
use slipway_cli::demo::DemoArgs;
use slipway_cli::release::release_spec;
use slipway_cli::{ExitStatus, Failure, GlobalArgs, UserError, config};
use slipway_core::Digest;
use slipway_pipeline::{ReleaseSpec, RollbackSpec, RollbackTarget, RunOutcome, StageEvent};

/// Roll a release back to an earlier good revision, now or when it breaks.
#[derive(Debug, Parser)]
#[command(
    name = "slipway-rollback",
    version,
    about,
    args_conflicts_with_subcommands = true,
    after_help = "Examples:\n  slipway-rollback --reason \"p99 doubled after revision 7\" --emergency\n  slipway-rollback to --to 5 --reason \"back to the last reviewed model\"\n  slipway-rollback watch ml-serving/iris-classifier --duration 1h\n  slipway-rollback to --demo --state demo/ --reason \"rehearsal\" --emergency   # on the embedded demo world\n\nWithout --demo, every backend must be configured in [backend] (or listed in backend.simulated)."
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Without a subcommand: roll back now (as `to`).
    #[command(flatten)]
    to: ToArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Roll back now (the default command).
    To(ToArgs),
    /// Guard the release serving now; roll it back by itself on a sustained breach.
    Watch(watch::WatchArgs),
    /// Print the shell completion script for bash, zsh, fish or PowerShell.
    Completions(slipway_cli::meta::CompletionsArgs),
    /// Write the man pages into DIR (`cargo xtask man` runs it).
    #[command(hide = true)]
    Man(slipway_cli::meta::ManArgs),
}

/// Flags of `to` (and of the bare command).
#[derive(Debug, Args)]
struct ToArgs {
    #[command(flatten)]
    global: GlobalArgs,
    #[command(flatten)]
    release: slipway_cli::ReleaseArg,
    /// Target revision number or image digest (default: the previous successful revision).
    #[arg(long, value_name = "REVISION|DIGEST")]
    to: Option<String>,
    /// Why: recorded in the history and the audit trail (required).
    #[arg(long)]
    reason: Option<String>,
    /// Skip the approval gate (the signature is still verified).
    #[arg(long)]
    emergency: bool,
    #[command(flatten)]
    demo: DemoArgs,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli: Cli = slipway_cli::meta::parse();
    match &cli.command {
        None => slipway_cli::logging::init(&cli.to.global),
        Some(Command::To(args)) => slipway_cli::logging::init(&args.global),
        Some(Command::Watch(args)) => slipway_cli::logging::init(&args.global),
        Some(Command::Completions(_) | Command::Man(_)) => {}
    }
    let result = match &cli.command {
        None => roll_back(&cli.to).await,
        Some(Command::To(args)) => roll_back(args).await,
        Some(Command::Watch(args)) => watch::run(args).await,
        Some(Command::Completions(args)) => {
            slipway_cli::meta::completions::<Cli>(args.shell);
            Ok(ExitStatus::Success)
        }
        Some(Command::Man(args)) => man(args),
    };
    match result {
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

/// What every command needs before it acts: settings, the release spec and the backends.
pub(crate) struct Setup {
    pub(crate) settings: Settings,
    pub(crate) release: ReleaseSpec,
    pub(crate) built: slipway_cli::backends::Built,
}

/// Loads the configuration (flags as `(key, value)` overrides, merged last) and builds the
/// backends. `None` when `--print-config` printed it.
#[allow(
    clippy::print_stdout,
    reason = "`--print-config` prints data on stdout"
)]
pub(crate) async fn setup(
    global: &GlobalArgs,
    demo: &DemoArgs,
    overrides: &[(&str, serde_json::Value)],
) -> anyhow::Result<Option<Setup>> {
    let settings = config::load(global, overrides)?;
    if global.print_config {
        print!("{}", config::render(&settings)?);
        return Ok(None);
    }
    let release = release_spec(&settings, None, None)?;
    let audit: Arc<dyn AuditStore> = match &settings.audit.path {
        Some(path) => Arc::new(FileAuditStore::new(path)),
        None => Arc::new(MemoryAuditStore::new()),
    };
    let env = |name: &str| std::env::var(name).ok();
    // Its errors name their input already (a key, a file, `--demo`).
    let built =
        slipway_cli::backends::build(&settings, global, demo, &release, audit, &env).await?;
    Ok(Some(Setup {
        settings,
        release,
        built,
    }))
}

/// Where the command runs: the embedded demo world, or the real backends (naming any part
/// simulated on purpose).
pub(crate) fn where_(built: &slipway_cli::backends::Built) -> String {
    built.banner()
}

#[allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "a binary: data on stdout, the story on stderr"
)]
async fn roll_back(args: &ToArgs) -> anyhow::Result<ExitStatus> {
    // With flags first, clap reads a later subcommand name as the positional release.
    if let Some(name @ ("to" | "watch" | "completions")) =
        args.release.release_positional.as_deref()
    {
        return Err(UserError {
            message: format!(
                "the subcommand `{name}` cannot come after the flags of the bare command\n\nhint: write it first: `slipway-rollback {name} …`"
            ),
        }
        .into());
    }
    let global = args.global.with_release(&args.release);
    let target = target(args.to.as_deref())?;
    let reason = match args.reason.as_deref().map(str::trim) {
        None if args.global.print_config => String::new(),
        None => return Err(UserError { message: "a rollback needs `--reason`\n\nhint: say why, e.g. `--reason \"p99 latency doubled after revision 7\"`".to_owned() }.into()),
        Some("") => return Err(UserError { message: "`--reason` is empty\n\nhint: say why, e.g. `--reason \"p99 latency doubled after revision 7\"`".to_owned() }.into()),
        Some(reason) => reason.to_owned(),
    };
    let Some(Setup { release, built, .. }) = setup(&global, &args.demo, &[]).await? else {
        return Ok(ExitStatus::Success);
    };
    let spec = RollbackSpec {
        release: release.release.clone(),
        target,
        reason,
        emergency: args.emergency,
        actor: release.actor.clone(),
        serving_alias: release.serving_alias.clone(),
        progress_deadline: release.progress_deadline,
        history_limit: release.history_limit,
        policy: release.policy.clone(),
        service: release.service.clone(),
        traffic: release.traffic.clone(),
    };
    slipway_cli::signals::install(built.backends.interrupt.clone());
    eprintln!("slipway: rolling back {} {}", spec.release, where_(&built));
    let mut observer = |event: &StageEvent| slipway_cli::story::print_event(event);
    let mut report = slipway_pipeline::rollback(&spec, &built.backends, &mut observer).await;
    slipway_cli::story::finish();
    report.backends = built.systems.clone();
    if let Some(note) = built.simulated_note() {
        eprintln!("slipway: {note}");
    }
    slipway_cli::output::print(global.output, &report, || {
        let outcome = match report.outcome {
            RunOutcome::RolledBack => "rolled-back",
            RunOutcome::Rejected => "refused",
            RunOutcome::Cancelled => "cancelled",
            RunOutcome::Promoted
            | RunOutcome::Failed
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
            text.push_str(&format!("revision: {revision}\n"));
        }
        text
    })?;
    slipway_cli::github::publish_from_env(&report)?;
    Ok(match report.outcome {
        RunOutcome::RolledBack => ExitStatus::Success,
        RunOutcome::Rejected => ExitStatus::No,
        RunOutcome::Cancelled => ExitStatus::from(&report),
        RunOutcome::Promoted
        | RunOutcome::WouldProceed
        | RunOutcome::Failed
        | RunOutcome::Paused
        | RunOutcome::Unchanged
        | RunOutcome::Aborted => ExitStatus::Error,
    })
}

/// The hidden `man DIR`.
#[allow(clippy::print_stderr, reason = "which files were written is the story")]
fn man(args: &slipway_cli::meta::ManArgs) -> anyhow::Result<ExitStatus> {
    let written = slipway_cli::meta::man::<Cli>(&args.dir).map_err(|err| UserError {
        message: format!("{err:#}\n\nhint: give a directory that can be written"),
    })?;
    eprintln!(
        "wrote {} man pages to {}",
        written.len(),
        args.dir.display()
    );
    Ok(ExitStatus::Success)
}
