//! The platform with a past (`lived-in`) is judged like the healthy one: the whole suite
//! runs on `healthy`, then on `lived-in`, and every verdict is the same. What the scenario
//! leaves in flight is waited for, not failed: Velero's round trip waits behind the
//! scheduled run the real Velero server has under way. The Harbor HelmRelease was upgraded
//! by the real helm-controller, so its history holds two releases. The MCS API is served at v1beta1 only there, and read at that version.
//! Switching back to `healthy` removes the history and puts the MCS CRDs back.
//!
//! Runs in the shared simulation fixture (lock held, healthy scenario restored at the end).

mod support;

use std::time::Duration;

use platform_acceptance::check::Verdict;
use platform_acceptance::runner::RunConfig;
use serde_json::Value;
use support::ReportExt;
use support::sim::{SimFixture, retries};

fn config() -> RunConfig {
    // The default wait for reconciliations in progress (30 s).
    RunConfig { in_progress_wait: Duration::from_secs(30), ..retries(0) }
}

/// `(name, phase)` of the weekly Schedule's Backups on infra, oldest first.
async fn weekly_backups(fx: &SimFixture) -> Vec<(String, String)> {
    let api = fx.dynamic("infra", "velero.io/v1", "Backup", Some("velero")).await;
    let mut items = api.list(&kube::api::ListParams::default().labels("velero.io/schedule-name=weekly-backup")).await.unwrap().items;
    items.sort_by_key(|b| b.metadata.creation_timestamp.clone().map(|t| t.0));
    items.into_iter().map(|b| (b.metadata.name.unwrap_or_default(), b.data["status"]["phase"].as_str().unwrap_or("").to_string())).collect()
}

/// The versions of `multicluster.x-k8s.io` that `cluster` serves ServiceExports at.
async fn mcs_served(fx: &SimFixture, cluster: &str) -> Vec<String> {
    let client = fx.client(cluster);
    let mut out = vec![];
    for version in ["v1alpha1", "v1beta1"] {
        let gvk = kube::api::GroupVersionKind::gvk("multicluster.x-k8s.io", version, "ServiceExport");
        if kube::discovery::pinned_kind(&client, &gvk).await.is_ok() {
            out.push(version.to_string());
        }
    }
    out
}

