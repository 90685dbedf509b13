//! Live-layer helpers shared by the EPIC-8, 9, 10 and Definition-of-Done cluster and
//! data-plane checks: HelmRelease and workload readiness, HTTPRoute acceptance, an S3
//! client for MinIO built from credentials read out of a Secret, and timestamps.
//! Names and namespaces come from the repository's rendered manifests; label selectors
//! and status fields from /work/shared/reference/component-apis.md (cited per use).

use std::time::Duration;

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{Secret, Service};
use kube::api::{Api, ListParams};
use serde_json::Value;

use crate::check::{CheckContext, Finding, Outcome};
use crate::checks::epic07::shared::{chart_name, objects, squash, HELM_GROUP};
use crate::checks::support::rendered;
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

/// Helm release name and namespace helm-controller uses for `hr` (§6 [F3]:
/// `spec.releaseName`, else `[<targetNamespace>-]<name>`).
pub fn release_target(hr: &RenderedObject) -> (String, String) {
    let ns = hr.str("/spec/targetNamespace").or(hr.namespace()).unwrap_or("default").to_string();
    let name = match (hr.str("/spec/releaseName"), hr.str("/spec/targetNamespace")) {
        (Some(r), _) => r.to_string(),
        (None, Some(t)) => format!("{t}-{}", hr.name()),
        (None, None) => hr.name().to_string(),
    };
    (name, ns)
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

/// Desired and ready counts of a workload, and whether its controller has seen its spec.
fn counts_of<K: serde::Serialize>(kind: &str, w: &K) -> (i64, i64, bool) {
    let v = serde_json::to_value(w).unwrap_or(Value::Null);
    let int = |p: &str| v.pointer(p).and_then(Value::as_i64);
    let generation = int("/metadata/generation").unwrap_or(0);
    let observed = int("/status/observedGeneration").unwrap_or(generation);
    let (want, ready) = match kind {
        "DaemonSet" => (int("/status/desiredNumberScheduled").unwrap_or(0), int("/status/numberReady").unwrap_or(0)),
        _ => (int("/spec/replicas").unwrap_or(1), int("/status/readyReplicas").unwrap_or(0)),
    };
    (want, ready, observed >= generation)
}

/// One workload's readiness as a finding, or its evidence text.
pub fn judge_workload<K: serde::Serialize + kube::Resource>(kind: &str, w: &K, cluster: &str, allow_zero: bool) -> Result<String, Finding> {
    let meta = w.meta();
    let object = format!("{kind} {}/{} (cluster {cluster})", meta.namespace.clone().unwrap_or_default(), meta.name.clone().unwrap_or_default());
    let (want, ready, current) = counts_of(kind, w);
    let field = if kind == "DaemonSet" { "numberReady = desiredNumberScheduled" } else { "readyReplicas = spec.replicas" };
    if want == 0 && !allow_zero {
        return Err(Finding::new(object, format!("{field} (> 0)"), "0 desired"));
    }
    if ready < want {
        return Err(Finding::new(object, format!("{field} ({want})"), format!("{ready}/{want} ready")));
    }
    if !current {
        return Err(Finding::new(object, "status.observedGeneration = metadata.generation", "rollout of the current spec not observed yet"));
    }
    Ok(format!("{kind} {}/{} {ready}/{want}", meta.namespace.clone().unwrap_or_default(), meta.name.clone().unwrap_or_default()))
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
                        match judge_workload($kind, w, cluster, false) {
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
    let (release, target_ns) = release_target(&hr);
    let hr_ns = hr.namespace().unwrap_or("default").to_string();
    Outcome::all([
        helmrelease_ready(client, &ctx.cluster, &hr_ns, hr.name()).await,
        workloads_ready(client, &ctx.cluster, &target_ns, &selector(&release)).await,
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

/// Seconds since the Unix epoch of an RFC 3339 timestamp (Kubernetes `metav1.Time`).
pub fn epoch_seconds(ts: &str) -> Option<i64> {
    let t: k8s_openapi::apimachinery::pkg::apis::meta::v1::Time = serde_json::from_value(Value::String(ts.to_string())).ok()?;
    Some(t.0.as_second())
}

pub fn now_seconds() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// `3h12m` style age.
pub fn age_text(secs: i64) -> String {
    let s = secs.max(0);
    match s {
        s if s < 120 => format!("{s}s"),
        s if s < 7200 => format!("{}m", s / 60),
        s if s < 172_800 => format!("{}h{}m", s / 3600, (s % 3600) / 60),
        s => format!("{}d{}h", s / 86_400, (s % 86_400) / 3600),
    }
}

/// Interval between runs of a cron schedule, in seconds, when it runs a whole number of times a week.
pub fn cron_interval(expr: &str) -> Option<i64> {
    match crate::checks::epic07::shared::cron_frequency(expr).ok()? {
        crate::checks::epic07::shared::Frequency::PerWeek(n) if n > 0 => Some(7 * 86_400 / n as i64),
        _ => None,
    }
}

/// A Secret's keys as text (values are never shown: callers only use them).
pub async fn secret_data(client: &kube::Client, cluster: &str, ns: &str, name: &str) -> Live<std::collections::BTreeMap<String, String>> {
    match Api::<Secret>::namespaced(client.clone(), ns).get_opt(name).await {
        Ok(Some(s)) => Ok(s.data.unwrap_or_default().into_iter().map(|(k, v)| (k, String::from_utf8_lossy(&v.0).into_owned())).collect()),
        Ok(None) => Err(Outcome::fail(format!("Secret {ns}/{name} (cluster {cluster})"), "present (credentials for the object store)", "not found")),
        Err(e) => Err(api_error(&format!("get Secret {ns}/{name} (cluster {cluster})"), e)),
    }
}

/// An S3 endpoint URL split into scheme, host and port (`http://10.25.11.3:9000`).
pub fn endpoint_parts(url: &str) -> Option<(String, String, u16)> {
    let (scheme, rest) = url.split_once("://").unwrap_or(("https", url));
    let hostport = rest.split('/').next()?;
    let (host, port) = match hostport.rsplit_once(':') {
        Some((h, p)) => (h.to_string(), p.parse().ok()?),
        None => (hostport.to_string(), if scheme == "http" { 80 } else { 443 }),
    };
    Some((scheme.to_string(), host, port))
}

/// An S3 client for an object store reached through `ctx.resolve` (the simulation's
/// endpoint map or DNS), path-style as MinIO wants. Credentials are used, never shown.
pub async fn s3_client(ctx: &CheckContext, endpoint_url: &str, region: &str, access_key: &str, secret_key: &str) -> Live<(aws_sdk_s3::Client, String)> {
    let (scheme, host, port) = endpoint_parts(endpoint_url).ok_or_else(|| Outcome::fail("S3 endpoint", "a URL like http://host:port", format!("{endpoint_url:?}")))?;
    let addr = ctx.resolve(&host, port).await?;
    let creds = aws_sdk_s3::config::Credentials::new(access_key, secret_key, None, None, "platform-acceptance");
    // TLS needs the name; plain HTTP may dial the resolved address directly.
    let url = if scheme == "https" { format!("https://{host}:{port}") } else { format!("http://{addr}") };
    let conf = aws_sdk_s3::config::Builder::new()
        .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
        .region(aws_sdk_s3::config::Region::new(region.to_string()))
        .endpoint_url(url)
        .credentials_provider(creds)
        .force_path_style(true)
        .timeout_config(aws_sdk_s3::config::timeout::TimeoutConfig::builder().operation_timeout(Duration::from_secs(10)).build())
        .build();
    Ok((aws_sdk_s3::Client::from_conf(conf), format!("{scheme}://{host}:{port} (via {addr})")))
}

/// Keys and last-modified times under `prefix` (at most `max` keys).
pub async fn list_keys(s3: &aws_sdk_s3::Client, bucket: &str, prefix: &str, max: i32) -> Result<Vec<(String, i64)>, String> {
    let out = s3
        .list_objects_v2()
        .bucket(bucket)
        .prefix(prefix)
        .max_keys(max)
        .send()
        .await
        .map_err(|e| format!("ListObjectsV2 s3://{bucket}/{prefix}: {}", aws_sdk_s3::error::DisplayErrorContext(&e)))?;
    Ok(out.contents().iter().map(|o| (o.key().unwrap_or("").to_string(), o.last_modified().map(|t| t.secs()).unwrap_or(0))).collect())
}

/// `[default]` access keys of an AWS shared-credentials file (Velero's `cloud` key).
pub fn aws_ini_keys(text: &str) -> Option<(String, String)> {
    let mut section = String::new();
    let (mut id, mut secret) = (None, None);
    for line in text.lines().map(str::trim) {
        if let Some(s) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = s.trim().to_string();
            continue;
        }
        if section != "default" && !section.is_empty() {
            continue;
        }
        if let Some((k, v)) = line.split_once('=') {
            match k.trim() {
                "aws_access_key_id" => id = Some(v.trim().to_string()),
                "aws_secret_access_key" => secret = Some(v.trim().to_string()),
                _ => {}
            }
        }
    }
    Some((id?, secret?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ini_and_endpoints_parse() {
        assert_eq!(aws_ini_keys("[default]\naws_access_key_id=A\naws_secret_access_key = B\n"), Some(("A".into(), "B".into())));
        assert_eq!(aws_ini_keys("[other]\naws_access_key_id=A\n"), None);
        assert_eq!(endpoint_parts("http://10.25.11.3:9000"), Some(("http".into(), "10.25.11.3".into(), 9000)));
        assert_eq!(endpoint_parts("https://s3.example.org/x"), Some(("https".into(), "s3.example.org".into(), 443)));
        assert_eq!(cron_interval("0 */6 * * *"), Some(6 * 3600));
        assert_eq!(cron_interval("0 2 * * 0"), Some(7 * 86_400));
        assert_eq!(epoch_seconds("1970-01-02T00:00:00Z"), Some(86_400));
    }
}
