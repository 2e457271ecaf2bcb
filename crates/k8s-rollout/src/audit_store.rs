//! [`ClusterAuditStore`]: the audit trail kept in the cluster, so every runner (a CI job, a
//! laptop, the rollback watcher) reads and extends the same chain.
//!
//! One ConfigMap per entry, `slipway-audit-<release>-<seq>`, labelled
//! `slipway.dev/audit=<release>` in the release's namespace, created with `immutable: true`.
//! Appending is *create-if-absent*: the entry's name is its sequence number, so two runners
//! appending at once cannot both write entry N; the one that finds the name taken re-reads the
//! trail and chains onto the winner's entry. No lock is needed and the chain never forks.
//!
//! Rejected: one ConfigMap per chunk of entries. Appending would then *update* an object, which
//! needs the `update` verb on ConfigMaps (enough to rewrite history) and a read-modify-write
//! retry loop; a chunk also nears the 1 MiB object limit with signed entries. One object per
//! entry costs a list per read, which a trail of hundreds of entries affords.
//!
//! The store works over any [`Cluster`]: [`crate::KubeCluster`] (list and create through the
//! operations table, so the RBAC Role grants exactly that) and [`crate::MemoryCluster`].

use std::sync::Arc;

use jiff::Timestamp;
use slipway_attest::Signer;
use slipway_audit_log::{AuditStore, Damage, DamageKind, Entry, Error, Event, Head, Trail};
use slipway_core::ReleaseId;

use crate::{AuditCreate, AuditObject, Cluster};

/// How often an append re-reads and retries after another runner took its entry's name.
const APPEND_RETRIES: u32 = 5;

/// The audit trail of one release, in the cluster. See the module docs.
pub struct ClusterAuditStore {
    cluster: Arc<dyn Cluster>,
    release: ReleaseId,
    signer: Option<Arc<dyn Signer>>,
}

impl std::fmt::Debug for ClusterAuditStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterAuditStore")
            .field("release", &self.release)
            .field(
                "signer",
                &self.signer.as_ref().map(|signer| signer.key_id()),
            )
            .finish_non_exhaustive()
    }
}

impl ClusterAuditStore {
    /// The trail of `release`, in its namespace on `cluster`.
    pub fn new(cluster: Arc<dyn Cluster>, release: ReleaseId) -> ClusterAuditStore {
        ClusterAuditStore {
            cluster,
            release,
            signer: None,
        }
    }

    /// Signs every entry appended from now on with `signer`.
    #[must_use]
    pub fn with_signer(mut self, signer: Arc<dyn Signer>) -> ClusterAuditStore {
        self.signer = Some(signer);
        self
    }

    /// The name of entry `seq`'s ConfigMap.
    pub fn object_name(&self, seq: u64) -> String {
        format!("slipway-audit-{}-{seq}", self.release.name)
    }

    fn location(&self) -> String {
        format!(
            "ConfigMaps `{}={}` in namespace `{}`",
            crate::AUDIT_LABEL,
            self.release.name,
            self.release.namespace
        )
    }

