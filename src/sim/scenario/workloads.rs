//! What the platform's charts and operators create that `fixtures/gitops` does not
//! hold: the entries of `sim/scenarios/workloads.yaml` expanded to Kubernetes objects
//! (workloads, CNPG instance Pods, Services, verbatim objects), and a bound
//! PersistentVolume for every PersistentVolumeClaim.

use std::collections::BTreeMap;

use anyhow::{Context, Result, bail};
use serde_json::{Map, Value, json};

use super::client::ClusterSim;
use super::str_at;

/// Image of every simulated container (kwok never runs it).
const PAUSE_IMAGE: &str = "registry.k8s.io/pause:3.10";

const WORKLOADS_YAML: &str = include_str!("../../../sim/scenarios/workloads.yaml");

impl ClusterSim {
    /// The objects of `workloads.yaml` for this cluster, its Flux variables substituted.
    pub(super) fn expand_workloads(&self) -> Result<Vec<Value>> {
        let entries: Vec<Value> = serde_yaml_ng::from_str(&self.subst(WORKLOADS_YAML))
            .context("sim/scenarios/workloads.yaml")?;
        let mut out = vec![];
        for e in &entries {
            if let Some(cs) = e.get("clusters").and_then(Value::as_array)
                && !cs.iter().any(|c| c.as_str() == Some(self.cluster.as_str()))
            {
                continue;
            }
            out.extend(expand_entry(e)?);
        }
        Ok(out)
    }
}

fn labels_of(e: &Value, keys: &[&str]) -> Map<String, Value> {
    let mut m = Map::new();
    for k in keys {
        if let Some(Value::Object(o)) = e.get(*k) {
            for (a, b) in o {
                m.insert(
                    a.clone(),
                    Value::String(
                        b.as_str()
                            .map(str::to_string)
                            .unwrap_or_else(|| b.to_string()),
                    ),
                );
            }
        }
    }
    m
}

fn containers(e: &Value, name: &str) -> Vec<Value> {
    let names: Vec<String> = e
        .get("containers")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|c| c.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_else(|| vec![name.to_string()]);
    names
        .into_iter()
        .map(|n| json!({"name": n, "image": PAUSE_IMAGE}))
        .collect()
}

/// Fills `{{helmValues NS/NAME PATH}}` strings (what a chart renders from its values) with
/// the value at dotted `PATH` in HelmRelease NS/NAME's inline `spec.values` among `objects`,
/// as text; a key whose value the release does not set is dropped (the chart's default is
/// not known here).
pub(super) fn fill_chart_values(objects: &mut [Value]) {
    let releases: BTreeMap<String, Value> = objects
        .iter()
        .filter(|o| str_at(o, "/kind") == "HelmRelease")
        .map(|o| (format!("{}/{}", str_at(o, "/metadata/namespace"), str_at(o, "/metadata/name")), o.pointer("/spec/values").cloned().unwrap_or(Value::Null)))
        .collect();
    let lookup = |text: &str| -> Option<Option<String>> {
        let inner = text.strip_prefix("{{helmValues ")?.strip_suffix("}}")?;
        let (release, path) = inner.trim().split_once(' ')?;
        let pointer = format!("/{}", path.trim().replace('.', "/"));
        Some(releases.get(release).and_then(|v| v.pointer(&pointer)).filter(|v| !v.is_null()).map(crate::repo::scalar_text))
    };
    for o in objects.iter_mut() {
        let Some(data) = o.get_mut("data").and_then(Value::as_object_mut) else { continue };
        let keys: Vec<String> = data.keys().cloned().collect();
        for k in keys {
            match data.get(&k).and_then(Value::as_str).and_then(&lookup) {
                Some(Some(v)) => {
                    data.insert(k, Value::String(v));
                }
                Some(None) => {
                    data.remove(&k);
                }
                None => {}
            }
        }
    }
}

