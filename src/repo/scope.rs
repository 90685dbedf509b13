//! Which kinds are namespaced, as far as the repository layer can know without a cluster:
//! Kubernetes' own kinds (their scope as k8s-openapi declares it), the CustomResourceDefinitions
//! the repository applies itself (`spec.scope`), and the platform's components' kinds (their
//! CRDs' `spec.scope`, docs/reference/components.md §6.4 [F11]). Any other kind is not judged.
//!
//! Flux applies with server-side apply, which needs `metadata.namespace` on every namespaced
//! object: kustomize-controller fails the whole Kustomization with
//! `<Kind>/<name> namespace not specified` when kustomize's `namespace:` and the
//! Kustomization's `spec.targetNamespace` leave one without.
//!
//! ```
//! use platform_acceptance::repo::scope::Scopes;
//! let scopes = Scopes::default();
//! assert_eq!(scopes.namespaced("apps/v1", "Deployment"), Some(true));
//! assert_eq!(scopes.namespaced("v1", "Namespace"), Some(false));
//! assert_eq!(scopes.namespaced("cert-manager.io/v1", "ClusterIssuer"), Some(false));
//! assert_eq!(scopes.namespaced("example.com/v1", "Widget"), None);
//! ```

use std::any::TypeId;
use std::collections::BTreeMap;

use k8s_openapi::api::{
    admissionregistration::v1 as admission, apps::v1 as apps, autoscaling::v2 as autoscaling, batch::v1 as batch,
    coordination::v1 as coordination, core::v1 as core, discovery::v1 as discovery, networking::v1 as networking,
    policy::v1 as policy, rbac::v1 as rbac, scheduling::v1 as scheduling, storage::v1 as storage,
};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::{NamespaceResourceScope, Resource};
use serde_json::Value;

/// The platform's components' kinds that are cluster-scoped; every other kind of these API
/// groups is namespaced (their CRDs' `spec.scope`).
const COMPONENT_GROUPS: &[(&str, &[&str])] = &[
    ("source.toolkit.fluxcd.io", &[]),
    ("kustomize.toolkit.fluxcd.io", &[]),
    ("helm.toolkit.fluxcd.io", &[]),
    ("notification.toolkit.fluxcd.io", &[]),
    ("image.toolkit.fluxcd.io", &[]),
    ("cert-manager.io", &["ClusterIssuer"]),
    ("external-secrets.io", &["ClusterSecretStore", "ClusterExternalSecret", "ClusterPushSecret"]),
    ("generators.external-secrets.io", &["ClusterGenerator"]),
    ("postgresql.cnpg.io", &["ClusterImageCatalog"]),
    ("velero.io", &[]),
    ("volsync.backube", &[]),
    ("ceph.rook.io", &[]),
    ("monitoring.coreos.com", &[]),
    ("operator.victoriametrics.com", &[]),
    ("gateway.networking.k8s.io", &["GatewayClass"]),
    ("dragonflydb.io", &[]),
    ("k8s.keycloak.org", &[]),
    ("installation.mattermost.com", &[]),
    ("multicluster.x-k8s.io", &[]),
];

