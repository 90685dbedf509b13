//! The clusters' DNS: one real CoreDNS per simulated cluster (`sim/go/coredns`), and the
//! resolver that asks it.
//!
//! Each CoreDNS runs inside the simulation's network at its cluster's DNS address
//! ([`ClusterSpec::dns_ip`], e.g. `10.245.0.10:53`) with the `kubernetes` plugin on that
//! cluster's API server: `<svc>.<ns>.svc.cluster.local` answers from the cluster's
//! Services and EndpointSlices, and, through the plugin's `multicluster` option,
//! `<svc>.<ns>.svc.clusterset.local` from its MCS-API ServiceImports (`spec.ips`). So
//! whether a name resolves is decided by the cluster's objects, as on a real cluster:
//! delete a ServiceImport and its clusterset name is gone.
//!
//! [`ClusterDns`] is the harness's resolver for the simulation. A cluster name is asked
//! of that cluster's CoreDNS (DNS over TCP through the host forward
//! [`super::cluster::Ports::dns`]); a name that resolves is then reached where the
//! simulation serves it (its data services, through the endpoint map). That last hop,
//! from a Service address to the process behind it, is the simulation's stand-in for
//! kube-proxy/Cilium's service load balancing. Names outside the clusters (MinIO's
//! address, the API servers' DNS records) come from the endpoint map alone.
//!
//! ```
//! use platform_acceptance::sim::dns::cluster_name;
//! assert_eq!(cluster_name("pg-rw.databases.svc.clusterset.local.").as_deref(), Some("pg-rw.databases.svc.clusterset.local"));
//! assert_eq!(cluster_name("pg-rw.databases.svc").as_deref(), Some("pg-rw.databases.svc.cluster.local"));
//! assert_eq!(cluster_name("10.25.11.3"), None);
//! ```

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use futures::future::BoxFuture;

use super::SimConfig;
use super::cluster::ClusterSpec;
use super::data::Endpoints;
use crate::cluster::dns::DnsError;
use crate::cluster::resolve::{LookupError, Resolve};

/// File name of a cluster's Corefile (in the cluster's state directory).
pub const COREFILE: &str = "Corefile";

/// How long one DNS exchange may take.
const TIMEOUT: Duration = Duration::from_secs(3);

/// The Corefile of cluster `c`: one server at the cluster's DNS address, the `kubernetes`
/// plugin for `cluster.local` and `clusterset.local` (multicluster) on the API server of
/// `kubeconfig`, and `health` on loopback for the simulation's liveness probe. (Not
/// `ready`: it stays unready while a ServiceImport version it reads is not served, and the
/// process must keep running then, answering what it can, as on a real cluster.)
pub fn corefile(c: &ClusterSpec, kubeconfig: &Path) -> String {
    format!(
        ".:53 {{\n    bind {ip}\n    errors\n    health 127.0.0.1:{health}\n    kubernetes cluster.local clusterset.local {{\n        kubeconfig {kc}\n        multicluster clusterset.local\n    }}\n}}\n",
        ip = c.dns_ip,
        health = c.ports.coredns,
        kc = kubeconfig.display(),
    )
}

/// Writes cluster `c`'s Corefile (before CoreDNS starts).
pub fn write_corefile(cfg: &SimConfig, c: &ClusterSpec) -> anyhow::Result<()> {
    let dir = c.dir(cfg);
    let path = dir.join(COREFILE);
    std::fs::write(&path, corefile(c, &dir.join("admin.kubeconfig"))).with_context(|| format!("write {}", path.display()))
}

pub use crate::cluster::dns::cluster_name;

/// One A query for `name` to the DNS server at `server`, over TCP. `Ok(addresses)`
/// (empty for NODATA), or `Err` with the response code (`NXDOMAIN`, `Server Failure`, …)
/// or the transport error.
pub async fn query(server: SocketAddr, name: &str) -> Result<Vec<IpAddr>, String> {
    ask(server, name).await.map_err(|e| e.into_line(server))
}

/// [`query`], keeping apart a response code and a failed exchange.
async fn ask(server: SocketAddr, name: &str) -> Result<Vec<IpAddr>, DnsError> {
    let exchange = async {
        let mut s = tokio::net::TcpStream::connect(server).await.map_err(|e| DnsError::Transport(e.to_string()))?;
        crate::cluster::dns::query_over(&mut s, name).await
    };
    tokio::time::timeout(TIMEOUT, exchange).await.map_err(|_| DnsError::Transport(format!("no answer within {}s", TIMEOUT.as_secs())))?
}

