//! Slipway audit-log.
