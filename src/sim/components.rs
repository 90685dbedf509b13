//! The control-plane processes of a simulated cluster: where their binaries are, the
//! command line of each component (etcd, kube-apiserver, kube-controller-manager,
//! kube-scheduler, kwok; the cert-manager controller, the Velero server and CoreDNS started after the CRDs), and the
//! health probe of each.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::bail;

use super::SimConfig;
use super::cluster::{ADDONS, COMPONENTS, ClusterSpec};
use super::kwok;
use super::pki::Pki;

/// Path of a control-plane binary: `$PA_CACHE/bin/<name>`.
pub fn binary(cfg: &SimConfig, name: &str) -> PathBuf {
    cfg.cache_dir.join("bin").join(name)
}

/// Fails with the `make sim-build` hint if any control-plane binary is missing.
pub fn check_binaries(cfg: &SimConfig) -> anyhow::Result<()> {
    let missing: Vec<&str> = COMPONENTS
        .iter()
        .chain(ADDONS.iter())
        .chain([VELERO_PLUGIN, "minio-admin", "minio", "victoria-metrics", "vmauth", "victoria-logs"].iter())
        .copied()
        .filter(|b| !is_executable(&binary(cfg, b)))
        .collect();
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

/// Velero's object-store plugin for S3 (MinIO), found in the server's `--plugin-dir`.
pub const VELERO_PLUGIN: &str = "velero-plugin-for-aws";

/// Velero's plugin directory for cluster `c`: `$STATE/<cluster>/velero-plugins` (a link to the plugin).
pub fn velero_plugin_dir(cfg: &SimConfig, c: &ClusterSpec) -> PathBuf {
    c.dir(cfg).join("velero-plugins")
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
            // No GOMEMLIMIT: with every CRD's schema cached, the live heap is above any limit
            // that would save memory, and the collector then runs without pause (sim/README.md).
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
                // Nodes' addresses (10.25.11.x) exist inside the simulation's network only,
                // where this API server runs: logs, exec and port-forward reach kwok there.
                "--kubelet-preferred-address-types=InternalIP".into(),
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
                format!("--manage-nodes-with-annotation-selector={}=fake", kwok::NODE_ANNOTATION),
                "--node-lease-duration-seconds=40".into(),
                // The nodes' kubelet endpoint (exec, logs, port-forward through the API server):
                // every node address exists inside the simulation's network only.
                format!("--server-address=0.0.0.0:{}", p.kwok),
                format!("--node-port={}", p.kwok),
            ]);
            // kwok also reads ~/.kwok/kwok.yaml: keep it to our config.
            cmd.env("HOME", dir.join("kwok-home"));
        }
        "cert-manager" => {
            // Only the controllers the simulation needs (see sim/go/cert-manager/main.go):
            // no leader election, no webhook, no ACME; health and metrics on loopback.
            cmd.env("GOMEMLIMIT", "192MiB");
            cmd.args([
                format!("--kubeconfig={}", s(&dir.join("admin.kubeconfig"))),
                "--cluster-resource-namespace=cert-manager".into(),
                format!("--listen-address=127.0.0.1:{}", p.cert_manager),
            ]);
        }
        "velero" => {
            // `server` first: Velero re-executes itself for its built-in plugins with the
            // arguments from the third on. Its own TMPDIR (credential files) and HOME per cluster;
            // namespace `velero` (created before it starts); all three listeners on loopback or
            // off; no leader election exists in Velero.
            cmd.env("TMPDIR", dir.join("velero-tmp")).env("HOME", dir.join("velero-home")).env("GOMEMLIMIT", "192MiB");
            cmd.args([
                "server".to_string(),
                format!("--kubeconfig={}", s(&dir.join("admin.kubeconfig"))),
                "--namespace=velero".into(),
                format!("--plugin-dir={}", s(&velero_plugin_dir(cfg, c))),
                "--uploader-type=kopia".into(),
                "--default-backup-storage-location=default".into(),
                // How often Velero validates the storage location (default 1 min): 30 s, so a
                // change of the bucket shows within a test's wait. Not shorter, and the backup
                // sync left at its default: every validation and sync rewrites the credential
                // file in place (truncate, then write; internal/credentials/file_store.go) while
                // a plugin process of another operation may be reading it, and a plugin that
                // reads it empty falls back to EC2 instance metadata and fails the operation.
                "--store-validation-frequency=30s".into(),
                format!("--metrics-address=127.0.0.1:{}", p.velero),
                format!("--controller-metrics-address=127.0.0.1:{}", p.velero_controllers),
                "--profiler-address=".into(),
                "--log-level=info".into(),
            ]);
        }
        "external-secrets" => {
            // Upstream's controller with only the 1Password provider compiled in (see
            // sim/go/external-secrets). In-cluster names (the store's connectHost) are dialled
            // through the cluster's Service data path: Go's HTTP client sends them to the
            // SOCKS5 proxy its environment names (never the API server on loopback), which
            // resolves them with the cluster's CoreDNS and follows Services and EndpointSlices.
            // Stores are re-validated every 10 s (default 5 min), so a revoked token or a
            // Connect that went away shows within seconds.
            cmd.env("GOMEMLIMIT", "128MiB")
                .env("KUBECONFIG", dir.join("admin.kubeconfig"))
                .env("HTTP_PROXY", format!("socks5://127.0.0.1:{}", p.service_proxy))
                .env("HTTPS_PROXY", format!("socks5://127.0.0.1:{}", p.service_proxy))
                .env("NO_PROXY", "127.0.0.1,localhost");
            cmd.args([
                format!("--metrics-addr=127.0.0.1:{}", p.external_secrets),
                "--enable-leader-election=false".into(),
                "--store-requeue-interval=10s".into(),
                "--concurrent=2".into(),
                "--zap-time-encoding=iso8601".into(),
                "--loglevel=info".into(),
            ]);
        }
        "source-controller" => {
            // Flux's source-controller (sim/go/flux), only for the objects the simulation does
            // not stand in for (scenario::WATCH_SELECTOR). It fetches the sync GitRepository's
            // ssh:// URL through the cluster's Service data path: go-git dials SSH through the
            // SOCKS5 proxy ALL_PROXY names, which plays the Git host with the simulation's Git
            // server; the https:// HelmRepositories likewise (HTTPS_PROXY), where the
            // simulation's chart repositories answer. Its artifacts are served on loopback,
            // where kustomize-controller and helm-controller fetch them.
            let storage = format!("127.0.0.1:{}", p.source_storage);
            let proxy = format!("socks5://127.0.0.1:{}", p.service_proxy);
            flux_controller(&mut cmd, &dir, p.source_metrics, p.source_health);
            cmd.env("ALL_PROXY", &proxy)
                .env("HTTPS_PROXY", &proxy)
                .env("HTTP_PROXY", &proxy)
                // The chart repositories' certificates (crate::sim::charts) are signed by the
                // simulation's CA; nothing else is dialled over TLS.
                .env("SSL_CERT_FILE", Pki::at(&cfg.state_dir).ca_cert());
            cmd.args([
                format!("--storage-path={}", s(&dir.join("flux-artifacts"))),
                format!("--storage-addr={storage}"),
                format!("--storage-adv-addr={storage}"),
            ]);
        }
        "kustomize-controller" => {
            // Flux's kustomize-controller (sim/go/flux): applies the fetched revision, prunes,
            // orders by dependsOn and health-checks, for the Kustomizations the simulation does
            // not stand in for. A failing dependency is looked at again after 1 s (default
            // 30 s), and 16 objects are applied at once (default 4): a Kustomization's apply is
            // on the path of every one that depends on it.
            flux_controller(&mut cmd, &dir, p.kustomize_metrics, p.kustomize_health);
            cmd.args(["--requeue-dependency=1s", "--concurrent-ssa=16", "--no-remote-bases=true"]);
        }
        "helm-controller" => {
            // Flux's helm-controller (sim/go/flux): installs and upgrades every HelmRelease
            // the simulation does not stand in for, from the chart artifacts source-controller
            // serves on loopback (charts from the simulation's chart repositories,
            // crate::sim::charts), with Helm's Secret storage in the release's namespace. A
            // failing dependency is looked at again after 1 s (default 30 s).
            flux_controller(&mut cmd, &dir, p.helm_metrics, p.helm_health);
            cmd.arg("--requeue-dependency=1s");
        }
        "coredns" => {
            // The Corefile ([`super::dns::corefile`]) is written by `sim up` before the start.
            cmd.env("GOMEMLIMIT", "64MiB");
            cmd.args(["-conf".to_string(), s(&dir.join(super::dns::COREFILE)), "-quiet".into()]);
        }
        other => unreachable!("unknown component {other}"),
    }
    cmd
}

