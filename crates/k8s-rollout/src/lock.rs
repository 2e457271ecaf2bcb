//! Holding a release's lock while work runs: [`hold`] renews the lock every third of its time to
//! live and gives it up when the work ends, whatever the outcome.
//!
//! The lock itself is [`Cluster::acquire_lock`] (a `coordination.k8s.io` Lease in a real
//! cluster): renewing is acquiring again as the same holder, and a holder that died loses the
//! lock when its time to live runs out, so the next run takes it over.

use std::future::Future;
use std::pin::pin;
use std::time::Duration;

use slipway_core::{Clock, ReleaseId};

use crate::{Cluster, Error};

/// Takes the lock, runs `work` while renewing the lock, then releases it. If a renewal fails
/// (another holder took the lock over, or the API server is unreachable for longer than the
/// lease), the work is dropped (cancelled) and the renewal's error returned: two pipelines must
/// never both believe they hold a release.
///
/// Note: with a simulated clock ([`slipway_core::SimClock`]) renewals only happen while `work` is
/// pending on something other than the clock.
pub async fn hold<F: Future>(
    cluster: &dyn Cluster,
    clock: &dyn Clock,
    release: &ReleaseId,
    holder: &str,
    ttl: Duration,
    work: F,
) -> Result<F::Output, Error> {
    cluster.acquire_lock(release, holder, ttl).await?;
    let interval = (ttl / 3).max(Duration::from_secs(1));
    let mut work = pin!(work);
    let result = loop {
        tokio::select! {
            biased;
            output = &mut work => break Ok(output),
            () = clock.sleep(interval) => {
                if let Err(err) = cluster.acquire_lock(release, holder, ttl).await {
                    break Err(err);
                }
                // A simulated clock's sleep is ready at once: yield so other tasks (and the
                // work's own wake-ups) get to run instead of this loop spinning.
                tokio::task::yield_now().await;
            }
        }
    };
    // A failed release is not reported over the work's result: the lease then simply expires
    // after `ttl` and the next run takes it over.
    let _ = cluster.release_lock(release, holder).await;
    result
}
