//! EPIC-6 and EPIC-7 cluster and data-plane checks on the local simulation: every live
//! criterion passes on the healthy platform, and targeted breakages fail exactly the
//! right units, naming object, expected and observed value (never a password).
//!
//! Real peers: PostgreSQL and Redis of the sim (`sim::data`), the kube-apiservers, and the
//! sim's VictoriaMetrics (behind vmauth as vmselect) and VictoriaLogs, which evaluate the
//! checks' queries over what the sim's vmagent and fluent-bit stand-ins wrote from the
//! clusters. Grafana is the stand-in [`Grafana`] (its API shapes, queries forwarded to the
//! engines); this test runs its own, added to the endpoint map of its runs only, so it can
//! change the datasources. Where a step needs a state the clusters cannot produce quickly
//! (an agent stopped five minutes ago; fluent-bit stopped twenty minutes ago), the test
//! takes data away through the engines' own delete APIs and says so.
//! Runs in the shared simulation fixture: lock held; the stopped data service and the
//! healthy scenario are restored at the end, also when an assertion fails.

mod support;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use platform_acceptance::check::Verdict;
use platform_acceptance::runner::{RunConfig, RunReport};
use platform_acceptance::sim::data::{Endpoint, Endpoints};
use serde_json::{json, Value};
use support::ReportExt;
use support::sim::{MANAGER, SimFixture};

const ALL: &str = "6.1.5,6.1.6,6.1.7,6.1.8,6.2.3,6.3.5,6.3.6,6.3.7,6.3.8,7.1.2,7.1.3,7.1.4,7.2.6,7.2.7,7.2.8,7.2.9,7.2.10,7.3.3,7.3.4,7.4.4,7.4.5,7.4.6";

use platform_acceptance::sim::data::Engines;
use platform_acceptance::sim::observability::{GRAFANA, Grafana, GrafanaState};

// ---------------------------------------------------------------------------
// Running selections
// ---------------------------------------------------------------------------

struct Env<'a> {
    fx: &'a SimFixture,
    endpoints: Endpoints,
    grafana: SocketAddr,
}

impl Env<'_> {
    /// The sim's endpoint map, Grafana being this test's stand-in.
    fn endpoints(&self) -> Endpoints {
        let mut e = self.endpoints.clone();
        e.endpoints.insert(0, Endpoint { service: "grafana-stand-in".into(), host: GRAFANA.0.into(), port: GRAFANA.1, addr: self.grafana });
        e
    }

    async fn run(&self, selection: &str, retries: u32) -> RunReport {
        let config = RunConfig { retries, timeout: Duration::from_secs(40), ..RunConfig::default() };
        self.fx.run_resolving(selection, config, self.endpoints()).await
    }

    /// Each story's criteria in a run of its own, so that one story's failure does not block another.
    async fn run_per_story(&self) -> Vec<RunReport> {
        let mut out = vec![];
        for story in ["6.1", "6.2", "6.3", "7.1", "7.2", "7.3", "7.4"] {
            let ids: Vec<&str> = ALL.split(',').filter(|id| id.starts_with(&format!("{story}."))).collect();
            out.push(self.run(&ids.join(","), 0).await);
        }
        out
    }
}

// ---------------------------------------------------------------------------
// Breaking things (test field manager; the healthy scenario takes everything back)
// ---------------------------------------------------------------------------

/// Marks the pods `-l selector` not ready (what the kubelet writes when containers fail).
async fn pods_not_ready(fx: &SimFixture, cluster: &str, ns: &str, selector: &str) {
    set_pods_ready(fx, cluster, ns, selector, false).await
}

