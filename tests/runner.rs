//! Runner semantics with synthetic checks: ordering by the story graph, blocking,
//! timeouts, retries, phases, cancellation with cleanup.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use platform_acceptance::check::{Check, Ctx, Outcome, Phase, Target, Verdict};
use platform_acceptance::plan::Unit;
use platform_acceptance::runner::{Environment, RunConfig, RunReport, Runner};

/// A target whose client points at a closed port: checks here never call it.
fn offline_targets() -> BTreeMap<String, Target> {
    let config = kube::Config::new("http://127.0.0.1:9".parse().unwrap());
    let client = kube::Client::try_from(config).unwrap();
    let peers = Arc::new(BTreeMap::from([("infra".to_string(), client.clone())]));
    BTreeMap::from([("infra".to_string(), Target { client, context: "infra".into(), peers, resolver: Arc::new(platform_acceptance::cluster::resolve::SystemDns), provenance: Arc::new(platform_acceptance::cluster::access::RealClusters), writable: false })])
}

fn unit(id: &str, check: Check) -> Unit {
    Unit { id: id.into(), story: check.story.into(), cluster: "infra".into(), text: check.criterion.into(), layer: Some(check.layer), check: Some(check) }
}

fn config() -> RunConfig {
    RunConfig { concurrency: 4, timeout: Duration::from_secs(5), retries: 2, backoff: Duration::from_millis(10), phase: Phase::Operate, ..RunConfig::default() }
}

async fn run(units: Vec<Unit>, deps: &[(&str, &str)], config: RunConfig) -> RunReport {
    let env = Environment { repo: None, targets: offline_targets() };
    let deps = deps.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect();
    let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
    Runner::new(config, env, deps).run(units, tx).await
}

fn outcome_of<'a>(r: &'a RunReport, id: &str) -> &'a Outcome {
    &r.results.iter().find(|x| x.id == id).unwrap_or_else(|| panic!("no result {id}")).outcome
}

#[tokio::test]
async fn dependents_of_a_failed_story_are_skipped_as_blocked() {
    let failing = Check::cluster("1.3", "a", "fails", |_ctx: Ctx| async { Outcome::fail("Node/x", "Ready", "NotReady") });
    let dependent = Check::cluster("2.1", "b", "would_pass", |_ctx: Ctx| async { Outcome::pass("ok") });
    let transitive = Check::cluster("2.3", "c", "would_pass_too", |_ctx: Ctx| async { Outcome::pass("ok") });
    let unrelated = Check::cluster("7.1", "d", "passes", |_ctx: Ctx| async { Outcome::pass("ok") });
    let r = run(
        vec![unit("1.3.1", failing), unit("2.1.1", dependent), unit("2.3.1", transitive), unit("7.1.1", unrelated)],
        &[("1.3", "2.1"), ("2.1", "2.3")],
        config(),
    )
    .await;
    assert_eq!(outcome_of(&r, "1.3.1").verdict(), Verdict::Fail);
    assert_eq!(outcome_of(&r, "2.1.1"), &Outcome::skip("blocked by 1.3"));
    assert_eq!(outcome_of(&r, "2.3.1").verdict(), Verdict::Skip);
    assert!(outcome_of(&r, "2.3.1").summary().starts_with("blocked by"));
    assert_eq!(outcome_of(&r, "7.1.1").verdict(), Verdict::Pass);
    assert!(!r.summary.success());
}

