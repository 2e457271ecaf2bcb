//! `slipway-audit`: read, verify and summarise the audit trail that `slipway-deploy` writes.
//!
//! - `log`: every entry (releases, approvals, decisions), oldest first.
//! - `verify`: checks the hash chain (edits, gaps, reordering, and truncation against a head the
//!   caller kept); prints the current head on stdout so a CI job can keep it for next time.
//! - `dora`: deployment frequency, change-failure rate and time to restore over a period.
//!
//! The trail is the JSON Lines file named by `audit.path` in the configuration or `--trail`.

mod dora;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
use slipway_audit_log::{AuditStore as _, Entry, Event, FileAuditStore, Head, verify};
use slipway_cli::{ExitStatus, Failure, GlobalArgs, OutputFormat, UserError, config};

/// Read, verify and summarise Slipway's audit trail.
#[derive(Debug, Parser)]
#[command(name = "slipway-audit", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Every entry of the trail, oldest first.
    Log(TrailArgs),
    /// Check the hash chain; exit 1 when it is broken.
    Verify {
        #[command(flatten)]
        trail: TrailArgs,
        /// The head seen last (`SEQ:HASH`, as `verify` printed it), to detect truncation.
        #[arg(long, value_name = "SEQ:HASH")]
        head: Option<String>,
    },
    /// DORA metrics over a period.
    Dora {
        #[command(flatten)]
        trail: TrailArgs,
        /// Start of the period (RFC 3339); default 30 days before `--until`.
        #[arg(long)]
        since: Option<String>,
        /// End of the period (RFC 3339); default now.
        #[arg(long)]
        until: Option<String>,
    },
}

#[derive(Debug, Args)]
struct TrailArgs {
    #[command(flatten)]
    global: GlobalArgs,
    /// The trail file [audit.path].
    #[arg(long, value_name = "PATH")]
    trail: Option<PathBuf>,
    /// Only entries of this release (`namespace/name`).
    #[arg(long)]
    release: Option<String>,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(status) => status.into(),
        Err(err) => Failure::report(&err),
    }
}

async fn entries(args: &TrailArgs) -> anyhow::Result<(PathBuf, Vec<Entry>)> {
    let overrides: Vec<(&str, serde_json::Value)> = args
        .trail
        .iter()
        .map(|path| {
            (
                "audit.path",
                serde_json::Value::String(path.display().to_string()),
            )
        })
        .collect();
    let settings = config::load(&args.global, &overrides)?;
    let Some(path) = settings.audit.path else {
        return Err(UserError {
            message: "no audit trail to read\n\nhint: pass `--trail PATH` or set `audit.path` in slipway.toml".to_owned(),
        }
        .into());
    };
    if !path.is_file() {
        return Err(UserError {
            message: format!("audit trail `{}` not found\n\nhint: check the path; `slipway-deploy run` writes it when `audit.path` is set", path.display()),
        }
        .into());
    }
    let entries = FileAuditStore::new(&path)
        .entries()
        .await
        .with_context(|| format!("reading `{}`", path.display()))?;
    Ok((path, entries))
}

fn release_of(event: &Event) -> String {
    match event {
        Event::Release(record) => record.release.to_string(),
        Event::Approval(approval) => approval.release.to_string(),
        Event::Decision { release, .. } => release.to_string(),
    }
}

fn describe(event: &Event) -> (String, String) {
    match event {
        Event::Release(record) => (
            "release".to_owned(),
            format!(
                "revision {} {} by {}: {} at {}{}",
                record.revision,
                record.outcome,
                record.actor,
                record.model,
                record.digest.short(),
                record
                    .reason
                    .as_deref()
                    .map(|reason| format!(" ({reason})"))
                    .unwrap_or_default()
            ),
        ),
        Event::Approval(approval) => (
            "approval".to_owned(),
            format!(
                "{} approved {} at {}: {}",
                approval.approver,
                approval.model,
                approval.digest.short(),
                approval.reason
            ),
        ),
        Event::Decision {
            stage,
            verdict,
            detail,
            ..
        } => (
            "decision".to_owned(),
            format!("{stage} {verdict}: {detail}"),
        ),
    }
}

