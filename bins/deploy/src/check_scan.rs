//! `slipway-deploy check-scan`: judge a Trivy report for the image being deployed against the
//! vulnerability policy, explain every decision, and optionally write SARIF and Markdown.
//!
//! Exit codes (STYLE.md §7): 0 the gate passed, 1 the gate said no, 2 we could not decide
//! (unreadable report, report about another image, bad ignore file). The text or JSON report is
//! data and goes to stdout; notes about files written go to stderr.
//!
//! Without `--report`, Slipway runs `trivy` from `PATH` itself ([`TrivyCli`]).

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use jiff::civil::Date;
use serde::Serialize;
use slipway_core::ImageRef;
use slipway_gates::vuln::{self, Decision, IgnoreReason, Verdict, VulnPolicy, VulnReport};
use slipway_scanner::{
    DEFAULT_MAX_REPORT_BYTES, IgnoreRule, ReportConfig, ScanReport, Scanner, Severity, TrivyCli,
    read_ignore_file, read_report,
};

/// The value of `PATH`, where `trivy` is looked for when no `--report` is given.
const PATH_VAR: &str = "PATH";

/// `--output` (the shared flag), named here for the tests that compile this module alone.
#[allow(unused_imports, reason = "the tests name it through this module")]
pub(crate) use slipway_cli::OutputFormat;

/// Arguments of `check-scan`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct CheckScanArgs {
    /// Trivy JSON report (`trivy image --format json --output trivy.json IMAGE@DIGEST`).
    /// Without it, `trivy` from PATH is run on the image.
    #[arg(long, value_name = "FILE")]
    pub(crate) report: Option<PathBuf>,
    /// The image being deployed, pinned by digest; the report must be about it.
    #[arg(long, value_name = "IMAGE@DIGEST")]
    pub(crate) image: String,
    /// Ignore file: `.trivyignore` lines or `.trivyignore.yaml` (by extension). Repeatable.
    #[arg(long = "ignore-file", value_name = "FILE")]
    pub(crate) ignore_files: Vec<PathBuf>,
    /// Write SARIF 2.1.0 for GitHub code scanning to FILE.
    #[arg(long, value_name = "FILE")]
    pub(crate) sarif: Option<PathBuf>,
    /// Write a Markdown summary to FILE (e.g. `$GITHUB_STEP_SUMMARY`).
    #[arg(long, value_name = "FILE")]
    pub(crate) markdown: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) global: slipway_cli::GlobalArgs,
    /// Findings at or above this severity fail the gate (CRITICAL, HIGH, MEDIUM, LOW, UNKNOWN).
    #[arg(long, value_name = "SEVERITY", default_value = "HIGH", value_parser = parse_severity)]
    pub(crate) fail_at: Severity,
    /// Ignore findings that have no fixed version.
    #[arg(long)]
    pub(crate) ignore_unfixed: bool,
    /// Refuse reports larger than this many bytes.
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_MAX_REPORT_BYTES)]
    pub(crate) max_report_size: u64,
    /// Judge ignore-rule expiry as of this date (default: today, UTC).
    #[arg(long, value_name = "YYYY-MM-DD")]
    pub(crate) as_of: Option<Date>,
}

fn parse_severity(text: &str) -> Result<Severity, String> {
    Severity::parse(text)
        .ok_or_else(|| format!("`{text}` is not a severity (CRITICAL, HIGH, MEDIUM, LOW, UNKNOWN)"))
}

/// Runs `check-scan`, writing the report to stdout and notes to stderr. `Ok(true)`: pass,
/// `Ok(false)`: the gate failed, `Err`: could not decide.
pub(crate) fn run(args: &CheckScanArgs) -> anyhow::Result<bool> {
    let stdout = std::io::stdout();
    let stderr = std::io::stderr();
    run_with(args, &mut stdout.lock(), &mut stderr.lock())
}

