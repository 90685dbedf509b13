//! A named MOCK of Grafana, vmselect and VictoriaLogs for the local simulation: no
//! binary of theirs can run here. One loopback HTTP server answers their documented
//! response shapes: Grafana `/api/health`, `/api/datasources`, `/api/ds/query`
//! (docs/reference/components.md §11.4 [GR2]; Grafana HTTP API docs), vmselect's Prometheus
//! `/select/0/prometheus/api/v1/query` (§11.3), VictoriaLogs `/select/logsql/query`
//! with `AccountID` (§12 [VL3][VL4]). It runs inside the sim's stand-in process
//! (`sim provisioner`) on [`OBSERVABILITY_PORT`]; the endpoint map routes the three
//! in-cluster service names here. Grafana's admin is the sim's `grafana-admin` Secret.
//!
//! What it answers follows the clusters ([`follow`]), not a script: `up` series exist for
//! a cluster only while pods of its VMAgent are Ready (labelled with the VMAgent's own
//! `externalLabels.cluster`; the jobs are the k8s-stack chart's default scrapes), and a
//! tenant receives log lines (stamped with the time they were seen) only while the
//! cluster's fluent-bit pods are Ready. Queries are honoured: label matchers of an
//! instant query, `_time:<duration>` of a LogsQL query, `limit`. So metrics vanish when
//! the agent stops, and logs go stale when fluent-bit stops.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Loopback port of the mock (fixed, like the other data services).
pub const OBSERVABILITY_PORT: u16 = 19090;

/// In-cluster names (chart defaults, as the fixture renders them) the mock answers for.
pub const HOSTS: [(&str, u16); 3] = [
    ("victoria-metrics-stack-grafana.observability.svc.cluster.local", 80),
    ("vmselect-victoria-metrics-stack.observability.svc.cluster.local", 8481),
    ("victoria-logs-server.observability.svc.cluster.local", 9428),
];

/// Scrape jobs of the k8s-stack chart's default scrape objects (kubelet, apiserver,
/// node-exporter), reported up while the cluster's VMAgent runs.
pub const DEFAULT_JOBS: [&str; 3] = ["kubelet", "apiserver", "node-exporter"];
/// Tenants of the fixture's vmauth users and fluent-bit outputs: cluster -> AccountID.
pub const ACCOUNTS: [(&str, &str); 2] = [("infra", "1"), ("apps", "2")];

/// One `up` series.
#[derive(Debug, Clone, PartialEq)]
pub struct UpSeries {
    pub job: String,
    pub cluster: String,
    pub value: String,
}

/// One log stream of a tenant and when its latest line was seen.
#[derive(Debug, Clone, PartialEq)]
pub struct LogLine {
    pub stream: String,
    pub time: time::OffsetDateTime,
}

#[derive(Clone)]
pub struct MockState {
    /// Grafana admin (user, password), from the sim's grafana-admin Secret.
    pub admin: (String, String),
    pub datasources: Vec<Value>,
    /// vmselect `up` series.
    pub up: Vec<UpSeries>,
    /// VictoriaLogs lines per AccountID.
    pub logs: BTreeMap<String, Vec<LogLine>>,
    /// Grafana datasource uid -> AccountID of its header.
    pub logs_uids: BTreeMap<String, String>,
}

pub struct MockObservability {
    pub addr: SocketAddr,
    pub state: Arc<Mutex<MockState>>,
}

impl MockObservability {
    /// Serves on `bind` (port 0: any free port).
    pub async fn start(admin: (String, String), bind: SocketAddr) -> std::io::Result<MockObservability> {
        let state = MockState {
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
            // Filled by [`follow`] from what runs in the clusters.
            up: vec![],
            logs: BTreeMap::new(),
            logs_uids: BTreeMap::from([("victorialogs-infra".to_string(), "1".to_string()), ("victorialogs-apps".to_string(), "2".to_string())]),
        };
        let state = Arc::new(Mutex::new(state));
        let listener = tokio::net::TcpListener::bind(bind).await?;
        let addr = listener.local_addr()?;
        let shared = state.clone();
        tokio::spawn(async move {
            while let Ok((mut sock, _)) = listener.accept().await {
                let state = shared.clone();
                tokio::spawn(async move {
                    let Some((method, path, headers, body)) = read_request(&mut sock).await else { return };
                    let snapshot = state.lock().expect("mock state").clone();
                    let (status, ctype, text) = route(&snapshot, &method, &path, &headers, &body);
                    let resp = format!("HTTP/1.1 {status} X\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}", text.len());
                    let _ = sock.write_all(resp.as_bytes()).await;
                });
            }
        });
        Ok(MockObservability { addr, state })
    }

