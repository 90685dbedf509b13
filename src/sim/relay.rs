//! **Stand-in** for the relay pod's container and for the service data path behind it.
//!
//! The harness reaches a simulated cluster's network as it reaches a real one
//! ([`crate::cluster::relay`]): a relay pod, an API-server port-forward, SOCKS5. The API
//! server hands the forward to the node's kubelet endpoint, which is kwok's server (nodes
//! advertise its port; it listens on every node address inside the simulation's network).
//! kwok runs no containers: a `ClusterPortForward` in its configuration ([`kwok_config`])
//! runs `platform-acceptance sim relay --cluster NAME` for every forward to port 1080, with
//! the forward's stream as stdin/stdout. That process plays the relay container: it speaks
//! SOCKS5 (fast-socks5, the same protocol the real image speaks) and connects inside the
//! simulation's network namespace:
//!
//! - an address that exists there (the cluster DNS address, where the real CoreDNS listens;
//!   the site network with MinIO) is dialled as it is;
//! - a Service's cluster IP plays kube-proxy/Cilium: the Service's ready EndpointSlices
//!   decide whether it answers (none: connection refused, as kube-proxy rejects), then the
//!   process the simulation runs for it ([`super::data::Endpoints`]). For an MCS derived
//!   Service (label `multicluster.kubernetes.io/service-name`) the endpoints are those of
//!   the exported Service on every cluster that has a `ServiceExport` of it;
//!   A Cilium global Service (`service.cilium.io/global: "true"`) is served by the ready
//!   endpoints of the same-named global Service on this cluster or on a cluster its
//!   ClusterMesh configuration names (a key of Secret `kube-system/cilium-clustermesh`);
//! - port 1080 of a ready pod (behind a Service, or by pod address) is a relay-image pod: kwok
//!   runs this stand-in for it, so the connection is served as that pod's SOCKS5 server
//!   (a relay on the other cluster, a round trip's backend);
//! - a pod address (what a headless Service's name resolves to) is the process behind the
//!   Service whose EndpointSlices list it, when that endpoint is ready;
//! - a DNS name is looked up in the endpoint map (names outside the clusters).
//!
//! So whether a connection works is decided by cluster objects (Services, EndpointSlices,
//! ServiceExports) and by the real CoreDNS, not by the harness. Every CONNECT and what
//! served it is a line of `$STATE/<cluster>/relay-connections.log` ([`connect_log`]).

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use fast_socks5::server::Socks5ServerProtocol;
use fast_socks5::util::target_addr::TargetAddr;
use fast_socks5::{ReplyError, Socks5Command};
use k8s_openapi::api::core::v1::{Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, ListParams};

use super::SimConfig;
use super::cluster::ClusterSpec;
use crate::cluster::objects::{self, Kind};
use crate::cluster::relay::PORT;

/// Label of an MCS derived Service naming the Service it imports.
const DERIVED_LABEL: &str = "multicluster.kubernetes.io/service-name";
/// Cilium's ClusterMesh configuration: one key per remote cluster its agents connect to.
const CLUSTERMESH_SECRET: &str = "cilium-clustermesh";
/// Annotation of a Cilium global Service.
const GLOBAL_ANNOTATION: &str = "service.cilium.io/global";
const SERVICE_EXPORT: Kind = Kind::namespaced("multicluster.x-k8s.io", &["v1alpha1", "v1beta1"], "ServiceExport");
/// How long a connection inside may take to open.
const CONNECT: Duration = Duration::from_secs(5);

/// kwok's configuration for cluster `c`: its Stages, and the port-forward rule that runs
/// this stand-in for port [`PORT`] of any pod.
pub fn kwok_config(cfg: &SimConfig, c: &ClusterSpec, harness: &std::path::Path) -> String {
    let command = [harness.display().to_string(), "sim".into(), "relay".into(), "--cluster".into(), c.name.clone(), "--state-dir".into(), cfg.state_dir.display().to_string()];
    let forward = serde_json::json!({
        "apiVersion": "kwok.x-k8s.io/v1alpha1",
        "kind": "ClusterPortForward",
        "metadata": {"name": "relay-stand-in"},
        "spec": {"forwards": [{"ports": [PORT], "command": command}]},
    });
    format!("{}\n---\n{}", super::kwok::STAGES_YAML.trim_end(), serde_yaml_ng::to_string(&forward).expect("yaml"))
}

