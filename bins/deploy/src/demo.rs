//! `slipway-deploy demo`: the whole demo story in one in-memory world, the audit trail in a
//! file for `slipway-audit` to read afterwards (what `cargo xtask demo` runs).
//!
//! The story has to run in one process: the in-memory cluster, registry and model registry live
//! only as long as it does, so a sequence of `slipway-deploy run` and `slipway-rollback watch`
//! invocations would each start from a fresh world. The chapters call the same pipeline
//! functions those commands call (`slipway_demo::story`).
//!
//! Exit 0 when every chapter ended as written, 1 when one did not, 2 on an error.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use slipway_audit_log::FileAuditStore;
use slipway_cli::config::{self, BackendSettings};
use slipway_cli::release::release_spec;
use slipway_cli::{ExitStatus, GlobalArgs, UserError};
use slipway_pipeline::{StageEvent, StageStatus};

/// Flags of `demo`.
#[derive(Debug, clap::Args)]
pub(crate) struct DemoArgs {
    #[command(flatten)]
    pub(crate) global: GlobalArgs,
    /// The audit trail to write (replaced: the story starts a fresh world).
    #[arg(long, value_name = "PATH", default_value = "target/demo/audit.jsonl")]
    trail: PathBuf,
}

/// Prints a chapter heading as a block, every other event as its usual line.
#[allow(clippy::print_stderr, reason = "the story is for people, on stderr")]
fn print(event: &StageEvent) {
    if event.stage == "story" && event.status == StageStatus::Start {
        eprintln!("\n━━ {} ━━", event.message);
    } else {
        slipway_cli::story::print_event(event);
    }
}

#[allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "a binary: the summary on stdout, the story on stderr"
)]
pub(crate) async fn run(args: &DemoArgs) -> anyhow::Result<ExitStatus> {
    let settings = config::load(&args.global, &[])?;
    if args.global.print_config {
        print!("{}", config::render(&settings)?);
        return Ok(ExitStatus::Success);
    }
    if settings.backend
        != (BackendSettings {
            scenario: settings.backend.scenario.clone(),
            ..BackendSettings::default()
        })
    {
        eprintln!(
            "slipway: note: the demo story always runs on the embedded in-memory world; `[backend]` is not used"
        );
    }
    let base = release_spec(&settings, None, None)?;
    match std::fs::remove_file(&args.trail) {
        Ok(()) => {}
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
        Err(err) => {
            return Err(UserError {
                message: format!(
                    "cannot replace the trail `{}`: {err}\n\nhint: pass another `--trail PATH`",
                    args.trail.display()
                ),
            }
            .into());
        }
    }
    eprintln!(
        "slipway: the demo story of {} on the in-memory backends, simulated time; trail {}",
        base.release,
        args.trail.display()
    );
    let audit = Arc::new(FileAuditStore::new(&args.trail));
    let mut observer = |event: &StageEvent| print(event);
    let report = slipway_demo::story::tell(&base, &settings.watch, audit, &mut observer)
        .await
        .map_err(|err| UserError {
            message: err.to_string(),
        })
        .context("telling the demo story")?;
    slipway_cli::story::finish();
    eprintln!();
    for (idx, chapter) in report.chapters.iter().enumerate() {
        if chapter.deviations.is_empty() {
            println!("chapter {}: {}: as written", idx + 1, chapter.title);
        } else {
            println!(
                "chapter {}: {}: NOT as written: {}",
                idx + 1,
                chapter.title,
                chapter.deviations.join("; ")
            );
        }
    }
    println!("trail: {}", args.trail.display());
    Ok(if report.as_written() {
        ExitStatus::Success
    } else {
        ExitStatus::No
    })
}
