//! EPIC-2 cluster and data-plane checks: Cilium and its nodes, BGP, LB IPAM,
//! ClusterMesh, External DNS and Spegel. Names and namespaces come from the cluster's
//! rendered manifests when a repository is given (HelmRelease name/namespace, values),
//! else from the upstream chart defaults in docs/reference/components.md.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment};
use k8s_openapi::api::core::v1::{Secret, Service};
use kube::api::{Api, ListParams};
use serde_json::Value;

use crate::check::{CheckResult, Ctx, Finding, Outcome};
use crate::checks::kit::prelude::*;
use crate::cluster::objects::{self, Found, Kind};
use crate::cluster::{api_error, nodes};
use crate::repo::scalar_text;

const CILIUM_NODE: Kind = Kind::cluster_scoped("cilium.io", &["v2"], "CiliumNode");
const BGP_NODE_CONFIG: Kind = Kind::cluster_scoped("cilium.io", &["v2", "v2alpha1"], "CiliumBGPNodeConfig");
const BGP_PEERING_POLICY: Kind = Kind::cluster_scoped("cilium.io", &["v2alpha1"], "CiliumBGPPeeringPolicy");
const LB_POOL: Kind = Kind::cluster_scoped("cilium.io", &["v2", "v2alpha1"], "CiliumLoadBalancerIPPool");

fn client(ctx: &Ctx) -> CheckResult<&kube::Client> {
    ctx.kube()
}

/// A list that is empty when the kind is not served (CRD not installed).
async fn list_if_served(client: &kube::Client, kind: &Kind, ns: Option<&str>) -> CheckResult<Vec<Found>> {
    match objects::list(client, kind, ns, None).await {
        Ok(l) => Ok(l),
        Err(o) if o.verdict() == crate::check::Verdict::Fail => Ok(vec![]),
        Err(o) => Err(o),
    }
}

/// Whether a Deployment/DaemonSet exists (for optional components).
async fn workload_exists(client: &kube::Client, kind: &str, ns: &str, name: &str) -> CheckResult<bool> {
    let found = match kind {
        "DaemonSet" => Api::<DaemonSet>::namespaced(client.clone(), ns).get_opt(name).await.map(|o| o.is_some()),
        _ => Api::<Deployment>::namespaced(client.clone(), ns).get_opt(name).await.map(|o| o.is_some()),
    };
    found.map_err(|e| api_error(&format!("get {kind} {ns}/{name}"), e))
}

fn service_ips(svc: &Service) -> Vec<String> {
    svc.status
        .as_ref()
        .and_then(|s| s.load_balancer.as_ref())
        .and_then(|lb| lb.ingress.as_ref())
        .map(|i| i.iter().filter_map(|x| x.ip.clone().or_else(|| x.hostname.clone())).collect())
        .unwrap_or_default()
}

fn strip_prefix_len(addr: &str) -> &str {
    addr.split('/').next().unwrap_or(addr).trim()
}

// ---------------------------------------------------------------------------
// 2.1.7 / 2.2.8 Cilium and nodes Ready
// ---------------------------------------------------------------------------

/// The Cilium agent DaemonSet runs on every node and every node reports Ready.
pub(super) async fn cilium_ready_and_nodes_ready(ctx: Ctx) -> CheckResult<Outcome> {
    let client = client(&ctx)?;
    let ds: Api<DaemonSet> = Api::namespaced(client.clone(), "kube-system");
    let cilium = match ds.get_opt("cilium").await.map_err(|e| api_error("get DaemonSet kube-system/cilium", e))? {
        Some(d) => {
            let s = d.status.unwrap_or_default();
            if s.desired_number_scheduled > 0 && s.number_ready == s.desired_number_scheduled {
                Outcome::pass(format!("DaemonSet kube-system/cilium {}/{} ready", s.number_ready, s.desired_number_scheduled))
            } else {
                Outcome::fail(
                    format!("DaemonSet kube-system/cilium (cluster {})", ctx.cluster),
                    "numberReady = desiredNumberScheduled (> 0)",
                    format!("{}/{} ready", s.number_ready, s.desired_number_scheduled),
                )
            }
        }
        None => Outcome::fail(format!("DaemonSet kube-system/cilium (cluster {})", ctx.cluster), "present", "not found"),
    };
    let ready = nodes::expect_all_ready(&ctx.cluster, &nodes::list(client, &ctx.cluster).await?);
    Ok(Outcome::all([cilium, ready]))
}

