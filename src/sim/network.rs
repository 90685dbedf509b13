//! The simulation's own network: a Linux network namespace that every process of the
//! simulation runs in, so nothing it starts can reach the host's networks.
//!
//! One process, `platform-acceptance sim network` (registered as `shared/network`),
//! holds the namespace and is the only way in from the host:
//!
//! 1. it binds the **host forwards** first, on the host's loopback (`127.0.0.1:<port>`
//!    for every API server, etcd, controller, data-service and stand-in port);
//! 2. one of its threads then leaves the host's network (`unshare(CLONE_NEWNET)`):
//!    loopback is brought up and the repository's **site networks** (the prefixes of
//!    the Talos node addresses, e.g. `10.25.11.0/24`, and the MinIO address of
//!    `MINIO_ENDPOINT`) are made local on `lo`, so the addresses the fixture names
//!    (node IPs, `10.25.11.3:9000`) exist inside and work unchanged;
//! 3. that thread accepts on the host forwards and connects inside.
//!
//! Every other process is started inside the namespace ([`super::process::spawn_detached`]
//! enters it with `setns` before `exec`). Inside there is no route anywhere else: a
//! connection to any address outside the site networks fails at once with "network
//! unreachable". No host route, no host address and no host listener other than
//! loopback is added.
//!
//! The namespace lives as long as a process is inside it: `sim down` stops every
//! process, and with them it is gone. If the network process dies, the processes
//! inside cannot be reached any more; the next `sim up` stops them all and starts a
//! new namespace ([`ensure`]).

use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use super::cluster::ClusterSpec;
use super::process::{self, ProcessRecord};
use super::{SHARED_SCOPE, SimConfig};

/// Registry name of the network process (scope `shared`).
pub const NAME: &str = "network";

/// How a host loopback port reaches a socket inside the namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Forward {
    /// `127.0.0.1:<host_port>` on the host.
    pub host_port: u16,
    /// Where the connection goes inside the namespace.
    pub inside: SocketAddr,
}

/// What the namespace holds: forwards from the host and the site networks inside.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub forwards: Vec<Forward>,
    /// Made local on `lo` inside (the whole prefix answers, as on a site LAN).
    pub networks: Vec<ipnet::IpNet>,
    /// Host addresses added to `lo` inside, for programs that look for their listen
    /// address among the interfaces (MinIO does): every node address and every
    /// non-loopback forward target.
    pub addresses: Vec<IpAddr>,
}

impl Plan {
    /// The arguments of `sim network` for this plan.
    pub fn args(&self) -> Vec<String> {
        let mut a = vec![];
        for f in &self.forwards {
            a.push("--forward".to_string());
            a.push(format!("{}={}", f.host_port, f.inside));
        }
        for n in &self.networks {
            a.push("--network".to_string());
            a.push(n.to_string());
        }
        for ip in &self.addresses {
            a.push("--address".to_string());
            a.push(ip.to_string());
        }
        a
    }
}

/// The namespace for these clusters: a forward for every port of every cluster, of the
/// data services and of the stand-ins, and one to each cluster's DNS; the site networks
/// of the Talos node addresses, the MinIO address and the cluster DNS addresses.
pub fn plan(cfg: &SimConfig, specs: &[ClusterSpec]) -> anyhow::Result<Plan> {
    let lo = |p: u16| Forward { host_port: p, inside: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), p) };
    let mut forwards: Vec<Forward> = specs.iter().flat_map(|c| c.ports.all()).map(lo).collect();
    let data = super::data::DataPlan::from_repo(&cfg.repo)?;
    forwards.extend(super::data::inside_forwards(&data));
    forwards.push(lo(super::observability::OBSERVABILITY_PORT));
    // Each cluster's DNS (CoreDNS at its cluster DNS address), for the harness's resolver.
    forwards.extend(specs.iter().map(|c| Forward { host_port: c.ports.dns, inside: SocketAddr::new(c.dns_ip, 53) }));
    forwards.sort_by_key(|f| f.host_port);
    forwards.dedup_by_key(|f| f.host_port);

    let nodes = specs.iter().flat_map(|c| c.nodes.iter());
    let networks = ipnet::IpNet::aggregate(&nodes.clone().map(|n| n.network).collect());
    let mut addresses: Vec<IpAddr> = nodes.filter_map(|n| n.internal_ip.parse().ok()).collect();
    addresses.extend(forwards.iter().map(|f| f.inside.ip()).filter(|ip| !ip.is_loopback()));
    addresses.sort();
    addresses.dedup();
    Ok(Plan { forwards, networks, addresses })
}