/// Serves one SOCKS5 connection on stdin/stdout for cluster `cluster` (see the module docs).
pub async fn serve_stdio(cfg: &SimConfig, cluster: &str) -> anyhow::Result<()> {
    // kwok hands the forward's stream over as two pipes. Used as pipes, not through tokio's
    // stdout (which holds writes until a flush): each SOCKS5 reply must reach the client
    // before the next request is read.
    use std::os::fd::AsFd;
    let (stdin, stdout) = (std::io::stdin().as_fd().try_clone_to_owned()?, std::io::stdout().as_fd().try_clone_to_owned()?);
    let rx = tokio::net::unix::pipe::Receiver::from_owned_fd(stdin).context("standard input is not a pipe")?;
    let tx = tokio::net::unix::pipe::Sender::from_owned_fd(stdout).context("standard output is not a pipe")?;
    serve(cfg.clone(), cluster.to_string(), tokio::io::join(rx, tx)).await
}

/// Serves cluster `cluster`'s Service data path as a SOCKS5 listener on `bind` (inside the
/// simulation's network), for the real controllers the simulation runs that dial
/// in-cluster names: external-secrets reaching 1Password Connect has it as its
/// `HTTP_PROXY`. Each connection is decided as a relay pod's is (see the module docs): the
/// name through the cluster's CoreDNS, then Services and EndpointSlices.
pub async fn serve_listener(cfg: SimConfig, cluster: String, bind: SocketAddr) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(bind).await.with_context(|| format!("cluster {cluster}: Service data path on {bind}"))?;
    loop {
        let (sock, _) = listener.accept().await.context("accepting")?;
        let (cfg, cluster) = (cfg.clone(), cluster.clone());
        tokio::spawn(async move {
            if let Err(e) = serve(cfg, cluster.clone(), sock).await {
                eprintln!("[{cluster}] Service data path: {e:#}");
            }
        });
    }
}

/// Where a CONNECT goes inside the simulation's network.
enum Dest {
    /// A socket inside the simulation's network.
    Socket(SocketAddr),
    /// Port [`PORT`] of a pod on cluster `.0`: kwok serves it with this stand-in (the pod is a
    /// relay, or a round trip's backend running the relay's image), so the stream is served
    /// as that pod's SOCKS5 server would.
    Relay(String),
}

/// One SOCKS5 connection on `stream`.
fn serve<S>(cfg: SimConfig, cluster: String, stream: S) -> std::pin::Pin<Box<dyn std::future::Future<Output = anyhow::Result<()>> + Send>>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    Box::pin(async move {
        let proto = Socks5ServerProtocol::accept_no_auth(stream).await.context("SOCKS5 greeting")?;
        let (proto, command, target) = proto.read_command().await.context("SOCKS5 request")?;
        if command != Socks5Command::TCPConnect {
            proto.reply_error(&ReplyError::CommandNotSupported).await?;
            return Ok(());
        }
        let dest = match destination(&cfg, &cluster, &target).await {
            Ok(Dest::Socket(d)) => d,
            Ok(Dest::Relay(on)) => {
                log_connect(&cfg, &cluster, &target, &format!("relay on {on}"));
                let stream = proto.reply_success(SocketAddr::from(([0, 0, 0, 0], 0))).await?;
                return serve(cfg, on, stream).await;
            }
            Err(reply) => {
                log_connect(&cfg, &cluster, &target, &reply.to_string());
                proto.reply_error(&reply).await?;
                return Ok(());
            }
        };
        let mut upstream = match tokio::time::timeout(CONNECT, tokio::net::TcpStream::connect(dest)).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                log_connect(&cfg, &cluster, &target, &format!("{dest}: {e}"));
                proto.reply_error(&io_reply(&e)).await?;
                return Ok(());
            }
            Err(_) => {
                log_connect(&cfg, &cluster, &target, &format!("{dest}: no answer within {}s", CONNECT.as_secs()));
                proto.reply_error(&ReplyError::ConnectionTimeout).await?;
                return Ok(());
            }
        };
        log_connect(&cfg, &cluster, &target, &format!("{dest}: connected"));
        let bound = upstream.local_addr()?;
        let mut stream = proto.reply_success(bound).await?;
        let _ = tokio::io::copy_bidirectional(&mut stream, &mut upstream).await;
        Ok(())
    })
}

