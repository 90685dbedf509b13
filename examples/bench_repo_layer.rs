//! Benchmark: time to parse the catalog and to run the repository layer on
//! fixtures/gitops and fixtures/gitops-community, plus peak memory. Prints figures; asserts
//! nothing.
//!
//! `cargo run --release --example bench_repo_layer [-- ITERATIONS]`

use std::time::{Duration, Instant};

#[path = "common/rss.rs"]
mod rss;
#[path = "common/table.rs"]
mod table;

use rss::peak_rss_mib;

use platform_acceptance::catalog::Catalog;
use platform_acceptance::check::Layer;
use platform_acceptance::plan::Selector;
use platform_acceptance::runner::RunConfig;
use platform_acceptance::session::Session;

const DOC: &str = "fixtures/multi-cluster-epics.md";
const REPOS: [&str; 2] = ["fixtures/gitops", "fixtures/gitops-community"];

/// Prints the figures and returns the median in milliseconds.
fn stats(name: &str, mut samples: Vec<Duration>) -> f64 {
    samples.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let median = ms(samples[samples.len() / 2]);
    println!(
        "{name:<42} median {:>8.2} ms   min {:>8.2} ms   max {:>8.2} ms   (n={})",
        ms(samples[samples.len() / 2]),
        ms(samples[0]),
        ms(samples[samples.len() - 1]),
        samples.len()
    );
    median
}

fn main() {
    let n: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(20);
    let rt = tokio::runtime::Runtime::new().unwrap();

    let parse: Vec<Duration> = (0..n).map(|_| { let t = Instant::now(); Catalog::load(DOC).unwrap(); t.elapsed() }).collect();
    let median = stats("parse planning document (221 items)", parse);
    table::row("parse the planning document (221 items), median", format!("{median:.1} ms"), "");

    for repo in REPOS {
        let mut setup = vec![];
        let mut layer = vec![];
        let mut total = vec![];
        let mut summary = String::new();
        for _ in 0..n {
            let t0 = Instant::now();
            let session = Session::new(DOC, Some(repo.as_ref())).unwrap();
            let t1 = Instant::now();
            let report = rt.block_on(session.run(&[Selector::Layer(Layer::Repo)], &[], RunConfig::default()));
            let t2 = Instant::now();
            setup.push(t1 - t0);
            layer.push(t2 - t1);
            total.push(t2 - t0);
            summary = format!("{} units: {}", report.results.len(), report.summary.line());
        }
        println!("{repo}:");
        stats("  load catalog + repository (YAML parse)", setup);
        stats("  render both clusters + run repo checks", layer);
        let median = stats("  end to end (catalog + repository layer)", total);
        println!("  last run: {summary}");
        table::row(&format!("repository layer on {repo}, end to end, median"), format!("{median:.0} ms"), "");
    }
    println!("peak RSS: {:.1} MiB", peak_rss_mib());
    table::row("repository layer, peak RSS of the harness", format!("{:.0} MiB", peak_rss_mib()), "");
}