/// One entry of workloads.yaml to Kubernetes objects.
fn expand_entry(e: &Value) -> Result<Vec<Value>> {
    if let Some(obj) = e.get("object") {
        return Ok(vec![obj.clone()]);
    }
    let ns = str_at(e, "/namespace");
    let name = str_at(e, "/name");
    if let Some(kind) = e.get("workload").and_then(Value::as_str) {
        let selector = labels_of(e, &["selector"]);
        let pod_labels = labels_of(e, &["selector", "labels"]);
        let obj_labels = labels_of(e, &["selector", "labels", "workloadLabels"]);
        let mut spec = json!({
            "selector": {"matchLabels": selector},
            "template": {
                "metadata": {"labels": pod_labels},
                "spec": {"containers": containers(e, name), "terminationGracePeriodSeconds": 0},
            },
        });
        match kind {
            "Deployment" => spec["replicas"] = e.get("replicas").cloned().unwrap_or(json!(1)),
            "StatefulSet" => {
                spec["replicas"] = e.get("replicas").cloned().unwrap_or(json!(1));
                spec["serviceName"] = json!(name);
                spec["podManagementPolicy"] = json!("Parallel");
            }
            "DaemonSet" => {}
            other => bail!("workloads.yaml {name}: unknown workload kind {other}"),
        }
        // Optional pass-throughs: `podSpec` (merged into the pod template spec, e.g. the
        // anti-affinity/nodeSelector an operator sets) and `workloadAnnotations`.
        if let Some(extra) = e.get("podSpec").and_then(Value::as_object) {
            for (k, v) in extra {
                spec["template"]["spec"][k] = v.clone();
            }
        }
        let annotations = labels_of(e, &["workloadAnnotations"]);
        return Ok(vec![json!({
            "apiVersion": "apps/v1", "kind": kind,
            "metadata": {"name": name, "namespace": ns, "labels": obj_labels, "annotations": annotations},
            "spec": spec,
        })]);
    }
    if let Some(n) = e.get("pods").and_then(Value::as_u64) {
        // CNPG instance Pods (§14 [PG3]): <cluster>-<n>, the first is the primary.
        return Ok((1..=n)
            .map(|i| {
                let mut labels = labels_of(e, &["selector", "labels"]);
                let role = if i == 1 { "primary" } else { "replica" };
                labels.insert("cnpg.io/instanceName".into(), json!(format!("{name}-{i}")));
                labels.insert("cnpg.io/instanceRole".into(), json!(role));
                labels.insert("role".into(), json!(role));
                json!({
                    "apiVersion": "v1", "kind": "Pod",
                    "metadata": {"name": format!("{name}-{i}"), "namespace": ns, "labels": labels},
                    "spec": {"containers": containers(e, name), "terminationGracePeriodSeconds": 0},
                })
            })
            .collect());
    }
    if let Some(s) = e.get("service") {
        let ports: Vec<Value> = s
            .get("ports")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|p| {
                let mut p = p.clone();
                if p.get("protocol").is_none() {
                    p["protocol"] = json!("TCP");
                }
                if p.get("targetPort").is_none() {
                    p["targetPort"] = p["port"].clone();
                }
                p
            })
            .collect();
        let mut spec =
            json!({"type": s.get("type").cloned().unwrap_or(json!("ClusterIP")), "ports": ports});
        if let Some(sel) = s.get("selector") {
            spec["selector"] = Value::Object(labels_of(&json!({"s": sel}), &["s"]));
        }
        if let Some(ip) = s.get("clusterIP") {
            spec["clusterIP"] = ip.clone();
        }
        let mut annotations = labels_of(s, &["annotations"]);
        if let Some(ip) = s.get("loadBalancerIP").and_then(Value::as_str) {
            // Read back by the scenario to write status.loadBalancer (LB IPAM's job).
            annotations.insert("platform-acceptance.io/sim-lb-ip".into(), json!(ip));
            annotations.insert("lbipam.cilium.io/ips".into(), json!(ip));
        }
        return Ok(vec![json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": s["name"], "namespace": s["namespace"], "labels": labels_of(s, &["labels"]), "annotations": annotations},
            "spec": spec,
        })]);
    }
    bail!("workloads.yaml: entry {name:?} has none of workload/pods/service/object")
}

