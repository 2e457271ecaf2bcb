//! `slipway-audit`: read, verify and summarise the audit trail that `slipway-deploy` writes, and
//! check that what runs is what the trail says.
//!
//! - `log`: every entry (releases, approvals, decisions), oldest first; `--approvals` for only
//!   the approvals.
//! - `verify`: checks the hash chain (edits, gaps, reordering, truncation against a head the
//!   caller kept), a torn last write, and with trusted keys each entry's signature; prints the
//!   current head on stdout so a CI job can keep it for next time.
//! - `dora`: deployment frequency, change-failure rate and time to restore over a period.
//! - `report`: release and approval history, DORA figures, the chain verdict and charts, as text
//!   on stdout and Markdown, JSON or a self-contained HTML page.
//! - `drift`: whether each release's running workloads carry the image the trail recorded, signed
//!   by a trusted key, with verifiable provenance.
//! - `trusted-root refresh | show`: the Sigstore trusted root of keyless verification, refreshed
//!   from sigstore's TUF repository as a step of its own (`trusted_root.rs`).
//!
//! The trail is the JSON Lines file named by `audit.path` (or `--trail`), or with
//! `audit.store = "cluster"` the release's audit ConfigMaps on the configured cluster backend.

mod dora;
mod drift;
mod report;
mod svg;
mod trail;
mod trusted_root;
mod verify_image;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use slipway_attest::{EcdsaP256PublicKey, Verifier};
use slipway_audit_log::{ChainVerifier, Entry, Event, Head, verify_entry_signature};
use slipway_cli::config::{self, Settings};
use slipway_cli::{ExitStatus, Failure, OutputFormat, UserError};

use crate::trail::TrailArgs;