/// The connection log of cluster `cluster`'s relays: one line per CONNECT, what it was
/// served by (a socket, and whether it connected; a relay; or the SOCKS5 error reply).
pub fn connect_log(cfg: &SimConfig, cluster: &str) -> std::path::PathBuf {
    cfg.state_dir.join(cluster).join("relay-connections.log")
}

fn log_connect(cfg: &SimConfig, cluster: &str, target: &TargetAddr, what: &str) {
    use std::io::Write;
    let at = time::OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339).unwrap_or_default();
    // One short write per line with O_APPEND: the relay processes of a cluster share the file.
    if let Ok(mut f) = std::fs::OpenOptions::new().create(true).append(true).open(connect_log(cfg, cluster)) {
        let _ = f.write_all(format!("{at} CONNECT {target} -> {what}\n").as_bytes());
    }
}

fn io_reply(e: &std::io::Error) -> ReplyError {
    match e.kind() {
        std::io::ErrorKind::ConnectionRefused => ReplyError::ConnectionRefused,
        std::io::ErrorKind::NetworkUnreachable => ReplyError::NetworkUnreachable,
        std::io::ErrorKind::HostUnreachable => ReplyError::HostUnreachable,
        _ => ReplyError::GeneralFailure,
    }
}

/// Where a CONNECT to `target` goes inside the simulation's network, or the SOCKS5 reply.
async fn destination(cfg: &SimConfig, cluster: &str, target: &TargetAddr) -> Result<Dest, ReplyError> {
    let endpoints = super::data::endpoints(cfg).map_err(|_| ReplyError::GeneralFailure)?;
    let addr = match target {
        // A cluster name is the cluster's DNS's to answer (a pod's resolver asks it).
        TargetAddr::Domain(host, port) => match crate::cluster::dns::cluster_name(host) {
            Some(name) => SocketAddr::new(cluster_dns(cfg, cluster, &name).await?, *port),
            None => return endpoints.resolve(host, *port).map(Dest::Socket).ok_or(ReplyError::HostUnreachable),
        },
        TargetAddr::Ip(a) => *a,
    };
    let client = super::client(cfg, cluster).await.map_err(|_| ReplyError::GeneralFailure)?;
    let services = Api::<Service>::all(client.clone()).list(&ListParams::default()).await.map_err(|_| ReplyError::GeneralFailure)?;
    let Some(svc) = services.items.iter().find(|s| s.spec.as_ref().and_then(|s| s.cluster_ip.as_deref()) == Some(addr.ip().to_string().as_str())) else {
        return pod_address(&client, cluster, &endpoints, addr).await;
    };
    let ns = svc.metadata.namespace.clone().unwrap_or_default();
    let name = svc.metadata.name.clone().unwrap_or_default();
    let derived = svc.metadata.labels.as_ref().and_then(|l| l.get(DERIVED_LABEL)).cloned();
    let global = svc.metadata.annotations.as_ref().and_then(|a| a.get(GLOBAL_ANNOTATION)).is_some_and(|v| v == "true");
    let base = derived.clone().unwrap_or_else(|| name.clone());
    let Some(process) = endpoints.resolve(&format!("{base}.{ns}.svc.cluster.local"), addr.port()) else {
        // Nothing the simulation runs for it: a Service whose backends are relay-image pods
        // (served by this stand-in), or a real listener at that address (CoreDNS), or nothing.
        let on = if global { global_backends(cfg, cluster, &ns, &name).await } else { has_ready_endpoints(&client, &ns, &name, Some(PORT)).await.then(|| cluster.to_string()) };
        return match on {
            Some(on) => Ok(Dest::Relay(on)),
            None if global => Err(ReplyError::ConnectionRefused),
            None => Ok(Dest::Socket(addr)),
        };
    };
    let ready = match derived {
        None => has_ready_endpoints(&client, &ns, &name, None).await,
        Some(base) => exported_anywhere_with_endpoints(cfg, &ns, &base).await,
    };
    if ready { Ok(Dest::Socket(process)) } else { Err(ReplyError::ConnectionRefused) }
}

