//! Pods judged by their owner, the way a person reads a cluster with a past.
//!
//! A running pod must be Ready (its readiness probes are the health checks). A *finished*
//! pod is history, and what it means depends on who made it:
//! - `Succeeded` is always fine;
//! - `Failed` (a retried Job attempt, a pod the kubelet evicted under node pressure —
//!   phase `Failed`, reason `Evicted`, kubernetes/kubernetes@008b3652959c
//!   `pkg/kubelet/eviction/helpers.go` `Reason = "Evicted"`) is fine when its controller
//!   (`metadata.ownerReferences[]` with `controller: true`) is healthy: the Job completed
//!   (condition `Complete=True`) or is still retrying (no `Complete`/`Failed` condition,
//!   batch/v1 `JobConditionType`, k8s.io/api `batch/v1/types.go`); a failed Job of a
//!   CronJob is superseded when a later Job of the same CronJob completed; the
//!   ReplicaSet's Deployment, the StatefulSet or the DaemonSet has every desired replica
//!   ready ([`Rollout`]).
//! - A `Failed` pod without an owner, whose owner is gone or not healthy, or whose owner is
//!   a kind this module cannot judge, is a finding naming the pod and its owner.
//!
//! ```
//! use k8s_openapi::api::core::v1::{Pod, PodStatus};
//! use platform_acceptance::cluster::pods::{judge_pod, Owners, PodVerdict};
//! let bare = Pod { status: Some(PodStatus { phase: Some("Failed".into()), ..Default::default() }), ..Default::default() };
//! assert!(matches!(judge_pod(&bare, &Owners::default(), "infra"), PodVerdict::Unready(_)));
//! ```

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::{Api, ListParams};
use kube::Resource;

use super::objects::Rollout;
use crate::outcome::{Finding, Outcome};

/// The controllers a finished pod may belong to, listed once (all namespaces or one).
#[derive(Debug, Clone, Default)]
pub struct Owners {
    pub replica_sets: Vec<ReplicaSet>,
    pub deployments: Vec<Deployment>,
    pub stateful_sets: Vec<StatefulSet>,
    pub daemon_sets: Vec<DaemonSet>,
    pub jobs: Vec<Job>,
}

/// What one pod says about the service it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PodVerdict {
    /// Running and Ready.
    Ready,
    /// Finished, and fine as history; the text says why (`Failed attempt of Job x, which completed`).
    Finished(String),
    /// Not Ready, or Failed without a healthy owner.
    Unready(Finding),
}

impl Owners {
    /// Lists the owner kinds in `ns` (every namespace when `None`): one LIST per kind.
    pub async fn list(client: &kube::Client, ns: Option<&str>, cluster: &str) -> Result<Owners, Outcome> {
        async fn all<K>(client: &kube::Client, ns: Option<&str>, what: &str, cluster: &str) -> Result<Vec<K>, Outcome>
        where
            K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
        {
            let api: Api<K> = match ns {
                Some(ns) => Api::namespaced(client.clone(), ns),
                None => Api::all(client.clone()),
            };
            api.list(&ListParams::default()).await.map(|l| l.items).map_err(|e| super::api_error(&format!("list {what} (cluster {cluster})"), e))
        }
        Ok(Owners {
            replica_sets: all(client, ns, "ReplicaSets", cluster).await?,
            deployments: all(client, ns, "Deployments", cluster).await?,
            stateful_sets: all(client, ns, "StatefulSets", cluster).await?,
            daemon_sets: all(client, ns, "DaemonSets", cluster).await?,
            jobs: all(client, ns, "Jobs", cluster).await?,
        })
    }
}

/// The controller reference of an object (`controller: true`).
fn controller(meta: &ObjectMeta) -> Option<&OwnerReference> {
    meta.owner_references.as_ref()?.iter().find(|o| o.controller == Some(true))
}

