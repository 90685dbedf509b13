//! One simulated cluster as data: its networks (from the GitOps repository's
//! variables), its loopback ports, its nodes. The lowest module of the control plane:
//! [`super::pki`], [`super::kwok`], [`super::kubeconfig`] and [`super::components`]
//! read these types; this module depends on none of them.

use std::net::IpAddr;
use std::path::PathBuf;

use anyhow::{Context, bail};

use super::SimConfig;

/// Control-plane components of a cluster, in start order.
pub const COMPONENTS: [&str; 5] = ["etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok"];

/// Controllers of a cluster started once its CRDs are installed (after
/// [`COMPONENTS`]): the real cert-manager controller (`sim/go/cert-manager`), the real
/// Velero server (`sim/go/velero`, with velero-plugin-for-aws) and the cluster's DNS, a
/// real CoreDNS (`sim/go/coredns`, [`super::dns`]) that reads ServiceImports, so it
/// starts once their CRD is installed, and the real external-secrets controller
/// (`sim/go/external-secrets`), which syncs the platform's ExternalSecrets from the
/// 1Password Connect stand-in ([`super::onepassword`]), and Flux's source-controller and
/// kustomize-controller (`sim/go/flux`), which fetch the GitOps repository from the
/// simulation's Git host ([`super::gitssh`]) and apply it ([`super::scenario`]'s `flux`).
pub const ADDONS: [&str; 7] = ["cert-manager", "velero", "coredns", "external-secrets", "source-controller", "kustomize-controller", "helm-controller"];

/// Default first port; `PA_SIM_PORT_BASE` overrides. Cluster *i* (0 = infra,
/// 1 = apps) uses `base + 100*i + 0..=12`. Below the kernel's ephemeral range
/// (32768+), so outgoing connections never take them.
pub const DEFAULT_PORT_BASE: u16 = 32100;

/// Loopback ports of one cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ports {
    pub apiserver: u16,
    pub etcd_client: u16,
    pub etcd_peer: u16,
    pub controller_manager: u16,
    pub scheduler: u16,
    pub kwok: u16,
    /// cert-manager's /healthz and /metrics.
    pub cert_manager: u16,
    /// Velero's own metrics (`--metrics-address`; its health probe here).
    pub velero: u16,
    /// Velero's controller-runtime metrics (`--controller-metrics-address`, sim/go/velero).
    pub velero_controllers: u16,
    /// CoreDNS's `health` endpoint (inside, on loopback).
    pub coredns: u16,
    /// The host's way to the cluster's DNS: forwarded to `<dns_ip>:53` inside (DNS over TCP).
    pub dns: u16,
    /// external-secrets' controller-runtime metrics (`--metrics-addr`; its health probe here).
    pub external_secrets: u16,
    /// Flux source-controller's artifact server (`--storage-addr`, advertised to
    /// kustomize-controller), metrics and health probe.
    pub source_storage: u16,
    pub source_metrics: u16,
    pub source_health: u16,
    /// Flux kustomize-controller's metrics and health probe.
    pub kustomize_metrics: u16,
    pub kustomize_health: u16,
    /// Flux helm-controller's metrics and health probe.
    pub helm_metrics: u16,
    pub helm_health: u16,
    /// The cluster's Service data path for the real controllers that dial in-cluster names
    /// (a SOCKS5 listener inside, [`super::relay::serve_listener`]; their `HTTP_PROXY`).
    /// Not forwarded to the host.
    pub service_proxy: u16,
}

impl Ports {
    pub fn for_index(base: u16, index: usize) -> Ports {
        let b = base + 100 * index as u16;
        Ports {
            apiserver: b,
            etcd_client: b + 1,
            etcd_peer: b + 2,
            controller_manager: b + 3,
            scheduler: b + 4,
            kwok: b + 5,
            cert_manager: b + 6,
            velero: b + 7,
            velero_controllers: b + 8,
            coredns: b + 9,
            dns: b + 10,
            external_secrets: b + 11,
            service_proxy: b + 12,
            source_storage: b + 13,
            source_metrics: b + 14,
            source_health: b + 15,
            kustomize_metrics: b + 16,
            kustomize_health: b + 17,
            helm_metrics: b + 18,
            helm_health: b + 19,
        }
    }
    /// Ports of one component (etcd has two).
    pub fn of(&self, component: &str) -> Vec<u16> {
        match component {
            "etcd" => vec![self.etcd_client, self.etcd_peer],
            "kube-apiserver" => vec![self.apiserver],
            "kube-controller-manager" => vec![self.controller_manager],
            "kube-scheduler" => vec![self.scheduler],
            "kwok" => vec![self.kwok],
            "cert-manager" => vec![self.cert_manager],
            "velero" => vec![self.velero, self.velero_controllers],
            "coredns" => vec![self.coredns],
            "external-secrets" => vec![self.external_secrets],
            "source-controller" => vec![self.source_storage, self.source_metrics, self.source_health],
            "kustomize-controller" => vec![self.kustomize_metrics, self.kustomize_health],
            "helm-controller" => vec![self.helm_metrics, self.helm_health],
            _ => vec![],
        }
    }
    pub fn all(&self) -> Vec<u16> {
        COMPONENTS.iter().chain(ADDONS.iter()).flat_map(|c| self.of(c)).collect()
    }
}