/// The first address cluster `cluster`'s CoreDNS answers for `name` (over TCP at the
/// cluster DNS address); a name it does not resolve is an unreachable host.
async fn cluster_dns(cfg: &SimConfig, cluster: &str, name: &str) -> Result<std::net::IpAddr, ReplyError> {
    let specs = super::cluster::cluster_specs(cfg).map_err(|_| ReplyError::GeneralFailure)?;
    let dns = specs.iter().find(|c| c.name == cluster).ok_or(ReplyError::GeneralFailure)?.dns_ip;
    let ask = async {
        let mut sock = tokio::net::TcpStream::connect((dns, 53)).await.map_err(|e| crate::cluster::dns::DnsError::Transport(e.to_string()))?;
        crate::cluster::dns::query_over(&mut sock, name).await
    };
    match tokio::time::timeout(CONNECT, ask).await {
        Ok(Ok(ips)) => ips.first().copied().ok_or(ReplyError::HostUnreachable),
        _ => Err(ReplyError::HostUnreachable),
    }
}

/// A Cilium global Service (`service.cilium.io/global: "true"`) seen from cluster `from`:
/// the first cluster whose Service of the same name, also global, has ready relay-port
/// endpoints (Cilium balances over the backends of every cluster that shares the Service).
/// Another cluster counts only when `from`'s agents are configured to reach it: a key of
/// that cluster's name in `from`'s Secret `kube-system/cilium-clustermesh`.
async fn global_backends(cfg: &SimConfig, from: &str, ns: &str, name: &str) -> Option<String> {
    let mesh = match super::client(cfg, from).await {
        Ok(c) => Api::<Secret>::namespaced(c, "kube-system").get_opt(CLUSTERMESH_SECRET).await.ok().flatten().and_then(|s| s.data).unwrap_or_default(),
        Err(_) => Default::default(),
    };
    for c in super::cluster::cluster_specs(cfg).ok()? {
        if c.name != from && !mesh.contains_key(&c.name) {
            continue;
        }
        let Ok(client) = super::client(cfg, &c.name).await else { continue };
        let shared = Api::<Service>::namespaced(client.clone(), ns).get_opt(name).await.ok().flatten();
        let global = shared.and_then(|s| s.metadata.annotations).and_then(|a| a.get(GLOBAL_ANNOTATION).cloned()).is_some_and(|v| v == "true");
        if global && has_ready_endpoints(&client, ns, name, Some(PORT)).await {
            return Some(c.name);
        }
    }
    None
}

