//! Integration tests of slipway-k8s-rollout: the kube-rs implementation against a scripted API
//! server, the strategies as whole runs on the in-memory cluster (including runs killed after
//! each step), the RBAC Role against the operations table, and the same scenarios against a real
//! cluster (`cargo xtask e2e --kubeconfig PATH`).

mod audit;
mod e2e;
mod kube;
mod rbac;
mod scenarios;
mod scripted;
