//! EPIC-4 live layers: what the running clusters report about Rook Ceph, OpenEBS and the
//! apps cluster's path to infra's Ceph. Read-only, except the test PVCs (and their pods),
//! which live only in disposable namespaces. Names and namespaces come from the rendered
//! repository (HelmReleases, CephCluster, StorageClasses), falling back to the upstream
//! defaults of /work/shared/reference/component-apis.md §7, §8, §2.4.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Event, PersistentVolume, PersistentVolumeClaim, Pod};
use k8s_openapi::api::storage::v1::{CSIDriver, StorageClass};
use kube::api::{Api, ListParams, PostParams};
use regex::Regex;
use serde_json::{Value, json};

use super::{CEPH_MON_COUNT, OPENEBS_CHARTS, OPENEBS_STORAGE_CLASS, ROOK_OPERATOR_CHARTS};
use crate::check::{Check, CheckContext, Ctx, Finding, Outcome};
use crate::checks::kit::prelude::*;
use crate::cluster::objects::{self, Found, Kind};
use crate::repo::{Rendered, RenderedObject};

const CEPH_CLUSTER: Kind = Kind::namespaced("ceph.rook.io", &["v1"], "CephCluster");
const CEPH_BLOCK_POOL: Kind = Kind::namespaced("ceph.rook.io", &["v1"], "CephBlockPool");
const CRD: Kind = Kind::cluster_scoped("apiextensions.k8s.io", &["v1"], "CustomResourceDefinition");
const SERVICE_EXPORT: Kind = Kind::namespaced("multicluster.x-k8s.io", &["v1alpha1"], "ServiceExport");
const SERVICE_IMPORT: Kind = Kind::namespaced("multicluster.x-k8s.io", &["v1alpha1"], "ServiceImport");

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
/// ceph-csi charts (`ceph/ceph-csi` charts/ceph-csi-rbd): `<release>-provisioner`,
/// `<release>-nodeplugin`, values `configMapName` default `ceph-csi-config`.
const CEPH_CSI_CHARTS: &[&str] = &["ceph-csi-rbd"];
const CEPH_CSI_CONFIGMAP: &str = "ceph-csi-config";
/// How long a test PVC may take to bind (kept well inside the runner's per-check timeout,
/// retries included).
const PVC_WAIT: Duration = Duration::from_secs(12);
/// What the test pod runs (never started by the simulation's kwok nodes).
const PAUSE_IMAGE: &str = "registry.k8s.io/pause:3.10";

const OPERATOR_DEPLOYED: &str = "Operator deployed on infra cluster";
const CEPH_DEPLOYED: &str = "Ceph cluster deployed (3 nodes)";
const OSDS: &str = "3x1TB NVMe disks configured as OSDs";
const CEPH_HEALTH: &str = "Ceph health: HEALTH_OK";
const RBD_CLASS_CREATED: &str = "RBD StorageClass `rook-ceph-block` created";

pub(super) fn cluster_checks() -> Vec<Check> {
    vec![
        Check::cluster("4.1", OPERATOR_DEPLOYED, "rook_operator_deployed", rook_operator_deployed),
        Check::cluster("4.1", "Operator healthy and running", "rook_operator_healthy", rook_operator_healthy),
        Check::cluster("4.1", "CRDs installed", "rook_crds_established", rook_crds_established),
        Check::cluster("4.2", CEPH_DEPLOYED, "ceph_cluster_ready_on_nodes", ceph_cluster_ready_on_nodes),
        Check::cluster("4.2", OSDS, "ceph_osds_on_nvme_disks", ceph_osds_on_nvme_disks),
        Check::cluster("4.2", CEPH_HEALTH, "ceph_health_ok", ceph_health_ok),
        Check::cluster("4.2", RBD_CLASS_CREATED, "rbd_storageclass_live", rbd_storageclass_live),
        Check::data_plane("4.2", "Test PVC can be created and bound", "rbd_test_pvc_bound", rbd_test_pvc_bound),
        Check::cluster("4.3", "Deployed to infra cluster", "openebs_deployed_infra", openebs_deployed),
        Check::cluster("4.3", "Deployed to apps cluster (automatic - shared base)", "openebs_deployed_apps", openebs_deployed),
        Check::data_plane("4.3", "Test PVC works on both clusters", "openebs_test_pvc_works", openebs_test_pvc_works),
        Check::cluster("4.5", "Apps cluster can access Ceph from infra cluster via ClusterMesh", "ceph_mons_reachable_via_clustermesh", ceph_mons_via_clustermesh),
        Check::cluster("4.5", "CSI driver deployed on apps cluster", "ceph_csi_driver_on_apps", ceph_csi_driver_on_apps),
        Check::data_plane("4.5", "Test PVC created on apps cluster using infra Ceph", "remote_ceph_test_pvc_bound", remote_ceph_test_pvc_bound),
        Check::data_plane("4.5", "Cross-cluster storage verified", "cross_cluster_storage_verified", cross_cluster_storage_verified),
    ]
}

