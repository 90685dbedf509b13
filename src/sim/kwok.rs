//! kwok configuration and the simulated Node objects.
//!
//! One kwok process per cluster manages the Nodes annotated
//! `kwok.x-k8s.io/node=fake` (`--manage-nodes-with-annotation-selector`), renews
//! their Leases (`--node-lease-duration-seconds=40`) and plays the Stages of
//! `kwok/stages.yaml`: nodes become Ready, scheduled pods become Running with an IP
//! from their node's podCIDR, Job pods Succeed, deleted pods go away.
//!
//! Making a node NotReady in a way kwok keeps: [`set_node_not_ready`] (label
//! `node-not-ready.stage.kwok.x-k8s.io=true`); [`set_node_ready`] undoes it.
//! (Removing the kwok annotation does *not* make a node Unknown: kwok v0.8.0 keeps
//! renewing the Leases of nodes it has seen.)

use std::collections::BTreeMap;

use anyhow::Context;
use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

use super::FIELD_MANAGER;
use super::cluster::{ClusterSpec, NodeSpec};

/// The Stages given to kwok (`--config`).
pub const STAGES_YAML: &str = include_str!("kwok/stages.yaml");
/// Annotation that puts a Node under kwok's management.
pub const NODE_ANNOTATION: &str = "kwok.x-k8s.io/node";
/// Label that holds a Node NotReady (see `kwok/stages.yaml`).
pub const NOT_READY_LABEL: &str = "node-not-ready.stage.kwok.x-k8s.io";
/// Optional annotations read by the not-ready stage.
pub const NOT_READY_REASON_ANNOTATION: &str = "node-not-ready.stage.kwok.x-k8s.io/reason";
pub const NOT_READY_MESSAGE_ANNOTATION: &str = "node-not-ready.stage.kwok.x-k8s.io/message";

/// Capacity (= allocatable) of every simulated node.
pub const NODE_CAPACITY: [(&str, &str); 4] =
    [("cpu", "16"), ("memory", "64Gi"), ("pods", "250"), ("ephemeral-storage", "500Gi")];

/// The Node object of a simulated node (with its status: addresses, capacity).
pub fn node_manifest(c: &ClusterSpec, n: &NodeSpec) -> serde_json::Value {
    let capacity: BTreeMap<&str, &str> = NODE_CAPACITY.into_iter().collect();
    json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": n.name,
            "labels": {
                "kubernetes.io/hostname": n.name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "node-role.kubernetes.io/control-plane": "",
                "type": "kwok",
                "platform-acceptance.io/sim-cluster": c.name,
            },
            "annotations": {
                NODE_ANNOTATION: "fake",
                "node.alpha.kubernetes.io/ttl": "0",
            },
        },
        "spec": {},
        "status": node_status(c, n, &capacity),
    })
}

/// A node's status as the simulation sets it: addresses, capacity, and kwok's server as
/// its kubelet endpoint (where the API server sends exec, logs and port-forward).
fn node_status(c: &ClusterSpec, n: &NodeSpec, capacity: &BTreeMap<&str, &str>) -> serde_json::Value {
    json!({
        "daemonEndpoints": {"kubeletEndpoint": {"Port": c.ports.kwok}},
        "addresses": [
            {"type": "InternalIP", "address": n.internal_ip},
            {"type": "Hostname", "address": n.name},
        ],
        "capacity": capacity,
        "allocatable": capacity,
    })
}

/// Creates the cluster's Nodes (server-side apply; existing ones are left as they
/// are, apart from our labels and annotations) and sets the addresses where missing.
pub async fn ensure_nodes(client: &kube::Client, c: &ClusterSpec) -> anyhow::Result<()> {
    let api: Api<Node> = Api::all(client.clone());
    let pp = PatchParams::apply(FIELD_MANAGER).force();
    for n in &c.nodes {
        let existing = api.get_opt(&n.name).await?;
        if existing.is_none() {
            // Created with its status (addresses, capacity): kwok keeps both.
            api.patch(&n.name, &pp, &Patch::Apply(node_manifest(c, n)))
                .await
                .with_context(|| format!("create node {}", n.name))?;
        }
        let node = api.get(&n.name).await?;
        let status = node.status.as_ref();
        let has_ip = status.and_then(|s| s.addresses.as_ref()).is_some_and(|a| a.iter().any(|a| a.type_ == "InternalIP" && a.address == n.internal_ip));
        let kubelet_port = status.and_then(|s| s.daemon_endpoints.as_ref()).and_then(|d| d.kubelet_endpoint.as_ref()).map(|k| k.port);
        if !has_ip || kubelet_port != Some(i32::from(c.ports.kwok)) {
            let capacity: BTreeMap<&str, &str> = NODE_CAPACITY.into_iter().collect();
            let body = json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": n.name}, "status": node_status(c, n, &capacity)});
            api.patch_status(&n.name, &pp, &Patch::Apply(body))
                .await
                .with_context(|| format!("set addresses of node {}", n.name))?;
        }
    }
    Ok(())
}

/// Holds a node NotReady: within about 2 s kwok sets Ready=False with this reason
/// and message, and the node lifecycle controller taints it
/// `node.kubernetes.io/not-ready` (NoSchedule, then NoExecute: pods without a
/// toleration are evicted after their 300 s default toleration). Stays so until
/// [`set_node_ready`]; kwok keeps renewing the node's Lease.
pub async fn set_node_not_ready(client: &kube::Client, node: &str, reason: &str, message: &str) -> anyhow::Result<()> {
    let api: Api<Node> = Api::all(client.clone());
    let patch = json!({"metadata": {
        "labels": {NOT_READY_LABEL: "true"},
        "annotations": {NOT_READY_REASON_ANNOTATION: reason, NOT_READY_MESSAGE_ANNOTATION: message},
    }});
    api.patch(node, &PatchParams::default(), &Patch::Merge(patch))
        .await
        .with_context(|| format!("mark node {node} NotReady"))?;
    Ok(())
}

/// Undoes [`set_node_not_ready`]: kwok makes the node Ready again (within about 2 s).
pub async fn set_node_ready(client: &kube::Client, node: &str) -> anyhow::Result<()> {
    let api: Api<Node> = Api::all(client.clone());
    let patch = json!({"metadata": {
        "labels": {NOT_READY_LABEL: null},
        "annotations": {NOT_READY_REASON_ANNOTATION: null, NOT_READY_MESSAGE_ANNOTATION: null, NODE_ANNOTATION: "fake"},
    }});
    api.patch(node, &PatchParams::default(), &Patch::Merge(patch))
        .await
        .with_context(|| format!("mark node {node} Ready"))?;
    Ok(())
}

/// True if the node's Ready condition is True and it has a podCIDR.
pub fn node_ready(node: &Node) -> bool {
    let ready = node
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
    let cidr = node.spec.as_ref().and_then(|s| s.pod_cidr.as_ref()).is_some_and(|c| !c.is_empty());
    ready && cidr
}
