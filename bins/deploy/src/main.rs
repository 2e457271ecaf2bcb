//! slipway-deploy.
fn main() {}
