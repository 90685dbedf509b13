//! What the simulation's answers rest on.
//!
//! The simulation runs the real Kubernetes control plane, kwok in place of kubelets and
//! real PostgreSQL, Redis and MinIO servers; everything else a check reads there was
//! written by the simulation itself (the status of every platform controller that does
//! not run here, the manifests Flux would apply, the observability answers). This module
//! says which is which, per API resource and per service name, so every live verdict on
//! the simulation carries its [`Basis`]; and it lists the criteria the simulation cannot
//! prove at all, which are skipped rather than passed.
//!
//! ```
//! use platform_acceptance::cluster::access::BasisKind;
//! use platform_acceptance::sim::basis::api_basis;
//! assert_eq!(api_basis("get", "apps", "deployments").0, BasisKind::RealOverSimulated);
//! // Rook does not run here: what its kinds hold is the simulation's
//! assert_eq!(api_basis("list", "ceph.rook.io", "cephclusters"), (BasisKind::StandIn, Some("rook-ceph")));
//! // source-controller and helm-controller run for real, over charts the simulation serves
//! assert_eq!(api_basis("list", "source.toolkit.fluxcd.io", "ocirepositories").0, BasisKind::RealOverSimulated);
//! assert_eq!(api_basis("list", "helm.toolkit.fluxcd.io", "helmreleases").0, BasisKind::RealOverSimulated);
//! assert_eq!(api_basis("get", "", "/version").0, BasisKind::Real);
//! // cert-manager runs for real here, over CA issuers standing in for ACME
//! assert_eq!(api_basis("get", "cert-manager.io", "certificates").0, BasisKind::RealOverSimulated);
//! // the check's own writes are the real API server's answer
//! assert_eq!(api_basis("create", "", "namespaces").0, BasisKind::Real);
//! // Velero runs for real: its Backups are its own work over the simulated clusters
//! assert_eq!(api_basis("list", "velero.io", "backups").0, BasisKind::RealOverSimulated);
//! // external-secrets runs for real, over the 1Password Connect stand-in
//! assert_eq!(api_basis("get", "external-secrets.io", "externalsecrets").0, BasisKind::RealOverSimulated);
//! ```

use std::collections::{BTreeMap, BTreeSet};

use crate::cluster::access::{Access, Basis, BasisKind, Provenance};

use super::data::Endpoints;

/// Criteria the simulation cannot prove, with the reason (README lists them).
pub const NOT_PROVABLE: &[(&str, &str)] = &[
    ("2.1.9", "no upstream BGP router exists here, so no BGP session can be established"),
    ("4.2.4", "the simulated nodes have no disks, so Ceph's OSDs and raw capacity would be numbers the simulation made up"),
    ("7.2.9", "no PostgreSQL failover is performed in the simulation, so none can be shown to have happened"),
    ("10.2.2", "no VolSync controller or restic mover runs in the simulation, so no ReplicationDestination can restore"),
];

/// Stand-in names by API group: the simulation writes these components' status.
const STAND_INS: &[(&str, &str)] = &[
    ("toolkit.fluxcd.io", "flux"),
    ("external-secrets.io", "external-secrets"),
    ("ceph.rook.io", "rook-ceph"),
    ("objectbucket.io", "rook-ceph"),
    ("postgresql.cnpg.io", "cloudnative-pg"),
    ("velero.io", "velero"),
    ("volsync.backube", "volsync"),
    ("cilium.io", "cilium"),
    ("gateway.networking.k8s.io", "cilium-gateway"),
    ("multicluster.x-k8s.io", "clustermesh"),
    ("victoriametrics.com", "victoriametrics-operator"),
    ("dragonflydb.io", "dragonfly-operator"),
    ("keycloak.org", "keycloak-operator"),
    ("mattermost.com", "mattermost-operator"),
    ("snapshot.storage.k8s.io", "csi-snapshotter"),
    ("openebs.io", "openebs"),
];

