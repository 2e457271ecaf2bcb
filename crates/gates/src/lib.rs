//! Slipway gates.