#[tokio::test]
async fn without_blocking_every_dependent_is_evaluated() {
    let failing = Check::cluster("1.3", "a", "fails", |_ctx: Ctx| async { Outcome::fail("Node/x", "Ready", "NotReady") });
    let dependent = Check::cluster("2.1", "b", "would_pass", |_ctx: Ctx| async { Outcome::pass("ok") });
    let failing_too = Check::cluster("2.3", "c", "fails_too", |_ctx: Ctx| async { Outcome::fail("Service/y", "ready", "no endpoints") });
    let r = run(
        vec![unit("1.3.1", failing), unit("2.1.1", dependent), unit("2.3.1", failing_too)],
        &[("1.3", "2.1"), ("2.1", "2.3")],
        RunConfig { block: false, ..config() },
    )
    .await;
    assert_eq!(outcome_of(&r, "1.3.1").verdict(), Verdict::Fail);
    assert_eq!(outcome_of(&r, "2.1.1").verdict(), Verdict::Pass);
    assert_eq!(outcome_of(&r, "2.3.1").verdict(), Verdict::Fail);
    assert!(r.results.iter().all(|x| x.blocked_by.is_none()));
}

#[tokio::test]
async fn repository_checks_are_never_blocked_by_live_failures() {
    let failing = Check::cluster("1.3", "a", "fails", |_ctx: Ctx| async { Outcome::fail("x", "y", "z") });
    let repo_check = Check::repo("2.1", "b", "repo", |_ctx: Ctx| async { Outcome::pass("file present") });
    let r = run(vec![unit("1.3.1", failing), unit("2.1.1", repo_check)], &[("1.3", "2.1")], config()).await;
    // No repository given: the repo check is skipped for that reason, not for blocking.
    assert_eq!(outcome_of(&r, "2.1.1"), &Outcome::skip("no GitOps repository given (--repo PATH)"));
}

