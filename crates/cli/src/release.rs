//! Turning [`Settings`] into a validated [`ReleaseSpec`]: every reference parsed, every number
//! checked, and each error naming the config key it came from.

use slipway_attest::provenance::BuildInfo;
use slipway_core::{ImageRef, ModelRef, ReleaseId, Stage};
use slipway_gates::window::WindowOverride;
use slipway_k8s_rollout::rollout::{CoarseSteps, TrafficRouting};
use slipway_pipeline::{GivenApproval, ReleaseSpec, ReloadSpec};

use crate::UserError;
use crate::config::{CoarseStepsSetting, Settings, TrafficSetting};

/// Env var CI systems set to the user who started the job (GitHub Actions).
pub const GITHUB_ACTOR: &str = "GITHUB_ACTOR";
/// Who started (or re-ran) the GitHub Actions run: the release's actor inside Actions.
pub const GITHUB_TRIGGERING_ACTOR: &str = "GITHUB_TRIGGERING_ACTOR";
/// The login name, for runs from a terminal.
pub const USER: &str = "USER";
/// Set to `true` inside GitHub Actions.
pub const GITHUB_ACTIONS: &str = "GITHUB_ACTIONS";
/// `https://github.com` or a GitHub Enterprise URL.
pub const GITHUB_SERVER_URL: &str = "GITHUB_SERVER_URL";
/// `owner/repo`.
pub const GITHUB_REPOSITORY: &str = "GITHUB_REPOSITORY";
/// `refs/heads/main`.
pub const GITHUB_REF: &str = "GITHUB_REF";
/// The commit.
pub const GITHUB_SHA: &str = "GITHUB_SHA";
/// `owner/repo/.github/workflows/release.yml@refs/heads/main`.
pub const GITHUB_WORKFLOW_REF: &str = "GITHUB_WORKFLOW_REF";
/// The workflow run.
pub const GITHUB_RUN_ID: &str = "GITHUB_RUN_ID";
/// The attempt of the run.
pub const GITHUB_RUN_ATTEMPT: &str = "GITHUB_RUN_ATTEMPT";
/// The webhook payload that started the workflow (JSON).
pub const GITHUB_EVENT_PATH: &str = "GITHUB_EVENT_PATH";

/// SLSA build type of a GitHub Actions workflow build.
const GITHUB_BUILD_TYPE: &str = "https://actions.github.io/buildtypes/workflow/v1";
/// Build type when the build is described by flags outside GitHub Actions.
const CONFIGURED_BUILD_TYPE: &str = "https://slipway.dev/buildtypes/configured/v1";

/// When the released change was committed: `[provenance] commit_time`, else, in GitHub Actions,
/// the head commit's timestamp in the push event's payload. Unknown otherwise: DORA then says
/// lead time is unavailable rather than guessing.
fn source_time(
    settings: &Settings,
    env: &dyn Fn(&str) -> Option<String>,
) -> Option<jiff::Timestamp> {
    if let Some(time) = settings.provenance.commit_time {
        return Some(time);
    }
    if env(GITHUB_ACTIONS).as_deref() != Some("true") {
        return None;
    }
    let payload = std::fs::read_to_string(env(GITHUB_EVENT_PATH)?).ok()?;
    let event: serde_json::Value = serde_json::from_str(&payload).ok()?;
    event
        .pointer("/head_commit/timestamp")?
        .as_str()?
        .parse()
        .ok()
}

/// What a build job states about its build (`slipway-deploy attest --builder-id …`); each
/// unset field falls back to GitHub Actions' variables when run there.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BuildFacts {
    /// `runDetails.builder.id`.
    pub builder_id: Option<String>,
    /// The source repository URI.
    pub source_repository: Option<String>,
    /// The source ref (`refs/heads/main`, `refs/tags/v1.2.0`).
    pub source_ref: Option<String>,
    /// The source commit.
    pub source_commit: Option<String>,
}

