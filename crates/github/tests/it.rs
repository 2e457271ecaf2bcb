//! The GitHub client against a scripted API on loopback: the documented response, rejected,
//! other-environment and empty review lists, errors with hints, and the token sent as a bearer
//! token and never printed.

use std::collections::BTreeMap;

use slipway_core::Secret;
use slipway_github::testing::{ScriptedGitHub, review_json};
use slipway_github::{GitHub, GitHubClient, GitHubConfig, Review, ReviewState, RunRef};

const PATH: &str = "/repos/acme/iris/actions/runs/42/approvals";
const TOKEN: &str = "ghs_scripted-token-1234";

fn run() -> RunRef {
    RunRef {
        repository: "acme/iris".to_owned(),
        run_id: 42,
    }
}

async fn reviews(status: u16, body: String) -> (Result<Vec<Review>, String>, ScriptedGitHub) {
    let server =
        ScriptedGitHub::start(BTreeMap::from([(PATH.to_owned(), (status, body))])).expect("server");
    let client = GitHubClient::new(GitHubConfig {
        api_url: server.url.clone(),
        token: Secret::new(TOKEN.to_owned()),
    })
    .expect("client");
    let result = client
        .run_reviews(&run())
        .await
        .map_err(|err| err.to_string());
    (result, server)
}

#[tokio::test]
async fn reviews_are_read_as_github_documents_them() {
    let documented =
        std::fs::read_to_string("tests/data/actions-run-approvals.response.json").expect("fixture");
    let (result, server) = reviews(200, documented).await;
    assert_eq!(
        result.expect("reviews"),
        [Review {
            login: "octocat".to_owned(),
            state: ReviewState::Approved,
            environments: vec!["staging".to_owned()],
            comment: "Ship it!".to_owned(),
        }]
    );
    let seen = server.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].path, PATH);
    assert_eq!(
        seen[0].authorization.as_deref(),
        Some("Bearer ghs_scripted-token-1234")
    );

    let mixed = serde_json::json!([
        review_json(
            "maria.chen",
            "rejected",
            &["production"],
            "dashboards incomplete"
        ),
        review_json("sam", "approved", &["staging", "production"], ""),
    ]);
    let (result, _server) = reviews(200, mixed.to_string()).await;
    let got = result.expect("reviews");
    assert_eq!(got[0].state, ReviewState::Rejected);
    assert_eq!(got[1].environments, ["staging", "production"]);
    assert_eq!(got[1].comment, "");

    let (result, _server) = reviews(200, "[]".to_owned()).await;
    assert_eq!(result.expect("reviews"), []);
}

#[tokio::test]
async fn errors_name_the_call_and_what_to_do_and_never_the_token() {
    let cases = [
        (
            401,
            r#"{"message":"Bad credentials"}"#,
            "answered 401: Bad credentials",
        ),
        (
            403,
            r#"{"message":"Resource not accessible by integration"}"#,
            "actions: read",
        ),
        (404, r#"{"message":"Not Found"}"#, "GITHUB_RUN_ID"),
        (
            200,
            r#"{"total_count": 1}"#,
            "not a list of environment reviews",
        ),
    ];
    for (status, body, fragment) in cases {
        let (result, _server) = reviews(status, body.to_owned()).await;
        let message = result.expect_err("an error");
        assert!(message.contains(fragment), "{status}: {message}");
        assert!(message.contains(PATH), "names the call: {message}");
        assert!(!message.contains(TOKEN), "the token leaked: {message}");
    }
}
