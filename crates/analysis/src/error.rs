//! The crate's error type: one enum, one variant per situation a caller handles differently.

/// Everything that can go wrong in analysis.
///
/// Messages start lowercase, name the query and the backend, and end with a `hint:` after a blank
/// line when there is something to try.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    /// A query template could not be rendered.
    #[error("failed to render query template `{template}`: {problem}\n\nhint: {hint}")]
    Template {
        /// The template text.
        template: String,
        /// What is wrong, naming the placeholder.
        problem: String,
        /// What to do about it.
        hint: String,
    },

    /// The analysis plan is inconsistent. Lists every problem, not just the first.
    #[error(
        "invalid analysis plan:\n{}\n\nhint: fix the `analysis` section of the pipeline config",
        problems.iter().map(|problem| format!("  - {problem}")).collect::<Vec<_>>().join("\n")
    )]
    InvalidPlan {
        /// One line per problem.
        problems: Vec<String>,
    },

    /// The metrics backend could not be asked or did not answer (down, timed out, outage).
    #[error("could not query {backend} for `{query}`: {reason}\n\nhint: {hint}")]
    Unavailable {
        /// Where the query went, e.g. "prometheus at `http://127.0.0.1:9090`".
        backend: String,
        /// The rendered query.
        query: String,
        /// What happened, including the transport's own error chain.
        reason: String,
        /// What to check.
        hint: String,
    },

    /// The backend answered, but refused the query (Prometheus `"status": "error"`).
    #[error(
        "prometheus at `{url}` rejected query `{query}`: {error_type}: {message}\n\nhint: run the query in the Prometheus UI at {url}/graph and fix it in the analysis plan"
    )]
    Rejected {
        /// Prometheus base URL.
        url: String,
        /// The rendered query.
        query: String,
        /// Prometheus' `errorType`, e.g. `bad_data`.
        error_type: String,
        /// Prometheus' `error` text.
        message: String,
    },

    /// The backend answered with something we cannot read, or a result type the analysis cannot
    /// use (e.g. several series where one number was needed).
    #[error("unusable answer from {backend} for `{query}`: {problem}\n\nhint: {hint}")]
    BadResponse {
        /// Where the query went.
        backend: String,
        /// The rendered query.
        query: String,
        /// What is wrong with the answer.
        problem: String,
        /// What to do about it.
        hint: String,
    },

    /// An evaluation data set could not be read.
    #[error(
        "failed to load evaluation data set `{path}`: {problem}\n\nhint: write one JSON object per line, `{{\"input\": ..., \"label\": ...}}`"
    )]
    Dataset {
        /// The file.
        path: String,
        /// What is wrong, with the line number.
        problem: String,
    },

    /// A [`crate::PrometheusClient`] could not be built from its configuration.
    #[error("invalid prometheus configuration for `{url}`: {problem}\n\nhint: {hint}")]
    Config {
        /// The configured URL.
        url: String,
        /// What is wrong.
        problem: String,
        /// What to do about it.
        hint: String,
    },
}
