//! The local two-cluster simulation: `platform-acceptance sim up | down | status`.
//!
//! Each cluster of the GitOps repository (`infra`, `apps`) gets its own etcd,
//! kube-apiserver, kube-controller-manager, kube-scheduler and kwok, all on
//! 127.0.0.1, built from pinned upstream sources by `sim/build.sh` into
//! `$PA_CACHE/bin`. kwok plays three Nodes per cluster (Ready, with podCIDRs from
//! the controller-manager's IPAM over the repository's POD_CIDR) and runs every
//! scheduled Pod. The CRDs collected by `sim/crds.sh` are installed in both clusters.
//!
//! Ports (defaults; `PA_SIM_PORT_BASE` moves them all): cluster *i* (infra = 0,
//! apps = 1) uses `32100 + 100*i` + 0 kube-apiserver, +1 etcd client, +2 etcd peer,
//! +3 kube-controller-manager, +4 kube-scheduler, +5 kwok (healthz only).
//!
//! State (`$PA_SIM_STATE`, default `$PA_CACHE/sim`): `kubeconfig`, `pki/`,
//! `pids/` (the process registry, see [`process`]), `<cluster>/` (logs
//! `<component>.log`, etcd data, component kubeconfigs, kwok stages).

pub mod backups;
pub mod cli;
pub mod cluster;
pub mod crds;
pub mod data;
pub mod kubeconfig;
pub mod kwok;
pub mod observability;
pub mod pki;
pub mod process;
pub mod provisioner;
pub mod scenario;
pub mod targets;

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, ListParams};

pub use cluster::{COMPONENTS, ClusterSpec, DEFAULT_PORT_BASE, Ports, cluster_specs};
pub use process::{
    ProcessRecord, lookup, register_process, register_process_with, registered_processes, spawn_detached, stop_process,
    unregister_process,
};

use cluster::Probe;
use pki::Pki;

/// Field manager of everything the simulation applies.
pub const FIELD_MANAGER: &str = "platform-acceptance-sim";
/// Default cache directory (binaries, CRDs, state).
pub const DEFAULT_CACHE_DIR: &str = "/var/cache/platform-acceptance";
/// Scope name for processes that belong to no single cluster.
pub const SHARED_SCOPE: &str = "shared";

const ETCD_TIMEOUT: Duration = Duration::from_secs(30);
const APISERVER_TIMEOUT: Duration = Duration::from_secs(120);
const COMPONENT_TIMEOUT: Duration = Duration::from_secs(60);
const NODES_TIMEOUT: Duration = Duration::from_secs(120);
const CRDS_TIMEOUT: Duration = Duration::from_secs(180);
const STOP_GRACE: Duration = Duration::from_secs(10);

/// Where the simulation finds its binaries and CRDs, keeps its state, and reads
/// the cluster definitions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimConfig {
    /// `$PA_CACHE` (default `/var/cache/platform-acceptance`): `bin/`, `crds/`.
    pub cache_dir: PathBuf,
    /// `$PA_SIM_STATE` (default `$PA_CACHE/sim`).
    pub state_dir: PathBuf,
    /// The GitOps repository (`fixtures/gitops`): cluster names and CIDRs.
    pub repo: PathBuf,
}

impl SimConfig {
    /// From the environment: `PA_CACHE`, `PA_SIM_STATE`, `PA_SIM_REPO` (default
    /// `fixtures/gitops` in the working directory, else in this crate's source tree).
    pub fn from_env() -> SimConfig {
        let var = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty()).map(PathBuf::from);
        let cache_dir = var("PA_CACHE").unwrap_or_else(|| PathBuf::from(DEFAULT_CACHE_DIR));
        let state_dir = var("PA_SIM_STATE").unwrap_or_else(|| cache_dir.join("sim"));
        let repo = var("PA_SIM_REPO").unwrap_or_else(|| {
            let local = PathBuf::from("fixtures/gitops");
            if local.is_dir() { local } else { Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/gitops") }
        });
        SimConfig { cache_dir, state_dir, repo }
    }
}

