//! Repository-layer checks of EPIC-4 (storage), EPIC-5 (security) and EPIC-6 (observability):
//! they pass on fixtures/gitops, and on a broken copy exactly the right criteria fail, with
//! messages naming the file/object, the expected and the observed value.
//!
//! Runs are scoped to the repository layer of epics 4-6 so that checks other epics add later
//! (which may legitimately also react to a mutation) do not change these expectations.

mod support;

use std::path::Path;

use platform_acceptance::check::{Layer, Verdict};
use platform_acceptance::plan::Selector;
use platform_acceptance::runner::{RunConfig, RunReport};
use platform_acceptance::session::Session;
use rstest::rstest;
use support::{RepoCopy, ReportExt, DOC, GITOPS};

fn run_epics_4_to_6(repo: &Path) -> RunReport {
    let session = Session::new(DOC, Some(repo)).expect("session");
    let mut skip: Vec<Selector> = [1, 2, 3, 7, 8, 9, 10].into_iter().map(Selector::Epic).collect();
    skip.push(Selector::Story("dod".into()));
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(session.run(&[Selector::Layer(Layer::Repo)], &skip, RunConfig::default()))
}

/// Every repository-layer unit of epics 4-6, as `id [cluster]`.
const REPO_UNITS: &[&str] = &[
    "4.1.1 [infra]", "4.1.2 [infra]", "4.2.1 [infra]", "4.2.2 [infra]",
    "4.3.1 [apps]", "4.3.1 [infra]", "4.3.2 [apps]", "4.3.2 [infra]", "4.3.3 [apps]", "4.3.3 [infra]",
    "4.5.2 [apps]",
    "5.1.1 [apps]", "5.1.1 [infra]", "5.1.2 [apps]", "5.1.2 [infra]", "5.1.3 [apps]", "5.1.3 [infra]",
    "5.2.1 [apps]", "5.2.1 [infra]", "5.2.2 [apps]", "5.2.2 [infra]", "5.2.3 [apps]", "5.2.3 [infra]",
    "6.1.1 [infra]", "6.1.2 [infra]", "6.1.3 [infra]", "6.1.4 [infra]",
    "6.2.1 [infra]", "6.2.2 [infra]", "6.2.4 [infra]", "6.2.5 [infra]", "6.2.6 [infra]",
    "6.3.1 [apps]", "6.3.1 [infra]", "6.3.2 [apps]", "6.3.2 [infra]", "6.3.3 [apps]", "6.3.3 [infra]",
    "6.3.4 [apps]", "6.3.4 [infra]",
];

#[test]
fn every_repo_unit_of_epics_4_to_6_passes_on_the_fixture() {
    let report = run_epics_4_to_6(Path::new(GITOPS));
    let mut passed = report.with_verdict(Verdict::Pass);
    passed.sort();
    let mut want: Vec<String> = REPO_UNITS.iter().map(|s| s.to_string()).collect();
    want.sort();
    assert_eq!(passed, want, "not every repo unit passed:\n{}", report.summary());
    assert_eq!(report.results.len(), REPO_UNITS.len(), "unexpected extra units");
}

#[test]
fn checks_of_epics_4_to_6_map_to_criteria_and_none_is_orphaned() {
    let session = Session::new(DOC, Some(Path::new(GITOPS))).unwrap();
    let mine = |story: &str| ["4.", "5.", "6."].iter().any(|p| story.starts_with(p));
    let orphans: Vec<_> = session.coverage.orphans.iter().filter(|o| mine(&o.story)).collect();
    assert!(orphans.is_empty(), "checks whose criterion text is not in the document: {orphans:?}");
    let repo_items = session.coverage.items.iter().filter(|i| mine(&i.item.story) && i.layer == "repo").count();
    assert_eq!(repo_items, 27);
    // Nothing in these stories is beyond every layer: no manual markings.
    assert!(session.coverage.items.iter().filter(|i| mine(&i.item.story)).all(|i| i.layer != "manual"));
}

