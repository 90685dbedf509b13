//! EPIC-6 cluster and data-plane checks.
//!
//! Cluster layer: the VM operator's custom resources report `updateStatus: operational`
//! (§11.2), Grafana, VictoriaLogs, vmauth and fluent-bit workloads are ready (§11.4, §12,
//! §13). Data plane (HTTP through `ctx.resolve`): vmselect's Prometheus query API
//! (`/select/0/prometheus/api/v1/query`, §11.3 port 8481), Grafana's `/api/health`,
//! `/api/datasources` and `/api/ds/query` (§11.4 [GR2]), VictoriaLogs'
//! `/select/logsql/query` with the tenant's `AccountID` (§12 [VL3][VL4]).
//! Names come from the rendered HelmReleases; credentials from the clusters' Secrets.

use std::net::SocketAddr;
use std::time::Duration;

use k8s_openapi::api::apps::v1::DaemonSet;
use kube::api::{Api, ListParams};
use serde_json::{json, Value};

use super::repo::{collect_headers, logs_endpoints, vmauth_config};
use super::{FLUENT_BIT_CHARTS, LOGS_CHARTS, LOGS_DATASOURCE_TYPE, VMAUTH_CHARTS, VM_STACK_CHARTS};
use crate::check::{CheckContext, CheckResult, Ctx, Outcome};
use crate::checks::kit::prelude::*;
use crate::cluster::api_error;
use crate::cluster::objects::{self, Kind};
use crate::repo::{GitopsRepo, Rendered, RenderedObject};

const VM_GROUP: &str = "operator.victoriametrics.com";
const VM_KINDS: [Kind; 3] = [
    Kind::namespaced(VM_GROUP, &["v1beta1"], "VMCluster"),
    Kind::namespaced(VM_GROUP, &["v1beta1"], "VMAgent"),
    Kind::namespaced(VM_GROUP, &["v1beta1"], "VMAlert"),
];
/// §11.2 [VM2]: the healthy `updateStatus`.
const OPERATIONAL: &str = "operational";
/// §11.3 [VM4]: vmselect port; tenant 0 of the cluster version's Prometheus API.
const VMSELECT_PORT: u16 = 8481;
/// §11.4 [GR1]: Grafana's Service port.
const GRAFANA_PORT: u16 = 80;
/// Datasource types Grafana queries VictoriaMetrics with.
const METRICS_DATASOURCE_TYPES: [&str; 2] = ["prometheus", "victoriametrics-metrics-datasource"];
/// How far back "forwarded" and "visible" look.
const LOGS_WINDOW: &str = "15m";
const TIMEOUT: Duration = Duration::from_secs(5);

// ---------------------------------------------------------------------------
// Names from the rendered HelmReleases
// ---------------------------------------------------------------------------

/// (release, namespace) of a HelmRelease: targetNamespace, else its own namespace.
fn release(hr: &RenderedObject) -> (String, String) {
    (hr.name().to_string(), hr.str("/spec/targetNamespace").or(hr.namespace()).unwrap_or("default").to_string())
}

/// Helm's fullname: fullnameOverride, else the release if it contains the chart name, else `<release>-<chart>`.
fn fullname(hr: &RenderedObject, chart: &str) -> String {
    if let Some(f) = hr.str("/spec/values/fullnameOverride") {
        return f.to_string();
    }
    if hr.name().contains(chart) { hr.name().to_string() } else { format!("{}-{chart}", hr.name()) }
}

/// The VM stack as rendered on the cluster that runs it (the rendering of `cluster` if it does).
struct Stack {
    cluster: String,
    release: String,
    namespace: String,
    /// `vm.cr.fullname` (§11.4 [VM7]).
    cr: String,
    values: Value,
}

