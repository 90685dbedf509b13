//! EPIC-7: CloudNativePG, the shared PostgreSQL cluster, application databases, Dragonfly.
//!
//! These checks prove that the repository declares the CloudNativePG operator and one shared
//! three-instance PostgreSQL Cluster on OpenEBS local-nvme, backed up to MinIO and exported to
//! the ClusterMesh, with a database, a role and ExternalSecret credentials for each
//! application, and Dragonfly with persistent snapshots and a global service; and that on the
//! clusters the operator and its CRDs are healthy, the Cluster is healthy and has been through
//! a failover, each application reaches its database from the apps cluster with its own
//! credentials, and Dragonfly answers Redis commands across the mesh.
//!
//! `repo` reads the GitOps repository, `live` the Kubernetes API, `data_plane` speaks
//! PostgreSQL and Redis to the services. Citations `§n [ID]` refer to
//! docs/reference/components.md.

mod data_plane;
mod failover;
mod live;
mod repo;

use crate::check::Check;
use crate::cluster::objects::Kind;

const CNPG_OPERATOR_CONFIG: &str = "kubernetes/workloads/platform/databases/cloudnative-pg/operator/kustomization.yaml";
const CNPG_CLUSTER_FILE: &str = "kubernetes/workloads/platform/databases/cloudnative-pg/cluster/cluster.yaml";
const DRAGONFLY_FILES: [&str; 2] = [
    "kubernetes/workloads/platform/databases/dragonfly/kustomization.yaml",
    "kubernetes/workloads/platform/databases/dragonfly/helmrelease.yaml",
];

const CNPG_OPERATOR: &str = "CloudNativePG operator manifests created";
const REPLICAS: &str = "3-replica configuration";
const STORAGE: &str = "Storage configured (OpenEBS local-nvme)";
const DATABASES: &str = "Databases created: gitlab, harbor, keycloak, grafana, mattermost";

/// §15 [DF1]
const DRAGONFLY: Kind = Kind::namespaced("dragonflydb.io", &["v1alpha1"], "Dragonfly");

pub fn checks() -> Vec<Check> {
    vec![
        // 7.1
        Check::repo("7.1", CNPG_OPERATOR, "cnpg_operator_manifests_created", repo::cnpg_operator_manifests_created),
        Check::cluster("7.1", "Operator deployed on infra cluster", "cnpg_operator_deployed", live::cnpg_operator_deployed),
        Check::cluster("7.1", "Operator healthy", "cnpg_operator_healthy", live::cnpg_operator_healthy),
        Check::cluster("7.1", "CRDs installed", "cnpg_crds_established", live::cnpg_crds_established),
        // 7.2
        Check::repo("7.2", "PostgreSQL cluster manifest created", "postgres_cluster_manifest_created", repo::postgres_cluster_manifest_created),
        Check::repo("7.2", REPLICAS, "postgres_replicas_configured", repo::postgres_replicas_configured),
        Check::repo("7.2", STORAGE, "postgres_storage_on_openebs_local_nvme", repo::postgres_storage_on_openebs_local_nvme),
        Check::repo("7.2", "Backups configured to MinIO", "postgres_backups_to_minio", repo::postgres_backups_to_minio),
        Check::repo("7.2", "Global service annotation for ClusterMesh", "postgres_global_service", repo::postgres_global_service),
        Check::cluster("7.2", "Cluster deployed on infra", "postgres_cluster_deployed", live::postgres_cluster_deployed),
        Check::cluster("7.2", "Cluster healthy and ready", "postgres_cluster_healthy", live::postgres_cluster_healthy),
        Check::data_plane("7.2", "Can connect to database", "postgres_app_connects", data_plane::postgres_app_connects),
        Check::cluster("7.2", "Failover tested", "postgres_failover_recorded", live::postgres_failover_recorded),
        Check::data_plane("7.2", "Accessible from apps cluster via ClusterMesh", "postgres_reachable_from_apps", data_plane::postgres_reachable_from_apps),
        // 7.3
        Check::repo("7.3", DATABASES, "application_databases_declared", repo::application_databases_declared),
        Check::repo("7.3", "ExternalSecrets created for each database", "database_external_secrets", repo::database_external_secrets),
        Check::data_plane("7.3", "Connection tested from apps cluster", "databases_connect_from_apps", data_plane::databases_connect_from_apps),
        Check::data_plane("7.3", "Apps can access databases via ClusterMesh", "apps_use_their_databases", data_plane::apps_use_their_databases).only("apps"),
        // 7.4
        Check::repo("7.4", "Dragonfly manifests created", "dragonfly_manifests_created", repo::dragonfly_manifests_created),
        Check::repo("7.4", "Storage configured", "dragonfly_storage_configured", repo::dragonfly_storage_configured),
        Check::repo("7.4", "Global service annotation for ClusterMesh", "dragonfly_global_service", repo::dragonfly_global_service),
        Check::cluster("7.4", "Deployed on infra cluster", "dragonfly_deployed", live::dragonfly_deployed),
        Check::data_plane("7.4", "Accessible from apps cluster", "dragonfly_reachable_from_apps", data_plane::dragonfly_reachable_from_apps),
        Check::data_plane("7.4", "Test Redis commands work", "dragonfly_redis_commands", data_plane::dragonfly_redis_commands).writes(),
    ]
}
