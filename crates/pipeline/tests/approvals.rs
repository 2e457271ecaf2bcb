//! Authenticated approvals over the in-memory world, outside the demo's trust: a release paused
//! at the approval gate is promoted only by an approval whose identity came from GitHub's
//! environment reviews or a signed statement, recorded in a signed, linked trail entry, bound
//! to the paused revision, digest and model, unexpired, and not by the person who started it.
//! Each source is tested for: allowed, self-approval refused, wrong digest or revision refused,
//! expired refused, and a forged entry outside the chain ignored.

use std::sync::Arc;
use std::time::Duration;

use slipway_attest::approval::{ApprovalStatement, sign_approval};
use slipway_attest::{EcdsaP256Key, Signer, Verifier};
use slipway_audit_log::{ApprovalRecord, ApprovalSource, AuditStore, Entry, Event, FileAuditStore};
use slipway_cli::config::Settings;
use slipway_cli::release::release_spec;
use slipway_core::{Clock, ReleaseRecord};
use slipway_demo::scenario::{self, World};
use slipway_github::{Review, ReviewState, RunRef};
use slipway_k8s_rollout::Cluster as _;
use slipway_pipeline::{
    ApprovalGiven, ApprovalTrust, ApproveError, ReleaseSpec, Resume, RunOutcome, StageEvent,
};

/// The approver whose key `[policy.approvals] keys` names.
const REVIEWER: &str = "maria.chen";

struct Paused {
    spec: ReleaseSpec,
    world: World,
    /// The world's simulated clock (`sleep` advances it).
    clock: Arc<dyn Clock>,
    maria: Arc<EcdsaP256Key>,
    record: ReleaseRecord,
    _dir: tempfile::TempDir,
    trail: std::path::PathBuf,
}

/// The `unapproved` world with a trail signed by the deploy key and the trust of a real run
/// (`demo: false`), run until it pauses.
async fn paused() -> Paused {
    let mut spec = release_spec(&Settings::default(), None, None).expect("defaults");
    // Started by GitHub Actions run 42 of acme/iris (the run `github` reads reviews of).
    spec.ci_run = Some("acme/iris#42".to_owned());
    let dir = tempfile::tempdir().expect("tempdir");
    let trail = dir.path().join("audit.jsonl");
    let mut world = scenario::build("unapproved", &spec)
        .await
        .expect("scenario");
    let deploy_key = world.backends.signer.clone().expect("the world signs");
    world.backends.audit = Arc::new(FileAuditStore::new(&trail).with_signer(deploy_key));
    let maria = Arc::new(EcdsaP256Key::generate());
    world.backends.approvals = ApprovalTrust {
        demo: false,
        keys: vec![(
            REVIEWER.to_owned(),
            Arc::new(maria.public()) as Arc<dyn Verifier>,
        )],
    };
    let clock = world.backends.clock.clone();
    let report = slipway_pipeline::run(&spec, &world.backends, &mut |_: &StageEvent| {}).await;
    assert_eq!(report.outcome, RunOutcome::Paused, "{}", report.reason);
    let record = world
        .cluster
        .release_history(&spec.release)
        .await
        .expect("history")
        .pop()
        .expect("paused record");
    Paused {
        spec,
        world,
        clock,
        maria,
        record,
        _dir: dir,
        trail,
    }
}

impl Paused {
    async fn promote(&self) -> slipway_pipeline::RunReport {
        slipway_pipeline::resume(
            &self.spec,
            &self.world.backends,
            &mut |_: &StageEvent| {},
            Resume::Promote,
        )
        .await
    }

    async fn signed(&self, key: Arc<EcdsaP256Key>) -> Result<Vec<ApprovalRecord>, ApproveError> {
        slipway_pipeline::approve_with(
            &self.spec,
            &self.world.backends,
            ApprovalGiven::Signed {
                key,
                reason: "dashboards reviewed".to_owned(),
                expires_in: None,
            },
        )
        .await
    }

    async fn github(&self, reviews: Vec<Review>) -> Result<Vec<ApprovalRecord>, ApproveError> {
        slipway_pipeline::approve_with(
            &self.spec,
            &self.world.backends,
            ApprovalGiven::GitHub {
                run: RunRef {
                    repository: "acme/iris".to_owned(),
                    run_id: 42,
                },
                reviews,
            },
        )
        .await
    }

    /// Appends `record` through the store: a linked entry signed by the deploy key, as only
    /// the holder of that key can write one.
    async fn append_signed(&self, record: ApprovalRecord) {
        self.world
            .backends
            .audit
            .append(record.at, Event::Approval(record))
            .await
            .expect("append");
    }

