//! Observability in the simulation: the real engines ([`crate::sim::data::Engines`]:
//! VictoriaMetrics single-node behind vmauth, VictoriaLogs) fed by two named stand-ins,
//! and a Grafana API stand-in. They run inside the sim's stand-in process (`sim
//! provisioner`).
//!
//! - **vmagent stand-in** ([`observe`]): while pods of a `VMAgent` are Ready, it writes one
//!   `up` sample (value 1, time now) per scrape job of the k8s-stack chart's defaults,
//!   labelled with the VMAgent's own `externalLabels.cluster`, to VictoriaMetrics' import
//!   API: what vmagent's remote write would deliver. When the agent stops, nothing is
//!   written and the series go stale by VictoriaMetrics' own rules.
//! - **fluent-bit stand-in** ([`observe`]): while the cluster's fluent-bit pods are Ready,
//!   it ships one line per namespace (the first five that are not the harness's own),
//!   stamped with the current time and shaped as the fixture's fluent-bit output sends
//!   them ([`FLUENT_BIT_URI`]), to VictoriaLogs' JSON-lines API under the cluster's tenant
//!   (`AccountID`, as the platform's vmauth sets it per tenant user). When fluent-bit stops, the newest line only gets older.
//! - **Grafana stand-in** ([`Grafana`]; Grafana is AGPL-licensed and is not built here):
//!   `/api/health`, `/api/datasources` (the k8s-stack chart's default VictoriaMetrics
//!   datasource and the fixture's VictoriaLogs ones) and `/api/ds/query`, which forwards
//!   each query to the engine behind its datasource (MetricsQL to vmselect's
//!   `/select/0/prometheus/api/v1/query`, LogsQL to VictoriaLogs' `/select/logsql/query`
//!   with the datasource's `AccountID`) and returns the engine's answer as frames, or its
//!   error. Its shapes follow docs/reference/components.md §11.4 [GR2] and Grafana's HTTP
//!   API docs; Grafana's admin is the sim's `grafana-admin` Secret.
//!
//! So what a check reads through vmselect, VictoriaLogs or Grafana is evaluated by the
//! real engines over data the stand-ins wrote from what runs in the clusters.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::sim::data::Engines;

/// Loopback port of the Grafana stand-in (fixed, like the data services).
pub const OBSERVABILITY_PORT: u16 = 19090;

/// In-cluster name and port of Grafana (chart default, as the fixture renders it).
pub const GRAFANA: (&str, u16) = ("victoria-metrics-stack-grafana.observability.svc.cluster.local", 80);
/// In-cluster name and port of vmselect, served by vmauth in front of VictoriaMetrics.
pub const VMSELECT: (&str, u16) = ("vmselect-victoria-metrics-stack.observability.svc.cluster.local", 8481);
/// In-cluster name and port of VictoriaLogs.
pub const VICTORIA_LOGS: (&str, u16) = ("victoria-logs-server.observability.svc.cluster.local", 9428);

/// Scrape jobs of the k8s-stack chart's default scrape objects (kubelet, apiserver,
/// node-exporter), reported up while the cluster's VMAgent runs.
pub const DEFAULT_JOBS: [&str; 3] = ["kubelet", "apiserver", "node-exporter"];
/// Tenants of the fixture's vmauth users and fluent-bit outputs: cluster -> AccountID.
pub const ACCOUNTS: [(&str, &str); 2] = [("infra", "1"), ("apps", "2")];

/// What Grafana is configured with.
#[derive(Clone)]
pub struct GrafanaState {
    /// Admin (user, password), from the sim's grafana-admin Secret.
    pub admin: (String, String),
    pub datasources: Vec<Value>,
    /// Datasource uid -> AccountID of its header (the VictoriaLogs datasources).
    pub logs_uids: BTreeMap<String, String>,
}

/// The Grafana API stand-in, serving on `addr`.
pub struct Grafana {
    pub addr: SocketAddr,
    pub state: Arc<Mutex<GrafanaState>>,
}

