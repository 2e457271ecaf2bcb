//! Slipway pipeline.
