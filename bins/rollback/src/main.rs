//! slipway-rollback.
fn main() {}
