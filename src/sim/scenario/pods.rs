//! Node and pod lifecycle in the simulated clusters: nodes back to Ready, pods
//! readied or held not ready the way the kubelet would report it (kwok only readies
//! Pending pods), operator-set pod labels, and the wait until every node, pod and
//! workload is ready.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, DynamicObject, GroupVersionKind, ListParams, Patch, PatchParams};
use kube::discovery::ApiResource;
use serde_json::{Value, json};

use super::client::ClusterSim;
use super::{now, str_at};
use crate::sim::kwok;

const POD_TIMEOUT: Duration = Duration::from_secs(240);

impl ClusterSim {
    /// Nodes back to Ready and managed by kwok.
    pub(super) async fn restore_nodes(&self) -> Result<()> {
        let nodes: Api<Node> = Api::all(self.client.clone());
        for n in nodes.list(&ListParams::default()).await? {
            let labels = n.metadata.labels.clone().unwrap_or_default();
            let annotations = n.metadata.annotations.clone().unwrap_or_default();
            if labels.contains_key(kwok::NOT_READY_LABEL)
                || !annotations.contains_key(kwok::NODE_ANNOTATION)
            {
                kwok::set_node_ready(&self.client, n.metadata.name.as_deref().unwrap_or_default())
                    .await?;
            }
        }
        Ok(())
    }

