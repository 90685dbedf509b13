//! EPIC-4 live layer: what the running clusters report about the Rook operator, the
//! CephCluster (nodes, OSDs, health), the RBD StorageClass and OpenEBS. Read-only. Names and
//! namespaces come from the rendered repository (HelmReleases, CephCluster, StorageClasses),
//! falling back to the upstream defaults of docs/reference/components.md §7, §8.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::storage::v1::StorageClass;
use kube::api::{Api, ListParams};
use regex::Regex;
use serde_json::Value;

use super::{CEPH_DEPLOYED, CEPH_DEVICE_CLASS, CEPH_HEALTH, OPENEBS_PROVISIONER, OPENEBS_CHARTS, OSDS, RBD_CLASS_CREATED, ROOK_OPERATOR_CHARTS};
use crate::check::{CheckResult, Ctx, Finding, Outcome};
use crate::checks::kit::prelude::*;
use crate::cluster::objects::{self, Found, Kind};
use crate::repo::Rendered;

pub(super) const CEPH_CLUSTER: Kind = Kind::namespaced("ceph.rook.io", &["v1"], "CephCluster");
pub(super) const CEPH_BLOCK_POOL: Kind = Kind::namespaced("ceph.rook.io", &["v1"], "CephBlockPool");
const CRD: Kind = Kind::cluster_scoped("apiextensions.k8s.io", &["v1"], "CustomResourceDefinition");

/// The CRDs of Rook's `deploy/examples/crds.yaml` (also what the rook-ceph chart installs with
/// `crds.enabled: true`) that every release from 1.17 (the fixture's chart line) to 1.20.6
/// ships; 1.19+ add more (cephnvmeofgateways, cephobjectstoreaccounts), which are not required.
const ROOK_CRDS: &[&str] = &[
    "cephblockpoolradosnamespaces.ceph.rook.io",
    "cephblockpools.ceph.rook.io",
    "cephbucketnotifications.ceph.rook.io",
    "cephbuckettopics.ceph.rook.io",
    "cephclients.ceph.rook.io",
    "cephclusters.ceph.rook.io",
    "cephcosidrivers.ceph.rook.io",
    "cephfilesystemmirrors.ceph.rook.io",
    "cephfilesystems.ceph.rook.io",
    "cephfilesystemsubvolumegroups.ceph.rook.io",
    "cephnfses.ceph.rook.io",
    "cephobjectrealms.ceph.rook.io",
    "cephobjectstores.ceph.rook.io",
    "cephobjectstoreusers.ceph.rook.io",
    "cephobjectzonegroups.ceph.rook.io",
    "cephobjectzones.ceph.rook.io",
    "cephrbdmirrors.ceph.rook.io",
    "objectbucketclaims.objectbucket.io",
    "objectbuckets.objectbucket.io",
];
/// §7 [R2]: the rook-ceph chart's operator Deployment and pod label.
const ROOK_OPERATOR_DEPLOYMENT: &str = "rook-ceph-operator";
const ROOK_OPERATOR_LABELS: &str = "app=rook-ceph-operator";

// ---------------------------------------------------------------- shared helpers

pub(super) fn kube_err(what: &str, e: kube::Error) -> Outcome {
    crate::cluster::api_error(what, e)
}

/// The CephCluster the repository renders for `cluster` (infra), read live.
pub(super) async fn live_ceph_cluster(client: &kube::Client, rendered: &Rendered) -> Result<Found, Outcome> {
    let c = ceph_cluster(rendered)?;
    objects::require(client, &CEPH_CLUSTER, Some(c.namespace().unwrap_or("rook-ceph")), c.name()).await
}

/// Pods matching `labels` in `ns`: (name, node, ready).
pub(super) async fn pods(client: &kube::Client, ns: &str, labels: &str) -> Result<Vec<(String, String, bool)>, Outcome> {
    let list = Api::<Pod>::namespaced(client.clone(), ns)
        .list(&ListParams::default().labels(labels))
        .await
        .map_err(|e| kube_err(&format!("list pods {ns} -l {labels}"), e))?;
    Ok(list
        .items
        .iter()
        .map(|p| {
            let ready = p.status.as_ref().and_then(|s| s.conditions.as_ref()).is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
            (p.metadata.name.clone().unwrap_or_default(), p.spec.as_ref().and_then(|s| s.node_name.clone()).unwrap_or_default(), ready)
        })
        .collect())
}

