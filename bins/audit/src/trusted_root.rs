//! `trusted-root refresh` and `trusted-root show`: the Sigstore trusted root of keyless
//! verification (`slipway_attest::trust_root`).
//!
//! - `refresh`: a TUF client update from `--mirror` (default sigstore's public repository)
//!   starting at `--root` (default the last refreshed TUF root, else the built-in one), writing
//!   the verified `trusted_root.json` into the cache directory (`$SLIPWAY_CACHE_DIR`, else
//!   `$XDG_CACHE_HOME/slipway`, `~/.cache/slipway`). Exit 0 refreshed;
//!   1 the repository does not verify (the message, on stderr, names the check and the mirror;
//!   nothing is written); 2 bad input or an unreachable mirror. Flags as cosign's `initialize` names them.
//! - `show`: which root verification would use now (`[signing] trusted_root`, else the
//!   refreshed one, else the built-in one), its sha256 and the CAs and logs it lists; a root
//!   verification would refuse (unreadable, unparsable) fails `show` the same way (exit 2).
//!
//! The cache directory comes from the environment only, for every command that reads or writes
//! it (there is no `--cache-dir`): a flag on `refresh` alone would write where `verify-image`,
//! `verify-attestation` and `show` never look. One variable, `SLIPWAY_CACHE_DIR`, is the one way
//! to move it, and it is the same for all of them by construction.
//!
//! Nothing else fetches: `verify-image`, `verify-attestation` and the release commands read the
//! chosen root from disk (or the binary), so a CI job runs `refresh` as a step of its own before
//! verifying, and pins a root with `[signing] trusted_root` when it must not move.

use std::path::PathBuf;

use serde::Serialize;
use slipway_attest::trust_root::{
    self, RefreshConfig, RefreshError, RootSummary, SIGSTORE_TUF_MIRROR,
};
use slipway_cli::{ExitStatus, GlobalArgs, OutputFormat, UserError};

/// `trusted-root` subcommands.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum TrustedRootCommand {
    /// Update the trusted root from a TUF repository (sigstore's by default), verified from a
    /// trust anchor; exit 1 when the repository does not verify (nothing is written).
    #[command(
        after_help = "Examples:\n  slipway-audit trusted-root refresh\n  slipway-audit trusted-root refresh --mirror https://tuf.example.com --root root.json\n  SLIPWAY_CACHE_DIR=.slipway-cache slipway-audit trusted-root refresh --output json\n\nThe root is written to the cache directory, $SLIPWAY_CACHE_DIR, else $XDG_CACHE_HOME/slipway,\nelse ~/.cache/slipway: where verify-image, verify-attestation and show read it.\n\nExit codes: 0 refreshed, 1 the repository does not verify (bad signature, threshold, expired\nmetadata, rollback, target hash mismatch), 2 bad input or an unreachable mirror."
    )]
    Refresh(RefreshArgs),
    /// Which trusted root keyless verification would use now: `[signing] trusted_root`, else
    /// the refreshed one, else the built-in one; its sha256 and the CAs and logs it lists.
    #[command(
        after_help = "Examples:\n  slipway-audit trusted-root show\n  slipway-audit trusted-root show --output json"
    )]
    Show(ShowArgs),
}

impl TrustedRootCommand {
    /// The global flags of the subcommand.
    pub(crate) fn global(&self) -> &GlobalArgs {
        match self {
            TrustedRootCommand::Refresh(args) => &args.global,
            TrustedRootCommand::Show(args) => &args.global,
        }
    }
}

/// Flags of `trusted-root refresh`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct RefreshArgs {
    #[command(flatten)]
    pub(crate) global: GlobalArgs,
    /// The TUF repository (metadata at URL/, targets under URL/targets/): https://, http:// or
    /// file://.
    #[arg(long, value_name = "URL", default_value = SIGSTORE_TUF_MIRROR)]
    mirror: String,
    /// The trust anchor: the repository's TUF `root.json`. Default: the root of the last refresh
    /// from this mirror, else the built-in root of sigstore's repository.
    #[arg(long, value_name = "FILE")]
    root: Option<PathBuf>,
}

/// Flags of `trusted-root show`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct ShowArgs {
    #[command(flatten)]
    pub(crate) global: GlobalArgs,
}

/// The `--output json` document of `trusted-root refresh`.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub(crate) struct RefreshDocument {
    /// The TUF repository.
    mirror: String,
    /// The trust anchor the update started from.
    anchor: String,
    /// The TUF metadata trusted after the update: role, version and expiry of root, timestamp,
    /// snapshot and targets.
    #[schemars(with = "Vec<serde_json::Value>")]
    tuf: Vec<trust_root::RoleVersion>,
    /// The trusted root written (what verification now uses, unless `[signing] trusted_root`
    /// pins another).
    path: String,
    /// Its hex SHA-256.
    sha256: String,
    /// Whether it differs from the refreshed root there before.
    changed: bool,
    /// The Fulcio CAs, Rekor and CT logs and timestamp authorities it lists, with validity.
    #[schemars(with = "serde_json::Value")]
    lists: RootSummary,
}