macro_rules! tri {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(o) => return o,
        }
    };
}

// ---------------------------------------------------------------- shared helpers

fn kube_err(what: &str, e: kube::Error) -> Outcome {
    crate::cluster::api_error(what, e)
}

/// The CephCluster the repository renders for `cluster` (infra), read live.
async fn live_ceph_cluster(client: &kube::Client, rendered: &Rendered) -> Result<Found, Outcome> {
    let c = ceph_cluster(rendered)?;
    objects::require(client, &CEPH_CLUSTER, Some(c.namespace().unwrap_or("rook-ceph")), c.name()).await
}

/// Pods matching `labels` in `ns`: (name, node, ready).
async fn pods(client: &kube::Client, ns: &str, labels: &str) -> Result<Vec<(String, String, bool)>, Outcome> {
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

fn number_in(text: &str, re: &str) -> Option<u64> {
    Regex::new(re).ok()?.captures(text)?.get(1)?.as_str().parse().ok()
}

// ---------------------------------------------------------------- 4.1 operator

async fn rook_operator_deployed(ctx: Ctx) -> Outcome {
    let client = tri!(ctx.kube());
    let rendered = tri!(rendered(&ctx));
    let hr = tri!(rendered_helmrelease(&rendered, ROOK_OPERATOR_CHARTS));
    let ns = Release::of(hr).namespace;
    let hr_ready = helmrelease_ready(client, &ctx.cluster, hr.namespace().unwrap_or("flux-system"), hr.name()).await;
    let deployment = match Api::<k8s_openapi::api::apps::v1::Deployment>::namespaced(client.clone(), &ns).get_opt(ROOK_OPERATOR_DEPLOYMENT).await {
        Ok(Some(_)) => Outcome::pass(format!("Deployment {ns}/{ROOK_OPERATOR_DEPLOYMENT} present (cluster {})", ctx.cluster)),
        Ok(None) => Outcome::fail(format!("Deployment {ns}/{ROOK_OPERATOR_DEPLOYMENT} (cluster {})", ctx.cluster), "created by the rook-ceph chart", "not found"),
        Err(e) => kube_err("get the Rook operator Deployment", e),
    };
    Outcome::all([hr_ready, deployment])
}

async fn rook_operator_healthy(ctx: Ctx) -> Outcome {
    let client = tri!(ctx.kube());
    let rendered = tri!(rendered(&ctx));
    let hr = tri!(rendered_helmrelease(&rendered, ROOK_OPERATOR_CHARTS));
    let ns = Release::of(hr).namespace;
    Outcome::all([
        objects::expect_workload_ready(client, &ctx.cluster, "Deployment", &ns, ROOK_OPERATOR_DEPLOYMENT).await,
        objects::expect_pods_ready(client, &ctx.cluster, &ns, ROOK_OPERATOR_LABELS).await,
    ])
}

async fn rook_crds_established(ctx: Ctx) -> Outcome {
    let client = tri!(ctx.kube());
    let mut outcomes = vec![];
    for name in ROOK_CRDS {
        outcomes.push(match objects::get(client, &CRD, None, name).await {
            Ok(Some(found)) => objects::expect_condition(&found, &CRD, "Established"),
            Ok(None) => Outcome::fail(format!("CustomResourceDefinition {name} (cluster {})", ctx.cluster), "installed and Established", "not found"),
            Err(o) => o,
        });
    }
    match Outcome::all(outcomes) {
        Outcome::Pass { .. } => Outcome::pass(format!("{} Rook CRDs (ceph.rook.io, objectbucket.io) Established on cluster {}", ROOK_CRDS.len(), ctx.cluster)),
        other => other,
    }
}

// ---------------------------------------------------------------- 4.2 Ceph cluster

/// Phase Ready / condition Ready, and the mons and OSDs spread over the criterion's node count.
async fn ceph_cluster_ready_on_nodes(ctx: Ctx) -> Outcome {
    let client = tri!(ctx.kube());
    let rendered = tri!(rendered(&ctx));
    let cc = tri!(live_ceph_cluster(client, &rendered).await);
    let want_nodes = number_in(CEPH_DEPLOYED, r"\((\d+) nodes\)").unwrap_or(3) as usize;
    let obj = format!("{} (cluster {})", cc.describe(&CEPH_CLUSTER), ctx.cluster);
    let ns = cc.namespace().unwrap_or("rook-ceph").to_string();
    let mut findings = vec![];
    let phase = cc.str("/status/phase").unwrap_or("");
    if phase != "Ready" {
        let message = cc.str("/status/message").unwrap_or("");
        findings.push(Finding::new(format!("{obj} status.phase"), "Ready", format!("{:?} ({message})", if phase.is_empty() { "not set" } else { phase })));
    } else if let Outcome::Fail { findings: f } = objects::expect_condition(&cc, &CEPH_CLUSTER, "Ready") {
        findings.extend(f);
    }
    let mut evidence = vec![];
    for (daemon, labels) in [("mon", "app=rook-ceph-mon"), ("osd", "app=rook-ceph-osd")] {
        let p = tri!(pods(client, &ns, labels).await);
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
    Outcome::from_findings(findings, format!("{obj}: phase Ready; {}", evidence.join("; ")))
}

/// `NxMTB`: N OSDs (rook-ceph-osd Deployments, Rook's `status.storage.osd.storeType` count),
/// device class `ssd` (the story's OSD device class) reported, raw capacity ≈ N × M TB.
async fn ceph_osds_on_nvme_disks(ctx: Ctx) -> Outcome {
    let client = tri!(ctx.kube());
    let rendered = tri!(rendered(&ctx));
    let cc = tri!(live_ceph_cluster(client, &rendered).await);
    let want = number_in(OSDS, r"^(\d+)x").unwrap_or(3);
    let tb = number_in(OSDS, r"x(\d+)TB").unwrap_or(1);
    let ns = cc.namespace().unwrap_or("rook-ceph").to_string();
    let obj = format!("{} (cluster {})", cc.describe(&CEPH_CLUSTER), ctx.cluster);
    let mut findings = vec![];
    let deployments = match Api::<k8s_openapi::api::apps::v1::Deployment>::namespaced(client.clone(), &ns).list(&ListParams::default().labels("app=rook-ceph-osd")).await {
        Ok(l) => l.items,
        Err(e) => return kube_err("list OSD Deployments", e),
    };
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
    if !classes.is_empty() && !classes.contains(&super::CEPH_DEVICE_CLASS) {
        findings.push(Finding::new(format!("{obj} status.storage.deviceClasses"), format!("{:?} (NVMe OSDs)", super::CEPH_DEVICE_CLASS), format!("{classes:?}")));
    }
    let total = cc.get("/status/ceph/capacity/bytesTotal").and_then(Value::as_u64);
    let (lo, hi) = ((want * tb) as f64 * 0.9e12, (want * tb) as f64 * 1.1e12);
    match total {
        Some(t) if (t as f64) >= lo && (t as f64) <= hi => {}
        Some(t) => findings.push(Finding::new(format!("{obj} status.ceph.capacity.bytesTotal"), format!("≈ {want} × {tb} TB ({:.2}-{:.2} TB raw)", lo / 1e12, hi / 1e12), format!("{t} bytes ({:.2} TB)", t as f64 / 1e12))),
        None => findings.push(Finding::new(format!("{obj} status.ceph.capacity.bytesTotal"), format!("≈ {want} × {tb} TB"), "not reported")),
    }
    let nodes = tri!(pods(client, &ns, "app=rook-ceph-osd").await);
    let placed: Vec<String> = nodes.iter().map(|(p, n, _)| format!("{p}@{n}")).collect();
    Outcome::from_findings(
        findings,
        format!("{obj}: {} OSDs [{}], store {store:?}, device classes {classes:?}, {:.2} TB raw", names.len(), placed.join(", "), total.unwrap_or(0) as f64 / 1e12),
    )
}

async fn ceph_health_ok(ctx: Ctx) -> Outcome {
    let client = tri!(ctx.kube());
    let rendered = tri!(rendered(&ctx));
    let cc = tri!(live_ceph_cluster(client, &rendered).await);
    let want = CEPH_HEALTH.rsplit(' ').next().unwrap_or("HEALTH_OK");
    let obj = format!("{} (cluster {}) status.ceph.health", cc.describe(&CEPH_CLUSTER), ctx.cluster);
    let health = cc.str("/status/ceph/health").unwrap_or("");
    if health == want {
        let checked = cc.str("/status/ceph/lastChecked").unwrap_or("?");
        return Outcome::pass(format!("{obj}: {health} (last checked {checked})"));
    }
    let details: Vec<String> = cc
        .get("/status/ceph/details")
        .and_then(Value::as_object)
        .map(|m| m.iter().map(|(k, v)| format!("{k}: {}", v.get("message").and_then(Value::as_str).unwrap_or(""))).collect())
        .unwrap_or_default();
    Outcome::fail(obj, want, if health.is_empty() { "not reported".to_string() } else { format!("{health} [{}]", details.join("; ")) })
}

/// The StorageClass the criterion names exists with the provisioner, clusterID and pool the
/// repository renders, and that pool is a Ready CephBlockPool.
async fn rbd_storageclass_live(ctx: Ctx) -> Outcome {
    let client = tri!(ctx.kube());
    let rendered = tri!(rendered(&ctx));
    let name = RBD_CLASS_CREATED.split('`').nth(1).unwrap_or(RBD_STORAGE_CLASS);
    let want = rendered.of_kind("StorageClass").find(|o| o.name() == name);
    let obj = format!("StorageClass {name} (cluster {})", ctx.cluster);
    let sc = match Api::<StorageClass>::all(client.clone()).get_opt(name).await {
        Ok(Some(sc)) => sc,
        Ok(None) => return Outcome::fail(obj, "created", "not found"),
        Err(e) => return kube_err(&format!("get {obj}"), e),
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
    let pool_state = match objects::get(client, &CEPH_BLOCK_POOL, Some(&cluster_id), &pool).await {
        Ok(Some(p)) => p.str("/status/phase").unwrap_or("no phase").to_string(),
        Ok(None) => "not found".to_string(),
        Err(o) => return o,
    };
    if pool_state != "Ready" {
        findings.push(Finding::new(format!("CephBlockPool {cluster_id}/{pool} (pool of {obj}, cluster {})", ctx.cluster), "status.phase Ready", pool_state));
    }
    Outcome::from_findings(findings, format!("{obj}: provisioner {}, clusterID {cluster_id}, pool {pool} (Ready)", sc.provisioner))
}

// ---------------------------------------------------------------- test PVCs (data-plane)

/// Creates a 1Gi RWO claim of `class` in a disposable namespace (with a pod using it when the
/// class binds on first consumer) and waits up to [`PVC_WAIT`] for it to bind. Returns the
/// bound PV, or a Fail naming the claim, what was expected and the last event about it.
async fn test_claim(ctx: &CheckContext, client: &kube::Client, cluster: &str, class: &str) -> Result<(String, PersistentVolume), Outcome> {
    let sc = match Api::<StorageClass>::all(client.clone()).get_opt(class).await {
        Ok(Some(sc)) => sc,
        Ok(None) => return Err(Outcome::fail(format!("StorageClass {class} (cluster {cluster})"), "present (class of the test PVC)", "not found")),
        Err(e) => return Err(kube_err(&format!("get StorageClass {class}"), e)),
    };
    let wffc = sc.volume_binding_mode.as_deref() == Some("WaitForFirstConsumer");
    let ns = disposable_namespace(ctx, client, "pvc").await?;
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), &ns);
    let pvc: PersistentVolumeClaim = serde_json::from_value(json!({
        "metadata": {"name": "pa-test-pvc"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}, "storageClassName": class},
    }))
    .map_err(Outcome::error)?;
    claims.create(&PostParams::default(), &pvc).await.map_err(|e| kube_err(&format!("create PVC in {ns}"), e))?;
    if wffc {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": "pa-test-pod"},
            "spec": {
                "containers": [{"name": "pause", "image": PAUSE_IMAGE, "volumeMounts": [{"name": "data", "mountPath": "/data"}]}],
                "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "pa-test-pvc"}}],
                "terminationGracePeriodSeconds": 0,
            },
        }))
        .map_err(Outcome::error)?;
        Api::<Pod>::namespaced(client.clone(), &ns).create(&PostParams::default(), &pod).await.map_err(|e| kube_err(&format!("create test pod in {ns}"), e))?;
    }
    let object = format!("PersistentVolumeClaim {ns}/pa-test-pvc (class {class}, provisioner {}, cluster {cluster})", sc.provisioner);
    let deadline = tokio::time::Instant::now() + PVC_WAIT;
    loop {
        let claim = claims.get("pa-test-pvc").await.map_err(|e| kube_err(&format!("get {object}"), e))?;
        let phase = claim.status.as_ref().and_then(|s| s.phase.clone()).unwrap_or_default();
        if phase == "Bound" {
            let volume = claim.spec.as_ref().and_then(|s| s.volume_name.clone()).unwrap_or_default();
            let pv = Api::<PersistentVolume>::all(client.clone()).get(&volume).await.map_err(|e| kube_err(&format!("get PV {volume}"), e))?;
            return Ok((object, pv));
        }
        if tokio::time::Instant::now() >= deadline || ctx.cancel.is_cancelled() {
            let events = Api::<Event>::namespaced(client.clone(), &ns)
                .list(&ListParams::default().fields("involvedObject.name=pa-test-pvc"))
                .await
                .map(|l| l.items)
                .unwrap_or_default();
            let last = events.iter().max_by_key(|e| e.last_timestamp.as_ref().map(|t| t.0)).map(|e| format!("; last event {}: {}", e.reason.clone().unwrap_or_default(), e.message.clone().unwrap_or_default()));
            return Err(Outcome::fail(object, format!("Bound within {}s", PVC_WAIT.as_secs()), format!("{}{}", if phase.is_empty() { "Pending" } else { &phase }, last.unwrap_or_default())));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn pv_summary(pv: &PersistentVolume) -> String {
    let spec = pv.spec.clone().unwrap_or_default();
    let source = if let Some(csi) = &spec.csi {
        format!("csi {} {}", csi.driver, csi.volume_handle)
    } else if let Some(l) = &spec.local {
        format!("local {}", l.path)
    } else if let Some(h) = &spec.host_path {
        format!("hostPath {}", h.path)
    } else {
        "other source".into()
    };
    format!("PV {} ({source})", pv.metadata.name.clone().unwrap_or_default())
}

async fn rbd_test_pvc_bound(ctx: Ctx) -> Outcome {
    let client = tri!(ctx.kube());
    let class = RBD_CLASS_CREATED.split('`').nth(1).unwrap_or(RBD_STORAGE_CLASS);
    let (object, pv) = tri!(test_claim(&ctx, client, &ctx.cluster, class).await);
    Outcome::pass(format!("{object}: Bound to {}", pv_summary(&pv)))
}

async fn openebs_deployed(ctx: Ctx) -> Outcome {
    let hr_and_workloads = release_deployed(&ctx, OPENEBS_CHARTS, |hr, release| {
        let name = hr.str("/spec/values/fullnameOverride").map(String::from).unwrap_or_else(|| format!("{release}-localpv-provisioner"));
        vec![("Deployment", name)]
    })
    .await;
    // ... and its StorageClasses (rendered, provisioner openebs.io/local) exist on the cluster.
    let client = tri!(ctx.kube());
    let rendered = tri!(rendered(&ctx));
    let mut outcomes = vec![hr_and_workloads];
    for sc in rendered.of_kind("StorageClass").filter(|s| s.str("/provisioner") == Some(super::OPENEBS_PROVISIONER)) {
        outcomes.push(match Api::<StorageClass>::all(client.clone()).get_opt(sc.name()).await {
            Ok(Some(live)) if live.provisioner == super::OPENEBS_PROVISIONER => Outcome::pass(format!("StorageClass {} ({})", sc.name(), live.provisioner)),
            Ok(Some(live)) => Outcome::fail(format!("StorageClass {} (cluster {})", sc.name(), ctx.cluster), super::OPENEBS_PROVISIONER, live.provisioner),
            Ok(None) => Outcome::fail(format!("StorageClass {} (cluster {})", sc.name(), ctx.cluster), format!("applied from {}", sc.file.display()), "not found"),
            Err(e) => kube_err("get StorageClass", e),
        });
    }
    Outcome::all(outcomes)
}

/// A claim of the story's class, consumed by a pod, binds to a node-local volume on the pod's node.
async fn openebs_test_pvc_works(ctx: Ctx) -> Outcome {
    let client = tri!(ctx.kube());
    let (object, pv) = tri!(test_claim(&ctx, client, &ctx.cluster, OPENEBS_STORAGE_CLASS).await);
    let path = pv.spec.as_ref().and_then(|s| s.local.as_ref().map(|l| l.path.clone()).or_else(|| s.host_path.as_ref().map(|h| h.path.clone()))).unwrap_or_default();
    if !path.starts_with(super::OPENEBS_BASE_PATH) {
        return Outcome::fail(format!("{} for {object}", pv_summary(&pv)), format!("a local/hostPath volume under {}", super::OPENEBS_BASE_PATH), format!("{path:?}"));
    }
    Outcome::pass(format!("{object}: Bound to {} (consumed by a pod)", pv_summary(&pv)))
}

// ---------------------------------------------------------------- 4.5 cross-cluster

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
async fn mon_reachable(ctx: &CheckContext, home: &(String, kube::Client), ns: &str, mon: &str, port: u16) -> Outcome {
    let (home_name, home_client) = home;
    let consumer = ctx.kube().expect("checked by the caller");
    let mut findings = vec![];
    let export = match objects::get(home_client, &SERVICE_EXPORT, Some(ns), mon).await {
        Ok(e) => e,
        Err(o) => return o,
    };
    let global = |svc: &k8s_openapi::api::core::v1::Service| {
        svc.metadata.annotations.as_ref().is_some_and(|a| super::GLOBAL_ANNOTATIONS.iter().any(|k| a.get(*k).map(String::as_str) == Some("true")))
    };
    let home_svc = Api::<k8s_openapi::api::core::v1::Service>::namespaced(home_client.clone(), ns).get_opt(mon).await.map_err(|e| kube_err("get mon Service", e));
    let home_svc = tri!(home_svc);
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
            how = "ServiceExport".into();
        }
        (None, Some(s)) if global(s) => how = "global Service".into(),
        (None, Some(_)) => findings.push(Finding::new(
            format!("Service {ns}/{mon} (cluster {home_name})"),
            "a ServiceExport or the annotation service.cilium.io/global: \"true\"",
            "neither",
        )),
    }
    let ready = tri!(ready_endpoints(home_client, ns, mon).await);
    if home_svc.is_some() && ready == 0 {
        findings.push(Finding::new(format!("Service {ns}/{mon} (cluster {home_name}) endpoints"), "at least one ready endpoint (a running mon)", "none ready"));
    }
    if how == "ServiceExport" {
        match objects::get(consumer, &SERVICE_IMPORT, Some(ns), mon).await {
            Ok(Some(i)) => {
                let ports: Vec<u64> = i.get("/spec/ports").and_then(Value::as_array).into_iter().flatten().filter_map(|p| p.get("port").and_then(Value::as_u64)).collect();
                if !ports.contains(&(port as u64)) {
                    findings.push(Finding::new(format!("{} (cluster {})", i.describe(&SERVICE_IMPORT), ctx.cluster), format!("port {port}"), format!("ports {ports:?}")));
                }
            }
            Ok(None) => findings.push(Finding::new(format!("ServiceImport {ns}/{mon} (cluster {})", ctx.cluster), format!("imported from cluster {home_name} (ClusterMesh MCS-API)"), "not found")),
            Err(o) => return o,
        }
    } else if how == "global Service" {
        let here = Api::<k8s_openapi::api::core::v1::Service>::namespaced(consumer.clone(), ns).get_opt(mon).await;
        match here {
            Ok(Some(s)) if global(&s) => {}
            Ok(_) => findings.push(Finding::new(format!("Service {ns}/{mon} (cluster {})", ctx.cluster), "the same global Service (service.cilium.io/global: \"true\")", "missing or not global")),
            Err(e) => return kube_err("get Service", e),
        }
    }
    Outcome::from_findings(findings, format!("{mon}.{ns} via {how} from {home_name} ({ready} ready endpoints) to {}", ctx.cluster))
}