pub(super) fn number_in(text: &str, re: &str) -> Option<u64> {
    Regex::new(re).ok()?.captures(text)?.get(1)?.as_str().parse().ok()
}

// ---------------------------------------------------------------- 4.1 operator

pub(super) async fn rook_operator_deployed(ctx: Ctx) -> CheckResult<Outcome> {
    let client = ctx.kube()?;
    let rendered = rendered(&ctx)?;
    let hr = rendered_helmrelease(&rendered, ROOK_OPERATOR_CHARTS)?;
    let ns = Release::of(hr).namespace;
    let hr_ready = helmrelease_ready(client, &ctx.cluster, hr.namespace().unwrap_or("flux-system"), hr.name()).await;
    let deployment = match Api::<k8s_openapi::api::apps::v1::Deployment>::namespaced(client.clone(), &ns).get_opt(ROOK_OPERATOR_DEPLOYMENT).await {
        Ok(Some(_)) => Outcome::pass(format!("Deployment {ns}/{ROOK_OPERATOR_DEPLOYMENT} present (cluster {})", ctx.cluster)),
        Ok(None) => Outcome::fail(format!("Deployment {ns}/{ROOK_OPERATOR_DEPLOYMENT} (cluster {})", ctx.cluster), "created by the rook-ceph chart", "not found"),
        Err(e) => kube_err("get the Rook operator Deployment", e),
    };
    Ok(Outcome::all([hr_ready, deployment]))
}

pub(super) async fn rook_operator_healthy(ctx: Ctx) -> CheckResult<Outcome> {
    let client = ctx.kube()?;
    let rendered = rendered(&ctx)?;
    let hr = rendered_helmrelease(&rendered, ROOK_OPERATOR_CHARTS)?;
    let ns = Release::of(hr).namespace;
    Ok(Outcome::all([
        objects::expect_workload_ready(client, &ctx.cluster, "Deployment", &ns, ROOK_OPERATOR_DEPLOYMENT).await,
        objects::expect_pods_ready(client, &ctx.cluster, &ns, ROOK_OPERATOR_LABELS).await,
    ]))
}

pub(super) async fn rook_crds_established(ctx: Ctx) -> CheckResult<Outcome> {
    let client = ctx.kube()?;
    let mut outcomes = vec![];
    for name in ROOK_CRDS {
        outcomes.push(match objects::get(client, &CRD, None, name).await {
            Ok(Some(found)) => objects::expect_condition(&found, &CRD, "Established"),
            Ok(None) => Outcome::fail(format!("CustomResourceDefinition {name} (cluster {})", ctx.cluster), "installed and Established", "not found"),
            Err(o) => o,
        });
    }
    Ok(match Outcome::all(outcomes) {
        Outcome::Pass { .. } => Outcome::pass(format!("{} Rook CRDs (ceph.rook.io, objectbucket.io) Established on cluster {}", ROOK_CRDS.len(), ctx.cluster)),
        other => other,
    })
}

// ---------------------------------------------------------------- 4.2 Ceph cluster

/// Phase Ready / condition Ready, and the mons and OSDs spread over the criterion's node count.
pub(super) async fn ceph_cluster_ready_on_nodes(ctx: Ctx) -> CheckResult<Outcome> {
    let client = ctx.kube()?;
    let rendered = rendered(&ctx)?;
    let cc = live_ceph_cluster(client, &rendered).await?;
    let want_nodes = number_in(CEPH_DEPLOYED, r"\((\d+) nodes\)").unwrap_or(3) as usize;
    let obj = format!("{} (cluster {})", cc.describe(&CEPH_CLUSTER), ctx.cluster);
    let ns = cc.namespace().unwrap_or("rook-ceph").to_string();
    let mut findings: Vec<Finding> = ceph_cluster_phase(&cc, &obj).into_iter().collect();
    let mut evidence = vec![];
    for (daemon, labels) in [("mon", "app=rook-ceph-mon"), ("osd", "app=rook-ceph-osd")] {
        let p = pods(client, &ns, labels).await?;
        let nodes: BTreeSet<&str> = p.iter().filter(|(_, n, r)| *r && !n.is_empty()).map(|(_, n, _)| n.as_str()).collect();
        if nodes.len() < want_nodes {
            let seen: Vec<String> = p.iter().map(|(n, node, r)| format!("{n}@{}{}", if node.is_empty() { "unscheduled" } else { node }, if *r { "" } else { " (not ready)" })).collect();
            findings.push(Finding::new(
                format!("Ceph {daemon}s: pods {ns} -l {labels} (cluster {})", ctx.cluster),
                format!("Ready on {want_nodes} distinct nodes"),
                format!("{} node(s): [{}]", nodes.len(), seen.join(", ")),
            ));
        }
        evidence.push(format!("{daemon}s on {}", nodes.into_iter().collect::<Vec<_>>().join(", ")));
    }
    Ok(Outcome::from_findings(findings, format!("{obj}: phase Ready; {}", evidence.join("; "))))
}