    fn backend(&self, operation: &'static str) -> impl FnOnce(crate::Error) -> Error + '_ {
        move |err| Error::Backend {
            location: self.location(),
            operation: operation.to_owned(),
            message: err.to_string(),
        }
    }

    fn unreadable(&self, name: &str, detail: String) -> Damage {
        Damage {
            kind: DamageKind::Unreadable,
            location: format!("ConfigMap `{}/{name}`", self.release.namespace),
            detail,
            repair: format!(
                "audit ConfigMaps are immutable, so this one was deleted and re-created by hand; inspect it with `kubectl -n {} get configmap {name} -o yaml` and restore the trail from a backup",
                self.release.namespace
            ),
        }
    }
}

#[async_trait::async_trait]
impl AuditStore for ClusterAuditStore {
    async fn append(&self, at: Timestamp, event: Event) -> Result<Entry, Error> {
        let mut attempts = 0;
        loop {
            let trail = self.read().await?;
            if let Some(damage) = trail.damage.into_iter().next() {
                let mut err = damage.into_error();
                if let Error::Damaged { detail, .. } = &mut err {
                    *detail = format!("refusing to append: {detail}");
                }
                return Err(err);
            }
            slipway_audit_log::check_sequence(&self.location(), &trail.entries)?;
            let entry = Entry::next_signed(
                trail.entries.last(),
                at,
                event.clone(),
                self.signer.as_deref(),
            )?;
            let object = AuditObject {
                name: self.object_name(entry.seq),
                entry: serde_json::to_string(&entry).map_err(|err| Error::Backend {
                    location: self.location(),
                    operation: format!("encode entry {}", entry.seq),
                    message: err.to_string(),
                })?,
            };
            let created = self
                .cluster
                .create_audit_object(&self.release.namespace, &self.release.name, &object)
                .await
                .map_err(self.backend("append"))?;
            match created {
                AuditCreate::Created => return Ok(entry),
                AuditCreate::NameTaken if attempts < APPEND_RETRIES => attempts += 1,
                AuditCreate::NameTaken => {
                    return Err(Error::Backend {
                        location: self.location(),
                        operation: format!("append entry {}", entry.seq),
                        message: format!(
                            "another runner appended first {} times in a row\n\nhint: something is appending in a loop; check `kubectl -n {} get configmaps -l {}={}`",
                            APPEND_RETRIES + 1,
                            self.release.namespace,
                            crate::AUDIT_LABEL,
                            self.release.name
                        ),
                    });
                }
            }
        }
    }

    /// The trail is listed whole (the API has no cheaper way to find the newest object).
    async fn head(&self) -> Result<Option<Head>, Error> {
        Ok(self.read().await?.entries.last().map(Entry::head))
    }