fn remove_line(copy: &RepoCopy, rel: &str, line: &str) {
    copy.replace(rel, &format!("{line}\n"), "");
}

fn replace_all(copy: &RepoCopy, rel: &str, from: &str, to: &str) {
    let text = copy.read(rel);
    assert!(text.contains(from), "{rel} does not contain {from:?}");
    copy.write(rel, &text.replace(from, to));
}

const INFRA_SETTINGS: &str = "kubernetes/clusters/infra/cluster-settings.yaml";
const APPS_SETTINGS: &str = "kubernetes/clusters/apps/cluster-settings.yaml";
const ROOK_SC: &str = "kubernetes/bases/rook-ceph-cluster/storageclass-rbd.yaml";
const CEPH_CLUSTER: &str = "kubernetes/bases/rook-ceph-cluster/cephcluster.yaml";
const OPENEBS_SC: &str = "kubernetes/infrastructure/storage/openebs/storageclass.yaml";
const ISSUERS: &str = "kubernetes/infrastructure/security/cert-manager/clusterissuer.yaml";
const STORE: &str = "kubernetes/infrastructure/security/external-secrets/clustersecretstore.yaml";
const VM_STACK: &str = "kubernetes/bases/victoria-metrics-stack/helmrelease.yaml";
const FLUENT_BIT: &str = "kubernetes/bases/fluent-bit/helmrelease.yaml";
const VMAUTH_CONFIG: &str = "kubernetes/workloads/platform/observability/victoria-logs/externalsecret-vmauth.yaml";

