//! Readiness on a live cluster, composable like `kube::runtime::wait::conditions`: a
//! HelmRelease Ready with its latest release deployed, workloads rolled out, a component
//! "deployed" (both), HTTPRoutes accepted, Service endpoints ready.

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, ListParams};
use serde_json::Value;

use super::helm::{chart_name, Release, HELM_GROUP};
use super::rendered::{objects, rendered, squash};
use crate::check::{CheckContext, Finding, Outcome};
use crate::cluster::api_error;
use crate::cluster::objects::{self as live, expect_condition, Kind};
use crate::repo::RenderedObject;

/// §6.1 [F3]: v2 today, v2beta2/v2beta1 on older helm-controllers.
pub const HELMRELEASE: Kind = Kind::namespaced("helm.toolkit.fluxcd.io", &["v2", "v2beta2", "v2beta1"], "HelmRelease");

/// §6.1 [F2]
pub const KUSTOMIZATION: Kind = Kind::namespaced("kustomize.toolkit.fluxcd.io", &["v1", "v1beta2"], "Kustomization");

/// Gateway API standard channel (v1; v1beta1 still served).
pub const HTTPROUTE: Kind = Kind::namespaced("gateway.networking.k8s.io", &["v1", "v1beta1"], "HTTPRoute");

/// Result type of the helpers: the value, or the outcome that ends the check.
pub type Live<T> = Result<T, Outcome>;

/// The HelmRelease of `chart` rendered for this cluster (what Flux applies); a release
/// named `chart` also counts (components without a chart of their own, e.g. the Keycloak
/// operator rendered with a generic app-template chart).
pub fn rendered_release(ctx: &CheckContext, chart: &str) -> Live<RenderedObject> {
    let r = rendered(ctx)?;
    let releases = objects(&r, HELM_GROUP, "HelmRelease");
    releases
        .iter()
        .find(|h| squash(&chart_name(h)) == squash(chart))
        .or_else(|| releases.iter().find(|h| squash(h.name()) == squash(chart)))
        .map(|h| (*h).clone())
        .ok_or_else(|| Outcome::fail(format!("HelmRelease of chart {chart} (or named {chart})"), format!("rendered for cluster {}", ctx.cluster), "not in the repository's manifests for this cluster"))
}

/// §6.2 [F3]: the HelmRelease is on the cluster, `Ready=True` for its current generation,
/// and its latest release (`status.history[0]`) is `deployed`.
pub async fn helmrelease_ready(client: &kube::Client, cluster: &str, ns: &str, name: &str) -> Outcome {
    let found = match live::require(client, &HELMRELEASE, Some(ns), name).await {
        Ok(f) => f,
        Err(Outcome::Fail { findings }) => {
            return Outcome::Fail { findings: findings.into_iter().map(|f| { let o = format!("{} (cluster {cluster})", f.object); f.renamed(o) }).collect() };
        }
        Err(o) => return o,
    };
    judge_helmrelease(&found, cluster)
}

/// The verdict on one live HelmRelease (see [`helmrelease_ready`]). An upgrade that
/// helm-controller is still running (`Reconciling=True` / `Ready=Unknown` Progressing,
/// the new release `pending-upgrade` on top of the one still deployed) is reported in
/// progress, naming the release still serving, so the runner waits for it.
pub fn judge_helmrelease(found: &live::Found, cluster: &str) -> Outcome {
    let object = format!("{} (cluster {cluster})", found.describe(&HELMRELEASE));
    if let Some(doing) = live::reconciling(found) {
        let history = found.get("/status/history").and_then(Value::as_array).cloned().unwrap_or_default();
        let deployed = history.iter().find(|h| h.get("status").and_then(Value::as_str) == Some("deployed"));
        let serving = match deployed {
            Some(h) => format!("chart {} still deployed", h.get("chartVersion").and_then(Value::as_str).unwrap_or("?")),
            None => "no release deployed yet".to_string(),
        };
        return Outcome::in_progress(object, "Ready=True, release deployed", format!("{doing}; {serving}"));
    }
    match expect_condition(found, &HELMRELEASE, "Ready") {
        Outcome::Pass { .. } => {}
        Outcome::Fail { findings } => return Outcome::Fail { findings: findings.into_iter().map(|f| Finding::new(object.clone(), f.expected, f.observed)).collect() },
        other => return other,
    }
    let latest = found.get("/status/history/0");
    let status = latest.and_then(|h| h.get("status")).and_then(Value::as_str);
    if latest.is_some() && status != Some("deployed") {
        return Outcome::fail(format!("{object} status.history[0]"), "status deployed", format!("{:?}", status.unwrap_or("")));
    }
    let version = latest.and_then(|h| h.get("chartVersion")).and_then(Value::as_str).unwrap_or("?");
    Outcome::pass(format!("{object}: Ready=True, release deployed (chart {version})"))
}

