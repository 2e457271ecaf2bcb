//! Blue-green, written once against [`Cluster`]: `<name>-blue` and `<name>-green` Deployments
//! (the stable Deployment's pod template, labelled `slipway.dev/track: blue|green`), and the
//! Service in front of the release whose selector points at the active colour.
//!
//! - [`deploy`] puts the new image on the standby colour, waits for it with the progress deadline,
//!   and points the preview Service `<service>-preview` at it for checks before the switch.
//! - [`switch`] moves the Service selector to a colour whose pods are ready, so it is instant.
//! - [`switch_back`] moves it back to the other colour while that one is still scaled up.
//! - [`finish`] waits the scale-down delay, then scales the inactive colour to zero and removes the
//!   preview Service.
//!
//! The first blue-green release of a Deployment *adopts* it: blue gets stable's current image and
//! the Service moves to blue, which changes nothing that serves. Without that step the colour pods
//! would also match the Service's original selector and take traffic before any check. After
//! adoption the user's Deployment no longer receives Service traffic but stays the source of the
//! pod template (Slipway never changes it in blue-green).
//!
//! Each function reads the current state and converges to the asked one, so a run killed between
//! any two of them can run again: [`deploy`] with an image the active colour already serves does
//! nothing, and [`finish`] always scales down whichever colour is inactive.

use std::collections::BTreeMap;
use std::time::Duration;

use slipway_core::{Clock, ReleaseId};

use crate::rollout::{stable, wait_ready};
use crate::{Cluster, DeploymentSpec, DeploymentState, Error, TRACK_LABEL};

/// One of the two colours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Colour {
    /// `<name>-blue`.
    Blue,
    /// `<name>-green`.
    Green,
}

impl Colour {
    /// The other colour.
    pub fn other(self) -> Colour {
        match self {
            Colour::Blue => Colour::Green,
            Colour::Green => Colour::Blue,
        }
    }

    /// `blue` or `green`, the track label's value.
    pub fn as_str(self) -> &'static str {
        match self {
            Colour::Blue => "blue",
            Colour::Green => "green",
        }
    }

    fn parse(value: &str) -> Option<Colour> {
        match value {
            "blue" => Some(Colour::Blue),
            "green" => Some(Colour::Green),
            _ => None,
        }
    }
}

