//! Workspace-level tests: the example GitHub workflows checked against the real binaries, the
//! release story and each failure path end to end against the real registry, MLflow and
//! Prometheus from `cargo xtask services`, and the binaries' output checked for planted secrets.
//!
//! Key design decision: everything lives in one integration-test binary (`tests/it/main.rs`),
//! and the library is empty. The binaries are found next to that test executable in the target
//! directory (`target/<profile>/slipway-deploy`), because `CARGO_BIN_EXE_*` exists only inside
//! the binary's own package and a bin cannot be a dev-dependency; `cargo test --workspace` builds
//! the three binaries before any test runs, as their packages have integration tests.