impl Grafana {
    /// Serves on `bind` (port 0: any free port), forwarding queries to `engines`.
    pub async fn start(admin: (String, String), bind: SocketAddr, engines: Engines) -> std::io::Result<Grafana> {
        let state = GrafanaState {
            admin,
            // The k8s-stack chart's default datasource, plus the fixture's VictoriaLogs ones.
            datasources: vec![
                json!({"id": 1, "uid": "P4169E866C3094E38", "name": "VictoriaMetrics", "type": "prometheus", "access": "proxy",
                       "url": "http://vmselect-victoria-metrics-stack.observability.svc:8481/select/0/prometheus/", "isDefault": true}),
                json!({"id": 2, "uid": "victorialogs-infra", "name": "VictoriaLogs (infra)", "type": "victoriametrics-logs-datasource", "access": "proxy",
                       "url": "http://victoria-logs-server.observability.svc.cluster.local:9428", "isDefault": false}),
                json!({"id": 3, "uid": "victorialogs-apps", "name": "VictoriaLogs (apps)", "type": "victoriametrics-logs-datasource", "access": "proxy",
                       "url": "http://victoria-logs-server.observability.svc.cluster.local:9428", "isDefault": false}),
            ],
            logs_uids: BTreeMap::from([("victorialogs-infra".to_string(), "1".to_string()), ("victorialogs-apps".to_string(), "2".to_string())]),
        };
        let state = Arc::new(Mutex::new(state));
        let listener = tokio::net::TcpListener::bind(bind).await?;
        let addr = listener.local_addr()?;
        let shared = state.clone();
        let http = reqwest::Client::builder().timeout(std::time::Duration::from_secs(10)).build().map_err(std::io::Error::other)?;
        tokio::spawn(async move {
            while let Ok((mut sock, _)) = listener.accept().await {
                let (state, http) = (shared.clone(), http.clone());
                tokio::spawn(async move {
                    let Some((method, path, headers, body)) = read_request(&mut sock).await else { return };
                    let snapshot = state.lock().expect("grafana state").clone();
                    let (status, ctype, text) = route(&snapshot, &http, &engines, &method, &path, &headers, &body).await;
                    let resp = format!("HTTP/1.1 {status} X\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}", text.len());
                    let _ = sock.write_all(resp.as_bytes()).await;
                });
            }
        });
        Ok(Grafana { addr, state })
    }

    pub fn set(&self, f: impl FnOnce(&mut GrafanaState)) {
        f(&mut self.state.lock().expect("grafana state"));
    }
}

/// One HTTP/1.1 request: method, path, headers (lower-case names) and body.
pub(super) async fn read_request<S: tokio::io::AsyncRead + Unpin>(sock: &mut S) -> Option<(String, String, BTreeMap<String, String>, String)> {
    let mut buf = vec![];
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        let n = sock.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.lines();
    let mut first = lines.next()?.split_whitespace();
    let (method, path) = (first.next()?.to_string(), first.next()?.to_string());
    let headers: BTreeMap<String, String> =
        lines.filter_map(|l| l.split_once(':')).map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string())).collect();
    let len: usize = headers.get("content-length").and_then(|l| l.parse().ok()).unwrap_or(0);
    while buf.len() < head_end + len {
        let n = sock.read(&mut chunk).await.ok()?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Some((method, path, headers, String::from_utf8_lossy(&buf[head_end..]).into_owned()))
}

