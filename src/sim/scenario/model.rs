//! The scenario files of `sim/scenarios/`: which scenarios exist, the shape of a
//! scenario (`name`, `description`, `breaks`: the actions that break the healthy
//! platform and what to wait for afterwards) and the status rules of `status.yaml`.

use anyhow::{Context, Result, anyhow};
use serde::Deserialize;
use serde_json::Value;

const SCENARIOS: [(&str, &str); 10] = [
    (
        "healthy",
        include_str!("../../../sim/scenarios/healthy.yaml"),
    ),
    (
        "cni-down",
        include_str!("../../../sim/scenarios/cni-down.yaml"),
    ),
    (
        "node-notready",
        include_str!("../../../sim/scenarios/node-notready.yaml"),
    ),
    (
        "ceph-degraded",
        include_str!("../../../sim/scenarios/ceph-degraded.yaml"),
    ),
    (
        "cert-not-ready",
        include_str!("../../../sim/scenarios/cert-not-ready.yaml"),
    ),
    (
        "pg-replica-lost",
        include_str!("../../../sim/scenarios/pg-replica-lost.yaml"),
    ),
    (
        "backup-missing",
        include_str!("../../../sim/scenarios/backup-missing.yaml"),
    ),
    (
        "kustomization-failed",
        include_str!("../../../sim/scenarios/kustomization-failed.yaml"),
    ),
    (
        "connect-token-revoked",
        include_str!("../../../sim/scenarios/connect-token-revoked.yaml"),
    ),
    (
        "lived-in",
        include_str!("../../../sim/scenarios/lived-in.yaml"),
    ),
];

const STATUS_YAML: &str = include_str!("../../../sim/scenarios/status.yaml");

/// Scenario names, `healthy` first.
pub fn list() -> Vec<&'static str> {
    SCENARIOS.iter().map(|(n, _)| *n).collect()
}

/// One scenario file.
#[derive(Debug, Clone, Deserialize)]
pub struct Scenario {
    pub name: String,
    pub description: String,
    #[serde(default)]
    pub breaks: Vec<Action>,
}

/// One break: what to do on which cluster, and what to wait for afterwards.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Action {
    pub cluster: String,
    #[serde(flatten)]
    pub op: Op,
    #[serde(default)]
    pub wait_for: Option<WaitFor>,
    /// Wait for `waitFor` right after this break, before the next one (default: every
    /// break is made first, then every `waitFor` is awaited).
    #[serde(default)]
    pub wait_before_next: bool,
    /// Made this many seconds after the scenario was applied, in the background (the
    /// end of something the scenario leaves in flight, e.g. an upgrade that takes that
    /// long): see [`super::later`]. Applying another scenario cancels it.
    #[serde(default)]
    pub after: Option<u64>,
}

/// One file's change in a [`Op::Commit`]: `append` added to its end, and/or every
/// occurrence of `replace[0]` replaced by `replace[1]` (at least one must occur).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Edit {
    pub file: String,
    #[serde(default)]
    pub append: Option<String>,
    #[serde(default)]
    pub replace: Option<[String; 2]>,
}

/// The kinds of break.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Op {
    /// Pods matching `labelSelector` in `namespace` get Ready=False.
    PodsNotReady {
        namespace: String,
        #[serde(rename = "labelSelector")]
        label_selector: String,
        reason: String,
        message: String,
    },
    /// A node held NotReady by kwok.
    NodeNotReady {
        node: String,
        reason: String,
        message: String,
    },
    /// The healthy status of one object with `merge` merged over it (RFC 7386).
    Status {
        #[serde(rename = "apiVersion")]
        api_version: String,
        kind: String,
        #[serde(default)]
        namespace: Option<String>,
        name: String,
        merge: Value,
    },
    /// An object a controller left behind, created with its `status` (a finished Job and
    /// its pods, an evicted pod, older Backups). Pods are created the way the kubelet
    /// leaves them: bound to their node, then given their final status, then their owner.
    Create {
        object: Value,
        #[serde(default)]
        owner: Option<Owner>,
    },
    /// A Certificate re-issued the way `cmctl renew` asks for it (condition
    /// `Issuing=True`, reason `ManuallyTriggered`); the real cert-manager controller renews it.
    RenewCertificate { namespace: String, name: String },
    /// A commit on top of the branch the simulation serves to Flux, made of `edits` (e.g. a
    /// Kustomize resource path that does not exist, or manifests moved to a newer API
    /// version). This cluster's Flux is asked to fetch it at once; the real
    /// kustomize-controller then applies it, or fails with its own message. With `wait`,
    /// the break waits until this cluster's Flux has applied it. Every other cluster syncs
    /// the same branch, so each needs a later `commit` or `fetchNow` break (checked when
    /// the scenario is applied).
    Commit {
        message: String,
        edits: Vec<Edit>,
        #[serde(default)]
        wait: bool,
    },
    /// This cluster's Flux is asked to fetch the served branch now (as `flux reconcile
    /// source git` does), and the break waits until it has applied the branch's head.
    FetchNow {},
    /// A Flux object is asked to reconcile now, as `flux reconcile` does (annotation
    /// `reconcile.fluxcd.io/requestedAt`); with `force`, a HelmRelease is upgraded even when
    /// nothing changed, as `flux reconcile helmrelease --force` does (`reconcile.fluxcd.io/forceAt`
    /// with the same value). The real controller does the rest.
    Reconcile {
        #[serde(rename = "apiVersion")]
        api_version: String,
        kind: String,
        namespace: String,
        name: String,
        #[serde(default)]
        force: bool,
    },
    /// The 1Password Connect token the clusters hold is revoked: the Connect stand-in
    /// accepts only a new one, which the clusters do not have (the real external-secrets
    /// controller then fails to validate the stores with Connect's 401).
    RevokeConnectToken {},
    /// Velero Backups matching `labelSelector` deleted with their data by the real Velero
    /// server (a `DeleteBackupRequest` each, as `velero backup delete` makes).
    DeleteBackups {
        #[serde(rename = "labelSelector")]
        label_selector: String,
    },
    /// Velero Schedule `name` run once now (its template as a new Backup, as the cron
    /// would), taken by the real Velero server; waits until it is Completed, or with
    /// `wait: false` only until Velero has created the Backup (a run under way).
    RunSchedule {
        name: String,
        #[serde(default = "yes")]
        wait: bool,
    },
    /// CRD `name` replaced by the same CRD of a later upstream release
    /// (`$PA_CACHE/crds-next/<release>/`, collected by `sim/crds.sh`), serving only the
    /// versions in `served`; waits until API discovery shows them. The storage version
    /// stays the one installed at start (a version in `status.storedVersions` can never
    /// leave `spec.versions`), so every scenario can put the installed CRD back first;
    /// a reader sees only the served versions.
    ServeCrd {
        name: String,
        release: String,
        served: Vec<String>,
    },
    /// Add-on `component` of the cluster (`velero`, `cert-manager`) restarted; waits until
    /// it answers again.
    Restart { component: String },
    /// Objects deleted (by name or label selector).
    Delete {
        #[serde(rename = "apiVersion")]
        api_version: String,
        kind: String,
        #[serde(default)]
        namespace: Option<String>,
        #[serde(default)]
        name: Option<String>,
        #[serde(default, rename = "labelSelector")]
        label_selector: Option<String>,
    },
}

