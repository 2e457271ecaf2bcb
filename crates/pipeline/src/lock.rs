//! The release's lock, held for the whole of a command that changes a release: `run`,
//! `promote`/`abort`, `slipway-rollback` and `watch`'s rollback.
//!
//! [`ReleaseLock::acquire`] takes the lock ([`Cluster::acquire_lock`], a Lease on a real cluster)
//! and hands out a [`Clock`] that keeps it: every wait of the command goes through that clock,
//! which cuts the wait at each third of the time to live and renews the lock there. Renewals
//! are therefore driven by the same clock as the work itself: with real time they happen in the
//! background of every wait (no wait of the pipeline is longer than a third of the TTL without
//! one), and with a simulated clock they happen at the right simulated instants instead of
//! racing ahead of the work.
//!
//! Stretches of work that never wait on the clock (a single API call, bounded by its timeout)
//! do not renew; the time to live (at least 15 minutes) is far longer than any of them. A lease
//! that expired unrenewed all the same (the process was suspended) is treated as lost, never
//! silently taken again.
//!
//! When another holder appears, or renewal keeps failing until the lease would have expired,
//! the lock is lost: the clock raises the [`Interrupt`] with [`Interruption::LockLost`] and never
//! wakes again, so the stage machine stops waiting, cleans up what it started and records
//! `lock-lost`. After that the command writes to the cluster only what is provably its own (a
//! canary or standby colour running its image); stable and the history are left to the new
//! holder, whose next command settles the revision by what serves.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use jiff::Timestamp;
use slipway_core::{Clock, ReleaseId};
use slipway_k8s_rollout::{Cluster, Error};

use crate::{Interrupt, Interruption};

/// How long a lock lives without renewal: twice the progress deadline, at least 15 minutes.
pub fn lock_ttl(progress_deadline: Duration) -> Duration {
    progress_deadline
        .saturating_mul(2)
        .max(Duration::from_secs(900))
}

#[derive(Debug)]
struct State {
    /// When the lease was last taken or renewed.
    renewed_at: Timestamp,
    /// After a failed renewal: when to try again.
    retry_at: Option<Timestamp>,
    renewals: u64,
    lost: bool,
}

/// A held release lock; see the module docs.
pub struct ReleaseLock {
    cluster: Arc<dyn Cluster>,
    clock: Arc<dyn Clock>,
    release: ReleaseId,
    holder: String,
    ttl: Duration,
    interrupt: Interrupt,
    state: Mutex<State>,
}

impl std::fmt::Debug for ReleaseLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReleaseLock")
            .field("release", &self.release)
            .field("holder", &self.holder)
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

fn later(at: Timestamp, by: Duration) -> Timestamp {
    let step = jiff::SignedDuration::try_from(by).unwrap_or(jiff::SignedDuration::MAX);
    at.checked_add(step).unwrap_or(Timestamp::MAX)
}

