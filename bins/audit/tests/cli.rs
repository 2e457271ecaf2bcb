//! `slipway-audit` end to end on real trail files: `verify` finds a modified record, a deleted
//! record, a truncated last write and an unsigned entry (exit 1); `log --approvals`; `report`
//! in Markdown, JSON and self-contained HTML; `drift` on the embedded memory world.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use jiff::Timestamp;
use slipway_attest::EcdsaP256Key;
use slipway_audit_log::{ApprovalRecord, AuditStore, Event, FileAuditStore};
use slipway_core::{Digest, ImageRef, ModelVersion, Outcome, ReleaseId, ReleaseRecord, Strategy};

struct Output {
    code: i32,
    stdout: String,
    stderr: String,
}

fn audit(args: &[&str], dir: &Path) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_slipway-audit"));
    command.args(args).current_dir(dir);
    for (key, _) in std::env::vars() {
        if key.starts_with("SLIPWAY_") {
            command.env_remove(key);
        }
    }
    let output = command.output().expect("run slipway-audit");
    Output {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

fn snapshot(output: &Output, dir: &Path) -> String {
    let text = format!(
        "exit code: {}\n----- stdout -----\n{}----- stderr -----\n{}",
        output.code, output.stdout, output.stderr
    );
    redact(&text, dir)
}

/// Hides the temp directory and 64-hex hashes (the chain's, not the digests, which are fixed).
fn redact(text: &str, dir: &Path) -> String {
    let text = text.replace(&dir.display().to_string(), "[dir]");
    let mut out = String::with_capacity(text.len());
    let bytes = text.as_bytes();
    let mut idx = 0;
    while idx < bytes.len() {
        let run = bytes[idx..]
            .iter()
            .take_while(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
            .count();
        let boundary = idx == 0 || !bytes[idx - 1].is_ascii_alphanumeric();
        if run == 64 && boundary && !text[..idx].ends_with("sha256:") {
            out.push_str("[hash]");
            idx += run;
        } else {
            let ch = text[idx..].chars().next().unwrap_or(' ');
            out.push(ch);
            idx += ch.len_utf8();
        }
    }
    out
}

fn key() -> Arc<EcdsaP256Key> {
    Arc::new(EcdsaP256Key::from_secret_bytes("test deploy key", &[42; 32]).expect("key"))
}

fn at(text: &str) -> Timestamp {
    text.parse().expect("timestamp")
}

fn digest(fill: char) -> Digest {
    Digest::parse(&format!("sha256:{}", fill.to_string().repeat(64))).expect("digest")
}

fn record(
    release: &str,
    revision: u64,
    fill: char,
    outcome: Outcome,
    when: &str,
    reason: &str,
) -> ReleaseRecord {
    let release = ReleaseId::parse(release).expect("release");
    ReleaseRecord {
        trail_head: None,
        ci_run: None,
        source_time: None,
        creates: Vec::new(),
        alias_pending: None,
        image: ImageRef::parse(&format!("ghcr.io/acme/{}:1.{revision}", release.name))
            .expect("image")
            .with_digest(digest(fill)),
        release,
        revision,
        digest: digest(fill),
        model: ModelVersion {
            name: "iris".into(),
            version: revision,
        },
        strategy: Strategy::Canary,
        outcome,
        actor: "github-actions".into(),
        at: at(when),
        reason: Some(reason.into()),
    }
}

/// Five weeks of two releases: promotions, an abort, a rollback, approvals and decisions.
fn history() -> Vec<Event> {
    let iris = ReleaseId::parse("ml/iris").expect("release");
    let approval = |revision: u64, fill: char, when: &str, reason: &str| {
        Event::Approval(ApprovalRecord {
            release: iris.clone(),
            approver: "maria.chen".into(),
            at: at(when),
            reason: reason.into(),
            digest: digest(fill),
            model: ModelVersion {
                name: "iris".into(),
                version: revision,
            },
            revision: None,
            expires: None,
            source: slipway_audit_log::ApprovalSource::Named,
        })
    };
    let decision = |stage: &str, verdict: &str, detail: &str| Event::Decision {
        release: iris.clone(),
        stage: stage.into(),
        verdict: verdict.into(),
        detail: detail.into(),
    };
    vec![
        approval(1, 'a', "2026-10-05T09:00:00Z", "model card reviewed"),
        Event::Release(record(
            "ml/iris",
            1,
            'a',
            Outcome::Promoted,
            "2026-10-05T10:00:00Z",
            "promoted after analysis and approval",
        )),
        decision("analysis", "fail", "error rate 6.1% > 1% at step 10%"),
        Event::Release(record(
            "ml/iris",
            2,
            'b',
            Outcome::Aborted,
            "2026-10-13T10:00:00Z",
            "analysis failed at 10%",
        )),
        approval(
            3,
            'c',
            "2026-10-14T09:00:00Z",
            "eval report <b>reviewed</b> | ok",
        ),
        Event::Release(record(
            "ml/iris",
            3,
            'c',
            Outcome::Promoted,
            "2026-10-14T10:00:00Z",
            "promoted after analysis and approval",
        )),
        Event::Release(record(
            "ml/wine",
            1,
            '9',
            Outcome::Promoted,
            "2026-10-16T10:00:00Z",
            "first release",
        )),
        Event::Release(record(
            "ml/iris",
            4,
            'd',
            Outcome::Promoted,
            "2026-10-20T10:00:00Z",
            "promoted after analysis and approval",
        )),
        decision("watch", "fail", "p99 latency 2.4 s > 2 s for 5 minutes"),
        Event::Release(record(
            "ml/iris",
            5,
            'c',
            Outcome::RolledBack,
            "2026-10-20T10:45:00Z",
            "watch: p99 latency <script>alert(1)</script>",
        )),
        Event::Release(record(
            "ml/iris",
            6,
            'e',
            Outcome::Promoted,
            "2026-11-03T10:00:00Z",
            "promoted after analysis and approval",
        )),
    ]
}

/// Writes the history to `dir/trail.jsonl`, signed with the test key, and its public key to
/// `dir/cosign.pub`.
async fn signed_trail(dir: &Path) -> PathBuf {
    let path = dir.join("trail.jsonl");
    let key = key();
    let store = FileAuditStore::new(&path).with_signer(key.clone());
    for event in history() {
        let when = match &event {
            Event::Release(record) => record.at,
            Event::Approval(approval) => approval.at,
            // Decisions come just before the record they led to.
            Event::Decision { stage, .. } if stage == "watch" => at("2026-10-20T10:44:00Z"),
            Event::Decision { .. } => at("2026-10-13T09:59:00Z"),
        };
        store.append(when, event).await.expect("append");
    }
    std::fs::write(dir.join("cosign.pub"), key.public().to_pem().expect("pem")).expect("write key");
    path
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .expect("read trail")
        .lines()
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn verify_an_intact_signed_trail() {
    let dir = tempfile::tempdir().expect("tempdir");
    signed_trail(dir.path()).await;
    let output = audit(
        &[
            "verify",
            "--no-config",
            "--trail",
            "trail.jsonl",
            "--key",
            "cosign.pub",
        ],
        dir.path(),
    );
    assert_eq!(output.code, 0, "{}", output.stderr);
    insta::assert_snapshot!(snapshot(&output, dir.path()));
}

#[tokio::test]
async fn without_a_trusted_key_only_the_demo_calls_a_trail_intact() {
    let dir = tempfile::tempdir().expect("tempdir");
    signed_trail(dir.path()).await;
    let unproven = audit(
        &["verify", "--no-config", "--trail", "trail.jsonl"],
        dir.path(),
    );
    assert_eq!(unproven.code, 1, "{}", unproven.stderr);
    assert!(
        unproven.stdout.contains("UNPROVEN: 11 entries")
            && unproven.stdout.contains("hint: pass `--key cosign.pub`"),
        "{}",
        unproven.stdout
    );
    let demo = audit(
        &["verify", "--no-config", "--demo", "--trail", "trail.jsonl"],
        dir.path(),
    );
    assert_eq!(demo.code, 0, "{}{}", demo.stdout, demo.stderr);
    assert!(
        demo.stdout.contains("intact: 11 entries"),
        "{}",
        demo.stdout
    );
}

#[tokio::test]
async fn verify_finds_a_modified_record() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = signed_trail(dir.path()).await;
    let mut trail = lines(&path);
    // Someone turns the abort of revision 2 into a promotion.
    trail[3] = trail[3].replace("\"outcome\":\"aborted\"", "\"outcome\":\"promoted\"");
    std::fs::write(&path, trail.join("\n") + "\n").expect("write");
    let output = audit(
        &[
            "verify",
            "--no-config",
            "--trail",
            "trail.jsonl",
            "--key",
            "cosign.pub",
        ],
        dir.path(),
    );
    assert_eq!(output.code, 1, "{}", output.stderr);
    insta::assert_snapshot!(snapshot(&output, dir.path()));
}

#[tokio::test]
async fn verify_finds_a_deleted_record() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = signed_trail(dir.path()).await;
    let mut trail = lines(&path);
    // Someone removes the rollback.
    trail.remove(9);
    std::fs::write(&path, trail.join("\n") + "\n").expect("write");
    let output = audit(
        &["verify", "--no-config", "--trail", "trail.jsonl"],
        dir.path(),
    );
    assert_eq!(output.code, 1, "{}", output.stderr);
    insta::assert_snapshot!(snapshot(&output, dir.path()));
}

#[tokio::test]
async fn verify_finds_a_truncated_last_write_and_names_the_repair() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = signed_trail(dir.path()).await;
    let bytes = std::fs::read(&path).expect("read");
    let last_line = bytes[..bytes.len() - 1]
        .iter()
        .rposition(|&b| b == b'\n')
        .expect("several lines")
        + 1;
    // The process died half-way through writing the last entry.
    std::fs::write(&path, &bytes[..last_line + (bytes.len() - last_line) / 2]).expect("write");
    let output = audit(
        &["verify", "--no-config", "--trail", "trail.jsonl"],
        dir.path(),
    );
    assert_eq!(output.code, 1, "{}", output.stderr);
    assert!(
        output.stdout.contains(&format!("truncate -s {last_line} ")),
        "{}",
        output.stdout
    );
    insta::assert_snapshot!(snapshot(&output, dir.path()));

    // `log` refuses the damaged trail with the same hint (exit 2: it cannot answer).
    let log = audit(
        &["log", "--no-config", "--trail", "trail.jsonl"],
        dir.path(),
    );
    assert_eq!(log.code, 2);
    assert!(
        log.stderr.contains("hint: the last write was cut short"),
        "{}",
        log.stderr
    );
}