/// The object `reference` points to in `list`, same namespace, by uid (name when no uid).
fn find<'a, K: Resource>(list: &'a [K], ns: &str, reference: &OwnerReference) -> Option<&'a K> {
    list.iter().find(|k| {
        let m = k.meta();
        m.namespace.as_deref() == Some(ns) && (m.uid.as_deref() == Some(reference.uid.as_str()) || (m.uid.is_none() && m.name.as_deref() == Some(reference.name.as_str())))
    })
}

fn is_ready(pod: &Pod) -> bool {
    pod.status.as_ref().and_then(|s| s.conditions.as_ref()).is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// A Job condition of `type_` that is True.
fn job_condition(job: &Job, type_: &str) -> Option<String> {
    let c = job.status.as_ref()?.conditions.as_ref()?.iter().find(|c| c.type_ == type_ && c.status == "True")?;
    Some(c.reason.clone().unwrap_or_default())
}

/// Readiness of a workload owner, as `Ok(evidence)` or `Err(observed)`.
fn workload<K: serde::Serialize + Resource>(kind: &str, w: &K) -> Result<String, String> {
    let r = Rollout::of(kind, w);
    let name = w.meta().name.clone().unwrap_or_default();
    match r.unready(true, false) {
        None => Ok(format!("{kind} {name}, which is ready {}/{}", r.ready, r.want)),
        Some(_) => Err(format!("{kind} {name} {}/{} ready", r.ready, r.want)),
    }
}

/// Whether the owner of a finished pod is healthy: `Ok(why the pod is fine)` or `Err(observed)`.
fn owner_healthy(ns: &str, reference: &OwnerReference, owners: &Owners) -> Result<String, String> {
    let missing = || Err(format!("its owner {} {} no longer exists", reference.kind, reference.name));
    match reference.kind.as_str() {
        "Job" => {
            let Some(job) = find(&owners.jobs, ns, reference) else { return missing() };
            let name = &reference.name;
            if job_condition(job, "Complete").is_some() {
                return Ok(format!("a failed attempt of Job {name}, which completed"));
            }
            if let Some(reason) = job_condition(job, "Failed") {
                // A CronJob's failed run is superseded by a later run that completed.
                let created = job.metadata.creation_timestamp.as_ref().map(|t| t.0);
                let later = controller(&job.metadata).filter(|c| c.kind == "CronJob").and_then(|cron| {
                    owners.jobs.iter().find(|j| {
                        controller(&j.metadata).is_some_and(|c| c.uid == cron.uid)
                            && j.metadata.creation_timestamp.as_ref().map(|t| t.0) > created
                            && job_condition(j, "Complete").is_some()
                    })
                });
                return match later {
                    Some(j) => Ok(format!("an attempt of Job {name}, superseded by Job {}, which completed", j.metadata.name.clone().unwrap_or_default())),
                    None => Err(format!("its Job {name} failed ({reason})")),
                };
            }
            let failed = job.status.as_ref().and_then(|s| s.failed).unwrap_or(0);
            let limit = job.spec.as_ref().and_then(|s| s.backoff_limit).unwrap_or(6);
            Ok(format!("a retried attempt of Job {name}, still running ({failed} failed of backoffLimit {limit})"))
        }
        "ReplicaSet" => {
            let Some(rs) = find(&owners.replica_sets, ns, reference) else { return missing() };
            // An old ReplicaSet of a Deployment is scaled to 0: the Deployment is what serves.
            match controller(&rs.metadata).filter(|c| c.kind == "Deployment") {
                Some(d) => match find(&owners.deployments, ns, d) {
                    Some(d) => workload("Deployment", d).map(|e| format!("a pod of {e}")),
                    None => Err(format!("its Deployment {} no longer exists", d.name)),
                },
                None => workload("ReplicaSet", rs).map(|e| format!("a pod of {e}")),
            }
        }
        "StatefulSet" => find(&owners.stateful_sets, ns, reference).map_or_else(missing, |s| workload("StatefulSet", s).map(|e| format!("a pod of {e}"))),
        "DaemonSet" => find(&owners.daemon_sets, ns, reference).map_or_else(missing, |s| workload("DaemonSet", s).map(|e| format!("a pod of {e}"))),
        other => Err(format!("its owner {other} {} is not a kind whose health this check reads", reference.name)),
    }
}

/// The verdict on one pod (see the module documentation).
pub fn judge_pod(pod: &Pod, owners: &Owners, cluster: &str) -> PodVerdict {
    let ns = pod.metadata.namespace.clone().unwrap_or_default();
    let object = format!("Pod {ns}/{} (cluster {cluster})", pod.metadata.name.clone().unwrap_or_default());
    let status = pod.status.as_ref();
    let phase = status.and_then(|s| s.phase.clone()).unwrap_or_default();
    match phase.as_str() {
        "Succeeded" => PodVerdict::Finished("Succeeded".into()),
        "Failed" => {
            let reason = status.and_then(|s| s.reason.clone()).map(|r| format!(" ({r})")).unwrap_or_default();
            let expected = "Ready, or finished with a healthy owner (a completed or retrying Job, a ready workload)";
            match controller(&pod.metadata) {
                None => PodVerdict::Unready(Finding::new(object, expected, format!("phase Failed{reason}, no owner"))),
                Some(reference) => match owner_healthy(&ns, reference, owners) {
                    Ok(why) => PodVerdict::Finished(format!("Failed{reason}: {why}")),
                    Err(observed) => PodVerdict::Unready(Finding::new(object, expected, format!("phase Failed{reason}; {observed}"))),
                },
            }
        }
        _ if is_ready(pod) => PodVerdict::Ready,
        _ => {
            let why = status
                .and_then(|s| s.conditions.as_ref())
                .and_then(|c| c.iter().find(|c| c.type_ == "Ready"))
                .map(|c| format!("Ready={} ({})", c.status, c.reason.clone().unwrap_or_default()))
                .unwrap_or_else(|| "no Ready condition".into());
            PodVerdict::Unready(Finding::new(object, "Ready=True (readiness checks passing)", format!("{why}, phase {phase}")))
        }
    }
}

/// Judges `pods`: the findings, and a bounded line on the finished pods read as history
/// (`2 finished pods fine by their owners: x (Failed (Evicted): a pod of Deployment d, …)`).
pub fn judge_pods<'a>(pods: impl IntoIterator<Item = &'a Pod>, owners: &Owners, cluster: &str) -> (Vec<Finding>, Option<String>) {
    let mut findings = vec![];
    let mut history = vec![];
    for p in pods {
        match judge_pod(p, owners, cluster) {
            PodVerdict::Ready => {}
            PodVerdict::Finished(why) if why == "Succeeded" => {}
            PodVerdict::Finished(why) => history.push(format!("{} ({why})", p.metadata.name.clone().unwrap_or_default())),
            PodVerdict::Unready(f) => findings.push(f),
        }
    }
    let line = (!history.is_empty()).then(|| {
        let more = history.len().saturating_sub(3);
        let shown = history.iter().take(3).cloned().collect::<Vec<_>>().join("; ");
        format!("{} failed pod(s) fine by their owners: {shown}{}", history.len(), if more > 0 { format!(" and {more} more") } else { String::new() })
    });
    (findings, line)
}