    pub fn set(&self, f: impl FnOnce(&mut MockState)) {
        f(&mut self.state.lock().expect("mock state"));
    }
}

async fn read_request(sock: &mut tokio::net::TcpStream) -> Option<(String, String, BTreeMap<String, String>, String)> {
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

/// `up{cluster="infra",job="kubelet"}` -> ("up", [(cluster, infra), (job, kubelet)]).
fn matchers(query: &str) -> (String, Vec<(String, String)>) {
    let (name, rest) = query.split_once('{').unwrap_or((query, ""));
    let pairs = rest
        .trim_end_matches('}')
        .split(',')
        .filter_map(|m| m.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().trim_matches('"').to_string()))
        .collect();
    (name.trim().to_string(), pairs)
}

fn series_matching<'a>(s: &'a MockState, query: &str) -> Vec<&'a UpSeries> {
    let (name, pairs) = matchers(query);
    if name != "up" {
        return vec![];
    }
    s.up.iter()
        .filter(|x| pairs.iter().all(|(k, v)| match k.as_str() {
            "job" => &x.job == v,
            "cluster" => &x.cluster == v,
            "__name__" => v == "up",
            _ => false,
        }))
        .collect()
}

/// `_time:15m` (s, m, h, d) -> the window; `None` for no time filter.
fn time_window(query: &str) -> Option<time::Duration> {
    let d = query.split_whitespace().find_map(|t| t.strip_prefix("_time:"))?;
    let (n, unit) = d.split_at(d.find(|c: char| !c.is_ascii_digit())?);
    let n: i64 = n.parse().ok()?;
    Some(match unit {
        "s" => time::Duration::seconds(n),
        "m" => time::Duration::minutes(n),
        "h" => time::Duration::hours(n),
        "d" => time::Duration::days(n),
        _ => return None,
    })
}

fn lines_within<'a>(s: &'a MockState, account: &str, query: &str, now: time::OffsetDateTime) -> Vec<&'a LogLine> {
    let window = time_window(query);
    s.logs.get(account).into_iter().flatten().filter(|l| window.is_none_or(|w| l.time >= now - w)).collect()
}

