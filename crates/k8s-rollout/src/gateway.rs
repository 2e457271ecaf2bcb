//! Exact canary weights through the Gateway API: the user's HTTPRoute sends the step's share of
//! its requests to a Slipway-owned canary Service by weighted `backendRefs`
//! ([`rollout::TrafficRouting::GatewayApi`](crate::rollout::TrafficRouting::GatewayApi)).
//!
//! What Slipway writes: in every rule of the route that has a `backendRef` to the release's
//! Service, that reference's `weight` and one `backendRef` each to the canary Service (and the
//! baseline Service when the equal-size baseline runs), nothing else. The rules are written
//! whole (the route's `spec.rules` list is atomic for server-side apply) with Slipway's field
//! manager, so hostnames, parent references, filters, matches and every other field stay with
//! their owner (Argo CD, Helm, `kubectl apply`). Before the first change the original
//! `backendRefs` of those rules are kept in the route's annotation [`ORIGINAL_ANNOTATION`]; the
//! route is put back from it on promote, abort, cancel and rollback, and the annotation goes
//! with it. A run killed half way leaves the annotation, so the next command (or `cleanup`)
//! restores the route the same way.
//!
//! Decisions: a rule that also sends to a backend other than the release's Service is refused,
//! because the canary's weight would then not be the share asked for. The `gateway-api` crate
//! (kube-rs's bindings) is not used: its only release (0.22) is built on kube 4 and
//! k8s-openapi 0.28, while Slipway is on kube 5 and k8s-openapi 0.29; taking it would build a
//! second kube and k8s-openapi (minutes on two cores) for types that cannot go through kube 5's
//! `Api`. The rules are handled as JSON, so fields Slipway does not know survive untouched.
//! These functions are pure; the reads and writes are the [`Cluster`](crate::Cluster)'s.

use serde_json::{Value, json};

/// The route annotation holding the original `backendRefs` of the rules Slipway weighted: a
/// JSON list of `[rule index, backendRefs]`.
pub const ORIGINAL_ANNOTATION: &str = "slipway.dev/original-backends";

/// The API group and version of the HTTPRoutes Slipway weights.
pub const API_VERSION: &str = "gateway.networking.k8s.io/v1";

/// An HTTPRoute as far as Slipway reads and writes it.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpRoute {
    /// Namespace (the release's).
    pub namespace: String,
    /// Name (`rollout.route`).
    pub name: String,
    /// `spec.rules`, every field kept.
    pub rules: Value,
    /// [`ORIGINAL_ANNOTATION`]'s value; `None` when the route carries no canary.
    pub original: Option<String>,
}

/// The backends one weighting asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Weights<'a> {
    /// The Service in front of the release (the user's).
    pub service: &'a str,
    /// The Slipway-owned canary Service.
    pub canary_service: &'a str,
    /// The Slipway-owned baseline Service, when the equal-size baseline runs.
    pub baseline_service: Option<&'a str>,
    /// Percent of the requests for the canary (and as much for the baseline).
    pub percent: u8,
}

fn refs(rule: &Value) -> &[Value] {
    rule.get("backendRefs")
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

/// Whether `reference` is Service `name` in the route's own namespace (a reference without a
/// `namespace` is in the route's; one to another namespace, through a ReferenceGrant, is not
/// the release's).
fn named(reference: &Value, name: &str) -> bool {
    let same_namespace = reference.get("namespace").is_none();
    let is_service = reference
        .get("kind")
        .and_then(Value::as_str)
        .is_none_or(|kind| kind == "Service");
    let core_group = reference
        .get("group")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty);
    same_namespace
        && is_service
        && core_group
        && reference.get("name").and_then(Value::as_str) == Some(name)
}

/// Indexes of the rules with a `backendRef` to `service`.
fn weighted_rules(rules: &Value, service: &str) -> Vec<usize> {
    rules
        .as_array()
        .map(|rules| {
            rules
                .iter()
                .enumerate()
                .filter(|(_, rule)| refs(rule).iter().any(|reference| named(reference, service)))
                .map(|(idx, _)| idx)
                .collect()
        })
        .unwrap_or_default()
}

