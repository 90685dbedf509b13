//! Repository-layer checks of EPIC-7..10: pass on the fixture, and on broken
//! copies exactly the right criteria fail, naming the object, the expected and
//! the observed value.

mod support;

use std::path::Path;

use platform_acceptance::check::{Layer, Verdict};
use platform_acceptance::plan::Selector;
use platform_acceptance::runner::{RunConfig, RunReport};
use platform_acceptance::session::Session;
use rstest::rstest;
use support::*;

/// Repo-layer units of EPIC-7..10 and the Definition of Done only: other epics'
/// checks are written in parallel and must not make these tests flaky.
pub fn run_mine(repo: &Path) -> RunReport {
    let session = Session::new(DOC, Some(repo)).expect("session");
    // dod.1 rolls up every result (tested in tests/dod_aggregate.rs), so it is left out here.
    let skip: Vec<Selector> = (1..=6).map(Selector::Epic).chain([Selector::Criterion("dod.1".into())]).collect();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(session.run(&[Selector::Layer(Layer::Repo)], &skip, RunConfig::default()))
}

/// The same, without dod.3 (its verdict depends on git state, see tests/repo_dod.rs).
fn run_epics(repo: &Path) -> RunReport {
    let mut report = run_mine(repo);
    report.results.retain(|r| r.story != "dod");
    report
}

const EPIC_UNITS: &[&str] = &[
    "7.1.1 [infra]", "7.2.1 [infra]", "7.2.2 [infra]", "7.2.3 [infra]", "7.2.4 [infra]", "7.2.5 [infra]",
    "7.3.1 [infra]", "7.3.2 [infra]", "7.4.1 [infra]", "7.4.2 [infra]", "7.4.3 [infra]",
    "8.1.1 [infra]", "8.1.2 [infra]", "8.2.1 [infra]", "8.2.2 [infra]", "8.2.3 [infra]", "8.2.5 [infra]", "8.2.6 [infra]",
    "8.3.1 [all]", "8.3.2 [all]", "8.3.3 [all]",
    "9.1.1 [apps]", "9.1.2 [apps]", "9.1.3 [apps]", "9.1.4 [apps]", "9.1.7 [apps]",
    "9.2.1 [apps]", "9.2.2 [apps]", "9.2.3 [apps]", "9.2.4 [apps]", "9.2.6 [apps]",
    "9.3.2 [apps]", "9.3.3 [apps]", "9.3.5 [apps]",
    "10.1.1 [infra]", "10.1.2 [infra]", "10.1.3 [infra]", "10.1.5 [infra]",
    "10.3.1 [infra]", "10.3.2 [infra]", "10.3.3 [infra]", "10.3.5 [infra]",
];

#[test]
fn every_epic_7_to_10_repo_unit_passes_on_the_fixture() {
    let report = run_epics(Path::new(GITOPS));
    let mut passed = report.with_verdict(Verdict::Pass);
    passed.sort();
    let mut want: Vec<String> = EPIC_UNITS.iter().map(|s| s.to_string()).collect();
    want.sort();
    assert_eq!(passed, want, "not all passed:\n{}", report.summary());
    assert_eq!(report.results.len(), EPIC_UNITS.len(), "unexpected extra units");
}

#[rstest]
// 7.1 operator config no longer builds the CNPG chart (and its component stops using its base).
#[case::cnpg_operator_missing_file(
    &[("rm", "kubernetes/workloads/platform/databases/cloudnative-pg/operator/kustomization.yaml", "")],
    &["7.1.1 [infra]"], &["cloudnative-pg/operator", "missing"])]
#[case::cluster_manifest_missing(
    &[("rm", "kubernetes/workloads/platform/databases/cloudnative-pg/cluster/cluster.yaml", ""),
      ("replace", "kubernetes/workloads/platform/databases/cloudnative-pg/cluster/kustomization.yaml", "  - cluster.yaml\n|")],
    // every Cluster-based criterion fails, and the consumers' databases no longer land anywhere
    &["7.2.1 [infra]", "7.2.2 [infra]", "7.2.3 [infra]", "7.2.4 [infra]", "7.2.5 [infra]", "7.3.1 [infra]", "7.3.2 [infra]",
      "8.2.2 [infra]", "8.2.6 [infra]", "9.1.2 [apps]", "9.2.2 [apps]", "9.3.3 [apps]"],
    &["Cluster"])]
