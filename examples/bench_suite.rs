//! Benchmark of the whole suite on the healthy simulation: wall time and API requests the
//! checks send (counted by the harness itself), with the run's read cache and without it
//! (`--no-read-cache`, every read sent), in one go against the same simulation. Round trips
//! run in both (they read only discovery through the cache). Starts the simulation if it is not
//! running and applies `healthy`. Prints figures; asserts nothing.
//!
//! `cargo run --release --example bench_suite` (needs `make sim-build`)

use std::path::Path;
use std::time::Instant;

use platform_acceptance::runner::{RunConfig, RunReport};
use platform_acceptance::session::Session;
use platform_acceptance::sim::{self, SimConfig};

const DOC: &str = "fixtures/multi-cluster-epics.md";
const GITOPS: &str = "fixtures/gitops";

async fn suite(read_cache: bool) -> anyhow::Result<(RunReport, f64)> {
    let session = Session::new(DOC, Some(Path::new(GITOPS)))?;
    let targets = sim::targets::targets(&session.coverage.clusters, &Default::default()).await.map_err(anyhow::Error::msg)?;
    let session = session.with_targets(targets);
    let t = Instant::now();
    let report = session.run(&[], &[], RunConfig { read_cache, ..RunConfig::default() }).await;
    Ok((report, t.elapsed().as_secs_f64()))
}

fn line(label: &str, r: &RunReport, secs: f64) {
    let discovery: u64 = r.summary.api_requests.by_access.iter().filter(|(k, _)| k.contains("(discovery)")).map(|(_, n)| n).sum();
    let s = &r.summary;
    println!(
        "whole suite, {label:<22}: {secs:>6.1} s, {:>4} API requests ({discovery} discovery); {} passed, {} failed, {} errors, {} skipped",
        s.api_requests.total, s.passed, s.failed, s.errors, s.skipped
    );
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cfg = SimConfig::from_env();
    sim::up(&cfg).await?;
    sim::scenario::apply(&cfg, "healthy").await?;
    let (uncached, t_uncached) = suite(false).await?;
    let (cached, t_cached) = suite(true).await?;
    line("every read sent", &uncached, t_uncached);
    line("with the read cache", &cached, t_cached);
    Ok(())
}