fn stack_of(repo: &GitopsRepo, prefer: &str) -> CheckResult<Stack> {
    let mut order: Vec<String> = vec![prefer.to_string()];
    order.extend(repo.clusters().iter().filter(|c| *c != prefer).cloned());
    for cluster in order.iter().filter(|c| repo.clusters().contains(c)) {
        let r = repo.render(cluster).map_err(Outcome::error)?;
        if let Some(hr) = rendered_helmreleases(&r, VM_STACK_CHARTS).next() {
            let (release, namespace) = release(hr);
            return Ok(Stack {
                cluster: cluster.clone(),
                release,
                namespace,
                cr: fullname(hr, VM_STACK_CHARTS[0]),
                values: hr.get("/spec/values").cloned().unwrap_or(Value::Null),
            });
        }
    }
    Err(Outcome::fail(format!("HelmRelease of chart {}", VM_STACK_CHARTS[0]), "rendered for some cluster", "rendered for none"))
}

fn client_of<'a>(ctx: &'a CheckContext, cluster: &str) -> CheckResult<&'a kube::Client> {
    let target = ctx.target.as_ref().ok_or_else(|| Outcome::skip("no cluster target"))?;
    target.peers.get(cluster).ok_or_else(|| Outcome::error(format!("no client for cluster {cluster}")))
}

// ---------------------------------------------------------------------------
// HTTP
// ---------------------------------------------------------------------------

/// A GET/POST to an in-cluster name of cluster `home` (the one that runs the service):
/// sent to the address `ctx.resolve_in` gives, with the in-cluster name as Host header.
struct Http {
    host: String,
    port: u16,
    addr: SocketAddr,
    client: reqwest::Client,
    reach: crate::check::Reach,
}

