//! Slipway k8s-rollout.