#[case::instances_2(
    &[("replace", "kubernetes/workloads/platform/databases/cloudnative-pg/cluster/cluster.yaml", "  instances: 3|  instances: 2")],
    &["7.2.2 [infra]"], &["Cluster/postgres-shared", "spec.instances", "expected 3", "observed 2"])]
#[case::storage_class_not_local_nvme(
    &[("replace", "kubernetes/clusters/infra/cluster-settings.yaml", "CNPG_STORAGE_CLASS: \"openebs-local-nvme\"|CNPG_STORAGE_CLASS: \"rook-ceph-block\"")],
    &["7.2.3 [infra]"], &["Cluster/postgres-shared", "storageClass", "local-nvme", "\"rook-ceph-block\" (provisioner rook-ceph.rbd.csi.ceph.com)"])]
#[case::backups_not_to_minio(
    &[("replace", "kubernetes/workloads/platform/databases/cloudnative-pg/cluster/cluster.yaml", "endpointURL: ${MINIO_ENDPOINT}|endpointURL: https://s3.eu-west-1.amazonaws.com")],
    &["7.2.4 [infra]"], &["endpointURL", "http://10.25.11.3:9000", "s3.eu-west-1.amazonaws.com"])]
#[case::postgres_not_global(
    &[("replace", "kubernetes/workloads/platform/databases/cloudnative-pg/cluster/service-global.yaml", "service.cilium.io/global: \"true\"|service.cilium.io/global: \"false\"")],
    &["7.2.5 [infra]"], &["postgres-shared-global", "service.cilium.io/global", "=false"])]
#[case::database_list_missing_one(
    &[("cut_doc", "kubernetes/workloads/platform/databases/cloudnative-pg/databases.yaml", "kind: Database\nmetadata:\n  name: mattermost")],
    // Mattermost's connection lands on a cluster that no longer declares its database
    &["7.3.1 [infra]", "9.3.3 [apps]"], &["mattermost", "Database"])]
#[case::role_secret_not_external(
    &[("cut_doc", "kubernetes/workloads/platform/databases/cloudnative-pg/databases.yaml", "  name: postgres-harbor\n  namespace: databases")],
    &["7.3.2 [infra]"], &["postgres-harbor", "ExternalSecret", "role harbor"])]
#[case::dragonfly_missing_helmrelease(
    &[("rm", "kubernetes/workloads/platform/databases/dragonfly/helmrelease.yaml", ""),
      ("replace", "kubernetes/workloads/platform/databases/dragonfly/kustomization.yaml", "  - helmrelease.yaml\n|")],
    &["7.4.1 [infra]"], &["dragonfly/helmrelease.yaml", "missing"])]
#[case::dragonfly_unknown_storage_class(
    &[("replace", "kubernetes/clusters/infra/cluster-settings.yaml", "DRAGONFLY_STORAGE_CLASS: \"openebs-local-nvme\"|DRAGONFLY_STORAGE_CLASS: \"fast-ssd\"")],
    &["7.4.2 [infra]"], &["Dragonfly/dragonfly", "storageClassName", "\"fast-ssd\""])]
#[case::dragonfly_not_global(
    &[("replace", "kubernetes/workloads/platform/databases/dragonfly/dragonfly.yaml", "      service.cilium.io/global: \"true\"\n|")],
    &["7.4.3 [infra]"], &["Dragonfly/dragonfly", "service.cilium.io/global", "unset"])]
#[case::keycloak_operator_base_missing(
    &[("rm", "kubernetes/bases/keycloak-operator/helmrelease.yaml", ""),
      ("replace", "kubernetes/bases/keycloak-operator/kustomization.yaml", "  - helmrelease.yaml\n|")],
    &["8.1.1 [infra]", "8.1.2 [infra]"], &["keycloak-operator"])]
