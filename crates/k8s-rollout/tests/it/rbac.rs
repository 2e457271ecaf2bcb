//! `deploy/rbac/role.yaml` grants exactly the verbs in [`slipway_k8s_rollout::OPERATIONS`]: every
//! verb the code uses (the scripted server checks each request against that table) and nothing
//! more.

use std::collections::BTreeSet;
use std::path::Path;

use slipway_k8s_rollout::OPERATIONS;

type Grant = (String, String, String);

/// Reads the `rules` of the Role document: each rule's `apiGroups`, `resources` and `verbs` are
/// one-line flow lists (`["apps"]`), which are JSON. A tiny parser instead of a YAML crate: the
/// file is ours and this test pins its shape.
fn role_grants(text: &str) -> Result<BTreeSet<Grant>, String> {
    let role = text
        .split("\n---")
        .find(|doc| doc.lines().any(|line| line.trim() == "kind: Role"))
        .ok_or("no `kind: Role` document")?;
    let mut grants = BTreeSet::new();
    let mut rule: [Option<Vec<String>>; 3] = [None, None, None];
    let mut in_rules = false;
    for line in role.lines() {
        let trimmed = line.trim();
        if trimmed == "rules:" {
            in_rules = true;
            continue;
        }
        if !in_rules || trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let entry = trimmed.trim_start_matches("- ");
        let (key, value) = entry
            .split_once(':')
            .ok_or_else(|| format!("unexpected line in rules: `{line}`"))?;
        let slot = match key.trim() {
            "apiGroups" => 0,
            "resources" => 1,
            "verbs" => 2,
            other => return Err(format!("unexpected key `{other}` in rules")),
        };
        let list: Vec<String> = serde_json::from_str(value.trim())
            .map_err(|err| format!("`{key}` must be a one-line list like [\"a\"]: {err}"))?;
        rule[slot] = Some(list);
        if let [Some(groups), Some(resources), Some(verbs)] = &rule {
            for group in groups {
                for resource in resources {
                    for verb in verbs {
                        grants.insert((group.clone(), resource.clone(), verb.clone()));
                    }
                }
            }
            rule = [None, None, None];
        }
    }
    Ok(grants)
}

fn used() -> BTreeSet<Grant> {
    OPERATIONS
        .iter()
        .flat_map(|op| {
            op.verbs.iter().map(|verb| {
                (
                    op.group.to_owned(),
                    op.resource.to_owned(),
                    (*verb).to_owned(),
                )
            })
        })
        .collect()
}

#[test]
fn role_grants_exactly_the_verbs_slipway_uses() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/rbac/role.yaml");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|err| panic!("read {}: {err}", path.display()));
    let granted = role_grants(&text).expect("parse role.yaml");
    let used = used();
    let missing: Vec<_> = used.difference(&granted).collect();
    let extra: Vec<_> = granted.difference(&used).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "deploy/rbac/role.yaml must match OPERATIONS\nmissing (code uses, Role lacks): {missing:?}\nextra (Role grants, code never uses): {extra:?}"
    );
}

#[test]
fn the_parser_sees_a_missing_and_an_extra_verb() {
    let role = "kind: Role\nrules:\n  - apiGroups: [\"apps\"]\n    resources: [\"deployments\"]\n    verbs: [\"get\", \"watch\"]\n";
    let granted = role_grants(role).expect("parse");
    assert_eq!(
        granted,
        BTreeSet::from([
            ("apps".into(), "deployments".into(), "get".into()),
            ("apps".into(), "deployments".into(), "watch".into())
        ])
    );
    let used = used();
    assert!(
        used.difference(&granted)
            .any(|(_, resource, verb)| resource == "deployments" && verb == "patch")
    );
    assert!(
        granted
            .difference(&used)
            .any(|(_, _, verb)| verb == "watch")
    );
    assert!(
        role_grants("kind: Role\nrules:\n  - apiGroups: apps\n").is_err(),
        "block lists are refused, not misread"
    );
}