// ---------------------------------------------------------------------------
// 2.1.8 Cilium status (what `cilium status --wait` waits for)
// ---------------------------------------------------------------------------

/// The components `cilium status` summarises: agent DaemonSet and operator Deployment
/// always; Envoy DaemonSet, Hubble Relay/UI and clustermesh-apiserver when the
/// release enables them (without a repository: when present); and one CiliumNode per
/// Node (each agent registered).
pub(super) async fn cilium_status_healthy(ctx: Ctx) -> CheckResult<Outcome> {
    let client = client(&ctx)?;
    let rel = Release::rendered_or_default(&ctx, "cilium", "kube-system");
    let ns = rel.namespace.clone();
    // (kind, name, enabled: Some(true) required / Some(false) disabled / None unknown)
    let flag = |p: &str| rel.value(p).map(|v| v == "true");
    let components: [(&str, &str, Option<bool>); 6] = [
        ("DaemonSet", "cilium", Some(true)),
        ("Deployment", "cilium-operator", Some(true)),
        ("DaemonSet", "cilium-envoy", flag("/envoy/enabled")),
        ("Deployment", "hubble-relay", flag("/hubble/relay/enabled").map(|r| r && flag("/hubble/enabled") != Some(false))),
        ("Deployment", "hubble-ui", flag("/hubble/ui/enabled").map(|r| r && flag("/hubble/enabled") != Some(false))),
        ("Deployment", "clustermesh-apiserver", flag("/clustermesh/useAPIServer")),
    ];
    let mut outcomes = vec![];
    let mut disabled = vec![];
    for (kind, name, enabled) in components {
        let check = match enabled {
            Some(true) => true,
            Some(false) => false,
            None => workload_exists(client, kind, &ns, name).await?,
        };
        if check {
            outcomes.push(objects::expect_workload_ready(client, &ctx.cluster, kind, &ns, name).await);
        } else {
            disabled.push(name);
        }
    }
    // Every node has a CiliumNode (the agent registered itself there).
    let node_list = nodes::list(client, &ctx.cluster).await?;
    let cilium_nodes = objects::list(client, &CILIUM_NODE, None, None).await?;
    let names: BTreeSet<&str> = cilium_nodes.iter().map(Found::name).collect();
    let missing: Vec<Finding> = node_list
        .iter()
        .filter(|n| !names.contains(n.name.as_str()))
        .map(|n| Finding::new(format!("CiliumNode {} (cluster {})", n.name, ctx.cluster), format!("present for Node {} (agent registered)", n.name), "not found"))
        .collect();
    let version = cilium_nodes.first().map(|n| n.api_version.clone()).unwrap_or_else(|| "cilium.io/v2".into());
    outcomes.push(Outcome::from_findings(missing, format!("{} CiliumNodes ({version}) for {} Nodes", cilium_nodes.len(), node_list.len())));
    Ok(match Outcome::all(outcomes) {
        Outcome::Pass { mut evidence } => {
            evidence.push(format!("components from {}; disabled: {}", rel.source, if disabled.is_empty() { "none".into() } else { disabled.join(", ") }));
            Outcome::Pass { evidence }
        }
        o => o,
    })
}

// ---------------------------------------------------------------------------
// 2.1.9 BGP peering
// ---------------------------------------------------------------------------