#[case::keycloak_instance_missing(
    &[("replace", "kubernetes/workloads/platform/auth/keycloak/instance/kustomization.yaml", "  - keycloak.yaml\n|")],
    // without the Keycloak CR there is no issuer for any SSO configuration either
    &["8.2.1 [infra]", "8.2.2 [infra]", "8.2.3 [infra]", "8.2.5 [infra]", "8.2.6 [infra]",
      "8.3.1 [all]", "8.3.2 [all]", "8.3.3 [all]", "9.1.7 [apps]", "9.2.6 [apps]", "9.3.5 [apps]"],
    &["Keycloak"])]
#[case::keycloak_db_host_elsewhere(
    &[("replace", "kubernetes/workloads/platform/auth/keycloak/instance/keycloak.yaml", "host: postgres-shared-rw.databases.svc.clusterset.local|host: keycloak-postgres.auth.svc")],
    &["8.2.2 [infra]", "8.2.6 [infra]"], &["Keycloak/keycloak", "keycloak-postgres.auth.svc"])]
#[case::keycloak_admin_not_from_1password(
    &[("replace", "kubernetes/workloads/platform/auth/keycloak/instance/keycloak.yaml", "      secret: keycloak-admin|      secret: keycloak-initial-admin")],
    &["8.2.3 [infra]"], &["keycloak-initial-admin", "ExternalSecret"])]
#[case::keycloak_cert_wrong_host(
    &[("replace", "kubernetes/workloads/platform/auth/keycloak/instance/certificate.yaml", "    - keycloak.${SECRET_DOMAIN}|    - sso.${SECRET_DOMAIN}")],
    &["8.2.5 [infra]"], &["Certificate/keycloak", "keycloak.monosense.io", "sso.monosense.io"])]
#[case::keycloak_cert_issuer_missing(
    &[("replace", "kubernetes/workloads/platform/auth/keycloak/instance/certificate.yaml", "name: letsencrypt-production|name: letsencrypt-nowhere")],
    &["8.2.5 [infra]"], &["Certificate/keycloak", "issuerRef", "letsencrypt-nowhere"])]
#[case::no_scheduled_backup(
    &[("replace", "kubernetes/workloads/platform/databases/cloudnative-pg/cluster/kustomization.yaml", "  - scheduledbackup.yaml\n|")],
    &["8.2.6 [infra]"], &["Cluster/postgres-shared", "ScheduledBackup", "none"])]
#[case::grafana_unknown_client(
    &[("replace", "kubernetes/workloads/platform/observability/victoria-metrics/grafana-oidc.yaml", "client_id: grafana-oidc|client_id: grafana")],
    &["8.3.1 [all]"], &["grafana.ini", "client id", "grafana-oidc", "\"grafana\""])]
#[case::gitlab_wrong_realm(
    &[("replace", "kubernetes/workloads/tenants/gitlab/oidc-config.yaml", "/realms/${KEYCLOAK_REALM:=monosense}|/realms/master")],
    &["8.3.2 [all]", "9.1.7 [apps]", "9.3.5 [apps]"], &["HelmRelease/gitlab", "issuer", "https://keycloak.monosense.io/realms/master"])]
#[case::harbor_not_oidc(
    &[("replace", "kubernetes/workloads/tenants/harbor/oidc-config.yaml", "\"auth_mode\": \"oidc_auth\"|\"auth_mode\": \"db_auth\"")],
    &["8.3.3 [all]", "9.2.6 [apps]"], &["auth_mode", "oidc_auth", "db_auth"])]
#[case::gitlab_missing_file(
    &[("rm", "kubernetes/workloads/tenants/gitlab/externalsecret.yaml", ""),
      ("replace", "kubernetes/workloads/tenants/gitlab/kustomization.yaml", "  - externalsecret.yaml\n|")],
    // the Redis password, root password and object-storage credentials went with it
    &["9.1.1 [apps]", "9.1.4 [apps]"], &["gitlab"])]
