//! Slipway scanner.