impl Http {
    async fn to(ctx: &CheckContext, home: &str, host: String, port: u16) -> CheckResult<Http> {
        let addr = ctx.resolve_in(home, &host, port).await?;
        let client = reqwest::Client::builder().timeout(TIMEOUT).build().map_err(Outcome::error)?;
        Ok(Http { host, port, addr, client, reach: ctx.reach.clone() })
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn object(&self, path: &str) -> String {
        format!("http://{}:{}{}", self.host, self.port, path.split('?').next().unwrap_or(path))
    }

    /// Sends and returns (status, body); no answer is an Error naming the URL.
    async fn send(&self, req: reqwest::RequestBuilder, path: &str) -> CheckResult<(u16, String)> {
        let resp = req
            .header("Host", format!("{}:{}", self.host, self.port))
            .send()
            .await
            .map_err(|e| self.reach.verdict(self.addr, self.object(path), "an HTTP answer", crate::errline::Failure::http(&e)))?;
        self.reach.reached(self.addr);
        let status = resp.status().as_u16();
        let body = resp.text().await.unwrap_or_default();
        Ok((status, body))
    }

    async fn get(&self, path: &str, auth: Option<&(String, String)>, headers: &[(&str, String)]) -> CheckResult<(u16, String)> {
        let mut req = self.client.get(self.url(path));
        if let Some((u, p)) = auth {
            req = req.basic_auth(u, Some(p));
        }
        for (k, v) in headers {
            req = req.header(*k, v);
        }
        self.send(req, path).await
    }

    async fn post_json(&self, path: &str, auth: &(String, String), body: &Value) -> CheckResult<(u16, String)> {
        let req = self.client.post(self.url(path)).basic_auth(&auth.0, Some(&auth.1)).json(body);
        self.send(req, path).await
    }

    /// Expects 200 and a JSON body.
    fn json(&self, path: &str, (status, body): (u16, String)) -> CheckResult<Value> {
        if status != 200 {
            return Err(Outcome::fail(self.object(path), "HTTP 200", format!("HTTP {status}: {}", snippet(&body))));
        }
        serde_json::from_str(&body).map_err(|e| Outcome::fail(self.object(path), "a JSON answer", format!("{e}: {}", snippet(&body))))
    }
}

fn snippet(body: &str) -> String {
    let one = body.trim().replace('\n', " ");
    if one.chars().count() > 160 { format!("{}...", one.chars().take(160).collect::<String>()) } else { one }
}

fn query_escape(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

// ---------------------------------------------------------------------------
// 6.1 VictoriaMetrics stack
// ---------------------------------------------------------------------------

pub(super) async fn vm_stack_operational(ctx: Ctx) -> CheckResult<Outcome> {
    let repo = ctx.repo()?;
    let client = ctx.kube()?;
    let stack = stack_of(repo, &ctx.cluster)?;
    let mut outcomes = vec![];
    for kind in &VM_KINDS {
        let found = objects::require(client, kind, Some(&stack.namespace), &stack.cr).await?;
        let object = found.describe(kind);
        let status = found.str("/status/updateStatus").unwrap_or("");
        let generation = found.object.metadata.generation;
        let observed = found.get("/status/observedGeneration").and_then(Value::as_i64);
        outcomes.push(if status != OPERATIONAL {
            let reason = found.str("/status/reason").map(|r| format!(" ({r})")).unwrap_or_default();
            Outcome::fail(format!("{object} status.updateStatus"), OPERATIONAL, format!("{status:?}{reason}"))
        } else if let (Some(g), Some(o)) = (generation, observed) {
            if o < g {
                Outcome::fail(format!("{object} status.observedGeneration"), format!("{g} (metadata.generation)"), format!("{o} (stale)"))
            } else {
                Outcome::pass(format!("{object}: {OPERATIONAL}"))
            }
        } else {
            Outcome::pass(format!("{object}: {OPERATIONAL}"))
        });
    }
    // §11.4 [GR1]: grafana labels app.kubernetes.io/name=grafana, instance=<release>.
    let grafana = format!("app.kubernetes.io/name=grafana,app.kubernetes.io/instance={}", stack.release);
    outcomes.push(objects::expect_pods_ready(client, &ctx.cluster, &stack.namespace, &grafana).await);
    Ok(Outcome::all(outcomes))
}

/// vmselect of the stack's VMCluster, as an in-cluster name.
fn vmselect_host(stack: &Stack) -> String {
    format!("vmselect-{}.{}.svc.cluster.local", stack.cr, stack.namespace)
}

/// The VMAgent's external `cluster` label (what its series carry), from the live CR.
async fn scraped_cluster_label(ctx: &CheckContext, stack: &Stack) -> CheckResult<Option<(String, String)>> {
    let client = client_of(ctx, &stack.cluster)?;
    let agent = objects::require(client, &VM_KINDS[1], Some(&stack.namespace), &stack.cr).await?;
    Ok(agent.get("/spec/externalLabels").and_then(Value::as_object).and_then(|m| {
        m.get("cluster").and_then(Value::as_str).map(|v| ("cluster".to_string(), v.to_string()))
    }))
}

/// vmselect answers `up{cluster="<this cluster>"}` with targets that are up.
pub(super) async fn vmagent_scrapes_cluster(ctx: Ctx) -> CheckResult<Outcome> {
    let repo = ctx.repo()?;
    let stack = stack_of(repo, &ctx.cluster)?;
    let label = scraped_cluster_label(&ctx, &stack).await?;
    let query = match &label {
        Some((k, v)) => format!("up{{{k}=\"{v}\"}}"),
        None => "up".to_string(),
    };
    let http = Http::to(&ctx, &stack.cluster, vmselect_host(&stack), VMSELECT_PORT).await?;
    let path = format!("/select/0/prometheus/api/v1/query?query={}", query_escape(&query));
    let body = http.json(&path, http.get(&path, None, &[]).await?)?;
    Ok(judge_up(&http.object(&path), &query, &body))
}

/// Prometheus instant-query answer (`{"status":"success","data":{"result":[{"metric":{..},"value":[t,"1"]}]}}`):
/// at least one series with value 1; the jobs that are up and down go in the evidence/finding.
fn judge_up(object: &str, query: &str, body: &Value) -> Outcome {
    if body.get("status").and_then(Value::as_str) != Some("success") {
        return Outcome::fail(object, format!("status success for {query}"), snippet(&body.to_string()));
    }
    let result = body.pointer("/data/result").and_then(Value::as_array).cloned().unwrap_or_default();
    let mut up = std::collections::BTreeSet::new();
    let mut down = std::collections::BTreeSet::new();
    for s in &result {
        let job = s.pointer("/metric/job").and_then(Value::as_str).unwrap_or("?").to_string();
        if s.pointer("/value/1").and_then(Value::as_str) == Some("1") { up.insert(job) } else { down.insert(job) };
    }
    if up.is_empty() {
        return Outcome::fail(
            format!("{object} {query}"),
            "series with value 1 (scrape targets up)",
            if result.is_empty() { "no series (nothing scraped)".to_string() } else { format!("all down: jobs {down:?}") },
        );
    }
    let down = if down.is_empty() { String::new() } else { format!("; down: {down:?}") };
    Outcome::pass(format!("{object} {query}: {} series, jobs up {up:?}{down}", result.len()))
}

/// Grafana's Service (`<release>-grafana`, §11.4 [GR1]) and its admin credentials Secret.
struct Grafana {
    http: Http,
    auth: (String, String),
    secret: String,
}

async fn grafana(ctx: &CheckContext, stack: &Stack) -> CheckResult<Grafana> {
    let g = stack.values.get("grafana").cloned().unwrap_or(Value::Null);
    let name = g.get("fullnameOverride").and_then(Value::as_str).map(String::from).unwrap_or_else(|| format!("{}-grafana", stack.release));
    let (secret, user_key, pass_key) = match g.pointer("/admin/existingSecret").and_then(Value::as_str).filter(|s| !s.is_empty()) {
        Some(s) => (
            s.to_string(),
            g.pointer("/admin/userKey").and_then(Value::as_str).unwrap_or("admin-user").to_string(),
            g.pointer("/admin/passwordKey").and_then(Value::as_str).unwrap_or("admin-password").to_string(),
        ),
        None => (name.clone(), "admin-user".into(), "admin-password".into()),
    };
    let client = client_of(ctx, &stack.cluster)?;
    let data = secret_data(client, &stack.cluster, &stack.namespace, &secret).await?;
    let object = format!("Secret {}/{secret} (cluster {})", stack.namespace, stack.cluster);
    let get = |k: &str| data.get(k).cloned().ok_or_else(|| Outcome::fail(&object, format!("a key {k:?}"), format!("keys {:?}", data.keys().collect::<Vec<_>>())));
    let auth = (get(&user_key)?, get(&pass_key)?);
    let http = Http::to(ctx, &stack.cluster, format!("{name}.{}.svc.cluster.local", stack.namespace), GRAFANA_PORT).await?;
    Ok(Grafana { http, auth, secret: object })
}

/// `/api/health` says the database is ok, and `/api/datasources` (as admin) lists a
/// Prometheus-type datasource pointing at the stack's vmselect.
pub(super) async fn grafana_vm_datasource(ctx: Ctx) -> CheckResult<Outcome> {
    let repo = ctx.repo()?;
    let stack = stack_of(repo, &ctx.cluster)?;
    let g = grafana(&ctx, &stack).await?;
    let health = g.http.json("/api/health", g.http.get("/api/health", None, &[]).await?)?;
    if health.get("database").and_then(Value::as_str) != Some("ok") {
        return Ok(Outcome::fail(g.http.object("/api/health"), "database \"ok\"", snippet(&health.to_string())));
    }
    let ds = vm_datasource(&g, &stack).await?;
    Ok(Outcome::pass(format!(
        "{}: /api/health database ok (version {}); datasource {:?} type {} url {} (uid {})",
        g.http.object(""),
        health.get("version").and_then(Value::as_str).unwrap_or("?"),
        ds.get("name").and_then(Value::as_str).unwrap_or("?"),
        ds.get("type").and_then(Value::as_str).unwrap_or("?"),
        ds.get("url").and_then(Value::as_str).unwrap_or("?"),
        ds.get("uid").and_then(Value::as_str).unwrap_or("?"),
    )))
}

/// The datasource of a metrics type whose URL is the stack's vmselect.
async fn vm_datasource(g: &Grafana, stack: &Stack) -> CheckResult<Value> {
    let list = g.http.json("/api/datasources", g.http.get("/api/datasources", Some(&g.auth), &[]).await?)?;
    let all = list.as_array().cloned().unwrap_or_default();
    let vmselect = format!("vmselect-{}", stack.cr);
    let found = all.iter().find(|d| {
        let ty = d.get("type").and_then(Value::as_str).unwrap_or("");
        let url = d.get("url").and_then(Value::as_str).unwrap_or("");
        let host = url.split("://").nth(1).unwrap_or(url).split(['/', ':']).next().unwrap_or("");
        METRICS_DATASOURCE_TYPES.contains(&ty) && (host == vmselect || host.starts_with(&format!("{vmselect}.")))
    });
    found.cloned().ok_or_else(|| {
        let seen: Vec<String> = all
            .iter()
            .map(|d| format!("{} ({}, {})", d.get("name").and_then(Value::as_str).unwrap_or("?"), d.get("type").and_then(Value::as_str).unwrap_or("?"), d.get("url").and_then(Value::as_str).unwrap_or("")))
            .collect();
        Outcome::fail(
            format!("{} datasources (as the admin of {})", g.http.object("/api/datasources"), g.secret),
            format!("a {} datasource with url at {vmselect}.{}", METRICS_DATASOURCE_TYPES.join("/"), stack.namespace),
            if seen.is_empty() { "none".to_string() } else { format!("[{}]", seen.join("; ")) },
        )
    })
}

/// Rows in Grafana's `/api/ds/query` answer (`results.<refId>.frames[].data.values`), or the error it reports.
fn frame_rows(body: &Value, ref_id: &str) -> Result<usize, String> {
    let r = body.pointer(&format!("/results/{ref_id}")).ok_or_else(|| format!("no results.{ref_id}: {}", snippet(&body.to_string())))?;
    if let Some(e) = r.get("error").and_then(Value::as_str) {
        return Err(format!("error: {e}"));
    }
    Ok(r.get("frames")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|f| f.pointer("/data/values/0").and_then(Value::as_array).map(Vec::len).unwrap_or(0))
        .sum())
}

/// Grafana runs `up{cluster=...}` through its VictoriaMetrics datasource and gets rows back.
pub(super) async fn grafana_shows_metrics(ctx: Ctx) -> CheckResult<Outcome> {
    let repo = ctx.repo()?;
    let stack = stack_of(repo, &ctx.cluster)?;
    let g = grafana(&ctx, &stack).await?;
    let ds = vm_datasource(&g, &stack).await?;
    let uid = ds.get("uid").and_then(Value::as_str).unwrap_or("").to_string();
    let label = scraped_cluster_label(&ctx, &stack).await?;
    let expr = match &label {
        Some((k, v)) => format!("up{{{k}=\"{v}\"}}"),
        None => "up".into(),
    };
    let body = json!({
        "from": "now-5m", "to": "now",
        "queries": [{"refId": "A", "datasource": {"uid": uid, "type": ds.get("type")}, "expr": expr, "instant": true, "range": false}]
    });
    let answer = g.http.json("/api/ds/query", g.http.post_json("/api/ds/query", &g.auth, &body).await?)?;
    let object = format!("{} datasource uid {uid}: {expr}", g.http.object("/api/ds/query"));
    Ok(match frame_rows(&answer, "A") {
        Ok(n) if n > 0 => Outcome::pass(format!("{object}: {n} rows")),
        Ok(_) => Outcome::fail(object, "rows (metrics visible)", "no rows"),
        Err(e) => Outcome::fail(object, "rows (metrics visible)", e),
    })
}

// ---------------------------------------------------------------------------
// 6.2 VictoriaLogs
// ---------------------------------------------------------------------------

pub(super) async fn victoria_logs_ready(ctx: Ctx) -> CheckResult<Outcome> {
    let client = ctx.kube()?;
    let r = rendered(&ctx)?;
    let mut outcomes = vec![];
    // §12 [VM8]: app.kubernetes.io/name=<chart>, instance=<release>.
    for (charts, name) in [(LOGS_CHARTS, "victoria-logs-single"), (VMAUTH_CHARTS, "victoria-metrics-auth")] {
        let hr = rendered_helmrelease(&r, charts)?;
        let (release, ns) = release(hr);
        outcomes.push(objects::expect_pods_ready(client, &ctx.cluster, &ns, &format!("app.kubernetes.io/name={name},app.kubernetes.io/instance={release}")).await);
    }
    Ok(Outcome::all(outcomes))
}

// ---------------------------------------------------------------------------
// 6.3 Fluent Bit
// ---------------------------------------------------------------------------

/// The fluent-bit DaemonSet (§13 [FB1]) is fully ready, and the HelmRelease Flux applied
/// on this cluster carries its own tenant (`OBSERVABILITY_LOG_TENANT`) in the outputs.
pub(super) async fn fluent_bit_ready(ctx: Ctx) -> CheckResult<Outcome> {
    let client = ctx.kube()?;
    let r = rendered(&ctx)?;
    let hr = rendered_helmrelease(&r, FLUENT_BIT_CHARTS)?;
    let (release, ns) = release(hr);
    let selector = format!("app.kubernetes.io/name=fluent-bit,app.kubernetes.io/instance={release}");
    let list = Api::<DaemonSet>::namespaced(client.clone(), &ns)
        .list(&ListParams::default().labels(&selector))
        .await
        .map_err(|e| api_error(&format!("list DaemonSets in {ns}"), e))?;
    let Some(ds) = list.items.first() else {
        return Ok(Outcome::fail(format!("DaemonSet {ns} -l {selector} (cluster {})", ctx.cluster), "the fluent-bit DaemonSet", "none"));
    };
    let name = ds.metadata.name.clone().unwrap_or_default();
    let workload = objects::expect_workload_ready(client, &ctx.cluster, "DaemonSet", &ns, &name).await;
    // The tenant: what Flux applied here (variables substituted), not what the repo says.
    let tenant = variables(&ctx)?.require("OBSERVABILITY_LOG_TENANT")?.to_string();
    const HR: Kind = HELMRELEASE;
    let live = objects::require(client, &HR, hr.namespace(), hr.name()).await?;
    let outputs = live.str("/spec/values/config/outputs").unwrap_or("");
    let header = outputs.lines().map(str::trim).find(|l| l.to_ascii_lowercase().starts_with("header") && l.split_whitespace().nth(2) == Some(tenant.as_str()));
    let tenant_ok = match header {
        Some(h) => Outcome::pass(format!("{} on {}: {h}", live.describe(&HR), ctx.cluster)),
        None => Outcome::fail(
            format!("{} spec.values.config.outputs (cluster {})", live.describe(&HR), ctx.cluster),
            format!("a Header with tenant {tenant:?} (OBSERVABILITY_LOG_TENANT)"),
            format!("headers {:?}", outputs.lines().map(str::trim).filter(|l| l.to_ascii_lowercase().starts_with("header")).collect::<Vec<_>>()),
        ),
    };
    Ok(Outcome::all([workload, tenant_ok]))
}

/// The VictoriaLogs server endpoint and the AccountID vmauth pins for this cluster's tenant.
struct Tenant {
    tenant: String,
    account: String,
    host: String,
    port: u16,
    /// The cluster that runs VictoriaLogs (and Grafana).
    home: String,
}

fn tenant_of(repo: &GitopsRepo, ctx: &CheckContext) -> CheckResult<Tenant> {
    let tenant = variables(ctx)?.require("OBSERVABILITY_LOG_TENANT")?.to_string();
    let server = logs_endpoints(repo)?
        .into_iter()
        .find(|e| e.name.ends_with("-server"))
        .ok_or_else(|| Outcome::fail(format!("HelmRelease of chart {}", LOGS_CHARTS[0]), "rendered for some cluster", "rendered for none"))?;
    let r: std::sync::Arc<Rendered> = repo.render(&server.cluster).map_err(Outcome::error)?;
    let hr = rendered_helmrelease(&r, VMAUTH_CHARTS)?;
    let (source, config) = vmauth_config(&r, hr)?;
    let user = config
        .get("users")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|u| u.get("username").and_then(Value::as_str) == Some(tenant.as_str()))
        .ok_or_else(|| Outcome::fail(format!("vmauth users ({source})"), format!("a user {tenant:?}"), "none"))?;
    let mut headers = vec![];
    collect_headers(user, &mut headers);
    let account = headers
        .iter()
        .find_map(|h| h.split_once(':').filter(|(k, _)| k.trim().eq_ignore_ascii_case("AccountID")).map(|(_, v)| v.trim().to_string()))
        .ok_or_else(|| Outcome::fail(format!("vmauth user {tenant:?} ({source})"), "an AccountID header", format!("{headers:?}")))?;
    Ok(Tenant {
        tenant,
        account,
        host: format!("{}.{}.svc.cluster.local", server.name, server.namespace),
        port: server.port as u16,
        home: server.cluster,
    })
}

