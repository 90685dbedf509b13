//! Stand-in for the dynamic volume provisioners of the simulated platform (Rook's
//! RBD CSI controller, the apps cluster's ceph-csi-rbd controller, OpenEBS LocalPV).
//! NOT a CSI driver: no volume exists anywhere. It does what the external-provisioner
//! sidecar / OpenEBS provisioner does through the API, so the real
//! kube-controller-manager (PV controller) and kube-scheduler bind the claim:
//!
//! - it serves a provisioner name only while a Deployment annotated
//!   `platform-acceptance.io/sim-provisioner: <provisioner>` has a ready replica
//!   (sim/scenarios/workloads.yaml marks the CSI controller / OpenEBS Deployments):
//!   scale that Deployment to 0 and claims stay Pending, as on a real cluster;
//! - a Pending claim whose StorageClass names a served provisioner, that the PV
//!   controller handed to it (annotation `volume.kubernetes.io/storage-provisioner`)
//!   and, for `WaitForFirstConsumer`, that the scheduler gave a node
//!   (`volume.kubernetes.io/selected-node`), gets a PV `pvc-<uid>` pre-bound to it
//!   (`claimRef` with uid, annotation `pv.kubernetes.io/provisioned-by`): a CSI source
//!   with the class parameters as volumeAttributes (ceph-csi), or a `local` path under
//!   the class' `cas.openebs.io/config` BasePath with node affinity (OpenEBS hostpath);
//! - a Released PV it made with reclaim policy Delete is deleted.
//!
//! Runs as the detached process `shared/provisioner` (`platform-acceptance sim
//! provisioner`, hidden), started by [`ensure`] from `data::start`; `sim down` stops it.
//! The same process serves the simulation's other stand-ins (observability, Gateways,
//! 1Password Connect) and each cluster's Service data path for the real controllers.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim};
use k8s_openapi::api::storage::v1::StorageClass;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use serde_json::{Value, json};

use super::SimConfig;

/// Deployment annotation naming the provisioner the Deployment's pods implement.
pub const PROVISIONER_ANNOTATION: &str = "platform-acceptance.io/sim-provisioner";
/// Marks the PVs this stand-in made.
pub const MADE_BY_ANNOTATION: &str = "platform-acceptance.io/sim-stand-in";
const NAME: &str = "provisioner";
const PERIOD: Duration = Duration::from_millis(500);

/// Starts the stand-in process unless it already runs from the current binary.
/// Needs the `platform-acceptance` binary: the current executable, or the one Cargo
/// builds next to a test binary (`target/<profile>/platform-acceptance`), or `$PA_BIN`.
pub async fn ensure(cfg: &SimConfig) -> Result<()> {
    let bin = super::process::harness_binary().context("sim provisioner stand-in: no platform-acceptance binary found (set PA_BIN)")?;
    let stamp = std::fs::metadata(&bin)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_secs().to_string())
        .unwrap_or_default();
    if let Some(rec) = super::lookup(&cfg.state_dir, super::SHARED_SCOPE, NAME).filter(|r| r.is_alive()) {
        if rec.command.iter().any(|a| a == &stamp) {
            return Ok(());
        }
        super::stop_process(&rec, Duration::from_secs(5)).await;
    }
    let _ = super::unregister_process(&cfg.state_dir, super::SHARED_SCOPE, NAME);
    let abs = |p: &PathBuf| std::path::absolute(p).unwrap_or_else(|_| p.clone());
    let mut cmd = std::process::Command::new(&bin);
    cmd.args(["sim", "provisioner", "--build", &stamp])
        .env("PA_CACHE", abs(&cfg.cache_dir))
        .env("PA_SIM_STATE", abs(&cfg.state_dir))
        .env("PA_SIM_REPO", abs(&cfg.repo));
    super::spawn_detached(&cfg.state_dir, super::SHARED_SCOPE, NAME, &mut cmd, &[super::observability::OBSERVABILITY_PORT, super::onepassword::CONNECT_PORT, super::scenario::GIT_SSH_PORT, super::charts::CHART_PORT])?;
    Ok(())
}

