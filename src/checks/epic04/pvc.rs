//! EPIC-4 data-plane: test claims of the Ceph RBD and OpenEBS classes, created (with a pod
//! when the class binds on first consumer) only in disposable namespaces.

use std::time::Duration;

use k8s_openapi::api::core::v1::{Event, PersistentVolume, PersistentVolumeClaim, Pod};
use k8s_openapi::api::storage::v1::StorageClass;
use kube::api::{Api, ListParams, PostParams};
use serde_json::json;

use super::live::kube_err;
use super::{OPENEBS_BASE_PATH, OPENEBS_STORAGE_CLASS, RBD_CLASS_CREATED};
use crate::check::{CheckContext, CheckResult, Ctx, Outcome};
use crate::checks::kit::prelude::*;

/// How long a test PVC may take to bind (kept well inside the runner's per-check timeout,
/// retries included).
const PVC_WAIT: Duration = Duration::from_secs(12);
/// What the test pod runs (never started by the simulation's kwok nodes).
const PAUSE_IMAGE: &str = "registry.k8s.io/pause:3.10";

/// Creates a 1Gi RWO claim of `class` in a disposable namespace (with a pod using it when the
/// class binds on first consumer) and waits up to [`PVC_WAIT`] for it to bind. Returns the
/// bound PV, or a Fail naming the claim, what was expected and the last event about it.
pub(super) async fn test_claim(ctx: &CheckContext, client: &kube::Client, cluster: &str, class: &str) -> Result<(String, PersistentVolume), Outcome> {
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

pub(super) fn pv_summary(pv: &PersistentVolume) -> String {
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

pub(super) async fn rbd_test_pvc_bound(ctx: Ctx) -> CheckResult<Outcome> {
    let client = ctx.kube()?;
    let class = RBD_CLASS_CREATED.split('`').nth(1).unwrap_or(RBD_STORAGE_CLASS);
    let (object, pv) = test_claim(&ctx, client, &ctx.cluster, class).await?;
    Ok(Outcome::pass(format!("{object}: Bound to {}", pv_summary(&pv))))
}

/// A claim of the story's class, consumed by a pod, binds to a node-local volume on the pod's node.
pub(super) async fn openebs_test_pvc_works(ctx: Ctx) -> CheckResult<Outcome> {
    let client = ctx.kube()?;
    let (object, pv) = test_claim(&ctx, client, &ctx.cluster, OPENEBS_STORAGE_CLASS).await?;
    let path = pv.spec.as_ref().and_then(|s| s.local.as_ref().map(|l| l.path.clone()).or_else(|| s.host_path.as_ref().map(|h| h.path.clone()))).unwrap_or_default();
    if !path.starts_with(OPENEBS_BASE_PATH) {
        return Err(Outcome::fail(format!("{} for {object}", pv_summary(&pv)), format!("a local/hostPath volume under {}", OPENEBS_BASE_PATH), format!("{path:?}")));
    }
    Ok(Outcome::pass(format!("{object}: Bound to {} (consumed by a pod)", pv_summary(&pv))))
}