#[tokio::test]
async fn eventually_consistent_state_is_retried_with_backoff() {
    let calls = Arc::new(AtomicU32::new(0));
    let c = calls.clone();
    let flaky = Check::cluster("7.2", "flaky", "flaky", move |_ctx: Ctx| {
        let c = c.clone();
        async move { if c.fetch_add(1, Ordering::SeqCst) < 2 { Outcome::fail("Cluster/pg", "ready", "starting") } else { Outcome::pass("ready") } }
    });
    let r = run(vec![unit("7.2.7", flaky)], &[], config()).await;
    assert_eq!(outcome_of(&r, "7.2.7").verdict(), Verdict::Pass);
    assert_eq!(r.results[0].attempts, 3);
    assert_eq!(calls.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn a_check_that_hangs_times_out_as_an_error() {
    let hang = Check::cluster("7.2", "hang", "hang", |_ctx: Ctx| async {
        tokio::time::sleep(Duration::from_secs(30)).await;
        Outcome::pass("never")
    });
    let r = run(vec![unit("7.2.1", hang)], &[], RunConfig { timeout: Duration::from_millis(200), ..config() }).await;
    assert_eq!(outcome_of(&r, "7.2.1").verdict(), Verdict::Error);
    assert!(outcome_of(&r, "7.2.1").summary().contains("timed out"));
}

#[tokio::test]
async fn a_retry_cut_short_by_the_deadline_keeps_the_failure_before_it() {
    let calls = Arc::new(AtomicU32::new(0));
    let c = calls.clone();
    // First attempt fails after a long wait (a round trip), the retry would hang.
    let slow = Check::cluster("7.2", "slow", "slow", move |_ctx: Ctx| {
        let first = c.fetch_add(1, Ordering::SeqCst) == 0;
        async move {
            tokio::time::sleep(Duration::from_millis(if first { 150 } else { 10_000 })).await;
            Outcome::fail("Certificate ns/pa-test-cert", "Ready=True within 30s", "Ready=False (Pending)")
        }
    });
    let r = run(vec![unit("7.2.1", slow)], &[], RunConfig { timeout: Duration::from_millis(400), backoff: Duration::from_millis(10), ..config() }).await;
    assert_eq!(outcome_of(&r, "7.2.1"), &Outcome::fail("Certificate ns/pa-test-cert", "Ready=True within 30s", "Ready=False (Pending)"));
    assert_eq!(r.results[0].attempts, 1, "the cut retry is not counted");
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn phase_bound_checks_are_skipped_outside_their_phase() {
    let bootstrap = Check::cluster("1.3", "All 6 nodes in NotReady state", "not_ready", |_ctx: Ctx| async { Outcome::pass("x") }).in_phase(Phase::Bootstrap);
    let r = run(vec![unit("1.3.7", bootstrap.clone())], &[], config()).await;
    assert_eq!(outcome_of(&r, "1.3.7"), &Outcome::skip("evaluated only in the bootstrap phase (run with --phase bootstrap)"));
    let r = run(vec![unit("1.3.7", bootstrap)], &[], RunConfig { phase: Phase::Bootstrap, ..config() }).await;
    assert_eq!(outcome_of(&r, "1.3.7").verdict(), Verdict::Pass);
}

#[tokio::test]
async fn cancellation_stops_checks_and_still_runs_their_cleanups() {
    let cleaned = Arc::new(AtomicU32::new(0));
    let c = cleaned.clone();
    let long = Check::cluster("7.2", "long", "long", move |ctx: Ctx| {
        let c = c.clone();
        async move {
            ctx.cleanup.defer(async move {
                c.fetch_add(1, Ordering::SeqCst);
            });
            tokio::time::sleep(Duration::from_secs(30)).await;
            Outcome::pass("never")
        }
    });
    let env = Environment { repo: None, targets: offline_targets() };
    let runner = Runner::new(config(), env, vec![]);
    let cancel = runner.cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        cancel.cancel();
    });
    let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
    let r = runner.run(vec![unit("7.2.1", long)], tx).await;
    assert_eq!(outcome_of(&r, "7.2.1"), &Outcome::skip("interrupted while running"));
    assert_eq!(cleaned.load(Ordering::SeqCst), 1, "cleanup must run on interruption");
    assert!(r.summary.interrupted);
    assert!(!r.summary.success());
}

#[tokio::test]
async fn unmapped_and_manual_criteria_are_skips_not_passes() {
    let manual = Check::manual("dod", "Peer reviewed (if applicable)", "a person reviews the change");
    let unmapped = Unit { id: "9.9.9".into(), story: "9.9".into(), cluster: "infra".into(), text: "x".into(), layer: None, check: None };
    let r = run(vec![unit("dod.9", manual), unmapped], &[], config()).await;
    assert_eq!(outcome_of(&r, "dod.9"), &Outcome::skip("manual: a person reviews the change"));
    assert!(outcome_of(&r, "9.9.9").summary().starts_with("unmapped"));
    assert_eq!((r.summary.passed, r.summary.skipped, r.summary.unmapped, r.summary.manual), (0, 2, 1, 1));
    assert!(r.summary.success());
}

/// Says every API read is a stand-in named after its resource, and 9.9.9 cannot be proven.
struct Scripted;

impl platform_acceptance::cluster::access::Provenance for Scripted {
    fn basis(&self, accesses: &[platform_acceptance::cluster::access::Access]) -> platform_acceptance::cluster::access::Basis {
        use platform_acceptance::cluster::access::{Access, Basis, BasisKind};
        let names: Vec<String> = accesses.iter().map(|a| match a { Access::Api { resource, .. } => resource.clone(), Access::Service { host, .. } => host.clone() }).collect();
        Basis::weakest(names.iter().map(|n| (BasisKind::StandIn, Some(n.as_str()))))
    }

    fn not_provable(&self) -> BTreeMap<String, String> {
        BTreeMap::from([("9.9.9".to_string(), "nothing here can show it".to_string())])
    }

    fn describe(&self) -> &str {
        "a scripted target"
    }
}

#[tokio::test]
async fn live_verdicts_carry_what_they_touched_and_its_basis() {
    use k8s_openapi::api::core::v1::Node;
    let lists_nodes = Check::cluster("1.3", "nodes", "lists_nodes", |ctx: Ctx| async move {
        let client = ctx.kube().unwrap().clone();
        let _ = kube::Api::<Node>::all(client).list(&Default::default()).await;
        let _ = ctx.resolve("pg.db.svc.cluster.local", 5432).await;
        Outcome::pass("looked")
    });
    let unprovable = Check::cluster("9.9", "x", "never_runs", |_ctx: Ctx| async { Outcome::pass("should not run") });
    let repo = Check::repo("2.1", "b", "repo", |_ctx: Ctx| async { Outcome::pass("file present") });

    // Real clusters: what was touched is listed, and the basis is real.
    let r = run(vec![unit("1.3.1", lists_nodes.clone()), unit("2.1.1", repo.clone())], &[], config()).await;
    let live = r.results.iter().find(|x| x.id == "1.3.1").unwrap();
    assert_eq!(live.access, vec!["list nodes on infra".to_string(), "connect pg.db.svc.cluster.local:5432".to_string()]);
    assert_eq!(live.basis.as_ref().unwrap().to_string(), "real");
    assert_eq!(r.summary.basis.real, 1);
    assert!(r.results.iter().find(|x| x.id == "2.1.1").unwrap().basis.is_none(), "repository units touch no cluster");

    // A target that says what it stands in for: the verdict names it; unprovable criteria are skipped.
    let mut targets = offline_targets();
    targets.get_mut("infra").unwrap().provenance = Arc::new(Scripted);
    let env = Environment { repo: None, targets };
    let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
    let r = Runner::new(config(), env, vec![]).run(vec![unit("1.3.1", lists_nodes), unit("9.9.9", unprovable)], tx).await;
    let live = r.results.iter().find(|x| x.id == "1.3.1").unwrap();
    assert_eq!(live.basis.as_ref().unwrap().to_string(), "stand-in (nodes, pg.db.svc.cluster.local)");
    assert_eq!(r.summary.basis.stand_in, 1);
    assert_eq!(outcome_of(&r, "9.9.9"), &Outcome::skip("not provable in a scripted target: nothing here can show it"));
    let json = serde_json::to_value(&r).unwrap();
    assert_eq!(json["results"][0]["basis"]["kind"], "stand-in");
}

#[tokio::test]
async fn nothing_is_written_unless_the_target_allows_writes() {
    use k8s_openapi::api::core::v1::Namespace;
    // Declared writer: skipped, never run.
    let declared = Check::data_plane("4.2", "Test PVC can be created and bound", "pvc_round_trip", |_ctx: Ctx| async { Outcome::pass("should not run") }).writes();
    // Undeclared write: refused before it leaves the process (the target's port is closed,
    // so a request that left would be "unreachable", not "forbidden").
    let sneaky = Check::cluster("1.3", "a read", "writes_anyway", |ctx: Ctx| async move {
        let ns: Namespace = serde_json::from_value(serde_json::json!({"metadata": {"name": "pa-sneaky"}})).unwrap();
        match kube::Api::<Namespace>::all(ctx.kube().unwrap().clone()).create(&Default::default(), &ns).await {
            Ok(_) => Outcome::pass("created"),
            Err(e) => platform_acceptance::cluster::api_error("create Namespace pa-sneaky", e),
        }
    });
    let r = run(vec![unit("4.2.7", declared.clone()), unit("1.3.1", sneaky.clone())], &[], config()).await;
    assert_eq!(outcome_of(&r, "4.2.7"), &Outcome::skip("creates objects in the cluster: give --allow-writes to run it"));
    let refused = outcome_of(&r, "1.3.1");
    assert_eq!(refused.verdict(), Verdict::Error);
    assert!(refused.summary().contains("forbidden: create namespaces on infra refused: this run does not allow writes (give --allow-writes)"), "{}", refused.summary());

    // A writable target runs both (the write then meets the closed port).
    let mut targets = offline_targets();
    targets.get_mut("infra").unwrap().writable = true;
    let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
    let cfg = RunConfig { retries: 0, ..config() };
    let r = Runner::new(cfg, Environment { repo: None, targets }, vec![]).run(vec![unit("4.2.7", declared), unit("1.3.1", sneaky)], tx).await;
    assert_eq!(outcome_of(&r, "4.2.7"), &Outcome::pass("should not run"));
    assert!(outcome_of(&r, "1.3.1").summary().contains("unreachable"), "{}", outcome_of(&r, "1.3.1").summary());
}

/// An API server that accepts connections and never answers (a frozen machine).
async fn frozen_api() -> String {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = vec![];
        while let Ok((sock, _)) = l.accept().await {
            held.push(sock);
        }
    });
    format!("http://{addr}")
}