async fn ceph_mons_via_clustermesh(ctx: Ctx) -> Outcome {
    tri!(ctx.kube());
    let (home_name, home_client, home_rendered) = tri!(ceph_home(&ctx));
    let cc = tri!(ceph_cluster(&home_rendered));
    let ns = cc.namespace().unwrap_or("rook-ceph").to_string();
    let count = cc.get("/spec/mon/count").and_then(Value::as_u64).unwrap_or(CEPH_MON_COUNT).min(26);
    let home = (home_name, home_client);
    let mut outcomes = vec![];
    for i in 0..count {
        let mon = format!("rook-ceph-mon-{}", (b'a' + i as u8) as char);
        outcomes.push(mon_reachable(&ctx, &home, &ns, &mon, 6789).await);
    }
    Outcome::all(outcomes)
}

/// The rendered StorageClass of this cluster served by a ceph-csi RBD driver other than
/// Rook's own (the remote class of Story 4.5 option 2).
fn remote_class(rendered: &Rendered) -> Result<&RenderedObject, Outcome> {
    rendered
        .of_kind("StorageClass")
        .find(|s| s.str("/provisioner").is_some_and(|p| p == "rbd.csi.ceph.com" || p.ends_with(RBD_PROVISIONER_SUFFIX)))
        .ok_or_else(|| Outcome::fail(format!("StorageClass with a ceph-csi RBD provisioner (cluster {})", rendered.cluster), "rendered", "none rendered"))
}