/// `$STATE/kubeconfig`: contexts `infra` and `apps`.
pub fn kubeconfig_path(cfg: &SimConfig) -> PathBuf {
    cfg.state_dir.join("kubeconfig")
}

/// A client for one simulated cluster (context `cluster` of [`kubeconfig_path`]).
pub async fn client(cfg: &SimConfig, cluster: &str) -> anyhow::Result<kube::Client> {
    let path = kubeconfig_path(cfg);
    let kc = kube::config::Kubeconfig::read_from(&path)
        .with_context(|| format!("read {} (is the simulation up? run `platform-acceptance sim up`)", path.display()))?;
    let opts = kube::config::KubeConfigOptions { context: Some(cluster.to_string()), ..Default::default() };
    let config = kube::Config::from_custom_kubeconfig(kc, &opts)
        .await
        .with_context(|| format!("context {cluster} of {}", path.display()))?;
    kube::Client::try_from(config).context("build Kubernetes client")
}

/// An exclusive lock on a file, held until dropped (flock; also excludes other
/// threads of the same process).
pub struct FileLock {
    _file: std::fs::File,
    pub path: PathBuf,
}

async fn lock_file(path: PathBuf) -> anyhow::Result<FileLock> {
    tokio::task::spawn_blocking(move || {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .with_context(|| format!("open {}", path.display()))?;
        file.lock().with_context(|| format!("lock {}", path.display()))?;
        Ok(FileLock { _file: file, path })
    })
    .await?
}

fn sibling(state_dir: &Path, suffix: &str) -> PathBuf {
    let mut name = state_dir.file_name().map(|n| n.to_os_string()).unwrap_or_else(|| "sim".into());
    name.push(suffix);
    state_dir.with_file_name(name)
}

/// Serialises `up` and `down` (`<state>.lock`, beside the state directory so `down` cannot delete it).
async fn state_lock(cfg: &SimConfig) -> anyhow::Result<FileLock> {
    lock_file(sibling(&cfg.state_dir, ".lock")).await
}

/// The lock every test that uses the simulation holds for its whole run
/// (`<state>.tests.lock`, beside the state directory: `down` removes the state
/// directory, and a lock file inside it would stop serialising). Blocks until free.
pub async fn test_lock(cfg: &SimConfig) -> anyhow::Result<FileLock> {
    lock_file(sibling(&cfg.state_dir, ".tests.lock")).await
}

// ---- status ---------------------------------------------------------------------

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
}

/// What `status` (and `up`) report.
#[derive(Debug, Clone)]
pub struct SimStatus {
    pub state_dir: PathBuf,
    pub kubeconfig: PathBuf,
    pub clusters: Vec<ClusterStatus>,
    /// Processes registered by other modules (data services), scope `shared` or a cluster.
    pub other_processes: Vec<ComponentStatus>,
    /// Set by [`up`]: time from its start until both clusters were Ready.
    pub ready_after: Option<Duration>,
}

impl SimStatus {
    /// Every control-plane component alive and healthy and every node Ready.
    pub fn is_healthy(&self) -> bool {
        !self.clusters.is_empty()
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
            writeln!(f, "  {label:<26} {pid:>8}  {ports:<12} {rss:>8}  {health}")
        };
        for c in &self.clusters {
            writeln!(f)?;
            writeln!(
                f,
                "cluster {}  {}  pods {}  services {}  nodes Ready {}/{}",
                c.name, c.api_url, c.pod_cidr, c.service_cidr, c.nodes_ready, c.nodes_expected
            )?;
            writeln!(f, "  {:<26} {:>8}  {:<12} {:>8}  HEALTH", "COMPONENT", "PID", "PORTS", "RSS")?;
            for p in &c.components {
                row(f, p, &p.name)?;
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

/// Reports every component, process and node; changes nothing.
pub async fn status(cfg: &SimConfig) -> anyhow::Result<SimStatus> {
    let specs = cluster_specs(cfg)?;
    Ok(collect_status(cfg, &specs).await)
}

async fn collect_status(cfg: &SimConfig, specs: &[ClusterSpec]) -> SimStatus {
    let probe = Probe::new(cfg).ok();
    let clusters = futures::future::join_all(specs.iter().map(|c| cluster_status(cfg, c, probe.as_ref()))).await;
    let own: Vec<(String, String)> =
        specs.iter().flat_map(|c| COMPONENTS.iter().map(move |n| (c.name.clone(), n.to_string()))).collect();
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
            }
        })
        .collect();
    SimStatus {
        state_dir: cfg.state_dir.clone(),
        kubeconfig: kubeconfig_path(cfg),
        clusters,
        other_processes,
        ready_after: None,
    }
}

