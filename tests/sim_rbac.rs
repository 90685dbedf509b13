//! The roles `platform-acceptance rbac --allow-writes` prints are enough, and each rule is
//! needed: the simulation's API servers enforce RBAC, and the whole suite runs as a
//! ServiceAccount bound to exactly those roles (impersonated, as `run --as` does).
//! - every access an admin run makes is in the table the roles come from;
//! - as the ServiceAccount: no unit is forbidden anything, and the verdicts are the admin's;
//! - with one rule taken away, the units that need it are Errors saying "forbidden: needs
//!   <verb> <group>/<resource>", and the others keep their verdicts.
//!
//! Runs in the shared simulation fixture (lock held; the roles removed at the end).

mod support;

use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams};
use platform_acceptance::check::Verdict;
use platform_acceptance::cluster::lease;
use platform_acceptance::cluster::rbac::{RbacAccess, accesses};
use platform_acceptance::runner::RunReport;
use serde_json::Value;
use support::ReportExt;
use support::sim::{SimFixture, dynamic, retries};

const USER: &str = "system:serviceaccount:platform-acceptance:harness";
const MANAGER: &str = "platform-acceptance-test";

/// The manifests of `platform-acceptance rbac --allow-writes`.
fn manifests() -> Vec<Value> {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_platform-acceptance")).args(["rbac", "--allow-writes"]).output().expect("run rbac");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    serde_yaml_ng::Deserializer::from_str(&text).map(|d| serde::Deserialize::deserialize(d).unwrap()).filter(|v: &Value| !v.is_null()).collect()
}

async fn api(client: &kube::Client, doc: &Value) -> Api<DynamicObject> {
    dynamic(client, doc["apiVersion"].as_str().unwrap(), doc["kind"].as_str().unwrap(), doc.pointer("/metadata/namespace").and_then(Value::as_str)).await
}

async fn apply_all(fx: &SimFixture, docs: &[Value]) {
    for cluster in ["infra", "apps"] {
        let client = fx.client(cluster);
        for doc in docs {
            let name = doc["metadata"]["name"].as_str().unwrap();
            api(&client, doc).await.patch(name, &PatchParams::apply(MANAGER).force(), &Patch::Apply(doc)).await.unwrap_or_else(|e| panic!("{cluster}: apply {name}: {e}"));
        }
    }
}

/// Units whose message says the API server forbade something.
fn forbidden(report: &RunReport) -> Vec<String> {
    report.verdicts().keys().filter(|u| report.message(u).contains("forbidden")).map(|u| format!("{u}: {}", report.message(u))).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_generated_roles_are_enough_and_each_rule_is_needed() {
    let Some(fx) = SimFixture::start("the_generated_roles_are_enough_and_each_rule_is_needed").await else { return };
    let docs = manifests();
    fx.on_restore("rbac manifests", |cfg| async move {
        for cluster in ["infra", "apps"] {
            let client = platform_acceptance::sim::client(&cfg, cluster).await?;
            for doc in manifests().iter().rev() {
                let _ = api(&client, doc).await.delete(doc["metadata"]["name"].as_str().unwrap(), &DeleteParams::default()).await;
            }
        }
        Ok(())
    });
    apply_all(&fx, &docs).await;

    // What an admin run asks for is in the table.
    let admin = fx.run_with("", retries(0)).await;
    let table = accesses();
    let asked: Vec<RbacAccess> = admin.summary.api_requests.by_access.keys().filter_map(|k| RbacAccess::parse(k)).collect();
    let listed: Vec<String> = table.iter().map(ToString::to_string).collect();
    let missing: Vec<String> = asked.iter().map(ToString::to_string).filter(|a| !listed.contains(a)).collect();
    assert_eq!(missing, Vec::<String>::new(), "accesses missing from src/cluster/rbac-accesses.txt");

    // As the ServiceAccount: the run's Lease can be held and released, and `sweep` runs.
    let session = platform_acceptance::session::Session::new(support::DOC, Some(std::path::Path::new(support::GITOPS))).unwrap();
    for (cluster, target) in support::sim::targets(&session.coverage.clusters).await {
        let client = target.acting_as(USER).unwrap().client;
        lease::renew(&client, "rbac-test", "sim_rbac", 10).await.unwrap_or_else(|e| panic!("{cluster}: Lease as {USER}: {e}"));
        let api = Api::<k8s_openapi::api::coordination::v1::Lease>::namespaced(client.clone(), "default");
        api.delete("platform-acceptance-run-rbac-test", &DeleteParams::default()).await.unwrap_or_else(|e| panic!("{cluster}: delete Lease as {USER}: {e}"));
        lease::sweep(&client).await.unwrap_or_else(|e| panic!("{cluster}: sweep as {USER}: {e}"));
    }

    // As the ServiceAccount: nothing forbidden, the admin's verdicts.
    let sa = fx.run_as("", retries(0), USER).await;
    assert_eq!(forbidden(&sa), Vec::<String>::new());
    let (want, got) = (admin.verdicts(), sa.verdicts());
    let differ: Vec<String> = want.keys().filter(|u| want[*u] != got[*u]).map(|u| format!("{u}: {:?} -> {:?}: {}", want[u], got[u], sa.message(u))).collect();
    assert_eq!(differ, Vec::<String>::new(), "as {USER}");

    // One rule less: the units that need it say so, the others are unaffected.
    for (role, resource, selection, needs) in [
        ("platform-acceptance-read", "daemonsets", "2.1,3.1", "apps/daemonsets"),
        ("platform-acceptance-round-trips", "restores", "10.3,10.4", "velero.io/restores"),
    ] {
        let mut docs = docs.clone();
        let doc = docs.iter_mut().find(|d| d["kind"] == "ClusterRole" && d["metadata"]["name"] == role).unwrap();
        for rule in doc["rules"].as_array_mut().unwrap() {
            if let Some(res) = rule["resources"].as_array_mut() {
                res.retain(|r| r != resource);
            }
        }
        doc["rules"].as_array_mut().unwrap().retain(|r| r.get("resources").is_none_or(|res| res.as_array().is_some_and(|a| !a.is_empty())));
        apply_all(&fx, &docs).await;
        let before = fx.run_as(selection, retries(0), USER).await;
        let hit: Vec<String> = before.verdicts().keys().filter(|u| before.message(u).contains("forbidden")).cloned().collect();
        assert!(!hit.is_empty(), "without {resource} in {role}, nothing in {selection} is forbidden:\n{}", before.text());
        for unit in &hit {
            assert_eq!(before.verdict(unit), Verdict::Error, "{unit}: {}", before.message(unit));
            let message = before.message(unit);
            assert!(message.contains("forbidden: needs ") && message.contains(needs), "{unit}: {message}");
        }
        // Units waiting for a story that now errs are skipped as blocked; every other keeps its verdict.
        for unit in before.verdicts().keys().filter(|u| !hit.contains(u) && !before.message(u).starts_with("blocked by ")) {
            assert_eq!(before.verdict(unit), admin.verdict(unit), "{unit} does not need {resource}: {}", before.message(unit));
        }
        eprintln!("without {resource} in {role}: {} unit(s) Error: {}", hit.len(), hit.join(", "));
        apply_all(&fx, &manifests()).await;
    }
}
