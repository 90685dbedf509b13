//! Repository layer of EPIC-4: the manifests and their wiring.

use super::*;
use crate::check::{CheckContext, CheckResult, Ctx, Finding, IntoOutcome, Outcome};
use crate::checks::kit::prelude::*;
use crate::repo::{Rendered, RenderedObject};

pub(super) async fn rook_operator_base(ctx: Ctx) -> CheckResult<Outcome> {
    Ok(file_has_helmrelease(repo(&ctx)?, "kubernetes/bases/rook-ceph-operator/helmrelease.yaml", ROOK_OPERATOR_CHARTS))
}

pub(super) async fn rook_operator_config(ctx: Ctx) -> CheckResult<Outcome> {
    config_renders_base(
        &ctx,
        "kubernetes/infrastructure/storage/rook-ceph/operator/kustomization.yaml",
        "kubernetes/bases/rook-ceph-operator",
        "HelmRelease",
    )
}

/// The CephCluster of `kubernetes/bases/rook-ceph-cluster/cephcluster.yaml` is applied to the
/// cluster through `infrastructure/storage/rook-ceph/cluster/`, with the story's configuration.
pub(super) async fn ceph_cluster_manifest(ctx: Ctx) -> CheckResult<Outcome> {
    let wired = config_renders_base(
        &ctx,
        "kubernetes/infrastructure/storage/rook-ceph/cluster/kustomization.yaml",
        "kubernetes/bases/rook-ceph-cluster",
        "CephCluster",
    )
    .into_outcome();
    Ok(Outcome::all([wired, ceph_spec(&ctx).into_outcome()]))
}

/// The rendered CephCluster's configuration (see [`ceph_configuration`]).
fn ceph_spec(ctx: &CheckContext) -> CheckResult<Outcome> {
    let rendered = rendered(ctx)?;
    let cluster = ceph_cluster(&rendered)?;
    Ok(ceph_configuration(cluster))
}

fn ceph_configuration(c: &RenderedObject) -> Outcome {
    let obj = c.describe();
    let mut findings = vec![];
    if c.api_version() != "ceph.rook.io/v1" {
        findings.push(Finding::new(&obj, "apiVersion ceph.rook.io/v1", c.api_version()));
    }
    let image = c.str("/spec/cephVersion/image").unwrap_or("");
    if !image.ends_with(&format!(":{CEPH_IMAGE_TAG}")) {
        findings.push(Finding::new(format!("{obj} spec.cephVersion.image"), format!("image tag {CEPH_IMAGE_TAG}"), shown(image)));
    }
    let mons = c.get("/spec/mon/count").and_then(serde_json::Value::as_u64);
    if mons != Some(CEPH_MON_COUNT) {
        findings.push(Finding::new(format!("{obj} spec.mon.count"), CEPH_MON_COUNT.to_string(), opt(mons)));
    }
    let filter = c.str("/spec/storage/deviceFilter").unwrap_or("");
    if filter != CEPH_DEVICE_FILTER {
        findings.push(Finding::new(format!("{obj} spec.storage.deviceFilter"), format!("{CEPH_DEVICE_FILTER:?}"), shown(filter)));
    }
    // OSD device class: the storage-wide config, and no node/device override to another class.
    let class = c.str("/spec/storage/config/deviceClass").unwrap_or("");
    if class != CEPH_DEVICE_CLASS {
        findings.push(Finding::new(format!("{obj} spec.storage.config.deviceClass"), format!("{CEPH_DEVICE_CLASS:?}"), shown(class)));
    }
    for node in c.get("/spec/storage/nodes").and_then(serde_json::Value::as_array).into_iter().flatten() {
        let node_name = crate::repo::str_at(node, "/name").unwrap_or("?");
        let mut overrides: Vec<&str> = vec![];
        overrides.extend(crate::repo::str_at(node, "/config/deviceClass"));
        for dev in node.get("devices").and_then(serde_json::Value::as_array).into_iter().flatten() {
            overrides.extend(crate::repo::str_at(dev, "/config/deviceClass"));
        }
        if let Some(other) = overrides.iter().find(|c| **c != CEPH_DEVICE_CLASS) {
            findings.push(Finding::new(format!("{obj} spec.storage.nodes[{node_name}] deviceClass"), format!("{CEPH_DEVICE_CLASS:?}"), format!("{other:?}")));
        }
    }
    Outcome::from_findings(
        findings,
        format!("{} {obj}: image {image}, {CEPH_MON_COUNT} mons, deviceFilter {filter}, deviceClass {class}", c.api_version()),
    )
}