    /// Waits until every node is Ready, every pod on a Ready node is Running and
    /// Ready (re-readying pods an earlier fault left not ready), pods carry the
    /// role labels their operators set, and every workload applied is available.
    pub(super) async fn settle_pods(&self, objects: &[Value]) -> Result<usize> {
        let start = Instant::now();
        let mut last_report = 0;
        let nodes: Api<Node> = Api::all(self.client.clone());
        let pods: Api<Pod> = Api::all(self.client.clone());
        loop {
            let node_list = nodes.list(&ListParams::default()).await?;
            let ready_nodes: BTreeSet<String> = node_list
                .iter()
                .filter(|n| kwok::node_ready(n))
                .filter_map(|n| n.metadata.name.clone())
                .collect();
            let mut problems = vec![];
            if ready_nodes.len() != node_list.items.len() {
                problems.push(format!(
                    "{} of {} nodes Ready",
                    ready_nodes.len(),
                    node_list.items.len()
                ));
            }
            let mut ready = 0;
            for p in pods.list(&ListParams::default()).await? {
                if p.metadata.deletion_timestamp.is_some() {
                    continue;
                }
                let name = p.metadata.name.clone().unwrap_or_default();
                let ns = p.metadata.namespace.clone().unwrap_or_default();
                let phase = p
                    .status
                    .as_ref()
                    .and_then(|s| s.phase.clone())
                    .unwrap_or_default();
                let on_ready_node = p
                    .spec
                    .as_ref()
                    .and_then(|s| s.node_name.as_ref())
                    .is_some_and(|n| ready_nodes.contains(n));
                if phase == "Running" && on_ready_node && !pod_ready(&p) {
                    set_pod_ready(&self.client, &p, true, "", "").await?;
                }
                if phase == "Running" && pod_ready(&p) {
                    ready += 1;
                } else if phase != "Succeeded" {
                    problems.push(format!("pod {ns}/{name} {phase}"));
                }
                self.label_role(&p).await?;
            }
            for w in objects.iter().filter(|o| {
                matches!(
                    str_at(o, "/kind"),
                    "Deployment" | "DaemonSet" | "StatefulSet"
                )
            }) {
                if let Some(p) = self.workload_problem(w).await? {
                    problems.push(p);
                }
            }
            if problems.is_empty() {
                return Ok(ready);
            }
            let last = problems
                .iter()
                .take(8)
                .cloned()
                .collect::<Vec<_>>()
                .join("; ");
            // Progress on a long wait: what is still not settled, every 15 s.
            let waited = start.elapsed().as_secs();
            if waited >= 15 && waited / 15 != last_report / 15 {
                eprintln!("sim: {}: waiting {waited}s for {} thing(s): {last}", self.cluster, problems.len());
            }
            last_report = waited;
            if start.elapsed() > POD_TIMEOUT {
                bail!(
                    "{}: not settled after {}s: {last}",
                    self.cluster,
                    POD_TIMEOUT.as_secs()
                );
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// Operator-set pod labels: Dragonfly `role=master|replica` (§15 [DF3]).
    async fn label_role(&self, p: &Pod) -> Result<()> {
        let labels = p.metadata.labels.clone().unwrap_or_default();
        if labels.get("app.kubernetes.io/name").map(String::as_str) == Some("dragonfly")
            && !labels.contains_key("role")
        {
            let name = p.metadata.name.clone().unwrap_or_default();
            let role = if name.ends_with("-0") {
                "master"
            } else {
                "replica"
            };
            let api: Api<Pod> = Api::namespaced(
                self.client.clone(),
                p.metadata.namespace.as_deref().unwrap_or("default"),
            );
            api.patch(
                &name,
                &PatchParams::default(),
                &Patch::Merge(json!({"metadata": {"labels": {"role": role}}})),
            )
            .await?;
        }
        Ok(())
    }

    /// Why a Deployment, DaemonSet or StatefulSet is not yet available, if it is not.
    async fn workload_problem(&self, w: &Value) -> Result<Option<String>> {
        let kind = str_at(w, "/kind");
        let ns = w
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .unwrap_or("default");
        let name = str_at(w, "/metadata/name");
        let ar = ApiResource::from_gvk(&GroupVersionKind::gvk("apps", "v1", kind));
        let api: Api<DynamicObject> = Api::namespaced_with(self.client.clone(), ns, &ar);
        let Some(obj) = api.get_opt(name).await? else {
            return Ok(Some(format!("{kind} {ns}/{name} missing")));
        };
        let st = |p: &str| obj.data.pointer(p).and_then(Value::as_i64).unwrap_or(0);
        let observed = st("/status/observedGeneration") >= obj.metadata.generation.unwrap_or(0);
        let (have, want) = match kind {
            "DaemonSet" => (
                st("/status/numberReady"),
                st("/status/desiredNumberScheduled"),
            ),
            "Deployment" => (
                st("/status/availableReplicas"),
                obj.data
                    .pointer("/spec/replicas")
                    .and_then(Value::as_i64)
                    .unwrap_or(1),
            ),
            _ => (
                st("/status/readyReplicas"),
                obj.data
                    .pointer("/spec/replicas")
                    .and_then(Value::as_i64)
                    .unwrap_or(1),
            ),
        };
        Ok((!observed || want == 0 || have != want)
            .then(|| format!("{kind} {ns}/{name} {have}/{want} ready")))
    }
}

fn pod_ready(p: &Pod) -> bool {
    p.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// Sets a Running pod's Ready/ContainersReady conditions and container readiness
/// (what the kubelet reports; kwok only readies Pending pods, so this sticks).
pub(super) async fn set_pod_ready(
    client: &kube::Client,
    p: &Pod,
    ready: bool,
    reason: &str,
    message: &str,
) -> Result<()> {
    let api: Api<Pod> = Api::namespaced(
        client.clone(),
        p.metadata.namespace.as_deref().unwrap_or("default"),
    );
    let name = p.metadata.name.clone().unwrap_or_default();
    let status = serde_json::to_value(p.status.clone().unwrap_or_default())?;
    let flag = if ready { "True" } else { "False" };
    let mut conditions: Vec<Value> = status
        .get("conditions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for t in ["Ready", "ContainersReady"] {
        conditions.retain(|c| c["type"] != t);
        let mut c = json!({"type": t, "status": flag, "lastTransitionTime": now()});
        if !ready {
            c["reason"] = json!(reason);
            c["message"] = json!(message);
        }
        conditions.push(c);
    }
    let mut containers: Vec<Value> = status
        .get("containerStatuses")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for c in containers.iter_mut() {
        c["ready"] = json!(ready);
    }
    let patch = json!({"status": {"conditions": conditions, "containerStatuses": containers}});
    api.patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .with_context(|| format!("pod {name} readiness"))?;
    Ok(())
}
