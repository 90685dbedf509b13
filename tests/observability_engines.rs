//! The simulation's observability path without the clusters: the real VictoriaMetrics,
//! vmauth and VictoriaLogs (`$PA_CACHE/bin`, `sim/build.sh`) started as the simulation
//! starts them, on free loopback ports of this test, fed by the agent stand-ins' writer
//! ([`ship`]) and queried as the checks query them, directly and through the Grafana
//! stand-in. What is asserted is the engines' own evaluation: label matchers, tenants,
//! the `_time` window, and their error messages.

use std::net::{SocketAddr, TcpListener};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use platform_acceptance::sim::SimConfig;
use platform_acceptance::sim::data::{Engines, victoria_commands, vmauth_config};
use platform_acceptance::sim::observability::{FLUENT_BIT_URI, Grafana, Seen, log_lines, ship};
use serde_json::{Value, json};

/// The three engines of this test; killed on drop.
struct Running {
    engines: Engines,
    children: Vec<Child>,
    _dir: tempfile::TempDir,
}

impl Drop for Running {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn free_port() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap()
}

async fn start() -> Running {
    let bin = SimConfig::from_env().cache_dir.join("bin");
    let engines = Engines { metrics: free_port(), vmselect: free_port(), logs: free_port() };
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("vmauth.yml"), vmauth_config(engines.metrics)).unwrap();
    let commands = victoria_commands(&bin, &engines, dir.path()).unwrap_or_else(|e| panic!("{e:#} (`make test` builds them)"));
    let mut children = vec![];
    for (_, mut cmd, _) in commands {
        children.push(cmd.current_dir(dir.path()).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap());
    }
    let running = Running { engines, children, _dir: dir };
    let http = reqwest::Client::new();
    for addr in [engines.metrics, engines.vmselect, engines.logs] {
        let start = Instant::now();
        while !http.get(format!("http://{addr}/health")).send().await.is_ok_and(|r| r.status().is_success()) {
            assert!(start.elapsed() < Duration::from_secs(30), "{addr} did not answer /health in 30 s");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    running
}

async fn get_json(url: reqwest::Url, account: Option<&str>) -> (u16, String) {
    let mut req = reqwest::Client::new().get(url);
    if let Some(a) = account {
        req = req.header("AccountID", a);
    }
    let r = req.send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

/// Result series of an instant query through vmselect's cluster URL layout.
async fn vmselect(e: &Engines, query: &str) -> (u16, Value) {
    let url = reqwest::Url::parse_with_params(&format!("http://{}/select/0/prometheus/api/v1/query", e.vmselect), &[("query", query)]).unwrap();
    let (status, body) = get_json(url, None).await;
    (status, serde_json::from_str(&body).unwrap_or(Value::String(body)))
}

async fn logsql(e: &Engines, account: &str, query: &str) -> usize {
    let url = reqwest::Url::parse_with_params(&format!("http://{}/select/logsql/query", e.logs), &[("query", query)]).unwrap();
    let (status, body) = get_json(url, Some(account)).await;
    assert_eq!(status, 200, "{body}");
    body.lines().count()
}

/// Polls until `f` is true (the engines make writes searchable within about a second).
async fn eventually<F, Fut>(what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while !f().await {
        assert!(start.elapsed() < Duration::from_secs(20), "{what}: not within 20 s");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn engines_evaluate_what_the_agent_stand_ins_write() {
    let r = start().await;
    let e = r.engines;
    let http = reqwest::Client::new();
    let now = time::OffsetDateTime::now_utc();
    let seen = Seen {
        agents: vec!["infra".into()],
        streams: vec![("1".into(), "infra".into(), "flux-system".into()), ("1".into(), "infra".into(), "databases".into()), ("2".into(), "apps".into(), "harbor".into())],
    };
    ship(&http, &e, &seen, now).await.unwrap();

    // Metrics: the label matcher decides; vmselect's layout reaches the single node.
    eventually("up{cluster=\"infra\"} visible", || async { vmselect(&e, r#"up{cluster="infra"}"#).await.1.pointer("/data/result").and_then(Value::as_array).is_some_and(|a| a.len() == 3) }).await;
    let (_, none) = vmselect(&e, r#"up{cluster="staging"}"#).await;
    assert_eq!(none.pointer("/data/result"), Some(&json!([])), "no series for a cluster label nobody writes");
    // Another tenant's path has no route in front of the single node.
    let (status, _) = get_json(format!("http://{}/select/7/prometheus/api/v1/query?query=up", e.vmselect).parse().unwrap(), None).await;
    assert_ne!(status, 200, "tenant 7 is not served");
    // The engine's own error for a query it cannot parse.
    let (status, bad) = vmselect(&e, "up{").await;
    assert_eq!(status, 400, "{bad}");
    assert!(bad["error"].as_str().is_some_and(|m| m.contains("unexpected token")), "{bad}");

    // Logs: tenants are separate, and the `_time` window is the engine's.
    eventually("tenant 1's lines", || async { logsql(&e, "1", "_time:15m").await == 2 }).await;
    assert_eq!(logsql(&e, "2", "_time:15m").await, 1);
    assert_eq!(logsql(&e, "1", "_time:15m kubernetes_namespace_name:databases").await, 1, "the record's fields are the engine's to filter");
    assert_eq!(logsql(&e, "3", "*").await, 0, "a tenant nobody ships to");
    let then = now - time::Duration::minutes(20);
    let backlog = log_lines("staging", &["kube-system"], then);
    let url = format!("http://{}{FLUENT_BIT_URI}", e.logs);
    assert!(http.post(url).header("AccountID", "3").body(backlog).send().await.unwrap().status().is_success());
    eventually("tenant 3's backlog", || async { logsql(&e, "3", "_time:1h").await == 1 }).await;
    assert_eq!(logsql(&e, "3", "_time:15m").await, 0, "a line twenty minutes old is outside _time:15m");

    // Grafana forwards to the engines behind its datasources.
    let g = Grafana::start(("admin".into(), "pw".into()), "127.0.0.1:0".parse().unwrap(), e).await.unwrap();
    let ds_query = |uid: &str, expr: &str| {
        let body = json!({"queries": [{"refId": "A", "datasource": {"uid": uid}, "expr": expr, "maxLines": 5}]});
        let req = http.post(format!("http://{}/api/ds/query", g.addr)).basic_auth("admin", Some("pw")).json(&body);
        async move {
            let r = req.send().await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    let rows = |v: &Value| v.pointer("/results/A/frames").and_then(Value::as_array).into_iter().flatten().map(|f| f.pointer("/data/values/0").and_then(Value::as_array).map_or(0, Vec::len)).sum::<usize>();
    let (status, v) = ds_query("P4169E866C3094E38", r#"up{cluster="infra"}"#).await;
    assert_eq!((status, rows(&v)), (200, 3), "{v}");
    let (_, v) = ds_query("P4169E866C3094E38", r#"up{cluster="staging"}"#).await;
    assert_eq!(rows(&v), 0, "{v}");
    let (status, v) = ds_query("P4169E866C3094E38", "up{").await;
    assert_eq!(status, 400);
    assert!(v.pointer("/results/A/error").and_then(Value::as_str).is_some_and(|m| m.contains("unexpected token")), "the engine's message: {v}");
    let (_, v) = ds_query("victorialogs-infra", "_time:15m").await;
    assert_eq!(rows(&v), 2, "tenant 1 through its datasource: {v}");
    let (_, v) = ds_query("victorialogs-apps", "_time:15m").await;
    assert_eq!(rows(&v), 1, "tenant 2 through its datasource: {v}");
    let health = http.get(format!("http://{}/api/datasources/uid/victorialogs-apps/health", g.addr)).basic_auth("admin", Some("pw")).send().await.unwrap();
    assert_eq!(health.status(), 200);

    // The engine stopped: Grafana's datasource health and queries name it.
    drop(r);
    let (status, v) = ds_query("victorialogs-apps", "_time:15m").await;
    assert_eq!(status, 400);
    assert!(v.pointer("/results/A/error").and_then(Value::as_str).is_some_and(|m| m.contains("VictoriaLogs")), "{v}");
    let health: Value = http.get(format!("http://{}/api/datasources/uid/P4169E866C3094E38/health", g.addr)).basic_auth("admin", Some("pw")).send().await.unwrap().json().await.unwrap();
    assert_eq!(health["status"], "ERROR", "{health}");
}