/// Resources whose state real controllers compute over simulated pods, nodes and stand-in inputs.
const REAL_OVER_SIMULATED: &[(&str, &str)] = &[
    ("", "pods"),
    ("", "nodes"),
    ("", "endpoints"),
    ("", "services"),
    ("", "persistentvolumeclaims"),
    ("", "events"),
    ("apps", "deployments"),
    ("apps", "statefulsets"),
    ("apps", "daemonsets"),
    ("apps", "replicasets"),
    ("batch", "jobs"),
    ("batch", "cronjobs"),
    ("discovery.k8s.io", "endpointslices"),
    ("policy", "poddisruptionbudgets"),
    ("coordination.k8s.io", "leases"),
    ("events.k8s.io", "events"),
    // The real cert-manager controller issues every Certificate; the ACME ClusterIssuers
    // it works with are CA issuers of the same names (no ACME server offline).
    ("cert-manager.io", "certificates"),
    ("cert-manager.io", "certificaterequests"),
    ("cert-manager.io", "clusterissuers"),
    ("cert-manager.io", "issuers"),
    // The real Velero server validates the storage location against the real MinIO, runs
    // every Backup (tarball and metadata uploaded) and Restore, and reads backups back from
    // the bucket; what it backs up is the simulated clusters' objects.
    ("velero.io", "backupstoragelocations"),
    ("velero.io", "backups"),
    ("velero.io", "restores"),
    ("velero.io", "schedules"),
    ("velero.io", "deletebackuprequests"),
    // The real external-secrets controller validates the stores and syncs every
    // ExternalSecret, from the 1Password Connect stand-in (src/sim/onepassword.rs).
    ("external-secrets.io", "clustersecretstores"),
    ("external-secrets.io", "secretstores"),
    ("external-secrets.io", "externalsecrets"),
    ("external-secrets.io", "clusterexternalsecrets"),
    // The real source-controller fetches the sync GitRepository from the simulation's Git
    // server (the repository's commit plus the simulation overlay commit), and the real
    // kustomize-controller applies and health-checks it; Kustomizations built from sources
    // the simulation cannot serve are stand-ins labelled in the overlay (scenario::flux).
    ("source.toolkit.fluxcd.io", "gitrepositories"),
    ("kustomize.toolkit.fluxcd.io", "kustomizations"),
    // The real source-controller fetches the https:// HelmRepositories' indexes and charts
    // and the OCIRepositories' chart artifacts from the simulation's chart repositories and
    // registry (charts without templates, src/sim/charts.rs), and the real helm-controller
    // installs and upgrades every HelmRelease built from them; HelmReleases from OCI
    // HelmRepositories are stand-ins labelled in the overlay.
    ("source.toolkit.fluxcd.io", "helmrepositories"),
    ("source.toolkit.fluxcd.io", "ocirepositories"),
    ("source.toolkit.fluxcd.io", "helmcharts"),
    ("helm.toolkit.fluxcd.io", "helmreleases"),
];

/// Stand-in name of objects the simulation applied in place of Flux and Helm.
pub const APPLIED: &str = "manifests applied by the simulation";

/// Stand-in name of CRDs (and the API groups they serve) the simulation installed.
pub const CRDS: &str = "CRDs installed by the simulation";

/// The basis of `verb` on `resource` (plural, maybe `x/status`) of API `group`. A write's
/// success is the real API server's answer; what a read returns depends on who wrote it.
pub fn api_basis(verb: &str, group: &str, resource: &str) -> (BasisKind, Option<&'static str>) {
    let stand_in = STAND_INS.iter().find(|(suffix, _)| group == *suffix || group.ends_with(&format!(".{suffix}"))).map(|(_, name)| *name);
    if resource == "(discovery)" && (stand_in.is_some() || group.contains('.') && !group.ends_with(".k8s.io")) {
        return (BasisKind::StandIn, Some(CRDS));
    }
    if matches!(verb, "create" | "update" | "patch" | "delete") || resource.starts_with('/') || resource == "(discovery)" {
        return (BasisKind::Real, None);
    }
    if group.ends_with("authorization.k8s.io") || group == "authentication.k8s.io" {
        return (BasisKind::Real, None);
    }
    let base = resource.split('/').next().unwrap_or(resource);
    if REAL_OVER_SIMULATED.iter().any(|(g, r)| *g == group && *r == base) {
        return (BasisKind::RealOverSimulated, None);
    }
    if let Some(name) = stand_in {
        return (BasisKind::StandIn, Some(name));
    }
    match (group, base) {
        ("", "persistentvolumes") => (BasisKind::StandIn, Some("volume provisioner stand-in")),
        ("apiextensions.k8s.io", _) => (BasisKind::StandIn, Some(CRDS)),
        _ => (BasisKind::StandIn, Some(APPLIED)),
    }
}

