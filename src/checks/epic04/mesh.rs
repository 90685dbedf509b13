//! EPIC-4 cross-cluster (4.5): the apps cluster's path to infra's Ceph. The monitors exported
//! over ClusterMesh (MCS-API ServiceExport/ServiceImport or Cilium global Services), the
//! ceph-csi RBD driver on the consuming cluster, and a test volume of the remote class that
//! lives in infra's Ceph (docs/reference/components.md §7, §2.4).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::api::storage::v1::CSIDriver;
use kube::api::Api;
use serde_json::Value;

use super::CEPH_MON_COUNT;
use super::live::{CEPH_BLOCK_POOL, CEPH_CLUSTER, kube_err, live_ceph_cluster};
use super::pvc::{pv_summary, test_claim};
use crate::check::{CheckContext, CheckResult, Ctx, Finding, IntoOutcome, Outcome};
use crate::checks::kit::prelude::*;
use crate::cluster::objects;
use crate::repo::{Rendered, RenderedObject};

/// ceph-csi charts (`ceph/ceph-csi` charts/ceph-csi-rbd): `<release>-provisioner`,
/// `<release>-nodeplugin`, values `configMapName` default `ceph-csi-config`.
const CEPH_CSI_CHARTS: &[&str] = &["ceph-csi-rbd"];
const CEPH_CSI_CONFIGMAP: &str = "ceph-csi-config";


/// The cluster that renders a CephCluster (infra), with its client and rendered manifests.
fn ceph_home(ctx: &CheckContext) -> Result<(String, kube::Client, std::sync::Arc<Rendered>), Outcome> {
    let repo = ctx.repo()?;
    let target = ctx.target.as_ref().ok_or_else(|| Outcome::skip("no cluster target"))?;
    for name in repo.clusters() {
        let r = repo.render(name).map_err(Outcome::error)?;
        if ceph_cluster(&r).is_ok() {
            let client = target.peers.get(name).cloned().ok_or_else(|| Outcome::error(format!("no client for cluster {name} (Ceph's home)")))?;
            return Ok((name.clone(), client, r));
        }
    }
    Err(Outcome::fail("CephCluster (ceph.rook.io/v1)", "rendered for some cluster", "rendered for none"))
}

/// One Ceph monitor as the consuming cluster reaches it: exported on Ceph's cluster
/// (ServiceExport Valid, no Conflict) or a Cilium global Service on both sides, with ready
/// endpoints at home, and imported on the consumer (ServiceImport with the mon port).
async fn mon_reachable(ctx: &CheckContext, home: &(String, kube::Client), ns: &str, mon: &str, port: u16) -> CheckResult<Outcome> {
    let (home_name, home_client) = home;
    let consumer = ctx.kube().expect("checked by the caller");
    let mut findings = vec![];
    let export = objects::get(home_client, &SERVICE_EXPORT, Some(ns), mon).await?;
    let global = |svc: &k8s_openapi::api::core::v1::Service| {
        svc.metadata.annotations.as_ref().is_some_and(|a| GLOBAL_ANNOTATIONS.iter().any(|k| a.get(*k).map(String::as_str) == Some("true")))
    };
    let home_svc = Api::<k8s_openapi::api::core::v1::Service>::namespaced(home_client.clone(), ns).get_opt(mon).await.map_err(|e| kube_err("get mon Service", e))?;
    let mut how = String::new();
    match (&export, &home_svc) {
        (_, None) => findings.push(Finding::new(format!("Service {ns}/{mon} (cluster {home_name})"), "present (created by Rook)", "not found")),
        (Some(e), Some(_)) => {
            let valid = e.condition("Valid");
            let conflict = e.condition("Conflict");
            if valid.as_ref().map(|c| c.status.as_str()) != Some("True") || conflict.as_ref().is_some_and(|c| c.status == "True") {
                findings.push(Finding::new(
                    format!("{} (cluster {home_name})", e.describe(&SERVICE_EXPORT)),
                    "Valid=True and no Conflict",
                    format!("Valid={} Conflict={}", valid.map(|c| c.status).unwrap_or_else(|| "unset".into()), conflict.map(|c| format!("{} ({})", c.status, c.message)).unwrap_or_else(|| "unset".into())),
                ));
            }
            how = format!("ServiceExport ({})", e.api_version);
        }
        (None, Some(s)) if global(s) => how = "global Service".into(),
        (None, Some(_)) => findings.push(Finding::new(
            format!("Service {ns}/{mon} (cluster {home_name})"),
            "a ServiceExport or the annotation service.cilium.io/global: \"true\"",
            "neither",
        )),
    }
    let ready = ready_endpoints(home_client, ns, mon).await?;
    if home_svc.is_some() && ready == 0 {
        findings.push(Finding::new(format!("Service {ns}/{mon} (cluster {home_name}) endpoints"), "at least one ready endpoint (a running mon)", "none ready"));
    }
    if how.starts_with("ServiceExport") {
        match objects::get(consumer, &SERVICE_IMPORT, Some(ns), mon).await? {
            Some(i) => {
                let ports: Vec<u64> = i.get("/spec/ports").and_then(Value::as_array).into_iter().flatten().filter_map(|p| p.get("port").and_then(Value::as_u64)).collect();
                if !ports.contains(&(port as u64)) {
                    findings.push(Finding::new(format!("{} (cluster {})", i.describe(&SERVICE_IMPORT), ctx.cluster), format!("port {port}"), format!("ports {ports:?}")));
                }
            }
            None => findings.push(Finding::new(format!("ServiceImport {ns}/{mon} (cluster {})", ctx.cluster), format!("imported from cluster {home_name} (ClusterMesh MCS-API)"), "not found")),
        }
    } else if how == "global Service" {
        let here = Api::<k8s_openapi::api::core::v1::Service>::namespaced(consumer.clone(), ns).get_opt(mon).await.map_err(|e| kube_err("get Service", e))?;
        match here {
            Some(s) if global(&s) => {}
            _ => findings.push(Finding::new(format!("Service {ns}/{mon} (cluster {})", ctx.cluster), "the same global Service (service.cilium.io/global: \"true\")", "missing or not global")),
        }
    }
    Ok(Outcome::from_findings(findings, format!("{mon}.{ns} via {how} from {home_name} ({ready} ready endpoints) to {}", ctx.cluster)))
}

