//! Slipway registry.