/// Every node's BGPv2 CiliumBGPNodeConfig reports the session with the upstream router
/// (CILIUM_BGP_PEER_ADDRESS when a repository is given) `established`
/// (§2.3 [C5]). BGPv1 (CiliumBGPPeeringPolicy) publishes no status: then every Cilium
/// agent is asked (`cilium-dbg bgp peers`), or, when none can be, the outcome says what
/// the policies declare (see [`super::bgp`]).
pub(super) async fn bgp_peering_established(ctx: Ctx) -> CheckResult<Outcome> {
    let client = client(&ctx)?;
    let peer = variable(&ctx, "CILIUM_BGP_PEER_ADDRESS").map(|a| strip_prefix_len(&a).to_string());
    let peer_asn = variable(&ctx, "CILIUM_BGP_PEER_ASN");
    let configs = list_if_served(client, &BGP_NODE_CONFIG, None).await?;
    if configs.is_empty() {
        let policies = list_if_served(client, &BGP_PEERING_POLICY, None).await?;
        return Err(match (policies.is_empty(), agent_reports(client).await) {
            (false, Ok(reports)) => super::bgp::judge_agent_sessions(&reports, peer.as_deref(), &ctx.cluster),
            (false, Err(why)) => super::bgp::judge_bgp_v1(&policies, &BGP_PEERING_POLICY, peer.as_deref(), &ctx.cluster, &why),
            (true, _) => Outcome::fail(
                format!("cluster {}: BGP control plane", ctx.cluster),
                "a CiliumBGPNodeConfig per node (BGPv2) or a CiliumBGPPeeringPolicy (BGPv1)",
                "neither found",
            ),
        });
    }
    let node_list = nodes::list(client, &ctx.cluster).await?;
    let want = match (&peer, &peer_asn) {
        (Some(p), Some(a)) => format!("upstream router {p} (ASN {a})"),
        (Some(p), None) => format!("upstream router {p}"),
        _ => "a peer".to_string(),
    };
    let mut findings = vec![];
    let mut evidence = vec![];
    for n in &node_list {
        let Some(cfg) = configs.iter().find(|c| c.name() == n.name) else {
            findings.push(Finding::new(format!("CiliumBGPNodeConfig {} (cluster {})", n.name, ctx.cluster), format!("present for Node {} with a session to {want}", n.name), "not found"));
            continue;
        };
        let object = cfg.describe(&BGP_NODE_CONFIG);
        let peers: Vec<Value> = cfg
            .get("/status/bgpInstances")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .flat_map(|i| i.get("peers").and_then(Value::as_array).cloned().unwrap_or_default())
            .collect();
        let addr = |p: &Value| p.get("peerAddress").map(scalar_text).map(|a| strip_prefix_len(&a).to_string()).unwrap_or_default();
        let matching: Vec<&Value> = peers.iter().filter(|p| peer.as_ref().is_none_or(|want| addr(p) == *want)).collect();
        if matching.is_empty() {
            let seen: Vec<String> = peers.iter().map(addr).collect();
            findings.push(Finding::new(format!("{object} status.bgpInstances[].peers"), format!("a session with {want}"), if seen.is_empty() { "no peers in status".to_string() } else { format!("peers {seen:?}") }));
            continue;
        }
        for p in matching {
            let state = p.get("peeringState").map(scalar_text).unwrap_or_else(|| "not reported".into());
            let name = p.get("name").map(scalar_text).unwrap_or_default();
            if state != "established" {
                findings.push(Finding::new(format!("{object} status peer {name} ({})", addr(p)), "peeringState established", format!("peeringState {state}")));
            } else {
                evidence.push(format!("{}: {} established", n.name, addr(p)));
            }
        }
    }
    Ok(Outcome::from_findings(findings, format!("cluster {}: BGP sessions with {want}: {}", ctx.cluster, evidence.join(", "))))
}

