//! GitHub's REST API, as much as Slipway needs: the environment reviews of a workflow run.
//!
//! A GitHub environment with required reviewers holds a job until someone other than the
//! person who started the run approves it (the seed pipelines' `environment: production`).
//! The approve step reads those reviews from
//! `GET /repos/{owner}/{repo}/actions/runs/{run_id}/approvals`: reviewer login, state, the
//! environments reviewed and the comment. An approval's identity then comes from GitHub, never
//! from a flag.
//!
//! - [`GitHub`]: the boundary (one trait for the one external system).
//! - [`GitHubClient`]: the real client over reqwest (`GITHUB_TOKEN` as a bearer [`Secret`];
//!   10 s timeout; no redirects, so the token reaches only the configured API; bounded retries
//!   on connection errors, 429 and 5xx).
//!
//! Key design decision: the response is parsed into Slipway's own [`Review`], keeping only the
//! four fields the gate needs; GitHub's other fields (avatars, node ids) are ignored, and a
//! state other than `approved`/`rejected` is kept as [`ReviewState::Other`] rather than failing.

use std::time::Duration;

use serde::Deserialize;
use slipway_core::Secret;

/// Environment variables GitHub Actions sets, declared once (the binaries read them).
pub mod env_vars {
    /// The API's base URL (`https://api.github.com`, or a GitHub Enterprise Server's).
    pub const GITHUB_API_URL: &str = "GITHUB_API_URL";
    /// `owner/repo` of the workflow run.
    pub const GITHUB_REPOSITORY: &str = "GITHUB_REPOSITORY";
    /// The workflow run's id.
    pub const GITHUB_RUN_ID: &str = "GITHUB_RUN_ID";
    /// The job's token (`secrets.GITHUB_TOKEN`, passed as `env:`).
    pub const GITHUB_TOKEN: &str = "GITHUB_TOKEN";
    /// Who started the run (re-runs keep the original `GITHUB_ACTOR`; this is who re-ran).
    pub const GITHUB_TRIGGERING_ACTOR: &str = "GITHUB_TRIGGERING_ACTOR";
    /// Who started the workflow.
    pub const GITHUB_ACTOR: &str = "GITHUB_ACTOR";
}

/// The API's default base URL.
pub const DEFAULT_API_URL: &str = "https://api.github.com";

/// Which workflow run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunRef {
    /// `owner/repo`.
    pub repository: String,
    /// The run id.
    pub run_id: u64,
}

impl std::fmt::Display for RunRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} run {}", self.repository, self.run_id)
    }
}

/// What a reviewer decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReviewState {
    /// The reviewer approved the deployment.
    Approved,
    /// The reviewer rejected it.
    Rejected,
    /// A state GitHub may add later; never counts as an approval.
    Other(String),
}

/// One environment review of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Review {
    /// The reviewer's login.
    pub login: String,
    /// What they decided.
    pub state: ReviewState,
    /// The environments the review covers.
    pub environments: Vec<String>,
    /// The reviewer's comment (may be empty).
    pub comment: String,
}

/// Errors talking to GitHub.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request could not be made or got no answer.
    #[error(
        "GitHub API {url}: request failed ({what})\n\nhint: check `GITHUB_API_URL` and the runner's network"
    )]
    Request {
        /// The URL, without credentials.
        url: String,
        /// Timeout, connection, ….
        what: String,
    },
    /// GitHub answered with an error status.
    #[error("GitHub API {url}: answered {status}: {message}\n\nhint: {hint}")]
    Status {
        /// The URL.
        url: String,
        /// HTTP status.
        status: u16,
        /// GitHub's `message`, when it sent one.
        message: String,
        /// What to do.
        hint: String,
    },
    /// The body is not what GitHub documents.
    #[error("GitHub API {url}: the response is not a list of environment reviews: {message}")]
    Body {
        /// The URL.
        url: String,
        /// The parse error.
        message: String,
    },
    /// The configuration is unusable.
    #[error("GitHub API: {message}\n\nhint: {hint}")]
    Config {
        /// What is wrong.
        message: String,
        /// What to do.
        hint: String,
    },
}

/// The GitHub boundary.
///
/// `dyn GitHub` is chosen at run time (the real API, a test's), hence `async_trait`.
#[async_trait::async_trait]
pub trait GitHub: Send + Sync {
    /// Every environment review of `run`, oldest first as GitHub lists them.
    async fn run_reviews(&self, run: &RunRef) -> Result<Vec<Review>, Error>;
}

/// Where the API is and the token to call it with.
#[derive(Debug, Clone)]
pub struct GitHubConfig {
    /// Base URL, such as [`DEFAULT_API_URL`].
    pub api_url: String,
    /// The job's token.
    pub token: Secret,
}

/// The real client.
#[derive(Debug, Clone)]
pub struct GitHubClient {
    config: GitHubConfig,
    client: reqwest::Client,
}