impl ReleaseLock {
    /// Takes the lock for `holder` (refused when another live holder has it).
    pub async fn acquire(
        cluster: Arc<dyn Cluster>,
        clock: Arc<dyn Clock>,
        interrupt: Interrupt,
        release: &ReleaseId,
        holder: &str,
        ttl: Duration,
    ) -> Result<Arc<ReleaseLock>, Error> {
        cluster.acquire_lock(release, holder, ttl).await?;
        let now = clock.now();
        Ok(Arc::new(ReleaseLock {
            cluster,
            clock,
            release: release.clone(),
            holder: holder.to_owned(),
            ttl,
            interrupt,
            state: Mutex::new(State {
                renewed_at: now,
                retry_at: None,
                renewals: 0,
                lost: false,
            }),
        }))
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Who holds it (`actor@time`).
    pub fn holder(&self) -> &str {
        &self.holder
    }

    /// How many times it was renewed.
    pub fn renewals(&self) -> u64 {
        self.state().renewals
    }

    /// Whether it was lost.
    pub fn is_lost(&self) -> bool {
        self.state().lost
    }

    /// The clock to do the work on: waits on it keep the lock (see the module docs).
    pub fn clock(self: &Arc<Self>) -> Arc<dyn Clock> {
        Arc::new(KeepingClock { lock: self.clone() })
    }

    /// When the next renewal is due.
    fn due(&self) -> Timestamp {
        let state = self.state();
        state
            .retry_at
            .unwrap_or_else(|| later(state.renewed_at, self.ttl / 3))
    }

    /// Renews now. Another holder loses the lock at once; other errors are retried until the
    /// lease would have expired.
    async fn renew(&self) {
        // A lease that ran out unrenewed (the process stalled, the VM was suspended) may have
        // been taken, used and given up by another command meanwhile: taking it again would
        // carry on from a state that is no longer true.
        let expired = {
            let state = self.state();
            let expires = later(state.renewed_at, self.ttl);
            (self.clock.now() >= expires).then_some(expires)
        };
        if let Some(expires) = expired {
            self.state().lost = true;
            self.interrupt.trigger(Interruption::LockLost {
                reason: format!(
                    "the lease expired at {expires} before it was renewed; another command may have taken the release over meanwhile"
                ),
            });
            return;
        }
        // Renew only a lease that is still ours: `acquire_lock` would re-create a deleted one,
        // and a lease deleted under us was broken by `unlock` (another command may be settling
        // the release right now), so carrying on would be two commands on one release.
        let result = match self.cluster.lock_holder(&self.release).await {
            Ok(Some(current)) if current.holder == self.holder => {
                self.cluster
                    .acquire_lock(&self.release, &self.holder, self.ttl)
                    .await
            }
            Ok(Some(current)) => Err(Error::Locked {
                release: self.release.to_string(),
                holder: current.holder,
                expires: current.expires,
            }),
            Ok(None) => {
                self.state().lost = true;
                self.interrupt.trigger(Interruption::LockLost {
                    reason: format!(
                        "the lease of {} is gone: its lock was broken (`slipway-deploy unlock`) or removed",
                        self.release
                    ),
                });
                return;
            }
            Err(err) => Err(err),
        };
        let now = self.clock.now();
        let lost = {
            let mut state = self.state();
            match result {
                Ok(()) => {
                    state.renewed_at = now;
                    state.retry_at = None;
                    state.renewals += 1;
                    None
                }
                Err(err @ Error::Locked { .. }) => Some(err.to_string()),
                Err(err) => {
                    let expires = later(state.renewed_at, self.ttl);
                    // Leave a margin of a tenth of the TTL: the lease must not run out while
                    // we still believe we hold it.
                    if later(now, self.ttl / 10) >= expires {
                        Some(format!(
                            "could not renew it before it expired at {expires}: {err}"
                        ))
                    } else {
                        state.retry_at =
                            Some(later(now, (self.ttl / 30).max(Duration::from_secs(1))));
                        None
                    }
                }
            }
        };
        if let Some(reason) = lost {
            let reason = reason
                .split("\n\nhint:")
                .next()
                .unwrap_or(&reason)
                .to_owned();
            self.state().lost = true;
            self.interrupt.trigger(Interruption::LockLost { reason });
        }
    }

    /// Gives the lock up, unless it was lost (then it is somebody else's).
    pub async fn release(&self) -> Result<(), Error> {
        if self.is_lost() {
            return Ok(());
        }
        self.cluster.release_lock(&self.release, &self.holder).await
    }
}

/// The work's clock while the lock is held: renews at each third of the TTL.
struct KeepingClock {
    lock: Arc<ReleaseLock>,
}

#[async_trait::async_trait]
impl Clock for KeepingClock {
    fn now(&self) -> Timestamp {
        self.lock.clock.now()
    }