    async fn read(&self) -> Result<Trail, Error> {
        let objects = self
            .cluster
            .audit_objects(&self.release.namespace, &self.release.name)
            .await
            .map_err(self.backend("list"))?;
        let mut trail = Trail::default();
        for object in objects {
            match serde_json::from_str::<Entry>(&object.entry) {
                Err(err) => trail
                    .damage
                    .push(self.unreadable(&object.name, format!("not a valid entry ({err})"))),
                Ok(entry) if object.name != self.object_name(entry.seq) => {
                    trail.damage.push(self.unreadable(
                        &object.name,
                        format!(
                            "holds entry {} but its name says otherwise: it was copied or renamed",
                            entry.seq
                        ),
                    ));
                }
                Ok(entry) if entry.event.release() != &self.release => {
                    trail.damage.push(self.unreadable(
                        &object.name,
                        format!(
                            "holds an entry of release `{}`, not `{}`",
                            entry.event.release(),
                            self.release
                        ),
                    ));
                }
                Ok(entry) => trail.entries.push(entry),
            }
        }
        trail.entries.sort_by_key(|entry| entry.seq);
        Ok(trail)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use slipway_audit_log::{verify, verify_signatures};
    use slipway_core::SimClock;

    use super::*;
    use crate::MemoryCluster;

    fn release() -> ReleaseId {
        ReleaseId::parse("ml/iris").expect("release id")
    }

    fn decision(detail: &str) -> Event {
        Event::Decision {
            release: release(),
            stage: "analysis".into(),
            verdict: "pass".into(),
            detail: detail.into(),
        }
    }

    fn cluster() -> Arc<MemoryCluster> {
        let start = "2026-11-22T10:00:00Z".parse().expect("timestamp");
        Arc::new(MemoryCluster::new(Arc::new(SimClock::starting_at(start))))
    }

    #[tokio::test]
    async fn two_runners_share_one_signed_chain() {
        let cluster = cluster();
        let key = Arc::new(slipway_attest::EcdsaP256Key::generate());
        let first = ClusterAuditStore::new(cluster.clone(), release()).with_signer(key.clone());
        let second = ClusterAuditStore::new(cluster.clone(), release()).with_signer(key.clone());
        let at = Timestamp::from_second(1_700_000_000).expect("ts");
        first.append(at, decision("one")).await.expect("append");
        second.append(at, decision("two")).await.expect("append");
        let third = first.append(at, decision("three")).await.expect("append");
        assert_eq!(
            third.seq, 3,
            "the first runner chains onto the second's entry"
        );
        let entries = second.entries().await.expect("read");
        assert_eq!(entries.len(), 3);
        assert!(verify(&entries, Some(&third.head())).is_empty());
        let public = key.public();
        assert!(verify_signatures(&entries, &[&public]).is_empty());

        let other =
            ClusterAuditStore::new(cluster.clone(), ReleaseId::parse("ml/wine").expect("id"));
        assert!(
            other.entries().await.expect("read").is_empty(),
            "one trail per release"
        );
    }

    #[tokio::test]
    async fn a_taken_name_makes_the_append_chain_onto_the_winner() {
        let cluster = cluster();
        let store = ClusterAuditStore::new(cluster.clone(), release());
        let at = Timestamp::from_second(1_700_000_000).expect("ts");
        // Another runner's entry 1 lands between this store's read and its create.
        let winner = Entry::next(None, at, decision("winner"));
        cluster
            .create_audit_object(
                "ml",
                "iris",
                &AuditObject {
                    name: store.object_name(1),
                    entry: serde_json::to_string(&winner).expect("json"),
                },
            )
            .await
            .expect("create");
        let ours = store.append(at, decision("ours")).await.expect("append");
        assert_eq!((ours.seq, ours.prev.as_str()), (2, winner.hash.as_str()));
        let again = cluster
            .create_audit_object(
                "ml",
                "iris",
                &AuditObject {
                    name: store.object_name(1),
                    entry: "{}".into(),
                },
            )
            .await
            .expect("create");
        assert_eq!(again, AuditCreate::NameTaken, "entries are never replaced");
        assert_eq!(store.entries().await.expect("read")[0], winner);
    }

    #[tokio::test]
    async fn misplaced_and_unreadable_objects_are_damage() {
        let cluster = cluster();
        let store = ClusterAuditStore::new(cluster.clone(), release());
        let at = Timestamp::from_second(1_700_000_000).expect("ts");
        let entry = store.append(at, decision("one")).await.expect("append");
        let copy = AuditObject {
            name: store.object_name(7),
            entry: serde_json::to_string(&entry).expect("json"),
        };
        let garbage = AuditObject {
            name: store.object_name(8),
            entry: "{\"seq\":".into(),
        };
        for object in [copy, garbage] {
            cluster
                .create_audit_object("ml", "iris", &object)
                .await
                .expect("create");
        }
        let trail = store.read().await.expect("read");
        assert_eq!(trail.entries, [entry]);
        let details: Vec<(&str, &str)> = trail
            .damage
            .iter()
            .map(|damage| (damage.location.as_str(), damage.detail.as_str()))
            .collect();
        assert_eq!(details.len(), 2, "{details:?}");
        assert!(details[0].1.contains("name says otherwise"), "{details:?}");
        assert!(details[1].1.starts_with("not a valid entry"), "{details:?}");
        let err = store
            .append(at, decision("two"))
            .await
            .expect_err("refused");
        assert!(err.to_string().contains("refusing to append"), "{err}");
    }

    #[tokio::test]
    async fn append_refuses_a_sequence_gap() {
        let cluster = cluster();
        let store = ClusterAuditStore::new(cluster.clone(), release());
        let at = Timestamp::from_second(1_700_000_000).expect("ts");
        let first = store.append(at, decision("one")).await.expect("append");
        // An entry far ahead, correctly named and chained onto entry 999,999.
        let far = Entry::next(
            Some(&Entry {
                seq: 999_999,
                ..first
            }),
            at,
            decision("far"),
        );
        cluster
            .create_audit_object(
                "ml",
                "iris",
                &AuditObject {
                    name: store.object_name(far.seq),
                    entry: serde_json::to_string(&far).expect("json"),
                },
            )
            .await
            .expect("create");
        let err = store
            .append(at, decision("two"))
            .await
            .expect_err("a gap is refused");
        assert!(
            matches!(
                err,
                Error::SequenceGap {
                    expected: 2,
                    found: 1_000_000,
                    ..
                }
            ),
            "{err:?}"
        );
        assert_eq!(
            store.entries().await.expect("read").len(),
            2,
            "nothing appended"
        );
    }
}