/// What Flux's controllers share here: the cluster's admin kubeconfig, `flux-system` as
/// their namespace, metrics and health on loopback, only the objects the simulation does not
/// stand in for (scenario::WATCH_SELECTOR), no leader election, no events address (no
/// notification-controller), JSON logs, 8 objects of a kind reconciled at once (default 2
/// for source-controller, 4 for the others; a start reconciles every object at once).
fn flux_controller(cmd: &mut Command, dir: &Path, metrics: u16, health: u16) {
    cmd.env("GOMEMLIMIT", "192MiB")
        .env("KUBECONFIG", dir.join("admin.kubeconfig"))
        .env("RUNTIME_NAMESPACE", super::scenario::SYNC)
        .env("NO_PROXY", "127.0.0.1,localhost");
    cmd.args([
        format!("--metrics-addr=127.0.0.1:{metrics}"),
        format!("--health-addr=127.0.0.1:{health}"),
        format!("--watch-label-selector={}", super::scenario::WATCH_SELECTOR),
        "--watch-all-namespaces=true".into(),
        "--enable-leader-election=false".into(),
        "--events-addr=".into(),
        "--log-level=info".into(),
        "--log-encoding=json".into(),
        "--concurrent=8".into(),
    ]);
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
            "cert-manager" => (&self.insecure, format!("http://127.0.0.1:{}/healthz", p.cert_manager)),
            "velero" => (&self.insecure, format!("http://127.0.0.1:{}/metrics", p.velero)),
            "external-secrets" => (&self.insecure, format!("http://127.0.0.1:{}/metrics", p.external_secrets)),
            "source-controller" => (&self.insecure, format!("http://127.0.0.1:{}/readyz", p.source_health)),
            "kustomize-controller" => (&self.insecure, format!("http://127.0.0.1:{}/readyz", p.kustomize_health)),
            "helm-controller" => (&self.insecure, format!("http://127.0.0.1:{}/readyz", p.helm_health)),
            // Liveness (the scenarios wait for the answers they need, crate::sim::dns).
            "coredns" => (&self.insecure, format!("http://127.0.0.1:{}/health", p.coredns)),
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

/// Version of a built binary, from the stamp `sim/build.sh` writes beside it
/// (`<name> <version> <go version> ...`).
pub fn version(cfg: &SimConfig, name: &str) -> Option<String> {
    let stamp = std::fs::read_to_string(binary(cfg, name).with_extension("stamp")).ok()?;
    stamp.split_whitespace().nth(1).map(str::to_string)
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
