//! The relay on the simulation: data-plane checks reach services as they would on real
//! clusters, through a relay pod and API-server port-forwards (kwok's kubelet endpoint runs
//! the relay's stand-in inside the simulation's network). Whether a connection works is
//! decided by cluster objects: ServiceImports (through the real CoreDNS), EndpointSlices;
//! a failure names its hop. A run without writes creates nothing (watched), and a run
//! removes its relay when it ends.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Namespace, Pod, Service};
use kube::api::{Api, ListParams, Patch, PatchParams, WatchEvent, WatchParams};
use kube::core::Resource;
use platform_acceptance::check::Verdict;
use serde_json::json;
use support::ReportExt;
use support::sim::{SimFixture, recreate, retries};

const CLUSTERSET: &str = "7.2.10,7.3.3,7.4.5";

/// Names of objects of kind `K` added on `client` from now until the returned handle's
/// task is stopped.
async fn watch_added<K>(client: kube::Client, seen: Arc<Mutex<Vec<String>>>, cluster: &'static str) -> tokio::task::JoinHandle<()>
where
    K: Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + 'static,
{
    let api: Api<K> = Api::all(client);
    let rv = api.list_metadata(&ListParams::default().limit(1)).await.unwrap().metadata.resource_version.unwrap();
    let stream = api.watch(&WatchParams::default(), &rv).await.unwrap();
    tokio::spawn(async move {
        let mut stream = stream.boxed();
        while let Ok(Some(ev)) = stream.try_next().await {
            if let WatchEvent::Added(o) = ev {
                let m = o.meta();
                seen.lock().unwrap().push(format!("{} {}/{} on {cluster}", K::kind(&()), m.namespace.clone().unwrap_or_default(), m.name.clone().unwrap_or_default()));
            }
        }
    })
}

async fn relay_namespaces(fx: &SimFixture, cluster: &str) -> Vec<String> {
    let api: Api<Namespace> = Api::all(fx.client(cluster));
    api.list(&ListParams::default()).await.unwrap().items.into_iter().filter(|n| n.metadata.deletion_timestamp.is_none()).filter_map(|n| n.metadata.name).filter(|n| n.starts_with("pa-relay-")).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn data_plane_traffic_goes_through_the_relay() {
    let Some(fx) = SimFixture::start("data_plane_traffic_goes_through_the_relay").await else { return };

    // ---- healthy: psql and Redis PING to clusterset names, from inside apps.
    let pods: Arc<Mutex<Vec<String>>> = Arc::default();
    let watch = watch_added::<Pod>(fx.client("apps"), pods.clone(), "apps").await;
    let r = fx.run(CLUSTERSET).await;
    watch.abort();
    r.expect_all_pass();
    let started = pods.lock().unwrap().clone();
    assert!(started.iter().any(|p| p.starts_with("Pod pa-relay-") && p.ends_with("/relay on apps")), "the run started a relay pod on apps: {started:?}");
    for cluster in ["infra", "apps"] {
        assert!(relay_namespaces(&fx, cluster).await.is_empty(), "{cluster}: the run removed its relay");
    }

    // ---- DNS hop: apps' ServiceImport is gone, so apps' CoreDNS has no such name.
    let imports = fx.dynamic("apps", "multicluster.x-k8s.io/v1alpha1", "ServiceImport", Some("databases")).await;
    let saved = imports.get("postgres-shared-rw").await.unwrap();
    imports.delete("postgres-shared-rw", &Default::default()).await.unwrap();
    fx.wait_dns("apps", "postgres-shared-rw.databases.svc.clusterset.local", false).await;
    let r = fx.run("7.2.10").await;
    r.expect_findings(&["7.2.10 [apps]"]);
    r.expect_message("7.2.10 [apps]", &[
        "postgres-shared-rw.databases.svc.clusterset.local does not resolve on cluster apps (NXDOMAIN from its DNS at 10.247.0.10: no such ServiceImport)",
        "relay pod on cluster apps",
    ]);
    recreate(&imports, saved).await;
    fx.wait_dns("apps", "postgres-shared-rw.databases.svc.clusterset.local", true).await;

    // ---- connect hop: the exported Service on infra selects no pod, so it has no endpoint;
    // the name still resolves on apps, the connection is refused.
    let services: Api<Service> = Api::namespaced(fx.client("infra"), "databases");
    let selector = services.get("postgres-shared-rw").await.unwrap().spec.unwrap().selector.unwrap();
    let pp = PatchParams::default();
    services.patch("postgres-shared-rw", &pp, &Patch::Merge(json!({"spec": {"selector": {"cnpg.io/cluster": "no-such-cluster"}}}))).await.unwrap();
    let slices: Api<k8s_openapi::api::discovery::v1::EndpointSlice> = Api::namespaced(fx.client("infra"), "databases");
    for _ in 0..40 {
        let l = slices.list(&ListParams::default().labels("kubernetes.io/service-name=postgres-shared-rw")).await.unwrap();
        if l.items.iter().all(|s| s.endpoints.as_ref().is_none_or(|e| e.is_empty())) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let r = fx.run("7.2.10").await;
    services.patch("postgres-shared-rw", &pp, &Patch::Merge(json!({"spec": {"selector": selector}}))).await.unwrap();
    r.expect_findings(&["7.2.10 [apps]"]);
    r.expect_message("7.2.10 [apps]", &["from the relay pod", "on cluster apps: connection refused (nothing listens there, or the Service has no ready endpoint)"]);
    // apps still resolves the name: the failed hop is the connection, not DNS.
    assert!(fx.dns("apps", "postgres-shared-rw.databases.svc.clusterset.local").await.is_ok_and(|a| !a.is_empty()));
    fx.restore().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_global_service_is_reached_from_the_other_cluster() {
    let Some(fx) = SimFixture::start("a_global_service_is_reached_from_the_other_cluster").await else { return };
    // The backend runs on apps; infra's relay reaches it through infra's Service of the same name.
    let r = fx.run("2.3.6").await;
    r.expect_all_pass();
    assert!(r.text().contains("backend on apps; from infra: answered by the backend on apps"), "{}", r.text());
    // infra's agents no longer know apps: its ClusterMesh configuration (Secret
    // kube-system/cilium-clustermesh, which the real external-secrets syncs from 1Password item
    // cilium-clustermesh-apps) is gone with the item, so external-secrets cannot write it again.
    // The name still resolves on infra, the connection is refused.
    let mut vault = platform_acceptance::sim::data::Vault::load(fx.cfg()).expect("the simulation's vault");
    assert!(vault.remove_item("cilium-clustermesh-apps"), "the vault holds infra's ClusterMesh item");
    vault.save(fx.cfg()).expect("saving the vault");
    fx.delete("infra", "v1", "Secret", Some("kube-system"), "cilium-clustermesh").await;
    let t = std::time::Instant::now();
    loop {
        let es = fx.get("infra", "external-secrets.io/v1", "ExternalSecret", Some("kube-system"), "cilium-clustermesh").await;
        let failed = es["status"]["conditions"].as_array().into_iter().flatten().any(|c| c["type"] == "Ready" && c["status"] == "False");
        if failed && fx.get_opt("infra", "v1", "Secret", Some("kube-system"), "cilium-clustermesh").await.is_none() {
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(60), "external-secrets did not report the missing item within 60s: {}", es["status"]);
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let r = fx.run("2.3.6").await;
    fx.restore().await;
    r.expect_findings(&["2.3.6 [all]"]);
    r.expect_message("2.3.6 [all]", &[".svc.cluster.local:80 (at ", "from the relay pod", "on cluster infra: connection refused"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_run_without_writes_creates_nothing() {
    let Some(fx) = SimFixture::start("a_run_without_writes_creates_nothing").await else { return };
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let mut watches = vec![];
    for cluster in ["infra", "apps"] {
        let c = fx.client(cluster);
        watches.push(watch_added::<Namespace>(c.clone(), seen.clone(), cluster).await);
        watches.push(watch_added::<Pod>(c.clone(), seen.clone(), cluster).await);
        watches.push(watch_added::<Lease>(c, seen.clone(), cluster).await);
    }
    // Data plane (relay), round trips (Velero, certificate) and read-only checks.
    let r = fx.run_read_only("7.2.10,7.4.5,10.3.6,5.1.7,7.1.1", retries(0)).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    for w in watches {
        w.abort();
    }
    let added: Vec<String> = seen.lock().unwrap().iter().filter(|s| !s.starts_with("Lease kube-node-lease/")).cloned().collect();
    assert!(added.is_empty(), "a run without --allow-writes created {added:?}");
    for unit in ["7.2.10 [apps]", "7.4.5 [apps]"] {
        assert_eq!(r.verdict(unit), Verdict::Skip, "{unit}: {}", r.message(unit));
        let why = r.message(unit);
        assert!(why.contains("needs --allow-writes: ") && why.contains("through a relay pod on cluster apps"), "{unit}: {why}");
    }
    assert!(r.with_verdict(Verdict::Pass).iter().any(|u| u.starts_with("7.1.1")), "read-only checks still run: {}", r.summary());
}
