//! The relay: a path into a cluster's network that needs only its API server, so the
//! data-plane checks speak PostgreSQL, Redis, S3 and HTTP to `…svc.cluster.local` and
//! `…svc.clusterset.local` *from inside* the cluster, from a laptop or a CI runner.
//!
//! On first use in a cluster the [`Relay`] starts one pod there: a SOCKS5 server
//! ([`DEFAULT_IMAGE`], `--relay-image` for a registry mirror), port [`PORT`], in a
//! namespace of the run's own (labelled disposable and with the run's id, so `sweep`
//! removes what a killed run left; removed when the run ends). Every connection a check
//! makes goes to a loopback listener of the harness, then through an API-server
//! port-forward to that pod, which connects onwards:
//!
//! 1. **DNS**: a cluster name is asked of the cluster's own DNS (the `kube-system/kube-dns`
//!    Service address), through the relay, over TCP: NXDOMAIN names the missing Service
//!    or ServiceImport, as the cluster itself sees it.
//! 2. **Connect**: the relay connects to the address the DNS gave (a probe connection
//!    first, so "refused" or "unreachable" is the lookup's answer, naming the hop).
//! 3. **Traffic**: each connection of the check is one port-forward stream and one SOCKS5
//!    CONNECT to that address.
//!
//! Names outside the cluster (an IP address, a DNS name of the site) are handed to the
//! relay as they are. The relay writes (a namespace, a pod, port-forwards): it is only used
//! on targets that may be written to; the check context skips the unit otherwise.
//!
//! ```
//! use platform_acceptance::cluster::relay::{pod_manifest, DEFAULT_IMAGE, PORT};
//! let pod = pod_manifest(DEFAULT_IMAGE, "ab12cd34ef");
//! assert_eq!(pod["metadata"]["labels"]["platform-acceptance.io/run"], "ab12cd34ef");
//! assert_eq!(pod["spec"]["containers"][0]["ports"][0]["containerPort"], PORT);
//! ```

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::{Namespace, Pod, Service};
use kube::api::{Api, DeleteParams, PostParams};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::OnceCell;

use super::dns::{cluster_name, query_over, unresolved};
use super::lease::{self, RUN_LABEL};
use super::resolve::{LookupError, Resolve};

/// The relay's image: a SOCKS5 server listening on [`PORT`] without authentication
/// (github.com/serjs/socks5-server). Override with `--relay-image` (e.g. a Harbor mirror).
pub const DEFAULT_IMAGE: &str = "docker.io/serjs/go-socks5-proxy:v0.0.3";
/// The relay container's SOCKS5 port.
pub const PORT: u16 = 1080;
/// Name of the relay pod in its namespace.
pub const POD: &str = "relay";
/// `app.kubernetes.io/name` of the relay pod.
pub const APP: &str = "platform-acceptance-relay";
/// How long a relay pod may take to run (image pull included).
const START_WAIT: Duration = Duration::from_secs(120);
/// How long one step through the relay (port-forward, SOCKS5 handshake, DNS answer) may take.
const STEP: Duration = Duration::from_secs(10);

/// How data-plane checks reach the clusters' services (`--network`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Network {
    /// Through a relay pod on the cluster, over the API server (see the module docs).
    #[default]
    Relay,
    /// Straight from the harness: its resolver must answer cluster names (a harness running
    /// inside the cluster, a VPN, routed service ranges).
    Direct,
}

/// Gives every target the relay (`--network relay`). On a target that may not be written
/// to, the checks that would need it are skipped ("needs --allow-writes"). DNS records of
/// names outside the clusters are still asked of each target's former resolver.
pub fn attach(targets: &mut BTreeMap<String, super::Target>, image: &str) {
    let clients: BTreeMap<String, kube::Client> = targets.iter().map(|(n, t)| (n.clone(), t.client.clone())).collect();
    let Some(site) = targets.values().next().map(|t| t.resolver.clone()) else { return };
    let relays = Relay::per_cluster(&clients, image, site);
    for (name, t) in targets.iter_mut() {
        t.resolver = relays[name].clone();
    }
}

/// The relay's namespace for run `run`.
pub fn namespace(run: &str) -> String {
    format!("pa-relay-{run}")
}