/// VictoriaLogs holds log lines of this cluster's tenant from the last minutes.
pub(super) async fn logs_in_victoria_logs(ctx: Ctx) -> CheckResult<Outcome> {
    let repo = ctx.repo()?;
    let t = tenant_of(repo, &ctx)?;
    let http = Http::to(&ctx, &t.home, t.host.clone(), t.port).await?;
    let query = format!("_time:{LOGS_WINDOW}");
    let path = format!("/select/logsql/query?query={}&limit=5", query_escape(&query));
    let (status, body) = http.get(&path, None, &[("AccountID", t.account.clone()), ("ProjectID", "0".into())]).await?;
    let object = format!("{} {query} as AccountID {} (tenant {} of cluster {})", http.object(&path), t.account, t.tenant, ctx.cluster);
    if status != 200 {
        return Ok(Outcome::fail(object, "HTTP 200", format!("HTTP {status}: {}", snippet(&body))));
    }
    let lines: Vec<Value> = body.lines().filter(|l| !l.trim().is_empty()).filter_map(|l| serde_json::from_str(l).ok()).collect();
    Ok(if lines.is_empty() {
        Outcome::fail(object, format!("log lines from the last {LOGS_WINDOW}"), "none")
    } else {
        // Only the stream labels go in the evidence, never message text.
        let streams: std::collections::BTreeSet<&str> = lines.iter().filter_map(|l| l.get("_stream").and_then(Value::as_str)).collect();
        Outcome::pass(format!("{object}: {} lines, streams {streams:?}", lines.len()))
    })
}

