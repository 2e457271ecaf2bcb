//! A scripted Kubernetes API server on `tower_test::mock`: each step names the request expected
//! (method and path) and the response to give; the transcript of what the client sent (method,
//! path, query, body) comes back for snapshots. Every request is also checked against
//! [`slipway_k8s_rollout::OPERATIONS`], so code that calls the API outside the table fails here.

use std::collections::BTreeMap;

use http::{Request, Response};
use kube::client::Body;
use serde_json::{Value, json};
use slipway_k8s_rollout::OPERATIONS;

/// One expected request and its answer.
pub(crate) struct Step {
    pub(crate) method: &'static str,
    pub(crate) path: String,
    pub(crate) status: u16,
    pub(crate) body: Value,
}

pub(crate) fn step(
    method: &'static str,
    path: impl Into<String>,
    status: u16,
    body: Value,
) -> Step {
    Step {
        method,
        path: path.into(),
        status,
        body,
    }
}

/// A `Status` failure body as the API server sends it.
pub(crate) fn status(code: u16, reason: &str, message: &str) -> Value {
    json!({ "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message, "reason": reason, "code": code })
}

pub(crate) fn deleted() -> Value {
    json!({ "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 200 })
}

/// The RBAC verb, API group and resource a request needs.
fn operation_of(method: &str, path: &str) -> (String, String, String) {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let (group, rest) = match segments.as_slice() {
        ["api", _version, rest @ ..] => (String::new(), rest),
        ["apis", group, _version, rest @ ..] => ((*group).to_owned(), rest),
        _ => panic!("unexpected API path {path}"),
    };
    let (resource, named) = match rest {
        ["namespaces", _, resource] => (*resource, false),
        ["namespaces", _, resource, _name] => (*resource, true),
        _ => panic!("unexpected resource path {path}"),
    };
    let verb = match (method, named) {
        ("GET", true) => "get",
        ("GET", false) => "list",
        ("POST", _) => "create",
        ("PUT", _) => "update",
        ("PATCH", _) => "patch",
        ("DELETE", _) => "delete",
        _ => panic!("unexpected method {method}"),
    };
    (verb.to_owned(), group, resource.to_owned())
}

/// Starts the scripted server. Await the handle for the transcript; it panics if a request did
/// not match its step, or if fewer requests came than scripted.
pub(crate) fn serve(steps: Vec<Step>) -> (kube::Client, tokio::task::JoinHandle<Vec<Value>>) {
    let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let server = tokio::spawn(async move {
        let mut transcript = Vec::new();
        for (idx, expected) in steps.into_iter().enumerate() {
            let Some((request, respond)) = handle.next_request().await else {
                panic!(
                    "step {idx}: expected {} {} but the client sent nothing more",
                    expected.method, expected.path
                );
            };
            let method = request.method().to_string();
            let path = request.uri().path().to_owned();
            let query: BTreeMap<String, String> = request
                .uri()
                .query()
                .unwrap_or_default()
                .split('&')
                .filter(|pair| !pair.is_empty())
                .map(|pair| {
                    let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                    (
                        k.to_owned(),
                        v.replace("%3D", "=")
                            .replace("%2C", ",")
                            .replace("%2F", "/"),
                    )
                })
                .collect();
            assert_eq!(
                (method.as_str(), path.as_str()),
                (expected.method, expected.path.as_str()),
                "step {idx}"
            );
            let (verb, group, resource) = operation_of(&method, &path);
            assert!(
                OPERATIONS.iter().any(|op| op.group == group
                    && op.resource == resource
                    && op.verbs.contains(&verb.as_str())),
                "{method} {path} needs `{verb}` on `{resource}` in group `{group}`, which is not in OPERATIONS"
            );
            let bytes = request
                .into_body()
                .collect_bytes()
                .await
                .expect("request body");
            let body: Value = if bytes.is_empty() {
                Value::Null
            } else {
                serde_json::from_slice(&bytes).expect("request body is JSON")
            };
            transcript.push(
                json!({ "request": format!("{method} {path}"), "query": query, "body": body }),
            );
            let response = Response::builder()
                .status(expected.status)
                .header("content-type", "application/json")
                .body(Body::from(
                    serde_json::to_vec(&expected.body).expect("json"),
                ))
                .expect("response");
            respond.send_response(response);
        }
        transcript
    });
    (kube::Client::new(service, "default"), server)
}
