//! `sim status`: every control-plane component and add-on (cert-manager, Velero, CoreDNS, external-secrets, Flux) of
//! each cluster (pid, version, ports, memory, health probe), every other registered
//! process, each cluster's nodes and the stand-ins the scenario put in place of
//! what cannot run offline (ACME ClusterIssuers replaced by CA issuers);
//! [`SimStatus`] and its table. Reading only: it changes nothing.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, ListParams};

use super::cluster::{ADDONS, COMPONENTS, ClusterSpec, cluster_specs};
use super::components::{self, Probe};
use super::process::{ProcessRecord, lookup, registered_processes};
use super::{SimConfig, client, kubeconfig_path, kwok};

/// Health of one component.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    Healthy,
    Unhealthy(String),
    /// Not probed (not running, or a process without a health endpoint).
    Unknown,
}

/// One process of the simulation.
#[derive(Debug, Clone)]
pub struct ComponentStatus {
    pub scope: String,
    pub name: String,
    pub pid: Option<u32>,
    pub alive: bool,
    pub ports: Vec<u16>,
    pub health: Health,
    pub rss_kib: Option<u64>,
    pub log: Option<PathBuf>,
    /// Pinned version of the binary (from its build stamp), if known.
    pub version: Option<String>,
}

/// One simulated node.
#[derive(Debug, Clone)]
pub struct NodeStatus {
    pub name: String,
    pub ready: bool,
    pub pod_cidr: Option<String>,
    pub internal_ip: Option<String>,
}

/// One simulated cluster.
#[derive(Debug, Clone)]
pub struct ClusterStatus {
    pub name: String,
    pub api_url: String,
    pub pod_cidr: String,
    pub service_cidr: String,
    pub components: Vec<ComponentStatus>,
    pub nodes: Vec<NodeStatus>,
    pub nodes_ready: usize,
    /// Nodes the simulation defines (3).
    pub nodes_expected: usize,
    /// Why the nodes could not be listed, if so.
    pub nodes_error: Option<String>,
    /// Objects the scenario replaced by a stand-in, with the reason (annotation
    /// [`crate::sim::scenario::STAND_IN_ANNOTATION`]).
    pub stand_ins: Vec<String>,
}

/// What `status` (and `up`) report.
#[derive(Debug, Clone)]
pub struct SimStatus {
    pub state_dir: PathBuf,
    pub kubeconfig: PathBuf,
    pub clusters: Vec<ClusterStatus>,
    /// Processes registered by other modules (data services), scope `shared` or a cluster.
    pub other_processes: Vec<ComponentStatus>,
    /// The simulation's network namespace ([`super::network`]): `net:[inode]` and the site
    /// networks inside, when it exists.
    pub network: Option<String>,
    /// Set by [`super::up`]: time from its start until both clusters were Ready.
    pub ready_after: Option<Duration>,
    /// Set by [`super::up`]: clusters whose etcd started from a cached template with the
    /// nodes and CRDs installed ([`super::template`]).
    pub from_template: Vec<String>,
}

impl SimStatus {
    /// Every control-plane component alive and healthy and every node Ready.
    pub fn is_healthy(&self) -> bool {
        !self.clusters.is_empty()
            && self.network.is_some()
            && self.clusters.iter().all(|c| {
                c.components.iter().all(|p| p.alive && p.health == Health::Healthy) && c.nodes_ready == c.nodes_expected
            })
    }
    /// Sum of VmRSS over every live process (control plane and others), KiB.
    pub fn total_rss_kib(&self) -> u64 {
        self.all_processes().filter_map(|p| p.rss_kib).sum()
    }
    pub fn all_processes(&self) -> impl Iterator<Item = &ComponentStatus> {
        self.clusters.iter().flat_map(|c| c.components.iter()).chain(self.other_processes.iter())
    }
    pub fn cluster(&self, name: &str) -> Option<&ClusterStatus> {
        self.clusters.iter().find(|c| c.name == name)
    }
}

