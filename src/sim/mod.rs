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
//!
//! Modules, lowest first: [`cluster`] (what defines a cluster: networks, ports,
//! nodes), [`pki`], [`kwok`], [`kubeconfig`] and [`components`] (binaries, command
//! lines, health probes) on top of it; [`process`] (the pid registry); `lifecycle`
//! (`up`/`down`) and `status`. Above the control plane: [`crds`], [`data`] (data
//! services, vault, endpoint map), [`scenario`] (the platform's state in the
//! clusters), [`backups`], [`provisioner`], [`observability`] and [`gateway`] (stand-ins), [`cli`].
//!
//! Citations of the form `§n [ID]` in these modules and in `sim/scenarios/` are
//! sections and source ids of `docs/reference/components.md`.

pub mod backups;
pub mod basis;
pub mod charts;
pub mod cli;
pub mod cluster;
pub mod components;
pub mod crds;
pub mod data;
pub mod dns;
pub mod git;
pub mod gitssh;
pub mod kubeconfig;
pub mod kwok;
pub mod observability;
pub mod onepassword;
pub mod outage;
pub mod pki;
pub mod process;
pub mod network;
pub mod gateway;
pub mod provisioner;
pub mod relay;
pub mod scenario;
pub mod targets;
pub mod template;

mod lifecycle;
mod status;

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::Context;

pub use cluster::{ADDONS, COMPONENTS, ClusterSpec, DEFAULT_PORT_BASE, Ports, cluster_specs};
pub use lifecycle::{down, restart_addon, start_component, up, up_with};
pub use process::{
    ProcessRecord, lookup, register_process, register_process_with, registered_processes, spawn_detached, stop_process,
    unregister_process,
};
pub use status::{ClusterStatus, ComponentStatus, Health, NodeStatus, SimStatus, status};

/// Field manager of everything the simulation applies.
pub const FIELD_MANAGER: &str = "platform-acceptance-sim";
/// Default cache directory (binaries, CRDs, state).
pub const DEFAULT_CACHE_DIR: &str = "/var/cache/platform-acceptance";
/// Scope name for processes that belong to no single cluster.
pub const SHARED_SCOPE: &str = "shared";

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
    /// From the environment: `PA_CACHE`, `PA_SIM_STATE`, `PA_SIM_REPO` (default: the
    /// repository `sim up --repo` recorded in the state directory, else `fixtures/gitops` in
    /// the working directory, else in this crate's source tree).
    pub fn from_env() -> SimConfig {
        let var = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty()).map(PathBuf::from);
        let cache_dir = var("PA_CACHE").unwrap_or_else(|| PathBuf::from(DEFAULT_CACHE_DIR));
        let state_dir = var("PA_SIM_STATE").unwrap_or_else(|| cache_dir.join("sim"));
        let repo = var("PA_SIM_REPO").or_else(|| recorded_repo(&state_dir)).unwrap_or_else(|| {
            let local = PathBuf::from("fixtures/gitops");
            if local.is_dir() { local } else { Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/gitops") }
        });
        SimConfig { cache_dir, state_dir, repo }
    }

    /// This configuration simulating the GitOps repository at `repo` (`sim up --repo`),
    /// recorded in the state directory for the later commands. An error when the simulation
    /// already runs from another repository (its clusters would not match), or when `repo`
    /// is not a directory.
    pub fn simulating(self, repo: &Path) -> anyhow::Result<SimConfig> {
        let repo = std::fs::canonicalize(repo).map_err(|e| anyhow::anyhow!("--repo {}: {e}", repo.display()))?;
        anyhow::ensure!(repo.is_dir(), "--repo {}: not a directory", repo.display());
        let current = std::fs::canonicalize(&self.repo).unwrap_or_else(|_| self.repo.clone());
        if current != repo && kubeconfig_path(&self).exists() {
            anyhow::bail!(
                "the simulation runs from {} (its clusters would not match {}); stop it first with `platform-acceptance sim down`",
                current.display(),
                repo.display()
            );
        }
        std::fs::create_dir_all(&self.state_dir)?;
        std::fs::write(self.state_dir.join(REPO_FILE), repo.as_os_str().as_encoded_bytes())?;
        Ok(SimConfig { repo, ..self })
    }
}

/// The file in the state directory naming the repository `sim up --repo` simulates.
const REPO_FILE: &str = "repo";

/// The repository recorded by `sim up --repo`, if any.
fn recorded_repo(state_dir: &Path) -> Option<PathBuf> {
    let text = std::fs::read_to_string(state_dir.join(REPO_FILE)).ok()?;
    Some(PathBuf::from(text.trim())).filter(|p| p.is_dir())
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

/// Writes `bytes` to `path` with mode 0600, atomically (a 0600 temporary file beside
/// it, synced, then renamed over it): keys, passwords, kubeconfigs.
fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let tmp = path.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("creating {}", tmp.display()))?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path).with_context(|| format!("write {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(())
}

#[cfg(test)]
mod repo_tests {
    use super::*;

    #[test]
    fn sim_up_repo_is_recorded_for_the_later_commands_and_not_switched_while_running() {
        let tmp = tempfile::tempdir().unwrap();
        let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
        std::fs::create_dir_all(&a).unwrap();
        std::fs::create_dir_all(&b).unwrap();
        let cfg = SimConfig { cache_dir: tmp.path().into(), state_dir: tmp.path().join("state"), repo: a.clone() };
        let up = cfg.clone().simulating(&b).unwrap();
        assert_eq!(up.repo, std::fs::canonicalize(&b).unwrap());
        assert_eq!(recorded_repo(&cfg.state_dir), Some(up.repo.clone()), "later commands read it");
        // Once the simulation runs (its kubeconfig written), another repository is refused.
        std::fs::write(kubeconfig_path(&up), "").unwrap();
        let err = up.clone().simulating(&a).unwrap_err().to_string();
        assert!(err.contains("sim down"), "{err}");
        assert!(up.clone().simulating(&b).is_ok(), "the same repository again is fine");
        assert!(cfg.simulating(&tmp.path().join("missing")).unwrap_err().to_string().contains("--repo"));
    }
}
