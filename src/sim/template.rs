//! A cluster's etcd data with its nodes and CRDs installed, kept in `$PA_CACHE` so the
//! next cold `sim up` starts from it instead of applying 143 CRDs again.
//!
//! Installing the CRDs is most of a cold start (about 46 s of 60 on two cores): each new
//! CRD makes the API server rebuild its merged OpenAPI document. An API server that
//! starts on an etcd that already holds them builds that document once.
//!
//! The template is etcd's data directory copied while etcd is stopped (a clean stop
//! writes everything; the API server keeps running and reconnects), together with the
//! CRD stamp. It is keyed by everything its content depends on: the CRD files'
//! fingerprint, the etcd and kube-apiserver binaries and command lines (with the state
//! directory left out, so simulations in different directories share it), and the
//! cluster's nodes. A template is written once, into a temporary directory that is
//! renamed into place, so concurrent `sim up`s never see half of one.
//!
//! Nothing of the platform is in it: scenarios, pods, certificates and backups are
//! made by the controllers on every start, as before. What the API server and the
//! controller-manager reconcile at start (bootstrap RBAC, the `kubernetes` Service,
//! `kube-root-ca.crt` ConfigMaps for the new certificate authority) is brought up to
//! date by them.

use std::path::{Path, PathBuf};

use anyhow::Context;
use sha2::{Digest, Sha256};

use super::SimConfig;
use super::cluster::ClusterSpec;
use super::components;
use super::process::argv;

/// The directory that holds the templates (`$PA_CACHE/sim-templates`).
pub fn root(cfg: &SimConfig) -> PathBuf {
    cfg.cache_dir.join("sim-templates")
}

/// The template key of cluster `c` with CRD files of `crd_fingerprint`:
/// `<cluster>-<configuration>-<content>`, where the configuration digest covers the etcd
/// and kube-apiserver command lines (state directory left out) and the nodes, and the
/// content digest the CRD files and the two binaries.
pub fn key(cfg: &SimConfig, c: &ClusterSpec, crd_fingerprint: &str) -> String {
    let state = cfg.state_dir.to_string_lossy().into_owned();
    let (mut config, mut content) = (Sha256::new(), Sha256::new());
    content.update(crd_fingerprint.as_bytes());
    for name in ["etcd", "kube-apiserver"] {
        let bin = components::binary(cfg, name);
        let meta = std::fs::metadata(&bin).ok();
        let mtime = meta.as_ref().and_then(|m| m.modified().ok()).and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok());
        content.update(format!("\n{} {} {:?}\n", bin.display(), meta.map(|m| m.len()).unwrap_or(0), mtime).as_bytes());
        for arg in argv(&components::command(cfg, c, name)) {
            config.update(arg.replace(&state, "<state>").as_bytes());
            config.update(b"\0");
        }
    }
    config.update(format!("{:?}", c.nodes).as_bytes());
    format!("{}-{}-{}", c.name, short(config), short(content))
}

fn short(h: Sha256) -> String {
    h.finalize().iter().take(6).map(|b| format!("{b:02x}")).collect()
}

/// The template directory of `key`, if one was written.
pub fn find(cfg: &SimConfig, key: &str) -> Option<PathBuf> {
    let dir = root(cfg).join(key);
    dir.join("etcd").is_dir().then_some(dir)
}

/// Copies template `dir` (etcd data and the CRD stamp) into cluster `c`'s fresh state.
/// Only for a cluster whose etcd has never run: an existing data directory is kept.
pub fn restore(dir: &Path, cluster_dir: &Path) -> anyhow::Result<bool> {
    let data = cluster_dir.join("etcd");
    if data.exists() {
        return Ok(false);
    }
    let tmp = cluster_dir.join("etcd.restoring");
    let _ = std::fs::remove_dir_all(&tmp);
    copy_tree(&dir.join("etcd"), &tmp).with_context(|| format!("copy {}", dir.display()))?;
    std::fs::rename(&tmp, &data)?;
    std::fs::copy(dir.join("crds.stamp"), cluster_dir.join("crds.stamp"))?;
    Ok(true)
}

/// Writes the template `key` from cluster `c`'s stopped etcd data directory and CRD stamp.
/// Returns false when another `sim up` wrote it first.
pub fn save(cfg: &SimConfig, key: &str, cluster_dir: &Path) -> anyhow::Result<bool> {
    let root = root(cfg);
    let dest = root.join(key);
    if dest.exists() {
        return Ok(false);
    }
    std::fs::create_dir_all(&root)?;
    let tmp = root.join(format!(".{key}.{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    copy_tree(&cluster_dir.join("etcd"), &tmp.join("etcd"))?;
    std::fs::copy(cluster_dir.join("crds.stamp"), tmp.join("crds.stamp"))?;
    match std::fs::rename(&tmp, &dest) {
        Ok(()) => Ok(true),
        Err(_) if dest.exists() => {
            let _ = std::fs::remove_dir_all(&tmp);
            Ok(false)
        }
        Err(e) => Err(e).with_context(|| format!("rename {} to {}", tmp.display(), dest.display())),
    }
}

/// Removes the templates of the same cluster and configuration as `keep` with other
/// content (older CRDs or binaries).
pub fn prune(cfg: &SimConfig, keep: &str) {
    let Ok(entries) = std::fs::read_dir(root(cfg)) else { return };
    let Some((prefix, _)) = keep.rsplit_once('-') else { return };
    let prefix = format!("{prefix}-");
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with(&prefix) && name != keep {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    for entry in walkdir::WalkDir::new(from) {
        let entry = entry?;
        let rel = entry.path().strip_prefix(from).expect("under the root");
        let target = to.join(rel);
        if entry.file_type().is_dir() {
            std::fs::create_dir_all(&target)?;
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o700))?;
            }
        } else {
            std::fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_template_is_restored_only_into_a_fresh_cluster_and_written_once() {
        let tmp = tempfile::tempdir().unwrap();
        let cfg = SimConfig { cache_dir: tmp.path().join("cache"), state_dir: tmp.path().join("state"), repo: tmp.path().into() };
        let cluster = tmp.path().join("state/infra");
        std::fs::create_dir_all(cluster.join("etcd/member/wal")).unwrap();
        std::fs::write(cluster.join("etcd/member/wal/0.wal"), b"wal").unwrap();
        std::fs::write(cluster.join("crds.stamp"), b"{}").unwrap();

        assert!(save(&cfg, "infra-c1-old", &cluster).unwrap());
        assert!(save(&cfg, "infra-c2-old", &cluster).unwrap());
        assert!(save(&cfg, "infra-c1-new", &cluster).unwrap());
        assert!(!save(&cfg, "infra-c1-new", &cluster).unwrap(), "a second writer leaves the first template");
        prune(&cfg, "infra-c1-new");
        assert!(find(&cfg, "infra-c1-old").is_none(), "older content of the same configuration goes");
        assert!(find(&cfg, "infra-c2-old").is_some(), "another configuration's template stays");
        let dir = find(&cfg, "infra-c1-new").expect("written");

        assert!(!restore(&dir, &cluster).unwrap(), "an etcd that ran keeps its data");
        let fresh = tmp.path().join("state/apps");
        std::fs::create_dir_all(&fresh).unwrap();
        assert!(restore(&dir, &fresh).unwrap());
        assert_eq!(std::fs::read(fresh.join("etcd/member/wal/0.wal")).unwrap(), b"wal");
        assert_eq!(std::fs::read(fresh.join("crds.stamp")).unwrap(), b"{}");

    }
}
