//! `sim up` and `sim down`: starting both clusters' control planes in order (etcd,
//! kube-apiserver, then the controller-manager, scheduler and kwok), their nodes and
//! CRDs, then the controllers that need the CRDs ([`ADDONS`]: cert-manager, Velero, CoreDNS, external-secrets, Flux),
//! idempotently and with a clean restart of a cluster that crashed ([`up_with`] also starts
//! the data services, beside the control planes); and stopping every registered process,
//! then removing the state directory.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, ListParams};

use super::cluster::{ADDONS, COMPONENTS, ClusterSpec, cluster_specs};
use super::components::{self, Probe};
use super::pki::Pki;
use super::process::{self, ProcessRecord, lookup, registered_processes, spawn_detached, stop_process, unregister_process};
use super::status::{SimStatus, collect_status};
use super::{SHARED_SCOPE, SimConfig, client, crds, kubeconfig, kubeconfig_path, kwok, state_lock, template};

const ETCD_TIMEOUT: Duration = Duration::from_secs(30);
const APISERVER_TIMEOUT: Duration = Duration::from_secs(120);
const COMPONENT_TIMEOUT: Duration = Duration::from_secs(60);
const NODES_TIMEOUT: Duration = Duration::from_secs(120);
const CRDS_TIMEOUT: Duration = Duration::from_secs(180);
const STOP_GRACE: Duration = Duration::from_secs(10);

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
    Ok(bring_up(cfg, false, async { Ok(()) }).await?.0)
}

/// [`up`] with the data services ([`super::data::start`], started with the control planes:
/// they need only the network namespace), running `then` (e.g. a scenario) as soon as both
/// API servers answer with their nodes and CRDs and the data services run, while the
/// controllers that need the CRDs ([`ADDONS`]) are still starting: what `then` applies
/// waits for them as it would on a real cluster. Returns the status once both are done,
/// and `then`'s value. When everything already runs, the data services are started again
/// only if one has died.
///
/// ```no_run
/// # async fn f(cfg: &platform_acceptance::sim::SimConfig) -> anyhow::Result<()> {
/// use platform_acceptance::sim;
/// let (status, report) = sim::up_with(cfg, sim::scenario::apply_with_report(cfg, "healthy")).await?;
/// println!("{status}\n{} objects applied", report.clusters.values().map(|c| c.applied).sum::<usize>());
/// # Ok(()) }
/// ```
pub async fn up_with<T>(
    cfg: &SimConfig,
    then: impl std::future::Future<Output = anyhow::Result<T>>,
) -> anyhow::Result<(SimStatus, T)> {
    bring_up(cfg, true, then).await
}