/// A connection to a pod address (a headless Service's DNS answer): the process behind the
/// Service whose EndpointSlices list that address, if the endpoint is ready (else refused);
/// any other address of the simulation's network as it is.
async fn pod_address(client: &kube::Client, cluster: &str, endpoints: &super::data::Endpoints, addr: SocketAddr) -> Result<Dest, ReplyError> {
    let ip = addr.ip().to_string();
    let slices = Api::<EndpointSlice>::all(client.clone()).list(&ListParams::default()).await.map_err(|_| ReplyError::GeneralFailure)?;
    for slice in &slices.items {
        let Some(svc) = slice.metadata.labels.as_ref().and_then(|l| l.get("kubernetes.io/service-name")) else { continue };
        let ns = slice.metadata.namespace.clone().unwrap_or_default();
        for e in slice.endpoints.iter().flatten().filter(|e| e.addresses.contains(&ip)) {
            let ready = e.conditions.as_ref().and_then(|c| c.ready) != Some(false);
            let dest = match endpoints.resolve(&format!("{svc}.{ns}.svc.cluster.local"), addr.port()) {
                Some(process) => Dest::Socket(process),
                None if addr.port() == PORT => Dest::Relay(cluster.to_string()),
                None => continue,
            };
            return if ready { Ok(dest) } else { Err(ReplyError::ConnectionRefused) };
        }
    }
    // Not a Service's: an address of the simulation's network, as it is.
    Ok(Dest::Socket(addr))
}

/// Whether Service `ns/name` has a ready endpoint in its EndpointSlices (on `port`, when
/// given: the port the endpoints serve).
pub(super) async fn has_ready_endpoints(client: &kube::Client, ns: &str, name: &str, port: Option<u16>) -> bool {
    let slices = Api::<EndpointSlice>::namespaced(client.clone(), ns).list(&ListParams::default().labels(&format!("kubernetes.io/service-name={name}"))).await;
    slices.is_ok_and(|l| {
        l.items.iter().any(|s| {
            port.is_none_or(|p| s.ports.iter().flatten().any(|sp| sp.port == Some(i32::from(p))))
                && s.endpoints.iter().flatten().any(|e| e.conditions.as_ref().and_then(|c| c.ready) != Some(false))
        })
    })
}

/// Whether any simulated cluster exports `ns/name` (a ServiceExport) and has ready
/// endpoints for it: the backends a global Service load-balances to.
async fn exported_anywhere_with_endpoints(cfg: &SimConfig, ns: &str, name: &str) -> bool {
    let Ok(specs) = super::cluster::cluster_specs(cfg) else { return false };
    for c in &specs {
        let Ok(client) = super::client(cfg, &c.name).await else { continue };
        if matches!(objects::get(&client, &SERVICE_EXPORT, Some(ns), name).await, Ok(Some(_))) && has_ready_endpoints(&client, ns, name, None).await {
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kwok_runs_the_stand_in_for_the_relay_port_of_any_pod() {
        let cfg = SimConfig::from_env();
        let spec = super::super::cluster::cluster_specs(&cfg).expect("specs").remove(0);
        let text = kwok_config(&cfg, &spec, std::path::Path::new("/opt/pa/platform-acceptance"));
        let docs: Vec<serde_json::Value> = serde_yaml_ng::Deserializer::from_str(&text).map(|d| serde_json::Value::deserialize(d).unwrap()).collect();
        let forward = docs.iter().find(|d| d["kind"] == "ClusterPortForward").expect("a ClusterPortForward");
        assert!(forward["spec"].get("selector").is_none(), "every pod: only relay pods are forwarded to on this port");
        assert_eq!(forward["spec"]["forwards"][0]["ports"][0], PORT);
        let command = forward["spec"]["forwards"][0]["command"].as_array().unwrap();
        assert_eq!(command[..5], ["/opt/pa/platform-acceptance", "sim", "relay", "--cluster", spec.name.as_str()].map(serde_json::Value::from));
        assert!(docs.iter().any(|d| d["kind"] == "Stage"), "the Stages stay");
    }

    #[test]
    fn connect_errors_become_socks_replies() {
        assert_eq!(io_reply(&std::io::Error::from(std::io::ErrorKind::ConnectionRefused)).as_u8(), ReplyError::ConnectionRefused.as_u8());
        assert_eq!(io_reply(&std::io::Error::from(std::io::ErrorKind::NetworkUnreachable)).as_u8(), ReplyError::NetworkUnreachable.as_u8());
    }

    use serde::Deserialize;
}