/// The stand-in's loop: every cluster of the kubeconfig, every half second, forever.
pub async fn run(cfg: &SimConfig) -> Result<()> {
    let path = super::kubeconfig_path(cfg);
    let kc = kube::config::Kubeconfig::read_from(&path).with_context(|| format!("read {}", path.display()))?;
    let mut clients = vec![];
    for ctx in &kc.contexts {
        clients.push((ctx.name.clone(), super::client(cfg, &ctx.name).await?));
    }
    eprintln!("sim provisioner stand-in: watching {} clusters", clients.len());
    // The same long-running process serves the Grafana stand-in and runs the vmagent and
    // fluent-bit stand-ins (see observability.rs).
    let mock_cfg = cfg.clone();
    tokio::spawn(async move {
        if let Err(e) = super::observability::serve(&mock_cfg).await {
            eprintln!("observability stand-ins: {e:#}");
        }
    });
    // And the Gateways' data plane with the applications behind the routes (gateway.rs).
    let gateway_cfg = cfg.clone();
    tokio::spawn(async move {
        if let Err(e) = super::gateway::serve(&gateway_cfg).await {
            eprintln!("gateway stand-in: {e:#}");
        }
    });
    // 1Password Connect (onepassword.rs), and each cluster's Service data path for the
    // real controllers that dial in-cluster names (external-secrets; relay.rs).
    let connect_cfg = cfg.clone();
    tokio::spawn(async move {
        if let Err(e) = super::onepassword::serve(&connect_cfg).await {
            eprintln!("1Password Connect stand-in: {e:#}");
        }
    });
    // The Git host Flux fetches the repository from (gitssh.rs; the scenarios write the
    // repositories and the keys).
    let git_cfg = cfg.clone();
    tokio::spawn(async move {
        let serve = async {
            let keys = super::gitssh::Keys::ensure(&super::scenario::git_dir(&git_cfg).join("ssh"))?;
            // The scenarios write the repositories into it, maybe after this starts.
            std::fs::create_dir_all(super::scenario::repos_dir(&git_cfg))?;
            let listener = tokio::net::TcpListener::bind(("127.0.0.1", super::scenario::GIT_SSH_PORT)).await?;
            super::gitssh::serve(listener, super::scenario::repos_dir(&git_cfg), &keys).await
        };
        if let Err(e) = serve.await {
            eprintln!("Git server: {e:#}");
        }
    });
    // The Helm chart repositories the HelmRepositories name (charts.rs; the scenarios write them).
    let charts_cfg = cfg.clone();
    tokio::spawn(async move {
        if let Err(e) = super::charts::serve(&charts_cfg).await {
            eprintln!("chart repositories: {e:#}");
        }
    });
    for c in super::cluster::cluster_specs(cfg)? {
        let bind = std::net::SocketAddr::from(([127, 0, 0, 1], c.ports.service_proxy));
        let proxy_cfg = cfg.clone();
        tokio::spawn(async move {
            if let Err(e) = super::relay::serve_listener(proxy_cfg, c.name.clone(), bind).await {
                eprintln!("[{}] Service data path: {e:#}", c.name);
            }
        });
    }
    loop {
        for (cluster, client) in &clients {
            match reconcile(client).await {
                Ok(lines) => lines.iter().for_each(|l| eprintln!("[{cluster}] {l}")),
                Err(e) => eprintln!("[{cluster}] error: {e:#}"),
            }
        }
        tokio::time::sleep(PERIOD).await;
    }
}

/// One pass over a cluster; returns what it did, one line per action.
pub async fn reconcile(client: &kube::Client) -> Result<Vec<String>> {
    let mut done = vec![];
    let served = served(client).await?;
    let classes: BTreeMap<String, StorageClass> = Api::<StorageClass>::all(client.clone())
        .list(&ListParams::default())
        .await?
        .items
        .into_iter()
        .map(|c| (c.metadata.name.clone().unwrap_or_default(), c))
        .collect();
    let pvs_api: Api<PersistentVolume> = Api::all(client.clone());
    let pvs = pvs_api.list(&ListParams::default()).await?.items;
    let claimed: Vec<(String, String)> = pvs
        .iter()
        .filter_map(|pv| pv.spec.as_ref()?.claim_ref.as_ref())
        .map(|r| (r.namespace.clone().unwrap_or_default(), r.name.clone().unwrap_or_default()))
        .collect();
    for pvc in Api::<PersistentVolumeClaim>::all(client.clone()).list(&ListParams::default()).await?.items {
        let (ns, name) = (pvc.metadata.namespace.clone().unwrap_or_default(), pvc.metadata.name.clone().unwrap_or_default());
        let spec = pvc.spec.clone().unwrap_or_default();
        let pending = pvc.status.as_ref().and_then(|s| s.phase.as_deref()).unwrap_or("Pending") == "Pending";
        if !pending || spec.volume_name.is_some() || claimed.contains(&(ns.clone(), name.clone())) {
            continue;
        }
        let Some(class) = spec.storage_class_name.as_deref().and_then(|c| classes.get(c)) else { continue };
        if !served.contains_key(&class.provisioner) {
            continue;
        }
        let ann = pvc.metadata.annotations.clone().unwrap_or_default();
        if ann.get("volume.kubernetes.io/storage-provisioner") != Some(&class.provisioner) {
            continue; // the PV controller has not handed it over yet
        }
        let node = ann.get("volume.kubernetes.io/selected-node").cloned();
        if class.volume_binding_mode.as_deref() == Some("WaitForFirstConsumer") && node.is_none() {
            continue;
        }
        let pv = volume_for(&pvc, class, node.as_deref())?;
        let pv_name = pv.metadata.name.clone().unwrap_or_default();
        match pvs_api.create(&PostParams::default(), &pv).await {
            Ok(_) => done.push(format!("provisioned {pv_name} for {ns}/{name} ({})", class.provisioner)),
            Err(kube::Error::Api(e)) if e.code == 409 => {}
            Err(e) => return Err(e.into()),
        }
    }
    for pv in &pvs {
        let ours = pv.metadata.annotations.as_ref().is_some_and(|a| a.contains_key(MADE_BY_ANNOTATION));
        let released = pv.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Released");
        let delete = pv.spec.as_ref().and_then(|s| s.persistent_volume_reclaim_policy.as_deref()) == Some("Delete");
        if ours && released && delete {
            let n = pv.metadata.name.clone().unwrap_or_default();
            let _ = pvs_api.delete(&n, &DeleteParams::default()).await;
            done.push(format!("deleted released {n}"));
        }
    }
    Ok(done)
}