#[tokio::test]
async fn verify_with_a_key_reports_unsigned_entries() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = signed_trail(dir.path()).await;
    // A runner without the deploy key appended one.
    FileAuditStore::new(&path)
        .append(
            at("2026-11-04T10:00:00Z"),
            Event::Decision {
                release: ReleaseId::parse("ml/iris").expect("release"),
                stage: "override".into(),
                verdict: "override".into(),
                detail: "skipped the scan gate".into(),
            },
        )
        .await
        .expect("append");
    let output = audit(
        &[
            "verify",
            "--no-config",
            "--trail",
            "trail.jsonl",
            "--key",
            "cosign.pub",
            "--output",
            "json",
        ],
        dir.path(),
    );
    assert_eq!(output.code, 1, "{}", output.stderr);
    let verdict: serde_json::Value = serde_json::from_str(&output.stdout).expect("json");
    assert_eq!(verdict["ok"], false);
    assert_eq!(
        verdict["problems"],
        serde_json::json!([]),
        "the chain itself is intact"
    );
    assert_eq!(verdict["signed_entries"], 11);
    assert_eq!(
        verdict["signature_problems"],
        serde_json::json!([{ "seq": 12, "problem": "unsigned: the entry carries no signature" }])
    );
    // Without a key the same trail is not called intact (outside the demo): the chain holds,
    // but nothing says who wrote it.
    let unchecked = audit(
        &["verify", "--no-config", "--trail", "trail.jsonl"],
        dir.path(),
    );
    assert_eq!(unchecked.code, 1, "{}", unchecked.stdout);
    assert!(
        unchecked
            .stdout
            .contains("11 of 12 entries signed; not checked: outside `--demo`")
            && unchecked.stdout.contains("UNPROVEN: 12 entries"),
        "{}",
        unchecked.stdout
    );
}