/// Resources whose objects the simulation and real controllers both write (CNPG's Secret
/// beside the Secrets external-secrets syncs; the chart stand-ins' ConfigMaps and
/// CSIDrivers beside the repository's StorageClasses that kustomize-controller applies),
/// so they are judged per object: what a real controller (or the real Flux, from the
/// repository) wrote is `real-over-simulated`, what only the simulation wrote is a stand-in
/// ([`Simulation::written`]). A read by name is judged by its object; a list in one
/// namespace by the objects the simulation wrote there (a round trip's own namespace holds
/// none); a list across namespaces or of a cluster-scoped kind is the simulation's if it
/// wrote any.
const PER_OBJECT: &[(&str, &str)] = &[("", "secrets"), ("", "configmaps"), ("storage.k8s.io", "storageclasses"), ("storage.k8s.io", "csidrivers")];

/// The simulation as a [`Provenance`]: API resources by the tables above, service
/// names by what serves them in the endpoint map.
pub struct Simulation {
    pub endpoints: Endpoints,
    /// Objects of the [`PER_OBJECT`] resources that only the simulation wrote, as
    /// `(cluster, group, resource, "namespace/name" or "name")` (e.g. CNPG's `<cluster>-app`
    /// Secret, the bootstrap Secrets, the charts' ConfigMaps and CSIDrivers); None when it
    /// could not be read, and then every such object counts as the simulation's.
    pub written: Option<BTreeSet<(String, String, String, String)>>,
}

impl Simulation {
    /// Reads which objects of the [`PER_OBJECT`] resources only the simulation wrote: every
    /// field manager of the object is one of the simulation's (`platform-acceptance-sim*`).
    pub async fn read_written(clients: &[(String, kube::Client)]) -> Option<BTreeSet<(String, String, String, String)>> {
        use k8s_openapi::api::core::v1::{ConfigMap, Secret};
        use k8s_openapi::api::storage::v1::{CSIDriver, StorageClass};
        use kube::api::{Api, ListParams, ObjectMeta};
        async fn metas<K>(client: &kube::Client) -> Option<Vec<ObjectMeta>>
        where
            K: kube::Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
        {
            Some(Api::<K>::all(client.clone()).list_metadata(&ListParams::default()).await.ok()?.items.into_iter().map(|o| o.metadata).collect())
        }
        let mut out = BTreeSet::new();
        for (cluster, client) in clients {
            let kinds = [
                ("", "secrets", metas::<Secret>(client).await?),
                ("", "configmaps", metas::<ConfigMap>(client).await?),
                ("storage.k8s.io", "storageclasses", metas::<StorageClass>(client).await?),
                ("storage.k8s.io", "csidrivers", metas::<CSIDriver>(client).await?),
            ];
            for (group, resource, items) in kinds {
                for meta in items {
                    let managers: Vec<String> = meta.managed_fields.iter().flatten().filter_map(|f| f.manager.clone()).collect();
                    if !managers.is_empty() && managers.iter().all(|m| m.starts_with(crate::sim::FIELD_MANAGER)) {
                        let name = meta.name.unwrap_or_default();
                        let object = meta.namespace.map_or(name.clone(), |ns| format!("{ns}/{name}"));
                        out.insert((cluster.clone(), group.to_string(), resource.to_string(), object));
                    }
                }
            }
        }
        Some(out)
    }

    fn object_basis(&self, cluster: &str, verb: &str, group: &str, resource: &str, namespace: Option<&str>, object: Option<&str>) -> Option<(BasisKind, Option<&'static str>)> {
        let written = self.written.as_ref()?;
        if !PER_OBJECT.contains(&(group, resource)) {
            return None;
        }
        // The objects of this kind on this cluster that only the simulation wrote.
        let mut simulations = written.iter().filter(|(c, g, r, _)| c == cluster && g == group && r == resource).map(|(.., o)| o.as_str());
        let simulations = match (verb, object, namespace) {
            ("get", Some(object), _) => simulations.any(|o| o == object),
            ("list" | "watch", None, Some(ns)) => simulations.any(|o| o.split_once('/').is_some_and(|(n, _)| n == ns)),
            ("list" | "watch", None, None) => simulations.next().is_some(),
            _ => return None,
        };
        Some(if simulations { (BasisKind::StandIn, Some(APPLIED)) } else { (BasisKind::RealOverSimulated, None) })
    }
}