pub(super) async fn ceph_mons_via_clustermesh(ctx: Ctx) -> CheckResult<Outcome> {
    ctx.kube()?;
    let (home_name, home_client, home_rendered) = ceph_home(&ctx)?;
    let cc = ceph_cluster(&home_rendered)?;
    let ns = cc.namespace().unwrap_or("rook-ceph").to_string();
    let count = cc.get("/spec/mon/count").and_then(Value::as_u64).unwrap_or(CEPH_MON_COUNT).min(26);
    let home = (home_name, home_client);
    let mut outcomes = vec![];
    for i in 0..count {
        let mon = format!("rook-ceph-mon-{}", (b'a' + i as u8) as char);
        outcomes.push(mon_reachable(&ctx, &home, &ns, &mon, 6789).await.into_outcome());
    }
    Ok(Outcome::all(outcomes))
}

/// The rendered StorageClass of this cluster served by a ceph-csi RBD driver other than
/// Rook's own (the remote class of Story 4.5 option 2).
fn remote_class(rendered: &Rendered) -> Result<&RenderedObject, Outcome> {
    rendered
        .of_kind("StorageClass")
        .find(|s| s.str("/provisioner").is_some_and(|p| p == "rbd.csi.ceph.com" || p.ends_with(RBD_PROVISIONER_SUFFIX)))
        .ok_or_else(|| Outcome::fail(format!("StorageClass with a ceph-csi RBD provisioner (cluster {})", rendered.cluster), "rendered", "none rendered"))
}

pub(super) async fn ceph_csi_driver_on_apps(ctx: Ctx) -> CheckResult<Outcome> {
    let client = ctx.kube()?;
    let rendered = rendered(&ctx)?;
    let sc = remote_class(&rendered)?;
    let driver = sc.str("/provisioner").unwrap_or("").to_string();
    let csidriver = match Api::<CSIDriver>::all(client.clone()).get_opt(&driver).await {
        Ok(Some(_)) => Outcome::pass(format!("CSIDriver {driver} registered (cluster {})", ctx.cluster)),
        Ok(None) => Outcome::fail(format!("CSIDriver {driver} (cluster {})", ctx.cluster), format!("registered (provisioner of StorageClass {})", sc.name()), "not found"),
        Err(e) => kube_err("get CSIDriver", e),
    };
    let release = release_deployed(&ctx, CEPH_CSI_CHARTS, |_, release| vec![("Deployment", format!("{release}-provisioner")), ("DaemonSet", format!("{release}-nodeplugin"))]).await;
    Ok(Outcome::all([csidriver, release]))
}

pub(super) async fn remote_ceph_test_pvc_bound(ctx: Ctx) -> CheckResult<Outcome> {
    let client = ctx.kube()?;
    let rendered = rendered(&ctx)?;
    let sc = remote_class(&rendered)?;
    let (object, pv) = test_claim(&ctx, client, &ctx.cluster, sc.name()).await?;
    Ok(Outcome::pass(format!("{object}: Bound to {}", pv_summary(&pv))))
}