    async fn sleep(&self, duration: Duration) {
        let end = later(self.lock.clock.now(), duration);
        loop {
            if self.lock.is_lost() {
                // The interrupt is raised: the stage machine stops this work.
                std::future::pending::<()>().await;
            }
            let now = self.lock.clock.now();
            let due = self.lock.due();
            if now >= due {
                self.lock.renew().await;
                continue;
            }
            if now >= end {
                return;
            }
            let until = if due < end { due } else { end };
            let wait = now
                .duration_until(until)
                .unsigned_abs()
                .max(Duration::from_millis(1));
            self.lock.clock.sleep(wait).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use slipway_core::SimClock;
    use slipway_k8s_rollout::MemoryCluster;

    fn release() -> ReleaseId {
        ReleaseId::parse("ml/iris").expect("id")
    }

    /// A 15-minute lock held by `ci@1` on a simulated clock.
    async fn held() -> (
        SimClock,
        Arc<MemoryCluster>,
        Interrupt,
        Duration,
        Arc<ReleaseLock>,
    ) {
        let clock = SimClock::starting_at("2026-11-22T09:00:00Z".parse().expect("ts"));
        let cluster = Arc::new(MemoryCluster::new(Arc::new(clock.clone())));
        let interrupt = Interrupt::new();
        let ttl = Duration::from_secs(900);
        let lock = ReleaseLock::acquire(
            cluster.clone(),
            Arc::new(clock.clone()),
            interrupt.clone(),
            &release(),
            "ci@1",
            ttl,
        )
        .await
        .expect("lock");
        (clock, cluster, interrupt, ttl, lock)
    }

    #[tokio::test]
    async fn waits_longer_than_the_ttl_keep_the_lock() {
        let (_clock, cluster, interrupt, ttl, lock) = held().await;
        let work = lock.clock();
        // An hour of waiting, four TTLs: without renewals anyone could take the lock.
        work.sleep(Duration::from_secs(3600)).await;
        assert_eq!(cluster.lock_holder(&release()).as_deref(), Some("ci@1"));
        assert!(lock.renewals() >= 11, "renewals: {}", lock.renewals());
        let other = cluster.acquire_lock(&release(), "other@2", ttl).await;
        assert!(other.is_err(), "the lock must still be held");
        assert_eq!(interrupt.current(), None);
        lock.release().await.expect("release");
        assert_eq!(cluster.lock_holder(&release()), None);
    }

    #[tokio::test]
    async fn another_holder_interrupts_the_work() {
        let (clock, cluster, interrupt, _ttl, lock) = held().await;
        // Another run holds the lease now (as after a takeover).
        clock.advance(Duration::from_secs(400));
        cluster.set_lease(
            &release(),
            "other@2",
            clock.now() + jiff::SignedDuration::from_mins(15),
        );
        let work = lock.clock();
        let slept = tokio::time::timeout(
            Duration::from_millis(200),
            work.sleep(Duration::from_secs(60)),
        )
        .await;
        assert!(slept.is_err(), "a lost lock never lets the work go on");
        assert!(matches!(
            interrupt.current(),
            Some(Interruption::LockLost { reason }) if reason.contains("other@2")
        ));
        lock.release().await.expect("release is a no-op");
        assert_eq!(cluster.lock_holder(&release()).as_deref(), Some("other@2"));
    }

    #[tokio::test]
    async fn a_lease_that_expired_unrenewed_is_lost_not_taken_again() {
        let (clock, _cluster, interrupt, _ttl, lock) = held().await;
        // The process was suspended past the lease; nobody holds it now, but somebody may have
        // in between.
        clock.advance(Duration::from_secs(1000));
        let work = lock.clock();
        let slept = tokio::time::timeout(
            Duration::from_millis(200),
            work.sleep(Duration::from_secs(60)),
        )
        .await;
        assert!(slept.is_err(), "a lost lock never lets the work go on");
        assert!(matches!(
            interrupt.current(),
            Some(Interruption::LockLost { reason }) if reason.contains("expired")
        ));
        assert_eq!(lock.renewals(), 0, "never renewed after it expired");
    }
}

/// When a lease's holder counts as gone: it missed a renewal of its own lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MissedRenewal {
    /// When the holder last took or renewed the lease.
    pub renewed: Timestamp,
    /// How often a live holder renews it: a third of the lease's own time to live.
    pub period: Duration,
    /// From when the holder counts as gone: a renewal period and a tenth of the lease after
    /// `renewed`.
    pub stale_from: Timestamp,
}

/// The holder's own time to live, from its lease (when it was last renewed and until when),
/// never a command's configuration, which may differ: `None` when the lease does not say.
/// What `unlock` refuses before, and `status` points out after.
pub fn missed_renewal(lease: &slipway_k8s_rollout::LockHolder) -> Option<MissedRenewal> {
    let renewed = lease.renewed.as_deref()?.parse::<Timestamp>().ok()?;
    let expires = lease.expires.parse::<Timestamp>().ok()?;
    let ttl: Duration = expires.duration_since(renewed).try_into().ok()?;
    Some(MissedRenewal {
        renewed,
        period: ttl / 3,
        stale_from: later(renewed, ttl / 3 + ttl / 10),
    })
}

/// What [`unlock`] found and did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
pub struct Unlocked {
    /// The release.
    pub release: String,
    /// The holder whose lock was broken, or `None` when the release was not locked.
    pub holder: Option<String>,
    /// When that lease would have expired (RFC 3339).
    pub expires: Option<String>,
    /// When its holder last renewed it, as far as the lease tells (RFC 3339).
    pub renewed: Option<String>,
}

/// Why [`unlock`] did not break the lock.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnlockError {
    /// Another holder has the lock now (exit 1): never break a lock by a name that is not its.
    #[error(
        "release `{release}` is locked by `{current}`, not `{asked}`\n\nhint: unlock names the holder exactly as `status` or the \"locked by\" message shows it; if `{current}` is dead too, run `slipway-deploy unlock '{current}' --reason …`"
    )]
    OtherHolder {
        /// The release.
        release: String,
        /// Who holds it.
        current: String,
        /// Who was named.
        asked: String,
    },
    /// The holder renewed its lease within a renewal period: it may be alive (exit 1).
    #[error(
        "`{holder}` renewed its lock of `{release}` at {renewed}: a live holder renews every {period}, so it may still be running; it counts as gone from {stale_from}\n\nhint: wait until then, or add `--force` if you know its job is gone (cancelled, runner lost)"
    )]
    Fresh {
        /// The release.
        release: String,
        /// Who holds it.
        holder: String,
        /// When it was last renewed.
        renewed: String,
        /// How often a live holder renews.
        period: String,
        /// When a missed renewal makes it stale.
        stale_from: String,
    },
    /// The lease does not say when it was last renewed, so a live holder cannot be ruled out
    /// (exit 1).
    #[error(
        "the lease of `{holder}` on `{release}` does not say when it was last renewed, so it may still be running\n\nhint: add `--force` if you know its job is gone (cancelled, runner lost)"
    )]
    Unknown {
        /// The release.
        release: String,
        /// Who holds it.
        holder: String,
    },
    /// The cluster or the trail failed (exit 2).
    #[error("{0}")]
    Backend(String),
}

