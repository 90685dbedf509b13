//! Benchmark of the whole suite on the healthy simulation: wall time and API requests the
//! checks send (counted by the harness itself), with the run's read cache and without it
//! (`--no-read-cache`, every read sent), in one go against the same simulation. Round trips
//! run in both (they read only discovery through the cache). First, the checks that only
//! look (no writes, so no round trips), with the cache; last, the whole suite with the apps
//! API server frozen (SIGSTOP, SIGCONT when done) against the healthy run. Starts the
//! simulation if it is not running and applies `healthy`. Prints figures; asserts nothing.
//!
//! `cargo run --release --example bench_suite` (needs `make sim-build`);
//! `cargo run --release --example bench_suite -- looking`: only the checks that look, and
//! their requests per access.

use std::path::Path;
use std::time::Instant;

use platform_acceptance::runner::{RunConfig, RunReport};
use platform_acceptance::session::Session;
use platform_acceptance::sim::{self, SimConfig};

#[path = "common/table.rs"]
mod table;

const DOC: &str = "fixtures/multi-cluster-epics.md";
const GITOPS: &str = "fixtures/gitops";

async fn suite(read_cache: bool, writes: bool) -> anyhow::Result<(RunReport, f64)> {
    let session = Session::new(DOC, Some(Path::new(GITOPS)))?;
    let mut targets = sim::targets::targets(&session.coverage.clusters, &Default::default()).await.map_err(anyhow::Error::msg)?;
    platform_acceptance::cluster::relay::attach(&mut targets, platform_acceptance::cluster::relay::DEFAULT_IMAGE);
    for t in targets.values_mut() {
        t.writable &= writes;
    }
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

/// The apps API server stopped (SIGSTOP) until this is dropped (SIGCONT).
struct Frozen(i32);

impl Frozen {
    fn apps_api_server(cfg: &SimConfig) -> anyhow::Result<Frozen> {
        let rec = sim::lookup(&cfg.state_dir, "apps", "kube-apiserver").filter(|r| r.is_alive()).ok_or_else(|| anyhow::anyhow!("apps kube-apiserver is not running"))?;
        // SAFETY: kill(2) has no memory-safety preconditions.
        if unsafe { libc::kill(rec.pid as i32, libc::SIGSTOP) } != 0 {
            anyhow::bail!("SIGSTOP to the apps kube-apiserver: {}", std::io::Error::last_os_error());
        }
        Ok(Frozen(rec.pid as i32))
    }
}

impl Drop for Frozen {
    fn drop(&mut self) {
        // SAFETY: as above.
        unsafe { libc::kill(self.0, libc::SIGCONT) };
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let only_looking = std::env::args().nth(1).as_deref() == Some("looking");
    let cfg = SimConfig::from_env();
    sim::up(&cfg).await?;
    sim::scenario::apply(&cfg, "healthy").await?;
    let (looking, t_looking) = suite(true, false).await?;
    line("no writes, read cache", &looking, t_looking);
    table::row("API requests, the checks that look (no writes), healthy", looking.summary.api_requests.total, "≤ 100");
    if only_looking {
        // Where the requests go: one line per access (verb, resource, cluster).
        let mut by: Vec<_> = looking.summary.api_requests.by_access.iter().collect();
        by.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        for (access, n) in by {
            println!("  {n:>4} {access}");
        }
        return Ok(());
    }
    let (uncached, t_uncached) = suite(false, true).await?;
    let (cached, t_cached) = suite(true, true).await?;
    line("every read sent", &uncached, t_uncached);
    line("with the read cache", &cached, t_cached);
    let requests = |r: &RunReport| r.summary.api_requests.total;
    table::row("whole suite with round trips: API requests, read cache vs every read sent", format!("{} vs {}", requests(&cached), requests(&uncached)), "≤ 100");
    table::row("whole suite with round trips: wall time, read cache vs every read sent", format!("{t_cached:.1} s vs {t_uncached:.1} s"), "≤ 1/3");
    let frozen = Frozen::apps_api_server(&cfg)?;
    let (dead, t_dead) = suite(true, true).await?;
    drop(frozen);
    line("apps API server frozen", &dead, t_dead);
    table::row("whole suite, apps API server frozen vs healthy", format!("{t_dead:.1} s vs {t_cached:.1} s ({:.2}x)", t_dead / t_cached), "≤ 1.5x");
    Ok(())
}
