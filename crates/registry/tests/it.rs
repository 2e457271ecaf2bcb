//! Integration tests of `slipway-registry`, in one test binary:
//! - `real`: the real registry from `cargo xtask services` (skipped locally when it is not
//!   running, a failure under CI), with images the tests build as OCI layouts and push with skopeo.
//! - `auth`: a registry with htpasswd auth, started by the test from the `docker-registry` binary.
//! - `faults`: a scripted HTTP server for faults a real registry cannot produce.

// A test crate root resolves modules next to itself (`tests/auth.rs`), where cargo would take
// them for test binaries of their own; `#[path]` keeps them in `tests/it/`.
#[path = "it/auth.rs"]
mod auth;
#[path = "it/faults.rs"]
mod faults;
#[path = "it/real.rs"]
mod real;
#[path = "it/scripted.rs"]
mod scripted;
