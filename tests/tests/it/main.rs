//! The workspace's end-to-end tests, one binary (see the crate docs):
//! - `examples`: `examples/github/*.yml` and `slipway.toml` against the real binaries;
//! - `e2e`: the release story and every failure path over the real registry, MLflow and
//!   Prometheus with the in-memory cluster;
//! - `image`: `cargo xtask image` built, pushed to the real registry, run, signed, verified;
//! - `workflows` (with `workflow_runner`): every job of the example workflows run as written;
//! - `secrets`: planted secret values never reach the binaries' stdout or stderr;
//! - `supply_chain`: sign, attest, verify-image, verify-attestation and check-model as
//!   separate processes on the real registry and MLflow, and `require_provenance` end to end;
//! - `trusted_root`: `slipway-audit trusted-root refresh | show` from TUF repositories made in
//!   the test (over `file://` and HTTP), and which root keyless `verify-image` uses.

mod cli;
mod e2e;
mod examples;
mod image;
mod prometheus;
mod real_cluster;
mod secrets;
mod supply_chain;
mod support;
mod trusted_root;
mod workflow_runner;
mod workflows;
