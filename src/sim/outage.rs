//! Outages caused on purpose in a running simulation, for the reliability tests: a
//! control-plane process killed and started again, a data service restarted, the network
//! to one address dropped. A run never causes them.
//!
//! | outage | how | what it stands for |
//! |---|---|---|
//! | [`kill`] + [`super::start_component`] | SIGKILL to the registered process, then its usual command line again | an API server or etcd crashing and its supervisor (kubelet, systemd) restarting it |
//! | then [`controllers_serve`] | waits until a new namespace gets its ServiceAccount, a pod there is scheduled and ready, and its Service's EndpointSlice lists it | the cluster working again: the controllers' watches come back on their own back-off, not with the API server |
//! | [`stop_data_service`] + [`super::data::start`] | PostgreSQL: SIGINT (fast shutdown: sessions are ended); Redis, MinIO: SIGTERM; then started again | `pg_ctl restart -m fast`, a database pod replaced |
//! | [`blackhole`] | an nftables rule inside the simulation's network namespace dropping every packet to the address | a firewall or a dead link that drops traffic: connections hang instead of being refused |
//!
//! The nftables table lives in the simulation's own namespace only (the host's ruleset is
//! untouched) and goes with [`Blackhole`] when it is dropped, and with the namespace at
//! `sim down`.
//!
//! ```no_run
//! # async fn f(cfg: &platform_acceptance::sim::SimConfig) -> anyhow::Result<()> {
//! use platform_acceptance::sim::{self, outage};
//! outage::kill(cfg, "apps", "kube-apiserver").await?;
//! // ... the run meets a dead API server ...
//! sim::start_component(cfg, "apps", "kube-apiserver").await?;
//! let took = outage::controllers_serve(cfg, "apps", std::time::Duration::from_secs(120)).await?;
//! let blocked = outage::blackhole(cfg, "10.25.11.3:9000".parse()?)?;
//! // ... connections to MinIO hang ...
//! drop(blocked); // traffic flows again
//! # Ok(()) }
//! ```

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use super::SimConfig;
use super::process::{self, lookup};

/// Sends SIGKILL to the registered process `name` of `scope` (a cluster, or `shared` for
/// the data services) and returns its pid once it is gone. Its registry entry stays, as a
/// crash would leave it.
pub async fn kill(cfg: &SimConfig, scope: &str, name: &str) -> anyhow::Result<u32> {
    signal_and_wait(cfg, scope, name, libc::SIGKILL, Duration::from_secs(10)).await
}