/// Grafana's VictoriaLogs datasource for this cluster's tenant returns its log lines.
pub(super) async fn logs_in_grafana(ctx: Ctx) -> CheckResult<Outcome> {
    let repo = ctx.repo()?;
    let t = tenant_of(repo, &ctx)?;
    let stack = stack_of(repo, &t.home)?;
    // The tenant's datasource: provisioned (sidecar ConfigMap or values) with its AccountID header.
    let r = repo.render(&stack.cluster).map_err(Outcome::error)?;
    let uid = tenant_datasource_uid(&r, &t.account).ok_or_else(|| {
        Outcome::fail(
            format!("Grafana datasources rendered on cluster {}", stack.cluster),
            format!("a {LOGS_DATASOURCE_TYPE} datasource with a uid and header AccountID {} (tenant {})", t.account, t.tenant),
            "none",
        )
    })?;
    let g = grafana(&ctx, &stack).await?;
    let expr = format!("_time:{LOGS_WINDOW}");
    let body = json!({
        "from": format!("now-{LOGS_WINDOW}"), "to": "now",
        "queries": [{"refId": "A", "datasource": {"uid": uid, "type": LOGS_DATASOURCE_TYPE}, "expr": expr, "queryType": "instant", "maxLines": 5}]
    });
    let answer = g.http.json("/api/ds/query", g.http.post_json("/api/ds/query", &g.auth, &body).await?)?;
    let object = format!("{} datasource uid {uid} (tenant {} of cluster {}): {expr}", g.http.object("/api/ds/query"), t.tenant, ctx.cluster);
    Ok(match frame_rows(&answer, "A") {
        Ok(n) if n > 0 => Outcome::pass(format!("{object}: {n} log rows")),
        Ok(_) => Outcome::fail(object, "log rows (logs visible)", "no rows"),
        Err(e) => Outcome::fail(object, "log rows (logs visible)", e),
    })
}

