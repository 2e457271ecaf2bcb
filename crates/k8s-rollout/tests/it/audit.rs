//! [`ClusterAuditStore`] on [`KubeCluster`] against the scripted API server: what an append
//! sends (an immutable, labelled ConfigMap per entry), an append that loses the race for its
//! entry's name, tampering found by reading, and a 403 naming the verb.

use std::sync::Arc;

use jiff::Timestamp;
use serde_json::{Value, json};
use slipway_audit_log::{AuditStore as _, Entry, Event, verify, verify_signatures};
use slipway_core::ReleaseId;
use slipway_k8s_rollout::{ClusterAuditStore, KubeCluster, KubeClusterConfig};

use crate::scripted::{serve, status, step};

const CONFIGMAPS: &str = "/api/v1/namespaces/ml/configmaps";

fn release() -> ReleaseId {
    ReleaseId::parse("ml/iris").expect("release id")
}

fn at() -> Timestamp {
    "2026-11-22T10:00:00Z".parse().expect("timestamp")
}

fn decision(detail: &str) -> Event {
    Event::Decision {
        release: release(),
        stage: "analysis".into(),
        verdict: "pass".into(),
        detail: detail.into(),
    }
}

/// Entries `1..=n` of one chain.
fn chain(n: usize) -> Vec<Entry> {
    let mut entries: Vec<Entry> = Vec::new();
    for idx in 0..n {
        let next = Entry::next(
            entries.last(),
            at(),
            decision(&format!("check {}", idx + 1)),
        );
        entries.push(next);
    }
    entries
}

/// The ConfigMap the API server returns for `entry`.
fn object(entry: &Entry) -> Value {
    json!({
        "metadata": { "name": format!("slipway-audit-iris-{}", entry.seq), "namespace": "ml", "labels": { "slipway.dev/audit": "iris" } },
        "immutable": true,
        "data": { "entry": serde_json::to_string(entry).expect("json") },
    })
}

fn list(entries: &[Value]) -> Value {
    json!({ "apiVersion": "v1", "kind": "ConfigMapList", "metadata": {}, "items": entries })
}

fn created(name: &str) -> Value {
    json!({ "apiVersion": "v1", "kind": "ConfigMap", "metadata": { "name": name } })
}

fn store(client: kube::Client) -> ClusterAuditStore {
    let cluster = KubeCluster::new(client, KubeClusterConfig::default());
    ClusterAuditStore::new(Arc::new(cluster), release())
}

#[tokio::test]
async fn append_creates_an_immutable_configmap_and_chains_onto_a_concurrent_winner() {
    let existing = chain(2);
    let key =
        Arc::new(slipway_attest::EcdsaP256Key::from_secret_bytes("test", &[7; 32]).expect("key"));
    let steps = vec![
        step("GET", CONFIGMAPS, 200, list(&[object(&existing[0])])),
        // Another runner created entry 2 between our list and our create.
        step(
            "POST",
            CONFIGMAPS,
            409,
            status(
                409,
                "AlreadyExists",
                "configmaps \"slipway-audit-iris-2\" already exists",
            ),
        ),
        step(
            "GET",
            CONFIGMAPS,
            200,
            list(&[object(&existing[1]), object(&existing[0])]),
        ),
        step("POST", CONFIGMAPS, 201, created("slipway-audit-iris-3")),
    ];
    let (client, server) = serve(steps);
    let store = store(client).with_signer(key.clone());
    let entry = store.append(at(), decision("ours")).await.expect("append");
    drop(store);
    let requests = Value::Array(server.await.expect("scripted server"));

    assert_eq!(
        (entry.seq, entry.prev.as_str()),
        (3, existing[1].hash.as_str())
    );
    assert_eq!(
        requests[0]["query"]["labelSelector"],
        "slipway.dev/audit=iris"
    );
    let sent: Entry = serde_json::from_str(
        requests[3]["body"]["data"]["entry"]
            .as_str()
            .expect("entry"),
    )
    .expect("entry json");
    assert_eq!(
        sent, entry,
        "the ConfigMap holds exactly the returned entry"
    );
    let mut chained = existing.clone();
    chained.push(sent);
    assert!(verify(&chained, None).is_empty());
    let public = key.public();
    assert!(verify_signatures(&chained[2..], &[&public]).is_empty());
    insta::assert_json_snapshot!(requests, {
        "[1].body.data.entry" => "[entry 2 json]",
        "[3].body.data.entry" => "[entry 3 json]",
    });
}

#[tokio::test]
async fn reading_finds_a_modified_and_a_deleted_entry() {
    let entries = chain(4);
    let mut modified = entries[1].clone();
    modified.event = decision("check 2, edited");
    // The API server refuses edits of an immutable ConfigMap, so this one was deleted and
    // re-created with the same name; entry 4 was deleted.
    let steps = vec![step(
        "GET",
        CONFIGMAPS,
        200,
        list(&[object(&entries[2]), object(&modified), object(&entries[0])]),
    )];
    let (client, server) = serve(steps);
    let store = store(client);
    let trail = store.read().await.expect("read");
    drop(store);
    server.await.expect("scripted server");
    assert!(trail.damage.is_empty());
    assert_eq!(
        trail.entries.iter().map(|e| e.seq).collect::<Vec<_>>(),
        [1, 2, 3],
        "sorted by seq"
    );
    let problems = verify(&trail.entries, Some(&entries[3].head()));
    let text: Vec<String> = problems
        .iter()
        .map(|p| format!("entry {}: {}", p.seq, p.problem))
        .collect();
    insta::assert_snapshot!(text.join("\n"), @r"
    entry 2: content does not match its hash: the entry was modified
    entry 4: trail ends at entry 3 but entry 4 was seen before: it was truncated
    ");
}

#[tokio::test]
async fn a_forbidden_create_names_the_verb_and_the_role() {
    let steps = vec![
        step("GET", CONFIGMAPS, 200, list(&[])),
        step(
            "POST",
            CONFIGMAPS,
            403,
            status(
                403,
                "Forbidden",
                "configmaps is forbidden: User \"system:serviceaccount:ci:slipway\" cannot create resource \"configmaps\" in API group \"\" in the namespace \"ml\"",
            ),
        ),
    ];
    let (client, server) = serve(steps);
    let store = store(client);
    let err = store
        .append(at(), decision("one"))
        .await
        .expect_err("forbidden");
    drop(store);
    server.await.expect("scripted server");
    insta::assert_snapshot!(err.to_string());
}
