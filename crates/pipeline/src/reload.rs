//! The model server's reload endpoint: after promotion, tell the server which model version to
//! load, authenticated with the admin token read from a Kubernetes Secret (the seeds' runbook:
//! `POST /admin/reload` with `X-Admin-Token`).
//!
//! The token is a `Secret` from the cluster to the header and nowhere else: errors name the
//! endpoint's host and the Secret, never the token or the full URL.

use std::time::Duration;

use slipway_core::{ModelVersion, Secret};

/// Where to reload and where the token lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReloadSpec {
    /// The endpoint, e.g. `http://iris-classifier.ml-serving.svc:8080/admin/reload`.
    pub url: String,
    /// The Secret (in the release's namespace) holding the admin token.
    pub secret_name: String,
    /// Its key.
    pub secret_key: String,
}

/// Header carrying the admin token.
pub const ADMIN_TOKEN_HEADER: &str = "X-Admin-Token";

/// Posts `{"model": name, "version": n}` with the token; 3 attempts on connection errors and
/// 5xx, none on 4xx. A 401/403 says the token was refused.
pub async fn reload(spec: &ReloadSpec, token: &Secret, model: &ModelVersion) -> Result<(), String> {
    let host = reqwest::Url::parse(&spec.url)
        .map_err(|err| format!("reload URL is not valid ({err})"))?
        .host_str()
        .unwrap_or("unknown host")
        .to_owned();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .map_err(|err| format!("cannot build the HTTP client: {err}"))?;
    let body = serde_json::json!({"model": model.name, "version": model.version.to_string()});
    let mut last = String::new();
    let mut delay = Duration::from_millis(200);
    for attempt in 1..=3 {
        let sent = client
            .post(&spec.url)
            .header(ADMIN_TOKEN_HEADER, token.expose())
            .json(&body)
            .send()
            .await;
        match sent {
            Ok(response) if response.status().is_success() => return Ok(()),
            Ok(response) if matches!(response.status().as_u16(), 401 | 403) => {
                return Err(format!(
                    "the model server at {host} refused the admin token from Secret `{}` key `{}` ({})",
                    spec.secret_name,
                    spec.secret_key,
                    response.status()
                ));
            }
            Ok(response) if response.status().is_client_error() => {
                return Err(format!(
                    "the model server at {host} answered {}",
                    response.status()
                ));
            }
            Ok(response) => {
                last = format!("the model server at {host} answered {}", response.status())
            }
            Err(err) => {
                let what = if err.is_timeout() {
                    "timed out"
                } else if err.is_connect() {
                    "could not be reached"
                } else {
                    "failed"
                };
                last = format!("the model server at {host} {what}");
            }
        }
        if attempt < 3 {
            tokio::time::sleep(delay).await;
            delay = delay.saturating_mul(2);
        }
    }
    Err(format!("{last} (gave up after 3 attempts)"))
}
