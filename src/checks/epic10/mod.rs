//! EPIC-10: VolSync and Velero.
//!
//! These checks prove that the repository declares VolSync and Velero from their bases on
//! both clusters, with MinIO as the backup destination, a test ReplicationSource and a weekly
//! Velero Schedule; and that on the clusters both are deployed (Velero with its
//! BackupStorageLocations Available) and backups work, by status *and* by the object store
//! itself: the restic repository holds snapshots (10.1.6, 10.2.2), read over S3 with the
//! credentials of the component's own Secret; and Velero round trips (10.3.6, 10.4.2): a
//! disposable namespace is backed up, found in the bucket, deleted, restored under another
//! name and compared (`roundtrip`). 10.4.2 also judges the Schedules' own Backups and restores
//! the other cluster's backup. VolSync's "Test replication working" (10.2.2) is a restore: a
//! ReplicationDestination brings back the newest restic snapshot (`replication`).
//!
//! `repo` reads the GitOps repository, `live` the Kubernetes API and the object store,
//! `roundtrip` writes and reads back.
//! Citations `§n [ID]` refer to docs/reference/components.md.

mod backups;
mod live;
mod replication;
mod repo;
mod roundtrip;

use crate::check::Check;

const VOLSYNC_BASE: &str = "kubernetes/bases/volsync/helmrelease.yaml";
const VOLSYNC_CONFIG: &str = "kubernetes/infrastructure/backup/volsync/kustomization.yaml";
const VELERO_BASE: &str = "kubernetes/bases/velero/helmrelease.yaml";
const VELERO_CONFIG: &str = "kubernetes/infrastructure/backup/velero/kustomization.yaml";
const WEEKLY: &str = "Schedule created for weekly backups";

pub fn checks() -> Vec<Check> {
    vec![
        // 10.1
        Check::repo("10.1", "VolSync operator base HelmRelease created", "volsync_base_helmrelease", repo::volsync_base_helmrelease),
        Check::repo("10.1", "VolSync infrastructure config created", "volsync_config", repo::volsync_config),
        Check::repo("10.1", "MinIO bucket configured for backups", "volsync_minio_bucket", repo::volsync_minio_bucket),
        Check::cluster("10.1", "Deployed on infra cluster", "volsync_deployed", live::volsync_deployed),
        Check::repo("10.1", "Test ReplicationSource created", "volsync_test_replication_source", repo::volsync_test_replication_source),
        Check::data_plane("10.1", "Backup runs successfully", "volsync_backup_runs", live::volsync_backups_succeed),
        // 10.2
        Check::cluster("10.2", "VolSync deployed on apps cluster (automatic via shared base)", "volsync_deployed_apps", live::volsync_deployed),
        Check::data_plane("10.2", "Test replication working", "volsync_replication_works", replication::volsync_replication_works).writes().within(replication::RESTORE_WAIT + std::time::Duration::from_secs(60)),
        // 10.3
        Check::repo("10.3", "Velero base HelmRelease created", "velero_base_helmrelease", repo::velero_base_helmrelease),
        Check::repo("10.3", "Velero infrastructure config created", "velero_config", repo::velero_config),
        Check::repo("10.3", "MinIO configured as backup destination", "velero_minio_destination", repo::velero_minio_destination),
        Check::cluster("10.3", "Deployed on infra cluster", "velero_deployed", live::velero_deployed),
        Check::repo("10.3", WEEKLY, "velero_weekly_schedule", repo::velero_weekly_schedule),
        Check::data_plane("10.3", "Test backup created successfully", "velero_round_trip", roundtrip::velero_round_trip).writes(),
        // 10.4
        Check::cluster("10.4", "Velero deployed on apps cluster (automatic)", "velero_deployed_apps", live::velero_deployed),
        Check::data_plane("10.4", "Backups working", "velero_backups_working", roundtrip::velero_backups_working).writes().within(std::time::Duration::from_secs(300)),
    ]
}