/// Read, verify and summarise Slipway's audit trail.
#[derive(Debug, Parser)]
#[command(
    name = "slipway-audit",
    version,
    about,
    after_help = "Examples:\n  slipway-audit log --trail audit.jsonl --approvals\n  slipway-audit verify --trail audit.jsonl --head 41:<hash> --key cosign.pub\n  slipway-audit dora --trail audit.jsonl --since 2026-10-01T00:00:00Z\n  slipway-audit report --trail audit.jsonl --html report.html\n  slipway-audit drift\n  slipway-audit verify-image --key cosign.pub ghcr.io/acme/iris:1.5.0\n  slipway-audit verify-attestation --key build.pub --type slsaprovenance ghcr.io/acme/iris:1.5.0\n  slipway-audit trusted-root refresh\n\nExit codes: 0 fine, 1 the trail is broken or something drifted, 2 error."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Every entry of the trail, oldest first.
    #[command(
        after_help = "Examples:\n  slipway-audit log --trail audit.jsonl\n  slipway-audit log --approvals --release ml-serving/iris-classifier"
    )]
    Log {
        #[command(flatten)]
        trail: TrailArgs,
        /// Only approvals: who approved which digest and model version, and why.
        #[arg(long)]
        approvals: bool,
    },
    /// Check the hash chain, a torn last write, truncation against the release history and
    /// signatures; exit 1 when anything is wrong, or when no trusted key is given outside
    /// `--demo`.
    #[command(
        after_help = "Examples:\n  slipway-audit verify --trail audit.jsonl --head 41:9f2c…\n  slipway-audit verify --trail audit.jsonl --key cosign.pub"
    )]
    Verify {
        #[command(flatten)]
        trail: TrailArgs,
        /// The head seen last (`SEQ:HASH`, as `verify` printed it), to detect truncation.
        #[arg(long, value_name = "SEQ:HASH")]
        head: Option<String>,
        #[command(flatten)]
        keys: KeyArgs,
        #[command(flatten)]
        demo: slipway_cli::demo::DemoArgs,
    },
    /// DORA metrics over a period.
    Dora {
        #[command(flatten)]
        trail: TrailArgs,
        #[command(flatten)]
        period: PeriodArgs,
    },
    /// Release and approval history, DORA figures, chain verdict and charts.
    #[command(
        after_help = "Examples:\n  slipway-audit report --trail audit.jsonl --html report.html --markdown report.md"
    )]
    Report {
        #[command(flatten)]
        trail: TrailArgs,
        #[command(flatten)]
        period: PeriodArgs,
        #[command(flatten)]
        keys: KeyArgs,
        /// Write a self-contained HTML page (inline SVG charts, no external assets).
        #[arg(long, value_name = "PATH")]
        html: Option<PathBuf>,
        /// Write Markdown (e.g. for `$GITHUB_STEP_SUMMARY`).
        #[arg(long, value_name = "PATH")]
        markdown: Option<PathBuf>,
        /// Write the report as JSON.
        #[arg(long, value_name = "PATH")]
        json: Option<PathBuf>,
    },
    /// Check each release's running workloads against the trail, signatures and provenance;
    /// exit 1 on any drift.
    #[command(
        after_help = "Examples:\n  slipway-audit drift --trail audit.jsonl\n  slipway-audit drift --release ml-serving/iris-classifier --output json\n  slipway-audit drift --demo --state demo/       # the embedded demo world saved by `slipway-deploy --demo --state demo/`"
    )]
    Drift {
        #[command(flatten)]
        trail: TrailArgs,
        #[command(flatten)]
        demo: slipway_cli::demo::DemoArgs,
    },
    /// Verify an image's signatures with a public key or keyless, as `cosign verify`; exit 1
    /// when none verifies.
    #[command(
        after_help = "Examples:\n  slipway-audit verify-image --key cosign.pub ghcr.io/acme/iris:1.5.0\n  slipway-audit verify-image --key cosign.pub --output json ghcr.io/acme/iris@sha256:…\n  slipway-audit verify-image \\\n      --certificate-identity https://github.com/acme/iris/.github/workflows/build.yml@refs/heads/main \\\n      --certificate-oidc-issuer https://token.actions.githubusercontent.com ghcr.io/acme/iris:1.5.0"
    )]
    VerifyImage(verify_image::VerifyImageArgs),
    /// Verify an image's attestations with a public key or keyless, as `cosign
    /// verify-attestation`; for SLSA provenance also the builder, source repository and ref;
    /// exit 1 when none holds.
    #[command(
        after_help = "Examples:\n  slipway-audit verify-attestation --key build.pub --type slsaprovenance \\\n      --builder-id https://github.com/acme/iris/.github/workflows/build.yml@refs/heads/main \\\n      --source-repo https://github.com/acme/iris --source-ref refs/heads/main ghcr.io/acme/iris:1.5.0\n  slipway-audit verify-attestation --type slsaprovenance \\\n      --certificate-identity-regexp '^https://github.com/acme/' \\\n      --certificate-oidc-issuer https://token.actions.githubusercontent.com ghcr.io/acme/iris:1.5.0"
    )]
    VerifyAttestation(verify_image::VerifyAttestationArgs),
    /// Print the JSON Schema of a document this command prints with `--output json`.
    Schema {
        #[command(flatten)]
        global: slipway_cli::GlobalArgs,
        /// Which document.
        #[arg(value_enum)]
        name: SchemaName,
    },
    /// The Sigstore trusted root of keyless verification: which one is used (`show`) and its
    /// refresh from sigstore's TUF repository (`refresh`), never done during a verification.
    #[command(
        subcommand,
        after_help = "Examples:\n  slipway-audit trusted-root refresh\n  slipway-audit trusted-root show --output json"
    )]
    TrustedRoot(trusted_root::TrustedRootCommand),
    /// Print the shell completion script for bash, zsh, fish or PowerShell.
    Completions(slipway_cli::meta::CompletionsArgs),
    /// Write the man pages into DIR (`cargo xtask man` runs it).
    #[command(hide = true)]
    Man(slipway_cli::meta::ManArgs),
}

/// The documents `slipway-audit schema` describes (the audit entry itself:
/// `slipway-deploy schema audit-entry`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum SchemaName {
    /// `log --output json`.
    Log,
    /// `verify --output json`.
    Verify,
    /// `dora --output json`.
    Dora,
    /// `report --output json` (and `--json FILE`).
    Report,
    /// `drift --output json`.
    Drift,
    /// `verify-image --output json`.
    VerifyImage,
    /// `verify-attestation --output json`.
    VerifyAttestation,
    /// `trusted-root refresh --output json`.
    TrustedRootRefresh,
    /// `trusted-root show --output json`.
    TrustedRootShow,
}