impl GitHubClient {
    /// A client for `config`: the base URL must be http(s).
    pub fn new(config: GitHubConfig) -> Result<GitHubClient, Error> {
        let url = reqwest::Url::parse(&config.api_url).map_err(|err| Error::Config {
            message: format!("`{}` is not a URL: {err}", config.api_url),
            hint: "set `GITHUB_API_URL` to the API's base, such as https://api.github.com"
                .to_owned(),
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(Error::Config {
                message: format!("`{}` is not an http(s) URL", config.api_url),
                hint: "set `GITHUB_API_URL` to the API's base, such as https://api.github.com"
                    .to_owned(),
            });
        }
        // No redirects: the token must reach only the configured API.
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("slipway/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|err| Error::Config {
                message: format!("cannot build the HTTP client: {err}"),
                hint: "this is a bug; report it".to_owned(),
            })?;
        Ok(GitHubClient { config, client })
    }
}

#[derive(Deserialize)]
struct ReviewJson {
    state: String,
    #[serde(default)]
    comment: Option<String>,
    #[serde(default)]
    environments: Vec<EnvironmentJson>,
    user: UserJson,
}

#[derive(Deserialize)]
struct EnvironmentJson {
    name: String,
}

#[derive(Deserialize)]
struct UserJson {
    login: String,
}

/// Parses the body of `GET …/actions/runs/{run_id}/approvals`.
pub fn parse_reviews(body: &[u8]) -> Result<Vec<Review>, String> {
    let reviews: Vec<ReviewJson> = serde_json::from_slice(body).map_err(|err| err.to_string())?;
    Ok(reviews
        .into_iter()
        .map(|review| Review {
            login: review.user.login,
            state: match review.state.as_str() {
                "approved" => ReviewState::Approved,
                "rejected" => ReviewState::Rejected,
                other => ReviewState::Other(other.to_owned()),
            },
            environments: review
                .environments
                .into_iter()
                .map(|environment| environment.name)
                .collect(),
            comment: review.comment.unwrap_or_default(),
        })
        .collect())
}

#[async_trait::async_trait]
impl GitHub for GitHubClient {
    async fn run_reviews(&self, run: &RunRef) -> Result<Vec<Review>, Error> {
        let url = format!(
            "{}/repos/{}/actions/runs/{}/approvals",
            self.config.api_url.trim_end_matches('/'),
            run.repository,
            run.run_id
        );
        let mut attempt = 0;
        loop {
            attempt += 1;
            let sent = self
                .client
                .get(&url)
                .bearer_auth(self.config.token.expose())
                .header(reqwest::header::ACCEPT, "application/vnd.github+json")
                .header("X-GitHub-Api-Version", "2022-11-28")
                .send()
                .await;
            let response = match sent {
                Ok(response) => response,
                Err(err) if attempt < 3 && (err.is_connect() || err.is_timeout()) => {
                    pause_before_retry(attempt).await;
                    continue;
                }
                Err(err) => {
                    return Err(Error::Request {
                        url,
                        what: if err.is_timeout() {
                            "timed out after 10 s".to_owned()
                        } else if err.is_connect() {
                            "could not connect".to_owned()
                        } else {
                            "no answer".to_owned()
                        },
                    });
                }
            };
            let status = response.status();
            if (status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS)
                && attempt < 3
            {
                pause_before_retry(attempt).await;
                continue;
            }
            let body = response.bytes().await.map_err(|_| Error::Request {
                url: url.clone(),
                what: "the body was cut short".to_owned(),
            })?;
            if !status.is_success() {
                let message = serde_json::from_slice::<serde_json::Value>(&body)
                    .ok()
                    .and_then(|value| value["message"].as_str().map(str::to_owned))
                    .unwrap_or_default();
                let hint = match status.as_u16() {
                    401 => "the token was refused: pass `GITHUB_TOKEN: ${{ secrets.GITHUB_TOKEN }}` in the step's `env:`",
                    403 => "the token may read this run's reviews only with `permissions: actions: read`",
                    404 => "check `GITHUB_REPOSITORY` and `GITHUB_RUN_ID`: the run was not found",
                    _ => "try again; GitHub's status page says whether the API is down",
                }
                .to_owned();
                return Err(Error::Status {
                    url,
                    status: status.as_u16(),
                    message,
                    hint,
                });
            }
            return parse_reviews(&body).map_err(|message| Error::Body { url, message });
        }
    }
}

/// Waits before retry `attempt + 1`: 200 ms, then 400 ms.
async fn pause_before_retry(attempt: u32) {
    tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt))).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_example_parses() {
        let body = include_bytes!("../tests/data/actions-run-approvals.response.json");
        assert_eq!(
            parse_reviews(body),
            Ok(vec![Review {
                login: "octocat".to_owned(),
                state: ReviewState::Approved,
                environments: vec!["staging".to_owned()],
                comment: "Ship it!".to_owned(),
            }])
        );
    }
}

#[cfg(feature = "test-support")]
pub mod testing;