#[tokio::test]
async fn log_approvals_lists_only_approvals() {
    let dir = tempfile::tempdir().expect("tempdir");
    signed_trail(dir.path()).await;
    let output = audit(
        &[
            "log",
            "--no-config",
            "--trail",
            "trail.jsonl",
            "--approvals",
        ],
        dir.path(),
    );
    assert_eq!(output.code, 0, "{}", output.stderr);
    assert_eq!(output.stdout.lines().count(), 2);
    insta::assert_snapshot!(snapshot(&output, dir.path()));
    let wine = audit(
        &[
            "log",
            "--no-config",
            "--trail",
            "trail.jsonl",
            "--release",
            "ml/wine",
        ],
        dir.path(),
    );
    assert_eq!(wine.stdout.lines().count(), 1, "{}", wine.stdout);
}

#[tokio::test]
async fn report_writes_markdown_json_and_a_self_contained_html_page() {
    let dir = tempfile::tempdir().expect("tempdir");
    signed_trail(dir.path()).await;
    let output = audit(
        &[
            "report",
            "--no-config",
            "--trail",
            "trail.jsonl",
            "--key",
            "cosign.pub",
            "--html",
            "report.html",
            "--markdown",
            "report.md",
            "--json",
            "report.json",
        ],
        dir.path(),
    );
    assert_eq!(output.code, 0, "{}", output.stderr);
    insta::assert_snapshot!("report_text", snapshot(&output, dir.path()));
    let read = |name: &str| std::fs::read_to_string(dir.path().join(name)).expect("report file");
    insta::assert_snapshot!("report_markdown", redact(&read("report.md"), dir.path()));
    let json: serde_json::Value = serde_json::from_str(&read("report.json")).expect("json");
    insta::assert_json_snapshot!("report_json", json, {
        ".chain.source" => "[dir]/trail.jsonl",
        ".chain.head.hash" => "[hash]",
        ".chain.trusted_keys[]" => "[key id]",
    });

    let html = read("report.html");
    let lower = html.to_lowercase();
    for external in [
        "http://", "https://", "src=", "<link", "<script", "url(", "@import",
    ] {
        assert!(
            !lower.contains(external),
            "the page must be self-contained, found `{external}`"
        );
    }
    assert_eq!(html.matches("<svg ").count(), 2, "two charts");
    assert!(
        html.contains("Revisions per week by outcome") && html.contains("Revisions by outcome")
    );
    for revision in history().iter().filter_map(|event| match event {
        Event::Release(record) => Some(record),
        _ => None,
    }) {
        let row = format!(
            "<td>{}</td><td>{}</td>",
            record_release(revision),
            revision.revision
        );
        assert!(html.contains(&row), "missing release row {row}");
        assert!(
            html.contains(&revision.digest.to_string()),
            "missing digest of r{}",
            revision.revision
        );
    }
    assert!(
        html.contains("watch: p99 latency &lt;script&gt;alert(1)&lt;/script&gt;"),
        "trail text is escaped"
    );
    assert!(html.contains("eval report &lt;b&gt;reviewed&lt;/b&gt;"));
}

