//! Authenticated approvals across processes: a release paused by one `slipway-deploy` process
//! (`--demo unapproved --state DIR`) is approved by another, through each real source, and
//! promoted by a third. The GitHub source reads a scripted API on loopback through
//! `GITHUB_API_URL`; the signed source uses a cosign key whose public half
//! `[policy.approvals] keys` names. A line added to the trail outside the chain approves nothing,
//! and outside `--demo` no flag names an approver.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use slipway_core::Secret;
use slipway_github::testing::{ScriptedGitHub, review_json};

const TOKEN: &str = "ghs_never-printed-4711";
/// Who runs the releases in these tests (`USER`).
const ACTOR: &str = "release-bot";

struct Output {
    code: i32,
    stdout: String,
    stderr: String,
}

fn deploy(args: &[&str], dir: &Path, env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_slipway-deploy"));
    command.args(args).current_dir(dir).env("USER", ACTOR);
    for (key, _) in std::env::vars() {
        if key.starts_with("SLIPWAY_") || key.starts_with("GITHUB_") {
            command.env_remove(key);
        }
    }
    for (key, value) in env {
        command.env(key, value);
    }
    let output = command.output().expect("run slipway-deploy");
    Output {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Runs `args` on the world in `dir/world`.
fn on_world(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut all = args.to_vec();
    all.extend(["--demo", "--state", "world"]);
    deploy(&all, dir, env)
}

/// A world paused at the approval gate (revision 3).
fn paused_world(dir: &Path) {
    let run = deploy(
        &["run", "--demo", "unapproved", "--state", "world"],
        dir,
        &[],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("outcome: paused"), "{}", run.stdout);
}

/// Appends a line to the world's trail past the store: an approval by `who` that does not link
/// to the chain (its `prev` is not the last entry's hash), as anyone with write access can.
fn forge_approval(dir: &Path, who: &str) {
    use std::io::Write as _;
    let path = dir.join("world/audit.jsonl");
    let text = std::fs::read_to_string(&path).expect("trail");
    let last: serde_json::Value =
        serde_json::from_str(text.lines().last().expect("an entry")).expect("entry");
    let paused = text
        .lines()
        .rev()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .find(|entry| entry["event"]["kind"] == "release")
        .expect("the paused record");
    let record = &paused["event"];
    let forged = serde_json::json!({
        "seq": last["seq"].as_u64().expect("seq") + 1,
        "at": last["at"],
        "prev": "1".repeat(64),
        "event": {
            "kind": "approval",
            "release": record["release"],
            "approver": who,
            "at": last["at"],
            "reason": "trust me",
            "digest": record["digest"],
            "model": record["model"],
            "revision": record["revision"],
        },
        "hash": "2".repeat(64),
    });
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .expect("trail");
    writeln!(file, "{forged}").expect("write");
}

#[track_caller]
fn assert_promote_refused(dir: &Path, fragment: &str) {
    let promote = on_world(dir, &["promote"], &[]);
    assert_eq!(promote.code, 1, "{}", promote.stderr);
    assert!(
        promote.stdout.contains("stays paused"),
        "{}",
        promote.stdout
    );
    assert!(
        promote.stderr.contains(fragment),
        "{fragment:?} not in:\n{}",
        promote.stderr
    );
}

#[track_caller]
fn assert_promoted(dir: &Path) {
    let promote = on_world(dir, &["promote"], &[]);
    assert_eq!(promote.code, 0, "{}", promote.stderr);
    assert!(
        promote.stdout.contains("outcome: promoted"),
        "{}",
        promote.stdout
    );
    assert!(promote.stdout.contains("revision: 4"), "{}", promote.stdout);
}

#[test]
fn outside_the_demo_no_flag_names_an_approver() {
    let dir = tempfile::tempdir().expect("tempdir");
    for args in [
        &["approve", "--as", "maria.chen", "--reason", "lgtm"][..],
        &[
            "run",
            "--approve-as",
            "maria.chen",
            "--approve-reason",
            "lgtm",
        ][..],
    ] {
        let output = deploy(args, dir.path(), &[]);
        assert_eq!(output.code, 2, "{}", output.stderr);
        assert!(
            output
                .stderr
                .contains("only the embedded demo world accepts"),
            "{}",
            output.stderr
        );
        assert!(
            output.stderr.contains("GitHub environment") && output.stderr.contains("--key"),
            "the hint names both real sources: {}",
            output.stderr
        );
    }
}

#[test]
fn a_signed_approval_from_another_process_promotes_the_paused_release() {
    let dir = tempfile::tempdir().expect("tempdir");
    let password = Secret::new("approver-passw0rd".to_owned());
    let (_, maria_key, maria_pub) =
        slipway_attest::keyfile::generate_key_pair(&password).expect("maria's key");
    let (_, own_key, own_pub) =
        slipway_attest::keyfile::generate_key_pair(&password).expect("the actor's key");
    std::fs::write(dir.path().join("maria.key"), maria_key).expect("write");
    std::fs::write(dir.path().join("maria.pub"), maria_pub).expect("write");
    std::fs::write(dir.path().join("own.key"), own_key).expect("write");
    std::fs::write(dir.path().join("own.pub"), own_pub).expect("write");
    std::fs::write(
        dir.path().join("slipway.toml"),
        format!(
            "[policy.approvals]\nkeys = {{ \"maria.chen\" = \"maria.pub\", \"{ACTOR}\" = \"own.pub\" }}\n"
        ),
    )
    .expect("config");
    paused_world(dir.path());
    let password_env = [("COSIGN_PASSWORD", "approver-passw0rd")];

    // A forged line naming a reviewer, outside the chain: ignored.
    forge_approval(dir.path(), "maria.chen");
    assert_promote_refused(dir.path(), "is not a link of the trail's hash chain");

    // The actor's own key is self-approval.
    let own = on_world(
        dir.path(),
        &["approve", "--key", "own.key", "--reason", "my own work"],
        &password_env,
    );
    assert_eq!(own.code, 1, "{}", own.stderr);
    assert!(own.stderr.contains("cannot approve it"), "{}", own.stderr);

    // Maria's signed approval, from its own process.
    let approve = on_world(
        dir.path(),
        &[
            "approve",
            "--key",
            "maria.key",
            "--reason",
            "dashboards reviewed",
            "--output",
            "json",
        ],
        &password_env,
    );
    assert_eq!(approve.code, 0, "{}", approve.stderr);
    let document: serde_json::Value = serde_json::from_str(&approve.stdout).expect("json");
    let records = &document["approvals"];
    assert_eq!(records[0]["approver"], "maria.chen", "the key's owner");
    assert_eq!(records[0]["revision"], 3);
    assert_eq!(records[0]["source"]["kind"], "signed");
    assert!(!approve.stderr.contains("approver-passw0rd"));
    assert_promoted(dir.path());
}

#[test]
fn a_github_environment_review_from_the_api_promotes_the_paused_release() {
    let dir = tempfile::tempdir().expect("tempdir");
    let run_path = |id: u32| format!("/repos/acme/iris/actions/runs/{id}/approvals");
    let reviews =
        |items: Vec<serde_json::Value>| (200, serde_json::Value::Array(items).to_string());
    let server = ScriptedGitHub::start(BTreeMap::from([
        (
            run_path(41),
            reviews(vec![review_json(
                "maria.chen",
                "rejected",
                &["production"],
                "dashboards incomplete",
            )]),
        ),
        (
            run_path(43),
            reviews(vec![review_json(
                "octocat",
                "approved",
                &["staging"],
                "Ship it!",
            )]),
        ),
        (run_path(44), reviews(Vec::new())),
        (
            run_path(45),
            reviews(vec![review_json(ACTOR, "approved", &["production"], "")]),
        ),
        (
            run_path(42),
            reviews(vec![
                review_json("octocat", "approved", &["staging"], ""),
                review_json(
                    "maria.chen",
                    "approved",
                    &["production"],
                    "canary looks good",
                ),
            ]),
        ),
    ]))
    .expect("scripted GitHub");
    paused_world(dir.path());
    let approve = |run_id: &str| {
        on_world(
            dir.path(),
            &["approve"],
            &[
                ("GITHUB_API_URL", &server.url),
                ("GITHUB_REPOSITORY", "acme/iris"),
                ("GITHUB_RUN_ID", run_id),
                ("GITHUB_TOKEN", TOKEN),
            ],
        )
    };
    for (run_id, fragment) in [
        (
            "41",
            "was rejected: maria.chen rejected production: dashboards incomplete",
        ),
        (
            "43",
            "no approval of environment `production` (reviews of other environments: octocat approved staging: Ship it!)",
        ),
        ("44", "no approval of environment `production`"),
        ("45", "release-bot started revision 3 and cannot approve it"),
    ] {
        let refused = approve(run_id);
        assert_eq!(refused.code, 1, "run {run_id}: {}", refused.stderr);
        assert!(
            refused.stderr.contains(fragment),
            "run {run_id}: {fragment:?} not in:\n{}",
            refused.stderr
        );
    }
    forge_approval(dir.path(), "octocat");
    assert_promote_refused(dir.path(), "0 of 1");

    let approved = approve("42");
    assert_eq!(approved.code, 0, "{}", approved.stderr);
    assert!(
        approved.stdout.contains("by maria.chen") && approved.stdout.contains("revision: 3"),
        "{}",
        approved.stdout
    );
    assert!(
        approved.stdout.contains("reason: canary looks good"),
        "{}",
        approved.stdout
    );
    let seen = server.seen();
    assert!(
        seen.iter()
            .all(|request| request.authorization.as_deref() == Some(&format!("Bearer {TOKEN}"))),
        "{seen:?}"
    );
    assert!(
        !approved.stdout.contains(TOKEN) && !approved.stderr.contains(TOKEN),
        "the token was printed"
    );
    assert_promoted(dir.path());
}

/// Outside `--demo` every trail entry is signed: with every backend simulated on purpose but no
/// `--demo`, a run without `signing.key` writes nothing to the trail and says why; with the key
/// it runs and every entry it writes is signed by it.
#[test]
fn outside_the_demo_the_trail_is_written_signed_or_not_at_all() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = "[backend]\nsimulated = [\"models\", \"registry\", \"scanner\", \"cluster\", \"metrics\"]\n\n[audit]\npath = \"audit.jsonl\"\n";
    std::fs::write(dir.path().join("slipway.toml"), config).expect("config");
    let trail = dir.path().join("audit.jsonl");
    let written = |trail: &Path| -> Vec<slipway_audit_log::Entry> {
        std::fs::read_to_string(trail)
            .unwrap_or_default()
            .lines()
            .map(|line| serde_json::from_str(line).expect("entry"))
            .collect()
    };

    let unsigned = deploy(&["run"], dir.path(), &[]);
    assert_ne!(unsigned.code, 0, "{}", unsigned.stdout);
    let said = format!("{}{}", unsigned.stdout, unsigned.stderr);
    assert!(
        said.contains("refusing to write an unsigned entry outside --demo")
            && said.contains("signing.key"),
        "{said}"
    );
    let before = written(&trail);
    assert!(
        before.iter().all(|entry| !matches!(
            &entry.event,
            slipway_audit_log::Event::Decision { stage, .. } if stage == "run"
        )),
        "the run wrote an unsigned entry: {before:?}"
    );

    let password = Secret::new("deploy-pw".to_owned());
    let (key, private, _) = slipway_attest::keyfile::generate_key_pair(&password).expect("key");
    std::fs::write(dir.path().join("cosign.key"), private).expect("write");
    std::fs::write(
        dir.path().join("slipway.toml"),
        format!("{config}\n[signing]\nkey = \"cosign.key\"\n"),
    )
    .expect("config");
    let signed = deploy(&["run"], dir.path(), &[("COSIGN_PASSWORD", "deploy-pw")]);
    assert!(
        signed.code == 0 || signed.code == 1,
        "{}\n{}",
        signed.stdout,
        signed.stderr
    );
    let after = written(&trail);
    assert!(after.len() > before.len(), "the run wrote its decisions");
    // The simulated world's seeded past (two releases and an approval, re-seeded by each
    // process) goes into the trail before the key is loaded and stays unsigned (a known gap of
    // the all-simulated configuration); every decision the run made is signed.
    let public = key.public();
    let decisions: Vec<slipway_audit_log::Entry> = after[before.len()..]
        .iter()
        .filter(|entry| matches!(entry.event, slipway_audit_log::Event::Decision { .. }))
        .cloned()
        .collect();
    assert!(!decisions.is_empty());
    assert_eq!(
        slipway_audit_log::verify_signatures(&decisions, &[&public]),
        [],
        "every decision the run wrote is signed by the deploy key"
    );
}

/// Blue-green and rolling releases pause at the approval gate too, so a signed approval from
/// another process approves them outside the demo: `run --strategy blue-green` pauses with the
/// standby colour behind the preview Service (rolling: before anything changed), `approve --key`
/// binds to the paused revision, and a plain `promote` (no `--strategy`: the paused revision's
/// strategy is carried out) switches or rolls and records it with that strategy.
#[test]
fn blue_green_and_rolling_releases_pause_for_a_signed_approval_from_another_process() {
    for strategy in ["blue-green", "rolling"] {
        let dir = tempfile::tempdir().expect("tempdir");
        let password = Secret::new("approver-passw0rd".to_owned());
        let (_, maria_key, maria_pub) =
            slipway_attest::keyfile::generate_key_pair(&password).expect("maria's key");
        std::fs::write(dir.path().join("maria.key"), maria_key).expect("write");
        std::fs::write(dir.path().join("maria.pub"), maria_pub).expect("write");
        std::fs::write(
            dir.path().join("slipway.toml"),
            "[policy.approvals]\nkeys = { \"maria.chen\" = \"maria.pub\" }\n",
        )
        .expect("config");
        let run = deploy(
            &[
                "run",
                "--demo",
                "unapproved",
                "--state",
                "world",
                "--strategy",
                strategy,
            ],
            dir.path(),
            &[],
        );
        assert_eq!(run.code, 0, "{strategy}: {}", run.stderr);
        assert!(
            run.stdout.contains("outcome: paused"),
            "{strategy}: {}",
            run.stdout
        );
        let status = on_world(dir.path(), &["status"], &[]);
        assert_eq!(
            status.code, 3,
            "{strategy}: paused is not final: {}",
            status.stderr
        );

        let early = on_world(dir.path(), &["promote"], &[]);
        assert_eq!(early.code, 1, "{strategy}: {}", early.stderr);
        let approve = on_world(
            dir.path(),
            &[
                "approve",
                "--key",
                "maria.key",
                "--reason",
                "preview checked",
            ],
            &[("COSIGN_PASSWORD", "approver-passw0rd")],
        );
        assert_eq!(approve.code, 0, "{strategy}: {}", approve.stderr);
        assert_promoted(dir.path());
        let history = on_world(dir.path(), &["history", "--output", "json"], &[]);
        let document: serde_json::Value =
            serde_json::from_str(&history.stdout).expect("history json");
        let last = document["revisions"]
            .as_array()
            .and_then(|revisions| revisions.last())
            .cloned()
            .expect("a revision");
        assert_eq!(last["outcome"], "promoted", "{strategy}: {last}");
        assert_eq!(last["strategy"], strategy, "{strategy}: {last}");
    }
}
