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
    // None of the versions the check reads: a kind served at another version is an Error
    // naming it (the check cannot judge it), only a kind not served at all is a Fail.
    if let Ok(served) = super::discovery::served_versions(client, kind.group, kind.kind).await
        && let super::discovery::Served::OnlyUnknown(other) = super::discovery::judge_served(kind.versions, &served)
    {
        return Err(Outcome::error(super::discovery::unknown_versions_message(kind.group, kind.kind, kind.versions, &other)));
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

/// The newest Warning event about `found` as `reason: message` (at most 300 characters),
/// if its controller recorded one whose message `known` (what the caller already reports,
/// e.g. the condition's message) does not contain: the detail behind a terse condition
/// (external-secrets' "could not get secret data from provider" names the missing item
/// only in its event). Events of a cluster-scoped object are in namespace `default`. A
/// failed read is no event.
pub async fn last_warning(client: &kube::Client, found: &Found, known: &str) -> Option<String> {
    use k8s_openapi::api::core::v1::Event;
    let api: Api<Event> = Api::namespaced(client.clone(), found.namespace().unwrap_or("default"));
    let uid = found.object.metadata.uid.as_deref();
    let lp = ListParams::default().fields(&format!("involvedObject.name={},type=Warning", found.name()));
    let events = api.list(&lp).await.ok()?.items;
    let newest = events
        .into_iter()
        .filter(|e| uid.is_none() || e.involved_object.uid.as_deref() == uid)
        .max_by_key(|e| e.last_timestamp.as_ref().map(|t| t.0).or(e.event_time.as_ref().map(|t| t.0)).or(e.metadata.creation_timestamp.as_ref().map(|t| t.0)))?;
    let message = newest.message.unwrap_or_default();
    if known.contains(message.trim()) {
        return None;
    }
    let line = format!("{}: {}", newest.reason.unwrap_or_default(), message.trim());
    Some(line.chars().take(300).collect())
}

/// Creates an object of `kind` from its JSON body (apiVersion and kind are set from the
/// served version): the writes of a round trip, always into a namespace the check owns.
pub async fn create(client: &kube::Client, kind: &Kind, ns: Option<&str>, mut body: Value) -> Result<Found, Outcome> {
    let (ar, api_version) = resource(client, kind).await?;
    body["apiVersion"] = Value::from(api_version.clone());
    body["kind"] = Value::from(kind.kind);
    let object: DynamicObject = serde_json::from_value(body).map_err(Outcome::error)?;
    let name = object.metadata.name.clone().unwrap_or_default();
    match api(client, &ar, ns, kind.namespaced).create(&kube::api::PostParams::default(), &object).await {
        Ok(object) => Ok(Found { object, api_version }),
        Err(e) => Err(super::api_error(&format!("create {} {name}", kind.kind), e)),
    }
}

/// Deletes an object of `kind` (a round trip's own, at cleanup); a missing one is not an error.
pub async fn delete(client: &kube::Client, kind: &Kind, ns: Option<&str>, name: &str) -> Result<(), Outcome> {
    let (ar, _) = resource(client, kind).await?;
    match api(client, &ar, ns, kind.namespaced).delete(name, &kube::api::DeleteParams::default()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => Err(super::api_error(&format!("delete {} {name}", kind.kind), e)),
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

/// What the object's controller says it is still doing (`reason: message`), by the
/// condition conventions of Flux and kstatus: `Reconciling=True`, or `Ready=Unknown` with
/// reason `Progressing` (fluxcd/pkg `apis/meta`: `ReconcilingCondition`,
/// `ProgressingReason`; helm-controller and kustomize-controller mark both when a
/// reconciliation starts). `None` when it is not working on it, or when `Ready=False`: a
/// failed attempt being retried (`ProgressingWithRetry`) is a failure, not progress.
pub fn reconciling(found: &Found) -> Option<String> {
    let ready = found.condition("Ready");
    if ready.as_ref().is_some_and(|r| r.status == "False") {
        return None;
    }
    let progressing = found.condition("Reconciling").filter(|c| c.status == "True");
    let unknown = ready.filter(|r| r.status == "Unknown" && r.reason == "Progressing");
    progressing.or(unknown).map(|c| format!("{}: {}", c.reason, c.message))
}

/// Passes when condition `type_` is True and not stale: the condition's (or the status')
/// observedGeneration equals metadata.generation where the API records them.
pub fn expect_condition(found: &Found, kind: &Kind, type_: &str) -> Outcome {
    let object = found.describe(kind);
    let Some(c) = found.condition(type_) else {
        return Outcome::fail(object, format!("condition {type_}=True"), "no such condition");
    };
    if c.status != "True" {
        let why: Vec<&str> = [c.reason.as_str(), c.message.as_str()].into_iter().filter(|s| !s.is_empty()).collect();
        let why = if why.is_empty() { String::new() } else { format!(" ({})", why.join(": ")) };
        return Outcome::fail(object, format!("{type_}=True"), format!("{type_}={}{why}", c.status));
    }
    let generation = found.object.metadata.generation;
    let observed = c.observed_generation.or_else(|| found.get("/status/observedGeneration").and_then(Value::as_i64));
    if let (Some(g), Some(o)) = (generation, observed)
        && o < g
    {
        return Outcome::fail(object, format!("{type_}=True for generation {g}"), format!("stale: observedGeneration {o}"));
    }
    // Some APIs (Keycloak's) give their conditions no reason.
    let why = if c.reason.is_empty() { String::new() } else { format!(" ({})", c.reason) };
    Outcome::pass(format!("{object}: {type_}=True{why}"))
}

/// Desired and ready counts of a Deployment, StatefulSet or DaemonSet, and whether its
/// controller has observed its current spec: the one place that reads a workload's
/// readiness (`spec.replicas` (default 1) and `status.readyReplicas`, or a DaemonSet's
/// `status.desiredNumberScheduled` and `status.numberReady`).
///
/// ```
/// use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec, DeploymentStatus};
/// use platform_acceptance::cluster::objects::{Rollout, Unready};
/// let d = Deployment {
///     spec: Some(DeploymentSpec { replicas: Some(3), ..Default::default() }),
///     status: Some(DeploymentStatus { ready_replicas: Some(2), ..Default::default() }),
///     ..Default::default()
/// };
/// let r = Rollout::of("Deployment", &d);
/// assert_eq!((r.want, r.ready), (3, 2));
/// assert_eq!(r.unready(false, true), Some(Unready::Short));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rollout {
    pub want: i64,
    pub ready: i64,
    /// `status.observedGeneration` has reached `metadata.generation` (true when either is absent).
    pub observed: bool,
}

/// Why a workload is not ready (see [`Rollout::unready`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unready {
    /// No replica desired.
    NoneDesired,
    /// Fewer ready than desired.
    Short,
    /// Counts fine, but the controller has not observed the current spec yet.
    NotObserved,
}

impl Rollout {
    /// The counts of workload `w` of `kind` (`Deployment`, `StatefulSet` or `DaemonSet`).
    pub fn of<K: serde::Serialize>(kind: &str, w: &K) -> Rollout {
        let v = serde_json::to_value(w).unwrap_or(Value::Null);
        let int = |p: &str| v.pointer(p).and_then(Value::as_i64);
        let generation = int("/metadata/generation").unwrap_or(0);
        let observed = int("/status/observedGeneration").unwrap_or(generation);
        let (want, ready) = match kind {
            "DaemonSet" => (int("/status/desiredNumberScheduled").unwrap_or(0), int("/status/numberReady").unwrap_or(0)),
            _ => (int("/spec/replicas").unwrap_or(1), int("/status/readyReplicas").unwrap_or(0)),
        };
        Rollout { want, ready, observed: observed >= generation }
    }

    /// The readiness rule: at least one replica desired (unless `allow_zero`), every desired
    /// replica ready, and (when `require_observed`) the current spec observed. `None` is ready.
    pub fn unready(&self, allow_zero: bool, require_observed: bool) -> Option<Unready> {
        if self.want == 0 && !allow_zero {
            Some(Unready::NoneDesired)
        } else if self.ready < self.want {
            Some(Unready::Short)
        } else if require_observed && !self.observed {
            Some(Unready::NotObserved)
        } else {
            None
        }
    }
}

/// One listed workload's readiness (the full rule, current spec observed) as a finding,
/// or its evidence text (`Kind ns/name ready/want`).
pub fn judge_workload<K: serde::Serialize + kube::Resource>(kind: &str, w: &K, cluster: &str, allow_zero: bool) -> Result<String, Finding> {
    let meta = w.meta();
    let (ns, name) = (meta.namespace.clone().unwrap_or_default(), meta.name.clone().unwrap_or_default());
    let object = format!("{kind} {ns}/{name} (cluster {cluster})");
    let rollout = Rollout::of(kind, w);
    let (want, ready) = (rollout.want, rollout.ready);
    let field = if kind == "DaemonSet" { "numberReady = desiredNumberScheduled" } else { "readyReplicas = spec.replicas" };
    match rollout.unready(allow_zero, true) {
        Some(Unready::NoneDesired) => Err(Finding::new(object, format!("{field} (> 0)"), "0 desired")),
        Some(Unready::Short) => Err(Finding::new(object, format!("{field} ({want})"), format!("{ready}/{want} ready"))),
        Some(Unready::NotObserved) => Err(Finding::new(object, "status.observedGeneration = metadata.generation", "rollout of the current spec not observed yet")),
        None => Ok(format!("{kind} {ns}/{name} {ready}/{want}")),
    }
}

/// Deployment, StatefulSet or DaemonSet `ns/name` fully rolled out and ready, by the rule of
/// [`Rollout::unready`] without the observed-generation part (this helper has never
/// required it).
pub async fn expect_workload_ready(client: &kube::Client, cluster: &str, kind: &str, ns: &str, name: &str) -> Outcome {
    use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
    let object = format!("{kind} {ns}/{name} (cluster {cluster})");
    let rollout: Result<Option<Rollout>, kube::Error> = match kind {
        "Deployment" => Api::<Deployment>::namespaced(client.clone(), ns).get_opt(name).await.map(|w| w.map(|w| Rollout::of(kind, &w))),
        "StatefulSet" => Api::<StatefulSet>::namespaced(client.clone(), ns).get_opt(name).await.map(|w| w.map(|w| Rollout::of(kind, &w))),
        "DaemonSet" => Api::<DaemonSet>::namespaced(client.clone(), ns).get_opt(name).await.map(|w| w.map(|w| Rollout::of(kind, &w))),
        other => return Outcome::error(format!("expect_workload_ready: unsupported kind {other}")),
    };
    match rollout {
        Ok(None) => Outcome::fail(object, "present", "not found"),
        Ok(Some(r)) => match r.unready(false, false) {
            None => Outcome::pass(format!("{object}: {}/{} ready", r.ready, r.want)),
            Some(_) => Outcome::fail(object, format!("{} ready (> 0)", r.want), format!("{}/{} ready", r.ready, r.want)),
        },
        Err(e) => super::api_error(&format!("get {object}"), e),
    }
}

/// Findings for pods matching `labels` in `ns` that are not Ready (none at all is a finding
/// too). A `Failed` pod is judged by its owner ([`super::pods`]): a retried Job attempt or an
/// evicted pod of a ready workload is history, not a finding.
pub async fn expect_pods_ready(client: &kube::Client, cluster: &str, ns: &str, labels: &str) -> Outcome {
    use k8s_openapi::api::core::v1::Pod;
    let pods = match Api::<Pod>::namespaced(client.clone(), ns).list(&ListParams::default().labels(labels)).await {
        Ok(p) => p.items,
        Err(e) => return super::api_error(&format!("list pods {ns} -l {labels}"), e),
    };
    if pods.is_empty() {
        return Outcome::fail(format!("pods {ns} -l {labels} (cluster {cluster})"), "at least one Ready pod", "no pods");
    }
    let owners = if super::pods::any_failed(&pods) {
        match super::pods::Owners::list(client, Some(ns), cluster).await {
            Ok(o) => o,
            Err(o) => return o,
        }
    } else {
        super::pods::Owners::default()
    };
    let finished = |p: &&Pod| matches!(p.status.as_ref().and_then(|s| s.phase.as_deref()), Some("Failed" | "Succeeded"));
    let (mut findings, history) = super::pods::judge_pods(pods.iter().filter(finished), &owners, cluster);
    for p in pods.iter().filter(|p| !finished(p)) {
        if !p.status.as_ref().and_then(|s| s.conditions.as_ref()).is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True")) {
            let phase = p.status.as_ref().and_then(|s| s.phase.clone()).unwrap_or_default();
            findings.push(Finding::new(format!("Pod {ns}/{} (cluster {cluster})", p.metadata.name.clone().unwrap_or_default()), "Ready=True", format!("not ready (phase {phase})")));
        }
    }
    let history = history.map(|h| format!("; {h}")).unwrap_or_default();
    Outcome::from_findings(findings, format!("{} pods {ns} -l {labels} Ready (cluster {cluster}){history}", pods.len()))
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::apps::v1::{DaemonSet, DaemonSetStatus, Deployment, DeploymentSpec, DeploymentStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    use super::*;

    #[tokio::test]
    async fn the_newest_warning_adds_what_the_condition_does_not_say() {
        let event = |name: &str, uid: &str, at: &str, message: &str| {
            serde_json::json!({"metadata": {"name": name, "namespace": "default"}, "involvedObject": {"name": "onepassword", "uid": uid},
                "type": "Warning", "reason": "ValidationFailed", "message": message, "lastTimestamp": at})
        };
        let fake = crate::cluster::fake::FakeApi::with_query(move |path, query| {
            assert_eq!(path, "/api/v1/namespaces/default/events");
            assert!(query.is_some_and(|q| q.contains("fieldSelector=involvedObject.name%3Donepassword%2Ctype%3DWarning")), "{query:?}");
            Some((200, serde_json::json!({"kind": "EventList", "apiVersion": "v1", "metadata": {}, "items": [
                event("a", "u1", "2026-12-01T10:00:00Z", "status 500: older"),
                event("b", "u1", "2026-12-01T10:05:00Z", "status 401: Invalid bearer token"),
                event("c", "u0", "2026-12-01T10:09:00Z", "an earlier object of the same name"),
            ]})))
        });
        let mut object = DynamicObject::new("onepassword", &ApiResource::from_gvk(&GroupVersionKind::gvk("external-secrets.io", "v1", "ClusterSecretStore")));
        object.metadata.uid = Some("u1".into());
        let found = Found { object, api_version: "external-secrets.io/v1".into() };
        let client = fake.client();
        assert_eq!(last_warning(&client, &found, "unable to validate store").await.as_deref(), Some("ValidationFailed: status 401: Invalid bearer token"));
        assert_eq!(last_warning(&client, &found, "unable to validate store: status 401: Invalid bearer token").await, None, "said already");
        let none = crate::cluster::fake::FakeApi::new(|_| None);
        assert_eq!(last_warning(&none.client(), &found, "").await, None, "no events to read is no event");
    }

    #[test]
    fn a_condition_is_judged_for_the_current_generation_and_named_with_its_reason_if_any() {
        const KC: Kind = Kind::namespaced("k8s.keycloak.org", &["v2alpha1"], "Keycloak");
        let found = |generation: i64, condition: Value| {
            let mut object = DynamicObject::new("keycloak", &ApiResource::from_gvk(&GroupVersionKind::gvk("k8s.keycloak.org", "v2alpha1", "Keycloak")));
            object.metadata.namespace = Some("auth".into());
            object.metadata.generation = Some(generation);
            object.data = serde_json::json!({"status": {"conditions": [condition]}});
            Found { object, api_version: "k8s.keycloak.org/v2alpha1".into() }
        };
        let message = |o: Outcome| match o {
            Outcome::Pass { evidence } => evidence.join("; "),
            Outcome::Fail { findings } => findings.iter().map(|f| format!("{}: expected {}, observed {}", f.object, f.expected, f.observed)).collect::<Vec<_>>().join("; "),
            other => panic!("{other:?}"),
        };
        // Keycloak's conditions carry no reason: none is shown.
        let ready = serde_json::json!({"type": "Ready", "status": "True", "observedGeneration": 2});
        assert_eq!(message(expect_condition(&found(2, ready.clone()), &KC, "Ready")), "Keycloak auth/keycloak (k8s.keycloak.org/v2alpha1): Ready=True");
        let with_reason = serde_json::json!({"type": "Ready", "status": "True", "reason": "Succeeded"});
        assert!(message(expect_condition(&found(2, with_reason), &KC, "Ready")).ends_with("Ready=True (Succeeded)"));
        assert!(message(expect_condition(&found(3, ready), &KC, "Ready")).ends_with("expected Ready=True for generation 3, observed stale: observedGeneration 2"));
        let not_ready = serde_json::json!({"type": "Ready", "status": "False", "reason": "", "message": "waiting for pods"});
        assert!(message(expect_condition(&found(2, not_ready), &KC, "Ready")).ends_with("expected Ready=True, observed Ready=False (waiting for pods)"));
    }

    fn deployment(replicas: Option<i32>, ready: Option<i32>, generation: i64, observed: i64) -> Deployment {
        Deployment {
            metadata: ObjectMeta { name: Some("web".into()), namespace: Some("apps".into()), generation: Some(generation), ..Default::default() },
            spec: Some(DeploymentSpec { replicas, ..Default::default() }),
            status: Some(DeploymentStatus { ready_replicas: ready, observed_generation: Some(observed), ..Default::default() }),
        }
    }

    #[test]
    fn one_rule_for_listed_and_named_workloads() {
        // Defaults: one replica wanted, none ready.
        assert_eq!(Rollout::of("Deployment", &deployment(None, None, 1, 1)), Rollout { want: 1, ready: 0, observed: true });
        let scaled_down = Rollout::of("Deployment", &deployment(Some(0), None, 2, 2));
        assert_eq!(scaled_down.unready(false, false), Some(Unready::NoneDesired));
        assert_eq!(scaled_down.unready(true, true), None);
        // Ready counts, but the controller has not seen generation 3 yet: only the full rule objects.
        let stale = Rollout::of("Deployment", &deployment(Some(2), Some(2), 3, 2));
        assert_eq!(stale.unready(false, true), Some(Unready::NotObserved));
        assert_eq!(stale.unready(false, false), None);
        let ds = DaemonSet { status: Some(DaemonSetStatus { desired_number_scheduled: 3, number_ready: 1, ..Default::default() }), ..Default::default() };
        assert_eq!(Rollout::of("DaemonSet", &ds).unready(false, true), Some(Unready::Short));
    }

    #[test]
    fn listed_workload_findings_keep_their_wording() {
        let f = judge_workload("Deployment", &deployment(Some(3), Some(1), 1, 1), "infra", false).unwrap_err();
        assert_eq!((f.object.as_str(), f.expected.as_str(), f.observed.as_str()), ("Deployment apps/web (cluster infra)", "readyReplicas = spec.replicas (3)", "1/3 ready"));
        let f = judge_workload("Deployment", &deployment(Some(0), None, 1, 1), "infra", false).unwrap_err();
        assert_eq!((f.expected.as_str(), f.observed.as_str()), ("readyReplicas = spec.replicas (> 0)", "0 desired"));
        assert_eq!(judge_workload("Deployment", &deployment(Some(2), Some(2), 1, 1), "infra", false), Ok("Deployment apps/web 2/2".to_string()));
    }
}
