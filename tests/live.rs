//! `cargo test --features live`: the check library as rstest cases, one per criterion ×
//! cluster, against the clusters of `KUBECONFIG` (contexts `infra`/`apps`, or
//! `PA_CONTEXT_INFRA`/`PA_CONTEXT_APPS`) and the GitOps repository in `PA_REPO`
//! (default: fixtures/gitops). Nothing is written unless `PA_ALLOW_WRITES=1` (as
//! `--allow-writes`): round trips and data-plane checks (which reach services through a relay
//! pod, `PA_RELAY_IMAGE`; `PA_NETWORK=direct` connects from this machine instead) are skipped
//! without it, and then write only to the disposable namespaces they create. Without the feature this file compiles to nothing.
#![cfg(feature = "live")]

use std::collections::BTreeMap;
use std::sync::OnceLock;

use platform_acceptance::check::Verdict;
use platform_acceptance::plan::Selector;
use platform_acceptance::runner::RunConfig;
use platform_acceptance::session::Session;

include!(concat!(env!("OUT_DIR"), "/live_cases.rs"));

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| tokio::runtime::Runtime::new().expect("runtime"))
}

fn evaluate(id: &str, cluster: &str) {
    let rt = runtime();
    let repo = std::env::var("PA_REPO").unwrap_or_else(|_| "fixtures/gitops".into());
    let kubeconfig = std::env::var("KUBECONFIG").expect("--features live needs KUBECONFIG naming the infra and apps contexts");
    let session = Session::new("fixtures/multi-cluster-epics.md", Some(repo.as_ref())).expect("document and repository");
    let mut overrides = BTreeMap::new();
    for c in session.coverage.clusters.clone() {
        if let Ok(ctx) = std::env::var(format!("PA_CONTEXT_{}", c.to_uppercase())) {
            overrides.insert(c, ctx);
        }
    }
    let mut targets = rt
        .block_on(platform_acceptance::cluster::targets(kubeconfig.as_ref(), &session.coverage.clusters, &overrides))
        .expect("kubeconfig contexts");
    let writable = std::env::var("PA_ALLOW_WRITES").as_deref() == Ok("1");
    for t in targets.values_mut() {
        t.writable = writable;
    }
    // As `--network`: the relay unless PA_NETWORK=direct.
    if std::env::var("PA_NETWORK").as_deref() != Ok("direct") {
        let image = std::env::var("PA_RELAY_IMAGE").unwrap_or_else(|_| platform_acceptance::cluster::relay::DEFAULT_IMAGE.into());
        platform_acceptance::cluster::relay::attach(&mut targets, &image);
    }
    let session = session.with_targets(targets);
    let only = [Selector::Criterion(id.to_string())];
    let units: Vec<_> = session.units(&only, &[]).into_iter().filter(|u| u.cluster == cluster || u.cluster == "all").collect();
    if units.is_empty() {
        println!("{id} does not apply to cluster {cluster}");
        return;
    }
    let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
    let report = rt.block_on(session.runner(RunConfig::default()).run(units, tx));
    for r in &report.results {
        println!("{}: {} {}", r.title(), r.outcome.verdict().as_str(), r.outcome.details().join(" | "));
        assert!(!matches!(r.outcome.verdict(), Verdict::Fail | Verdict::Error), "{}: {}", r.title(), r.outcome.summary());
    }
}