/// The relay pod: one SOCKS5 container, unprivileged, labelled with the run.
pub fn pod_manifest(image: &str, run: &str) -> serde_json::Value {
    socks_pod(image, run, &namespace(run), POD, APP)
}

/// A pod running the relay's SOCKS5 server on [`PORT`]: `ns/name`, labelled
/// `app.kubernetes.io/name: app` and with the run (also a backend a round trip can reach:
/// it answers a SOCKS5 greeting).
pub fn socks_pod(image: &str, run: &str, ns: &str, name: &str, app: &str) -> serde_json::Value {
    serde_json::json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": ns,
            "labels": {RUN_LABEL: run, "app.kubernetes.io/name": app, "app.kubernetes.io/managed-by": lease::MANAGER},
        },
        "spec": {
            "automountServiceAccountToken": false,
            "enableServiceLinks": false,
            "terminationGracePeriodSeconds": 1,
            "securityContext": {"runAsNonRoot": true, "runAsUser": 65534, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{
                "name": "socks5",
                "image": image,
                "ports": [{"name": "socks5", "containerPort": PORT, "protocol": "TCP"}],
                "env": [{"name": "PROXY_PORT", "value": PORT.to_string()}],
                "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}, "limits": {"memory": "64Mi"}},
                "securityContext": {"allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true, "capabilities": {"drop": ["ALL"]}},
            }],
        },
    })
}

/// Where a relay connects: an address, or a name the relay resolves.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Dest {
    Addr(SocketAddr),
    Name(String, u16),
}

impl std::fmt::Display for Dest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Dest::Addr(a) => write!(f, "{a}"),
            Dest::Name(h, p) => write!(f, "{h}:{p}"),
        }
    }
}

/// One cluster's relay pod, once running.
#[derive(Clone)]
struct RelayPod {
    client: kube::Client,
    ns: String,
}

/// Data-plane traffic through relay pods (see the module docs), as one cluster's target
/// resolves names; the relays of all clusters of a run share their pods and listeners.
pub struct Relay {
    clients: BTreeMap<String, kube::Client>,
    /// Answers DNS record questions about names outside the clusters (the site's DNS as
    /// this machine sees it).
    site: Arc<dyn Resolve>,
    /// Whose names `lookup` resolves (the target's cluster).
    home: String,
    image: String,
    shared: Arc<Shared>,
    describe: String,
}

/// A cluster's relay pod, started once per run (or why it could not be).
type PodCell = Arc<OnceCell<Result<RelayPod, String>>>;

#[derive(Default)]
struct Shared {
    run: OnceLock<String>,
    pods: Mutex<HashMap<String, PodCell>>,
    listeners: Mutex<HashMap<(String, Dest), SocketAddr>>,
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

impl Relay {
    /// Relays for every cluster of `clients` (unrecorded clients: the relay is the run's,
    /// not a check's), one resolver per cluster, sharing pods and listeners.
    pub fn per_cluster(clients: &BTreeMap<String, kube::Client>, image: &str, site: Arc<dyn Resolve>) -> BTreeMap<String, Arc<dyn Resolve>> {
        let shared = Arc::new(Shared::default());
        clients
            .keys()
            .map(|home| {
                let r = Relay {
                    clients: clients.clone(),
                    site: site.clone(),
                    home: home.clone(),
                    image: image.to_string(),
                    shared: shared.clone(),
                    describe: format!("relay pod on cluster {home} ({image})"),
                };
                (home.clone(), Arc::new(r) as Arc<dyn Resolve>)
            })
            .collect()
    }

    /// The cluster's relay pod, started on first use (and once per run).
    async fn pod(&self, cluster: &str) -> Result<RelayPod, String> {
        let client = self.clients.get(cluster).ok_or_else(|| format!("no cluster {cluster} among the targets"))?.clone();
        let run = self.shared.run.get().cloned().ok_or("the relay was used outside a run")?;
        let cell = self.shared.pods.lock().expect("relay lock").entry(cluster.to_string()).or_default().clone();
        cell.get_or_init(|| start_pod(client, cluster.to_string(), self.image.clone(), run)).await.clone()
    }

