//! dod.1 "All acceptance criteria met" is judged from the other results of the same run.

mod support;

use platform_acceptance::check::Verdict;
use platform_acceptance::plan::Selector;
use platform_acceptance::runner::RunConfig;
use platform_acceptance::session::Session;
use support::{RepoCopy, DOC};

fn run(repo: &std::path::Path, only: &[&str]) -> platform_acceptance::runner::RunReport {
    let session = Session::new(DOC, Some(repo)).unwrap();
    let only: Vec<Selector> = only.iter().map(|s| Selector::parse(s).unwrap()).collect();
    tokio::runtime::Runtime::new().unwrap().block_on(session.run(&only, &[], RunConfig::default()))
}

fn dod1(report: &platform_acceptance::runner::RunReport) -> &platform_acceptance::check::Outcome {
    &report.results.iter().find(|r| r.id == "dod.1").unwrap().outcome
}

#[test]
fn met_when_every_selected_criterion_passed() {
    let r = run("fixtures/gitops".as_ref(), &["2.2.1", "2.2.2", "2.2.3", "dod.1"]);
    assert_eq!(dod1(&r).verdict(), Verdict::Pass, "{:?}", dod1(&r));
    assert!(dod1(&r).summary().contains("all 3 criterion evaluations passed"));
}

#[test]
fn not_proven_while_criteria_are_skipped() {
    // 2.2.8 is a cluster criterion: skipped without a cluster target.
    let r = run("fixtures/gitops".as_ref(), &["2.2", "dod.1"]);
    assert_eq!(dod1(&r).verdict(), Verdict::Skip, "{:?}", dod1(&r));
    assert!(dod1(&r).summary().contains("none failed"), "{}", dod1(&r).summary());
}

#[test]
fn fails_naming_each_failed_criterion() {
    let repo = RepoCopy::new();
    repo.replace("kubernetes/clusters/apps/infrastructure.yaml", "CLUSTER_ID: \"2\"", "CLUSTER_ID: \"3\"");
    let r = run(repo.path(), &["2.2.2", "dod.1"]);
    assert_eq!(dod1(&r).verdict(), Verdict::Fail);
    let text = dod1(&r).details().join("\n");
    assert!(text.contains("2.2.2 [apps] CLUSTER_ID set to \"2\": expected met, observed fail"), "{text}");
}