/// The command that prints a Cilium agent's BGP peers, and where it runs (the chart's
/// DaemonSet in `kube-system`, pods labelled `k8s-app=cilium`, container `cilium-agent`).
const AGENT_PEERS: [&str; 5] = ["cilium-dbg", "bgp", "peers", "-o", "json"];
pub(super) const AGENT_PEERS_EXEC: &str = "kube-system pods k8s-app=cilium (container cilium-agent): cilium-dbg bgp peers -o json";

/// Every running Cilium agent's BGP peers, or why they could not be read.
async fn agent_reports(client: &kube::Client) -> Result<Vec<super::bgp::AgentReport>, String> {
    use k8s_openapi::api::core::v1::Pod;
    let pods = Api::<Pod>::namespaced(client.clone(), "kube-system")
        .list(&ListParams::default().labels("k8s-app=cilium"))
        .await
        .map_err(|e| api_error("list Cilium agent pods", e).summary())?;
    let running: Vec<Pod> = pods.items.into_iter().filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")).collect();
    if running.is_empty() {
        return Err("no running Cilium agent pod (kube-system, k8s-app=cilium)".into());
    }
    let mut reports = vec![];
    for pod in running {
        let name = pod.metadata.name.clone().unwrap_or_default();
        let node = pod.spec.as_ref().and_then(|s| s.node_name.clone()).unwrap_or_default();
        let out = crate::cluster::exec::run(client, "kube-system", &name, "cilium-agent", &AGENT_PEERS, std::time::Duration::from_secs(15)).await.map_err(|o| o.summary())?;
        if let Some(failure) = out.failure {
            return Err(format!("{name}: {failure}: {}", out.stderr.lines().next().unwrap_or("").trim()));
        }
        let peers = super::bgp::parse_agent_peers(&out.stdout).map_err(|e| format!("{name}: {e}"))?;
        reports.push((node, name, peers));
    }
    Ok(reports)
}

// ---------------------------------------------------------------------------
// 2.1.10 LB IPAM pool
// ---------------------------------------------------------------------------

/// Address ranges of a CiliumLoadBalancerIPPool, parsed as for the repository layer.
fn pool_ranges(pool: &Found) -> Vec<Result<(Ipv4Addr, Ipv4Addr), String>> {
    super::variables::pool_blocks(&pool.object.data)
}

