//! The first cluster checks end to end on the local simulation: story 1.3 and the
//! node criteria of 2.1/2.2 pass on the healthy platform, fail on the fault
//! scenarios naming the node or object, and leave the other criteria alone.
//! Holds `sim::test_lock` throughout; restores the healthy scenario at the end.

use std::collections::BTreeMap;

use platform_acceptance::check::{Phase, Verdict};
use platform_acceptance::runner::{RunConfig, RunReport};
use platform_acceptance::session::Session;
use platform_acceptance::sim::{self, SimConfig};

const SELECTION: &str = "1.3.3,1.3.4,1.3.5,1.3.6,1.3.7,1.3.8,2.1.7,2.2.8";

async fn run(_cfg: &SimConfig, phase: Phase) -> RunReport {
    let session = Session::new("fixtures/multi-cluster-epics.md", Some("fixtures/gitops".as_ref())).unwrap();
    let clusters = session.coverage.clusters.clone();

    let targets = platform_acceptance::cluster::sim_targets(&clusters, &BTreeMap::new()).await.unwrap();
    let session = session.with_targets(targets);
    let only = session.selectors(&[SELECTION.to_string()]).unwrap();
    // Scenario changes are already applied; no need to wait for eventual consistency here.
    let config = RunConfig { retries: 4, phase, ..RunConfig::default() };
    session.run(&only, &[], config).await
}

fn verdicts(r: &RunReport) -> BTreeMap<String, Verdict> {
    r.results.iter().map(|x| (format!("{} [{}]", x.id, x.cluster), x.outcome.verdict())).collect()
}

fn failing(r: &RunReport) -> Vec<String> {
    let mut v: Vec<String> = r.results.iter().filter(|x| x.outcome.verdict() == Verdict::Fail).map(|x| format!("{} [{}]", x.id, x.cluster)).collect();
    v.sort();
    v
}

fn message(r: &RunReport, id: &str) -> String {
    r.results.iter().find(|x| x.id == id).map(|x| x.outcome.details().join("\n")).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn bootstrap_and_node_criteria_on_the_simulation() {
    if std::env::var("PA_SIM_TESTS").as_deref() == Ok("0") {
        println!("skipped because PA_SIM_TESTS=0");
        return;
    }
    let cfg = SimConfig::from_env();
    let _lock = sim::test_lock(&cfg).await.unwrap();
    sim::up(&cfg).await.unwrap();
    sim::data::start(&cfg).await.unwrap();
    sim::scenario::apply(&cfg, "healthy").await.unwrap();

    // Healthy: every node criterion passes on both clusters; 1.3.7 waits for its phase.
    let r = run(&cfg, Phase::Operate).await;
    let v = verdicts(&r);
    assert!(failing(&r).is_empty(), "healthy platform failed: {:?}\n{}", failing(&r), message(&r, "2.2.8"));
    assert_eq!(v["1.3.7 [all]"], Verdict::Skip);
    for unit in ["1.3.3 [infra]", "1.3.4 [apps]", "1.3.5 [infra]", "1.3.5 [apps]", "1.3.6 [all]", "1.3.8 [all]", "2.1.7 [infra]", "2.2.8 [apps]"] {
        assert_eq!(v[unit], Verdict::Pass, "{unit}");
    }
    // In the bootstrap phase the same Ready nodes break 1.3.7, naming them.
    let r = run(&cfg, Phase::Bootstrap).await;
    assert_eq!(failing(&r), vec!["1.3.7 [all]"]);
    assert!(message(&r, "1.3.7").contains("Node/apps-02 (cluster apps): expected NotReady (no CNI yet), observed Ready=True"), "{}", message(&r, "1.3.7"));

    // Before the CNI every node is NotReady: then 1.3.7 holds and the readiness criteria do not.
    for (cluster, nodes) in [("infra", ["infra-01", "infra-02", "infra-03"]), ("apps", ["apps-01", "apps-02", "apps-03"])] {
        let client = sim::client(&cfg, cluster).await.unwrap();
        for n in nodes {
            sim::kwok::set_node_not_ready(&client, n, "NetworkPluginNotReady", "cni plugin not initialized").await.unwrap();
        }
    }
    let r = run(&cfg, Phase::Bootstrap).await;
    let v = verdicts(&r);
    assert_eq!(v["1.3.7 [all]"], Verdict::Pass, "{}", message(&r, "1.3.7"));
    assert_eq!(failing(&r), vec!["2.1.7 [infra]", "2.2.8 [apps]"]);
    for (cluster, nodes) in [("infra", ["infra-01", "infra-02", "infra-03"]), ("apps", ["apps-01", "apps-02", "apps-03"])] {
        let client = sim::client(&cfg, cluster).await.unwrap();
        for n in nodes {
            sim::kwok::set_node_ready(&client, n).await.unwrap();
        }
    }

    // node-notready: only the apps readiness criterion fails, naming apps-02.
    sim::scenario::apply(&cfg, "node-notready").await.unwrap();
    let r = run(&cfg, Phase::Operate).await;
    assert_eq!(failing(&r), vec!["2.2.8 [apps]"], "{}", message(&r, "2.2.8"));
    assert!(message(&r, "2.2.8").contains("Node/apps-02 (cluster apps): expected Ready=True, observed Ready=False"), "{}", message(&r, "2.2.8"));

    // cni-down: the Cilium criterion of infra fails, naming the DaemonSet and its counts.
    sim::scenario::apply(&cfg, "cni-down").await.unwrap();
    let r = run(&cfg, Phase::Operate).await;
    assert!(failing(&r).contains(&"2.1.7 [infra]".to_string()), "{:?}", failing(&r));
    assert!(message(&r, "2.1.7").contains("DaemonSet kube-system/cilium (cluster infra): expected numberReady = desiredNumberScheduled (> 0)"), "{}", message(&r, "2.1.7"));
    assert!(!failing(&r).iter().any(|u| u.starts_with("1.3.")), "{:?}", failing(&r));

    sim::scenario::apply(&cfg, "healthy").await.unwrap();
    let r = run(&cfg, Phase::Operate).await;
    assert!(failing(&r).is_empty(), "healthy not restored: {:?}", failing(&r));
}