    /// A new stream to `dest` through `cluster`'s relay.
    async fn dial(&self, cluster: &str, dest: &Dest) -> Result<impl AsyncRead + AsyncWrite + Unpin + use<>, DialError> {
        let pod = self.pod(cluster).await.map_err(DialError::way_in)?;
        dial(&pod, cluster, dest).await
    }

    /// The address of `cluster`'s DNS: the `kube-system/kube-dns` Service.
    async fn dns_ip(&self, cluster: &str) -> Result<IpAddr, LookupError> {
        let client = self.clients.get(cluster).ok_or_else(|| LookupError::not_asked(format!("no cluster {cluster} among the targets")))?;
        let svc = Api::<Service>::namespaced(client.clone(), "kube-system")
            .get_opt("kube-dns")
            .await
            .map_err(|e| LookupError::not_asked(format!("reading Service kube-system/kube-dns on cluster {cluster}: {}", crate::errline::kube(&e))))?
            .ok_or_else(|| LookupError::answered(format!("cluster {cluster} has no Service kube-system/kube-dns, so its DNS address is unknown")))?;
        svc.spec
            .and_then(|s| s.cluster_ip)
            .and_then(|ip| ip.parse().ok())
            .ok_or_else(|| LookupError::answered(format!("Service kube-system/kube-dns on cluster {cluster} has no cluster IP")))
    }

    /// The addresses `cluster`'s own DNS gives cluster name `name`, asked through its relay;
    /// never empty.
    async fn cluster_dns(&self, cluster: &str, name: &str) -> Result<Vec<IpAddr>, LookupError> {
        let dns = self.dns_ip(cluster).await?;
        let mut stream = self.dial(cluster, &Dest::Addr(SocketAddr::new(dns, 53))).await.map_err(|e| e.lookup(format!("{name}: asking the DNS of cluster {cluster}: {}", e.line)))?;
        let answer = tokio::time::timeout(STEP, query_over(&mut stream, name))
            .await
            .map_err(|_| LookupError::not_asked(format!("{name}: no answer from the DNS of cluster {cluster} at {dns} within {}s", STEP.as_secs())))?
            .map_err(|e| e.at(format!("{dns}:53 (through the relay on {cluster})")));
        match unresolved(name, cluster, dns, &answer) {
            Some(why) => Err(why),
            None => Ok(answer.unwrap_or_default()),
        }
    }

    /// Where a check connects for `host:port` as `cluster` resolves it (see the module docs).
    async fn lookup_via(&self, cluster: &str, host: &str, port: u16) -> Result<Vec<SocketAddr>, LookupError> {
        let dest = match cluster_name(host) {
            Some(name) => Dest::Addr(SocketAddr::new(self.cluster_dns(cluster, &name).await?[0], port)),
            None => match host.trim_end_matches('.').parse::<IpAddr>() {
                Ok(ip) => Dest::Addr(SocketAddr::new(ip, port)),
                Err(_) => Dest::Name(host.trim_end_matches('.').to_ascii_lowercase(), port),
            },
        };
        // The connect hop: a probe, so refused or unreachable is said here, naming it. Silence
        // is the check's exchange to meet (an Error, "not evaluated", as without the relay).
        match self.dial(cluster, &dest).await {
            Ok(probe) => drop(probe),
            Err(e) if e.silent => {}
            Err(e) if dest.to_string() == format!("{host}:{port}") => return Err(e.lookup(e.line.clone())),
            Err(e) => return Err(e.lookup(format!("{host}:{port} (at {dest}): {}", e.line))),
        }
        Ok(vec![self.listener(cluster, dest).await.map_err(LookupError::not_asked)?])
    }

    /// The loopback listener that relays to `dest` through `cluster` (one per destination).
    async fn listener(&self, cluster: &str, dest: Dest) -> Result<SocketAddr, String> {
        let key = (cluster.to_string(), dest.clone());
        if let Some(a) = self.shared.listeners.lock().expect("relay lock").get(&key) {
            return Ok(*a);
        }
        let l = tokio::net::TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, 0)).await.map_err(|e| format!("relay listener: {e}"))?;
        let addr = l.local_addr().map_err(|e| e.to_string())?;
        let pod = self.pod(cluster).await?;
        let cluster = cluster.to_string();
        let d = dest.clone();
        let task = tokio::spawn(async move {
            while let Ok((mut local, _)) = l.accept().await {
                let (pod, cluster, d) = (pod.clone(), cluster.clone(), d.clone());
                tokio::spawn(async move {
                    // A relay that cannot connect closes the check's connection: the check
                    // meets it as a closed connection; the lookup's probe named the hop.
                    if let Ok(mut remote) = dial(&pod, &cluster, &d).await {
                        let _ = tokio::io::copy_bidirectional(&mut local, &mut remote).await;
                    }
                });
            }
        });
        self.shared.tasks.lock().expect("relay lock").push(task);
        self.shared.listeners.lock().expect("relay lock").insert(key, addr);
        Ok(addr)
    }
}

