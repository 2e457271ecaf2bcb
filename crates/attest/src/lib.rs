//! Slipway attest.
