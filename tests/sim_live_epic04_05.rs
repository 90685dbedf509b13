//! EPIC-4 (Rook Ceph, OpenEBS, cross-cluster Ceph) and EPIC-5 (cert-manager, External
//! Secrets) cluster and data-plane checks on the local simulation: every unit passes on the
//! healthy platform; fault scenarios and targeted breakages (status patches, scaled-down
//! controllers, deleted objects) fail exactly the units they should, naming object,
//! expected and observed. Test PVCs are bound by the simulation's stand-in provisioner
//! (src/sim/provisioner.rs) through the real PV controller and scheduler.
//! Runs in the shared simulation fixture: lock held; the deleted CRD and the healthy
//! scenario are restored at the end, also when an assertion fails.
//!
//! Every expectation here is strict ([`ReportExt::expect_findings`]): exactly the named
//! units Fail, and every other unit of the run passes (no Error, no Skip).

mod support;

use std::time::Instant;

use platform_acceptance::check::Verdict;
use serde_json::json;
use support::ReportExt;
use support::sim::{SimFixture, condition, retries};

const ALL: &str = "4.1.3,4.1.4,4.1.5,4.2.3,4.2.4,4.2.5,4.2.6,4.2.7,4.3.4,4.3.5,4.3.6,4.5.1,4.5.3,4.5.4,4.5.5,\
5.1.4,5.1.5,5.1.6,5.1.7,5.2.4,5.2.5,5.2.6,5.2.7";
const BROKEN_CRD: &str = "cephnfses.ceph.rook.io";
const HR: &str = "helm.toolkit.fluxcd.io/v2";