/// Creates the run's relay namespace and pod on `cluster` and waits until the pod runs.
async fn start_pod(client: kube::Client, cluster: String, image: String, run: String) -> Result<RelayPod, String> {
    let ns = namespace(&run);
    match lease::create_namespace(&client, &ns, &run).await {
        Ok(()) => {}
        Err(kube::Error::Api(s)) if s.code == 409 => {}
        Err(e) => return Err(format!("creating the relay's namespace {ns} on cluster {cluster}: {}", crate::errline::kube(&e))),
    }
    match lease::default_service_account(&client, &ns, lease::SERVICE_ACCOUNT_WAIT).await {
        Ok(true) => {}
        Ok(false) => return Err(format!("starting the relay pod on cluster {cluster}: {}", lease::no_service_account(&ns, lease::SERVICE_ACCOUNT_WAIT))),
        Err(e) => return Err(format!("reading ServiceAccount {ns}/default on cluster {cluster}: {}", crate::errline::kube(&e))),
    }
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let manifest: Pod = serde_json::from_value(pod_manifest(&image, &run)).expect("relay pod manifest");
    match pods.create(&PostParams { field_manager: Some(lease::MANAGER.into()), ..Default::default() }, &manifest).await {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 409 => {}
        Err(e) => return Err(format!("starting the relay pod {ns}/{POD} on cluster {cluster}: {}", crate::errline::kube(&e))),
    }
    let deadline = tokio::time::Instant::now() + START_WAIT;
    let mut last = String::from("not yet scheduled");
    while tokio::time::Instant::now() < deadline {
        if let Some(p) = pods.get_opt(POD).await.map_err(|e| format!("reading the relay pod {ns}/{POD} on cluster {cluster}: {}", crate::errline::kube(&e)))? {
            let status = p.status.unwrap_or_default();
            let ready = status.conditions.iter().flatten().any(|c| c.type_ == "Ready" && c.status == "True");
            if ready {
                return Ok(RelayPod { client, ns });
            }
            last = waiting_reason(&status).unwrap_or_else(|| format!("phase {}", status.phase.unwrap_or_else(|| "unknown".into())));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Err(format!("the relay pod {ns}/{POD} on cluster {cluster} is not ready after {}s ({last}; image {image}, see --relay-image)", START_WAIT.as_secs()))
}

/// Why the relay container is not running, as its status says (`ImagePullBackOff: …`).
fn waiting_reason(status: &k8s_openapi::api::core::v1::PodStatus) -> Option<String> {
    let c = status.container_statuses.as_ref()?.first()?;
    let w = c.state.as_ref()?.waiting.as_ref()?;
    Some(format!("{}{}", w.reason.clone().unwrap_or_default(), w.message.as_ref().map(|m| format!(": {m}")).unwrap_or_default()))
}

/// Why no stream through the relay could be opened.
struct DialError {
    /// One readable line naming the hop.
    line: String,
    /// Nothing answered in time (as opposed to a refusal or an unreachable address).
    silent: bool,
    /// The relay itself failed (its pod, the port-forward to it), not the destination.
    way_in: bool,
}

impl DialError {
    /// The relay could not be used: nothing was asked of the destination.
    fn way_in(line: String) -> DialError {
        DialError { line, silent: false, way_in: true }
    }

    /// As a lookup's error, in `line`'s words: the destination answered unless the relay
    /// failed or nothing answered in time.
    fn lookup(&self, line: String) -> LookupError {
        if self.way_in || self.silent { LookupError::not_asked(line) } else { LookupError::answered(line) }
    }
}

/// One port-forward stream to the relay pod, then a SOCKS5 CONNECT to `dest`.
async fn dial(pod: &RelayPod, cluster: &str, dest: &Dest) -> Result<impl AsyncRead + AsyncWrite + Unpin + use<>, DialError> {
    let via = format!("relay pod {}/{POD} on cluster {cluster}", pod.ns);
    let step = async {
        let api: Api<Pod> = Api::namespaced(pod.client.clone(), &pod.ns);
        let mut pf = api
            .portforward(POD, &[PORT])
            .await
            .map_err(|e| DialError::way_in(format!("port-forward to the {via}: {}", super::api_error("", e).summary().trim_start_matches(": "))))?;
        let stream = pf.take_stream(PORT).ok_or_else(|| DialError::way_in(format!("port-forward to the {via}: no stream")))?;
        let kubelet_error = pf.take_error(PORT);
        // The forwarder runs as long as the stream is open.
        tokio::spawn(async move {
            let _ = pf.join().await;
        });
        let target = match dest {
            Dest::Addr(a) => tokio_socks::TargetAddr::Ip(*a),
            Dest::Name(h, p) => tokio_socks::TargetAddr::Domain(h.clone().into(), *p),
        };
        match tokio_socks::tcp::Socks5Stream::connect_with_socket(stream, target).await {
            Ok(s) => Ok(s),
            Err(e) => {
                // A closed stream: the node or the pod refused the forward; say why if it did.
                let node = match kubelet_error {
                    Some(f) => tokio::time::timeout(Duration::from_secs(1), f).await.ok().flatten(),
                    None => None,
                };
                let silent = matches!(e, tokio_socks::Error::TtlExpired);
                let (line, way_in) = match (node, &e) {
                    (Some(why), _) => (format!("port-forward to the {via} failed: {why}"), true),
                    (None, tokio_socks::Error::Io(_)) => (format!("the {via} closed the connection ({e})"), true),
                    _ => (format!("connecting to {dest} from the {via}: {}", socks_reply(&e)), false),
                };
                Err(DialError { line, silent, way_in })
            }
        }
    };
    tokio::time::timeout(STEP, step).await.map_err(|_| DialError { line: format!("no answer through the {via} within {}s", STEP.as_secs()), silent: true, way_in: false })?
}

/// The relay's SOCKS5 reply, as a hop failure.
fn socks_reply(e: &tokio_socks::Error) -> String {
    use tokio_socks::Error as E;
    match e {
        E::ConnectionRefused => "connection refused (nothing listens there, or the Service has no ready endpoint)".into(),
        E::HostUnreachable => "host unreachable (the name does not resolve there, or no route to it)".into(),
        E::NetworkUnreachable => "network unreachable from inside the cluster".into(),
        E::TtlExpired => "no answer in time".into(),
        other => other.to_string(),
    }
}

impl Resolve for Relay {
    fn lookup<'a>(&'a self, host: &'a str, port: u16) -> BoxFuture<'a, Result<Vec<SocketAddr>, LookupError>> {
        Box::pin(self.lookup_via(&self.home, host, port))
    }

    fn lookup_in<'a>(&'a self, cluster: &'a str, host: &'a str, port: u16) -> BoxFuture<'a, Result<Vec<SocketAddr>, LookupError>> {
        Box::pin(self.lookup_via(cluster, host, port))
    }

    fn addresses<'a>(&'a self, host: &'a str) -> BoxFuture<'a, Result<Vec<IpAddr>, LookupError>> {
        Box::pin(async move {
            match cluster_name(host) {
                Some(name) => self.cluster_dns(&self.home, &name).await,
                None => self.site.addresses(host).await,
            }
        })
    }

    fn describe(&self) -> &str {
        &self.describe
    }

    fn writes(&self) -> bool {
        true
    }

    fn relay_image(&self) -> Option<&str> {
        Some(&self.image)
    }

    fn begin_run(&self, run: &str) {
        let _ = self.shared.run.set(run.to_string());
    }

    fn end_run(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            for t in self.shared.tasks.lock().expect("relay lock").drain(..) {
                t.abort();
            }
            self.shared.listeners.lock().expect("relay lock").clear();
            // Every cluster where a start was tried: one that failed or was cut short (its
            // check timed out) may have left the namespace without a ready pod.
            let tried: Vec<String> = self.shared.pods.lock().expect("relay lock").drain().map(|(cluster, _)| cluster).collect();
            let Some(run) = self.shared.run.get() else { return };
            for cluster in tried {
                if let Some(client) = self.clients.get(&cluster) {
                    let _ = Api::<Namespace>::all(client.clone()).delete(&namespace(run), &DeleteParams::background()).await;
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_relay_pod_is_unprivileged_and_labelled_with_the_run() {
        let pod = pod_manifest("harbor.example.com/mirror/go-socks5-proxy:v0.0.3", "r1");
        assert_eq!(pod["metadata"]["namespace"], "pa-relay-r1");
        assert_eq!(pod["metadata"]["labels"]["app.kubernetes.io/name"], APP);
        let c = &pod["spec"]["containers"][0];
        assert_eq!(c["image"], "harbor.example.com/mirror/go-socks5-proxy:v0.0.3");
        assert_eq!(c["securityContext"]["allowPrivilegeEscalation"], false);
        assert_eq!(pod["spec"]["automountServiceAccountToken"], false);
        let _: Pod = serde_json::from_value(pod).expect("a valid Pod");
    }

    #[tokio::test]
    async fn attached_relays_write_and_are_used_only_within_a_run() {
        use crate::cluster::fake::FakeApi;
        let fake = FakeApi::new(|_| None);
        let mut targets = BTreeMap::from([("infra".to_string(), fake.target())]);
        attach(&mut targets, "mirror.example/socks:1");
        let r = &targets["infra"].resolver;
        assert!(r.writes(), "the check context skips it without --allow-writes");
        assert_eq!(r.describe(), "relay pod on cluster infra (mirror.example/socks:1)");
        // Outside a run the relay refuses, rather than start a pod nobody would remove.
        assert_eq!(r.lookup("10.25.11.3", 9000).await.unwrap_err(), LookupError::not_asked("the relay was used outside a run"));
        assert!(fake.asked().is_empty(), "nothing was sent");
        assert_eq!(r.lookup_in("apps", "10.25.11.3", 9000).await.unwrap_err(), LookupError::not_asked("no cluster apps among the targets"));
    }

    #[tokio::test]
    async fn a_relay_that_could_not_start_is_not_evaluated_and_its_namespace_is_removed() {
        use crate::cluster::fake::FakeApi;
        use serde_json::json;
        let fake = FakeApi::new(|path| match path {
            "/api/v1/namespaces" => Some((201, json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "pa-relay-r1"}}))),
            "/api/v1/namespaces/pa-relay-r1/serviceaccounts/default" => Some((200, json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default", "namespace": "pa-relay-r1"}}))),
            "/api/v1/namespaces/pa-relay-r1/pods" => Some((403, json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "Forbidden", "code": 403, "message": "pods \"relay\" is forbidden: violates PodSecurity \"restricted:latest\""}))),
            "/api/v1/namespaces/pa-relay-r1" => Some((200, json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "pa-relay-r1"}}))),
            _ => None,
        });
        let mut targets = BTreeMap::from([("infra".to_string(), fake.target())]);
        attach(&mut targets, DEFAULT_IMAGE);
        let r = &targets["infra"].resolver;
        r.begin_run("r1");
        let e = r.lookup("10.25.11.3", 9000).await.unwrap_err();
        assert!(e.not_asked, "{e}");
        assert_eq!(e.line, "starting the relay pod pa-relay-r1/relay on cluster infra: 403 Forbidden: pods \"relay\" is forbidden: violates PodSecurity \"restricted:latest\"");
        assert!(!fake.asked().contains(&"/api/v1/namespaces/pa-relay-r1".to_string()), "nothing removed before the run ends");
        r.end_run().await;
        assert_eq!(fake.asked().last().map(String::as_str), Some("/api/v1/namespaces/pa-relay-r1"), "the namespace is removed: {:?}", fake.asked());
    }

    #[test]
    fn socks_replies_name_the_hop() {
        assert!(socks_reply(&tokio_socks::Error::ConnectionRefused).contains("no ready endpoint"));
        assert!(socks_reply(&tokio_socks::Error::NetworkUnreachable).contains("network unreachable"));
    }
}