impl Simulation {
    fn service_basis(&self, host: &str, port: u16) -> (BasisKind, Option<&'static str>) {
        let served = self.endpoints.endpoints.iter().find(|e| e.host == host && e.port == port).map(|e| e.service.as_str());
        match served {
            // Resolved by the real CoreDNS, from a ServiceImport the simulation writes in place
            // of Cilium's MCS controller, and reached through the simulation's data path.
            _ if host.ends_with(".svc.clusterset.local") => (BasisKind::StandIn, Some("ServiceImport and data path in place of ClusterMesh")),
            Some("postgres" | "redis" | "minio") => (BasisKind::Real, None),
            // Real engines evaluating the query, over samples and lines the agent stand-ins wrote.
            Some("victoria-metrics") => (BasisKind::RealOverSimulated, Some("vmagent stand-in")),
            Some("victoria-logs") => (BasisKind::RealOverSimulated, Some("fluent-bit stand-in")),
            Some("grafana-stand-in") => (BasisKind::StandIn, Some("Grafana API stand-in")),
            Some("gateway-stand-in") => (BasisKind::StandIn, Some("Gateway data plane and application stand-in")),
            Some("onepassword-connect-stand-in") => (BasisKind::StandIn, Some("1Password Connect stand-in")),
            // A cluster name nothing in the map serves (a round trip's own Service, a global
            // Service): resolved by the real CoreDNS, reached through the simulation's
            // Service data path, which also merges a global Service's endpoints across
            // clusters (relay.rs).
            None if host.ends_with(".svc.cluster.local") || host.ends_with(".svc") => (BasisKind::StandIn, Some("Service data path in place of Cilium")),
            Some(_) | None => (BasisKind::StandIn, Some("name map in place of DNS")),
        }
    }
}

impl Provenance for Simulation {
    /// The weakest basis of the accesses. A discovery read of an API group on a cluster
    /// counts only when nothing of that group was read there: a check that then read
    /// objects of the group only looked up the version to read them at, and the objects
    /// decide (a check that reads discovery alone, e.g. "are the Flux APIs served", rests on
    /// the CRDs the simulation installed).
    fn basis(&self, accesses: &[Access]) -> Basis {
        let read: std::collections::BTreeSet<(&str, &str)> = accesses
            .iter()
            .filter_map(|a| match a {
                Access::Api { cluster, verb, group, resource, .. } if resource != "(discovery)" && matches!(verb.as_str(), "get" | "list" | "watch") => {
                    Some((cluster.as_str(), group.as_str()))
                }
                _ => None,
            })
            .collect();
        Basis::weakest(accesses.iter().filter_map(|a| match a {
            Access::Api { cluster, group, resource, .. } if resource == "(discovery)" && read.contains(&(cluster.as_str(), group.as_str())) => None,
            Access::Api { cluster, verb, group, resource, namespace, object } => Some(
                self.object_basis(cluster, verb, group, resource, namespace.as_deref(), object.as_deref()).unwrap_or_else(|| api_basis(verb, group, resource)),
            ),
            Access::Service { host, port } => Some(self.service_basis(host, *port)),
        }))
    }

    fn not_provable(&self) -> BTreeMap<String, String> {
        NOT_PROVABLE.iter().map(|(id, why)| (id.to_string(), why.to_string())).collect()
    }