/// A volume provisioned on this cluster through the remote class lives in infra's Ceph:
/// the driver's cluster config maps the class' clusterID to monitors that are infra's
/// exported mons; the volume's pool is a Ready CephBlockPool of infra's CephCluster,
/// which reports HEALTH_OK.
pub(super) async fn cross_cluster_storage_verified(ctx: Ctx) -> CheckResult<Outcome> {
    let client = ctx.kube()?;
    let rendered = rendered(&ctx)?;
    let sc = remote_class(&rendered)?;
    let (home_name, home_client, home_rendered) = ceph_home(&ctx)?;
    let (object, pv) = test_claim(&ctx, client, &ctx.cluster, sc.name()).await?;
    let attrs: BTreeMap<String, String> = pv.spec.as_ref().and_then(|s| s.csi.as_ref()).and_then(|c| c.volume_attributes.clone()).unwrap_or_default();
    let pvs = pv_summary(&pv);
    let cluster_id = attrs.get("clusterID").cloned().unwrap_or_default();
    let pool = attrs.get("pool").cloned().unwrap_or_default();
    let mut outcomes = vec![];
    // 1. the driver's config: clusterID → monitors, each an imported mon of Ceph's home.
    let hr = rendered_helmrelease(&rendered, CEPH_CSI_CHARTS)?;
    let csi_ns = Release::of(hr).namespace;
    let cm_name = hr.str("/spec/values/configMapName").unwrap_or(CEPH_CSI_CONFIGMAP).to_string();
    let monitors: Vec<String> = match Api::<ConfigMap>::namespaced(client.clone(), &csi_ns).get_opt(&cm_name).await {
        Ok(Some(cm)) => {
            let config: Value = cm.data.as_ref().and_then(|d| d.get("config.json")).and_then(|j| serde_json::from_str(j).ok()).unwrap_or(Value::Null);
            let entry = config.as_array().into_iter().flatten().find(|e| e.get("clusterID").and_then(Value::as_str) == Some(cluster_id.as_str()));
            match entry {
                Some(e) => e.get("monitors").and_then(Value::as_array).into_iter().flatten().filter_map(|m| m.as_str().map(String::from)).collect(),
                None => {
                    return Err(Outcome::fail(format!("ConfigMap {csi_ns}/{cm_name} config.json (cluster {})", ctx.cluster), format!("an entry for clusterID {cluster_id:?} (of {pvs})"), "none"));
                }
            }
        }
        Ok(None) => return Err(Outcome::fail(format!("ConfigMap {csi_ns}/{cm_name} (cluster {})", ctx.cluster), "the ceph-csi cluster config", "not found")),
        Err(e) => return Err(kube_err("get ceph-csi config", e)),
    };
    if monitors.is_empty() {
        return Err(Outcome::fail(format!("ConfigMap {csi_ns}/{cm_name} clusterID {cluster_id}"), "monitors", "none listed"));
    }
    let home = (home_name.clone(), home_client.clone());
    for m in &monitors {
        let (host, port) = m.rsplit_once(':').map(|(h, p)| (h, p.parse().unwrap_or(6789))).unwrap_or((m.as_str(), 6789));
        let mut parts = host.split('.');
        let (Some(svc), Some(ns)) = (parts.next(), parts.next()) else {
            outcomes.push(Outcome::fail(format!("monitor {m} (ConfigMap {csi_ns}/{cm_name})"), "<svc>.<ns>.svc.clusterset.local:<port>", m.clone()));
            continue;
        };
        outcomes.push(mon_reachable(&ctx, &home, ns, svc, port).await.into_outcome());
    }
    // 2. the pool is a Ready CephBlockPool of the home CephCluster, which is healthy.
    let cc = ceph_cluster(&home_rendered)?;
    let ceph_ns = cc.namespace().unwrap_or("rook-ceph").to_string();
    outcomes.push(match objects::get(&home_client, &CEPH_BLOCK_POOL, Some(&ceph_ns), &pool).await {
        Ok(Some(p)) if p.str("/status/phase") == Some("Ready") => Outcome::pass(format!("{} Ready on {home_name}", p.describe(&CEPH_BLOCK_POOL))),
        Ok(Some(p)) => Outcome::fail(format!("{} (cluster {home_name}), pool of {pvs}", p.describe(&CEPH_BLOCK_POOL)), "status.phase Ready", p.str("/status/phase").unwrap_or("not set").to_string()),
        Ok(None) => Outcome::fail(format!("CephBlockPool {ceph_ns}/{pool} (cluster {home_name})"), format!("the pool of {pvs}"), "not found"),
        Err(o) => o,
    });
    outcomes.push(match live_ceph_cluster(&home_client, &home_rendered).await {
        Ok(c) if c.str("/status/ceph/health") == Some("HEALTH_OK") => Outcome::pass(format!("{} HEALTH_OK", c.describe(&CEPH_CLUSTER))),
        Ok(c) => Outcome::fail(format!("{} (cluster {home_name}) status.ceph.health", c.describe(&CEPH_CLUSTER)), "HEALTH_OK (the Ceph behind the remote volume)", c.str("/status/ceph/health").unwrap_or("not reported").to_string()),
        Err(o) => o,
    });
    Ok(match Outcome::all(outcomes) {
        Outcome::Pass { .. } => Outcome::pass(format!(
            "{object} bound to {pvs}: clusterID {cluster_id} → monitors [{}] imported from {home_name}, pool {pool} Ready there, Ceph HEALTH_OK",
            monitors.join(", ")
        )),
        other => other,
    })
}