/// One cluster's DNS as the harness reaches it.
#[derive(Debug, Clone, Copy)]
struct Server {
    /// The host forward to the cluster's CoreDNS.
    forward: SocketAddr,
    /// Where the cluster's DNS listens inside the simulation (for messages).
    dns_ip: IpAddr,
}

/// The resolver of one simulated cluster's target: cluster names through that cluster's
/// CoreDNS (another cluster's through its own, [`Resolve::lookup_in`]), the rest through
/// the endpoint map (see the module docs).
pub struct ClusterDns {
    cluster: String,
    servers: BTreeMap<String, Server>,
    endpoints: Endpoints,
    describe: String,
}

impl ClusterDns {
    /// The resolver of cluster `cluster`, knowing every cluster of `specs`.
    pub fn new(cluster: &str, specs: &[ClusterSpec], endpoints: Endpoints) -> ClusterDns {
        ClusterDns {
            cluster: cluster.to_string(),
            servers: specs
                .iter()
                .map(|c| (c.name.clone(), Server { forward: SocketAddr::from(([127, 0, 0, 1], c.ports.dns)), dns_ip: c.dns_ip }))
                .collect(),
            endpoints,
            describe: format!("CoreDNS of cluster {cluster} in the simulation"),
        }
    }

    /// The addresses cluster `cluster`'s CoreDNS gives cluster name `name`; never empty.
    async fn cluster_ips(&self, cluster: &str, name: &str) -> Result<Vec<IpAddr>, LookupError> {
        let server = self.servers.get(cluster).ok_or_else(|| LookupError::not_asked(format!("{name}: no simulated cluster {cluster}")))?;
        let answer = ask(server.forward, name).await.map_err(|e| e.at(server.forward));
        match crate::cluster::dns::unresolved(name, cluster, server.dns_ip, &answer) {
            Some(why) => Err(why),
            None => Ok(answer.unwrap_or_default()),
        }
    }

    async fn lookup_cluster_name(&self, cluster: &str, name: &str, port: u16) -> Result<Vec<SocketAddr>, LookupError> {
        self.cluster_ips(cluster, name).await?;
        // Service address -> the process the simulation runs behind it.
        let local = name.replace(".svc.clusterset.local", ".svc.cluster.local");
        Ok(self.endpoints.resolve(&local, port).into_iter().collect())
    }
}

impl Resolve for ClusterDns {
    fn lookup<'a>(&'a self, host: &'a str, port: u16) -> BoxFuture<'a, Result<Vec<SocketAddr>, LookupError>> {
        self.lookup_in(&self.cluster, host, port)
    }

    fn lookup_in<'a>(&'a self, cluster: &'a str, host: &'a str, port: u16) -> BoxFuture<'a, Result<Vec<SocketAddr>, LookupError>> {
        Box::pin(async move {
            match cluster_name(host) {
                Some(name) => self.lookup_cluster_name(cluster, &name, port).await,
                None => Ok(self.endpoints.resolve(host, port).into_iter().collect()),
            }
        })
    }

    fn addresses<'a>(&'a self, host: &'a str) -> BoxFuture<'a, Result<Vec<IpAddr>, LookupError>> {
        Box::pin(async move {
            match cluster_name(host) {
                Some(name) => self.cluster_ips(&self.cluster, &name).await,
                None => Ok(self.endpoints.addresses(host)),
            }
        })
    }

    fn describe(&self) -> &str {
        &self.describe
    }
}

#[cfg(test)]
mod tests {
    use hickory_proto::op::{Message, MessageType, ResponseCode};
    use hickory_proto::rr::RData;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    #[test]
    fn corefile_serves_both_zones_at_the_cluster_dns_address() {
        let cfg = SimConfig::from_env();
        let spec = spec("infra", "127.0.0.1:32110".parse().unwrap());
        let text = corefile(&spec, &spec.dir(&cfg).join("admin.kubeconfig"));
        assert!(text.contains("bind 10.245.0.10\n"), "{text}");
        assert!(text.contains("health 127.0.0.1:32109\n"), "{text}");
        assert!(text.contains("kubernetes cluster.local clusterset.local {"), "{text}");
        assert!(text.contains("multicluster clusterset.local\n"), "{text}");
    }

