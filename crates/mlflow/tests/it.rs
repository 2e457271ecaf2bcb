//! The one integration-test binary of slipway-mlflow.
//!
//! - `http`: the client's HTTP behaviour (retries, timeouts, auth, error text) against a scripted
//!   local server serving real MLflow responses from `tests/data/`;
//! - `real`: the client against a real MLflow tracking server given by `SLIPWAY_TEST_MLFLOW`
//!   (started by `cargo xtask services start`), seeded through REST by each test;
//! - `seeded`: the client against the model `cargo xtask services start` seeded with MLflow's own
//!   Python client (`SLIPWAY_TEST_MLFLOW_SEEDED`), and the four failures a user must tell apart.

// A test crate root resolves modules next to itself (`tests/fake.rs`), where cargo would take
// them for test binaries of their own; `#[path]` keeps them in `tests/it/`.
#[path = "it/fake.rs"]
mod fake;
#[path = "it/http.rs"]
mod http;
#[path = "it/real.rs"]
mod real;
#[path = "it/seeded.rs"]
mod seeded;
