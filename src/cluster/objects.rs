//! Reading custom resources whatever API version a cluster serves, and judging
//! the health signals upstream controllers write (conditions, workload counts).
//!
//! ```no_run
//! # async fn demo(client: kube::Client) {
//! use platform_acceptance::cluster::objects::{self, Kind};
//! const CEPH_CLUSTER: Kind = Kind::namespaced("ceph.rook.io", &["v1"], "CephCluster");
//! let found = objects::get(&client, &CEPH_CLUSTER, Some("rook-ceph"), "rook-ceph").await;
//! # }
//! ```

use kube::api::{Api, DynamicObject, ListParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::Value;

use crate::outcome::{Finding, Outcome};

/// A kind as the checks know it: group, the versions a cluster may serve (preferred
/// first; several because upstream deprecates), and the kind name.
#[derive(Debug, Clone, Copy)]
pub struct Kind {
    pub group: &'static str,
    pub versions: &'static [&'static str],
    pub kind: &'static str,
    pub namespaced: bool,
}

impl Kind {
    pub const fn namespaced(group: &'static str, versions: &'static [&'static str], kind: &'static str) -> Self {
        Kind { group, versions, kind, namespaced: true }
    }
    pub const fn cluster_scoped(group: &'static str, versions: &'static [&'static str], kind: &'static str) -> Self {
        Kind { group, versions, kind, namespaced: false }
    }
}

/// A found object with the API version the cluster served it under.
#[derive(Debug, Clone)]
pub struct Found {
    pub object: DynamicObject,
    pub api_version: String,
}

impl Found {
    pub fn name(&self) -> &str {
        self.object.metadata.name.as_deref().unwrap_or("")
    }
    pub fn namespace(&self) -> Option<&str> {
        self.object.metadata.namespace.as_deref()
    }
    /// `CephCluster rook-ceph/rook-ceph (ceph.rook.io/v1)`
    pub fn describe(&self, kind: &Kind) -> String {
        match self.namespace() {
            Some(ns) => format!("{} {ns}/{} ({})", kind.kind, self.name(), self.api_version),
            None => format!("{} {} ({})", kind.kind, self.name(), self.api_version),
        }
    }
    pub fn get(&self, pointer: &str) -> Option<&Value> {
        self.object.data.pointer(pointer)
    }
    pub fn str(&self, pointer: &str) -> Option<&str> {
        self.get(pointer).and_then(Value::as_str)
    }
    pub fn condition(&self, type_: &str) -> Option<Condition> {
        condition(&self.object, type_)
    }
}

/// The API resource for the first served version of `kind`, or an Error/Fail outcome.
pub async fn resource(client: &kube::Client, kind: &Kind) -> Result<(ApiResource, String), Outcome> {
    let mut last = String::new();
    for v in kind.versions {
        let gvk = GroupVersionKind::gvk(kind.group, v, kind.kind);
        match kube::discovery::pinned_kind(client, &gvk).await {
            Ok((ar, _caps)) => return Ok((ar, if kind.group.is_empty() { v.to_string() } else { format!("{}/{v}", kind.group) })),
            Err(kube::Error::Api(s)) if s.code == 404 => last = format!("{}/{v} not served", kind.group),
            Err(e) if is_not_found(&e) => last = format!("{}/{v} not served", kind.group),
            Err(e) => return Err(super::api_error(&format!("discover {} {}", kind.group, kind.kind), e)),
        }
    }
    Err(Outcome::fail(
        format!("API {}/{}", kind.group, kind.kind),
        format!("served in one of [{}]", kind.versions.join(", ")),
        format!("not served ({last}); the CRD is not installed"),
    ))
}

fn is_not_found(e: &kube::Error) -> bool {
    let text = e.to_string();
    text.contains("404") || text.contains("not found") || text.contains("NotFound")
}

fn api(client: &kube::Client, ar: &ApiResource, ns: Option<&str>, namespaced: bool) -> Api<DynamicObject> {
    match (namespaced, ns) {
        (true, Some(ns)) => Api::namespaced_with(client.clone(), ns, ar),
        _ => Api::all_with(client.clone(), ar),
    }
}

/// One object by name; `Ok(None)` when it does not exist.
pub async fn get(client: &kube::Client, kind: &Kind, ns: Option<&str>, name: &str) -> Result<Option<Found>, Outcome> {
    let (ar, api_version) = resource(client, kind).await?;
    match api(client, &ar, ns, kind.namespaced).get_opt(name).await {
        Ok(o) => Ok(o.map(|object| Found { object, api_version })),
        Err(e) => Err(super::api_error(&format!("get {} {}", kind.kind, name), e)),
    }
}

/// One object that must exist: a missing one is a Fail naming it.
pub async fn require(client: &kube::Client, kind: &Kind, ns: Option<&str>, name: &str) -> Result<Found, Outcome> {
    get(client, kind, ns, name).await?.ok_or_else(|| {
        let object = match ns { Some(ns) => format!("{} {ns}/{name}", kind.kind), None => format!("{} {name}", kind.kind) };
        Outcome::fail(object, "present", "not found")
    })
}

/// Objects of a kind in a namespace (or all namespaces), optionally by label selector.
pub async fn list(client: &kube::Client, kind: &Kind, ns: Option<&str>, labels: Option<&str>) -> Result<Vec<Found>, Outcome> {
    let (ar, api_version) = resource(client, kind).await?;
    let mut lp = ListParams::default();
    if let Some(l) = labels {
        lp = lp.labels(l);
    }
    match api(client, &ar, ns, kind.namespaced).list(&lp).await {
        Ok(l) => Ok(l.items.into_iter().map(|object| Found { object, api_version: api_version.clone() }).collect()),
        Err(e) => Err(super::api_error(&format!("list {}", kind.kind), e)),
    }
}

/// A status condition (`status.conditions[]`, the Kubernetes and kstatus convention).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    pub status: String,
    pub reason: String,
    pub message: String,
    pub observed_generation: Option<i64>,
}

pub fn condition(obj: &DynamicObject, type_: &str) -> Option<Condition> {
    let c = obj.data.pointer("/status/conditions")?.as_array()?.iter().find(|c| c.get("type").and_then(Value::as_str) == Some(type_))?;
    let s = |k: &str| c.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    Some(Condition { status: s("status"), reason: s("reason"), message: s("message"), observed_generation: c.get("observedGeneration").and_then(Value::as_i64) })
}

/// Passes when condition `type_` is True and not stale: the condition's (or the status')
/// observedGeneration equals metadata.generation where the API records them.
pub fn expect_condition(found: &Found, kind: &Kind, type_: &str) -> Outcome {
    let object = found.describe(kind);
    let Some(c) = found.condition(type_) else {
        return Outcome::fail(object, format!("condition {type_}=True"), "no such condition");
    };
    if c.status != "True" {
        return Outcome::fail(object, format!("{type_}=True"), format!("{type_}={} ({}: {})", c.status, c.reason, c.message));
    }
    let generation = found.object.metadata.generation;
    let observed = c.observed_generation.or_else(|| found.get("/status/observedGeneration").and_then(Value::as_i64));
    if let (Some(g), Some(o)) = (generation, observed) {
        if o < g {
            return Outcome::fail(object, format!("{type_}=True for generation {g}"), format!("stale: observedGeneration {o}"));
        }
    }
    Outcome::pass(format!("{object}: {type_}=True ({})", c.reason))
}

/// Deployment, StatefulSet or DaemonSet fully rolled out and ready.
pub async fn expect_workload_ready(client: &kube::Client, cluster: &str, kind: &str, ns: &str, name: &str) -> Outcome {
    use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
    let object = format!("{kind} {ns}/{name} (cluster {cluster})");
    let counts: Result<Option<(i32, i32)>, kube::Error> = match kind {
        "Deployment" => Api::<Deployment>::namespaced(client.clone(), ns).get_opt(name).await.map(|d| {
            d.map(|d| (d.spec.and_then(|s| s.replicas).unwrap_or(1), d.status.and_then(|s| s.ready_replicas).unwrap_or(0)))
        }),
        "StatefulSet" => Api::<StatefulSet>::namespaced(client.clone(), ns).get_opt(name).await.map(|d| {
            d.map(|d| (d.spec.and_then(|s| s.replicas).unwrap_or(1), d.status.and_then(|s| s.ready_replicas).unwrap_or(0)))
        }),
        "DaemonSet" => Api::<DaemonSet>::namespaced(client.clone(), ns)
            .get_opt(name)
            .await
            .map(|d| d.map(|d| d.status.map(|s| (s.desired_number_scheduled, s.number_ready)).unwrap_or((0, 0)))),
        other => return Outcome::error(format!("expect_workload_ready: unsupported kind {other}")),
    };
    match counts {
        Ok(None) => Outcome::fail(object, "present", "not found"),
        Ok(Some((want, ready))) if want > 0 && ready >= want => Outcome::pass(format!("{object}: {ready}/{want} ready")),
        Ok(Some((want, ready))) => Outcome::fail(object, format!("{want} ready (> 0)"), format!("{ready}/{want} ready")),
        Err(e) => super::api_error(&format!("get {object}"), e),
    }
}

/// Findings for pods matching `labels` in `ns` that are not Ready (none at all is a finding too).
pub async fn expect_pods_ready(client: &kube::Client, cluster: &str, ns: &str, labels: &str) -> Outcome {
    use k8s_openapi::api::core::v1::Pod;
    let pods = match Api::<Pod>::namespaced(client.clone(), ns).list(&ListParams::default().labels(labels)).await {
        Ok(p) => p.items,
        Err(e) => return super::api_error(&format!("list pods {ns} -l {labels}"), e),
    };
    if pods.is_empty() {
        return Outcome::fail(format!("pods {ns} -l {labels} (cluster {cluster})"), "at least one Ready pod", "no pods");
    }
    let findings: Vec<Finding> = pods
        .iter()
        .filter(|p| {
            !p.status.as_ref().and_then(|s| s.conditions.as_ref()).is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
        })
        .map(|p| {
            let phase = p.status.as_ref().and_then(|s| s.phase.clone()).unwrap_or_default();
            Finding::new(format!("Pod {ns}/{} (cluster {cluster})", p.metadata.name.clone().unwrap_or_default()), "Ready=True", format!("not ready (phase {phase})"))
        })
        .collect();
    Outcome::from_findings(findings, format!("{} pods {ns} -l {labels} Ready (cluster {cluster})", pods.len()))
}