/// An API server that answers every request with its version.
async fn answering_api() -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = l.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                loop {
                    match sock.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(_) => {}
                    }
                    let body = r#"{"major":"1","minor":"36","gitVersion":"v1.36.3","gitCommit":"x","gitTreeState":"clean","buildDate":"2026-01-01T00:00:00Z","goVersion":"go1.26","compiler":"gc","platform":"linux/amd64"}"#;
                    let resp = format!("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}", body.len());
                    if sock.write_all(resp.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    format!("http://{addr}")
}

fn target_at(url: &str, context: &str) -> Target {
    let client = kube::Client::try_from(kube::Config::new(url.parse().unwrap())).unwrap();
    let peers = Arc::new(BTreeMap::from([(context.to_string(), client.clone())]));
    Target { client, context: context.into(), peers, resolver: Arc::new(platform_acceptance::cluster::resolve::SystemDns), provenance: Arc::new(platform_acceptance::cluster::access::RealClusters), writable: false }
}

#[tokio::test]
async fn a_dead_cluster_costs_one_timeout_and_spares_the_other() {
    let asks_version = Check::cluster("1.3", "version", "asks_version", |ctx: Ctx| async move {
        match ctx.kube().unwrap().apiserver_version().await {
            Ok(v) => Outcome::pass(format!("answered {}", v.git_version)),
            Err(e) => Outcome::error(format!("unreachable: {e}")),
        }
    });
    let targets = BTreeMap::from([("infra".to_string(), target_at(&frozen_api().await, "infra")), ("apps".to_string(), target_at(&answering_api().await, "apps"))]);
    let mut units = vec![];
    for i in 1..=8 {
        for cluster in ["infra", "apps"] {
            let mut u = unit(&format!("1.3.{i}"), asks_version.clone());
            u.cluster = cluster.into();
            units.push(u);
        }
    }
    let config = RunConfig { concurrency: 2, timeout: Duration::from_millis(800), probe_timeout: Duration::from_millis(200), ..config() };
    let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
    let started = std::time::Instant::now();
    let r = Runner::new(config, Environment { repo: None, targets }, vec![]).run(units, tx).await;
    let elapsed = started.elapsed();
    let on = |c: &str| r.results.iter().filter(|x| x.cluster == c).collect::<Vec<_>>();
    assert!(on("apps").iter().all(|x| x.outcome.verdict() == Verdict::Pass), "the answering cluster is unaffected");
    assert!(on("infra").iter().all(|x| x.outcome.verdict() == Verdict::Error));
    let marked = on("infra").iter().filter(|x| x.outcome.summary().starts_with("cluster infra unreachable since ")).count();
    assert!(marked >= 6, "units after the first timeout end at once: {marked} of 8 marked: {:?}", on("infra").iter().map(|x| x.outcome.summary()).collect::<Vec<_>>());
    assert!(on("infra").iter().any(|x| x.outcome.summary().contains("GET /version: no answer within 200ms")));
    // 8 infra units x 800 ms each would be 6.4 s at concurrency 2 (plus retries); one timeout wave is ~1 s.
    assert!(elapsed < Duration::from_millis(3000), "took {elapsed:?}");
}