/// [`up`] (`data` false) or [`up_with`] (`data` true).
async fn bring_up<T>(
    cfg: &SimConfig,
    data: bool,
    then: impl std::future::Future<Output = anyhow::Result<T>>,
) -> anyhow::Result<(SimStatus, T)> {
    let t0 = Instant::now();
    components::check_binaries(cfg)?;
    let specs = cluster_specs(cfg)?;
    let _lock = state_lock(cfg).await?;
    let fingerprint = crds::fingerprint(&cfg.cache_dir);

    if let Some(mut st) = warm_status(cfg, &specs, &fingerprint).await {
        st.ready_after = Some(t0.elapsed());
        println!("sim up: both clusters already up and ready (checked in {:.1}s)", t0.elapsed().as_secs_f64());
        if data {
            super::data::start(cfg).await.context("data services")?;
        }
        return Ok((st, then.await?));
    }

    // The network namespace first: every other process starts inside it.
    super::network::ensure(cfg, &specs).await?;

    // Report what crashed.
    for c in &specs {
        for name in COMPONENTS.iter().chain(ADDONS.iter()) {
            if let Some(rec) = lookup(&cfg.state_dir, &c.name, name).filter(|r| !r.is_alive()) {
                let log = rec.log.as_ref().map(|p| p.display().to_string()).unwrap_or_default();
                let what = if ADDONS.contains(name) { "it".to_string() } else { format!("cluster {}", c.name) };
                eprintln!(
                    "sim up: {}/{name} (pid {}) is not running; last lines of {log}:\n{}\nsim up: restarting {what}",
                    c.name,
                    rec.pid,
                    indent(&rec.log_tail(15)),
                );
            }
        }
    }

    // A port held by something that is not a live component of ours fails the whole
    // `up` before anything starts.
    for c in &specs {
        for name in COMPONENTS.iter().chain(ADDONS.iter()) {
            if lookup(&cfg.state_dir, &c.name, name).is_some_and(|r| r.is_alive()) {
                continue;
            }
            for port in c.ports.of(name) {
                process::ensure_port_free(&cfg.state_dir, port, &format!("{} {name}", c.name))?;
            }
        }
    }

    let pki = Pki::at(&cfg.state_dir);
    if !pki.is_complete(&specs) {
        // New certificates: the control planes still running trust the old ones.
        stop_all_matching(cfg, |r| {
            r.scope != SHARED_SCOPE && (COMPONENTS.contains(&r.name.as_str()) || ADDONS.contains(&r.name.as_str()))
        })
        .await;
        pki.ensure(&specs)?;
    }
    kubeconfig::write_user_kubeconfig(cfg, &specs)?;
    for c in &specs {
        kubeconfig::write_component_kubeconfigs(cfg, c)?;
        let harness = super::process::harness_binary().context("the platform-acceptance binary (kwok runs it as the relay stand-in); set PA_BIN")?;
        std::fs::write(c.dir(cfg).join("kwok-stages.yaml"), super::relay::kwok_config(cfg, c, &harness))?;
        std::fs::create_dir_all(c.dir(cfg).join("kwok-home"))?;
    }

    // A cluster whose etcd never ran starts from the cached template with its CRDs, if any.
    let keys: Vec<String> = specs.iter().map(|c| template::key(cfg, c, &fingerprint)).collect();
    let mut from_template = vec![];
    for (c, key) in specs.iter().zip(&keys) {
        if let Some(dir) = template::find(cfg, key)
            && template::restore(&dir, &c.dir(cfg))?
        {
            from_template.push(c.name.clone());
            eprintln!("sim up: cluster {}: etcd starts from template {key} (nodes and CRDs installed)", c.name);
        }
    }

    let probe = Probe::new(cfg)?;
    // The data services need only the network namespace: they start while the control planes do.
    let control_planes = futures::future::try_join_all(specs.iter().map(|c| ensure_control_plane(cfg, c, &probe)));
    let data_services = async {
        if data {
            super::data::start(cfg).await.context("data services")?;
        }
        anyhow::Ok(())
    };
    tokio::try_join!(control_planes, data_services)?;

    // CRD documents are parsed only if some cluster needs them.
    let need_crds = specs.iter().any(|c| read_crd_stamp(cfg, c).is_none_or(|s| s.fingerprint != fingerprint));
    let docs = if need_crds {
        let docs = crds::load(&cfg.cache_dir)?;
        if !docs.iter().any(|d| d.file.starts_with(&cfg.cache_dir)) {
            eprintln!(
                "sim up: warning: no CRDs in {} — run `make sim-build` (= sim/build.sh && sim/crds.sh) to collect them",
                cfg.cache_dir.join("crds").display()
            );
        }
        docs
    } else {
        vec![]
    };
    let installed =
        futures::future::try_join_all(specs.iter().map(|c| finish_cluster(cfg, c, &docs, &fingerprint))).await?;
    let keep = specs.iter().zip(&keys).zip(installed).filter(|((_, key), installed)| *installed && template::find(cfg, key).is_none());
    futures::future::try_join_all(keep.map(|((c, key), _)| keep_template(cfg, c, key, &probe))).await?;
    let names = specs.iter().map(|c| c.name.as_str()).collect::<Vec<_>>();
    let what = if names.len() == 2 { "both clusters".to_string() } else { format!("clusters {}", names.join(", ")) };
    let addons = async {
        futures::future::try_join_all(specs.iter().map(|c| ensure_addons(cfg, c, &probe))).await?;
        let elapsed = t0.elapsed();
        println!("sim up: {what} ready in {:.1}s (kubeconfig {})", elapsed.as_secs_f64(), kubeconfig_path(cfg).display());
        anyhow::Ok(elapsed)
    };
    let (elapsed, value) = tokio::try_join!(addons, then)?;
    let mut st = collect_status(cfg, &specs).await;
    st.ready_after = Some(elapsed);
    st.from_template = from_template;
    Ok((st, value))
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
    if !super::network::is_current(cfg, &super::network::plan(cfg, specs).ok()?) {
        return None;
    }
    let all_current = specs.iter().all(|c| {
        COMPONENTS
            .iter()
            .chain(ADDONS.iter())
            .all(|n| lookup(&cfg.state_dir, &c.name, n).is_some_and(|r| is_current(cfg, c, &r)))
    });
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
    rec.is_alive() && rec.command == process::argv(&components::command(cfg, c, &rec.name))
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
            process::ensure_port_free(&cfg.state_dir, port, &format!("{} {name}", c.name))?;
        }
    }
    let t = Instant::now();
    eprintln!("sim up: starting cluster {} (API {})", c.name, c.api_url());
    let start = |name: &str| -> anyhow::Result<ProcessRecord> {
        let mut cmd = components::command(cfg, c, name);
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

/// Starts the controllers that need the cluster's CRDs ([`ADDONS`]: cert-manager, Velero, CoreDNS, external-secrets, Flux)
/// side by side, or leaves each one that runs with the current command line and answers.
async fn ensure_addons(cfg: &SimConfig, c: &ClusterSpec, probe: &Probe) -> anyhow::Result<()> {
    futures::future::try_join_all(ADDONS.iter().map(|name| ensure_addon(cfg, c, probe, name))).await?;
    Ok(())
}

async fn ensure_addon(cfg: &SimConfig, c: &ClusterSpec, probe: &Probe, name: &str) -> anyhow::Result<()> {
    if let Some(rec) = lookup(&cfg.state_dir, &c.name, name) {
        if is_current(cfg, c, &rec) && wait_healthy(probe, c, name, &rec, Duration::from_secs(15)).await.is_ok() {
            return Ok(());
        }
        if rec.is_alive() {
            eprintln!("sim up: {}/{name} (pid {}) is not current or does not answer; restarting it", c.name, rec.pid);
        }
        stop_process(&rec, STOP_GRACE).await;
        unregister_process(&cfg.state_dir, &rec.scope, &rec.name)?;
    }
    for port in c.ports.of(name) {
        process::ensure_port_free(&cfg.state_dir, port, &format!("{} {name}", c.name))?;
    }
    if name == "velero" {
        prepare_velero(cfg, c).await?;
    }
    if name == "coredns" {
        super::dns::write_corefile(cfg, c)?;
    }
    if name == "source-controller" {
        // Its artifact storage (--storage-path) must exist.
        std::fs::create_dir_all(c.dir(cfg).join("flux-artifacts"))?;
    }
    let t = Instant::now();
    let mut cmd = components::command(cfg, c, name);
    let rec = spawn_detached(&cfg.state_dir, &c.name, name, &mut cmd, &c.ports.of(name))?;
    wait_healthy(probe, c, name, &rec, COMPONENT_TIMEOUT).await?;
    eprintln!(
        "sim up: cluster {}: {name} {} started (pid {}, answering after {:.1}s)",
        c.name,
        components::version(cfg, name).unwrap_or_default(),
        rec.pid,
        t.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Restarts add-on `name` (one of [`ADDONS`]) of `cluster` and waits until it
/// answers again: what a scenario uses when time has passed for that add-on (e.g. Velero
/// re-reading API discovery, which it does at start and then every 5 minutes).
pub async fn restart_addon(cfg: &SimConfig, cluster: &str, name: &str) -> anyhow::Result<()> {
    if !ADDONS.contains(&name) {
        bail!("{name} is not an add-on of the simulation (add-ons: {})", ADDONS.join(", "));
    }
    let specs = cluster_specs(cfg)?;
    let c = specs.iter().find(|c| c.name == cluster).ok_or_else(|| anyhow::anyhow!("no simulated cluster {cluster}"))?;
    let probe = Probe::new(cfg)?;
    // `sim up --scenario` applies the scenario while the add-ons start: let that start
    // finish (and be seen by `up`, which polls every 200 ms) before stopping the process.
    let deadline = Instant::now() + COMPONENT_TIMEOUT;
    let mut starting = None;
    while starting.is_none() && Instant::now() < deadline {
        starting = lookup(&cfg.state_dir, &c.name, name).filter(ProcessRecord::is_alive);
        if starting.is_none() {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    if let Some(rec) = starting
        && wait_healthy(&probe, c, name, &rec, deadline.saturating_duration_since(Instant::now())).await.is_ok()
    {
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    if let Some(rec) = lookup(&cfg.state_dir, &c.name, name) {
        stop_process(&rec, STOP_GRACE).await;
        unregister_process(&cfg.state_dir, &rec.scope, &rec.name)?;
    }
    wait_ports_free(cfg, c, name).await?;
    ensure_addon(cfg, c, &probe, name).await
}

/// Waits (10 s at most) until no process holds a port of component `name`: a stopped
/// process's listening sockets (and those of the children it started, e.g. Velero's plugin
/// processes) close a moment after it is gone.
async fn wait_ports_free(cfg: &SimConfig, c: &ClusterSpec, name: &str) -> anyhow::Result<()> {
    for port in c.ports.of(name) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while let Err(e) = process::ensure_port_free(&cfg.state_dir, port, &format!("{} {name}", c.name)) {
            if Instant::now() > deadline {
                return Err(e);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    Ok(())
}

/// Starts control-plane component `name` (`etcd`, `kube-apiserver`, ...) of `cluster` again
/// after it stopped, with its usual command line, and waits until it answers. Only that
/// process starts (unlike [`up`], which restarts the whole cluster of a crashed
/// component): the other components carry on, as they would on a real control plane
/// whose API server or etcd was restarted.
pub async fn start_component(cfg: &SimConfig, cluster: &str, name: &str) -> anyhow::Result<()> {
    if !COMPONENTS.contains(&name) {
        bail!("{name} is not a control-plane component of the simulation (components: {})", COMPONENTS.join(", "));
    }
    let specs = cluster_specs(cfg)?;
    let c = specs.iter().find(|c| c.name == cluster).ok_or_else(|| anyhow::anyhow!("no simulated cluster {cluster}"))?;
    if let Some(rec) = lookup(&cfg.state_dir, &c.name, name) {
        if rec.is_alive() {
            bail!("{cluster}/{name} (pid {}) still runs", rec.pid);
        }
        unregister_process(&cfg.state_dir, &rec.scope, &rec.name)?;
    }
    wait_ports_free(cfg, c, name).await?;
    let probe = Probe::new(cfg)?;
    let mut cmd = components::command(cfg, c, name);
    let rec = spawn_detached(&cfg.state_dir, &c.name, name, &mut cmd, &c.ports.of(name))?;
    let timeout = match name {
        "etcd" => ETCD_TIMEOUT,
        "kube-apiserver" => APISERVER_TIMEOUT,
        _ => COMPONENT_TIMEOUT,
    };
    wait_healthy(&probe, c, name, &rec, timeout).await
}

/// What the Velero server needs before it starts: its namespace (the chart's release
/// namespace; Velero exits without it), its plugin directory with the AWS plugin, and its
/// own TMPDIR and HOME.
async fn prepare_velero(cfg: &SimConfig, c: &ClusterSpec) -> anyhow::Result<()> {
    use k8s_openapi::api::core::v1::Namespace;
    let dir = c.dir(cfg);
    for d in ["velero-tmp", "velero-home"] {
        std::fs::create_dir_all(dir.join(d))?;
    }
    let plugins = components::velero_plugin_dir(cfg, c);
    std::fs::create_dir_all(&plugins)?;
    let link = plugins.join(components::VELERO_PLUGIN);
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(components::binary(cfg, components::VELERO_PLUGIN), &link)?;
    let api: Api<Namespace> = Api::all(client(cfg, &c.name).await?);
    let ns: Namespace = serde_json::from_value(serde_json::json!({"metadata": {"name": "velero"}}))?;
    let pp = kube::api::PatchParams::apply(super::FIELD_MANAGER);
    api.patch("velero", &pp, &kube::api::Patch::Apply(&ns)).await.with_context(|| format!("cluster {}: namespace velero", c.name))?;
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

/// Writes cluster `c`'s template ([`template`]): stops its etcd (the API server keeps
/// running and reconnects), copies the data directory, starts etcd again and waits until
/// etcd and the API server answer. Once per key; a failure to write only warns.
async fn keep_template(cfg: &SimConfig, c: &ClusterSpec, key: &str, probe: &Probe) -> anyhow::Result<()> {
    let t = Instant::now();
    let Some(etcd) = lookup(&cfg.state_dir, &c.name, "etcd") else { return Ok(()) };
    stop_process(&etcd, STOP_GRACE).await;
    unregister_process(&cfg.state_dir, &etcd.scope, &etcd.name)?;
    let saved = template::save(cfg, key, &c.dir(cfg));
    let mut cmd = components::command(cfg, c, "etcd");
    let etcd = spawn_detached(&cfg.state_dir, &c.name, "etcd", &mut cmd, &c.ports.of("etcd"))?;
    wait_healthy(probe, c, "etcd", &etcd, ETCD_TIMEOUT).await?;
    if let Some(api) = lookup(&cfg.state_dir, &c.name, "kube-apiserver") {
        wait_healthy(probe, c, "kube-apiserver", &api, APISERVER_TIMEOUT).await?;
    }
    match saved {
        Ok(_) => {
            template::prune(cfg, key);
            eprintln!(
                "sim up: cluster {}: template {key} written to {} in {:.1}s; the next cold start begins from it",
                c.name,
                template::root(cfg).display(),
                t.elapsed().as_secs_f64()
            );
        }
        Err(e) => eprintln!("sim up: cluster {}: warning: template {key} not written: {e:#}", c.name),
    }
    Ok(())
}

/// Nodes (created, Ready, podCIDR) and CRDs (applied, Established) of one cluster; true
/// if the CRDs were applied now.
async fn finish_cluster(
    cfg: &SimConfig,
    c: &ClusterSpec,
    docs: &[crds::CrdDoc],
    fingerprint: &str,
) -> anyhow::Result<bool> {
    let client = client(cfg, &c.name).await?;
    kwok::ensure_nodes(&client, c).await?;
    let nodes = wait_nodes_ready(&client, c);
    let crds = async {
        if read_crd_stamp(cfg, c).is_some_and(|s| s.fingerprint == fingerprint) {
            return Ok(false);
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
        anyhow::Ok(true)
    };
    let ((), installed) = tokio::try_join!(nodes, crds)?;
    Ok(installed)
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
    // Others first, then each control plane top-down, the network (which holds the
    // namespace) last.
    let tier = |r: &ProcessRecord| {
        if r.scope == SHARED_SCOPE && r.name == super::network::NAME {
            return 6;
        }
        COMPONENTS.iter().position(|n| *n == r.name && r.scope != SHARED_SCOPE).map_or(0, |i| 5 - i)
    };
    for t in 0..=6 {
        let batch: Vec<&ProcessRecord> = records.iter().filter(|r| tier(r) == t).collect();
        futures::future::join_all(batch.iter().map(|r| stop_process(r, STOP_GRACE))).await;
    }
}
