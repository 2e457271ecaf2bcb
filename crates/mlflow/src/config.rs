//! [`MlflowConfig`]: where the MLflow tracking server is and how to authenticate, read from the
//! same environment variables MLflow's own Python and Java clients read.
//!
//! The library never reads the process environment itself: [`MlflowConfig::from_env_map`] takes a
//! lookup function, so the binaries pass `std::env::var` and tests pass a map.

use std::time::Duration;

use slipway_core::Secret;

/// The environment variables [`MlflowConfig::from_env_map`] reads, each declared once.
pub mod env_vars {
    /// Tracking server address, `http://host:port` or `https://…` (optionally with a path prefix).
    pub const MLFLOW_TRACKING_URI: &str = "MLFLOW_TRACKING_URI";
    /// Bearer token (Databricks-style or a reverse proxy's); ignored when basic auth is set, as in MLflow.
    pub const MLFLOW_TRACKING_TOKEN: &str = "MLFLOW_TRACKING_TOKEN";
    /// Basic-auth user (MLflow's built-in `--app-name basic-auth`); needs the password too.
    pub const MLFLOW_TRACKING_USERNAME: &str = "MLFLOW_TRACKING_USERNAME";
    /// Basic-auth password.
    pub const MLFLOW_TRACKING_PASSWORD: &str = "MLFLOW_TRACKING_PASSWORD";
    /// `true` skips TLS certificate verification (self-signed test servers only).
    pub const MLFLOW_TRACKING_INSECURE_TLS: &str = "MLFLOW_TRACKING_INSECURE_TLS";
    /// Per-request timeout in seconds (MLflow's name; its default is 120, ours is 30).
    pub const MLFLOW_HTTP_REQUEST_TIMEOUT: &str = "MLFLOW_HTTP_REQUEST_TIMEOUT";
    /// Retries after the first attempt (MLflow's name; its default is 7, ours is 3).
    pub const MLFLOW_HTTP_REQUEST_MAX_RETRIES: &str = "MLFLOW_HTTP_REQUEST_MAX_RETRIES";
}

/// How to authenticate to the tracking server.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum MlflowAuth {
    /// No `Authorization` header.
    #[default]
    None,
    /// `Authorization: Bearer <token>`.
    Bearer(Secret),
    /// `Authorization: Basic …`.
    Basic {
        /// User name (not secret: it appears in audit logs anyway).
        user: String,
        /// Password.
        password: Secret,
    },
}

/// Settings for [`crate::MlflowClient`]. Fields have no invariants beyond their types, so they
/// are public; the builder-lite methods are a convenience.
#[derive(Debug, Clone, PartialEq)]
pub struct MlflowConfig {
    /// Tracking server base address, without a trailing `/`, e.g. `http://127.0.0.1:5000`.
    pub uri: String,
    /// Authentication.
    pub auth: MlflowAuth,
    /// Skip TLS certificate verification.
    pub insecure_tls: bool,
    /// Timeout of one HTTP attempt (connect, send and read the whole body).
    pub timeout: Duration,
    /// Retries after the first attempt, on connection errors, 429 and 5xx only.
    pub retries: u32,
    /// Wait before the first retry; it doubles on each further retry, up to 10 s.
    pub backoff: Duration,
}

/// Longest wait between two attempts, whatever `backoff` and `Retry-After` say.
pub(crate) const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// Why the MLflow settings could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A variable is missing or has a value we cannot use.
    #[error("invalid MLflow setting `{variable}`: {problem}\n\nhint: {hint}")]
    Invalid {
        /// The environment variable (or config field) at fault.
        variable: &'static str,
        /// What is wrong with it; never the value of a secret.
        problem: String,
        /// How to fix it.
        hint: String,
    },
    /// The HTTP client could not be built (TLS backend initialisation).
    #[error("failed to build the HTTP client for MLflow at `{uri}`")]
    Client {
        /// The tracking server address.
        uri: String,
        /// What failed.
        #[source]
        source: reqwest::Error,
    },
}

impl MlflowConfig {
    /// Settings for `uri` with no auth and the default timeout (30 s) and retries (3, from 0.5 s).
    pub fn new(uri: impl Into<String>) -> MlflowConfig {
        MlflowConfig {
            uri: uri.into().trim_end_matches('/').to_owned(),
            auth: MlflowAuth::None,
            insecure_tls: false,
            timeout: Duration::from_secs(30),
            retries: 3,
            backoff: Duration::from_millis(500),
        }
    }

    /// Sets the authentication.
    #[must_use]
    pub fn auth(mut self, auth: MlflowAuth) -> MlflowConfig {
        self.auth = auth;
        self
    }