/// The verdict on one live Flux Kustomization: `Ready=True` for its generation and the
/// revision it last attempted applied (§6.2 [F2]); evidence `name@revision`. While
/// kustomize-controller is applying (`Reconciling=True` / `Ready=Unknown` Progressing,
/// `lastAttemptedRevision` ahead of `lastAppliedRevision`) it is in progress, naming both
/// revisions, so the runner waits for it.
pub fn judge_kustomization(found: &live::Found, cluster: &str) -> Outcome {
    let object = format!("{} (cluster {cluster})", found.describe(&KUSTOMIZATION));
    let applied = found.str("/status/lastAppliedRevision").unwrap_or("");
    let attempted = found.str("/status/lastAttemptedRevision").unwrap_or(applied);
    if let Some(doing) = live::reconciling(found) {
        let revisions = if attempted != applied { format!("; {attempted} being applied, {applied:?} still applied") } else { String::new() };
        return Outcome::in_progress(object, "Ready=True, the attempted revision applied", format!("{doing}{revisions}"));
    }
    match expect_condition(found, &KUSTOMIZATION, "Ready") {
        Outcome::Pass { .. } => {}
        Outcome::Fail { findings } => return Outcome::Fail { findings: findings.into_iter().map(|f| f.renamed(object.clone())).collect() },
        other => return other,
    }
    if applied != attempted {
        return Outcome::fail(format!("{object} status.lastAppliedRevision"), format!("the attempted revision {attempted}"), format!("{applied:?}"));
    }
    Outcome::pass(format!("{}@{applied}", found.name()))
}

/// Every Deployment, StatefulSet and DaemonSet matching `selector` in `ns` is ready,
/// and there is at least one.
pub async fn workloads_ready(client: &kube::Client, cluster: &str, ns: &str, selector: &str) -> Outcome {
    let lp = ListParams::default().labels(selector);
    let mut findings = vec![];
    let mut evidence = vec![];
    macro_rules! each {
        ($t:ty, $kind:literal) => {
            match Api::<$t>::namespaced(client.clone(), ns).list(&lp).await {
                Ok(list) => {
                    for w in &list.items {
                        match live::judge_workload($kind, w, cluster, false) {
                            Ok(e) => evidence.push(e),
                            Err(f) => findings.push(f),
                        }
                    }
                }
                Err(e) => return api_error(&format!("list {}s {ns} -l {selector} (cluster {cluster})", $kind), e),
            }
        };
    }
    each!(Deployment, "Deployment");
    each!(StatefulSet, "StatefulSet");
    each!(DaemonSet, "DaemonSet");
    if findings.is_empty() && evidence.is_empty() {
        return Outcome::fail(format!("workloads {ns} -l {selector} (cluster {cluster})"), "at least one Deployment/StatefulSet/DaemonSet, ready", "none");
    }
    Outcome::from_findings(findings, format!("cluster {cluster}: {} ready", evidence.join(", ")))
}

/// "<component> deployed": its HelmRelease (from the repository) is Ready on the cluster
/// and the workloads the chart creates (`selector`, given the Helm release name) are ready.
pub async fn component_deployed(ctx: &CheckContext, chart: &str, selector: impl Fn(&str) -> String) -> Outcome {
    let client = match ctx.kube() { Ok(c) => c, Err(o) => return o };
    let hr = match rendered_release(ctx, chart) { Ok(h) => h, Err(o) => return o };
    let release = Release::of(&hr);
    Outcome::all([
        helmrelease_ready(client, &ctx.cluster, &release.hr_namespace, &release.hr_name).await,
        workloads_ready(client, &ctx.cluster, &release.namespace, &selector(&release.name)).await,
    ])
}

