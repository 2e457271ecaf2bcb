//! Integration tests of `slipway-attest`, in one test binary:
//! - `fixtures`: cosign and sigstore keys and signatures, and DSSE envelopes from slsa-verifier's
//!   test data, checked without a registry;
//! - `registry`: signing, appending, verification, provenance and model links against the real
//!   registry from `cargo xtask services` (skipped locally when absent, a failure under CI);
//! - `openssl`: interop with an independent ECDSA implementation, in both directions;
//! - `sigstore`: Sigstore bundles, keyless (public cosign v3 and conformance bundles, offline)
//!   and with a key, both signature formats on the real registry.

// A test crate root resolves modules next to itself; `#[path]` keeps them in `tests/it/`.
#[path = "it/fixtures.rs"]
mod fixtures;
#[path = "it/openssl.rs"]
mod openssl;
#[path = "it/registry.rs"]
mod registry;
#[path = "it/sigstore.rs"]
mod sigstore;
#[path = "it/support.rs"]
mod support;