/// Kubernetes' own kinds with their scope (group, kind, namespaced).
fn builtin() -> Vec<(&'static str, &'static str, bool)> {
    fn entry<K: Resource>() -> (&'static str, &'static str, bool)
    where
        K::Scope: 'static,
    {
        (K::GROUP, K::KIND, TypeId::of::<K::Scope>() == TypeId::of::<NamespaceResourceScope>())
    }
    vec![
        entry::<core::ConfigMap>(),
        entry::<core::Secret>(),
        entry::<core::Service>(),
        entry::<core::ServiceAccount>(),
        entry::<core::Pod>(),
        entry::<core::PersistentVolumeClaim>(),
        entry::<core::PersistentVolume>(),
        entry::<core::Namespace>(),
        entry::<core::Node>(),
        entry::<core::Endpoints>(),
        entry::<core::LimitRange>(),
        entry::<core::ResourceQuota>(),
        entry::<apps::Deployment>(),
        entry::<apps::StatefulSet>(),
        entry::<apps::DaemonSet>(),
        entry::<apps::ReplicaSet>(),
        entry::<batch::Job>(),
        entry::<batch::CronJob>(),
        entry::<rbac::Role>(),
        entry::<rbac::RoleBinding>(),
        entry::<rbac::ClusterRole>(),
        entry::<rbac::ClusterRoleBinding>(),
        entry::<networking::NetworkPolicy>(),
        entry::<networking::Ingress>(),
        entry::<networking::IngressClass>(),
        entry::<policy::PodDisruptionBudget>(),
        entry::<autoscaling::HorizontalPodAutoscaler>(),
        entry::<storage::StorageClass>(),
        entry::<storage::CSIDriver>(),
        entry::<scheduling::PriorityClass>(),
        entry::<admission::ValidatingWebhookConfiguration>(),
        entry::<admission::MutatingWebhookConfiguration>(),
        entry::<coordination::Lease>(),
        entry::<discovery::EndpointSlice>(),
        entry::<CustomResourceDefinition>(),
    ]
}

/// The scope of each kind the repository layer can judge: (group, kind) → namespaced.
#[derive(Debug, Clone)]
pub struct Scopes(BTreeMap<(String, String), bool>);

impl Default for Scopes {
    /// Kubernetes' own kinds; the platform's components' kinds are judged by their group.
    fn default() -> Self {
        Scopes(builtin().into_iter().map(|(g, k, n)| ((g.to_string(), k.to_string()), n)).collect())
    }
}

impl Scopes {
    /// These scopes with the CustomResourceDefinitions among `objects` (what the repository
    /// applies itself), which take precedence.
    pub fn with_crds<'a>(mut self, objects: impl IntoIterator<Item = &'a Value>) -> Self {
        for o in objects.into_iter().filter(|o| o["kind"] == "CustomResourceDefinition") {
            let (Some(group), Some(kind), Some(scope)) = (o["spec"]["group"].as_str(), o["spec"]["names"]["kind"].as_str(), o["spec"]["scope"].as_str()) else {
                continue;
            };
            self.0.insert((group.to_string(), kind.to_string()), scope == "Namespaced");
        }
        self
    }

    /// Whether objects of `kind` in `api_version` are namespaced; `None` for a kind this
    /// cannot tell.
    pub fn namespaced(&self, api_version: &str, kind: &str) -> Option<bool> {
        let group = api_version.rsplit_once('/').map_or("", |(g, _)| g);
        if let Some(n) = self.0.get(&(group.to_string(), kind.to_string())) {
            return Some(*n);
        }
        COMPONENT_GROUPS.iter().find(|(g, _)| *g == group).map(|(_, cluster)| !cluster.contains(&kind))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn kinds_are_judged_by_k8s_openapi_the_repository_crds_and_the_components_groups() {
        let s = Scopes::default();
        assert_eq!(s.namespaced("v1", "ConfigMap"), Some(true));
        assert_eq!(s.namespaced("rbac.authorization.k8s.io/v1", "ClusterRole"), Some(false));
        assert_eq!(s.namespaced("storage.k8s.io/v1", "StorageClass"), Some(false));
        assert_eq!(s.namespaced("source.toolkit.fluxcd.io/v1", "OCIRepository"), Some(true));
        assert_eq!(s.namespaced("external-secrets.io/v1", "ClusterSecretStore"), Some(false));
        assert_eq!(s.namespaced("gateway.networking.k8s.io/v1", "HTTPRoute"), Some(true));
        assert_eq!(s.namespaced("cilium.io/v2", "CiliumLoadBalancerIPPool"), None, "not judged");
        let crd = json!({"kind": "CustomResourceDefinition", "spec": {"group": "cilium.io", "names": {"kind": "CiliumLoadBalancerIPPool"}, "scope": "Cluster"}});
        let s = s.with_crds([&crd]);
        assert_eq!(s.namespaced("cilium.io/v2", "CiliumLoadBalancerIPPool"), Some(false), "the repository's own CRD");
    }
}
