//! Every Kubernetes API operation [`crate::KubeCluster`] performs, in one table.
//!
//! Each API call in `kube_cluster.rs` goes through a helper that takes one of these constants, so
//! a 403 names the verb that is missing, and the RBAC Role in `deploy/rbac/role.yaml` can be
//! checked against this table: the Role must grant exactly these verbs, no more.

/// One kind of request Slipway makes: the RBAC verbs it needs on a resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Operation {
    /// RBAC verbs the request needs. Server-side apply needs `patch`, and `create` as well when
    /// the object does not exist yet.
    pub verbs: &'static [&'static str],
    /// API group (`""` for the core group).
    pub group: &'static str,
    /// Plural resource name.
    pub resource: &'static str,
    /// What Slipway uses it for.
    pub purpose: &'static str,
}

impl Operation {
    /// `resource.group`, or just `resource` for the core group (as `kubectl auth can-i` takes it).
    pub fn qualified_resource(&self) -> String {
        if self.group.is_empty() {
            self.resource.to_owned()
        } else {
            format!("{}.{}", self.resource, self.group)
        }
    }
}

const fn op(
    verbs: &'static [&'static str],
    group: &'static str,
    resource: &'static str,
    purpose: &'static str,
) -> Operation {
    Operation {
        verbs,
        group,
        resource,
        purpose,
    }
}

pub(crate) const GET_DEPLOYMENT: Operation = op(
    &["get"],
    "apps",
    "deployments",
    "read stable, canary and colour Deployments and their rollout status",
);
pub(crate) const APPLY_DEPLOYMENT: Operation = op(
    &["patch", "create"],
    "apps",
    "deployments",
    "server-side apply of the canary and colour Deployments",
);
pub(crate) const PATCH_DEPLOYMENT: Operation = op(
    &["patch"],
    "apps",
    "deployments",
    "set the user's Deployment's image (promotion, rolling update, rollback)",
);
pub(crate) const DELETE_DEPLOYMENT: Operation =
    op(&["delete"], "apps", "deployments", "remove the canary");
pub(crate) const LIST_PODS: Operation = op(
    &["list"],
    "",
    "pods",
    "explain why pods are not ready (image pull, crash loop, unschedulable)",
);
pub(crate) const GET_SERVICE: Operation = op(
    &["get"],
    "",
    "services",
    "read the Service in front of a release",
);
pub(crate) const UPDATE_SERVICE: Operation = op(
    &["update"],
    "",
    "services",
    "switch the Service selector between blue and green",
);
pub(crate) const APPLY_SERVICE: Operation = op(
    &["patch", "create"],
    "",
    "services",
    "server-side apply of the blue-green preview Service and the canary Service",
);
pub(crate) const DELETE_SERVICE: Operation = op(
    &["delete"],
    "",
    "services",
    "remove the preview and canary Services",
);
pub(crate) const GET_INGRESS: Operation = op(
    &["get"],
    "networking.k8s.io",
    "ingresses",
    "read the user's Ingress the canary Ingress copies its hosts and paths from",
);
pub(crate) const APPLY_INGRESS: Operation = op(
    &["patch", "create"],
    "networking.k8s.io",
    "ingresses",
    "server-side apply of the NGINX canary Ingress (exact traffic weight)",
);
pub(crate) const DELETE_INGRESS: Operation = op(
    &["delete"],
    "networking.k8s.io",
    "ingresses",
    "remove the canary Ingress",
);
pub(crate) const GET_HTTPROUTE: Operation = op(
    &["get"],
    "gateway.networking.k8s.io",
    "httproutes",
    "read the user's HTTPRoute whose backendRefs carry the canary weight",
);
pub(crate) const APPLY_HTTPROUTE: Operation = op(
    &["patch"],
    "gateway.networking.k8s.io",
    "httproutes",
    "server-side apply of the route's weighted backendRefs (Gateway API weights), and their restore",
);
pub(crate) const GET_SECRET: Operation = op(
    &["get"],
    "",
    "secrets",
    "read a token such as the model server's admin token",
);
pub(crate) const CREATE_EVENT: Operation = op(
    &["create"],
    "events.k8s.io",
    "events",
    "record each decision as an Event on the Deployment",
);
pub(crate) const LIST_HISTORY: Operation =
    op(&["list"], "", "configmaps", "read the release history");
pub(crate) const CREATE_HISTORY: Operation = op(
    &["create"],
    "",
    "configmaps",
    "append a revision to the release history",
);
pub(crate) const FINISH_HISTORY: Operation = op(
    &["update"],
    "",
    "configmaps",
    "replace a revision's in-progress record with how it ended",
);
pub(crate) const DELETE_HISTORY: Operation = op(
    &["delete"],
    "",
    "configmaps",
    "trim the release history beyond its limit",
);
pub(crate) const LIST_AUDIT: Operation = op(
    &["list"],
    "",
    "configmaps",
    "read the audit trail (one immutable ConfigMap per entry)",
);
pub(crate) const CREATE_AUDIT: Operation = op(
    &["create"],
    "",
    "configmaps",
    "append an entry to the audit trail (create only: entries are never updated)",
);
pub(crate) const GET_LEASE: Operation = op(
    &["get"],
    "coordination.k8s.io",
    "leases",
    "read the release lock",
);
pub(crate) const CREATE_LEASE: Operation = op(
    &["create"],
    "coordination.k8s.io",
    "leases",
    "take a free release lock",
);
pub(crate) const UPDATE_LEASE: Operation = op(
    &["update"],
    "coordination.k8s.io",
    "leases",
    "renew the lock, or take it over after it expired",
);
pub(crate) const DELETE_LEASE: Operation = op(
    &["delete"],
    "coordination.k8s.io",
    "leases",
    "give the lock up",
);

/// Every operation Slipway performs against a cluster. `deploy/rbac/role.yaml` grants exactly
/// the verbs listed here.
pub const OPERATIONS: &[Operation] = &[
    GET_DEPLOYMENT,
    APPLY_DEPLOYMENT,
    PATCH_DEPLOYMENT,
    DELETE_DEPLOYMENT,
    LIST_PODS,
    GET_SERVICE,
    UPDATE_SERVICE,
    APPLY_SERVICE,
    DELETE_SERVICE,
    GET_INGRESS,
    APPLY_INGRESS,
    DELETE_INGRESS,
    GET_HTTPROUTE,
    APPLY_HTTPROUTE,
    GET_SECRET,
    CREATE_EVENT,
    LIST_HISTORY,
    CREATE_HISTORY,
    FINISH_HISTORY,
    DELETE_HISTORY,
    LIST_AUDIT,
    CREATE_AUDIT,
    GET_LEASE,
    CREATE_LEASE,
    UPDATE_LEASE,
    DELETE_LEASE,
];