fn ready_path(cfg: &SimConfig) -> PathBuf {
    cfg.state_dir.join("network.ready")
}

/// The live network process, if any.
pub fn running(state_dir: &Path) -> Option<ProcessRecord> {
    process::lookup(state_dir, SHARED_SCOPE, NAME).filter(ProcessRecord::is_alive)
}

/// True if the network process runs with `plan` (whatever binary started it) and its namespace is ready.
pub fn is_current(cfg: &SimConfig, plan: &Plan) -> bool {
    let Some(rec) = running(&cfg.state_dir) else { return false };
    let args: Vec<String> = ["sim".to_string(), "network".into()].into_iter().chain(plan.args()).collect();
    rec.command.get(1..) == Some(&args[..]) && namespace_path(&cfg.state_dir).is_some()
}

/// `/proc/<pid>/task/<tid>/ns/net` of the namespace, if the network process runs and is ready.
pub fn namespace_path(state_dir: &Path) -> Option<PathBuf> {
    let rec = running(state_dir)?;
    let tid: u32 = std::fs::read_to_string(state_dir.join("network.ready")).ok()?.trim().parse().ok()?;
    let path = PathBuf::from(format!("/proc/{}/task/{tid}/ns/net", rec.pid));
    path.exists().then_some(path)
}

/// An open handle on the namespace (for `setns`), if it exists.
pub fn open_namespace(state_dir: &Path) -> Option<OwnedFd> {
    let path = namespace_path(state_dir)?;
    std::fs::File::open(path).ok().map(OwnedFd::from)
}