/// Provisioner name → the ready Deployment that implements it.
async fn served(client: &kube::Client) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for d in Api::<Deployment>::all(client.clone()).list(&ListParams::default()).await?.items {
        let Some(p) = d.metadata.annotations.as_ref().and_then(|a| a.get(PROVISIONER_ANNOTATION)) else { continue };
        if d.status.as_ref().and_then(|s| s.ready_replicas).unwrap_or(0) > 0 {
            out.insert(p.clone(), format!("{}/{}", d.metadata.namespace.clone().unwrap_or_default(), d.metadata.name.clone().unwrap_or_default()));
        }
    }
    Ok(out)
}

fn volume_for(pvc: &PersistentVolumeClaim, class: &StorageClass, node: Option<&str>) -> Result<PersistentVolume> {
    let uid = pvc.metadata.uid.clone().unwrap_or_default();
    let spec = pvc.spec.clone().unwrap_or_default();
    let size = spec.resources.as_ref().and_then(|r| r.requests.as_ref()).and_then(|r| r.get("storage")).cloned();
    let name = format!("pvc-{uid}");
    let mut pv = json!({
        "apiVersion": "v1", "kind": "PersistentVolume",
        "metadata": {"name": name, "annotations": {
            "pv.kubernetes.io/provisioned-by": class.provisioner,
            MADE_BY_ANNOTATION: "provisioner (the simulation's stand-in; no volume exists)",
        }},
        "spec": {
            "capacity": {"storage": size.map(|q| q.0).unwrap_or_else(|| "1Gi".into())},
            "accessModes": spec.access_modes.clone().unwrap_or_else(|| vec!["ReadWriteOnce".into()]),
            "persistentVolumeReclaimPolicy": class.reclaim_policy.clone().unwrap_or_else(|| "Delete".into()),
            "storageClassName": class.metadata.name,
            "volumeMode": spec.volume_mode.clone().unwrap_or_else(|| "Filesystem".into()),
            "claimRef": {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "namespace": pvc.metadata.namespace, "name": pvc.metadata.name, "uid": uid},
        },
    });
    if class.provisioner.contains('/') {
        // OpenEBS LocalPV hostpath (§8 [O1]): a local path under BasePath, pinned to the node.
        let base = openebs_base_path(class).unwrap_or_else(|| "/var/openebs/local".into());
        let node = node.unwrap_or_default();
        pv["spec"]["local"] = json!({"path": format!("{base}/{name}"), "fsType": ""});
        pv["spec"]["nodeAffinity"] = json!({"required": {"nodeSelectorTerms": [
            {"matchExpressions": [{"key": "kubernetes.io/hostname", "operator": "In", "values": [node]}]}
        ]}});
    } else {
        // ceph-csi (§7): the class parameters without the csi.storage.k8s.io/* secret references.
        let mut attrs: BTreeMap<String, String> = class
            .parameters
            .clone()
            .unwrap_or_default()
            .into_iter()
            .filter(|(k, _)| !k.starts_with("csi.storage.k8s.io/"))
            .collect();
        attrs.insert("imageName".into(), format!("csi-vol-{uid}"));
        pv["spec"]["csi"] = json!({"driver": class.provisioner, "volumeHandle": format!("sim-{uid}"), "volumeAttributes": attrs});
    }
    Ok(serde_json::from_value(pv)?)
}

fn openebs_base_path(class: &StorageClass) -> Option<String> {
    let config = class.metadata.annotations.as_ref()?.get("cas.openebs.io/config")?;
    let entries: Vec<Value> = serde_yaml_ng::from_str(config).ok()?;
    entries.iter().find(|e| e["name"] == "BasePath").and_then(|e| e["value"].as_str()).map(String::from)
}
