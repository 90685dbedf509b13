//! A named MOCK of Grafana, vmselect and VictoriaLogs for the local simulation: no
//! binary of theirs can run here. One loopback HTTP server answers their documented
//! response shapes: Grafana `/api/health`, `/api/datasources`, `/api/ds/query`
//! (docs/reference/components.md §11.4 [GR2]; Grafana HTTP API docs), vmselect's Prometheus
//! `/select/0/prometheus/api/v1/query` (§11.3), VictoriaLogs `/select/logsql/query`
//! with `AccountID` (§12 [VL3][VL4]). It runs inside the sim's stand-in process
//! (`sim provisioner`) on [`OBSERVABILITY_PORT`]; the endpoint map routes the three
//! in-cluster service names here. Grafana's admin is the sim's `grafana-admin` Secret.

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

#[derive(Clone)]
pub struct MockState {
    /// Grafana admin (user, password), from the sim's grafana-admin Secret.
    pub admin: (String, String),
    pub datasources: Vec<Value>,
    /// vmselect `up` series: (job, value).
    pub up: Vec<(String, String)>,
    /// VictoriaLogs lines per AccountID.
    pub logs: BTreeMap<String, Vec<Value>>,
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
        let line = |stream: &str, msg: &str| json!({"_msg": msg, "_stream": stream, "_time": "2026-01-01T00:00:00Z"});
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
            up: vec![("kubelet".into(), "1".into()), ("apiserver".into(), "1".into()), ("node-exporter".into(), "1".into())],
            logs: BTreeMap::from([
                ("1".to_string(), vec![line("{kubernetes.namespace_name=\"kube-system\"}", "infra log line")]),
                ("2".to_string(), vec![line("{kubernetes.namespace_name=\"gitlab\"}", "apps log line")]),
            ]),
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

fn route(s: &MockState, method: &str, path: &str, headers: &BTreeMap<String, String>, body: &str) -> (u16, &'static str, String) {
    use base64::Engine;
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
            if !s.datasources.iter().any(|d| d["uid"] == uid) {
                return (404, "application/json", json!({"message": "Data source not found"}).to_string());
            }
            let rows = match s.logs_uids.get(uid) {
                Some(account) => s.logs.get(account).map(Vec::len).unwrap_or(0),
                None => s.up.iter().filter(|(_, v)| v == "1").count(),
            };
            (200, "application/json", frames(rows).to_string())
        }
        (_, "/api/datasources") | (_, "/api/ds/query") => unauthorized,
        // vmselect (Prometheus querying API).
        ("GET", "/select/0/prometheus/api/v1/query") => {
            let result: Vec<Value> =
                s.up.iter().map(|(job, v)| json!({"metric": {"__name__": "up", "job": job, "cluster": "infra"}, "value": [1767225600.0, v]})).collect();
            (200, "application/json", json!({"status": "success", "data": {"resultType": "vector", "result": result}}).to_string())
        }
        // VictoriaLogs: JSON lines of the AccountID's tenant (default 0).
        ("GET" | "POST", "/select/logsql/query") => {
            let account = headers.get("accountid").cloned().unwrap_or_else(|| "0".into());
            let lines: Vec<String> = s.logs.get(&account).into_iter().flatten().map(Value::to_string).collect();
            (200, "application/stream+json", lines.iter().map(|l| format!("{l}\n")).collect())
        }
        _ => (404, "text/plain", "404 page not found".into()),
    }
}


/// Serves the mock for the simulation: Grafana's admin from infra's `observability/grafana-admin`
/// Secret (re-read until the healthy scenario has created it).
pub async fn serve(cfg: &super::SimConfig) -> anyhow::Result<()> {
    use k8s_openapi::api::core::v1::Secret;
    let bind: SocketAddr = ([127, 0, 0, 1], OBSERVABILITY_PORT).into();
    let mock = MockObservability::start((String::new(), String::new()), bind).await?;
    let client = super::client(cfg, "infra").await?;
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