/// The CephCluster's phase: `Ready` (with condition Ready) is fine; `Progressing` — Rook
/// orchestrating mons, managers or OSDs, e.g. during an upgrade (rook
/// `pkg/apis/ceph.rook.io/v1/types.go`: `ConditionProgressing`, reason
/// `ClusterProgressing`, the step in `status.message`) — is in progress; anything else is a finding.
fn ceph_cluster_phase(cc: &Found, obj: &str) -> Option<Finding> {
    let phase = cc.str("/status/phase").unwrap_or("");
    let message = cc.str("/status/message").unwrap_or("");
    match phase {
        "Ready" => match objects::expect_condition(cc, &CEPH_CLUSTER, "Ready") {
            Outcome::Fail { findings } => findings.into_iter().next(),
            _ => None,
        },
        "Progressing" => Some(Finding::in_progress(format!("{obj} status.phase"), "Ready", format!("Progressing ({message})"))),
        _ => Some(Finding::new(format!("{obj} status.phase"), "Ready", format!("{:?} ({message})", if phase.is_empty() { "not set" } else { phase }))),
    }
}

/// `NxMTB`: N OSDs (rook-ceph-osd Deployments, Rook's `status.storage.osd.storeType` count),
/// device class `ssd` (the story's OSD device class) reported, raw capacity ≈ N × M TB.
pub(super) async fn ceph_osds_on_nvme_disks(ctx: Ctx) -> CheckResult<Outcome> {
    let client = ctx.kube()?;
    let rendered = rendered(&ctx)?;
    let cc = live_ceph_cluster(client, &rendered).await?;
    let want = number_in(OSDS, r"^(\d+)x").unwrap_or(3);
    let tb = number_in(OSDS, r"x(\d+)TB").unwrap_or(1);
    let ns = cc.namespace().unwrap_or("rook-ceph").to_string();
    let obj = format!("{} (cluster {})", cc.describe(&CEPH_CLUSTER), ctx.cluster);
    let mut findings = vec![];
    let deployments = Api::<k8s_openapi::api::apps::v1::Deployment>::namespaced(client.clone(), &ns)
        .list(&ListParams::default().labels("app=rook-ceph-osd"))
        .await
        .map_err(|e| kube_err("list OSD Deployments", e))?
        .items;
    let names: Vec<String> = deployments.iter().filter_map(|d| d.metadata.name.clone()).collect();
    if names.len() as u64 != want {
        findings.push(Finding::new(format!("Deployments {ns} -l app=rook-ceph-osd (cluster {})", ctx.cluster), format!("{want} OSDs"), format!("{} {names:?}", names.len())));
    }
    let store: BTreeMap<String, u64> = cc
        .get("/status/storage/osd/storeType")
        .and_then(Value::as_object)
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.as_u64().unwrap_or(0))).collect())
        .unwrap_or_default();
    let counted: u64 = store.values().sum();
    if !store.is_empty() && counted != want {
        findings.push(Finding::new(format!("{obj} status.storage.osd.storeType"), format!("{want} OSDs"), format!("{counted} {store:?}")));
    }
    let classes: Vec<&str> = cc.get("/status/storage/deviceClasses").and_then(Value::as_array).into_iter().flatten().filter_map(|c| c.get("name").and_then(Value::as_str)).collect();
    if !classes.is_empty() && !classes.contains(&CEPH_DEVICE_CLASS) {
        findings.push(Finding::new(format!("{obj} status.storage.deviceClasses"), format!("{:?} (NVMe OSDs)", CEPH_DEVICE_CLASS), format!("{classes:?}")));
    }
    let total = cc.get("/status/ceph/capacity/bytesTotal").and_then(Value::as_u64);
    let (lo, hi) = ((want * tb) as f64 * 0.9e12, (want * tb) as f64 * 1.1e12);
    match total {
        Some(t) if (t as f64) >= lo && (t as f64) <= hi => {}
        Some(t) => findings.push(Finding::new(format!("{obj} status.ceph.capacity.bytesTotal"), format!("≈ {want} × {tb} TB ({:.2}-{:.2} TB raw)", lo / 1e12, hi / 1e12), format!("{t} bytes ({:.2} TB)", t as f64 / 1e12))),
        None => findings.push(Finding::new(format!("{obj} status.ceph.capacity.bytesTotal"), format!("≈ {want} × {tb} TB"), "not reported")),
    }
    let nodes = pods(client, &ns, "app=rook-ceph-osd").await?;
    let placed: Vec<String> = nodes.iter().map(|(p, n, _)| format!("{p}@{n}")).collect();
    Ok(Outcome::from_findings(
        findings,
        format!("{obj}: {} OSDs [{}], store {store:?}, device classes {classes:?}, {:.2} TB raw", names.len(), placed.join(", "), total.unwrap_or(0) as f64 / 1e12),
    ))
}