async fn cluster_status(cfg: &SimConfig, c: &ClusterSpec, probe: Option<&Probe>) -> ClusterStatus {
    let components = futures::future::join_all(COMPONENTS.iter().map(|name| async move {
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

// ---- up -----------------------------------------------------------------------------

#[derive(serde::Serialize, serde::Deserialize, PartialEq)]
struct CrdStamp {
    fingerprint: String,
    names: Vec<String>,
}

fn crd_stamp_path(cfg: &SimConfig, c: &ClusterSpec) -> PathBuf {
    c.dir(cfg).join("crds.stamp")
}

fn read_crd_stamp(cfg: &SimConfig, c: &ClusterSpec) -> Option<CrdStamp> {
    serde_json::from_slice(&std::fs::read(crd_stamp_path(cfg, c)).ok()?).ok()
}

/// Brings both clusters up (or checks that they are), see the module docs.
/// Idempotent: returns within about a second when everything already runs and is
/// healthy; a cluster with a crashed component is reported (with the tail of the
/// component's log) and restarted cleanly (etcd data kept).
pub async fn up(cfg: &SimConfig) -> anyhow::Result<SimStatus> {
    let t0 = Instant::now();
    cluster::check_binaries(cfg)?;
    let specs = cluster_specs(cfg)?;
    let _lock = state_lock(cfg).await?;
    let fingerprint = crds::fingerprint(&cfg.cache_dir);

    if let Some(mut st) = warm_status(cfg, &specs, &fingerprint).await {
        st.ready_after = Some(t0.elapsed());
        println!("sim up: both clusters already up and ready (checked in {:.1}s)", t0.elapsed().as_secs_f64());
        return Ok(st);
    }

    // Report what crashed.
    for c in &specs {
        for name in COMPONENTS {
            if let Some(rec) = lookup(&cfg.state_dir, &c.name, name).filter(|r| !r.is_alive()) {
                let log = rec.log.as_ref().map(|p| p.display().to_string()).unwrap_or_default();
                eprintln!(
                    "sim up: {}/{name} (pid {}) is not running; last lines of {log}:\n{}\nsim up: restarting cluster {}",
                    c.name,
                    rec.pid,
                    indent(&rec.log_tail(15)),
                    c.name
                );
            }
        }
    }

    // A port held by something that is not a live component of ours fails the whole
    // `up` before anything starts.
    for c in &specs {
        for name in COMPONENTS {
            if lookup(&cfg.state_dir, &c.name, name).is_some_and(|r| r.is_alive()) {
                continue;
            }
            for port in c.ports.of(name) {
                process::ensure_port_free(port, &format!("{} {name}", c.name))?;
            }
        }
    }

    let pki = Pki::at(&cfg.state_dir);
    if !pki.is_complete(&specs) {
        // New certificates: the control planes still running trust the old ones.
        stop_all_matching(cfg, |r| r.scope != SHARED_SCOPE && COMPONENTS.contains(&r.name.as_str())).await;
        pki.ensure(&specs)?;
    }
    kubeconfig::write_user_kubeconfig(cfg, &specs)?;
    for c in &specs {
        kubeconfig::write_component_kubeconfigs(cfg, c)?;
        std::fs::write(c.dir(cfg).join("kwok-stages.yaml"), kwok::STAGES_YAML)?;
        std::fs::create_dir_all(c.dir(cfg).join("kwok-home"))?;
    }

    let probe = Probe::new(cfg)?;
    futures::future::try_join_all(specs.iter().map(|c| ensure_control_plane(cfg, c, &probe))).await?;

    // CRD documents are parsed only if some cluster needs them.
    let need_crds = specs.iter().any(|c| read_crd_stamp(cfg, c).is_none_or(|s| s.fingerprint != fingerprint));
    let docs = if need_crds {
        let docs = crds::load(&cfg.cache_dir)?;
        if docs.is_empty() {
            eprintln!(
                "sim up: warning: no CRDs in {} — run `make sim-build` (= sim/build.sh && sim/crds.sh) to collect them",
                cfg.cache_dir.join("crds").display()
            );
        }
        docs
    } else {
        vec![]
    };
    futures::future::try_join_all(specs.iter().map(|c| finish_cluster(cfg, c, &docs, &fingerprint))).await?;

    let elapsed = t0.elapsed();
    let names = specs.iter().map(|c| c.name.as_str()).collect::<Vec<_>>();
    let what = if names.len() == 2 { "both clusters".to_string() } else { format!("clusters {}", names.join(", ")) };
    println!("sim up: {what} ready in {:.1}s (kubeconfig {})", elapsed.as_secs_f64(), kubeconfig_path(cfg).display());
    let mut st = collect_status(cfg, &specs).await;
    st.ready_after = Some(elapsed);
    Ok(st)
}

fn indent(text: &str) -> String {
    text.lines().map(|l| format!("    {l}")).collect::<Vec<_>>().join("\n")
}

/// The status if everything already runs, answers, has its nodes Ready and its CRDs
/// installed from the current cache; None otherwise.
async fn warm_status(cfg: &SimConfig, specs: &[ClusterSpec], fingerprint: &str) -> Option<SimStatus> {
    if !kubeconfig_path(cfg).is_file() || !Pki::at(&cfg.state_dir).is_complete(specs) {
        return None;
    }
    let all_current = specs
        .iter()
        .all(|c| COMPONENTS.iter().all(|n| lookup(&cfg.state_dir, &c.name, n).is_some_and(|r| is_current(cfg, c, &r))));
    if !all_current {
        return None;
    }
    for c in specs {
        let stamp = read_crd_stamp(cfg, c).filter(|s| s.fingerprint == fingerprint)?;
        let client = client(cfg, &c.name).await.ok()?;
        let present = tokio::time::timeout(Duration::from_secs(10), crds::present(&client)).await.ok()?.ok()?;
        if !stamp.names.iter().all(|n| present.contains(n)) {
            return None;
        }
    }
    let st = collect_status(cfg, specs).await;
    st.is_healthy().then_some(st)
}

/// True if the record's process runs with the command line this version would use.
fn is_current(cfg: &SimConfig, c: &ClusterSpec, rec: &ProcessRecord) -> bool {
    rec.is_alive() && rec.command == process::argv(&cluster::command(cfg, c, &rec.name))
}

/// Starts the control plane of one cluster, or leaves it if all of it runs, with the
/// current command lines, and answers.
async fn ensure_control_plane(cfg: &SimConfig, c: &ClusterSpec, probe: &Probe) -> anyhow::Result<()> {
    let records: Vec<Option<ProcessRecord>> = COMPONENTS.iter().map(|n| lookup(&cfg.state_dir, &c.name, n)).collect();
    let alive = records.iter().all(|r| r.as_ref().is_some_and(ProcessRecord::is_alive));
    let current = records.iter().all(|r| r.as_ref().is_some_and(|r| is_current(cfg, c, r)));
    if alive && !current {
        eprintln!("sim up: cluster {} runs with other command lines (an older version?); restarting it", c.name);
    }
    if current {
        let mut healthy = true;
        for (name, rec) in COMPONENTS.iter().zip(&records) {
            let rec = rec.as_ref().expect("checked");
            if wait_healthy(probe, c, name, rec, Duration::from_secs(15)).await.is_err() {
                eprintln!(
                    "sim up: {}/{name} (pid {}) runs but does not answer; restarting cluster {}",
                    c.name, rec.pid, c.name
                );
                healthy = false;
                break;
            }
        }
        if healthy {
            return Ok(());
        }
    }
    // Clean restart: stop what is left of this cluster, newest first.
    for rec in records.iter().rev().flatten() {
        stop_process(rec, STOP_GRACE).await;
        unregister_process(&cfg.state_dir, &rec.scope, &rec.name)?;
    }
    for name in COMPONENTS {
        for port in c.ports.of(name) {
            process::ensure_port_free(port, &format!("{} {name}", c.name))?;
        }
    }
    let t = Instant::now();
    eprintln!("sim up: starting cluster {} (API {})", c.name, c.api_url());
    let start = |name: &str| -> anyhow::Result<ProcessRecord> {
        let mut cmd = cluster::command(cfg, c, name);
        spawn_detached(&cfg.state_dir, &c.name, name, &mut cmd, &c.ports.of(name))
    };
    let etcd = start("etcd")?;
    wait_healthy(probe, c, "etcd", &etcd, ETCD_TIMEOUT).await?;
    let api = start("kube-apiserver")?;
    wait_healthy(probe, c, "kube-apiserver", &api, APISERVER_TIMEOUT).await?;
    let rest: Vec<(&str, ProcessRecord)> = ["kube-controller-manager", "kube-scheduler", "kwok"]
        .into_iter()
        .map(|n| Ok((n, start(n)?)))
        .collect::<anyhow::Result<_>>()?;
    for (name, rec) in &rest {
        wait_healthy(probe, c, name, rec, COMPONENT_TIMEOUT).await?;
    }
    eprintln!("sim up: cluster {} control plane healthy after {:.1}s", c.name, t.elapsed().as_secs_f64());
    Ok(())
}

async fn wait_healthy(
    probe: &Probe,
    c: &ClusterSpec,
    name: &str,
    rec: &ProcessRecord,
    timeout: Duration,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        if !rec.is_alive() {
            bail!(
                "{}/{name} (pid {}) exited during start-up; last lines of {}:\n{}",
                c.name,
                rec.pid,
                rec.log.as_ref().map(|p| p.display().to_string()).unwrap_or_default(),
                indent(&rec.log_tail(20))
            );
        }
        let last = match probe.check(c, name).await {
            Ok(()) => return Ok(()),
            Err(e) => e,
        };
        if Instant::now() > deadline {
            bail!(
                "{}/{name} (pid {}) not healthy after {}s ({last}); last lines of {}:\n{}",
                c.name,
                rec.pid,
                timeout.as_secs(),
                rec.log.as_ref().map(|p| p.display().to_string()).unwrap_or_default(),
                indent(&rec.log_tail(20))
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Nodes (created, Ready, podCIDR) and CRDs (applied, Established) of one cluster.
async fn finish_cluster(
    cfg: &SimConfig,
    c: &ClusterSpec,
    docs: &[crds::CrdDoc],
    fingerprint: &str,
) -> anyhow::Result<()> {
    let client = client(cfg, &c.name).await?;
    kwok::ensure_nodes(&client, c).await?;
    let nodes = wait_nodes_ready(&client, c);
    let crds = async {
        if read_crd_stamp(cfg, c).is_some_and(|s| s.fingerprint == fingerprint) {
            return Ok(());
        }
        let t = Instant::now();
        crds::install(&client, docs, CRDS_TIMEOUT).await.with_context(|| format!("cluster {}", c.name))?;
        let stamp =
            CrdStamp { fingerprint: fingerprint.to_string(), names: docs.iter().map(|d| d.name.clone()).collect() };
        std::fs::write(crd_stamp_path(cfg, c), serde_json::to_vec(&stamp)?)?;
        eprintln!(
            "sim up: cluster {}: {} CRDs Established after {:.1}s",
            c.name,
            docs.len(),
            t.elapsed().as_secs_f64()
        );
        anyhow::Ok(())
    };
    tokio::try_join!(nodes, crds)?;
    Ok(())
}

async fn wait_nodes_ready(client: &kube::Client, c: &ClusterSpec) -> anyhow::Result<()> {
    let api: Api<Node> = Api::all(client.clone());
    let deadline = Instant::now() + NODES_TIMEOUT;
    loop {
        let list = api.list(&ListParams::default()).await?;
        let not_ready: Vec<String> = c
            .nodes
            .iter()
            .filter(|s| !list.items.iter().any(|n| n.metadata.name.as_deref() == Some(&s.name) && kwok::node_ready(n)))
            .map(|s| s.name.clone())
            .collect();
        if not_ready.is_empty() {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!(
                "cluster {}: nodes not Ready with a podCIDR after {}s: {} (see {}/kwok.log and kube-controller-manager.log)",
                c.name,
                NODES_TIMEOUT.as_secs(),
                not_ready.join(", "),
                c.name
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

// ---- down ---------------------------------------------------------------------------

/// Stops every registered process (data services first, then each cluster's
/// kwok, scheduler, controller-manager, API server, etcd), checks that none runs and
/// none of their ports listens any more, then removes the state directory.
pub async fn down(cfg: &SimConfig) -> anyhow::Result<()> {
    let _lock = state_lock(cfg).await?;
    if !cfg.state_dir.exists() {
        println!("sim down: nothing to do ({} does not exist)", cfg.state_dir.display());
        return Ok(());
    }
    let records = registered_processes(&cfg.state_dir);
    let stopped = records.iter().filter(|r| r.is_alive()).count();
    stop_all(cfg).await;
    let alive: Vec<String> =
        records.iter().filter(|r| r.is_alive()).map(|r| format!("{}/{} (pid {})", r.scope, r.name, r.pid)).collect();
    if !alive.is_empty() {
        bail!("sim down: still running after SIGKILL: {}", alive.join(", "));
    }
    let ports: Vec<u16> = records.iter().flat_map(|r| r.ports.iter().copied()).collect();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let open: Vec<u16> = ports.iter().copied().filter(|p| process::port_listening(*p)).collect();
        if open.is_empty() {
            break;
        }
        if Instant::now() > deadline {
            let who: Vec<String> = open
                .iter()
                .map(|p| match process::port_owner(*p) {
                    Some((pid, comm)) => format!("{p} (pid {pid} {comm})"),
                    None => p.to_string(),
                })
                .collect();
            bail!("sim down: ports still listening after stopping every process: {}", who.join(", "));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    std::fs::remove_dir_all(&cfg.state_dir).with_context(|| format!("remove {}", cfg.state_dir.display()))?;
    println!("sim down: stopped {stopped} process(es), removed {}", cfg.state_dir.display());
    Ok(())
}

/// Stops every registered process, in tiers (others, then the control planes top-down).
async fn stop_all(cfg: &SimConfig) {
    stop_all_matching(cfg, |_| true).await
}

async fn stop_all_matching(cfg: &SimConfig, filter: impl Fn(&ProcessRecord) -> bool) {
    let records: Vec<ProcessRecord> = registered_processes(&cfg.state_dir).into_iter().filter(|r| filter(r)).collect();
    let tier = |r: &ProcessRecord| {
        COMPONENTS.iter().position(|n| *n == r.name && r.scope != SHARED_SCOPE).map_or(0, |i| 5 - i)
    };
    for t in 0..=5 {
        let batch: Vec<&ProcessRecord> = records.iter().filter(|r| tier(r) == t).collect();
        futures::future::join_all(batch.iter().map(|r| stop_process(r, STOP_GRACE))).await;
    }
}
