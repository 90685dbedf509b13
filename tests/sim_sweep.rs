//! Who owns what a run created, on the simulation: a writing run holds its Lease only
//! while it runs and labels its namespaces with its id; `sweep` removes the namespaces of
//! runs whose Lease expired or is gone, keeps those of a run still renewing, and never
//! touches a namespace without the run label.

mod support;

use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, DeleteParams, PostParams};
use platform_acceptance::check::{Check, Ctx, Outcome};
use platform_acceptance::cluster::lease::{self, DISPOSABLE_LABEL};
use platform_acceptance::plan::Unit;
use platform_acceptance::runner::{Environment, RunConfig, Runner};
use support::ReportExt;
use support::sim::{SimFixture, wait_phase};

async fn exists(api: &Api<Namespace>, name: &str) -> bool {
    // A deleted namespace lingers while it terminates: count it as gone.
    api.get_opt(name).await.unwrap().is_some_and(|n| n.metadata.deletion_timestamp.is_none())
}

#[tokio::test(flavor = "multi_thread")]
async fn sweep_removes_only_what_dead_runs_left() {
    let Some(fx) = SimFixture::start("sweep_removes_only_what_dead_runs_left").await else { return };
    let client = fx.client("infra");
    let namespaces: Api<Namespace> = Api::all(client.clone());

    // A writing run holds its Lease while it runs, and its namespaces carry its id.
    let holds = Check::data_plane("4.2", "Test PVC can be created and bound", "holds_lease", |ctx: Ctx| async move {
        let client = ctx.kube()?.clone();
        let lease = Api::<Lease>::namespaced(client, lease::LEASE_NAMESPACE).get_opt(&lease::lease_name(&ctx.run)).await;
        Ok::<_, Outcome>(match lease {
            Ok(Some(l)) => Outcome::pass(format!("Lease held by {:?}", l.spec.and_then(|s| s.holder_identity))),
            other => Outcome::fail(format!("Lease {}", lease::lease_name(&ctx.run)), "held while the run runs", format!("{other:?}")),
        })
    })
    .writes();
    let targets = support::sim::targets(&["infra".to_string()]).await;
    let runner = Runner::new(RunConfig { retries: 0, ..RunConfig::default() }, Environment { repo: None, targets: targets.clone() }, vec![]);
    let unit = Unit { id: "4.2.7".into(), story: "4.2".into(), cluster: "infra".into(), text: holds.criterion.into(), layer: Some(holds.layer), check: Some(holds) };
    let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
    let r = runner.run(vec![unit], tx).await;
    r.expect_all_pass();
    let leases: Api<Lease> = Api::namespaced(client.clone(), lease::LEASE_NAMESPACE);
    assert!(leases.get_opt(&lease::lease_name(&runner.run)).await.unwrap().is_none(), "the Lease is released when the run ends");

    // Three leftovers: a run that died (its Lease expired), a run still going, and an unlabelled one.
    let suffix = platform_acceptance::random::token(6).to_ascii_lowercase();
    let (dead, live, unowned) = (format!("pa-dead-{suffix}"), format!("pa-live-{suffix}"), format!("pa-unowned-{suffix}"));
    let (dead_run, live_run) = (format!("dead{suffix}"), format!("live{suffix}"));
    lease::renew(&client, &dead_run, "a run that was killed", 1).await.unwrap();
    lease::create_namespace(&client, &dead, &dead_run).await.unwrap();
    lease::renew(&client, &live_run, "a run still going", 300).await.unwrap();
    lease::create_namespace(&client, &live, &live_run).await.unwrap();
    let plain: Namespace = serde_json::from_value(serde_json::json!({"metadata": {"name": unowned, "labels": {DISPOSABLE_LABEL: "true"}}})).unwrap();
    namespaces.create(&PostParams::default(), &plain).await.unwrap();
    // Velero's objects live in Velero's namespace, labelled with their run: the dead run left
    // a finished Backup (files in the bucket) and a Restore, the live run has a Backup too.
    let backups = fx.dynamic("infra", "velero.io/v1", "Backup", Some("velero")).await;
    let restores = fx.dynamic("infra", "velero.io/v1", "Restore", Some("velero")).await;
    for (name, run) in [(&dead, &dead_run), (&live, &live_run)] {
        let b = serde_json::json!({"apiVersion": "velero.io/v1", "kind": "Backup", "metadata": {"name": name, "labels": {lease::RUN_LABEL: run}}, "spec": {"includedNamespaces": [name], "ttl": "1h0m0s"}});
        backups.create(&PostParams::default(), &serde_json::from_value(b).unwrap()).await.unwrap();
    }
    let r = serde_json::json!({"apiVersion": "velero.io/v1", "kind": "Restore", "metadata": {"name": dead, "labels": {lease::RUN_LABEL: dead_run}}, "spec": {"backupName": dead}});
    restores.create(&PostParams::default(), &serde_json::from_value(r).unwrap()).await.unwrap();
    wait_phase(&backups, &dead, Some("Completed"), Duration::from_secs(60), "the real Velero server took the dead run's Backup").await;
    tokio::time::sleep(Duration::from_secs(3)).await;

    let swept = lease::sweep(&client).await.unwrap();
    let mut removed = swept.removed.clone();
    removed.sort();
    let mut want = vec![format!("{dead} ({dead_run})"), format!("Backup velero/{dead} ({dead_run})"), format!("Restore velero/{dead} ({dead_run})")];
    want.sort();
    assert_eq!(removed, want, "{swept:?}");
    assert!(swept.live.contains(&format!("Backup velero/{live} ({live_run})")), "{swept:?}");
    assert!(swept.failed.is_empty(), "{swept:?}");
    // Velero deletes the Backup (files first) as the DeleteBackupRequest asks.
    wait_phase(&backups, &dead, None, Duration::from_secs(60), "Velero deleted the dead run's Backup").await;
    assert!(restores.get_opt(&dead).await.unwrap().is_none(), "the dead run's Restore is deleted");
    assert!(backups.get_opt(&live).await.unwrap().is_some(), "the live run's Backup stays");
    assert!(swept.live.contains(&format!("{live} ({live_run})")), "{swept:?}");
    assert!(swept.unowned.contains(&unowned), "{swept:?}");
    assert!(!exists(&namespaces, &dead).await, "the dead run's namespace is deleted");
    assert!(exists(&namespaces, &live).await && exists(&namespaces, &unowned).await, "the live run's and the unlabelled namespaces stay");
    assert!(leases.get_opt(&lease::lease_name(&dead_run)).await.unwrap().is_none(), "the dead run's Lease goes with its objects");

    // The command line says the same.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_platform-acceptance")).args(["sweep", "--sim"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && text.contains("infra: removed 0 []") && text.contains("apps: removed 0 []"), "{text}");

    for n in [&live, &unowned] {
        namespaces.delete(n, &DeleteParams::default()).await.unwrap();
    }
    lease::release(&client, &live_run).await;
    let live_backup = backups.get(&live).await.unwrap();
    let live_backup = platform_acceptance::cluster::objects::Found { object: live_backup, api_version: "velero.io/v1".into() };
    lease::remove_velero_backup(&client, &live_backup, &live_run).await.unwrap();
}