#[case::db_host_not_clusterset(
    &[("replace", "kubernetes/workloads/tenants/gitlab/helmrelease.yaml", "host: postgres-shared-rw.databases.svc.clusterset.local|host: postgres-shared-rw.databases.svc.cluster.local")],
    &["9.1.2 [apps]"], &["HelmRelease/gitlab", "postgres-shared-rw.databases.svc.cluster.local", "clusterset.local"])]
#[case::db_host_not_exported(
    &[("cut_doc", "kubernetes/workloads/platform/databases/cloudnative-pg/cluster/serviceexport.yaml", "  name: postgres-shared-rw\n")],
    &["8.2.2 [infra]", "8.2.6 [infra]", "9.1.2 [apps]", "9.2.2 [apps]", "9.3.3 [apps]"], &["ServiceExport", "postgres-shared-rw"])]
#[case::redis_host_not_clusterset(
    &[("replace", "kubernetes/workloads/tenants/gitlab/helmrelease.yaml", "host: dragonfly.databases.svc.clusterset.local|host: dragonfly.databases.svc")],
    &["9.1.3 [apps]"], &["HelmRelease/gitlab", "global.redis", "\"dragonfly.databases.svc\"", "not reachable from cluster apps"])]
#[case::gitlab_objects_elsewhere(
    &[("replace", "kubernetes/workloads/tenants/gitlab/externalsecret.yaml", "          endpoint: ${MINIO_ENDPOINT}|          endpoint: https://s3.amazonaws.com")],
    &["9.1.4 [apps]"], &["gitlab-object-storage", "http://10.25.11.3:9000", "https://s3.amazonaws.com"])]
#[case::harbor_httproute_missing(
    &[("rm", "kubernetes/workloads/tenants/harbor/httproute.yaml", ""),
      ("replace", "kubernetes/workloads/tenants/harbor/kustomization.yaml", "  - httproute.yaml\n|")],
    &["9.2.1 [apps]"], &["harbor/httproute.yaml", "missing"])]
#[case::harbor_redis_wrong_service(
    &[("replace", "kubernetes/workloads/tenants/harbor/helmrelease.yaml", "addr: dragonfly.databases.svc.clusterset.local:6379|addr: redis.harbor.svc:6379")],
    &["9.2.3 [apps]"], &["HelmRelease/harbor", "redis.harbor", "Dragonfly"])]
#[case::harbor_filesystem_storage(
    &[("replace", "kubernetes/workloads/tenants/harbor/helmrelease.yaml", "        type: s3\n|        type: filesystem\n")],
    &["9.2.4 [apps]"], &["imageChartStorage", "\"s3\"", "\"filesystem\""])]
#[case::mattermost_wrong_db(
    &[("replace", "kubernetes/workloads/tenants/mattermost/instance/externalsecret.yaml", "5432/mattermost?sslmode=disable&connect_timeout=10\n        DB_CONNECTION_CHECK_URL|5432/chat?sslmode=disable&connect_timeout=10\n        DB_CONNECTION_CHECK_URL")],
    &["9.3.3 [apps]"], &["DB_CONNECTION_STRING", "\"chat\"", "not declared"])]
#[case::mattermost_instance_missing(
    &[("replace", "kubernetes/workloads/tenants/mattermost/instance/kustomization.yaml", "  - mattermost.yaml\n|")],
    &["9.3.2 [apps]", "9.3.3 [apps]", "9.3.5 [apps]"], &["Mattermost", "none"])]
#[case::mattermost_no_sso(
    &[("replace", "kubernetes/workloads/tenants/mattermost/instance/mattermost.yaml", "MM_GITLABSETTINGS_ENABLE\n      value: \"true\"|MM_GITLABSETTINGS_ENABLE\n      value: \"false\"")],
    &["9.3.5 [apps]"], &["Mattermost/mattermost", "neither enabled"])]