impl fmt::Display for SimStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "state:      {}", self.state_dir.display())?;
        writeln!(f, "kubeconfig: {}", self.kubeconfig.display())?;
        writeln!(f, "network:    {}", self.network.as_deref().unwrap_or("NO NAMESPACE (run `platform-acceptance sim up`)"))?;
        let row = |f: &mut fmt::Formatter<'_>, p: &ComponentStatus, label: &str| {
            let pid = p.pid.map(|p| p.to_string()).unwrap_or_else(|| "-".into());
            let ports = if p.ports.is_empty() {
                "-".into()
            } else {
                p.ports.iter().map(u16::to_string).collect::<Vec<_>>().join(",")
            };
            let health = match (&p.health, p.alive, p.pid) {
                (_, false, None) => "not started".to_string(),
                (_, false, Some(_)) => "NOT RUNNING".to_string(),
                (Health::Healthy, _, _) => "healthy".to_string(),
                (Health::Unhealthy(why), _, _) => format!("UNHEALTHY: {why}"),
                (Health::Unknown, _, _) => "running".to_string(),
            };
            let rss = p.rss_kib.map(|k| format!("{} MiB", k / 1024)).unwrap_or_else(|| "-".into());
            let version = p.version.as_deref().unwrap_or("-");
            let version = if version.len() > 12 { &version[..12] } else { version };
            writeln!(f, "  {label:<26} {pid:>8}  {version:<12} {ports:<12} {rss:>8}  {health}")
        };
        for c in &self.clusters {
            writeln!(f)?;
            writeln!(
                f,
                "cluster {}  {}  pods {}  services {}  nodes Ready {}/{}",
                c.name, c.api_url, c.pod_cidr, c.service_cidr, c.nodes_ready, c.nodes_expected
            )?;
            writeln!(f, "  {:<26} {:>8}  {:<12} {:<12} {:>8}  HEALTH", "COMPONENT", "PID", "VERSION", "PORTS", "RSS")?;
            for p in &c.components {
                row(f, p, &p.name)?;
            }
            for s in &c.stand_ins {
                writeln!(f, "  stand-in: {s}")?;
            }
            if let Some(e) = &c.nodes_error {
                writeln!(f, "  nodes: {e}")?;
            }
            for n in &c.nodes {
                writeln!(
                    f,
                    "  node {:<10} {:<12} podCIDR {:<16} {}",
                    n.name,
                    n.internal_ip.as_deref().unwrap_or("-"),
                    n.pod_cidr.as_deref().unwrap_or("-"),
                    if n.ready { "Ready" } else { "NotReady" }
                )?;
            }
        }
        if !self.other_processes.is_empty() {
            writeln!(f)?;
            writeln!(f, "other registered processes")?;
            for p in &self.other_processes {
                row(f, p, &format!("{}/{}", p.scope, p.name))?;
            }
        }
        writeln!(f)?;
        write!(f, "total RSS of running sim processes: {} MiB", self.total_rss_kib() / 1024)?;
        if let Some(d) = self.ready_after {
            write!(f, "\nready after {:.1}s", d.as_secs_f64())?;
        }
        Ok(())
    }
}

fn network_line(cfg: &SimConfig) -> Option<String> {
    let path = super::network::namespace_path(&cfg.state_dir)?;
    let ns = std::fs::read_link(&path).ok()?.display().to_string();
    let rec = super::network::running(&cfg.state_dir)?;
    let args = &rec.command;
    let values = |flag: &str| -> Vec<&str> {
        args.windows(2).filter(|w| w[0] == flag).map(|w| w[1].as_str()).collect()
    };
    Some(format!(
        "namespace {ns} held by pid {}; site networks {} inside; {} forwards from the host's 127.0.0.1; nothing else reachable",
        rec.pid,
        values("--network").join(", "),
        values("--forward").len()
    ))
}

/// Reports every component, process and node; changes nothing.
pub async fn status(cfg: &SimConfig) -> anyhow::Result<SimStatus> {
    let specs = cluster_specs(cfg)?;
    Ok(collect_status(cfg, &specs).await)
}

pub(super) async fn collect_status(cfg: &SimConfig, specs: &[ClusterSpec]) -> SimStatus {
    let probe = Probe::new(cfg).ok();
    let clusters = futures::future::join_all(specs.iter().map(|c| cluster_status(cfg, c, probe.as_ref()))).await;
    let own: Vec<(String, String)> = specs
        .iter()
        .flat_map(|c| COMPONENTS.iter().chain(ADDONS.iter()).map(move |n| (c.name.clone(), n.to_string())))
        .collect();
    let other_processes = registered_processes(&cfg.state_dir)
        .into_iter()
        .filter(|r| !own.contains(&(r.scope.clone(), r.name.clone())))
        .map(|r| {
            let alive = r.is_alive();
            ComponentStatus {
                scope: r.scope.clone(),
                name: r.name.clone(),
                pid: Some(r.pid),
                alive,
                ports: r.ports.clone(),
                health: Health::Unknown,
                rss_kib: r.rss_kib(),
                log: r.log.clone(),
                version: None,
            }
        })
        .collect();
    SimStatus {
        state_dir: cfg.state_dir.clone(),
        kubeconfig: kubeconfig_path(cfg),
        clusters,
        other_processes,
        network: network_line(cfg),
        ready_after: None,
        from_template: vec![],
    }
}