/// A simulated node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeSpec {
    pub name: String,
    pub internal_ip: String,
    /// The network the node's address is on (its Talos address with prefix length,
    /// truncated; a /32 when the file gives none): local inside the simulation's network.
    pub network: ipnet::IpNet,
}

/// Everything that defines one simulated cluster.
#[derive(Debug, Clone)]
pub struct ClusterSpec {
    pub name: String,
    pub index: usize,
    /// POD_CIDR from the repository (`--cluster-cidr`).
    pub pod_cidr: ipnet::IpNet,
    /// SERVICE_CIDR from the repository (`--service-cluster-ip-range`).
    pub service_cidr: ipnet::IpNet,
    /// First address of the service range (the `kubernetes` Service).
    pub service_ip: IpAddr,
    /// The cluster DNS address: `CLUSTER_DNS_IP` from the repository, else the tenth
    /// address of the service range (the kubelet's `clusterDNS` on Talos and kubeadm).
    /// CoreDNS listens there inside the simulation's network.
    pub dns_ip: IpAddr,
    pub ports: Ports,
    pub nodes: Vec<NodeSpec>,
}

impl ClusterSpec {
    pub fn api_url(&self) -> String {
        format!("https://127.0.0.1:{}", self.ports.apiserver)
    }
    pub fn dir(&self, cfg: &SimConfig) -> PathBuf {
        cfg.state_dir.join(&self.name)
    }
}

/// The first CIDR of a CIDR variable ([`crate::net::cidrs_of`]: plain, comma-separated or a
/// JSON list string), truncated to its network.
pub fn parse_cidr(value: &str) -> anyhow::Result<ipnet::IpNet> {
    let nets = crate::net::cidrs_of(value.trim().trim_matches(|c| c == '"' || c == '\'')).map_err(anyhow::Error::msg)?;
    Ok(nets[0].trunc())
}

/// The nodes the repository declares for `cluster`: one per Talos node file
/// `talos/<cluster>/*.yaml`, named by its `machine.network.hostname` (else the file name)
/// with the first address of its first interface as InternalIP (else the file name, when
/// that is an address). A repository without Talos node files gets three nodes
/// `<cluster>-01..03` at 10.250.<index>.11-13.
pub fn nodes_of(repo: &crate::repo::GitopsRepo, cluster: &str, index: usize) -> Vec<NodeSpec> {
    let dir = std::path::Path::new("talos").join(cluster);
    let mut nodes: Vec<NodeSpec> = repo
        .files_under(&dir)
        .filter(|f| f.extension().is_some_and(|e| e == "yaml") && f.parent() == Some(dir.as_path()))
        .filter_map(|f| {
            let stem = f.file_stem()?.to_string_lossy().to_string();
            let doc = repo.documents_in(&f.to_string_lossy()).into_iter().find(|d| d.value.pointer("/machine").is_some());
            let value = doc.map(|d| &d.value);
            let hostname = value.and_then(|v| v.pointer("/machine/network/hostname")).and_then(serde_json::Value::as_str).map(str::to_string);
            let declared = value
                .and_then(|v| v.pointer("/machine/network/interfaces/0/addresses/0"))
                .and_then(serde_json::Value::as_str);
            let network = declared.and_then(|a| a.parse::<ipnet::IpNet>().ok()).map(|n| n.trunc());
            let address = declared
                .map(|a| a.split('/').next().unwrap_or(a).to_string())
                .or_else(|| stem.parse::<std::net::IpAddr>().ok().map(|ip| ip.to_string()))?;
            let ip: IpAddr = address.parse().ok()?;
            Some(NodeSpec { name: hostname.unwrap_or(stem), internal_ip: address, network: network.unwrap_or(ip.into()) })
        })
        .collect();
    nodes.sort_by(|a, b| a.name.cmp(&b.name));
    if nodes.is_empty() {
        nodes = (0..3)
            .map(|j| {
                let ip = IpAddr::from([10, 250, index as u8, 11 + j as u8]);
                NodeSpec { name: format!("{cluster}-{:02}", j + 1), internal_ip: ip.to_string(), network: ip.into() }
            })
            .collect();
    }
    nodes
}

