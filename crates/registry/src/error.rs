//! [`Error`]: what can go wrong talking to a registry. Every variant names the operation and the
//! image, so a message read alone in a CI log says what Slipway was doing and to what.

use std::time::Duration;

/// Errors talking to a registry. Each names the image and the operation.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The repository, tag or digest does not exist.
    #[error(
        "{operation} `{image}`: not found in the registry\n\nhint: check the repository and tag, and that the image was pushed"
    )]
    NotFound {
        /// What we were doing.
        operation: &'static str,
        /// The image.
        image: String,
    },
    /// The registry wants credentials we do not have, or refused the ones we sent.
    #[error("{operation} `{image}`: the registry refused access ({status}){}", unauthorized_hint(*had_credentials, registry))]
    Unauthorized {
        /// What we were doing.
        operation: &'static str,
        /// The image.
        image: String,
        /// The registry host.
        registry: String,
        /// HTTP status (401 or 403).
        status: u16,
        /// Whether we sent credentials (from the docker config or a credential helper).
        had_credentials: bool,
    },
    /// The registry failed (5xx, 429) or could not be reached, on every attempt.
    #[error(
        "{operation} `{image}`: {message}\n\nhint: the registry is down or overloaded; retry later"
    )]
    Unavailable {
        /// What we were doing.
        operation: &'static str,
        /// The image.
        image: String,
        /// What went wrong, with the number of attempts.
        message: String,
    },
    /// The registry did not answer in time, on every attempt.
    #[error("{operation} `{image}`: no answer within {}s on each of {attempts} attempt(s)\n\nhint: check that the registry is reachable from here, or raise the registry timeout", timeout.as_secs_f32())]
    Timeout {
        /// What we were doing.
        operation: &'static str,
        /// The image.
        image: String,
        /// The per-request timeout.
        timeout: Duration,
        /// How many requests were made.
        attempts: u32,
    },
    /// The registry answered, but refused the request (a 4xx other than auth and not-found) or sent
    /// something that is not a valid answer (bad manifest, digest mismatch).
    #[error("{operation} `{image}`: {message}")]
    Rejected {
        /// What we were doing.
        operation: &'static str,
        /// The image.
        image: String,
        /// What the registry said or what is wrong with its answer.
        message: String,
    },
    /// A multi-platform index has no manifest for the platform we deploy to.
    #[error(
        "{operation} `{image}`: the index has no manifest for {platform} (it has: {available})\n\nhint: build the image for {platform}, or configure the platform the cluster runs"
    )]
    NoMatchingPlatform {
        /// What we were doing.
        operation: &'static str,
        /// The image.
        image: String,
        /// The platform we looked for, e.g. `linux/amd64`.
        platform: String,
        /// The platforms the index lists.
        available: String,
    },
    /// The reference lacks a tag or digest the operation needs.
    #[error("{operation} `{image}`: {message}")]
    InvalidInput {
        /// What we were doing.
        operation: &'static str,
        /// The image.
        image: String,
        /// What is missing.
        message: String,
    },
    /// The docker config or a credential helper could not give us credentials.
    #[error("credentials for `{registry}`: {message}")]
    Credentials {
        /// The registry host.
        registry: String,
        /// What went wrong (never the secret itself).
        message: String,
    },
}

fn unauthorized_hint(had_credentials: bool, registry: &str) -> String {
    if had_credentials {
        format!(
            "\n\nhint: the credentials for `{registry}` were refused or do not allow this operation; log in again with `docker login {registry}`"
        )
    } else {
        format!(
            "\n\nhint: no credentials for `{registry}` were found; log in with `docker login {registry}` (Slipway reads `$DOCKER_CONFIG/config.json` or `~/.docker/config.json`)"
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every message, with its hint, as a user reads it.
    #[test]
    fn messages() {
        let image = || "127.0.0.1:5000/acme/iris:1.0".to_owned();
        let errors = [
            Error::NotFound {
                operation: "resolve",
                image: image(),
            },
            Error::Unauthorized {
                operation: "resolve",
                image: image(),
                registry: "127.0.0.1:5000".into(),
                status: 401,
                had_credentials: false,
            },
            Error::Unauthorized {
                operation: "push artifact to",
                image: image(),
                registry: "127.0.0.1:5000".into(),
                status: 403,
                had_credentials: true,
            },
            Error::Unavailable {
                operation: "resolve",
                image: image(),
                message: "the registry failed (503) (gave up after 4 attempt(s))".into(),
            },
            Error::Timeout {
                operation: "read artifact of",
                image: image(),
                timeout: Duration::from_millis(2500),
                attempts: 4,
            },
            Error::Rejected {
                operation: "push artifact to",
                image: image(),
                message: "the registry answered 400: manifest invalid".into(),
            },
            Error::NoMatchingPlatform {
                operation: "resolve",
                image: image(),
                platform: "linux/amd64".into(),
                available: "linux/arm64/v8".into(),
            },
            Error::InvalidInput {
                operation: "tag",
                image: image(),
                message: "the image must be pinned by digest to be tagged".into(),
            },
            Error::Credentials {
                registry: "ghcr.io".into(),
                message: "`docker-credential-desktop get` failed (exit status: 1): boom".into(),
            },
        ];
        let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
        insta::assert_snapshot!(text.join("\n---\n"));
    }
}