    /// Sets the per-attempt timeout.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> MlflowConfig {
        self.timeout = timeout;
        self
    }

    /// Sets the number of retries and the first backoff.
    #[must_use]
    pub fn retries(mut self, retries: u32, backoff: Duration) -> MlflowConfig {
        self.retries = retries;
        self.backoff = backoff;
        self
    }

    /// Reads the settings the way MLflow's clients do, through `lookup` (pass
    /// `|name| std::env::var(name).ok()` in a binary). Empty values count as unset.
    ///
    /// As in MLflow, a username with a password means basic auth and wins over a token.
    /// Unlike MLflow, a username without a password is an error rather than silently no auth,
    /// and only `http` and `https` URIs are accepted (Slipway talks to a tracking *server*).
    pub fn from_env_map(
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<MlflowConfig, ConfigError> {
        use env_vars::*;
        let get = |name: &str| lookup(name).filter(|value| !value.trim().is_empty());

        let Some(uri) = get(MLFLOW_TRACKING_URI) else {
            return Err(ConfigError::Invalid {
                variable: MLFLOW_TRACKING_URI,
                problem: "it is not set".to_owned(),
                hint: format!(
                    "export {MLFLOW_TRACKING_URI}=http://<host>:<port> (the tracking server's address)"
                ),
            });
        };
        let uri = uri.trim().to_owned();
        check_uri(&uri)?;
        let mut config = MlflowConfig::new(uri);

        config.auth = match (
            get(MLFLOW_TRACKING_USERNAME),
            get(MLFLOW_TRACKING_PASSWORD),
            get(MLFLOW_TRACKING_TOKEN),
        ) {
            (Some(user), Some(password), _) => MlflowAuth::Basic {
                user,
                password: Secret::new(password),
            },
            (Some(_), None, _) => {
                return Err(ConfigError::Invalid {
                    variable: MLFLOW_TRACKING_PASSWORD,
                    problem: format!("{MLFLOW_TRACKING_USERNAME} is set but the password is not"),
                    hint: format!(
                        "set both {MLFLOW_TRACKING_USERNAME} and {MLFLOW_TRACKING_PASSWORD}, or neither"
                    ),
                });
            }
            (None, Some(_), _) => {
                return Err(ConfigError::Invalid {
                    variable: MLFLOW_TRACKING_USERNAME,
                    problem: format!("{MLFLOW_TRACKING_PASSWORD} is set but the username is not"),
                    hint: format!(
                        "set both {MLFLOW_TRACKING_USERNAME} and {MLFLOW_TRACKING_PASSWORD}, or neither"
                    ),
                });
            }
            (None, None, Some(token)) => MlflowAuth::Bearer(Secret::new(token)),
            (None, None, None) => MlflowAuth::None,
        };

        if let Some(value) = get(MLFLOW_TRACKING_INSECURE_TLS) {
            config.insecure_tls = parse_bool(MLFLOW_TRACKING_INSECURE_TLS, &value)?;
        }
        if let Some(value) = get(MLFLOW_HTTP_REQUEST_TIMEOUT) {
            let seconds = parse_number(MLFLOW_HTTP_REQUEST_TIMEOUT, &value)?;
            if seconds == 0 {
                return Err(ConfigError::Invalid {
                    variable: MLFLOW_HTTP_REQUEST_TIMEOUT,
                    problem: "a timeout of 0 seconds would fail every request".to_owned(),
                    hint: "use a whole number of seconds, e.g. 30".to_owned(),
                });
            }
            config.timeout = Duration::from_secs(seconds);
        }
        if let Some(value) = get(MLFLOW_HTTP_REQUEST_MAX_RETRIES) {
            let retries = parse_number(MLFLOW_HTTP_REQUEST_MAX_RETRIES, &value)?;
            config.retries = u32::try_from(retries).unwrap_or(u32::MAX);
        }
        Ok(config)
    }
}

fn check_uri(uri: &str) -> Result<(), ConfigError> {
    let invalid = |problem: &str, hint: &str| ConfigError::Invalid {
        variable: env_vars::MLFLOW_TRACKING_URI,
        problem: problem.to_owned(),
        hint: hint.to_owned(),
    };
    let Some((scheme, rest)) = uri.split_once("://") else {
        return Err(invalid(
            &format!("`{uri}` is not an http(s) address"),
            "Slipway needs a tracking server: use http://<host>:<port> (local `./mlruns` or sqlite stores cannot be used)",
        ));
    };
    if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
        return Err(invalid(
            &format!("scheme `{scheme}` is not supported"),
            "use http://<host>:<port> or https://<host>",
        ));
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    // Never echo the URI here: it holds a password.
    if authority.contains('@') {
        return Err(invalid(
            "the address contains credentials (`user:password@`)",
            "remove them from the URI and set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD instead",
        ));
    }
    if authority.is_empty() {
        return Err(invalid(
            &format!("`{uri}` has no host"),
            "use http://<host>:<port>",
        ));
    }
    if reqwest::Url::parse(uri).is_err() {
        return Err(invalid(
            &format!("`{uri}` is not a valid URL"),
            "use http://<host>:<port>",
        ));
    }
    Ok(())
}

