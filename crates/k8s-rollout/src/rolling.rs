//! Rolling update, written once against [`Cluster`]: set stable's image with `maxSurge` /
//! `maxUnavailable`, let Kubernetes replace the pods, and watch it with the progress deadline.
//!
//! A rolling update that does not finish in time is undone (stable's previous image is set again
//! and waited for), so the cluster is never left with a half-rolled Deployment.

use std::time::Duration;

use slipway_core::{Clock, ReleaseId};

use crate::rollout::{stable, wait_ready};
use crate::{Cluster, Error, RollingParams};

/// Rolls stable to `image`. On failure the previous image is restored and the original error
/// returned (with a note when the restore failed too).
pub async fn run(
    cluster: &dyn Cluster,
    clock: &dyn Clock,
    release: &ReleaseId,
    image: &str,
    params: &RollingParams,
    deadline: Duration,
) -> Result<(), Error> {
    let before = stable(cluster, release).await?.spec;
    cluster
        .rolling_update(&release.namespace, &release.name, image, params)
        .await?;
    let Err(err) = wait_ready(cluster, clock, &release.namespace, &release.name, deadline).await
    else {
        return Ok(());
    };
    if before.image == image {
        return Err(err);
    }
    let restored = match cluster.apply_deployment(&before).await {
        Ok(()) => wait_ready(cluster, clock, &release.namespace, &release.name, deadline).await,
        Err(restore) => Err(restore),
    };
    match (err, restored) {
        (
            Error::NotReady {
                namespace,
                name,
                waited,
                reason,
            },
            Ok(()),
        ) => Err(Error::NotReady {
            namespace,
            name,
            waited,
            reason: format!("{reason}; rolled back to {}", before.image),
        }),
        (
            Error::NotReady {
                namespace,
                name,
                waited,
                reason,
            },
            Err(restore),
        ) => Err(Error::NotReady {
            namespace,
            name,
            waited,
            reason: format!("{reason}; restoring {} failed too: {restore}", before.image),
        }),
        (other, _) => Err(other),
    }
}
