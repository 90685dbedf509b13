//! The first cluster checks end to end on the local simulation: story 1.3 and the
//! node criteria of 2.1/2.2 pass on the healthy platform, fail on the fault
//! scenarios naming the node or object, and leave the other criteria alone.
//! Runs in the shared simulation fixture (lock held, healthy scenario restored at the end).

mod support;

use platform_acceptance::check::{Phase, Verdict};
use platform_acceptance::runner::{RunConfig, RunReport};
use platform_acceptance::sim;
use support::ReportExt;
use support::sim::SimFixture;

const SELECTION: &str = "1.3.3,1.3.4,1.3.5,1.3.6,1.3.7,1.3.8,2.1.7,2.2.8";
const NODES: [(&str, [&str; 3]); 2] = [("infra", ["infra-01", "infra-02", "infra-03"]), ("apps", ["apps-01", "apps-02", "apps-03"])];

async fn run(fx: &SimFixture, phase: Phase) -> RunReport {
    // Scenario changes are already applied; no need to wait for eventual consistency here.
    fx.run_with(SELECTION, RunConfig { retries: 4, phase, ..RunConfig::default() }).await
}

#[tokio::test(flavor = "multi_thread")]
async fn bootstrap_and_node_criteria_on_the_simulation() {
    let Some(fx) = SimFixture::start("bootstrap_and_node_criteria_on_the_simulation").await else { return };

    // Healthy: every node criterion passes on both clusters; 1.3.7 waits for its phase.
    let r = run(&fx, Phase::Operate).await;
    r.expect_none_failing();
    assert_eq!(r.verdict("1.3.7 [all]"), Verdict::Skip);
    for unit in ["1.3.3 [infra]", "1.3.4 [apps]", "1.3.5 [infra]", "1.3.5 [apps]", "1.3.6 [all]", "1.3.8 [all]", "2.1.7 [infra]", "2.2.8 [apps]"] {
        assert_eq!(r.verdict(unit), Verdict::Pass, "{unit}");
    }
    // In the bootstrap phase the same Ready nodes break 1.3.7, naming them.
    run(&fx, Phase::Bootstrap)
        .await
        .expect_failing(&["1.3.7 [all]"])
        .expect_message("1.3.7", &["Node/apps-02 (cluster apps): expected NotReady (no CNI yet), observed Ready=True"]);

    // Before the CNI every node is NotReady: then 1.3.7 holds and the readiness criteria do not.
    for (cluster, nodes) in NODES {
        let client = fx.client(cluster);
        for n in nodes {
            sim::kwok::set_node_not_ready(&client, n, "NetworkPluginNotReady", "cni plugin not initialized").await.unwrap();
        }
    }
    let r = run(&fx, Phase::Bootstrap).await;
    assert_eq!(r.verdict("1.3.7 [all]"), Verdict::Pass, "{}", r.message("1.3.7"));
    r.expect_failing(&["2.1.7 [infra]", "2.2.8 [apps]"]);
    for (cluster, nodes) in NODES {
        let client = fx.client(cluster);
        for n in nodes {
            sim::kwok::set_node_ready(&client, n).await.unwrap();
        }
    }

    // node-notready: only the apps readiness criterion fails, naming apps-02.
    fx.scenario("node-notready").await;
    run(&fx, Phase::Operate)
        .await
        .expect_failing(&["2.2.8 [apps]"])
        .expect_message("2.2.8", &["Node/apps-02 (cluster apps): expected Ready=True, observed Ready=False"]);

    // cni-down: the Cilium criterion of infra fails, naming the DaemonSet and its counts.
    fx.scenario("cni-down").await;
    let r = run(&fx, Phase::Operate).await;
    assert!(r.failing().contains(&"2.1.7 [infra]".to_string()), "{:?}", r.failing());
    r.expect_message("2.1.7", &["DaemonSet kube-system/cilium (cluster infra): expected numberReady = desiredNumberScheduled (> 0)"]);
    assert!(!r.failing().iter().any(|u| u.starts_with("1.3.")), "{:?}", r.failing());

    fx.restore().await;
    run(&fx, Phase::Operate).await.expect_none_failing();
}
