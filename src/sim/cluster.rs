//! One simulated cluster: its networks (from the GitOps repository's variables),
//! its loopback ports, its nodes, and the command line of each component.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, bail};

use super::SimConfig;
use super::pki::Pki;

/// Control-plane components of a cluster, in start order.
pub const COMPONENTS: [&str; 5] = ["etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok"];

/// Default first port; `PA_SIM_PORT_BASE` overrides. Cluster *i* (0 = infra,
/// 1 = apps) uses `base + 100*i + 0..=5`. Below the kernel's ephemeral range
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
            _ => vec![],
        }
    }
    pub fn all(&self) -> Vec<u16> {
        COMPONENTS.iter().flat_map(|c| self.of(c)).collect()
    }
}

/// A simulated node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeSpec {
    pub name: String,
    pub internal_ip: String,
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

/// Parses a CIDR variable: a plain CIDR or a JSON list string (`["10.246.0.0/16"]`, first entry).
pub fn parse_cidr(value: &str) -> anyhow::Result<ipnet::IpNet> {
    let v = value.trim();
    let first = if v.starts_with('[') {
        let list: Vec<String> =
            serde_json::from_str(v).with_context(|| format!("'{v}' is neither a CIDR nor a JSON list"))?;
        list.into_iter().next().with_context(|| format!("'{v}' is an empty list"))?
    } else {
        v.trim_matches(|c| c == '"' || c == '\'').to_string()
    };
    let net: ipnet::IpNet = first.trim().parse().with_context(|| format!("'{first}' is not a CIDR"))?;
    Ok(net.trunc())
}

