//! Integration tests of `slipway-audit-log` that need more than one process.
//!
//! The concurrent writers are this test binary run again as children: a child sees
//! `SLIPWAY_AUDIT_TEST_APPEND_TO` and appends instead of testing, so each writer is a real
//! process with its own open file, as two `slipway-deploy` runs on one machine would be.

use std::path::Path;
use std::process::Command;

use jiff::Timestamp;
use slipway_audit_log::{AuditStore, Event, FileAuditStore, verify};
use slipway_core::ReleaseId;

/// Set in a child: the trail to append to.
const APPEND_TO: &str = "SLIPWAY_AUDIT_TEST_APPEND_TO";
/// Set in a child: which writer it is.
const WRITER: &str = "SLIPWAY_AUDIT_TEST_WRITER";

const PROCESSES: usize = 8;
const APPENDS: usize = 50;

fn event(writer: &str, idx: usize) -> Event {
    Event::Decision {
        release: ReleaseId::parse("ml/iris").expect("id"),
        stage: "analysis".into(),
        verdict: "pass".into(),
        detail: format!("writer {writer} append {idx}"),
    }
}

/// The child's work; a no-op when run as an ordinary test.
#[tokio::test]
async fn child_appends() {
    let Ok(path) = std::env::var(APPEND_TO) else {
        return;
    };
    let writer = std::env::var(WRITER).unwrap_or_default();
    let store = FileAuditStore::new(&path);
    for idx in 0..APPENDS {
        store
            .append(Timestamp::now(), event(&writer, idx))
            .await
            .expect("append");
    }
}

fn spawn_writer(path: &Path, writer: usize) -> std::process::Child {
    Command::new(std::env::current_exe().expect("current exe"))
        .args([
            "--exact",
            "child_appends",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(APPEND_TO, path)
        .env(WRITER, writer.to_string())
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("spawn writer")
}

#[tokio::test]
async fn eight_processes_appending_at_once_leave_one_intact_chain() {
    if std::env::var_os(APPEND_TO).is_some() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("trail.jsonl");
    let children: Vec<_> = (0..PROCESSES)
        .map(|writer| spawn_writer(&path, writer))
        .collect();
    for mut child in children {
        let status = child.wait().expect("wait");
        assert!(status.success(), "a writer failed: {status}");
    }
    let store = FileAuditStore::new(&path);
    let trail = store.read().await.expect("read");
    assert_eq!(trail.damage, [], "no damage");
    assert_eq!(trail.entries.len(), PROCESSES * APPENDS);
    let problems = verify(&trail.entries, None);
    assert!(
        problems.is_empty(),
        "the chain forked: {} problems, first {:?}",
        problems.len(),
        problems.first()
    );
    // Every writer's every append is there exactly once.
    let mut details: Vec<String> = trail
        .entries
        .iter()
        .map(|entry| match &entry.event {
            Event::Decision { detail, .. } => detail.clone(),
            other => panic!("unexpected event {other:?}"),
        })
        .collect();
    details.sort();
    details.dedup();
    assert_eq!(details.len(), PROCESSES * APPENDS);
}