/// [`run`] with the output streams given, for tests.
pub(crate) fn run_with(
    args: &CheckScanArgs,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
) -> anyhow::Result<bool> {
    let image = ImageRef::parse(&args.image)
        .with_context(|| format!("invalid `--image {}`", args.image))?;
    let config = ReportConfig {
        max_bytes: args.max_report_size,
    };
    let scan = match &args.report {
        Some(path) => {
            let report = read_report(path, &config)?;
            report.ensure_about(&image)?;
            report
        }
        None => scan_with_trivy(&image, config)?,
    };
    let mut ignores: Vec<IgnoreRule> = Vec::new();
    for path in &args.ignore_files {
        ignores.extend(read_ignore_file(path)?);
    }
    let policy = VulnPolicy {
        fail_at: args.fail_at,
        ignore_unfixed: args.ignore_unfixed,
        ignore: Vec::new(),
    };
    let today = args.as_of.unwrap_or_else(|| {
        jiff::Timestamp::now()
            .to_zoned(jiff::tz::TimeZone::UTC)
            .date()
    });
    let report = vuln::evaluate(&policy, &scan, &ignores, today);

    if let Some(path) = &args.sarif {
        let sarif = vuln::sarif(&report, env!("CARGO_PKG_VERSION"));
        let text = serde_json::to_string_pretty(&sarif).context("failed to render SARIF")?;
        write_file(path, &text, "SARIF")?;
        writeln!(stderr, "wrote SARIF to `{}`", path.display())?;
    }
    if let Some(path) = &args.markdown {
        write_file(path, &vuln::markdown(&report), "Markdown summary")?;
        writeln!(stderr, "wrote Markdown summary to `{}`", path.display())?;
    }
    let dto = ReportDto::new(&report, &image, &scan);
    match slipway_cli::output::render(args.global.output, &dto)? {
        Some(rendered) => stdout
            .write_all(rendered.as_bytes())
            .context("failed to write the document to stdout")?,
        None => stdout.write_all(render_text(&report, &image).as_bytes())?,
    }
    Ok(report.passed())
}

fn scan_with_trivy(image: &ImageRef, config: ReportConfig) -> anyhow::Result<ScanReport> {
    let path_var = std::env::var_os(PATH_VAR).unwrap_or_default();
    let Some(mut trivy) = TrivyCli::find_on_path(&path_var) else {
        anyhow::bail!(
            "no `--report` given and no `trivy` on PATH\n\nhint: pass the CI scan with `--report trivy.json`, or install trivy"
        );
    };
    trivy.config = config;
    // `main` already runs inside a tokio runtime, where starting or blocking on another panics;
    // a scoped thread with its own single-threaded runtime keeps this function plain and sync.
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .context("failed to start the runtime to run trivy")?;
                Ok(runtime.block_on(trivy.scan(image))?)
            })
            .join()
            .unwrap_or_else(|_| Err(anyhow::anyhow!("running trivy panicked")))
    })
}

fn write_file(path: &Path, text: &str, what: &str) -> anyhow::Result<()> {
    std::fs::write(path, text).with_context(|| {
        format!(
            "failed to write {what} to `{}`\n\nhint: check that the directory exists",
            path.display()
        )
    })
}

fn decision_label(decision: &Decision) -> &'static str {
    match decision.verdict {
        Verdict::Blocking => "blocking",
        Verdict::BelowThreshold => "allowed",
        Verdict::Ignored(_) => "ignored",
    }
}

fn render_text(report: &VulnReport, image: &ImageRef) -> String {
    let n_blocking = report.blocking().count();
    let mut out = format!(
        "vulnerability gate: {} ({n_blocking} of {} findings block at or above {})\nimage:    {image}\nartifact: {}\ncounts:   {}\n",
        if report.passed() { "PASS" } else { "FAIL" },
        report.decisions.len(),
        report.fail_at,
        report.artifact,
        report.counts_line(),
    );
    if !report.decisions.is_empty() {
        out.push('\n');
        for decision in &report.decisions {
            let finding = &decision.finding;
            out.push_str(&format!(
                "{:<8}  {:<8}  {}  {} {} -> {} ({})\n          {}\n",
                decision_label(decision),
                finding.severity.as_str(),
                finding.id,
                finding.package,
                finding.installed_version,
                finding.fixed_version.as_deref().unwrap_or("no fix"),
                finding.status,
                decision.explain(report.fail_at),
            ));
        }
    }
    if !report.expired_rules.is_empty() {
        out.push_str("\nexpired ignore rules (no longer applied):\n");
        for rule in &report.expired_rules {
            let origin = if rule.origin.is_empty() {
                "policy"
            } else {
                &rule.origin
            };
            let expires = rule
                .expires
                .map(|date| date.to_string())
                .unwrap_or_default();
            out.push_str(&format!("  {} ({origin}) expired on {expires}\n", rule.id));
        }
    }
    out
}