/// The pool for the criterion's range exists, is enabled and not in conflict, and every
/// LoadBalancer Service of the cluster (Cilium's LB class) got an address inside it.
pub(super) async fn lb_pool_working(ctx: Ctx, criterion: &'static str) -> CheckResult<Outcome> {
    let range = crate::net::range_in_text(criterion).ok_or_else(|| Outcome::error(format!("criterion {criterion:?} names no address range")))?;
    let client = client(&ctx)?;
    let pools = objects::list(client, &LB_POOL, None, None).await?;
    let mut findings = vec![];
    let mut evidence = vec![];
    let ours: Vec<&Found> = pools
        .iter()
        .filter(|p| {
            let r = pool_ranges(p);
            !r.is_empty() && r.iter().all(|b| matches!(b, Ok((s, e)) if range.contains(*s) && range.contains(*e)))
        })
        .collect();
    if ours.is_empty() {
        let seen: Vec<String> = pools.iter().map(|p| format!("{} {:?}", p.name(), pool_ranges(p).into_iter().map(|b| match b {
                Ok((s, e)) => format!("{s}-{e}"),
                Err(raw) => raw,
            }).collect::<Vec<_>>())).collect();
        return Err(Outcome::fail(
            format!("CiliumLoadBalancerIPPool (cluster {})", ctx.cluster),
            format!("a pool with blocks inside {range}"),
            if seen.is_empty() { "no pools".to_string() } else { seen.join("; ") },
        ));
    }
    for pool in &ours {
        let object = format!("{} (cluster {})", pool.describe(&LB_POOL), ctx.cluster);
        if pool.get("/spec/disabled").and_then(Value::as_bool) == Some(true) {
            findings.push(Finding::new(object.clone(), "spec.disabled false", "true"));
        }
        // §2.3 [C1][C2]: cilium.io/PoolConflict (older io.cilium/conflict) must be False.
        let conflict = pool.condition("cilium.io/PoolConflict").or_else(|| pool.condition("io.cilium/conflict"));
        match conflict {
            Some(c) if c.status == "True" => findings.push(Finding::new(object.clone(), "cilium.io/PoolConflict=False", format!("True ({}: {})", c.reason, c.message))),
            None => findings.push(Finding::new(object.clone(), "condition cilium.io/PoolConflict=False (written by the LB-IPAM operator)", "no such condition")),
            _ => {}
        }
        let available = pool.condition("cilium.io/IPsAvailable").map(|c| c.message).unwrap_or_else(|| "?".into());
        evidence.push(format!("{} not conflicting, {available} IPs available", pool.describe(&LB_POOL)));
    }
    let services = Api::<Service>::all(client.clone()).list(&ListParams::default()).await.map_err(|e| api_error("list Services", e))?.items;
    let mut allocated = vec![];
    for svc in services.iter().filter(|s| s.spec.as_ref().and_then(|s| s.type_.as_deref()) == Some("LoadBalancer")) {
        let class = svc.spec.as_ref().and_then(|s| s.load_balancer_class.clone());
        if class.as_deref().is_some_and(|c| !c.starts_with("io.cilium/")) {
            continue;
        }
        let object = format!("Service {}/{} (cluster {})", svc.metadata.namespace.as_deref().unwrap_or(""), svc.metadata.name.as_deref().unwrap_or(""), ctx.cluster);
        let ips = service_ips(svc);
        if ips.is_empty() {
            findings.push(Finding::new(object, format!("status.loadBalancer.ingress IP from {range}"), "pending (no address)"));
            continue;
        }
        for ip in ips {
            match ip.parse::<Ipv4Addr>() {
                Ok(a) if range.contains(a) => allocated.push(format!("{}/{}={ip}", svc.metadata.namespace.as_deref().unwrap_or(""), svc.metadata.name.as_deref().unwrap_or(""))),
                _ => findings.push(Finding::new(object.clone(), format!("status.loadBalancer.ingress IP inside {range}"), ip)),
            }
        }
    }
    if allocated.is_empty() && findings.is_empty() {
        findings.push(Finding::new(format!("LoadBalancer Services (cluster {})", ctx.cluster), format!("at least one with an address from {range}"), "none"));
    }
    evidence.push(format!("LoadBalancer Services with addresses in {range}: {}", allocated.join(", ")));
    Ok(Outcome::from_findings(findings, evidence.join("; ")))
}

// ---------------------------------------------------------------------------
// 2.3 ClusterMesh
// ---------------------------------------------------------------------------

/// clustermesh-apiserver Deployment ready and its Service has the cluster's
/// CLUSTERMESH_IP (any address without a repository) (§2.4 status signal (a)).
pub(super) async fn clustermesh_enabled(ctx: Ctx) -> CheckResult<Outcome> {
    let client = client(&ctx)?;
    let rel = Release::rendered_or_default(&ctx, "cilium", "kube-system");
    if rel.value("/clustermesh/useAPIServer").as_deref() == Some("false") {
        return Err(Outcome::fail(format!("{} values.clustermesh.useAPIServer", rel.source), "true", "false"));
    }
    let deployment = objects::expect_workload_ready(client, &ctx.cluster, "Deployment", &rel.namespace, "clustermesh-apiserver").await;
    let service = match clustermesh_address(client, &rel.namespace).await {
        Err(o) => o,
        Ok((svc_type, ips)) => {
            let object = format!("Service {}/clustermesh-apiserver (cluster {})", rel.namespace, ctx.cluster);
            match variable(&ctx, "CLUSTERMESH_IP") {
                Some(want) if !ips.contains(&want) => Outcome::fail(object, format!("status.loadBalancer.ingress {want} (CLUSTERMESH_IP)"), if ips.is_empty() { "no address".to_string() } else { ips.join(", ") }),
                _ if ips.is_empty() => Outcome::fail(object, "an address (status.loadBalancer.ingress)", format!("type {svc_type}, no address")),
                _ => Outcome::pass(format!("{object}: {svc_type} {}:2379", ips.join(", "))),
            }
        }
    };
    Ok(Outcome::all([deployment, service]))
}