/// uid of a rendered VictoriaLogs datasource whose custom header AccountID is `account`.
fn tenant_datasource_uid(r: &Rendered, account: &str) -> Option<String> {
    let mut found = vec![];
    for o in r.objects.iter().filter(|o| matches!(o.kind(), "ConfigMap" | "Secret" | "HelmRelease")) {
        let texts: Vec<Value> = match o.kind() {
            "HelmRelease" => vec![o.get("/spec/values").cloned().unwrap_or(Value::Null)],
            _ => o.get("/data").and_then(Value::as_object).into_iter().flat_map(|m| m.values()).filter_map(Value::as_str).filter_map(|t| serde_yaml_ng::from_str(t).ok()).collect(),
        };
        for t in texts {
            collect_logs_datasources(&t, &mut found);
        }
    }
    found.into_iter().find(|d| {
        let json_data = d.get("jsonData").cloned().unwrap_or(Value::Null);
        let secure = d.get("secureJsonData").cloned().unwrap_or(Value::Null);
        (1..=9).any(|i| {
            json_data.get(format!("httpHeaderName{i}")).and_then(Value::as_str).is_some_and(|n| n.eq_ignore_ascii_case("AccountID"))
                && secure.get(format!("httpHeaderValue{i}")).map(crate::repo::scalar_text).as_deref() == Some(account)
        })
    })
    .and_then(|d| d.get("uid").and_then(Value::as_str).map(String::from))
}