fn record_release(record: &ReleaseRecord) -> String {
    record.release.to_string()
}

#[tokio::test]
async fn drift_on_the_memory_world() {
    let dir = tempfile::tempdir().expect("tempdir");
    // The trail the embedded world's history was recorded in: stable runs revision 2.
    let spec =
        slipway_cli::release::release_spec(&slipway_cli::config::Settings::default(), None, None)
            .expect("spec");
    let path = dir.path().join("trail.jsonl");
    let world = slipway_demo::scenario::build_with_audit(
        "happy",
        &spec,
        Arc::new(FileAuditStore::new(&path)),
    )
    .await
    .expect("world");
    // The scenario's image digest and key id follow its seeded content: keep them out of the
    // snapshots.
    let stable = slipway_k8s_rollout::Cluster::deployment(
        world.cluster.as_ref(),
        &spec.release.namespace,
        &spec.release.name,
    )
    .await
    .expect("read")
    .expect("stable");
    let stable_hex = stable
        .spec
        .image
        .rsplit(':')
        .next()
        .expect("digest")
        .to_owned();
    let key_id = world
        .backends
        .trusted_keys
        .first()
        .map(|key| key.key_id())
        .expect("demo key");
    let scrub = |text: String| {
        text.replace(&stable_hex, "[stable]")
            .replace(&stable_hex[..12], "[stable]")
            .replace(&key_id, "[demo key]")
    };
    let clean = audit(
        &["drift", "--no-config", "--demo", "--trail", "trail.jsonl"],
        dir.path(),
    );
    assert_eq!(clean.code, 0, "{}{}", clean.stdout, clean.stderr);
    insta::assert_snapshot!("drift_none", scrub(snapshot(&clean, dir.path())));

    // The trail says revision 3 was promoted, but the cluster never got it.
    let mut promoted = record(
        &spec.release.to_string(),
        3,
        'f',
        Outcome::Promoted,
        "2026-11-22T10:00:00Z",
        "promoted",
    );
    promoted.model.name = spec.model.name.clone();
    FileAuditStore::new(&path)
        .append(promoted.at, Event::Release(promoted))
        .await
        .expect("append");
    let drift = audit(
        &["drift", "--no-config", "--demo", "--trail", "trail.jsonl"],
        dir.path(),
    );
    assert_eq!(drift.code, 1, "{}{}", drift.stdout, drift.stderr);
    assert!(drift.stdout.contains("FAIL  recorded:"), "{}", drift.stdout);
    insta::assert_snapshot!("drift_found", scrub(snapshot(&drift, dir.path())));
}