    fn describe(&self) -> &str {
        "the simulation"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::data::Endpoint;

    #[test]
    fn weakest_input_decides_and_names_stand_ins() {
        let sim = Simulation {
            endpoints: Endpoints {
                endpoints: vec![Endpoint { service: "postgres".into(), host: "pg-rw.db.svc.cluster.local".into(), port: 5432, addr: "127.0.0.1:1".parse().unwrap() }],
            },
            written: None,
        };
        let api = |g: &str, r: &str| Access::Api { cluster: "infra".into(), verb: "get".into(), group: g.into(), resource: r.into(), namespace: None, object: None };
        let svc = |h: &str| Access::Service { host: h.into(), port: 5432 };
        assert_eq!(sim.basis(&[svc("pg-rw.db.svc.cluster.local")]).kind, BasisKind::Real);
        assert_eq!(sim.basis(&[svc("pg-rw.db.svc.cluster.local"), api("apps", "deployments")]).kind, BasisKind::RealOverSimulated);
        let b = sim.basis(&[api("apps", "deployments"), api("postgresql.cnpg.io", "clusters"), svc("pg-rw.db.svc.clusterset.local")]);
        assert_eq!(b.kind, BasisKind::StandIn);
        assert_eq!(b.stand_in, vec!["ServiceImport and data path in place of ClusterMesh".to_string(), "cloudnative-pg".to_string()]);
        assert_eq!(sim.basis(&[api("", "configmaps")]).stand_in, vec![APPLIED.to_string()]);
        // A cluster name nothing in the map serves goes through the Service data path; any
        // other name rests on the map standing in for DNS.
        assert_eq!(sim.basis(&[svc("echo.pa-global.svc.cluster.local")]).stand_in, vec!["Service data path in place of Cilium".to_string()]);
        assert_eq!(sim.basis(&[svc("infra-k8s.example.io")]).stand_in, vec!["name map in place of DNS".to_string()]);
        assert_eq!(sim.basis(&[]).kind, BasisKind::Real);
    }

    #[test]
    fn discovery_counts_only_where_nothing_of_the_group_was_read() {
        let sim = Simulation { endpoints: Endpoints { endpoints: vec![] }, written: None };
        let api = |c: &str, v: &str, g: &str, r: &str| Access::Api { cluster: c.into(), verb: v.into(), group: g.into(), resource: r.into(), namespace: None, object: None };
        let found = api("infra", "get", "helm.toolkit.fluxcd.io", "(discovery)");
        assert_eq!(sim.basis(std::slice::from_ref(&found)).stand_in, vec![CRDS.to_string()], "discovery alone rests on the CRDs the simulation installed");
        let read = sim.basis(&[found.clone(), api("infra", "list", "helm.toolkit.fluxcd.io", "helmreleases")]);
        assert_eq!(read.kind, BasisKind::RealOverSimulated, "the HelmReleases read decide: {read}");
        let elsewhere = sim.basis(&[found.clone(), api("apps", "list", "helm.toolkit.fluxcd.io", "helmreleases")]);
        assert_eq!(elsewhere.stand_in, vec![CRDS.to_string()], "a read on another cluster does not cover it");
        let other = sim.basis(&[found, api("infra", "list", "source.toolkit.fluxcd.io", "helmrepositories")]);
        assert_eq!(other.stand_in, vec![CRDS.to_string()], "nor a read of another group");
    }

    #[test]
    fn a_secret_read_by_name_rests_on_whoever_wrote_it() {
        let written = BTreeSet::from([
            ("infra".to_string(), String::new(), "secrets".to_string(), "databases/postgres-shared-app".to_string()),
            ("infra".to_string(), "storage.k8s.io".to_string(), "csidrivers".to_string(), "rook-ceph.rbd.csi.ceph.com".to_string()),
        ]);
        let sim = Simulation { endpoints: Endpoints { endpoints: vec![] }, written: Some(written) };
        let access = |verb: &str, group: &str, resource: &str, namespace: Option<&str>, object: Option<&str>| Access::Api {
            cluster: "infra".into(),
            verb: verb.into(),
            group: group.into(),
            resource: resource.into(),
            namespace: namespace.map(Into::into),
            object: object.map(Into::into),
        };
        let get = |object: &str| access("get", "", "secrets", object.split_once('/').map(|(ns, _)| ns), Some(object));
        assert_eq!(sim.basis(&[get("databases/postgres-shared-app")]).stand_in, vec![APPLIED.to_string()], "CNPG's Secret, written by the simulation");
        assert_eq!(sim.basis(&[get("harbor/harbor-db")]).kind, BasisKind::RealOverSimulated, "synced by the real external-secrets");
        let list = access("list", "", "secrets", None, None);
        assert_eq!(sim.basis(&[list]).kind, BasisKind::StandIn, "a list across namespaces may hold the simulation's");
        let here = access("list", "", "secrets", Some("databases"), None);
        assert_eq!(sim.basis(&[here]).kind, BasisKind::StandIn, "a list where the simulation wrote one");
        let round_trip = access("list", "", "configmaps", Some("pa-restore-1"), None);
        assert_eq!(sim.basis(&[round_trip]).kind, BasisKind::RealOverSimulated, "a list where the simulation wrote none");
        let driver = access("get", "storage.k8s.io", "csidrivers", None, Some("rook-ceph.rbd.csi.ceph.com"));
        assert_eq!(sim.basis(&[driver]).stand_in, vec![APPLIED.to_string()], "a chart stand-in's CSIDriver");
        let class = access("get", "storage.k8s.io", "storageclasses", None, Some("openebs-hostpath"));
        assert_eq!(sim.basis(&[class]).kind, BasisKind::RealOverSimulated, "the repository's StorageClass, applied by the real Flux");
        assert_eq!(sim.basis(&[access("list", "storage.k8s.io", "csidrivers", None, None)]).kind, BasisKind::StandIn);
        assert_eq!(sim.basis(&[access("list", "storage.k8s.io", "storageclasses", None, None)]).kind, BasisKind::RealOverSimulated);
        let unknown = Simulation { endpoints: Endpoints { endpoints: vec![] }, written: None };
        assert_eq!(unknown.basis(&[get("harbor/harbor-db")]).kind, BasisKind::StandIn, "unread: every Secret counts as the simulation's");
    }
}
