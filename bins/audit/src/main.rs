//! slipway-audit.
fn main() {}
