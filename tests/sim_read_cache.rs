//! The run's read cache changes no verdict: the whole suite, with and without the cache,
//! on the healthy platform and on every other scenario, gives every unit the same verdict
//! (and every failing unit the same message), and the cache sends far fewer requests.
//! Runs without writes (round trips read only discovery through the cache; they are skipped
//! here).
//! Runs in the shared simulation fixture (lock held, healthy scenario restored at the end).

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use platform_acceptance::check::Verdict;
use platform_acceptance::runner::{RunConfig, RunReport};
use platform_acceptance::sim::scenario;
use support::report::unit_name;
use support::sim::SimFixture;

fn config(read_cache: bool) -> RunConfig {
    RunConfig { retries: 0, in_progress_wait: Duration::from_secs(3), read_cache, ..RunConfig::default() }
}

/// Every unit's verdict, and the findings of every unit that fails or errs (as a set: an
/// aggregate lists the units it judges in the order they finished).
fn verdicts(r: &RunReport) -> BTreeMap<String, (Verdict, BTreeSet<String>)> {
    r.results
        .iter()
        .map(|u| {
            let v = u.outcome.verdict();
            let findings = if matches!(v, Verdict::Fail | Verdict::Error) { u.outcome.details().iter().flat_map(|d| d.split("; ")).map(str::to_string).collect() } else { BTreeSet::new() };
            (unit_name(u), (v, findings))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_read_cache_changes_no_verdict() {
    let Some(fx) = SimFixture::start("the_read_cache_changes_no_verdict").await else { return };
    let mut names = vec!["healthy"];
    names.extend(scenario::list().into_iter().filter(|n| *n != "healthy"));
    for name in names {
        fx.scenario(name).await;
        let uncached = fx.run_read_only("", config(false)).await;
        let cached = fx.run_read_only("", config(true)).await;
        let (a, b) = (verdicts(&uncached), verdicts(&cached));
        let differ: Vec<String> = a
            .iter()
            .filter(|(unit, v)| b.get(*unit) != Some(*v))
            .map(|(unit, (v, f))| match b.get(unit) {
                Some((w, g)) => format!("{unit}: without the cache {v:?} {:?}, with it {w:?} {:?}", f.difference(g).collect::<Vec<_>>(), g.difference(f).collect::<Vec<_>>()),
                None => format!("{unit}: missing with the cache"),
            })
            .collect();
        assert!(differ.is_empty(), "{name}: verdicts differ:\n{}", differ.join("\n"));
        let (sent, cached_sent) = (uncached.summary.api_requests.total, cached.summary.api_requests.total);
        eprintln!(
            "{name}: {} units, {} not passing; API requests {sent} without the cache, {cached_sent} with it; {:.1}s vs {:.1}s",
            a.len(),
            a.values().filter(|(v, _)| matches!(v, Verdict::Fail | Verdict::Error)).count(),
            uncached.duration.as_secs_f64(),
            cached.duration.as_secs_f64()
        );
        assert!(cached_sent <= sent, "{name}: the cache sent {cached_sent} requests, without it {sent}");
        if name == "healthy" {
            assert!(cached_sent * 2 < sent, "healthy: the cache sent {cached_sent} requests, without it {sent}");
        }
    }
    fx.restore().await;
}