/// Grafana's routes: health is public, the rest needs the admin.
async fn route(
    s: &GrafanaState,
    http: &reqwest::Client,
    engines: &Engines,
    method: &str,
    path: &str,
    headers: &BTreeMap<String, String>,
    body: &str,
) -> (u16, &'static str, String) {
    use base64::Engine;
    let authorized = headers.get("authorization").and_then(|a| a.strip_prefix("Basic ")).and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        == Some(format!("{}:{}", s.admin.0, s.admin.1).into_bytes());
    let route = path.split('?').next().unwrap_or(path);
    let known = |uid: &str| s.datasources.iter().any(|d| d["uid"] == uid);
    let not_found = (404, "application/json", json!({"message": "Data source not found"}).to_string());
    match (method, route) {
        ("GET", "/api/health") => (200, "application/json", json!({"commit": "stand-in", "database": "ok", "version": "12.2.0"}).to_string()),
        ("GET", "/api/datasources") if authorized => (200, "application/json", Value::Array(s.datasources.clone()).to_string()),
        ("POST", "/api/ds/query") if authorized => {
            let req: Value = serde_json::from_str(body).unwrap_or(Value::Null);
            let q = req.pointer("/queries/0").cloned().unwrap_or(Value::Null);
            let ref_id = q["refId"].as_str().unwrap_or("A").to_string();
            let uid = q.pointer("/datasource/uid").and_then(Value::as_str).unwrap_or("");
            let expr = q["expr"].as_str().unwrap_or("");
            if !known(uid) {
                return not_found;
            }
            let frames = match s.logs_uids.get(uid) {
                Some(account) => query_logs(http, engines.logs, account, expr, q["maxLines"].as_u64().unwrap_or(1000)).await,
                None => query_metrics(http, engines.vmselect, expr).await,
            };
            match frames {
                Ok(frames) => (200, "application/json", json!({"results": {ref_id: {"status": 200, "frames": frames}}}).to_string()),
                Err(e) => (400, "application/json", json!({"results": {ref_id: {"status": 400, "error": e}}}).to_string()),
            }
        }
        // Datasource health: the query Grafana's own health check sends, to the engine behind it.
        ("GET", r) if authorized && r.starts_with("/api/datasources/uid/") && r.ends_with("/health") => {
            let uid = r.trim_start_matches("/api/datasources/uid/").trim_end_matches("/health");
            if !known(uid) {
                return not_found;
            }
            let probe = match s.logs_uids.get(uid) {
                Some(account) => query_logs(http, engines.logs, account, "_time:1m", 1).await.map(|_| "Successfully queried VictoriaLogs"),
                None => query_metrics(http, engines.vmselect, "1+1").await.map(|_| "Successfully queried the Prometheus API."),
            };
            match probe {
                Ok(m) => (200, "application/json", json!({"status": "OK", "message": m}).to_string()),
                Err(e) => (400, "application/json", json!({"status": "ERROR", "message": e}).to_string()),
            }
        }
        (_, r) if r.starts_with("/api/") => (401, "application/json", json!({"message": "Unauthorized"}).to_string()),
        _ => (404, "text/plain", "404 page not found".into()),
    }
}

/// A MetricsQL instant query through vmselect (`/select/0/prometheus/api/v1/query`): one
/// frame per series, or the engine's error.
async fn query_metrics(http: &reqwest::Client, vmselect: SocketAddr, expr: &str) -> Result<Vec<Value>, String> {
    let url = reqwest::Url::parse_with_params(&format!("http://{vmselect}/select/0/prometheus/api/v1/query"), &[("query", expr)]).map_err(|e| e.to_string())?;
    let r = http.get(url).send().await.map_err(|e| format!("vmselect {vmselect}: {}", crate::errline::http(&e)))?;
    let status = r.status();
    let body: Value = r.json().await.map_err(|e| format!("vmselect answered HTTP {status}, not JSON: {e}"))?;
    metric_frames(&body)
}

/// Prometheus API answer -> Grafana frames (one per series: Time, Value with the labels).
pub fn metric_frames(body: &Value) -> Result<Vec<Value>, String> {
    if body["status"] != "success" {
        return Err(body["error"].as_str().unwrap_or("query failed").to_string());
    }
    let series = body.pointer("/data/result").and_then(Value::as_array).cloned().unwrap_or_default();
    Ok(series
        .iter()
        .map(|x| {
            let (t, v) = (x.pointer("/value/0").cloned().unwrap_or(Value::Null), x.pointer("/value/1").cloned().unwrap_or(Value::Null));
            let t_ms = t.as_f64().map(|t| (t * 1000.0) as i64);
            json!({"schema": {"fields": [{"name": "Time"}, {"name": "Value", "labels": x["metric"]}]}, "data": {"values": [[t_ms], [v]]}})
        })
        .collect())
}