async fn ceph_csi_driver_on_apps(ctx: Ctx) -> Outcome {
    let client = tri!(ctx.kube());
    let rendered = tri!(rendered(&ctx));
    let sc = tri!(remote_class(&rendered));
    let driver = sc.str("/provisioner").unwrap_or("").to_string();
    let csidriver = match Api::<CSIDriver>::all(client.clone()).get_opt(&driver).await {
        Ok(Some(_)) => Outcome::pass(format!("CSIDriver {driver} registered (cluster {})", ctx.cluster)),
        Ok(None) => Outcome::fail(format!("CSIDriver {driver} (cluster {})", ctx.cluster), format!("registered (provisioner of StorageClass {})", sc.name()), "not found"),
        Err(e) => kube_err("get CSIDriver", e),
    };
    let release = release_deployed(&ctx, CEPH_CSI_CHARTS, |_, release| vec![("Deployment", format!("{release}-provisioner")), ("DaemonSet", format!("{release}-nodeplugin"))]).await;
    Outcome::all([csidriver, release])
}

async fn remote_ceph_test_pvc_bound(ctx: Ctx) -> Outcome {
    let client = tri!(ctx.kube());
    let rendered = tri!(rendered(&ctx));
    let sc = tri!(remote_class(&rendered));
    let (object, pv) = tri!(test_claim(&ctx, client, &ctx.cluster, sc.name()).await);
    Outcome::pass(format!("{object}: Bound to {}", pv_summary(&pv)))
}