#[tokio::test]
async fn the_cluster_store_is_read_from_the_configured_cluster() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("slipway.toml"),
        "[audit]\nstore = \"cluster\"\n",
    )
    .expect("config");
    // Real by default: the cluster the trail is read from must be configured.
    let refused = audit(&["verify"], dir.path());
    assert_eq!(refused.code, 2, "{}", refused.stderr);
    assert!(
        refused.stderr.contains("no backends configured"),
        "{}",
        refused.stderr
    );
    std::fs::write(
        dir.path().join("slipway.toml"),
        "[audit]\nstore = \"cluster\"\n\n[backend]\nsimulated = [\"models\", \"registry\", \"cluster\", \"metrics\", \"scanner\"]\n",
    )
    .expect("config");
    let output = audit(&["verify"], dir.path());
    // The embedded memory cluster starts empty in every process; simulated parts are not the
    // demo, so without a trusted key the trail is not called intact.
    assert_eq!(output.code, 1, "{}", output.stderr);
    insta::assert_snapshot!(snapshot(&output, dir.path()), @r"
    exit code: 1
    ----- stdout -----
    signatures: 0 of 0 entries signed; not checked: outside `--demo` a trail is intact only when every entry is signed by a trusted key

    hint: pass `--key cosign.pub` or set `signing.trusted_keys` (the public half of the deploy key)
    truncation: not checked: no record of `ml-serving/iris-classifier` in the release history carries a trail head, and no `--head` was given
    UNPROVEN: 0 entries in ConfigMaps `slipway.dev/audit=iris-classifier` in namespace `ml-serving`
    ----- stderr -----
    ");
}

#[tokio::test]
async fn drift_goes_on_in_a_saved_demo_world() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("world");
    let spec =
        slipway_cli::release::release_spec(&slipway_cli::config::Settings::default(), None, None)
            .expect("spec");
    // What `slipway-deploy run --demo --state world` leaves behind: the world and its trail.
    let trail: Arc<dyn AuditStore> = Arc::new(FileAuditStore::new(
        slipway_demo::persist::trail_path(&state),
    ));
    let world = slipway_demo::persist::open_or_create(
        &state,
        Some("happy"),
        &spec,
        trail.clone(),
        slipway_demo::persist::Hooks::default(),
    )
    .await
    .expect("world");
    let mut backends = world.world.backends.clone();
    backends.audit = trail;
    let report = slipway_pipeline::run(&spec, &backends, &mut |_: &_| {}).await;
    assert_eq!(report.outcome, slipway_pipeline::RunOutcome::Promoted);
    drop(world);

    let state_arg = state.display().to_string();
    let output = audit(
        &["drift", "--no-config", "--demo", "--state", &state_arg],
        dir.path(),
    );
    assert_eq!(output.code, 0, "{}{}", output.stdout, output.stderr);
    assert!(
        output.stdout.contains("revision 3"),
        "the promoted revision of the saved world: {}",
        output.stdout
    );
    // A fresh world (no --state) has never seen revision 3: its stable runs revision 2.
    let fresh = audit(
        &[
            "drift",
            "--no-config",
            "--demo",
            "--trail",
            &slipway_demo::persist::trail_path(&state)
                .display()
                .to_string(),
        ],
        dir.path(),
    );
    assert_eq!(fresh.code, 1, "{}{}", fresh.stdout, fresh.stderr);
}

/// What `slipway-deploy run --demo --state DIR` leaves behind: the trail in the file
/// `DIR/audit.jsonl`, or `on_cluster` in ConfigMaps of the world's own cluster.
async fn promoted_saved_world(state: &Path, on_cluster: bool) -> slipway_pipeline::RunOutcome {
    let spec =
        slipway_cli::release::release_spec(&slipway_cli::config::Settings::default(), None, None)
            .expect("spec");
    let file: Arc<dyn AuditStore> = Arc::new(FileAuditStore::new(
        slipway_demo::persist::trail_path(state),
    ));
    let world = slipway_demo::persist::open_or_create(
        state,
        Some("happy"),
        &spec,
        file.clone(),
        slipway_demo::persist::Hooks::default(),
    )
    .await
    .expect("world");
    let mut backends = world.world.backends.clone();
    backends.audit = if on_cluster {
        Arc::new(slipway_k8s_rollout::ClusterAuditStore::new(
            backends.cluster.clone(),
            spec.release.clone(),
        ))
    } else {
        file
    };
    slipway_pipeline::run(&spec, &backends, &mut |_: &_| {})
        .await
        .outcome
}