/// The route's rules with the canary (and baseline) weighted in, and the annotation value to
/// keep: the one already there (a later step, or a re-run), else the original backends of the
/// rules it weights. Fails naming the route when no rule sends to `service`, or a rule also
/// sends to another backend.
pub fn weigh(route: &HttpRoute, weights: &Weights<'_>) -> Result<(Value, String), String> {
    let ours: Vec<&str> = [Some(weights.canary_service), weights.baseline_service]
        .into_iter()
        .flatten()
        .collect();
    let restored = match &route.original {
        Some(_) => restore(route, weights.service, &ours)?,
        None => route.rules.clone(),
    };
    let indexes = weighted_rules(&restored, weights.service);
    if indexes.is_empty() {
        return Err(format!(
            "HTTPRoute `{}/{}` has no rule with a backendRef to Service `{}`\n\nhint: set `rollout.route` to the HTTPRoute that sends the release's traffic to `{}`",
            route.namespace, route.name, weights.service, weights.service
        ));
    }
    let mut rules = restored.clone();
    let mut original = Vec::new();
    let stable_weight = 100u16.saturating_sub(u16::from(weights.percent) * ours.len() as u16);
    for idx in indexes {
        let rule = &mut rules[idx];
        let before = refs(rule).to_vec();
        if let Some(other) = before
            .iter()
            .find(|reference| !named(reference, weights.service))
        {
            return Err(format!(
                "rule {} of HTTPRoute `{}/{}` also sends to {}: the canary's weight would not be the share asked for\n\nhint: give the release's Service a rule of its own",
                idx + 1,
                route.namespace,
                route.name,
                other
                    .get("name")
                    .and_then(Value::as_str)
                    .map_or_else(|| "another backend".to_owned(), |name| format!("`{name}`"))
            ));
        }
        original.push(json!([idx, before]));
        let port = before
            .iter()
            .find_map(|reference| reference.get("port").cloned());
        let mut backends: Vec<Value> = before
            .into_iter()
            .map(|mut reference| {
                reference["weight"] = json!(stable_weight);
                reference
            })
            .collect();
        for name in &ours {
            let mut reference = json!({ "name": name, "weight": weights.percent });
            if let Some(port) = &port {
                reference["port"] = port.clone();
            }
            backends.push(reference);
        }
        rule["backendRefs"] = Value::Array(backends);
    }
    let annotation = match &route.original {
        Some(kept) => kept.clone(),
        None => Value::Array(original).to_string(),
    };
    Ok((rules, annotation))
}

/// The route's rules as they were before Slipway weighted them: each rule recorded in the
/// annotation gets its original `backendRefs` back, and any `backendRef` to one of
/// `slipway_services` left elsewhere is dropped. Without an annotation only the latter.
pub fn restore(
    route: &HttpRoute,
    service: &str,
    slipway_services: &[&str],
) -> Result<Value, String> {
    let mut rules = route.rules.clone();
    let recorded: Vec<(usize, Value)> = match &route.original {
        Some(text) => serde_json::from_str::<Vec<(usize, Value)>>(text).map_err(|err| {
            format!(
                "annotation `{ORIGINAL_ANNOTATION}` of HTTPRoute `{}/{}` is unreadable ({err})\n\nhint: restore the route's backendRefs by hand and remove the annotation",
                route.namespace, route.name
            )
        })?,
        None => Vec::new(),
    };
    let Some(list) = rules.as_array_mut() else {
        return Ok(rules);
    };
    // A recorded rule gets its original backends back only while it still carries Slipway's
    // weighting: a rule the user (or Argo CD, Flux) re-applied in the meantime is theirs now,
    // and only Slipway's own references are taken out of it below.
    for (idx, backends) in recorded {
        if let Some(rule) = list.get_mut(idx)
            && refs(rule).iter().any(|reference| named(reference, service))
            && refs(rule)
                .iter()
                .any(|reference| slipway_services.iter().any(|name| named(reference, name)))
        {
            rule["backendRefs"] = backends;
        }
    }
    for rule in list.iter_mut() {
        let before = refs(rule).to_vec();
        let kept: Vec<Value> = before
            .iter()
            .filter(|reference| !slipway_services.iter().any(|name| named(reference, name)))
            .cloned()
            .collect();
        if kept.len() != before.len() {
            rule["backendRefs"] = Value::Array(kept);
        }
    }
    Ok(rules)
}

/// Whether the route carries anything of a canary: the annotation, or a `backendRef` to one
/// of `slipway_services`.
pub fn carries_canary(route: &HttpRoute, slipway_services: &[&str]) -> bool {
    route.original.is_some()
        || route.rules.as_array().is_some_and(|rules| {
            rules.iter().any(|rule| {
                refs(rule)
                    .iter()
                    .any(|reference| slipway_services.iter().any(|name| named(reference, name)))
            })
        })
}