fn yes() -> bool {
    true
}

/// The controller owner of a created object (`metadata.ownerReferences[]`, `controller: true`),
/// looked up in the cluster for its uid. Its pod template's labels go onto a created pod, and
/// `{{owner}}` in the object's name becomes the owner's name.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Owner {
    pub api_version: String,
    pub kind: String,
    pub name: String,
    /// Owned through the current ReplicaSet of this Deployment, as a Deployment's pods are.
    #[serde(default)]
    pub through_replica_set: bool,
}

/// What the scenario waits for after a break.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WaitFor {
    pub api_version: String,
    pub kind: String,
    #[serde(default)]
    pub namespace: Option<String>,
    pub name: String,
    #[serde(default)]
    pub pointer: Option<String>,
    #[serde(default)]
    pub equals: Option<Value>,
    #[serde(default)]
    pub absent: bool,
    #[serde(default)]
    pub condition: Option<ConditionIs>,
}

/// A condition `type` with `status`.
#[derive(Debug, Clone, Deserialize)]
pub struct ConditionIs {
    #[serde(rename = "type")]
    pub type_: String,
    pub status: String,
    /// The condition's reason too, when given (a controller may pass through other
    /// reasons first, e.g. Flux's DependencyNotReady before BuildFailed).
    #[serde(default)]
    pub reason: Option<String>,
}

/// The parsed scenario `name` (error lists the known names).
pub fn scenario(name: &str) -> Result<Scenario> {
    let (_, text) = SCENARIOS.iter().find(|(n, _)| *n == name).ok_or_else(|| {
        anyhow!(
            "unknown scenario {name:?}; known scenarios: {}",
            list().join(", ")
        )
    })?;
    serde_yaml_ng::from_str(text).with_context(|| format!("sim/scenarios/{name}.yaml"))
}

/// The breaks any scenario makes on `cluster`: what every scenario undoes first.
pub(super) fn breaks_on(cluster: &str) -> Result<Vec<Op>> {
    let mut out = vec![];
    for name in list() {
        out.extend(scenario(name)?.breaks.into_iter().filter(|b| b.cluster == cluster).map(|b| b.op));
    }
    Ok(out)
}

/// The status a controller writes for every object of one kind (`status.yaml`).
#[derive(Debug, Clone, Deserialize)]
pub(super) struct StatusRule {
    #[serde(rename = "apiVersion")]
    pub(super) api_version: String,
    pub(super) kind: String,
    pub(super) status: Value,
}

/// The rules of `status.yaml`.
pub(super) fn status_rules() -> Result<Vec<StatusRule>> {
    serde_yaml_ng::from_str(STATUS_YAML).context("sim/scenarios/status.yaml")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_scenario_parses_and_names_itself() {
        for name in list() {
            let sc = scenario(name).unwrap();
            assert_eq!(sc.name, name);
            assert_eq!(sc.breaks.is_empty(), name == "healthy", "{name}");
            for b in &sc.breaks {
                if let Op::Create { object, .. } = &b.op {
                    assert!(object.pointer("/status").is_some(), "{name}: created objects carry the status their controller wrote: {object}");
                }
            }
        }
        assert!(
            scenario("nope")
                .unwrap_err()
                .to_string()
                .contains("cni-down")
        );
        status_rules().unwrap();
    }
}