#[tokio::test]
async fn a_cluster_that_comes_back_is_used_again() {
    use platform_acceptance::runner::health::Health;
    let dead = target_at("http://127.0.0.1:9", "infra");
    let h = Health::with_reprobe(Duration::from_millis(200), Duration::from_millis(300));
    let down = h.after_error("infra", "infra", &dead.client).await.expect("refused: down");
    assert!(down.summary().starts_with("cluster infra unreachable since "), "{}", down.summary());
    assert!(h.gate("infra", "infra", &dead.client).await.is_some(), "still down (probe is fresh)");
    // The same context answering again: the next probe, once due, clears it.
    let back = target_at(&answering_api().await, "infra");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(h.gate("infra", "infra", &back.client).await.is_none(), "recovered");
}

#[tokio::test]
async fn a_check_that_panics_is_an_error_of_its_unit_and_the_run_goes_on() {
    let panics = Check::cluster("1.3", "a", "panics", |_ctx: Ctx| async {
        let empty: Vec<u32> = vec![];
        Outcome::pass(format!("{}", empty[usize::from(empty.is_empty())]))
    });
    let passes = Check::cluster("7.1", "b", "passes", |_ctx: Ctx| async { Outcome::pass("ok") });
    let r = run(vec![unit("1.3.1", panics), unit("7.1.1", passes)], &[], config()).await;
    let o = outcome_of(&r, "1.3.1");
    assert_eq!(o.verdict(), Verdict::Error);
    assert!(o.summary().starts_with("the check panicked: index out of bounds"), "{}", o.summary());
    assert!(!o.summary().contains('\n'));
    assert_eq!(outcome_of(&r, "7.1.1").verdict(), Verdict::Pass);
}