#[rstest]
// ---- EPIC-4 ----
#[case::rook_operator_wrong_kind(
    |c: &RepoCopy| c.replace("kubernetes/bases/rook-ceph-operator/helmrelease.yaml", "kind: HelmRelease", "kind: Deployment"),
    &["4.1.1 [infra]", "4.1.2 [infra]"],
    &["rook-ceph-operator", "HelmRelease"],
)]
#[case::rook_operator_config_not_included(
    |c: &RepoCopy| remove_line(c, "kubernetes/infrastructure/storage/rook-ceph/kustomization.yaml", "  - operator"),
    &["4.1.2 [infra]"],
    &["HelmRelease/rook-ceph-operator", "rendered for cluster infra", "not applied"],
)]
#[case::ceph_mon_count(
    |c: &RepoCopy| c.replace(CEPH_CLUSTER, "count: 3", "count: 1"),
    &["4.2.1 [infra]"],
    &["CephCluster/rook-ceph", "spec.mon.count", "expected 3", "observed 1"],
)]
#[case::ceph_image_tag(
    |c: &RepoCopy| c.replace(CEPH_CLUSTER, "ceph:v18.2.2", "ceph:v17.2.7"),
    &["4.2.1 [infra]"],
    &["spec.cephVersion.image", "v18.2.2", "quay.io/ceph/ceph:v17.2.7"],
)]
#[case::ceph_device_filter(
    |c: &RepoCopy| c.replace(CEPH_CLUSTER, "deviceFilter: ^nvme[0-9]+n1$", "deviceFilter: ^sd[a-z]$"),
    &["4.2.1 [infra]"],
    &["spec.storage.deviceFilter", "^nvme[0-9]+n1$", "^sd[a-z]$"],
)]
#[case::ceph_cluster_file_missing(
    |c: &RepoCopy| {
        c.remove(CEPH_CLUSTER);
        remove_line(c, "kubernetes/bases/rook-ceph-cluster/kustomization.yaml", "  - cephcluster.yaml");
    },
    &["4.2.1 [infra]", "4.2.2 [infra]", "4.5.2 [apps]"],
    &["CephCluster"],
)]
#[case::rbd_storageclass_renamed(
    |c: &RepoCopy| c.replace(ROOK_SC, "name: rook-ceph-block", "name: ceph-block"),
    &["4.2.2 [infra]", "6.1.4 [infra]", "6.2.4 [infra]"],
    &["rook-ceph-block", "rendered"],
)]
#[case::rbd_storageclass_not_rbd(
    |c: &RepoCopy| c.replace(ROOK_SC, "provisioner: rook-ceph.rbd.csi.ceph.com", "provisioner: rook-ceph.cephfs.csi.ceph.com"),
    &["4.2.2 [infra]", "6.1.4 [infra]", "6.2.4 [infra]"],
    &["provisioner", "rook-ceph.cephfs.csi.ceph.com"],
)]
#[case::rbd_pool_missing(
    |c: &RepoCopy| c.replace("kubernetes/bases/rook-ceph-cluster/cephblockpool.yaml", "name: replicapool", "name: otherpool"),
    &["4.2.2 [infra]"],
    &["StorageClass/rook-ceph-block", "parameters.pool", "rook-ceph/replicapool", "rook-ceph/otherpool"],
)]
#[case::rbd_pool_replicas(
    |c: &RepoCopy| c.replace("kubernetes/bases/rook-ceph-cluster/cephblockpool.yaml", "size: 3", "size: 2"),
    &["4.2.2 [infra]"],
    &["CephBlockPool/replicapool", "spec.replicated.size", "expected 3", "observed 2"],
)]
#[case::openebs_base_missing(
    |c: &RepoCopy| c.remove("kubernetes/bases/openebs/helmrelease.yaml"),
    &["4.3.1 [apps]", "4.3.1 [infra]", "4.3.2 [apps]", "4.3.2 [infra]"],
    &["kubernetes/bases/openebs", "HelmRelease"],
)]
#[case::openebs_config_without_base(
    |c: &RepoCopy| remove_line(c, "kubernetes/infrastructure/storage/openebs/kustomization.yaml", "  - ../../../bases/openebs"),
    &["4.3.2 [apps]", "4.3.2 [infra]"],
    &["kubernetes/infrastructure/storage/openebs/kustomization.yaml", "resources entry pointing at kubernetes/bases/openebs"],
)]
#[case::openebs_storageclass_base_path(
    |c: &RepoCopy| c.replace(OPENEBS_SC, "value: /var/openebs/local", "value: /var/local-path"),
    &["4.3.3 [apps]", "4.3.3 [infra]"],
    &["StorageClass/openebs-local-nvme", "BasePath", "/var/openebs/local", "/var/local-path"],
)]
#[case::openebs_storageclass_provisioner(
    |c: &RepoCopy| c.replace(OPENEBS_SC, "provisioner: openebs.io/local", "provisioner: rancher.io/local-path"),
    &["4.3.3 [apps]", "4.3.3 [infra]"],
    &["StorageClass/openebs-local-nvme", "provisioner", "openebs.io/local", "rancher.io/local-path"],
)]
#[case::ceph_mons_not_global(
    |c: &RepoCopy| {
        c.remove("kubernetes/infrastructure/storage/rook-ceph/cluster/global-services.yaml");
        remove_line(c, "kubernetes/infrastructure/storage/rook-ceph/cluster/kustomization.yaml", "  - global-services.yaml");
    },
    &["4.5.2 [apps]"],
    &["rook-ceph/rook-ceph-mon-", "ServiceExport", "service.cilium.io/global", "neither is rendered"],
)]
// ---- EPIC-5 ----
#[case::cert_manager_base_missing(
    |c: &RepoCopy| c.remove("kubernetes/bases/cert-manager/helmrelease.yaml"),
    &["5.1.1 [apps]", "5.1.1 [infra]", "5.1.2 [apps]", "5.1.2 [infra]"],
    &["kubernetes/bases/cert-manager", "HelmRelease"],
)]
#[case::clusterissuer_without_acme(
    |c: &RepoCopy| c.write(ISSUERS, "apiVersion: cert-manager.io/v1\nkind: ClusterIssuer\nmetadata:\n  name: letsencrypt-staging\nspec:\n  selfSigned: {}\n---\napiVersion: cert-manager.io/v1\nkind: ClusterIssuer\nmetadata:\n  name: letsencrypt-production\nspec:\n  selfSigned: {}\n"),
    &["5.1.3 [apps]", "5.1.3 [infra]"],
    &["clusterissuer.yaml", "api.letsencrypt.org", "letsencrypt-staging: selfSigned"],
)]
#[case::clusterissuer_not_letsencrypt(
    |c: &RepoCopy| {
        c.replace(ISSUERS, "https://acme-staging-v02.api.letsencrypt.org/directory", "https://acme.zerossl.com/v2/DV90");
        c.replace(ISSUERS, "https://acme-v02.api.letsencrypt.org/directory", "https://acme.zerossl.com/v2/DV90");
    },
    &["5.1.3 [apps]", "5.1.3 [infra]"],
    &["api.letsencrypt.org", "acme https://acme.zerossl.com/v2/DV90"],
)]
#[case::clusterissuer_without_email(
    |c: &RepoCopy| c.replace(ISSUERS, "email: ${ACME_EMAIL:=platform@monosense.io}", "email: \"\""),
    &["5.1.3 [apps]", "5.1.3 [infra]"],
    &["ClusterIssuer/letsencrypt-staging", "spec.acme.email", "account email"],
)]
#[case::eso_config_missing(
    |c: &RepoCopy| c.remove("kubernetes/infrastructure/security/external-secrets/kustomization.yaml"),
    &["5.2.2 [apps]", "5.2.2 [infra]"],
    &["kubernetes/infrastructure/security/external-secrets/kustomization.yaml", "file missing"],
)]
#[case::clustersecretstore_other_provider(
    |c: &RepoCopy| c.write(STORE, "apiVersion: external-secrets.io/v1\nkind: ClusterSecretStore\nmetadata:\n  name: onepassword\nspec:\n  provider:\n    vault:\n      server: https://vault.example:8200\n      path: secret\n"),
    &["5.2.3 [apps]", "5.2.3 [infra]"],
    &["ClusterSecretStore/onepassword", "provider onepassword", "provider vault"],
)]
#[case::clustersecretstore_token_not_from_variable(
    |c: &RepoCopy| c.replace(STORE, "name: ${ONEPASSWORD_CONNECT_TOKEN_SECRET}", "name: connect-token"),
    &["5.2.3 [apps]", "5.2.3 [infra]"],
    &["connectTokenSecretRef.name", "\"onepassword-connect-token\" (ONEPASSWORD_CONNECT_TOKEN_SECRET)", "\"connect-token\""],
)]
#[case::clustersecretstore_connect_host_on_apps(
    |c: &RepoCopy| c.replace(APPS_SETTINGS, "ONEPASSWORD_CONNECT_HOST: \"http://", "ONEPASSWORD_CONNECT_HOST: \"tcp://"),
    &["5.2.3 [apps]"],
    &["connectHost", "http(s) URL", "tcp://onepassword-connect"],
)]
// ---- EPIC-6 ----
#[case::vm_stack_without_vmagent(
    |c: &RepoCopy| c.replace(VM_STACK, "vmagent:\n      enabled: true", "vmagent:\n      enabled: false"),
    &["6.1.3 [infra]"],
    &["HelmRelease/victoria-metrics-stack", "vmagent.enabled", "observed false"],
)]
#[case::vm_stack_vmsingle_and_vmcluster(
    |c: &RepoCopy| c.replace(VM_STACK, "    vmsingle:\n      enabled: false\n", ""),
    &["6.1.3 [infra]"],
    &["vmsingle.enabled", "only one of vmsingle/vmcluster", "chart default true"],
)]
#[case::vmstorage_not_rook_ceph(
    |c: &RepoCopy| c.replace(VM_STACK, "storageClassName: ${OBSERVABILITY_BLOCK_SC}", "storageClassName: local-nvme"),
    &["6.1.4 [infra]"],
    &["vmstorage", "\"rook-ceph-block\"", "\"local-nvme\""],
)]
#[case::observability_storage_class_not_rook_ceph(
    |c: &RepoCopy| c.replace(INFRA_SETTINGS, "OBSERVABILITY_BLOCK_SC: \"rook-ceph-block\"", "OBSERVABILITY_BLOCK_SC: \"openebs-local-nvme\""),
    &["6.1.4 [infra]", "6.2.4 [infra]"],
    &["storageClassName", "\"rook-ceph-block\"", "\"openebs-local-nvme\""],
)]
#[case::victoria_logs_base_wrong_chart(
    |c: &RepoCopy| c.replace("kubernetes/bases/victoria-logs/helmrelease.yaml", "chart: victoria-logs-single", "chart: victoria-logs-cluster"),
    &["6.2.1 [infra]", "6.2.4 [infra]", "6.2.6 [infra]", "6.3.3 [apps]", "6.3.3 [infra]"],
    &["victoria-logs-single"],
)]
#[case::logs_retention(
    |c: &RepoCopy| c.replace(INFRA_SETTINGS, "OBSERVABILITY_LOGS_RETENTION: \"14d\"", "OBSERVABILITY_LOGS_RETENTION: \"7d\""),
    &["6.2.4 [infra]"],
    &["HelmRelease/victoria-logs", "retentionPeriod", "\"14d\"", "\"7d\""],
)]
#[case::vmauth_without_apps_tenant(
    |c: &RepoCopy| c.replace(VMAUTH_CONFIG, "username: apps", "username: tenant-b"),
    &["6.2.5 [infra]"],
    &["HelmRelease/victorialogs-vmauth", "a user \"apps\"", "\"tenant-b\""],
)]
#[case::vmauth_tenants_share_account(
    |c: &RepoCopy| c.replace(VMAUTH_CONFIG, "\"AccountID: 2\"", "\"AccountID: 1\""),
    &["6.2.5 [infra]"],
    &["users \"apps\" and \"infra\"", "distinct AccountID", "both AccountID 1"],
)]
#[case::grafana_logs_datasource_wrong_type(
    |c: &RepoCopy| replace_all(c, "kubernetes/workloads/platform/observability/victoria-logs/grafana-datasource.yaml", "type: victoriametrics-logs-datasource", "type: loki"),
    &["6.2.6 [infra]"],
    &["Grafana datasources of HelmRelease/victoria-metrics-stack", "victoriametrics-logs-datasource", "type loki"],
)]
#[case::fluent_bit_base_missing(
    |c: &RepoCopy| c.remove(FLUENT_BIT),
    &["6.3.1 [apps]", "6.3.1 [infra]", "6.3.2 [apps]", "6.3.2 [infra]", "6.3.3 [apps]", "6.3.3 [infra]", "6.3.4 [apps]", "6.3.4 [infra]"],
    &["fluent-bit"],
)]
#[case::fluent_bit_apps_uses_cluster_local_name(
    |c: &RepoCopy| c.replace(APPS_SETTINGS, "victorialogs-vmauth.observability.svc.clusterset.local", "victorialogs-vmauth.observability.svc.cluster.local"),
    &["6.3.3 [apps]"],
    &["HelmRelease/fluent-bit", "victorialogs-vmauth.observability.svc.clusterset.local:9428 (exported from infra)", "Host victorialogs-vmauth.observability.svc.cluster.local"],
)]
#[case::fluent_bit_wrong_port(
    |c: &RepoCopy| c.replace(FLUENT_BIT, "Port ${OBSERVABILITY_LOG_ENDPOINT_PORT}", "Port 8427"),
    &["6.3.3 [apps]", "6.3.3 [infra]"],
    &["[OUTPUT] http", ":9428", "Port 8427"],
)]
#[case::vmauth_not_exported_to_apps(
    |c: &RepoCopy| {
        c.remove("kubernetes/workloads/platform/observability/victoria-logs/serviceexport.yaml");
        remove_line(c, "kubernetes/workloads/platform/observability/victoria-logs/kustomization.yaml", "  - serviceexport.yaml");
        remove_line(c, "kubernetes/bases/victoria-logs/vmauth-helmrelease.yaml", "        service.cilium.io/global: \"true\"");
        c.replace("kubernetes/bases/victoria-logs/vmauth-helmrelease.yaml", "      annotations:\n", "");
    },
    &["6.3.3 [apps]"],
    &["HelmRelease/fluent-bit", "Host victorialogs-vmauth.observability.svc.clusterset.local"],
)]
#[case::fluent_bit_tenant_header_identical(
    |c: &RepoCopy| c.replace(FLUENT_BIT, "Header X-Log-Tenant ${OBSERVABILITY_LOG_TENANT}", "Header X-Log-Tenant infra"),
    &["6.3.4 [apps]", "6.3.4 [infra]"],
    &["HelmRelease/fluent-bit", "X-Log-Tenant", "infra"],
)]
#[case::both_clusters_same_tenant(
    |c: &RepoCopy| c.replace(APPS_SETTINGS, "OBSERVABILITY_LOG_TENANT: \"apps\"", "OBSERVABILITY_LOG_TENANT: \"infra\""),
    &["6.3.4 [apps]", "6.3.4 [infra]"],
    &["Header X-Log-Tenant", "a tenant other than \"infra\"", "[\"infra\"]"],
)]
#[case::fluent_bit_without_tenant_header(
    |c: &RepoCopy| remove_line(c, FLUENT_BIT, "            Header X-Log-Tenant ${OBSERVABILITY_LOG_TENANT}"),
    &["6.3.4 [apps]", "6.3.4 [infra]"],
    &["[OUTPUT] http Header", "OBSERVABILITY_LOG_TENANT of cluster", "headers []"],
)]
fn broken_copy_fails_exactly_the_affected_criteria(#[case] mutate: fn(&RepoCopy), #[case] failing: &[&str], #[case] needles: &[&str]) {
    let copy = RepoCopy::new();
    mutate(&copy);
    let report = run_epics_4_to_6(copy.path());
    report.expect_failing(failing).expect_failing_mention(needles);
}