/// §2.3 [G3]: every rendered `route` is on the cluster and, for each of its parentRefs,
/// `status.parents[]` has `Accepted=True` and `ResolvedRefs=True` (current generation);
/// every Service backendRef exists with the referenced port.
pub async fn httproutes_accepted(client: &kube::Client, cluster: &str, routes: &[RenderedObject]) -> Outcome {
    if routes.is_empty() {
        return Outcome::fail(format!("cluster {cluster}"), "an HTTPRoute in the repository's manifests", "none");
    }
    let mut outcomes = vec![];
    for route in routes {
        let ns = route.namespace().unwrap_or("default");
        let found = match live::require(client, &HTTPROUTE, Some(ns), route.name()).await {
            Ok(f) => f,
            Err(o) => {
                outcomes.push(o);
                continue;
            }
        };
        let object = format!("{} (cluster {cluster})", found.describe(&HTTPROUTE));
        let generation = found.object.metadata.generation.unwrap_or(0);
        let parents: Vec<Value> = found.get("/status/parents").and_then(Value::as_array).cloned().unwrap_or_default();
        let mut findings = vec![];
        let refs: Vec<Value> = route.get("/spec/parentRefs").and_then(Value::as_array).cloned().unwrap_or_default();
        for r in &refs {
            let name = r.get("name").and_then(Value::as_str).unwrap_or("");
            let pns = r.get("namespace").and_then(Value::as_str).unwrap_or(ns);
            let section = r.get("sectionName").and_then(Value::as_str);
            let label = format!("{pns}/{name}{}", section.map(|s| format!(" ({s})")).unwrap_or_default());
            let status = parents.iter().find(|p| {
                let pr = p.get("parentRef").cloned().unwrap_or(Value::Null);
                pr.get("name").and_then(Value::as_str) == Some(name)
                    && pr.get("namespace").and_then(Value::as_str).unwrap_or(ns) == pns
                    && (section.is_none() || pr.get("sectionName").and_then(Value::as_str) == section)
            });
            let Some(status) = status else {
                findings.push(Finding::new(format!("{object} status.parents"), format!("an entry for parent Gateway {label}"), "none (no controller has processed the route for this parent)"));
                continue;
            };
            for t in ["Accepted", "ResolvedRefs"] {
                let c = status.get("conditions").and_then(Value::as_array).and_then(|cs| cs.iter().find(|c| c.get("type").and_then(Value::as_str) == Some(t)));
                let s = c.and_then(|c| c.get("status")).and_then(Value::as_str).unwrap_or("absent");
                let og = c.and_then(|c| c.get("observedGeneration")).and_then(Value::as_i64);
                if s != "True" {
                    let why = c.and_then(|c| c.get("reason")).and_then(Value::as_str).unwrap_or("");
                    findings.push(Finding::new(format!("{object} parent {label}"), format!("{t}=True"), format!("{t}={s} ({why})")));
                } else if let Some(o) = og.filter(|o| *o < generation) {
                    findings.push(Finding::new(format!("{object} parent {label}"), format!("{t}=True for generation {generation}"), format!("stale: observedGeneration {o}")));
                }
            }
        }
        // Backends: Services (the default backendRef kind) that exist with the port.
        for b in backend_refs(route) {
            if b.get("kind").and_then(Value::as_str).is_some_and(|k| k != "Service") {
                continue;
            }
            let bname = b.get("name").and_then(Value::as_str).unwrap_or("");
            let bns = b.get("namespace").and_then(Value::as_str).unwrap_or(ns);
            let port = b.get("port").and_then(Value::as_i64);
            match Api::<Service>::namespaced(client.clone(), bns).get_opt(bname).await {
                Ok(None) => findings.push(Finding::new(format!("{object} backendRef Service {bns}/{bname}"), "present", "not found")),
                Ok(Some(svc)) => {
                    let ports: Vec<i64> = svc.spec.and_then(|s| s.ports).unwrap_or_default().iter().map(|p| p.port as i64).collect();
                    if let Some(p) = port.filter(|p| !ports.contains(p)) {
                        findings.push(Finding::new(format!("{object} backendRef Service {bns}/{bname}"), format!("port {p}"), format!("ports {ports:?}")));
                    }
                }
                Err(e) => return api_error(&format!("get Service {bns}/{bname} (cluster {cluster})"), e),
            }
        }
        let hosts: Vec<&str> = route.get("/spec/hostnames").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str).collect();
        outcomes.push(Outcome::from_findings(findings, format!("{object} hosts [{}]: Accepted and ResolvedRefs by {} parent(s), backends present", hosts.join(", "), refs.len())));
    }
    Outcome::all(outcomes)
}

/// Every `backendRefs` entry of every rule of an HTTPRoute.
pub fn backend_refs(route: &RenderedObject) -> Vec<Value> {
    route.get("/spec/rules").and_then(Value::as_array).into_iter().flatten().flat_map(|r| r.get("backendRefs").and_then(Value::as_array).cloned().unwrap_or_default()).collect()
}

/// Whether a rule of the HTTPRoute sends to Service `service` (by name).
pub fn routes_to(route: &RenderedObject, service: &str) -> bool {
    backend_refs(route).iter().any(|b| b.get("name").and_then(Value::as_str) == Some(service))
}

