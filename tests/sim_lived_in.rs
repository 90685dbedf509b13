//! The platform with a past (`lived-in`) is judged like the healthy one: the whole suite
//! runs on `healthy`, then on `lived-in`, and the only verdicts that change are those of
//! the one reconciliation the scenario leaves running (the Harbor HelmRelease mid-upgrade:
//! reported in progress, then a Fail saying it was still in progress when the wait ended)
//! and the Definition-of-Done units on apps, which that failure blocks. Switching back to `healthy`
//! removes the history.
//!
//! Runs in the shared simulation fixture (lock held, healthy scenario restored at the end).

mod support;

use std::time::Duration;

use platform_acceptance::check::Verdict;
use platform_acceptance::runner::RunConfig;
use serde_json::Value;
use support::ReportExt;
use support::sim::{SimFixture, retries};

/// Velero's own queue, as the round trip reports it (after "expected Completed within 25s,
/// observed still in progress after <waited>").
fn queued(message: &str) -> bool {
    message.contains("expected Completed within 25s, observed still in progress after ") && message.contains("s: Queued behind weekly-backup-20260111020000 (InProgress)")
}

fn config() -> RunConfig {
    // The state is settled before each run; a short in-progress wait keeps the run quick.
    RunConfig { in_progress_wait: Duration::from_secs(3), ..retries(0) }
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
    let inflight = fx.get("infra", "velero.io/v1", "Backup", Some("velero"), "weekly-backup-20260111020000").await;
    assert_eq!(inflight["status"]["phase"], "InProgress");
    let pg = fx.get("infra", "postgresql.cnpg.io/v1", "Cluster", Some("databases"), "postgres-shared").await;
    assert_eq!((pg["status"]["timelineID"].as_i64(), pg["status"]["currentPrimary"].as_str()), (Some(2), Some("postgres-shared-1")));
    let cert = fx.get("infra", "cert-manager.io/v1", "Certificate", Some("networking"), "wildcard-infra").await;
    assert!(cert["status"]["revision"].as_i64().unwrap_or(0) >= 2, "renewed by cert-manager: {}", cert["status"]);

    let lived = fx.run_with("", config()).await;
    let before = healthy.verdicts();
    let after = lived.verdicts();
    assert_eq!(before.keys().collect::<Vec<_>>(), after.keys().collect::<Vec<_>>());
    let changed: Vec<&String> = before.keys().filter(|u| before[*u] != after[*u]).collect();
    assert!(!changed.is_empty(), "the Harbor upgrade in flight is reported");
    for unit in &changed {
        eprintln!("lived-in: {unit}: {:?} -> {:?}: {}", before[*unit], after[*unit], lived.message(unit));
    }
    for unit in &changed {
        let message = lived.message(unit);
        // The upgrade in flight, failing once the wait is over ...
        let upgrade = after[*unit] == Verdict::Fail
            && message.contains("HelmRelease harbor/harbor")
            && message.contains("still in progress after 3s: Progressing: Running 'upgrade' action with timeout of 15m0s; chart 1.0.0 still deployed");
        // ... Velero's round trip on infra, whose Backup Velero queues behind the weekly Backup
        // in flight (its namespaces, "*", overlap; the in-flight record is history that no
        // Velero runs here, so it stays in flight), in progress until the wait is over ...
        let in_queue = *unit == "10.3.6 [infra]" && after[*unit] == Verdict::Fail && queued(&message);
        // ... and what waits for those two: story 10.4 and the Definition of Done.
        let blocked = after[*unit] == Verdict::Skip
            && (message == "blocked by 10.3" || message == "blocked by 9.2" || message == "blocked by 10.3, 10.4, 9.2")
            && (unit.starts_with("dod.") || unit.starts_with("10.4."));
        let dod = unit.starts_with("dod.") && after[*unit] == Verdict::Fail && (message.contains("9.2.5 [apps]") || message.contains("10.3.6 [infra]"));
        assert!(upgrade || in_queue || blocked || dod, "{unit} changed: {message}");
    }

    // The Definition of Done waits for 9.2 and 10.3 above; on its own it reads the history as
    // history: the failed and evicted pods (dod.5).
    let own = fx.run_with("dod.4,dod.5", config()).await;
    assert_eq!(own.failing(), Vec::<String>::new(), "{}", own.text());
    assert_eq!(own.verdict("dod.5 [infra]"), Verdict::Pass);
    assert_eq!(own.verdict("dod.5 [apps]"), Verdict::Pass);
    // Velero's stories: only the round trip queued behind the Backup in flight fails.
    let velero = fx.run_with("10.3,10.4", config()).await;
    assert_eq!(velero.failing(), vec!["10.3.6 [infra]".to_string()], "{}", velero.text());
    assert!(queued(&velero.message("10.3.6 [infra]")), "{}", velero.message("10.3.6 [infra]"));

    // Back to healthy: the history is gone, the verdicts are healthy's again.
    fx.scenario("healthy").await;
    assert!(fx.get_opt("infra", "batch/v1", "Job", Some("databases"), "postgres-shared-3-join").await.is_none());
    assert!(fx.get_opt("infra", "velero.io/v1", "Backup", Some("velero"), "weekly-backup-20260111020000").await.is_none());
    let backups = fx.dynamic("infra", "velero.io/v1", "Backup", Some("velero")).await;
    let newest = backups.list(&kube::api::ListParams::default().labels("velero.io/schedule-name=weekly-backup")).await.unwrap().items.into_iter().max_by_key(|b| b.metadata.creation_timestamp.clone().map(|t| t.0)).unwrap();
    assert_eq!(newest.data["status"]["phase"], "Completed", "the newest Backup is the real Velero server's run of the Schedule");
    assert_eq!(fx.run_with("9.2,10.4,dod.5", config()).await.failing(), Vec::<String>::new());
}