/// Type and ingress addresses of the clustermesh-apiserver Service.
async fn clustermesh_address(client: &kube::Client, ns: &str) -> CheckResult<(String, Vec<String>)> {
    match Api::<Service>::namespaced(client.clone(), ns).get_opt("clustermesh-apiserver").await {
        Ok(Some(svc)) => Ok((svc.spec.as_ref().and_then(|s| s.type_.clone()).unwrap_or_default(), service_ips(&svc))),
        Ok(None) => Err(Outcome::fail(format!("Service {ns}/clustermesh-apiserver"), "present", "not found")),
        Err(e) => Err(api_error(&format!("get Service {ns}/clustermesh-apiserver"), e)),
    }
}

/// Secret cilium-clustermesh names every peer cluster (what `cilium clustermesh connect`
/// writes), with its client certificate, and its endpoint is the address the peer's
/// clustermesh-apiserver Service really has (read from the peer cluster).
pub(super) async fn clustermesh_connected(ctx: Ctx) -> CheckResult<Outcome> {
    let client = client(&ctx)?;
    let target = ctx.target.as_ref().ok_or_else(|| Outcome::skip("no cluster target"))?;
    let rel = Release::rendered_or_default(&ctx, "cilium", "kube-system");
    let peers: Vec<String> = match variable(&ctx, "CLUSTERMESH_REMOTE_CLUSTER") {
        Some(p) => p.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect(),
        None => target.peers.keys().filter(|c| **c != ctx.cluster).cloned().collect(),
    };
    if peers.is_empty() {
        return Err(Outcome::fail(format!("cluster {}", ctx.cluster), "a peer cluster to connect to", "none known"));
    }
    let object = format!("Secret {}/cilium-clustermesh (cluster {})", rel.namespace, ctx.cluster);
    let secret = Api::<Secret>::namespaced(client.clone(), &rel.namespace)
        .get_opt("cilium-clustermesh")
        .await
        .map_err(|e| api_error(&format!("get {object}"), e))?
        .ok_or_else(|| Outcome::fail(object.clone(), format!("present, listing {}", peers.join(", ")), "not found"))?;
    let data = secret.data.unwrap_or_default();
    let mut findings = vec![];
    let mut evidence = vec![];
    for peer in &peers {
        let Some(config) = data.get(peer) else {
            let keys: Vec<&String> = data.keys().filter(|k| !k.contains('.')).collect();
            findings.push(Finding::new(object.clone(), format!("key {peer:?} (etcd config of the peer)"), format!("cluster keys {keys:?}")));
            continue;
        };
        for suffix in ["etcd-client-ca.crt", "etcd-client.crt", "etcd-client.key"] {
            if data.get(&format!("{peer}.{suffix}")).is_none_or(|v| v.0.is_empty()) {
                findings.push(Finding::new(object.clone(), format!("key {peer}.{suffix} (non-empty)"), "missing or empty"));
            }
        }
        // The config is YAML with `endpoints: [https://host:port]`; only the endpoint is shown.
        let text = String::from_utf8_lossy(&config.0).to_string();
        let endpoints: Vec<String> = serde_yaml_ng::from_str::<Value>(&text)
            .ok()
            .and_then(|v| v.get("endpoints").and_then(Value::as_array).cloned())
            .unwrap_or_default()
            .iter()
            .map(scalar_text)
            .collect();
        let hosts: Vec<String> = endpoints
            .iter()
            .filter_map(|e| e.split("://").nth(1).map(|r| r.split('/').next().unwrap_or(r).to_string()))
            .collect();
        if hosts.is_empty() {
            findings.push(Finding::new(format!("{object} key {peer}"), "endpoints: [https://<peer clustermesh-apiserver>:2379]", "no endpoints"));
            continue;
        }
        // The peer's real address, from the peer cluster's API.
        match target.peers.get(peer) {
            Some(peer_client) => match clustermesh_address(peer_client, &rel.namespace).await {
                Ok((_, ips)) => {
                    let ok = hosts.iter().any(|h| ips.iter().any(|ip| h.rsplit_once(':').map(|(a, _)| a).unwrap_or(h) == ip));
                    if ok {
                        evidence.push(format!("{peer} via {}", hosts.join(", ")));
                    } else {
                        findings.push(Finding::new(
                            format!("{object} key {peer} endpoints"),
                            format!("the address of Service {}/clustermesh-apiserver on cluster {peer} ({})", rel.namespace, if ips.is_empty() { "none".into() } else { ips.join(", ") }),
                            hosts.join(", "),
                        ));
                    }
                }
                Err(Outcome::Fail { findings: f }) => findings.extend(f.into_iter().map(|f| Finding::new(format!("{} (cluster {peer})", f.object), f.expected, f.observed))),
                Err(o) => return Err(o),
            },
            None => evidence.push(format!("{peer} via {} (peer cluster not reachable from this run; address not compared)", hosts.join(", "))),
        }
    }
    Ok(Outcome::from_findings(findings, format!("{object} connects to {}", evidence.join("; "))))
}