/// StorageClass `rook-ceph-block`: Rook's RBD provisioner, the CephCluster's clusterID and a
/// rendered CephBlockPool with 3 replicas.
pub(super) async fn rbd_storage_class(ctx: Ctx) -> CheckResult<Outcome> {
    let rendered = rendered(&ctx)?;
    let sc = rendered_object(&rendered, "StorageClass", RBD_STORAGE_CLASS)?;
    let cluster = ceph_cluster(&rendered)?;
    let ceph_ns = cluster.namespace().unwrap_or("rook-ceph");
    let operator_ns = rendered_helmreleases(&rendered, ROOK_OPERATOR_CHARTS)
        .next()
        .and_then(|hr| hr.str("/spec/targetNamespace").or(hr.namespace()))
        .unwrap_or(ceph_ns);
    let obj = sc.describe();
    let mut findings = vec![];
    let provisioner = sc.str("/provisioner").unwrap_or("");
    let want = format!("{operator_ns}{RBD_PROVISIONER_SUFFIX}");
    if provisioner != want {
        findings.push(Finding::new(format!("{obj} provisioner"), format!("{want:?} (Rook RBD CSI)"), shown(provisioner)));
    }
    let cluster_id = sc.str("/parameters/clusterID").unwrap_or("");
    if cluster_id != ceph_ns {
        findings.push(Finding::new(format!("{obj} parameters.clusterID"), format!("{ceph_ns:?} (namespace of {})", cluster.describe()), shown(cluster_id)));
    }
    let pool_name = sc.str("/parameters/pool").unwrap_or("");
    let pool = rendered.of_kind("CephBlockPool").find(|p| p.name() == pool_name && p.namespace() == Some(ceph_ns));
    match pool {
        None => {
            let pools: Vec<String> = rendered.of_kind("CephBlockPool").map(|p| format!("{}/{}", p.namespace().unwrap_or(""), p.name())).collect();
            findings.push(Finding::new(
                format!("{obj} parameters.pool"),
                format!("a CephBlockPool {ceph_ns}/{pool_name} rendered for cluster {}", ctx.cluster),
                format!("CephBlockPools [{}]", pools.join(", ")),
            ));
        }
        Some(p) => {
            let size = p.get("/spec/replicated/size").and_then(serde_json::Value::as_u64);
            if size != Some(CEPH_REPLICA_SIZE) {
                findings.push(Finding::new(format!("{} spec.replicated.size", p.describe()), CEPH_REPLICA_SIZE.to_string(), opt(size)));
            }
        }
    }
    Ok(Outcome::from_findings(
        findings,
        format!("{} {obj}: provisioner {provisioner}, clusterID {cluster_id}, pool {pool_name} ({CEPH_REPLICA_SIZE} replicas)", sc.api_version()),
    ))
}

pub(super) async fn openebs_base(ctx: Ctx) -> CheckResult<Outcome> {
    Ok(file_has_helmrelease(repo(&ctx)?, "kubernetes/bases/openebs/helmrelease.yaml", OPENEBS_CHARTS))
}

pub(super) async fn openebs_config(ctx: Ctx) -> CheckResult<Outcome> {
    config_renders_base(&ctx, "kubernetes/infrastructure/storage/openebs/kustomization.yaml", "kubernetes/bases/openebs", "HelmRelease")
}