async fn phase(fx: &SimFixture, cluster: &str, ns: &str, pod: &str) -> String {
    fx.get(cluster, "v1", "Pod", Some(ns), pod).await["status"]["phase"].as_str().unwrap_or("").to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_platform_with_history_is_judged_like_the_healthy_one() {
    let Some(fx) = SimFixture::start("a_platform_with_history_is_judged_like_the_healthy_one").await else { return };
    let healthy = fx.run_with("", config()).await;

    fx.scenario("lived-in").await;
    // The history is there, as its controllers leave it.
    for (pod, want) in [("postgres-shared-3-join-7xq2k", "Failed"), ("postgres-shared-3-join-m4c9d", "Failed"), ("postgres-shared-3-join-zt8wn", "Succeeded")] {
        assert_eq!(phase(&fx, "infra", "databases", pod).await, want, "{pod}");
    }
    let job = fx.get("infra", "batch/v1", "Job", Some("databases"), "postgres-shared-3-join").await;
    assert_eq!((job["status"]["succeeded"].as_i64(), job["status"]["failed"].as_i64()), (Some(1), Some(2)));
    let pods = fx.dynamic("apps", "v1", "Pod", Some("gitlab")).await.list(&Default::default()).await.unwrap();
    let evicted: Vec<Value> = pods.items.iter().map(|p| serde_json::to_value(p).unwrap()).filter(|p| p["status"]["reason"] == "Evicted").collect();
    assert_eq!(evicted.len(), 1, "one evicted webservice pod");
    assert_eq!(evicted[0]["metadata"]["ownerReferences"][0]["kind"], "ReplicaSet");
    // Backups: the older Failed and PartiallyFailed runs, then two real runs of the Schedule
    // by Velero, the newest not waited for (in flight, or finished by now).
    let runs = weekly_backups(&fx).await;
    let phases: Vec<&str> = runs.iter().rev().take(4).rev().map(|(_, p)| p.as_str()).collect();
    assert_eq!(phases[..3], ["Failed", "PartiallyFailed", "Completed"], "{runs:?}");
    assert!(!["Failed", "PartiallyFailed", "FailedValidation"].contains(&phases[3]), "the newest run is Velero's own: {runs:?}");
    let harbor = fx.get("apps", "helm.toolkit.fluxcd.io/v2", "HelmRelease", Some("harbor"), "harbor").await;
    let history: Vec<(i64, &str, &str)> = harbor["status"]["history"].as_array().into_iter().flatten()
        .map(|r| (r["version"].as_i64().unwrap_or(0), r["status"].as_str().unwrap_or(""), r["chartVersion"].as_str().unwrap_or("")))
        .collect();
    assert_eq!(history, [(2, "deployed", "1.19.1"), (1, "superseded", "1.19.1")], "upgraded by helm-controller: {}", harbor["status"]);
    let pg = fx.get("infra", "postgresql.cnpg.io/v1", "Cluster", Some("databases"), "postgres-shared").await;
    assert_eq!((pg["status"]["timelineID"].as_i64(), pg["status"]["currentPrimary"].as_str()), (Some(2), Some("postgres-shared-1")));
    let cert = fx.get("infra", "cert-manager.io/v1", "Certificate", Some("networking"), "wildcard-infra").await;
    assert!(cert["status"]["revision"].as_i64().unwrap_or(0) >= 2, "renewed by cert-manager: {}", cert["status"]);
    for cluster in ["infra", "apps"] {
        assert_eq!(mcs_served(&fx, cluster).await, ["v1beta1"], "{cluster}: the MCS API moved to v1beta1");
    }


    let lived = fx.run_with("", config()).await;
    let before = healthy.verdicts();
    let after = lived.verdicts();
    assert_eq!(before.keys().collect::<Vec<_>>(), after.keys().collect::<Vec<_>>());
    let changed: Vec<String> = before.keys().filter(|u| before[*u] != after[*u]).map(|u| format!("{u}: {:?} -> {:?}: {}", before[u], after[u], lived.message(u))).collect();
    assert_eq!(changed, Vec::<String>::new(), "the platform with history is judged like the healthy one");
    // The MCS API is read at the version each cluster serves, and the evidence says which.
    assert!(healthy.message("2.3.5").contains("ServiceExport multicluster.x-k8s.io/v1alpha1 on infra"), "{}", healthy.message("2.3.5"));
    assert!(lived.message("2.3.5").contains("ServiceExport multicluster.x-k8s.io/v1beta1 on infra"), "{}", lived.message("2.3.5"));
    assert!(lived.message("2.3.5").contains("ServiceImport multicluster.x-k8s.io/v1beta1 on apps"), "{}", lived.message("2.3.5"));

    // On its own the Definition of Done reads the history as history: the failed and evicted pods (dod.5).
    let own = fx.run_with("dod.4,dod.5", config()).await;
    assert_eq!(own.failing(), Vec::<String>::new(), "{}", own.text());
    assert_eq!(own.verdict("dod.5 [infra]"), Verdict::Pass);
    assert_eq!(own.verdict("dod.5 [apps]"), Verdict::Pass);

    // Back to healthy: the history is gone, the verdicts are healthy's again.
    fx.scenario("healthy").await;
    assert!(fx.get_opt("infra", "batch/v1", "Job", Some("databases"), "postgres-shared-3-join").await.is_none());
    assert!(fx.get_opt("infra", "velero.io/v1", "Backup", Some("velero"), "weekly-backup-20251228020000").await.is_none());
    let backups = fx.dynamic("infra", "velero.io/v1", "Backup", Some("velero")).await;
    let newest = backups.list(&kube::api::ListParams::default().labels("velero.io/schedule-name=weekly-backup")).await.unwrap().items.into_iter().max_by_key(|b| b.metadata.creation_timestamp.clone().map(|t| t.0)).unwrap();
    assert_eq!(newest.data["status"]["phase"], "Completed", "the newest Backup is the real Velero server's run of the Schedule");
    for cluster in ["infra", "apps"] {
        assert_eq!(mcs_served(&fx, cluster).await, ["v1alpha1"], "{cluster}: the MCS CRDs installed at start are back");
    }
    // Velero, restarted with the CRDs put back, backs up without listing the retired version.
    let back = fx.run_with("2.3,9.2,10.3,10.4,dod.5", config()).await;
    assert_eq!(back.failing(), Vec::<String>::new(), "{}", back.text());
}