// ---------------------------------------------------------------------------
// 2.4 / 2.5 shared-base components
// ---------------------------------------------------------------------------

/// external-dns: the HelmRelease reconciled and its Deployment ready on this cluster.
pub(super) async fn external_dns_deployed(ctx: Ctx) -> CheckResult<Outcome> {
    let client = client(&ctx)?;
    let rel = Release::rendered_or_default(&ctx, "external-dns", "networking");
    let hr = helmrelease_ready(client, &ctx.cluster, &rel.hr_namespace, &rel.hr_name).await;
    let workload = objects::expect_workload_ready(client, &ctx.cluster, "Deployment", &rel.namespace, &rel.fullname("external-dns")).await;
    Ok(Outcome::all([hr, workload]))
}

/// Spegel: the HelmRelease reconciled and its DaemonSet ready on every node of this cluster.
pub(super) async fn spegel_deployed(ctx: Ctx) -> CheckResult<Outcome> {
    let client = client(&ctx)?;
    let rel = Release::rendered_or_default(&ctx, "spegel", "kube-system");
    let hr = helmrelease_ready(client, &ctx.cluster, &rel.hr_namespace, &rel.hr_name).await;
    let name = rel.fullname("spegel");
    let ds = objects::expect_workload_ready(client, &ctx.cluster, "DaemonSet", &rel.namespace, &name).await;
    let on_every_node = match (nodes::list(client, &ctx.cluster).await, Api::<DaemonSet>::namespaced(client.clone(), &rel.namespace).get_opt(&name).await) {
        (Ok(n), Ok(Some(d))) => {
            let desired = d.status.map(|s| s.desired_number_scheduled).unwrap_or(0);
            if desired as usize == n.len() {
                Outcome::pass(format!("DaemonSet {}/{name} scheduled on all {} nodes", rel.namespace, n.len()))
            } else {
                Outcome::fail(format!("DaemonSet {}/{name} (cluster {})", rel.namespace, ctx.cluster), format!("desiredNumberScheduled {} (every node)", n.len()), desired.to_string())
            }
        }
        (Err(o), _) => o,
        (_, Ok(None)) => Outcome::pass("DaemonSet missing (reported above)"),
        (_, Err(e)) => api_error(&format!("get DaemonSet {}/{name}", rel.namespace), e),
    };
    Ok(Outcome::all([hr, ds, on_every_node]))
}