/// Starts the network process, or keeps it when it runs with this plan. A network
/// process that died or runs an older plan takes every other process of the simulation
/// with it (they are unreachable in the old namespace): they are stopped here, and the
/// callers start them again.
pub async fn ensure(cfg: &SimConfig, specs: &[ClusterSpec]) -> anyhow::Result<ProcessRecord> {
    let plan = plan(cfg, specs)?;
    let bin = process::harness_binary()
        .context("the simulation's network: no platform-acceptance binary found (set PA_BIN)")?;
    let mut cmd = std::process::Command::new(&bin);
    cmd.args(["sim", "network"]).args(plan.args()).env("PA_SIM_STATE", std::path::absolute(&cfg.state_dir)?);
    if let Some(rec) = process::lookup(&cfg.state_dir, SHARED_SCOPE, NAME) {
        if is_current(cfg, &plan) {
            return Ok(rec);
        }
        let others: Vec<ProcessRecord> = process::registered_processes(&cfg.state_dir)
            .into_iter()
            .filter(|r| r.name != NAME && r.is_alive())
            .collect();
        let why = if rec.is_alive() { "runs an older plan" } else { "is gone" };
        eprintln!(
            "sim up: the simulation's network (pid {}) {why}; stopping the {} process(es) inside it and starting a new one",
            rec.pid,
            others.len()
        );
        futures::future::join_all(others.iter().map(|r| process::stop_process(r, Duration::from_secs(10)))).await;
        for r in &others {
            process::unregister_process(&cfg.state_dir, &r.scope, &r.name)?;
        }
        process::stop_process(&rec, Duration::from_secs(5)).await;
        process::unregister_process(&cfg.state_dir, SHARED_SCOPE, NAME)?;
    }
    let _ = std::fs::remove_file(ready_path(cfg));
    let ports: Vec<u16> = plan.forwards.iter().map(|f| f.host_port).collect();
    let rec = process::spawn_detached(&cfg.state_dir, SHARED_SCOPE, NAME, &mut cmd, &ports)?;
    let deadline = Instant::now() + Duration::from_secs(20);
    while namespace_path(&cfg.state_dir).is_none() {
        if !rec.is_alive() {
            bail!("the simulation's network (pid {}) exited during start-up:\n{}", rec.pid, rec.log_tail(10));
        }
        if Instant::now() > deadline {
            bail!("the simulation's network (pid {}) not ready after 20s:\n{}", rec.pid, rec.log_tail(10));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let nets: Vec<String> = plan.networks.iter().map(ToString::to_string).collect();
    eprintln!(
        "sim up: network namespace ready (pid {}): {} host forwards on 127.0.0.1, site networks {} inside",
        rec.pid,
        plan.forwards.len(),
        nets.join(", ")
    );
    Ok(rec)
}

/// Parses `PORT=ADDR:PORT`.
pub fn parse_forward(s: &str) -> Result<Forward, String> {
    let (port, inside) = s.split_once('=').ok_or_else(|| format!("{s:?}: expected HOST_PORT=ADDRESS:PORT"))?;
    Ok(Forward {
        host_port: port.parse().map_err(|_| format!("{s:?}: {port:?} is not a port"))?,
        inside: inside.parse().map_err(|_| format!("{s:?}: {inside:?} is not ADDRESS:PORT"))?,
    })
}

/// The network process (`sim network`): binds the host forwards, leaves the host's
/// network on a dedicated thread, makes the site networks local inside, writes
/// `$STATE/network.ready` (the thread id) and forwards until killed.
pub fn serve(state_dir: &Path, forwards: &[Forward], networks: &[ipnet::IpNet], addresses: &[IpAddr]) -> anyhow::Result<()> {
    let mut listeners = vec![];
    for f in forwards {
        let addr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), f.host_port);
        let l = TcpListener::bind(addr).map_err(|e| {
            let holder = process::port_owner(f.host_port).map(|(pid, c)| format!(" (held by pid {pid} {c})")).unwrap_or_default();
            anyhow::anyhow!("bind host forward {addr}: {e}{holder}; stop that process or set PA_SIM_PORT_BASE")
        })?;
        l.set_nonblocking(true)?;
        listeners.push((l, f.inside));
    }
    let ready = state_dir.join("network.ready");
    let networks = networks.to_vec();
    let addresses = addresses.to_vec();
    let inside = std::thread::Builder::new().name("inside".into()).spawn(move || -> anyhow::Result<()> {
        // SAFETY: unshare(2) with CLONE_NEWNET moves only the calling thread.
        if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
            bail!(
                "cannot create the simulation's network namespace: {} (needs root or CAP_SYS_ADMIN)",
                std::io::Error::last_os_error()
            );
        }
        ip(&["link", "set", "lo", "up"])?;
        for n in &networks {
            ip(&["addr", "add", &n.to_string(), "dev", "lo"])?;
        }
        for a in &addresses {
            ip(&["addr", "add", &ipnet::IpNet::from(*a).to_string(), "dev", "lo"])?;
        }
        // SAFETY: gettid(2) has no preconditions.
        let tid = unsafe { libc::gettid() };
        let tmp = ready.with_extension("tmp");
        std::fs::write(&tmp, tid.to_string())?;
        std::fs::rename(&tmp, &ready)?;
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        rt.block_on(forward_all(listeners))
    })?;
    inside.join().map_err(|_| anyhow::anyhow!("the network thread panicked"))?
}