/// A LogsQL query to VictoriaLogs as tenant `account`: one frame of lines, or the engine's error.
async fn query_logs(http: &reqwest::Client, logs: SocketAddr, account: &str, expr: &str, limit: u64) -> Result<Vec<Value>, String> {
    let url = reqwest::Url::parse_with_params(&format!("http://{logs}/select/logsql/query"), &[("query", expr), ("limit", &limit.to_string())]).map_err(|e| e.to_string())?;
    let r = http
        .get(url)
        .header("AccountID", account)
        .send()
        .await
        .map_err(|e| format!("VictoriaLogs {logs}: {}", crate::errline::http(&e)))?;
    let status = r.status();
    let text = r.text().await.map_err(|e| format!("VictoriaLogs {logs}: {e}"))?;
    if !status.is_success() {
        return Err(format!("VictoriaLogs answered HTTP {status}: {}", text.lines().next().unwrap_or("").chars().take(200).collect::<String>()));
    }
    Ok(vec![log_frame(&text)])
}

/// VictoriaLogs' JSON lines -> one Grafana frame (Time, Line).
pub fn log_frame(text: &str) -> Value {
    let lines: Vec<Value> = text.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    let times: Vec<&Value> = lines.iter().map(|l| &l["_time"]).collect();
    let msgs: Vec<&Value> = lines.iter().map(|l| &l["_msg"]).collect();
    json!({"schema": {"fields": [{"name": "Time"}, {"name": "Line"}]}, "data": {"values": [times, msgs]}})
}

/// Pods of `ns` (all namespaces when `None`) matching `labels` that are Ready.
async fn ready_pods(client: &kube::Client, ns: Option<&str>, labels: &str) -> usize {
    use k8s_openapi::api::core::v1::Pod;
    let api: kube::Api<Pod> = match ns {
        Some(ns) => kube::Api::namespaced(client.clone(), ns),
        None => kube::Api::all(client.clone()),
    };
    let pods = api.list(&kube::api::ListParams::default().labels(labels)).await.map(|l| l.items).unwrap_or_default();
    pods.iter()
        .filter(|p| p.status.as_ref().and_then(|s| s.conditions.as_ref()).is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True")))
        .count()
}

/// What the stand-in agents saw in one look at the clusters.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Seen {
    /// `cluster` labels of VMAgents with a Ready pod.
    pub agents: Vec<String>,
    /// (AccountID, cluster, namespace) of every line fluent-bit ships.
    pub streams: Vec<(String, String, String)>,
}

/// `up` samples in Prometheus' text format, as vmagent's remote write would deliver them.
pub fn up_samples(labels: &[String], at: time::OffsetDateTime) -> String {
    let ms = (at.unix_timestamp_nanos() / 1_000_000) as i64;
    labels.iter().flat_map(|c| DEFAULT_JOBS.iter().map(move |j| format!("up{{job=\"{j}\",cluster=\"{c}\"}} 1 {ms}\n"))).collect()
}

/// The query string of the fixture's fluent-bit output (`bases/fluent-bit`): stream fields,
/// message and time fields of its records.
pub const FLUENT_BIT_URI: &str =
    "/insert/jsonline?_stream_fields=cluster,kubernetes_namespace_name,kubernetes_pod_name,kubernetes_container_name&_msg_field=log&_time_field=date";

/// One record per namespace of `cluster`, shaped as the fixture's fluent-bit sends them
/// (`json_lines`, ISO 8601 `date`, the nest filter's `kubernetes_` prefix, the
/// record_modifier's `cluster`).
pub fn log_lines(cluster: &str, namespaces: &[&str], at: time::OffsetDateTime) -> String {
    let t = at.format(&time::format_description::well_known::Rfc3339).unwrap_or_default();
    namespaces
        .iter()
        .map(|n| {
            let record = json!({"date": t, "log": format!("log line of a container in {n}"), "cluster": cluster,
                                "kubernetes_namespace_name": n, "kubernetes_pod_name": "pod", "kubernetes_container_name": "container"});
            format!("{record}\n")
        })
        .collect()
}