#[tokio::test(flavor = "multi_thread")]
async fn storage_and_security_criteria_on_the_simulation() {
    let started = Instant::now();
    let Some(fx) = SimFixture::start("storage_and_security_criteria_on_the_simulation").await else { return };

    // Healthy: every unit passes, on the clusters the criteria name.
    let t = Instant::now();
    let r = fx.run_with(ALL, retries(2)).await;
    r.expect_none_failing();
    assert_eq!(r.results.len(), 28, "{:?}", r.verdicts().keys().collect::<Vec<_>>());
    assert_eq!(r.with_verdict(Verdict::Pass).len(), 27, "{}", r.summary());
    r.expect_message("4.2.7 [infra]", &["Bound to PV pvc-", "csi rook-ceph.rbd.csi.ceph.com"])
        .expect_message("4.3.6 [apps]", &["local /var/openebs/local/pvc-"])
        .expect_message("4.5.5 [apps]", &["clusterID rook-ceph-infra", "imported from infra", "pool replicapool Ready"]);
    // The simulated nodes have no disks: the simulation does not invent a capacity.
    assert!(r.message("4.2.4 [infra]").starts_with("not provable in the simulation: the simulated nodes have no disks"), "{}", r.message("4.2.4 [infra]"));
    println!("healthy run {:?}", t.elapsed());

    // 4.2.4 on a state the test constructs: Rook reporting three 1 TB NVMe OSDs.
    fx.patch_status("infra", "ceph.rook.io/v1", "CephCluster", Some("rook-ceph"), "rook-ceph", json!({"ceph": {"capacity": {"bytesTotal": 3000614658048u64}}})).await;
    fx.run_constructed("4.2.4", None).await.expect_all_pass().expect_message("4.2.4 [infra]", &["3 OSDs", "3.00 TB raw"]);

    // ceph-degraded: HEALTH_WARN on infra. 4.2.5 fails (4.3/4.5 wait for 4.2 and are skipped
    // in that run); on its own, 4.5's end-to-end verification fails on the same health.
    let t = Instant::now();
    fx.scenario("ceph-degraded").await;
    fx.run("4.1.3,4.1.4,4.1.5,4.2.3,4.2.4,4.2.5,4.2.6,4.2.7,5.1.4,5.1.5,5.1.6,5.1.7,5.2.4,5.2.5,5.2.6,5.2.7")
        .await
        .expect_findings(&["4.2.5 [infra]"])
        .expect_message("4.2.5 [infra]", &["CephCluster rook-ceph/rook-ceph (ceph.rook.io/v1) (cluster infra) status.ceph.health: expected HEALTH_OK, observed HEALTH_WARN [OSD_DOWN: 1 osds down]"]);
    fx.run("4.3.4,4.3.5,4.3.6,4.5.1,4.5.3,4.5.4,4.5.5")
        .await
        .expect_findings(&["4.5.5 [apps]"])
        .expect_message("4.5.5 [apps]", &["(cluster infra) status.ceph.health: expected HEALTH_OK (the Ceph behind the remote volume), observed HEALTH_WARN"]);
    println!("ceph-degraded {:?}", t.elapsed());

    // cert-not-ready (the CA Secret of infra's letsencrypt-production and the TLS Secret of
    // networking/wildcard-infra deleted: cert-manager reports the ClusterIssuer and the
    // Certificate Ready=False) plus one breakage per other EPIC-5 unit.
    let t = Instant::now();
    fx.scenario("cert-not-ready").await;
    let g = fx.generation("infra", HR, "HelmRelease", Some("cert-manager"), "cert-manager").await;
    fx.patch_status("infra", HR, "HelmRelease", Some("cert-manager"), "cert-manager", json!({"conditions": [
        condition("Ready", "False", "InstallFailed", "Helm install failed: timed out waiting for the condition", g)]})).await;
    fx.scale("apps", "cert-manager", "cert-manager-webhook", 0).await;
    // A real issuer fault on apps: the CA Secret of the stand-in letsencrypt-staging is
    // deleted; cert-manager itself sets Ready=False (a status patch would be undone by it).
    fx.delete("apps", "v1", "Secret", Some("cert-manager"), "letsencrypt-staging-sim-ca").await;
    wait_condition(&fx, "apps", ("cert-manager.io/v1", "ClusterIssuer"), None, "letsencrypt-staging", ("Ready", "False")).await;
    fx.scale("infra", "external-secrets", "external-secrets-cert-controller", 0).await;
    // a stale Ready: observedGeneration behind metadata.generation
    fx.patch_status("apps", HR, "HelmRelease", Some("external-secrets"), "external-secrets", json!({"observedGeneration": 0, "conditions": [
        condition("Ready", "True", "InstallSucceeded", "Helm install succeeded", Some(0))]})).await;
    fx.scale("infra", "external-secrets", "onepassword-connect", 0).await;
    // A real sync fault on apps: the 1Password item csi-rbd-secret reads is deleted, then the
    // synced Secret; the real external-secrets controller cannot sync it again.
    let mut vault = platform_acceptance::sim::data::Vault::load(fx.cfg()).expect("the simulation's vault");
    assert!(vault.remove_item("ceph-csi-rbd-apps"), "the vault holds the item the ExternalSecret reads");
    vault.save(fx.cfg()).expect("saving the vault");
    fx.delete("apps", "v1", "Secret", Some("ceph-csi-rbd"), "csi-rbd-secret").await;
    wait_condition(&fx, "apps", ("external-secrets.io/v1", "ExternalSecret"), Some("ceph-csi-rbd"), "csi-rbd-secret", ("Ready", "False")).await;
    for (c, ns, n) in [("apps", "cert-manager", "cert-manager-webhook"), ("infra", "external-secrets", "external-secrets-cert-controller"), ("infra", "external-secrets", "onepassword-connect")] {
        fx.wait_not_ready(c, "Deployment", ns, n).await;
    }
    // the endpoint slice controller follows the pods
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    fx.run("5.1.4,5.1.5,5.1.6,5.1.7,5.2.4,5.2.5,5.2.6,5.2.7")
        .await
        .expect_findings(&["5.1.4 [infra]", "5.1.5 [apps]", "5.1.6 [apps]", "5.1.6 [infra]", "5.1.7 [apps]", "5.2.4 [infra]", "5.2.5 [apps]", "5.2.6 [infra]", "5.2.7 [apps]"])
        .expect_message("5.1.4 [infra]", &["HelmRelease cert-manager/cert-manager (helm.toolkit.fluxcd.io/v2) (cluster infra): expected Ready=True, observed Ready=False (InstallFailed"])
        .expect_message("5.1.5 [apps]", &["Deployment cert-manager/cert-manager-webhook (cluster apps): expected 0 ready (> 0), observed 0/0 ready"])
        // cert-manager's own reason and message (pkg/issuer/ca/setup.go, readiness controller)
        .expect_message("5.1.6 [apps]", &["ClusterIssuer letsencrypt-staging (cert-manager.io/v1): expected Ready=True, observed Ready=False (ErrGetKeyPair: Error getting keypair for CA issuer: secrets \"letsencrypt-staging-sim-ca\" not found"])
        .expect_message("5.1.6 [infra]", &["ClusterIssuer letsencrypt-production (cert-manager.io/v1): expected Ready=True, observed Ready=False (ErrGetKeyPair: Error getting keypair for CA issuer: secrets \"letsencrypt-production-sim-ca\" not found"])
        // 5.1.7 asks the issuer the planning document's test uses (letsencrypt-staging): fine on
        // infra, not Ready on apps, so nothing is requested there.
        .expect_message("5.1.7 [apps]", &["ClusterIssuer letsencrypt-staging (cert-manager.io/v1): expected Ready=True, observed Ready=False (ErrGetKeyPair"])
        .expect_message("5.2.4 [infra]", &["Deployment external-secrets/external-secrets-cert-controller (cluster infra)"])
        .expect_message("5.2.5 [apps]", &["HelmRelease external-secrets/external-secrets (helm.toolkit.fluxcd.io/v2) (cluster apps): expected Ready=True for generation", "observed stale: observedGeneration 0"])
        .expect_message("5.2.6 [infra]", &["Service external-secrets/onepassword-connect (cluster infra; connectHost http://onepassword-connect.external-secrets.svc.cluster.local:8080): expected at least one ready endpoint"])
        // external-secrets' own condition, and its event naming the missing item
        .expect_message("5.2.7 [apps]", &[
            "ExternalSecret ceph-csi-rbd/csi-rbd-secret (external-secrets.io/v1) (cluster apps): expected Ready=True (SecretSynced), observed Ready=False (SecretSyncedError: could not get secret data from provider)",
            "key not found in 1Password Vaults: ceph-csi-rbd-apps",
        ]);
    println!("epic-5 breakages {:?}", t.elapsed());

    // connect-token-revoked: the Connect token both clusters hold is revoked; the real
    // external-secrets controller validates each cluster's store again and reports
    // Connect's 401. What it synced before stays synced until its next refresh.
    let t = Instant::now();
    fx.scenario("connect-token-revoked").await;
    let revoked = "expected Ready=True (Valid: Connect answered), observed Ready=False (ValidationFailed: unable to validate store: status 401: Invalid bearer token)";
    fx.run("5.2.4,5.2.5,5.2.6,5.2.7")
        .await
        .expect_findings(&["5.2.6 [apps]", "5.2.6 [infra]"])
        .expect_message("5.2.6 [infra]", &[&format!("ClusterSecretStore onepassword (external-secrets.io/v1) (cluster infra): {revoked}")])
        .expect_message("5.2.6 [apps]", &[&format!("ClusterSecretStore onepassword (external-secrets.io/v1) (cluster apps): {revoked}")]);
    println!("connect-token-revoked {:?}", t.elapsed());

    // EPIC-4 breakages on a fresh healthy platform; one run per story group (4.2 waits for
    // 4.1 and 4.3/4.5 for 4.2, so a failure upstream would skip them).
    let t = Instant::now();
    fx.scenario("healthy").await;
    let g = fx.generation("infra", HR, "HelmRelease", Some("rook-ceph"), "rook-ceph-operator").await;
    fx.patch_status("infra", HR, "HelmRelease", Some("rook-ceph"), "rook-ceph-operator", json!({"conditions": [condition("Ready", "False", "UpgradeFailed", "Helm upgrade failed", g)]})).await;
    fx.scale("infra", "rook-ceph", "rook-ceph-operator", 0).await;
    fx.delete_crd("infra", BROKEN_CRD).await;
    fx.patch_status("infra", "ceph.rook.io/v1", "CephCluster", Some("rook-ceph"), "rook-ceph", json!({
        "phase": "Progressing", "message": "Configuring Ceph OSDs",
        "storage": {"osd": {"storeType": {"bluestore": 2}}},
        "ceph": {"health": "HEALTH_OK", "capacity": {"bytesTotal": 2000409772032u64}},
    })).await;
    fx.patch_status("infra", "ceph.rook.io/v1", "CephBlockPool", Some("rook-ceph"), "replicapool", json!({"phase": "Failure"})).await;
    fx.scale("infra", "rook-ceph", "csi-rbdplugin-provisioner", 0).await;
    let g = fx.generation("infra", HR, "HelmRelease", Some("openebs"), "openebs").await;
    fx.patch_status("infra", HR, "HelmRelease", Some("openebs"), "openebs", json!({"conditions": [
        condition("Ready", "False", "ArtifactFailed", "HelmChart 'flux-system/openebs-openebs' is not ready", g)]})).await;
    fx.scale("apps", "openebs", "openebs-localpv-provisioner", 0).await;
    fx.delete("apps", "multicluster.x-k8s.io/v1alpha1", "ServiceImport", Some("rook-ceph"), "rook-ceph-mon-b").await;
    fx.scale("apps", "ceph-csi-rbd", "ceph-csi-rbd-provisioner", 0).await;
    fx.delete("apps", "storage.k8s.io/v1", "CSIDriver", None, "rbd.csi.ceph.com").await;
    for (c, ns, n) in [("infra", "rook-ceph", "rook-ceph-operator"), ("infra", "rook-ceph", "csi-rbdplugin-provisioner"), ("apps", "openebs", "openebs-localpv-provisioner"), ("apps", "ceph-csi-rbd", "ceph-csi-rbd-provisioner")] {
        fx.wait_not_ready(c, "Deployment", ns, n).await;
    }
    println!("epic-4 breakages applied {:?}", t.elapsed());

    fx.run("4.1.3,4.1.4,4.1.5")
        .await
        .expect_findings(&["4.1.3 [infra]", "4.1.4 [infra]", "4.1.5 [infra]"])
        .expect_message("4.1.3 [infra]", &["HelmRelease rook-ceph/rook-ceph-operator (helm.toolkit.fluxcd.io/v2) (cluster infra): expected Ready=True, observed Ready=False (UpgradeFailed"])
        .expect_message("4.1.4 [infra]", &["Deployment rook-ceph/rook-ceph-operator (cluster infra): expected 0 ready (> 0), observed 0/0 ready"])
        .expect_message("4.1.5 [infra]", &["CustomResourceDefinition cephnfses.ceph.rook.io (cluster infra): expected installed and Established, observed not found"]);

    fx.run_constructed("4.2.3,4.2.4,4.2.5,4.2.6,4.2.7", None)
        .await
        .expect_findings(&["4.2.3 [infra]", "4.2.4 [infra]", "4.2.6 [infra]", "4.2.7 [infra]"])
        .expect_message("4.2.3 [infra]", &["CephCluster rook-ceph/rook-ceph (ceph.rook.io/v1) (cluster infra) status.phase: expected Ready, observed still in progress after 30s: Progressing (Configuring Ceph OSDs)"])
        .expect_message("4.2.4 [infra]", &["status.storage.osd.storeType: expected 3 OSDs, observed 2", "status.ceph.capacity.bytesTotal: expected ≈ 3 × 1 TB (2.70-3.30 TB raw), observed 2000409772032 bytes (2.00 TB)"])
        .expect_message("4.2.6 [infra]", &["CephBlockPool rook-ceph/replicapool (pool of StorageClass rook-ceph-block (cluster infra), cluster infra): expected status.phase Ready, observed Failure"])
        .expect_message("4.2.7 [infra]", &["PersistentVolumeClaim pa-pvc-", "/pa-test-pvc (class rook-ceph-block, provisioner rook-ceph.rbd.csi.ceph.com, cluster infra): expected Bound within 12s, observed Pending", "rook-ceph.rbd.csi.ceph.com"]);

    let r = fx.run("4.3.4,4.3.5,4.3.6,4.5.1,4.5.3,4.5.4,4.5.5").await;
    r.expect_findings(&["4.3.4 [infra]", "4.3.5 [apps]", "4.3.6 [apps]", "4.5.1 [apps]", "4.5.3 [apps]", "4.5.4 [apps]", "4.5.5 [apps]"])
        .expect_message("4.3.4 [infra]", &["HelmRelease openebs/openebs (helm.toolkit.fluxcd.io/v2) (cluster infra): expected Ready=True, observed Ready=False (ArtifactFailed"])
        .expect_message("4.3.5 [apps]", &["Deployment openebs/openebs-localpv-provisioner (cluster apps): expected 0 ready (> 0), observed 0/0 ready"])
        .expect_message("4.3.6 [apps]", &["(class openebs-local-nvme, provisioner openebs.io/local, cluster apps): expected Bound within 12s, observed Pending"])
        .expect_message("4.5.1 [apps]", &["ServiceImport rook-ceph/rook-ceph-mon-b (cluster apps): expected imported from cluster infra (ClusterMesh MCS-API), observed not found"])
        .expect_message("4.5.3 [apps]", &["CSIDriver rbd.csi.ceph.com (cluster apps): expected registered (provisioner of StorageClass ceph-block-remote), observed not found", "Deployment ceph-csi-rbd/ceph-csi-rbd-provisioner (cluster apps)"])
        .expect_message("4.5.4 [apps]", &["(class ceph-block-remote, provisioner rbd.csi.ceph.com, cluster apps): expected Bound within 12s, observed Pending"])
        .expect_message("4.5.5 [apps]", &["expected Bound within 12s, observed Pending"]);
    assert_eq!(r.verdict("4.3.6 [infra]"), Verdict::Pass);
    println!("epic-4 breakage runs {:?}", t.elapsed());

    // 4.5.5 beyond the claim: with a provisioner back, the missing import and the failed
    // pool on infra are what it reports.
    let t = Instant::now();
    fx.scale("apps", "ceph-csi-rbd", "ceph-csi-rbd-provisioner", 2).await;
    fx.wait_ready("apps", "Deployment", "ceph-csi-rbd", "ceph-csi-rbd-provisioner").await;
    fx.run_with("4.5.5", retries(1))
        .await
        .expect_findings(&["4.5.5 [apps]"])
        .expect_message("4.5.5 [apps]", &[
            "ServiceImport rook-ceph/rook-ceph-mon-b (cluster apps): expected imported from cluster infra (ClusterMesh MCS-API), observed not found",
            "CephBlockPool rook-ceph/replicapool (ceph.rook.io/v1) (cluster infra), pool of PV pvc-",
        ]);
    println!("4.5.5 chain {:?}", t.elapsed());

    // Back to healthy (the deleted CRD first): everything passes again.
    let t = Instant::now();
    fx.restore().await;
    fx.run_with(ALL, retries(2)).await.expect_all_pass();
    println!("restore {:?}; total {:?}", t.elapsed(), started.elapsed());
}

/// Waits (60 s at most) until cert-manager set condition `type_` of a cert-manager.io/v1
/// object to `status`.
/// Waits (60 s at most) until `kind` `name` on `cluster` has condition `(type, status)`.
async fn wait_condition(fx: &SimFixture, cluster: &str, (api_version, kind): (&str, &str), ns: Option<&str>, name: &str, (type_, status): (&str, &str)) {
    let t = Instant::now();
    loop {
        let o = fx.get(cluster, api_version, kind, ns, name).await;
        let found = o.pointer("/status/conditions").and_then(|c| c.as_array()).is_some_and(|cs| cs.iter().any(|c| c["type"] == type_ && c["status"] == status));
        if found {
            return;
        }
        assert!(t.elapsed().as_secs() < 60, "{kind} {name} on {cluster}: {type_} not {status} after 60s: {}", o["status"]);
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    }
}
