//! Benchmark: time to parse the catalog and to run the repository layer on
//! fixtures/gitops, plus peak memory. Prints figures; asserts nothing.
//!
//! `cargo run --release --example bench_repo_layer [-- ITERATIONS]`

use std::time::{Duration, Instant};

use platform_acceptance::catalog::Catalog;
use platform_acceptance::check::Layer;
use platform_acceptance::plan::Selector;
use platform_acceptance::runner::RunConfig;
use platform_acceptance::session::Session;

const DOC: &str = "fixtures/multi-cluster-epics.md";
const REPO: &str = "fixtures/gitops";

fn stats(name: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "{name:<42} median {:>8.2} ms   min {:>8.2} ms   max {:>8.2} ms   (n={})",
        ms(samples[samples.len() / 2]),
        ms(samples[0]),
        ms(samples[samples.len() - 1]),
        samples.len()
    );
}

fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok()))
        .map_or(0.0, |kib| kib / 1024.0)
}

fn main() {
    let n: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(20);
    let rt = tokio::runtime::Runtime::new().unwrap();

    let parse: Vec<Duration> = (0..n).map(|_| { let t = Instant::now(); Catalog::load(DOC).unwrap(); t.elapsed() }).collect();
    stats("parse planning document (221 items)", parse);

    let mut setup = vec![];
    let mut layer = vec![];
    let mut total = vec![];
    let mut summary = String::new();
    for _ in 0..n {
        let t0 = Instant::now();
        let session = Session::new(DOC, Some(REPO.as_ref())).unwrap();
        let t1 = Instant::now();
        let report = rt.block_on(session.run(&[Selector::Layer(Layer::Repo)], &[], RunConfig::default()));
        let t2 = Instant::now();
        setup.push(t1 - t0);
        layer.push(t2 - t1);
        total.push(t2 - t0);
        summary = format!("{} units: {}", report.results.len(), report.summary.line());
    }
    stats("load catalog + repository (YAML parse)", setup);
    stats("render both clusters + run repo checks", layer);
    stats("end to end (catalog + repository layer)", total);
    println!("last run: {summary}");
    println!("peak RSS: {:.1} MiB", peak_rss_mib());
}