    /// Appends `entry` to the file as a raw line, past the store: what someone with write
    /// access to the trail but no key can do.
    fn forge(&self, entry: &Entry) {
        use std::io::Write as _;
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&self.trail)
            .expect("trail");
        writeln!(file, "{}", serde_json::to_string(entry).expect("json")).expect("write");
    }

    async fn last_entry(&self) -> Entry {
        self.world
            .backends
            .audit
            .entries()
            .await
            .expect("entries")
            .pop()
            .expect("an entry")
    }

    fn github_record(&self, login: &str) -> ApprovalRecord {
        let now = self.clock.now();
        ApprovalRecord {
            release: self.spec.release.clone(),
            approver: login.to_owned(),
            at: now,
            reason: "approved in GitHub environment `production`".to_owned(),
            digest: self.record.digest.clone(),
            model: self.record.model.clone(),
            revision: Some(self.record.revision),
            expires: Some(now + jiff::SignedDuration::from_hours(24)),
            source: ApprovalSource::GitHub {
                repository: "acme/iris".to_owned(),
                run_id: 42,
                environment: "production".to_owned(),
            },
        }
    }

    fn statement(&self) -> ApprovalStatement {
        let now = self.clock.now();
        ApprovalStatement {
            release: self.spec.release.clone(),
            revision: self.record.revision,
            digest: self.record.digest.to_string(),
            model: self.record.model.clone(),
            reason: "dashboards reviewed".to_owned(),
            at: now,
            expires: now + jiff::SignedDuration::from_hours(24),
        }
    }

    /// A record carrying `statement` signed by `key`, as `approve --key` writes it.
    fn signed_record(&self, key: &EcdsaP256Key, statement: &ApprovalStatement) -> ApprovalRecord {
        ApprovalRecord {
            release: statement.release.clone(),
            approver: REVIEWER.to_owned(),
            at: statement.at,
            reason: statement.reason.clone(),
            digest: self.record.digest.clone(),
            model: statement.model.clone(),
            revision: Some(self.record.revision),
            expires: Some(statement.expires),
            source: ApprovalSource::Signed {
                envelope: sign_approval(key, statement).expect("sign"),
            },
        }
    }
}

fn review(login: &str, state: ReviewState, environments: &[&str]) -> Review {
    Review {
        login: login.to_owned(),
        state,
        environments: environments.iter().map(|name| (*name).to_owned()).collect(),
        comment: String::new(),
    }
}

#[track_caller]
fn assert_stays_paused(report: &slipway_pipeline::RunReport, fragment: &str) {
    assert_eq!(report.outcome, RunOutcome::Rejected, "{}", report.reason);
    assert!(report.reason.contains("stays paused"), "{}", report.reason);
    let gate = report.gates.render_text();
    assert!(gate.contains(fragment), "{fragment:?} not in:\n{gate}");
}

// --- Signed approvals -------------------------------------------------------------------------

#[tokio::test]
async fn a_signed_approval_by_a_named_key_promotes() {
    let paused = paused().await;
    let records = paused.signed(paused.maria.clone()).await.expect("approved");
    assert_eq!(records.len(), 1);
    assert_eq!(
        records[0].approver, REVIEWER,
        "the key's owner, not a claim"
    );
    assert_eq!(records[0].revision, Some(paused.record.revision));
    let report = paused.promote().await;
    assert_eq!(report.outcome, RunOutcome::Promoted, "{}", report.reason);
    assert!(
        report.gates.render_text().contains("1 of 1: maria.chen"),
        "{}",
        report.gates.render_text()
    );
}

#[tokio::test]
async fn a_key_nobody_is_named_for_is_refused_and_the_actor_cannot_approve_with_their_own() {
    let paused = paused().await;
    let stranger = Arc::new(EcdsaP256Key::generate());
    let refused = paused.signed(stranger).await;
    assert!(
        matches!(&refused, Err(ApproveError::Refused(message)) if message.contains("not an approver key")),
        "{refused:?}"
    );

    // The actor's own key, named after the actor: self-approval, refused when given…
    let mut own = paused;
    let actor_key = Arc::new(EcdsaP256Key::generate());
    own.world.backends.approvals.keys.push((
        own.spec.actor.clone(),
        Arc::new(actor_key.public()) as Arc<dyn Verifier>,
    ));
    let refused = own.signed(actor_key.clone()).await;
    assert!(
        matches!(&refused, Err(ApproveError::Refused(message)) if message.contains("cannot approve it")),
        "{refused:?}"
    );
    // …and not counted when written into the trail anyway.
    own.append_signed(own.signed_record(&actor_key, &own.statement()))
        .await;
    assert_stays_paused(
        &own.promote().await,
        "started this release and cannot approve it",
    );
}