/// `ip ARGS` in the calling thread's network namespace.
fn ip(args: &[&str]) -> anyhow::Result<()> {
    let bin = ["/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip"].into_iter().find(|p| Path::new(p).is_file()).unwrap_or("ip");
    let out = std::process::Command::new(bin).args(args).output().context("run `ip` (Debian package iproute2)")?;
    if !out.status.success() {
        bail!("ip {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(())
}

async fn forward_all(listeners: Vec<(TcpListener, SocketAddr)>) -> anyhow::Result<()> {
    let mut tasks = tokio::task::JoinSet::new();
    for (l, inside) in listeners {
        let l = tokio::net::TcpListener::from_std(l)?;
        tasks.spawn(async move {
            loop {
                let Ok((mut outer, _)) = l.accept().await else {
                    // e.g. out of file descriptors: back off instead of spinning
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                };
                tokio::spawn(async move {
                    // Connected from this thread: the socket belongs to the namespace.
                    match tokio::net::TcpStream::connect(inside).await {
                        Ok(mut inner) => {
                            let _ = outer.set_nodelay(true);
                            let _ = inner.set_nodelay(true);
                            let _ = tokio::io::copy_bidirectional(&mut outer, &mut inner).await;
                        }
                        Err(_) => drop(outer),
                    }
                });
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    Ok(())
}

/// Makes the calling thread enter the namespace `fd` (for tests and tools that must
/// look from inside). The thread stays there.
pub fn enter(fd: &OwnedFd) -> std::io::Result<()> {
    // SAFETY: setns(2) on an open namespace fd; affects only the calling thread.
    if unsafe { libc::setns(fd.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}


#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwards_parse_and_print_back() {
        let f = parse_forward("19000=10.25.11.3:9000").unwrap();
        assert_eq!(f.host_port, 19000);
        assert_eq!(f.inside, "10.25.11.3:9000".parse().unwrap());
        assert!(parse_forward("19000").unwrap_err().contains("HOST_PORT=ADDRESS:PORT"));
        assert!(parse_forward("x=1.2.3.4:5").unwrap_err().contains("not a port"));
        let p = Plan { forwards: vec![f], networks: vec!["10.25.11.0/24".parse().unwrap()], addresses: vec!["10.25.11.3".parse().unwrap()] };
        assert_eq!(p.args(), ["--forward", "19000=10.25.11.3:9000", "--network", "10.25.11.0/24", "--address", "10.25.11.3"]);
    }

    #[test]
    fn the_fixture_plan_forwards_every_port_and_holds_the_site_network() {
        let cfg = SimConfig {
            cache_dir: "/nonexistent".into(),
            state_dir: "/nonexistent/sim".into(),
            repo: Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/gitops"),
        };
        let specs = super::super::cluster_specs(&cfg).unwrap();
        let p = plan(&cfg, &specs).unwrap();
        for c in &specs {
            for port in c.ports.all() {
                assert!(p.forwards.iter().any(|f| f.host_port == port), "port {port} of {} not forwarded", c.name);
            }
        }
        let minio = p.forwards.iter().find(|f| f.host_port == super::super::data::MINIO_PORT).unwrap();
        assert_eq!(minio.inside, "10.25.11.3:9000".parse().unwrap(), "MinIO listens where MINIO_ENDPOINT says");
        // Each cluster's DNS at its CLUSTER_DNS_IP, reached from the host over TCP.
        let dns: Vec<String> = specs.iter().map(|c| p.forwards.iter().find(|f| f.host_port == c.ports.dns).unwrap().inside.to_string()).collect();
        assert_eq!(dns, ["10.245.0.10:53", "10.247.0.10:53"]);
        assert_eq!(p.networks, ["10.25.11.0/24".parse::<ipnet::IpNet>().unwrap()]);
        let addresses: Vec<String> = p.addresses.iter().map(ToString::to_string).collect();
        // MinIO, the nodes, each cluster's Gateway (CILIUM_GATEWAY_LB_IP), the cluster DNS addresses.
        assert_eq!(addresses, ["10.25.11.3", "10.25.11.11", "10.25.11.12", "10.25.11.13", "10.25.11.14", "10.25.11.15", "10.25.11.16", "10.25.11.120", "10.25.11.170", "10.245.0.10", "10.247.0.10"]);
        let mut gateways: Vec<String> = p.forwards.iter().filter(|f| f.inside.port() == 80 || f.inside.port() == 443).map(|f| f.inside.to_string()).collect();
        gateways.sort();
        assert_eq!(gateways, ["10.25.11.120:443", "10.25.11.120:80", "10.25.11.170:443", "10.25.11.170:80"]);
    }
}