    /// A DNS server on loopback that answers one query with `code` and `ips`.
    async fn server(code: ResponseCode, ips: Vec<std::net::Ipv4Addr>) -> SocketAddr {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut s, _) = l.accept().await.unwrap();
            let len = s.read_u16().await.unwrap();
            let mut buf = vec![0; usize::from(len)];
            s.read_exact(&mut buf).await.unwrap();
            let q = Message::from_vec(&buf).unwrap();
            let mut a = Message::new();
            a.set_id(q.id()).set_message_type(MessageType::Response).set_response_code(code).add_queries(q.queries().to_vec());
            for ip in ips {
                let name = q.queries()[0].name().clone();
                a.add_answer(hickory_proto::rr::Record::from_rdata(name, 5, RData::A(ip.into())));
            }
            let out = a.to_vec().unwrap();
            s.write_all(&(out.len() as u16).to_be_bytes()).await.unwrap();
            s.write_all(&out).await.unwrap();
        });
        addr
    }

    fn spec(name: &str, dns: SocketAddr) -> ClusterSpec {
        let mut ports = super::super::cluster::Ports::for_index(32100, 0);
        ports.dns = dns.port();
        ClusterSpec {
            name: name.into(),
            index: 0,
            pod_cidr: "10.244.0.0/16".parse().unwrap(),
            service_cidr: "10.245.0.0/16".parse().unwrap(),
            service_ip: "10.245.0.1".parse().unwrap(),
            dns_ip: "10.245.0.10".parse().unwrap(),
            ports,
            nodes: vec![],
        }
    }

    #[tokio::test]
    async fn each_cluster_resolves_its_own_names_then_the_data_path_maps_them() {
        use crate::sim::data::Endpoint;
        let served: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let endpoints = Endpoints { endpoints: vec![Endpoint { service: "http".into(), host: "logs.obs.svc.cluster.local".into(), port: 80, addr: served }] };
        // The service lives on infra; apps has neither it nor an import of it.
        let infra = server(ResponseCode::NoError, vec!["10.245.7.7".parse().unwrap()]).await;
        let apps = server(ResponseCode::NXDomain, vec![]).await;
        let specs = [spec("infra", infra), spec("apps", apps)];
        let dns = ClusterDns::new("apps", &specs, endpoints);
        assert_eq!(dns.lookup_in("infra", "logs.obs.svc.cluster.local", 80).await, Ok(vec![served]));
        let err = dns.lookup("logs.obs.svc.clusterset.local", 80).await.unwrap_err();
        assert!(err.line.contains("does not resolve on cluster apps (NXDOMAIN from its DNS at 10.245.0.10: no such ServiceImport)") && !err.not_asked, "{err}");
        // A DNS that does not answer says nothing about the name.
        let silent = ClusterDns::new("apps", &[spec("apps", "127.0.0.1:1".parse().unwrap())], Endpoints::default());
        let err = silent.lookup("logs.obs.svc.cluster.local", 80).await.unwrap_err();
        assert!(err.not_asked && err.line.starts_with("logs.obs.svc.cluster.local: no answer from the DNS of cluster apps: DNS server 127.0.0.1:1: "), "{err}");
        // Not a cluster name: the endpoint map alone, no DNS asked.
        assert_eq!(dns.lookup("127.0.0.1", 9).await, Ok(vec!["127.0.0.1:9".parse().unwrap()]));
        assert_eq!(dns.describe(), "CoreDNS of cluster apps in the simulation");
    }

    #[tokio::test]
    async fn query_reads_addresses_and_response_codes() {
        let ok = server(ResponseCode::NoError, vec!["10.245.3.4".parse().unwrap()]).await;
        assert_eq!(query(ok, "pg-rw.databases.svc.cluster.local").await, Ok(vec!["10.245.3.4".parse::<IpAddr>().unwrap()]));
        let nx = server(ResponseCode::NXDomain, vec![]).await;
        let err = query(nx, "pg-rw.databases.svc.clusterset.local").await.unwrap_err();
        assert_eq!(err, "NXDOMAIN");
        let fail = server(ResponseCode::ServFail, vec![]).await;
        assert_eq!(query(fail, "a.b.svc.cluster.local").await, Err("Server Failure".to_string()));
    }
}