/// MLflow's boolean variables accept `true`/`false`/`1`/`0`, in any case.
fn parse_bool(variable: &'static str, value: &str) -> Result<bool, ConfigError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(ConfigError::Invalid {
            variable,
            problem: format!("`{value}` is not a boolean"),
            hint: "use true, false, 1 or 0".to_owned(),
        }),
    }
}

fn parse_number(variable: &'static str, value: &str) -> Result<u64, ConfigError> {
    value.trim().parse().map_err(|_| ConfigError::Invalid {
        variable,
        problem: format!("`{value}` is not a whole number"),
        hint: "use a non-negative integer, e.g. 3".to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn read(pairs: &[(&str, &str)]) -> Result<MlflowConfig, ConfigError> {
        let map: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        MlflowConfig::from_env_map(|name| map.get(name).cloned())
    }

    #[track_caller]
    fn check(pairs: &[(&str, &str)], expect: Result<&str, &str>) {
        match (read(pairs), expect) {
            (Ok(config), Ok(debug)) => assert_eq!(format!("{config:?}"), debug),
            (Err(err), Err(fragment)) => {
                let text = err.to_string();
                assert!(
                    text.contains(fragment),
                    "`{text}` should contain `{fragment}`"
                );
            }
            (got, want) => panic!("from_env_map({pairs:?}) = {got:?}, want {want:?}"),
        }
    }

    #[test]
    fn reads_mlflow_variables() {
        let uri = ("MLFLOW_TRACKING_URI", "http://mlflow:5000/");
        check(
            &[uri],
            Ok(
                "MlflowConfig { uri: \"http://mlflow:5000\", auth: None, insecure_tls: false, timeout: 30s, retries: 3, backoff: 500ms }",
            ),
        );
        check(
            &[uri, ("MLFLOW_TRACKING_TOKEN", "tok-123")],
            Ok(
                "MlflowConfig { uri: \"http://mlflow:5000\", auth: Bearer(<redacted>), insecure_tls: false, timeout: 30s, retries: 3, backoff: 500ms }",
            ),
        );
        check(
            &[
                uri,
                ("MLFLOW_TRACKING_USERNAME", "ci"),
                ("MLFLOW_TRACKING_PASSWORD", "pw-456"),
                ("MLFLOW_TRACKING_TOKEN", "tok-123"),
                ("MLFLOW_TRACKING_INSECURE_TLS", "TRUE"),
                ("MLFLOW_HTTP_REQUEST_TIMEOUT", "5"),
                ("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0"),
            ],
            Ok(
                "MlflowConfig { uri: \"http://mlflow:5000\", auth: Basic { user: \"ci\", password: <redacted> }, insecure_tls: true, timeout: 5s, retries: 0, backoff: 500ms }",
            ),
        );
        check(
            &[uri, ("MLFLOW_TRACKING_TOKEN", "")],
            Ok(
                "MlflowConfig { uri: \"http://mlflow:5000\", auth: None, insecure_tls: false, timeout: 30s, retries: 3, backoff: 500ms }",
            ),
        );
        check(
            &[],
            Err("invalid MLflow setting `MLFLOW_TRACKING_URI`: it is not set\n\nhint: export"),
        );
        check(
            &[("MLFLOW_TRACKING_URI", "./mlruns")],
            Err("`./mlruns` is not an http(s) address"),
        );
        check(
            &[("MLFLOW_TRACKING_URI", "databricks://prof")],
            Err("scheme `databricks` is not supported"),
        );
        check(&[("MLFLOW_TRACKING_URI", "http://")], Err("has no host"));
        check(
            &[uri, ("MLFLOW_TRACKING_USERNAME", "ci")],
            Err("MLFLOW_TRACKING_USERNAME is set but the password is not"),
        );
        check(
            &[uri, ("MLFLOW_TRACKING_PASSWORD", "pw")],
            Err("`MLFLOW_TRACKING_USERNAME`"),
        );
        check(
            &[uri, ("MLFLOW_TRACKING_INSECURE_TLS", "yes")],
            Err("`yes` is not a boolean"),
        );
        check(
            &[uri, ("MLFLOW_HTTP_REQUEST_TIMEOUT", "0")],
            Err("0 seconds"),
        );
        check(
            &[uri, ("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "-1")],
            Err("`-1` is not a whole number"),
        );
    }

    #[test]
    fn credentials_in_the_uri_are_refused_without_echoing_them() {
        let err = read(&[(
            "MLFLOW_TRACKING_URI",
            "https://ci:hunter2@mlflow.example.com",
        )])
        .expect_err("userinfo");
        let text = format!("{err} {err:?}");
        assert!(text.contains("contains credentials"), "{text}");
        assert!(!text.contains("hunter2"), "{text}");
    }
}