/// One look at the clusters: which VMAgents run and which tenants fluent-bit ships to.
pub async fn look(clients: &[(String, kube::Client)]) -> Seen {
    use kube::api::{ApiResource, DynamicObject, GroupVersionKind};
    let mut seen = Seen::default();
    for (cluster, client) in clients {
        // §11.3 [VM3]: the operator labels VMAgent pods name=vmagent, instance=<CR name>.
        let ar = ApiResource::from_gvk(&GroupVersionKind::gvk("operator.victoriametrics.com", "v1beta1", "VMAgent"));
        let agents = kube::Api::<DynamicObject>::all_with(client.clone(), &ar).list(&Default::default()).await.map(|l| l.items).unwrap_or_default();
        for a in agents {
            let (name, ns) = (a.metadata.name.clone().unwrap_or_default(), a.metadata.namespace.clone().unwrap_or_default());
            let label = a.data.pointer("/spec/externalLabels/cluster").and_then(Value::as_str).unwrap_or(cluster).to_string();
            if ready_pods(client, Some(&ns), &format!("app.kubernetes.io/name=vmagent,app.kubernetes.io/instance={name}")).await > 0 {
                seen.agents.push(label);
            }
        }
        // §13 [FB1]: fluent-bit pods ship the node's container logs of every namespace.
        let Some((_, account)) = ACCOUNTS.iter().find(|(c, _)| c == cluster) else { continue };
        if ready_pods(client, None, "app.kubernetes.io/name=fluent-bit").await > 0 {
            use k8s_openapi::api::core::v1::Namespace;
            let namespaces = kube::Api::<Namespace>::all(client.clone()).list(&Default::default()).await.map(|l| l.items).unwrap_or_default();
            for n in namespaces.iter().filter_map(|n| n.metadata.name.clone()).filter(|n| !n.starts_with("pa-")).take(5) {
                seen.streams.push((account.to_string(), cluster.clone(), n));
            }
        }
    }
    seen
}

/// Writes what the agents saw to the engines, stamped `at`.
pub async fn ship(http: &reqwest::Client, engines: &Engines, seen: &Seen, at: time::OffsetDateTime) -> anyhow::Result<()> {
    use anyhow::Context;
    if !seen.agents.is_empty() {
        let url = format!("http://{}/api/v1/import/prometheus", engines.metrics);
        http.post(&url).body(up_samples(&seen.agents, at)).send().await.and_then(|r| r.error_for_status()).with_context(|| format!("POST {url}"))?;
    }
    let mut by_tenant: BTreeMap<(&str, &str), Vec<&str>> = BTreeMap::new();
    for (account, cluster, ns) in &seen.streams {
        by_tenant.entry((account, cluster)).or_default().push(ns);
    }
    for ((account, cluster), namespaces) in by_tenant {
        let url = format!("http://{}{FLUENT_BIT_URI}", engines.logs);
        http.post(&url)
            .header("AccountID", account)
            .body(log_lines(cluster, &namespaces, at))
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .with_context(|| format!("POST {url} (AccountID {account})"))?;
    }
    Ok(())
}

/// [`look`] and [`ship`] every two seconds, forever (the agents' scrape/flush interval).
pub async fn follow(engines: Engines, clients: Vec<(String, kube::Client)>) {
    let http = reqwest::Client::builder().timeout(std::time::Duration::from_secs(5)).build().expect("reqwest client");
    let mut last_error = String::new();
    loop {
        let seen = look(&clients).await;
        match ship(&http, &engines, &seen, time::OffsetDateTime::now_utc()).await {
            Err(e) if format!("{e:#}") != last_error => {
                last_error = format!("{e:#}");
                eprintln!("vmagent/fluent-bit stand-in: {last_error}");
            }
            _ => {}
        }
        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    }
}