/// Percent-decoding of a query string value (`+` is a space).
fn decode(v: &str) -> String {
    let bytes = v.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = (bytes[i] == b'%').then(|| v.get(i + 1..i + 3)).flatten().and_then(|h| u8::from_str_radix(h, 16).ok());
        match (hex, bytes[i]) {
            (Some(b), _) => {
                out.push(b);
                i += 3;
                continue;
            }
            (None, b'+') => out.push(b' '),
            (None, b) => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn param(path: &str, key: &str) -> Option<String> {
    path.split_once('?')?.1.split('&').filter_map(|kv| kv.split_once('=')).find(|(k, _)| *k == key).map(|(_, v)| decode(v))
}

fn route(s: &MockState, method: &str, path: &str, headers: &BTreeMap<String, String>, body: &str) -> (u16, &'static str, String) {
    use base64::Engine;
    let now = time::OffsetDateTime::now_utc();
    let authorized = headers.get("authorization").and_then(|a| a.strip_prefix("Basic ")).and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        == Some(format!("{}:{}", s.admin.0, s.admin.1).into_bytes());
    let unauthorized = (401, "application/json", json!({"message": "Unauthorized"}).to_string());
    let frames = |rows: usize| json!({"results": {"A": {"status": 200, "frames": [{"schema": {"fields": [{"name": "Time"}, {"name": "Value"}]}, "data": {"values": [vec![0; rows], vec![1; rows]]}}]}}});
    let route = path.split('?').next().unwrap_or(path);
    match (method, route) {
        // Grafana: health is public; the rest needs the admin.
        ("GET", "/api/health") => (200, "application/json", json!({"commit": "mock", "database": "ok", "version": "12.2.0"}).to_string()),
        ("GET", "/api/datasources") if authorized => (200, "application/json", Value::Array(s.datasources.clone()).to_string()),
        ("POST", "/api/ds/query") if authorized => {
            let req: Value = serde_json::from_str(body).unwrap_or(Value::Null);
            let uid = req.pointer("/queries/0/datasource/uid").and_then(Value::as_str).unwrap_or("");
            let expr = req.pointer("/queries/0/expr").and_then(Value::as_str).unwrap_or("");
            if !s.datasources.iter().any(|d| d["uid"] == uid) {
                return (404, "application/json", json!({"message": "Data source not found"}).to_string());
            }
            let rows = match s.logs_uids.get(uid) {
                Some(account) => lines_within(s, account, expr, now).len(),
                None => series_matching(s, expr).iter().filter(|x| x.value == "1").count(),
            };
            (200, "application/json", frames(rows).to_string())
        }
        (_, "/api/datasources") | (_, "/api/ds/query") => unauthorized,
        // vmselect (Prometheus querying API).
        ("GET", "/select/0/prometheus/api/v1/query") => {
            let query = param(path, "query").unwrap_or_default();
            let t = now.unix_timestamp() as f64;
            let result: Vec<Value> = series_matching(s, &query)
                .into_iter()
                .map(|x| json!({"metric": {"__name__": "up", "job": x.job, "cluster": x.cluster}, "value": [t, x.value]}))
                .collect();
            (200, "application/json", json!({"status": "success", "data": {"resultType": "vector", "result": result}}).to_string())
        }
        // VictoriaLogs: JSON lines of the AccountID's tenant (default 0) within the query's _time window.
        ("GET" | "POST", "/select/logsql/query") => {
            let account = headers.get("accountid").cloned().unwrap_or_else(|| "0".into());
            let query = param(path, "query").unwrap_or_default();
            let limit = param(path, "limit").and_then(|l| l.parse().ok()).unwrap_or(usize::MAX);
            let rfc3339 = |t: time::OffsetDateTime| t.format(&time::format_description::well_known::Rfc3339).unwrap_or_default();
            let text: String = lines_within(s, &account, &query, now)
                .into_iter()
                .take(limit)
                .map(|l| format!("{}\n", json!({"_msg": "log line", "_stream": l.stream, "_time": rfc3339(l.time)})))
                .collect();
            (200, "application/stream+json", text)
        }
        _ => (404, "text/plain", "404 page not found".into()),
    }
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

/// One look at the clusters: which `up` series exist, which tenants' log streams are fresh.
pub async fn observe(mock: &MockObservability, clients: &[(String, kube::Client)]) {
    use kube::api::{ApiResource, DynamicObject, GroupVersionKind};
    let now = time::OffsetDateTime::now_utc();
    let mut up = vec![];
    let mut fresh: Vec<(String, String)> = vec![];
    for (cluster, client) in clients {
        // §11.3 [VM3]: the operator labels VMAgent pods name=vmagent, instance=<CR name>.
        let ar = ApiResource::from_gvk(&GroupVersionKind::gvk("operator.victoriametrics.com", "v1beta1", "VMAgent"));
        let agents = kube::Api::<DynamicObject>::all_with(client.clone(), &ar).list(&Default::default()).await.map(|l| l.items).unwrap_or_default();
        for a in agents {
            let (name, ns) = (a.metadata.name.clone().unwrap_or_default(), a.metadata.namespace.clone().unwrap_or_default());
            let label = a.data.pointer("/spec/externalLabels/cluster").and_then(Value::as_str).unwrap_or(cluster).to_string();
            if ready_pods(client, Some(&ns), &format!("app.kubernetes.io/name=vmagent,app.kubernetes.io/instance={name}")).await > 0 {
                up.extend(DEFAULT_JOBS.iter().map(|j| UpSeries { job: j.to_string(), cluster: label.clone(), value: "1".into() }));
            }
        }
        // §13 [FB1]: fluent-bit pods ship the node's container logs of every namespace.
        let Some((_, account)) = ACCOUNTS.iter().find(|(c, _)| c == cluster) else { continue };
        if ready_pods(client, None, "app.kubernetes.io/name=fluent-bit").await > 0 {
            use k8s_openapi::api::core::v1::Namespace;
            let namespaces = kube::Api::<Namespace>::all(client.clone()).list(&Default::default()).await.map(|l| l.items).unwrap_or_default();
            for n in namespaces.iter().filter_map(|n| n.metadata.name.clone()).filter(|n| !n.starts_with("pa-")).take(5) {
                fresh.push((account.to_string(), format!("{{kubernetes.namespace_name=\"{n}\"}}")));
            }
        }
    }
    mock.set(|m| {
        m.up = up;
        for (account, stream) in fresh {
            let lines = m.logs.entry(account).or_default();
            match lines.iter_mut().find(|l| l.stream == stream) {
                Some(l) => l.time = now,
                None => lines.push(LogLine { stream, time: now }),
            }
        }
        for lines in m.logs.values_mut() {
            lines.retain(|l| l.time >= now - time::Duration::hours(1));
        }
    });
}

/// [`observe`] every two seconds, forever.
pub async fn follow(mock: &MockObservability, clients: Vec<(String, kube::Client)>) {
    loop {
        observe(mock, &clients).await;
        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    }
}

/// Serves the mock for the simulation: Grafana's admin from infra's `observability/grafana-admin`
/// Secret (re-read until the healthy scenario has created it).
pub async fn serve(cfg: &super::SimConfig) -> anyhow::Result<()> {
    use k8s_openapi::api::core::v1::Secret;
    let bind: SocketAddr = ([127, 0, 0, 1], OBSERVABILITY_PORT).into();
    let mock = Arc::new(MockObservability::start((String::new(), String::new()), bind).await?);
    let client = super::client(cfg, "infra").await?;
    let mut clients = vec![];
    for (name, _) in ACCOUNTS {
        clients.push((name.to_string(), super::client(cfg, name).await?));
    }
    let follower = mock.clone();
    tokio::spawn(async move { follow(&follower, clients).await });
    loop {
        if let Ok(s) = kube::Api::<Secret>::namespaced(client.clone(), "observability").get("grafana-admin").await {
            let d = s.data.unwrap_or_default();
            let get = |k: &str| d.get(k).map(|v| String::from_utf8_lossy(&v.0).into_owned()).unwrap_or_default();
            let admin = (get("admin-user"), get("admin-password"));
            mock.set(|m| m.admin = admin);
        }
        tokio::time::sleep(std::time::Duration::from_secs(5)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(lines: &[(&str, i64)]) -> MockState {
        let now = time::OffsetDateTime::now_utc();
        MockState {
            admin: ("admin".into(), "pw".into()),
            datasources: vec![],
            up: vec![
                UpSeries { job: "kubelet".into(), cluster: "infra".into(), value: "1".into() },
                UpSeries { job: "kubelet".into(), cluster: "apps".into(), value: "0".into() },
            ],
            logs: BTreeMap::from([("2".to_string(), lines.iter().map(|(s, age)| LogLine { stream: s.to_string(), time: now - time::Duration::minutes(*age) }).collect())]),
            logs_uids: BTreeMap::new(),
        }
    }

    #[test]
    fn instant_queries_honour_label_matchers() {
        let s = state(&[]);
        let q = |query: &str| series_matching(&s, query).iter().map(|x| x.cluster.clone()).collect::<Vec<_>>();
        assert_eq!(q(r#"up{cluster="infra"}"#), vec!["infra"]);
        assert_eq!(q(r#"up{cluster="staging"}"#), Vec::<String>::new());
        assert_eq!(q("up"), vec!["infra", "apps"]);
        assert_eq!(q("node_load1"), Vec::<String>::new());
        let (_, _, body) = route(&s, "GET", "/select/0/prometheus/api/v1/query?query=up%7Bcluster%3D%22apps%22%7D", &BTreeMap::new(), "");
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v.pointer("/data/result/0/metric/cluster"), Some(&json!("apps")));
        assert_eq!(v.pointer("/data/result/1"), None);
    }

    #[test]
    fn logs_queries_honour_the_time_window_and_tenant() {
        let s = state(&[("{a}", 1), ("{b}", 20)]);
        let h = |acct: &str| BTreeMap::from([("accountid".to_string(), acct.to_string())]);
        let (_, _, body) = route(&s, "GET", "/select/logsql/query?query=_time%3A15m&limit=5", &h("2"), "");
        assert_eq!(body.lines().count(), 1, "{body}");
        assert!(body.contains("{a}"));
        let (_, _, body) = route(&s, "GET", "/select/logsql/query?query=_time%3A1h", &h("2"), "");
        assert_eq!(body.lines().count(), 2);
        let (_, _, body) = route(&s, "GET", "/select/logsql/query?query=_time%3A1h", &h("1"), "");
        assert_eq!(body, "", "another tenant sees nothing");
        assert_eq!(time_window("_time:15m"), Some(time::Duration::minutes(15)));
        assert_eq!(decode("a%3Ab+c%zz"), "a:b c%zz");
    }
}