pub(super) async fn ceph_health_ok(ctx: Ctx) -> CheckResult<Outcome> {
    let client = ctx.kube()?;
    let rendered = rendered(&ctx)?;
    let cc = live_ceph_cluster(client, &rendered).await?;
    let want = CEPH_HEALTH.rsplit(' ').next().unwrap_or("HEALTH_OK");
    let obj = format!("{} (cluster {}) status.ceph.health", cc.describe(&CEPH_CLUSTER), ctx.cluster);
    let health = cc.str("/status/ceph/health").unwrap_or("");
    if health == want {
        let checked = cc.str("/status/ceph/lastChecked").unwrap_or("?");
        return Ok(Outcome::pass(format!("{obj}: {health} (last checked {checked})")));
    }
    let details: Vec<String> = cc
        .get("/status/ceph/details")
        .and_then(Value::as_object)
        .map(|m| m.iter().map(|(k, v)| format!("{k}: {}", v.get("message").and_then(Value::as_str).unwrap_or(""))).collect())
        .unwrap_or_default();
    Ok(Outcome::fail(obj, want, if health.is_empty() { "not reported".to_string() } else { format!("{health} [{}]", details.join("; ")) }))
}

/// The StorageClass the criterion names exists with the provisioner, clusterID and pool the
/// repository renders, and that pool is a Ready CephBlockPool.
pub(super) async fn rbd_storageclass_live(ctx: Ctx) -> CheckResult<Outcome> {
    let client = ctx.kube()?;
    let rendered = rendered(&ctx)?;
    let name = RBD_CLASS_CREATED.split('`').nth(1).unwrap_or(RBD_STORAGE_CLASS);
    let want = rendered.of_kind("StorageClass").find(|o| o.name() == name);
    let obj = format!("StorageClass {name} (cluster {})", ctx.cluster);
    let sc = match Api::<StorageClass>::all(client.clone()).get_opt(name).await {
        Ok(Some(sc)) => sc,
        Ok(None) => return Err(Outcome::fail(obj, "created", "not found")),
        Err(e) => return Err(kube_err(&format!("get {obj}"), e)),
    };
    let mut findings = vec![];
    let want_provisioner = want.and_then(|w| w.str("/provisioner")).map(String::from);
    match &want_provisioner {
        Some(p) if &sc.provisioner != p => findings.push(Finding::new(format!("{obj} provisioner"), format!("{p:?} (rendered)"), format!("{:?}", sc.provisioner))),
        None if !sc.provisioner.ends_with(RBD_PROVISIONER_SUFFIX) => {
            findings.push(Finding::new(format!("{obj} provisioner"), format!("*{RBD_PROVISIONER_SUFFIX}"), format!("{:?}", sc.provisioner)))
        }
        _ => {}
    }
    let params = sc.parameters.clone().unwrap_or_default();
    for key in ["clusterID", "pool"] {
        let live = params.get(key).map(String::as_str).unwrap_or("");
        if let Some(w) = want.and_then(|w| w.str(&format!("/parameters/{key}"))).filter(|w| *w != live) {
            findings.push(Finding::new(format!("{obj} parameters.{key}"), format!("{w:?} (rendered)"), format!("{live:?}")));
        }
    }
    let (cluster_id, pool) = (params.get("clusterID").cloned().unwrap_or_default(), params.get("pool").cloned().unwrap_or_default());
    let pool_state = match objects::get(client, &CEPH_BLOCK_POOL, Some(&cluster_id), &pool).await? {
        Some(p) => p.str("/status/phase").unwrap_or("no phase").to_string(),
        None => "not found".to_string(),
    };
    if pool_state != "Ready" {
        findings.push(Finding::new(format!("CephBlockPool {cluster_id}/{pool} (pool of {obj}, cluster {})", ctx.cluster), "status.phase Ready", pool_state));
    }
    Ok(Outcome::from_findings(findings, format!("{obj}: provisioner {}, clusterID {cluster_id}, pool {pool} (Ready)", sc.provisioner)))
}

