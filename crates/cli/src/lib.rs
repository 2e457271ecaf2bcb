//! Slipway cli.