impl std::fmt::Display for Colour {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Blue-green settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlueGreenConfig {
    /// The Service in front of the release.
    pub service: String,
    /// How long the old colour stays scaled up after a switch, so a switch back is instant.
    pub scale_down_delay: Duration,
    /// Progress deadline for a colour to become ready.
    pub deadline: Duration,
}

impl BlueGreenConfig {
    /// Defaults for `service`: 30 s scale-down delay (as Argo Rollouts), 600 s progress deadline.
    pub fn new(service: impl Into<String>) -> BlueGreenConfig {
        BlueGreenConfig {
            service: service.into(),
            scale_down_delay: Duration::from_secs(30),
            deadline: crate::DEFAULT_PROGRESS_DEADLINE,
        }
    }
}

/// `<name>-blue` or `<name>-green`.
pub fn colour_name(release: &ReleaseId, colour: Colour) -> String {
    format!("{}-{colour}", release.name)
}

/// `<service>-preview`.
pub fn preview_name(service: &str) -> String {
    format!("{service}-preview")
}

async fn selector(
    cluster: &dyn Cluster,
    release: &ReleaseId,
    service: &str,
) -> Result<BTreeMap<String, String>, Error> {
    cluster.service_selector(&release.namespace, service).await?.ok_or_else(|| Error::NotFound {
        kind: "Service",
        namespace: release.namespace.clone(),
        name: service.to_owned(),
        hint: "blue-green switches the selector of the Service in front of the release; create it first".to_owned(),
    })
}

fn with_track(base: &BTreeMap<String, String>, colour: Colour) -> BTreeMap<String, String> {
    let mut selector = base.clone();
    selector.insert(TRACK_LABEL.to_owned(), colour.as_str().to_owned());
    selector
}

fn base_selector(mut selector: BTreeMap<String, String>) -> BTreeMap<String, String> {
    selector.remove(TRACK_LABEL);
    selector
}

/// The colour the Service sends traffic to; `None` while it still selects the user's Deployment.
pub async fn active(
    cluster: &dyn Cluster,
    release: &ReleaseId,
    config: &BlueGreenConfig,
) -> Result<Option<Colour>, Error> {
    let selector = selector(cluster, release, &config.service).await?;
    Ok(selector
        .get(TRACK_LABEL)
        .and_then(|value| Colour::parse(value)))
}

async fn ensure_colour(
    cluster: &dyn Cluster,
    clock: &dyn Clock,
    release: &ReleaseId,
    config: &BlueGreenConfig,
    colour: Colour,
    image: &str,
) -> Result<(), Error> {
    let stable = stable(cluster, release).await?;
    let mut spec: DeploymentSpec = stable.spec;
    spec.name = colour_name(release, colour);
    spec.image = image.to_owned();
    spec.pod_labels
        .insert(TRACK_LABEL.to_owned(), colour.as_str().to_owned());
    spec.selector
        .insert(TRACK_LABEL.to_owned(), colour.as_str().to_owned());
    cluster.derive_deployment(&release.name, &spec).await?;
    wait_ready(
        cluster,
        clock,
        &release.namespace,
        &spec.name,
        config.deadline,
    )
    .await
}

/// Deploys `image` to the standby colour, waits for it, and points the preview Service at it.
/// Returns the colour that now runs `image` (the active one when it already did).
pub async fn deploy(
    cluster: &dyn Cluster,
    clock: &dyn Clock,
    release: &ReleaseId,
    config: &BlueGreenConfig,
    image: &str,
) -> Result<Colour, Error> {
    let active = match active(cluster, release, config).await? {
        Some(colour) => colour,
        None => {
            // Adopt: blue serves exactly what stable serves, then the Service moves to blue.
            let current = stable(cluster, release).await?.spec.image;
            ensure_colour(cluster, clock, release, config, Colour::Blue, &current).await?;
            switch(cluster, release, config, Colour::Blue).await?;
            Colour::Blue
        }
    };
    let serving = cluster
        .deployment(&release.namespace, &colour_name(release, active))
        .await?;
    if serving.is_some_and(|state| state.spec.image == image && state.rolled_out()) {
        return Ok(active);
    }
    let standby = active.other();
    ensure_colour(cluster, clock, release, config, standby, image).await?;
    let base = base_selector(selector(cluster, release, &config.service).await?);
    cluster
        .copy_service(
            &release.namespace,
            &config.service,
            &preview_name(&config.service),
            &with_track(&base, standby),
        )
        .await?;
    Ok(standby)
}

/// Points the Service at `to`. Refuses when `to`'s pods are not all ready, so the switch itself
/// never sends traffic to pods that cannot take it.
pub async fn switch(
    cluster: &dyn Cluster,
    release: &ReleaseId,
    config: &BlueGreenConfig,
    to: Colour,
) -> Result<(), Error> {
    let name = colour_name(release, to);
    let state = cluster
        .deployment(&release.namespace, &name)
        .await?
        .ok_or_else(|| Error::NotFound {
            kind: "Deployment",
            namespace: release.namespace.clone(),
            name: name.clone(),
            hint: "deploy to this colour before switching to it".to_owned(),
        })?;
    if !state.rolled_out() || state.spec.replicas == 0 {
        return Err(Error::NotReady {
            namespace: release.namespace.clone(),
            name,
            waited: Duration::ZERO,
            reason: format!(
                "{} of {} pods ready; refusing to switch the Service to it",
                state.updated_ready_replicas, state.spec.replicas
            ),
        });
    }
    let base = base_selector(selector(cluster, release, &config.service).await?);
    cluster
        .set_service_selector(&release.namespace, &config.service, &with_track(&base, to))
        .await
}

/// Switches back to the other colour. Instant while it is still scaled up (within the
/// scale-down delay); otherwise it is scaled up again and waited for first. Returns the colour
/// now active.
pub async fn switch_back(
    cluster: &dyn Cluster,
    clock: &dyn Clock,
    release: &ReleaseId,
    config: &BlueGreenConfig,
) -> Result<Colour, Error> {
    let Some(active) = active(cluster, release, config).await? else {
        return Err(Error::Api {
            operation: format!("switch back `{release}`"),
            message: format!(
                "Service `{}` still selects the user's Deployment; there is nothing to switch back to",
                config.service
            ),
        });
    };
    let previous = active.other();
    let name = colour_name(release, previous);
    let Some(state) = cluster.deployment(&release.namespace, &name).await? else {
        return Err(Error::NotFound {
            kind: "Deployment",
            namespace: release.namespace.clone(),
            name,
            hint:
                "the previous colour no longer exists; roll back from the release history instead"
                    .to_owned(),
        });
    };
    if !state.rolled_out() || state.spec.replicas == 0 {
        let replicas = stable(cluster, release).await?.spec.replicas;
        cluster
            .apply_deployment(&DeploymentSpec {
                replicas,
                ..state.spec
            })
            .await?;
        wait_ready(cluster, clock, &release.namespace, &name, config.deadline).await?;
    }
    switch(cluster, release, config, previous).await?;
    Ok(previous)
}

/// After the scale-down delay, scales the inactive colour to zero and removes the preview
/// Service. Safe to run again.
pub async fn finish(
    cluster: &dyn Cluster,
    clock: &dyn Clock,
    release: &ReleaseId,
    config: &BlueGreenConfig,
) -> Result<(), Error> {
    clock.sleep(config.scale_down_delay).await;
    cluster
        .delete_service(&release.namespace, &preview_name(&config.service))
        .await?;
    let Some(active) = active(cluster, release, config).await? else {
        return Ok(());
    };
    let inactive = colour_name(release, active.other());
    if let Some(state) = cluster.deployment(&release.namespace, &inactive).await?
        && state.spec.replicas > 0
    {
        cluster
            .apply_deployment(&DeploymentSpec {
                replicas: 0,
                ..state.spec
            })
            .await?;
    }
    Ok(())
}

/// The Deployment that serves the release now: the active colour once a blue-green release
/// switched the Service to one, else the user's stable Deployment.
pub async fn serving(
    cluster: &dyn Cluster,
    release: &ReleaseId,
    service: &str,
) -> Result<DeploymentState, Error> {
    let config = BlueGreenConfig::new(service);
    match active(cluster, release, &config).await? {
        Some(colour) => {
            let name = colour_name(release, colour);
            cluster.deployment(&release.namespace, &name).await?.ok_or_else(|| Error::NotFound {
                kind: "Deployment",
                namespace: release.namespace.clone(),
                name,
                hint: format!("Service `{service}` selects the {colour} colour, but its Deployment is gone"),
            })
        }
        None => stable(cluster, release).await,
    }
}