/// Whether any pod is `Failed` (only then are owners worth listing).
pub fn any_failed<'a>(pods: impl IntoIterator<Item = &'a Pod>) -> bool {
    pods.into_iter().any(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Failed"))
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::apps::v1::{DeploymentSpec, DeploymentStatus, ReplicaSetSpec, ReplicaSetStatus};
    use k8s_openapi::api::batch::v1::{JobCondition, JobSpec, JobStatus};
    use k8s_openapi::api::core::v1::{PodCondition, PodStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    use super::*;

    /// main's rule (dod.6 before this module): every pod Ready or Succeeded.
    fn old_rule_accepts(p: &Pod) -> bool {
        p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Succeeded") || is_ready(p)
    }

    fn owner(kind: &str, name: &str) -> OwnerReference {
        OwnerReference { api_version: "v1".into(), kind: kind.into(), name: name.into(), uid: format!("uid-{name}"), controller: Some(true), ..Default::default() }
    }

    fn meta(name: &str, owner_ref: Option<OwnerReference>) -> ObjectMeta {
        ObjectMeta { name: Some(name.into()), namespace: Some("databases".into()), uid: Some(format!("uid-{name}")), owner_references: owner_ref.map(|o| vec![o]), ..Default::default() }
    }

    /// A pod the way the kubelet leaves it after a failure: phase Failed, Ready=False.
    fn failed_pod(name: &str, reason: Option<&str>, owner_ref: Option<OwnerReference>) -> Pod {
        Pod {
            metadata: meta(name, owner_ref),
            status: Some(PodStatus {
                phase: Some("Failed".into()),
                reason: reason.map(String::from),
                message: reason.map(|_| "The node was low on resource: memory. ".into()),
                conditions: Some(vec![PodCondition { type_: "Ready".into(), status: "False".into(), reason: Some("PodFailed".into()), ..Default::default() }]),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn job(name: &str, condition: Option<&str>, cron: Option<&str>, created: &str) -> Job {
        let mut m = meta(name, cron.map(|c| owner("CronJob", c)));
        m.creation_timestamp = Some(Time(created.parse().unwrap()));
        Job {
            metadata: m,
            spec: Some(JobSpec { backoff_limit: Some(6), ..Default::default() }),
            status: Some(JobStatus {
                failed: Some(1),
                conditions: condition.map(|c| vec![JobCondition { type_: c.into(), status: "True".into(), reason: Some(if c == "Failed" { "BackoffLimitExceeded".into() } else { "CompletionsReached".into() }), ..Default::default() }]),
                ..Default::default()
            }),
        }
    }

    fn deployment(name: &str, want: i32, ready: i32) -> Deployment {
        Deployment {
            metadata: meta(name, None),
            spec: Some(DeploymentSpec { replicas: Some(want), ..Default::default() }),
            status: Some(DeploymentStatus { ready_replicas: Some(ready), ..Default::default() }),
        }
    }

    fn replica_set(name: &str, deployment: &str, replicas: i32) -> ReplicaSet {
        ReplicaSet {
            metadata: meta(name, Some(owner("Deployment", deployment))),
            spec: Some(ReplicaSetSpec { replicas: Some(replicas), ..Default::default() }),
            status: Some(ReplicaSetStatus { replicas, ready_replicas: Some(replicas), ..Default::default() }),
        }
    }

    #[test]
    fn failed_attempts_of_a_completed_or_retrying_job_are_history() {
        let owners = Owners { jobs: vec![job("pg-1-join", Some("Complete"), None, "2026-11-30T10:00:00Z"), job("migrate", None, None, "2026-11-30T10:00:00Z")], ..Default::default() };
        for (pod, job) in [("pg-1-join-abcde", "pg-1-join"), ("migrate-xyz12", "migrate")] {
            let p = failed_pod(pod, None, Some(owner("Job", job)));
            assert!(!old_rule_accepts(&p), "main's rule calls {pod} unready");
            match judge_pod(&p, &owners, "infra") {
                PodVerdict::Finished(why) => assert!(why.contains(&format!("Job {job}")), "{why}"),
                other => panic!("{pod}: {other:?}"),
            }
        }
    }

    #[test]
    fn a_failed_cronjob_run_is_superseded_by_a_later_completed_one_only() {
        let old = job("backup-100", Some("Failed"), Some("backup"), "2026-11-29T00:00:00Z");
        let new = job("backup-200", Some("Complete"), Some("backup"), "2026-11-30T00:00:00Z");
        let p = failed_pod("backup-100-q", None, Some(owner("Job", "backup-100")));
        let fine = Owners { jobs: vec![old.clone(), new], ..Default::default() };
        assert!(matches!(judge_pod(&p, &fine, "infra"), PodVerdict::Finished(w) if w.contains("superseded by Job backup-200")));
        let alone = Owners { jobs: vec![old], ..Default::default() };
        let PodVerdict::Unready(f) = judge_pod(&p, &alone, "infra") else { panic!("a failed Job without a later success must fail") };
        assert_eq!(f.object, "Pod databases/backup-100-q (cluster infra)");
        assert!(f.observed.contains("its Job backup-100 failed (BackoffLimitExceeded)"), "{}", f.observed);
    }

    #[test]
    fn an_evicted_pod_of_a_ready_deployment_is_history_of_an_unready_one_a_finding() {
        let p = failed_pod("web-6d4f-abcde", Some("Evicted"), Some(owner("ReplicaSet", "web-6d4f")));
        assert!(!old_rule_accepts(&p), "main's rule calls an evicted pod unready");
        // The evicted pod belongs to an old ReplicaSet (scaled to 0); the Deployment serves 2/2.
        let owners = Owners { replica_sets: vec![replica_set("web-6d4f", "web", 0)], deployments: vec![deployment("web", 2, 2)], ..Default::default() };
        assert_eq!(judge_pod(&p, &owners, "apps"), PodVerdict::Finished("Failed (Evicted): a pod of Deployment web, which is ready 2/2".into()));
        let short = Owners { replica_sets: vec![replica_set("web-6d4f", "web", 2)], deployments: vec![deployment("web", 2, 1)], ..Default::default() };
        let PodVerdict::Unready(f) = judge_pod(&p, &short, "apps") else { panic!("an unready owner must fail") };
        assert_eq!(f.observed, "phase Failed (Evicted); Deployment web 1/2 ready");
    }

    #[test]
    fn failed_pods_without_a_healthy_owner_fail_by_name() {
        let bare = failed_pod("debug", Some("Error"), None);
        let PodVerdict::Unready(f) = judge_pod(&bare, &Owners::default(), "infra") else { panic!() };
        assert_eq!((f.object.as_str(), f.observed.as_str()), ("Pod databases/debug (cluster infra)", "phase Failed (Error), no owner"));
        let gone = failed_pod("web-1", Some("Evicted"), Some(owner("ReplicaSet", "web-1")));
        let PodVerdict::Unready(f) = judge_pod(&gone, &Owners::default(), "infra") else { panic!() };
        assert!(f.observed.contains("its owner ReplicaSet web-1 no longer exists"), "{}", f.observed);
        let cnpg = failed_pod("pg-2", Some("Evicted"), Some(owner("Cluster", "pg")));
        let PodVerdict::Unready(f) = judge_pod(&cnpg, &Owners::default(), "infra") else { panic!() };
        assert!(f.observed.contains("its owner Cluster pg is not a kind whose health this check reads"), "{}", f.observed);
    }

    #[test]
    fn running_pods_still_must_be_ready_and_evidence_is_bounded() {
        let mut p = failed_pod("web-2", None, Some(owner("ReplicaSet", "web-6d4f")));
        p.status.as_mut().unwrap().phase = Some("Running".into());
        let owners = Owners { replica_sets: vec![replica_set("web-6d4f", "web", 2)], deployments: vec![deployment("web", 2, 2)], ..Default::default() };
        assert!(matches!(judge_pod(&p, &owners, "infra"), PodVerdict::Unready(f) if f.observed == "Ready=False (PodFailed), phase Running"));
        let evicted: Vec<Pod> = (0..5).map(|i| failed_pod(&format!("web-6d4f-{i}"), Some("Evicted"), Some(owner("ReplicaSet", "web-6d4f")))).collect();
        let (findings, line) = judge_pods(&evicted, &owners, "infra");
        assert!(findings.is_empty());
        let line = line.unwrap();
        assert!(line.starts_with("5 failed pod(s) fine by their owners: web-6d4f-0 (Failed (Evicted): a pod of Deployment web, which is ready 2/2)"), "{line}");
        assert!(line.ends_with("and 2 more"), "{line}");
    }
}