/// A PersistentVolume pre-bound to every PVC (what the CSI provisioner of its
/// StorageClass would create).
pub(super) fn bound_volumes(objects: &[Value]) -> Vec<Value> {
    let provisioners: BTreeMap<&str, &str> = objects
        .iter()
        .filter(|o| str_at(o, "/kind") == "StorageClass")
        .map(|o| (str_at(o, "/metadata/name"), str_at(o, "/provisioner")))
        .collect();
    objects
        .iter()
        .filter(|o| str_at(o, "/kind") == "PersistentVolumeClaim")
        .map(|pvc| {
            let ns = str_at(pvc, "/metadata/namespace");
            let name = str_at(pvc, "/metadata/name");
            let sc = str_at(pvc, "/spec/storageClassName");
            let driver = provisioners.get(sc).copied().filter(|d| !d.is_empty()).unwrap_or("rook-ceph.rbd.csi.ceph.com");
            let size = pvc.pointer("/spec/resources/requests/storage").cloned().unwrap_or(json!("1Gi"));
            let mut pv = json!({
                "apiVersion": "v1", "kind": "PersistentVolume",
                "metadata": {"name": format!("pv-sim-{ns}-{name}"), "annotations": {"pv.kubernetes.io/provisioned-by": driver}},
                "spec": {
                    "capacity": {"storage": size},
                    "accessModes": pvc.pointer("/spec/accessModes").cloned().unwrap_or(json!(["ReadWriteOnce"])),
                    "persistentVolumeReclaimPolicy": "Retain",
                    "storageClassName": sc,
                    "claimRef": {"namespace": ns, "name": name},
                },
            });
            if driver.contains('/') {
                // not a CSI driver name (openebs.io/local: a hostpath volume under its BasePath, §8 [O1])
                pv["spec"]["hostPath"] = json!({"path": format!("/var/openebs/local/pv-sim-{ns}-{name}")});
            } else {
                pv["spec"]["csi"] = json!({"driver": driver, "volumeHandle": format!("sim-{ns}-{name}")});
            }
            pv
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chart_values_fill_what_the_chart_renders() {
        let mut objects = vec![
            json!({"apiVersion": "helm.toolkit.fluxcd.io/v2", "kind": "HelmRelease", "metadata": {"name": "cilium", "namespace": "kube-system"},
                   "spec": {"values": {"cluster": {"name": "infra", "id": 1}, "ipam": {"mode": "kubernetes"}}}}),
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cilium-config", "namespace": "kube-system"},
                   "data": {"cluster-id": "{{helmValues kube-system/cilium cluster.id}}", "ipam": "{{helmValues kube-system/cilium ipam.mode}}",
                            "routing-mode": "{{helmValues kube-system/cilium routingMode}}", "fixed": "x"}}),
        ];
        fill_chart_values(&mut objects);
        // The release's own values, as text; what it does not set is left out, not invented.
        assert_eq!(objects[1]["data"], json!({"cluster-id": "1", "ipam": "kubernetes", "fixed": "x"}));
    }

    #[test]
    fn workloads_expand() {
        let entries: Vec<Value> = serde_yaml_ng::from_str(WORKLOADS_YAML).unwrap();
        let objs: Vec<Value> = entries
            .iter()
            .flat_map(|e| expand_entry(e).unwrap())
            .collect();
        let cilium = objs
            .iter()
            .find(|o| str_at(o, "/metadata/name") == "cilium" && str_at(o, "/kind") == "DaemonSet")
            .unwrap();
        assert_eq!(
            cilium["spec"]["template"]["metadata"]["labels"]["k8s-app"],
            "cilium"
        );
        assert!(
            objs.iter()
                .any(|o| str_at(o, "/metadata/name") == "postgres-shared-3")
        );
    }
}