/// Node names and InternalIPs: infra-01..03 = 10.25.11.11-13, apps-01..03 = 10.25.11.14-16
/// (the Talos node addresses of the fixture repository); a cluster at index *i* gets
/// 10.25.11.(11+3i)..
pub fn nodes_for(name: &str, index: usize) -> Vec<NodeSpec> {
    (0..3)
        .map(|j| NodeSpec {
            name: format!("{name}-{:02}", j + 1),
            internal_ip: format!("10.25.11.{}", 11 + 3 * index + j),
        })
        .collect()
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
        out.push(ClusterSpec {
            ports: Ports::for_index(base, index),
            nodes: nodes_for(&name, index),
            name,
            index,
            pod_cidr,
            service_cidr,
            service_ip,
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
    net.hosts().next().with_context(|| format!("{net} has no host address"))
}

/// Paths of the binaries; fails with the `make sim-build` hint if any is missing.
pub fn binary(cfg: &SimConfig, name: &str) -> PathBuf {
    cfg.cache_dir.join("bin").join(name)
}

pub fn check_binaries(cfg: &SimConfig) -> anyhow::Result<()> {
    let missing: Vec<&str> = COMPONENTS.iter().copied().filter(|b| !is_executable(&binary(cfg, b))).collect();
    if !missing.is_empty() {
        bail!(
            "simulation binaries missing from {}: {} — run `make sim-build` (= sim/build.sh && sim/crds.sh) first",
            cfg.cache_dir.join("bin").display(),
            missing.join(", ")
        );
    }
    Ok(())
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The command that starts `component` of cluster `c`.
pub fn command(cfg: &SimConfig, c: &ClusterSpec, component: &str) -> Command {
    let pki = Pki::at(&cfg.state_dir);
    let dir = c.dir(cfg);
    let p = &c.ports;
    let s = |p: &Path| p.display().to_string();
    let mut cmd = Command::new(binary(cfg, component));
    match component {
        "etcd" => {
            let client = format!("http://127.0.0.1:{}", p.etcd_client);
            let peer = format!("http://127.0.0.1:{}", p.etcd_peer);
            cmd.args([
                format!("--name={}", c.name),
                format!("--data-dir={}", s(&dir.join("etcd"))),
                format!("--listen-client-urls={client}"),
                format!("--advertise-client-urls={client}"),
                format!("--listen-peer-urls={peer}"),
                format!("--initial-advertise-peer-urls={peer}"),
                format!("--initial-cluster={}={peer}", c.name),
                "--unsafe-no-fsync=true".into(),
                format!("--quota-backend-bytes={}", 2u64 << 30),
                "--auto-compaction-mode=periodic".into(),
                "--auto-compaction-retention=10m".into(),
                "--log-level=warn".into(),
            ]);
        }
        "kube-apiserver" => {
            // The API server caches every CRD's schema; a soft limit halves its RSS (sim/README.md).
            cmd.env("GOMEMLIMIT", "512MiB");
            let srv = pki.cert(&c.name, "apiserver");
            let fp = pki.cert(&c.name, "front-proxy-client");
            cmd.args([
                format!("--etcd-servers=http://127.0.0.1:{}", p.etcd_client),
                "--bind-address=127.0.0.1".into(),
                format!("--secure-port={}", p.apiserver),
                "--advertise-address=127.0.0.1".into(),
                // The `kubernetes` Service gets no endpoints: 127.0.0.1 is not a valid endpoint address.
                "--endpoint-reconciler-type=none".into(),
                format!("--service-cluster-ip-range={}", c.service_cidr),
                "--authorization-mode=Node,RBAC".into(),
                format!("--client-ca-file={}", s(&pki.ca_cert())),
                format!("--tls-cert-file={}", s(&srv.cert)),
                format!("--tls-private-key-file={}", s(&srv.key)),
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local".into(),
                format!("--service-account-key-file={}", s(&pki.sa_pub())),
                format!("--service-account-signing-key-file={}", s(&pki.sa_key())),
                "--allow-privileged=true".into(),
                // Fills kube-system/extension-apiserver-authentication (the controller-manager and
                // scheduler log errors every few seconds without it) and enables the aggregation layer.
                format!("--requestheader-client-ca-file={}", s(&pki.ca_cert())),
                "--requestheader-allowed-names=front-proxy-client".into(),
                "--requestheader-username-headers=X-Remote-User".into(),
                "--requestheader-group-headers=X-Remote-Group".into(),
                "--requestheader-extra-headers-prefix=X-Remote-Extra-".into(),
                format!("--proxy-client-cert-file={}", s(&fp.cert)),
                format!("--proxy-client-key-file={}", s(&fp.key)),
                // Nodes' addresses (10.25.11.x) are not on this machine: the API server
                // must never dial them (logs/exec/port-forward fail instead).
                "--kubelet-preferred-address-types=Hostname".into(),
                "--profiling=false".into(),
            ]);
        }
        "kube-controller-manager" => {
            let kc = s(&dir.join("kcm.kubeconfig"));
            cmd.args([
                format!("--kubeconfig={kc}"),
                format!("--authentication-kubeconfig={kc}"),
                format!("--authorization-kubeconfig={kc}"),
                "--bind-address=127.0.0.1".into(),
                format!("--secure-port={}", p.controller_manager),
                "--leader-elect=false".into(),
                format!("--cluster-name={}", c.name),
                "--controllers=*".into(),
                "--allocate-node-cidrs=true".into(),
                format!("--cluster-cidr={}", c.pod_cidr),
                "--node-cidr-mask-size=24".into(),
                format!("--service-cluster-ip-range={}", c.service_cidr),
                "--use-service-account-credentials=true".into(),
                format!("--service-account-private-key-file={}", s(&pki.sa_key())),
                format!("--root-ca-file={}", s(&pki.ca_cert())),
                format!("--cluster-signing-cert-file={}", s(&pki.ca_cert())),
                format!("--cluster-signing-key-file={}", s(&pki.ca_key())),
                "--profiling=false".into(),
            ]);
        }
        "kube-scheduler" => {
            let kc = s(&dir.join("scheduler.kubeconfig"));
            cmd.args([
                format!("--kubeconfig={kc}"),
                format!("--authentication-kubeconfig={kc}"),
                format!("--authorization-kubeconfig={kc}"),
                "--bind-address=127.0.0.1".into(),
                format!("--secure-port={}", p.scheduler),
                "--leader-elect=false".into(),
                "--profiling=false".into(),
            ]);
        }
        "kwok" => {
            cmd.args([
                format!("--kubeconfig={}", s(&dir.join("admin.kubeconfig"))),
                format!("--config={}", s(&dir.join("kwok-stages.yaml"))),
                format!("--manage-nodes-with-annotation-selector={}=fake", super::kwok::NODE_ANNOTATION),
                "--node-lease-duration-seconds=40".into(),
                // health endpoint only; no --node-port, so nodes advertise no kubelet port
                format!("--server-address=127.0.0.1:{}", p.kwok),
            ]);
            // kwok also reads ~/.kwok/kwok.yaml: keep it to our config.
            cmd.env("HOME", dir.join("kwok-home"));
        }
        other => unreachable!("unknown component {other}"),
    }
    cmd
}

/// HTTP clients for health probes: one trusting the sim CA, one for the
/// self-signed serving certificates of the controller-manager and scheduler.
pub struct Probe {
    ca: reqwest::Client,
    insecure: reqwest::Client,
}

impl Probe {
    pub fn new(cfg: &SimConfig) -> anyhow::Result<Probe> {
        let base = || {
            reqwest::Client::builder()
                .no_proxy()
                .timeout(Duration::from_secs(3))
                .connect_timeout(Duration::from_secs(1))
        };
        let ca_pem = std::fs::read(Pki::at(&cfg.state_dir).ca_cert()).unwrap_or_default();
        let ca = match reqwest::Certificate::from_pem(&ca_pem) {
            Ok(cert) if !ca_pem.is_empty() => base().tls_certs_only([cert]).build()?,
            _ => base().build()?,
        };
        Ok(Probe { ca, insecure: base().danger_accept_invalid_certs(true).build()? })
    }

    /// Ok(()) if the component answers its health endpoint; Err(reason) otherwise.
    pub async fn check(&self, c: &ClusterSpec, component: &str) -> Result<(), String> {
        let p = &c.ports;
        let (client, url) = match component {
            "etcd" => (&self.insecure, format!("http://127.0.0.1:{}/health", p.etcd_client)),
            "kube-apiserver" => (&self.ca, format!("https://127.0.0.1:{}/readyz", p.apiserver)),
            "kube-controller-manager" => {
                (&self.insecure, format!("https://127.0.0.1:{}/healthz", p.controller_manager))
            }
            "kube-scheduler" => (&self.insecure, format!("https://127.0.0.1:{}/healthz", p.scheduler)),
            "kwok" => (&self.insecure, format!("http://127.0.0.1:{}/healthz", p.kwok)),
            other => return Err(format!("unknown component {other}")),
        };
        let resp = client.get(&url).send().await.map_err(|e| format!("{url}: {}", short_error(&e)))?;
        let status = resp.status();
        let body = resp.text().await.unwrap_or_default();
        if !status.is_success() {
            return Err(format!(
                "{url}: HTTP {status}: {}",
                body.lines().filter(|l| l.contains("failed")).collect::<Vec<_>>().join("; ")
            ));
        }
        if component == "etcd" && !body.contains("\"health\":\"true\"") {
            return Err(format!("{url}: {body}"));
        }
        Ok(())
    }
}

fn short_error(e: &reqwest::Error) -> String {
    let mut msg = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        msg = format!("{msg}: {s}");
        src = s.source();
    }
    if msg.contains("Connection refused") { "connection refused".into() } else { msg }
}