/// StorageClass `openebs-local-nvme`: provisioner `openebs.io/local`, hostpath under `/var/openebs/local`,
/// bound on first consumer (a local volume must follow its pod's node).
pub(super) async fn openebs_storage_class(ctx: Ctx) -> CheckResult<Outcome> {
    let rendered = rendered(&ctx)?;
    let sc = rendered_object(&rendered, "StorageClass", OPENEBS_STORAGE_CLASS)?;
    let obj = sc.describe();
    let mut findings = vec![];
    let provisioner = sc.str("/provisioner").unwrap_or("");
    if provisioner != OPENEBS_PROVISIONER {
        findings.push(Finding::new(format!("{obj} provisioner"), format!("{OPENEBS_PROVISIONER:?}"), shown(provisioner)));
    }
    let config = sc.str("/metadata/annotations/cas.openebs.io~1config").unwrap_or("");
    let entries: Vec<(String, String)> = serde_yaml_ng::from_str::<serde_json::Value>(config)
        .ok()
        .and_then(|v| v.as_array().cloned())
        .unwrap_or_default()
        .iter()
        .map(|e| (crate::repo::str_at(e, "/name").unwrap_or("").to_string(), crate::repo::str_at(e, "/value").unwrap_or("").to_string()))
        .collect();
    let get = |k: &str| entries.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let annotation = format!("{obj} annotation cas.openebs.io/config");
    if get("StorageType") != Some("hostpath") {
        findings.push(Finding::new(format!("{annotation} StorageType"), "\"hostpath\"", opt(get("StorageType"))));
    }
    if get("BasePath") != Some(OPENEBS_BASE_PATH) {
        findings.push(Finding::new(format!("{annotation} BasePath"), format!("{OPENEBS_BASE_PATH:?}"), opt(get("BasePath"))));
    }
    let binding = sc.str("/volumeBindingMode").unwrap_or("Immediate");
    if binding != "WaitForFirstConsumer" {
        findings.push(Finding::new(format!("{obj} volumeBindingMode"), "\"WaitForFirstConsumer\"", shown(binding)));
    }
    Ok(Outcome::from_findings(
        findings,
        format!("{obj}: provisioner {provisioner}, hostpath {OPENEBS_BASE_PATH}, {binding}"),
    ))
}

/// Every Ceph monitor (`rook-ceph-mon-a`.. for `spec.mon.count`) of the cluster that runs Ceph is
/// made global: a `ServiceExport` (MCS-API over ClusterMesh) or a Service annotated
/// `service.cilium.io/global: "true"` (the plan's option 1). Evaluated for the cluster that
/// consumes Ceph; looks at every cluster that renders a CephCluster.
pub(super) async fn ceph_global_services(ctx: Ctx) -> CheckResult<Outcome> {
    let repo = repo(&ctx)?;
    let mut outcomes = vec![];
    for name in repo.clusters() {
        let rendered = repo.render(name).map_err(Outcome::error)?;
        if let Ok(cluster) = ceph_cluster(&rendered) {
            outcomes.push(mons_global(&ctx, &rendered, cluster));
        }
    }
    if outcomes.is_empty() {
        return Ok(Outcome::fail(
            "CephCluster (ceph.rook.io/v1)",
            format!("rendered for some cluster of {}", repo.clusters().join(", ")),
            "rendered for none",
        ));
    }
    Ok(Outcome::all(outcomes))
}

fn mons_global(ctx: &CheckContext, rendered: &Rendered, cluster: &RenderedObject) -> Outcome {
    let ns = cluster.namespace().unwrap_or("rook-ceph");
    let count = cluster.get("/spec/mon/count").and_then(serde_json::Value::as_u64).unwrap_or(CEPH_MON_COUNT);
    let mut findings = vec![];
    let mut evidence = vec![];
    for i in 0..count.min(26) {
        let mon = format!("rook-ceph-mon-{}", (b'a' + i as u8) as char);
        let export = rendered
            .of_kind("ServiceExport")
            .find(|o| o.name() == mon && o.namespace() == Some(ns) && o.api_version().starts_with("multicluster.x-k8s.io/"));
        let global = rendered.of_kind("Service").find(|o| {
            o.name() == mon
                && o.namespace() == Some(ns)
                && GLOBAL_ANNOTATIONS.iter().any(|a| o.str(&format!("/metadata/annotations/{}", a.replace('/', "~1"))) == Some("true"))
        });
        match (export, global) {
            (Some(e), _) => evidence.push(format!("{} {} on {} (for {})", e.api_version(), e.describe(), rendered.cluster, ctx.cluster)),
            (None, Some(s)) => evidence.push(format!("{} global (Cilium) on {} (for {})", s.describe(), rendered.cluster, ctx.cluster)),
            (None, None) => findings.push(Finding::new(
                format!("Service {ns}/{mon} (Ceph monitor of {}, cluster {})", cluster.describe(), rendered.cluster),
                "a ServiceExport or the annotation service.cilium.io/global: \"true\"",
                "neither is rendered",
            )),
        }
    }
    Outcome::from_findings(findings, evidence.join("; "))
}

fn shown(s: &str) -> String {
    if s.is_empty() { "not set".into() } else { format!("{s:?}") }
}

fn opt<T: std::fmt::Debug>(v: Option<T>) -> String {
    v.map(|v| format!("{v:?}")).unwrap_or_else(|| "not set".into())
}
