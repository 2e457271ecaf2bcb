//! Where `slipway-deploy approve` gets the approver's identity: never a flag outside `--demo`.
//!
//! In order: `--as NAME` (the embedded demo world only), `--key approver.key` (a signed
//! statement), the GitHub Actions run's environment reviews (`GITHUB_REPOSITORY` and
//! `GITHUB_RUN_ID`, each overridable by a flag, read with `GITHUB_TOKEN` from `GITHUB_API_URL`),
//! and in the demo world the release's actor. Anything else is an error naming the two real
//! sources.

use std::path::Path;
use std::sync::Arc;

use slipway_attest::EcdsaP256Key;
use slipway_core::Secret;
use slipway_github::{GitHub, GitHubClient, GitHubConfig, RunRef, env_vars};
use slipway_pipeline::ApprovalGiven;

use crate::UserError;

/// The hint every identity error ends with: the two real sources.
pub const IDENTITY_HINT: &str = "outside --demo an approver's identity comes from one of two sources: the reviews of the run's GitHub environment (run `approve` in a GitHub Actions job with `GITHUB_TOKEN`; `GITHUB_REPOSITORY` and `GITHUB_RUN_ID` come from Actions), or a statement signed with `--key approver.key` whose public key `[policy.approvals] keys` names";

/// What the approve command was given.
#[derive(Debug, Clone, Default)]
pub struct ApproveFlags {
    /// `--as NAME`.
    pub named: Option<String>,
    /// `--key PATH`.
    pub key: Option<std::path::PathBuf>,
    /// `--expires-in DURATION`.
    pub expires_in: Option<String>,
    /// `--github-repository OWNER/REPO`.
    pub github_repository: Option<String>,
    /// `--github-run-id ID`.
    pub github_run_id: Option<String>,
    /// `--reason TEXT`.
    pub reason: Option<String>,
}

fn user(message: String) -> UserError {
    UserError { message }
}

/// Refuses a flag that names an approver outside `--demo` (`--as`, `--approve-as`), exit 2.
pub fn refuse_named_outside_demo(flag: &str, demo: bool) -> Result<(), UserError> {
    if demo {
        return Ok(());
    }
    Err(user(format!(
        "`{flag}` names an approver, which only the embedded demo world accepts (`--demo`)\n\nhint: {IDENTITY_HINT}"
    )))
}

/// Chooses the approval's source from the flags and the environment, reading the key or the
/// GitHub reviews it names. `actor` is the demo world's default approver.
pub async fn given(
    flags: &ApproveFlags,
    demo: bool,
    actor: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<ApprovalGiven, UserError> {
    let reason = || {
        flags
            .reason
            .clone()
            .filter(|reason| !reason.trim().is_empty())
            .ok_or_else(|| {
                user("approve: `--reason` is required with `--as` and `--key`\n\nhint: `--reason \"canary dashboards reviewed\"`".to_owned())
            })
    };
    if let Some(name) = &flags.named {
        refuse_named_outside_demo("--as", demo)?;
        return Ok(ApprovalGiven::Named {
            approver: name.clone(),
            reason: reason()?,
        });
    }
    if let Some(path) = &flags.key {
        let reason = reason()?;
        let key = approver_key(path, env)?;
        let expires_in = match &flags.expires_in {
            Some(text) => Some(parse_duration(text).map_err(|why| {
                user(format!(
                    "invalid `--expires-in {text}`: {why}\n\nhint: write a duration such as `4h` or `2d`"
                ))
            })?),
            None => None,
        };
        return Ok(ApprovalGiven::Signed {
            key: Arc::new(key),
            reason,
            expires_in,
        });
    }
    let repository = flags
        .github_repository
        .clone()
        .or_else(|| env(env_vars::GITHUB_REPOSITORY));
    let run_id = flags
        .github_run_id
        .clone()
        .or_else(|| env(env_vars::GITHUB_RUN_ID));
    match (repository, run_id) {
        (Some(repository), Some(run_id)) => {
            let run_id: u64 = run_id.trim().parse().map_err(|_| {
                user(format!(
                    "the GitHub run id `{run_id}` is not a number\n\nhint: `GITHUB_RUN_ID` (or `--github-run-id`) is the numeric id of the workflow run"
                ))
            })?;
            let token = env(env_vars::GITHUB_TOKEN)
                .filter(|token| !token.is_empty())
                .ok_or_else(|| {
                    user(format!(
                        "reading the reviews of {repository} run {run_id} needs `GITHUB_TOKEN`\n\nhint: add `env: GITHUB_TOKEN: ${{{{ secrets.GITHUB_TOKEN }}}}` to the step, with `permissions: actions: read`"
                    ))
                })?;
            let api_url = env(env_vars::GITHUB_API_URL)
                .filter(|url| !url.is_empty())
                .unwrap_or_else(|| slipway_github::DEFAULT_API_URL.to_owned());
            let client = GitHubClient::new(GitHubConfig {
                api_url,
                token: Secret::new(token),
            })
            .map_err(|err| user(err.to_string()))?;
            let run = RunRef { repository, run_id };
            let reviews = client
                .run_reviews(&run)
                .await
                .map_err(|err| user(err.to_string()))?;
            Ok(ApprovalGiven::GitHub { run, reviews })
        }
        _ if demo => Ok(ApprovalGiven::Named {
            approver: actor.to_owned(),
            reason: reason()?,
        }),
        _ => Err(user(format!(
            "approve: no approver identity: not in a GitHub Actions run (no `GITHUB_REPOSITORY` and `GITHUB_RUN_ID`) and no `--key`\n\nhint: {IDENTITY_HINT}"
        ))),
    }
}

/// The approver's key: an encrypted `cosign.key`, its password from `COSIGN_PASSWORD`.
fn approver_key(
    path: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<EcdsaP256Key, UserError> {
    let name = path.display().to_string();
    let pem = std::fs::read_to_string(path).map_err(|err| {
        user(format!(
            "cannot read the approver key `{name}`: {err}\n\nhint: write one with `cosign generate-key-pair` and list its `.pub` in `[policy.approvals] keys`"
        ))
    })?;
    let password = slipway_attest::keyfile::cosign_password(
        env(slipway_attest::keyfile::COSIGN_PASSWORD_ENV),
        || {
            Err(std::io::Error::other(
                "no password prompt in non-interactive runs",
            ))
        },
    )
    .map_err(|err| user(format!("approver key `{name}`: {err}")))?;
    EcdsaP256Key::from_cosign_pem(&name, &pem, &password)
        .map_err(|err| user(format!("approver key `{name}`: {err}")))
}

/// `4h`, `90m`, `2d` (days of 24 hours).
fn parse_duration(text: &str) -> Result<jiff::SignedDuration, String> {
    let text = text.trim();
    let duration = match text.parse::<jiff::SignedDuration>() {
        Ok(duration) => duration,
        Err(_) => text
            .parse::<jiff::Span>()
            .ok()
            .and_then(|span| {
                span.to_duration(jiff::SpanRelativeTo::days_are_24_hours())
                    .ok()
            })
            .ok_or_else(|| format!("`{text}` is not a duration"))?,
    };
    if !duration.is_positive() {
        return Err("it must be longer than zero".to_owned());
    }
    Ok(duration)
}