async fn cluster_status(cfg: &SimConfig, c: &ClusterSpec, probe: Option<&Probe>) -> ClusterStatus {
    let components = futures::future::join_all(COMPONENTS.iter().chain(ADDONS.iter()).map(|name| async move {
        let rec = lookup(&cfg.state_dir, &c.name, name);
        let alive = rec.as_ref().is_some_and(ProcessRecord::is_alive);
        let health = match (alive, probe) {
            (true, Some(p)) => match p.check(c, name).await {
                Ok(()) => Health::Healthy,
                Err(e) => Health::Unhealthy(e),
            },
            _ => Health::Unknown,
        };
        ComponentStatus {
            scope: c.name.clone(),
            name: name.to_string(),
            pid: rec.as_ref().map(|r| r.pid),
            alive,
            ports: c.ports.of(name),
            health,
            rss_kib: rec.as_ref().and_then(ProcessRecord::rss_kib),
            log: rec.and_then(|r| r.log),
            version: components::version(cfg, name),
        }
    }))
    .await;
    let api_ok = components.iter().any(|p| p.name == "kube-apiserver" && p.health == Health::Healthy);
    let (nodes, nodes_error) = if api_ok {
        match list_nodes(cfg, c).await {
            Ok(n) => (n, None),
            Err(e) => (vec![], Some(format!("{e:#}"))),
        }
    } else {
        (vec![], Some("kube-apiserver not healthy".into()))
    };
    let stand_ins = if api_ok { list_stand_ins(cfg, c).await } else { vec![] };
    let nodes_ready = nodes.iter().filter(|n| n.ready && c.nodes.iter().any(|s| s.name == n.name)).count();
    ClusterStatus {
        name: c.name.clone(),
        api_url: c.api_url(),
        pod_cidr: c.pod_cidr.to_string(),
        service_cidr: c.service_cidr.to_string(),
        components,
        nodes,
        nodes_ready,
        nodes_expected: c.nodes.len(),
        nodes_error,
        stand_ins,
    }
}

async fn list_nodes(cfg: &SimConfig, c: &ClusterSpec) -> anyhow::Result<Vec<NodeStatus>> {
    let client = client(cfg, &c.name).await?;
    let api: Api<Node> = Api::all(client);
    let list = tokio::time::timeout(Duration::from_secs(10), api.list(&ListParams::default()))
        .await
        .context("list nodes: timed out")??;
    Ok(list
        .items
        .iter()
        .map(|n| NodeStatus {
            name: n.metadata.name.clone().unwrap_or_default(),
            ready: kwok::node_ready(n),
            pod_cidr: n.spec.as_ref().and_then(|s| s.pod_cidr.clone()),
            internal_ip: n
                .status
                .as_ref()
                .and_then(|s| s.addresses.as_ref())
                .and_then(|a| a.iter().find(|a| a.type_ == "InternalIP").map(|a| a.address.clone())),
        })
        .collect())
}

/// ClusterIssuers the scenario replaced by stand-ins (annotated
/// [`crate::sim::scenario::STAND_IN_ANNOTATION`]), one line each; empty when none
/// (or when cert-manager's CRDs are not installed).
async fn list_stand_ins(cfg: &SimConfig, c: &ClusterSpec) -> Vec<String> {
    use kube::api::{DynamicObject, GroupVersionKind};
    use kube::discovery::ApiResource;
    let Ok(client) = client(cfg, &c.name).await else {
        return vec![];
    };
    let ar = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("cert-manager.io", "v1", "ClusterIssuer"),
        "clusterissuers",
    );
    let api: Api<DynamicObject> = Api::all_with(client, &ar);
    let Ok(Ok(list)) = tokio::time::timeout(Duration::from_secs(10), api.list(&ListParams::default())).await else {
        return vec![];
    };
    list.items
        .iter()
        .filter_map(|o| {
            let note = o.metadata.annotations.as_ref()?.get(crate::sim::scenario::STAND_IN_ANNOTATION)?;
            let secret = o.data.pointer("/spec/ca/secretName").and_then(serde_json::Value::as_str).unwrap_or("?");
            Some(format!(
                "ClusterIssuer {} is a CA issuer (Secret cert-manager/{secret}): {note}",
                o.metadata.name.as_deref().unwrap_or("?")
            ))
        })
        .collect()
}