async fn signal_and_wait(cfg: &SimConfig, scope: &str, name: &str, sig: i32, within: Duration) -> anyhow::Result<u32> {
    let rec = lookup(&cfg.state_dir, scope, name).filter(process::ProcessRecord::is_alive).with_context(|| format!("{scope}/{name} is not running"))?;
    // SAFETY: kill(2) has no memory-safety preconditions.
    if unsafe { libc::kill(rec.pid as i32, sig) } != 0 {
        bail!("signal {sig} to {scope}/{name} (pid {}): {}", rec.pid, std::io::Error::last_os_error());
    }
    let deadline = Instant::now() + within;
    while rec.is_alive() {
        if Instant::now() > deadline {
            bail!("{scope}/{name} (pid {}) still runs {}s after signal {sig}", rec.pid, within.as_secs());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(rec.pid)
}

/// Waits (at most `within`) until cluster `cluster`'s controllers serve again after a
/// control-plane restart, and returns how long that took: a new namespace gets its
/// `default` ServiceAccount (kube-controller-manager), a relay-image pod there is scheduled
/// (kube-scheduler) and ready (kwok), and the EndpointSlice of a Service selecting it lists
/// it ready (kube-controller-manager). An API server that is healthy again is not yet a
/// working cluster: it refuses the controllers' first requests until its RBAC caches fill,
/// and each controller's watch comes back on client-go's reflector back-off (up to 30 s,
/// doubled by jitter). The namespace is removed before returning.
pub async fn controllers_serve(cfg: &SimConfig, cluster: &str, within: Duration) -> anyhow::Result<Duration> {
    use k8s_openapi::api::core::v1::{Namespace, Pod, Service};
    use k8s_openapi::api::discovery::v1::EndpointSlice;
    use kube::api::{Api, DeleteParams, ListParams, PostParams};

    use crate::cluster::{lease, relay};

    let client = super::client(cfg, cluster).await?;
    let started = Instant::now();
    let run = format!("recovery{}", crate::random::token(6).to_ascii_lowercase());
    let ns = format!("pa-{run}");
    let (name, pp) = ("pa-recovery-probe", PostParams::default());
    lease::create_namespace(&client, &ns, &run).await.with_context(|| format!("creating namespace {ns} on cluster {cluster}"))?;
    let serving = async {
        if !lease::default_service_account(&client, &ns, within).await? {
            bail!("{}", lease::no_service_account(&ns, within));
        }
        let svc: Service = serde_json::from_value(serde_json::json!({
            "metadata": {"name": name, "namespace": ns},
            "spec": {"selector": {"app.kubernetes.io/name": name}, "ports": [{"port": 80, "targetPort": relay::PORT}]},
        }))?;
        Api::<Service>::namespaced(client.clone(), &ns).create(&pp, &svc).await?;
        let pod: Pod = serde_json::from_value(relay::socks_pod(relay::DEFAULT_IMAGE, &run, &ns, name, name))?;
        Api::<Pod>::namespaced(client.clone(), &ns).create(&pp, &pod).await?;
        let slices: Api<EndpointSlice> = Api::namespaced(client.clone(), &ns);
        let selected = ListParams::default().labels(&format!("kubernetes.io/service-name={name}"));
        loop {
            let listed = slices.list(&selected).await?;
            let ready = listed.items.iter().flat_map(|s| s.endpoints.iter().flatten()).any(|e| e.conditions.as_ref().and_then(|c| c.ready) == Some(true));
            if ready {
                return Ok(());
            }
            if started.elapsed() > within {
                bail!("cluster {cluster}: the EndpointSlice of Service {ns}/{name} lists no ready endpoint after {}s", within.as_secs());
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    };
    let served: anyhow::Result<()> = serving.await;
    let _ = Api::<Namespace>::all(client).delete(&ns, &DeleteParams::background()).await;
    served.map(|()| started.elapsed())
}

/// Stops data service `service` (one of [`super::data::SERVICES`]) the way an operator's
/// restart does; [`super::data::start`] starts it again with its data and waits until it
/// serves.
pub async fn stop_data_service(cfg: &SimConfig, service: &str) -> anyhow::Result<()> {
    if !super::data::SERVICES.contains(&service) {
        bail!("{service} is not a data service of the simulation (services: {})", super::data::SERVICES.join(", "));
    }
    // PostgreSQL's SIGTERM waits for every client to leave; SIGINT ends their sessions.
    let sig = if service == "postgres" { libc::SIGINT } else { libc::SIGTERM };
    signal_and_wait(cfg, super::SHARED_SCOPE, service, sig, Duration::from_secs(30)).await?;
    process::unregister_process(&cfg.state_dir, super::SHARED_SCOPE, service)
}

/// Every packet to `addr` inside the simulation's network is dropped until the returned
/// guard is dropped.
pub fn blackhole(cfg: &SimConfig, addr: SocketAddr) -> anyhow::Result<Blackhole> {
    let ns = super::network::namespace_path(&cfg.state_dir).context("the simulation's network is not up")?;
    let table = format!("pa_blackhole_{}", addr.port());
    let family = if addr.is_ipv4() { "ip" } else { "ip6" };
    let hole = Blackhole { ns, table };
    let rules = format!(
        "table inet {t} {{\n  chain out {{\n    type filter hook output priority 0; policy accept;\n    {family} daddr {ip} tcp dport {port} drop\n  }}\n}}\n",
        t = hole.table,
        ip = addr.ip(),
        port = addr.port()
    );
    hole.nft(&["-f", "-"], Some(&rules))?;
    Ok(hole)
}

/// An nftables table dropping traffic inside the simulation's network; removed on drop.
pub struct Blackhole {
    ns: PathBuf,
    table: String,
}

impl Blackhole {
    fn nft(&self, args: &[&str], stdin: Option<&str>) -> anyhow::Result<()> {
        use std::io::Write as _;
        let mut child = Command::new("nsenter")
            .arg(format!("--net={}", self.ns.display()))
            .arg("nft")
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .context("nsenter nft (scripts/deps.sh installs nftables)")?;
        if let Some(text) = stdin {
            child.stdin.take().expect("piped").write_all(text.as_bytes())?;
        }
        drop(child.stdin.take());
        let out = child.wait_with_output()?;
        if !out.status.success() {
            bail!("nft {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim());
        }
        Ok(())
    }
}

impl Drop for Blackhole {
    fn drop(&mut self) {
        if let Err(e) = self.nft(&["delete", "table", "inet", &self.table], None) {
            eprintln!("sim: could not remove nftables table {}: {e:#}", self.table);
        }
    }
}