#[case::volsync_base_missing(
    &[("rm", "kubernetes/bases/volsync/helmrelease.yaml", ""), ("replace", "kubernetes/bases/volsync/kustomization.yaml", "  - helmrelease.yaml\n|")],
    &["10.1.1 [infra]", "10.1.2 [infra]"], &["volsync"])]
#[case::restic_bucket_elsewhere(
    &[("replace", "kubernetes/infrastructure/backup/volsync/externalsecret-minio.yaml", "s3:${MINIO_ENDPOINT}/${VOLSYNC_BUCKET}|s3:https://s3.amazonaws.com/${VOLSYNC_BUCKET}")],
    &["10.1.3 [infra]"], &["volsync-restic-config", "RESTIC_REPOSITORY", "s3:http://10.25.11.3:9000/<bucket>", "s3:https://s3.amazonaws.com/volsync-infra"])]
#[case::no_test_replication_source(
    &[("replace", "kubernetes/infrastructure/backup/volsync/kustomization.yaml", "  - replicationsource-test.yaml\n|")],
    &["10.1.5 [infra]"], &["ReplicationSource", "none"])]
#[case::replication_source_pvc_missing(
    &[("replace", "kubernetes/infrastructure/backup/volsync/replicationsource-test.yaml", "sourcePVC: volsync-test|sourcePVC: data-volume")],
    &["10.1.5 [infra]"], &["ReplicationSource/volsync-test", "sourcePVC", "\"data-volume\" not found"])]
#[case::bsl_points_elsewhere(
    &[("replace", "kubernetes/bases/velero/helmrelease.yaml", "s3Url: ${MINIO_ENDPOINT}|s3Url: https://s3.us-east-1.amazonaws.com")],
    &["10.3.3 [infra]"], &["HelmRelease/velero", "s3Url", "http://10.25.11.3:9000", "https://s3.us-east-1.amazonaws.com"])]
#[case::velero_schedule_daily(
    &[("replace", "kubernetes/infrastructure/backup/velero/schedule.yaml", "schedule: \"0 2 * * 0\"|schedule: \"0 2 * * *\"")],
    &["10.3.5 [infra]"], &["Schedule/weekly-backup", "\"0 2 * * *\"", "runs 7 times a week", "weekly (1 run(s) a week)"])]
#[case::velero_schedule_wrong_location(
    &[("replace", "kubernetes/infrastructure/backup/velero/schedule.yaml", "storageLocation: default|storageLocation: offsite")],
    &["10.3.5 [infra]"], &["Schedule/weekly-backup", "storageLocation", "\"offsite\""])]
#[case::velero_config_not_using_base(
    &[("replace", "kubernetes/infrastructure/backup/velero/kustomization.yaml", "  - ../../../bases/velero\n|")],
    &["10.3.1 [infra]", "10.3.2 [infra]", "10.3.3 [infra]", "10.3.5 [infra]"], &["velero"])]
fn broken_copy_fails_exactly(#[case] edits: &[(&str, &str, &str)], #[case] failing: &[&str], #[case] needles: &[&str]) {
    let copy = RepoCopy::new();
    for (op, file, arg) in edits {
        apply(&copy, op, file, arg);
    }
    let report = run_epics(copy.path());
    report.expect_failing(failing).expect_failing_mention(needles);
}

/// `rm`: delete the file; `replace`: `from|to`; `cut_doc`: drop the YAML document containing `arg`.
pub fn apply(copy: &RepoCopy, op: &str, file: &str, arg: &str) {
    match op {
        "rm" => copy.remove(file),
        "replace" => {
            let (from, to) = arg.split_once('|').expect("from|to");
            copy.replace(file, from, to);
        }
        "cut_doc" => {
            let text = copy.read(file);
            let docs: Vec<&str> = text.split("\n---\n").collect();
            let kept: Vec<&str> = docs.iter().copied().filter(|d| !d.contains(arg)).collect();
            assert_eq!(kept.len() + 1, docs.len(), "{file}: exactly one document must contain {arg:?}");
            copy.write(file, &kept.join("\n---\n"));
        }
        other => panic!("unknown edit {other}"),
    }
}