#[tokio::test]
async fn a_signed_approval_of_another_revision_or_digest_is_refused() {
    let paused = paused().await;
    let earlier = ApprovalStatement {
        revision: paused.record.revision - 1,
        ..paused.statement()
    };
    paused
        .append_signed(paused.signed_record(&paused.maria, &earlier))
        .await;
    let report = paused.promote().await;
    assert_stays_paused(
        &report,
        &format!(
            "approved revision {}, not {}",
            paused.record.revision - 1,
            paused.record.revision
        ),
    );

    let other_digest = ApprovalStatement {
        digest: "sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae"
            .to_owned(),
        ..paused.statement()
    };
    paused
        .append_signed(paused.signed_record(&paused.maria, &other_digest))
        .await;
    assert_stays_paused(&paused.promote().await, "approved sha256:2c26b46b68ff");
}

#[tokio::test]
async fn an_expired_signed_approval_is_refused() {
    let paused = paused().await;
    slipway_pipeline::approve_with(
        &paused.spec,
        &paused.world.backends,
        ApprovalGiven::Signed {
            key: paused.maria.clone(),
            reason: "dashboards reviewed".to_owned(),
            expires_in: Some(jiff::SignedDuration::from_mins(30)),
        },
    )
    .await
    .expect("approved");
    paused.clock.sleep(Duration::from_secs(31 * 60)).await;
    assert_stays_paused(&paused.promote().await, "maria.chen expired at");
}

#[tokio::test]
async fn a_signed_approval_replayed_outside_the_chain_is_ignored() {
    let paused = paused().await;
    // A valid signed approval of this very revision, entry signed by the deploy key, but
    // copied from another trail: it does not link to this one.
    let other = slipway_audit_log::MemoryAuditStore::new()
        .with_signer(paused.world.backends.signer.clone().expect("deploy key"));
    let record = paused.signed_record(&paused.maria, &paused.statement());
    let replayed = other
        .append(record.at, Event::Approval(record))
        .await
        .expect("append");
    paused.forge(&replayed);
    assert_stays_paused(
        &paused.promote().await,
        "is not a link of the trail's hash chain",
    );
}

// --- GitHub environment reviews ---------------------------------------------------------------

#[tokio::test]
async fn a_github_review_by_another_login_promotes() {
    let paused = paused().await;
    let records = paused
        .github(vec![
            review("octocat", ReviewState::Approved, &["staging"]),
            review(REVIEWER, ReviewState::Approved, &["production"]),
        ])
        .await
        .expect("approved");
    assert_eq!(records.len(), 1, "the staging review is not this release's");
    assert_eq!(records[0].approver, REVIEWER);
    let report = paused.promote().await;
    assert_eq!(report.outcome, RunOutcome::Promoted, "{}", report.reason);
}

/// The reviews of another run (an older release's, another repository's) do not approve the
/// revision that run 42 started, even by an allowed reviewer.
#[tokio::test]
async fn reviews_of_another_run_approve_nothing() {
    let paused = paused().await;
    for (repository, run_id) in [("acme/iris", 41), ("someone/public-repo", 42)] {
        let refused = slipway_pipeline::approve_with(
            &paused.spec,
            &paused.world.backends,
            ApprovalGiven::GitHub {
                run: RunRef {
                    repository: repository.to_owned(),
                    run_id,
                },
                reviews: vec![review(REVIEWER, ReviewState::Approved, &["production"])],
            },
        )
        .await
        .expect_err("another run's reviews");
        assert!(
            refused.to_string().contains("acme/iris#42 started"),
            "{refused}"
        );
    }
    assert_stays_paused(&paused.promote().await, "");
}

#[tokio::test]
async fn rejected_other_environment_and_empty_reviews_approve_nothing() {
    let paused = paused().await;
    let cases = [
        (
            vec![
                review("sam", ReviewState::Approved, &["production"]),
                Review {
                    comment: "dashboards incomplete".to_owned(),
                    ..review(REVIEWER, ReviewState::Rejected, &["production"])
                },
            ],
            "was rejected: maria.chen rejected production: dashboards incomplete",
        ),
        (
            vec![review("octocat", ReviewState::Approved, &["staging"])],
            "no approval of environment `production` (reviews of other environments: octocat approved staging)",
        ),
        (Vec::new(), "no approval of environment `production`"),
    ];
    for (reviews, fragment) in cases {
        let refused = paused.github(reviews).await;
        assert!(
            matches!(&refused, Err(ApproveError::Refused(message)) if message.contains(fragment)),
            "{fragment}: {refused:?}"
        );
    }
    assert_stays_paused(&paused.promote().await, "0 of 1");
}

