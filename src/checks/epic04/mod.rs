//! EPIC-4 checks: Rook Ceph (4.1, 4.2), OpenEBS (4.3), cross-cluster Ceph access (4.5).
//!
//! They prove that the repository deploys the Rook operator and a CephCluster with the
//! story's configuration (NVMe OSDs, three mons, a replicated RBD pool and its StorageClass)
//! and OpenEBS LocalPV hostpath on both clusters; that on the clusters the operator, its CRDs
//! and a HEALTH_OK Ceph are running; that test claims of both classes bind; and that the apps
//! cluster reaches infra's Ceph monitors through ClusterMesh and provisions volumes there.
//!
//! [`repo`] holds the repository layer (manifests and wiring); the live layers are split by
//! concern: [`live`] (operator, CephCluster, OSDs, health, StorageClasses), [`pvc`] (test claims
//! in disposable namespaces, data-plane) and [`mesh`] (the apps cluster's path to infra's Ceph).
//!
//! Citations `§n [ID]` refer to docs/reference/components.md.

use crate::check::Check;

mod live;
mod mesh;
mod pvc;
mod repo;

/// Story 4.2 "Ceph Configuration".
const CEPH_DEVICE_FILTER: &str = "^nvme[0-9]+n1$";
const CEPH_DEVICE_CLASS: &str = "ssd";
const CEPH_MON_COUNT: u64 = 3;
const CEPH_REPLICA_SIZE: u64 = 3;
const CEPH_IMAGE_TAG: &str = "v18.2.2";
/// Story 4.3 "OpenEBS Configuration"; provisioner from docs/reference/components.md §8.
const OPENEBS_STORAGE_CLASS: &str = "openebs-local-nvme";
const OPENEBS_BASE_PATH: &str = "/var/openebs/local";
const OPENEBS_PROVISIONER: &str = "openebs.io/local";

const ROOK_OPERATOR_CHARTS: &[&str] = &["rook-ceph"];
const OPENEBS_CHARTS: &[&str] = &["localpv-provisioner", "openebs"];

/// Criterion texts the live checks read numbers and names from.
const OPERATOR_DEPLOYED: &str = "Operator deployed on infra cluster";
const CEPH_DEPLOYED: &str = "Ceph cluster deployed (3 nodes)";
const OSDS: &str = "3x1TB NVMe disks configured as OSDs";
const CEPH_HEALTH: &str = "Ceph health: HEALTH_OK";
const RBD_CLASS_CREATED: &str = "RBD StorageClass `rook-ceph-block` created";

pub fn checks() -> Vec<Check> {
    vec![
        // 4.1 Rook Ceph operator
        Check::repo("4.1", "Rook Ceph operator base HelmRelease created", "rook_ceph_operator_base_helmrelease", repo::rook_operator_base),
        Check::repo("4.1", "Rook Ceph operator infrastructure config created", "rook_ceph_operator_config_applied", repo::rook_operator_config),
        Check::cluster("4.1", OPERATOR_DEPLOYED, "rook_operator_deployed", live::rook_operator_deployed),
        Check::cluster("4.1", "Operator healthy and running", "rook_operator_healthy", live::rook_operator_healthy),
        Check::cluster("4.1", "CRDs installed", "rook_crds_established", live::rook_crds_established),
        // 4.2 Ceph configuration
        Check::repo("4.2", "Ceph cluster manifest created", "ceph_cluster_manifest_rendered", repo::ceph_cluster_manifest),
        Check::repo("4.2", "RBD StorageClass configured", "rbd_storageclass_configured", repo::rbd_storage_class),
        Check::cluster("4.2", CEPH_DEPLOYED, "ceph_cluster_ready_on_nodes", live::ceph_cluster_ready_on_nodes),
        Check::cluster("4.2", OSDS, "ceph_osds_on_nvme_disks", live::ceph_osds_on_nvme_disks),
        Check::cluster("4.2", CEPH_HEALTH, "ceph_health_ok", live::ceph_health_ok),
        Check::cluster("4.2", RBD_CLASS_CREATED, "rbd_storageclass_live", live::rbd_storageclass_live),
        Check::data_plane("4.2", "Test PVC can be created and bound", "rbd_test_pvc_bound", pvc::rbd_test_pvc_bound).writes(),
        // 4.3 OpenEBS
        Check::repo("4.3", "OpenEBS base HelmRelease created", "openebs_base_helmrelease", repo::openebs_base),
        Check::repo("4.3", "OpenEBS infrastructure config created", "openebs_config_applied", repo::openebs_config),
        Check::repo("4.3", "LocalPV hostpath StorageClass configured", "openebs_hostpath_storageclass", repo::openebs_storage_class),
        Check::cluster("4.3", "Deployed to infra cluster", "openebs_deployed_infra", live::openebs_deployed),
        Check::cluster("4.3", "Deployed to apps cluster (automatic - shared base)", "openebs_deployed_apps", live::openebs_deployed),
        Check::data_plane("4.3", "Test PVC works on both clusters", "openebs_test_pvc_works", pvc::openebs_test_pvc_works).writes(),
        // 4.5 cross-cluster Ceph access
        Check::repo("4.5", "Global services configured for Ceph", "ceph_mons_global_services", repo::ceph_global_services),
        Check::cluster("4.5", "Apps cluster can access Ceph from infra cluster via ClusterMesh", "ceph_mons_reachable_via_clustermesh", mesh::ceph_mons_via_clustermesh),
        Check::cluster("4.5", "CSI driver deployed on apps cluster", "ceph_csi_driver_on_apps", mesh::ceph_csi_driver_on_apps),
        Check::data_plane("4.5", "Test PVC created on apps cluster using infra Ceph", "remote_ceph_test_pvc_bound", mesh::remote_ceph_test_pvc_bound).writes(),
        Check::data_plane("4.5", "Cross-cluster storage verified", "cross_cluster_storage_verified", mesh::cross_cluster_storage_verified).writes(),
    ]
}