fn collect_logs_datasources(v: &Value, out: &mut Vec<Value>) {
    match v {
        Value::Object(m) => {
            if m.get("type").and_then(Value::as_str) == Some(LOGS_DATASOURCE_TYPE) {
                out.push(v.clone());
            }
            m.values().for_each(|c| collect_logs_datasources(c, out));
        }
        Value::Array(a) => a.iter().for_each(|c| collect_logs_datasources(c, out)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn up_series_judged_by_value() {
        let ok = json!({"status": "success", "data": {"resultType": "vector", "result": [
            {"metric": {"__name__": "up", "job": "kubelet"}, "value": [1.0, "1"]},
            {"metric": {"__name__": "up", "job": "etcd"}, "value": [1.0, "0"]}]}});
        let o = judge_up("vmselect", "up", &ok);
        assert_eq!(o.verdict(), crate::check::Verdict::Pass, "{o:?}");
        assert!(o.summary().contains("down: {\"etcd\"}"), "{}", o.summary());
        let none = json!({"status": "success", "data": {"resultType": "vector", "result": []}});
        assert_eq!(judge_up("vmselect", "up", &none).summary(), "vmselect up: expected series with value 1 (scrape targets up), observed no series (nothing scraped)");
    }

    #[test]
    fn grafana_frames_count_rows_or_report_errors() {
        let body = json!({"results": {"A": {"frames": [{"data": {"values": [[1, 2, 3], [1.0, 1.0, 1.0]]}}]}}});
        assert_eq!(frame_rows(&body, "A"), Ok(3));
        let err = json!({"results": {"A": {"error": "bad gateway", "frames": []}}});
        assert_eq!(frame_rows(&err, "A"), Err("error: bad gateway".into()));
    }
}