#[allow(
    clippy::print_stdout,
    reason = "the trail and its verdicts are this binary's data"
)]
async fn run(cli: Cli) -> anyhow::Result<ExitStatus> {
    match cli.command {
        Command::Log(args) => {
            let (_, entries) = entries(&args).await?;
            let selected: Vec<&Entry> = entries
                .iter()
                .filter(|entry| {
                    args.release
                        .as_ref()
                        .is_none_or(|release| &release_of(&entry.event) == release)
                })
                .collect();
            match args.global.output {
                OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&selected)?),
                OutputFormat::Text => {
                    for entry in selected {
                        let (kind, text) = describe(&entry.event);
                        println!(
                            "{:>4}  {}  {:<9} {:<28} {text}",
                            entry.seq,
                            entry.at,
                            kind,
                            release_of(&entry.event)
                        );
                    }
                }
            }
            Ok(ExitStatus::Success)
        }
        Command::Verify { trail, head } => {
            let expected = match head {
                None => None,
                Some(text) => Some(parse_head(&text)?),
            };
            let (path, entries) = entries(&trail).await?;
            let problems = verify(&entries, expected.as_ref());
            let current = entries.last().map(Entry::head);
            match trail.global.output {
                OutputFormat::Json => {
                    let report = serde_json::json!({
                        "trail": path.display().to_string(),
                        "entries": entries.len(),
                        "ok": problems.is_empty(),
                        "problems": problems,
                        "head": current,
                    });
                    println!("{}", serde_json::to_string_pretty(&report)?);
                }
                OutputFormat::Text => {
                    for problem in &problems {
                        println!("entry {}: {}", problem.seq, problem.problem);
                    }
                    let verdict = if problems.is_empty() {
                        "intact"
                    } else {
                        "BROKEN"
                    };
                    println!("{verdict}: {} entries in {}", entries.len(), path.display());
                    if let Some(head) = current {
                        println!("head: {}:{}", head.seq, head.hash);
                    }
                }
            }
            Ok(if problems.is_empty() {
                ExitStatus::Success
            } else {
                ExitStatus::No
            })
        }
        Command::Dora {
            trail,
            since,
            until,
        } => {
            let (_, entries) = entries(&trail).await?;
            let until = match until {
                Some(text) => parse_time("--until", &text)?,
                None => jiff::Timestamp::now(),
            };
            let since = match since {
                Some(text) => parse_time("--since", &text)?,
                None => until - jiff::SignedDuration::from_hours(24 * 30),
            };
            let records: Vec<_> = entries
                .iter()
                .filter_map(|entry| match &entry.event {
                    Event::Release(record)
                        if trail
                            .release
                            .as_ref()
                            .is_none_or(|release| &record.release.to_string() == release) =>
                    {
                        Some(record.clone())
                    }
                    _ => None,
                })
                .collect();
            let metrics = dora::compute(&records, since, until);
            match trail.global.output {
                OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&metrics)?),
                OutputFormat::Text => print!("{}", metrics.to_text()),
            }
            Ok(ExitStatus::Success)
        }
    }
}

fn parse_head(text: &str) -> Result<Head, UserError> {
    let parsed = text.split_once(':').and_then(|(seq, hash)| {
        let ok = hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit());
        seq.parse().ok().filter(|_| ok).map(|seq| Head {
            seq,
            hash: hash.to_owned(),
        })
    });
    parsed.ok_or_else(|| UserError {
        message: format!("invalid `--head {text}`: expected `SEQ:HASH` with a 64-character hex hash\n\nhint: pass the `head:` line `slipway-audit verify` printed"),
    })
}

fn parse_time(flag: &str, text: &str) -> Result<jiff::Timestamp, UserError> {
    text.parse().map_err(|err| UserError {
        message: format!(
            "invalid `{flag} {text}`: {err}\n\nhint: use RFC 3339, e.g. `2026-11-01T00:00:00Z`"
        ),
    })
}