/// Breaks the release's lock held by `holder`, a command that died without releasing it (a
/// killed runner, a lost VM), so the next `abort`, `run` or rollback need not wait for the lease
/// to expire; that command then settles the release by what serves, as after any crash.
///
/// Guards, because a lock broken under a live holder lets two commands change one release:
/// the holder must be named exactly (as Terraform's `force-unlock` takes the lock id), and,
/// unless `force`, it must have missed a renewal: a live holder renews every third of its time
/// to live (the lease's own: renewed → expires, not this command's [`lock_ttl`]), so a lease not
/// renewed for that long plus a tenth is a dead holder's. A holder that is alive after all finds
/// its lease gone or taken at its next renewal and stops as on any lost lock ([`ReleaseLock`]
/// never re-creates a lease it no longer holds).
/// The lease is deleted only if it is still that holder's (the cluster's precondition), and the
/// break is recorded on the trail (`lock` / `broken`, with who broke it and why) before it
/// happens, so no lock disappears without an entry.
pub async fn unlock(
    spec: &crate::ReleaseSpec,
    backends: &crate::Backends,
    holder: &str,
    reason: &str,
    force: bool,
) -> Result<Unlocked, UnlockError> {
    let release = &spec.release;
    let backend = |err: &dyn std::error::Error| UnlockError::Backend(crate::run::chain(err));
    let mut unlocked = Unlocked {
        release: release.to_string(),
        holder: None,
        expires: None,
        renewed: None,
    };
    let Some(current) = backends
        .cluster
        .lock_holder(release)
        .await
        .map_err(|err| backend(&err))?
    else {
        return Ok(unlocked);
    };
    if current.holder != holder {
        return Err(UnlockError::OtherHolder {
            release: release.to_string(),
            current: current.holder,
            asked: holder.to_owned(),
        });
    }
    if !force {
        match missed_renewal(&current) {
            None => {
                return Err(UnlockError::Unknown {
                    release: release.to_string(),
                    holder: holder.to_owned(),
                });
            }
            Some(missed) if backends.clock.now() < missed.stale_from => {
                return Err(UnlockError::Fresh {
                    release: release.to_string(),
                    holder: holder.to_owned(),
                    renewed: missed.renewed.to_string(),
                    period: format!("{} s", missed.period.as_secs()),
                    stale_from: missed.stale_from.to_string(),
                });
            }
            Some(_) => {}
        }
    }
    let detail = format!(
        "lock held by {holder} (lease until {}) broken by {}{}: {reason}",
        current.expires,
        spec.actor,
        if force { " with --force" } else { "" }
    );
    backends
        .audit
        .append(
            backends.clock.now(),
            slipway_audit_log::Event::Decision {
                release: release.clone(),
                stage: "lock".to_owned(),
                verdict: "broken".to_owned(),
                detail,
            },
        )
        .await
        .map_err(|err| backend(&err))?;
    backends
        .cluster
        .release_lock(release, holder)
        .await
        .map_err(|err| backend(&err))?;
    unlocked.holder = Some(current.holder);
    unlocked.expires = Some(current.expires);
    unlocked.renewed = current.renewed;
    Ok(unlocked)
}