/// Sets the pods' Ready and ContainersReady conditions (what the kubelet writes).
async fn set_pods_ready(fx: &SimFixture, cluster: &str, ns: &str, selector: &str, ready: bool) {
    let api: Api<Pod> = Api::namespaced(fx.client(cluster), ns);
    let pods = api.list(&ListParams::default().labels(selector)).await.unwrap();
    assert!(!pods.items.is_empty(), "no pods {ns} -l {selector}");
    for p in pods.items {
        let status = serde_json::to_value(p.status.clone().unwrap_or_default()).unwrap();
        let mut conditions: Vec<Value> = status["conditions"].as_array().cloned().unwrap_or_default();
        conditions.retain(|c| c["type"] != "Ready" && c["type"] != "ContainersReady");
        for t in ["Ready", "ContainersReady"] {
            conditions.push(if ready {
                json!({"type": t, "status": "True", "lastTransitionTime": "2026-01-01T00:00:00Z"})
            } else {
                json!({"type": t, "status": "False", "reason": "ContainersNotReady", "message": "broken by test", "lastTransitionTime": "2026-01-01T00:00:00Z"})
            });
        }
        let mut containers: Vec<Value> = status["containerStatuses"].as_array().cloned().unwrap_or_default();
        for c in containers.iter_mut() {
            c["ready"] = json!(ready);
        }
        let patch = json!({"status": {"conditions": conditions, "containerStatuses": containers}});
        api.patch_status(p.metadata.name.as_deref().unwrap(), &PatchParams { field_manager: Some(MANAGER.into()), ..PatchParams::default() }, &Patch::Merge(&patch)).await.unwrap();
    }
}

/// Series of `query` in the sim's VictoriaMetrics (through vmselect, as the checks ask).
async fn series(query: &str) -> usize {
    let url = reqwest::Url::parse_with_params(&format!("http://{}/select/0/prometheus/api/v1/query", Engines::sim().vmselect), &[("query", query)]).unwrap();
    let v: Value = reqwest::Client::new().get(url).send().await.unwrap().json().await.unwrap();
    assert_eq!(v["status"], "success", "{v}");
    v.pointer("/data/result").and_then(Value::as_array).map_or(0, Vec::len)
}

/// Lines of tenant `account` in the sim's VictoriaLogs matching `query`.
async fn log_lines(account: &str, query: &str) -> usize {
    let url = reqwest::Url::parse_with_params(&format!("http://{}/select/logsql/query", Engines::sim().logs), &[("query", query)]).unwrap();
    let r = reqwest::Client::new().get(url).header("AccountID", account).send().await.unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    r.text().await.unwrap().lines().count()
}