/// Serves Grafana for the simulation and runs the agents: Grafana's admin from infra's
/// `observability/grafana-admin` Secret (re-read until the healthy scenario has created it).
pub async fn serve(cfg: &super::SimConfig) -> anyhow::Result<()> {
    use k8s_openapi::api::core::v1::Secret;
    let bind: SocketAddr = ([127, 0, 0, 1], OBSERVABILITY_PORT).into();
    let grafana = Grafana::start((String::new(), String::new()), bind, Engines::sim()).await?;
    let client = super::client(cfg, "infra").await?;
    let mut clients = vec![];
    for (name, _) in ACCOUNTS {
        clients.push((name.to_string(), super::client(cfg, name).await?));
    }
    tokio::spawn(follow(Engines::sim(), clients));
    loop {
        if let Ok(s) = kube::Api::<Secret>::namespaced(client.clone(), "observability").get("grafana-admin").await {
            let d = s.data.unwrap_or_default();
            let get = |k: &str| d.get(k).map(|v| String::from_utf8_lossy(&v.0).into_owned()).unwrap_or_default();
            let admin = (get("admin-user"), get("admin-password"));
            grafana.set(|m| m.admin = admin);
        }
        tokio::time::sleep(std::time::Duration::from_secs(5)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agents_write_what_they_saw_stamped_now() {
        let at = time::OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        let up = up_samples(&["infra".to_string()], at);
        assert_eq!(up.lines().count(), 3);
        assert!(up.starts_with("up{job=\"kubelet\",cluster=\"infra\"} 1 1700000000000\n"), "{up}");
        let logs = log_lines("infra", &["flux-system"], at);
        let line: Value = serde_json::from_str(logs.trim()).unwrap();
        assert_eq!(line["date"], "2023-11-14T22:13:20Z");
        assert_eq!(line["kubernetes_namespace_name"], "flux-system");
        assert_eq!(line["cluster"], "infra");
    }

    #[test]
    fn engine_answers_become_frames_or_errors() {
        let ok = json!({"status": "success", "data": {"resultType": "vector", "result": [
            {"metric": {"__name__": "up", "job": "kubelet"}, "value": [1700000000.5, "1"]},
            {"metric": {"__name__": "up", "job": "apiserver"}, "value": [1700000000.5, "1"]}]}});
        let frames = metric_frames(&ok).unwrap();
        assert_eq!(frames.len(), 2);
        assert_eq!(frames[0].pointer("/data/values/0/0"), Some(&json!(1700000000500_i64)));
        let bad = json!({"status": "error", "errorType": "422", "error": "cannot parse query"});
        assert_eq!(metric_frames(&bad).unwrap_err(), "cannot parse query");
        let frame = log_frame("{\"_time\":\"t1\",\"_msg\":\"a\"}\n{\"_time\":\"t2\",\"_msg\":\"b\"}\n");
        assert_eq!(frame.pointer("/data/values/1"), Some(&json!(["a", "b"])));
        assert_eq!(log_frame("").pointer("/data/values/0"), Some(&json!([])));
    }

    #[tokio::test]
    async fn grafana_needs_its_admin_and_knows_its_datasources() {
        // Engines nobody listens on: only routes that do not query are exercised here.
        let dead = Engines { metrics: "127.0.0.1:9".parse().unwrap(), vmselect: "127.0.0.1:9".parse().unwrap(), logs: "127.0.0.1:9".parse().unwrap() };
        let g = Grafana::start(("admin".into(), "pw".into()), "127.0.0.1:0".parse().unwrap(), dead).await.unwrap();
        let http = reqwest::Client::new();
        let url = |p: &str| format!("http://{}{p}", g.addr);
        assert_eq!(http.get(url("/api/health")).send().await.unwrap().status(), 200);
        assert_eq!(http.get(url("/api/datasources")).send().await.unwrap().status(), 401);
        let list: Value = http.get(url("/api/datasources")).basic_auth("admin", Some("pw")).send().await.unwrap().json().await.unwrap();
        assert_eq!(list.as_array().map(Vec::len), Some(3));
        let q = json!({"queries": [{"refId": "A", "datasource": {"uid": "nope"}, "expr": "up"}]});
        assert_eq!(http.post(url("/api/ds/query")).basic_auth("admin", Some("pw")).json(&q).send().await.unwrap().status(), 404);
        // An engine that does not answer is the query's error, named.
        let q = json!({"queries": [{"refId": "A", "datasource": {"uid": "P4169E866C3094E38"}, "expr": "up"}]});
        let r = http.post(url("/api/ds/query")).basic_auth("admin", Some("pw")).json(&q).send().await.unwrap();
        assert_eq!(r.status(), 400);
        let body: Value = r.json().await.unwrap();
        assert!(body.pointer("/results/A/error").and_then(Value::as_str).is_some_and(|e| e.contains("vmselect 127.0.0.1:9")), "{body}");
    }
}