/// The JSON Schema of `--output json` (`slipway-deploy schema check-scan`).
pub(crate) fn schema() -> serde_json::Value {
    schemars::schema_for!(slipway_cli::output::Versioned<ReportDto<'static>>).to_value()
}

/// `--output json`: the stable shape, separate from the domain types (STYLE.md §7).
#[derive(Serialize, schemars::JsonSchema)]
struct ReportDto<'a> {
    passed: bool,
    image: String,
    artifact: &'a str,
    report_digests: Vec<String>,
    fail_at: &'static str,
    as_of: String,
    counts: std::collections::BTreeMap<&'static str, usize>,
    findings: Vec<FindingDto<'a>>,
    expired_rules: Vec<RuleDto<'a>>,
}

#[derive(Serialize, schemars::JsonSchema)]
struct FindingDto<'a> {
    id: &'a str,
    package: &'a str,
    installed_version: &'a str,
    fixed_version: Option<&'a str>,
    severity: &'static str,
    status: &'a str,
    cvss_v3: Option<CvssDto<'a>>,
    layer: Option<&'a str>,
    title: Option<&'a str>,
    primary_url: Option<&'a str>,
    target: &'a str,
    class: &'a str,
    package_path: Option<&'a str>,
    purl: Option<&'a str>,
    decision: &'static str,
    reason: String,
    ignored_by: Option<RuleDto<'a>>,
    expired_rule: Option<RuleDto<'a>>,
}

#[derive(Serialize, schemars::JsonSchema)]
struct CvssDto<'a> {
    source: &'a str,
    score: f64,
}

#[derive(Serialize, schemars::JsonSchema)]
struct RuleDto<'a> {
    id: &'a str,
    origin: &'a str,
    expires: Option<String>,
    statement: Option<&'a str>,
}

impl<'a> RuleDto<'a> {
    fn new(rule: &'a IgnoreRule) -> RuleDto<'a> {
        RuleDto {
            id: &rule.id,
            origin: if rule.origin.is_empty() {
                "policy"
            } else {
                &rule.origin
            },
            expires: rule.expires.map(|date| date.to_string()),
            statement: rule.statement.as_deref(),
        }
    }
}

impl<'a> ReportDto<'a> {
    fn new(report: &'a VulnReport, image: &ImageRef, scan: &ScanReport) -> ReportDto<'a> {
        let findings = report
            .decisions
            .iter()
            .map(|decision| {
                let finding = &decision.finding;
                FindingDto {
                    id: &finding.id,
                    package: &finding.package,
                    installed_version: &finding.installed_version,
                    fixed_version: finding.fixed_version.as_deref(),
                    severity: finding.severity.as_str(),
                    status: finding.status.as_str(),
                    cvss_v3: finding
                        .max_cvss_v3()
                        .map(|(source, score)| CvssDto { source, score }),
                    layer: finding.layer.as_deref(),
                    title: finding.title.as_deref(),
                    primary_url: finding.primary_url.as_deref(),
                    target: &finding.target,
                    class: finding.class.as_str(),
                    package_path: finding.package_path.as_deref(),
                    purl: finding.purl.as_deref(),
                    decision: decision_label(decision),
                    reason: decision.explain(report.fail_at),
                    ignored_by: match &decision.verdict {
                        Verdict::Ignored(IgnoreReason::Rule(rule)) => Some(RuleDto::new(rule)),
                        _ => None,
                    },
                    expired_rule: decision.expired_rule.as_ref().map(RuleDto::new),
                }
            })
            .collect();
        ReportDto {
            passed: report.passed(),
            image: image.to_string(),
            artifact: &report.artifact,
            report_digests: scan.digests.iter().map(ToString::to_string).collect(),
            fail_at: report.fail_at.as_str(),
            as_of: report.today.to_string(),
            counts: report
                .counts()
                .into_iter()
                .map(|(severity, n)| (severity.as_str(), n))
                .collect(),
            findings,
            expired_rules: report.expired_rules.iter().map(RuleDto::new).collect(),
        }
    }
}