pub(super) async fn openebs_deployed(ctx: Ctx) -> CheckResult<Outcome> {
    let hr_and_workloads = release_deployed(&ctx, OPENEBS_CHARTS, |hr, release| {
        let name = hr.str("/spec/values/fullnameOverride").map(String::from).unwrap_or_else(|| format!("{release}-localpv-provisioner"));
        vec![("Deployment", name)]
    })
    .await;
    // ... and its StorageClasses (rendered, provisioner openebs.io/local) exist on the cluster.
    let client = ctx.kube()?;
    let rendered = rendered(&ctx)?;
    let mut outcomes = vec![hr_and_workloads];
    for sc in rendered.of_kind("StorageClass").filter(|s| s.str("/provisioner") == Some(OPENEBS_PROVISIONER)) {
        outcomes.push(match Api::<StorageClass>::all(client.clone()).get_opt(sc.name()).await {
            Ok(Some(live)) if live.provisioner == OPENEBS_PROVISIONER => Outcome::pass(format!("StorageClass {} ({})", sc.name(), live.provisioner)),
            Ok(Some(live)) => Outcome::fail(format!("StorageClass {} (cluster {})", sc.name(), ctx.cluster), OPENEBS_PROVISIONER, live.provisioner),
            Ok(None) => Outcome::fail(format!("StorageClass {} (cluster {})", sc.name(), ctx.cluster), format!("applied from {}", sc.file.display()), "not found"),
            Err(e) => kube_err("get StorageClass", e),
        });
    }
    Ok(Outcome::all(outcomes))
}

#[cfg(test)]
mod tests {
    use kube::api::DynamicObject;
    use serde_json::json;

    use super::*;

    fn ceph(phase: &str, message: &str, conditions: serde_json::Value) -> Found {
        let object: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "ceph.rook.io/v1", "kind": "CephCluster",
            "metadata": {"name": "rook-ceph", "namespace": "rook-ceph", "generation": 2},
            "status": {"phase": phase, "message": message, "state": phase, "conditions": conditions, "observedGeneration": 2},
        }))
        .unwrap();
        Found { object, api_version: "ceph.rook.io/v1".into() }
    }

    /// Rook while it orchestrates (rook pkg/operator/ceph/cluster: phase Progressing,
    /// condition Progressing=True reason ClusterProgressing, the step as message).
    #[test]
    fn a_cephcluster_progressing_is_in_progress_where_the_old_rule_failed_it() {
        let progressing = ceph("Progressing", "Configuring Ceph Mons", json!([
            {"type": "Progressing", "status": "True", "reason": "ClusterProgressing", "message": "Configuring Ceph Mons"},
            {"type": "Ready", "status": "False", "reason": "ClusterProgressing", "message": "Configuring Ceph Mons"},
        ]));
        let obj = "CephCluster rook-ceph/rook-ceph (ceph.rook.io/v1) (cluster infra)";
        // The old rule: phase must be Ready, anything else an ordinary finding.
        let f = ceph_cluster_phase(&progressing, obj).expect("a finding");
        assert!(f.in_progress, "{f}");
        assert_eq!(f.to_string(), format!("{obj} status.phase: expected Ready, observed in progress: Progressing (Configuring Ceph Mons)"));

        let failed = ceph("Failure", "failed to create cluster: mon quorum lost", json!([]));
        let f = ceph_cluster_phase(&failed, obj).expect("a finding");
        assert!(!f.in_progress && f.observed.starts_with("\"Failure\""), "{f}");
        let ready = ceph("Ready", "Cluster created successfully", json!([{"type": "Ready", "status": "True", "reason": "ClusterCreated", "message": "Cluster created successfully"}]));
        assert_eq!(ceph_cluster_phase(&ready, obj), None);
    }
}