/// A volume provisioned on this cluster through the remote class lives in infra's Ceph:
/// the driver's cluster config maps the class' clusterID to monitors that are infra's
/// exported mons; the volume's pool is a Ready CephBlockPool of infra's CephCluster,
/// which reports HEALTH_OK.
async fn cross_cluster_storage_verified(ctx: Ctx) -> Outcome {
    let client = tri!(ctx.kube());
    let rendered = tri!(rendered(&ctx));
    let sc = tri!(remote_class(&rendered));
    let (home_name, home_client, home_rendered) = tri!(ceph_home(&ctx));
    let (object, pv) = tri!(test_claim(&ctx, client, &ctx.cluster, sc.name()).await);
    let attrs: BTreeMap<String, String> = pv.spec.as_ref().and_then(|s| s.csi.as_ref()).and_then(|c| c.volume_attributes.clone()).unwrap_or_default();
    let pvs = pv_summary(&pv);
    let cluster_id = attrs.get("clusterID").cloned().unwrap_or_default();
    let pool = attrs.get("pool").cloned().unwrap_or_default();
    let mut outcomes = vec![];
    // 1. the driver's config: clusterID → monitors, each an imported mon of Ceph's home.
    let hr = tri!(rendered_helmrelease(&rendered, CEPH_CSI_CHARTS));
    let csi_ns = Release::of(hr).namespace;
    let cm_name = hr.str("/spec/values/configMapName").unwrap_or(CEPH_CSI_CONFIGMAP).to_string();
    let monitors: Vec<String> = match Api::<ConfigMap>::namespaced(client.clone(), &csi_ns).get_opt(&cm_name).await {
        Ok(Some(cm)) => {
            let config: Value = cm.data.as_ref().and_then(|d| d.get("config.json")).and_then(|j| serde_json::from_str(j).ok()).unwrap_or(Value::Null);
            let entry = config.as_array().into_iter().flatten().find(|e| e.get("clusterID").and_then(Value::as_str) == Some(cluster_id.as_str()));
            match entry {
                Some(e) => e.get("monitors").and_then(Value::as_array).into_iter().flatten().filter_map(|m| m.as_str().map(String::from)).collect(),
                None => {
                    return Outcome::fail(format!("ConfigMap {csi_ns}/{cm_name} config.json (cluster {})", ctx.cluster), format!("an entry for clusterID {cluster_id:?} (of {pvs})"), "none");
                }
            }
        }
        Ok(None) => return Outcome::fail(format!("ConfigMap {csi_ns}/{cm_name} (cluster {})", ctx.cluster), "the ceph-csi cluster config", "not found"),
        Err(e) => return kube_err("get ceph-csi config", e),
    };
    if monitors.is_empty() {
        return Outcome::fail(format!("ConfigMap {csi_ns}/{cm_name} clusterID {cluster_id}"), "monitors", "none listed");
    }
    let home = (home_name.clone(), home_client.clone());
    for m in &monitors {
        let (host, port) = m.rsplit_once(':').map(|(h, p)| (h, p.parse().unwrap_or(6789))).unwrap_or((m.as_str(), 6789));
        let mut parts = host.split('.');
        let (Some(svc), Some(ns)) = (parts.next(), parts.next()) else {
            outcomes.push(Outcome::fail(format!("monitor {m} (ConfigMap {csi_ns}/{cm_name})"), "<svc>.<ns>.svc.clusterset.local:<port>", m.clone()));
            continue;
        };
        outcomes.push(mon_reachable(&ctx, &home, ns, svc, port).await);
    }
    // 2. the pool is a Ready CephBlockPool of the home CephCluster, which is healthy.
    let cc = tri!(ceph_cluster(&home_rendered));
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
    match Outcome::all(outcomes) {
        Outcome::Pass { .. } => Outcome::pass(format!(
            "{object} bound to {pvs}: clusterID {cluster_id} → monitors [{}] imported from {home_name}, pool {pool} Ready there, Ceph HEALTH_OK",
            monitors.join(", ")
        )),
        other => other,
    }
}