/// The build an SLSA provenance describes, for the build job's `slipway-deploy attest`: the
/// given facts, each missing one from GitHub Actions' variables (`GITHUB_WORKFLOW_REF` names the
/// builder, `GITHUB_REPOSITORY`, `GITHUB_REF` and `GITHUB_SHA` the source). `run` never calls
/// this: a deploy job's variables describe the deploy, not the build.
///
/// Errors name the missing flag when neither the flag nor GitHub Actions gives the builder or
/// the source repository. Start and finish are the attesting moment, as the build job attests
/// right after it built.
pub fn build_info(
    facts: &BuildFacts,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<BuildInfo, UserError> {
    let now = jiff::Timestamp::now();
    let github = env(GITHUB_ACTIONS).as_deref() == Some("true");
    let from_github = |name: &str| if github { env(name) } else { None };
    let server = from_github(GITHUB_SERVER_URL).unwrap_or_else(|| "https://github.com".to_owned());
    let workflow_ref = from_github(GITHUB_WORKFLOW_REF);
    let repository = from_github(GITHUB_REPOSITORY);
    let missing = |flag: &str, variable: &str| UserError {
        message: format!(
            "no `{flag}` given and not in GitHub Actions\n\nhint: pass `{flag}`, or run in the build job where `{variable}` is set"
        ),
    };
    let builder_id = match (&facts.builder_id, &workflow_ref) {
        (Some(id), _) => id.clone(),
        (None, Some(workflow_ref)) => format!("{server}/{workflow_ref}"),
        (None, None) => return Err(missing("--builder-id", GITHUB_WORKFLOW_REF)),
    };
    let source_repository = match (&facts.source_repository, &repository) {
        (Some(repo), _) => repo.clone(),
        (None, Some(repository)) => format!("{server}/{repository}"),
        (None, None) => return Err(missing("--source-repo", GITHUB_REPOSITORY)),
    };
    let (build_type, invocation_id) = match (&workflow_ref, &repository) {
        (Some(_), Some(repository)) => {
            let run_id = from_github(GITHUB_RUN_ID).unwrap_or_default();
            let attempt = from_github(GITHUB_RUN_ATTEMPT).unwrap_or_else(|| "1".to_owned());
            (
                GITHUB_BUILD_TYPE,
                format!("{server}/{repository}/actions/runs/{run_id}/attempts/{attempt}"),
            )
        }
        _ => (CONFIGURED_BUILD_TYPE, String::new()),
    };
    Ok(BuildInfo {
        build_type: build_type.to_owned(),
        builder_id,
        source_repository,
        source_ref: facts
            .source_ref
            .clone()
            .or_else(|| from_github(GITHUB_REF))
            .unwrap_or_default(),
        source_commit: facts
            .source_commit
            .clone()
            .or_else(|| from_github(GITHUB_SHA))
            .unwrap_or_default(),
        workflow: workflow_ref
            .map(|workflow_ref| {
                workflow_ref
                    .split_once('@')
                    .map_or(workflow_ref.clone(), |(path, _)| path.to_owned())
            })
            .unwrap_or_default(),
        invocation_id,
        started_on: now,
        finished_on: now,
    })
}

fn key_error(key: &str, err: impl std::fmt::Display) -> UserError {
    let text = err.to_string();
    let message = match text.split_once("\n\nhint: ") {
        Some((message, hint)) => {
            format!("invalid configuration: key `{key}`: {message}\n\nhint: {hint}")
        }
        None => format!("invalid configuration: key `{key}`: {text}"),
    };
    UserError { message }
}

/// Builds the spec; `approval` and `window_override` come from flags.
pub fn release_spec(
    settings: &Settings,
    approval: Option<GivenApproval>,
    window_override: Option<WindowOverride>,
) -> Result<ReleaseSpec, UserError> {
    let release =
        ReleaseId::parse(&settings.release.name).map_err(|err| key_error("release.name", err))?;
    let stage = match &settings.model.stage {
        None => None,
        Some(text) => Some(Stage::parse(text).ok_or_else(|| {
            key_error(
                "model.stage",
                format!(
                    "`{text}` is not a stage\n\nhint: use None, Staging, Production or Archived"
                ),
            )
        })?),
    };
    let model = ModelRef::with_stage(&settings.model.reference, stage)
        .map_err(|err| key_error("model.ref", err))?;
    let image =
        ImageRef::parse(&settings.image.reference).map_err(|err| key_error("image.ref", err))?;
    let rollout = &settings.rollout;
    if rollout.steps.is_empty() {
        return Err(key_error(
            "rollout.steps",
            "no canary steps\n\nhint: e.g. `steps = [10, 25, 50]`",
        ));
    }
    if let Some(bad) = rollout.steps.iter().find(|step| !(1..=99).contains(*step)) {
        return Err(key_error(
            "rollout.steps",
            format!(
                "step {bad}% is outside 1-99\n\nhint: promotion replaces stable after the last step; 100% is not a canary step"
            ),
        ));
    }
    if rollout.steps.windows(2).any(|pair| pair[0] >= pair[1]) {
        return Err(key_error(
            "rollout.steps",
            format!(
                "steps {:?} must increase\n\nhint: list canary shares in increasing order, e.g. `steps = [10, 25, 50]`",
                rollout.steps
            ),
        ));
    }
    let traffic = match (rollout.traffic, &rollout.ingress) {
        (TrafficSetting::ReplicaRatio, _) => TrafficRouting::ReplicaRatio,
        (TrafficSetting::Nginx, Some(ingress)) if !ingress.is_empty() => {
            TrafficRouting::NginxIngress {
                ingress: ingress.clone(),
            }
        }
        (TrafficSetting::Nginx, _) => {
            return Err(key_error(
                "rollout.ingress",
                "`rollout.traffic = \"nginx\"` needs the Ingress that routes to the release's Service\n\nhint: e.g. `ingress = \"iris-classifier\"` under [rollout] (`kubectl get ingresses` in the release's namespace)",
            ));
        }
        (TrafficSetting::GatewayApi, _) => match &rollout.route {
            Some(route) if !route.is_empty() => TrafficRouting::GatewayApi {
                route: route.clone(),
            },
            _ => {
                return Err(key_error(
                    "rollout.route",
                    "`rollout.traffic = \"gateway-api\"` needs the HTTPRoute that sends the release's traffic to its Service\n\nhint: e.g. `route = \"iris-classifier\"` under [rollout] (`kubectl get httproutes` in the release's namespace)",
                ));
            }
        },
    };
    // Whether a step is too coarse depends on stable's replicas, known only from the cluster:
    // the pipeline's preflight decides, before any change.
    let coarse_steps = match rollout.coarse_steps {
        CoarseStepsSetting::Refuse => CoarseSteps::Refuse,
        CoarseStepsSetting::RoundUp => CoarseSteps::RoundUp,
    };
    if rollout.history_limit == 0 {
        return Err(key_error(
            "rollout.history_limit",
            "must be at least 1 so rollback has a target",
        ));
    }
    settings
        .analysis
        .validate()
        .map_err(|err| key_error("analysis", err))?;
    settings.policy.validate().map_err(|err| UserError {
        message: err.to_string(),
    })?;
    if settings.model.serving_alias.is_empty() {
        return Err(key_error("model.serving_alias", "must not be empty"));
    }
    let reload = match &settings.server.reload_url {
        None => None,
        Some(url) => {
            let secret = settings
                .server
                .admin_token_secret
                .clone()
                .unwrap_or_else(|| format!("{}-admin/admin-token", release.name));
            let Some((secret_name, secret_key)) = secret.split_once('/') else {
                return Err(key_error(
                    "server.admin_token_secret",
                    format!(
                        "`{secret}` is not `secret-name/key`\n\nhint: e.g. `iris-classifier-admin/admin-token`"
                    ),
                ));
            };
            if !url.starts_with("http://") && !url.starts_with("https://") {
                return Err(key_error(
                    "server.reload_url",
                    format!("`{url}` is not an http(s) URL"),
                ));
            }
            Some(ReloadSpec {
                url: url.clone(),
                secret_name: secret_name.to_owned(),
                secret_key: secret_key.to_owned(),
            })
        }
    };
    let mut vuln_ignores = Vec::new();
    for path in &settings.scanner.ignore_files {
        vuln_ignores.extend(
            slipway_scanner::read_ignore_file(path)
                .map_err(|err| key_error("scanner.ignore_files", err))?,
        );
    }
    // Inside GitHub Actions the actor is the login that triggered the run, whatever the
    // configuration says: self-approval is judged against it, so it must not be settable by the
    // job itself. Elsewhere `release.actor`, then the login name.
    let env = |name: &str| std::env::var(name).ok().filter(|value| !value.is_empty());
    let github_actor = || env(GITHUB_TRIGGERING_ACTOR).or_else(|| env(GITHUB_ACTOR));
    let in_actions = env(GITHUB_ACTIONS).as_deref() == Some("true");
    let actor = if in_actions { github_actor() } else { None }
        .or_else(|| settings.release.actor.clone())
        .or_else(github_actor)
        .or_else(|| env(USER))
        .filter(|actor| !actor.is_empty())
        .unwrap_or_else(|| "slipway".to_owned());
    // The GitHub Actions run this command belongs to, recorded on the revision it starts.
    let ci_run = if in_actions {
        env(GITHUB_REPOSITORY)
            .zip(env(GITHUB_RUN_ID))
            .map(|(repository, run)| format!("{repository}#{run}"))
    } else {
        None
    };
    Ok(ReleaseSpec {
        service: settings
            .release
            .service
            .clone()
            .unwrap_or_else(|| release.name.clone()),
        release,
        model,
        serving_alias: settings.model.serving_alias.clone(),
        image,
        strategy: rollout.strategy,
        steps: rollout.steps.clone(),
        traffic,
        coarse_steps,
        pause: rollout.pause,
        progress_deadline: rollout.progress_deadline,
        history_limit: rollout.history_limit,
        analysis: settings.analysis.clone(),
        policy: settings.policy.clone(),
        approval,
        window_override,
        sign: settings.signing.sign,
        reload,
        source_time: source_time(settings, &|name| std::env::var(name).ok()),
        vuln_ignores,
        pause_for_approval: settings.rollout.on_missing_approval
            == crate::config::OnMissingApproval::Pause,
        actor,
        ci_run,
    })
}

#[cfg(test)]
mod build_info_tests {
    use super::*;

    fn env_of(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name: &str| {
            pairs
                .iter()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| (*value).to_owned())
        }
    }

    const GITHUB: &[(&str, &str)] = &[
        (GITHUB_ACTIONS, "true"),
        (GITHUB_REPOSITORY, "acme/iris"),
        (
            GITHUB_WORKFLOW_REF,
            "acme/iris/.github/workflows/build.yml@refs/heads/main",
        ),
        (GITHUB_REF, "refs/heads/main"),
        (GITHUB_SHA, "4d329c75"),
        (GITHUB_RUN_ID, "7"),
    ];

    #[test]
    fn flags_win_and_github_actions_fills_the_rest() {
        let facts = BuildFacts {
            source_ref: Some("refs/tags/v1.5.0".to_owned()),
            ..BuildFacts::default()
        };
        let info = build_info(&facts, &env_of(GITHUB)).expect("in GitHub Actions");
        assert_eq!(
            info.builder_id,
            "https://github.com/acme/iris/.github/workflows/build.yml@refs/heads/main"
        );
        assert_eq!(info.source_repository, "https://github.com/acme/iris");
        assert_eq!(info.source_ref, "refs/tags/v1.5.0");
        assert_eq!(info.source_commit, "4d329c75");
        assert_eq!(info.build_type, GITHUB_BUILD_TYPE);
        assert_eq!(
            info.invocation_id,
            "https://github.com/acme/iris/actions/runs/7/attempts/1"
        );

        // Outside GitHub Actions its variables are not read, and each missing fact is named.
        let outside: &[(&str, &str)] = &[(GITHUB_REPOSITORY, "acme/iris")];
        let err = build_info(&BuildFacts::default(), &env_of(outside)).expect_err("no builder");
        assert!(
            err.message.starts_with("no `--builder-id` given"),
            "{}",
            err.message
        );
        let facts = BuildFacts {
            builder_id: Some("https://ci.example/build".to_owned()),
            ..BuildFacts::default()
        };
        let err = build_info(&facts, &env_of(outside)).expect_err("no source");
        assert!(
            err.message.starts_with("no `--source-repo` given"),
            "{}",
            err.message
        );
        let facts = BuildFacts {
            builder_id: Some("https://ci.example/build".to_owned()),
            source_repository: Some("https://git.example/iris".to_owned()),
            ..BuildFacts::default()
        };
        let info = build_info(&facts, &env_of(outside)).expect("from flags");
        assert_eq!(info.build_type, CONFIGURED_BUILD_TYPE);
        assert_eq!(info.source_ref, "");
    }
}