/// `log --output json`: the entries selected, oldest first.
#[derive(Debug, serde::Serialize, schemars::JsonSchema)]
struct LogDocument<'a> {
    /// The entries.
    entries: Vec<&'a Entry>,
}

/// The JSON Schema of `name`, from the types the commands serialise.
fn schema_of(name: SchemaName) -> serde_json::Value {
    use slipway_cli::output::Versioned;
    match name {
        SchemaName::Log => schemars::schema_for!(Versioned<LogDocument<'static>>),
        SchemaName::Verify => schemars::schema_for!(Versioned<ChainVerdict>),
        SchemaName::Dora => schemars::schema_for!(Versioned<dora::Dora>),
        SchemaName::Report => schemars::schema_for!(Versioned<report::Report>),
        SchemaName::Drift => schemars::schema_for!(Versioned<drift::DriftReport>),
        SchemaName::VerifyImage => schemars::schema_for!(Versioned<verify_image::ImageVerdict>),
        SchemaName::VerifyAttestation => {
            schemars::schema_for!(Versioned<verify_image::AttestationsVerdict>)
        }
        SchemaName::TrustedRootRefresh => {
            schemars::schema_for!(Versioned<trusted_root::RefreshDocument>)
        }
        SchemaName::TrustedRootShow => schemars::schema_for!(Versioned<trusted_root::ShowDocument>),
    }
    .to_value()
}

/// Trusted public keys.
#[derive(Debug, clap::Args)]
struct KeyArgs {
    /// A trusted public key (`cosign.pub`) to check entry signatures with; repeatable; added to
    /// `signing.trusted_keys`. Without any, signatures are listed but not checked.
    #[arg(long = "key", value_name = "PATH")]
    keys: Vec<PathBuf>,
}

/// A period.
#[derive(Debug, clap::Args)]
struct PeriodArgs {
    /// Start of the period (RFC 3339); default: 30 days before `--until` (`dora`), the first
    /// entry (`report`).
    #[arg(long)]
    since: Option<String>,
    /// End of the period (RFC 3339); default: now (`dora`), just after the last entry (`report`).
    #[arg(long)]
    until: Option<String>,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli: Cli = slipway_cli::meta::parse();
    match &cli.command {
        Command::Log { trail, .. }
        | Command::Verify { trail, .. }
        | Command::Dora { trail, .. }
        | Command::Report { trail, .. }
        | Command::Drift { trail, .. } => slipway_cli::logging::init(&trail.global),
        Command::Schema { global, .. } => slipway_cli::logging::init(global),
        Command::VerifyImage(args) => slipway_cli::logging::init(&args.global),
        Command::VerifyAttestation(args) => slipway_cli::logging::init(&args.global),
        Command::TrustedRoot(command) => slipway_cli::logging::init(command.global()),
        Command::Completions(_) | Command::Man(_) => {}
    }
    match run(cli).await {
        Ok(status) => status.into(),
        Err(err) => Failure::report(&err),
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

/// The trusted keys: `--key` files and `signing.trusted_keys`.
fn trusted_keys(settings: &Settings, args: &KeyArgs) -> anyhow::Result<Vec<EcdsaP256PublicKey>> {
    args.keys
        .iter()
        .chain(&settings.signing.trusted_keys)
        .map(|path| {
            let pem = std::fs::read_to_string(path).map_err(|err| UserError {
                message: format!(
                    "cannot read public key `{}`: {err}\n\nhint: pass the `cosign.pub` of the deploy key",
                    path.display()
                ),
            })?;
            EcdsaP256PublicKey::from_pem(&path.display().to_string(), &pem)
                .with_context(|| format!("reading public key `{}`", path.display()))
        })
        .collect()
}

/// The approver keys of `policy.approvals.keys`: an approval signed with `approve --key` where no
/// deploy key was configured carries an entry signed by its approver, which counts for that
/// entry alone.
fn approver_keys(settings: &Settings) -> anyhow::Result<Vec<EcdsaP256PublicKey>> {
    settings
        .policy
        .approvals
        .keys
        .iter()
        .map(|(owner, path)| {
            let pem = std::fs::read_to_string(path).map_err(|err| UserError {
                message: format!(
                    "cannot read the approver key of `{owner}` (`{}`, policy.approvals.keys): {err}\n\nhint: point it at the approver's `cosign.pub`",
                    path.display()
                ),
            })?;
            EcdsaP256PublicKey::from_pem(&path.display().to_string(), &pem)
                .with_context(|| format!("reading approver key `{}`", path.display()))
        })
        .collect()
}

/// Everything `verify` and `report` say about the trail's integrity.
#[derive(Debug, Clone, serde::Serialize, schemars::JsonSchema)]
pub(crate) struct ChainVerdict {
    /// Where the trail was read from.
    pub(crate) source: String,
    /// Readable entries.
    pub(crate) entries: usize,
    /// True when nothing below found a problem.
    pub(crate) ok: bool,
    /// Chain problems (edits, gaps, truncation against the given head).
    pub(crate) problems: Vec<slipway_audit_log::ChainProblem>,
    /// Unreadable parts (a torn last write, a corrupt record).
    pub(crate) damage: Vec<slipway_audit_log::Damage>,
    /// Key ids checked against; empty when signatures were not checked.
    pub(crate) trusted_keys: Vec<String>,
    /// Entries carrying a signature.
    pub(crate) signed_entries: usize,
    /// Signature problems (only when keys were given).
    pub(crate) signature_problems: Vec<slipway_audit_log::ChainProblem>,
    /// The last readable entry.
    pub(crate) head: Option<Head>,
    /// What truncation was checked against (`--head`, the release history), in a sentence;
    /// only `verify` says.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) truncation: Option<String>,
    /// `verify` outside `--demo` without a trusted key: the chain alone proves nothing against
    /// whoever can rewrite the store, so the trail is not called intact.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub(crate) key_required: bool,
}

pub(crate) fn chain_verdict(
    loaded: &trail::Loaded,
    expected_head: Option<&Head>,
    keys: &[EcdsaP256PublicKey],
    approvers: &[EcdsaP256PublicKey],
) -> ChainVerdict {
    let mut builder = VerdictBuilder::new(expected_head.cloned(), keys).approvers(approvers);
    for entry in &loaded.trail.entries {
        builder.push(entry);
    }
    builder.finish(loaded.source.clone(), loaded.trail.damage.clone())
}

/// A [`ChainVerdict`] built one entry at a time, so `verify` streams a file trail: it keeps the
/// running chain state and the problems, never the entries.
pub(crate) struct VerdictBuilder<'k> {
    chain: ChainVerifier,
    verifiers: Vec<&'k dyn Verifier>,
    approvers: Vec<&'k dyn Verifier>,
    entries: usize,
    signed_entries: usize,
    signature_problems: Vec<slipway_audit_log::ChainProblem>,
}

impl<'k> VerdictBuilder<'k> {
    pub(crate) fn new(expected_head: Option<Head>, keys: &'k [EcdsaP256PublicKey]) -> Self {
        VerdictBuilder {
            chain: ChainVerifier::new(expected_head),
            verifiers: keys.iter().map(|key| key as &dyn Verifier).collect(),
            approvers: Vec::new(),
            entries: 0,
            signed_entries: 0,
            signature_problems: Vec::new(),
        }
    }

    /// Also accepts, for a signed approval's entry alone, a signature by an approver key.
    pub(crate) fn approvers(mut self, keys: &'k [EcdsaP256PublicKey]) -> Self {
        self.approvers = keys.iter().map(|key| key as &dyn Verifier).collect();
        self
    }

    /// Also requires the trail to reach a record of the release history (see
    /// [`ChainVerifier::expect_release_record`]).
    pub(crate) fn expect_release_record(&mut self, record: slipway_core::ReleaseRecord) {
        self.chain.expect_release_record(record);
    }

    pub(crate) fn push(&mut self, entry: &Entry) {
        self.chain.push(entry);
        self.entries += 1;
        if entry.signature.is_some() {
            self.signed_entries += 1;
        }
        if !self.verifiers.is_empty()
            && let Some(problem) = verify_entry_signature(entry, &self.verifiers, &self.approvers)
        {
            self.signature_problems.push(problem);
        }
    }

    pub(crate) fn finish(
        self,
        source: String,
        damage: Vec<slipway_audit_log::Damage>,
    ) -> ChainVerdict {
        let head = self.chain.head().cloned();
        let problems = self.chain.finish();
        ChainVerdict {
            source,
            entries: self.entries,
            ok: problems.is_empty() && damage.is_empty() && self.signature_problems.is_empty(),
            problems,
            damage,
            trusted_keys: self.verifiers.iter().map(|key| key.key_id()).collect(),
            signed_entries: self.signed_entries,
            signature_problems: self.signature_problems,
            head,
            truncation: None,
            key_required: false,
        }
    }
}

impl ChainVerdict {
    /// The verdict as lines of text (no trailing newline on the last).
    pub(crate) fn to_text(&self) -> String {
        let mut lines = Vec::new();
        for problem in &self.problems {
            lines.push(format!("entry {}: {}", problem.seq, problem.problem));
        }
        for damage in &self.damage {
            lines.push(format!("{}: {}", damage.location, damage.detail));
            lines.push(format!("  repair: {}", damage.repair));
        }
        for problem in &self.signature_problems {
            lines.push(format!("entry {}: {}", problem.seq, problem.problem));
        }
        lines.push(if self.key_required {
            format!(
                "signatures: {} of {} entries signed; not checked: outside `--demo` a trail is intact only when every entry is signed by a trusted key\n\nhint: pass `--key cosign.pub` or set `signing.trusted_keys` (the public half of the deploy key)",
                self.signed_entries, self.entries
            )
        } else if self.trusted_keys.is_empty() {
            format!(
                "signatures: {} of {} entries signed; not checked (no trusted key: pass `--key cosign.pub`)",
                self.signed_entries, self.entries
            )
        } else {
            format!(
                "signatures: {} of {} entries signed; checked against {}",
                self.signed_entries,
                self.entries,
                self.trusted_keys.join(", ")
            )
        });
        if let Some(truncation) = &self.truncation {
            lines.push(format!("truncation: {truncation}"));
        }
        let unproven = self.key_required
            && self.problems.is_empty()
            && self.damage.is_empty()
            && self.signature_problems.is_empty();
        lines.push(format!(
            "{}: {} entries in {}",
            if self.ok {
                "intact"
            } else if unproven {
                "UNPROVEN"
            } else {
                "BROKEN"
            },
            self.entries,
            self.source
        ));
        if let Some(head) = &self.head {
            lines.push(format!("head: {}:{}", head.seq, head.hash));
        }
        lines.join("\n")
    }
}

#[allow(
    clippy::print_stdout,
    reason = "the trail and its verdicts are this binary's data"
)]
async fn run(cli: Cli) -> anyhow::Result<ExitStatus> {
    match cli.command {
        Command::Completions(args) => {
            slipway_cli::meta::completions::<Cli>(args.shell);
            Ok(ExitStatus::Success)
        }
        Command::Man(args) => man(&args),
        Command::Schema { global, name } => {
            let schema = schema_of(name);
            slipway_cli::output::print_raw(global.output, &schema)?;
            Ok(ExitStatus::Success)
        }
        Command::Log { trail, approvals } => {
            let settings = trail::settings(&trail)?;
            let release = trail::release_flag(&trail)?;
            let loaded = trail::load(&trail, &settings).await?;
            if let Some(damage) = loaded.trail.damage.first() {
                return Err(damage.clone().into_error().into());
            }
            let selected: Vec<&Entry> = loaded
                .selected(release.as_ref())
                .into_iter()
                .filter(|entry| !approvals || matches!(entry.event, Event::Approval(_)))
                .collect();
            match trail.global.output {
                OutputFormat::Json | OutputFormat::Yaml => slipway_cli::output::print(
                    trail.global.output,
                    &LogDocument { entries: selected },
                    String::new,
                )?,
                OutputFormat::Text if approvals => {
                    for entry in selected {
                        if let Event::Approval(approval) = &entry.event {
                            println!(
                                "{:>4}  {}  {:<28} {:<14} {} {}: {}",
                                entry.seq,
                                approval.at,
                                approval.release.to_string(),
                                approval.approver,
                                approval.model,
                                approval.digest,
                                approval.reason
                            );
                        }
                    }
                }
                OutputFormat::Text => {
                    for entry in selected {
                        let (kind, text) = describe(&entry.event);
                        println!(
                            "{:>4}  {}  {:<9} {:<28} {text}",
                            entry.seq,
                            entry.at,
                            kind,
                            entry.event.release().to_string()
                        );
                    }
                }
            }
            Ok(ExitStatus::Success)
        }
        Command::Verify {
            trail,
            head,
            keys,
            demo,
        } => {
            let expected = head.as_deref().map(parse_head).transpose()?;
            let mut settings = trail::settings(&trail)?;
            // The embedded world's trail lives with it.
            if let Some(dir) = &demo.state
                && settings.audit.path.is_none()
            {
                settings.audit.path = Some(slipway_demo::persist::trail_path(dir));
            }
            let keys = trusted_keys(&settings, &keys)?;
            let approvers = approver_keys(&settings)?;
            let cluster = trail::history_cluster(&trail, &settings, &demo).await?;
            let release = trail::release_name(&trail, &settings)?;
            let history_head = match &cluster {
                Some(cluster) => trail::history_head(cluster.as_ref(), &release).await?,
                None => None,
            };
            let mut truncation = Vec::new();
            if let Some(head) = &expected {
                truncation.push(format!(
                    "checked against `--head {}:{}`",
                    head.seq, head.hash
                ));
            }
            let mut builder = VerdictBuilder::new(expected, &keys).approvers(&approvers);
            match &history_head {
                Some(found) => {
                    truncation.push(format!(
                        "checked against head {}:{} recorded with revision {} of `{release}` in the release history",
                        found.head.seq, found.head.hash, found.record.revision
                    ));
                    builder.expect_release_record(found.record.clone());
                }
                None if truncation.is_empty() => truncation.push(match &cluster {
                    Some(_) => format!("not checked: no record of `{release}` in the release history carries a trail head, and no `--head` was given"),
                    None => "not checked: no cluster configured to read the release history from (`backend.cluster`, or `--demo`), and no `--head` was given".to_owned(),
                }),
                None => {}
            }
            let (source, damage) = match (&settings.audit.store, &cluster) {
                (config::AuditStoreKind::Cluster, Some(cluster)) => {
                    let store = slipway_k8s_rollout::ClusterAuditStore::new(
                        cluster.clone(),
                        release.clone(),
                    );
                    let loaded = trail::read_cluster(&store, &release).await?;
                    for entry in &loaded.trail.entries {
                        builder.push(entry);
                    }
                    (loaded.source, loaded.trail.damage)
                }
                _ => trail::stream(&trail, &settings, |entry| builder.push(&entry)).await?,
            };
            let mut verdict = builder.finish(source, damage);
            verdict.truncation = Some(truncation.join("; "));
            // The demo's trail is unsigned by design; everywhere else an unsigned or unchecked
            // trail could have been rewritten whole by anyone who can write the store.
            if keys.is_empty() && demo.demo.is_none() {
                verdict.key_required = true;
                verdict.ok = false;
            }
            match trail.global.output {
                OutputFormat::Json | OutputFormat::Yaml => {
                    slipway_cli::output::print(trail.global.output, &verdict, String::new)?;
                }
                OutputFormat::Text => println!("{}", verdict.to_text()),
            }
            Ok(if verdict.ok {
                ExitStatus::Success
            } else {
                ExitStatus::No
            })
        }
        Command::Dora { trail, period } => {
            let settings = trail::settings(&trail)?;
            let release = trail::release_flag(&trail)?;
            let loaded = trail::load(&trail, &settings).await?;
            if let Some(damage) = loaded.trail.damage.first() {
                return Err(damage.clone().into_error().into());
            }
            let until = match &period.until {
                Some(text) => parse_time("--until", text)?,
                None => jiff::Timestamp::now(),
            };
            let since = match &period.since {
                Some(text) => parse_time("--since", text)?,
                None => until - jiff::SignedDuration::from_hours(24 * 30),
            };
            let records: Vec<_> = trail::releases(loaded.selected(release.as_ref()))
                .into_iter()
                .cloned()
                .collect();
            let metrics = dora::compute(&records, since, until);
            match trail.global.output {
                OutputFormat::Json | OutputFormat::Yaml => {
                    slipway_cli::output::print(trail.global.output, &metrics, String::new)?;
                }
                OutputFormat::Text => print!("{}", metrics.to_text()),
            }
            Ok(ExitStatus::Success)
        }
        Command::Report {
            trail,
            period,
            keys,
            html,
            markdown,
            json,
        } => {
            let settings = trail::settings(&trail)?;
            let release = trail::release_flag(&trail)?;
            let keys = trusted_keys(&settings, &keys)?;
            let approvers = approver_keys(&settings)?;
            let loaded = trail::load(&trail, &settings).await?;
            let verdict = chain_verdict(&loaded, None, &keys, &approvers);
            let since = period
                .since
                .as_deref()
                .map(|text| parse_time("--since", text))
                .transpose()?;
            let until = period
                .until
                .as_deref()
                .map(|text| parse_time("--until", text))
                .transpose()?;
            let report = report::build(&loaded, release.as_ref(), verdict, since, until);
            for (path, text) in [
                (html, report::html(&report)),
                (markdown, report::markdown(&report)),
                (json, serde_json::to_string_pretty(&report)? + "\n"),
            ]
            .into_iter()
            .filter_map(|(path, text)| path.map(|path| (path, text)))
            {
                std::fs::write(&path, text).map_err(|err| UserError {
                    message: format!(
                        "cannot write report `{}`: {err}\n\nhint: check that the directory exists and is writable",
                        path.display()
                    ),
                })?;
            }
            match trail.global.output {
                OutputFormat::Json | OutputFormat::Yaml => {
                    slipway_cli::output::print(trail.global.output, &report, String::new)?;
                }
                OutputFormat::Text => print!("{}", report::text(&report)),
            }
            Ok(ExitStatus::Success)
        }
        Command::VerifyImage(args) => verify_image::verify_image(&args).await,
        Command::VerifyAttestation(args) => verify_image::verify_attestation(&args).await,
        Command::TrustedRoot(command) => trusted_root::run(&command).await,
        Command::Drift { trail, demo } => {
            let mut settings = trail::settings(&trail)?;
            // The embedded world's trail lives with it.
            if let Some(dir) = &demo.state
                && settings.audit.path.is_none()
            {
                settings.audit.path = Some(slipway_demo::persist::trail_path(dir));
            }
            let release = trail::release_flag(&trail)?;
            let loaded = trail::load(&trail, &settings).await?;
            if let Some(damage) = loaded.trail.damage.first() {
                return Err(damage.clone().into_error().into());
            }
            let built = trail::backends(&settings, &trail.global, &demo).await?;
            let releases = match release {
                Some(release) => vec![release],
                None => drift::releases_in(&loaded.trail.entries),
            };
            let services = |release: &slipway_core::ReleaseId| {
                if release.to_string() == settings.release.name {
                    settings
                        .release
                        .service
                        .clone()
                        .unwrap_or_else(|| release.name.clone())
                } else {
                    release.name.clone()
                }
            };
            let report =
                drift::check(&loaded.trail.entries, &releases, &services, &built.backends).await;
            match trail.global.output {
                OutputFormat::Json | OutputFormat::Yaml => {
                    slipway_cli::output::print(trail.global.output, &report, String::new)?;
                }
                OutputFormat::Text => print!("{}", report.to_text()),
            }
            Ok(if report.drift() {
                ExitStatus::No
            } else {
                ExitStatus::Success
            })
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