#[tokio::test]
async fn a_reconciliation_in_progress_is_waited_for_beyond_the_retries_then_fails_saying_so() {
    let calls = Arc::new(AtomicU32::new(0));
    let c = calls.clone();
    // An upgrade that finishes on the fifth look.
    let upgrading = Check::cluster("2.4", "upgrading", "upgrading", move |_ctx: Ctx| {
        let n = c.fetch_add(1, Ordering::SeqCst);
        async move {
            if n < 4 { Outcome::in_progress("HelmRelease networking/external-dns", "Ready=True", "Progressing: Running 'upgrade' action with timeout of 5m0s") } else { Outcome::pass("Ready=True") }
        }
    });
    let cfg = RunConfig { retries: 0, backoff: Duration::from_millis(10), in_progress_wait: Duration::from_secs(3), ..config() };
    let r = run(vec![unit("2.4.3", upgrading)], &[], cfg.clone()).await;
    // With retries only (the old runner), the first look's Fail would have stood.
    assert_eq!(outcome_of(&r, "2.4.3"), &Outcome::pass("Ready=True"));
    assert_eq!(r.results[0].attempts, 5);

    // Still upgrading when the wait ends: a Fail that says it was still in progress.
    let stuck = Check::cluster("2.4", "stuck", "stuck", |_ctx: Ctx| async {
        Outcome::in_progress("HelmRelease networking/external-dns", "Ready=True", "Progressing: Running 'upgrade' action with timeout of 5m0s")
    });
    let r = run(vec![unit("2.4.3", stuck)], &[], RunConfig { in_progress_wait: Duration::from_millis(1200), ..cfg.clone() }).await;
    let o = outcome_of(&r, "2.4.3");
    assert_eq!(o.verdict(), Verdict::Fail);
    assert_eq!(o.summary(), "HelmRelease networking/external-dns: expected Ready=True, observed still in progress after 1s: Progressing: Running 'upgrade' action with timeout of 5m0s");
    assert!(r.results[0].attempts > 3, "{}", r.results[0].attempts);

    // An ordinary failure is not waited for.
    let failing = Check::cluster("2.4", "failing", "failing", |_ctx: Ctx| async { Outcome::fail("HelmRelease networking/external-dns", "Ready=True", "Ready=False (UpgradeFailed)") });
    let r = run(vec![unit("2.4.3", failing)], &[], cfg).await;
    assert_eq!(r.results[0].attempts, 1);
}