/// The simulated clusters, in fixed order (`infra`, `apps`, then any other), with
/// their CIDRs from the repository's variables.
pub fn cluster_specs(cfg: &SimConfig) -> anyhow::Result<Vec<ClusterSpec>> {
    let repo = crate::repo::GitopsRepo::load(&cfg.repo)
        .with_context(|| format!("load GitOps repository {}", cfg.repo.display()))?;
    let mut names: Vec<String> = repo.clusters().to_vec();
    names.sort_by_key(|n| match n.as_str() {
        "infra" => (0, n.clone()),
        "apps" => (1, n.clone()),
        _ => (2, n.clone()),
    });
    let base = port_base()?;
    let mut out = vec![];
    for (index, name) in names.into_iter().enumerate() {
        let vars = repo.variables(&name).with_context(|| format!("variables of cluster {name}"))?;
        let get = |k: &str| -> anyhow::Result<ipnet::IpNet> {
            let v =
                vars.get(k).with_context(|| format!("cluster {name}: variable {k} is not set in the repository"))?;
            parse_cidr(v).with_context(|| format!("cluster {name}: variable {k}"))
        };
        let pod_cidr = get("POD_CIDR")?;
        let service_cidr = get("SERVICE_CIDR")?;
        let service_ip = first_host(&service_cidr)?;
        let dns_ip = match vars.get("CLUSTER_DNS_IP") {
            Some(v) => v.trim().parse().with_context(|| format!("cluster {name}: CLUSTER_DNS_IP {v:?} is not an address"))?,
            None => nth_host(&service_cidr, 10)?,
        };
        out.push(ClusterSpec {
            ports: Ports::for_index(base, index),
            nodes: nodes_of(&repo, &name, index),
            name,
            index,
            pod_cidr,
            service_cidr,
            service_ip,
            dns_ip,
        });
    }
    Ok(out)
}

fn port_base() -> anyhow::Result<u16> {
    match std::env::var("PA_SIM_PORT_BASE") {
        Ok(v) if !v.trim().is_empty() => {
            let b: u16 = v.trim().parse().with_context(|| format!("PA_SIM_PORT_BASE={v} is not a port number"))?;
            if !(1024..=65000).contains(&b) {
                bail!("PA_SIM_PORT_BASE={v} must be between 1024 and 65000");
            }
            Ok(b)
        }
        _ => Ok(DEFAULT_PORT_BASE),
    }
}

fn first_host(net: &ipnet::IpNet) -> anyhow::Result<IpAddr> {
    nth_host(net, 1)
}

/// The `n`th address of `net` (1 = the first host address).
fn nth_host(net: &ipnet::IpNet, n: usize) -> anyhow::Result<IpAddr> {
    net.hosts().nth(n - 1).with_context(|| format!("{net} has fewer than {n} host addresses"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodes_come_from_the_repositorys_talos_files() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/gitops");
        let repo = crate::repo::GitopsRepo::load(&root).unwrap();
        let infra: Vec<(String, String)> = nodes_of(&repo, "infra", 0).into_iter().map(|n| (n.name, n.internal_ip)).collect();
        assert_eq!(infra, [("infra-01", "10.25.11.11"), ("infra-02", "10.25.11.12"), ("infra-03", "10.25.11.13")].map(|(a, b)| (a.to_string(), b.to_string())));
        assert_eq!(nodes_of(&repo, "apps", 1)[2].internal_ip, "10.25.11.16");
        assert_eq!(nodes_of(&repo, "apps", 1)[2].network, "10.25.11.0/24".parse::<ipnet::IpNet>().unwrap());
        // A repository without Talos node files: neutral addresses, not the fixture's.
        let empty = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(empty.path().join("clusters/edge")).unwrap();
        let bare = crate::repo::GitopsRepo::load(empty.path()).unwrap();
        assert_eq!(nodes_of(&bare, "edge", 2)[0].internal_ip, "10.250.2.11");
    }
}
