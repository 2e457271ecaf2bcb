//! Turning [`Settings`] into a validated [`ReleaseSpec`]: every reference parsed, every number
//! checked, and each error naming the config key it came from.

use slipway_core::{ImageRef, ModelRef, ReleaseId, Stage};
use slipway_gates::window::WindowOverride;
use slipway_pipeline::{GivenApproval, ReleaseSpec};

use crate::UserError;
use crate::config::Settings;

/// Env var CI systems set to the user who started the job (GitHub Actions).
pub const GITHUB_ACTOR: &str = "GITHUB_ACTOR";
/// The login name, for runs from a terminal.
pub const USER: &str = "USER";

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
    let actor = settings
        .release
        .actor
        .clone()
        .or_else(|| std::env::var(GITHUB_ACTOR).ok())
        .or_else(|| std::env::var(USER).ok())
        .filter(|actor| !actor.is_empty())
        .unwrap_or_else(|| "slipway".to_owned());
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
        pause: rollout.pause,
        progress_deadline: rollout.progress_deadline,
        history_limit: rollout.history_limit,
        analysis: settings.analysis.clone(),
        policy: settings.policy.clone(),
        approval,
        window_override,
        sign: settings.signing.sign,
        pause_for_approval: settings.rollout.on_missing_approval == crate::config::OnMissingApproval::Pause,
        actor,
    })
}
