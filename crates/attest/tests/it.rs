//! Integration tests of `slipway-attest`, in one test binary:
//! - `fixtures`: cosign and sigstore keys and signatures, and DSSE envelopes from slsa-verifier's
//!   test data, checked without a registry;
//! - `registry`: signing, appending, verification, provenance and model links against the real
//!   registry from `cargo xtask services` (skipped locally when absent, a failure under CI);
//! - `openssl`: interop with an independent ECDSA implementation, in both directions;
//! - `sigstore`: Sigstore bundles, keyless (public cosign v3 and conformance bundles, offline)
//!   and with a key, both signature formats on the real registry;
//! - `sigstore_interop`: sigstore-rs's cosign client verifies Slipway's signatures and Slipway
//!   verifies sigstore-rs's, on the real registry (and `cosign` when it is on PATH).

// A test crate root resolves modules next to itself; `#[path]` keeps them in `tests/it/`.
#[path = "it/fixtures.rs"]
mod fixtures;
#[path = "it/openssl.rs"]
mod openssl;
#[path = "it/registry.rs"]
mod registry;
#[path = "it/sigstore.rs"]
mod sigstore;
#[path = "it/sigstore_interop.rs"]
mod sigstore_interop;
#[path = "it/support.rs"]
mod support;
