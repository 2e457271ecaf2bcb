//! Slipway analysis.