#[tokio::test]
async fn the_login_that_started_the_run_cannot_approve_it_on_github() {
    let paused = paused().await;
    let actor = paused.spec.actor.clone();
    let refused = paused
        .github(vec![review(&actor, ReviewState::Approved, &["production"])])
        .await;
    assert!(
        matches!(&refused, Err(ApproveError::Refused(message)) if message.contains("cannot approve it")),
        "{refused:?}"
    );
    paused.append_signed(paused.github_record(&actor)).await;
    assert_stays_paused(
        &paused.promote().await,
        "started this release and cannot approve it",
    );
}

#[tokio::test]
async fn a_github_approval_of_another_revision_or_digest_is_refused() {
    let paused = paused().await;
    paused
        .append_signed(ApprovalRecord {
            revision: Some(paused.record.revision - 1),
            ..paused.github_record(REVIEWER)
        })
        .await;
    assert_stays_paused(
        &paused.promote().await,
        &format!("approved revision {}", paused.record.revision - 1),
    );
    paused
        .append_signed(ApprovalRecord {
            digest: slipway_core::Digest::parse(
                "sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae",
            )
            .expect("digest"),
            ..paused.github_record(REVIEWER)
        })
        .await;
    assert_stays_paused(&paused.promote().await, "approved sha256:2c26b46b68ff");
}

#[tokio::test]
async fn an_expired_github_approval_is_refused() {
    let paused = paused().await;
    paused
        .github(vec![review(
            REVIEWER,
            ReviewState::Approved,
            &["production"],
        )])
        .await
        .expect("approved");
    // `policy.approvals.valid_for` defaults to 24 hours.
    paused.clock.sleep(Duration::from_secs(24 * 3600 + 1)).await;
    assert_stays_paused(&paused.promote().await, "maria.chen expired at");
}

#[tokio::test]
async fn forged_github_approvals_outside_the_signed_chain_are_ignored() {
    let paused = paused().await;
    // Linked and hashed correctly, but unsigned: whoever can write the file can do this.
    let last = paused.last_entry().await;
    let unsigned = Entry::next(
        Some(&last),
        paused.clock.now(),
        Event::Approval(paused.github_record(REVIEWER)),
    );
    paused.forge(&unsigned);
    assert_stays_paused(&paused.promote().await, "unsigned");

    // Linked and signed, by a key of the forger's own: not a trusted key.
    let last = paused.last_entry().await;
    let mut forged = Entry::next(
        Some(&last),
        paused.clock.now(),
        Event::Approval(paused.github_record(REVIEWER)),
    );
    let forger = EcdsaP256Key::generate();
    forged.sign(&forger).expect("sign");
    assert_ne!(forger.key_id(), paused.maria.key_id());
    paused.forge(&forged);
    assert_stays_paused(&paused.promote().await, "not among the");
}

/// `status` shows only the approvals the gate counts: a forged line is not listed, a signed
/// approval by a named key is.
#[tokio::test]
async fn status_lists_only_approvals_the_gate_counts() {
    let paused = paused().await;
    let last = paused.last_entry().await;
    let unsigned = Entry::next(
        Some(&last),
        paused.clock.now(),
        Event::Approval(paused.github_record(REVIEWER)),
    );
    paused.forge(&unsigned);
    let shown = slipway_pipeline::status(&paused.spec, &paused.world.backends)
        .await
        .expect("status");
    assert!(shown.approvals.is_empty(), "{:?}", shown.approvals);

    let paused = self::paused().await;
    paused.signed(paused.maria.clone()).await.expect("approved");
    let shown = slipway_pipeline::status(&paused.spec, &paused.world.backends)
        .await
        .expect("status");
    assert_eq!(
        shown
            .approvals
            .iter()
            .map(|approval| approval.approver.as_str())
            .collect::<Vec<_>>(),
        [REVIEWER]
    );
}

#[tokio::test]
async fn a_name_on_the_command_line_approves_nothing_outside_the_demo() {
    let paused = paused().await;
    let refused =
        slipway_pipeline::approve(&paused.spec, &paused.world.backends, REVIEWER, "lgtm").await;
    assert!(
        matches!(&refused, Err(ApproveError::Refused(message)) if message.contains("only in the embedded demo world")),
        "{refused:?}"
    );
    // Written into the signed trail anyway (an old trail, a bug): still not counted.
    paused
        .append_signed(ApprovalRecord {
            source: ApprovalSource::Named,
            ..paused.github_record(REVIEWER)
        })
        .await;
    assert_stays_paused(&paused.promote().await, "named on the command line");
}