#[tokio::test]
async fn verify_catches_a_file_trail_cut_short_without_head() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("world");
    assert_eq!(
        promoted_saved_world(&state, false).await,
        slipway_pipeline::RunOutcome::Promoted
    );
    let state_arg = state.display().to_string();
    let args = ["verify", "--no-config", "--demo", "--state", &state_arg];
    let intact = audit(&args, dir.path());
    assert_eq!(intact.code, 0, "{}{}", intact.stdout, intact.stderr);
    assert!(
        intact.stdout.contains("truncation: checked against head")
            && intact.stdout.contains("in the release history"),
        "{}",
        intact.stdout
    );

    // Someone with write access to the file removes its last two entries.
    let path = slipway_demo::persist::trail_path(&state);
    let text = std::fs::read_to_string(&path).expect("read");
    let lines: Vec<&str> = text.lines().collect();
    let kept = lines[..lines.len() - 2].join("\n") + "\n";
    std::fs::write(&path, kept).expect("cut");
    let cut = audit(&args, dir.path());
    assert_eq!(cut.code, 1, "{}{}", cut.stdout, cut.stderr);
    assert!(cut.stdout.contains("it was truncated"), "{}", cut.stdout);
    assert!(cut.stdout.contains("BROKEN"), "{}", cut.stdout);
}

#[tokio::test]
async fn verify_catches_a_cluster_trail_cut_short_without_head() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("slipway.toml"),
        "[audit]\nstore = \"cluster\"\n",
    )
    .expect("config");
    let state = dir.path().join("world");
    // The seeded approvals sit in the file trail, not in this one: the canary pauses at the
    // approval gate, and the `paused` record carries the head all the same.
    assert_eq!(
        promoted_saved_world(&state, true).await,
        slipway_pipeline::RunOutcome::Paused
    );
    let state_arg = state.display().to_string();
    let args = ["verify", "--demo", "--state", &state_arg];
    let intact = audit(&args, dir.path());
    assert_eq!(intact.code, 0, "{}{}", intact.stdout, intact.stderr);
    assert!(
        intact.stdout.contains("truncation: checked against head")
            && intact.stdout.contains("intact:")
            && intact.stdout.contains("ConfigMaps"),
        "{}",
        intact.stdout
    );

    // Someone with `configmaps delete` removes the trail's last two ConfigMaps.
    let cluster_file = state.join("cluster.json");
    let mut world: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&cluster_file).expect("read")).expect("json");
    let mut removed = 0;
    let trails = find_key(&mut world, "audit")
        .and_then(serde_json::Value::as_array_mut)
        .expect("audit objects");
    for pair in trails {
        let objects = pair[1].as_object_mut().expect("objects by name");
        let mut by_seq: Vec<(u64, String)> = objects
            .keys()
            .map(|name| {
                let seq = name.rsplit('-').next().and_then(|seq| seq.parse().ok());
                (seq.expect("name ends in its seq"), name.clone())
            })
            .collect();
        by_seq.sort();
        for (_, name) in by_seq.iter().rev().take(2) {
            objects.remove(name);
            removed += 1;
        }
    }
    assert_eq!(removed, 2);
    std::fs::write(&cluster_file, serde_json::to_vec(&world).expect("json")).expect("write");
    let cut = audit(&args, dir.path());
    assert_eq!(cut.code, 1, "{}{}", cut.stdout, cut.stderr);
    assert!(cut.stdout.contains("it was truncated"), "{}", cut.stdout);
}

/// The first value under `key`, anywhere in `value`.
fn find_key<'a>(value: &'a mut serde_json::Value, key: &str) -> Option<&'a mut serde_json::Value> {
    match value {
        serde_json::Value::Object(map) => {
            if map.contains_key(key) {
                return map.get_mut(key);
            }
            map.values_mut().find_map(|inner| find_key(inner, key))
        }
        serde_json::Value::Array(items) => items.iter_mut().find_map(|inner| find_key(inner, key)),
        _ => None,
    }
}