/// The `--output json` document of `trusted-root show`.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub(crate) struct ShowDocument {
    /// `configured`, `refreshed` or `built-in`.
    source: String,
    /// The file, for a configured or refreshed root.
    #[serde(skip_serializing_if = "Option::is_none")]
    path: Option<String>,
    /// Its hex SHA-256.
    sha256: String,
    /// The Fulcio CAs, Rekor and CT logs and timestamp authorities it lists, with validity.
    #[schemars(with = "serde_json::Value")]
    lists: RootSummary,
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// `trusted-root refresh` or `show`.
pub(crate) async fn run(command: &TrustedRootCommand) -> anyhow::Result<ExitStatus> {
    match command {
        TrustedRootCommand::Refresh(args) => refresh(args).await,
        TrustedRootCommand::Show(args) => show(args),
    }
}

async fn refresh(args: &RefreshArgs) -> anyhow::Result<ExitStatus> {
    let cache_dir = slipway_cli::backends::cache_dir(&env).ok_or_else(|| UserError {
        message: "no cache directory: neither SLIPWAY_CACHE_DIR, XDG_CACHE_HOME nor HOME is set\n\nhint: set SLIPWAY_CACHE_DIR (verification reads the refreshed root from the same place)".to_owned(),
    })?;
    let root = match &args.root {
        Some(path) => {
            let content = std::fs::read(path).map_err(|err| UserError {
                message: format!(
                    "cannot read `--root {}`: {err}\n\nhint: pass the TUF repository's `root.json`, or leave `--root` out for sigstore's",
                    path.display()
                ),
            })?;
            Some((path.display().to_string(), content))
        }
        None => None,
    };
    let config = RefreshConfig {
        mirror: args.mirror.clone(),
        root,
        cache_dir,
    };
    let refreshed = match trust_root::refresh(&config).await {
        Ok(refreshed) => refreshed,
        Err(err @ RefreshError::Refused { .. }) => return Ok(refused(&err)),
        Err(err) => {
            return Err(UserError {
                message: err.to_string(),
            }
            .into());
        }
    };
    let mut text = format!(
        "refreshed the Sigstore trusted root from {}\ntrust anchor: {}\n",
        refreshed.mirror, refreshed.anchor
    );
    for role in &refreshed.roles {
        text.push_str(&format!(
            "tuf {:<10} version {:<5} expires {}\n",
            role.role, role.version, role.expires
        ));
    }
    text.push_str(&format!(
        "wrote {} (sha256:{}, {})\n",
        refreshed.path.display(),
        refreshed.sha256,
        if refreshed.changed {
            "changed"
        } else {
            "unchanged"
        }
    ));
    for line in refreshed.summary.lines() {
        text.push_str(&format!("{line}\n"));
    }
    text.push_str(
        "keyless verification now uses it, unless `[signing] trusted_root` pins another\n",
    );
    let document = RefreshDocument {
        mirror: refreshed.mirror,
        anchor: refreshed.anchor,
        tuf: refreshed.roles,
        path: refreshed.path.display().to_string(),
        sha256: refreshed.sha256,
        changed: refreshed.changed,
        lists: refreshed.summary,
    };
    print(args.global.output, &text, &document)?;
    Ok(ExitStatus::Success)
}

/// A repository that does not verify: the reason on stderr, exit 1, nothing written.
#[allow(
    clippy::print_stderr,
    reason = "a refusal is told to people; stdout stays empty"
)]
fn refused(err: &RefreshError) -> ExitStatus {
    let text = err.to_string();
    match text.split_once("\n\nhint: ") {
        Some((message, hint)) => eprintln!("refused: {message}\n\nhint: {hint}"),
        None => eprintln!("refused: {text}"),
    }
    ExitStatus::No
}

fn show(args: &ShowArgs) -> anyhow::Result<ExitStatus> {
    let Some(settings) = slipway_cli::config::load_or_print(&args.global)? else {
        return Ok(ExitStatus::Success);
    };
    // The same choice and the same parse as verification (`backends::trusted_root`), on the
    // bytes shown: a root verification would refuse is refused here too (exit 2).
    let (root, source, content) = slipway_cli::backends::trusted_root_with_content(&settings)?;
    let sha256 = root.sha256;
    let summary = RootSummary::of(&content);
    let mut text = format!("keyless verification uses the {source}\nsha256:{sha256}\n");
    for line in summary.lines() {
        text.push_str(&format!("{line}\n"));
    }
    let document = ShowDocument {
        source: source.kind().to_owned(),
        path: source.path().map(|path| path.display().to_string()),
        sha256,
        lists: summary,
    };
    print(args.global.output, &text, &document)?;
    Ok(ExitStatus::Success)
}

#[allow(clippy::print_stdout, reason = "the report is data")]
fn print(output: OutputFormat, text: &str, json: &impl Serialize) -> anyhow::Result<()> {
    slipway_cli::output::print(output, json, || text.to_owned())
}