/// The weights each backend of the route's rules gets, `(rule, name, weight)`, for status and
/// tests; a missing weight is the Gateway API's default, 1.
pub fn backend_weights(rules: &Value) -> Vec<(usize, String, u64)> {
    rules
        .as_array()
        .map(|rules| {
            rules
                .iter()
                .enumerate()
                .flat_map(|(idx, rule)| {
                    refs(rule).iter().map(move |reference| {
                        (
                            idx,
                            reference
                                .get("name")
                                .and_then(Value::as_str)
                                .unwrap_or_default()
                                .to_owned(),
                            reference.get("weight").and_then(Value::as_u64).unwrap_or(1),
                        )
                    })
                })
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(rules: Value) -> HttpRoute {
        HttpRoute {
            namespace: "ml".into(),
            name: "iris-route".into(),
            rules,
            original: None,
        }
    }

    /// The Gateway API's own traffic-splitting example, first rule to `iris`, a second rule
    /// (its own matches and a filter) to `docs`.
    fn user_rules() -> Value {
        json!([
            { "matches": [{ "path": { "type": "PathPrefix", "value": "/predict" } }],
              "backendRefs": [{ "name": "iris", "port": 8080 }] },
            { "matches": [{ "path": { "type": "PathPrefix", "value": "/docs" } }],
              "filters": [{ "type": "RequestHeaderModifier", "requestHeaderModifier": { "add": [{ "name": "x", "value": "y" }] } }],
              "backendRefs": [{ "name": "docs", "port": 80 }] }
        ])
    }

    fn weights(percent: u8, baseline: bool) -> Weights<'static> {
        Weights {
            service: "iris",
            canary_service: "iris-canary",
            baseline_service: baseline.then_some("iris-baseline"),
            percent,
        }
    }

    #[test]
    fn steps_weigh_the_canary_and_restore_gives_the_route_back_as_it_was() {
        let mut current = route(user_rules());
        for percent in [10, 25, 50] {
            let (rules, annotation) = weigh(&current, &weights(percent, false)).expect("weigh");
            assert_eq!(
                backend_weights(&rules),
                [
                    (0, "iris".to_owned(), u64::from(100 - percent)),
                    (0, "iris-canary".to_owned(), u64::from(percent)),
                    (1, "docs".to_owned(), 1),
                ]
            );
            assert_eq!(rules[1], user_rules()[1], "other rules untouched");
            assert_eq!(rules[0]["matches"], user_rules()[0]["matches"]);
            assert_eq!(rules[0]["backendRefs"][1]["port"], json!(8080));
            current.rules = rules;
            current.original = Some(annotation);
        }
        let back = restore(&current, "iris", &["iris-canary", "iris-baseline"]).expect("restore");
        assert_eq!(back, user_rules());
        assert!(carries_canary(&current, &["iris-canary"]));
        assert!(!carries_canary(&route(back), &["iris-canary"]));
    }

    #[test]
    fn the_baseline_gets_the_canary_weight() {
        let (rules, _) = weigh(&route(user_rules()), &weights(25, true)).expect("weigh");
        assert_eq!(
            backend_weights(&rules)
                .into_iter()
                .filter(|(rule, _, _)| *rule == 0)
                .map(|(_, name, weight)| (name, weight))
                .collect::<Vec<_>>(),
            [
                ("iris".to_owned(), 50),
                ("iris-canary".to_owned(), 25),
                ("iris-baseline".to_owned(), 25)
            ]
        );
    }

    #[test]
    fn an_original_weight_comes_back_and_a_stray_canary_ref_is_dropped() {
        let mut weighted =
            json!([{ "backendRefs": [{ "name": "iris", "port": 8080, "weight": 3 }] }]);
        let (rules, annotation) =
            weigh(&route(weighted.clone()), &weights(10, false)).expect("weigh");
        let back = restore(
            &HttpRoute {
                rules,
                original: Some(annotation),
                ..route(Value::Null)
            },
            "iris",
            &["iris-canary"],
        )
        .expect("restore");
        assert_eq!(back, weighted);
        // No annotation (lost to a crash between two writes): the canary ref still goes.
        weighted[0]["backendRefs"]
            .as_array_mut()
            .expect("refs")
            .push(json!({ "name": "iris-canary", "port": 8080, "weight": 10 }));
        let back = restore(&route(weighted), "iris", &["iris-canary"]).expect("restore");
        assert_eq!(
            back,
            json!([{ "backendRefs": [{ "name": "iris", "port": 8080, "weight": 3 }] }])
        );
    }

    /// A rule re-applied by its owner during the canary (a new port, Slipway's references
    /// gone) is kept as the owner wrote it; a reference to a same-named Service in another
    /// namespace is not the release's.
    #[test]
    fn a_rule_its_owner_rewrote_is_kept_and_other_namespaces_are_not_the_release() {
        let (_, annotation) = weigh(&route(user_rules()), &weights(10, false)).expect("weigh");
        let mut synced = user_rules();
        synced[0]["backendRefs"][0]["port"] = json!(9090);
        let back = restore(
            &HttpRoute {
                rules: synced.clone(),
                original: Some(annotation),
                ..route(Value::Null)
            },
            "iris",
            &["iris-canary"],
        )
        .expect("restore");
        assert_eq!(back, synced, "the owner's new port stays");
        let err = weigh(
            &route(json!([{ "backendRefs": [{ "name": "iris", "namespace": "other" }] }])),
            &weights(10, false),
        )
        .expect_err("another namespace's iris");
        assert!(err.contains("no rule with a backendRef"), "{err}");
    }

    #[test]
    fn routes_that_cannot_carry_exact_weights_are_refused_by_name() {
        let err = weigh(
            &route(json!([{ "backendRefs": [{ "name": "docs" }] }])),
            &weights(10, false),
        )
        .expect_err("no rule to iris");
        assert!(
            err.contains("no rule with a backendRef to Service `iris`")
                && err.contains("rollout.route"),
            "{err}"
        );
        let err = weigh(
            &route(json!([{ "backendRefs": [{ "name": "iris", "weight": 90 }, { "name": "legacy", "weight": 10 }] }])),
            &weights(10, false),
        )
        .expect_err("split rule");
        assert!(err.contains("also sends to `legacy`"), "{err}");
    }
}