/// What a real cluster may serve instead, and the other way to make the Ceph mons global, still pass.
#[rstest]
#[case::clustersecretstore_v1beta1(
    |c: &RepoCopy| c.replace(STORE, "apiVersion: external-secrets.io/v1\n", "apiVersion: external-secrets.io/v1beta1\n"),
    "5.2.3",
    "external-secrets.io/v1beta1 ClusterSecretStore/onepassword",
)]
#[case::helmrelease_v2beta2(
    |c: &RepoCopy| c.replace("kubernetes/bases/cert-manager/helmrelease.yaml", "helm.toolkit.fluxcd.io/v2\n", "helm.toolkit.fluxcd.io/v2beta2\n"),
    "5.1.1",
    "helm.toolkit.fluxcd.io/v2beta2 HelmRelease/cert-manager",
)]
#[case::ceph_mon_a_as_cilium_global_service(
    |c: &RepoCopy| c.replace(
        "kubernetes/infrastructure/storage/rook-ceph/cluster/global-services.yaml",
        "apiVersion: multicluster.x-k8s.io/v1alpha1\nkind: ServiceExport\nmetadata:\n  name: rook-ceph-mon-a\n  namespace: rook-ceph\n",
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: rook-ceph-mon-a\n  namespace: rook-ceph\n  annotations:\n    service.cilium.io/global: \"true\"\nspec:\n  ports:\n    - name: msgr2\n      port: 3300\n",
    ),
    "4.5.2",
    "Service/rook-ceph-mon-a",
)]
fn accepted_variants_pass_and_say_what_was_found(#[case] mutate: fn(&RepoCopy), #[case] id: &str, #[case] evidence: &str) {
    let copy = RepoCopy::new();
    mutate(&copy);
    let report = run_epics_4_to_6(copy.path());
    report.expect_none_failing();
    let units: Vec<_> = report.results.iter().filter(|r| r.id == id).collect();
    assert!(!units.is_empty());
    for r in units {
        let text = r.outcome.details().join("\n");
        assert!(text.contains(evidence), "{}: evidence lacks {evidence:?}: {text}", r.title());
    }
}
