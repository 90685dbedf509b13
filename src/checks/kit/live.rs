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
            return Outcome::Fail { findings: findings.into_iter().map(|f| Finding::new(format!("{} (cluster {cluster})", f.object), f.expected, f.observed)).collect() };
        }
        Err(o) => return o,
    };
    judge_helmrelease(&found, cluster)
}

/// The verdict on one live HelmRelease (see [`helmrelease_ready`]).
pub fn judge_helmrelease(found: &live::Found, cluster: &str) -> Outcome {
    let object = format!("{} (cluster {cluster})", found.describe(&HELMRELEASE));
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
        for b in route.get("/spec/rules").and_then(Value::as_array).into_iter().flatten().flat_map(|r| r.get("backendRefs").and_then(Value::as_array).cloned().unwrap_or_default()) {
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