/// Rendered HTTPRoutes of the cluster in namespace `ns`.
pub fn routes_in(ctx: &CheckContext, ns: &str) -> Live<Vec<RenderedObject>> {
    let r = rendered(ctx)?;
    Ok(objects(&r, "gateway.networking.k8s.io", "HTTPRoute").into_iter().filter(|o| o.namespace() == Some(ns)).cloned().collect())
}

/// Ready endpoints of Service `ns/name` (EndpointSlices of the service).
pub async fn ready_endpoints(client: &kube::Client, ns: &str, name: &str) -> Result<usize, Outcome> {
    let slices = Api::<EndpointSlice>::namespaced(client.clone(), ns)
        .list(&ListParams::default().labels(&format!("kubernetes.io/service-name={name}")))
        .await
        .map_err(|e| api_error(&format!("list EndpointSlices of {ns}/{name}"), e))?;
    Ok(slices.items.iter().flat_map(|s| s.endpoints.iter().flatten()).filter(|e| e.conditions.as_ref().and_then(|c| c.ready).unwrap_or(true)).count())
}

/// A chart's HelmRelease is Ready (see [`helmrelease_ready`]) and the named workloads
/// (`Deployment`/`DaemonSet`, name given the Helm release) are rolled out in the release's
/// namespace.
pub async fn release_deployed(ctx: &CheckContext, charts: &[&str], workloads: impl Fn(&RenderedObject, &str) -> Vec<(&'static str, String)>) -> Outcome {
    let client = match ctx.kube() { Ok(c) => c, Err(o) => return o };
    let rendered = match rendered(ctx) { Ok(r) => r, Err(o) => return o };
    let hr = match super::helm::rendered_helmrelease(&rendered, charts) { Ok(h) => h, Err(o) => return o };
    let release = Release::of(hr);
    let mut outcomes = vec![helmrelease_ready(client, &ctx.cluster, &release.hr_namespace, &release.hr_name).await];
    for (kind, name) in workloads(hr, &release.name) {
        outcomes.push(live::expect_workload_ready(client, &ctx.cluster, kind, &release.namespace, &name).await);
    }
    Outcome::all(outcomes)
}

#[cfg(test)]
mod tests {
    use kube::api::DynamicObject;
    use serde_json::{json, Value};

    use super::*;

    fn found(kind: &str, api_version: &str, status: Value) -> live::Found {
        let object: DynamicObject = serde_json::from_value(json!({
            "apiVersion": api_version, "kind": kind,
            "metadata": {"name": "podinfo", "namespace": "flux-system", "generation": 3},
            "spec": {},
            "status": status,
        }))
        .unwrap();
        live::Found { object, api_version: api_version.into() }
    }

    fn cond(type_: &str, status: &str, reason: &str, message: &str) -> Value {
        json!({"type": type_, "status": status, "reason": reason, "message": message, "observedGeneration": 3})
    }

    /// helm-controller while it upgrades (internal/reconcile/atomic_release.go: Reconciling=True
    /// and Ready=Unknown, reason Progressing, "Running 'upgrade' action with timeout of 5m0s";
    /// the history is patched after the action, so history[0] is still the deployed release).
    fn upgrading() -> live::Found {
        let msg = "Running 'upgrade' action with timeout of 5m0s";
        found("HelmRelease", "helm.toolkit.fluxcd.io/v2", json!({
            "observedGeneration": 2,
            "lastAttemptedRevision": "6.9.0",
            "conditions": [cond("Reconciling", "True", "Progressing", msg), cond("Ready", "Unknown", "Progressing", msg), cond("Released", "True", "UpgradeSucceeded", "Helm upgrade succeeded for release flux-system/podinfo.v1 with chart podinfo@6.8.0")],
            "history": [{"name": "podinfo", "namespace": "flux-system", "version": 1, "status": "deployed", "chartName": "podinfo", "chartVersion": "6.8.0"}],
        }))
    }

    #[test]
    fn a_helmrelease_mid_upgrade_is_in_progress_where_the_old_rule_failed_it() {
        let hr = upgrading();
        // The old rule: Ready must be True, so an upgrade in flight was an ordinary Fail.
        let old = expect_condition(&hr, &HELMRELEASE, "Ready");
        assert_eq!(old.verdict(), crate::check::Verdict::Fail);
        assert!(!old.is_in_progress());
        let new = judge_helmrelease(&hr, "apps");
        assert!(new.is_in_progress(), "{new:?}");
        assert_eq!(
            new.summary(),
            "HelmRelease flux-system/podinfo (helm.toolkit.fluxcd.io/v2) (cluster apps): expected Ready=True, release deployed, observed in progress: Progressing: Running 'upgrade' action with timeout of 5m0s; chart 6.8.0 still deployed"
        );
    }

    #[test]
    fn a_failed_upgrade_being_retried_is_a_failure_and_a_finished_one_passes() {
        // Ready=False with Reconciling=True ProgressingWithRetry: the attempt failed.
        let hr = found("HelmRelease", "helm.toolkit.fluxcd.io/v2", json!({
            "conditions": [cond("Reconciling", "True", "ProgressingWithRetry", "Helm upgrade failed"), cond("Ready", "False", "UpgradeFailed", "Helm upgrade failed: timed out")],
            "history": [{"version": 2, "status": "failed", "chartVersion": "6.9.0"}, {"version": 1, "status": "superseded", "chartVersion": "6.8.0"}],
        }));
        let o = judge_helmrelease(&hr, "apps");
        assert!(!o.is_in_progress() && o.verdict() == crate::check::Verdict::Fail, "{o:?}");
        assert!(o.summary().contains("Ready=False (UpgradeFailed"), "{}", o.summary());
        let done = found("HelmRelease", "helm.toolkit.fluxcd.io/v2", json!({
            "observedGeneration": 3,
            "conditions": [cond("Ready", "True", "UpgradeSucceeded", "Helm upgrade succeeded")],
            "history": [{"version": 2, "status": "deployed", "chartVersion": "6.9.0"}, {"version": 1, "status": "superseded", "chartVersion": "6.8.0"}],
        }));
        assert_eq!(judge_helmrelease(&done, "apps").summary(), "HelmRelease flux-system/podinfo (helm.toolkit.fluxcd.io/v2) (cluster apps): Ready=True, release deployed (chart 6.9.0)");
    }

    /// kustomize-controller applying a new revision (internal/controller/kustomization_controller.go,
    /// reconcile: Ready=Unknown Progressing "Reconciliation in progress", Reconciling=True
    /// "Building manifests for revision … with a timeout of …", lastAttemptedRevision set first).
    #[test]
    fn a_kustomization_applying_a_newer_revision_is_in_progress_where_the_old_rule_failed_it() {
        let (old_rev, new_rev) = ("main@sha1:1111111111111111111111111111111111111111", "main@sha1:2222222222222222222222222222222222222222");
        let ks = found("Kustomization", "kustomize.toolkit.fluxcd.io/v1", json!({
            "observedGeneration": 3,
            "lastAppliedRevision": old_rev,
            "lastAttemptedRevision": new_rev,
            "conditions": [cond("Reconciling", "True", "Progressing", &format!("Building manifests for revision {new_rev} with a timeout of 5m0s")), cond("Ready", "Unknown", "Progressing", "Reconciliation in progress")],
        }));
        // The old rule (dod.4): Ready=True, then applied == attempted — a Fail either way.
        assert!(!expect_condition(&ks, &KUSTOMIZATION, "Ready").is_in_progress());
        let o = judge_kustomization(&ks, "infra");
        assert!(o.is_in_progress(), "{o:?}");
        let text = o.summary();
        assert!(text.starts_with("Kustomization flux-system/podinfo (kustomize.toolkit.fluxcd.io/v1) (cluster infra): expected Ready=True, the attempted revision applied, observed in progress: Progressing: Building manifests"), "{text}");
        assert!(text.ends_with(&format!("; {new_rev} being applied, \"{old_rev}\" still applied")), "{text}");

        // Not reconciling, but the attempt did not apply: a failure, as before.
        let stuck = found("Kustomization", "kustomize.toolkit.fluxcd.io/v1", json!({
            "observedGeneration": 3, "lastAppliedRevision": old_rev, "lastAttemptedRevision": new_rev,
            "conditions": [cond("Ready", "True", "ReconciliationSucceeded", "Applied revision")],
        }));
        let o = judge_kustomization(&stuck, "infra");
        assert!(!o.is_in_progress() && o.summary().contains("status.lastAppliedRevision: expected the attempted revision"), "{o:?}");
        let done = found("Kustomization", "kustomize.toolkit.fluxcd.io/v1", json!({
            "observedGeneration": 3, "lastAppliedRevision": new_rev, "lastAttemptedRevision": new_rev,
            "conditions": [cond("Ready", "True", "ReconciliationSucceeded", "Applied revision")],
        }));
        assert_eq!(judge_kustomization(&done, "infra"), Outcome::pass(format!("podinfo@{new_rev}")));
    }
}