/// Polls `f` every half second until it returns `want` (60 s at most).
async fn wait_for<F, Fut>(what: &str, want: usize, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = usize>,
{
    let start = Instant::now();
    loop {
        let n = f().await;
        if (want == 0) == (n == 0) {
            return;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "{what}: still {n} after 60 s");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn observability_and_database_criteria_on_the_simulation() {
    let t0 = Instant::now();
    let Some(fx) = SimFixture::start("observability_and_database_criteria_on_the_simulation").await else { return };
    eprintln!("[{:.0}s] sim up, healthy applied", t0.elapsed().as_secs_f64());

    let admin = {
        let s = fx.secret("infra", "observability", "grafana-admin").await;
        (s["admin-user"].clone(), s["admin-password"].clone())
    };
    let grafana = Grafana::start(admin.clone(), "127.0.0.1:0".parse().unwrap(), Engines::sim()).await.unwrap();
    let healthy: GrafanaState = grafana.state.lock().unwrap().clone();
    // The sim's agents write what runs: infra's VMAgent its `up` series, both fluent-bits their lines.
    wait_for("up series of infra", 1, || series(r#"up{cluster="infra"}"#)).await;
    for account in ["1", "2"] {
        wait_for(&format!("lines of tenant {account}"), 1, || log_lines(account, "_time:15m")).await;
    }
    let env = Env { fx: &fx, endpoints: fx.endpoints(), grafana: grafana.addr };

    // ---- healthy: every unit passes
    let r = env.run(ALL, 2).await;
    assert_eq!(r.results.len(), 24, "units: {:?}", r.verdicts().keys().collect::<Vec<_>>());
    r.expect_none_failing();
    // Nobody performed a failover here: the simulation does not claim one.
    assert!(r.message("7.2.9 [infra]").starts_with("not provable in the simulation: no PostgreSQL failover"), "{}", r.message("7.2.9 [infra]"));
    assert_eq!(r.with_verdict(Verdict::Pass).len(), 23, "{}", r.summary());
    eprintln!("[{:.0}s] healthy: {} units pass", t0.elapsed().as_secs_f64(), r.results.len());

    // ---- ClusterMesh down as apps sees it: its ServiceImports of `databases` are gone (what
    // Cilium's MCS controller does when the exporting cluster leaves the mesh). apps' CoreDNS
    // stops answering the clusterset names, and only the criteria that use them fail.
    let imports = fx.dynamic("apps", "multicluster.x-k8s.io/v1alpha1", "ServiceImport", Some("databases")).await;
    let saved = imports.list(&ListParams::default()).await.unwrap().items;
    assert!(saved.len() >= 2, "ServiceImports of databases on apps: {}", saved.len());
    for i in &saved {
        imports.delete(i.metadata.name.as_deref().unwrap(), &DeleteParams::default()).await.unwrap();
    }
    fx.wait_dns("apps", "dragonfly.databases.svc.clusterset.local", false).await;
    let rs = env.run_per_story().await;
    let reports = rs.as_slice();
    reports.expect_findings(&["7.2.10 [apps]", "7.3.3 [apps]", "7.3.4 [apps]", "7.4.5 [apps]"]);
    reports.expect_message("7.2.10 [apps]", &["postgres-shared-rw.databases.svc.clusterset.local:5432: expected resolvable, observed postgres-shared-rw.databases.svc.clusterset.local does not resolve on cluster apps (NXDOMAIN from its DNS at 10.247.0.10: no such ServiceImport)"]);
    reports.expect_message("7.4.5 [apps]", &["dragonfly.databases.svc.clusterset.local:6379: expected resolvable", "(CoreDNS of cluster apps in the simulation)"]);
    // The clusterset names of infra's own CoreDNS are untouched.
    assert!(fx.dns("infra", "dragonfly.databases.svc.clusterset.local").await.is_ok_and(|a| !a.is_empty()));
    for i in saved {
        support::sim::recreate(&imports, i).await;
    }
    fx.wait_dns("apps", "dragonfly.databases.svc.clusterset.local", true).await;
    eprintln!("[{:.0}s] mesh down checked", t0.elapsed().as_secs_f64());

    // ---- Grafana without the VictoriaMetrics datasource; then nothing scraped
    grafana.set(|s| s.datasources.retain(|d| d["type"] != "prometheus"));
    let r = env.run("6.1", 0).await;
    r.expect_findings(&["6.1.7 [infra]", "6.1.8 [infra]"]);
    r.expect_message("6.1.7 [infra]", &[
        "http://victoria-metrics-stack-grafana.observability.svc.cluster.local:80/api/datasources datasources (as the admin of Secret observability/grafana-admin (cluster infra))",
        "expected a prometheus/victoriametrics-metrics-datasource datasource with url at vmselect-victoria-metrics-stack.observability",
        "observed [VictoriaLogs (infra) (victoriametrics-logs-datasource",
    ]);
    // infra's vmagent stops; VictoriaMetrics would show its last samples for five more
    // minutes, so the test deletes its series (VictoriaMetrics' delete API): the engine then
    // holds no series for the cluster label, as if nothing had ever been scraped.
    grafana.set(|s| *s = healthy.clone());
    pods_not_ready(&fx, "infra", "observability", "app.kubernetes.io/name=vmagent").await;
    tokio::time::sleep(Duration::from_secs(5)).await; // the agent stand-in's last write is done
    let url = reqwest::Url::parse_with_params(&format!("http://{}/api/v1/admin/tsdb/delete_series", Engines::sim().metrics), &[("match[]", r#"up{cluster="infra"}"#)]).unwrap();
    let r = reqwest::Client::new().post(url).send().await.unwrap();
    assert!(r.status().is_success(), "delete_series: {}", r.status());
    wait_for("up series of infra after the delete", 0, || series(r#"up{cluster="infra"}"#)).await;
    let r = env.run("6.1", 0).await;
    r.expect_findings(&["6.1.6 [infra]", "6.1.8 [infra]"]);
    r.expect_message("6.1.6 [infra]", &[
        "http://vmselect-victoria-metrics-stack.observability.svc.cluster.local:8481/select/0/prometheus/api/v1/query up{cluster=\"infra\"}: expected series with value 1 (scrape targets up), observed no series (nothing scraped)",
    ]);
    r.expect_message("6.1.8 [infra]", &["datasource uid P4169E866C3094E38: up{cluster=\"infra\"}: expected rows (metrics visible), observed no rows"]);
    // The agent back: its samples are the engine's again.
    set_pods_ready(&fx, "infra", "observability", "app.kubernetes.io/name=vmagent", true).await;
    wait_for("up series of infra after the agent is back", 1, || series(r#"up{cluster="infra"}"#)).await;
    // Wrong Grafana admin password in the Secret (rotated in 1Password, synced by the real
    // external-secrets; Grafana keeps its admin): 6.1.7/6.1.8 see 401, and no password is printed.
    const GRAFANA_ADMIN: (&str, &str, &str, &str) = ("infra", "observability", "grafana-admin", "admin-password");
    let kept = fx.rotate_in_1password(("grafana", "admin_password"), "wrong-password-by-test", GRAFANA_ADMIN).await;
    let r = env.run("6.1", 0).await;
    r.expect_findings(&["6.1.7 [infra]", "6.1.8 [infra]"]);
    r.expect_message("6.1.7 [infra]", &["/api/datasources: expected HTTP 200, observed HTTP 401"]);
    assert!(!r.text().contains("wrong-password-by-test") && !r.text().contains(&admin.1));
    fx.rotate_in_1password(("grafana", "admin_password"), &kept, GRAFANA_ADMIN).await;
    eprintln!("[{:.0}s] grafana/vmselect breakages checked", t0.elapsed().as_secs_f64());

    // ---- 7.2.9 on states the test constructs: the simulation's CloudNativePG stand-in
    // reports the first primary on the first timeline (no failover happened). A new
    // timeline alone (what a bootstrap.recovery restore leaves) is still no proof; a
    // promoted standby (primary other than <cluster>-1) is.
    let pg = |status| fx.patch_status("infra", "postgresql.cnpg.io/v1", "Cluster", Some("databases"), "postgres-shared", status);
    fx.run_constructed("7.2.9", None)
        .await
        .expect_failing(&["7.2.9 [infra]"])
        .expect_message("7.2.9 [infra]", &["Cluster databases/postgres-shared (postgresql.cnpg.io/v1) status.currentPrimary: expected a promoted standby", "observed \"postgres-shared-1\" (the first instance), timeline 1, no such event"]);
    pg(json!({"timelineID": 2})).await;
    fx.run_constructed("7.2.9", None)
        .await
        .expect_failing(&["7.2.9 [infra]"])
        .expect_message("7.2.9 [infra]", &["timeline 2, no such event — a new timeline without a promoted standby is no proof"]);
    pg(json!({"currentPrimary": "postgres-shared-2", "targetPrimary": "postgres-shared-2"})).await;
    fx.run_constructed("7.2.9", None).await.expect_all_pass();
    pg(json!({"timelineID": 1, "currentPrimary": "postgres-shared-1", "targetPrimary": "postgres-shared-1"})).await;

    // ---- one breakage per criterion, all at once; each story runs on its own
    fx.patch_status("infra", "operator.victoriametrics.com/v1beta1", "VMAgent", Some("observability"), "victoria-metrics-stack", json!({"updateStatus": "failed", "reason": "cannot create scrape config"})).await;
    pods_not_ready(&fx, "infra", "observability", "app.kubernetes.io/name=victoria-metrics-auth").await;
    pods_not_ready(&fx, "apps", "observability", "app.kubernetes.io/name=fluent-bit").await;
    pods_not_ready(&fx, "infra", "cnpg-system", "app.kubernetes.io/name=cloudnative-pg").await;
    fx.patch_status("infra", "dragonflydb.io/v1alpha1", "Dragonfly", Some("databases"), "dragonfly", json!({"phase": "Configuring"})).await;
    fx.set_secret_key("infra", "databases", "postgres-shared-app", "password", "wrong-password-by-test").await;
    const HARBOR_DB: (&str, &str, &str, &str) = ("apps", "harbor", "harbor-db", "password");
    let harbor_db = fx.rotate_in_1password(("postgres-harbor", "password"), "wrong-password-by-test", HARBOR_DB).await;
    fx.wait_not_ready("apps", "DaemonSet", "observability", "fluent-bit").await;
    // fluent-bit on apps is down: nothing new reaches its tenant. Constructed: it stopped
    // twenty minutes ago. The test deletes the tenant's lines (VictoriaLogs' delete API) and
    // ships the backlog a fluent-bit would have flushed then, stamped twenty minutes ago.
    tokio::time::sleep(Duration::from_secs(5)).await; // the fluent-bit stand-in's last write is done
    let logs = Engines::sim().logs;
    let url = reqwest::Url::parse_with_params(&format!("http://{logs}/delete/run_task"), &[("filter", "*")]).unwrap();
    let r = reqwest::Client::new().post(url).header("AccountID", "2").send().await.unwrap();
    assert!(r.status().is_success(), "delete/run_task: {}", r.status());
    wait_for("lines of tenant 2 after the delete", 0, || log_lines("2", "*")).await;
    let then = time::OffsetDateTime::now_utc() - time::Duration::minutes(20);
    let backlog = platform_acceptance::sim::observability::log_lines("apps", &["observability", "databases"], then);
    let url = format!("http://{logs}{}", platform_acceptance::sim::observability::FLUENT_BIT_URI);
    let r = reqwest::Client::new().post(url).header("AccountID", "2").body(backlog).send().await.unwrap();
    assert!(r.status().is_success(), "insert: {}", r.status());
    wait_for("the backlog of tenant 2", 1, || log_lines("2", "_time:1h")).await;
    assert_eq!(log_lines("2", "_time:15m").await, 0, "nothing of tenant 2 inside the window");
    fx.wait_not_ready("infra", "Deployment", "cnpg-system", "cloudnative-pg").await;
    // A stopped service: the Redis behind Dragonfly.
    fx.stop_data_service("redis").await;

    let rs = env.run_per_story().await;
    let reports = rs.as_slice();
    let findings = [
        "6.1.5 [infra]", "6.2.3 [infra]", "6.3.6 [apps]", "6.3.7 [apps]", "6.3.8 [apps]", "7.1.3 [infra]", "7.2.8 [infra]",
        "7.3.3 [apps]", "7.3.4 [apps]", "7.4.4 [infra]",
    ];
    // The stopped Redis answers nothing: an Error (not evaluated), not a finding.
    let silent = ["7.4.5 [apps]", "7.4.6 [infra]"];
    reports.expect_failing(&[&findings[..], &silent[..]].concat());
    for unit in findings {
        assert_eq!(reports.verdict(unit), Verdict::Fail, "{unit}: {}", reports.message(unit));
    }
    for unit in silent {
        assert_eq!(reports.verdict(unit), Verdict::Error, "{unit}: {}", reports.message(unit));
    }
    reports.expect_message("6.1.5 [infra]", &["VMAgent observability/victoria-metrics-stack (operator.victoriametrics.com/v1beta1) status.updateStatus: expected operational, observed \"failed\" (cannot create scrape config)"]);
    reports.expect_message("6.2.3 [infra]", &["(cluster infra): expected Ready=True, observed not ready (phase Running)", "Pod observability/victorialogs-vmauth-"]);
    reports.expect_message("6.3.6 [apps]", &["DaemonSet observability/fluent-bit (cluster apps): expected 3 ready (> 0), observed 0/3 ready"]);
    reports.expect_message("6.3.7 [apps]", &["http://victoria-logs-server.observability.svc.cluster.local:9428/select/logsql/query _time:15m as AccountID 2 (tenant apps of cluster apps): expected log lines from the last 15m, observed none"]);
    reports.expect_message("6.3.8 [apps]", &["datasource uid victorialogs-apps (tenant apps of cluster apps): _time:15m: expected log rows (logs visible), observed no rows"]);
    reports.expect_message("7.1.3 [infra]", &["Deployment cnpg-system/cloudnative-pg (cluster infra): expected 1 ready (> 0), observed 0/1 ready"]);
    reports.expect_message("7.2.8 [infra]", &[
        "postgres-shared-rw.databases.svc.cluster.local:5432 as app to app (credentials of Secret databases/postgres-shared-app (cluster infra)): expected connection and SELECT 1, observed 28P01 password authentication failed for user \"app\"",
    ]);
    for unit in ["7.3.3 [apps]", "7.3.4 [apps]"] {
        reports.expect_message(unit, &["postgres-shared-rw.databases.svc.clusterset.local:5432 as harbor to harbor (credentials of Secret harbor/harbor-db (cluster apps, from ExternalSecret harbor/harbor-db)): expected connection and SELECT 1, observed 28P01 password authentication failed for user \"harbor\""]);
    }
    reports.expect_message("7.4.4 [infra]", &["Dragonfly databases/dragonfly (dragonflydb.io/v1alpha1) status.phase: expected Ready (operator >= 1.2; \"ready\" before), observed \"Configuring\""]);
    reports.expect_message("7.4.5 [apps]", &["dragonfly.databases.svc.clusterset.local:6379 (password from Secret gitlab/gitlab-redis (cluster apps, from ExternalSecret gitlab/gitlab-redis)): ", "; not evaluated"]);
    reports.expect_message("7.4.6 [infra]", &["dragonfly.databases.svc.cluster.local:6379 (password from Secret databases/dragonfly-auth (cluster infra)): ", "; not evaluated"]);
    let text = reports.text();
    assert!(!text.contains("wrong-password-by-test"), "a password leaked:\n{text}");
    fx.rotate_in_1password(("postgres-harbor", "password"), &harbor_db, HARBOR_DB).await;
    eprintln!("[{:.0}s] per-criterion breakages checked", t0.elapsed().as_secs_f64());

    // ---- a wrong Dragonfly password (Redis back up): AUTH fails, named, password not shown
    fx.start_data_services().await;
    const DRAGONFLY_AUTH: (&str, &str, &str, &str) = ("infra", "databases", "dragonfly-auth", "password");
    let dragonfly = fx.rotate_in_1password(("dragonfly", "password"), "wrong-password-by-test", DRAGONFLY_AUTH).await;
    let r = env.run("7.4.6", 0).await;
    fx.rotate_in_1password(("dragonfly", "password"), &dragonfly, DRAGONFLY_AUTH).await;
    r.expect_findings(&["7.4.6 [infra]"]);
    r.expect_message("7.4.6 [infra]", &["(password from Secret databases/dragonfly-auth (cluster infra))", "observed Password authentication failed"]);
    assert!(!r.text().contains("wrong-password-by-test"));

    // ---- pg-replica-lost: only "Cluster healthy and ready" of the database criteria fails
    fx.scenario("pg-replica-lost").await;
    let rs = env.run_per_story().await;
    let reports: Vec<&RunReport> = rs.iter().filter(|r| r.results.iter().any(|x| x.id.starts_with('7'))).collect();
    reports.expect_findings(&["7.2.7 [infra]"]);
    reports.expect_message("7.2.7 [infra]", &[
        "Cluster databases/postgres-shared (postgresql.cnpg.io/v1) status.phase: expected \"Cluster in healthy state\", observed \"Waiting for the instances to become active\"",
        "status.readyInstances: expected 3 (spec.instances), observed 2, failed [\"postgres-shared-3\"]",
        "Ready=True, observed Ready=False (ClusterIsNotReady",
    ]);

    fx.restore().await;
    grafana.set(|s| *s = healthy.clone());
    wait_for("lines of tenant 2 after the restore", 1, || log_lines("2", "_time:15m")).await;
    let r = env.run(ALL, 2).await;
    r.expect_all_pass();
    let seen: BTreeSet<&str> = r.results.iter().map(|x| x.id.as_str()).collect();
    assert_eq!(seen.len(), ALL.split(',').count());
    eprintln!("[{:.0}s] healthy restored; done", t0.elapsed().as_secs_f64());
}
